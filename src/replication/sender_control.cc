// The sender's small exchanges (sender.h): PING/PONG, the hold changes and
// the erasures it copies to its peer, and the check that ends a transfer of
// a recording erased meanwhile.
#include <algorithm>

#include "peer/frame.h"
#include "replication/sender.h"
#include "replication/wire.h"

namespace recsync::replication {

using peer::Connection;
using peer::FrameType;

namespace {

// An erasure a peer refused (a hold there) is asked again this much later;
// one that failed otherwise, sooner.
constexpr int64_t kEraseRefusedRetryMs = 10 * 60 * 1000;
constexpr int64_t kEraseRetryMs = 30 * 1000;

}  // namespace

Status Sender::ping_if_idle(Connection& c, std::chrono::steady_clock::time_point& last_traffic) {
  if (std::chrono::steady_clock::now() - last_traffic < kIdlePing) return Status::ok();
  RECSYNC_RETURN_IF_ERROR(ping(c));
  last_traffic = std::chrono::steady_clock::now();
  return Status::ok();
}

Status Sender::ping(Connection& c) {
  const uint64_t nonce = static_cast<uint64_t>(steady_ns());
  const peer::PingMsg out{nonce, wall_ns(ctx_.env), 0, 0};
  RECSYNC_RETURN_IF_ERROR(send_msg(c, FrameType::kPing, out));
  auto fr = c.recv(kHelloTimeout);
  if (!fr) return fr.status().with_context("waiting for PONG");
  const int64_t t3 = wall_ns(ctx_.env);
  peer::PingMsg pong;
  if (fr->type != FrameType::kPong || !peer::decode(fr->payload, &pong) || pong.nonce != nonce ||
      pong.t0_ns != out.t0_ns)
    return Status::corrupt("bad PONG");
  clock_at_ = std::chrono::steady_clock::now();
  const ClockSample cs = clock_sample(pong.t0_ns, pong.t1_ns, pong.t2_ns, t3);
  if (!backfill()) ctx_.board.set_clock(i_, cs.offset_ms, cs.rtt_ms);
  return Status::ok();
}

Status Sender::send_hold(Connection& c, const HoldOp& h, uint64_t id) {
  peer::HoldMsg m;
  m.id = id;
  m.op = h.op == HoldOp::kAdd ? peer::HoldMsg::kAdd : peer::HoldMsg::kRelease;
  m.target = h.hold.target;
  m.reason = h.hold.reason.substr(0, peer::kMaxReasonLen);
  m.created_ms = h.hold.created_ms;
  if (h.hold.is_identity() && hash_to_bytes(h.hold.hash, m.hash)) {
    m.has_hash = true;
    m.origin = ctx_.placer.node_of(h.hold.origin);
    m.origin_rel = h.hold.origin_rel;
  }
  std::vector<uint8_t> body;
  if (Status s = peer::encode(m, body); !s) {
    ctx_.lg->error("peer {}: hold on '{}' cannot be sent: {}", cfg_.name, h.hold.target,
                   s.message());
    return ctx_.store->holds().op_done(h.seq);
  }
  RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kHold, body));
  while (true) {
    auto fr = c.recv(kReplyTimeout);
    if (!fr) return fr.status().with_context("waiting for the answer to HOLD");
    if (fr->type == FrameType::kPong) continue;
    if (fr->type != FrameType::kAck && fr->type != FrameType::kNack)
      return unexpected(*fr, "while waiting for a HOLD answer");
    auto got = verdict_id(*fr);
    if (!got) return got.status();
    if (fr->type == FrameType::kAck) {
      ctx_.lg->info("hold {} '{}' copied to {}", h.op == HoldOp::kAdd ? "on" : "release of",
                    h.hold.target, cfg_.name);
    } else {
      peer::NackMsg n;
      RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &n));
      ctx_.lg->error("peer {} refused the hold change on '{}': {}", cfg_.name, h.hold.target,
                     printable(n.reason));
    }
    if (*got != id) return Status::corrupt("reply for HOLD " + std::to_string(*got));
    return ctx_.store->holds().op_done(h.seq);
  }
}

Status Sender::check_not_erased(const QueueItem& q) {
  // Tombstones changed since the transfer began: is it this recording?
  if (ctx_.store->tombstones().generation() == erase_gen_) return Status::ok();
  erase_gen_ = ctx_.store->tombstones().generation();
  auto t = ctx_.store->tombstones().get(q.origin_rel.empty() ? q.rel : q.origin_rel,
                                        q.origin.empty() ? kLocalOrigin : q.origin);
  if (!t || !t->has_value() || (*t)->hash != q.hash) return Status::ok();
  ctx_.lg->warn("peer {}: transfer of {} abandoned: erased meanwhile", cfg_.name, q.rel);
  return Status::io("transfer of " + q.rel + " abandoned: erased meanwhile");
}

Status Sender::send_erase(Connection& c, const EraseOp& e, uint64_t id) {
  peer::EraseMsg m;
  m.id = id;
  m.origin = ctx_.placer.node_of(e.t.origin);
  m.origin_rel = e.t.origin_rel;
  m.reason = e.t.reason.substr(0, peer::kMaxReasonLen);
  m.erased_ms = e.t.erased_ms;
  m.uid = e.t.uid;
  std::vector<uint8_t> body;
  Status enc = hash_to_bytes(e.t.hash, m.hash) ? peer::encode(m, body)
                                               : Status::invalid("bad hash '" + e.t.hash + "'");
  if (!enc) {
    ctx_.lg->error("peer {}: erasure of {} cannot be sent: {}", cfg_.name, e.t.origin_rel,
                   enc.message());
    return ctx_.store->tombstones().acked(cfg_.name, e.t);
  }
  RECSYNC_RETURN_IF_ERROR(c.send(FrameType::kErase, body));
  while (true) {
    auto fr = c.recv(kReplyTimeout);
    if (!fr) return fr.status().with_context("waiting for the answer to ERASE");
    if (fr->type == FrameType::kPong) continue;
    if (fr->type != FrameType::kAck && fr->type != FrameType::kNack)
      return unexpected(*fr, "while waiting for an ERASE answer");
    auto got = verdict_id(*fr);
    if (!got) return got.status();
    if (*got != id) return Status::corrupt("reply for ERASE " + std::to_string(*got));
    if (fr->type == FrameType::kAck) {
      ctx_.lg->info("erasure of {} applied by {}", e.t.origin_rel, cfg_.name);
      return ctx_.store->tombstones().acked(cfg_.name, e.t);
    }
    peer::NackMsg n;
    RECSYNC_RETURN_IF_ERROR(peer::decode(fr->payload, &n));
    const bool held = n.code == peer::NackMsg::kHeld;
    const std::string why = std::string(nack_name(n.code)) + ": " + printable(n.reason);
    ctx_.lg->error("peer {} refused the erasure of {}: {}{}", cfg_.name, e.t.origin_rel, why,
                   held ? " (asked again every 10 minutes)" : "");
    return ctx_.store->tombstones().failed(
        cfg_.name, e.t, ctx_.now_ms() + (held ? kEraseRefusedRetryMs : kEraseRetryMs), why, held);
  }
}

}  // namespace recsync::replication
