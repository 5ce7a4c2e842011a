#pragma once
// The durable plan and progress of backfill (SPEC 4.6; tables backfill_jobs,
// backfill_peers, backfill_items). A job compares this node's archive with
// each reachable peer's (backfill/), records every decision to move a
// recording as an item, and moves them:
//   pull (dir 1)  the peer has it, this node does not: requested with PULL,
//                 done when the recording arrives (arrived()), gone when the
//                 peer answers it is not there (any more), erased or a
//                 conflict;
//   push (dir 2)  this node has it, the peer does not: queued for the peer at
//                 backfill priority in the same transaction, done when the
//                 peer acks it (pushed()).
// Item states: 0 planned, 1 requested/queued, 2 done, 3 gone.
// Everything survives a crash: a job left running continues after a
// restart (requested pulls are asked for again; the peer's queue is durable).
//
// Thread safety: any thread; every call takes the Db lock.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "state/db.h"
#include "state/repl_queue.h"
#include "state/rows.h"

namespace recsync {

struct BackfillJob {
  int64_t id = 0;
  std::string state;  // "running", "done", "failed"
  bool dry_run = false;
  int64_t window_start_ms = 0, created_ms = 0, finished_ms = 0;
  std::string error;
};

struct BackfillPeer {
  std::string peer;
  // "pending" (to plan), "planned", "unreachable", "failed"
  std::string state;
  std::string summary;  // the plan's counts, JSON text
  std::string error;
};

struct BackfillItem {
  enum Dir { kPull = 1, kPush = 2 };
  enum State { kPlanned = 0, kRequested = 1, kDone = 2, kGone = 3 };
  std::string origin_rel, origin;  // origin as stored ("local" = this node)
  int dir = kPull;
  int64_t job = 0;
  std::string peer;
  std::string rel;  // push: where the file is here
  std::string hash;
  uint64_t size = 0;
  int state = kPlanned;
};

struct BackfillCount {
  uint64_t files = 0, bytes = 0;
};
// Per direction: all items, and those done or gone.
struct BackfillProgress {
  BackfillCount pull_total, pull_done, pull_gone, push_total, push_done, push_gone;
};

class BackfillTable {
 public:
  BackfillTable(Db* db, ReplQueue* queue) : db_(db), queue_(queue) {}

  // A new job planning every peer in `peers`; its id.
  Result<int64_t> create_job(bool dry_run, int64_t window_start_ms, int64_t now_ms,
                             const std::vector<std::string>& peers);
  // The newest job (any state), or nullopt.
  Result<std::optional<BackfillJob>> latest_job();
  Result<std::optional<BackfillJob>> running_job();
  Status finish_job(int64_t job, const std::string& state, const std::string& error,
                    int64_t now_ms);
  Result<std::vector<BackfillPeer>> peers(int64_t job);
  Status set_peer(int64_t job, const BackfillPeer& p);

  // Plan rows; each in one transaction. Pushes are queued for the peer at
  // ReplQueue::kBackfillPrio (their RecordingRow gives rel, size, hash, time).
  Status add_pulls(int64_t job, const std::string& peer, const std::vector<BackfillItem>& items);
  Status add_pushes(int64_t job, const std::string& peer, const std::vector<RecordingRow>& rows);
  // A pull of this identity is planned in this job already (from any peer).
  Result<bool> pull_planned(int64_t job, const std::string& origin_rel, const std::string& origin);

  // Pull items of (job, peer) in state `state` after the key (origin_rel,
  // origin), at most limit, in key order.
  Result<std::vector<BackfillItem>> pulls(int64_t job, const std::string& peer, int state,
                                          const std::string& after_rel,
                                          const std::string& after_origin, size_t limit);
  Status set_state(const std::vector<BackfillItem>& items, int state);
  // A recording arrived / was acked: its pull / push items are done.
  Status arrived(const std::string& origin_rel, const std::string& origin);
  Status pushed(const std::string& peer, const std::string& origin_rel, const std::string& origin);

  Result<BackfillProgress> progress(int64_t job);

 private:
  Db* db_;
  ReplQueue* queue_;
};

}  // namespace recsync
