#pragma once
// Peer replication (SPEC 4.2), a thin façade: it builds the TLS context
// (pinning every [[peer]] fingerprint), binds replication.listen, tells the
// state store's replication queue which peers to queue recordings for, and
// runs one Sender per peer (sender.h) and the Receiver (receiver.h) over a
// shared LinkContext (link.h), metered by the node's one Governor (the owner
// of the bandwidth cap; given in the options). It owns the PeerBoard, the
// one owner of each peer's status.
//
// Durability: the queue is the state store's repl_queue table; an entry goes
// only when the peer acks (after its fsync + rename + folder fsync). A crash
// anywhere re-offers the entry; a receiver holding an identical file answers
// ACK at once, so nothing is stored twice. Senders wake on the queue's
// doorbell, rung by the store when a recording or hold change is queued.
//
// Threads: create/start/stop from one thread (the daemon's loop); status(),
// governor() and peer_names() from any thread. stop() returns within about a
// second: every blocking call has a timeout and stop() shuts the sockets.
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "peer/identity.h"
#include "replication/link.h"

namespace recsync::replication {

class Sender;
class Receiver;
class BackfillJobs;
class RepairRequests;

struct ServiceStatus {
  std::string listen;
  uint16_t listen_port = 0;
  uint64_t bandwidth_bps = 0;  // the governor's cap now
  uint64_t rate_bps = 0;       // bytes sent per second, averaged over the last ~5 s
  std::vector<PeerStatus> peers;
  RefusedLink last_refused;
};

class Service {
 public:
  static constexpr int kMaxInbound = 8;

  // Starts nothing. An error names the listen address or the identity
  // problem. env and store must outlive the service.
  static Result<std::unique_ptr<Service>> create(Env* env, StateStore* store,
                                                 const peer::Identity& self, ServiceOptions opt);
  ~Service();  // stop()s
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  void start();
  // Closes every connection (receivers keep their partials as resume bases),
  // joins all threads. Idempotent.
  void stop();

  Governor& governor() { return *gov_; }
  // Backfill jobs (start, attach, view); tick() every second.
  BackfillJobs& backfill() { return *jobs_; }
  // Scrub repairs pulled from the peers over the backfill lane.
  RepairRequests& repairs() { return *repairs_; }
  void tick();
  std::vector<std::string> peer_names() const;
  // The board alone (no store access): any thread.
  std::vector<PeerStatus> peers() const { return board_.peers(); }

  // A snapshot for status: the board, the queue of each peer (from the
  // store, sub-millisecond) and the rate.
  ServiceStatus status();

 private:
  Service(Env* env, StateStore* store, ServiceOptions opt);

  Env* env_;
  StateStore* store_;
  ServiceOptions opt_;
  std::unique_ptr<peer::TlsContext> tls_;
  peer::Canceller cancel_;
  std::unique_ptr<Governor> own_gov_;   // when the options give none
  std::unique_ptr<Placer> own_placer_;  // likewise
  Governor* gov_;
  PeerBoard board_;
  StopFlag stop_;
  std::unique_ptr<LinkContext> ctx_;
  uint16_t listen_port_ = 0;
  std::unique_ptr<BackfillJobs> jobs_;
  std::unique_ptr<RepairRequests> repairs_;
  std::unique_ptr<Receiver> receiver_;
  std::vector<std::unique_ptr<Sender>> senders_;
  bool started_ = false, stopped_ = false;

  // Rate samples (steady ns, bytes granted) taken at status() calls.
  std::mutex rate_mu_;
  std::deque<std::pair<int64_t, uint64_t>> samples_;
};

}  // namespace recsync::replication
