#include "replication/bandwidth.h"

#include <fmt/format.h>

#include <ctime>

#include "recsync/log.h"
#include "recsync/units.h"

namespace recsync::replication {

BandwidthState bandwidth_at(const BandwidthSettings& s, int minute,
                            const std::optional<BandwidthOverride>& o, int64_t now_ms) {
  BandwidthState st;
  if (auto r = s.schedule.rate_at(minute)) {
    st.base_bps = *r;
    st.base_source = "schedule";
  } else {
    st.base_bps = s.bandwidth_bps;
    st.base_source = "config";
  }
  st.cap_bps = st.base_bps;
  st.source = st.base_source;
  if (o && !override_expired(*o, now_ms)) {
    st.cap_bps = o->cap_bps;
    st.source = "override";
    st.override_in_force = o;
  }
  return st;
}

int local_minute(WallTime t) {
  const time_t tt = std::chrono::system_clock::to_time_t(t);
  struct tm lt {};
  if (!localtime_r(&tt, &lt)) return 0;
  return lt.tm_hour * 60 + lt.tm_min;
}

BandwidthControl::BandwidthControl(Governor* gov, BandwidthSettings s)
    : gov_(gov), settings_(std::move(s)) {
  state_.cap_bps = state_.base_bps = gov_->rate();
  state_.source = state_.base_source = "config";
}

BandwidthState BandwidthControl::decide_locked(WallTime now) {
  BandwidthState before = state_;
  state_ = bandwidth_at(settings_, local_minute(now), override_, to_ms(now));
  return before;
}

void BandwidthControl::push(const BandwidthState& before, const BandwidthState& after,
                            const std::string& line) {
  if (after.cap_bps != before.cap_bps) gov_->set_rate(after.cap_bps, 0, steady_ns());
  if (!line.empty()) log::get("replication")->info("{}", line);
}

void BandwidthControl::apply(WallTime now, const char* why) {
  std::unique_lock<std::mutex> l(mu_);
  std::optional<BandwidthOverride> ended;
  if (override_ && override_expired(*override_, to_ms(now))) ended = std::exchange(override_, {});
  const BandwidthState before = decide_locked(now);
  const BandwidthState after = state_;
  const std::string sched = settings_.schedule_text;
  l.unlock();
  std::string line;
  if (ended) {
    line = fmt::format(
        "bandwidth override set by uid {} expired: replication bandwidth cap {} -> {} ({})",
        ended->uid, format_rate(before.cap_bps), format_rate(after.cap_bps), after.source);
  } else if (after.cap_bps != before.cap_bps) {
    line = fmt::format("{}: replication bandwidth cap now {}{}", why, format_rate(after.cap_bps),
                       sched.empty() ? "" : " (schedule \"" + sched + "\")");
  }
  push(before, after, line);
}

void BandwidthControl::reload(BandwidthSettings s, WallTime now) {
  {
    std::lock_guard<std::mutex> l(mu_);
    settings_ = std::move(s);
  }
  apply(now, "SIGHUP");
}

BandwidthState BandwidthControl::set_override(uint64_t cap_bps, Millis duration, uint32_t uid,
                                              WallTime now) {
  std::unique_lock<std::mutex> l(mu_);
  const int64_t now_ms = to_ms(now);
  override_ =
      BandwidthOverride{cap_bps, uid, now_ms, duration.count() > 0 ? now_ms + duration.count() : 0};
  const int64_t until_ms = override_->until_ms;
  const BandwidthState before = decide_locked(now);
  const BandwidthState after = state_;
  l.unlock();
  push(before, after,
       fmt::format("bandwidth override by uid {}: replication bandwidth cap {} ({}) -> {} {}", uid,
                   format_rate(before.cap_bps), before.source, format_rate(after.cap_bps),
                   until_ms ? "until " + format_utc(until_ms, TimeFormat::kSeconds)
                            : std::string("until cleared")));
  return after;
}

bool BandwidthControl::clear_override(uint32_t uid, WallTime now) {
  std::unique_lock<std::mutex> l(mu_);
  if (!override_ || override_expired(*override_, to_ms(now))) {
    l.unlock();
    apply(now, "override ended");  // an expired one ends here, as at the next tick
    return false;
  }
  override_.reset();
  const BandwidthState before = decide_locked(now);
  const BandwidthState after = state_;
  l.unlock();
  push(before, after,
       fmt::format("bandwidth override cleared by uid {}: replication bandwidth cap {} -> {} ({})",
                   uid, format_rate(before.cap_bps), format_rate(after.cap_bps), after.source));
  return true;
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
