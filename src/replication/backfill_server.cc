#include "replication/backfill_server.h"

#include <algorithm>

#include "backfill/messages.h"
#include "backfill/ranges.h"
#include "recsync/publish.h"
#include "replication/wire.h"
#include "retention/plan.h"

namespace recsync::replication {

using backfill::ManifestEntry;
using peer::Connection;
using peer::FrameType;

namespace {

constexpr size_t kPage = 512;
// A MANIFEST / HOLDS frame is sent once it holds this many bytes of entries.
constexpr size_t kFrameBudget = peer::kMaxFramePayload - backfill::kMaxHoldLen - 64;

std::string stored_origin(const LinkContext& ctx, const std::string& node) {
  return node == ctx.opt.node ? kLocalOrigin : node;
}

Result<HoldSet> hold_set(LinkContext& ctx) {
  auto h = ctx.store->holds().list();
  if (!h) return h.status();
  return HoldSet(*h);
}

Status answer_digests(LinkContext& ctx, Connection& c, const peer::Frame& f) {
  backfill::DigestReqMsg req;
  RECSYNC_RETURN_IF_ERROR(backfill::decode(f.payload, &req));
  auto dg = backfill::RangeDigester::make(req.ranges);
  if (!dg) return dg.status();
  const backfill::TimeRange span = dg->span();
  RECSYNC_RETURN_IF_ERROR(ctx.store->recordings().for_each_digest_input(
      span.t0, span.t1,
      [&](std::string_view path, std::string_view hash, uint64_t size, int64_t t) {
        dg->add(t, row_digest(path, hash, size));
      }));
  backfill::DigestRepMsg rep{req.id, dg->digests()};
  return send_msg(c, FrameType::kDigestRep, rep);
}

Status answer_list(LinkContext& ctx, Connection& c, const peer::Frame& f) {
  backfill::ListReqMsg req;
  RECSYNC_RETURN_IF_ERROR(backfill::decode(f.payload, &req));
  auto holds = hold_set(ctx);
  if (!holds) return holds.status();
  const bool held_only = req.kind == backfill::ListKind::kHeld;
  backfill::ManifestMsg msg{req.id, false, {}};
  size_t bytes = 0;
  std::string after_path, after_origin;
  while (true) {
    auto page = ctx.store->recordings().identity_page(req.range.t0, req.range.t1, ctx.opt.node,
                                                      after_path, after_origin, kPage, !held_only);
    if (!page) return page.status();
    for (const RecordingRow& r : *page) {
      ManifestEntry e = manifest_entry(r, ctx.opt.node, holds->held(r));
      after_path = e.path;
      after_origin = e.origin;
      if (held_only && !e.held) continue;
      if (!backfill::validate_identity(e.path, e.origin)) continue;  // not listable: skip
      bytes += backfill::encoded_size(e);
      msg.entries.push_back(std::move(e));
      if (msg.entries.size() == backfill::kMaxEntriesPerFrame || bytes >= kFrameBudget) {
        RECSYNC_RETURN_IF_ERROR(send_msg(c, FrameType::kManifest, msg));
        msg.entries.clear();
        bytes = 0;
      }
    }
    if (page->size() < kPage) break;
  }
  msg.last = true;
  return send_msg(c, FrameType::kManifest, msg);
}

backfill::PullResult queue_pull(LinkContext& ctx, const std::string& peer,
                                const backfill::RecordingRef& ref) {
  const std::string origin = stored_origin(ctx, ref.origin);
  if (auto t = ctx.store->tombstones().contains(ref.path, origin); t && *t)
    return backfill::PullResult::kErased;
  auto row = ctx.store->recordings().find_identity(ref.path, origin);
  if (!row || !row->has_value()) return backfill::PullResult::kNotHere;
  RecordingRow& r = **row;
  if (r.hash.empty()) {
    // Adopted from an old archive and not hashed yet: an offer needs the
    // hash, so compute it now (and keep it).
    auto h = hash_file(ctx.env, path_join(ctx.opt.archive_root, r.rel));
    if (!h) return backfill::PullResult::kNotHere;
    r.hash = *h;
    if (!ctx.store->recordings().upsert(r)) return backfill::PullResult::kNotHere;
  }
  const std::string want = backfill::hash_to_text(ref.has_hash, ref.hash);
  if (!want.empty() && want != r.hash) return backfill::PullResult::kConflict;
  Db::Lock l(ctx.store->db());
  Status s = ctx.store->queue().enqueue_locked(l, r, {peer}, r.rec_time_ms * 1'000'000,
                                               ReplQueue::kBackfillPrio);
  return s ? backfill::PullResult::kQueued : backfill::PullResult::kNotHere;
}

Status answer_pull(LinkContext& ctx, Connection& c, const std::string& peer, const peer::Frame& f) {
  backfill::PullMsg req;
  RECSYNC_RETURN_IF_ERROR(backfill::decode(f.payload, &req));
  backfill::PullRepMsg rep{req.id, {}};
  size_t queued = 0;
  for (const auto& ref : req.recordings) {
    rep.results.push_back(queue_pull(ctx, peer, ref));
    queued += rep.results.back() == backfill::PullResult::kQueued;
  }
  if (queued) ctx.store->queue().doorbell().ring();
  ctx.lg->info("backfill: peer {} asked for {} recordings, {} queued", peer, req.recordings.size(),
               queued);
  return send_msg(c, FrameType::kPullRep, rep);
}

Status answer_holds(LinkContext& ctx, Connection& c, const peer::Frame& f) {
  backfill::HoldsReqMsg req;
  RECSYNC_RETURN_IF_ERROR(backfill::decode(f.payload, &req));
  auto rows = ctx.store->holds().list();
  if (!rows) return rows.status();
  std::vector<backfill::HoldEntry> holds;
  for (const HoldRow& h : *rows) {
    if (!h.is_identity()) continue;  // name holds are copied by HOLD only
    backfill::HoldEntry e;
    e.path = h.origin_rel;
    e.origin = h.origin == kLocalOrigin ? ctx.opt.node : h.origin;
    if (!backfill::hash_from_text(h.hash, &e.has_hash, e.hash)) continue;
    e.reason = h.reason.substr(0, backfill::kMaxHoldReasonLen);
    e.created_ms = h.created_ms;
    if (!backfill::validate_identity(e.path, e.origin)) continue;
    holds.push_back(std::move(e));
  }
  std::sort(holds.begin(), holds.end(),
            [](const auto& a, const auto& b) { return backfill::compare_key(a, b) < 0; });
  holds.erase(
      std::unique(holds.begin(), holds.end(),
                  [](const auto& a, const auto& b) { return backfill::compare_key(a, b) == 0; }),
      holds.end());
  backfill::HoldsMsg msg{req.id, false, {}};
  size_t bytes = 0;
  for (auto& h : holds) {
    bytes += backfill::encoded_size(h);
    msg.holds.push_back(std::move(h));
    if (msg.holds.size() == backfill::kMaxEntriesPerFrame || bytes >= kFrameBudget) {
      RECSYNC_RETURN_IF_ERROR(send_msg(c, FrameType::kHolds, msg));
      msg.holds.clear();
      bytes = 0;
    }
  }
  msg.last = true;
  return send_msg(c, FrameType::kHolds, msg);
}

}  // namespace

ManifestEntry manifest_entry(const RecordingRow& r, const std::string& self, bool held) {
  ManifestEntry e;
  e.path = r.identity_rel();
  e.origin = r.origin == kLocalOrigin ? self : r.origin;
  e.size = r.size;
  if (!backfill::hash_from_text(r.hash, &e.has_hash, e.hash)) e.has_hash = false;
  e.rec_time_ms = r.rec_time_ms;
  e.held = held;
  return e;
}

uint64_t row_digest(std::string_view path, std::string_view hash_text, uint64_t size) {
  uint8_t h[backfill::kHashLen] = {};
  bool has = false;
  if (!backfill::hash_from_text(hash_text, &has, h)) has = false;
  return backfill::entry_digest(path, has, h, size);
}

Status answer_backfill(LinkContext& ctx, Connection& c, const std::string& peer,
                       const peer::Frame& f) {
  switch (f.type) {
    case FrameType::kDigestReq:
      return answer_digests(ctx, c, f);
    case FrameType::kListReq:
      return answer_list(ctx, c, f);
    case FrameType::kPull:
      return answer_pull(ctx, c, peer, f);
    case FrameType::kHoldsReq:
      return answer_holds(ctx, c, f);
    default:
      return unexpected(f, "as a backfill request");
  }
}

Status backfill_arrived(LinkContext& ctx, const RecordingRow& row) {
  return ctx.store->backfill().arrived(row.identity_rel(), row.origin);
}

}  // namespace recsync::replication
