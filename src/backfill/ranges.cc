#include "backfill/ranges.h"

#include <algorithm>
#include <string>

namespace recsync::backfill {
namespace {

// Floor division (C++ '/' truncates toward zero; times before 1970 are negative).
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

std::string show(TimeRange r) {
  return "[" + std::to_string(r.t0) + ", " + std::to_string(r.t1) + ")";
}

}  // namespace

std::vector<TimeRange> day_ranges(TimeRange window) {
  std::vector<TimeRange> out;
  if (!window.valid()) return out;
  int64_t t = window.t0;
  while (t < window.t1) {
    // Next midnight after t, computed in 128 bits: near INT64_MAX it overflows.
    __int128 next = static_cast<__int128>(floor_div(t, kDayMs) + 1) * kDayMs;
    int64_t end = next >= window.t1 ? window.t1 : static_cast<int64_t>(next);
    out.push_back({t, end});
    t = end;
  }
  return out;
}

std::vector<TimeRange> split_range(TimeRange r, uint32_t parts) {
  std::vector<TimeRange> out;
  if (!r.valid()) return out;
  const __int128 width = static_cast<__int128>(r.t1) - r.t0;
  const __int128 n = std::min<__int128>(std::max<uint32_t>(parts, 1), width);
  out.reserve(static_cast<size_t>(n));
  int64_t start = r.t0;
  for (__int128 i = 1; i <= n; ++i) {
    int64_t end = static_cast<int64_t>(r.t0 + width * i / n);
    out.push_back({start, end});
    start = end;
  }
  return out;
}

const char* range_action_name(RangeAction a) {
  switch (a) {
    case RangeAction::kEqual:
      return "equal";
    case RangeAction::kList:
      return "list";
    case RangeAction::kSplit:
      return "split";
  }
  return "unknown";
}

Result<std::vector<RangeStep>> plan_ranges(std::span<const TimeRange> ranges,
                                           std::span<const RangeDigest> local,
                                           std::span<const RangeDigest> peer,
                                           const RangePlanOptions& opt) {
  if (opt.split_parts < 2)
    return Status::invalid("plan_ranges: split_parts " + std::to_string(opt.split_parts) +
                           " is below 2");
  if (local.size() != ranges.size())
    return Status::invalid("plan_ranges: " + std::to_string(local.size()) + " local digests for " +
                           std::to_string(ranges.size()) + " ranges");
  if (peer.size() != ranges.size())
    return Status::corrupt("peer answered " + std::to_string(peer.size()) + " digests for " +
                           std::to_string(ranges.size()) + " ranges");
  std::vector<RangeStep> steps;
  steps.reserve(ranges.size());
  for (size_t i = 0; i < ranges.size(); ++i) {
    const TimeRange r = ranges[i];
    if (!r.valid()) return Status::invalid("plan_ranges: empty range " + show(r));
    RangeStep s{r, RangeAction::kEqual, local[i], peer[i]};
    if (!(local[i] == peer[i])) {
      const bool big = local[i].count > opt.leaf_max || peer[i].count > opt.leaf_max;
      const bool wide = static_cast<__int128>(r.t1) - r.t0 > 1;
      s.action = big && wide ? RangeAction::kSplit : RangeAction::kList;
    }
    steps.push_back(s);
  }
  return steps;
}

std::vector<TimeRange> list_pieces(const RangeStep& st, uint64_t rows) {
  const uint64_t n = std::max(st.local.count, st.peer.count);
  const uint64_t per = std::max<uint64_t>(rows, 1);
  const uint64_t parts = std::clamp<uint64_t>(n / per + (n % per != 0), 1, UINT32_MAX);
  return split_range(st.range, static_cast<uint32_t>(parts));
}

std::vector<TimeRange> next_round(std::span<const RangeStep> steps, const RangePlanOptions& opt) {
  std::vector<TimeRange> out;
  for (const RangeStep& s : steps) {
    if (s.action != RangeAction::kSplit) continue;
    std::vector<TimeRange> sub = split_range(s.range, opt.split_parts);
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

Result<RangeDigester> RangeDigester::make(std::span<const TimeRange> ranges) {
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (!ranges[i].valid()) return Status::invalid("RangeDigester: empty range " + show(ranges[i]));
    if (i > 0 && ranges[i].t0 < ranges[i - 1].t1)
      return Status::invalid("RangeDigester: ranges not sorted and disjoint at " + show(ranges[i]));
  }
  RangeDigester d;
  d.ranges_.assign(ranges.begin(), ranges.end());
  d.digests_.resize(ranges.size());
  return d;
}

void RangeDigester::add(int64_t rec_time_ms, uint64_t entry_digest_value) {
  // The last range starting at or before t; it holds t if t is before its end.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), rec_time_ms,
                             [](int64_t t, const TimeRange& r) { return t < r.t0; });
  if (it == ranges_.begin()) return;
  --it;
  if (!it->contains(rec_time_ms)) return;
  digests_[static_cast<size_t>(it - ranges_.begin())].add(entry_digest_value);
}

TimeRange RangeDigester::span() const {
  if (ranges_.empty()) return {};
  return {ranges_.front().t0, ranges_.back().t1};
}

}  // namespace recsync::backfill
