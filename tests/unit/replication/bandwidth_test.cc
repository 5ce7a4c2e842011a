// The cap in force (replication/bandwidth.h): precedence of override,
// schedule and config as a pure function, and BandwidthControl with a fixed
// clock: the governor follows, an override ends by itself, survives a reload,
// and every change of the override is audited in the log.
#include "replication/bandwidth.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>

#include "recsync/log.h"

namespace recsync::replication {
namespace {

constexpr int64_t kNow = 1'750'000'000'000;  // 2025-06-15T15:06:40Z
constexpr int64_t kHour = 3'600'000;

BandwidthSettings settings(uint64_t bps, const std::string& sched = "") {
  auto s = parse_schedule(sched);
  EXPECT_TRUE(s) << s.status().to_string();
  return {bps, s ? *s : Schedule{}, sched};
}

TEST(BandwidthAt, OverrideBeatsScheduleBeatsConfigUntilItEnds) {
  const BandwidthSettings s = settings(50'000'000, "08:00-20:00=20MB/s");
  BandwidthState st = bandwidth_at(s, 7 * 60);
  EXPECT_EQ(st.cap_bps, 50'000'000u);
  EXPECT_EQ(st.source, "config");
  EXPECT_FALSE(st.override_in_force);
  st = bandwidth_at(s, 9 * 60);
  EXPECT_EQ(st.cap_bps, 20'000'000u);
  EXPECT_EQ(st.source, "schedule");

  const BandwidthOverride o{5'000'000, 1000, kNow, kNow + kHour};
  st = bandwidth_at(s, 9 * 60, o, kNow + kHour - 1);
  EXPECT_EQ(st.cap_bps, 5'000'000u);
  EXPECT_EQ(st.source, "override");
  EXPECT_EQ(st.base_bps, 20'000'000u) << "what applies once it ends";
  EXPECT_EQ(st.base_source, "schedule");
  ASSERT_TRUE(st.override_in_force);
  EXPECT_EQ(st.override_in_force->uid, 1000u);
  st = bandwidth_at(s, 9 * 60, o, kNow + kHour);
  EXPECT_EQ(st.source, "schedule") << "ended at until_ms exactly";
  EXPECT_FALSE(st.override_in_force);

  const BandwidthOverride forever{0, 0, kNow, 0};  // no cap, until cleared
  st = bandwidth_at(s, 7 * 60, forever, kNow + 1000 * kHour);
  EXPECT_EQ(st.cap_bps, 0u);
  EXPECT_EQ(st.source, "override");
  EXPECT_EQ(st.base_bps, 50'000'000u);
  EXPECT_TRUE(override_expired(o, kNow + kHour));
  EXPECT_FALSE(override_expired(forever, INT64_MAX));
}

class BandwidthControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lg = log::get("replication");
    sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    lg->sinks().push_back(sink_);
  }
  void TearDown() override {
    auto& sinks = log::get("replication")->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  static WallTime at(int64_t ms) { return from_ms(ms); }
  std::string log() { return out_.str(); }

  std::ostringstream out_;
  spdlog::sink_ptr sink_;
  Governor gov_{50'000'000, 0, 0};
};

TEST_F(BandwidthControlTest, OverrideAppliesAtOnceAndEndsByItself) {
  BandwidthControl bc(&gov_, settings(50'000'000));
  bc.apply(at(kNow), "start");
  BandwidthState st = bc.set_override(10'000'000, Millis(kHour), 1000, at(kNow));
  EXPECT_EQ(st.cap_bps, 10'000'000u);
  EXPECT_EQ(st.source, "override");
  EXPECT_EQ(gov_.rate(), 10'000'000u) << "the governor follows at once";
  EXPECT_NE(log().find("bandwidth override by uid 1000: replication bandwidth cap 50 MB/s "
                       "(config) -> 10 MB/s until 2025-06-15T16:06:40Z"),
            std::string::npos)
      << log();
  bc.apply(at(kNow + kHour - 1000), "tick");
  EXPECT_EQ(bc.state().source, "override");
  EXPECT_EQ(gov_.rate(), 10'000'000u);
  bc.apply(at(kNow + kHour), "tick");
  EXPECT_EQ(bc.state().source, "config");
  EXPECT_FALSE(bc.state().override_in_force);
  EXPECT_EQ(gov_.rate(), 50'000'000u);
  EXPECT_NE(log().find("bandwidth override set by uid 1000 expired: replication bandwidth cap "
                       "10 MB/s -> 50 MB/s (config)"),
            std::string::npos)
      << log();
  EXPECT_FALSE(bc.clear_override(0, at(kNow + kHour))) << "nothing left to clear";
}

TEST_F(BandwidthControlTest, ReloadKeepsTheOverrideAndClearReturnsToTheNewConfig) {
  BandwidthControl bc(&gov_, settings(50'000'000));
  bc.set_override(0, Millis(0), 0, at(kNow));  // no cap, until cleared
  EXPECT_EQ(gov_.rate(), 0u);
  EXPECT_NE(log().find("-> unlimited until cleared"), std::string::npos) << log();
  bc.reload(settings(30'000'000, "00:00-24:00=2MB/s"), at(kNow + kHour));
  BandwidthState st = bc.state();
  EXPECT_EQ(st.source, "override") << "SIGHUP keeps it";
  EXPECT_EQ(st.cap_bps, 0u);
  EXPECT_EQ(st.base_bps, 2'000'000u);
  EXPECT_EQ(st.base_source, "schedule");
  EXPECT_EQ(gov_.rate(), 0u);
  bc.apply(at(kNow + 1000 * kHour), "tick");
  EXPECT_EQ(bc.state().source, "override") << "no end time: it lasts";
  EXPECT_TRUE(bc.clear_override(1001, at(kNow + 1000 * kHour)));
  EXPECT_EQ(bc.state().source, "schedule");
  EXPECT_EQ(gov_.rate(), 2'000'000u);
  EXPECT_NE(log().find("bandwidth override cleared by uid 1001: replication bandwidth cap "
                       "unlimited -> 2 MB/s (schedule)"),
            std::string::npos)
      << log();
  EXPECT_FALSE(bc.clear_override(1001, at(kNow + 1000 * kHour)));
}

TEST_F(BandwidthControlTest, ANewOverrideReplacesTheOldOne) {
  BandwidthControl bc(&gov_, settings(50'000'000));
  bc.set_override(1'000'000, Millis(kHour), 5, at(kNow));
  bc.set_override(2'000'000, Millis(2 * kHour), 6, at(kNow + 1000));
  BandwidthState st = bc.state();
  ASSERT_TRUE(st.override_in_force);
  EXPECT_EQ(st.override_in_force->uid, 6u);
  EXPECT_EQ(st.override_in_force->until_ms, kNow + 1000 + 2 * kHour);
  EXPECT_EQ(gov_.rate(), 2'000'000u);
  bc.apply(at(kNow + kHour + 1), "tick");
  EXPECT_EQ(bc.state().source, "override") << "the first one's end does not apply";
}

}  // namespace
}  // namespace recsync::replication
