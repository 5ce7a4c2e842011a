#pragma once
// The replication cap by time of day (config key replication.schedule).
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "recsync/status.h"

namespace recsync {

// A time-of-day schedule for the cap, e.g.
//   "08:00-20:00=20MB/s,20:00-08:00=0"
// Entries are "HH:MM-HH:MM=<rate>" separated by ','; rates as units.h
// parse_rate ("0" = unlimited). A range runs from its start (inclusive) to
// its end (exclusive) and wraps past midnight when end <= start... except
// that start == end is refused as ambiguous (write "00:00-24:00" for the
// whole day). "24:00" is allowed as an end only. Ranges may not overlap.
// Minutes not covered by any range use the configured default rate. Times
// are local wall-clock minutes; the caller converts.
class Schedule {
 public:
  struct Entry {
    int start_min = 0;  // 0..1439
    int end_min = 0;    // 1..1440, exclusive; < start_min means it wraps
    uint64_t rate_bps = 0;
  };

  // An empty string is an empty schedule (default rate all day). Errors are
  // kInvalid with the offending entry and the reason.
  static Result<Schedule> parse(std::string_view s);

  // The rate for a minute of the day (0..1439, taken modulo 1440), or
  // nullopt when no entry covers it.
  std::optional<uint64_t> rate_at(int minute_of_day) const;
  uint64_t rate_at(int minute_of_day, uint64_t default_rate) const {
    return rate_at(minute_of_day).value_or(default_rate);
  }
  const std::vector<Entry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<Entry> entries_;
};

// Same as Schedule::parse.
inline Result<Schedule> parse_schedule(std::string_view s) { return Schedule::parse(s); }

}  // namespace recsync
