#include "recsync/schedule.h"

#include <cstdio>
#include <vector>

#include "recsync/units.h"

namespace recsync {
namespace {

constexpr int kDayMin = 24 * 60;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "HH:MM" -> minutes; 24:00 only when allow_24.
Result<int> parse_hhmm(std::string_view s, bool allow_24) {
  s = trim(s);
  auto digits = [](std::string_view d) {
    return d.size() == 2 && d[0] >= '0' && d[0] <= '9' && d[1] >= '0' && d[1] <= '9';
  };
  if (s.size() != 5 || s[2] != ':' || !digits(s.substr(0, 2)) || !digits(s.substr(3, 2)))
    return Status::invalid("time \"" + std::string(s) + "\" is not HH:MM");
  int h = (s[0] - '0') * 10 + (s[1] - '0');
  int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
    return Status::invalid("time \"" + std::string(s) + "\" is out of range" +
                           (h == 24 && m == 0 ? " (24:00 is allowed only as an end)" : ""));
  return h * 60 + m;
}

std::string hhmm(int min) {
  char buf[16];
  snprintf(buf, sizeof buf, "%02d:%02d", (min / 60) % 100, min % 60);
  return buf;
}

}  // namespace

Result<Schedule> Schedule::parse(std::string_view s) {
  Schedule out;
  std::vector<int> owner(kDayMin, -1);  // minute -> entry index, for overlaps
  s = trim(s);
  if (s.empty()) return out;
  size_t pos = 0;
  for (int idx = 0; pos <= s.size(); ++idx) {
    size_t comma = s.find(',', pos);
    std::string_view item =
        trim(s.substr(pos, comma == std::string_view::npos ? s.npos : comma - pos));
    pos = comma == std::string_view::npos ? s.size() + 1 : comma + 1;
    const std::string ctx = "schedule entry \"" + std::string(item) + "\"";
    if (item.empty()) return Status::invalid("schedule: empty entry (stray ',')");
    size_t eq = item.find('=');
    size_t dash = item.find('-');
    if (eq == item.npos || dash == item.npos || dash > eq)
      return Status::invalid(ctx + ": expected HH:MM-HH:MM=<rate>");
    auto start = parse_hhmm(item.substr(0, dash), false);
    if (!start) return start.status().with_context(ctx);
    auto end = parse_hhmm(item.substr(dash + 1, eq - dash - 1), true);
    if (!end) return end.status().with_context(ctx);
    if (*start == *end)
      return Status::invalid(ctx + ": start equals end (use 00:00-24:00 for the whole day)");
    auto rate = parse_rate(trim(item.substr(eq + 1)));
    if (!rate) return rate.status().with_context(ctx);
    // "00:00" as an end is midnight at the end of the day.
    Entry e{*start, *end == 0 ? kDayMin : *end, *rate};
    // Walk the covered minutes (wrapping) to detect overlaps.
    int m = e.start_min;
    do {
      if (owner[m] >= 0) {
        const Entry& o = out.entries_[owner[m]];
        return Status::invalid(ctx + ": overlaps " + hhmm(o.start_min) + "-" + hhmm(o.end_min) +
                               " at " + hhmm(m));
      }
      owner[m] = idx;
      m = (m + 1) % kDayMin;
    } while (m != e.end_min % kDayMin);
    out.entries_.push_back(e);
  }
  return out;
}

std::optional<uint64_t> Schedule::rate_at(int minute_of_day) const {
  int m = ((minute_of_day % kDayMin) + kDayMin) % kDayMin;
  for (const Entry& e : entries_) {
    const bool in = e.start_min < e.end_min ? (m >= e.start_min && m < e.end_min)
                                            : (m >= e.start_min || m < e.end_min);
    if (in) return e.rate_bps;
  }
  return std::nullopt;
}

}  // namespace recsync
