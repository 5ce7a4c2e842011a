#include "retention/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>

namespace recsync {
std::string clock_refusal(WallTime now, int64_t newest_rec_time_ms, const RetentionPolicy& p) {
  if (p.keep.count() <= 0 && p.keep_local.count() <= 0) return "retention disabled";
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

int64_t candidate_cutoff_ms(WallTime now, const RetentionPolicy& p) {
  const bool keep = p.keep.count() > 0, tier = p.keep_local.count() > 0;
  if (!keep && !tier) return std::numeric_limits<int64_t>::min();
  int64_t span = keep ? p.keep.count() : p.keep_local.count();
  if (tier) span = std::min(span, p.keep_local.count());
  return to_ms(now) - span;
}

PlanResult plan_retention(const std::vector<RecordingRow>& candidates, const HoldSet& holds,
                          WallTime now, const RetentionPolicy& p,
                          const std::unordered_set<std::string>* stored) {
  PlanResult out;
  const bool keep = p.keep.count() > 0, tier = p.keep_local.count() > 0;
  const int64_t cutoff = retention_cutoff_ms(now, p);
  const int64_t local_cutoff = to_ms(now) - p.keep_local.count();
  const int64_t arrived_cutoff = to_ms(now) - p.local_min_stay.count();
  for (const RecordingRow& r : candidates) {
    if (keep && r.rec_time_ms < cutoff) {
      (holds.held(r) ? out.held : out.remove).push_back(r);
    } else if (tier && r.rec_time_ms < local_cutoff && r.archived_at_ms < arrived_cutoff) {
      if (holds.held(r))
        out.held.push_back(r);
      else if (stored && stored->count(r.rel))
        out.offload.push_back(r);
      else
        out.unstored.push_back(r);
    }
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

std::string offload_policy_string(const RetentionPolicy& p) {
  return "retention keep_local=" + format_span(p.keep_local) + ", object verified in the store";
}

}  // namespace recsync
