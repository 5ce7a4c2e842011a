#include "metrics/http_server.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <vector>

#include "metrics/http_request.h"
#include "recsync/log.h"
#include "recsync/sockaddr.h"

namespace recsync::metrics {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kBacklog = 64;
constexpr int kAcceptBurst = 64;               // accepts per wake, so reads are not starved
constexpr size_t kLingerDrainMax = 64 * 1024;  // bytes read and discarded after a response
constexpr auto kAcceptPause = std::chrono::milliseconds(100);  // after EMFILE and friends
constexpr auto kWarnEvery = std::chrono::minutes(1);           // at most one such warning
constexpr const char* kErrorType = "text/plain; charset=utf-8";

std::shared_ptr<spdlog::logger> logger() { return log::get("metrics"); }

// Close with RST, discarding what is unsent: a client dropped for not
// reading must not leave an orphaned socket retrying its full window.
void abort_close(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

}  // namespace

struct HttpServer::Impl {
  enum class State { kReading, kWriting, kLinger };
  struct Conn {
    int fd = -1;
    State state = State::kReading;
    Clock::time_point deadline;
    std::string in;
    std::string out;
    size_t sent = 0;
    size_t drained = 0;
  };

  HttpServerOptions opt;
  RenderFn render;
  int listen_fd = -1;
  int wake_fd = -1;
  std::atomic<bool> stopping{false};
  std::vector<Conn> conns;
  Clock::time_point accept_paused_until{};
  Clock::time_point accept_warned_at{};

  std::atomic<uint64_t> connections{0}, refused_limit{0}, r200{0}, r400{0}, r404{0}, r405{0},
      r431{0}, r500{0}, read_timeouts{0}, write_timeouts{0}, io_errors{0};
  std::atomic<double> last_render_seconds{0};

  ~Impl() { close_all(); }
  void close_all() {
    for (auto& c : conns) ::close(c.fd);
    conns.clear();
    if (listen_fd >= 0) ::close(listen_fd);
    if (wake_fd >= 0) ::close(wake_fd);
    listen_fd = wake_fd = -1;
  }

  void run();
  int poll_timeout_ms(Clock::time_point now) const;
  void accept_new(Clock::time_point now);
  void on_readable(Conn& c, Clock::time_point now);
  void on_writable(Conn& c, Clock::time_point now);
  void on_linger(Conn& c);
  void respond(Conn& c, int code, Clock::time_point now);
  void count(int code);
  void drop(Conn& c, bool abortive) {
    if (abortive)
      abort_close(c.fd);
    else
      ::close(c.fd);
    c.fd = -1;
  }
};

void HttpServer::Impl::run() {
  std::vector<pollfd> fds;
  while (!stopping.load(std::memory_order_acquire)) {
    auto now = Clock::now();
    fds.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    bool accepting = now >= accept_paused_until;
    fds.push_back({accepting ? listen_fd : -1, POLLIN, 0});
    for (const auto& c : conns)
      fds.push_back({c.fd, static_cast<short>(c.state == State::kWriting ? POLLOUT : POLLIN), 0});
    int n = ::poll(fds.data(), fds.size(), poll_timeout_ms(now));
    if (n < 0 && errno != EINTR) {
      logger()->error("metrics server: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[0].revents) break;  // stop()
    now = Clock::now();
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      short re = fds[i + 2].revents;
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        if (c.state == State::kReading)
          on_readable(c, now);
        else if (c.state == State::kLinger)
          on_linger(c);
      }
      if (c.fd >= 0 && c.state == State::kWriting && (re & (POLLOUT | POLLHUP | POLLERR)))
        on_writable(c, now);
      if (c.fd >= 0 && now >= c.deadline) {
        if (c.state == State::kReading) ++read_timeouts;
        if (c.state == State::kWriting) ++write_timeouts;
        if (c.state != State::kLinger)
          logger()->debug("metrics server: dropped a client (deadline passed)");
        drop(c, c.state != State::kLinger);
      }
    }
    std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
    if (fds[1].revents) accept_new(now);
  }
}

int HttpServer::Impl::poll_timeout_ms(Clock::time_point now) const {
  auto next = now + std::chrono::seconds(60);
  if (now < accept_paused_until) next = std::min(next, accept_paused_until);
  for (const auto& c : conns) next = std::min(next, c.deadline);
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
  return static_cast<int>(std::max<int64_t>(ms, 0));
}

void HttpServer::Impl::accept_new(Clock::time_point now) {
  for (int i = 0; i < kAcceptBurst; ++i) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) return;
      if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        // The pending connection stays queued and keeps the listen socket
        // readable: pause accepting rather than spin.
        if (accept_warned_at == Clock::time_point{} || now - accept_warned_at >= kWarnEvery) {
          logger()->warn("metrics server: accept: {} (pausing accepts)", std::strerror(e));
          accept_warned_at = now;
        }
        accept_paused_until = now + kAcceptPause;
        return;
      }
      continue;  // ECONNABORTED, EPROTO...: that client is gone, try the next
    }
    if (conns.size() >= opt.max_connections) {
      ++refused_limit;
      abort_close(fd);
      continue;
    }
    ++connections;
    Conn c;
    c.fd = fd;
    c.deadline = now + opt.read_timeout;
    conns.push_back(std::move(c));
  }
}

void HttpServer::Impl::on_readable(Conn& c, Clock::time_point now) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      ++io_errors;
      drop(c, true);
      return;
    }
    if (n == 0) {  // gave up before finishing its request: nothing to answer
      drop(c, false);
      return;
    }
    size_t old = c.in.size();
    c.in.append(buf, static_cast<size_t>(n));
    size_t end = find_head_end(c.in, old);
    if (end != std::string::npos && end <= opt.max_request_bytes) {
      c.in.resize(end);
      respond(c, classify_request(c.in), now);
      return;
    }
    if (c.in.size() > opt.max_request_bytes) {
      respond(c, 431, now);
      return;
    }
  }
}

void HttpServer::Impl::respond(Conn& c, int code, Clock::time_point now) {
  std::string body;
  const char* type = kErrorType;
  if (code == 200) {
    auto t0 = Clock::now();
    try {
      body = render();
      type = kContentType;
    } catch (const std::exception& e) {
      logger()->error("metrics server: render failed: {}", e.what());
      code = 500;
    } catch (...) {
      logger()->error("metrics server: render failed (unknown exception)");
      code = 500;
    }
    last_render_seconds.store(std::chrono::duration<double>(Clock::now() - t0).count());
    now = Clock::now();  // the write deadline starts when the response is ready
  }
  if (code != 200) body = std::to_string(code) + " " + reason_phrase(code) + "\n";
  count(code);
  c.in.clear();
  c.in.shrink_to_fit();
  c.out = build_response(code, type, body);
  c.sent = 0;
  c.state = State::kWriting;
  c.deadline = now + opt.write_timeout;
  on_writable(c, now);
}

void HttpServer::Impl::on_writable(Conn& c, Clock::time_point now) {
  while (c.sent < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      ++io_errors;
      drop(c, true);
      return;
    }
    c.sent += static_cast<size_t>(n);
  }
  // All sent: signal the end, then read until the client closes so that
  // request bytes we never read do not turn our close into a reset that
  // could destroy the response before the client has read it.
  ::shutdown(c.fd, SHUT_WR);
  c.out.clear();
  c.out.shrink_to_fit();
  c.state = State::kLinger;
  c.deadline = now + opt.linger;
}

void HttpServer::Impl::on_linger(Conn& c) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0 || (c.drained += static_cast<size_t>(n)) > kLingerDrainMax) {
      drop(c, false);
      return;
    }
  }
}

void HttpServer::Impl::count(int code) {
  switch (code) {
    case 200:
      ++r200;
      break;
    case 400:
      ++r400;
      break;
    case 404:
      ++r404;
      break;
    case 405:
      ++r405;
      break;
    case 431:
      ++r431;
      break;
    default:
      ++r500;
      break;
  }
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options, RenderFn render) {
  if (!render) return Status::invalid("metrics server: no render callback");
  if (options.max_connections == 0 || options.max_request_bytes == 0)
    return Status::invalid("metrics server: max_connections and max_request_bytes must be > 0");
  auto addr = parse_address(options.listen);
  if (!addr) return addr.status().with_context("metrics listen");
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->impl_ = std::make_unique<Impl>();
  Impl& im = *s->impl_;
  const std::string what = "metrics listen " + options.listen;
  im.wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (im.wake_fd < 0) return Status::from_errno(errno, what + ": eventfd");
  im.listen_fd = ::socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (im.listen_fd < 0) return Status::from_errno(errno, what + ": socket");
  int one = 1;
  ::setsockopt(im.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(im.listen_fd, reinterpret_cast<const sockaddr*>(&addr->ss), addr->len) != 0)
    return Status::from_errno(errno, what + ": bind");
  if (::listen(im.listen_fd, kBacklog) != 0) return Status::from_errno(errno, what + ": listen");
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(im.listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0)
    return Status::from_errno(errno, what + ": getsockname");
  s->address_ = format_sockaddr(bound);
  s->port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  im.opt = std::move(options);
  im.render = std::move(render);
  s->thread_ = std::thread([&im] { im.run(); });
  logger()->info("serving metrics on http://{}{}", s->address_, kMetricsPath);
  return s;
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::stop() {
  if (!impl_ || !thread_.joinable()) return;
  impl_->stopping.store(true, std::memory_order_release);
  uint64_t one = 1;
  // Cannot fail short of a full counter; poll also sees `stopping` after its timeout.
  [[maybe_unused]] ssize_t n = ::write(impl_->wake_fd, &one, sizeof one);
  thread_.join();
  impl_->close_all();  // the counters stay readable
  logger()->debug("metrics server on {} stopped", address_);
}

HttpServerStats HttpServer::stats() const {
  HttpServerStats s;
  if (!impl_) return s;
  const Impl& i = *impl_;
  s.connections = i.connections;
  s.refused_limit = i.refused_limit;
  s.responses_200 = i.r200;
  s.responses_400 = i.r400;
  s.responses_404 = i.r404;
  s.responses_405 = i.r405;
  s.responses_431 = i.r431;
  s.responses_500 = i.r500;
  s.read_timeouts = i.read_timeouts;
  s.write_timeouts = i.write_timeouts;
  s.io_errors = i.io_errors;
  s.last_render_seconds = i.last_render_seconds;
  return s;
}

void HttpServer::collect(Exposition& out) const {
  const HttpServerStats s = stats();
  // The names are constants checked by the tests: a refusal cannot happen,
  // and would only leave these families out.
  auto family = [&](const char* name, MetricType t, const char* help) {
    return out.begin_family(name, t, help).is_ok();
  };
  auto sample = [&](Labels l, double v) { (void)out.add_sample(l, v).is_ok(); };
  if (family("recsync_metrics_http_requests_total", MetricType::kCounter,
             "Requests the metrics HTTP server answered, by status code.")) {
    sample({{"code", "200"}}, s.responses_200);
    sample({{"code", "400"}}, s.responses_400);
    sample({{"code", "404"}}, s.responses_404);
    sample({{"code", "405"}}, s.responses_405);
    sample({{"code", "431"}}, s.responses_431);
    sample({{"code", "500"}}, s.responses_500);
  }
  if (family("recsync_metrics_http_connections_total", MetricType::kCounter,
             "Connections the metrics HTTP server accepted (not counting those closed at once "
             "at the connection limit).")) {
    sample({}, s.connections);
  }
  if (family("recsync_metrics_http_dropped_total", MetricType::kCounter,
             "Connections the metrics HTTP server closed without an answer, by reason.")) {
    sample({{"reason", "connection_limit"}}, s.refused_limit);
    sample({{"reason", "read_timeout"}}, s.read_timeouts);
    sample({{"reason", "write_timeout"}}, s.write_timeouts);
    sample({{"reason", "io_error"}}, s.io_errors);
  }
  if (family("recsync_metrics_render_seconds", MetricType::kGauge,
             "How long the last render of /metrics took, in seconds.")) {
    sample({}, s.last_render_seconds);
  }
}

}  // namespace recsync::metrics
