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
  // Object-store tier ([object_store] keep_local): a local copy of a
  // recording older than this goes once its object is verified in the store
  // (the object stays until keep). 0 = no tier: local copies stay until keep.
  Millis keep_local{0};
  // ... but not before it has been on this disk this long ([object_store]
  // keep_fetched): a copy fetched back from the store for playback, or one
  // that arrived late, is not removed at once.
  Millis local_min_stay{0};
};

// The earliest wall time accepted as plausible (2020-01-01T00:00:00Z): a node
// that booted without RTC and NTP says 1970.
inline constexpr int64_t kPlausibleEpochMs = 1577836800000;

// "" when pruning is safe now; otherwise the reason, for status:
//   keep == 0 and keep_local == 0             -> "retention disabled"
//   now before 2020-01-01                     -> "clock implausible: ..."
//   newest_rec_time_ms > now + clock_tolerance -> "clock is behind the newest recording by X"
// newest_rec_time_ms of 0 means no recordings (never a refusal).
std::string clock_refusal(WallTime now, int64_t newest_rec_time_ms, const RetentionPolicy& p);

// Clock safety across nodes. A peer's clock as the replication link last
// measured it (NTP-style: offset = peer - us, error at most rtt / 2).
struct PeerClock {
  std::string name;
  int64_t measured_ms = 0;  // wall time of the measurement; 0 = none since start
  double offset_ms = 0;
  double rtt_ms = 0;
};

// A measurement counts this long; older ones (a link that went away long
// ago) neither refuse nor are waited for.
inline constexpr Millis kPeerClockFresh{3600 * 1000};
// With peers configured, the first pass waits at most this long after start
// for one measurement of each peer (a peer that stays away is not waited for).
inline constexpr Millis kPeerClockWait{120 * 1000};

struct PeerClockVerdict {
  std::string refusal;  // "" = no peer's clock stands in the way
  std::string waiting;  // "" = nothing to wait for; else why the pass waits
};

// refusal when a fresh measurement differs by more than tolerance plus its
// error bound (rtt / 2): "clock differs from peer fs2 by +3d (the peer is
// ahead; tolerance 1h)", naming every such peer. Otherwise waiting when a
// peer has no measurement yet and now < start + kPeerClockWait. keep == 0
// (retention disabled) never refuses or waits.
PeerClockVerdict peer_clock_verdict(const std::vector<PeerClock>& peers, int64_t now_ms,
                                    int64_t start_ms, const RetentionPolicy& p);

// now - keep in ms since the epoch: recordings strictly older than this go.
int64_t retention_cutoff_ms(WallTime now, const RetentionPolicy& p);
// The recording time below which a recording is a candidate for the plan:
// now - keep, or now - keep_local with the tier (never later than now - keep).
// INT64_MIN when nothing can be due (keep and keep_local both 0).
int64_t candidate_cutoff_ms(WallTime now, const RetentionPolicy& p);

struct PlanResult {
  std::vector<RecordingRow> remove;   // past keep and not held, in input order
  std::vector<RecordingRow> offload;  // past keep_local, within keep, not held, object verified
  std::vector<RecordingRow> held;     // past keep (or keep_local with the tier), kept by a hold
  // Past keep_local, not held, but no verified object yet: the local copy is
  // the last copy and stays (it goes at keep like any other).
  std::vector<RecordingRow> unstored;
};

// For each candidate, in input order:
//   rec_time_ms < now - keep (keep > 0)          -> held if held, else remove
//   with the tier (keep_local > 0), rec_time_ms < now - keep_local and on
//   this disk longer than local_min_stay (archived_at_ms < now - min stay):
//                                                -> held if held, else offload
//                                                   if its rel is in `stored`,
//                                                   else unstored
//   otherwise                                    -> in no list
// `stored`: rels whose object is verified in the store with the recording's
// hash (ObjectIndex::stored_among); null = none. With keep == 0 and
// keep_local == 0 nothing is listed (callers check clock_refusal first).
PlanResult plan_retention(const std::vector<RecordingRow>& candidates, const HoldSet& holds,
                          WallTime now, const RetentionPolicy& p,
                          const std::unordered_set<std::string>* stored = nullptr);

// Compact span for messages and the audit policy: "15d", "1d12h", "1m30s",
// "1s500ms", "0s".
std::string format_span(Millis d);
// The policy string written to the audit: "retention keep=15d".
std::string policy_string(const RetentionPolicy& p);
// The audit policy of a local copy removed at keep_local:
// "retention keep_local=2d, object verified in the store".
std::string offload_policy_string(const RetentionPolicy& p);

}  // namespace recsync
