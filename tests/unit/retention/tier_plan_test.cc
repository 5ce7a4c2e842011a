// The retention plan with the object-store tier (keep_local): table-driven,
// fixed clock.
#include <gtest/gtest.h>

#include "retention/plan.h"

namespace recsync {
namespace {

constexpr int64_t kDay = 86400000;
constexpr int64_t kNowMs = 1717200000000;  // 2024-06-01T00:00:00Z
const WallTime kNow{Millis(kNowMs)};
// keep 15 days, keep_local 2 days, a late copy stays at least 1 day.
const RetentionPolicy kTier{Millis(15 * kDay), Millis(3600000), Millis(2 * kDay), Millis(kDay)};

RecordingRow rec(const std::string& rel, int64_t age_ms, int64_t arrived_age_ms) {
  RecordingRow r;
  r.rel = rel;
  r.name = rel.substr(0, rel.rfind('.'));
  r.hash = "xxh128:" + rel;
  r.rec_time_ms = kNowMs - age_ms;
  r.archived_at_ms = kNowMs - arrived_age_ms;
  return r;
}

enum class Where { kNone, kRemove, kOffload, kHeld, kUnstored };

Where where(const PlanResult& p, const std::string& rel) {
  int n = 0;
  Where w = Where::kNone;
  auto in = [&](const std::vector<RecordingRow>& v, Where what) {
    for (auto& r : v)
      if (r.rel == rel) {
        ++n;
        w = what;
      }
  };
  in(p.remove, Where::kRemove);
  in(p.offload, Where::kOffload);
  in(p.held, Where::kHeld);
  in(p.unstored, Where::kUnstored);
  EXPECT_LE(n, 1) << rel << " is in more than one list";
  return w;
}

TEST(TierPlan, Table) {
  struct Case {
    const char* what;
    int64_t age, arrived_age;  // ms before now
    bool held, stored;
    Where expect;
  };
  const Case cases[] = {
      {"fresh, stored", kDay, kDay, false, true, Where::kNone},
      {"exactly keep_local, stored", 2 * kDay, 2 * kDay, false, true, Where::kNone},
      {"1 ms past keep_local, stored", 2 * kDay + 1, 2 * kDay + 1, false, true, Where::kOffload},
      {"past keep_local, not stored: last copy", 3 * kDay, 3 * kDay, false, false,
       Where::kUnstored},
      {"past keep_local, stored, held", 3 * kDay, 3 * kDay, true, true, Where::kHeld},
      {"past keep_local, not stored, held", 3 * kDay, 3 * kDay, true, false, Where::kHeld},
      {"old but arrived 12 h ago (fetched back)", 10 * kDay, kDay / 2, false, true, Where::kNone},
      {"old, arrived exactly the min stay ago", 10 * kDay, kDay, false, true, Where::kNone},
      {"old, arrived just past the min stay", 10 * kDay, kDay + 1, false, true, Where::kOffload},
      {"past keep, stored", 16 * kDay, 16 * kDay, false, true, Where::kRemove},
      {"past keep, not stored: goes anyway", 16 * kDay, 16 * kDay, false, false, Where::kRemove},
      {"past keep, arrived an hour ago: goes (keep counts from the recording)", 16 * kDay,
       kDay / 24, false, false, Where::kRemove},
      {"past keep, held", 16 * kDay, 16 * kDay, true, true, Where::kHeld},
  };
  std::vector<RecordingRow> in;
  std::unordered_set<std::string> stored;
  std::vector<HoldRow> holds;
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    in.push_back(rec("r" + std::to_string(i) + ".wav", c.age, c.arrived_age));
    if (c.stored) stored.insert(in.back().rel);
    if (c.held) holds.push_back({in.back().name, "why", 1});
  }
  PlanResult p = plan_retention(in, HoldSet(holds), kNow, kTier, &stored);
  for (size_t i = 0; i < std::size(cases); ++i)
    EXPECT_EQ(int(where(p, in[i].rel)), int(cases[i].expect)) << cases[i].what;
  // Input order is kept within each list.
  ASSERT_EQ(p.offload.size(), 2u);
  EXPECT_EQ(p.offload[0].rel, "r2.wav");
  EXPECT_EQ(p.offload[1].rel, "r8.wav");
}

TEST(TierPlan, WithoutAStoredSetNothingIsOffloaded) {
  PlanResult p = plan_retention({rec("a.wav", 3 * kDay, 3 * kDay)}, HoldSet(), kNow, kTier);
  EXPECT_TRUE(p.offload.empty());
  ASSERT_EQ(p.unstored.size(), 1u);
}

TEST(TierPlan, NoTierIsThePlainPlan) {
  RetentionPolicy plain{Millis(15 * kDay), Millis(3600000)};
  std::unordered_set<std::string> stored{"a.wav", "b.wav"};
  PlanResult p =
      plan_retention({rec("a.wav", 3 * kDay, 3 * kDay), rec("b.wav", 16 * kDay, 16 * kDay)},
                     HoldSet(), kNow, plain, &stored);
  EXPECT_TRUE(p.offload.empty());
  EXPECT_TRUE(p.unstored.empty());
  ASSERT_EQ(p.remove.size(), 1u);
  EXPECT_EQ(p.remove[0].rel, "b.wav");
}

TEST(TierPlan, KeepZeroWithATierOffloadsButNeverRemoves) {
  RetentionPolicy forever{Millis(0), Millis(3600000), Millis(2 * kDay)};
  std::unordered_set<std::string> stored{"a.wav", "b.wav"};
  PlanResult p =
      plan_retention({rec("a.wav", 3 * kDay, 3 * kDay), rec("b.wav", 400 * kDay, 400 * kDay)},
                     HoldSet(), kNow, forever, &stored);
  EXPECT_TRUE(p.remove.empty());
  EXPECT_EQ(p.offload.size(), 2u);
  EXPECT_EQ(clock_refusal(kNow, kNowMs, forever), "");
  EXPECT_EQ(clock_refusal(kNow, kNowMs, RetentionPolicy{}), "retention disabled");
}

TEST(TierPlan, CandidateCutoff) {
  EXPECT_EQ(candidate_cutoff_ms(kNow, kTier), kNowMs - 2 * kDay);
  EXPECT_EQ(candidate_cutoff_ms(kNow, RetentionPolicy{Millis(15 * kDay), Millis(0)}),
            kNowMs - 15 * kDay);
  EXPECT_EQ(candidate_cutoff_ms(kNow, RetentionPolicy{Millis(0), Millis(0), Millis(kDay)}),
            kNowMs - kDay);
  EXPECT_EQ(candidate_cutoff_ms(kNow, RetentionPolicy{}), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(offload_policy_string(kTier), "retention keep_local=2d, object verified in the store");
}

}  // namespace
}  // namespace recsync
