#include "recsync/units.h"

#include <cstdio>
#include <limits>

namespace recsync {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

Status bad(const char* kind, std::string_view s, const std::string& why) {
  return Status::invalid("invalid " + std::string(kind) + " '" + std::string(s) + "': " + why);
}

// Reads a run of digits at s[*i] into *out; false on overflow.
bool read_uint(std::string_view s, size_t* i, uint64_t* out) {
  uint64_t v = 0;
  for (; *i < s.size() && is_digit(s[*i]); ++*i) {
    if (__builtin_mul_overflow(v, uint64_t{10}, &v) ||
        __builtin_add_overflow(v, uint64_t(s[*i] - '0'), &v)) {
      return false;
    }
  }
  *out = v;
  return true;
}

struct SizeUnit {
  const char* name;
  uint64_t mult;
};
// Longest names first is not needed: the whole suffix must match exactly.
constexpr SizeUnit kSizeUnits[] = {
    {"B", 1},
    {"KB", 1000ULL},
    {"MB", 1000ULL * 1000},
    {"GB", 1000ULL * 1000 * 1000},
    {"TB", 1000ULL * 1000 * 1000 * 1000},
    {"KiB", 1ULL << 10},
    {"MiB", 1ULL << 20},
    {"GiB", 1ULL << 30},
    {"TiB", 1ULL << 40},
};

// Parses `s`; messages quote `shown` (the text as written, "/s" included).
Result<uint64_t> parse_size_as(std::string_view s, std::string_view shown, const char* kind) {
  if (s.empty()) return bad(kind, shown, "empty value");
  size_t i = 0;
  if (s[0] == '-') return bad(kind, shown, "must not be negative");
  if (!is_digit(s[0])) {
    return bad(kind, shown,
               "expected a number followed by a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
  }
  uint64_t whole = 0;
  if (!read_uint(s, &i, &whole)) return bad(kind, shown, "too large");
  // The fraction is kept as digits/10^n; digits past 18 cannot change the
  // result by a whole byte for any unit up to TiB, so they are dropped.
  uint64_t frac = 0, frac_scale = 1;
  bool has_frac = false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size() || !is_digit(s[i])) return bad(kind, shown, "expected digits after '.'");
    for (; i < s.size() && is_digit(s[i]); ++i) {
      if (frac_scale < 1'000'000'000'000'000'000ULL) {
        frac = frac * 10 + uint64_t(s[i] - '0');
        frac_scale *= 10;
      }
      if (s[i] != '0') has_frac = true;
    }
  }
  std::string_view unit = s.substr(i);
  uint64_t mult = 0;
  if (unit.empty()) {
    mult = 1;
  } else {
    for (const SizeUnit& u : kSizeUnits) {
      if (unit == u.name) mult = u.mult;
    }
    if (mult == 0) {
      return bad(
          kind, shown,
          "unknown unit '" + std::string(unit) + "' (use B, KB, MB, GB, TB or KiB, MiB, GiB, TiB)");
    }
  }
  if (has_frac && mult == 1) return bad(kind, shown, "a byte count must be a whole number");
  unsigned __int128 total = static_cast<unsigned __int128>(whole) * mult;
  total += static_cast<unsigned __int128>(frac) * mult / frac_scale;
  if (total > std::numeric_limits<uint64_t>::max()) return bad(kind, shown, "too large");
  return static_cast<uint64_t>(total);
}

}  // namespace

Result<Millis> parse_duration(std::string_view s) {
  constexpr const char* kKind = "duration";
  if (s.empty()) return bad(kKind, s, "empty value");
  if (s == "0") return Millis{0};
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (!is_digit(s[i])) {
      if (s[i] == '-') return bad(kKind, s, "must not be negative");
      return bad(kKind, s, "expected a number followed by a unit (ms, s, m, h, d)");
    }
    uint64_t n = 0;
    if (!read_uint(s, &i, &n)) return bad(kKind, s, "too large");
    if (i < s.size() && s[i] == '.') {
      return bad(kKind, s, "use whole numbers (e.g. 1h30m, 1500ms)");
    }
    size_t u = i;
    while (i < s.size() && !is_digit(s[i])) ++i;
    std::string_view unit = s.substr(u, i - u);
    int64_t mult;
    if (unit == "ms") {
      mult = 1;
    } else if (unit == "s") {
      mult = 1000;
    } else if (unit == "m") {
      mult = 60'000;
    } else if (unit == "h") {
      mult = 3'600'000;
    } else if (unit == "d") {
      mult = 86'400'000;
    } else if (unit.empty()) {
      return bad(kKind, s, "missing unit after " + std::to_string(n) + " (use ms, s, m, h, d)");
    } else {
      return bad(kKind, s, "unknown unit '" + std::string(unit) + "' (use ms, s, m, h, d)");
    }
    int64_t part;
    if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        __builtin_mul_overflow(static_cast<int64_t>(n), mult, &part) ||
        __builtin_add_overflow(total, part, &total)) {
      return bad(kKind, s, "too large");
    }
  }
  return Millis{total};
}

Result<uint64_t> parse_size(std::string_view s) { return parse_size_as(s, s, "size"); }

Result<uint64_t> parse_rate(std::string_view s) {
  std::string_view body = s;
  if (body.size() >= 2 && body.substr(body.size() - 2) == "/s") {
    body.remove_suffix(2);
    if (body.empty()) return bad("rate", s, "expected a size before '/s'");
  }
  return parse_size_as(body, s, "rate");
}

std::string format_duration(Millis d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  uint64_t v;
  if (ms < 0) {
    out = "-";
    v = static_cast<uint64_t>(-(ms + 1)) + 1;  // no overflow at INT64_MIN
  } else {
    v = static_cast<uint64_t>(ms);
  }
  struct Part {
    uint64_t ms;
    const char* unit;
  };
  static constexpr Part kParts[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (const Part& p : kParts) {
    uint64_t n = v / p.ms;
    v %= p.ms;
    if (n != 0) out += std::to_string(n) + p.unit;
  }
  return out;
}

std::string format_bytes(uint64_t n) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (n < 1024) return std::to_string(n) + " B";
  size_t u = 0;
  unsigned __int128 unit = 1;
  while (u + 1 < std::size(kUnits) && n >= unit * 1024) {
    unit *= 1024;
    ++u;
  }
  // Tenths, rounded half up; 1023.96 KiB rounds to 1024.0 and moves up a unit.
  unsigned __int128 tenths = (static_cast<unsigned __int128>(n) * 10 + unit / 2) / unit;
  if (tenths >= 10240 && u + 1 < std::size(kUnits)) {
    ++u;
    unit *= 1024;
    tenths = (static_cast<unsigned __int128>(n) * 10 + unit / 2) / unit;
  }
  uint64_t t = static_cast<uint64_t>(tenths);
  std::string out = std::to_string(t / 10);
  if (t % 10 != 0) {
    out += '.';
    out += std::to_string(t % 10);
  }
  out += ' ';
  out += kUnits[u];
  return out;
}

std::string format_rate(uint64_t bps) {
  if (bps == 0) return "unlimited";
  static constexpr const char* kUnits[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
  size_t u = 0;
  unsigned __int128 unit = 1;
  while (u + 1 < std::size(kUnits) && bps >= unit * 1000) {
    unit *= 1000;
    ++u;
  }
  unsigned __int128 tenths = (static_cast<unsigned __int128>(bps) * 10 + unit / 2) / unit;
  if (tenths >= 10000 && u + 1 < std::size(kUnits)) {  // 999.96 KB/s -> 1 MB/s
    ++u;
    unit *= 1000;
    tenths = (static_cast<unsigned __int128>(bps) * 10 + unit / 2) / unit;
  }
  const uint64_t t = static_cast<uint64_t>(tenths);
  std::string out = std::to_string(t / 10);
  if (t % 10 != 0) out += "." + std::to_string(t % 10);
  return out + " " + kUnits[u] + "/s";
}

}  // namespace recsync
