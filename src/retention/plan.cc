#include "retention/plan.h"

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
