#include "backfill/merge.h"

#include <cstring>
#include <string>

namespace recsync::backfill {

const char* decision_name(Decision d) {
  switch (d) {
    case Decision::kInSync:
      return "in_sync";
    case Decision::kInSyncUnverified:
      return "in_sync_unverified";
    case Decision::kConflict:
      return "conflict";
    case Decision::kPull:
      return "pull";
    case Decision::kPush:
      return "push";
    case Decision::kSkipTombstoned:
      return "skip_tombstoned";
    case Decision::kSkipPastRetention:
      return "skip_past_retention";
    case Decision::kSkipPlanned:
      return "skip_planned";
  }
  return "unknown";
}

void PlanSummary::add(const MergeItem& item) {
  Tally& t = by_decision[static_cast<size_t>(item.decision)];
  ++t.files;
  t.bytes += item.subject().size;
}

void PlanSummary::add_equal_range(const RangeDigest& d) {
  ++ranges_equal;
  files_equal += d.count;
}

PlanSummary& PlanSummary::operator+=(const PlanSummary& o) {
  for (size_t i = 0; i < kDecisionCount; ++i) {
    by_decision[i].files += o.by_decision[i].files;
    by_decision[i].bytes += o.by_decision[i].bytes;
  }
  ranges_equal += o.ranges_equal;
  files_equal += o.files_equal;
  ranges_listed += o.ranges_listed;
  return *this;
}

Result<bool> VectorSource::next(ManifestEntry* e) {
  if (i_ == v_.size()) return false;
  *e = v_[i_++];
  return true;
}

// ------------------------------------------------------------- Merger

Merger::Merger(MergeOptions opt, OnItem on_item)
    : opt_(std::move(opt)), on_item_(std::move(on_item)) {}

bool Merger::wants(Side s) const {
  const Slot& x = slot(s);
  return error_.is_ok() && !x.head && !x.ended;
}

std::optional<Side> Merger::need() const {
  if (wants(Side::kLocal)) return Side::kLocal;
  if (wants(Side::kPeer)) return Side::kPeer;
  return std::nullopt;
}

bool Merger::done() const {
  return error_.is_ok() && local_.ended && peer_.ended && !local_.head && !peer_.head;
}

Status Merger::push(Side s, ManifestEntry e) {
  if (!error_.is_ok()) return error_;
  Slot& x = slot(s);
  const char* side = s == Side::kLocal ? "local" : "peer";
  if (x.ended || x.head)
    return error_ = Status::invalid(std::string("merge: push to the ") + side + " side, which " +
                                    (x.ended ? "has ended" : "holds an entry already"));
  if (x.any) {
    int c = compare_key(e, x.prev);
    if (c <= 0)
      return error_ = Status::corrupt(
                 std::string("merge: ") + side + " manifest " +
                 (c == 0 ? "repeats " : "out of order: ") + describe_key(e.path, e.origin) +
                 (c == 0 ? "" : " after " + describe_key(x.prev.path, x.prev.origin)));
  }
  x.head = std::move(e);
  return error_ = drain();
}

Status Merger::end(Side s) {
  if (!error_.is_ok()) return error_;
  Slot& x = slot(s);
  if (x.ended) return error_ = Status::invalid("merge: a side ended twice");
  x.ended = true;
  return error_ = drain();
}

// Decides every key that both sides' state allows: the smaller head when
// each side has a head or has ended.
Status Merger::drain() {
  while ((local_.head || local_.ended) && (peer_.head || peer_.ended) &&
         (local_.head || peer_.head)) {
    int c = !local_.head ? 1 : !peer_.head ? -1 : compare_key(*local_.head, *peer_.head);
    const bool take_local = c <= 0, take_peer = c >= 0;
    RECSYNC_RETURN_IF_ERROR(
        emit(take_local ? &*local_.head : nullptr, take_peer ? &*peer_.head : nullptr));
    for (Slot* x : {take_local ? &local_ : nullptr, take_peer ? &peer_ : nullptr}) {
      if (!x) continue;
      x->prev = std::move(*x->head);
      x->head.reset();
      x->any = true;
    }
  }
  return Status::ok();
}

Status Merger::emit(const ManifestEntry* l, const ManifestEntry* p) {
  MergeItem item;
  item.local = l;
  item.peer = p;
  item.decision = l && p ? decide_both(*l, *p) : l ? decide_local_only(*l) : decide_peer_only(*p);
  summary_.add(item);
  return on_item_ ? on_item_(item) : Status::ok();
}

Decision Merger::decide_both(const ManifestEntry& l, const ManifestEntry& p) const {
  if (l.size != p.size) return Decision::kConflict;
  if (l.has_hash && p.has_hash)
    return std::memcmp(l.hash, p.hash, kHashLen) == 0 ? Decision::kInSync : Decision::kConflict;
  return Decision::kInSyncUnverified;
}

Decision Merger::decide_peer_only(const ManifestEntry& p) const {
  if (opt_.tombstoned && opt_.tombstoned(p)) return Decision::kSkipTombstoned;
  if (p.rec_time_ms < opt_.window_start_ms && !p.held) return Decision::kSkipPastRetention;
  if (opt_.already_planned && opt_.already_planned(p)) return Decision::kSkipPlanned;
  return Decision::kPull;
}

Decision Merger::decide_local_only(const ManifestEntry& l) const {
  if (opt_.tombstoned && opt_.tombstoned(l)) return Decision::kSkipTombstoned;
  if (l.rec_time_ms < opt_.window_start_ms && !l.held) return Decision::kSkipPastRetention;
  return Decision::kPush;
}

// ------------------------------------------------------------- drivers

Status Merger::pull_local(EntrySource& local) {
  ManifestEntry e;
  while (wants(Side::kLocal)) {
    Result<bool> got = local.next(&e);
    if (!got) return error_ = got.status();
    RECSYNC_RETURN_IF_ERROR(*got ? push(Side::kLocal, std::move(e)) : end(Side::kLocal));
  }
  return error_;
}

Status Merger::feed_peer(std::span<const ManifestEntry> entries, EntrySource& local) {
  for (const ManifestEntry& e : entries) {
    RECSYNC_RETURN_IF_ERROR(pull_local(local));
    RECSYNC_RETURN_IF_ERROR(push(Side::kPeer, e));
  }
  return error_;
}

Status Merger::finish_peer(EntrySource& local) {
  RECSYNC_RETURN_IF_ERROR(pull_local(local));
  RECSYNC_RETURN_IF_ERROR(end(Side::kPeer));
  return pull_local(local);
}

Status merge_sources(EntrySource& local, EntrySource& peer, Merger& m) {
  ManifestEntry e;
  while (auto side = m.need()) {
    EntrySource& src = *side == Side::kLocal ? local : peer;
    Result<bool> got = src.next(&e);
    if (!got) return got.status();
    RECSYNC_RETURN_IF_ERROR(*got ? m.push(*side, std::move(e)) : m.end(*side));
  }
  return m.status();
}

}  // namespace recsync::backfill
