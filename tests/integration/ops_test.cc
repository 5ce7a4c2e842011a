// End-to-end tests of the operator-facing parts of issue 11 with the real
// binaries: recsyncd's /metrics scraped by a real Prometheus and hammered by
// hostile clients, `recsync bandwidth` overrides, and `recsyncd
// --check-config` reporting every problem. Root only where a Node (real
// tmpfs + ext4) is used; Prometheus tests skip without Debian's prometheus.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "node.h"
#include "support/http_client.h"
#include "support/prometheus.h"

namespace recsync::test {
namespace {

using json = nlohmann::json;

bool archived_all(Node& n, size_t want) {
  return n.spool_count() == 0 && n.archive_recordings().size() >= want;
}

double num(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return -1;
    p = &(*p)[k];
  }
  return p->is_number() ? p->get<double>() : -1;
}

// The value of one sample line ("name{labels} value") of a page; -1 if absent.
double page_value(const std::string& page, const std::string& series) {
  size_t at = page.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  at += series.size() + 2;
  return std::stod(page.substr(at, page.find('\n', at) - at));
}

std::string get_metrics(const std::string& address) {
  auto r = http_get(address, "/metrics", 5s);
  return r && r->status == 200 ? r->body : std::string();
}

TEST(Metrics, PrometheusScrapesTheDaemonAndAgreesWithStatus) {
  RECSYNC_REQUIRE_ROOT();
  RECSYNC_REQUIRE_PROMETHEUS();
  Node n;
  n.start();
  const std::string target = n.metrics_address();
  ASSERT_FALSE(target.empty()) << n.status().dump(1);
  ASSERT_EQ(n.loadgen({"--calls", "20", "--speed", "0"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return archived_all(n, 20); }, 30s));
  ASSERT_TRUE(wait_until([&] { return num(n.status(), {"archive", "files"}) == 20; }, 10s));

  PrometheusOptions opt;
  opt.jobs = {{"recsync", {target}}};
  opt.rule_files = {source_path("etc/recsync-alerts.yml")};
  auto prom = PrometheusServer::start(opt);
  ASSERT_TRUE(prom) << prom.status().to_string();
  PrometheusServer& p = **prom;
  ASSERT_TRUE(p.wait_target_up(target, 30s).is_ok()) << p.log_tail();
  const json s = n.status();
  auto files = p.wait_for_value(
      "recsync_archive_files",
      [&](double v) {
        return v == num(s, {"archive", "files"});
      },
      15s);
  ASSERT_TRUE(files) << files.status().to_string();
  EXPECT_EQ(*files, 20);
  auto archived = p.query_value("recsync_archived_files_total");
  ASSERT_TRUE(archived) << archived.status().to_string();
  EXPECT_EQ(*archived, num(s, {"archive", "archived_since_start"}));
  auto bytes = p.query_value("recsync_archive_bytes");
  ASSERT_TRUE(bytes);
  EXPECT_EQ(*bytes, num(s, {"archive", "bytes"}));
  auto info = p.query_value("recsync_build_info{node=\"fs1\"}");
  ASSERT_TRUE(info) << info.status().to_string();
  EXPECT_EQ(*info, 1);
  auto alarms = p.query("recsync_alarms");
  ASSERT_TRUE(alarms);
  EXPECT_EQ(alarms->size(), 2u) << "both severities";
  // The first scrape reports 0 (no render before it).
  auto render = p.wait_for_value(
      "recsync_metrics_render_seconds", [](double v) { return v > 0; }, 10s);
  ASSERT_TRUE(render) << render.status().to_string();
  std::printf("render time of the daemon's page as it reports it: %.1f us\n", *render * 1e6);

  // promtool on the daemon's real page.
  const std::string page = get_metrics(target);
  ASSERT_FALSE(page.empty());
  TempDir d;
  const std::string file = write_file(d.sub("page.txt"), page);
  auto r = run({"sh", "-c", std::string(kPromtoolBinary) + " check metrics < " + file}, 30s);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out + r.err, "") << page;
  // The rules loaded against the real series without complaint.
  std::string log = p.log_tail(1 << 20);
  EXPECT_EQ(log.find("level=error"), std::string::npos) << log;
  // --check-config of a running daemon's config is clean (systemd's
  // ExecReload runs it): its socket and ports being in use are no problem.
  RunResult check = run({bin("recsyncd"), "--check-config", "-c", n.config_path});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  n.stop();
}

// One byte per 100 ms of a header that never ends, until the server drops
// the connection; returns how long that took (or -1 after 12 s).
double slow_client(const std::string& address, std::atomic<bool>* started) {
  auto fd = tcp_connect(address);
  if (!fd) {
    std::printf("slow client: %s\n", fd.status().to_string().c_str());
    return -2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::string head = "GET /metrics HTTP/1.1\r\nX-Slow: ";
  for (int i = 0; i < 120; ++i) {
    char c = i < static_cast<int>(head.size()) ? head[i] : 'a';
    if (::send(*fd, &c, 1, MSG_NOSIGNAL) != 1) break;
    if (i == 2) *started = true;
    pollfd pfd{*fd, POLLIN, 0};
    if (::poll(&pfd, 1, 100) == 1) break;  // closed (EOF or reset)
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(*fd);
  return s >= 12 ? -1 : s;
}

TEST(Metrics, GarbageSlowSilentAndOversizedRequestsLeaveTheDaemonHealthy) {
  RECSYNC_REQUIRE_ROOT();
  Node n;
  n.start();
  const std::string addr = n.metrics_address();
  ASSERT_FALSE(addr.empty());
  ASSERT_FALSE(get_metrics(addr).empty());

  auto code = [&](const std::string& req) {
    auto r = http_exchange(addr, req, 5s);
    return r ? r->status : -1;
  };
  EXPECT_EQ(code(std::string("\x16\x03\x01\x02\x00\x01\xff garbage\r\n\r\n", 19)), 400);
  EXPECT_EQ(code("GET /metrics HTTP/9.9\r\n\r\n"), 400);
  EXPECT_EQ(code("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), 405);
  EXPECT_EQ(code("GET /admin HTTP/1.1\r\n\r\n"), 404);
  EXPECT_EQ(code("GET /metrics HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n"), 431);

  // A slow client and 20 silent ones (more than the 16 connections the
  // server takes) while 10 calls are recorded.
  std::atomic<double> slow_s{0};
  std::atomic<bool> started{false};
  std::thread slow([&] {
    slow_s = slow_client(addr, &started);
    started = true;
  });
  // The slow one first, so it has a slot before the silent ones fill the rest.
  ASSERT_TRUE(wait_until([&] { return started.load(); }, 5s));
  std::vector<int> silent;
  for (int i = 0; i < 20; ++i) {
    auto fd = tcp_connect(addr);
    if (fd) silent.push_back(*fd);
  }
  ASSERT_EQ(n.loadgen({"--calls", "10", "--speed", "0"}).exit_code, 0);
  EXPECT_FALSE(n.status().is_null()) << "status answers during the attack";
  ASSERT_TRUE(wait_until([&] { return archived_all(n, 10); }, 20s)) << "archiving goes on";
  slow.join();
  EXPECT_GT(slow_s.load(), 4.0) << "dropped at the 5 s read deadline, not before";
  EXPECT_LT(slow_s.load(), 8.0) << "and not held for long after it";
  int closed = 0;
  for (int fd : silent) {
    pollfd pfd{fd, POLLIN, 0};
    char c;
    if (::poll(&pfd, 1, 8000) == 1 && ::recv(fd, &c, 1, 0) <= 0) ++closed;
    ::close(fd);
  }
  EXPECT_EQ(closed, static_cast<int>(silent.size())) << "every silent client was dropped";
  std::string page;
  ASSERT_TRUE(wait_until([&] { return !(page = get_metrics(addr)).empty(); }, 10s))
      << "/metrics serves again";
  EXPECT_GE(page_value(page, "recsync_metrics_http_dropped_total{reason=\"read_timeout\"}"), 1);
  EXPECT_GE(page_value(page, "recsync_metrics_http_dropped_total{reason=\"connection_limit\"}"), 1);
  EXPECT_GE(page_value(page, "recsync_metrics_http_requests_total{code=\"400\"}"), 2);
  EXPECT_EQ(page_value(page, "recsync_metrics_http_requests_total{code=\"431\"}"), 1);
  EXPECT_GE(page_value(page, "recsync_archived_files_total"), 10);
  EXPECT_TRUE(n.running());
  n.stop();
}

TEST(Metrics, ABusyMetricsPortStopsTheStartNamingTheAddress) {
  TempDir d;
  for (const char* sub : {"spool", "archive"}) ASSERT_EQ(::mkdir(d.sub(sub).c_str(), 0755), 0);
  const int blocker = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(blocker, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(blocker, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(blocker, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string listen = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  const std::string conf =
      write_file(d.sub("r.conf"), "node = \"fs1\"\nstate_dir = \"" + d.sub("state") +
                                      "\"\n[control]\nsocket = \"" + d.sub("ctl.sock") +
                                      "\"\ngroup = \"\"\n[spool]\npath = \"" + d.sub("spool") +
                                      "\"\n[archive]\npath = \"" + d.sub("archive") +
                                      "\"\n[metrics]\nlisten = \"" + listen + "\"\n");
  RunResult r = run({bin("recsyncd"), "-c", conf}, 20s);
  ::close(blocker);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("metrics listen " + listen + ": bind: Address already in use"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(file_exists(d.sub("ctl.sock"))) << "the control socket is gone again";
}

TEST(Bandwidth, OverrideShowsInStatusSurvivesSighupExpiresAndClears) {
  RECSYNC_REQUIRE_ROOT();
  NodeOptions o;
  o.listen = "127.0.0.1:0";
  o.bandwidth = "50MB/s";
  // A peer that is never there (loopback port 1): replication runs, links fail.
  o.peers = {{"fs2", "127.0.0.1:1", "sha256:" + std::string(64, 'a')}};
  Node n(o);
  n.start();
  auto source = [&] {
    json s = n.status();
    return s.is_object() ? s["replication"].value("bandwidth_source", "") : "";
  };
  RunResult show = n.cli({"bandwidth"});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(show.out, "replication cap 50 MB/s (config)\n");

  RunResult set = n.cli({"bandwidth", "2MB/s", "--for", "6s"});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  EXPECT_NE(set.out.find("replication cap 2 MB/s (override by uid 0 at "), std::string::npos)
      << set.out;
  json s = n.status();
  EXPECT_EQ(num(s, {"replication", "bandwidth_bps"}), 2'000'000) << "the governor's cap at once";
  EXPECT_EQ(s["replication"]["bandwidth_source"], "override");
  EXPECT_EQ(s["replication"]["bandwidth_override"]["uid"], 0);
  EXPECT_NE(s["replication"]["bandwidth_override"]["until"], "");
  // The page renders from the snapshot the loop publishes every second.
  std::string page;
  EXPECT_TRUE(wait_until(
      [&] {
        page = get_metrics(n.metrics_address());
        return page_value(page, "recsync_replication_bandwidth_override") == 1;
      },
      5s))
      << page;
  EXPECT_EQ(page_value(page, "recsync_replication_bandwidth_cap_bytes_per_second"), 2'000'000);
  EXPECT_NE(n.log().find("bandwidth override by uid 0: replication bandwidth cap 50 MB/s (config) "
                         "-> 2 MB/s until "),
            std::string::npos)
      << n.log();

  // A reload with a new configured cap keeps the override.
  n.options().bandwidth = "40MB/s";
  n.write_config();
  n.process()->signal(SIGHUP);
  ASSERT_TRUE(
      wait_until([&] { return n.log().find("configuration reloaded") != std::string::npos; }, 5s));
  s = n.status();
  EXPECT_EQ(s["replication"]["bandwidth_source"], "override") << "SIGHUP keeps it";
  EXPECT_EQ(num(s, {"replication", "bandwidth_bps"}), 2'000'000);
  EXPECT_EQ(num(s, {"replication", "bandwidth_default_bps"}), 40'000'000);

  // It ends by itself, and the new config applies.
  ASSERT_TRUE(wait_until([&] { return source() == "config"; }, 12s)) << n.status().dump(1);
  EXPECT_EQ(num(n.status(), {"replication", "bandwidth_bps"}), 40'000'000);
  EXPECT_NE(n.log().find("bandwidth override set by uid 0 expired"), std::string::npos);

  // Until cleared, then --clear.
  ASSERT_EQ(n.cli({"bandwidth", "0"}).exit_code, 0);
  EXPECT_EQ(num(n.status(), {"replication", "bandwidth_bps"}), 0) << "no cap";
  RunResult clear = n.cli({"bandwidth", "--clear"});
  EXPECT_EQ(clear.exit_code, 0) << clear.err;
  EXPECT_EQ(clear.out, "override cleared; replication cap 40 MB/s (config)\n");
  EXPECT_EQ(source(), "config");
  EXPECT_NE(n.log().find("bandwidth override cleared by uid 0"), std::string::npos);
  EXPECT_EQ(n.cli({"bandwidth", "fast"}).exit_code, 64);
  EXPECT_EQ(n.cli({"bandwidth", "--for", "1h"}).exit_code, 64);
  EXPECT_EQ(n.cli({"bandwidth", "1MB/s", "--for", "400d"}).exit_code, 1) << "the daemon refuses";
  n.stop();
}

TEST(CheckConfig, ReportsEveryProblemWithFileAndLineAndTheDaemonRefusesTheSame) {
  TempDir d;
  ASSERT_EQ(::mkdir(d.sub("archive").c_str(), 0755), 0);
  write_file(d.sub("spool-file"), "not a folder");
  const std::string conf = write_file(
      d.sub("bad.conf"), "node = \"fs1\"\nstate_dir = \"" + d.sub("state") +
                             "\"\n[control]\nsocket = \"" + d.sub("ctl.sock") +
                             "\"\ngroup = \"recsync-no-such-group-5f3a\"\n[spool]\npath = \"" +
                             d.sub("spool-file") + "\"\ninclude = []\n[archive]\npath = \"" +
                             d.sub("missing") + "\"\n[metrics]\nlisten = \"198.51.100.7:9465\"\n");
  RunResult r = run({bin("recsyncd"), "--check-config", "-c", conf});
  EXPECT_EQ(r.exit_code, 78);
  for (const std::string& want :
       {conf + ":5: control.group: group 'recsync-no-such-group-5f3a' does not exist",
        conf + ":7: spool.path: '" + d.sub("spool-file") + "' is not a folder",
        conf + ":10: archive.path: folder '" + d.sub("missing") + "' does not exist",
        conf + ":12: metrics.listen: no interface of this host has the address",
        "warning: " + conf + ":8: spool.include: no patterns",
        conf + ": 4 problems would stop recsyncd at start"})
    EXPECT_NE(r.err.find(want), std::string::npos) << want << "\n---\n" << r.err;
  EXPECT_EQ(r.out, "");
  // The daemon's own start refuses with the same lines, and exits 78.
  RunResult start = run({bin("recsyncd"), "-c", conf}, 20s);
  EXPECT_EQ(start.exit_code, 78) << start.err;
  EXPECT_NE(start.err.find(conf + ":5: control.group: group 'recsync-no-such-group-5f3a' does not "
                                  "exist"),
            std::string::npos)
      << start.err;
  EXPECT_FALSE(file_exists(d.sub("state"))) << "refused before touching anything";
  // Fixed (the warning stays a warning): OK, exit 0.
  std::string good = read_file(conf);
  for (auto [from, to] : {std::pair<std::string, std::string>{"recsync-no-such-group-5f3a", ""},
                          {d.sub("spool-file"), d.sub("archive2")},
                          {d.sub("missing"), d.sub("archive")},
                          {"198.51.100.7:9465", "127.0.0.1:0"}})
    good.replace(good.find(from), from.size(), to);
  ASSERT_EQ(::mkdir(d.sub("archive2").c_str(), 0755), 0);
  write_file(conf, good);
  r = run({bin("recsyncd"), "--check-config", "-c", conf});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, conf + ": OK\n");
  EXPECT_NE(r.err.find("warning: " + conf + ":8: spool.include: no patterns"), std::string::npos);
}

}  // namespace
}  // namespace recsync::test
