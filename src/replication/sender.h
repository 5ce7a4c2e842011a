#pragma once
// The sender of one lane to one peer (SPEC 4.2, 4.6). Each peer gets two:
// the live lane sends erasures, hold changes and queue entries of prio 0/1, the
// backfill lane the prio-2 entries (and runs the node's backfill exchanges
// with that peer, backfill/), each on a link of its own, so a live
// recording never waits behind a backfill transfer; the governor gives live
// bytes first. A sender connects (TCP + TLS 1.3 client), says HELLO naming
// its lane, then sends: OFFER ->
// SIGNATURE -> DELTA -> ACK. Up to kWindow offers await their verdict at
// once, so the peer's fsyncs overlap the next transfer. The librsync delta
// runs on this thread, every frame payload metered by the governor (live
// entries, queued within live_window, before retries). An entry leaves the
// queue only on the peer's ACK; a NACK or error makes it a retry after a
// backoff (5 s doubling up to retry_max, +25 % jitter). A broken link
// reconnects with backoff (0.5 s doubling up to 30 s, +25 % jitter), reset
// only after a working HELLO; the same trouble is logged once.
//
// Threads: one thread of its own (rs-send:<peer>), started by start();
// shutdown() may be called from any thread to cut the current link (stop);
// join() after the stop flag is set.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <thread>

#include "replication/link.h"

namespace recsync::replication {

class Sender {
 public:
  Sender(LinkContext& ctx, size_t peer, peer::Lane lane)
      : ctx_(ctx), i_(peer), cfg_(ctx.board.config(peer)), lane_(lane) {}
  ~Sender() { join(); }
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  void start();
  void shutdown();
  void join();

 private:
  struct Awaiting;
  struct Link;

  void main();
  // Sets `greeted` once HELLOs were exchanged (the link really works).
  Status session(peer::Connection& c, bool& greeted);
  Status hello(peer::Connection& c);
  // One step of a session: a hold change, an offer, or a verdict; false in
  // `worked` when there was nothing to do.
  Status step(Link& l, uint64_t& next_id, bool& worked);
  // The backfill lane's share of a step: planning with the peer and
  // requesting pulls for the running job (backfill_jobs.h).
  Status backfill_step(Link& l, uint64_t& next_id, bool& worked);
  Status ping_if_idle(peer::Connection& c, std::chrono::steady_clock::time_point& last_traffic);
  // PING, PONG; the live lane records the peer's clock offset on the board.
  Status ping(peer::Connection& c);
  Status send_governed(peer::Connection& c, peer::FrameType t, uint64_t id,
                       std::span<const uint8_t> data, Priority prio);
  // Offers one entry and streams its data; its verdict is left to come
  // later (l.awaiting). A non-OK Status means the link is unusable.
  Status transfer(Link& l, const QueueItem& q, uint64_t id);
  // Waits for the receiver's answer to an offer: its signature (false in
  // `done`) or a verdict at once (true: nothing to stream).
  Status await_signature(Link& l, Awaiting& a, uint64_t id, delta::LoadedSignature& sig,
                         bool& done);
  Status stream(Link& l, File& f, const QueueItem& q, uint64_t id, bool literal,
                const delta::LoadedSignature& sig, Priority prio);
  Status on_verdict(Link& l, const peer::Frame& f);
  Status wait_verdict(Link& l);
  // Copies one hold change to the peer; OK once acked (or refused: logged).
  Status send_hold(peer::Connection& c, const HoldOp& h, uint64_t id);
  // Tells the peer of one erasure (sender_control.cc); OK once answered:
  // acked, the row goes; refused, it is due again later.
  Status send_erase(peer::Connection& c, const EraseOp& e, uint64_t id);
  // kIo when q's recording was erased since the transfer began (the link
  // is dropped: the transfer is abandoned, the receiver keeps no copy).
  Status check_not_erased(const QueueItem& q);
  void defer(const QueueItem& q, const std::string& why);

  bool backfill() const { return lane_ == peer::Lane::kBackfill; }

  LinkContext& ctx_;
  const size_t i_;
  const PeerConfig& cfg_;
  const peer::Lane lane_;
  std::thread thread_;
  std::mutex mu_;
  std::shared_ptr<peer::Connection> out_;  // the current link, for shutdown()
  // Backfill lane: pulls of the running job were requested on this link at
  // this steady time (0: not yet on this link: ask for all again).
  std::chrono::steady_clock::time_point pulled_at_{};
  std::chrono::steady_clock::time_point clock_at_{};  // last PING on this link
  uint32_t peer_version_ = peer::kProtocolVersion;    // this link's (hello)
  uint32_t hello_version_ = peer::kProtocolVersion;   // what the next HELLO says
  uint64_t erase_gen_ = 0;  // Tombstones::generation() when the transfer began
};

}  // namespace recsync::replication
