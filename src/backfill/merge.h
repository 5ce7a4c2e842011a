#pragma once
// The backfill diff as a streaming merge of two sorted manifests of one
// range: this node's ("local") and a peer's ("peer", from MANIFEST frames
// checked by ManifestStream). Pure: no I/O, no clock; the caller supplies
// the entries, the window start and two predicates, and receives one
// decision per key (path, origin) through a callback.
//
// Decisions, for each key:
//   on both sides
//     hashes known and equal (and sizes equal)      kInSync
//     a hash unknown on either side, sizes equal    kInSyncUnverified
//     anything else (hashes or sizes differ)        kConflict: never overwritten,
//                                                   only reported
//   only on the peer: kPull, unless (first match)
//     opt.tombstoned(e)                             kSkipTombstoned
//     rec_time < window_start and !e.held           kSkipPastRetention
//     opt.already_planned(e)                        kSkipPlanned ("lands once": pulled
//                                                   from another peer already)
//   only local: kPush, unless
//     opt.tombstoned(e)                             kSkipTombstoned
//     rec_time < window_start and !e.held           kSkipPastRetention
// "held" is the listed entry's flag: the listing node holds it. Holds are
// exchanged before manifests (HOLDS), so both nodes' flags agree by then.
//
// Inputs: each side strictly increasing by (path, origin) (entry.h). A side
// out of order (or repeating a key) is kCorrupt naming the side and keys,
// never a wrong plan. For a LIST_REQ{kHeld} merge, give as the local side
// every local recording outside the window, held or not: a recording the
// peer holds and this node has without a hold is then found in sync, and
// the unheld rest is skipped as past retention.
//
// Memory: the current entry of each side and the previous key of each side
// (for the order check), whatever the stream lengths.
//
// The identity includes the origin, but entry_digest() does not: after a
// state rebuild a node must fill in each recording's origin (for example
// from the peer's listing) before listing it, or the same file is seen as
// two keys (push of one, pull of the other; the receiver then finds it has
// the bytes already).
//
// Thread safety: none; a Merger belongs to one thread. Callbacks run on the
// calling thread, inside push()/end().
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "backfill/entry.h"
#include "recsync/status.h"

namespace recsync::backfill {

enum class Decision : uint8_t {
  kInSync,
  kInSyncUnverified,
  kConflict,
  kPull,
  kPush,
  kSkipTombstoned,
  kSkipPastRetention,
  kSkipPlanned,
};
inline constexpr size_t kDecisionCount = 8;
// "in_sync", "in_sync_unverified", "conflict", "pull", "push",
// "skip_tombstoned", "skip_past_retention", "skip_planned" (stable: JSON keys).
const char* decision_name(Decision d);

// One key's verdict. local / peer point at the side's entry (null when the
// key is absent there); valid only during the callback.
struct MergeItem {
  Decision decision = Decision::kInSync;
  const ManifestEntry* local = nullptr;
  const ManifestEntry* peer = nullptr;
  // The entry the decision is about: peer for kPull and peer-only skips,
  // local for kPush and local-only skips, local when on both sides.
  const ManifestEntry& subject() const { return local ? *local : *peer; }
};

struct MergeOptions {
  // Start of the retention window (ms since epoch): older and not held is
  // past retention and never moved.
  int64_t window_start_ms = 0;
  // Erased recordings (tombstones): never moved either way. Null: none.
  std::function<bool(const ManifestEntry&)> tombstoned;
  // A peer-only recording already planned as a pull from another peer.
  // Null: none.
  std::function<bool(const ManifestEntry&)> already_planned;
};

// Files and bytes per decision, for --dry-run and progress. Bytes are the
// subject's size (pull: the peer's copy; push and both-sides: the local one).
struct Tally {
  uint64_t files = 0;
  uint64_t bytes = 0;
  bool operator==(const Tally&) const = default;
};
struct PlanSummary {
  std::array<Tally, kDecisionCount> by_decision{};
  uint64_t ranges_equal = 0;   // ranges found in sync by digest (not listed)
  uint64_t files_equal = 0;    // entries in those ranges (peer's count)
  uint64_t ranges_listed = 0;  // ranges merged entry by entry

  void add(const MergeItem& item);
  void add_equal_range(const RangeDigest& d);
  const Tally& operator[](Decision d) const { return by_decision[static_cast<size_t>(d)]; }
  PlanSummary& operator+=(const PlanSummary& o);
};

// A source of entries for the pull-driven helpers (merge_sources, and
// Merger::feed_peer's local side): next() fills *e and returns true, or
// returns false at the end; an error stops the merge.
class EntrySource {
 public:
  virtual ~EntrySource() = default;
  virtual Result<bool> next(ManifestEntry* e) = 0;
};
// Over a vector the caller keeps alive (tests, small lists).
class VectorSource : public EntrySource {
 public:
  explicit VectorSource(std::span<const ManifestEntry> v) : v_(v) {}
  Result<bool> next(ManifestEntry* e) override;

 private:
  std::span<const ManifestEntry> v_;
  size_t i_ = 0;
};

enum class Side : uint8_t { kLocal, kPeer };

// The merge as a state machine both sides push into, one entry at a time.
// A side can take an entry when it holds none and has not ended: wants().
// After each push()/end() every key that can be decided is passed to
// on_item. A non-OK Status from on_item stops the merge and is returned
// (sticky), as is the first kCorrupt (disorder) or kInvalid (misuse: push to
// a side that holds an entry already, or after its end).
class Merger {
 public:
  using OnItem = std::function<Status(const MergeItem&)>;
  Merger(MergeOptions opt, OnItem on_item);

  bool wants(Side s) const;
  // The side to feed next (local first when both want), or nullopt when the
  // merge is complete or failed.
  std::optional<Side> need() const;
  Status push(Side s, ManifestEntry e);
  Status end(Side s);
  bool done() const;  // both sides ended and every key decided
  const Status& status() const { return error_; }
  const PlanSummary& summary() const { return summary_; }

  // Conveniences for a peer stream arriving in frames and a local side read
  // on demand: feed_peer pushes each entry, first pulling from `local` as
  // long as the merger wants a local entry; finish_peer ends the peer side
  // and drains `local`.
  Status feed_peer(std::span<const ManifestEntry> entries, EntrySource& local);
  Status finish_peer(EntrySource& local);

 private:
  struct Slot {
    std::optional<ManifestEntry> head;
    ManifestEntry prev;  // last key taken (order check)
    bool any = false;    // prev is set
    bool ended = false;
  };
  Status pull_local(EntrySource& local);
  Status drain();
  Status emit(const ManifestEntry* local, const ManifestEntry* peer);
  Decision decide_both(const ManifestEntry& l, const ManifestEntry& p) const;
  Decision decide_peer_only(const ManifestEntry& p) const;
  Decision decide_local_only(const ManifestEntry& l) const;
  Slot& slot(Side s) { return s == Side::kLocal ? local_ : peer_; }
  const Slot& slot(Side s) const { return s == Side::kLocal ? local_ : peer_; }

  MergeOptions opt_;
  OnItem on_item_;
  Slot local_, peer_;
  PlanSummary summary_;
  Status error_;
};

// Drives a Merger from two pull sources to the end (both sides pulled as
// the merge needs them). Returns the merger's status.
Status merge_sources(EntrySource& local, EntrySource& peer, Merger& m);

}  // namespace recsync::backfill
