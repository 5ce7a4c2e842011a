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
#include <optional>
#include <string>
#include <vector>

#include "state/db.h"
#include "state/repl_queue.h"
#include "state/rows.h"

namespace recsync {

class Holds {
 public:
  // db and queue must outlive this.
  Holds(Db* db, ReplQueue* queue) : db_(db), queue_(queue) {}

  // Adds or replaces the hold on h.target, queued for the peers.
  Status add(const HoldRow& h);
  // True when a hold on target existed and is now gone (then queued for the
  // peers).
  Result<bool> release(const std::string& target);
  // The same for a change copied from a peer (not queued).
  Status add_copied(const HoldRow& h);
  Result<bool> release_copied(const std::string& target);

  // The oldest hold change not yet acked by `peer`; op_done removes it.
  Result<std::optional<HoldOp>> next_op(const std::string& peer);
  Status op_done(int64_t seq);
  // All holds, ordered by target.
  Result<std::vector<HoldRow>> list();

 private:
  Status add_locked(const Db::Lock& l, const HoldRow& h);
  Result<bool> release_locked(const Db::Lock& l, const std::string& target);
  Status queue_op_locked(const Db::Lock& l, const std::vector<std::string>& peers, int op,
                         const HoldRow& h);

  Db* db_;
  ReplQueue* queue_;
};

}  // namespace recsync
