#include "scrub/plan.h"

#include <gtest/gtest.h>

namespace recsync::scrub {
namespace {

constexpr int64_t kDay = 86'400'000;
constexpr int64_t kNow = 1'717'200'000'000;  // 2024-06-01T00:00:00Z

TEST(ScrubPlan, ClassifyOrder) {
  EXPECT_EQ(classify(10, "h", true, true, 10, "h"), Kind::kOk);
  EXPECT_EQ(classify(10, "h", false, false, 0, ""), Kind::kMissing);
  EXPECT_EQ(classify(10, "h", true, false, 3, ""), Kind::kUnreadable);
  EXPECT_EQ(classify(10, "h", true, true, 9, "x"), Kind::kSize);  // size before hash
  EXPECT_EQ(classify(10, "h", true, true, 10, "x"), Kind::kCorrupt);
  EXPECT_STREQ(kind_name(Kind::kCorrupt), "corrupt");
  EXPECT_STREQ(kind_name(Kind::kUnreadable), "unreadable");
}

TEST(ScrubPlan, PassDueByInterval) {
  EXPECT_FALSE(pass_due(0, std::nullopt, kNow));  // off
  EXPECT_TRUE(pass_due(7 * kDay, std::nullopt, kNow));
  EXPECT_FALSE(pass_due(7 * kDay, kNow - 6 * kDay, kNow));
  EXPECT_TRUE(pass_due(7 * kDay, kNow - 7 * kDay, kNow));
  EXPECT_TRUE(pass_due(7 * kDay, kNow + kDay, kNow));  // clock set back
  EXPECT_EQ(next_pass_ms(7 * kDay, kNow - kDay, kNow), kNow + 6 * kDay);
  EXPECT_EQ(next_pass_ms(7 * kDay, kNow - 8 * kDay, kNow), kNow);
  EXPECT_EQ(next_pass_ms(0, kNow - 8 * kDay, kNow), 0);
}

TEST(ScrubPlan, PacerHoldsTheRate) {
  Pacer p(1'000'000);  // 1 MB/s; bucket of 250 kB
  int64_t t = 0;
  uint64_t sent = 0;
  // 10 MB in 64 KiB reads on a fake clock that advances by the waits.
  while (sent < 10'000'000) {
    t += p.take(65536, t);
    sent += 65536;
  }
  const double secs = t / 1e9;
  EXPECT_GT(secs, 9.5);
  EXPECT_LT(secs, 10.1);
}

TEST(ScrubPlan, PacerNoBurstAfterPause) {
  Pacer p(1'000'000);
  EXPECT_EQ(p.take(100'000, 0), 0);
  // An hour idle refills at most a quarter second's worth.
  const int64_t later = 3600LL * 1'000'000'000;
  EXPECT_EQ(p.take(250'000, later), 0);
  EXPECT_GT(p.take(100'000, later), 99'000'000);  // ~0.1 s
  Pacer off(0);
  EXPECT_EQ(off.take(1ull << 40, 0), 0);
}

TEST(ScrubPlan, CursorRoundTrip) {
  Cursor c{-9'223'372'036'854'775'807LL - 1, 0};
  auto back = parse_cursor(cursor_text(c));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->time_ms, c.time_ms);
  back = parse_cursor("1717200000000:42");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->time_ms, 1717200000000);
  EXPECT_EQ(back->id, 42);
  EXPECT_FALSE(parse_cursor(""));
  EXPECT_FALSE(parse_cursor("12"));
  EXPECT_FALSE(parse_cursor("1:2x"));
}

}  // namespace
}  // namespace recsync::scrub
