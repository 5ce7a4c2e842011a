#pragma once
// A real Prometheus server for tests (Debian's /usr/bin/prometheus, package
// `prometheus`), so what recsync exposes is checked by the thing operators
// run, not by our own reading of the format.
//
// start() writes a config into a fresh temp folder (scrape_interval and
// evaluation_interval 1 s by default, the given jobs and rule files), keeps
// the TSDB there too, and runs prometheus on 127.0.0.1 with a free port
// (retried on another port if that one was taken meanwhile), then waits
// (bounded) for /-/ready. Its log goes to prometheus.log in the temp folder;
// log_tail() returns the end of it for failure messages. The destructor
// sends SIGTERM, waits up to 10 s, then SIGKILLs and reaps the process, and
// removes the folder.
//
// Queries go to /api/v1/query (instant queries, evaluated "now") over the
// loopback HTTP client in http_client.h; results are parsed with
// nlohmann-json. Scrape targets must be loopback addresses (refused otherwise).
//
// Timing (Prometheus 2.42, Debian 12): ready about 0.1 s after spawn; the
// first scrape of a target comes about 5 s later, because Prometheus' target
// discovery hands new targets to the scrape manager at most every 5 s. Give
// wait_target_up() at least 10 s.
//
// Use from the test's main thread (the child is tied to the spawning thread
// by PR_SET_PDEATHSIG). Every wait is bounded by its timeout.
//
//   RECSYNC_REQUIRE_PROMETHEUS();
//   auto prom = PrometheusServer::start({.jobs = {{"recsync", {server.address()}}}});
//   ASSERT_TRUE(prom) << prom.status().to_string();
//   ASSERT_TRUE((*prom)->wait_target_up(server.address()).is_ok());
//   auto v = (*prom)->wait_for_value("recsync_peer_up", [](double v) { return v == 1; });
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "recsync/status.h"
#include "support/support.h"

namespace recsync::test {

inline constexpr const char* kPrometheusBinary = "/usr/bin/prometheus";
inline constexpr const char* kPromtoolBinary = "/usr/bin/promtool";

// "" when `binary` is an executable file, else why not (for GTEST_SKIP).
std::string missing_binary_reason(const std::string& binary);

// Skips the current test unless Debian's prometheus binary is installed.
#define RECSYNC_REQUIRE_PROMETHEUS()                                                               \
  do {                                                                                             \
    std::string why_ = ::recsync::test::missing_binary_reason(::recsync::test::kPrometheusBinary); \
    if (!why_.empty()) GTEST_SKIP() << why_ << " (Debian package prometheus)";                     \
  } while (0)

struct ScrapeJob {
  std::string name = "recsync";      // the job label
  std::vector<std::string> targets;  // "127.0.0.1:port" / "[::1]:port"
  std::string metrics_path = "/metrics";
};

struct PrometheusOptions {
  std::vector<ScrapeJob> jobs;
  std::vector<std::string> rule_files;  // absolute paths; evaluated every evaluation_interval
  std::chrono::seconds scrape_interval{1};
  std::chrono::seconds evaluation_interval{1};
  std::chrono::milliseconds start_timeout{30000};  // until /-/ready
  std::string binary = kPrometheusBinary;
};

// One series of an instant-query result (a scalar result has no labels).
struct PromSample {
  std::map<std::string, std::string> labels;  // __name__ included when present
  double value = 0;
};

class PrometheusServer {
 public:
  static Result<std::unique_ptr<PrometheusServer>> start(PrometheusOptions options);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // "127.0.0.1:PORT" of Prometheus' own HTTP API.
  const std::string& address() const { return address_; }
  // From spawn to /-/ready answering 200.
  std::chrono::milliseconds start_duration() const { return start_duration_; }

  // Instant query. kInvalid with Prometheus' error text for a bad query;
  // kIo/kCorrupt when the API cannot be reached or answers nonsense.
  Result<std::vector<PromSample>> query(const std::string& promql);
  // The query's only value: kNotFound if it returned nothing, kInvalid if
  // more than one series.
  Result<double> query_value(const std::string& promql);
  // Polls query_value() every 200 ms until it succeeds and pred(value) holds;
  // the last error or value is reported on timeout.
  Result<double> wait_for_value(const std::string& promql, const std::function<bool(double)>& pred,
                                std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until Prometheus reports the target (its instance label, e.g.
  // "127.0.0.1:9465") healthy on /api/v1/targets; on timeout the status
  // carries the target's health and last scrape error.
  Status wait_target_up(const std::string& target,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // The last max_bytes of Prometheus' log.
  std::string log_tail(size_t max_bytes = 4000) const;
  const std::string& dir() const { return dir_->path(); }

 private:
  PrometheusServer() = default;
  Status launch(const PrometheusOptions& o, std::chrono::steady_clock::time_point deadline);
  Result<std::string> api_get(const std::string& path_and_query);

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Process> proc_;
  std::string address_;
  std::chrono::milliseconds start_duration_{0};
};

}  // namespace recsync::test
