#pragma once
// Repairs asked for by the scrubber (scrub/scrubber.h): recordings whose copy
// here was proven bad (hash or size mismatch, missing, unreadable) and moved
// aside, to be pulled again from a peer through the backfill path. The
// backfill-lane sender of each peer takes the wanted identities
// (take()), sends one PULL for them (BackfillClient::pull_refs) and reports
// the peer's answers (answered()); the peer queues the recording for this
// node at backfill priority, under the one governor, and the receiver
// verifies it against the hash asked for before publishing it (whole-file
// hash, then rename without replacing): a bad copy there is never published.
//
// A request is sent to every peer once; request() again (the scrubber does,
// every few minutes while the repair is open) sends it again. Nothing here is
// durable: the scrubber keeps its open repairs in the state database and asks
// again after a restart.
//
// Thread safety: any thread.
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace recsync::replication {

struct RepairRef {
  std::string origin_rel;  // the identity: origin path, origin (a node name), hash
  std::string origin;
  std::string hash;
  uint64_t size = 0;
  std::string key() const { return origin + "\n" + origin_rel + "\n" + hash; }
};

class RepairRequests {
 public:
  // The peers requests go to (the service's configured peers).
  void set_peers(std::vector<std::string> peers);
  // Asks every peer for r (again).
  void request(const RepairRef& r);
  // Forgets r (repaired, or given up).
  void drop(const RepairRef& r);
  // Up to max refs to ask `peer` for now; they count as sent.
  std::vector<RepairRef> take(const std::string& peer, size_t max);
  // The peer's answer to a PULL of r: "queued", "not here", "erased",
  // "conflict" (its copy has another hash).
  void answered(const std::string& peer, const RepairRef& r, const std::string& result);
  // Every answer so far for r, by peer.
  std::map<std::string, std::string> answers(const RepairRef& r) const;
  // Requests waiting to be sent, over all peers.
  size_t waiting() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> peers_;
  std::map<std::string, std::map<std::string, RepairRef>> todo_;       // peer -> key -> ref
  std::map<std::string, std::map<std::string, std::string>> answers_;  // key -> peer -> result
};

}  // namespace recsync::replication
