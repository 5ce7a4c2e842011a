#include "retention/plan.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace recsync {
std::string clock_refusal(WallTime now, int64_t newest_rec_time_ms, const RetentionPolicy& p) {
  if (p.keep.count() <= 0) return "retention disabled";
  int64_t now_ms = to_ms(now);
  if (now_ms < kPlausibleEpochMs)
    return "clock implausible: now is " + iso8601_utc_ms(now_ms) + ", before 2020-01-01";
  if (newest_rec_time_ms != 0 && newest_rec_time_ms > now_ms + p.clock_tolerance.count())
    return "clock is behind the newest recording by " +
           format_span(Millis(newest_rec_time_ms - now_ms)) + " (tolerance " +
           format_span(p.clock_tolerance) + ")";
  return "";
}

PeerClockVerdict peer_clock_verdict(const std::vector<PeerClock>& peers, int64_t now_ms,
                                    int64_t start_ms, const RetentionPolicy& p) {
  PeerClockVerdict v;
  if (p.keep.count() <= 0) return v;
  std::vector<std::string> off, unmeasured;
  for (const PeerClock& c : peers) {
    if (c.measured_ms == 0) {
      unmeasured.push_back(c.name);
      continue;
    }
    if (now_ms - c.measured_ms > kPeerClockFresh.count()) continue;
    const double excess = std::abs(c.offset_ms) - c.rtt_ms / 2;
    if (excess <= static_cast<double>(p.clock_tolerance.count())) continue;
    // Whole seconds once it is that large: "3d" rather than "3d0h0m0s12ms".
    int64_t ms = std::llround(std::abs(c.offset_ms));
    if (ms >= 10'000) ms = (ms + 500) / 1000 * 1000;
    off.push_back("peer " + c.name + " by " + format_span(Millis(ms)) + " (the peer is " +
                  (c.offset_ms > 0 ? "ahead" : "behind") + ")");
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  if (!off.empty())
    v.refusal = "clock differs from " + join(off) + "; tolerance " + format_span(p.clock_tolerance);
  else if (!unmeasured.empty() && now_ms < start_ms + kPeerClockWait.count())
    v.waiting = "waiting for a clock comparison with " + join(unmeasured);
  return v;
}

int64_t retention_cutoff_ms(WallTime now, const RetentionPolicy& p) {
  return to_ms(now) - p.keep.count();
}

PlanResult plan_retention(const std::vector<RecordingRow>& candidates, const HoldSet& holds,
                          WallTime now, const RetentionPolicy& p) {
  PlanResult out;
  if (p.keep.count() <= 0) return out;
  const int64_t cutoff = retention_cutoff_ms(now, p);
  for (const RecordingRow& r : candidates) {
    if (r.rec_time_ms >= cutoff) continue;
    (holds.held(r) ? out.held : out.remove).push_back(r);
  }
  return out;
}

std::string format_span(Millis d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  static constexpr struct {
    int64_t ms;
    const char* unit;
  } kUnits[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const auto& u : kUnits) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms) + u.unit;
      ms %= u.ms;
    }
  }
  return out;
}

std::string policy_string(const RetentionPolicy& p) {
  return "retention keep=" + format_span(p.keep);
}

}  // namespace recsync
