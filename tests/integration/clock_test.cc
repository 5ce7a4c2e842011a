// Clock safety across nodes (SPEC 4.4): two real recsyncd over TLS on
// 127.0.0.1, one of them with its clock days ahead through libfaketime (file
// times untouched). Root only; skipped with a reason otherwise, or without
// libfaketime (Debian package faketime).
#include <sys/stat.h>
#include <utime.h>

#include <cmath>
#include <cstdlib>
#include <thread>

#include "node.h"

namespace recsync::test {
namespace {

using json = nlohmann::json;
constexpr int64_t kDay = 24 * 3600;

const char* faketime_lib() {
  for (const char* p : {"/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1"})
    if (file_exists(p)) return p;
  return nullptr;
}

// A recording adopted from the archive, recorded `age_s` ago (real time).
void archived(Node& n, const std::string& rel, int64_t age_s) {
  write_file(n.archive + "/" + rel, "pcm " + rel);
  struct utimbuf t;
  t.actime = t.modtime = time(nullptr) - age_s;
  ASSERT_EQ(utime((n.archive + "/" + rel).c_str(), &t), 0);
}

std::string alarms(const json& s) {
  std::string out;
  if (s.is_object() && s.contains("alarms"))
    for (auto& a : s["alarms"]) out += a["text"].get<std::string>() + "\n";
  return out;
}

// Runs a pass now and waits until it has finished: last_prune (whole
// seconds) changes.
json prune_and_wait(Node& n) {
  json s = n.status();
  const std::string before = s.is_object() ? s["retention"]["last_prune"].get<std::string>() : "";
  std::this_thread::sleep_for(1100ms);
  EXPECT_EQ(n.cli({"prune"}).exit_code, 0);
  EXPECT_TRUE(wait_until(
      [&] {
        s = n.status();
        return s.is_object() && s["retention"]["last_prune"].get<std::string>() != before &&
               !s["retention"]["running"].get<bool>();
      },
      30s))
      << "no pass finished: " << s.dump();
  return s;
}

TEST(PeerClock, ANodeDaysAheadPrunesNothingAndBothAlarmCorrectClocksPrune) {
  RECSYNC_REQUIRE_ROOT();
  const char* lib = faketime_lib();
  if (!lib) GTEST_SKIP() << "libfaketime not installed (Debian package faketime)";
  PairOptions o;
  o.base.layout = "flat";
  o.base.retention = "keep = \"2d\"\ninterval = \"1h\"\npace = 0\nclock_tolerance = \"1h\"\n";
  Pair p(o);
  Node& fs1 = *p.fs1;
  Node& fs2 = *p.fs2;
  archived(fs1, "recent.wav", 1 * kDay);  // 4 days old to a clock 3 days ahead
  archived(fs1, "old.wav", 5 * kDay);
  archived(fs2, "peer-recent.wav", 1 * kDay);
  // fs1's wall clock runs 3 days ahead; its monotonic clock is left alone.
  // Under AddressSanitizer the preloaded library comes before ASan's runtime,
  // which ASan refuses at start unless told that this order is intended.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string asan_options =
      (asan && *asan ? std::string(asan) + ":" : std::string()) + "verify_asan_link_order=0";
  fs1.start({{"LD_PRELOAD", lib},
             {"ASAN_OPTIONS", asan_options},
             {"FAKETIME", "+3d"},
             {"FAKETIME_DONT_FAKE_MONOTONIC", "1"},
             {"FAKETIME_NO_CACHE", "1"}});
  fs2.start();
  ASSERT_TRUE(p.wait_connected(30s)) << describe(p);
  // Each side measures the other, the sign from its own point of view.
  json c1, c2;
  ASSERT_TRUE(wait_until(
      [&] {
        c1 = fs1.peer_status("fs2");
        c2 = fs2.peer_status("fs1");
        return c1.is_object() && c1["clock_offset_s"].is_number() && c2.is_object() &&
               c2["clock_offset_s"].is_number();
      },
      20s))
      << c1.dump() << "\n"
      << c2.dump();
  EXPECT_NEAR(c1["clock_offset_s"].get<double>(), -3.0 * kDay, 60) << c1.dump();
  EXPECT_NEAR(c2["clock_offset_s"].get<double>(), 3.0 * kDay, 60) << c2.dump();

  // fs1 would take recent.wav for 4 days old: the peer's clock stops it.
  json s1 = prune_and_wait(fs1);
  EXPECT_EQ(s1["retention"]["refused"],
            "clock differs from peer fs2 by 3d (the peer is behind); tolerance 1h")
      << s1["retention"].dump();
  EXPECT_NE(alarms(s1).find("retention refused: clock differs from peer fs2 by 3d"),
            std::string::npos)
      << alarms(s1);
  EXPECT_TRUE(file_exists(fs1.archive + "/recent.wav"));
  EXPECT_TRUE(file_exists(fs1.archive + "/old.wav"));
  RunResult dry = fs1.cli({"prune", "--dry-run", "--json"});
  EXPECT_NE(dry.out.find("clock differs from peer fs2"), std::string::npos) << dry.out << dry.err;
  // The node with the right clock cannot tell which one is wrong: it stops too.
  json s2 = prune_and_wait(fs2);
  EXPECT_EQ(s2["retention"]["refused"],
            "clock differs from peer fs1 by 3d (the peer is ahead); tolerance 1h")
      << s2["retention"].dump();
  EXPECT_NE(alarms(s2).find("peer fs1 by 3d"), std::string::npos) << alarms(s2);
  EXPECT_TRUE(file_exists(fs2.archive + "/peer-recent.wav"));
  EXPECT_NE(fs1.log().find("retention refused: clock differs from peer fs2"), std::string::npos);

  // Clock fixed: fs1 restarts on the real time; the first pass waits for the
  // comparison, then prunes by the policy as before.
  fs1.stop();
  fs1.start();
  ASSERT_TRUE(p.wait_connected(30s)) << describe(p);
  ASSERT_TRUE(wait_until(
      [&] {
        json c = fs1.peer_status("fs2");
        return c.is_object() && c["clock_offset_s"].is_number() &&
               std::abs(c["clock_offset_s"].get<double>()) < 60;
      },
      20s));
  s1 = prune_and_wait(fs1);
  EXPECT_EQ(s1["retention"]["refused"], "") << s1["retention"].dump();
  EXPECT_EQ(alarms(s1).find("retention refused"), std::string::npos) << alarms(s1);
  ASSERT_TRUE(wait_until([&] { return !file_exists(fs1.archive + "/old.wav"); }, 20s));
  EXPECT_TRUE(file_exists(fs1.archive + "/recent.wav"));
  // And fs2 agrees once it has measured the fixed clock.
  ASSERT_TRUE(wait_until(
      [&] {
        json c = fs2.peer_status("fs1");
        return c.is_object() && c["clock_offset_s"].is_number() &&
               std::abs(c["clock_offset_s"].get<double>()) < 60;
      },
      30s));
  s2 = prune_and_wait(fs2);
  EXPECT_EQ(s2["retention"]["refused"], "") << s2["retention"].dump();
  fs1.stop();
  fs2.stop();
}

}  // namespace
}  // namespace recsync::test
