#include "archive/reconcile.h"

#include "archive/migrate_identity.h"
#include "recsync/clock.h"
#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/thread_name.h"

namespace recsync {
namespace {
// Small batches: each holds the store's lock, which archive workers need.
constexpr size_t kBatch = 1000;
}  // namespace

void ArchiveReconciler::start(const FileFilter& filter, std::function<void()> on_done) {
  thread_ = std::thread([this, f = filter, on_done = std::move(on_done)] {
    name_this_thread("rs-reconcile");
    run(f);
    done_ = true;
    if (on_done) on_done();
  });
}

void ArchiveReconciler::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ArchiveReconciler::run(const FileFilter& filter) {
  auto lg = log::get("state");
  const auto t0 = std::chrono::steady_clock::now();
  auto gen = rec_->begin_scan();
  if (!gen) {
    lg->error("archive reconcile: {}", gen.status().message());
    return;
  }
  std::vector<RecordingRow> batch;
  uint64_t temps = 0;
  walk(filter, "", *gen, batch, temps);
  if (stop_) return;  // a partial scan must not sweep
  if (!batch.empty()) (void)rec_->scan_seen(batch, *gen);
  auto gone = rec_->end_scan(*gen);
  lg->info(
      "archive reconciled: {} recordings on disk, {} stale rows dropped, {} stale temps removed "
      "({:.1f} s)",
      seen_.load(), gone ? *gone : 0, temps,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (placer_ && !stop_) {
    if (Status s = migrate_versioned_copies(env_, store_, placer_, stop_); !s)
      lg->error("identity migration: {} (tried again at the next start)", s.message());
  }
}

void ArchiveReconciler::walk(const FileFilter& filter, const std::string& rel_dir, int64_t gen,
                             std::vector<RecordingRow>& batch, uint64_t& temps) {
  if (stop_) return;
  auto entries = env_->list_dir(rel_dir.empty() ? root_ : path_join(root_, rel_dir));
  if (!entries) return;
  const int64_t start_ns = started_ms_ * 1'000'000;
  for (auto& de : *entries) {
    const std::string rel = rel_dir.empty() ? de.name : rel_dir + "/" + de.name;
    const std::string full = path_join(root_, rel);
    if (is_temp_name(de.name)) {
      // Left by a crash of an earlier run (this run's temps are newer).
      auto st = env_->lstat(full);
      if (st && st->is_reg && st->mtime_ns < start_ns && st->ctime_ns < start_ns &&
          env_->unlink(full))
        temps++;
      continue;
    }
    if (is_hidden_name(de.name)) continue;
    if (de.type == DirEntry::Type::kDir) {
      walk(filter, rel, gen, batch, temps);
      continue;
    }
    if (de.type != DirEntry::Type::kFile && de.type != DirEntry::Type::kUnknown) continue;
    if (!filter.matches(rel)) continue;
    auto st = env_->lstat(full);
    if (!st || !st->is_reg) {
      if (st && st->is_dir) walk(filter, rel, gen, batch, temps);
      continue;
    }
    const int64_t rec_ms = st->mtime_ns / 1'000'000;
    RecordingRow row = make_recording_row(rel, de.name, st->size, "", rec_ms, rec_ms, kLocalOrigin);
    if (auto q = parse_qualified_rel(rel)) {
      row = make_recording_row(rel, path_basename(q->origin_rel), st->size, "", rec_ms, rec_ms,
                               q->origin == self_ ? kLocalOrigin : q->origin);
      row.origin_rel = q->origin_rel;
    }
    batch.push_back(std::move(row));
    seen_++;
    if (batch.size() >= kBatch) {
      if (Status s = rec_->scan_seen(batch, gen); !s)
        log::get("state")->error("reconcile: {}", s.message());
      batch.clear();
    }
  }
}

}  // namespace recsync
