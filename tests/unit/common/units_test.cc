#include "recsync/units.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace recsync {
namespace {

constexpr int64_t kS = 1000;
constexpr int64_t kM = 60 * kS;
constexpr int64_t kH = 60 * kM;
constexpr int64_t kD = 24 * kH;

TEST(ParseDuration, Valid) {
  struct Case {
    const char* in;
    int64_t ms;
  };
  const Case cases[] = {
      {"0", 0},
      {"0s", 0},
      {"0ms", 0},
      {"1500ms", 1500},
      {"1s", kS},
      {"2m", 2 * kM},
      {"3h", 3 * kH},
      {"15d", 15 * kD},
      {"1h30m", kH + 30 * kM},
      {"1d2h3m4s5ms", kD + 2 * kH + 3 * kM + 4 * kS + 5},
      {"90s", 90 * kS},
      {"30m1h", kH + 30 * kM},  // parts are summed in any order
      {"1m1ms", kM + 1},
      {"007s", 7 * kS},
      {"9223372036854775807ms", std::numeric_limits<int64_t>::max()},
      {"106751991167d", 106751991167LL * kD},
  };
  for (const Case& c : cases) {
    auto r = parse_duration(c.in);
    ASSERT_TRUE(r.is_ok()) << c.in << ": " << r.status().message();
    EXPECT_EQ(r->count(), c.ms) << c.in;
  }
}

TEST(ParseDuration, Invalid) {
  struct Case {
    const char* in;
    const char* msg;  // expected substring of the message
  };
  const Case cases[] = {
      {"", "invalid duration '': empty value"},
      {"15", "invalid duration '15': missing unit after 15 (use ms, s, m, h, d)"},
      {"1h30", "invalid duration '1h30': missing unit after 30"},
      {"5x", "invalid duration '5x': unknown unit 'x' (use ms, s, m, h, d)"},
      {"5 s", "unknown unit ' s'"},
      {"5S", "unknown unit 'S'"},
      {"1.5h", "invalid duration '1.5h': use whole numbers"},
      {"-1s", "invalid duration '-1s': must not be negative"},
      {"s", "invalid duration 's': expected a number followed by a unit"},
      {" 1s", "expected a number"},
      {"1s ", "unknown unit 's '"},
      {"9223372036854775808ms", "invalid duration '9223372036854775808ms': too large"},
      {"106751991168d", "too large"},
      {"99999999999999999999s", "too large"},
      {"9223372036854775807ms1ms", "too large"},
  };
  for (const Case& c : cases) {
    auto r = parse_duration(c.in);
    ASSERT_FALSE(r.is_ok()) << "'" << c.in << "' parsed as " << r->count();
    EXPECT_EQ(r.status().code(), Status::Code::kInvalid);
    EXPECT_NE(r.status().message().find(c.msg), std::string::npos)
        << "'" << c.in << "': " << r.status().message();
  }
}

TEST(ParseSize, Valid) {
  struct Case {
    const char* in;
    uint64_t bytes;
  };
  const Case cases[] = {
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"10KB", 10'000},
      {"10KiB", 10'240},
      {"3MB", 3'000'000},
      {"3MiB", 3ULL << 20},
      {"2GB", 2'000'000'000},
      {"2GiB", 2ULL << 30},
      {"4TB", 4'000'000'000'000},
      {"4TiB", 4ULL << 40},
      {"1.5GB", 1'500'000'000},
      {"1.5KiB", 1536},
      {"1.0B", 1},
      {"0.5KB", 500},
      {"1.1KiB", 1126},  // 1126.4 bytes: rounded down to whole bytes
      {"0.000000000000000000001TB", 0},
      {"18446744073709551615", std::numeric_limits<uint64_t>::max()},
      {"16777215.99TiB", 16777215ULL * (1ULL << 40) + (99ULL << 40) / 100},
  };
  for (const Case& c : cases) {
    auto r = parse_size(c.in);
    ASSERT_TRUE(r.is_ok()) << c.in << ": " << r.status().message();
    EXPECT_EQ(*r, c.bytes) << c.in;
  }
}

TEST(ParseSize, Invalid) {
  struct Case {
    const char* in;
    const char* msg;
  };
  const Case cases[] = {
      {"", "invalid size '': empty value"},
      {"MB", "invalid size 'MB': expected a number followed by a unit"},
      {"-5MB", "invalid size '-5MB': must not be negative"},
      {"10XB",
       "invalid size '10XB': unknown unit 'XB' (use B, KB, MB, GB, TB or KiB, MiB, GiB, "
       "TiB)"},
      {"10kb", "unknown unit 'kb'"},
      {"10 MB", "unknown unit ' MB'"},
      {"10MB/s", "unknown unit 'MB/s'"},
      {"1.", "invalid size '1.': expected digits after '.'"},
      {"1.5", "invalid size '1.5': a byte count must be a whole number"},
      {"1.5B", "a byte count must be a whole number"},
      {"18446744073709551616", "invalid size '18446744073709551616': too large"},
      {"16777216TiB", "too large"},
      {"18446744073709551.616KB", "too large"},
  };
  for (const Case& c : cases) {
    auto r = parse_size(c.in);
    ASSERT_FALSE(r.is_ok()) << "'" << c.in << "' parsed as " << *r;
    EXPECT_NE(r.status().message().find(c.msg), std::string::npos)
        << "'" << c.in << "': " << r.status().message();
  }
}

TEST(ParseRate, Valid) {
  struct Case {
    const char* in;
    uint64_t bps;
  };
  const Case cases[] = {
      {"0", 0},
      {"0/s", 0},
      {"50MB/s", 50'000'000},
      {"50MB", 50'000'000},
      {"10MiB/s", 10ULL << 20},
      {"1.5GB/s", 1'500'000'000},
      {"100/s", 100},
  };
  for (const Case& c : cases) {
    auto r = parse_rate(c.in);
    ASSERT_TRUE(r.is_ok()) << c.in << ": " << r.status().message();
    EXPECT_EQ(*r, c.bps) << c.in;
  }
}

TEST(ParseRate, Invalid) {
  struct Case {
    const char* in;
    const char* msg;
  };
  const Case cases[] = {
      {"", "invalid rate '': empty value"},
      {"/s", "invalid rate '/s': expected a size before '/s'"},
      {"50MB/h", "invalid rate '50MB/h': unknown unit 'MB/h'"},
      {"50XB/s", "invalid rate '50XB/s': unknown unit 'XB'"},
      {"50MB/s/s", "unknown unit 'MB/s'"},
      {"-1MB/s", "invalid rate '-1MB/s': must not be negative"},
      {"99999999TB/s", "invalid rate '99999999TB/s': too large"},
  };
  for (const Case& c : cases) {
    auto r = parse_rate(c.in);
    ASSERT_FALSE(r.is_ok()) << "'" << c.in << "' parsed as " << *r;
    EXPECT_NE(r.status().message().find(c.msg), std::string::npos)
        << "'" << c.in << "': " << r.status().message();
  }
}

TEST(FormatDuration, Table) {
  struct Case {
    int64_t ms;
    const char* out;
  };
  const Case cases[] = {
      {0, "0s"},
      {1, "1ms"},
      {999, "999ms"},
      {1000, "1s"},
      {1500, "1s500ms"},
      {90 * kS, "1m30s"},
      {kH, "1h"},
      {kH + 30 * kM, "1h30m"},
      {36 * kH, "1d12h"},
      {15 * kD, "15d"},
      {kD + kS + 1, "1d1s1ms"},
      {-90 * kS, "-1m30s"},
      {std::numeric_limits<int64_t>::min(), "-106751991167d7h12m55s808ms"},
  };
  for (const Case& c : cases) EXPECT_EQ(format_duration(Millis{c.ms}), c.out) << c.ms;
}

TEST(FormatDuration, RoundTripsThroughParse) {
  for (int64_t ms : {int64_t{1}, int64_t{1500}, 90 * kS, kD + kH + kM + kS + 1, 15 * kD,
                     std::numeric_limits<int64_t>::max()}) {
    auto r = parse_duration(format_duration(Millis{ms}));
    ASSERT_TRUE(r.is_ok()) << ms << ": " << r.status().message();
    EXPECT_EQ(r->count(), ms);
  }
}

TEST(FormatBytes, Table) {
  struct Case {
    uint64_t n;
    const char* out;
  };
  const Case cases[] = {
      {0, "0 B"},
      {1, "1 B"},
      {1023, "1023 B"},
      {1024, "1 KiB"},
      {1536, "1.5 KiB"},
      {1126, "1.1 KiB"},
      {10 * 1024 + 51, "10 KiB"},  // 10.0498: rounds to 10.0
      {10 * 1024 + 52, "10.1 KiB"},
      {(1ULL << 20) - 1, "1 MiB"},  // 1023.999 KiB rounds up into the next unit
      {3ULL << 20, "3 MiB"},
      {(5ULL << 30) / 2, "2.5 GiB"},
      {2'700'000'000'000ULL, "2.5 TiB"},
      {1ULL << 50, "1 PiB"},
      {std::numeric_limits<uint64_t>::max(), "16 EiB"},
  };
  for (const Case& c : cases) EXPECT_EQ(format_bytes(c.n), c.out) << c.n;
}

TEST(Units, FormatRateUsesDecimalUnitsAndUnlimitedForZero) {
  EXPECT_EQ(format_rate(0), "unlimited");
  EXPECT_EQ(format_rate(1), "1 B/s");
  EXPECT_EQ(format_rate(999), "999 B/s");
  EXPECT_EQ(format_rate(1'000), "1 KB/s");
  EXPECT_EQ(format_rate(1'050), "1.1 KB/s") << "half up";
  EXPECT_EQ(format_rate(999'960), "1 MB/s") << "rounds up into the next unit";
  EXPECT_EQ(format_rate(50'000'000), "50 MB/s");
  EXPECT_EQ(format_rate(10'485'760), "10.5 MB/s");
  EXPECT_EQ(format_rate(1'260'000'000), "1.3 GB/s");
  EXPECT_EQ(format_rate(UINT64_MAX), "18.4 EB/s");
  auto back = parse_rate("50MB/s");
  ASSERT_TRUE(back);
  EXPECT_EQ(format_rate(*back), "50 MB/s") << "reads back as written";
}

}  // namespace
}  // namespace recsync
