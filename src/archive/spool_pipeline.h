#pragma once
// The spool pipeline: everything between "the watcher saw a file" and "it is
// archived". It owns the spool work set (one entry per recording waiting or
// being archived, keyed by its spool path, so nothing is taken twice), the
// aggregator that decides when a file is finished (settle), the include /
// exclude filter, the pool of archive workers, the retry machine (backoff
// with jitter) and the archive alarm.
//
// An entry is taken up when due: a worker runs the archive step (the
// Archiver in the daemon, a fake in tests) and posts the outcome; the owner
// thread applies it on drain_results():
//   archived / already archived / vanished / skipped: the entry goes;
//   not settled: due again when it will be quiet;
//   writer busy: due again after a backoff (settle .. 30 s, +20 % jitter);
//     the writer's close brings an event anyway, this is the backstop;
//   changed: due again after settle;
//   failed: the archive alarm is raised (one error line per kind of
//     trouble: full, read-only, I/O), due again after a backoff (1 s ..
//     retry_max, +20 % jitter). The alarm stands while any entry is failing.
// An event for a file being archived marks it to be looked at again after.
//
// Threads: every method except the workers' own loop runs on ONE owner
// thread (the daemon's libuv loop). Workers call `results_ready` (from their
// thread) when outcomes wait; the owner then calls drain_results(). Times
// come from the Env clock (wall) and `steady_ms` (deadlines), both
// replaceable in tests.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "archive/archiver.h"
#include "recsync/env.h"
#include "recsync/log.h"
#include "recsync/units.h"
#include "watch/aggregator.h"
#include "watch/file_filter.h"

namespace recsync {

struct SpoolPipelineOptions {
  std::string spool_root;
  std::vector<std::string> include = {"*.wav"};
  std::vector<std::string> exclude;
  Millis settle{500};
  int workers = 2;
  Millis retry_max{60000};  // backoff cap for failing copies
};

// Archives one due spool file (Archiver::archive_one). Runs on a worker.
using ArchiveStep = std::function<ArchiveOutcome(const std::string& spool_rel, Millis settle)>;

struct SpoolSnapshot {
  size_t files = 0;  // waiting or being archived
  uint64_t bytes = 0;
  int64_t oldest_ms = 0;  // wall time the oldest entry was first seen; 0 = none
  size_t in_flight = 0, failing = 0;
  uint64_t archived_files = 0, archived_bytes = 0, failures = 0;  // since start
  int64_t last_archived_ms = 0;                                   // wall; 0 = none
  std::string archive_alarm;                                      // "" = none; else critical
};

struct SpoolItem {
  std::string rel;
  uint64_t size = 0;
  bool in_flight = false;
  std::string last_error;
};

class SpoolPipeline {
 public:
  SpoolPipeline(Env* env, ArchiveStep step, SpoolPipelineOptions opt,
                std::function<int64_t()> steady_ms);
  ~SpoolPipeline();  // stop()s
  SpoolPipeline(const SpoolPipeline&) = delete;
  SpoolPipeline& operator=(const SpoolPipeline&) = delete;

  // Starts the workers; they call results_ready after posting an outcome.
  void start(std::function<void()> results_ready);
  // Stops taking work (queued files stay in the spool for next time), waits
  // for the workers (copies are short) and applies their last outcomes.
  void stop();

  // A watcher event on rel (close-write, moved-in): one lstat for its size.
  void on_event(const std::string& rel);
  // Scans the spool (or its sub folder), taking up every matching file, due
  // when quiet for settle after its mtime.
  void rescan(const std::string& sub);
  // Hands every due entry to the workers.
  void dispatch_due();
  // Applies the workers' outcomes, then dispatches what is due.
  void drain_results();
  // SIGHUP: new filter, settle (for files armed from now on) and backoff cap.
  void reload(const std::vector<std::string>& include, const std::vector<std::string>& exclude,
              Millis settle, Millis retry_max);

  SpoolSnapshot snapshot() const;
  // Entries whose path, or recording id (names.h), is id.
  std::vector<SpoolItem> find(const std::string& id) const;
  const FileFilter& filter() const { return *filter_; }

 private:
  struct Entry {
    bool in_flight = false;
    bool dirty = false;  // an event arrived while in flight: look again after
    int attempts = 0;    // consecutive failed or busy attempts (backoff)
    uint64_t size = 0;
    int64_t first_seen_ms = 0;
    std::string last_error;
  };
  struct Job {
    std::string rel;
    Millis settle;
  };
  struct Result {
    std::string rel;
    ArchiveOutcome outcome;
  };

  // due_ms and size come from a scan; an event passes neither.
  void take_up(const std::string& rel, std::optional<int64_t> due_ms, std::optional<uint64_t> size);
  void worker_main();
  void apply(Result& r);
  void on_failed(Entry& e, const std::string& rel, const Status& s, int64_t now);
  void maybe_clear_alarm();

  Env* env_;
  ArchiveStep step_;
  SpoolPipelineOptions opt_;
  std::function<int64_t()> steady_ms_;
  std::shared_ptr<spdlog::logger> lga_, lgw_;
  std::unique_ptr<FileFilter> filter_;
  Aggregator agg_;
  bool stopping_ = false;
  std::mt19937 rng_{std::random_device{}()};

  // The work set (owner thread).
  std::unordered_map<std::string, Entry> entries_;
  size_t in_flight_ = 0;
  uint64_t archived_files_ = 0, archived_bytes_ = 0, failures_ = 0;
  int64_t last_archived_ms_ = 0;
  std::string alarm_;

  // Worker queue and outcomes.
  std::mutex qmu_;
  std::condition_variable qcv_;
  std::deque<Job> queue_;
  std::vector<Result> results_;
  bool workers_stop_ = false;
  std::vector<std::thread> workers_;
  std::function<void()> results_ready_;
};

}  // namespace recsync
