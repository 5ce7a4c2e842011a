#pragma once
// Retention of the object-store tier: objects of recordings older than
// retention.keep are deleted from the store, every version, unless held,
// audited like local pruning. Part of every retention pass with a tier
// (Pruner::run calls it after the local copies; the clock check that pass
// made covers it: no object is deleted while the clock is implausible or
// behind the newest recording or object).
//
// One run():
//   walks store->objects().older_than(now - keep) in chunks of kChunk rows;
//   skips held objects (a hold on the rel or the recording id, or an Object
//   Lock legal hold we set that is not released yet) and counts them;
//   for each batch of at most kBatch objects: appends the audit lines to
//   the audit log and fsyncs it BEFORE any delete (write-ahead, as for
//   files; policy "retention keep=15d: object s3://bucket/key, every
//   version"), then deletes each object's every version through the tier
//   (paced like file deletions), then adds the audit rows to the store's
//   audit table and removes the deleted objects' rows.
//   A refusal by the store (Object Lock) counts as held; other failures are
//   counted in errors and leave the row for the next pass; kMaxFailures
//   failures in a row end the object part of the pass (the store is down).
// Dry run: nothing deleted or written; counts and lists (kDryRunCap) what
// would go.
//
// Thread safety: one run() at a time, from the retention thread.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "recsync/env.h"
#include "retention/object_tier.h"
#include "retention/plan.h"
#include "state/store.h"

namespace recsync {

struct ObjectPruneReport {
  uint64_t removed = 0, bytes = 0, held = 0, errors = 0;
  std::string last_error;
  std::vector<ObjectRow> would_remove;  // dry run only, capped at kDryRunCap
};

class ObjectPruner {
 public:
  static constexpr size_t kChunk = 1000;
  static constexpr size_t kBatch = 100;
  static constexpr size_t kDryRunCap = 10000;
  static constexpr int kMaxFailures = 5;

  // All must outlive the pruner. pace_per_s: deletions per second, 0 = unpaced.
  ObjectPruner(Env* env, StateStore* store, ObjectTierOps* tier, std::string audit_log_path,
               RetentionPolicy p, int pace_per_s);

  // Deletes (or, dry_run, lists) what is due at `now`; the caller has
  // checked clock_refusal. Errors: the audit log or the store failed.
  Result<ObjectPruneReport> run(WallTime now, const HoldSet& holds, bool dry_run,
                                const std::atomic<bool>& stop);

 private:
  Status delete_batch(const std::vector<ObjectRow>& batch, ObjectPruneReport& rep,
                      const std::atomic<bool>& stop, int& failures);

  Env* env_;
  StateStore* store_;
  ObjectTierOps* tier_;
  std::string audit_path_;
  RetentionPolicy policy_;
  int pace_;
};

}  // namespace recsync
