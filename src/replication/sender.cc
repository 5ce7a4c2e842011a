#include "replication/sender.h"

#include <algorithm>
#include <optional>
#include <random>

#include "delta/delta.h"
#include "peer/frame.h"
#include "recsync/backoff.h"
#include "recsync/thread_name.h"
#include "replication/backfill_jobs.h"
#include "replication/wire.h"

namespace recsync::replication {

using peer::Connection;
using peer::Frame;
using peer::FrameType;

namespace {

// The most one DELTA frame carries (less at low caps: send_governed). 256 KiB:
// ~5 ms at 50 MB/s, small against the governor's windows, and few enough
// frames that per-frame costs (a syscall, a record flush) stay small.
constexpr size_t kSendChunk = 256 * 1024;
// A librsync signature with no blocks (empty basis) is its 12-byte header.
constexpr uint64_t kEmptySignatureLen = 12;
constexpr Backoff kReconnect{500, 30'000, 0.25};
constexpr auto kRepullEvery = std::chrono::minutes(5);

}  // namespace

// An offer whose data went out and whose ACK/NACK has not come back yet.
struct Sender::Awaiting {
  QueueItem q;
  int64_t t0_ns = 0;       // 0: nothing was transferred (answered at once)
  uint64_t sent = 0;       // payload bytes sent for it
  uint64_t sig_bytes = 0;  // signature bytes received for it
};

struct Sender::Link {
  Connection& c;
  std::map<uint64_t, Awaiting> awaiting;
};

void Sender::start() {
  thread_ = std::thread([this] { main(); });
}

void Sender::shutdown() {
  std::lock_guard<std::mutex> l(mu_);
  if (out_) out_->shutdown();
}

void Sender::join() {
  if (thread_.joinable()) thread_.join();
}

void Sender::main() {
  name_this_thread((backfill() ? "rs-fill:" : "rs-send:") + cfg_.name);
  std::mt19937_64 rng{std::random_device{}()};
  int failures = 0;
  std::string last_logged;  // the same trouble is logged once, then at debug
  while (!ctx_.stop.stopped()) {
    if (!backfill()) ctx_.board.set_state(i_, PeerState::kConnecting);
    auto c = Connection::connect(cfg_.address, ctx_.tls, kConnectTimeout, &ctx_.cancel);
    Status end;
    if (c) {
      std::shared_ptr<Connection> conn = std::move(c).value();
      {
        std::lock_guard<std::mutex> l(mu_);
        if (ctx_.stop.stopped()) return;
        out_ = conn;
      }
      bool greeted = false;
      end = session(*conn, greeted);
      if (greeted) hello_version_ = peer::kProtocolVersion;
      if (greeted) {
        failures = 0;
        last_logged.clear();
      }
      if (end) conn->close();
      {
        std::lock_guard<std::mutex> l(mu_);
        out_.reset();
      }
      if (ctx_.stop.stopped()) return;
      if (end) end = Status::io("link closed");
    } else {
      end = c.status();
    }
    if (end.message() != last_logged) {
      ctx_.lg->warn("{}link to peer {} at {}: {}{}", backfill() ? "backfill " : "", cfg_.name,
                    cfg_.address, end.message(), failures ? "" : " (retrying with backoff)");
      last_logged = end.message();
    } else {
      ctx_.lg->debug("link to peer {}: {}", cfg_.name, end.message());
    }
    const int64_t d = kReconnect.delay_ms(failures++, rng);
    if (!backfill())
      ctx_.board.set_state(
          i_, end.code() == Status::Code::kRefused ? PeerState::kRefused : PeerState::kBackoff,
          end.message());
    if (ctx_.stop.sleep_for(std::chrono::milliseconds(d))) return;
  }
}

Status Sender::hello(Connection& c) {
  RECSYNC_RETURN_IF_ERROR(
      send_msg(c, FrameType::kHello, peer::HelloMsg{hello_version_, ctx_.opt.node, lane_}));
  auto fr = c.recv(kHelloTimeout);
  if (!fr) return fr.status().with_context("waiting for HELLO");
  if (fr->type != FrameType::kHello) return Status::corrupt("first frame is not HELLO");
  peer::HelloMsg h;
  RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &h));
  if (h.version < peer::kMinProtocolVersion)
    return Status::refused("peer speaks protocol version " + std::to_string(h.version) +
                           ", older than " + std::to_string(peer::kMinProtocolVersion) +
                           ": upgrade it");
  if (h.version < hello_version_) {
    // An older peer drops a link whose HELLO is newer than its own version:
    // the next link says its version (and the one after a working session,
    // ours again: it may have been upgraded).
    hello_version_ = h.version;
    return Status::io("peer speaks protocol version " + std::to_string(h.version) +
                      ": reconnecting with it");
  }
  peer_version_ = std::min(h.version, hello_version_);
  if (peer_version_ < peer::kEraseVersion && !backfill())
    ctx_.lg->warn("peer {} speaks protocol version {}: erasures wait until it is upgraded",
                  cfg_.name, h.version);
  if (h.node != cfg_.name)
    ctx_.lg->warn("peer {} calls itself '{}' (the pinned fingerprint matched)", cfg_.name, h.node);
  return Status::ok();
}

Status Sender::session(Connection& c, bool& greeted) {
  RECSYNC_RETURN_IF_ERROR(hello(c));
  greeted = true;
  if (!backfill()) {
    ctx_.board.set_state(i_, PeerState::kConnected);
    ctx_.board.clear_error(i_);
  }
  ctx_.lg->info("connected to peer {} at {} ({}{})", cfg_.name, c.remote(), c.peer_fingerprint(),
                backfill() ? ", backfill lane" : "");
  Link l{c, {}};
  uint64_t next_id = 1;
  pulled_at_ = {};
  // The clock comparison first: retention may be waiting for it.
  if (!backfill()) RECSYNC_RETURN_IF_ERROR(ping(c));
  auto last_traffic = std::chrono::steady_clock::now();
  Doorbell& bell = ctx_.store->queue().doorbell();
  while (!ctx_.stop.stopped()) {
    const uint64_t seen = bell.count();
    bool worked = false;
    RECSYNC_RETURN_IF_ERROR(step(l, next_id, worked));
    if (worked) {
      last_traffic = std::chrono::steady_clock::now();
      continue;
    }
    // Idle: wait for new entries (or a deferred one falling due), keep the
    // link checked with PINGs.
    bell.wait_for(seen, 1s);
    if (ctx_.stop.stopped()) break;
    if (c.readable_now()) {
      auto fr = c.recv(0ms);
      if (!fr) return fr.status();
      return unexpected(*fr, "on an idle link");
    }
    RECSYNC_RETURN_IF_ERROR(ping_if_idle(c, last_traffic));
  }
  return Status::ok();
}

Status Sender::step(Link& l, uint64_t& next_id, bool& worked) {
  worked = true;
  // Erasures first, then hold changes: tiny, and they say what must go or
  // stay. Sent with no transfer awaiting its verdict, so their answer is
  // the next frame.
  if (!backfill() && peer_version_ >= peer::kEraseVersion) {
    auto e = ctx_.store->tombstones().next(cfg_.name, ctx_.now_ms());
    if (!e) return e.status().with_context("erase queue");
    if (e->has_value()) {
      while (!l.awaiting.empty()) RECSYNC_RETURN_IF_ERROR(wait_verdict(l));
      return send_erase(l.c, **e, next_id++);
    }
  }
  if (!backfill()) {
    auto hold = ctx_.store->holds().next_op(cfg_.name);
    if (!hold) return hold.status().with_context("hold queue");
    if (hold->has_value()) {
      while (!l.awaiting.empty()) RECSYNC_RETURN_IF_ERROR(wait_verdict(l));
      return send_hold(l.c, **hold, next_id++);
    }
  }
  if (backfill() && l.awaiting.empty()) {
    RECSYNC_RETURN_IF_ERROR(backfill_step(l, next_id, worked));
    if (worked) return Status::ok();
    worked = true;
  }
  // A busy live link still compares clocks now and then: let the window
  // drain (a PONG must be the next frame), then PING.
  if (!backfill() && std::chrono::steady_clock::now() - clock_at_ >= kClockPing) {
    if (!l.awaiting.empty()) return wait_verdict(l);
    return ping(l.c);
  }
  if (l.awaiting.size() >= kWindow) return wait_verdict(l);
  // The next entry not already awaiting its verdict.
  auto batch = ctx_.store->queue().batch(
      cfg_.name, ctx_.now_ms(), ctx_.opt.live_window.count(), l.awaiting.size() + 1,
      backfill() ? ReplQueue::Lane::kBackfill : ReplQueue::Lane::kLive);
  if (!batch) return batch.status().with_context("replication queue");
  for (const QueueItem& q : *batch) {
    bool busy = false;
    for (auto& [id, a] : l.awaiting) busy |= a.q.rel == q.rel;
    if (!busy) return transfer(l, q, next_id++);
  }
  if (!l.awaiting.empty()) return wait_verdict(l);
  worked = false;
  return Status::ok();
}

Status Sender::backfill_step(Link& l, uint64_t& next_id, bool& worked) {
  worked = false;
  RECSYNC_RETURN_IF_ERROR(pull_repairs(ctx_, l.c, cfg_.name, next_id, worked));  // scrub
  if (worked || !ctx_.jobs) return Status::ok();
  auto w = ctx_.jobs->work_for(cfg_.name);
  if (!w) return Status::ok();
  BackfillClient bc(ctx_, l.c, cfg_.name, next_id);
  const auto now = std::chrono::steady_clock::now();
  if (w->plan) {
    worked = true;
    auto r = bc.plan(w->job, w->dry_run, w->window_start_ms);
    ctx_.jobs->planned(w->job, cfg_.name, r);
    if (!r) return r.status();
    if (w->dry_run) return Status::ok();
    pulled_at_ = now;
    return bc.pull(w->job, false);
  }
  // After a reconnect, and every few minutes, ask again for what was asked
  // for and has not come: the peer may have restarted without its queue, or
  // pruned a recording meanwhile (it then says so).
  if (w->dry_run ||
      (pulled_at_ != std::chrono::steady_clock::time_point{} && now - pulled_at_ < kRepullEvery))
    return Status::ok();
  worked = true;
  pulled_at_ = now;
  return bc.pull(w->job, true);
}

Status Sender::send_governed(Connection& c, FrameType t, uint64_t id, std::span<const uint8_t> data,
                             Priority prio) {
  // At low caps, smaller frames: none waits more than ~1/4 s for tokens.
  const uint64_t rate = ctx_.gov.rate();
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
      got += ctx_.gov.grant(prio, need - got, now);
      if (got >= need) break;
      if (!waiting) waiting.emplace(&ctx_.gov, prio);
      const int64_t at = ctx_.gov.next_available(prio, need - got, now);
      if (ctx_.stop.sleep_for(
              std::chrono::nanoseconds(std::clamp<int64_t>(at - now, 100'000, 100'000'000))))
        return Status::io("stopping");
    }
    waiting.reset();
    RECSYNC_RETURN_IF_ERROR(c.send(t, head, data.first(n)));
    ctx_.board.add_sent(i_, backfill(), need);
    data = data.subspan(n);
    if (data.empty()) return Status::ok();
  }
}

void Sender::defer(const QueueItem& q, const std::string& why) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const Backoff retry{5000, ctx_.opt.retry_max.count(), 0.25};
  const int64_t d = retry.delay_ms(q.attempts, rng);
  if (Status s = ctx_.store->queue().defer(cfg_.name, q.rel, ctx_.now_ms() + d, why); !s)
    ctx_.lg->error("peer {}: could not record the failure of {}: {}", cfg_.name, q.rel,
                   s.message());
  ctx_.board.failed(i_, q.rel + ": " + why);
}

Status Sender::on_verdict(Link& l, const Frame& fm) {
  auto id = verdict_id(fm);
  if (!id) return id.status();
  auto it = l.awaiting.find(*id);
  if (it == l.awaiting.end())
    return Status::corrupt(std::string(peer::frame_type_name(fm.type)) + " for unknown transfer " +
                           std::to_string(*id));
  Awaiting a = std::move(it->second);
  l.awaiting.erase(it);
  if (fm.type == FrameType::kAck) {
    RECSYNC_RETURN_IF_ERROR(ctx_.store->queue().done(cfg_.name, a.q.rel, a.q.hash));
    if (a.q.prio == ReplQueue::kBackfillPrio)
      RECSYNC_RETURN_IF_ERROR(ctx_.store->backfill().pushed(
          cfg_.name, a.q.origin_rel.empty() ? a.q.rel : a.q.origin_rel,
          a.q.origin.empty() ? kLocalOrigin : a.q.origin));
    ctx_.board.acked(i_);
    if (a.t0_ns == 0) {
      ctx_.lg->info("replicated {} to {} (peer already had it)", a.q.rel, cfg_.name);
    } else {
      ctx_.lg->info("replicated {} to {} ({} bytes, {} sent, signature {} bytes, {:.0f} ms)",
                    a.q.rel, cfg_.name, a.q.size, a.sent, a.sig_bytes,
                    (steady_ns() - a.t0_ns) / 1e6);
    }
    return Status::ok();
  }
  peer::NackMsg nack;
  RECSYNC_RETURN_IF_ERROR(peer::decode(fm.payload, &nack));
  std::string why = std::string(nack_name(nack.code)) + ": " + printable(nack.reason);
  if (nack.code == peer::NackMsg::kConflict) {
    // Other content under this identity there: never overwritten, so
    // offering it again is pointless. Reported, and dropped from the queue.
    ctx_.lg->error("peer {} holds other content as {}: {}; not sent again", cfg_.name, a.q.rel,
                   why);
    ctx_.board.conflict(i_);
    return ctx_.store->queue().done(cfg_.name, a.q.rel, a.q.hash);
  }
  ctx_.lg->warn("peer {} did not take {}: {}", cfg_.name, a.q.rel, why);
  defer(a.q, why);
  return Status::ok();
}

Status Sender::wait_verdict(Link& l) {
  while (true) {
    auto fr = l.c.recv(kReplyTimeout);
    if (!fr) return fr.status().with_context("waiting for an ACK");
    if (fr->type == FrameType::kPong) continue;
    if (fr->type == FrameType::kAck || fr->type == FrameType::kNack) return on_verdict(l, *fr);
    return unexpected(*fr, "while waiting for an ACK");
  }
}

// A file missing while its row still names it is looked for again this
// many times (every 500 ms) before the entry is dropped.
constexpr int kMovingRetries = 3;

Status Sender::transfer(Link& l, const QueueItem& q, uint64_t id) {
  // This peer's share of the pages the archiver may have left cached goes
  // back however the transfer ends (read through, dropped from the queue, or
  // failed: a retry reads the file again, from disk if need be).
  struct GiveBack {
    PageBudget* b;
    uint64_t n;
    ~GiveBack() {
      if (b) b->give_back(n);
    }
  } give_back{ctx_.opt.page_budget, q.size};
  const std::string path = path_join(ctx_.opt.archive_root, q.rel);
  auto f = ctx_.env->open_read(path);
  if (!f) {
    if (f.status().code() == Status::Code::kNotFound) {
      // Moved to its qualified path by a name collision (its entry follows
      // it, in the transaction after the rename: the row may still name the
      // old path for a moment): offered again in a moment from there.
      auto still = ctx_.store->recordings().find_identity(
          q.origin_rel.empty() ? q.rel : q.origin_rel, q.origin.empty() ? kLocalOrigin : q.origin);
      if (still && still->has_value() && ((*still)->rel != q.rel || q.attempts < kMovingRetries))
        return ctx_.store->queue().defer(cfg_.name, q.rel, ctx_.now_ms() + 500,
                                         "moved by a name collision");
      // Pruned (or removed by the operator) before the peer got it.
      ctx_.lg->warn("peer {}: {} is no longer in the archive; dropped from the queue", cfg_.name,
                    q.rel);
      return ctx_.store->queue().done(cfg_.name, q.rel, q.hash);
    }
    defer(q, f.status().message());
    return Status::ok();
  }
  // The archiver left the file's pages cached for us; should they be gone
  // (a backlog), the disk reads start now, while the peer answers the
  // offer, instead of one chunk at a time as the stream goes.
  (*f)->will_need();
  peer::OfferMsg offer;
  offer.id = id;
  offer.path = q.origin_rel.empty() ? q.rel : q.origin_rel;
  offer.origin = q.origin.empty() ? ctx_.opt.node : q.origin;
  offer.size = q.size;
  offer.mtime_ns = q.mtime_ns;
  if (!hash_to_bytes(q.hash, offer.hash)) {
    ctx_.lg->error("peer {}: {} has no usable hash in the queue ('{}'); dropped", cfg_.name, q.rel,
                   q.hash);
    return ctx_.store->queue().done(cfg_.name, q.rel, q.hash);
  }
  const Priority prio = q.prio == 0 && ctx_.now_ms() - q.enqueued_ms < ctx_.opt.live_window.count()
                            ? Priority::kLive
                            : Priority::kBulk;
  erase_gen_ = ctx_.store->tombstones().generation();
  ctx_.board.begin_transfer(i_, backfill(), q.rel, q.size);
  struct EndTransfer {
    PeerBoard& b;
    size_t i;
    bool lane;
    ~EndTransfer() { b.end_transfer(i, lane); }
  } end_transfer{ctx_.board, i_, backfill()};
  Awaiting a;
  a.q = q;
  a.t0_ns = steady_ns();
  const uint64_t sent0 = ctx_.board.sent_bytes(i_);
  RECSYNC_RETURN_IF_ERROR(send_msg(l.c, FrameType::kOffer, offer));
  delta::LoadedSignature sig;
  bool answered = false;
  RECSYNC_RETURN_IF_ERROR(await_signature(l, a, id, sig, answered));
  if (answered) return Status::ok();
  // Against an empty basis (a signature of the header alone) a delta is all
  // literal: the file's bytes are sent as they are, without librsync.
  const bool literal = a.sig_bytes == kEmptySignatureLen;
  RECSYNC_RETURN_IF_ERROR(stream(l, **f, q, id, literal, sig, prio));
  a.sent = ctx_.board.sent_bytes(i_) - sent0;
  // The verdict (ACK after the peer's fsync + rename) comes later: the next
  // offer goes out meanwhile.
  l.awaiting.emplace(id, std::move(a));
  return Status::ok();
}

Status Sender::await_signature(Link& l, Awaiting& a, uint64_t id, delta::LoadedSignature& sig,
                               bool& answered) {
  // The receiver answers ACK (has it), NACK, or its basis signature. Verdicts
  // on earlier transfers may come first.
  while (true) {
    auto fr = l.c.recv(kReplyTimeout);
    if (!fr) return fr.status().with_context("waiting for the answer to OFFER " + a.q.rel);
    Frame& fm = *fr;
    if (fm.type == FrameType::kPong) continue;
    if (fm.type == FrameType::kAck || fm.type == FrameType::kNack) {
      auto vid = verdict_id(fm);
      if (vid && *vid == id) {
        a.t0_ns = 0;  // nothing was transferred
        l.awaiting.emplace(id, std::move(a));
        answered = true;
        return on_verdict(l, fm);
      }
      RECSYNC_RETURN_IF_ERROR(on_verdict(l, fm));
      continue;
    }
    if (fm.type == FrameType::kEnd) {
      peer::IdMsg m;
      RECSYNC_RETURN_IF_ERROR(peer::decode(fm.payload, &m));
      if (m.id != id) return Status::corrupt("END for transfer " + std::to_string(m.id));
      RECSYNC_RETURN_IF_ERROR(sig.feed({}, true));
      break;
    }
    if (fm.type != FrameType::kSignature) return unexpected(fm, "while waiting for a signature");
    peer::ChunkMsg m;
    RECSYNC_RETURN_IF_ERROR(peer::decode(fm.payload, &m));
    if (m.id != id) return Status::corrupt("signature for transfer " + std::to_string(m.id));
    a.sig_bytes += m.data.size();
    RECSYNC_RETURN_IF_ERROR(sig.feed(m.data, false));
  }
  if (!sig.ready()) return Status::corrupt("incomplete signature from the peer");
  return Status::ok();
}

Status Sender::stream(Link& l, File& f, const QueueItem& q, uint64_t id, bool literal,
                      const delta::LoadedSignature& sig, Priority prio) {
  // The delta (librsync) runs on this thread, under the governor.
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
    auto n = f.read(in.data(), in.size());
    if (!n) {
      // A read error on our own archive: the stream to the peer is already
      // half sent, so end it here and let the link restart.
      defer(q, n.status().message());
      return n.status().with_context("read " + path_join(ctx_.opt.archive_root, q.rel));
    }
    eof = *n == 0;
    read_total += *n;
    RECSYNC_RETURN_IF_ERROR(check_not_erased(q));
    ctx_.board.transfer_read(i_, backfill(), read_total);
    if (literal) {
      RECSYNC_RETURN_IF_ERROR(
          send_governed(l.c, FrameType::kDelta, id, std::span<const uint8_t>(in.data(), *n), prio));
      continue;
    }
    RECSYNC_RETURN_IF_ERROR(job->feed(std::span<const uint8_t>(in.data(), *n), eof, out));
    if (out.size() >= kSendChunk || (eof && !out.empty())) {
      RECSYNC_RETURN_IF_ERROR(send_governed(l.c, FrameType::kDelta, id, out, prio));
      out.clear();
    }
  }
  f.drop_cache();  // read through: the archive's pages are not needed again
  return send_id(l.c, FrameType::kEnd, id);
}

}  // namespace recsync::replication
