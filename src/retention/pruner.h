#pragma once
// The retention executor: carries out plan_retention() against the archive.
//
// One run():
//   1. Refuses (report.refused set, nothing touched) when clock_refusal()
//      says the clock cannot be trusted or retention is disabled.
//   2. Walks store->recordings().older_than(now - keep) in chunks of kChunk rows, plans
//      each chunk, and deletes the plan's files in batches (kBatch unpaced,
//      pace_per_s when paced). Per batch:
//        a. identity check: each file is lstat'ed; only a regular file whose
//           size and mtime (ms) still equal the row's size and rec_time_ms
//           is deleted. A changed file keeps its row and file (counted in
//           report.changed, warned; the next archive scan re-indexes it); a
//           missing one is "already gone" (its row goes, with an audit line).
//        b. write-ahead audit: the batch's lines are appended to the audit
//           log in one write and fsynced BEFORE any of its files is
//           unlinked (the audit log is the record of every deletion);
//        c. unlinks through Env, folder by folder in inode order (ENOENT =
//           already gone, fine; any other error is counted in report.errors
//           and the file and its row are kept), one info line per folder
//           (per file at trace level). Unpaced, the checks of (a) and these
//           unlinks run on kThreads threads, each a slice of the batch;
//        d. in the background while the next batch goes on: each touched
//           folder is fsynced (one thread); once that is done, the batch's
//           audit rows are added to the store's audit table and the removed
//           files' rows deleted (another thread, one transaction each). At
//           most one batch is in each stage; run() returns only after the
//           last is committed. A crash before that commit leaves
//           rows whose files are gone: the next pass finds them "already
//           gone", audits them again and removes them.
//      Folders left empty are removed bottom-up at the end of the run (never
//      the archive root, never top-level lost+found), each parent fsynced.
//      During step 2 the store's page cache is raised to kPassCacheKib and
//      its WAL checkpoints come every kPassWalPages pages (both restored
//      after), so a batch's pages are written once per commit and the pages
//      every batch touches reach the database file once per checkpoint.
//   3. Removes abandoned temp files (names.h is_temp_name) whose mtime is
//      older than tmp_grace, and empty folders not modified for tmp_grace
//      (left by an interrupted run); younger ones belong to live transfers.
//   4. Records meta "last_prune" (ISO-8601 UTC) and "pruned_total"
//      (cumulative count of files pruned).
//   5. With an object-store tier (a non-null `tier`): the objects past keep
//      go too (ObjectPruner, object_pruner.h), after the files.
//
// Object-store tier (RetentionPolicy::keep_local > 0): the walk of step 2
// starts at now - keep_local, and a local copy on this disk longer than
// keep_local goes only if the store's verified object has its hash
// (ObjectIndex::stored_among, read per chunk): the last copy is never
// removed at keep_local. Those deletions are audited with the policy
// offload_policy_string() and counted in report.offloaded (and removed).
// The clock check of step 1 also looks at the newest object.
//
// Pacing: at most pace_per_s deletions (recordings and temps) per second,
// evenly spaced, never bursting to catch up; 0 = unpaced. `stop` is checked
// before every deletion and during every pacing sleep (slices of <= 20 ms).
// Resumable by construction: the store and the disk are the state, so a
// stopped or crashed run is simply run again.
//
// Dry run: nothing is deleted, written or recorded; removed/bytes count what
// would go (recordings), would_remove lists it (first kDryRunCap rows),
// temps_removed counts temps that would go, dirs_removed stays 0.
//
// Thread safety: one run() at a time per Pruner; call it from a worker
// thread (it sleeps and does blocking I/O). env and store must outlive it.
// run() starts one helper thread per batch for the store work (and, unpaced,
// kThreads - 1 for each check and unlink step) and joins them before
// returning.
// Errors: a store or audit-log failure ends the run with that Status (no
// file is ever deleted without its audit line); per-file errors are counted.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "recsync/env.h"
#include "recsync/status.h"
#include "recsync/units.h"
#include "retention/object_pruner.h"
#include "retention/plan.h"
#include "state/store.h"

namespace recsync {

struct PruneReport {
  uint64_t removed = 0, bytes = 0, held = 0, temps_removed = 0, dirs_removed = 0, errors = 0;
  // Rows left alone because their file is no longer the one indexed (size
  // or mtime differ, or not a regular file); the next archive scan re-indexes.
  uint64_t changed = 0;
  std::string refused;                     // why nothing was pruned ("" = the run went ahead)
  std::vector<RecordingRow> would_remove;  // dry run only, capped at kDryRunCap
  bool stopped = false;                    // the stop flag ended the run early
  // Object-store tier: local copies removed at keep_local (also counted in
  // removed), and those past keep_local kept because no verified object
  // holds them yet.
  uint64_t offloaded = 0, unstored = 0;
  ObjectPruneReport objects;  // objects past keep (step 5)
};

class Pruner {
 public:
  static constexpr size_t kChunk = 10000;  // rows read from the store at a time
  // Deletions per audit fsync, folder fsync and DB transaction when unpaced;
  // a paced run uses pace_per_s (about one batch a second, at least 1).
  static constexpr size_t kBatch = 10000;
  static constexpr size_t kDryRunCap = 10000;
  // The store's page cache during the deletions (restored after): a batch's
  // index and table pages then stay in memory until its commit.
  static constexpr int64_t kPassCacheKib = 16 * 1024;
  // WAL pages between checkpoints during the deletions (64 MiB of 4 KiB
  // pages; SQLite's default 1,000 is put back after).
  static constexpr int64_t kPassWalPages = 16 * 1024;
  // Threads for an unpaced run's identity checks and unlinks (a paced run
  // uses one), and the fewest files worth a thread of their own.
  static constexpr int kThreads = 2;
  static constexpr size_t kMinSlice = 256;
  // With a tier: local copies past keep_local not in the index that one
  // pass may ask the store about (ObjectTierOps::verify_in_store).
  static constexpr size_t kMaxStoreChecks = 5000;

  // archive_root: the archive folder (rows' rel are relative to it).
  // audit_log_path: the JSON-lines audit log (Config::audit_log_path()).
  // tier: the object-store tier, or null (then keep_local is ignored).
  Pruner(Env* env, StateStore* store, std::string archive_root, std::string audit_log_path,
         RetentionPolicy p, int pace_per_s, Millis tmp_grace, ObjectTierOps* tier = nullptr);

  Result<PruneReport> run(bool dry_run, const std::atomic<bool>& stop);

 private:
  Env* env_;
  StateStore* store_;
  std::string root_;
  std::string audit_path_;
  RetentionPolicy policy_;
  int pace_;
  Millis tmp_grace_;
  ObjectTierOps* tier_;
};

}  // namespace recsync
