#include "replication/bandwidth.h"

#include <ctime>

#include "recsync/log.h"
#include "recsync/units.h"

namespace recsync::replication {

BandwidthState bandwidth_at(const BandwidthSettings& s, int minute) {
  if (auto r = s.schedule.rate_at(minute)) return {*r, "schedule"};
  return {s.bandwidth_bps, "config"};
}

BandwidthControl::BandwidthControl(Governor* gov, BandwidthSettings s)
    : gov_(gov), settings_(std::move(s)) {
  state_ = {gov_->rate(), "config"};
}

void BandwidthControl::apply(WallTime now, const char* why) {
  const time_t t = std::chrono::system_clock::to_time_t(now);
  struct tm lt {};
  int minute = 0;
  if (localtime_r(&t, &lt)) minute = lt.tm_hour * 60 + lt.tm_min;
  std::unique_lock<std::mutex> l(mu_);
  const BandwidthState next = bandwidth_at(settings_, minute);
  const bool changed = next.cap_bps != state_.cap_bps;
  state_ = next;
  const std::string sched = settings_.schedule_text;
  l.unlock();
  if (!changed) return;
  gov_->set_rate(next.cap_bps, 0, steady_ns());
  log::get("replication")
      ->info("{}: replication bandwidth cap now {}{}", why,
             next.cap_bps ? format_bytes(next.cap_bps) + "/s" : std::string("none"),
             sched.empty() ? "" : " (schedule \"" + sched + "\")");
}

void BandwidthControl::reload(BandwidthSettings s, WallTime now) {
  {
    std::lock_guard<std::mutex> l(mu_);
    settings_ = std::move(s);
  }
  apply(now, "SIGHUP");
}

BandwidthState BandwidthControl::state() const {
  std::lock_guard<std::mutex> l(mu_);
  return state_;
}

BandwidthSettings BandwidthControl::settings() const {
  std::lock_guard<std::mutex> l(mu_);
  return settings_;
}

}  // namespace recsync::replication
