#include "support/prometheus.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "support/http_client.h"

namespace recsync::test {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

bool is_loopback_target(const std::string& t) {
  return t.starts_with("127.") || t.starts_with("[::1]:");
}

// YAML double-quoted scalar (JSON strings are valid YAML).
std::string yq(const std::string& s) { return json(s).dump(); }

std::string config_yaml(const PrometheusOptions& o) {
  std::string y = "global:\n";
  y += "  scrape_interval: " + std::to_string(o.scrape_interval.count()) + "s\n";
  y += "  scrape_timeout: " + std::to_string(o.scrape_interval.count()) + "s\n";
  y += "  evaluation_interval: " + std::to_string(o.evaluation_interval.count()) + "s\n";
  if (!o.rule_files.empty()) {
    y += "rule_files:\n";
    for (const auto& f : o.rule_files) y += "  - " + yq(f) + "\n";
  }
  y += "scrape_configs:\n";
  for (const auto& j : o.jobs) {
    y += "  - job_name: " + yq(j.name) + "\n";
    y += "    metrics_path: " + yq(j.metrics_path) + "\n";
    y += "    static_configs:\n      - targets: [";
    for (size_t i = 0; i < j.targets.size(); ++i) y += (i ? ", " : "") + yq(j.targets[i]);
    y += "]\n";
  }
  return y;
}

// Prometheus sends sample values as strings: "1", "NaN", "+Inf".
double parse_value(const json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  return std::strtod(s.c_str(), nullptr);
}

}  // namespace

std::string missing_binary_reason(const std::string& binary) {
  if (::access(binary.c_str(), X_OK) == 0) return "";
  return binary + " is not installed";
}

Result<std::unique_ptr<PrometheusServer>> PrometheusServer::start(PrometheusOptions options) {
  std::string why = missing_binary_reason(options.binary);
  if (!why.empty()) return Status::not_found(why);
  for (const auto& j : options.jobs) {
    for (const auto& t : j.targets) {
      if (!is_loopback_target(t))
        return Status::invalid("prometheus fixture: target '" + t + "' is not loopback");
    }
  }
  std::unique_ptr<PrometheusServer> p(new PrometheusServer());
  p->dir_ = std::make_unique<TempDir>();
  write_file(p->dir_->sub("prometheus.yml"), config_yaml(options));
  auto t0 = Clock::now();
  auto deadline = t0 + options.start_timeout;
  Status st;
  // The free port may be taken between free_tcp_port() and prometheus'
  // bind: then it exits at once and another port is tried.
  for (int attempt = 0; attempt < 3; ++attempt) {
    st = p->launch(options, deadline);
    if (st.is_ok() || st.code() != Status::Code::kBusy) break;
  }
  if (!st.is_ok()) return st;
  p->start_duration_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  return p;
}

Status PrometheusServer::launch(const PrometheusOptions& o, Clock::time_point deadline) {
  address_ = "127.0.0.1:" + std::to_string(free_tcp_port());
  std::vector<std::string> argv = {o.binary, "--config.file=" + dir_->sub("prometheus.yml"),
                                   "--storage.tsdb.path=" + dir_->sub("data"),
                                   "--web.listen-address=" + address_, "--log.level=info"};
  // Prometheus logs to stderr; stdout gets its own file (two O_TRUNC opens of
  // one file would overwrite each other).
  auto proc = Process::spawn(argv, {}, dir_->sub("prometheus.out"), dir_->sub("prometheus.log"));
  if (!proc) return proc.status();
  proc_ = std::move(*proc);
  while (Clock::now() < deadline) {
    if (!proc_->running()) {
      std::string log = log_tail();
      proc_.reset();
      if (log.find("address already in use") != std::string::npos)
        return Status::busy("prometheus: port taken: " + address_);
      return Status::io("prometheus exited at start; log:\n" + log);
    }
    auto r = http_get(address_, "/-/ready", std::chrono::seconds(2));
    if (r && r->status == 200) return Status::ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::io("prometheus not ready on " + address_ + " in time; log:\n" + log_tail());
}

PrometheusServer::~PrometheusServer() {
  if (proc_) {
    proc_->signal(SIGTERM);
    if (proc_->wait(std::chrono::seconds(10)) < 0) proc_->kill9();
  }
}

std::string PrometheusServer::log_tail(size_t max_bytes) const {
  std::string log = read_file(dir_->sub("prometheus.log"));
  return log.size() > max_bytes ? log.substr(log.size() - max_bytes) : log;
}

Result<std::string> PrometheusServer::api_get(const std::string& path_and_query) {
  auto r = http_get(address_, path_and_query, std::chrono::seconds(10));
  if (!r) return r.status();
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::corrupt("prometheus " + path_and_query + ": HTTP " + std::to_string(r->status) +
                           ", not JSON: " + r->body.substr(0, 200));
  if (j.value("status", "") != "success")
    return Status::invalid("prometheus " + path_and_query + ": " + j.value("errorType", "?") +
                           ": " + j.value("error", "?"));
  return r->body;
}

Result<std::vector<PromSample>> PrometheusServer::query(const std::string& promql) {
  auto body = api_get("/api/v1/query?query=" + url_encode(promql));
  if (!body) return body.status();
  std::vector<PromSample> out;
  try {
    json data = json::parse(*body).at("data");
    std::string type = data.value("resultType", "");
    if (type == "vector") {
      for (const auto& s : data.at("result")) {
        PromSample ps;
        for (const auto& [k, v] : s.at("metric").items()) ps.labels[k] = v.get<std::string>();
        ps.value = parse_value(s.at("value").at(1));
        out.push_back(std::move(ps));
      }
    } else if (type == "scalar") {
      out.push_back({{}, parse_value(data.at("result").at(1))});
    } else {
      return Status::invalid("prometheus query '" + promql + "': result type '" + type +
                             "' (want vector or scalar)");
    }
  } catch (const json::exception& e) {
    return Status::corrupt("prometheus query '" + promql + "': unexpected JSON: " + e.what());
  }
  return out;
}

Result<double> PrometheusServer::query_value(const std::string& promql) {
  auto r = query(promql);
  if (!r) return r.status();
  if (r->empty()) return Status::not_found("prometheus query '" + promql + "': no result");
  if (r->size() > 1)
    return Status::invalid("prometheus query '" + promql + "': " + std::to_string(r->size()) +
                           " series, want one");
  return r->front().value;
}

Result<double> PrometheusServer::wait_for_value(const std::string& promql,
                                                const std::function<bool(double)>& pred,
                                                std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto v = query_value(promql);
    if (v && pred(*v)) return v;
    if (Clock::now() >= deadline) {
      if (!v) return v.status().with_context("timed out waiting");
      return Status::busy("prometheus query '" + promql + "': still " + std::to_string(*v) +
                          " after " + std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Status PrometheusServer::wait_target_up(const std::string& target,
                                        std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string last = "not listed";
  for (;;) {
    auto body = api_get("/api/v1/targets?state=active");
    if (!body) {
      last = body.status().to_string();
    } else {
      json j = json::parse(*body, nullptr, false);
      json targets = j.value("data", json::object()).value("activeTargets", json::array());
      for (const auto& t : targets) {
        if (t.value("labels", json::object()).value("instance", "") != target) continue;
        std::string health = t.value("health", "");
        if (health == "up") return Status::ok();
        last = "health '" + health + "', last error '" + t.value("lastError", "") + "'";
      }
    }
    if (Clock::now() >= deadline)
      return Status::busy("prometheus target " + target + " not up in time: " + last);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace recsync::test
