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

TEST(PeerClockVerdict, RefusesBeyondToleranceAndErrorBoundWaitsBoundedForAFirstComparison) {
  const int64_t start = kNowMs - 10'000;  // started 10 s ago
  auto v = [&](std::vector<PeerClock> peers, int64_t now = kNowMs, RetentionPolicy p = kPolicy) {
    return peer_clock_verdict(peers, now, start, p);
  };
  // No peers, or peers within tolerance: nothing in the way.
  EXPECT_EQ(v({}).refusal, "");
  EXPECT_EQ(v({}).waiting, "");
  EXPECT_EQ(v({{"fs2", kNowMs - 1000, 3'599'000, 2}}).refusal, "");
  // Beyond tolerance + rtt/2, either way: refused, naming peer and offset.
  EXPECT_EQ(v({{"fs2", kNowMs - 1000, 3 * kDay + 12, 0.4}}).refusal,
            "clock differs from peer fs2 by 3d (the peer is ahead); tolerance 1h");
  EXPECT_EQ(v({{"fs2", kNowMs - 1000, -(3600000.0 + 1400), 2}}).refusal,
            "clock differs from peer fs2 by 1h1s (the peer is behind); tolerance 1h");
  // Within the error bound: 1 h + 400 ms off with a 1 s round trip is no proof.
  EXPECT_EQ(v({{"fs2", kNowMs - 1000, 3600000.0 + 400, 1000}}).refusal, "");
  // Every offending peer is named; an unmeasured one does not hide them.
  EXPECT_EQ(
      v({{"fs2", kNowMs, 2 * kDay, 1}, {"fs3", 0, 0, 0}, {"fs4", kNowMs, -7200000.0, 1}}).refusal,
      "clock differs from peer fs2 by 2d (the peer is ahead), peer fs4 by 2h (the peer is "
      "behind); tolerance 1h");
  // A stale measurement (link gone for over an hour) counts no more.
  EXPECT_EQ(v({{"fs2", kNowMs - 3'600'001, 2 * kDay, 1}}).refusal, "");
  // Not compared yet: wait, but only until start + kPeerClockWait.
  auto w = v({{"fs2", 0, 0, 0}, {"fs3", kNowMs, 0, 1}});
  EXPECT_EQ(w.refusal, "");
  EXPECT_EQ(w.waiting, "waiting for a clock comparison with fs2");
  EXPECT_EQ(v({{"fs2", 0, 0, 0}}, start + kPeerClockWait.count() - 1).waiting,
            "waiting for a clock comparison with fs2");
  EXPECT_EQ(v({{"fs2", 0, 0, 0}}, start + kPeerClockWait.count()).waiting, "");
  // Retention disabled: neither.
  const RetentionPolicy off{Millis(0), Millis(3600000)};
  EXPECT_EQ(v({{"fs2", kNowMs, 2 * kDay, 1}}, kNowMs, off).refusal, "");
  EXPECT_EQ(v({{"fs2", 0, 0, 0}}, kNowMs, off).waiting, "");
}

}  // namespace
}  // namespace recsync
