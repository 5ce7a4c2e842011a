#include "retention/plan.h"

#include <gtest/gtest.h>

namespace recsync {
namespace {

constexpr int64_t kDay = 86400000;
// 2024-06-01T00:00:00Z
constexpr int64_t kNowMs = 1717200000000;
const WallTime kNow{Millis(kNowMs)};
const RetentionPolicy kPolicy{Millis(15 * kDay), Millis(3600000)};

RecordingRow rec(const std::string& rel, int64_t rec_time_ms) {
  RecordingRow r;
  r.rel = rel;
  std::string base = rel.substr(rel.rfind('/') + 1);
  r.name = base.substr(0, base.rfind('.'));
  r.rec_time_ms = rec_time_ms;
  return r;
}

std::vector<std::string> rels(const std::vector<RecordingRow>& rows) {
  std::vector<std::string> out;
  for (const auto& r : rows) out.push_back(r.rel);
  return out;
}

TEST(PlanRetention, AgeBoundaries) {
  struct Case {
    const char* what;
    int64_t age_ms;  // now - rec_time
    bool removed;
  };
  const Case cases[] = {
      {"brand new", 0, false},
      {"one day", kDay, false},
      {"1 ms short of keep", 15 * kDay - 1, false},
      {"exactly keep", 15 * kDay, false},
      {"1 ms past keep", 15 * kDay + 1, true},
      {"a year", 365 * kDay, true},
      {"in the future", -kDay, false},
  };
  for (const Case& c : cases) {
    PlanResult p = plan_retention({rec("d/x.wav", kNowMs - c.age_ms)}, HoldSet(), kNow, kPolicy);
    EXPECT_EQ(p.remove.size(), c.removed ? 1u : 0u) << c.what;
    EXPECT_TRUE(p.held.empty()) << c.what;
  }
}

TEST(PlanRetention, HoldsByNameAndByRel) {
  const int64_t old = kNowMs - 20 * kDay;
  std::vector<RecordingRow> in = {
      rec("2024/05/01/free.wav", old),
      rec("2024/05/01/by-name.wav", old),
      rec("2024/05/02/by-name.wav", old),  // the same id in another folder: held too
      rec("2024/05/01/by-rel.wav", old),
      rec("2024/05/02/by-rel.wav", old),             // not this copy
      rec("2024/05/31/by-name.wav", kNowMs - kDay),  // young: neither list
  };
  HoldSet holds({{"by-name", "legal", 1}, {"2024/05/01/by-rel.wav", "dispute", 2}});
  EXPECT_EQ(holds.size(), 2u);
  PlanResult p = plan_retention(in, holds, kNow, kPolicy);
  EXPECT_EQ(rels(p.remove),
            (std::vector<std::string>{"2024/05/01/free.wav", "2024/05/02/by-rel.wav"}));
  EXPECT_EQ(rels(p.held),
            (std::vector<std::string>{"2024/05/01/by-name.wav", "2024/05/02/by-name.wav",
                                      "2024/05/01/by-rel.wav"}));
}

TEST(PlanRetention, HoldSetMatching) {
  HoldSet holds({{"abc", "", 0}, {"x/y.wav", "", 0}});
  EXPECT_TRUE(holds.held(rec("q/abc.wav", 0)));
  EXPECT_TRUE(holds.held(rec("x/y.wav", 0)));
  EXPECT_FALSE(holds.held(rec("x/abcd.wav", 0)));
  EXPECT_FALSE(holds.held(rec("z/x/y.wav", 0)));  // rel must match whole
  EXPECT_EQ(HoldSet().size(), 0u);
}

TEST(PlanRetention, DisabledKeepsEverything) {
  RetentionPolicy off{Millis(0), Millis(0)};
  PlanResult p = plan_retention({rec("a/b.wav", 0)}, HoldSet(), kNow, off);
  EXPECT_TRUE(p.remove.empty());
  EXPECT_TRUE(p.held.empty());
}

TEST(ClockRefusal, Table) {
  struct Case {
    const char* what;
    int64_t now_ms;
    int64_t newest_ms;
    RetentionPolicy p;
    std::string expect_prefix;  // "" = pruning allowed
  };
  const Case cases[] = {
      {"normal", kNowMs, kNowMs - 1000, kPolicy, ""},
      {"no recordings", kNowMs, 0, kPolicy, ""},
      {"newest within tolerance", kNowMs, kNowMs + 3600000, kPolicy, ""},
      {"newest just past tolerance", kNowMs, kNowMs + 3600001, kPolicy,
       "clock is behind the newest recording by 1h1ms (tolerance 1h)"},
      {"two days behind", kNowMs, kNowMs + 2 * kDay, kPolicy,
       "clock is behind the newest recording by 2d"},
      {"booted in 1970", 5000, 0, kPolicy, "clock implausible"},
      {"just before 2020", kPlausibleEpochMs - 1, 0, kPolicy, "clock implausible"},
      {"exactly 2020", kPlausibleEpochMs, 0, kPolicy, ""},
      {"disabled", kNowMs, 0, RetentionPolicy{Millis(0), Millis(3600000)}, "retention disabled"},
      {"disabled wins over bad clock", 5000, 0, RetentionPolicy{Millis(0), Millis(0)},
       "retention disabled"},
  };
  for (const Case& c : cases) {
    std::string r = clock_refusal(WallTime(Millis(c.now_ms)), c.newest_ms, c.p);
    if (c.expect_prefix.empty()) {
      EXPECT_EQ(r, "") << c.what;
    } else {
      EXPECT_EQ(r.rfind(c.expect_prefix, 0), 0u) << c.what << ": got \"" << r << "\"";
    }
  }
}

TEST(Formatting, SpanPolicyAndIsoTime) {
  EXPECT_EQ(format_span(Millis(15 * kDay)), "15d");
  EXPECT_EQ(format_span(Millis(kDay + 12 * 3600000)), "1d12h");
  EXPECT_EQ(format_span(Millis(90000)), "1m30s");
  EXPECT_EQ(format_span(Millis(1500)), "1s500ms");
  EXPECT_EQ(format_span(Millis(0)), "0s");
  EXPECT_EQ(format_span(Millis(-2000)), "-2s");
  EXPECT_EQ(policy_string(kPolicy), "retention keep=15d");
  EXPECT_EQ(iso8601_utc_ms(kNowMs), "2024-06-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc_ms(kNowMs + 61001), "2024-06-01T00:01:01.001Z");
  EXPECT_EQ(iso8601_utc_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc_ms(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(retention_cutoff_ms(kNow, kPolicy), kNowMs - 15 * kDay);
}

}  // namespace
}  // namespace recsync
