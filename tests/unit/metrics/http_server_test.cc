// The metrics HTTP server over real loopback sockets. Timeouts are shortened
// (read 1 s, write 1 s) so the misbehaving-client cases run in seconds; every
// loop is bounded in count and time.
#include "metrics/http_server.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/http_client.h"
#include "support/support.h"

namespace recsync::metrics {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::http_exchange;
using test::http_get;

constexpr const char* kGet = "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// A connected socket closed by the destructor.
struct Sock {
  int fd = -1;
  explicit Sock(int adopt) : fd(adopt) {}
  explicit Sock(const std::string& addr) {
    auto r = test::tcp_connect(addr);
    EXPECT_TRUE(r) << r.status().to_string();
    if (r) fd = *r;
  }
  ~Sock() {
    if (fd >= 0) ::close(fd);
  }
  bool send_all(std::string_view s) {
    return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  // True once the server closed or reset the connection; waits up to timeout.
  // Bytes received meanwhile are appended to *got.
  bool closed_within(std::chrono::milliseconds timeout, std::string* got = nullptr) {
    auto deadline = Clock::now() + timeout;
    char buf[65536];
    while (Clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      int left = static_cast<int>(
          std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (::poll(&p, 1, std::max(left, 0)) <= 0) continue;
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
      if (n > 0 && got) got->append(buf, static_cast<size_t>(n));
    }
    return false;
  }
};

size_t open_fds() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++n;
    ::closedir(d);
  }
  return n;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpServerOptions o = {}, HttpServer::RenderFn render = nullptr) {
    o.listen = o.listen == kDefaultListen ? "127.0.0.1:0" : o.listen;
    if (!render) {
      render = [this] {
        ++renders_;
        return std::string(kBody);
      };
    }
    auto s = HttpServer::start(o, std::move(render));
    ASSERT_TRUE(s) << s.status().to_string();
    server_ = std::move(*s);
    addr_ = server_->address();
  }
  static constexpr const char* kBody = "# HELP t h\n# TYPE t gauge\nt 1\n";
  std::unique_ptr<HttpServer> server_;
  std::string addr_;
  std::atomic<int> renders_{0};
};

HttpServerOptions fast_timeouts() {
  HttpServerOptions o;
  o.read_timeout = 1000ms;
  o.write_timeout = 1000ms;
  return o;
}

TEST_F(HttpServerTest, ServesMetrics) {
  start();
  EXPECT_TRUE(addr_.starts_with("127.0.0.1:")) << addr_;
  EXPECT_GT(server_->port(), 0);
  for (const char* req : {kGet, "GET /metrics HTTP/1.0\r\n\r\n", "GET /metrics?a=b HTTP/1.1\n\n"}) {
    auto r = http_exchange(addr_, req, 5s);
    ASSERT_TRUE(r) << r.status().to_string();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, kBody);
    EXPECT_EQ(r->headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(r->headers["content-length"], std::to_string(std::string(kBody).size()));
    EXPECT_EQ(r->headers["connection"], "close");
    EXPECT_TRUE(r->raw.starts_with("HTTP/1.1 200 OK\r\n")) << r->raw;
  }
  EXPECT_EQ(renders_, 3);
  EXPECT_EQ(server_->stats().responses_200, 3u);
}

TEST_F(HttpServerTest, AnswersErrors) {
  start();
  auto expect = [&](std::string_view req, int code) {
    auto r = http_exchange(addr_, req, 5s);
    EXPECT_TRUE(r) << r.status().to_string();
    if (!r) return test::HttpResponse{};
    EXPECT_EQ(r->status, code) << req;
    EXPECT_EQ(r->headers["connection"], "close");
    EXPECT_EQ(r->headers["content-length"], std::to_string(r->body.size()));
    return *r;
  };
  expect("GET /other HTTP/1.1\r\n\r\n", 404);
  auto post = expect("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405);
  EXPECT_EQ(post.headers["allow"], "GET");
  EXPECT_EQ(expect("HEAD /metrics HTTP/1.1\r\n\r\n", 405).headers["allow"], "GET");
  expect("\x16\x03\x01\x02\x01\x01\xfc\x03\x03\r\n\r\n", 400);  // TLS-ish garbage
  expect("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n", 400);
  // Over 8 KiB of headers: 431, with or without their end, and a bigger
  // flood still gets its answer (lingering close, not a reset).
  std::string big = "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n";
  expect(big, 431);
  expect("GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(40000, 'b'), 431);
  // A body the server never reads does not reset the answer either.
  expect("POST /metrics HTTP/1.1\r\nContent-Length: 32768\r\n\r\n" + std::string(32768, 'c'), 405);
  EXPECT_EQ(renders_, 0) << "no render for refused requests";
  auto s = server_->stats();
  EXPECT_EQ(s.responses_404, 1u);
  EXPECT_EQ(s.responses_405, 3u);
  EXPECT_EQ(s.responses_400, 2u);
  EXPECT_EQ(s.responses_431, 2u);
  EXPECT_EQ(s.responses_200, 0u);
  // Still healthy.
  auto r = http_get(addr_, "/metrics");
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
}

// Garbage of every shape, each ended by a blank line so it is judged at
// once: every one gets an answer, and the server stays healthy.
TEST_F(HttpServerTest, GarbageGetsAnswersAndLeavesItHealthy) {
  start(fast_timeouts());
  std::mt19937 rng(9465);
  for (int i = 0; i < 200; ++i) {
    std::string junk(rng() % 2000, '\0');
    for (auto& c : junk) c = static_cast<char>(rng() % 256);
    auto r = http_exchange(addr_, junk + "\r\n\r\n", 3s);
    ASSERT_TRUE(r) << i << ": " << r.status().to_string();
    EXPECT_TRUE(r->status == 400 || r->status == 405 || r->status == 404) << r->status;
  }
  auto r = http_get(addr_, "/metrics");
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  auto s = server_->stats();
  EXPECT_EQ(s.responses_400 + s.responses_404 + s.responses_405, 200u);
  EXPECT_EQ(s.read_timeouts + s.io_errors, 0u);
}

TEST_F(HttpServerTest, RenderExceptionIs500AndTheServerCarriesOn) {
  std::atomic<int> calls{0};
  start({}, [&]() -> std::string {
    if (calls++ == 0) throw std::runtime_error("snapshot failed");
    return "ok 1\n";
  });
  auto r = http_get(addr_, "/metrics");
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->status, 500);
  r = http_get(addr_, "/metrics");
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok 1\n");
  EXPECT_EQ(server_->stats().responses_500, 1u);
}

TEST_F(HttpServerTest, ListensOnIpv6Loopback) {
  HttpServerOptions o;
  o.listen = "[::1]:0";
  auto s = HttpServer::start(o, [] { return std::string("v6 1\n"); });
  if (!s && s.status().err() == EADDRNOTAVAIL) GTEST_SKIP() << "no ::1 here";
  ASSERT_TRUE(s) << s.status().to_string();
  EXPECT_TRUE((*s)->address().starts_with("[::1]:")) << (*s)->address();
  auto r = http_get((*s)->address(), "/metrics");
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->body, "v6 1\n");
}

TEST_F(HttpServerTest, RefusesBadAddressesAndNamesTheAddressWhenBindFails) {
  auto render = [] { return std::string(); };
  for (const char* bad : {"", "127.0.0.1", "localhost:9465", "[::1", "[::1]9465", "1.2.3.4:99999",
                          "127.0.0.1:x", "[nope]:1", "127.1:80"}) {
    HttpServerOptions o;
    o.listen = bad;
    auto s = HttpServer::start(o, render);
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.status().code(), Status::Code::kInvalid) << bad;
    EXPECT_NE(s.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << s.status().message();
  }
  EXPECT_FALSE(HttpServer::start({}, nullptr)) << "a render callback is required";
  start();
  HttpServerOptions o;
  o.listen = addr_;
  auto second = HttpServer::start(o, render);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.status().message(),
            "metrics listen " + addr_ + ": bind: Address already in use");
}

// A client sending one byte per 100 ms is dropped at the read deadline
// (1 s here) while normal clients are served meanwhile without delay.
TEST_F(HttpServerTest, SlowClientIsDroppedAndDoesNotHoldOthers) {
  start(fast_timeouts());
  Sock slow(addr_);
  ASSERT_GE(slow.fd, 0);
  const std::string req =
      "GET /metrics HTTP/1.1\r\nHost: test\r\nX-Pad: " + std::string(100, 'p') + "\r\n\r\n";
  std::atomic<bool> dropped{false};
  double dropped_after_ms = -1;
  std::string got;
  std::thread t([&] {
    auto t0 = Clock::now();
    for (size_t i = 0; i < req.size() && i < 60; ++i) {  // 60 bytes = 6 s at most
      if (!slow.send_all(req.substr(i, 1)) || slow.closed_within(100ms, &got)) {
        dropped_after_ms = ms_since(t0);
        dropped = true;
        return;
      }
    }
  });
  double worst_ms = 0;
  int served = 0;
  for (int i = 0; i < 40 && !dropped; ++i) {  // at most ~40 x 50 ms
    auto t0 = Clock::now();
    auto r = http_get(addr_, "/metrics", 2s);
    worst_ms = std::max(worst_ms, ms_since(t0));
    ASSERT_TRUE(r) << r.status().to_string();
    EXPECT_EQ(r->status, 200);
    ++served;
    std::this_thread::sleep_for(50ms);
  }
  t.join();
  EXPECT_TRUE(dropped);
  EXPECT_GE(dropped_after_ms, 900);
  EXPECT_LE(dropped_after_ms, 2500);
  EXPECT_EQ(got, "") << "a dropped client gets no answer";
  EXPECT_GE(served, 5);
  EXPECT_LT(worst_ms, 500) << "a normal client waited behind the slow one";
  EXPECT_EQ(server_->stats().read_timeouts, 1u);
  std::printf("slow client dropped after %.0f ms; %d normal requests meanwhile, worst %.1f ms\n",
              dropped_after_ms, served, worst_ms);
}

TEST_F(HttpServerTest, SilentClientIsDroppedAndDoesNotHoldOthers) {
  start(fast_timeouts());
  auto t0 = Clock::now();
  Sock silent(addr_);
  Sock half(addr_);  // half a request line, then nothing
  ASSERT_TRUE(half.send_all("GET /metr"));
  for (int i = 0; i < 3; ++i) {
    auto t1 = Clock::now();
    auto r = http_get(addr_, "/metrics", 2s);
    ASSERT_TRUE(r) << r.status().to_string();
    EXPECT_EQ(r->status, 200);
    EXPECT_LT(ms_since(t1), 500);
  }
  std::string got;
  EXPECT_TRUE(silent.closed_within(3s, &got));
  EXPECT_TRUE(half.closed_within(1s, &got));
  double after = ms_since(t0);
  EXPECT_GE(after, 900);
  EXPECT_LE(after, 2500);
  EXPECT_EQ(got, "");
  EXPECT_EQ(server_->stats().read_timeouts, 2u);
}

// A client that asks for a large page and never reads it: the other clients
// are served, and it is dropped at the write deadline.
TEST_F(HttpServerTest, ClientThatDoesNotReadDoesNotBlockOthers) {
  const std::string big(16 << 20, 'x');  // far more than the socket buffers hold
  std::atomic<int> calls{0};
  // A write deadline well above the bound on each other client's answer: a
  // server that served one client at a time would answer them only after
  // the stuck one is reset (3 s), whatever the machine's load.
  HttpServerOptions o = fast_timeouts();
  o.write_timeout = 3000ms;
  start(o, [&] { return calls++ == 0 ? big : std::string("small 1\n"); });
  Sock stuck(addr_);
  int small = 4096;
  ASSERT_EQ(::setsockopt(stuck.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  ASSERT_TRUE(stuck.send_all(kGet));
  ASSERT_TRUE(test::wait_until([&] { return calls.load() == 1; }, 2s));
  auto t0 = Clock::now();
  for (int i = 0; i < 3; ++i) {
    auto r = http_get(addr_, "/metrics", 2s);
    ASSERT_TRUE(r) << r.status().to_string();
    EXPECT_EQ(r->body, "small 1\n");
  }
  EXPECT_LT(ms_since(t0), 2500) << "the other clients waited for the stuck one";
  EXPECT_TRUE(test::wait_until([&] { return server_->stats().write_timeouts == 1; }, 6s));
  EXPECT_TRUE(stuck.closed_within(1s)) << "reset after the write deadline";
}

TEST_F(HttpServerTest, ConnectionCapClosesNewOnesAtOnce) {
  HttpServerOptions o;
  o.max_connections = 4;
  o.read_timeout = 3000ms;
  start(o);
  std::vector<std::unique_ptr<Sock>> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(std::make_unique<Sock>(addr_));
  ASSERT_TRUE(test::wait_until([&] { return server_->stats().connections == 4; }, 2s));
  // The server's reset may even beat the client's view of the handshake:
  // connect() then fails with ECONNRESET. Either way it is closed at once.
  auto t0 = Clock::now();
  auto extra = test::tcp_connect(addr_, 1s);
  std::string got;
  if (extra) {
    Sock s(*extra);
    EXPECT_TRUE(s.closed_within(1s, &got));
  } else {
    EXPECT_EQ(extra.status().err(), ECONNRESET) << extra.status().to_string();
  }
  EXPECT_LT(ms_since(t0), 500);
  EXPECT_EQ(got, "");
  EXPECT_EQ(server_->stats().refused_limit, 1u);
  idle.clear();  // the server sees them go and frees their slots
  bool ok = test::wait_until(
      [&] {
        auto r = http_get(addr_, "/metrics", 1s);
        return r && r->status == 200;
      },
      2s);
  EXPECT_TRUE(ok);
}

TEST_F(HttpServerTest, ManySequentialRequestsKeepWorkingAndLeakNothing) {
  start();
  // A first request (and its lingering close) so lazily opened fds count in the baseline.
  ASSERT_TRUE(http_get(addr_, "/metrics"));
  ASSERT_TRUE(test::wait_until([&] { return server_->stats().connections == 1; }, 1s));
  std::this_thread::sleep_for(50ms);
  const size_t fds_before = open_fds();
  constexpr int kRequests = 500;
  std::vector<double> ms;
  for (int i = 0; i < kRequests; ++i) {
    auto t0 = Clock::now();
    auto r = http_get(addr_, i % 2 ? "/metrics" : "/nope", 2s);
    ms.push_back(ms_since(t0));
    ASSERT_TRUE(r) << i << ": " << r.status().to_string();
    ASSERT_EQ(r->status, i % 2 ? 200 : 404) << i;
  }
  auto s = server_->stats();
  EXPECT_EQ(s.responses_200, 1u + kRequests / 2);
  EXPECT_EQ(s.responses_404, kRequests / 2u);
  EXPECT_TRUE(test::wait_until([&] { return open_fds() <= fds_before; }, 2s))
      << open_fds() << " fds open, " << fds_before << " before";
  std::sort(ms.begin(), ms.end());
  std::printf("%d sequential requests: median %.3f ms, p99 %.3f ms\n", kRequests, ms[ms.size() / 2],
              ms[ms.size() * 99 / 100]);
}

TEST_F(HttpServerTest, StopIsPromptWithClientsConnected) {
  start(fast_timeouts());
  Sock silent(addr_);
  Sock half(addr_);
  ASSERT_TRUE(half.send_all("GET /metrics HT"));
  ASSERT_TRUE(test::wait_until([&] { return server_->stats().connections == 2; }, 2s));
  auto t0 = Clock::now();
  server_->stop();
  double took = ms_since(t0);
  EXPECT_LT(took, 200);
  EXPECT_TRUE(silent.closed_within(1s));
  auto r = test::tcp_connect(addr_, 1s);
  EXPECT_FALSE(r) << "still listening after stop()";
  if (r) ::close(*r);
  server_->stop();  // idempotent
  EXPECT_EQ(server_->stats().connections, 2u) << "counters readable after stop";
  std::printf("stop() with 2 clients connected took %.3f ms\n", took);
}

TEST_F(HttpServerTest, ExposesItsOwnCounters) {
  std::atomic<HttpServer*> self{nullptr};
  start({}, [&] {
    Exposition e;
    self.load()->collect(e);
    EXPECT_TRUE(e.first_error().is_ok()) << e.first_error().to_string();
    return e.take();
  });
  self = server_.get();
  ASSERT_TRUE(http_get(addr_, "/nope"));
  ASSERT_TRUE(http_get(addr_, "/metrics"));
  auto r = http_get(addr_, "/metrics");
  ASSERT_TRUE(r) << r.status().to_string();
  const std::string& t = r->body;
  EXPECT_NE(t.find("# TYPE recsync_metrics_http_requests_total counter\n"), std::string::npos) << t;
  EXPECT_NE(t.find("recsync_metrics_http_requests_total{code=\"200\"} 1\n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("recsync_metrics_http_requests_total{code=\"404\"} 1\n"), std::string::npos)
      << t;
  EXPECT_NE(t.find("recsync_metrics_http_connections_total 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("recsync_metrics_http_dropped_total{reason=\"read_timeout\"} 0\n"),
            std::string::npos);
  EXPECT_NE(t.find("# TYPE recsync_metrics_render_seconds gauge\n"), std::string::npos);
}

// The measurement asked for: render + serve of a ~5 KB page (a realistic
// exposition: 60 series), over loopback, sequential scrapes.
TEST_F(HttpServerTest, FiveKilobytePageTiming) {
  auto render = [] {
    Exposition e;
    for (int f = 0; f < 12; ++f) {
      (void)e
          .begin_family("recsync_family_" + std::to_string(f) + "_seconds", MetricType::kGauge,
                        "A family of the size the daemon exposes, for timing.")
          .is_ok();
      for (int p = 0; p < 5; ++p) {
        (void)e.add_sample({{"peer", "fs" + std::to_string(p)}, {"priority", "backfill"}}, p * 1.5)
            .is_ok();
      }
    }
    return e.take();
  };
  start({}, render);
  const size_t page = render().size();
  EXPECT_GE(page, 4500u);
  EXPECT_LE(page, 6500u);
  constexpr int kScrapes = 1000;
  std::vector<double> ms;
  auto t0 = Clock::now();
  for (int i = 0; i < kScrapes; ++i) {
    auto t1 = Clock::now();
    auto r = http_get(addr_, "/metrics", 2s);
    ms.push_back(ms_since(t1));
    ASSERT_TRUE(r && r->status == 200 && r->body.size() == page) << i;
  }
  double total = ms_since(t0);
  std::sort(ms.begin(), ms.end());
  double render_us = server_->stats().last_render_seconds * 1e6;
  std::printf(
      "%zu-byte page, %d scrapes: median %.3f ms, p99 %.3f ms, %.0f scrapes/s; last render %.1f "
      "us\n",
      page, kScrapes, ms[ms.size() / 2], ms[ms.size() * 99 / 100], kScrapes * 1000 / total,
      render_us);
  EXPECT_LT(ms[ms.size() / 2], 50) << "a scrape should take well under a millisecond or so";
}

}  // namespace
}  // namespace recsync::metrics
