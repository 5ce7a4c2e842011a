#pragma once
// A small HTTP/1.x server for Prometheus scrapes: GET /metrics answers with
// the text a render callback builds at that moment. Built to be left on a
// network that is not trusted not to misbehave:
//
// - One thread of its own, poll(2) over non-blocking sockets; the daemon's
//   libuv loop is never involved, so a scrape cannot delay recordings.
// - At most max_connections at once (default 16); a connection beyond that
//   is accepted and closed at once, without a response.
// - A request (request line + headers) may take max_request_bytes (default
//   8 KiB); more gets "431 Request Header Fields Too Large" and a close.
// - The whole request must arrive within read_timeout (default 5 s) of the
//   accept; a slow or silent client is dropped then, without a response. The
//   response must be taken within write_timeout (default 10 s) of being
//   ready; a client that does not read is dropped then. Neither holds up
//   anybody else: the thread only blocks in poll().
// - GET only: other methods get 405 with "Allow: GET" (HEAD too), a path
//   other than /metrics (a query string is ignored) 404, a request that is
//   not HTTP/1.0 or HTTP/1.1 400. Every response carries Content-Length and
//   "Connection: close", and the connection is closed after it (after a
//   short lingering read, so unread request bytes do not reset it before the
//   client has read the answer). Request bodies are not read.
// - /metrics has Content-Type "text/plain; version=0.0.4; charset=utf-8".
//   If the render callback throws, the answer is 500 and the error is logged.
//
// The render callback runs ON THE SERVER'S THREAD, once per GET /metrics,
// while other connections wait: it should read component snapshots (brief
// locks, atomics) and build the text, nothing slow. It must not call stop().
//
// Listen address: "a.b.c.d:port" or "[v6]:port" (optional "%scope" inside
// the brackets), numeric only; port 0 picks a free port (see port()). The
// daemon's default is kDefaultListen; an empty address (metrics off) is the
// caller's concern: start() refuses it.
//
// Thread safety: start() and stop() from one owning thread (not from the
// render callback); stats(), collect(), port() and address() from any thread.
// Logger "metrics": the listen address at info; per-connection trouble at
// debug (a flood of bad clients must not flood the journal).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "metrics/exposition.h"
#include "recsync/status.h"

namespace recsync::metrics {

inline constexpr const char* kDefaultListen = "127.0.0.1:9465";

struct HttpServerOptions {
  std::string listen = kDefaultListen;
  size_t max_connections = 16;                     // open at once; more are closed at accept
  size_t max_request_bytes = 8192;                 // request line + headers
  std::chrono::milliseconds read_timeout{5000};    // accept -> whole request
  std::chrono::milliseconds write_timeout{10000};  // response ready -> fully sent
  std::chrono::milliseconds linger{1000};  // after the response: wait for the client's close
};

// Counters since start (monotonic).
struct HttpServerStats {
  uint64_t connections = 0;        // accepted and served or handled
  uint64_t refused_limit = 0;      // closed at accept: max_connections reached
  uint64_t responses_200 = 0;      // GET /metrics answered
  uint64_t responses_400 = 0;      // malformed request
  uint64_t responses_404 = 0;      // other path
  uint64_t responses_405 = 0;      // other method
  uint64_t responses_431 = 0;      // request too large
  uint64_t responses_500 = 0;      // render callback threw
  uint64_t read_timeouts = 0;      // dropped: request not complete within read_timeout
  uint64_t write_timeouts = 0;     // dropped: response not taken within write_timeout
  uint64_t io_errors = 0;          // reset or other socket error mid-connection
  double last_render_seconds = 0;  // duration of the last render callback
};

class HttpServer {
 public:
  using RenderFn = std::function<std::string()>;

  // Binds (SO_REUSEADDR, backlog 64) and starts the thread. kInvalid for a
  // malformed address or empty render; kIo naming the address when socket,
  // bind or listen fail (e.g. "metrics listen 127.0.0.1:9465: bind: Address
  // already in use").
  static Result<std::unique_ptr<HttpServer>> start(HttpServerOptions options, RenderFn render);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Wakes the thread (eventfd), joins it and closes every socket. Returns
  // promptly unless a render callback is running (it waits for that one).
  // Idempotent.
  void stop();

  uint16_t port() const { return port_; }
  // The bound address with its real port, e.g. "127.0.0.1:9465", "[::1]:9465".
  const std::string& address() const { return address_; }
  HttpServerStats stats() const;
  // Adds this server's own families (recsync_metrics_http_*) to an exposition:
  // responses by code, dropped connections by reason, accepted connections,
  // last render duration. Safe from the render callback.
  void collect(Exposition& out) const;

  struct Impl;  // the poll loop's state, in http_server.cc

 private:
  HttpServer() = default;

  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::string address_;
};

}  // namespace recsync::metrics
