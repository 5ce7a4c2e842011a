#pragma once
// The peer board: what `recsync status` shows of each configured peer (link
// state, counters, the transfer in flight, last error) and of refused
// incoming links, under its own lock. The senders and receivers write it;
// status() reads a consistent snapshot. It owns nothing else: queue figures
// come from the state store, the rate from the governor.
//
// Peers are addressed by their index in the [[peer]] list given at
// construction (fixed for the life of the service).
//
// Thread safety: every method, any thread. Times are wall ms from env.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "recsync/config.h"
#include "recsync/env.h"
#include "state/rows.h"

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
  // The peer's clock minus ours (NTP-style, from the last PING); valid when
  // clock_measured_ms != 0 (wall time of that measurement).
  double clock_offset_ms = 0;
  int64_t clock_measured_ms = 0;
  uint64_t conflicts = 0;  // offers the peer refused: other content under that identity
  uint64_t sent_bytes = 0, received_bytes = 0;
  uint64_t acked_files = 0, received_files = 0, failed_transfers = 0;
  std::optional<InFlight> in_flight;           // live lane
  std::optional<InFlight> backfill_in_flight;  // backfill lane
  QueueStats queue;                            // filled by Service::status() from the store
};

struct RefusedLink {
  std::string what;  // "<remote>: <why>", "" = none since start
  int64_t at_ms = 0;
};

class PeerBoard {
 public:
  PeerBoard(Env* env, const std::vector<PeerConfig>& peers);

  size_t size() const { return peers_.size(); }
  const PeerConfig& config(size_t i) const { return cfg_[i]; }
  // The index of the peer pinned with this fingerprint, or nullopt.
  std::optional<size_t> find_fingerprint(const std::string& fp) const;

  // connected_since is set on kConnected and cleared otherwise; a non-empty
  // err becomes last_error.
  void set_state(size_t i, PeerState s, const std::string& err = "");
  void clear_error(size_t i);
  // backfill: the lane (its own link; see peer/frame.h Lane).
  void add_sent(size_t i, bool backfill, uint64_t n);  // also the lane's in-flight transfer
  uint64_t sent_bytes(size_t i) const;
  void add_received(size_t i, uint64_t n);
  void begin_transfer(size_t i, bool backfill, const std::string& rel, uint64_t size);
  void transfer_read(size_t i, bool backfill, uint64_t read_bytes);
  void end_transfer(size_t i, bool backfill);
  void set_clock(size_t i, double offset_ms, double rtt_ms);
  void conflict(size_t i);
  void acked(size_t i);
  void received_file(size_t i);
  void failed(size_t i, const std::string& why);
  void set_rtt(size_t i, double ms);
  void refused_link(const std::string& what);

  std::vector<PeerStatus> peers() const;
  RefusedLink last_refused() const;

 private:
  Env* env_;
  std::vector<PeerConfig> cfg_;
  mutable std::mutex mu_;
  std::vector<PeerStatus> peers_;
  RefusedLink refused_;
};

}  // namespace recsync::replication
