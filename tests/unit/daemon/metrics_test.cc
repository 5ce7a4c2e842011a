// recsyncd's /metrics page (daemon/metrics.h) as a pure function of a status
// snapshot and a time: the values of every family, `promtool check metrics`
// on the page, the render time, and the endpoint (daemon/metrics_endpoint.h)
// serving the latest published snapshot over loopback.
#include "daemon/metrics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "daemon/metrics_endpoint.h"
#include "support/http_client.h"
#include "support/prometheus.h"
#include "support/support.h"

namespace recsync {
namespace {

using replication::PeerState;
using replication::PeerStatus;

constexpr int64_t kNow = 1'750'000'000'000;  // 2025-06-15T15:06:40Z

// "name{labels}" -> value, for every sample line of a page.
std::map<std::string, double> samples(const std::string& page) {
  std::map<std::string, double> out;
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

PeerStatus peer(const std::string& name, PeerState st) {
  PeerStatus p;
  p.name = name;
  p.state = st;
  return p;
}

StatusInputs single_node() {
  StatusInputs in;
  in.node = "fs1";
  in.version = "9.9.9";
  in.start_ms = kNow - 125'000;
  in.spool.files = 3;
  in.spool.bytes = 300;
  in.spool.oldest_ms = kNow - 7'500;
  in.spool.in_flight = 1;
  in.spool.failing = 2;
  in.spool.archived_files = 42;
  in.spool.archived_bytes = 4200;
  in.spool.failures = 5;
  in.spool_usage = {1000, 900, 12.5};
  in.archive = {1000, 1'000'000, 0, 0};
  in.archive_usage = {10'000, 4'000, 60};
  in.retention.settings.policy = {Millis(15LL * 24 * 3600 * 1000), Millis(3'600'000)};
  in.retention.last_prune_ms = kNow - 3'600'000;
  in.pruned_total = 99;
  in.holds = 2;
  in.bandwidth = replication::bandwidth_at({50'000'000, {}, ""}, 0);
  return in;
}

StatusInputs two_peers() {
  StatusInputs in = single_node();
  replication::ServiceStatus rs;
  PeerStatus a = peer("fs2", PeerState::kConnected);
  a.sent_bytes = 1000;
  a.received_bytes = 2000;
  a.acked_files = 10;
  a.received_files = 20;
  a.failed_transfers = 1;
  a.last_ack_ms = kNow - 400;
  a.rtt_ms = 0.5;
  a.clock_offset_ms = -1500;  // fs2's clock is 1.5 s behind
  a.clock_measured_ms = kNow - 1000;
  a.queue = {.live_files = 2,
             .live_bytes = 200,
             .retry_files = 1,
             .retry_bytes = 100,
             .oldest_enqueued_ms = kNow - 90'000};
  PeerStatus b = peer("fs3", PeerState::kBackoff);
  b.sent_bytes = 5;
  // an hour: a critical alarm
  b.queue = {.live_files = 7, .live_bytes = 700, .oldest_enqueued_ms = kNow - 3'700'000};
  rs.peers = {a, b};
  in.repl = rs;
  in.bandwidth = replication::bandwidth_at(
      {50'000'000, {}, ""}, 0, replication::BandwidthOverride{2'000'000, 1000, kNow, 0}, kNow);
  return in;
}

TEST(DaemonMetrics, SingleNodeValues) {
  Status err;
  const std::string page = render_metrics(single_node(), kNow, nullptr, &err);
  ASSERT_TRUE(err.is_ok()) << err.to_string();
  auto s = samples(page);
  EXPECT_EQ(s["recsync_build_info{version=\"9.9.9\",node=\"fs1\"}"], 1);
  EXPECT_EQ(s["recsync_start_time_seconds"], 1'749'999'875);
  EXPECT_EQ(s["recsync_spool_files"], 3);
  EXPECT_EQ(s["recsync_spool_bytes"], 300);
  EXPECT_EQ(s["recsync_spool_free_bytes"], 900);
  EXPECT_EQ(s["recsync_spool_usage_ratio"], 0.125);
  EXPECT_EQ(s["recsync_spool_oldest_seconds"], 7.5);
  EXPECT_EQ(s["recsync_archive_files"], 1000);
  EXPECT_EQ(s["recsync_archive_bytes"], 1'000'000);
  EXPECT_EQ(s["recsync_archive_usage_ratio"], 0.6);
  EXPECT_EQ(s["recsync_archive_pending_files"], 3);
  EXPECT_EQ(s["recsync_archive_in_flight_files"], 1);
  EXPECT_EQ(s["recsync_archive_failing_files"], 2);
  EXPECT_EQ(s["recsync_archived_files_total"], 42);
  EXPECT_EQ(s["recsync_archived_bytes_total"], 4200);
  EXPECT_EQ(s["recsync_archive_failures_total"], 5);
  EXPECT_EQ(s["recsync_retention_last_run_timestamp_seconds"], 1'749'996'400);
  EXPECT_EQ(s["recsync_retention_next_run_timestamp_seconds"], 0) << "not scheduled";
  EXPECT_EQ(s["recsync_retention_pruned_files_total"], 99);
  EXPECT_EQ(s["recsync_retention_refused"], 0);
  EXPECT_EQ(s["recsync_retention_keep_seconds"], 1'296'000);
  EXPECT_EQ(s["recsync_clock_tolerance_seconds"], 3600);
  EXPECT_EQ(s["recsync_holds"], 2);
  EXPECT_EQ(s["recsync_alarms{severity=\"warning\"}"], 0) << "both severities, 0 when none";
  EXPECT_EQ(s["recsync_alarms{severity=\"critical\"}"], 0);
  EXPECT_EQ(s.count("recsync_alarms{severity=\"critical\"}"), 1u);
  EXPECT_EQ(s["recsync_replication_bandwidth_cap_bytes_per_second"], 50'000'000);
  EXPECT_EQ(s["recsync_replication_bandwidth_override"], 0);
  EXPECT_EQ(s["recsync_replication_bandwidth_source{source=\"config\"}"], 1);
  EXPECT_EQ(s["recsync_replication_bandwidth_source{source=\"override\"}"], 0);
  EXPECT_EQ(s["recsync_replication_sent_bytes_total"], 0);
  EXPECT_EQ(page.find("recsync_peer_"), std::string::npos) << "no peers: no peer families";
}

TEST(DaemonMetrics, PeersQueuesAlarmsAndTheOverride) {
  StatusInputs in = two_peers();
  in.retention.last.refused = "the clock is behind the newest recording";
  in.spool.archive_alarm = "archive full";
  Status err;
  auto s = samples(render_metrics(in, kNow, nullptr, &err));
  ASSERT_TRUE(err.is_ok()) << err.to_string();
  EXPECT_EQ(s["recsync_peer_up{peer=\"fs2\"}"], 1);
  EXPECT_EQ(s["recsync_peer_up{peer=\"fs3\"}"], 0);
  EXPECT_EQ(s["recsync_peer_state{peer=\"fs3\",state=\"backoff\"}"], 1);
  EXPECT_EQ(s["recsync_peer_state{peer=\"fs3\",state=\"connected\"}"], 0);
  EXPECT_EQ(s.count("recsync_peer_state{peer=\"fs3\",state=\"refused\"}"), 1u) << "one-hot";
  EXPECT_EQ(s["recsync_peer_sent_bytes_total{peer=\"fs2\"}"], 1000);
  EXPECT_EQ(s["recsync_peer_received_bytes_total{peer=\"fs2\"}"], 2000);
  EXPECT_EQ(s["recsync_peer_sent_files_total{peer=\"fs2\"}"], 10);
  EXPECT_EQ(s["recsync_peer_received_files_total{peer=\"fs2\"}"], 20);
  EXPECT_EQ(s["recsync_peer_failed_transfers_total{peer=\"fs2\"}"], 1);
  EXPECT_EQ(s["recsync_peer_queue_files{peer=\"fs2\",priority=\"live\"}"], 2);
  EXPECT_EQ(s["recsync_peer_queue_files{peer=\"fs2\",priority=\"retry\"}"], 1);
  EXPECT_EQ(s["recsync_peer_queue_bytes{peer=\"fs2\",priority=\"live\"}"], 200);
  EXPECT_EQ(s["recsync_peer_queue_bytes{peer=\"fs3\",priority=\"live\"}"], 700);
  EXPECT_EQ(s["recsync_peer_queue_oldest_seconds{peer=\"fs2\"}"], 90);
  EXPECT_EQ(s["recsync_peer_last_ack_age_seconds{peer=\"fs2\"}"], 0.4);
  EXPECT_TRUE(std::isnan(s["recsync_peer_last_ack_age_seconds{peer=\"fs3\"}"])) << "no ack yet";
  EXPECT_EQ(s["recsync_peer_rtt_seconds{peer=\"fs2\"}"], 0.0005);
  EXPECT_TRUE(std::isnan(s["recsync_peer_rtt_seconds{peer=\"fs3\"}"]));
  EXPECT_EQ(s["recsync_replication_sent_bytes_total"], 1005);
  EXPECT_EQ(s["recsync_replication_received_bytes_total"], 2000);
  EXPECT_EQ(s["recsync_replication_bandwidth_cap_bytes_per_second"], 2'000'000);
  EXPECT_EQ(s["recsync_replication_bandwidth_override"], 1);
  EXPECT_EQ(s["recsync_replication_bandwidth_source{source=\"override\"}"], 1);
  EXPECT_EQ(s["recsync_replication_bandwidth_source{source=\"config\"}"], 0);
  EXPECT_EQ(s["recsync_retention_refused"], 1);
  // Archive full and fs3's hour-old queue are critical; fs2's retry entry and
  // the refused retention are warnings: as status_alarms() counts them.
  const auto alarms = status_alarms(in, kNow);
  EXPECT_EQ(alarms.size(), 4u);
  EXPECT_EQ(s["recsync_alarms{severity=\"critical\"}"], 2);
  EXPECT_EQ(s["recsync_alarms{severity=\"warning\"}"], 2);
}

TEST(DaemonMetrics, ClockOffsetIdentityAndBackfill) {
  StatusInputs in = two_peers();
  in.repl->peers[0].queue.backfill_files = 5;
  in.repl->peers[0].queue.backfill_bytes = 5000;
  auto s = samples(render_metrics(in, kNow, nullptr));
  EXPECT_EQ(s["recsync_peer_clock_offset_seconds{peer=\"fs2\"}"], -1.5);
  EXPECT_TRUE(std::isnan(s["recsync_peer_clock_offset_seconds{peer=\"fs3\"}"])) << "not measured";
  EXPECT_EQ(s["recsync_peer_queue_files{peer=\"fs2\",priority=\"backfill\"}"], 5);
  EXPECT_EQ(s["recsync_peer_queue_bytes{peer=\"fs2\",priority=\"backfill\"}"], 5000);
  EXPECT_EQ(s["recsync_identity_collisions_total"], 0);
  EXPECT_EQ(s["recsync_backfill_running"], 0);
  EXPECT_EQ(s["recsync_backfill_remaining_bytes"], 0);
  // A running backfill: 10 files (1 MB) to pull, 4 to push; 3 pulled, 1 gone.
  in.collisions = 3;
  in.conflicts = 1;
  replication::BackfillView v;
  v.job = BackfillJob{7, "running", false, 0, kNow - 60'000, 0, ""};
  v.progress.pull_total = {10, 1'000'000};
  v.progress.push_total = {4, 400'000};
  v.progress.pull_done = {3, 300'000};
  v.progress.push_gone = {1, 100'000};
  in.backfill = v;
  s = samples(render_metrics(in, kNow, nullptr));
  EXPECT_EQ(s["recsync_identity_collisions_total"], 3);
  EXPECT_EQ(s["recsync_identity_conflicts_total"], 1);
  EXPECT_EQ(s["recsync_backfill_running"], 1);
  EXPECT_EQ(s["recsync_backfill_remaining_files"], 10);
  EXPECT_EQ(s["recsync_backfill_remaining_bytes"], 1'000'000);
  in.backfill->job->state = "done";
  s = samples(render_metrics(in, kNow, nullptr));
  EXPECT_EQ(s["recsync_backfill_running"], 0);
  EXPECT_EQ(s["recsync_backfill_remaining_files"], 0) << "a finished job leaves nothing to do";
}

TEST(DaemonMetrics, Scrub) {
  StatusInputs in = single_node();
  auto s = samples(render_metrics(in, kNow, nullptr));
  EXPECT_EQ(s.count("recsync_scrub_running"), 0u) << "no scrubber: no scrub families";
  scrub::Snapshot sn;
  in.scrub = sn;
  s = samples(render_metrics(in, kNow, nullptr));
  EXPECT_EQ(s["recsync_scrub_running"], 0);
  EXPECT_EQ(s["recsync_scrub_last_end_timestamp_seconds"], 0) << "none yet";
  for (const char* k : {"corrupt", "missing", "unreadable", "size"})
    EXPECT_EQ(s.count(std::string("recsync_scrub_errors_total{kind=\"") + k + "\"}"), 1u)
        << k << ": every kind from the start, at 0";
  sn.running = true;
  sn.last_end_ms = kNow - 60'000;
  sn.totals.files = 12;
  sn.totals.bytes = 12'000'000;
  sn.totals.errors[int(scrub::Kind::kCorrupt)] = 2;
  sn.totals.errors[int(scrub::Kind::kMissing)] = 1;
  sn.repairs_total = 2;
  sn.open.resize(1);
  in.scrub = sn;
  s = samples(render_metrics(in, kNow, nullptr));
  EXPECT_EQ(s["recsync_scrub_running"], 1);
  EXPECT_EQ(s["recsync_scrub_last_end_timestamp_seconds"], (kNow - 60'000) / 1000.0);
  EXPECT_EQ(s["recsync_scrub_checked_files_total"], 12);
  EXPECT_EQ(s["recsync_scrub_checked_bytes_total"], 12'000'000);
  EXPECT_EQ(s["recsync_scrub_errors_total{kind=\"corrupt\"}"], 2);
  EXPECT_EQ(s["recsync_scrub_errors_total{kind=\"missing\"}"], 1);
  EXPECT_EQ(s["recsync_scrub_repairs_total"], 2);
  EXPECT_EQ(s["recsync_scrub_damaged_recordings"], 1);
}

TEST(DaemonMetrics, ErasuresPerPeerAndTheirAlarms) {
  StatusInputs in = two_peers();
  in.erased_total = 7;
  in.tombstones = 5;
  in.erase_pending = 1;
  in.erase_queue = {{"fs2", 3, 1, "held: case 4"}};
  Status err;
  auto s = samples(render_metrics(in, kNow, nullptr, &err));
  ASSERT_TRUE(err.is_ok()) << err.to_string();
  EXPECT_EQ(s["recsync_erasures_total"], 7);
  EXPECT_EQ(s["recsync_tombstones"], 5);
  EXPECT_EQ(s["recsync_erase_unfinished"], 1);
  EXPECT_EQ(s["recsync_erase_pending{peer=\"fs2\"}"], 3);
  EXPECT_EQ(s["recsync_erase_refused{peer=\"fs2\"}"], 1);
  EXPECT_EQ(s.count("recsync_erase_pending{peer=\"fs3\"}"), 1u) << "every peer, 0 when none";
  EXPECT_EQ(s["recsync_erase_pending{peer=\"fs3\"}"], 0);
  // The refusal and the unfinished erasure are warnings; status shows them.
  size_t erase_alarms = 0;
  for (const Alarm& a : status_alarms(in, kNow))
    erase_alarms += a.text.find("erasure") != std::string::npos && a.severity == "warning";
  EXPECT_EQ(erase_alarms, 2u);
  const nlohmann::json j = status_json(in, kNow);
  EXPECT_EQ(j["erasure"]["erased_total"], 7);
  EXPECT_EQ(j["erasure"]["peers"][0]["peer"], "fs2");
  EXPECT_EQ(j["erasure"]["peers"][0]["refused"], 1);
  // A single node has no per-peer erasure families.
  const std::string single = render_metrics(single_node(), kNow, nullptr, &err);
  EXPECT_EQ(single.find("recsync_erase_pending"), std::string::npos);
  EXPECT_NE(single.find("recsync_erasures_total 0"), std::string::npos);
}

TEST(DaemonMetrics, AgesAreTakenAtTheScrapesTime) {
  StatusInputs in = two_peers();
  auto later = samples(render_metrics(in, kNow + 10'000, nullptr));
  EXPECT_EQ(later["recsync_spool_oldest_seconds"], 17.5);
  EXPECT_EQ(later["recsync_peer_queue_oldest_seconds{peer=\"fs2\"}"], 100);
  EXPECT_EQ(later["recsync_peer_last_ack_age_seconds{peer=\"fs2\"}"], 10.4);
}

TEST(DaemonMetrics, PromtoolFindsNothingToSayAndRenderIsFast) {
  std::string why = test::missing_binary_reason(test::kPromtoolBinary);
  if (!why.empty()) GTEST_SKIP() << why << " (Debian package prometheus)";
  auto server = metrics::HttpServer::start({.listen = "127.0.0.1:0"}, [] { return std::string(); });
  ASSERT_TRUE(server) << server.status().to_string();
  StatusInputs in = two_peers();
  in.spool.archive_alarm = "archive full";
  in.scrub = scrub::Snapshot{};
  in.erase_queue = {{"fs2", 3, 1, "held"}};
  const std::string page = render_metrics(in, kNow, server->get());
  test::TempDir dir;
  const std::string file = test::write_file(dir.sub("page.txt"), page);
  auto r = test::run({"sh", "-c", std::string(test::kPromtoolBinary) + " check metrics < " + file},
                     std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\n" << page;
  EXPECT_EQ(r.out + r.err, "") << page;
  EXPECT_NE(page.find("recsync_metrics_http_requests_total{code=\"200\"}"), std::string::npos);

  constexpr int kRounds = 2000;
  size_t bytes = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) bytes += render_metrics(in, kNow + i, server->get()).size();
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
      kRounds;
  std::printf("render: %.1f us per page of %zu bytes (2 peers, %d rounds)\n", us, bytes / kRounds,
              kRounds);
  EXPECT_LT(us, 5000) << "a scrape must not cost the metrics thread milliseconds";
}

TEST(MetricsEndpoint, ServesTheLatestPublishedSnapshot) {
  int64_t now = kNow;
  MetricsEndpoint ep([&] { return now; });
  EXPECT_EQ(ep.render().find("recsync_archive_files"), std::string::npos)
      << "nothing published yet: no daemon families";
  StatusInputs in = single_node();
  ep.publish(in);
  ASSERT_TRUE(ep.start("127.0.0.1:0").is_ok());
  ASSERT_NE(ep.port(), 0);
  EXPECT_EQ(ep.address(), "127.0.0.1:" + std::to_string(ep.port()));
  auto r = test::http_get(ep.address(), "/metrics");
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(samples(r->body)["recsync_archive_files"], 1000);
  in.archive.files = 1001;
  ep.publish(in);
  r = test::http_get(ep.address(), "/metrics");
  ASSERT_TRUE(r) << r.status().to_string();
  auto s = samples(r->body);
  EXPECT_EQ(s["recsync_archive_files"], 1001) << "the next scrape sees the new snapshot";
  EXPECT_EQ(s["recsync_metrics_http_requests_total{code=\"200\"}"], 1) << "the server's own";
  // Another endpoint on the same address fails, naming it.
  MetricsEndpoint twin([&] { return now; });
  Status busy = twin.start(ep.address());
  EXPECT_FALSE(busy.is_ok());
  EXPECT_NE(busy.message().find("metrics listen " + ep.address() + ": bind"), std::string::npos)
      << busy.message();
  ep.stop();
  EXPECT_FALSE(test::http_get(ep.address(), "/metrics", std::chrono::seconds(2)))
      << "stopped: nothing answers";
}

}  // namespace
}  // namespace recsync
