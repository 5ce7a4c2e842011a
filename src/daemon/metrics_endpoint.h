#pragma once
// The daemon's /metrics endpoint: the HTTP server (metrics/http_server.h, its
// own thread) and a cache of the latest status snapshot.
//
// Component snapshots (the spool pipeline's above all) may only be taken on
// the loop thread, but the page is rendered on the server's thread. So the
// loop publishes a StatusInputs copy every second (and once before the
// server starts); a scrape renders from the latest copy (daemon/metrics.h),
// with ages computed at the scrape's time. The copy is swapped under a mutex
// held only for a pointer exchange: neither side waits on the other's work.
//
// Listen: `[metrics] listen`; start() is called only for a non-empty one.
// A bind failure is an error naming the address ("metrics listen
// 127.0.0.1:9465: bind: Address already in use").
//
// Threads: publish(), start() and stop() from the owner (loop) thread;
// render() on the server's thread (or a test's); port()/address() any.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "daemon/status.h"
#include "metrics/http_server.h"

namespace recsync {

class MetricsEndpoint {
 public:
  // now_ms: the wall clock (Env::now) in ms, called at each scrape.
  explicit MetricsEndpoint(std::function<int64_t()> now_ms);
  ~MetricsEndpoint();  // stop()
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // The snapshot the next scrapes render from.
  void publish(StatusInputs in);
  // Binds `listen` and starts serving. Publish once first: before any
  // snapshot a scrape has only the server's own families.
  Status start(const std::string& listen);
  // Stops the server thread (joins it). Idempotent.
  void stop();

  // What GET /metrics answers now.
  std::string render();

  uint16_t port() const { return server_ ? server_->port() : 0; }
  std::string address() const { return server_ ? server_->address() : std::string(); }

 private:
  std::function<int64_t()> now_ms_;
  std::mutex mu_;
  std::shared_ptr<const StatusInputs> latest_;  // guarded by mu_
  std::unique_ptr<metrics::HttpServer> server_;
  // server_ for render(): its thread may scrape before start() has set server_.
  std::atomic<const metrics::HttpServer*> self_{nullptr};
  bool warned_ = false;  // a refused family was logged (server thread only)
};

}  // namespace recsync
