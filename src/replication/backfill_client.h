#pragma once
// The initiating side of backfill (SPEC 4.6), run by the backfill-lane
// sender of one peer while a backfill job is running (backfill_jobs.h):
//
// plan():  1. holds: HOLDS_REQ; identity holds the peer has and this node
//             lacks are added here (a rebuilt node gets its holds back);
//             those only this node has are queued to be copied to the peer.
//          2. ranges: one per UTC day of the window (and one beyond it for
//             recordings dated in the future); DIGEST_REQ for each round's
//             ranges, compared with this node's own digests
//             (backfill/ranges.h); equal ranges are done, a range where
//             either side is empty or small is listed (LIST_REQ, merged
//             with this node's list by backfill::Merger), the rest split.
//          3. held recordings outside the window: LIST_REQ{kHeld}, merged.
//          Each decision is recorded in the job (state/backfill_table.h):
//          pulls planned, pushes queued for the peer at backfill priority;
//          conflicts are counted and logged, never overwritten. A dry run
//          records nothing and only counts.
// pull():  sends PULL for planned pulls (and, after a reconnect or every few
//          minutes, for those still awaited: the peer may have lost its
//          queue or pruned the file), and records each PULL_REP result.
//
// Memory: one manifest frame, one page of this node's list and one round's
// ranges, whatever the window's size.
//
// Threads: the backfill-lane sender's; it owns the connection meanwhile.
#include <cstdint>
#include <string>

#include "backfill/merge.h"
#include "backfill/messages.h"
#include "peer/connection.h"
#include "replication/link.h"
#include "replication/repair_requests.h"

namespace recsync::replication {

struct BackfillPlanResult {
  backfill::PlanSummary summary;
  uint64_t holds_received = 0, holds_sent = 0;
  uint64_t bytes_exchanged = 0;  // manifest and digest bytes received
};

class BackfillClient {
 public:
  BackfillClient(LinkContext& ctx, peer::Connection& c, std::string peer, uint64_t& next_id)
      : ctx_(ctx), c_(c), peer_(std::move(peer)), next_id_(next_id) {}

  Result<BackfillPlanResult> plan(int64_t job, bool dry_run, int64_t window_start_ms);
  // again: also the pulls already requested (after a reconnect).
  Status pull(int64_t job, bool again);
  // One PULL for refs (at most backfill::kMaxEntriesPerFrame / 2), the
  // peer's answer for each, in order: backfill's pulls and scrub repairs
  // (repair_requests.h).
  Result<std::vector<backfill::PullResult>> pull_refs(const std::vector<RepairRef>& refs);

 private:
  Status exchange_holds(bool dry_run, BackfillPlanResult& out);
  Result<std::vector<backfill::RangeDigest>> peer_digests(
      const std::vector<backfill::TimeRange>& ranges, BackfillPlanResult& out);
  Result<std::vector<backfill::RangeDigest>> local_digests(
      const std::vector<backfill::TimeRange>& ranges);
  Status list_and_merge(const backfill::ListReqMsg& req, backfill::Merger& m,
                        BackfillPlanResult& out);
  Result<peer::Frame> recv_reply(peer::FrameType want);
  Status send_pull_batch(std::vector<BackfillItem>& items);

  LinkContext& ctx_;
  peer::Connection& c_;
  const std::string peer_;
  uint64_t& next_id_;
};

// The backfill lane's share of scrub repairs: sends the PULL for what
// ctx.repairs holds for `peer`, if anything (worked = true then), and
// records the answers. An error is the link's; the refs taken are asked for
// again when the scrubber repeats its request.
Status pull_repairs(LinkContext& ctx, peer::Connection& c, const std::string& peer,
                    uint64_t& next_id, bool& worked);

}  // namespace recsync::replication
