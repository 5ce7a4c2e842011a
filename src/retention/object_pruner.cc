#include "retention/object_pruner.h"

#include <chrono>
#include <limits>
#include <optional>
#include <thread>

#include "recsync/log.h"
#include "retention/audit_log.h"

namespace recsync {
namespace {

bool held_by(const HoldSet& holds, const ObjectRow& o) {
  RecordingRow r;
  r.rel = o.rel;
  r.name = o.name;
  return o.legal_hold || holds.held(r);
}

// Sleeps until one interval after the previous deletion (no bursts to catch
// up); false when stop was set. Slices of 20 ms keep stop prompt.
bool pace_wait(std::chrono::steady_clock::time_point& next, int per_s,
               const std::atomic<bool>& stop) {
  if (stop.load()) return false;
  if (per_s <= 0) return true;
  auto now = std::chrono::steady_clock::now();
  while (now < next) {
    if (stop.load()) return false;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(next - now, std::chrono::milliseconds(20)));
    now = std::chrono::steady_clock::now();
  }
  next = std::max(next, now) + std::chrono::nanoseconds(1'000'000'000LL / per_s);
  return !stop.load();
}

}  // namespace

ObjectPruner::ObjectPruner(Env* env, StateStore* store, ObjectTierOps* tier,
                           std::string audit_log_path, RetentionPolicy p, int pace_per_s)
    : env_(env),
      store_(store),
      tier_(tier),
      audit_path_(std::move(audit_log_path)),
      policy_(p),
      pace_(pace_per_s) {}

Result<ObjectPruneReport> ObjectPruner::run(WallTime now, const HoldSet& holds, bool dry_run,
                                            const std::atomic<bool>& stop) {
  ObjectPruneReport rep;
  if (policy_.keep.count() <= 0) return rep;  // objects are kept forever
  const int64_t cutoff = retention_cutoff_ms(now, policy_);
  int64_t after_time = std::numeric_limits<int64_t>::min();
  std::string after_rel;
  int failures = 0;
  std::vector<ObjectRow> batch;
  while (!stop.load() && failures < kMaxFailures) {
    auto chunk = store_->objects().older_than(cutoff, after_time, after_rel, kChunk);
    if (!chunk) return chunk.status();
    if (chunk->empty()) break;
    after_time = chunk->back().rec_time_ms;
    after_rel = chunk->back().rel;
    for (ObjectRow& o : *chunk) {
      if (held_by(holds, o)) {
        rep.held++;
        continue;
      }
      if (dry_run) {
        rep.removed++;
        rep.bytes += o.size;
        if (rep.would_remove.size() < kDryRunCap) rep.would_remove.push_back(std::move(o));
        continue;
      }
      batch.push_back(std::move(o));
      if (batch.size() >= kBatch) {
        RECSYNC_RETURN_IF_ERROR(delete_batch(batch, rep, stop, failures));
        batch.clear();
      }
    }
    if (chunk->size() < kChunk) break;
  }
  if (!batch.empty() && failures < kMaxFailures)
    RECSYNC_RETURN_IF_ERROR(delete_batch(batch, rep, stop, failures));
  if (rep.removed || rep.errors || rep.held)
    log::get("retention")
        ->info("object store: {} objects ({} bytes) {}, {} held, {} errors{}", rep.removed,
               rep.bytes, dry_run ? "would go" : "deleted (every version)", rep.held, rep.errors,
               rep.last_error.empty() ? "" : " (last: " + rep.last_error + ")");
  return rep;
}

Status ObjectPruner::delete_batch(const std::vector<ObjectRow>& batch, ObjectPruneReport& rep,
                                  const std::atomic<bool>& stop, int& failures) {
  if (stop.load()) return Status::ok();
  auto lg = log::get("retention");
  const std::string policy = policy_string(policy_);
  const int64_t deleted_ms = to_ms(env_->now());
  std::vector<AuditRow> audit;
  for (const ObjectRow& o : batch)
    audit.push_back({o.rel, o.size, o.hash, o.rec_time_ms, deleted_ms,
                     policy + ": object " + tier_->where(o) + ", every version"});
  // Write-ahead: on record before the store is asked to delete anything.
  auto log_file = AuditLog::open(env_, audit_path_);
  if (!log_file) return log_file.status();
  RECSYNC_RETURN_IF_ERROR(log_file->append(audit));

  std::vector<AuditRow> done_audit;
  auto next = std::chrono::steady_clock::now();
  for (size_t i = 0; i < batch.size() && failures < kMaxFailures; ++i) {
    if (!pace_wait(next, pace_, stop)) break;
    const ObjectRow& o = batch[i];
    Status s = tier_->delete_every_version(o);
    if (s.code() == Status::Code::kRefused) {
      rep.held++;
      lg->warn("object {} is protected by Object Lock; kept: {}", tier_->where(o), s.message());
      continue;
    }
    if (!s) {
      rep.errors++;
      rep.last_error = s.message();
      failures++;
      lg->warn("object {}: {}", tier_->where(o), s.message());
      continue;
    }
    failures = 0;
    RECSYNC_RETURN_IF_ERROR(store_->objects().remove(o.rel));
    rep.removed++;
    rep.bytes += o.size;
    done_audit.push_back(audit[i]);
    lg->debug("deleted object {} (every version)", tier_->where(o));
  }
  if (failures >= kMaxFailures)
    lg->warn("object store: {} deletions failed in a row; the rest waits for the next pass",
             failures);
  return store_->audit().append(done_audit);
}

}  // namespace recsync
