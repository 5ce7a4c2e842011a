// Status JSON and alarms as a pure function of component snapshots and a
// time (daemon/status.h).
#include "daemon/status.h"

#include <gtest/gtest.h>

namespace recsync {
namespace {

using json = nlohmann::json;
using replication::PeerState;
using replication::PeerStatus;

constexpr int64_t kNow = 1'750'000'000'000;  // 2025-06-15T15:06:40Z

StatusInputs base() {
  StatusInputs in;
  in.node = "fs1";
  in.version = "9.9.9";
  in.start_ms = kNow - 125'000;
  in.spool_path = "/spool";
  in.archive_path = "/archive";
  in.layout = "date";
  in.bandwidth_default_bps = 50'000'000;
  in.bandwidth = {50'000'000, "config"};
  in.retention.settings.policy.keep = Millis(15LL * 24 * 3600 * 1000);
  return in;
}

std::vector<std::string> texts(const std::vector<Alarm>& a) {
  std::vector<std::string> t;
  for (auto& x : a) t.push_back(x.severity + ": " + x.text);
  return t;
}

TEST(StatusJson, CarriesTheFieldsSpecSectionSevenNames) {
  StatusInputs in = base();
  in.spool.files = 3;
  in.spool.bytes = 300;
  in.spool.oldest_ms = kNow - 7'000;
  in.spool.in_flight = 1;
  in.spool.archived_files = 42;
  in.spool.last_archived_ms = kNow - 1000;
  in.spool_usage.used_pct = 12.5;
  in.archive.files = 1000;
  in.archive.bytes = 1'000'000;
  in.archive_usage.used_pct = 40.2;
  in.reconciled = true;
  in.retention.last_prune_ms = kNow - 3'600'000;
  in.retention.last.removed = 7;
  in.pruned_total = 99;
  in.holds = 2;
  json j = status_json(in, kNow);
  EXPECT_EQ(j["node"], "fs1");
  EXPECT_EQ(j["version"], "9.9.9");
  EXPECT_EQ(j["uptime_s"], 125);
  EXPECT_EQ(j["spool"]["files"], 3);
  EXPECT_EQ(j["spool"]["bytes"], 300);
  EXPECT_EQ(j["spool"]["oldest_s"], 7);
  EXPECT_DOUBLE_EQ(j["spool"]["used_pct"].get<double>(), 12.5);
  EXPECT_EQ(j["archive"]["files"], 1000);
  EXPECT_EQ(j["archive"]["pending"], 3);
  EXPECT_EQ(j["archive"]["in_flight"], 1);
  EXPECT_EQ(j["archive"]["archived_since_start"], 42);
  EXPECT_EQ(j["archive"]["last_archived"], "2025-06-15T15:06:39Z");
  EXPECT_EQ(j["archive"]["reconciled"], true);
  EXPECT_EQ(j["replication"]["enabled"], false);
  EXPECT_EQ(j["replication"]["bandwidth_bps"], 50'000'000);
  EXPECT_EQ(j["replication"]["queue"]["files"], 0);
  EXPECT_TRUE(j["peers"].is_array());
  EXPECT_TRUE(j["peers"].empty());
  EXPECT_EQ(j["retention"]["keep_s"], 1'296'000);
  EXPECT_EQ(j["retention"]["last_prune"], "2025-06-15T14:06:40Z");
  EXPECT_EQ(j["retention"]["next_prune"], "") << "never: blank";
  EXPECT_EQ(j["retention"]["last_pruned"], 7);
  EXPECT_EQ(j["retention"]["pruned_total"], 99);
  EXPECT_EQ(j["retention"]["holds"], 2);
  EXPECT_TRUE(j["alarms"].empty());
}

TEST(StatusJson, PeersAndTheirQueuesAddUp) {
  StatusInputs in = base();
  replication::ServiceStatus rs;
  rs.listen = "0.0.0.0:7373";
  rs.listen_port = 7373;
  rs.bandwidth_bps = 20'000'000;
  rs.rate_bps = 1234;
  PeerStatus a;
  a.name = "fs2";
  a.state = PeerState::kConnected;
  a.connected_since_ms = kNow - 60'000;
  a.last_ack_ms = kNow - 500;
  a.rtt_ms = 0.25;
  a.queue.live_files = 2;
  a.queue.live_bytes = 20;
  a.queue.oldest_enqueued_ms = kNow - 30'000;
  a.in_flight = replication::InFlight{"x.wav", 100, 50, 40, kNow - 2000};
  PeerStatus b;
  b.name = "fs3";
  b.state = PeerState::kBackoff;
  b.queue.retry_files = 1;
  b.queue.retry_bytes = 5;
  b.queue.oldest_enqueued_ms = kNow - 90'000;
  rs.peers = {a, b};
  in.repl = rs;
  in.bandwidth = {20'000'000, "schedule"};
  json j = status_json(in, kNow);
  EXPECT_EQ(j["replication"]["enabled"], true);
  EXPECT_EQ(j["replication"]["bandwidth_bps"], 20'000'000);
  EXPECT_EQ(j["replication"]["bandwidth_default_bps"], 50'000'000);
  EXPECT_EQ(j["replication"]["bandwidth_source"], "schedule");
  EXPECT_EQ(j["replication"]["rate_bps"], 1234);
  EXPECT_EQ(j["replication"]["queue"]["files"], 3);
  EXPECT_EQ(j["replication"]["queue"]["bytes"], 25);
  EXPECT_EQ(j["replication"]["queue"]["oldest_s"], 90);
  ASSERT_EQ(j["peers"].size(), 2u);
  EXPECT_EQ(j["peers"][0]["state"], "connected");
  EXPECT_EQ(j["peers"][0]["connected_s"], 60);
  EXPECT_DOUBLE_EQ(j["peers"][0]["last_ack_s"].get<double>(), 0.5);
  EXPECT_EQ(j["peers"][0]["in_flight"]["read_bytes"], 50);
  EXPECT_DOUBLE_EQ(j["peers"][0]["in_flight"]["elapsed_s"].get<double>(), 2.0);
  EXPECT_TRUE(j["peers"][1]["connected_s"].is_null());
  EXPECT_TRUE(j["peers"][1]["last_ack_s"].is_null());
  EXPECT_TRUE(j["peers"][1]["rtt_ms"].is_null());
  EXPECT_EQ(j["peers"][1]["queue"]["retry"]["files"], 1);
}

TEST(StatusJson, BandwidthOverrideShowsWhoAndUntilWhen) {
  StatusInputs in = base();
  json j = status_json(in, kNow);
  EXPECT_EQ(j["replication"]["bandwidth_source"], "config");
  EXPECT_TRUE(j["replication"]["bandwidth_override"].is_null());
  in.bandwidth = replication::bandwidth_at({50'000'000, {}, ""}, 0,
                                           replication::BandwidthOverride{0, 1000, kNow, 0}, kNow);
  j = status_json(in, kNow);
  EXPECT_EQ(j["replication"]["bandwidth_bps"], 0) << "single node: the cap in force";
  EXPECT_EQ(j["replication"]["bandwidth_default_bps"], 50'000'000);
  EXPECT_EQ(j["replication"]["bandwidth_source"], "override");
  EXPECT_EQ(j["replication"]["bandwidth_override"],
            json({{"cap_bps", 0}, {"uid", 1000}, {"set", "2025-06-15T15:06:40Z"}, {"until", ""}}));
}

TEST(StatusJson, MetricsShowsWhereTheEndpointIsBound) {
  StatusInputs in = base();
  in.metrics_listen = "";
  json j = status_json(in, kNow);
  EXPECT_EQ(j["metrics"], json({{"listen", ""}, {"address", nullptr}, {"port", nullptr}}));
  in.metrics_listen = "127.0.0.1:0";
  in.metrics_address = "127.0.0.1:40123";
  in.metrics_port = 40123;
  j = status_json(in, kNow);
  EXPECT_EQ(j["metrics"],
            json({{"listen", "127.0.0.1:0"}, {"address", "127.0.0.1:40123"}, {"port", 40123}}));
}

TEST(StatusAlarms, EveryRuleAndItsThreshold) {
  StatusInputs in = base();
  EXPECT_TRUE(status_alarms(in, kNow).empty());
  in.spool.archive_alarm = "archive full: write: No space left on device";
  in.spool_usage.used_pct = 75;
  in.other_alarms = {{"critical", "inotify watch limit reached"}};
  replication::ServiceStatus rs;
  PeerStatus refused;
  refused.name = "fs2";
  refused.state = PeerState::kRefused;
  refused.last_error = "bad certificate";
  PeerStatus down;
  down.name = "fs3";
  down.state = PeerState::kBackoff;
  down.last_error = "connection refused";
  down.queue.live_files = 4;
  down.queue.oldest_enqueued_ms = kNow - 59'000;  // not yet a minute
  rs.peers = {refused, down};
  rs.last_refused = {"10.0.0.9:5000: not a peer", kNow - 599'000};
  in.repl = rs;
  in.retention.last.refused = "clock is behind the newest recording by 2h";
  in.retention.last.errors = 3;
  EXPECT_EQ(
      texts(status_alarms(in, kNow)),
      (std::vector<std::string>{
          "critical: archive full: write: No space left on device",
          "warning: spool usage 75% (warning watermark 70%)",
          "critical: inotify watch limit reached", "critical: peer fs2 refused: bad certificate",
          "warning: refused an incoming peer connection: 10.0.0.9:5000: not a peer",
          "warning: retention refused: clock is behind the newest recording by 2h",
          "warning: retention: 3 files could not be deleted in the last pass"}));
  // A minute of waiting makes the unreachable peer a warning, an hour critical.
  in.repl->peers[1].queue.oldest_enqueued_ms = kNow - 60'000;
  auto a = texts(status_alarms(in, kNow));
  EXPECT_EQ(a.at(4),
            "warning: peer fs3 unreachable: 4 recordings (0 B) waiting, oldest 60 s (connection "
            "refused)");
  in.repl->peers[1].queue.oldest_enqueued_ms = kNow - 3'600'000;
  EXPECT_EQ(texts(status_alarms(in, kNow)).at(4).rfind("critical: peer fs3 unreachable", 0), 0u);
  // Connected with retries waiting: a warning of its own.
  in.repl->peers[1].state = PeerState::kConnected;
  in.repl->peers[1].queue.retry_files = 2;
  EXPECT_EQ(texts(status_alarms(in, kNow)).at(4),
            "warning: peer fs3: 2 recordings failed and wait for a retry (last: connection "
            "refused)");
  // The refused link is forgotten after 10 minutes; disabled retention is no alarm.
  in.repl->last_refused.at_ms = kNow - 600'000;
  in.retention.last.refused = "retention disabled";
  in.retention.last.errors = 0;
  EXPECT_EQ(status_alarms(in, kNow).size(), 5u);
  // Identity conflicts stay a warning for as long as the count is not zero.
  in.conflicts = 2;
  EXPECT_EQ(texts(status_alarms(in, kNow)).back(),
            "warning: identity conflicts: 2 recordings arrived with content that differs from the "
            "copy here; neither was replaced (log: \"conflict:\")");
}

TEST(StatusAlarms, ScrubFindings) {
  StatusInputs in = base();
  in.scrub = scrub::Snapshot{};
  in.scrub->peers = true;
  auto scrub_alarms = [&] {
    std::vector<Alarm> out;
    for (const Alarm& x : status_alarms(in, kNow))
      if (x.text.rfind("scrub:", 0) == 0) out.push_back(x);
    return out;
  };
  EXPECT_TRUE(scrub_alarms().empty());
  scrub::Finding f;
  f.kind = scrub::Kind::kCorrupt;
  f.repair = "pending";
  in.scrub->open = {f, f};
  in.scrub->open[1].kind = scrub::Kind::kSize;
  auto a = scrub_alarms();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].severity, "warning") << "both await a copy";
  EXPECT_EQ(a[0].text,
            "scrub: 2 damaged recordings (1 corrupt, 1 size), 2 awaiting a good copy from a peer "
            "(`recsync verify` lists them)");
  // Every peer answered and none sends it: nothing will repair it.
  in.scrub->open[1].answers = {{"fs2", "conflict"}};
  a = scrub_alarms();
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].severity, "critical");
  EXPECT_NE(a[0].text.find("1 not repairable here (no peer has a good copy)"), std::string::npos)
      << a[0].text;
  json j = status_json(in, kNow);
  EXPECT_EQ(j["scrub"]["open"].size(), 2u);
  EXPECT_EQ(j["scrub"]["open"][1]["peers"]["fs2"], "conflict");
  EXPECT_EQ(j["scrub"]["last_end"], "");
}

TEST(StatusAlarms, SpoolWatermarks) {
  EXPECT_FALSE(spool_usage_alarm(69.9, 70, 90));
  EXPECT_EQ(spool_usage_alarm(70, 70, 90)->severity, "warning");
  EXPECT_EQ(spool_usage_alarm(89.9, 70, 90)->severity, "warning");
  auto c = spool_usage_alarm(95.4, 70, 90);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->severity, "critical");
  EXPECT_EQ(c->text, "spool usage 95% (critical watermark 90%)");
}

}  // namespace
}  // namespace recsync
