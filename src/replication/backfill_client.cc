#include "replication/backfill_client.h"

#include <map>

#include "backfill/messages.h"
#include "backfill/ranges.h"
#include "backfill/stream.h"
#include "replication/backfill_server.h"
#include "replication/wire.h"
#include "retention/plan.h"

namespace recsync::replication {

using backfill::ManifestEntry;
using backfill::MergeItem;
using peer::FrameType;

namespace {

constexpr size_t kPage = 512;
constexpr size_t kFlush = 1000;  // plan rows per transaction
// A listed range is listed in pieces of about this many entries: each page
// of a listing reads its whole piece (identity order is not an index), so a
// day listed whole at 36,000 recordings read the day 70 times over.
constexpr uint64_t kListRows = 256;
constexpr int64_t kFutureSlackMs = 2 * backfill::kDayMs;

// This node's list of a range, by identity, page by page.
class LocalSource : public backfill::EntrySource {
 public:
  LocalSource(LinkContext& ctx, const HoldSet& holds, backfill::TimeRange r, bool inside)
      : ctx_(ctx), holds_(holds), r_(r), inside_(inside) {}
  Result<bool> next(ManifestEntry* e) override {
    while (i_ == page_.size()) {
      if (end_) return false;
      auto p = ctx_.store->recordings().identity_page(r_.t0, r_.t1, ctx_.opt.node, after_path_,
                                                      after_origin_, kPage, inside_);
      if (!p) return p.status();
      page_ = std::move(p).value();
      i_ = 0;
      end_ = page_.size() < kPage;
      if (!page_.empty()) {
        after_path_ = page_.back().identity_rel();
        after_origin_ = page_.back().origin == kLocalOrigin ? ctx_.opt.node : page_.back().origin;
      }
    }
    *e = manifest_entry(page_[i_], ctx_.opt.node, holds_.held(page_[i_]));
    ++i_;
    return true;
  }

 private:
  LinkContext& ctx_;
  const HoldSet& holds_;
  const backfill::TimeRange r_;
  const bool inside_;
  std::vector<RecordingRow> page_;
  size_t i_ = 0;
  bool end_ = false;
  std::string after_path_, after_origin_;
};

// Records the merger's decisions in the job (or, in a dry run, nothing).
class PlanSink {
 public:
  PlanSink(LinkContext& ctx, int64_t job, std::string peer, bool dry)
      : ctx_(ctx), job_(job), peer_(std::move(peer)), dry_(dry) {}
  std::string stored(const std::string& node) const {
    return node == ctx_.opt.node ? kLocalOrigin : node;
  }
  Status on_item(const MergeItem& it) {
    switch (it.decision) {
      case backfill::Decision::kPull: {
        if (dry_) return Status::ok();
        const ManifestEntry& e = *it.peer;
        pulls_.push_back({e.path, stored(e.origin), BackfillItem::kPull, job_, peer_, "",
                          backfill::hash_to_text(e.has_hash, e.hash), e.size,
                          BackfillItem::kPlanned});
        return pulls_.size() >= kFlush ? flush() : Status::ok();
      }
      case backfill::Decision::kPush:
        if (dry_) return Status::ok();
        pushes_.emplace_back(it.local->path, stored(it.local->origin));
        return pushes_.size() >= kFlush ? flush() : Status::ok();
      case backfill::Decision::kConflict:
        if (conflicts_++ < 20)
          ctx_.lg->error(
              "backfill with {}: conflict at {}: the copies differ (here {} bytes, "
              "there {} bytes); neither is replaced",
              peer_, backfill::describe_key(it.local->path, it.local->origin), it.local->size,
              it.peer->size);
        return Status::ok();
      default:
        return Status::ok();
    }
  }
  Status flush() {
    RECSYNC_RETURN_IF_ERROR(ctx_.store->backfill().add_pulls(job_, peer_, pulls_));
    pulls_.clear();
    std::vector<RecordingRow> rows;
    for (auto& [path, origin] : pushes_) {
      auto r = ctx_.store->recordings().find_identity(path, origin);
      if (!r) return r.status();
      if (r->has_value() && !(*r)->hash.empty()) rows.push_back(std::move(**r));
    }
    pushes_.clear();
    return ctx_.store->backfill().add_pushes(job_, peer_, rows);
  }

 private:
  LinkContext& ctx_;
  const int64_t job_;
  const std::string peer_;
  const bool dry_;
  std::vector<BackfillItem> pulls_;
  std::vector<std::pair<std::string, std::string>> pushes_;
  uint64_t conflicts_ = 0;
};

}  // namespace

Result<peer::Frame> BackfillClient::recv_reply(FrameType want) {
  while (true) {
    auto fr = c_.recv(kReplyTimeout);
    if (!fr) return fr.status().with_context("backfill: waiting for the peer");
    if (fr->type == FrameType::kPong) continue;
    if (fr->type != want) return unexpected(*fr, "during backfill");
    return fr;
  }
}

Status BackfillClient::exchange_holds(bool dry_run, BackfillPlanResult& out) {
  const uint64_t id = next_id_++;
  RECSYNC_RETURN_IF_ERROR(send_msg(c_, FrameType::kHoldsReq, backfill::HoldsReqMsg{id}));
  backfill::HoldsStream stream(id, 1'000'000);
  std::map<std::string, HoldRow> theirs;
  backfill::HoldsMsg msg;
  while (!stream.done()) {
    auto fr = recv_reply(FrameType::kHolds);
    if (!fr) return fr.status();
    out.bytes_exchanged += fr->payload.size();
    RECSYNC_RETURN_IF_ERROR(stream.accept(fr->payload, &msg));
    for (const backfill::HoldEntry& e : msg.holds) {
      HoldRow h;
      h.origin = e.origin == ctx_.opt.node ? kLocalOrigin : e.origin;
      h.origin_rel = e.path;
      h.hash = backfill::hash_to_text(e.has_hash, e.hash);
      if (h.hash.empty()) continue;
      h.target = e.path;
      h.reason = e.reason;
      h.created_ms = e.created_ms;
      theirs.emplace(h.key(), std::move(h));
    }
  }
  auto ours = ctx_.store->holds().list();
  if (!ours) return ours.status();
  std::map<std::string, const HoldRow*> mine;
  for (const HoldRow& h : *ours)
    if (h.is_identity()) mine.emplace(h.key(), &h);
  for (auto& [key, h] : theirs) {
    if (mine.count(key)) continue;
    out.holds_received++;
    if (dry_run) continue;
    h.reason += " (copied from " + peer_ + " by backfill)";
    RECSYNC_RETURN_IF_ERROR(ctx_.store->holds().add_copied(h));
  }
  for (auto& [key, h] : mine) {
    if (theirs.count(key)) continue;
    out.holds_sent++;
    if (!dry_run) RECSYNC_RETURN_IF_ERROR(ctx_.store->holds().copy_to(peer_, *h));
  }
  return Status::ok();
}

Result<std::vector<backfill::RangeDigest>> BackfillClient::peer_digests(
    const std::vector<backfill::TimeRange>& ranges, BackfillPlanResult& out) {
  std::vector<backfill::RangeDigest> all;
  for (size_t i = 0; i < ranges.size(); i += backfill::kMaxRanges) {
    backfill::DigestReqMsg req{next_id_++, {}};
    req.ranges.assign(ranges.begin() + i,
                      ranges.begin() + std::min(ranges.size(), i + backfill::kMaxRanges));
    RECSYNC_RETURN_IF_ERROR(send_msg(c_, FrameType::kDigestReq, req));
    auto fr = recv_reply(FrameType::kDigestRep);
    if (!fr) return fr.status();
    out.bytes_exchanged += fr->payload.size();
    backfill::DigestRepMsg rep;
    RECSYNC_RETURN_IF_ERROR(backfill::decode(fr->payload, &rep));
    if (rep.id != req.id || rep.digests.size() != req.ranges.size())
      return Status::corrupt("backfill: DIGEST_REP does not answer the request");
    all.insert(all.end(), rep.digests.begin(), rep.digests.end());
  }
  return all;
}

Result<std::vector<backfill::RangeDigest>> BackfillClient::local_digests(
    const std::vector<backfill::TimeRange>& ranges) {
  auto dg = backfill::RangeDigester::make(ranges);
  if (!dg) return dg.status();
  const backfill::TimeRange span = dg->span();
  RECSYNC_RETURN_IF_ERROR(ctx_.store->recordings().for_each_digest_input(
      span.t0, span.t1,
      [&](std::string_view path, std::string_view hash, uint64_t size, int64_t t) {
        dg->add(t, row_digest(path, hash, size));
      }));
  return dg->digests();
}

Status BackfillClient::list_and_merge(const backfill::ListReqMsg& req, backfill::Merger& m,
                                      BackfillPlanResult& out) {
  RECSYNC_RETURN_IF_ERROR(send_msg(c_, FrameType::kListReq, req));
  auto holds = ctx_.store->holds().list();
  if (!holds) return holds.status();
  const HoldSet hs(*holds);
  const bool inside = req.kind == backfill::ListKind::kRange;
  LocalSource local(ctx_, hs, req.range, inside);
  backfill::ManifestStream stream(req);
  backfill::ManifestMsg msg;
  while (!stream.done()) {
    auto fr = recv_reply(FrameType::kManifest);
    if (!fr) return fr.status();
    out.bytes_exchanged += fr->payload.size();
    RECSYNC_RETURN_IF_ERROR(stream.accept(fr->payload, &msg));
    RECSYNC_RETURN_IF_ERROR(m.feed_peer(msg.entries, local));
  }
  return m.finish_peer(local);
}

Result<BackfillPlanResult> BackfillClient::plan(int64_t job, bool dry_run,
                                                int64_t window_start_ms) {
  BackfillPlanResult out;
  RECSYNC_RETURN_IF_ERROR(exchange_holds(dry_run, out));
  PlanSink sink(ctx_, job, peer_, dry_run);
  backfill::MergeOptions mo;
  mo.window_start_ms = window_start_ms;
  if (auto t = ctx_.store->tombstones().list(); t && !t->empty())
    mo.tombstoned = [this](const ManifestEntry& e) {
      auto c = ctx_.store->tombstones().contains(
          e.path, e.origin == ctx_.opt.node ? kLocalOrigin : e.origin);
      return c && *c;
    };
  auto peers = ctx_.store->backfill().peers(job);
  if (peers && peers->size() > 1)
    mo.already_planned = [this, job](const ManifestEntry& e) {
      auto p = ctx_.store->backfill().pull_planned(
          job, e.path, e.origin == ctx_.opt.node ? kLocalOrigin : e.origin);
      return p && *p;
    };
  auto on_item = [&](const MergeItem& it) { return sink.on_item(it); };
  const int64_t far = ctx_.now_ms() + kFutureSlackMs;
  std::vector<backfill::TimeRange> ranges = backfill::day_ranges({window_start_ms, far});
  ranges.push_back({far, INT64_MAX});
  const backfill::RangePlanOptions ro;
  while (!ranges.empty()) {
    auto theirs = peer_digests(ranges, out);
    if (!theirs) return theirs.status();
    auto mine = local_digests(ranges);
    if (!mine) return mine.status();
    auto steps = backfill::plan_ranges(ranges, *mine, *theirs, ro);
    if (!steps) return steps.status();
    for (backfill::RangeStep& st : *steps) {
      if (st.action == backfill::RangeAction::kEqual) out.summary.add_equal_range(st.peer);
      // One side empty: nothing to narrow down, list it whole.
      if (st.action == backfill::RangeAction::kSplit && (st.local.count == 0 || st.peer.count == 0))
        st.action = backfill::RangeAction::kList;
      if (st.action != backfill::RangeAction::kList) continue;
      for (const backfill::TimeRange& piece : backfill::list_pieces(st, kListRows)) {
        backfill::Merger m(mo, on_item);
        RECSYNC_RETURN_IF_ERROR(
            list_and_merge({next_id_++, backfill::ListKind::kRange, piece}, m, out));
        out.summary += m.summary();
        out.summary.ranges_listed++;
      }
    }
    ranges = backfill::next_round(*steps, ro);
  }
  backfill::Merger held(mo, on_item);
  RECSYNC_RETURN_IF_ERROR(list_and_merge(
      {next_id_++, backfill::ListKind::kHeld, {window_start_ms, INT64_MAX}}, held, out));
  out.summary += held.summary();
  RECSYNC_RETURN_IF_ERROR(sink.flush());
  return out;
}

Status BackfillClient::send_pull_batch(std::vector<BackfillItem>& items) {
  std::vector<RepairRef> refs;
  refs.reserve(items.size());
  for (const BackfillItem& it : items)
    refs.push_back(
        {it.origin_rel, it.origin == kLocalOrigin ? ctx_.opt.node : it.origin, it.hash, it.size});
  auto results = pull_refs(refs);
  if (!results) return results.status().with_context("backfill");
  std::vector<BackfillItem> queued, gone;
  for (size_t i = 0; i < items.size(); ++i)
    ((*results)[i] == backfill::PullResult::kQueued ? queued : gone).push_back(items[i]);
  RECSYNC_RETURN_IF_ERROR(ctx_.store->backfill().set_state(queued, BackfillItem::kRequested));
  if (!gone.empty())
    ctx_.lg->warn("backfill: peer {} no longer has {} of the recordings asked for (first: {})",
                  peer_, gone.size(), gone.front().origin_rel);
  return ctx_.store->backfill().set_state(gone, BackfillItem::kGone);
}

Result<std::vector<backfill::PullResult>> BackfillClient::pull_refs(
    const std::vector<RepairRef>& refs) {
  backfill::PullMsg req{next_id_++, {}};
  for (const RepairRef& r : refs) {
    backfill::RecordingRef ref;
    ref.path = r.origin_rel;
    ref.origin = r.origin;
    ref.size = r.size;
    if (!backfill::hash_from_text(r.hash, &ref.has_hash, ref.hash)) ref.has_hash = false;
    req.recordings.push_back(std::move(ref));
  }
  RECSYNC_RETURN_IF_ERROR(send_msg(c_, FrameType::kPull, req));
  auto fr = recv_reply(FrameType::kPullRep);
  if (!fr) return fr.status();
  backfill::PullRepMsg rep;
  RECSYNC_RETURN_IF_ERROR(backfill::decode(fr->payload, &rep));
  if (rep.id != req.id || rep.results.size() != refs.size())
    return Status::corrupt("PULL_REP does not answer the PULL");
  return rep.results;
}

Status BackfillClient::pull(int64_t job, bool again) {
  for (int state : {BackfillItem::kPlanned, BackfillItem::kRequested}) {
    if (state == BackfillItem::kRequested && !again) break;
    std::string after_rel, after_origin;
    while (!ctx_.stop.stopped()) {
      auto items = ctx_.store->backfill().pulls(job, peer_, state, after_rel, after_origin,
                                                backfill::kMaxEntriesPerFrame / 2);
      if (!items) return items.status();
      if (items->empty()) break;
      after_rel = items->back().origin_rel;
      after_origin = items->back().origin;
      RECSYNC_RETURN_IF_ERROR(send_pull_batch(*items));
    }
  }
  return Status::ok();
}

Status pull_repairs(LinkContext& ctx, peer::Connection& c, const std::string& peer,
                    uint64_t& next_id, bool& worked) {
  if (!ctx.repairs) return Status::ok();
  auto refs = ctx.repairs->take(peer, backfill::kMaxEntriesPerFrame / 2);
  if (refs.empty()) return Status::ok();
  worked = true;
  BackfillClient bc(ctx, c, peer, next_id);
  auto r = bc.pull_refs(refs);
  if (!r) return r.status().with_context("repair PULL");
  static constexpr const char* kNames[] = {"queued", "not here", "erased", "conflict"};
  for (size_t i = 0; i < refs.size(); ++i) {
    const auto k = static_cast<size_t>((*r)[i]);
    ctx.repairs->answered(peer, refs[i], k < 4 ? kNames[k] : "unknown");
  }
  ctx.lg->info("repair: asked peer {} for {} recordings (first: {}: {})", peer, refs.size(),
               refs.front().origin_rel,
               kNames[std::min<size_t>(static_cast<size_t>(r->front()), 3)]);
  return Status::ok();
}

}  // namespace recsync::replication
