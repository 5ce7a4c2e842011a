#include "retention/pruner.h"

#include <algorithm>
#include <optional>
#include <set>
#include <thread>

#include "recsync/log.h"
#include "recsync/names.h"
#include "retention/audit_log.h"

namespace recsync {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kSleepSlice = std::chrono::milliseconds(20);

int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<Millis>(t.time_since_epoch()).count();
}

// A row's rel comes from our own database, but a damaged or hand-edited one
// must never make the pruner delete outside the archive.
bool is_safe_rel(const std::string& rel) {
  if (rel.empty() || rel.front() == '/') return false;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string_view part(rel.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

// Evenly spaced deletions: each waits until one interval after the previous
// one; a late caller does not get a burst to catch up.
class Pacer {
 public:
  explicit Pacer(int per_s)
      : interval_(per_s > 0 ? std::chrono::duration_cast<SteadyClock::duration>(
                                  std::chrono::nanoseconds(1'000'000'000LL / per_s))
                            : SteadyClock::duration::zero()) {}
  // False when stop was set (before or during the wait).
  bool wait(const std::atomic<bool>& stop) {
    if (stop.load()) return false;
    if (interval_ == SteadyClock::duration::zero()) return true;
    auto now = SteadyClock::now();
    if (started_) {
      while (now < next_) {
        if (stop.load()) return false;
        std::this_thread::sleep_for(std::min<SteadyClock::duration>(next_ - now, kSleepSlice));
        now = SteadyClock::now();
      }
    }
    started_ = true;
    next_ = std::max(next_, now) + interval_;
    return !stop.load();
  }

 private:
  SteadyClock::duration interval_;
  bool started_ = false;
  SteadyClock::time_point next_{};
};

// Deepest first, so a parent is tried after its children.
struct DeeperFirst {
  bool operator()(const std::string& a, const std::string& b) const {
    auto da = std::count(a.begin(), a.end(), '/'), db = std::count(b.begin(), b.end(), '/');
    return da != db ? da > db : a < b;
  }
};

class PruneRun {
 public:
  PruneRun(Env* env, StateStore* store, const std::string& root, const std::string& audit_path,
           const RetentionPolicy& p, int pace, Millis tmp_grace, bool dry_run,
           const std::atomic<bool>& stop)
      : env_(env),
        store_(store),
        root_(root),
        audit_path_(audit_path),
        policy_(p),
        policy_str_(policy_string(p)),
        tmp_grace_(tmp_grace),
        dry_run_(dry_run),
        stop_(stop),
        pacer_(pace),
        log_(log::get("retention")) {}

  Result<PruneReport> run() {
    const WallTime now = env_->now();
    now_ms_ = to_ms(now);
    auto stats = store_->stats();
    if (!stats) return stats.status();
    rep_.refused = clock_refusal(now, stats->newest_rec_time_ms, policy_);
    if (!rep_.refused.empty()) {
      log_->info("prune refused: {}", rep_.refused);
      return std::move(rep_);
    }
    auto hold_rows = store_->holds();
    if (!hold_rows) return hold_rows.status();
    const HoldSet holds(*hold_rows);

    RECSYNC_RETURN_IF_ERROR(prune_recordings(now, holds));
    if (!stop_.load()) RECSYNC_RETURN_IF_ERROR(sweep_temps());
    if (!dry_run_) RECSYNC_RETURN_IF_ERROR(remove_empty_dirs());
    rep_.stopped = stop_.load();
    if (!dry_run_) RECSYNC_RETURN_IF_ERROR(record_meta());
    log_->info("prune {}: {} recordings ({} bytes) {}, {} held, {} temps, {} folders, {} errors{}",
               dry_run_ ? "dry run" : "done", rep_.removed, rep_.bytes,
               dry_run_ ? "would go" : "removed", rep_.held, rep_.temps_removed, rep_.dirs_removed,
               rep_.errors, rep_.stopped ? " (stopped)" : "");
    return std::move(rep_);
  }

 private:
  Status prune_recordings(WallTime now, const HoldSet& holds) {
    const int64_t cutoff = retention_cutoff_ms(now, policy_);
    int64_t after_time = StateStore::kFirstTime, after_id = 0;
    while (!stop_.load()) {
      auto chunk = store_->older_than(cutoff, after_time, after_id, Pruner::kChunk);
      if (!chunk) return chunk.status();
      if (chunk->empty()) break;
      after_time = chunk->back().rec_time_ms;
      after_id = chunk->back().id;
      PlanResult plan = plan_retention(*chunk, holds, now, policy_);
      rep_.held += plan.held.size();
      if (dry_run_) {
        for (RecordingRow& r : plan.remove) {
          rep_.removed++;
          rep_.bytes += r.size;
          if (rep_.would_remove.size() < Pruner::kDryRunCap)
            rep_.would_remove.push_back(std::move(r));
        }
        continue;
      }
      std::vector<RecordingRow> batch;
      for (RecordingRow& r : plan.remove) {
        if (!is_safe_rel(r.rel)) {
          rep_.errors++;
          log_->error("not pruning {}: path is not inside the archive", r.rel);
          continue;
        }
        batch.push_back(std::move(r));
        if (batch.size() == Pruner::kBatch) {
          RECSYNC_RETURN_IF_ERROR(delete_batch(batch));
          batch.clear();
        }
      }
      if (!batch.empty()) RECSYNC_RETURN_IF_ERROR(delete_batch(batch));
      if (chunk->size() < Pruner::kChunk) break;
    }
    return Status::ok();
  }

  Status delete_batch(const std::vector<RecordingRow>& batch) {
    if (stop_.load()) return Status::ok();
    std::vector<AuditRow> audit;
    audit.reserve(batch.size());
    const int64_t deleted_ms = to_ms(env_->now());
    for (const RecordingRow& r : batch)
      audit.push_back({r.rel, r.size, r.hash, r.rec_time_ms, deleted_ms, policy_str_});
    RECSYNC_RETURN_IF_ERROR(ensure_audit_log());
    RECSYNC_RETURN_IF_ERROR(audit_->append(audit));
    RECSYNC_RETURN_IF_ERROR(store_->append_audit(audit));

    std::set<std::string> touched;
    std::vector<std::string> gone;  // rows removed in one transaction below
    for (const RecordingRow& r : batch) {
      if (!pacer_.wait(stop_)) break;
      Status s = env_->unlink(path_join(root_, r.rel));
      if (!s && s.code() != Status::Code::kNotFound) {
        rep_.errors++;
        log_->warn("prune {}: {}", r.rel, s.to_string());
        continue;
      }
      gone.push_back(r.rel);
      rep_.removed++;
      rep_.bytes += r.size;
      log_->info("pruned {} ({} bytes, recorded {}){}", r.rel, r.size,
                 iso8601_utc_ms(r.rec_time_ms), s ? "" : " (already gone)");
      std::string dir = path_dirname(r.rel);
      if (dir != ".") {
        touched.insert(dir);
        add_dir_chain(dir);
      } else {
        touched.insert("");
      }
    }
    // A crash before this commit leaves rows whose files are gone: the next
    // pass finds them "already gone" and removes them.
    RECSYNC_RETURN_IF_ERROR(store_->remove_recordings(gone));
    // Make the unlinks durable, so a crash cannot bring back a file whose
    // row is gone (the next scan would adopt it and prune it again).
    for (const std::string& d : touched) {
      Status s = env_->sync_dir(d.empty() ? root_ : path_join(root_, d));
      if (!s && s.code() != Status::Code::kNotFound) log_->warn("{}", s.to_string());
    }
    return Status::ok();
  }

  Status sweep_temps() {
    const int64_t grace = tmp_grace_.count();
    std::vector<std::string> stack{""};
    size_t visited = 0;
    while (!stack.empty() && !stop_.load()) {
      std::string rel = std::move(stack.back());
      stack.pop_back();
      const std::string abs = rel.empty() ? root_ : path_join(root_, rel);
      auto entries = env_->list_dir(abs);
      if (!entries) {
        if (entries.status().code() == Status::Code::kNotFound && !rel.empty()) continue;
        rep_.errors++;
        log_->warn("temp sweep: {}", entries.status().to_string());
        continue;
      }
      visited++;
      if (entries->empty() && !rel.empty() && !is_hidden_name(path_basename(rel))) {
        // An empty folder left by an interrupted run; a fresh one may be
        // about to receive a recording, hence the grace.
        auto st = env_->lstat(abs);
        if (st && now_ms_ - st->mtime_ns / 1'000'000 > grace) add_dir_chain(rel);
      }
      for (const DirEntry& e : *entries) {
        const std::string crel = rel.empty() ? e.name : rel + "/" + e.name;
        if (rel.empty() && e.name == "lost+found") continue;
        DirEntry::Type type = e.type;
        std::optional<FileStat> st;
        if (type == DirEntry::Type::kUnknown ||
            (type == DirEntry::Type::kFile && is_temp_name(e.name))) {
          auto r = env_->lstat(path_join(root_, crel));
          if (!r) continue;  // vanished under us
          st = *r;
          type = st->is_dir   ? DirEntry::Type::kDir
                 : st->is_reg ? DirEntry::Type::kFile
                              : DirEntry::Type::kOther;
        }
        if (type == DirEntry::Type::kDir) {
          stack.push_back(crel);
          continue;
        }
        if (type != DirEntry::Type::kFile || !is_temp_name(e.name) || !st) continue;
        int64_t age_ms = now_ms_ - st->mtime_ns / 1'000'000;
        if (age_ms <= grace) continue;
        if (dry_run_) {
          rep_.temps_removed++;
          continue;
        }
        if (!pacer_.wait(stop_)) return Status::ok();
        Status s = env_->unlink(path_join(root_, crel));
        if (!s && s.code() != Status::Code::kNotFound) {
          rep_.errors++;
          log_->warn("temp sweep: {}", s.to_string());
          continue;
        }
        rep_.temps_removed++;
        log_->info("removed abandoned temp {} (age {})", crel, format_span(Millis(age_ms)));
        if (!rel.empty()) add_dir_chain(rel);
      }
    }
    log_->debug("temp sweep visited {} folders", visited);
    return Status::ok();
  }

  // Queues dir and its ancestors (below the root) for an rmdir attempt.
  void add_dir_chain(std::string dir) {
    while (!dir.empty() && dir != "." && dir != "/") {
      if (!dirs_.insert(dir).second) break;  // ancestors already queued
      dir = path_dirname(dir);
    }
  }

  Status remove_empty_dirs() {
    for (const std::string& d : dirs_) {
      if (d == "lost+found") continue;
      Status s = env_->rmdir(path_join(root_, d));
      if (!s) continue;  // not empty (ENOTEMPTY), gone, or busy: leave it
      rep_.dirs_removed++;
      log_->debug("removed empty folder {}", d);
      std::string parent = path_dirname(d);
      Status ss = env_->sync_dir(parent == "." ? root_ : path_join(root_, parent));
      if (!ss) log_->warn("{}", ss.to_string());
    }
    dirs_.clear();
    return Status::ok();
  }

  Status record_meta() {
    RECSYNC_RETURN_IF_ERROR(store_->set_meta("last_prune", iso8601_utc_ms(now_ms_)));
    auto prev = store_->get_meta("pruned_total");
    if (!prev) return prev.status();
    uint64_t total = rep_.removed;
    if (prev->has_value()) {
      try {
        total += std::stoull(**prev);
      } catch (const std::exception&) {
        // A damaged counter restarts from this run rather than failing it.
      }
    }
    return store_->set_meta("pruned_total", std::to_string(total));
  }

  // The audit log is opened on first use, so a run with nothing to delete
  // never creates it.
  Status ensure_audit_log() {
    if (audit_) return Status::ok();
    auto a = AuditLog::open(audit_path_);
    if (!a) return a.status();
    audit_.emplace(std::move(a).value());
    return Status::ok();
  }

  Env* env_;
  StateStore* store_;
  const std::string& root_;
  const std::string& audit_path_;
  const RetentionPolicy policy_;
  const std::string policy_str_;
  const Millis tmp_grace_;
  const bool dry_run_;
  const std::atomic<bool>& stop_;
  Pacer pacer_;
  std::shared_ptr<spdlog::logger> log_;
  int64_t now_ms_ = 0;
  PruneReport rep_;
  std::optional<AuditLog> audit_;
  std::set<std::string, DeeperFirst> dirs_;
};

}  // namespace

Pruner::Pruner(Env* env, StateStore* store, std::string archive_root, std::string audit_log_path,
               RetentionPolicy p, int pace_per_s, Millis tmp_grace)
    : env_(env),
      store_(store),
      root_(std::move(archive_root)),
      audit_path_(std::move(audit_log_path)),
      policy_(p),
      pace_(pace_per_s),
      tmp_grace_(tmp_grace) {}

Result<PruneReport> Pruner::run(bool dry_run, const std::atomic<bool>& stop) {
  PruneRun r(env_, store_, root_, audit_path_, policy_, pace_, tmp_grace_, dry_run, stop);
  return r.run();
}

}  // namespace recsync
