#pragma once
// Retention as pure functions of (recordings, holds, now, policy): no I/O, no
// clock of their own, so every rule is tested table-driven with a fixed
// clock (Syncthing's versioner idea). The Pruner only carries out a plan.
#include <cstdint>
#include <string>
#include <vector>

#include "recsync/clock.h"
#include "recsync/env.h"
#include "recsync/units.h"
#include "state/holds.h"
#include "state/rows.h"

namespace recsync {

struct RetentionPolicy {
  Millis keep{0};             // age past which a recording goes; 0 = retention disabled
  Millis clock_tolerance{0};  // how far in the future the newest recording may be
};

// The earliest wall time accepted as plausible (2020-01-01T00:00:00Z): a node
// that booted without RTC and NTP says 1970.
inline constexpr int64_t kPlausibleEpochMs = 1577836800000;

// "" when pruning is safe now; otherwise the reason, for status:
//   keep == 0                                 -> "retention disabled"
//   now before 2020-01-01                     -> "clock implausible: ..."
//   newest_rec_time_ms > now + clock_tolerance -> "clock is behind the newest recording by X"
// newest_rec_time_ms of 0 means no recordings (never a refusal).
std::string clock_refusal(WallTime now, int64_t newest_rec_time_ms, const RetentionPolicy& p);

// now - keep in ms since the epoch: recordings strictly older than this go.
int64_t retention_cutoff_ms(WallTime now, const RetentionPolicy& p);

struct PlanResult {
  std::vector<RecordingRow> remove;  // past retention and not held, in input order
  std::vector<RecordingRow> held;    // past retention, kept only by a hold
};

// remove = candidates with rec_time_ms < now - keep that are not held;
// held = those past retention kept by a hold. Candidates within retention
// appear in neither. With keep == 0 nothing is removed or held (callers
// check clock_refusal first).
PlanResult plan_retention(const std::vector<RecordingRow>& candidates, const HoldSet& holds,
                          WallTime now, const RetentionPolicy& p);

// Compact span for messages and the audit policy: "15d", "1d12h", "1m30s",
// "1s500ms", "0s".
std::string format_span(Millis d);
// The policy string written to the audit: "retention keep=15d".
std::string policy_string(const RetentionPolicy& p);

}  // namespace recsync
