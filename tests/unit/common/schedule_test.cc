#include "recsync/schedule.h"

#include <gtest/gtest.h>

namespace recsync {
namespace {

TEST(Schedule, ParsesTheDocumentedExample) {
  auto s = parse_schedule("08:00-20:00=20MB/s,20:00-08:00=0");
  ASSERT_TRUE(s) << s.status().to_string();
  ASSERT_EQ(s->entries().size(), 2u);
  EXPECT_EQ(s->rate_at(8 * 60), std::optional<uint64_t>(20'000'000));
  EXPECT_EQ(s->rate_at(19 * 60 + 59), std::optional<uint64_t>(20'000'000));
  EXPECT_EQ(s->rate_at(20 * 60), std::optional<uint64_t>(0));
  EXPECT_EQ(s->rate_at(23 * 60 + 59), std::optional<uint64_t>(0));
  EXPECT_EQ(s->rate_at(0), std::optional<uint64_t>(0));  // across midnight
  EXPECT_EQ(s->rate_at(7 * 60 + 59), std::optional<uint64_t>(0));
  EXPECT_EQ(s->rate_at(24 * 60 + 8 * 60), std::optional<uint64_t>(20'000'000));  // modulo a day
}

TEST(Schedule, UncoveredMinutesUseTheDefault) {
  auto s = parse_schedule(" 22:00-06:00 = 1MB/s , 12:00-13:00=5MiB ");
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_EQ(s->rate_at(23 * 60, 7), 1'000'000u);
  EXPECT_EQ(s->rate_at(3 * 60, 7), 1'000'000u);
  EXPECT_EQ(s->rate_at(6 * 60, 7), 7u);  // end is exclusive
  EXPECT_EQ(s->rate_at(21 * 60 + 59, 7), 7u);
  EXPECT_EQ(s->rate_at(12 * 60 + 30, 7), 5u * 1024 * 1024);
  EXPECT_FALSE(s->rate_at(11 * 60).has_value());

  auto day = parse_schedule("00:00-24:00=5MB");
  ASSERT_TRUE(day) << day.status().to_string();
  for (int m = 0; m < 1440; m += 7) EXPECT_EQ(day->rate_at(m, 1), 5'000'000u) << m;

  auto evening = parse_schedule("18:00-00:00=1MB");
  ASSERT_TRUE(evening) << evening.status().to_string();
  EXPECT_EQ(evening->rate_at(23 * 60 + 59, 9), 1'000'000u);
  EXPECT_EQ(evening->rate_at(0, 9), 9u);

  auto empty = parse_schedule("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(empty->rate_at(600, 42), 42u);
}

TEST(Schedule, ErrorsSayWhatIsWrong) {
  struct Case {
    const char* in;
    const char* says;
  } cases[] = {
      {"8:00-20:00=1MB", "is not HH:MM"},
      {"25:00-26:00=1MB", "out of range"},
      {"08:60-09:00=1MB", "out of range"},
      {"24:00-08:00=1MB", "24:00 is allowed only as an end"},
      {"08:00-08:00=1MB", "start equals end"},
      {"08:00-20:00", "expected HH:MM-HH:MM=<rate>"},
      {"08:00=1MB", "expected HH:MM-HH:MM=<rate>"},
      {"08:00-20:00=fast", "08:00-20:00=fast"},
      {"08:00-20:00=1MB,,20:00-21:00=0", "empty entry"},
      {"08:00-20:00=1MB,19:00-21:00=2MB", "overlaps 08:00-20:00 at 19:00"},
      {"22:00-02:00=1MB,01:00-03:00=2MB", "overlaps 22:00-02:00 at 01:00"},
  };
  for (const Case& c : cases) {
    auto s = parse_schedule(c.in);
    ASSERT_FALSE(s) << c.in;
    EXPECT_EQ(s.status().code(), Status::Code::kInvalid) << c.in;
    EXPECT_NE(s.status().message().find(c.says), std::string::npos)
        << c.in << " -> " << s.status().message();
  }
}

}  // namespace
}  // namespace recsync
