#include "watch/aggregator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

namespace recsync {
namespace {

using V = std::vector<std::string>;

TEST(Aggregator, DueAfterSettle) {
  Aggregator a(Millis(1000));
  EXPECT_FALSE(a.next_due().has_value());
  a.on_event("a.wav", 5000);
  EXPECT_EQ(a.pending(), 1u);
  EXPECT_EQ(a.next_due(), 6000);
  EXPECT_EQ(a.take_due(5999), V{});
  EXPECT_EQ(a.take_due(6000), V{"a.wav"});  // due at or before now
  EXPECT_EQ(a.pending(), 0u);
  EXPECT_EQ(a.take_due(100000), V{});
}

TEST(Aggregator, LaterEventPushesBack) {
  Aggregator a(Millis(1000));
  a.on_event("a.wav", 0);
  a.on_event("b.wav", 100);
  a.on_event("a.wav", 800);  // written again: a is due at 1800 now
  EXPECT_EQ(a.pending(), 2u);
  EXPECT_EQ(a.next_due(), 1100);
  EXPECT_EQ(a.take_due(1500), V{"b.wav"});
  EXPECT_EQ(a.take_due(1799), V{});
  EXPECT_EQ(a.take_due(1800), V{"a.wav"});
}

TEST(Aggregator, OrderedByDueThenArmingOrder) {
  Aggregator a(Millis(10));
  a.on_found("c", 30);
  a.on_found("a", 10);
  a.on_found("b", 20);
  a.on_found("d", 20);  // tie with b: armed later, comes later
  a.on_event("e", 0);   // due 10, tie with a, armed after it
  EXPECT_EQ(a.take_due(100), (V{"a", "e", "b", "d", "c"}));
}

TEST(Aggregator, FoundKeepsTheLaterDue) {
  Aggregator a(Millis(1000));
  a.on_event("a", 500);  // due 1500
  a.on_found("a", 200);  // a scan says quiet since long: must not pull it forward
  EXPECT_EQ(a.next_due(), 1500);
  a.on_found("a", 3000);  // later wins
  EXPECT_EQ(a.next_due(), 3000);
  a.on_event("a", 600);  // a fresh event re-arms from now (1600)
  EXPECT_EQ(a.next_due(), 1600);
  EXPECT_EQ(a.pending(), 1u);
}

TEST(Aggregator, Forget) {
  Aggregator a(Millis(10));
  a.on_event("a", 0);
  a.on_event("b", 1);
  a.forget("a");
  a.forget("never-armed");
  EXPECT_FALSE(a.is_pending("a"));
  EXPECT_TRUE(a.is_pending("b"));
  EXPECT_EQ(a.next_due(), 11);
  EXPECT_EQ(a.take_due(100), V{"b"});
  a.on_event("a", 200);  // armed again after forget
  EXPECT_EQ(a.take_due(210), V{"a"});
}

TEST(Aggregator, SetSettleAppliesToNewEvents) {
  Aggregator a(Millis(1000));
  a.on_event("a", 0);  // 1000
  a.set_settle(Millis(50));
  EXPECT_EQ(a.settle(), Millis(50));
  a.on_event("b", 0);  // 50
  EXPECT_EQ(a.take_due(60), V{"b"});
  EXPECT_EQ(a.take_due(999), V{});
  EXPECT_EQ(a.take_due(1000), V{"a"});
  Aggregator z(Millis(-5));  // negative = 0
  z.on_event("x", 7);
  EXPECT_EQ(z.next_due(), 7);
}

TEST(Aggregator, HundredThousandPending) {
  constexpr int kN = 100000;
  std::vector<std::string> names;
  names.reserve(kN);
  for (int i = 0; i < kN; ++i) names.push_back("2026/11/24/" + std::to_string(i) + ".wav");
  auto index_of = [](const std::string& rel) { return std::stoi(rel.substr(11)); };
  auto due_of = [](int i) -> int64_t {
    return (i % 2 == 0) ? kN + i + 1000 : (int64_t(i) * 7919) % kN + 1000;
  };

  Aggregator a(Millis(1000));
  std::chrono::steady_clock::duration spent{};
  auto timed = [&](auto&& fn) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    spent += std::chrono::steady_clock::now() - t0;
  };
  // Interleaved due times so insertion order differs from due order.
  timed([&] {
    for (int i = 0; i < kN; ++i) a.on_event(names[i], (int64_t(i) * 7919) % kN);
  });
  ASSERT_EQ(a.pending(), size_t(kN));
  // Re-arm every even file later; the odd ones keep their times.
  timed([&] {
    for (int i = 0; i < kN; i += 2) a.on_event(names[i], kN + i);
  });
  ASSERT_EQ(a.pending(), size_t(kN));
  timed([&] {
    for (int i = 1; i < kN; i += 10) a.forget(names[i]);
  });
  const size_t forgotten = (kN - 1) / 10 + 1;
  ASSERT_EQ(a.pending(), kN - forgotten);

  // Drain in steps; every path once, in due order, none before it is due.
  std::vector<char> seen(kN, 0);
  int64_t prev_now = -1, prev_due = -1;
  size_t taken = 0;
  for (int64_t now = 0; now <= 2 * kN + 2000; now += 997) {
    std::vector<std::string> batch;
    timed([&] { batch = a.take_due(now); });
    for (const auto& rel : batch) {
      int i = index_of(rel);
      ASSERT_FALSE(seen[i]) << rel;
      seen[i] = 1;
      ASSERT_NE(i % 10, 1) << "forgotten path came back: " << rel;
      int64_t due = due_of(i);
      ASSERT_LE(due, now) << rel;
      ASSERT_GT(due, prev_now) << rel;  // would have been taken a step earlier
      ASSERT_GE(due, prev_due) << rel;  // sorted
      prev_due = due;
    }
    if (a.next_due()) {
      ASSERT_GT(*a.next_due(), now);
    }
    prev_now = now;
    taken += batch.size();
  }
  EXPECT_EQ(taken, kN - forgotten);
  EXPECT_EQ(a.pending(), 0u);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(spent).count();
  // Typically ~100 ms optimised; generous for sanitizer builds.
  std::printf("aggregator work on 100k entries: %lld ms\n", (long long)ms);
#if !defined(__SANITIZE_THREAD__)  // ThreadSanitizer makes every access ~10x slower
  EXPECT_LT(ms, 3000) << "aggregator work on 100k entries took " << ms << " ms";
#endif
}

TEST(Aggregator, BatchIsSortedByDue) {
  Aggregator a(Millis(0));
  const int64_t dues[] = {50, 10, 40, 20, 30, 10, 0};
  for (int i = 0; i < 7; ++i) a.on_found("f" + std::to_string(i), dues[i]);
  EXPECT_EQ(a.take_due(45), (V{"f6", "f1", "f5", "f3", "f4", "f2"}));
  EXPECT_EQ(a.take_due(50), V{"f0"});
}

}  // namespace
}  // namespace recsync
