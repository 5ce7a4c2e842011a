#include "recsync/clock.h"

#include <cstdio>
#include <ctime>

namespace recsync {

std::string format_utc(int64_t ms, TimeFormat f, bool blank_unset) {
  if (blank_unset && ms <= 0) return "";
  int64_t secs = ms / 1000, rem = ms % 1000;
  if (rem < 0) {
    rem += 1000;
    secs -= 1;
  }
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (f == TimeFormat::kSeconds) return std::string(buf, n) + "Z";
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(rem));
  return std::string(buf, n) + frac;
}

}  // namespace recsync
