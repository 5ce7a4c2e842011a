#pragma once
// The durable replication queue (table `repl_queue`): one row per (peer,
// recording) not yet acknowledged by that peer. It knows the configured
// peers, records a newly archived recording and queues it for each of them
// in ONE transaction (a crash cannot leave a recording archived but never
// sent), and rings its doorbell so the peer senders wake at once.
//
// Order (batch()): entries enqueued within the live window first (oldest of
// them first), so a backlog left by a peer outage does not delay calls that
// just ended; then everything due by (prio, enqueued_ms). prio 0 = live,
// 1 = retry (a transfer of it failed before).
//
// Thread safety: any thread; every call takes the Db lock. peers() and
// set_peers() have their own lock.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "recsync/doorbell.h"
#include "state/db.h"
#include "state/recordings.h"
#include "state/rows.h"

namespace recsync {

class ReplQueue {
 public:
  // The two lanes a peer link has (SPEC 4.6: a live recording never waits
  // behind backfill): live takes prio 0 and 1, backfill prio 2.
  enum class Lane { kLive, kBackfill };
  static constexpr int kBackfillPrio = 2;

  // db and recordings must outlive the queue. No peers until set_peers().
  ReplQueue(Db* db, Recordings* recordings) : db_(db), recordings_(recordings) {}

  // The peers every recorded recording is queued for (the [[peer]] names).
  void set_peers(std::vector<std::string> peers);
  std::vector<std::string> peers() const;

  // Upserts r (Recordings::upsert) and, in the same transaction, queues it
  // for every peer (mtime_ns is sent with it). An entry already queued for
  // (peer, rel) with the same hash keeps its place. Rings the doorbell.
  Status record(const RecordingRow& r, int64_t mtime_ns);

  // The next entry to offer `peer` at wall time now_ms (batch() with limit 1).
  Result<std::optional<QueueItem>> next(const std::string& peer, int64_t now_ms,
                                        int64_t live_window_ms);
  // Up to `limit` entries in offer order (see above), no duplicates. The
  // sender skips those already in flight.
  Result<std::vector<QueueItem>> batch(const std::string& peer, int64_t now_ms,
                                       int64_t live_window_ms, size_t limit,
                                       Lane lane = Lane::kLive);
  // The peer acked (peer, rel) with this hash: the entry goes. An entry
  // re-queued meanwhile with other content stays.
  Status done(const std::string& peer, const std::string& rel, const std::string& hash);
  // A transfer failed: the entry becomes a retry (prio 1; a backfill entry
  // stays prio 2), due at next_try_ms.
  Status defer(const std::string& peer, const std::string& rel, int64_t next_try_ms,
               const std::string& error_text);
  Result<QueueStats> stats(const std::string& peer);
  // Files queued per peer name, for every name with entries (finds entries
  // left for a peer that was removed or renamed in the config).
  Result<std::vector<std::pair<std::string, uint64_t>>> peers_with_entries();

  // A recording moved from from_rel to to_rel in the archive (placement.h:
  // a loser moved to its qualified path): its row and its queue entries
  // follow (and its object-store index rows: the object keeps its key), in
  // one transaction. Its origin path becomes origin_rel if given,
  // else stays (a row that had none keeps from_rel as its origin path).
  Status move_recording(const std::string& from_rel, const std::string& to_rel,
                        const std::string& origin_rel = "");

  // Queues r for each of `peers` at prio (a caller holding the Db lock in a
  // wider transaction: the backfill plan). Does not ring the doorbell.
  Status enqueue_locked(const Db::Lock& l, const RecordingRow& r,
                        const std::vector<std::string>& peers, int64_t mtime_ns, int prio);

  // Rung after every change that gives a sender work (record(), and the hold
  // changes queued by Holds). Senders wait on it; stop() paths ring it too.
  Doorbell& doorbell() { return bell_; }

 private:
  Db* db_;
  Recordings* recordings_;
  mutable std::mutex peers_mu_;
  std::vector<std::string> peers_;
  Doorbell bell_;
};

}  // namespace recsync
