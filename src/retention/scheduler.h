#pragma once
// The retention scheduler: owns the retention thread (rs-retention), the
// policy in force (set again on reload, under its own lock), the request for
// a pass now, dry runs, and the report of the last pass.
//
// Passes: the first one 30 s after start (kFirstPassDelay, so a restart loop
// cannot turn into a pruning loop) and only once the archive has been
// reconciled with the store (set_reconciled()); then every `interval`.
// run_now() asks for a pass as soon as the reconcile is done. Each pass is
// a Pruner run (pruner.h) with the settings in force when it starts.
//
// Clock safety across nodes: with a peer clock source set, each pass (and
// dry run) first asks peer_clock_verdict() (plan.h). A refusal is recorded as
// the pass's report (report.refused, the status alarm); while it says wait
// (just started, a peer not compared yet: at most kPeerClockWait) the pass is
// held back and snapshot().waiting says why. A refused pass (any reason) is
// tried again after kRefusedRetry, or the interval when that is shorter
// (disabled retention: the interval).
//
// Thread safety: every method from any thread. dry_run() blocks (it reads
// the store and stats files): call it off the event loop. stop() joins.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "recsync/env.h"
#include "recsync/stop_flag.h"
#include "retention/pruner.h"
#include "state/store.h"

namespace recsync {

struct RetentionSettings {
  RetentionPolicy policy;                // keep (0 = never prune), clock_tolerance
  Millis interval{3600 * 1000};          // between passes
  int pace = 200;                        // deletions per second, 0 = unpaced
  Millis tmp_grace{24LL * 3600 * 1000};  // abandoned temps older than this go
  std::string audit_log_path;
};

struct RetentionSnapshot {
  RetentionSettings settings;
  int64_t last_prune_ms = 0, next_prune_ms = 0;  // wall; 0 = none yet
  bool running = false;
  std::string waiting;  // why a due pass is held back ("" = it is not)
  PruneReport last;     // of the last finished pass (would_remove empty)
};

class RetentionScheduler {
 public:
  static constexpr Millis kFirstPassDelay{30'000};
  static constexpr Millis kRefusedRetry{300'000};
  // The peers' clocks now (replication's board); called from the retention
  // thread and dry_run()'s caller.
  using PeerClocks = std::function<std::vector<PeerClock>()>;

  // env and store must outlive the scheduler.
  RetentionScheduler(Env* env, StateStore* store, std::string archive_root, RetentionSettings s);
  ~RetentionScheduler();  // stop()s
  RetentionScheduler(const RetentionScheduler&) = delete;
  RetentionScheduler& operator=(const RetentionScheduler&) = delete;

  void start();
  void stop();

  void set_settings(const RetentionSettings& s);  // reload: applies from the next pass
  void set_peer_clocks(PeerClocks f);             // before start()
  // The object-store tier (retention/object_tier.h): its objects are pruned
  // past keep, local copies at keep_local. Set before start(); must outlive
  // the scheduler. Null (the default): no tier.
  void set_object_tier(ObjectTierOps* tier) { tier_ = tier; }
  void set_reconciled();
  void run_now();
  Result<PruneReport> dry_run();
  RetentionSnapshot snapshot() const;

 private:
  void main();
  Pruner make_pruner(const RetentionSettings& s) const;
  PeerClockVerdict peer_verdict(const RetentionPolicy& p) const;

  Env* env_;
  StateStore* store_;
  const std::string root_;
  StopFlag stop_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  RetentionSettings settings_;
  PeerClocks peer_clocks_;
  ObjectTierOps* tier_ = nullptr;
  bool reconciled_ = false, now_requested_ = false, running_ = false;
  std::string waiting_;
  int64_t start_ms_ = 0, last_prune_ms_ = 0, next_prune_ms_ = 0;
  PruneReport last_;
};

}  // namespace recsync
