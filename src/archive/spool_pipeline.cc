#include "archive/spool_pipeline.h"

#include <algorithm>

#include "recsync/backoff.h"
#include "recsync/clock.h"
#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/thread_name.h"
#include "watch/scanner.h"

namespace recsync {
namespace {

// Disk errors that mean "the archive cannot take files now" get an alarm text
// an operator can act on (see recsyncd(8), ALARMS).
std::string archive_alarm_text(const Status& s) {
  switch (s.err()) {
    case ENOSPC:
    case EDQUOT:
      return "archive full: " + s.message();
    case EROFS:
      return "archive read-only: " + s.message();
    default:
      return "archive I/O error: " + s.message();
  }
}

}  // namespace

SpoolPipeline::SpoolPipeline(Env* env, ArchiveStep step, SpoolPipelineOptions opt,
                             std::function<int64_t()> steady_ms)
    : env_(env),
      step_(std::move(step)),
      opt_(std::move(opt)),
      steady_ms_(std::move(steady_ms)),
      lga_(log::get("archive")),
      lgw_(log::get("watch")),
      filter_(std::make_unique<FileFilter>(opt_.include, opt_.exclude)),
      agg_(opt_.settle) {}

SpoolPipeline::~SpoolPipeline() { stop(); }

void SpoolPipeline::start(std::function<void()> results_ready) {
  results_ready_ = std::move(results_ready);
  for (int i = 0; i < opt_.workers; ++i) workers_.emplace_back([this] { worker_main(); });
}

void SpoolPipeline::stop() {
  stopping_ = true;
  {
    std::lock_guard<std::mutex> l(qmu_);
    queue_.clear();  // not started: they stay in the spool for next time
    workers_stop_ = true;
  }
  qcv_.notify_all();
  for (auto& t : workers_) t.join();
  if (!workers_.empty()) drain_results();
  workers_.clear();
}

void SpoolPipeline::on_event(const std::string& rel) { take_up(rel, std::nullopt, std::nullopt); }

void SpoolPipeline::take_up(const std::string& rel, std::optional<int64_t> due_ms,
                            std::optional<uint64_t> size) {
  if (stopping_ || !filter_->matches(rel)) return;
  auto [it, fresh] = entries_.try_emplace(rel);
  Entry& e = it->second;
  if (fresh) e.first_seen_ms = to_ms(env_->now());
  if (size) {
    e.size = *size;
  } else if (auto st = env_->lstat(path_join(opt_.spool_root, rel))) {
    e.size = st->size;  // an event: one lstat on tmpfs is cheap
  }
  if (e.in_flight) {
    e.dirty = true;
    return;
  }
  if (due_ms)
    agg_.on_found(rel, *due_ms);
  else
    agg_.on_event(rel, steady_ms_());
}

void SpoolPipeline::rescan(const std::string& sub) {
  const int64_t now_wall = to_ms(env_->now());
  const int64_t now = steady_ms_();
  const int64_t settle = agg_.settle().count();
  std::string root = sub.empty() ? opt_.spool_root : path_join(opt_.spool_root, sub);
  Status s = scan_tree(env_, root, *filter_, [&](const std::string& r, const FileStat& st) {
    std::string rel = sub.empty() ? r : path_join(sub, r);
    int64_t quiet_at = st.mtime_ns / 1'000'000 + settle;
    take_up(rel, now + std::max<int64_t>(0, quiet_at - now_wall), st.size);
  });
  if (!s) lgw_->warn("scan of {} incomplete: {}", root, s.message());
}

void SpoolPipeline::dispatch_due() {
  if (stopping_) return;
  auto due = agg_.take_due(steady_ms_());
  if (due.empty()) return;
  {
    std::lock_guard<std::mutex> l(qmu_);
    for (auto& rel : due) {
      auto it = entries_.find(rel);
      if (it == entries_.end()) continue;
      if (it->second.in_flight) {
        it->second.dirty = true;
        continue;
      }
      it->second.in_flight = true;
      in_flight_++;
      queue_.push_back({rel, agg_.settle()});
    }
  }
  qcv_.notify_all();
}

void SpoolPipeline::worker_main() {
  name_this_thread("rs-archive");
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> l(qmu_);
      qcv_.wait(l, [&] { return workers_stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Result r{job.rel, step_(job.rel, job.settle)};
    {
      std::lock_guard<std::mutex> l(qmu_);
      results_.push_back(std::move(r));
    }
    if (results_ready_) results_ready_();
  }
}

void SpoolPipeline::drain_results() {
  std::vector<Result> batch;
  {
    std::lock_guard<std::mutex> l(qmu_);
    batch.swap(results_);
  }
  for (auto& r : batch) apply(r);
  if (!batch.empty()) dispatch_due();
}

// The archive alarm stands while any recording is still failing: one small
// file fitting into a nearly full disk does not mean the archive is fine.
void SpoolPipeline::maybe_clear_alarm() {
  if (alarm_.empty()) return;
  for (auto& [rel, e] : entries_)
    if (!e.last_error.empty()) return;
  lga_->info("archive is taking files again; alarm cleared ({})", alarm_);
  alarm_.clear();
}

void SpoolPipeline::on_failed(Entry& e, const std::string& rel, const Status& s, int64_t now) {
  e.attempts++;
  failures_++;
  e.last_error = s.message();
  std::string alarm = archive_alarm_text(s);
  // One error line per kind of trouble, not per file and retry.
  std::string kind = alarm.substr(0, alarm.find(':'));
  if (alarm_.rfind(kind, 0) != 0) {
    lga_->error("{} (spool copies kept, retrying with backoff)", alarm);
  } else {
    lga_->debug("{} (retrying)", alarm);
  }
  alarm_ = alarm;
  const Backoff retry{1000, opt_.retry_max.count(), 0.2};
  agg_.on_found(rel, now + retry.delay_ms(e.attempts - 1, rng_));
}

void SpoolPipeline::apply(Result& r) {
  using K = ArchiveOutcome::Kind;
  auto it = entries_.find(r.rel);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  e.in_flight = false;
  in_flight_--;
  const ArchiveOutcome& o = r.outcome;
  const int64_t now = steady_ms_();
  switch (o.kind) {
    case K::kArchived:
    case K::kAlreadyArchived:
      archived_files_++;
      archived_bytes_ += o.row.size;
      last_archived_ms_ = to_ms(env_->now());
      lga_->info("{} {} -> {} ({} bytes, {}, {:.0f} ms)",
                 o.kind == K::kArchived ? "archived" : "already archived", r.rel, o.row.rel,
                 o.row.size, o.row.hash, o.copy_ms);
      [[fallthrough]];
    case K::kVanished:
    case K::kSkipped:
      agg_.forget(r.rel);
      entries_.erase(it);
      maybe_clear_alarm();
      return;
    case K::kNotSettled:
      agg_.on_found(r.rel, now + std::max<int64_t>(0, o.retry_at_ms - to_ms(env_->now())));
      break;
    case K::kWriterBusy: {
      // The writer's close brings an IN_CLOSE_WRITE; this poll is the backstop.
      e.attempts++;
      const Backoff busy{std::max<int64_t>(agg_.settle().count(), 500), 30'000, 0.2};
      agg_.on_found(r.rel, now + busy.delay_ms(e.attempts, rng_));
      lga_->debug("{} still open for writing; waiting", r.rel);
      break;
    }
    case K::kChanged:
      agg_.on_event(r.rel, now);
      break;
    case K::kFailed:
      on_failed(e, r.rel, o.status, now);
      break;
  }
  if (e.dirty) {
    e.dirty = false;
    agg_.on_event(r.rel, now);
  }
}

void SpoolPipeline::reload(const std::vector<std::string>& include,
                           const std::vector<std::string>& exclude, Millis settle,
                           Millis retry_max) {
  filter_ = std::make_unique<FileFilter>(include, exclude);
  agg_.set_settle(settle);
  opt_.retry_max = retry_max;
}

SpoolSnapshot SpoolPipeline::snapshot() const {
  SpoolSnapshot s;
  s.files = entries_.size();
  for (auto& [rel, e] : entries_) {
    s.bytes += e.size;
    if (s.oldest_ms == 0 || e.first_seen_ms < s.oldest_ms) s.oldest_ms = e.first_seen_ms;
    if (!e.last_error.empty()) s.failing++;
  }
  s.in_flight = in_flight_;
  s.archived_files = archived_files_;
  s.archived_bytes = archived_bytes_;
  s.failures = failures_;
  s.last_archived_ms = last_archived_ms_;
  s.archive_alarm = alarm_;
  return s;
}

std::vector<SpoolItem> SpoolPipeline::find(const std::string& id) const {
  std::vector<SpoolItem> out;
  for (auto& [rel, e] : entries_)
    if (rel == id || recording_id(path_basename(rel)) == id)
      out.push_back({rel, e.size, e.in_flight, e.last_error});
  return out;
}

}  // namespace recsync
