#pragma once
// Holds (table `holds`) and the durable queue that copies hold changes to
// the peers (table `hold_queue`, SPEC 4.4: a hold is copied to the peer so
// both copies are kept).
//
// add()/release() change the hold and, in the same transaction, queue the
// change for every peer the replication queue knows, then ring its doorbell
// (the senders send hold changes before files). add_copied()/
// release_copied() store a change that came from a peer: never queued back.
//
// Thread safety: any thread; every call takes the Db lock.
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "state/db.h"
#include "state/repl_queue.h"
#include "state/rows.h"

namespace recsync {

// The holds in force as a set: a recording is held when an identity hold
// names it (origin, origin path, hash; origins as stored) or a name hold's
// target is its path, origin path or recording id. Immutable after
// construction; pure.
class HoldSet {
 public:
  HoldSet() = default;
  explicit HoldSet(const std::vector<HoldRow>& holds);
  bool held(const RecordingRow& r) const;
  size_t size() const { return identities_.size() + targets_.size(); }

 private:
  std::unordered_set<std::string> identities_, targets_;
};

class Holds {
 public:
  // db and queue must outlive this.
  Holds(Db* db, ReplQueue* queue) : db_(db), queue_(queue) {}

  // Adds (or replaces, by key) each hold and queues it for the peers, in one
  // transaction.
  Status add(const std::vector<HoldRow>& holds);
  Status add(const HoldRow& h) { return add(std::vector<HoldRow>{h}); }
  // Releases every hold whose key or target is `what` (each release queued
  // for the peers); how many there were.
  Result<size_t> release(const std::string& what);
  // The same for a change copied from a peer (not queued).
  Status add_copied(const HoldRow& h);
  Result<size_t> release_copied(const std::string& what);

  // Queues h (held here) to be copied to one peer (backfill: the peer
  // lacks it).
  Status copy_to(const std::string& peer, const HoldRow& h);

  // The oldest hold change not yet acked by `peer`; op_done removes it.
  Result<std::optional<HoldOp>> next_op(const std::string& peer);
  Status op_done(int64_t seq);
  // All holds, ordered by target (then key).
  Result<std::vector<HoldRow>> list();

 private:
  Status add_locked(const Db::Lock& l, const HoldRow& h);
  // Deletes the holds whose key or target is `what`; returns them.
  Result<std::vector<HoldRow>> release_locked(const Db::Lock& l, const std::string& what);
  Status queue_op_locked(const Db::Lock& l, const std::vector<std::string>& peers, int op,
                         const HoldRow& h);

  Db* db_;
  ReplQueue* queue_;
};

}  // namespace recsync
