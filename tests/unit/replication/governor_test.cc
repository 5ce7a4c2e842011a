#include "replication/governor.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>

namespace recsync::replication {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;
constexpr uint64_t kChunk = 64 * 1024;  // a frame's worth

// Bytes granted per 10 ms slot, so any 1-s window (sliding by 10 ms) can be
// summed.
class Meter {
 public:
  void add(int64_t t_ns, uint64_t n) { slots_[t_ns / (10 * kMs)] += n; }
  uint64_t window(int64_t from_ns, int64_t len_ns = kSec) const {
    uint64_t sum = 0;
    for (int64_t s = from_ns / (10 * kMs); s < (from_ns + len_ns) / (10 * kMs); ++s) {
      auto it = slots_.find(s);
      if (it != slots_.end()) sum += it->second;
    }
    return sum;
  }

 private:
  std::map<int64_t, uint64_t> slots_;
};

// A sender with an endless backlog, woken by a 1-ms timer as libuv's would:
// it re-asks at next_available() rounded up to the next millisecond.
// `on_tick` may change the governor (rate changes) at given times.
template <typename F>
void run_saturated(Governor& g, Priority p, int64_t until_ns, Meter& m, F on_tick) {
  int64_t now = 0;
  for (int guard = 0; now < until_ns; ++guard) {
    ASSERT_LT(guard, 10'000'000) << "simulation did not advance";
    on_tick(now);
    uint64_t got = g.grant(p, kChunk, now);
    m.add(now, got);
    if (got == kChunk) continue;  // a full chunk: ask again at once
    int64_t next = g.next_available(p, kChunk, now);
    ASSERT_GT(next, now) << "a short grant must come with a later time";
    now = (next + kMs - 1) / kMs * kMs;
  }
}

void expect_windows_within(const Meter& m, int64_t from_ns, int64_t to_ns, uint64_t cap,
                           double tol) {
  int checked = 0;
  for (int64_t t = from_ns; t + kSec <= to_ns; t += 10 * kMs) {
    uint64_t got = m.window(t);
    ASSERT_GE(got, cap * (1 - tol)) << "window at " << t / kMs << " ms";
    ASSERT_LE(got, cap * (1 + tol)) << "window at " << t / kMs << " ms";
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(Governor, SaturatedSenderEveryWindowWithinFivePercent) {
  const uint64_t rate = 50'000'000;
  Governor g(rate, 0);
  EXPECT_EQ(g.burst(), default_burst(rate));
  EXPECT_LE(g.burst(), rate / 20);
  Meter m;
  run_saturated(g, Priority::kLive, 60 * kSec, m, [](int64_t) {});
  expect_windows_within(m, 0, 60 * kSec, rate, 0.05);
  // And the whole minute averages to the cap within the burst.
  EXPECT_NEAR(double(g.granted(Priority::kLive)), 60.0 * rate, double(g.burst()) + kChunk);
}

TEST(Governor, SmallRateAndOddChunksStayAccurate) {
  const uint64_t rate = 1'000'000;  // 1 MB/s: the 4 KiB floor is 0.4%
  Governor g(rate, 0);
  Meter m;
  run_saturated(g, Priority::kBulk, 20 * kSec, m, [](int64_t) {});
  expect_windows_within(m, 0, 20 * kSec, rate, 0.05);
}

TEST(Governor, RateChangeTakesEffectWithinOneWindow) {
  const uint64_t fast = 50'000'000, slow = 10'000'000;
  Governor g(fast, 0);
  Meter m;
  bool lowered = false, raised = false;
  run_saturated(g, Priority::kLive, 60 * kSec, m, [&](int64_t now) {
    if (!lowered && now >= 20 * kSec) {
      g.set_rate(slow, 0, now);
      lowered = true;
    }
    if (!raised && now >= 40 * kSec) {
      g.set_rate(fast, 0, now);
      raised = true;
    }
  });
  EXPECT_EQ(g.rate(), fast);
  expect_windows_within(m, 0, 20 * kSec, fast, 0.05);
  expect_windows_within(m, 20 * kSec, 40 * kSec, slow, 0.05);
  expect_windows_within(m, 40 * kSec, 60 * kSec, fast, 0.05);
}

TEST(Governor, ZeroRateIsUnlimited) {
  Governor g(0, 0);
  EXPECT_EQ(g.grant(Priority::kLive, 10ull << 30, 0), 10ull << 30);
  EXPECT_EQ(g.grant(Priority::kBulk, 10ull << 30, 0), 10ull << 30);
  EXPECT_EQ(g.next_available(Priority::kBulk, 1ull << 40, 5), 5);
  // Limited -> unlimited -> limited at runtime.
  g.set_rate(1'000'000, 0, 0);
  EXPECT_LE(g.grant(Priority::kLive, 10'000'000, 0), g.burst());
  EXPECT_EQ(g.grant(Priority::kLive, 10'000'000, 0), 0u);
  g.set_rate(0, 0, 1);
  EXPECT_EQ(g.grant(Priority::kLive, 10'000'000, 1), 10'000'000u);
}

TEST(Governor, NextAvailableIsExact) {
  const uint64_t rate = 1'000'000;  // 1 byte per microsecond
  Governor g(rate, 100'000, 0);
  EXPECT_EQ(g.grant(Priority::kLive, 1'000'000, 0), 100'000u);  // the full bucket
  EXPECT_EQ(g.grant(Priority::kLive, 1, 0), 0u);
  int64_t t = g.next_available(Priority::kLive, 1000, 0);
  EXPECT_EQ(t, 1000 * 1000);                               // 1000 bytes = 1 ms
  EXPECT_EQ(g.grant(Priority::kLive, 1000, t - 1), 999u);  // just short
  EXPECT_EQ(g.grant(Priority::kLive, 1000, t), 1u);
  // Asking for more than the bucket waits for a full bucket only.
  int64_t t2 = g.next_available(Priority::kLive, 10'000'000, t);
  EXPECT_EQ(t2, t + 100'000 * 1000);
  EXPECT_EQ(g.grant(Priority::kLive, 10'000'000, t2), 100'000u);
  // A clock that goes back earns nothing and breaks nothing.
  EXPECT_EQ(g.grant(Priority::kLive, 10, t2 - kSec), 0u);
}

TEST(Governor, LiveStarvesBulkWhenSaturated) {
  const uint64_t rate = 20'000'000;
  Governor g(rate, 0);
  std::optional<Governor::Waiter> live_wait;
  live_wait.emplace(&g, Priority::kLive);
  EXPECT_EQ(g.waiters(Priority::kLive), 1);
  Meter live;
  int64_t now = 0;
  for (int guard = 0; now < 10 * kSec; ++guard) {
    ASSERT_LT(guard, 1'000'000);
    // Bulk asks first in every round and must still get nothing.
    EXPECT_EQ(g.grant(Priority::kBulk, kChunk, now), 0u);
    EXPECT_GT(g.next_available(Priority::kBulk, kChunk, now), now);
    live.add(now, g.grant(Priority::kLive, kChunk, now));
    now = std::max(now + kMs, g.next_available(Priority::kLive, kChunk, now));
  }
  EXPECT_EQ(g.granted(Priority::kBulk), 0u);
  expect_windows_within(live, 0, 10 * kSec, rate, 0.05);
  live_wait.reset();
  EXPECT_EQ(g.waiters(Priority::kLive), 0);
  EXPECT_GT(g.grant(Priority::kBulk, kChunk, now + kSec), 0u);  // free again
}

TEST(Governor, BulkGetsWhatLiveLeaves) {
  const uint64_t rate = 20'000'000;
  const uint64_t live_demand = rate * 3 / 10;  // live traffic is 30% of the cap
  Governor g(rate, 0);
  Meter total;
  uint64_t live_pending = 0, live_offered = 0;
  std::optional<Governor::Waiter> live_wait;
  for (int64_t now = 0; now < 20 * kSec; now += kMs) {
    // Bulk has an endless backlog and asks first.
    total.add(now, g.grant(Priority::kBulk, rate, now));
    uint64_t arriving = live_demand / 1000;
    live_pending += arriving;
    live_offered += arriving;
    if (live_pending > 0) {
      uint64_t got = g.grant(Priority::kLive, live_pending, now);
      live_pending -= got;
      total.add(now, got);
    }
    if (live_pending > 0 && !live_wait) live_wait.emplace(&g, Priority::kLive);
    if (live_pending == 0) live_wait.reset();
  }
  // Live got everything it offered (at most a couple of ms behind).
  EXPECT_GE(g.granted(Priority::kLive), live_offered - 3 * live_demand / 1000);
  // Bulk got the rest, and the sum respects the cap in every window.
  EXPECT_NEAR(double(g.granted(Priority::kBulk)), 20.0 * (rate - live_demand), 0.05 * 20 * rate);
  expect_windows_within(total, 0, 20 * kSec, rate, 0.05);
}

}  // namespace
}  // namespace recsync::replication
