#include "retention/scheduler.h"

#include <fmt/format.h>

#include "recsync/clock.h"
#include "recsync/log.h"
#include "recsync/thread_name.h"

namespace recsync {

RetentionScheduler::RetentionScheduler(Env* env, StateStore* store, std::string archive_root,
                                       RetentionSettings s)
    : env_(env), store_(store), root_(std::move(archive_root)), settings_(std::move(s)) {}

RetentionScheduler::~RetentionScheduler() { stop(); }

void RetentionScheduler::start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    start_ms_ = to_ms(env_->now());
    next_prune_ms_ = start_ms_ + kFirstPassDelay.count();
  }
  thread_ = std::thread([this] { main(); });
}

void RetentionScheduler::stop() {
  stop_.stop();
  // Taking the lock before notifying means the thread is either waiting (and
  // wakes) or has not checked the flag yet (and sees it): no lost wakeup.
  { std::lock_guard<std::mutex> l(mu_); }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RetentionScheduler::set_settings(const RetentionSettings& s) {
  {
    std::lock_guard<std::mutex> l(mu_);
    settings_ = s;
  }
  cv_.notify_all();
}

void RetentionScheduler::set_peer_clocks(PeerClocks f) { peer_clocks_ = std::move(f); }

PeerClockVerdict RetentionScheduler::peer_verdict(const RetentionPolicy& p) const {
  if (!peer_clocks_) return {};
  return peer_clock_verdict(peer_clocks_(), to_ms(env_->now()), start_ms_, p);
}

void RetentionScheduler::set_reconciled() {
  {
    std::lock_guard<std::mutex> l(mu_);
    reconciled_ = true;
  }
  cv_.notify_all();
}

void RetentionScheduler::run_now() {
  {
    std::lock_guard<std::mutex> l(mu_);
    now_requested_ = true;
  }
  cv_.notify_all();
}

Pruner RetentionScheduler::make_pruner(const RetentionSettings& s) const {
  return Pruner(env_, store_, root_, s.audit_log_path, s.policy, s.pace, s.tmp_grace, tier_);
}

Result<PruneReport> RetentionScheduler::dry_run() {
  RetentionSettings s;
  {
    std::lock_guard<std::mutex> l(mu_);
    s = settings_;
  }
  PeerClockVerdict v = peer_verdict(s.policy);
  if (!v.refusal.empty() || !v.waiting.empty()) {
    PruneReport r;
    r.refused = v.refusal.empty() ? v.waiting : v.refusal;
    return r;
  }
  std::atomic<bool> no_stop{false};
  return make_pruner(s).run(true, no_stop);
}

RetentionSnapshot RetentionScheduler::snapshot() const {
  std::lock_guard<std::mutex> l(mu_);
  RetentionSnapshot r;
  r.settings = settings_;
  r.last_prune_ms = last_prune_ms_;
  r.next_prune_ms = next_prune_ms_;
  r.running = running_;
  r.waiting = waiting_;
  r.last = last_;
  return r;
}

void RetentionScheduler::main() {
  name_this_thread("rs-retention");
  auto lg = log::get("retention");
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    // A requested pass waits for the reconcile (set_reconciled() wakes us).
    cv_.wait_for(l, std::chrono::seconds(1),
                 [&] { return stop_.stopped() || (now_requested_ && reconciled_); });
    if (stop_.stopped()) return;
    if (!reconciled_) continue;
    if (!now_requested_ && to_ms(env_->now()) < next_prune_ms_) continue;
    const RetentionSettings s = settings_;
    l.unlock();
    const PeerClockVerdict v = peer_verdict(s.policy);
    l.lock();
    if (!v.waiting.empty()) {  // checked again in a second (the wait above)
      if (waiting_.empty()) lg->info("retention pass held back: {}", v.waiting);
      waiting_ = v.waiting;
      continue;
    }
    waiting_.clear();
    now_requested_ = false;
    running_ = true;
    l.unlock();
    Result<PruneReport> rep = PruneReport{};
    if (v.refusal.empty())
      rep = make_pruner(s).run(false, stop_.flag());
    else
      rep->refused = v.refusal;
    l.lock();
    running_ = false;
    last_prune_ms_ = to_ms(env_->now());
    next_prune_ms_ = last_prune_ms_ + settings_.interval.count();
    if (!rep) {
      lg->error("retention pass failed: {}", rep.status().message());
      continue;
    }
    last_ = std::move(rep).value();
    if (!last_.refused.empty()) {
      if (s.policy.keep.count() > 0)  // a clock can be fixed; disabled retention stays so
        next_prune_ms_ = last_prune_ms_ + std::min(settings_.interval, kRefusedRetry).count();
      lg->warn("retention refused: {}", last_.refused);
    } else
      lg->info("retention pass: {} pruned ({} bytes), {} held, {} errors{}", last_.removed,
               last_.bytes, last_.held, last_.errors,
               tier_ ? fmt::format("; object store: {} deleted, {} held, {} errors",
                                   last_.objects.removed, last_.objects.held, last_.objects.errors)
                     : std::string());
  }
}

}  // namespace recsync
