// The exposition as Prometheus' own tools read it: `promtool check metrics`
// on a representative page (the family names the daemon will expose, see
// etc/recsync-alerts.yml), and a real Prometheus server scraping the HTTP
// server over loopback, queried with PromQL.
#include "support/prometheus.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "metrics/exposition.h"
#include "metrics/http_server.h"
#include "support/http_client.h"
#include "support/support.h"

namespace recsync::metrics {
namespace {

using namespace std::chrono_literals;
using test::PrometheusServer;

void must(Status s) { ASSERT_TRUE(s.is_ok()) << s.to_string(); }

// Every family named in the brief for the daemon, with a few series each,
// plus the HTTP server's own: what `promtool check metrics` must pass.
std::string representative_page(const HttpServer* self, double peer_up_fs3 = 0) {
  Exposition e;
  using T = MetricType;
  must(e.begin_family("recsync_build_info", T::kInfo, "Version and node name of this recsyncd."));
  must(e.add_sample({{"version", "0.1.0"}, {"node", "fs1"}}, 1));
  must(e.begin_family("recsync_peer_up", T::kGauge,
                      "Whether the replication link to the peer is up (1) or not (0)."));
  must(e.add_sample({{"peer", "fs2"}}, 1));
  must(e.add_sample({{"peer", "fs3"}}, peer_up_fs3));
  must(e.begin_family("recsync_peer_queue_oldest_seconds", T::kGauge,
                      "Age of the oldest recording queued for the peer, in seconds."));
  must(e.add_sample({{"peer", "fs2"}}, 0));
  must(e.add_sample({{"peer", "fs3"}}, 812.5));
  must(e.begin_family("recsync_peer_queue_files", T::kGauge,
                      "Recordings queued for the peer, by priority."));
  for (const char* peer : {"fs2", "fs3"}) {
    for (const char* prio : {"live", "retry", "backfill"}) {
      must(e.add_sample({{"peer", peer}, {"priority", prio}}, 3));
    }
  }
  must(e.begin_family("recsync_archive_usage_ratio", T::kGauge,
                      "Used fraction of the archive filesystem (0 to 1)."));
  must(e.add_sample(0.42));
  must(e.begin_family("recsync_spool_usage_ratio", T::kGauge,
                      "Used fraction of the spool filesystem (0 to 1)."));
  must(e.add_sample(0.015));
  must(e.begin_family("recsync_peer_clock_offset_seconds", T::kGauge,
                      "The peer's clock minus ours, in seconds (signed)."));
  must(e.add_sample({{"peer", "fs2"}}, -0.0031));
  must(e.add_sample({{"peer", "fs3"}}, std::nan("")));  // not measured yet
  must(e.begin_family("recsync_clock_tolerance_seconds", T::kGauge,
                      "Clock difference beyond which pruning is refused, in seconds."));
  must(e.add_sample(3600));
  must(e.begin_family("recsync_scrub_errors_total", T::kCounter,
                      "Archived recordings the scrub found bad, by kind."));
  must(e.add_sample({{"kind", "corrupt"}}, 0));
  must(e.add_sample({{"kind", "missing"}}, 2));
  must(e.begin_family("recsync_alarms", T::kGauge, "Active alarms, by severity."));
  must(e.add_sample({{"severity", "warning"}}, 1));
  must(e.add_sample({{"severity", "critical"}}, 0));
  must(e.begin_family("recsync_objstore_queue_oldest_seconds", T::kGauge,
                      "Age of the oldest recording waiting for upload to the object store, in "
                      "seconds."));
  must(e.add_sample(std::numeric_limits<double>::infinity()));
  must(e.begin_family("recsync_retention_refused", T::kGauge,
                      "Whether pruning is refused right now (1) or not (0)."));
  must(e.add_sample(0));
  if (self) self->collect(e);
  EXPECT_TRUE(e.first_error().is_ok()) << e.first_error().to_string();
  return e.take();
}

// Runs `promtool check metrics` on text; returns exit code and output.
test::RunResult promtool_check(const std::string& text) {
  test::TempDir dir;
  std::string file = test::write_file(dir.sub("page.txt"), text);
  return test::run({"sh", "-c", std::string(test::kPromtoolBinary) + " check metrics < " + file},
                   30s);
}

TEST(PromtoolTest, RepresentativePageIsClean) {
  std::string why = test::missing_binary_reason(test::kPromtoolBinary);
  if (!why.empty()) GTEST_SKIP() << why << " (Debian package prometheus)";
  auto server = HttpServer::start({.listen = "127.0.0.1:0"}, [] { return std::string(); });
  ASSERT_TRUE(server) << server.status().to_string();
  std::string page = representative_page(server->get());
  auto r = promtool_check(page);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << "\n" << page;
  EXPECT_EQ(r.out + r.err, "");
  // The check can fail: a counter without _total (written by hand, the
  // writer refuses it) is flagged.
  auto bad = promtool_check("# HELP foo h\n# TYPE foo counter\nfoo 1\n");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE((bad.out + bad.err).find("_total"), std::string::npos) << bad.out << bad.err;
}

// A real Prometheus scrapes the server; PromQL returns what render gave.
TEST(PrometheusScrapeTest, RealPrometheusScrapesAndQueries) {
  RECSYNC_REQUIRE_PROMETHEUS();
  const std::string odd_peer = "fs\"2\\x\nz";  // every escaped character
  std::atomic<double> value{42.5};
  std::atomic<int> scrapes{0};
  std::atomic<const HttpServer*> self{nullptr};
  auto server = HttpServer::start({.listen = "127.0.0.1:0"}, [&] {
    ++scrapes;
    Exposition e;
    (void)e.begin_family("recsync_test_value", MetricType::kGauge, "A known value.").is_ok();
    (void)e.add_sample(value.load()).is_ok();
    (void)e.begin_family("recsync_test_peer_up", MetricType::kGauge, "Escaping.").is_ok();
    (void)e.add_sample({{"peer", odd_peer}}, 1).is_ok();
    return e.take() + representative_page(self.load());
  });
  ASSERT_TRUE(server) << server.status().to_string();
  self = server->get();
  const std::string target = (*server)->address();

  test::PrometheusOptions opt;
  opt.jobs = {{"recsync", {target}}};
  opt.rule_files = {test::source_path("etc/recsync-alerts.yml")};
  auto prom = PrometheusServer::start(opt);
  ASSERT_TRUE(prom) << prom.status().to_string();
  PrometheusServer& p = **prom;
  std::printf("prometheus ready in %lld ms on %s\n",
              static_cast<long long>(p.start_duration().count()), p.address().c_str());
  auto t0 = std::chrono::steady_clock::now();
  Status up = p.wait_target_up(target, 30s);
  ASSERT_TRUE(up.is_ok()) << up.to_string() << "\n" << p.log_tail();
  std::printf("target up after %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - t0)
                                         .count()));

  auto v = p.wait_for_value(
      "recsync_test_value", [](double v) { return v == 42.5; }, 15s);
  ASSERT_TRUE(v) << v.status().to_string();
  EXPECT_EQ(*v, 42.5);
  auto upv = p.query_value("up{job=\"recsync\"}");
  ASSERT_TRUE(upv) << upv.status().to_string();
  EXPECT_EQ(*upv, 1);

  // A new value shows after the next scrape (proves it is read at scrape time).
  value = -7.25;
  v = p.wait_for_value(
      "recsync_test_value", [](double v) { return v == -7.25; }, 15s);
  ASSERT_TRUE(v) << v.status().to_string();

  // Label escaping survives Prometheus' parser byte for byte.
  auto esc = p.query("recsync_test_peer_up");
  ASSERT_TRUE(esc) << esc.status().to_string();
  ASSERT_EQ(esc->size(), 1u);
  EXPECT_EQ(esc->front().labels["peer"], odd_peer);

  // Families of the representative page as Prometheus stored them.
  auto files = p.query("sum(recsync_peer_queue_files{priority=\"retry\"})");
  ASSERT_TRUE(files) << files.status().to_string();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ(files->front().value, 6);
  auto info = p.query_value("recsync_build_info{node=\"fs1\",version=\"0.1.0\"}");
  ASSERT_TRUE(info) << info.status().to_string();
  EXPECT_EQ(*info, 1);
  auto ok200 = p.query_value("recsync_metrics_http_requests_total{code=\"200\"}");
  ASSERT_TRUE(ok200) << ok200.status().to_string();
  EXPECT_GE(*ok200, 1);

  // The example rules load into a real Prometheus and match the exposed
  // series: fs3 is down, so the peer-down alert is pending (its `for` is 5m).
  auto pending = p.wait_for_value(
      "count(ALERTS{alertname=\"RecsyncPeerDown\",alertstate=\"pending\",peer=\"fs3\"})",
      [](double v) { return v == 1; }, 15s);
  EXPECT_TRUE(pending) << pending.status().to_string() << "\n" << p.log_tail();
  auto queue_old = p.wait_for_value(
      "count(ALERTS{alertname=\"RecsyncReplicationQueueOld\",peer=\"fs3\"})",
      [](double v) { return v == 1; }, 15s);
  EXPECT_TRUE(queue_old) << queue_old.status().to_string();
  EXPECT_GE(scrapes.load(), 2);
  // Prometheus logs ingestion trouble (duplicate series, out-of-order
  // samples, a failed rule) at warn or error.
  std::string log = p.log_tail(1 << 20);
  EXPECT_EQ(log.find("level=warn"), std::string::npos) << log;
  EXPECT_EQ(log.find("level=error"), std::string::npos) << log;
}

TEST(PrometheusScrapeTest, FixtureReportsAMissingTarget) {
  RECSYNC_REQUIRE_PROMETHEUS();
  // Nothing listens on this port: the wait must fail, with the reason.
  const std::string target = "127.0.0.1:" + std::to_string(test::free_tcp_port());
  test::PrometheusOptions opt;
  opt.jobs = {{"recsync", {target}}};
  auto prom = PrometheusServer::start(opt);
  ASSERT_TRUE(prom) << prom.status().to_string();
  Status up = (*prom)->wait_target_up(target, 4s);
  EXPECT_FALSE(up.is_ok());
  EXPECT_NE(up.message().find(target), std::string::npos) << up.message();
  auto bad = (*prom)->query("sum(");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalid) << bad.status().to_string();
  auto none = (*prom)->query_value("recsync_nothing_here");
  EXPECT_EQ(none.status().code(), Status::Code::kNotFound);
  auto refused = PrometheusServer::start({.jobs = {{"x", {"10.1.2.3:9465"}}}});
  EXPECT_EQ(refused.status().code(), Status::Code::kInvalid) << "non-loopback target refused";
}

}  // namespace
}  // namespace recsync::metrics
