#pragma once
// The receiving side of replication (SPEC 4.2): an acceptor on
// replication.listen and one session thread per accepted link (at most
// kMaxInbound at once; a new link from a peer on the same lane replaces its
// old one). A session answers HELLO, PING (with timestamps, for the peer's
// clock check), HOLD (stored as copied, never queued back), ERASE (applied
// through the Eraser, erase/eraser.h; version 3 peers), the backfill
// requests (backfill_server.h) and OFFERs: it sends the signature of its
// basis (InboundFile), patches the delta on the session thread, and hands
// the end of each transfer (fsync, hash check, placement by the identity
// rule through the Placer, folder fsync, index row) to a Finisher pool,
// sending each verdict as it comes. One path is received by one session at
// a time, across lanes. Received recordings keep their origin and origin
// path and are never queued: they are not sent back.
// A link from a certificate that is not pinned is refused and shown in
// status. Peer-supplied strings are escaped in logs.
//
// Threads: start() spawns the acceptor (rs-accept); sessions are rs-recv;
// shutdown_all() (any thread, after the stop flag is set) cuts every link;
// join() waits for all of them.
#include <list>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "replication/finisher.h"
#include "replication/link.h"

namespace recsync::replication {

class Receiver {
 public:
  static constexpr int kMaxInbound = 8;

  // listen_fd: a bound, listening TCP socket; owned (closed by join()).
  Receiver(LinkContext& ctx, int listen_fd) : ctx_(ctx), listen_fd_(listen_fd) {}
  ~Receiver() { join(); }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  void start();
  void shutdown_all();
  void join();

 private:
  struct Inbound {
    std::thread t;
    std::shared_ptr<peer::Connection> conn;
    std::string peer;
    peer::Lane lane = peer::Lane::kLive;
    bool done = false;
  };

  void acceptor_main();
  void reap_locked();
  void session_main(Inbound* in, int fd, std::string remote);
  Status session(Inbound* in, peer::Connection& c, size_t peer);
  Status hello(Inbound* in, peer::Connection& c, size_t peer);
  Status dispatch(peer::Connection& c, size_t peer, const peer::Frame& f, Finisher& fin);
  // Waits (answering verdicts) until no other session receives `path`, then
  // takes it; unlock_path gives it back.
  Status lock_path(peer::Connection& c, size_t peer, Finisher& fin, const std::string& path);
  void unlock_path(const std::string& path);
  Status receive_offer(peer::Connection& c, size_t peer, const peer::OfferMsg& o, Finisher& fin);
  // Streams the basis signature, then reads the delta into `in` (patch
  // errors are drained and returned in patch_err, link errors returned).
  Status receive_delta(peer::Connection& c, size_t peer, const peer::OfferMsg& o, InboundFile& in,
                       Finisher& fin, Status& patch_err, uint64_t& delta_bytes);
  Status receive_hold(peer::Connection& c, size_t peer, const peer::HoldMsg& h);
  // An ERASE (receiver_erase.cc): the Eraser erases the copies here; ACK, or
  // NACK kHeld when a hold here keeps it (kRetry on other trouble).
  Status receive_erase(peer::Connection& c, size_t peer, const peer::EraseMsg& m);
  // Sends the verdicts of finished transfers.
  Status send_verdicts(peer::Connection& c, size_t peer, Finisher& fin);
  // Records a received recording (at rel) in the index.
  Status record(const std::string& rel, const peer::OfferMsg& o, const std::string& hash);

  LinkContext& ctx_;
  int listen_fd_;
  std::thread acceptor_;
  std::mutex mu_;
  std::list<Inbound> inbound_;
  std::set<std::string> busy_paths_;  // being received by some session (mu_)
};

}  // namespace recsync::replication
