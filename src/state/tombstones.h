#pragma once
// Erased recordings (SPEC 4.4, table `tombstones`) and the durable queue
// telling the peers about them (table `erase_queue`).
//
// A tombstone is an identity (origin path, origin; origins as stored,
// "local" = this node) with the hash it had, when, why and by whom it was
// erased. Replication and backfill never send, pull or push a tombstoned
// identity again. It is kept until expires_ms (erase/plan.h
// tombstone_expiry: at least the retention window), and never while it is
// pending (its files are still to delete) or a peer has not acked it.
//
// commit() is the erasure's one transaction: the tombstone (pending), its
// audit rows, one erase_queue row per peer, and the removal of every
// replication-queue entry (all destinations: peers and the object store) of
// the copies being deleted; backfill items of the identity not done yet
// become gone (they never will be). It rings the replication doorbell so senders
// tell their peers at once. Files are deleted after it (erase/eraser.h),
// then finished() clears pending.
//
// The erase queue is served like the hold queue: the live sender of each
// peer sends its next() first, acked() removes the row, failed() makes it
// due again later (refused: the peer holds the recording).
//
// Thread safety: any thread; every call takes the Db lock. generation()
// changes with every commit() (a sender in the middle of a transfer looks
// at it between chunks).
#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "recsync/doorbell.h"
#include "state/db.h"
#include "state/rows.h"

namespace recsync {

// One peer's share of the erase queue (status, metrics).
struct ErasePeerStats {
  std::string peer;
  uint64_t pending = 0;  // not acked yet (refused ones included)
  uint64_t refused = 0;  // refused by the peer (a hold there)
  std::string last_error;
};

class Tombstones {
 public:
  // bell: rung by commit() (the replication queue's); may be null.
  explicit Tombstones(Db* db, Doorbell* bell = nullptr) : db_(db), bell_(bell) {}
  Status add(const TombstoneRow& t);
  Result<bool> contains(const std::string& origin_rel, const std::string& origin);
  Result<std::optional<TombstoneRow>> get(const std::string& origin_rel, const std::string& origin);
  Result<std::vector<TombstoneRow>> list();
  Result<uint64_t> count();
  // Drops tombstones erased before cutoff_ms; how many.
  Result<uint64_t> expire(int64_t cutoff_ms);
  // Drops tombstones whose expires_ms (> 0) is <= now_ms, unless pending or
  // still queued for a peer; how many.
  Result<uint64_t> expire_due(int64_t now_ms);

  // The erasure's transaction (above). t.pending is stored as set.
  // dequeue_rels: archive paths whose replication-queue entries go.
  Status commit(const TombstoneRow& t, const std::vector<AuditRow>& audit,
                const std::vector<std::string>& peers,
                const std::vector<std::string>& dequeue_rels);
  Status finished(const std::string& origin_rel, const std::string& origin);
  // Sets pending again (an upload finished after the erasure: the eraser
  // deletes the object once more).
  Status reopen(const std::string& origin_rel, const std::string& origin);
  // Copies erased on this node (audit rows written by commit(), plus
  // add_erased()), kept across restarts in the meta table.
  Result<uint64_t> erased_total();
  Status add_erased(uint64_t n);
  Result<std::vector<TombstoneRow>> pending();

  // The erase queue.
  Result<std::optional<EraseOp>> next(const std::string& peer, int64_t now_ms);
  Status acked(const std::string& peer, const TombstoneRow& t);
  Status failed(const std::string& peer, const TombstoneRow& t, int64_t next_try_ms,
                const std::string& error, bool refused);
  Result<std::vector<ErasePeerStats>> queue_stats();

  uint64_t generation() const { return generation_.load(); }

 private:
  Status upsert_locked(const Db::Lock& l, const TombstoneRow& t);
  Status add_erased_locked(const Db::Lock& l, uint64_t n);

  Db* db_;
  Doorbell* bell_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace recsync
