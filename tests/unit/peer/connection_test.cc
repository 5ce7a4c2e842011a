#include "peer/connection.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <random>
#include <thread>

namespace recsync::peer {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using Bytes = std::vector<uint8_t>;
using Clock = std::chrono::steady_clock;
using ConnResult = Result<std::unique_ptr<Connection>>;

long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
}

Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 31 + seed + (i >> 12));
  return b;
}

// Blocking TCP connect to 127.0.0.1:port, for peers that do not speak TLS.
int raw_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool write_all(int fd, const Bytes& b) {
  size_t off = 0;
  while (off < b.size()) {
    ssize_t n = ::send(fd, b.data() + off, b.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// A TLS client driven by hand over a blocking socket, to send what
// Connection never would (half frames, bad headers).
struct RawTlsClient {
  int fd = -1;
  std::unique_ptr<TlsSession> tls;
  ~RawTlsClient() {
    if (fd >= 0) ::close(fd);
  }
  Status handshake(const TlsContext& ctx, uint16_t port) {
    fd = raw_connect(port);
    if (fd < 0) return Status::io("raw connect failed");
    auto t = TlsSession::create(ctx, TlsSession::Role::kClient);
    if (!t) return t.status();
    tls = std::move(t).value();
    RECSYNC_RETURN_IF_ERROR(tls->start());
    Bytes out, plain;
    for (int round = 0; round < 100; ++round) {
      tls->take_ciphertext(out);
      if (!write_all(fd, out)) return Status::io("raw write failed");
      out.clear();
      if (tls->established()) return Status::ok();
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1) return Status::io("raw handshake timed out");
      uint8_t buf[65536];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return Status::io("raw handshake: peer closed");
      RECSYNC_RETURN_IF_ERROR(tls->feed_ciphertext(std::span(buf, size_t(n)), plain));
    }
    return Status::io("raw handshake did not finish");
  }
  Status send_plain(const Bytes& plain) {
    RECSYNC_RETURN_IF_ERROR(tls->write(plain));
    Bytes out;
    tls->take_ciphertext(out);
    return write_all(fd, out) ? Status::ok() : Status::io("raw write failed");
  }
  Status send_close_notify() {
    RECSYNC_RETURN_IF_ERROR(tls->close());
    Bytes out;
    tls->take_ciphertext(out);
    return write_all(fd, out) ? Status::ok() : Status::io("raw write failed");
  }
};

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-conn-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    auto a = load_or_create_identity(Env::posix(), root_ + "/a", "fs1");
    auto b = load_or_create_identity(Env::posix(), root_ + "/b", "fs2");
    ASSERT_TRUE(a && b);
    a_ = std::move(a).value();
    b_ = std::move(b).value();
    auto l = listen_tcp("127.0.0.1:0");
    ASSERT_TRUE(l.is_ok()) << l.status().to_string();
    listen_fd_ = *l;
    auto p = bound_port(listen_fd_);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    port_ = *p;
    ASSERT_NE(port_, 0);
    // Client = node a, server = node b, each pinning the other.
    cctx_ = make_ctx(a_, b_.fingerprint);
    sctx_ = make_ctx(b_, a_.fingerprint);
  }
  void TearDown() override {
    if (listen_fd_ >= 0) ::close(listen_fd_);
    fs::remove_all(root_);
  }

  static std::unique_ptr<TlsContext> make_ctx(const Identity& self, const std::string& pin) {
    auto c = TlsContext::create(self, {pin});
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c ? std::move(c).value() : nullptr;
  }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }

  // Accepts the next connection and runs the server handshake, on a thread.
  std::future<ConnResult> serve(const TlsContext& ctx, milliseconds timeout) {
    return std::async(std::launch::async, [this, &ctx, timeout]() -> ConnResult {
      auto fd = accept_tcp(listen_fd_, 5s);
      if (!fd) return fd.status();
      return Connection::accept(*fd, ctx, timeout);
    });
  }

  // A connected, authenticated pair.
  void make_pair(std::unique_ptr<Connection>* client, std::unique_ptr<Connection>* server) {
    auto fut = serve(*sctx_, 5s);
    auto c = Connection::connect(addr(), *cctx_, 5s);
    auto s = fut.get();
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    *client = std::move(c).value();
    *server = std::move(s).value();
  }

  std::string root_;
  Identity a_, b_;
  std::unique_ptr<TlsContext> cctx_, sctx_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
};

// ------------------------------------------------------------- addresses

TEST(ParseAddressTest, GoodAddresses) {
  auto v4 = parse_address("127.0.0.1:7373");
  ASSERT_TRUE(v4.is_ok()) << v4.status().to_string();
  EXPECT_EQ(v4->ss.ss_family, AF_INET);
  EXPECT_EQ(v4->len, sizeof(sockaddr_in));
  const auto* a4 = reinterpret_cast<const sockaddr_in*>(&v4->ss);
  EXPECT_EQ(ntohs(a4->sin_port), 7373);
  EXPECT_EQ(ntohl(a4->sin_addr.s_addr), 0x7f000001u);
  EXPECT_EQ(v4->text, "127.0.0.1:7373");

  auto v6 = parse_address("[::1]:7373");
  ASSERT_TRUE(v6.is_ok()) << v6.status().to_string();
  EXPECT_EQ(v6->ss.ss_family, AF_INET6);
  EXPECT_EQ(v6->len, sizeof(sockaddr_in6));
  const auto* a6 = reinterpret_cast<const sockaddr_in6*>(&v6->ss);
  EXPECT_EQ(ntohs(a6->sin6_port), 7373);
  EXPECT_TRUE(IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr));

  auto scoped = parse_address("[fe80::1%lo]:1");
  ASSERT_TRUE(scoped.is_ok()) << scoped.status().to_string();
  EXPECT_NE(reinterpret_cast<const sockaddr_in6*>(&scoped->ss)->sin6_scope_id, 0u);

  EXPECT_TRUE(parse_address("0.0.0.0:0").is_ok());  // port 0: listening on any port
  EXPECT_TRUE(parse_address("[::]:65535").is_ok());
}

TEST(ParseAddressTest, BadAddresses) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":7373", "127.0.0.1:65536", "127.0.0.1:x",
                          "127.0.0.1:123456", "127.0.0.1:-1", "::1:7373", "[::1]7373", "[::1",
                          "[::1]:", "[127.0.0.1]:5", "[fe80::1%nosuchif0]:1", "peer.example:7373",
                          "1.2.3:4", "256.1.1.1:5", "127.1:5"}) {
    auto r = parse_address(bad);
    EXPECT_FALSE(r.is_ok()) << "accepted '" << bad << "'";
    if (!r.is_ok()) {
      EXPECT_EQ(r.status().code(), Status::Code::kInvalid) << bad;
      EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos)
          << r.status().message();
    }
  }
}

TEST_F(ConnectionTest, ListenOnUsedPortFails) {
  auto again = listen_tcp(addr());
  ASSERT_FALSE(again.is_ok());
  if (!again.is_ok()) {
    EXPECT_EQ(again.status().code(), Status::Code::kIo);
    EXPECT_NE(again.status().message().find("Address already in use"), std::string::npos)
        << again.status().message();
  }
}

TEST_F(ConnectionTest, AcceptTcpTimesOutAsBusy) {
  auto t0 = Clock::now();
  auto fd = accept_tcp(listen_fd_, 50ms);
  ASSERT_FALSE(fd.is_ok());
  EXPECT_EQ(fd.status().code(), Status::Code::kBusy);
  EXPECT_GE(ms_since(t0), 50);
}

// ------------------------------------------------------------- handshake, frames

TEST_F(ConnectionTest, HandshakeAndFramesBothWays) {
  std::unique_ptr<Connection> c, s;
  make_pair(&c, &s);
  ASSERT_TRUE(c && s);
  EXPECT_EQ(c->peer_fingerprint(), b_.fingerprint);
  EXPECT_EQ(s->peer_fingerprint(), a_.fingerprint);
  EXPECT_EQ(c->remote(), addr());
  EXPECT_EQ(s->remote().rfind("127.0.0.1:", 0), 0u) << s->remote();

  const size_t sizes[] = {0, 1, 100, kMaxFramePayload};
  uint64_t payload_total = 0;
  for (size_t n : sizes) {
    Bytes up = pattern(n, 1), down = pattern(n, 2);
    ASSERT_TRUE(c->send(FrameType::kDelta, up).is_ok());
    auto got = s->recv(5s);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_EQ(got->type, FrameType::kDelta);
    EXPECT_TRUE(got->payload == up) << "size " << n;

    ASSERT_TRUE(s->send(FrameType::kSignature, down).is_ok());
    auto back = c->recv(5s);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->type, FrameType::kSignature);
    EXPECT_TRUE(back->payload == down) << "size " << n;
    payload_total += n;
  }
  EXPECT_GT(c->wire_bytes_out(), payload_total);
  EXPECT_EQ(c->wire_bytes_out(), s->wire_bytes_in());
  EXPECT_EQ(s->wire_bytes_out(), c->wire_bytes_in());
  EXPECT_FALSE(c->readable_now());
}

TEST_F(ConnectionTest, HeadAndTailFramesArriveWholeAcrossRecordBoundaries) {
  std::unique_ptr<Connection> c, s;
  make_pair(&c, &s);
  ASSERT_TRUE(c && s);
  // TLS records carry 16384 bytes; the 5-byte frame header shares the first.
  const size_t sizes[] = {0, 1, 12, 16379, 16380, 16384, 16385, 32768, 65536 + 12};
  std::vector<Bytes> sent;
  for (size_t h : sizes) {
    for (size_t t : {size_t{0}, size_t{1}, size_t{16384}, size_t{70000}}) {
      if (h + t > kMaxFramePayload) continue;
      Bytes head = pattern(h, 3), tail = pattern(t, 4);
      ASSERT_TRUE(c->queue(FrameType::kDelta, head, tail).is_ok());
      Bytes whole = head;
      whole.insert(whole.end(), tail.begin(), tail.end());
      sent.push_back(std::move(whole));
    }
  }
  ASSERT_TRUE(c->flush().is_ok());
  for (size_t i = 0; i < sent.size(); ++i) {
    auto got = s->recv(5s);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_TRUE(got->payload == sent[i]) << "frame " << i << " of " << sent[i].size() << " bytes";
  }
  // head + tail over the limit is refused and the connection still works.
  Bytes half(kMaxFramePayload / 2 + 1);
  EXPECT_EQ(c->send(FrameType::kDelta, half, half).code(), Status::Code::kInvalid);
  ASSERT_TRUE(c->send(FrameType::kPing, Bytes{1, 2}, Bytes{3}).is_ok());
  auto ping = s->recv(5s);
  ASSERT_TRUE(ping.is_ok()) << ping.status().to_string();
  EXPECT_TRUE(ping->payload == (Bytes{1, 2, 3}));
}

TEST_F(ConnectionTest, MessagesAndBatchedFramesKeepOrder) {
  std::unique_ptr<Connection> c, s;
  make_pair(&c, &s);
  ASSERT_TRUE(c && s);
  HelloMsg hello;
  hello.node = "fs1";
  ASSERT_TRUE(c->send_msg(FrameType::kHello, hello).is_ok());
  for (uint64_t i = 0; i < 5; ++i) {
    ChunkMsg chunk;
    chunk.id = i;
    chunk.data = pattern(200'000, static_cast<uint8_t>(i));
    ASSERT_TRUE(c->queue_msg(FrameType::kDelta, chunk).is_ok());
  }
  ASSERT_TRUE(c->queue_msg(FrameType::kEnd, IdMsg{4}).is_ok());
  ASSERT_TRUE(c->flush().is_ok());

  auto f = s->recv(5s);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  ASSERT_EQ(f->type, FrameType::kHello);
  HelloMsg h2;
  ASSERT_TRUE(decode(f->payload, &h2).is_ok());
  EXPECT_EQ(h2.node, "fs1");
  for (uint64_t i = 0; i < 5; ++i) {
    auto d = s->recv(5s);
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    ASSERT_EQ(d->type, FrameType::kDelta);
    ChunkMsg m;
    ASSERT_TRUE(decode(d->payload, &m).is_ok());
    EXPECT_EQ(m.id, i);
    EXPECT_TRUE(m.data == pattern(200'000, static_cast<uint8_t>(i)));
  }
  auto e = s->recv(5s);
  ASSERT_TRUE(e.is_ok()) << e.status().to_string();
  EXPECT_EQ(e->type, FrameType::kEnd);
}

TEST_F(ConnectionTest, OversizedOrUnknownFrameIsRejectedWithoutKillingTheConnection) {
  std::unique_ptr<Connection> c, s;
  make_pair(&c, &s);
  ASSERT_TRUE(c && s);
  Bytes big(kMaxFramePayload + 1);
  Status st = c->send(FrameType::kDelta, big);
  EXPECT_EQ(st.code(), Status::Code::kInvalid) << st.to_string();
  st = c->send(static_cast<FrameType>(200), Bytes{1});
  EXPECT_EQ(st.code(), Status::Code::kInvalid) << st.to_string();
  ASSERT_TRUE(c->send(FrameType::kPing, Bytes(8, 7)).is_ok());
  auto f = s->recv(5s);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->type, FrameType::kPing);
}

TEST_F(ConnectionTest, RecvTimeoutIsBusyAndConnectionStillWorks) {
  std::unique_ptr<Connection> c, s;
  make_pair(&c, &s);
  ASSERT_TRUE(c && s);
  auto t0 = Clock::now();
  auto none = s->recv(60ms);
  auto took = ms_since(t0);
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), Status::Code::kBusy) << none.status().to_string();
  EXPECT_GE(took, 60);
  EXPECT_LT(took, 1000);
  EXPECT_FALSE(s->readable_now());
  auto zero = s->recv(0ms);
  EXPECT_EQ(zero.status().code(), Status::Code::kBusy);

  ASSERT_TRUE(c->send(FrameType::kPing, Bytes(8, 1)).is_ok());
  // Bounded wait for the bytes to arrive, then readable_now() must say so.
  for (int i = 0; i < 200 && !s->readable_now(); ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(s->readable_now());
  auto f = s->recv(5s);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->type, FrameType::kPing);
}

TEST_F(ConnectionTest, BothSidesStreamingAtOnceDoNotDeadlock) {
  // More than idle loopback socket buffers hold (it deadlocks at ~3 MiB
  // each way when send does not read): without reading while
  // waiting to send, both senders would block until io_timeout.
  const int kEach = 12;
  std::unique_ptr<Connection> c, s;
  make_pair(&c, &s);
  ASSERT_TRUE(c && s);
  c->set_io_timeout(5s);
  s->set_io_timeout(5s);
  auto run = [&](Connection* me, uint8_t seed) -> std::string {
    Bytes mb = pattern(kMaxFramePayload, seed);
    for (int i = 0; i < kEach; ++i) {
      Status st = me->send(FrameType::kDelta, mb);
      if (!st.is_ok()) return "send " + std::to_string(i) + ": " + st.to_string();
    }
    Bytes theirs = pattern(kMaxFramePayload, static_cast<uint8_t>(seed ^ 1));
    for (int i = 0; i < kEach; ++i) {
      auto f = me->recv(5s);
      if (!f) return "recv " + std::to_string(i) + ": " + f.status().to_string();
      if (f->payload != theirs) return "recv " + std::to_string(i) + ": content differs";
    }
    return "";
  };
  auto other = std::async(std::launch::async, run, s.get(), uint8_t{3});
  EXPECT_EQ(run(c.get(), 2), "");
  EXPECT_EQ(other.get(), "");
}

// ------------------------------------------------------------- refusals

TEST_F(ConnectionTest, ClientWithWrongPinIsRefusedAndServerFails) {
  auto wrong = make_ctx(a_, "sha256:" + std::string(64, 'a'));
  auto fut = serve(*sctx_, 3s);
  auto t0 = Clock::now();
  auto c = Connection::connect(addr(), *wrong, 3s);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), Status::Code::kRefused) << c.status().to_string();
  EXPECT_NE(c.status().message().find(b_.fingerprint), std::string::npos) << c.status().message();
  auto s = fut.get();
  EXPECT_LT(ms_since(t0), 2500);  // an error, not the handshake timeout
  ASSERT_FALSE(s.is_ok());
  // The server learns from our alert that its certificate was rejected.
  EXPECT_EQ(s.status().code(), Status::Code::kRefused) << s.status().to_string();
  EXPECT_NE(s.status().message().find("rejected our certificate"), std::string::npos)
      << s.status().message();
}

TEST_F(ConnectionTest, ServerWithWrongPinRefusesAndClientGetsAnError) {
  auto wrong = make_ctx(b_, "sha256:" + std::string(64, '0'));
  auto fut = serve(*wrong, 3s);
  auto t0 = Clock::now();
  auto c = Connection::connect(addr(), *cctx_, 3s);
  auto s = fut.get();
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), Status::Code::kRefused) << s.status().to_string();
  EXPECT_NE(s.status().message().find(a_.fingerprint), std::string::npos) << s.status().message();
  // TLS 1.3: the client may finish before the server has judged it; then the
  // rejection arrives with the first recv().
  Status client_err = c.status();
  if (c.is_ok()) {
    auto f = (*c)->recv(3s);
    ASSERT_FALSE(f.is_ok());
    client_err = f.status();
  }
  EXPECT_NE(client_err.code(), Status::Code::kBusy) << client_err.to_string();
  EXPECT_EQ(client_err.code(), Status::Code::kRefused) << client_err.to_string();
  EXPECT_NE(client_err.message().find("rejected our certificate"), std::string::npos)
      << client_err.message();
  EXPECT_LT(ms_since(t0), 2500);
}

TEST_F(ConnectionTest, PlainTcpGarbageFailsTheHandshakeClearly) {
  auto fut = serve(*sctx_, 3s);
  int fd = raw_connect(port_);
  ASSERT_GE(fd, 0);
  auto t0 = Clock::now();
  std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(write_all(fd, Bytes(http.begin(), http.end())));
  auto s = fut.get();
  auto took = ms_since(t0);
  ::close(fd);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), Status::Code::kIo);
  EXPECT_EQ(s.status().message().find("timed out"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("accept 127.0.0.1:"), std::string::npos)
      << s.status().message();
  EXPECT_LT(took, 2000);
}

TEST_F(ConnectionTest, SilentClientTimesOut) {
  auto fut = serve(*sctx_, 200ms);
  int fd = raw_connect(port_);
  ASSERT_GE(fd, 0);
  auto t0 = Clock::now();
  auto s = fut.get();
  auto took = ms_since(t0);
  ::close(fd);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), Status::Code::kIo);
  EXPECT_NE(s.status().message().find("timed out after 200 ms during TLS handshake"),
            std::string::npos)
      << s.status().message();
  EXPECT_GE(took, 150);  // measured from after the TCP connect: a little slack
  EXPECT_LT(took, 2000);
}

TEST_F(ConnectionTest, ConnectToClosedPortFailsQuickly) {
  ::close(listen_fd_);
  listen_fd_ = -1;
  auto t0 = Clock::now();
  auto c = Connection::connect(addr(), *cctx_, 5s);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), Status::Code::kIo);
  EXPECT_EQ(c.status().message(), "connect " + addr() + ": Connection refused");
  EXPECT_LT(ms_since(t0), 1000);
}

TEST_F(ConnectionTest, ConnectRejectsBadAddress) {
  auto c = Connection::connect("localhost:7373", *cctx_, 1s);
  EXPECT_EQ(c.status().code(), Status::Code::kInvalid);
  auto z = Connection::connect("127.0.0.1:0", *cctx_, 1s);
  EXPECT_EQ(z.status().code(), Status::Code::kInvalid);
}

TEST_F(ConnectionTest, CancellerAbortsAConnectInProgress) {
  // The listener never accepts: TCP connects (backlog), the TLS handshake
  // waits for a ServerHello that never comes.
  Canceller cancel;
  auto t0 = Clock::now();
  std::thread stopper([&] {
    std::this_thread::sleep_for(100ms);
    cancel.cancel();
  });
  auto c = Connection::connect(addr(), *cctx_, 10s, &cancel);
  auto took = ms_since(t0);
  stopper.join();
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), Status::Code::kIo);
  EXPECT_NE(c.status().message().find("cancelled"), std::string::npos) << c.status().message();
  EXPECT_LT(took, 1000);
  EXPECT_TRUE(cancel.cancelled());
  // Sticky: a later call fails at once.
  auto again = Connection::connect(addr(), *cctx_, 10s, &cancel);
  EXPECT_NE(again.status().message().find("cancelled"), std::string::npos);
}

// ------------------------------------------------------------- endings

TEST_F(ConnectionTest, GracefulCloseAndTcpEofBetweenFramesAreNotFound) {
  std::unique_ptr<Connection> c, s;
  make_pair(&c, &s);
  ASSERT_TRUE(c && s);
  ASSERT_TRUE(c->send(FrameType::kPing, Bytes(8, 3)).is_ok());
  c->close();
  EXPECT_FALSE(c->send(FrameType::kPing, Bytes(8, 3)).is_ok());
  auto f = s->recv(5s);  // the frame sent before close() still arrives
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  auto end = s->recv(5s);
  ASSERT_FALSE(end.is_ok());
  EXPECT_EQ(end.status().code(), Status::Code::kNotFound) << end.status().to_string();
  EXPECT_NE(end.status().message().find("peer closed the connection"), std::string::npos);

  std::unique_ptr<Connection> c2, s2;
  make_pair(&c2, &s2);
  ASSERT_TRUE(c2 && s2);
  c2.reset();  // no close_notify: TCP EOF only
  auto eof = s2->recv(5s);
  EXPECT_EQ(eof.status().code(), Status::Code::kNotFound) << eof.status().to_string();
}

TEST_F(ConnectionTest, PeerClosingMidFrameIsAnError) {
  for (bool close_notify : {false, true}) {
    SCOPED_TRACE(close_notify ? "close_notify" : "TCP EOF");
    auto fut = serve(*sctx_, 5s);
    RawTlsClient raw;
    ASSERT_TRUE(raw.handshake(*cctx_, port_).is_ok());
    auto s = fut.get();
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    // Header promising 1000 bytes, then only 10.
    Bytes partial;
    ASSERT_TRUE(encode_frame(FrameType::kDelta, Bytes(1000, 9), partial).is_ok());
    partial.resize(kFrameHeaderLen + 10);
    ASSERT_TRUE(raw.send_plain(partial).is_ok());
    if (close_notify) {
      ASSERT_TRUE(raw.send_close_notify().is_ok());
    }
    ::close(raw.fd);
    raw.fd = -1;
    auto t0 = Clock::now();
    auto f = (*s)->recv(5s);
    ASSERT_FALSE(f.is_ok());
    EXPECT_EQ(f.status().code(), Status::Code::kIo) << f.status().to_string();
    EXPECT_NE(f.status().message().find("middle of a frame"), std::string::npos)
        << f.status().message();
    EXPECT_LT(ms_since(t0), 1000);
    // Dead from now on, same error.
    EXPECT_EQ((*s)->recv(0ms).status().code(), Status::Code::kIo);
  }
}

TEST_F(ConnectionTest, BrokenFrameIsCorrupt) {
  auto fut = serve(*sctx_, 5s);
  RawTlsClient raw;
  ASSERT_TRUE(raw.handshake(*cctx_, port_).is_ok());
  auto s = fut.get();
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  ASSERT_TRUE(raw.send_plain(Bytes{0, 0, 0, 0, 1}).is_ok());  // length 0
  auto f = (*s)->recv(5s);
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), Status::Code::kCorrupt) << f.status().to_string();
  EXPECT_FALSE((*s)->send(FrameType::kPing, Bytes(8, 0)).is_ok());
}

TEST_F(ConnectionTest, ShutdownFromAnotherThreadUnblocksRecv) {
  std::unique_ptr<Connection> c, s;
  make_pair(&c, &s);
  ASSERT_TRUE(c && s);
  std::promise<Clock::time_point> shut_at;
  std::thread killer([&] {
    std::this_thread::sleep_for(100ms);
    shut_at.set_value(Clock::now());
    s->shutdown();
    s->shutdown();  // idempotent
  });
  auto f = s->recv(10s);
  auto returned = Clock::now();
  killer.join();
  auto lag = std::chrono::duration_cast<milliseconds>(returned - shut_at.get_future().get());
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), Status::Code::kIo) << f.status().to_string();
  EXPECT_NE(f.status().message().find("connection shut down"), std::string::npos);
  EXPECT_LT(lag.count(), 200);
  EXPECT_FALSE(s->send(FrameType::kPing, Bytes(8, 0)).is_ok());
  // The other side sees the connection end (no hang).
  auto other = c->recv(2s);
  ASSERT_FALSE(other.is_ok());
  EXPECT_NE(other.status().code(), Status::Code::kBusy) << other.status().to_string();
}

TEST_F(ConnectionTest, ShutdownUnblocksASendStuckOnAFullSocket) {
  std::unique_ptr<Connection> c, s;
  make_pair(&c, &s);
  ASSERT_TRUE(c && s);
  // The server never reads: the client's sends fill both socket buffers.
  std::thread killer([&] {
    std::this_thread::sleep_for(200ms);
    c->shutdown();
  });
  Bytes mb(kMaxFramePayload, 5);
  Status st;
  auto t0 = Clock::now();
  for (int i = 0; i < 1000 && st.is_ok(); ++i) st = c->send(FrameType::kDelta, mb);
  killer.join();
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("connection shut down"), std::string::npos) << st.to_string();
  EXPECT_LT(ms_since(t0), 3000);
}

// ------------------------------------------------------------- throughput

TEST_F(ConnectionTest, Throughput256MiBIn1MiBFrames) {
#if defined(__SANITIZE_ADDRESS__)
  const size_t kFrames = 64;  // sanitizers are ~10x slower
#else
  const size_t kFrames = 256;
#endif
  std::unique_ptr<Connection> c, s;
  make_pair(&c, &s);
  ASSERT_TRUE(c && s);
  Bytes base(kMaxFramePayload);
  std::mt19937_64 rng(42);
  for (size_t i = 0; i < base.size(); i += 8) {
    uint64_t v = rng();
    std::memcpy(&base[i], &v, std::min<size_t>(8, base.size() - i));
  }
  auto cpu_seconds = [] {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return tv(ru.ru_utime) + tv(ru.ru_stime);
  };
  double cpu0 = cpu_seconds();
  auto t0 = Clock::now();
  auto receiver = std::async(std::launch::async, [&]() -> std::string {
    for (size_t i = 0; i < kFrames; ++i) {
      auto f = s->recv(10s);
      if (!f) return "frame " + std::to_string(i) + ": " + f.status().to_string();
      uint64_t idx = 0;
      if (f->payload.size() != base.size()) return "frame " + std::to_string(i) + ": bad size";
      std::memcpy(&idx, f->payload.data(), 8);
      if (idx != i) return "frame " + std::to_string(i) + ": out of order";
      if (std::memcmp(f->payload.data() + 8, base.data() + 8, base.size() - 8) != 0)
        return "frame " + std::to_string(i) + ": content differs";
    }
    Status ack = s->send(FrameType::kAck, Bytes(8, 0));
    return ack.is_ok() ? "" : ack.to_string();
  });
  Bytes frame = base;
  for (uint64_t i = 0; i < kFrames; ++i) {
    std::memcpy(frame.data(), &i, 8);
    Status st = c->send(FrameType::kDelta, frame);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  auto ack = c->recv(10s);
  std::string err = receiver.get();
  EXPECT_EQ(err, "");
  ASSERT_TRUE(ack.is_ok()) << ack.status().to_string();
  EXPECT_EQ(ack->type, FrameType::kAck);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double mb = static_cast<double>(kFrames * kMaxFramePayload) / 1e6;
  // CPU time too: on a busy machine MB per CPU-second says more than MB/s.
  double cpu = cpu_seconds() - cpu0;
  std::printf(
      "[ throughput ] %zu x 1 MiB frames in %.3f s: %.0f MB/s; %.3f CPU-s (both ends) = %.0f MB "
      "per CPU-s; wire %.1f MB out\n",
      kFrames, secs, mb / secs, cpu, mb / cpu, static_cast<double>(c->wire_bytes_out()) / 1e6);
  EXPECT_GE(c->wire_bytes_out(), kFrames * kMaxFramePayload);
}

}  // namespace
}  // namespace recsync::peer
