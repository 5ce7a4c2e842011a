#pragma once
// Peer replication (SPEC 4.2): sends this node's archived recordings to every
// configured peer and receives theirs into the local archive.
//
// Threads (none of them the daemon's libuv loop):
//   - one sender per [[peer]]: connects (TCP + TLS 1.3 client), then offers
//     the peer's queue entries one at a time (OFFER -> SIGNATURE -> DELTA ->
//     ACK); the librsync delta runs on this thread. Reconnects with
//     exponential backoff (0.5 s .. 30 s) plus up to 25 % jitter.
//   - one acceptor on replication.listen, and one receiver thread per
//     accepted connection (at most kMaxInbound at once); the signature, the
//     patch, the fsyncs and the hash check run there.
// Every blocking call has a timeout, and stop() shuts the sockets down, so
// stop() returns within about a second.
//
// Durability: the queue is the state store's repl_queue table; an entry goes
// only when the peer acks (after its fsync + rename + folder fsync). A crash
// anywhere re-offers the entry; a receiver holding an identical file answers
// ACK at once, so nothing is stored twice. Received recordings are recorded
// with origin = peer name and never queued: they are not sent back.
//
// The bandwidth governor (governor.h) meters every frame payload a sender
// writes, across all peers. Entries enqueued within live_window go first
// (kLive); older ones and retries are kBulk.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "peer/identity.h"
#include "recsync/config.h"
#include "recsync/env.h"
#include "recsync/page_budget.h"
#include "recsync/status.h"
#include "replication/governor.h"
#include "replication/inbound_file.h"
#include "state/store.h"

namespace recsync::replication {

enum class PeerState { kConnecting, kConnected, kBackoff, kRefused };
const char* peer_state_name(PeerState s);

struct InFlight {
  std::string rel;
  uint64_t size = 0;
  uint64_t read_bytes = 0;  // of the file, fed to the delta so far
  uint64_t sent_bytes = 0;  // frame payload bytes sent for it so far
  int64_t started_ms = 0;   // wall
};

struct PeerStatus {
  std::string name, address, fingerprint;
  PeerState state = PeerState::kConnecting;
  std::string last_error;
  int64_t last_ack_ms = 0;         // wall; 0 = none since start
  int64_t connected_since_ms = 0;  // wall; 0 when not connected
  double rtt_ms = -1;              // last PING round trip; -1 unknown
  uint64_t sent_bytes = 0, received_bytes = 0;
  uint64_t acked_files = 0, received_files = 0, failed_transfers = 0;
  std::optional<InFlight> in_flight;
  QueueStats queue;
};

struct ServiceStatus {
  std::string listen;
  uint16_t listen_port = 0;
  uint64_t bandwidth_bps = 0;
  uint64_t rate_bps = 0;  // bytes sent per second, averaged over the last ~5 s
  std::vector<PeerStatus> peers;
  std::string last_refused;  // last refused incoming connection, "" = none
  int64_t last_refused_ms = 0;
};

struct ServiceOptions {
  std::string node;
  std::string listen;
  uint64_t bandwidth_bps = 50'000'000;
  std::string archive_root;
  std::vector<PeerConfig> peers;
  InboundOptions inbound;
  std::chrono::milliseconds live_window{60'000};
  std::chrono::milliseconds retry_max{300'000};  // backoff cap for a failed file
  // Shares of recordings the archiver left cached for the senders: a sender
  // gives back a recording's share when its transfer of it ends, whichever
  // way. Not owned; may be null.
  PageBudget* page_budget = nullptr;
};

class Service {
 public:
  static constexpr int kMaxInbound = 8;

  // Creates the TLS context (pinning every peer's fingerprint) and binds the
  // listener (an error names the address). Starts nothing. env, store must
  // outlive the service.
  static Result<std::unique_ptr<Service>> create(Env* env, StateStore* store,
                                                 const peer::Identity& self, ServiceOptions opt);
  ~Service();  // stop()s
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  void start();
  // Closes every connection (receivers keep their partials as resume bases),
  // joins all threads. Idempotent.
  void stop();

  // New entries were queued: wake idle senders. Any thread.
  void notify_queued();
  // New cap (SIGHUP). Any thread.
  void set_bandwidth(uint64_t bps);
  // Peer names the archiver queues recordings for.
  std::vector<std::string> peer_names() const;

  // A snapshot for `recsync status`. Any thread; reads the queue from the
  // store (sub-millisecond).
  ServiceStatus status();

 private:
  struct Impl;
  explicit Service(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace recsync::replication
