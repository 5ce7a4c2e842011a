#include "scrub/plan.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace recsync::scrub {

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kOk:
      return "ok";
    case Kind::kCorrupt:
      return "corrupt";
    case Kind::kMissing:
      return "missing";
    case Kind::kUnreadable:
      return "unreadable";
    case Kind::kSize:
      return "size";
  }
  return "?";
}

Kind classify(uint64_t want_size, const std::string& want_hash, bool exists, bool read_ok,
              uint64_t got_size, const std::string& got_hash) {
  if (!exists) return Kind::kMissing;
  if (!read_ok) return Kind::kUnreadable;
  if (got_size != want_size) return Kind::kSize;
  if (got_hash != want_hash) return Kind::kCorrupt;
  return Kind::kOk;
}

bool pass_due(int64_t interval_ms, std::optional<int64_t> last_start_ms, int64_t now_ms) {
  if (interval_ms <= 0) return false;
  if (!last_start_ms) return true;
  // A start in the future (the clock was set back): due, or nothing runs
  // until the clock catches up.
  if (*last_start_ms > now_ms) return true;
  return now_ms - *last_start_ms >= interval_ms;
}

int64_t next_pass_ms(int64_t interval_ms, std::optional<int64_t> last_start_ms, int64_t now_ms) {
  if (interval_ms <= 0) return 0;
  if (pass_due(interval_ms, last_start_ms, now_ms)) return now_ms;
  return *last_start_ms + interval_ms;
}

int64_t Pacer::take(uint64_t n, int64_t now_ns) {
  if (rate_ == 0) return 0;
  const double cap = static_cast<double>(rate_) / 4;
  if (last_ns_ < 0) {
    last_ns_ = now_ns;
    tokens_ = cap;
  }
  if (now_ns > last_ns_) {
    tokens_ = std::min(cap, tokens_ + static_cast<double>(now_ns - last_ns_) * rate_ / 1e9);
    last_ns_ = now_ns;
  }
  tokens_ -= static_cast<double>(n);
  if (tokens_ >= 0) return 0;
  return static_cast<int64_t>(-tokens_ * 1e9 / rate_) + 1;
}

std::string cursor_text(const Cursor& c) {
  return std::to_string(c.time_ms) + ":" + std::to_string(c.id);
}

std::optional<Cursor> parse_cursor(const std::string& text) {
  long long t = 0, id = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%lld:%lld%c", &t, &id, &tail) != 2) return std::nullopt;
  return Cursor{t, id};
}

}  // namespace recsync::scrub
