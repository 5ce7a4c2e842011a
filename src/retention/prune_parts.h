#pragma once
// Pieces of one retention pass, private to pruner.cc (split out to keep
// that file readable): the deletion pacer, the background folder syncer
// and store writer, the store tuning for a pass, the slicing of a batch over
// threads, a folder-handle cache and path helpers. Each class says its
// threads; all belong to one PruneRun.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "recsync/env.h"
#include "recsync/log.h"
#include "retention/pruner.h"
#include "state/store.h"

namespace recsync::prune_detail {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kSleepSlice = std::chrono::milliseconds(20);

double secs(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

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

// Makes a batch's unlinks durable on a background thread: fsyncs each
// folder the batch touched (one ext4 journal commit, mostly a wait for the
// disk) while the pruner goes on with the next batch. wait() must return
// before the batch's rows leave the store, so a crash cannot bring back a
// file whose row is gone. A folder that fails to sync is warned about, not
// fatal (at worst the file comes back after a crash; the next scan adopts it
// and the next pass prunes it again).
class FolderSyncer {
 public:
  FolderSyncer(Env* env, std::shared_ptr<spdlog::logger> log) : env_(env), log_(std::move(log)) {}
  ~FolderSyncer() { wait(); }
  FolderSyncer(const FolderSyncer&) = delete;
  FolderSyncer& operator=(const FolderSyncer&) = delete;

  void start(std::vector<std::string> dirs) {
    wait();
    thread_ = std::thread([this, dirs = std::move(dirs)] {
      auto t0 = SteadyClock::now();
      for (const std::string& d : dirs) {
        Status s = env_->sync_dir(d);
        if (!s && s.code() != Status::Code::kNotFound) log_->warn("{}", s.to_string());
      }
      busy_ += SteadyClock::now() - t0;
    });
  }
  void wait() {
    if (thread_.joinable()) thread_.join();
  }
  SteadyClock::duration busy() const { return busy_; }  // after wait()

 private:
  Env* env_;
  std::shared_ptr<spdlog::logger> log_;
  std::thread thread_;
  SteadyClock::duration busy_{};
};

// Runs a batch's store work (its audit-table rows, then the removal of its
// recordings' rows, each one transaction) on one background thread while
// the pruner goes on with the next batch's checks and unlinks: on a 2-core
// node the SQLite work and the unlinks then overlap. At most one batch is in
// flight, so memory stays at two batches. submit() and finish() return the
// previous batch's result; a failure ends the run at the next call.
class StoreWriter {
 public:
  explicit StoreWriter(StateStore* store) : store_(store) {}
  ~StoreWriter() { (void)finish(); }
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  Status submit(std::vector<AuditRow> audit, std::vector<std::string> gone) {
    Status prev = finish();
    if (!prev) return prev;
    thread_ = std::thread([this, audit = std::move(audit), gone = std::move(gone)] {
      auto t0 = SteadyClock::now();
      Status s = store_->audit().append(audit);
      if (s) s = store_->recordings().remove_many(gone);
      busy_ += SteadyClock::now() - t0;
      result_ = std::move(s);
    });
    return Status::ok();
  }
  // Waits for the batch in flight; its result.
  Status finish() {
    if (thread_.joinable()) thread_.join();
    Status s = std::move(result_);
    result_ = Status::ok();
    return s;
  }
  SteadyClock::duration busy() const { return busy_; }

 private:
  StateStore* store_;
  std::thread thread_;
  Status result_ = Status::ok();
  SteadyClock::duration busy_{};
};

// Tunes the store for the recording deletions and puts the old settings back
// when done, also on an error return: a larger page cache (a batch's index
// and table pages stay in memory until its commit; lowering it after
// releases the memory) and a longer WAL between checkpoints (the index
// pages every batch dirties again reach the database file once).
class PassTuning {
 public:
  PassTuning(StateStore* store, int64_t cache_kib, int64_t wal_pages) : store_(store) {
    if (cache_kib > 0) {
      auto old = store_->db().cache_kib();
      if (old && *old < cache_kib && store_->db().set_cache_kib(cache_kib)) old_kib_ = *old;
    }
    if (wal_pages > 0) {
      auto old = store_->db().wal_autocheckpoint();
      if (old && *old > 0 && *old < wal_pages && store_->db().set_wal_autocheckpoint(wal_pages))
        old_wal_ = *old;
    }
  }
  ~PassTuning() {
    if (old_kib_ > 0) (void)store_->db().set_cache_kib(old_kib_);
    if (old_wal_ > 0) (void)store_->db().set_wal_autocheckpoint(old_wal_);
  }
  PassTuning(const PassTuning&) = delete;
  PassTuning& operator=(const PassTuning&) = delete;

 private:
  StateStore* store_;
  int64_t old_kib_ = 0, old_wal_ = 0;
};

// Runs fn(begin, end) over [0, n) split into `threads` contiguous slices,
// one per thread (the caller runs the first). Small n stays on the caller.
template <typename Fn>
void for_slices(size_t n, int threads, Fn fn) {
  if (threads <= 1 || n < 2 * Pruner::kMinSlice) {
    fn(size_t{0}, n);
    return;
  }
  const size_t k = std::min<size_t>(static_cast<size_t>(threads), n / Pruner::kMinSlice);
  std::vector<std::thread> helpers;
  helpers.reserve(k - 1);
  for (size_t i = 1; i < k; i++)
    helpers.emplace_back([&fn, i, k, n] { fn(n * i / k, n * (i + 1) / k); });
  fn(size_t{0}, n / k);
  for (std::thread& t : helpers) t.join();
}

// The folder handle for a run of entries in the same folder (rows come
// sorted or at least grouped by folder), so each folder's path is walked
// once per batch and thread, not once per file.
class DirCache {
 public:
  DirCache(Env* env, const std::string& root) : env_(env), root_(root) {}
  // The handle for rel folder `dir` ("" = the root), or why it cannot be
  // opened (kNotFound when the folder is gone: its files are gone too).
  Result<Dir*> get(std::string_view dir) {
    if (!opened_ || dir != dir_) {
      opened_ = true;
      dir_.assign(dir);
      auto d = env_->open_dir(dir.empty() ? root_ : path_join(root_, dir_));
      handle_.reset();
      err_ = Status::ok();
      if (d)
        handle_ = std::move(d).value();
      else
        err_ = d.status();
    }
    if (!handle_) return err_;
    return handle_.get();
  }

 private:
  Env* env_;
  const std::string& root_;
  bool opened_ = false;
  std::string dir_;
  std::unique_ptr<Dir> handle_;
  Status err_ = Status::ok();
};

// "a/b/c.wav" -> "a/b"; "c.wav" -> "" (the root).
std::string_view dir_part(std::string_view rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : rel.substr(0, slash);
}
// "a/b/c.wav" -> "c.wav".
std::string base_part(const std::string& rel) {
  size_t slash = rel.rfind('/');
  return slash == std::string::npos ? rel : rel.substr(slash + 1);
}

}  // namespace recsync::prune_detail
