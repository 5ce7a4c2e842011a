#pragma once
// Erasure (SPEC 4.4, GDPR Art. 17): removes one recording from this node's
// archive and spool (and the object store) and has every peer do the same.
//
// erase() (recsync erase ID|PATH --reason TEXT; on a worker thread):
//   1. resolves the target among the archive rows (erase/plan.h; a row not
//      hashed yet is hashed first) and refuses while any copy is held;
//   2. appends the audit lines (policy "erase", reason, operator uid, hash)
//      to the audit log and fsyncs it (write-ahead, as the pruner does);
//   3. in ONE transaction (Tombstones::commit): the tombstone (pending), the
//      audit rows, one erase_queue row per peer, and the removal of the
//      copies' replication and upload queue entries;
//   4. carries it out (below), with the object-store object inline, and
//      deletes the spool copies with the same content (spool_rels). (A spool
//      copy found later is removed by the archiver: the Placer refuses it.)
// apply_copied() is the same for an ERASE from a peer (the receiver): held
// here is kRefused (the peer reports it); no queue rows (every node tells
// its own peers); the object store is left to the worker thread.
//
// Carrying out an erasure, idempotent, so a crash anywhere re-runs it
// (finish_pending() at start, before the archive reconcile, and on the
// worker): under the Placer's lock (archive/placer.h: a placement racing
// with it either finished before, and its copy is deleted here, or sees the
// tombstone and refuses), every copy of the identity (at its plain or
// qualified path, by row or by content) is unlinked, its folder fsynced and
// its row removed (a copy not audited yet is audited first); then the
// object-store object, every version (tier_erase). Only then is the
// tombstone's pending flag cleared. A failure leaves it pending: retried
// every kRetryEvery by the worker.
//
// The worker thread (rs-erase, start()/stop()) also drops expired
// tombstones (Tombstones::expire_due) every kExpireEvery.
//
// Thread safety: erase(), apply_copied() and finish_pending() from any
// thread (one at a time for the local part: a mutex); start()/stop() from
// the owner. Everything set by set_*() is set before start().
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "archive/placer.h"
#include "erase/plan.h"
#include "recsync/env.h"
#include "recsync/log.h"
#include "state/store.h"

namespace recsync::erase {

struct EraserOptions {
  std::string node;  // this node's name
  std::string archive_root, spool_root;
  std::string audit_log_path;
  Millis keep{15LL * 24 * 3600 * 1000};  // retention.keep (tombstone expiry)
};

struct EraseRequest {
  std::string target;  // recording id or archive path (relative, or absolute under the archive)
  std::string reason;
  int64_t uid = -1;  // the operator (control socket peer credentials)
  // Spool paths (relative) of files named like the target and not being
  // archived now (the caller reads the spool pipeline on its thread): those
  // with the erased content are deleted too; with no archive row at all the
  // recording is still in the spool (kBusy: try again once archived).
  std::vector<std::string> spool_rels;
  bool in_spool = false;  // some spool file is named like the target
};

struct EraseOutcome {
  std::string origin;  // node name
  std::string origin_rel, hash;
  std::vector<std::string> removed;  // archive and spool paths deleted here
  uint64_t bytes = 0;
  std::vector<std::string> peers;  // queued to be told
  // "" without an object store; "erased"; else why it is still pending.
  std::string object_store;
};

class Eraser {
 public:
  static constexpr auto kRetryEvery = std::chrono::seconds(5);
  static constexpr auto kExpireEvery = std::chrono::hours(1);

  // env, store and placer outlive the Eraser.
  Eraser(Env* env, StateStore* store, Placer* placer, EraserOptions opt);
  ~Eraser() { stop(); }
  Eraser(const Eraser&) = delete;
  Eraser& operator=(const Eraser&) = delete;

  // The object store's erase of an archive path (every version); null: none.
  void set_tier_erase(std::function<Status(const std::string& rel)> f) {
    tier_erase_ = std::move(f);
  }
  void set_keep(Millis keep) { keep_ms_ = keep.count(); }

  Result<EraseOutcome> erase(const EraseRequest& req);
  // t: the identity as stored here (origin "local" when it is this node's).
  Status apply_copied(TombstoneRow t, const std::string& from_peer);
  // Carries out every pending erasure; the first error (the rest are tried).
  // with_store false (at start, before the loop runs): the local copies
  // only; the object-store step is left to the worker thread.
  Status finish_pending(bool with_store = true);

  // At start, before the archive reconcile adopts what it finds: a copy of
  // an erased recording back in the archive (restored by hand from a backup)
  // is deleted again, audited. One lstat per tombstone (and a hash of what
  // is found there). The first error.
  Status sweep_archive();

  void start();
  void stop();
  // Wakes the worker (a pending erasure to finish).
  void wake();

 private:
  // The carrying out (above). with_store: the object-store step too (else
  // the tombstone stays pending for the worker when there is a store).
  Status carry_out(const TombstoneRow& t, bool with_store, EraseOutcome* out);
  Status delete_copy(const TombstoneRow& t, const std::string& rel, EraseOutcome* out);
  Status delete_spool_copies(const TombstoneRow& t, const std::vector<std::string>& rels,
                             EraseOutcome* out);
  Status write_audit(const std::vector<AuditRow>& rows);
  std::vector<std::string> peers() const;
  void main();

  Env* env_;
  StateStore* store_;
  Placer* placer_;
  const EraserOptions opt_;
  std::atomic<int64_t> keep_ms_;
  std::function<Status(const std::string&)> tier_erase_;
  std::shared_ptr<spdlog::logger> lg_ = log::get("erase");
  std::mutex local_mu_;  // one erasure's local part at a time

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, woken_ = false;
  std::thread thread_;
};

}  // namespace recsync::erase
