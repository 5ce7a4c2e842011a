#include "replication/service.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <random>
#include <set>

#include "delta/delta.h"
#include "peer/connection.h"
#include "peer/frame.h"
#include "peer/path_policy.h"
#include "peer/tls.h"
#include "recsync/hash.h"
#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/thread_name.h"
#include "recsync/units.h"
#include "replication/finisher.h"

namespace recsync::replication {

using namespace std::chrono_literals;
using peer::Connection;
using peer::Frame;
using peer::FrameType;

namespace {

constexpr auto kConnectTimeout = 10s;
constexpr auto kHelloTimeout = 10s;
constexpr auto kReplyTimeout = 120s;  // OFFER/END -> reply: covers the peer's fsyncs
constexpr auto kIdlePing = 10s;       // sender pings an idle link this often
constexpr auto kReceiverIdle = 45s;   // receiver drops a link silent this long
constexpr size_t kReadChunk = 256 * 1024;
// The most one DELTA frame carries (less at low caps: send_governed). 256 KiB:
// ~5 ms at 50 MB/s, small against the governor's windows, and few enough
// frames that per-frame costs (a syscall, a record flush) stay small.
constexpr size_t kSendChunk = 256 * 1024;
constexpr size_t kWindow = 4;  // transfers awaiting their ACK at once, per link
constexpr int64_t kBackoffMinMs = 500, kBackoffMaxMs = 30'000;
// A librsync signature with no blocks (empty basis) is its 12-byte header.
constexpr uint64_t kEmptySignatureLen = 12;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "xxh128:<32 hex>" <-> 16 bytes.
bool hash_to_bytes(const std::string& h, uint8_t out[peer::kHashLen]) {
  constexpr std::string_view kPre = "xxh128:";
  if (h.size() != kPre.size() + 2 * peer::kHashLen || h.compare(0, kPre.size(), kPre) != 0)
    return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < peer::kHashLen; ++i) {
    int a = nib(h[kPre.size() + 2 * i]), b = nib(h[kPre.size() + 2 * i + 1]);
    if (a < 0 || b < 0) return false;
    out[i] = static_cast<uint8_t>(a << 4 | b);
  }
  return true;
}
std::string bytes_to_hash(const uint8_t in[peer::kHashLen]) {
  static const char* d = "0123456789abcdef";
  std::string s = "xxh128:";
  for (size_t i = 0; i < peer::kHashLen; ++i) {
    s += d[in[i] >> 4];
    s += d[in[i] & 15];
  }
  return s;
}

const char* nack_name(uint8_t c) {
  switch (c) {
    case peer::NackMsg::kRetry:
      return "retry";
    case peer::NackMsg::kRefused:
      return "refused";
    case peer::NackMsg::kHashMismatch:
      return "hash mismatch";
    case peer::NackMsg::kNoSpace:
      return "no space";
  }
  return "unknown";
}

uint8_t nack_code_for(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNoSpace:
      return peer::NackMsg::kNoSpace;
    case Status::Code::kRefused:
    case Status::Code::kInvalid:
      return peer::NackMsg::kRefused;
    case Status::Code::kCorrupt:
      return peer::NackMsg::kHashMismatch;
    default:
      return peer::NackMsg::kRetry;
  }
}

// A peer-supplied string made safe for one log line: control bytes as \xNN,
// at most 300 bytes.
std::string printable(std::string_view in) {
  std::string o;
  for (unsigned char ch : in.substr(0, 300)) {
    if (ch < 0x20 || ch == 0x7f)
      o += fmt::format("\\x{:02x}", ch);
    else
      o += static_cast<char>(ch);
  }
  if (in.size() > 300) o += "...";
  return o;
}

// Sleeps up to `d`, returning early (true) when stop is set.
bool sleep_or_stop(std::mutex& mu, std::condition_variable& cv, const bool& stop,
                   std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> l(mu);
  return cv.wait_for(l, d, [&] { return stop; });
}

}  // namespace

const char* peer_state_name(PeerState s) {
  switch (s) {
    case PeerState::kConnecting:
      return "connecting";
    case PeerState::kConnected:
      return "connected";
    case PeerState::kBackoff:
      return "backoff";
    case PeerState::kRefused:
      return "refused";
  }
  return "?";
}

// ------------------------------------------------------------------ state

struct Service::Impl {
  Env* env;
  StateStore* store;
  ServiceOptions opt;
  std::unique_ptr<peer::TlsContext> tls;
  std::shared_ptr<spdlog::logger> lg = log::get("peer");
  Governor gov;
  int listen_fd = -1;
  uint16_t listen_port = 0;
  peer::Canceller cancel;  // stop(): aborts handshakes, wakes the acceptor

  // Guards everything below and the per-peer status.
  std::mutex mu;
  std::condition_variable cv;  // queue notifications and stop
  bool stop = false;
  uint64_t queue_seq = 0;  // bumped by notify_queued

  struct PeerSlot {
    PeerConfig cfg;
    PeerStatus st;
    std::shared_ptr<Connection> out;  // the sender's connection, for stop()
    std::thread sender;
  };
  std::deque<PeerSlot> peers;  // deque: stable addresses
  std::thread acceptor;
  struct Inbound {
    std::thread t;
    std::shared_ptr<Connection> conn;
    std::string peer;
    bool done = false;
  };
  std::list<Inbound> inbound;
  std::string last_refused;
  int64_t last_refused_ms = 0;

  // Rate samples (steady ns, bytes granted) for rate_bps.
  std::deque<std::pair<int64_t, uint64_t>> samples;

  explicit Impl(uint64_t bps) : gov(bps, 0, steady_ns()) {}

  PeerSlot* slot_by_fingerprint(const std::string& fp) {
    for (auto& p : peers)
      if (p.cfg.fingerprint == fp) return &p;
    return nullptr;
  }
  void set_state(PeerSlot& p, PeerState s, const std::string& err = "") {
    std::lock_guard<std::mutex> l(mu);
    p.st.state = s;
    if (!err.empty()) p.st.last_error = err;
    p.st.connected_since_ms = s == PeerState::kConnected ? wall_ms() : 0;
  }

  // sender
  void sender_main(PeerSlot* p);
  // Sets `greeted` once HELLOs were exchanged (the link really works).
  Status sender_session(PeerSlot& p, Connection& c, bool& greeted);
  Status send_governed(PeerSlot& p, Connection& c, FrameType t, uint64_t id,
                       std::span<const uint8_t> data, Priority prio);
  // Up to kWindow offers wait for their verdicts at once, so the peer's
  // fsyncs overlap the next transfer.
  struct Awaiting;
  struct SenderLink {
    Connection& c;
    std::map<uint64_t, Awaiting> awaiting;
  };
  // Offers one entry and streams its data; its verdict is left to come
  // later (l.awaiting). A non-OK Status means the link is unusable.
  Status transfer(PeerSlot& p, SenderLink& l, const QueueItem& q, uint64_t id);
  // Handles an ACK/NACK of an awaiting transfer.
  Status on_verdict(PeerSlot& p, SenderLink& l, const Frame& f);
  // Blocks for the next verdict.
  Status wait_verdict(PeerSlot& p, SenderLink& l);
  // Copies one hold change to the peer; OK once acked (or refused: logged).
  Status send_hold(PeerSlot& p, Connection& c, const HoldOp& h, uint64_t id);
  Status receive_hold(Connection& c, PeerSlot& p, const peer::HoldMsg& h);
  void defer(PeerSlot& p, const QueueItem& q, const std::string& why);

  // receiver
  void acceptor_main();
  void receiver_main(Inbound* in, int fd, std::string remote);
  Status receiver_session(Connection& c, PeerSlot& p);
  Status receive_offer(Connection& c, PeerSlot& p, const peer::OfferMsg& o, Finisher& fin);
  // Sends the verdicts of finished transfers.
  Status send_verdicts(Connection& c, PeerSlot& p, Finisher& fin);
};

// ----------------------------------------------------------------- sender

Status Service::Impl::send_governed(PeerSlot& p, Connection& c, FrameType t, uint64_t id,
                                    std::span<const uint8_t> data, Priority prio) {
  // At low caps, smaller frames: none waits more than ~1/4 s for tokens.
  const uint64_t rate = gov.rate();
  const size_t unit = rate == 0 ? kSendChunk : std::clamp<size_t>(rate / 4, 1024, kSendChunk);
  while (true) {
    const size_t n = std::min(data.size(), unit);
    uint8_t head[peer::kChunkHeadLen];
    RECSYNC_RETURN_IF_ERROR(peer::encode_chunk_head(id, n, head));
    // Wait for tokens for the whole frame payload.
    const uint64_t need = sizeof head + n;
    uint64_t got = 0;
    std::optional<Governor::Waiter> waiting;
    while (got < need) {
      const int64_t now = steady_ns();
      got += gov.grant(prio, need - got, now);
      if (got >= need) break;
      if (!waiting) waiting.emplace(&gov, prio);
      int64_t at = gov.next_available(prio, need - got, now);
      auto d = std::chrono::nanoseconds(std::clamp<int64_t>(at - now, 100'000, 100'000'000));
      {
        std::unique_lock<std::mutex> l(mu);
        if (cv.wait_for(l, d, [&] { return stop; })) return Status::io("stopping");
      }
    }
    waiting.reset();
    RECSYNC_RETURN_IF_ERROR(c.send(t, head, data.first(n)));
    {
      std::lock_guard<std::mutex> l(mu);
      p.st.sent_bytes += need;
      if (p.st.in_flight) p.st.in_flight->sent_bytes += need;
    }
    data = data.subspan(n);
    if (data.empty()) return Status::ok();
  }
}

void Service::Impl::defer(PeerSlot& p, const QueueItem& q, const std::string& why) {
  // 5 s, doubling per attempt, capped at retry_max, plus up to 25 % jitter.
  int64_t d = 5000;
  for (int i = 0; i < q.attempts && d < opt.retry_max.count(); ++i) d *= 2;
  d = std::min<int64_t>(d, opt.retry_max.count());
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  d += std::uniform_int_distribution<int64_t>(0, d / 4)(rng);
  if (Status s = store->queue_defer(p.cfg.name, q.rel, wall_ms() + d, why); !s)
    lg->error("peer {}: could not record the failure of {}: {}", p.cfg.name, q.rel, s.message());
  std::lock_guard<std::mutex> l(mu);
  p.st.failed_transfers++;
  p.st.last_error = q.rel + ": " + why;
}

// An offer whose data went out and whose ACK/NACK has not come back yet.
struct Service::Impl::Awaiting {
  QueueItem q;
  int64_t t0_ns = 0;
  uint64_t sent = 0;       // payload bytes sent for it
  uint64_t sig_bytes = 0;  // signature bytes received for it
};

Status Service::Impl::on_verdict(PeerSlot& p, SenderLink& l, const Frame& fm) {
  uint64_t id = 0;
  peer::NackMsg nack;
  if (fm.type == FrameType::kNack) {
    RECSYNC_RETURN_IF_ERROR(peer::decode(fm.payload, &nack));
    id = nack.id;
  } else {
    peer::IdMsg m;
    RECSYNC_RETURN_IF_ERROR(peer::decode(fm.payload, &m));
    id = m.id;
  }
  auto it = l.awaiting.find(id);
  if (it == l.awaiting.end())
    return Status::corrupt(std::string(peer::frame_type_name(fm.type)) + " for unknown transfer " +
                           std::to_string(id));
  Awaiting a = std::move(it->second);
  l.awaiting.erase(it);
  if (fm.type == FrameType::kAck) {
    RECSYNC_RETURN_IF_ERROR(store->queue_done(p.cfg.name, a.q.rel, a.q.hash));
    {
      std::lock_guard<std::mutex> g(mu);
      p.st.acked_files++;
      p.st.last_ack_ms = wall_ms();
    }
    if (a.t0_ns == 0) {
      lg->info("replicated {} to {} (peer already had it)", a.q.rel, p.cfg.name);
    } else {
      lg->info("replicated {} to {} ({} bytes, {} sent, signature {} bytes, {:.0f} ms)", a.q.rel,
               p.cfg.name, a.q.size, a.sent, a.sig_bytes, (steady_ns() - a.t0_ns) / 1e6);
    }
    return Status::ok();
  }
  std::string why = std::string(nack_name(nack.code)) + ": " + printable(nack.reason);
  lg->warn("peer {} did not take {}: {}", p.cfg.name, a.q.rel, why);
  defer(p, a.q, why);
  return Status::ok();
}

Status Service::Impl::wait_verdict(PeerSlot& p, SenderLink& l) {
  while (true) {
    auto fr = l.c.recv(kReplyTimeout);
    if (!fr) return fr.status().with_context("waiting for an ACK");
    if (fr->type == FrameType::kPong) continue;
    if (fr->type == FrameType::kAck || fr->type == FrameType::kNack) return on_verdict(p, l, *fr);
    return Status::corrupt(std::string("unexpected ") + peer::frame_type_name(fr->type) +
                           " while waiting for an ACK");
  }
}

Status Service::Impl::transfer(PeerSlot& p, SenderLink& l, const QueueItem& q, uint64_t id) {
  Connection& c = l.c;
  // This peer's share of the pages the archiver may have left cached goes
  // back however the transfer ends (read through, dropped from the queue, or
  // failed: a retry reads the file again, from disk if need be).
  struct GiveBack {
    PageBudget* b;
    uint64_t n;
    ~GiveBack() {
      if (b) b->give_back(n);
    }
  } give_back{opt.page_budget, q.size};
  const std::string path = path_join(opt.archive_root, q.rel);
  auto f = env->open_read(path);
  if (!f) {
    if (f.status().code() == Status::Code::kNotFound) {
      // Pruned (or removed by the operator) before the peer got it.
      lg->warn("peer {}: {} is no longer in the archive; dropped from the queue", p.cfg.name,
               q.rel);
      return store->queue_done(p.cfg.name, q.rel, q.hash);
    }
    defer(p, q, f.status().message());
    return Status::ok();
  }
  // The archiver left the file's pages cached for us; should they be gone
  // (a backlog), the disk reads start now, while the peer answers the
  // offer, instead of one chunk at a time as the stream goes.
  (*f)->will_need();
  peer::OfferMsg offer;
  offer.id = id;
  offer.path = q.rel;
  offer.size = q.size;
  offer.mtime_ns = q.mtime_ns;
  if (!hash_to_bytes(q.hash, offer.hash)) {
    lg->error("peer {}: {} has no usable hash in the queue ('{}'); dropped", p.cfg.name, q.rel,
              q.hash);
    return store->queue_done(p.cfg.name, q.rel, q.hash);
  }
  const Priority prio = q.prio == 0 && wall_ms() - q.enqueued_ms < opt.live_window.count()
                            ? Priority::kLive
                            : Priority::kBulk;
  {
    std::lock_guard<std::mutex> g(mu);
    p.st.in_flight = InFlight{q.rel, q.size, 0, 0, wall_ms()};
  }
  struct ClearInFlight {
    Impl* i;
    PeerSlot& p;
    ~ClearInFlight() {
      std::lock_guard<std::mutex> g(i->mu);
      p.st.in_flight.reset();
    }
  } clear{this, p};
  Awaiting a;
  a.q = q;
  a.t0_ns = steady_ns();
  const uint64_t sent0 = [&] {
    std::lock_guard<std::mutex> g(mu);
    return p.st.sent_bytes;
  }();

  std::vector<uint8_t> body;
  RECSYNC_RETURN_IF_ERROR(peer::encode(offer, body));
  RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kOffer, body));

  // The receiver answers ACK (has it), NACK, or its basis signature. Verdicts
  // on earlier transfers may come first.
  delta::LoadedSignature sig;
  while (true) {
    auto fr = c.recv(kReplyTimeout);
    if (!fr) return fr.status().with_context("waiting for the answer to OFFER " + q.rel);
    Frame& fm = *fr;
    if (fm.type == FrameType::kPong) continue;
    if (fm.type == FrameType::kAck || fm.type == FrameType::kNack) {
      const bool mine = [&] {
        peer::IdMsg m;
        peer::NackMsg n;
        if (fm.type == FrameType::kAck) return peer::decode(fm.payload, &m).is_ok() && m.id == id;
        return peer::decode(fm.payload, &n).is_ok() && n.id == id;
      }();
      if (mine) {
        a.t0_ns = 0;  // nothing was transferred
        l.awaiting.emplace(id, std::move(a));
        return on_verdict(p, l, fm);
      }
      RECSYNC_RETURN_IF_ERROR(on_verdict(p, l, fm));
      continue;
    }
    if (fm.type == FrameType::kEnd) {
      peer::IdMsg m;
      RECSYNC_RETURN_IF_ERROR(peer::decode(fm.payload, &m));
      if (m.id != id) return Status::corrupt("END for transfer " + std::to_string(m.id));
      RECSYNC_RETURN_IF_ERROR(sig.feed({}, true));
      break;
    }
    if (fm.type != FrameType::kSignature)
      return Status::corrupt(std::string("unexpected ") + peer::frame_type_name(fm.type) +
                             " while waiting for a signature");
    peer::ChunkMsg m;
    RECSYNC_RETURN_IF_ERROR(peer::decode(fm.payload, &m));
    if (m.id != id) return Status::corrupt("signature for transfer " + std::to_string(m.id));
    a.sig_bytes += m.data.size();
    RECSYNC_RETURN_IF_ERROR(sig.feed(m.data, false));
  }
  if (!sig.ready()) return Status::corrupt("incomplete signature from the peer");

  // Stream the delta (librsync, this thread) under the governor. Against an
  // empty basis (a signature of the header alone) a delta is all literal:
  // the file's bytes are sent as they are, without librsync (frame.h).
  const bool literal = a.sig_bytes == kEmptySignatureLen;
  std::optional<delta::DeltaJob> job;
  if (!literal) {
    auto j = delta::DeltaJob::create(sig);
    if (!j) return j.status();
    job.emplace(std::move(j).value());
  }
  std::vector<uint8_t> in(kReadChunk), out;
  uint64_t read_total = 0;
  bool eof = false;
  while (!eof) {
    auto n = (*f)->read(in.data(), in.size());
    if (!n) {
      // A read error on our own archive: the stream to the peer is already
      // half sent, so end it here and let the link restart.
      defer(p, q, n.status().message());
      return n.status().with_context("read " + path);
    }
    eof = *n == 0;
    read_total += *n;
    {
      std::lock_guard<std::mutex> g(mu);
      if (p.st.in_flight) p.st.in_flight->read_bytes = read_total;
    }
    if (literal) {
      RECSYNC_RETURN_IF_ERROR(send_governed(p, c, FrameType::kDelta, id,
                                            std::span<const uint8_t>(in.data(), *n), prio));
      continue;
    }
    RECSYNC_RETURN_IF_ERROR(job->feed(std::span<const uint8_t>(in.data(), *n), eof, out));
    if (out.size() >= kSendChunk || (eof && !out.empty())) {
      RECSYNC_RETURN_IF_ERROR(send_governed(p, c, FrameType::kDelta, id, out, prio));
      out.clear();
    }
  }
  (*f)->drop_cache();  // read through: the archive's pages are not needed again
  {
    std::vector<uint8_t> end;
    RECSYNC_RETURN_IF_ERROR(peer::encode(peer::IdMsg{id}, end));
    RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kEnd, end));
  }
  {
    std::lock_guard<std::mutex> g(mu);
    a.sent = p.st.sent_bytes - sent0;
  }
  // The verdict (ACK after the peer's fsync + rename) comes later: the next
  // offer goes out meanwhile.
  l.awaiting.emplace(id, std::move(a));
  return Status::ok();
}

Status Service::Impl::send_hold(PeerSlot& p, Connection& c, const HoldOp& h, uint64_t id) {
  peer::HoldMsg m;
  m.id = id;
  m.op = h.op == HoldOp::kAdd ? peer::HoldMsg::kAdd : peer::HoldMsg::kRelease;
  m.target = h.hold.target;
  m.reason = h.hold.reason.substr(0, peer::kMaxReasonLen);
  m.created_ms = h.hold.created_ms;
  std::vector<uint8_t> body;
  if (Status s = peer::encode(m, body); !s) {
    lg->error("peer {}: hold on '{}' cannot be sent: {}", p.cfg.name, h.hold.target, s.message());
    return store->hold_op_done(h.seq);
  }
  RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kHold, body));
  while (true) {
    auto fr = c.recv(kReplyTimeout);
    if (!fr) return fr.status().with_context("waiting for the answer to HOLD");
    if (fr->type == FrameType::kPong) continue;
    uint64_t got = 0;
    if (fr->type == FrameType::kAck) {
      peer::IdMsg a;
      RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &a));
      got = a.id;
      lg->info("hold {} '{}' copied to {}", h.op == HoldOp::kAdd ? "on" : "release of",
               h.hold.target, p.cfg.name);
    } else if (fr->type == FrameType::kNack) {
      peer::NackMsg n;
      RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &n));
      got = n.id;
      lg->error("peer {} refused the hold change on '{}': {}", p.cfg.name, h.hold.target,
                printable(n.reason));
    } else {
      return Status::corrupt(std::string("unexpected ") + peer::frame_type_name(fr->type) +
                             " while waiting for a HOLD answer");
    }
    if (got != id) return Status::corrupt("reply for HOLD " + std::to_string(got));
    return store->hold_op_done(h.seq);
  }
}

Status Service::Impl::sender_session(PeerSlot& p, Connection& c, bool& greeted) {
  {
    std::vector<uint8_t> body;
    RECSYNC_RETURN_IF_ERROR(peer::encode(peer::HelloMsg{peer::kProtocolVersion, opt.node}, body));
    RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kHello, body));
    auto fr = c.recv(kHelloTimeout);
    if (!fr) return fr.status().with_context("waiting for HELLO");
    if (fr->type != FrameType::kHello) return Status::corrupt("first frame is not HELLO");
    peer::HelloMsg h;
    RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &h));
    if (h.version != peer::kProtocolVersion)
      return Status::refused("peer speaks protocol version " + std::to_string(h.version));
    if (h.node != p.cfg.name)
      lg->warn("peer {} calls itself '{}' (the pinned fingerprint matched)", p.cfg.name, h.node);
  }
  greeted = true;
  set_state(p, PeerState::kConnected);
  {
    std::lock_guard<std::mutex> l(mu);
    p.st.last_error.clear();
  }
  lg->info("connected to peer {} at {} ({})", p.cfg.name, c.remote(), c.peer_fingerprint());
  SenderLink l{c, {}};
  uint64_t next_id = 1;
  auto last_traffic = std::chrono::steady_clock::now();
  while (true) {
    uint64_t seq;
    {
      std::lock_guard<std::mutex> g(mu);
      if (stop) return Status::ok();
      seq = queue_seq;
    }
    // Hold changes first: they are tiny and protect recordings. Sent with no
    // transfer awaiting its verdict, so their answer is the next frame.
    auto hold = store->hold_ops_next(p.cfg.name);
    if (!hold) return hold.status().with_context("hold queue");
    if (hold->has_value()) {
      while (!l.awaiting.empty()) RECSYNC_RETURN_IF_ERROR(wait_verdict(p, l));
      RECSYNC_RETURN_IF_ERROR(send_hold(p, c, **hold, next_id++));
      last_traffic = std::chrono::steady_clock::now();
      continue;
    }
    if (l.awaiting.size() >= kWindow) {
      RECSYNC_RETURN_IF_ERROR(wait_verdict(p, l));
      continue;
    }
    // The next entry not already awaiting its verdict.
    auto batch =
        store->queue_batch(p.cfg.name, wall_ms(), opt.live_window.count(), l.awaiting.size() + 1);
    if (!batch) return batch.status().with_context("replication queue");
    const QueueItem* next = nullptr;
    for (const QueueItem& q : *batch) {
      bool busy = false;
      for (auto& [id, a] : l.awaiting) busy |= a.q.rel == q.rel;
      if (!busy) {
        next = &q;
        break;
      }
    }
    if (next) {
      RECSYNC_RETURN_IF_ERROR(transfer(p, l, *next, next_id++));
      last_traffic = std::chrono::steady_clock::now();
      continue;
    }
    if (!l.awaiting.empty()) {
      RECSYNC_RETURN_IF_ERROR(wait_verdict(p, l));
      continue;
    }
    // Idle: wait for new entries (or a deferred one falling due), keep the
    // link checked with PINGs.
    {
      std::unique_lock<std::mutex> g(mu);
      cv.wait_for(g, 1s, [&] { return stop || queue_seq != seq; });
      if (stop) return Status::ok();
    }
    if (c.readable_now()) {
      auto fr = c.recv(0ms);
      if (!fr) return fr.status();
      return Status::corrupt(std::string("unexpected ") + peer::frame_type_name(fr->type) +
                             " on an idle link");
    }
    if (std::chrono::steady_clock::now() - last_traffic >= kIdlePing) {
      std::vector<uint8_t> body;
      const uint64_t nonce = static_cast<uint64_t>(steady_ns());
      RECSYNC_RETURN_IF_ERROR(peer::encode(peer::PingMsg{nonce}, body));
      const auto t0 = std::chrono::steady_clock::now();
      RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kPing, body));
      auto fr = c.recv(kHelloTimeout);
      if (!fr) return fr.status().with_context("waiting for PONG");
      peer::PingMsg pong;
      if (fr->type != FrameType::kPong || !peer::decode(fr->payload, &pong) || pong.nonce != nonce)
        return Status::corrupt("bad PONG");
      std::lock_guard<std::mutex> g(mu);
      p.st.rtt_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      last_traffic = std::chrono::steady_clock::now();
    }
  }
}

void Service::Impl::sender_main(PeerSlot* pp) {
  PeerSlot& p = *pp;
  name_this_thread("rs-send:" + p.cfg.name);
  std::mt19937_64 rng{std::random_device{}()};
  int failures = 0;
  std::string last_logged;  // the same trouble is logged once, then at debug
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (stop) return;
      p.st.state = PeerState::kConnecting;
    }
    auto c = Connection::connect(p.cfg.address, *tls, kConnectTimeout, &cancel);
    Status end;
    if (c) {
      std::shared_ptr<Connection> conn = std::move(c).value();
      {
        std::lock_guard<std::mutex> l(mu);
        if (stop) return;
        p.out = conn;
      }
      bool greeted = false;
      end = sender_session(p, *conn, greeted);
      if (greeted) {
        failures = 0;
        last_logged.clear();
      }
      if (end) conn->close();
      {
        std::lock_guard<std::mutex> l(mu);
        p.out.reset();
        if (stop) return;
      }
      if (end) end = Status::io("link closed");
    } else {
      end = c.status();
    }
    if (end.message() != last_logged) {
      lg->warn("link to peer {} at {}: {}{}", p.cfg.name, p.cfg.address, end.message(),
               failures ? "" : " (retrying with backoff)");
      last_logged = end.message();
    } else {
      lg->debug("link to peer {}: {}", p.cfg.name, end.message());
    }
    failures++;
    int64_t d = kBackoffMinMs;
    for (int i = 1; i < failures && d < kBackoffMaxMs; ++i) d *= 2;
    d = std::min(d, kBackoffMaxMs);
    d += std::uniform_int_distribution<int64_t>(0, d / 4)(rng);
    set_state(p, end.code() == Status::Code::kRefused ? PeerState::kRefused : PeerState::kBackoff,
              end.message());
    if (sleep_or_stop(mu, cv, stop, std::chrono::milliseconds(d))) return;
  }
}

// --------------------------------------------------------------- receiver

Status Service::Impl::send_verdicts(Connection& c, PeerSlot& p, Finisher& fin) {
  for (auto& v : fin.take_done()) {
    std::vector<uint8_t> body;
    if (v.status.is_ok()) {
      RECSYNC_RETURN_IF_ERROR(peer::encode(peer::IdMsg{v.id}, body));
      RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kAck, body));
      continue;
    }
    peer::NackMsg m;
    m.id = v.id;
    m.code = nack_code_for(v.status);
    m.reason = v.status.message().substr(0, peer::kMaxReasonLen);
    lg->warn("peer {}: transfer {} failed: {}", p.cfg.name, v.id, v.status.message());
    RECSYNC_RETURN_IF_ERROR(peer::encode(m, body));
    RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kNack, body));
  }
  return Status::ok();
}

Status Service::Impl::receive_offer(Connection& c, PeerSlot& p, const peer::OfferMsg& o,
                                    Finisher& fin) {
  auto nack = [&](uint8_t code, const std::string& reason) {
    lg->warn("peer {}: refused {}: {}", p.cfg.name, printable(o.path), printable(reason));
    std::vector<uint8_t> body;
    peer::NackMsg m;
    m.id = o.id;
    m.code = code;
    m.reason = reason.substr(0, peer::kMaxReasonLen);
    RECSYNC_RETURN_IF_ERROR(peer::encode(m, body));
    return c.send(FrameType::kNack, body);
  };
  auto send_id = [&](FrameType t) {
    std::vector<uint8_t> body;
    RECSYNC_RETURN_IF_ERROR(peer::encode(peer::IdMsg{o.id}, body));
    return c.send(t, body);
  };
  const std::string hash = bytes_to_hash(o.hash);
  // By value: it also runs on a Finisher thread after this function returns.
  auto record = [this, hash, mtime_ns = o.mtime_ns,
                 origin = p.cfg.name](const InboundResult& r) -> Status {
    RecordingRow row;
    row.rel = r.rel;
    row.name = recording_id(path_basename(r.rel));
    row.size = r.size;
    row.hash = hash;
    row.rec_time_ms = mtime_ns / 1'000'000;
    row.archived_at_ms = wall_ms();
    row.origin = origin;
    return store->upsert_recording(row);
  };

  if (Status s = peer::validate_peer_path(o.path); !s)
    return nack(peer::NackMsg::kRefused, s.message());
  // One InboundFile per path at a time: a re-offer of a path still being
  // finished waits for it.
  while (fin.busy(o.path)) {
    RECSYNC_RETURN_IF_ERROR(send_verdicts(c, p, fin));
    fin.wait_done(50ms);
  }
  auto in =
      InboundFile::begin(env, opt.archive_root, o.path, o.size, hash, o.mtime_ns, opt.inbound);
  if (!in) return nack(nack_code_for(in.status()), in.status().message());
  if ((*in)->already_present()) {
    auto r = (*in)->accept_existing();
    if (!r) return nack(nack_code_for(r.status()), r.status().message());
    if (Status s = record(*r); !s) return nack(peer::NackMsg::kRetry, s.message());
    lg->info("received {} from {} (already here)", r->rel, p.cfg.name);
    {
      std::lock_guard<std::mutex> l(mu);
      p.st.received_files++;
    }
    return send_id(FrameType::kAck);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<uint8_t>& sig = (*in)->signature();
  const bool literal = (*in)->basis_size() == 0;  // the sender sends plain bytes then
  for (size_t off = 0; off < sig.size(); off += kReadChunk) {
    peer::ChunkMsg m;
    m.id = o.id;
    m.data.assign(sig.begin() + off, sig.begin() + std::min(sig.size(), off + kReadChunk));
    std::vector<uint8_t> body;
    RECSYNC_RETURN_IF_ERROR(peer::encode(m, body));
    RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kSignature, body));
  }
  RECSYNC_RETURN_IF_ERROR(send_id(FrameType::kEnd));

  Status patch_err;  // a patch error: drain the delta, then NACK
  uint64_t delta_bytes = 0;
  while (true) {
    RECSYNC_RETURN_IF_ERROR(send_verdicts(c, p, fin));
    auto fr = c.recv(kReceiverIdle);
    if (!fr) {
      if (patch_err.is_ok()) {
        Status k = (*in)->abort_keep_partial();
        lg->warn("peer {}: transfer of {} interrupted at {} of {} bytes ({}); partial kept{}",
                 p.cfg.name, o.path, (*in)->bytes_written(), o.size, fr.status().message(),
                 k ? "" : ": " + k.message());
      }
      return fr.status();
    }
    if (fr->type == FrameType::kDelta) {
      uint64_t chunk_id = 0;
      std::span<const uint8_t> data;
      RECSYNC_RETURN_IF_ERROR(peer::decode_chunk_view(fr->payload, &chunk_id, &data));
      if (chunk_id != o.id)
        return Status::corrupt("DELTA for transfer " + std::to_string(chunk_id));
      delta_bytes += data.size();
      {
        std::lock_guard<std::mutex> l(mu);
        p.st.received_bytes += fr->payload.size();
      }
      if (patch_err.is_ok()) {
        patch_err = literal ? (*in)->feed_literal(data) : (*in)->feed_delta(data);
        if (!patch_err.is_ok()) (*in)->discard();
      }
      continue;
    }
    if (fr->type != FrameType::kEnd)
      return Status::corrupt(std::string("unexpected ") + peer::frame_type_name(fr->type) +
                             " during a transfer");
    peer::IdMsg e;
    RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &e));
    if (e.id != o.id) return Status::corrupt("END for transfer " + std::to_string(e.id));
    break;
  }
  if (!patch_err.is_ok()) return nack(nack_code_for(patch_err), patch_err.message());
  std::shared_ptr<InboundFile> file = std::move(*in);
  fin.submit(o.id, o.path, [this, &p, file, record, o, t0, delta_bytes]() -> Status {
    auto r = file->finish();
    if (!r) {
      lg->warn("peer {}: refused {}: {}", p.cfg.name, printable(o.path), r.status().message());
      return r.status();
    }
    if (Status s = record(*r); !s) {
      // The file is published and whole: the index is rebuilt from disk at
      // the next start, so ack anyway (the copy is what counts).
      lg->error("received {} but could not index it: {}", r->rel, s.message());
    }
    {
      std::lock_guard<std::mutex> l(mu);
      p.st.received_files++;
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    lg->info("received {} from {} ({} bytes, {} delta bytes, basis {} bytes, {:.0f} ms)", r->rel,
             p.cfg.name, o.size, delta_bytes, file->basis_size(), ms);
    return Status::ok();
  });
  return Status::ok();
}

Status Service::Impl::receive_hold(Connection& c, PeerSlot& p, const peer::HoldMsg& h) {
  Status s;
  bool any = false;
  for (unsigned char ch : h.target) any |= ch < 0x20 || ch == 0x7f;
  if (any) {
    s = Status::refused("control characters in the hold target");
  } else if (h.op == peer::HoldMsg::kAdd) {
    HoldRow row;
    row.target = h.target;
    row.reason = h.reason + " (copied from " + p.cfg.name + ")";
    row.created_ms = h.created_ms;
    s = store->add_hold(row);  // not queued back to the peer
    if (s) lg->info("hold on '{}' copied from {}: {}", h.target, p.cfg.name, printable(h.reason));
  } else {
    auto r = store->release_hold(h.target);
    s = r.status();
    if (s) lg->info("hold on '{}' released by {}", h.target, p.cfg.name);
  }
  std::vector<uint8_t> body;
  if (s) {
    RECSYNC_RETURN_IF_ERROR(peer::encode(peer::IdMsg{h.id}, body));
    return c.send(FrameType::kAck, body);
  }
  lg->warn("peer {}: hold change on '{}' refused: {}", p.cfg.name, printable(h.target),
           s.message());
  peer::NackMsg n;
  n.id = h.id;
  n.code = nack_code_for(s);
  n.reason = s.message().substr(0, peer::kMaxReasonLen);
  RECSYNC_RETURN_IF_ERROR(peer::encode(n, body));
  return c.send(FrameType::kNack, body);
}

Status Service::Impl::receiver_session(Connection& c, PeerSlot& p) {
  auto fr = c.recv(kHelloTimeout);
  if (!fr) return fr.status().with_context("waiting for HELLO");
  if (fr->type != FrameType::kHello) return Status::corrupt("first frame is not HELLO");
  peer::HelloMsg h;
  RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &h));
  {
    std::vector<uint8_t> body;
    RECSYNC_RETURN_IF_ERROR(peer::encode(peer::HelloMsg{peer::kProtocolVersion, opt.node}, body));
    RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kHello, body));
  }
  if (h.version != peer::kProtocolVersion)
    return Status::refused("peer speaks protocol version " + std::to_string(h.version));
  lg->info("peer {} connected from {}", p.cfg.name, c.remote());
  Finisher fin(kWindow);
  auto last = std::chrono::steady_clock::now();
  while (true) {
    RECSYNC_RETURN_IF_ERROR(send_verdicts(c, p, fin));
    auto f = c.recv(fin.pending() ? 20ms : kReceiverIdle);
    if (!f) {
      if (f.status().code() == Status::Code::kBusy &&
          (fin.pending() > 0 || std::chrono::steady_clock::now() - last < kReceiverIdle))
        continue;
      return f.status();
    }
    last = std::chrono::steady_clock::now();
    switch (f->type) {
      case FrameType::kPing: {
        peer::PingMsg m;
        RECSYNC_RETURN_IF_ERROR(peer::decode(f->payload, &m));
        std::vector<uint8_t> body;
        RECSYNC_RETURN_IF_ERROR(peer::encode(m, body));
        RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kPong, body));
        break;
      }
      case FrameType::kHold: {
        peer::HoldMsg h;
        RECSYNC_RETURN_IF_ERROR(peer::decode(f->payload, &h));
        RECSYNC_RETURN_IF_ERROR(receive_hold(c, p, h));
        break;
      }
      case FrameType::kOffer: {
        peer::OfferMsg o;
        RECSYNC_RETURN_IF_ERROR(peer::decode(f->payload, &o));
        RECSYNC_RETURN_IF_ERROR(receive_offer(c, p, o, fin));
        break;
      }
      default:
        return Status::corrupt(std::string("unexpected ") + peer::frame_type_name(f->type) +
                               " from a sender");
    }
  }
}

void Service::Impl::receiver_main(Inbound* in, int fd, std::string remote) {
  name_this_thread("rs-recv");
  auto c = Connection::accept(fd, *tls, kConnectTimeout, &cancel);
  if (!c) {
    std::lock_guard<std::mutex> l(mu);
    if (!stop) {
      lg->warn("refused connection from {}: {}", remote, c.status().message());
      last_refused = remote + ": " + c.status().message();
      last_refused_ms = wall_ms();
    }
    in->done = true;
    return;
  }
  std::shared_ptr<Connection> conn = std::move(c).value();
  PeerSlot* p = slot_by_fingerprint(conn->peer_fingerprint());
  {
    std::lock_guard<std::mutex> l(mu);
    in->conn = conn;
    in->peer = p ? p->cfg.name : "";
    // A new link from the same peer replaces an old one (the old sender is gone).
    for (auto& o : inbound)
      if (&o != in && o.conn && !o.done && p && o.peer == p->cfg.name) o.conn->shutdown();
    if (stop) {
      in->done = true;
      return;
    }
  }
  Status s = p ? receiver_session(*conn, *p)
               : Status::refused("fingerprint " + conn->peer_fingerprint() + " is not a peer");
  {
    std::lock_guard<std::mutex> l(mu);
    if (!stop && s.code() != Status::Code::kNotFound)
      lg->warn("link from {} ({}) ended: {}", p ? p->cfg.name : "?", remote, s.message());
    else if (!stop)
      lg->info("peer {} closed its link", p ? p->cfg.name : "?");
    in->done = true;
  }
}

void Service::Impl::acceptor_main() {
  name_this_thread("rs-accept");
  while (true) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {cancel.fd(), POLLIN, 0}};
    int r = ::poll(fds, cancel.fd() >= 0 ? 2 : 1, 1000);
    {
      std::lock_guard<std::mutex> l(mu);
      if (stop) return;
      // Reap finished receivers.
      for (auto it = inbound.begin(); it != inbound.end();) {
        if (it->done) {
          it->t.join();
          it = inbound.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (r <= 0 || !(fds[0].revents & POLLIN)) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::string remote = peer::format_sockaddr(ss);
    std::lock_guard<std::mutex> l(mu);
    if (inbound.size() >= static_cast<size_t>(kMaxInbound)) {
      lg->warn("refused connection from {}: {} links open already", remote, kMaxInbound);
      ::close(fd);
      continue;
    }
    Inbound& in = inbound.emplace_back();
    in.t = std::thread([this, pin = &in, fd, remote] { receiver_main(pin, fd, remote); });
  }
}

// ----------------------------------------------------------------- public

Service::Service(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Service::~Service() { stop(); }

Result<std::unique_ptr<Service>> Service::create(Env* env, StateStore* store,
                                                 const peer::Identity& self, ServiceOptions opt) {
  auto impl = std::make_unique<Impl>(opt.bandwidth_bps);
  impl->env = env;
  impl->store = store;
  std::vector<std::string> pins;
  for (auto& p : opt.peers) pins.push_back(p.fingerprint);
  auto tls = peer::TlsContext::create(self, pins);
  if (!tls) return tls.status();
  impl->tls = std::move(tls).value();
  auto fd = peer::listen_tcp(opt.listen);
  if (!fd) return fd.status().with_context("replication.listen " + opt.listen);
  impl->listen_fd = *fd;
  auto port = peer::bound_port(*fd);
  if (!port) return port.status();
  impl->listen_port = *port;
  for (auto& p : opt.peers) {
    auto& s = impl->peers.emplace_back();
    s.cfg = p;
    s.st.name = p.name;
    s.st.address = p.address;
    s.st.fingerprint = p.fingerprint;
  }
  impl->opt = std::move(opt);
  return std::unique_ptr<Service>(new Service(std::move(impl)));
}

void Service::start() {
  Impl& i = *impl_;
  i.lg->info("replication listening on {} (port {}), {} peer(s), cap {}", i.opt.listen,
             i.listen_port, i.peers.size(),
             i.opt.bandwidth_bps ? format_bytes(i.opt.bandwidth_bps) + "/s" : std::string("none"));
  i.acceptor = std::thread([&i] { i.acceptor_main(); });
  for (auto& p : i.peers) p.sender = std::thread([&i, pp = &p] { i.sender_main(pp); });
}

void Service::stop() {
  Impl& i = *impl_;
  {
    std::lock_guard<std::mutex> l(i.mu);
    if (i.stop && i.listen_fd < 0) return;
    i.stop = true;
    for (auto& p : i.peers)
      if (p.out) p.out->shutdown();
    for (auto& in : i.inbound)
      if (in.conn) in.conn->shutdown();
  }
  i.cv.notify_all();
  i.cancel.cancel();
  if (i.acceptor.joinable()) i.acceptor.join();
  for (auto& p : i.peers)
    if (p.sender.joinable()) p.sender.join();
  // Receivers: their connections are shut down; a handshake in progress
  // ends at its timeout at the latest.
  while (true) {
    std::list<Impl::Inbound> left;
    {
      std::lock_guard<std::mutex> l(i.mu);
      for (auto& in : i.inbound)
        if (in.conn) in.conn->shutdown();
      left.splice(left.end(), i.inbound);
    }
    if (left.empty()) break;
    for (auto& in : left) in.t.join();
  }
  if (i.listen_fd >= 0) ::close(i.listen_fd);
  i.listen_fd = -1;
}

void Service::notify_queued() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->queue_seq++;
  }
  impl_->cv.notify_all();
}

void Service::set_bandwidth(uint64_t bps) {
  impl_->gov.set_rate(bps, 0, steady_ns());
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->opt.bandwidth_bps = bps;
}

std::vector<std::string> Service::peer_names() const {
  std::vector<std::string> n;
  for (auto& p : impl_->peers) n.push_back(p.cfg.name);
  return n;
}

ServiceStatus Service::status() {
  Impl& i = *impl_;
  ServiceStatus s;
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> l(i.mu);
    s.listen = i.opt.listen;
    s.listen_port = i.listen_port;
    s.bandwidth_bps = i.opt.bandwidth_bps;
    s.last_refused = i.last_refused;
    s.last_refused_ms = i.last_refused_ms;
    for (auto& p : i.peers) s.peers.push_back(p.st);
    // Rate over the last ~5 s of samples taken at status calls.
    const int64_t now = steady_ns();
    const uint64_t total = i.gov.granted(Priority::kLive) + i.gov.granted(Priority::kBulk);
    i.samples.emplace_back(now, total);
    while (i.samples.size() > 2 && now - i.samples[1].first >= 5'000'000'000) i.samples.pop_front();
    auto& [t0, b0] = i.samples.front();
    if (now - t0 > 200'000'000) s.rate_bps = static_cast<uint64_t>((total - b0) * 1e9 / (now - t0));
  }
  for (auto& p : s.peers)
    if (auto q = i.store->queue_stats(p.name)) p.queue = *q;
  return s;
}

}  // namespace recsync::replication
