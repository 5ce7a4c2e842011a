#include "peer/tls.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>

namespace recsync::peer {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// One end of a socketpair carrying a TlsSession's ciphertext, non-blocking.
struct End {
  int fd = -1;
  std::unique_ptr<TlsSession> tls;
  Bytes out;       // ciphertext not yet sent
  Bytes received;  // decrypted application data
  Status status;   // first error seen

  // Moves bytes both ways once; returns true if anything moved.
  bool pump() {
    bool moved = false;
    tls->take_ciphertext(out);  // also after an error: the alert
    while (!out.empty()) {
      ssize_t n = ::send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n <= 0) break;
      out.erase(out.begin(), out.begin() + n);
      moved = true;
    }
    uint8_t buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      moved = true;
      if (status.is_ok()) status = tls->feed_ciphertext(std::span(buf, size_t(n)), received);
    }
    return moved;
  }
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    auto a = load_or_create_identity(Env::posix(), root_ + "/a", "fs1");
    auto b = load_or_create_identity(Env::posix(), root_ + "/b", "fs2");
    ASSERT_TRUE(a && b);
    a_ = std::move(a).value();
    b_ = std::move(b).value();
  }
  void TearDown() override {
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
    fs::remove_all(root_);
  }

  // Client = node a (pins `client_pin`), server = node b (pins `server_pin`).
  void connect(const std::string& client_pin, const std::string& server_pin) {
    auto cctx = TlsContext::create(a_, {client_pin});
    auto sctx = TlsContext::create(b_, {server_pin});
    ASSERT_TRUE(cctx.is_ok()) << cctx.status().to_string();
    ASSERT_TRUE(sctx.is_ok()) << sctx.status().to_string();
    cctx_ = std::move(cctx).value();
    sctx_ = std::move(sctx).value();
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0);
    auto c = TlsSession::create(*cctx_, TlsSession::Role::kClient);
    auto s = TlsSession::create(*sctx_, TlsSession::Role::kServer);
    ASSERT_TRUE(c && s);
    client_.fd = fds_[0];
    client_.tls = std::move(c).value();
    server_.fd = fds_[1];
    server_.tls = std::move(s).value();
    ASSERT_TRUE(client_.tls->start().is_ok());
    ASSERT_TRUE(server_.tls->start().is_ok());
  }

  // Pumps until `done` or nothing moves for a while; bounded in rounds/time.
  template <typename Pred>
  void run_until(Pred done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int idle = 0;
    for (int round = 0; round < 100000 && !done() && idle < 50; ++round) {
      bool moved = client_.pump();
      moved = server_.pump() || moved;
      idle = moved ? 0 : idle + 1;
      if (std::chrono::steady_clock::now() > deadline) break;
    }
  }

  std::string root_;
  Identity a_, b_;
  std::unique_ptr<TlsContext> cctx_, sctx_;
  int fds_[2] = {-1, -1};
  End client_, server_;
};

Bytes pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 13 + 5);
  return b;
}

TEST_F(TlsTest, PinnedHandshakeAndDataBothWays) {
  connect(b_.fingerprint, a_.fingerprint);
  // Written before the handshake completes: must be queued, not lost.
  Bytes c2s = pattern(300'000);
  Bytes s2c = pattern(70'000);
  ASSERT_TRUE(client_.tls->write(c2s).is_ok());
  run_until([&] { return client_.tls->established() && server_.tls->established(); });
  ASSERT_TRUE(client_.status.is_ok()) << client_.status.to_string();
  ASSERT_TRUE(server_.status.is_ok()) << server_.status.to_string();
  ASSERT_TRUE(client_.tls->established());
  ASSERT_TRUE(server_.tls->established());
  EXPECT_EQ(client_.tls->peer_fingerprint(), b_.fingerprint);
  EXPECT_EQ(server_.tls->peer_fingerprint(), a_.fingerprint);
  EXPECT_STREQ(client_.tls->protocol(), "TLSv1.3");
  EXPECT_STREQ(server_.tls->protocol(), "TLSv1.3");
  // Both ends prefer AES-128-GCM (tls.h says why).
  EXPECT_STREQ(client_.tls->cipher(), "TLS_AES_128_GCM_SHA256");
  EXPECT_STREQ(server_.tls->cipher(), "TLS_AES_128_GCM_SHA256");

  ASSERT_TRUE(server_.tls->write(s2c).is_ok());
  run_until([&] {
    return server_.received.size() == c2s.size() && client_.received.size() == s2c.size();
  });
  EXPECT_TRUE(server_.received == c2s);
  EXPECT_TRUE(client_.received == s2c);

  ASSERT_TRUE(client_.tls->close().is_ok());
  run_until([&] { return server_.tls->peer_closed(); });
  EXPECT_TRUE(server_.tls->peer_closed());
  EXPECT_TRUE(server_.status.is_ok()) << server_.status.to_string();
}

TEST_F(TlsTest, PinsAreCaseInsensitive) {
  std::string upper = b_.fingerprint;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  upper.replace(0, 7, "sha256:");
  connect(upper, a_.fingerprint);
  run_until([&] { return client_.tls->established() && server_.tls->established(); });
  EXPECT_TRUE(client_.tls->established());
  EXPECT_TRUE(server_.tls->established());
}

TEST_F(TlsTest, ClientWithWrongPinRefusesServer) {
  connect(a_.fingerprint /* not the server's */, a_.fingerprint);
  run_until([&] { return !client_.status.is_ok() && !server_.status.is_ok(); });
  EXPECT_FALSE(client_.tls->established());
  ASSERT_FALSE(client_.status.is_ok());
  EXPECT_EQ(client_.status.code(), Status::Code::kRefused) << client_.status.to_string();
  EXPECT_NE(client_.status.message().find(b_.fingerprint), std::string::npos)
      << client_.status.message();
  EXPECT_FALSE(server_.tls->established());
  EXPECT_FALSE(server_.status.is_ok());  // got the alert
}

TEST_F(TlsTest, ServerWithWrongPinRefusesClient) {
  connect(b_.fingerprint, "sha256:" + std::string(64, '0'));
  Bytes data = pattern(1000);
  ASSERT_TRUE(client_.tls->write(data).is_ok());
  run_until([&] { return !server_.status.is_ok() && !client_.status.is_ok(); });
  ASSERT_FALSE(server_.status.is_ok());
  EXPECT_EQ(server_.status.code(), Status::Code::kRefused) << server_.status.to_string();
  EXPECT_NE(server_.status.message().find(a_.fingerprint), std::string::npos);
  EXPECT_FALSE(server_.tls->established());
  EXPECT_TRUE(server_.received.empty());  // not one byte of application data
  // In TLS 1.3 the client finishes first, then learns of the rejection.
  EXPECT_FALSE(client_.status.is_ok());
}

// Hands out buffers of `room` bytes at a time and records every commit.
struct RecordingSink : PlaintextSink {
  explicit RecordingSink(size_t room) : buf(room) {}
  std::span<uint8_t> buffer() override { return buf; }
  Status commit(size_t n) override {
    EXPECT_LE(n, buf.size());
    got.insert(got.end(), buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n));
    ++commits;
    return stop_after > 0 && commits >= stop_after ? Status::corrupt("sink says stop")
                                                   : Status::ok();
  }
  Bytes buf, got;
  int commits = 0, stop_after = 0;
};

TEST_F(TlsTest, PlaintextGoesToTheSinkInPiecesOfItsBufferAtEveryFeedSize) {
  const Bytes plain = pattern(100'000);
  const size_t feeds[] = {0, 1, 2, 3, 7, 15, 100, 10000, 200000};
  // Sinks that offer 1, 5 (a frame header), 7 and 16384 bytes at a time; the
  // ciphertext is fed in pieces cycling through the librsync buffer sizes.
  for (size_t room : {size_t{1}, size_t{5}, size_t{7}, size_t{16384}}) {
    SCOPED_TRACE("room=" + std::to_string(room));
    connect(b_.fingerprint, a_.fingerprint);
    run_until([&] { return client_.tls->established() && server_.tls->established(); });
    ASSERT_TRUE(client_.tls->established() && server_.tls->established());
    ASSERT_TRUE(client_.tls->write(plain).is_ok());
    Bytes wire;
    client_.tls->take_ciphertext(wire);
    ASSERT_GT(wire.size(), plain.size());
    RecordingSink sink(room);
    for (size_t pos = 0, k = 0; pos < wire.size(); ++k) {
      size_t n = std::min(feeds[k % 9], wire.size() - pos);
      ASSERT_TRUE(server_.tls->feed_ciphertext(std::span(wire).subspan(pos, n), sink).is_ok());
      pos += n;
    }
    EXPECT_TRUE(sink.got == plain);
    EXPECT_GE(sink.commits, static_cast<int>(plain.size() / room));
  }
}

TEST_F(TlsTest, ASinkErrorStopsTheFeedAndIsReturned) {
  connect(b_.fingerprint, a_.fingerprint);
  run_until([&] { return client_.tls->established() && server_.tls->established(); });
  ASSERT_TRUE(client_.tls->write(pattern(50'000)).is_ok());
  Bytes w;
  client_.tls->take_ciphertext(w);
  RecordingSink sink(1000);
  sink.stop_after = 3;
  Status s = server_.tls->feed_ciphertext(w, sink);
  EXPECT_EQ(s.code(), Status::Code::kCorrupt) << s.to_string();
  EXPECT_EQ(sink.commits, 3);
  EXPECT_EQ(sink.got.size(), 3000u);
}

TEST_F(TlsTest, TakeCiphertextAppendsAfterWhatIsThere) {
  connect(b_.fingerprint, a_.fingerprint);
  run_until([&] { return client_.tls->established() && server_.tls->established(); });
  ASSERT_TRUE(client_.tls->write(pattern(1000)).is_ok());
  Bytes w = {1, 2, 3};
  client_.tls->take_ciphertext(w);
  ASSERT_GT(w.size(), 1003u);
  EXPECT_EQ(w[0], 1);
  EXPECT_EQ(w[2], 3);
  Bytes more;
  client_.tls->take_ciphertext(more);  // nothing left
  EXPECT_TRUE(more.empty());
  // What was appended is one whole record stream the server can read.
  Bytes got;
  ASSERT_TRUE(server_.tls->feed_ciphertext(std::span(w).subspan(3), got).is_ok());
  EXPECT_TRUE(got == pattern(1000));
}

TEST_F(TlsTest, GarbageCiphertextIsAnError) {
  connect(b_.fingerprint, a_.fingerprint);
  Bytes junk(500, 0x42);
  Bytes plain;
  Status s = server_.tls->feed_ciphertext(junk, plain);
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), Status::Code::kIo);
  EXPECT_FALSE(s.message().empty());
  EXPECT_FALSE(server_.tls->feed_ciphertext({}, plain).is_ok());  // sticky
}

}  // namespace
}  // namespace recsync::peer
