#pragma once
// Time helpers shared by every component: conversions between the wall clock
// (Env::now(), a std::chrono::system_clock time point) and milliseconds since
// the epoch, the process's steady clock, and the one ISO-8601 formatter.
// Pure functions; thread-safe.
#include <chrono>
#include <cstdint>
#include <string>

namespace recsync {

using WallTime = std::chrono::system_clock::time_point;

// Milliseconds since the Unix epoch (negative before 1970).
inline int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
// Nanoseconds since the Unix epoch (until 2262).
inline int64_t to_ns(WallTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline WallTime from_ms(int64_t ms) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds(ms)));
}
// The steady (monotonic) clock, for durations and deadlines; never for
// anything stored or shown as a date.
inline int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
inline int64_t steady_ms() { return steady_ns() / 1'000'000; }

// ms since the epoch as ISO-8601 UTC: kSeconds "2024-05-01T12:00:00Z" (status
// output), kMillis "2024-05-01T12:00:00.123Z" (the audit log). With
// blank_unset, ms <= 0 ("never") gives "".
enum class TimeFormat { kSeconds, kMillis };
std::string format_utc(int64_t ms, TimeFormat f, bool blank_unset = false);
inline std::string iso8601_utc_ms(int64_t ms) { return format_utc(ms, TimeFormat::kMillis); }

}  // namespace recsync
