#pragma once
// Backfill jobs (SPEC 4.6): `recsync backfill` starts one, or attaches to the
// one running. A job names the peers to compare with; the backfill-lane
// sender of each peer plans it (BackfillClient::plan) and then requests the
// pulls, while the pushes go out on that lane from the queue. A job ends
// "done" when every peer is planned (or unreachable: not connected within
// kUnreachableAfter of the start, or its planning failed) and every item is
// done or gone; a dry run ends once every peer is planned. The state is in
// the store (state/backfill_table.h): a job survives restarts of either node
// and continues by itself.
//
// Threads: any; the running job is cached under a lock.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "replication/backfill_client.h"
#include "replication/link.h"

namespace recsync::replication {

struct BackfillStart {
  bool dry_run = false;
  std::vector<std::string> peers;  // empty: every configured peer
  int64_t window_start_ms = 0;     // recordings older (and not held) are never moved
};

struct BackfillView {
  std::optional<BackfillJob> job;  // the newest job; nullopt: none ever
  std::vector<BackfillPeer> peers;
  BackfillProgress progress;
};

class BackfillJobs {
 public:
  static constexpr std::chrono::seconds kUnreachableAfter{60};

  explicit BackfillJobs(LinkContext& ctx) : ctx_(ctx) {}

  // The running job's id, or a new job's; kInvalid for a peer not configured.
  Result<int64_t> start(const BackfillStart& s);

  struct Work {
    int64_t job = 0;
    bool plan = false;  // the peer is still to be planned
    bool dry_run = false;
    int64_t window_start_ms = 0;
  };
  // What the backfill lane of `peer` has to do for the running job.
  std::optional<Work> work_for(const std::string& peer);
  // The planning of `peer` ended (an error on the link leaves it to plan
  // again after the reconnect; a refused or corrupt exchange fails it).
  void planned(int64_t job, const std::string& peer, const Result<BackfillPlanResult>& r);
  // Every second: peers that stay unreachable, and the end of the job.
  void tick();
  Result<BackfillView> view();

 private:
  Status load_running();
  void finish_if_complete(const BackfillJob& job);

  LinkContext& ctx_;
  std::mutex mu_;
  bool loaded_ = false;
  std::optional<BackfillJob> running_;
};

}  // namespace recsync::replication
