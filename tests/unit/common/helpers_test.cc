// The small shared helpers: backoff, doorbell, stop flag, time formatting,
// relative path checks.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "recsync/backoff.h"
#include "recsync/clock.h"
#include "recsync/doorbell.h"
#include "recsync/names.h"
#include "recsync/stop_flag.h"

namespace recsync {
namespace {

using namespace std::chrono_literals;

TEST(Backoff, DoublesFromTheFloorUpToTheCapWithBoundedJitter) {
  const Backoff b{500, 30'000, 0.25};
  EXPECT_EQ(b.base_ms(0), 500);
  EXPECT_EQ(b.base_ms(1), 1000);
  EXPECT_EQ(b.base_ms(5), 16'000);
  EXPECT_EQ(b.base_ms(6), 30'000);
  EXPECT_EQ(b.base_ms(100), 30'000);
  std::mt19937_64 rng(1);
  int64_t lo = INT64_MAX, hi = 0;
  for (int i = 0; i < 2000; ++i) {
    int64_t d = b.delay_ms(2, rng);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_GE(lo, 2000);
  EXPECT_LE(hi, 2500);
  EXPECT_GT(hi - lo, 300) << "jitter spreads the waits";
  EXPECT_EQ((Backoff{1000, 1000, 0}.delay_ms(7, rng)), 1000);
}

TEST(Doorbell, ARingBetweenLookAndWaitIsNotLost) {
  Doorbell d;
  const uint64_t seen = d.count();
  d.ring();  // before the wait
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(d.wait_for(seen, 10s), seen);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(d.wait_for(d.count(), 20ms), d.count()) << "times out without a ring";
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    d.ring();
  });
  const uint64_t now = d.count();
  EXPECT_EQ(d.wait_for(now, 10s), now + 1);
  t.join();
}

TEST(StopFlag, WakesSleepers) {
  StopFlag f;
  EXPECT_FALSE(f.sleep_for(10ms));
  std::thread t([&] {
    std::this_thread::sleep_for(50ms);
    f.stop();
  });
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(f.sleep_for(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  t.join();
  EXPECT_TRUE(f.stopped());
  EXPECT_TRUE(f.flag().load());
}

TEST(Clock, OneFormatterForStatusAndAudit) {
  EXPECT_EQ(format_utc(1'714'564'800'123, TimeFormat::kSeconds), "2024-05-01T12:00:00Z");
  EXPECT_EQ(format_utc(1'714'564'800'123, TimeFormat::kMillis), "2024-05-01T12:00:00.123Z");
  EXPECT_EQ(iso8601_utc_ms(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_utc(0, TimeFormat::kSeconds, /*blank_unset=*/true), "");
  EXPECT_EQ(format_utc(0, TimeFormat::kSeconds), "1970-01-01T00:00:00Z");
  EXPECT_EQ(to_ms(from_ms(1'714'564'800'123)), 1'714'564'800'123);
}

TEST(RelPath, StructuralChecksAlwaysStrictOnesForPeers) {
  for (const char* bad : {"", "/abs", "a//b", "a/", "./a", "a/../b", ".."})
    EXPECT_NE(rel_path_problem(bad, false), nullptr) << bad;
  EXPECT_EQ(rel_path_problem("2024/05/01/a b.wav", false), nullptr);
  EXPECT_EQ(rel_path_problem("a/.hidden", false), nullptr) << "structure only";
  EXPECT_STREQ(rel_path_problem("a/.hidden", true), "hidden component");
  EXPECT_STREQ(rel_path_problem("a\x01.wav", true), "contains a control character");
  EXPECT_STREQ(rel_path_problem(std::string(256, 'x'), true), "component longer than 255 bytes");
  EXPECT_EQ(rel_path_problem("2024/05/01/a.wav", true), nullptr);
}

}  // namespace
}  // namespace recsync
