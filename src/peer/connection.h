#pragma once
// Blocking-with-timeouts TLS connection for the peer link.
//
// Each peer session runs on its own thread doing straight-line code
// (connect, HELLO, OFFER, ...). Connection gives that thread blocking calls
// with timeouts over a non-blocking TCP socket, using poll(2): the TLS work
// is done by TlsSession (tls.h) on memory buffers, framing by FrameParser
// (frame.h). Nothing here touches libuv.
//
// Addresses are numeric only, as the config writes them: "a.b.c.d:port" or
// "[v6]:port" (an optional "%scope" inside the brackets). No name lookups:
// getaddrinfo may block for seconds.
//
// Socket options on every connection: TCP_NODELAY, SO_KEEPALIVE with
// TCP_KEEPIDLE 10 s / TCP_KEEPINTVL 5 s / TCP_KEEPCNT 3, TCP_USER_TIMEOUT 30 s
// (a dead peer is noticed within about 30 s even while we have unacknowledged
// data in flight). Best effort: a failure to set one is logged, not fatal.
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "peer/frame.h"
#include "peer/tls.h"
#include "recsync/sockaddr.h"
#include "recsync/status.h"

namespace recsync::peer {

// The address helpers live in recsync/sockaddr.h; peer:: names kept.
using ::recsync::format_sockaddr;
using ::recsync::parse_address;
using ::recsync::SockAddr;

// Listening TCP socket on `address`: SO_REUSEADDR, non-blocking, CLOEXEC,
// bound, listen(backlog). Returns the fd; the caller owns (closes) it.
Result<int> listen_tcp(const std::string& address, int backlog = 16);

// The local port a bound socket got (useful after binding port 0).
Result<uint16_t> bound_port(int fd);

// Lets another thread abort a connect()/accept() handshake or accept_tcp()
// in progress (e.g. the daemon stopping). Owns an eventfd that is part of
// every poll set of the calls it is passed to. cancel() is thread-safe,
// idempotent and sticky: every later call given this Canceller fails at
// once with kIo "... cancelled". Must outlive the calls it is passed to.
// Not copyable or movable.
class Canceller {
 public:
  Canceller();
  ~Canceller();
  Canceller(const Canceller&) = delete;
  Canceller& operator=(const Canceller&) = delete;

  void cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }
  // The eventfd, readable once cancelled; -1 if eventfd() failed, in which
  // case cancellation is only noticed at the start of each wait.
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::atomic<bool> cancelled_{false};
};

// Waits up to `timeout` for a connection on the non-blocking listening
// socket `listen_fd` and accepts it (CLOEXEC, non-blocking). Returns the new
// fd (caller owns; hand it to Connection::accept). kBusy "no connection
// within N ms" on timeout; kIo when cancelled or on a listen socket error.
// Transient accept errors (ECONNABORTED, EINTR, a connection taken by
// another thread) are retried within the timeout.
Result<int> accept_tcp(int listen_fd, std::chrono::milliseconds timeout,
                       Canceller* cancel = nullptr);

// One authenticated TLS 1.3 connection to a peer, carrying frames.
//
// Threads: one owner thread calls everything except shutdown(),
// wire_bytes_out()/wire_bytes_in(), peer_fingerprint() and remote(), which
// any thread may call while the owner is blocked (shutdown() must not race
// the destructor). Not copyable or movable: held by unique_ptr.
//
// Errors: after a send/receive error (other than a recv() timeout) the
// connection is dead and every later call returns that error again.
class Connection {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kDefaultIoTimeout{30000};

  // Non-blocking connect, socket options (see top of file), then the TLS
  // handshake as client, all within `timeout`. Errors:
  //  kRefused: the peer's certificate is not pinned (message names the
  //            fingerprint seen), or the peer rejected our certificate with
  //            a TLS alert (message says so). Note: in TLS 1.3 the client
  //            finishes its handshake before the server has checked the
  //            client certificate, so the server's rejection usually shows
  //            up as kRefused from the first recv() instead.
  //  kInvalid: bad address (or port 0).
  //  kIo:      everything else, e.g. "connect 127.0.0.1:7: Connection
  //            refused", "connect 127.0.0.1:7373: timed out after 5000 ms
  //            during TLS handshake", "... cancelled".
  static Result<std::unique_ptr<Connection>> connect(const std::string& address,
                                                     const TlsContext& ctx,
                                                     std::chrono::milliseconds timeout,
                                                     Canceller* cancel = nullptr);

  // Server side: takes ownership of an accepted fd (always: it is closed on
  // failure), makes it non-blocking and runs the TLS handshake as server
  // within `timeout`. Plain-TCP garbage, an unpinned certificate (kRefused),
  // a peer that goes silent (kIo "timed out ...") or disconnects all fail
  // within `timeout`, with the peer's address in the message.
  static Result<std::unique_ptr<Connection>> accept(int fd, const TlsContext& ctx,
                                                    std::chrono::milliseconds timeout,
                                                    Canceller* cancel = nullptr);

  // Closes the fd without close_notify (call close() first to end
  // gracefully).
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // ---- sending. A frame is queued (encrypted into an internal buffer) and
  // flushed (written to the socket). Each wait for the socket to accept more
  // bytes is bounded by io_timeout(); a timeout kills the connection (a
  // frame may be half-sent).

  // One frame, written completely before returning: queue() + flush().
  Status send(FrameType type, std::span<const uint8_t> body);
  // encode(m) then send().
  template <typename Msg>
  Status send_msg(FrameType type, const Msg& m);

  // Batching (e.g. streaming DELTA chunks): queue() encrypts a frame into
  // the send buffer; it writes to the socket only when more than
  // kAutoFlushBytes of ciphertext are waiting (then blocking like flush()).
  // flush() writes everything queued. Frames are never reordered.
  // kInvalid (connection still fine) for an unknown type or a body above
  // kMaxFramePayload.
  static constexpr size_t kAutoFlushBytes = 1 << 20;
  // While a send waits for the socket, incoming frames are read and
  // buffered for recv() (so two peers streaming at each other cannot
  // deadlock), up to this many bytes; beyond it the send just waits.
  static constexpr size_t kMaxBufferedIn = 64 << 20;
  Status queue(FrameType type, std::span<const uint8_t> body) { return queue(type, body, {}); }
  // A frame whose body is `head` followed by `tail`, each written from where
  // it is (a DELTA chunk: its id and length, then the file's bytes).
  Status queue(FrameType type, std::span<const uint8_t> head, std::span<const uint8_t> tail);
  template <typename Msg>
  Status queue_msg(FrameType type, const Msg& m);
  Status flush();
  // send() of a head + tail frame.
  Status send(FrameType type, std::span<const uint8_t> head, std::span<const uint8_t> tail);

  // ---- receiving

  // The next complete frame, waiting up to `timeout` (0: only what is
  // already there). Frames already decrypted are returned without touching
  // the socket. Errors:
  //  kBusy "timed out ...": nothing complete yet; the connection stays usable.
  //  kNotFound "peer closed the connection": close_notify or TCP EOF between
  //            frames.
  //  kCorrupt: a broken frame (bad length/type); kIo: EOF inside a frame, a
  //            TLS or socket error; kRefused: the peer rejected our
  //            certificate (TLS alert). All of these leave the connection dead.
  Result<Frame> recv(std::chrono::milliseconds timeout);
  // True when recv(0) would return without waiting for the socket: a frame
  // is buffered, the connection is dead/closed, or the socket has bytes to
  // read right now (which may still be only part of a frame, in which case
  // recv(0) returns kBusy). Non-blocking.
  bool readable_now();

  // ---- ending

  // Thread-safe, idempotent, any thread: makes a blocked or later send /
  // flush / recv / close return promptly with kIo "connection shut down"
  // (::shutdown(SHUT_RDWR) plus an eventfd in every poll set). No
  // close_notify. Frames already buffered can still be recv()'d.
  void shutdown();
  // Graceful end: sends TLS close_notify after anything queued, best effort,
  // bounded by io_timeout(), then shuts down the write side. Later sends
  // fail; recv() still returns what the peer sends until it closes.
  void close();

  // Per-wait bound for sending (and for close()). Default kDefaultIoTimeout.
  void set_io_timeout(std::chrono::milliseconds t) { io_timeout_ = t; }
  std::chrono::milliseconds io_timeout() const { return io_timeout_; }

  // The verified peer's certificate fingerprint ("sha256:<hex>").
  const std::string& peer_fingerprint() const { return peer_fp_; }
  // The peer's address, "127.0.0.1:54321" or "[::1]:54321".
  const std::string& remote() const { return remote_; }
  // Ciphertext bytes written to / read from the socket, handshake included.
  uint64_t wire_bytes_out() const { return bytes_out_.load(std::memory_order_relaxed); }
  uint64_t wire_bytes_in() const { return bytes_in_.load(std::memory_order_relaxed); }

 private:
  enum class Wait { kReady, kTimeout, kShutdown, kCancelled, kError };

  Connection(int fd, std::string remote);
  static Result<std::unique_ptr<Connection>> adopt(int fd, std::string remote);
  Status handshake(TlsSession::Role role, Clock::time_point deadline,
                   std::chrono::milliseconds timeout, Canceller* cancel);
  // Polls fd_ for `events` plus the shutdown/cancel eventfds; the fd's
  // revents go to *revents on kReady.
  Wait wait(short events, Clock::time_point deadline, Canceller* cancel, short* revents = nullptr);
  // Writes out_ completely. Each wait ends at the earlier of now + per_wait
  // (when per_wait > 0) and `deadline`. With read_too, incoming frames are
  // read and buffered meanwhile (up to kMaxBufferedIn).
  Status write_out(std::chrono::milliseconds per_wait, Clock::time_point deadline,
                   Canceller* cancel, const char* phase, bool read_too);
  // Writes what the socket takes now, ignoring errors (alerts).
  void write_out_nonblocking();
  // Feeds n bytes of in_buf_ to TLS and the frame parser; on error sets
  // dead_ and returns it (callers add context).
  Status ingest(size_t n);
  Status tls_failure(const Status& s);
  Status send_usable() const;
  Status shut_status() const;
  // Encrypts one record's worth of plaintext into out_, flushing when
  // kAutoFlushBytes are waiting.
  Status queue_record(std::span<const uint8_t> plain);

  // Decrypted plaintext goes straight into the frame being parsed.
  class ParserSink : public PlaintextSink {
   public:
    explicit ParserSink(Connection& c) : c_(c) {}
    std::span<uint8_t> buffer() override { return c_.parser_.buffer(); }
    Status commit(size_t n) override {
      Status s = c_.parser_.commit(n, c_.on_frame_);
      failed_ = !s.is_ok();
      return s;
    }
    // The last feed stopped because the parser refused a frame.
    bool failed() const { return failed_; }

   private:
    Connection& c_;
    bool failed_ = false;
  };

  int fd_ = -1;
  int wake_fd_ = -1;  // eventfd, readable after shutdown()
  std::string remote_;
  std::string peer_fp_;
  std::unique_ptr<TlsSession> tls_;
  std::chrono::milliseconds io_timeout_ = kDefaultIoTimeout;

  std::vector<uint8_t> out_;  // ciphertext not yet written, from out_off_
  size_t out_off_ = 0;
  std::vector<uint8_t> stage_;    // frame header + first record of body
  std::vector<uint8_t> msg_buf_;  // send_msg/queue_msg body
  std::vector<uint8_t> in_buf_;   // socket reads
  FrameParser parser_;
  FrameParser::OnFrame on_frame_;  // appends to ready_
  ParserSink sink_{*this};
  std::deque<Frame> ready_;
  size_t ready_bytes_ = 0;  // frames (with headers) in ready_

  Status dead_;          // sticky error
  bool eof_ = false;     // peer closed (close_notify or TCP EOF)
  bool closed_ = false;  // close() called
  std::atomic<bool> shut_{false};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<uint64_t> bytes_in_{0};
};

template <typename Msg>
Status Connection::send_msg(FrameType type, const Msg& m) {
  RECSYNC_RETURN_IF_ERROR(queue_msg(type, m));
  return flush();
}

template <typename Msg>
Status Connection::queue_msg(FrameType type, const Msg& m) {
  msg_buf_.clear();
  RECSYNC_RETURN_IF_ERROR(encode(m, msg_buf_));
  return queue(type, msg_buf_);
}

}  // namespace recsync::peer
