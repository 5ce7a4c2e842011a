#include "peer/connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "recsync/log.h"

namespace recsync::peer {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Socket reads: large enough that one read + one BIO write carries many TLS
// records at link speed.
constexpr size_t kReadChunk = 256 * 1024;
// Plaintext handed to TLS per call: one full record. TlsSession erases what
// SSL_write consumed from the front of its queue, so a 1 MiB write would cost
// a memmove per record; record-sized writes make that free.
constexpr size_t kRecordPlain = 16384;

std::string errno_text(int e) { return std::strerror(e); }

Status errno_io(int e, const std::string& what) {
  return Status::io(what + ": " + errno_text(e), e);
}

// Milliseconds until `deadline` for poll(2), rounded up, clamped.
int poll_ms(Clock::time_point deadline) {
  auto now = Clock::now();
  if (deadline <= now) return 0;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(deadline - now).count();
  long long ms = (us + 999) / 1000;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

Clock::time_point deadline_after(milliseconds t) {
  if (t.count() < 0) t = milliseconds(0);
  return Clock::now() + t;
}

uint16_t port_of(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

void set_socket_options(int fd, const std::string& who) {
  auto set = [&](int level, int opt, int v, const char* name) {
    if (::setsockopt(fd, level, opt, &v, sizeof v) != 0)
      log::get("peer")->debug("{}: setsockopt {}: {}", who, name, errno_text(errno));
  };
  set(IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
  set(SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
  set(IPPROTO_TCP, TCP_KEEPIDLE, 10, "TCP_KEEPIDLE");
  set(IPPROTO_TCP, TCP_KEEPINTVL, 5, "TCP_KEEPINTVL");
  set(IPPROTO_TCP, TCP_KEEPCNT, 3, "TCP_KEEPCNT");
  set(IPPROTO_TCP, TCP_USER_TIMEOUT, 30000, "TCP_USER_TIMEOUT");
}

// OpenSSL's texts for the alerts a peer sends when it does not accept our
// certificate (the pin check fails as X509_V_ERR_CERT_REJECTED -> "bad
// certificate"; other implementations may pick another).
constexpr const char* kRejectionAlerts[] = {
    "alert bad certificate",      "alert certificate unknown", "alert unsupported certificate",
    "alert certificate required", "alert access denied",       "alert unknown ca",
    "alert certificate revoked",  "alert certificate expired",
};

}  // namespace

Result<int> listen_tcp(const std::string& address, int backlog) {
  auto sa = parse_address(address);
  if (!sa) return sa.status();
  int fd = ::socket(sa->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_io(errno, "listen " + address + ": socket");
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&sa->ss), sa->len) != 0 ||
      ::listen(fd, backlog) != 0) {
    int e = errno;
    ::close(fd);
    return errno_io(e, "listen " + address);
  }
  return fd;
}

Result<uint16_t> bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return errno_io(errno, "getsockname");
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
    return Status::invalid("getsockname: not an IP socket");
  return port_of(ss);
}

// ---------------------------------------------------------------- Canceller

Canceller::Canceller() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Canceller::~Canceller() {
  if (fd_ >= 0) ::close(fd_);
}

void Canceller::cancel() {
  cancelled_.store(true, std::memory_order_release);
  if (fd_ >= 0) {
    uint64_t one = 1;
    // Never read: the eventfd stays readable, so every later poll wakes.
    [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof one);
  }
}

Result<int> accept_tcp(int listen_fd, milliseconds timeout, Canceller* cancel) {
  auto deadline = deadline_after(timeout);
  for (;;) {  // bounded by the deadline
    if (cancel && cancel->cancelled()) return Status::io("accept: cancelled");
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) return fd;
    int e = errno;
    if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR && e != ECONNABORTED && e != EPROTO)
      return errno_io(e, "accept");
    if (e == EAGAIN || e == EWOULDBLOCK) {
      pollfd p[2] = {{listen_fd, POLLIN, 0}, {cancel ? cancel->fd() : -1, POLLIN, 0}};
      int r = ::poll(p, 2, poll_ms(deadline));
      if (r < 0 && errno != EINTR) return errno_io(errno, "accept: poll");
      if (p[1].revents) return Status::io("accept: cancelled");
      if (r == 0 && Clock::now() >= deadline)
        return Status::busy("accept: no connection within " + std::to_string(timeout.count()) +
                            " ms");
    } else if (Clock::now() >= deadline) {
      return Status::busy("accept: no connection within " + std::to_string(timeout.count()) +
                          " ms");
    }
  }
}

// ---------------------------------------------------------------- Connection

Connection::Connection(int fd, std::string remote) : fd_(fd), remote_(std::move(remote)) {}

Result<std::unique_ptr<Connection>> Connection::adopt(int fd, std::string remote) {
  std::unique_ptr<Connection> c(new Connection(fd, std::move(remote)));
  c->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (c->wake_fd_ < 0) return errno_io(errno, c->remote_ + ": eventfd");
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
    return errno_io(errno, c->remote_ + ": set non-blocking");
  set_socket_options(fd, c->remote_);
  c->in_buf_.resize(kReadChunk);
  c->stage_.reserve(kRecordPlain);
  c->on_frame_ = [p = c.get()](Frame&& f) {
    p->ready_bytes_ += f.payload.size() + kFrameHeaderLen;
    p->ready_.push_back(std::move(f));
    return Status::ok();
  };
  return c;
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Result<std::unique_ptr<Connection>> Connection::connect(const std::string& address,
                                                        const TlsContext& ctx, milliseconds timeout,
                                                        Canceller* cancel) {
  auto deadline = deadline_after(timeout);
  auto sa = parse_address(address);
  if (!sa) return sa.status().with_context("connect");
  if (port_of(sa->ss) == 0) return Status::invalid("connect " + address + ": port 0");
  const std::string what = "connect " + address;
  int fd = ::socket(sa->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_io(errno, what + ": socket");
  auto made = adopt(fd, address);  // owns (and on failure closed) fd
  if (!made) return made.status().with_context(what);
  std::unique_ptr<Connection> c = std::move(made).value();

  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa->ss), sa->len) != 0) {
    if (errno != EINPROGRESS && errno != EINTR) return errno_io(errno, what);
    switch (c->wait(POLLOUT, deadline, cancel)) {
      case Wait::kReady:
        break;
      case Wait::kTimeout:
        return Status::io(
            what + ": timed out after " + std::to_string(timeout.count()) + " ms connecting",
            ETIMEDOUT);
      case Wait::kCancelled:
        return Status::io(what + ": cancelled", ECANCELED);
      case Wait::kShutdown:
      case Wait::kError:
        return errno_io(errno, what + ": poll");
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return errno_io(err, what);
  }
  auto tls = TlsSession::create(ctx, TlsSession::Role::kClient);
  if (!tls) return tls.status().with_context(what);
  c->tls_ = std::move(tls).value();
  Status s = c->handshake(TlsSession::Role::kClient, deadline, timeout, cancel);
  if (!s.is_ok()) return s;
  return c;
}

Result<std::unique_ptr<Connection>> Connection::accept(int fd, const TlsContext& ctx,
                                                       milliseconds timeout, Canceller* cancel) {
  auto deadline = deadline_after(timeout);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  std::string remote = ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0
                           ? format_sockaddr(ss)
                           : "(unknown peer)";
  auto made = adopt(fd, remote);
  if (!made) return made.status().with_context("accept");
  std::unique_ptr<Connection> c = std::move(made).value();
  auto tls = TlsSession::create(ctx, TlsSession::Role::kServer);
  if (!tls) return tls.status().with_context("accept " + remote);
  c->tls_ = std::move(tls).value();
  Status s = c->handshake(TlsSession::Role::kServer, deadline, timeout, cancel);
  if (!s.is_ok()) return s;
  return c;
}

Status Connection::handshake(TlsSession::Role role, Clock::time_point deadline,
                             milliseconds timeout, Canceller* cancel) {
  const bool client = role == TlsSession::Role::kClient;
  const std::string what = (client ? "connect " : "accept ") + remote_;
  auto timed_out = [&] {
    return Status::io(
        what + ": timed out after " + std::to_string(timeout.count()) + " ms during TLS handshake",
        ETIMEDOUT);
  };
  if (!tls_) return Status::io(what + ": no TLS session");
  if (client) {
    Status s = tls_->start();
    if (!s.is_ok()) return tls_failure(s).with_context(what);
  }
  for (int round = 0; round < 1000; ++round) {  // a handshake takes a handful
    tls_->take_ciphertext(out_);
    Status s = write_out(milliseconds(0), deadline, cancel, "TLS handshake", false);
    if (!s.is_ok()) {
      if (s.err() == ETIMEDOUT) return timed_out();
      return s.with_context(what);
    }
    if (tls_->established()) {
      peer_fp_ = tls_->peer_fingerprint();
      if (client) {
        // A server that rejects our certificate answers our Finished with an
        // alert; if it is already here, report it now rather than at recv().
        ssize_t n = ::recv(fd_, in_buf_.data(), in_buf_.size(), MSG_DONTWAIT);
        if (n > 0) {
          Status st = ingest(static_cast<size_t>(n));
          if (!st.is_ok()) return st.with_context(what);
        }
      }
      log::get("peer")->debug("{}: TLS established, peer {}", what, peer_fp_);
      return Status::ok();
    }
    ssize_t n = ::recv(fd_, in_buf_.data(), in_buf_.size(), 0);
    if (n > 0) {
      // Through ingest(): the peer's first frames may arrive together with
      // the end of its handshake.
      Status st = ingest(static_cast<size_t>(n));
      if (!st.is_ok()) return st.with_context(what);
      continue;
    }
    if (n == 0)
      return Status::io(what + ": peer closed the connection during the TLS handshake", ECONNRESET);
    int e = errno;
    if (e == EINTR) continue;
    if (e != EAGAIN && e != EWOULDBLOCK) return errno_io(e, what + ": TLS handshake");
    switch (wait(POLLIN, deadline, cancel)) {
      case Wait::kReady:
        break;
      case Wait::kTimeout:
        return timed_out();
      case Wait::kCancelled:
        return Status::io(what + ": cancelled", ECANCELED);
      case Wait::kShutdown:
        return shut_status().with_context(what);
      case Wait::kError:
        return errno_io(errno, what + ": poll");
    }
  }
  return Status::io(what + ": TLS handshake did not finish");
}

Connection::Wait Connection::wait(short events, Clock::time_point deadline, Canceller* cancel,
                                  short* revents) {
  for (;;) {  // bounded by the deadline
    if (shut_.load(std::memory_order_acquire)) return Wait::kShutdown;
    if (cancel && cancel->cancelled()) return Wait::kCancelled;
    pollfd p[3] = {
        {fd_, events, 0}, {wake_fd_, POLLIN, 0}, {cancel ? cancel->fd() : -1, POLLIN, 0}};
    int r = ::poll(p, 3, poll_ms(deadline));
    if (r < 0) {
      if (errno == EINTR) continue;
      return Wait::kError;
    }
    if (p[1].revents) return Wait::kShutdown;
    if (p[2].revents) return Wait::kCancelled;
    // POLLERR/POLLHUP count as ready: the read or write that follows
    // reports what happened.
    if (p[0].revents) {
      if (revents) *revents = p[0].revents;
      return Wait::kReady;
    }
    if (Clock::now() >= deadline) return Wait::kTimeout;
  }
}

Status Connection::write_out(milliseconds per_wait, Clock::time_point deadline, Canceller* cancel,
                             const char* phase, bool read_too) {
  while (out_off_ < out_.size()) {
    ssize_t n =
        ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_off_ += static_cast<size_t>(n);
      bytes_out_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
      continue;
    }
    int e = n < 0 ? errno : EIO;
    if (e == EINTR) continue;
    if (shut_.load(std::memory_order_acquire)) return shut_status();
    if (e != EAGAIN && e != EWOULDBLOCK) return errno_io(e, remote_ + ": send");
    Clock::time_point d = deadline;
    if (per_wait.count() > 0) d = std::min(d, Clock::now() + per_wait);
    // Reading while waiting to write: if both ends send big streams at once
    // and neither reads, both socket buffers fill and both block forever.
    const bool reading = read_too && !eof_ && dead_.is_ok() && ready_bytes_ < kMaxBufferedIn;
    short revents = 0;
    switch (wait(reading ? POLLOUT | POLLIN : POLLOUT, d, cancel, &revents)) {
      case Wait::kReady:
        if (reading && (revents & (POLLIN | POLLHUP | POLLERR)) && !(revents & POLLOUT)) {
          ssize_t r = ::recv(fd_, in_buf_.data(), in_buf_.size(), MSG_DONTWAIT);
          if (r > 0) {
            Status st = ingest(static_cast<size_t>(r));
            if (!st.is_ok()) return st.with_context(remote_);
          } else if (r == 0) {
            eof_ = true;  // recv() reports it; the send fails on its own
          } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            eof_ = true;  // ditto (ECONNRESET etc.)
          }
        }
        break;
      case Wait::kTimeout:
        return Status::io(remote_ + ": timed out after " +
                              std::to_string(per_wait.count() > 0 ? per_wait.count() : 0) +
                              " ms waiting to send (" + phase + ")",
                          ETIMEDOUT);
      case Wait::kCancelled:
        return Status::io(remote_ + ": cancelled", ECANCELED);
      case Wait::kShutdown:
        return shut_status();
      case Wait::kError:
        return errno_io(errno, remote_ + ": poll");
    }
  }
  out_.clear();
  out_off_ = 0;
  return Status::ok();
}

void Connection::write_out_nonblocking() {
  while (out_off_ < out_.size()) {
    ssize_t n =
        ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    out_off_ += static_cast<size_t>(n);
    bytes_out_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  }
  out_.clear();
  out_off_ = 0;
}

Status Connection::tls_failure(const Status& s) {
  // Send the alert that tells the peer why, if the socket takes it now.
  tls_->take_ciphertext(out_);
  write_out_nonblocking();
  if (s.code() == Status::Code::kIo) {
    for (const char* alert : kRejectionAlerts) {
      if (s.message().find(alert) != std::string::npos)
        return Status::refused("peer rejected our certificate (" + s.message() + ")");
    }
  }
  return s;
}

Status Connection::shut_status() const { return Status::io(remote_ + ": connection shut down"); }

Status Connection::send_usable() const {
  if (!dead_.is_ok()) return dead_;
  if (shut_.load(std::memory_order_acquire)) return shut_status();
  if (closed_) return Status::io(remote_ + ": connection closed");
  return Status::ok();
}

Status Connection::queue_record(std::span<const uint8_t> plain) {
  Status s = tls_->write(plain);
  if (!s.is_ok()) return dead_ = tls_failure(s).with_context("send to " + remote_);
  tls_->take_ciphertext(out_);
  if (out_.size() - out_off_ >= kAutoFlushBytes) return flush();
  return Status::ok();
}

Status Connection::queue(FrameType type, std::span<const uint8_t> head,
                         std::span<const uint8_t> tail) {
  RECSYNC_RETURN_IF_ERROR(send_usable());
  auto t = static_cast<uint8_t>(type);
  if (!is_known_frame_type(t))
    return Status::invalid("send to " + remote_ + ": unknown frame type " + std::to_string(t));
  const size_t size = head.size() + tail.size();
  if (size > kMaxFramePayload)
    return Status::invalid("send to " + remote_ + ": payload of " + std::to_string(size) +
                           " bytes exceeds " + std::to_string(kMaxFramePayload));
  const auto len = static_cast<uint32_t>(size + 1);
  const uint8_t hdr[kFrameHeaderLen] = {
      static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
      static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len), t};
  // Records of kRecordPlain bytes: small parts (the frame header, a chunk's
  // head) share a record with what follows them; whole records of a large
  // part are encrypted from where they are, without a copy.
  stage_.clear();
  for (std::span<const uint8_t> part :
       {std::span<const uint8_t>(hdr, kFrameHeaderLen), head, tail}) {
    while (!part.empty()) {
      if (stage_.empty() && part.size() >= kRecordPlain) {
        RECSYNC_RETURN_IF_ERROR(queue_record(part.first(kRecordPlain)));
        part = part.subspan(kRecordPlain);
        continue;
      }
      size_t take = std::min(part.size(), kRecordPlain - stage_.size());
      stage_.insert(stage_.end(), part.begin(), part.begin() + static_cast<ptrdiff_t>(take));
      part = part.subspan(take);
      if (stage_.size() == kRecordPlain) {
        RECSYNC_RETURN_IF_ERROR(queue_record(stage_));
        stage_.clear();
      }
    }
  }
  if (!stage_.empty()) RECSYNC_RETURN_IF_ERROR(queue_record(stage_));
  return Status::ok();
}

Status Connection::flush() {
  if (!dead_.is_ok()) return dead_;
  if (out_off_ >= out_.size()) return Status::ok();
  Status s = write_out(io_timeout_, Clock::time_point::max(), nullptr, "frame", true);
  if (!s.is_ok()) dead_ = s;
  return s;
}

Status Connection::send(FrameType type, std::span<const uint8_t> body) {
  return send(type, body, {});
}

Status Connection::send(FrameType type, std::span<const uint8_t> head,
                        std::span<const uint8_t> tail) {
  RECSYNC_RETURN_IF_ERROR(queue(type, head, tail));
  return flush();
}

Status Connection::ingest(size_t n) {
  bytes_in_.fetch_add(n, std::memory_order_relaxed);
  Status s = tls_->feed_ciphertext(std::span(in_buf_.data(), n), sink_);
  if (!s.is_ok()) {
    if (sink_.failed()) return dead_ = s;  // a broken frame, not a TLS failure
    return dead_ = tls_failure(s);
  }
  // TLS may have something to say back (a KeyUpdate answer); it goes out
  // now if the socket takes it, else ahead of the next frame.
  tls_->take_ciphertext(out_);
  if (out_off_ < out_.size()) write_out_nonblocking();
  if (tls_->peer_closed()) eof_ = true;
  return Status::ok();
}

Result<Frame> Connection::recv(milliseconds timeout) {
  auto deadline = deadline_after(timeout);
  for (;;) {  // bounded by the deadline and by frame size
    if (!ready_.empty()) {
      Frame f = std::move(ready_.front());
      ready_.pop_front();
      ready_bytes_ -= f.payload.size() + kFrameHeaderLen;
      return f;
    }
    if (!dead_.is_ok()) return dead_;
    if (shut_.load(std::memory_order_acquire)) return dead_ = shut_status();
    if (eof_) {
      if (!parser_.idle())
        return dead_ = Status::io(remote_ + ": peer closed the connection in the middle of a frame",
                                  ECONNRESET);
      return Status::not_found(remote_ + ": peer closed the connection");
    }
    ssize_t n = ::recv(fd_, in_buf_.data(), in_buf_.size(), MSG_DONTWAIT);
    if (n > 0) {
      Status s = ingest(static_cast<size_t>(n));
      if (!s.is_ok()) return dead_ = s.with_context(remote_);
      continue;
    }
    if (n == 0) {
      eof_ = true;
      continue;
    }
    int e = errno;
    if (e == EINTR) continue;
    if (shut_.load(std::memory_order_acquire)) return dead_ = shut_status();
    if (e != EAGAIN && e != EWOULDBLOCK) return dead_ = errno_io(e, remote_ + ": recv");
    switch (wait(POLLIN, deadline, nullptr)) {
      case Wait::kReady:
        break;
      case Wait::kTimeout:
        return Status::busy(remote_ + ": timed out after " + std::to_string(timeout.count()) +
                            " ms waiting for a frame");
      case Wait::kShutdown:
        return dead_ = shut_status();
      case Wait::kCancelled:  // no canceller here
      case Wait::kError:
        return dead_ = errno_io(errno, remote_ + ": poll");
    }
  }
}

bool Connection::readable_now() {
  if (!ready_.empty() || !dead_.is_ok() || eof_ || shut_.load(std::memory_order_acquire))
    return true;
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && p.revents != 0;
}

void Connection::shutdown() {
  if (shut_.exchange(true, std::memory_order_acq_rel)) return;
  ::shutdown(fd_, SHUT_RDWR);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  if (!dead_.is_ok() || shut_.load(std::memory_order_acquire) || !tls_) return;
  Status s = tls_->close();
  if (s.is_ok()) {
    tls_->take_ciphertext(out_);
    s = write_out(io_timeout_, deadline_after(io_timeout_), nullptr, "close_notify", true);
  }
  if (!s.is_ok()) {
    log::get("peer")->debug("{}: close: {}", remote_, s.to_string());
    dead_ = s;
  }
  ::shutdown(fd_, SHUT_WR);
}

}  // namespace recsync::peer
