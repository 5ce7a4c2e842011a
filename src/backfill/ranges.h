#pragma once
// Range reconciliation over recording time, as pure functions: which ranges
// two nodes agree on (skip), which to list entry by entry, which to cut into
// smaller ranges and compare again. No I/O, no clock: the caller gives the
// window and the digests (its own, and its peer's from DIGEST_REP).
//
// The initiator's loop (the daemon carries it out; see merge.h for "list"):
//   round 1   ranges = day_ranges(window)          one per UTC day
//   each round  send DIGEST_REQ(ranges) in pieces of <= kMaxRanges, compute
//             the local digests of the same ranges (RangeDigester), then
//             steps = plan_ranges(ranges, local, peer, opt)
//               kEqual -> nothing to do for this range
//               kList  -> LIST_REQ{kRange} to the peer, merge with the local list
//               kSplit -> its subranges go into the next round
//             ranges = next_round(steps, opt); stop when empty.
// A pair in sync exchanges one digest per day; each round cuts a differing
// range into opt.split_parts, so a range with n entries is listed after
// about log_parts(n / leaf_max) rounds.
//
// Thread safety: pure functions; a RangeDigester belongs to one thread.
#include <cstdint>
#include <span>
#include <vector>

#include "backfill/entry.h"
#include "backfill/messages.h"
#include "recsync/status.h"

namespace recsync::backfill {

inline constexpr int64_t kDayMs = 86'400'000;

// [window.t0, window.t1) cut at every UTC midnight: the first and last
// pieces may be partial days. Empty for an invalid window.
std::vector<TimeRange> day_ranges(TimeRange window);

// `r` cut into min(parts, width) contiguous non-empty ranges of (nearly)
// equal width that cover it exactly, in order. parts 0 is taken as 1; an
// invalid r gives nothing. Overflow-safe over the whole int64 range.
std::vector<TimeRange> split_range(TimeRange r, uint32_t parts);

enum class RangeAction : uint8_t {
  kEqual,  // same count and digest on both sides: in sync, nothing exchanged
  kList,   // exchange the entries (LIST_REQ + merge)
  kSplit,  // too many entries to list: compare its subranges next round
};
const char* range_action_name(RangeAction a);  // "equal", "list", "split"

struct RangePlanOptions {
  // A differing range is split when either side counts more than leaf_max
  // entries in it and it is wider than 1 ms; otherwise it is listed.
  // Default 64, measured on 500,000 entries over 15 days (an entry lists in
  // ~85 bytes, a range costs 32 bytes of digests):
  //   in sync                 15 ranges, ~0.5 kB, for any leaf_max
  //   1 % missing at random   leaf_max 64: 1.6 MB digests + 7 MB listed
  //                           leaf_max 256: 0.1 MB digests + 62 MB listed
  //   empty node              leaf_max 64: 2.1 MB digests + 44 MB listed
  //                           leaf_max 256: 0.1 MB digests + 43 MB listed
  uint64_t leaf_max = 64;
  uint32_t split_parts = 16;  // subranges per split (>= 2)
};

struct RangeStep {
  TimeRange range;
  RangeAction action = RangeAction::kEqual;
  RangeDigest local;
  RangeDigest peer;
};

// One step per range, in order. kInvalid when local.size() != ranges.size(),
// a range is invalid, or the options are (split_parts < 2); kCorrupt when
// the peer's answer has a different number of digests than ranges asked.
// (Takes the ranges asked rather than the window: the window's day ranges
// are only the first round.)
Result<std::vector<RangeStep>> plan_ranges(std::span<const TimeRange> ranges,
                                           std::span<const RangeDigest> local,
                                           std::span<const RangeDigest> peer,
                                           const RangePlanOptions& opt = {});

// The subranges of every kSplit step, in order: the next round's ranges
// (sorted and disjoint when the steps' ranges were). May be more than
// kMaxRanges: send them in several DIGEST_REQ frames.
std::vector<TimeRange> next_round(std::span<const RangeStep> steps,
                                  const RangePlanOptions& opt = {});

// The pieces a range to be listed is listed in: cut evenly in time into
// ceil(n / rows) pieces, n the larger side's count (at least one piece;
// rows 0 is taken as 1). Listing reads the rows of the listed range once per
// page, so a range of n rows read in pages costs n x pages row reads; pieces
// of about `rows` entries (an even spread assumed) keep that near n. The
// pieces cover st.range exactly, in order; each is listed and merged on its
// own like any range.
std::vector<TimeRange> list_pieces(const RangeStep& st, uint64_t rows);

// Digests of several ranges in one pass over entries in any order (what
// answers a DIGEST_REQ, and what the initiator computes for its own side).
// Ranges must be sorted and disjoint (as DIGEST_REQ requires; kInvalid from
// make() otherwise). An entry outside every range is ignored. Memory: one
// RangeDigest per range.
class RangeDigester {
 public:
  static Result<RangeDigester> make(std::span<const TimeRange> ranges);
  void add(const ManifestEntry& e) { add(e.rec_time_ms, entry_digest(e)); }
  void add(int64_t rec_time_ms, uint64_t entry_digest_value);
  const std::vector<RangeDigest>& digests() const { return digests_; }
  // [t0 of the first range, t1 of the last): rows outside need not be read.
  TimeRange span() const;

 private:
  RangeDigester() = default;
  std::vector<TimeRange> ranges_;
  std::vector<RangeDigest> digests_;
};

}  // namespace recsync::backfill
