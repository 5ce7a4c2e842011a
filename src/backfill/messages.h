#pragma once
// Bodies of the backfill frames of the peer protocol (frame types in
// peer/frame.h; framing, integer and string encoding as there: big-endian,
// u32 length + bytes). The node running backfill (the initiator) asks; its
// peer answers on the same link:
//
//   DIGEST_REQ{id, ranges}        -> DIGEST_REP{id, digests}     same order, same count
//   LIST_REQ{id, kind, range}     -> MANIFEST{id, last, entries}... the last one has last = 1
//   PULL{id, recordings}          -> PULL_REP{id, results}: per recording, queued (sent to
//                                    the initiator at backfill priority, as OFFERs), not here,
//                                    erased, or conflict (other content under that identity)
//   HOLDS_REQ{id}                 -> HOLDS{id, last, holds}...   the last one has last = 1
//
// Layouts (every count is checked against its maximum before anything is
// allocated; a flag byte with unknown bits, a bad enum value, t0 >= t1, a
// path or origin breaking entry.h's rules, truncation, and trailing bytes
// are kCorrupt in decode; encode returns kInvalid for the same faults and
// for a body larger than peer::kMaxFramePayload, and appends nothing then):
//   DIGEST_REQ  u64 id, u32 n (<= kMaxRanges), n x (i64 t0, i64 t1); the ranges
//               sorted and disjoint (t1 of one <= t0 of the next), so answering
//               costs at most one pass over the recordings whatever the peer asks
//   DIGEST_REP  u64 id, u32 n (<= kMaxRanges), n x (u64 count, u64 digest)
//   LIST_REQ    u64 id, u8 kind (1 range, 2 held), i64 t0, i64 t1
//   MANIFEST    u64 id, u8 last (0/1), u32 n (<= kMaxEntriesPerFrame), n x entry
//     entry     str path (<= 1024), str origin (1..255), u64 size,
//               u8 flags (bit 0 has_hash, bit 1 held), [16 hash if has_hash], i64 rec_time_ms
//   PULL        u64 id, u32 n (1..kMaxEntriesPerFrame), n x ref
//     ref       str path, str origin, u64 size, u8 flags (bit 0 has_hash), [16 hash]
//   HOLDS_REQ   u64 id
//   HOLDS       u64 id, u8 last (0/1), u32 n (<= kMaxEntriesPerFrame), n x hold
//     hold      str path, str origin, u8 flags (bit 0 has_hash), [16 hash],
//               str reason (<= 1024), i64 created_ms
// The encoding is canonical: decode then encode gives the same bytes.
//
// LIST_REQ kinds:
//   kRange  every recording with range.t0 <= rec_time_ms < range.t1.
//   kHeld   every HELD recording with rec_time_ms outside [t0, t1) (range =
//           the backfill window): held recordings older than the window are
//           listed once, not by range.
// A MANIFEST or HOLDS stream is sorted strictly increasing by (path, origin)
// across all its frames (entry.h); receivers check it with ManifestStream /
// HoldsStream (stream.h). Senders build it with ManifestWriter / HoldsWriter.
//
// Thread safety: functions are pure; a writer object belongs to one thread.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backfill/entry.h"
#include "peer/frame.h"
#include "recsync/status.h"

namespace recsync::backfill {

inline constexpr size_t kMaxRanges = 4096;           // per DIGEST_REQ / DIGEST_REP
inline constexpr size_t kMaxEntriesPerFrame = 4096;  // per MANIFEST / PULL / HOLDS
// Fixed parts of bodies, for callers packing frames by hand.
inline constexpr size_t kStreamHeadLen = 8 + 1 + 4;  // MANIFEST/HOLDS: id, last, count
inline constexpr size_t kPullHeadLen = 8 + 4;        // PULL: id, count

// A span of recording time: [t0, t1), valid when t0 < t1.
struct TimeRange {
  int64_t t0 = 0;
  int64_t t1 = 0;
  bool valid() const { return t0 < t1; }
  bool contains(int64_t t) const { return t >= t0 && t < t1; }
  bool operator==(const TimeRange&) const = default;
};

struct DigestReqMsg {
  uint64_t id = 0;
  std::vector<TimeRange> ranges;  // at most kMaxRanges, each valid, sorted and disjoint
};
struct DigestRepMsg {
  uint64_t id = 0;
  std::vector<RangeDigest> digests;  // one per requested range, same order
};
enum class ListKind : uint8_t { kRange = 1, kHeld = 2 };
struct ListReqMsg {
  uint64_t id = 0;
  ListKind kind = ListKind::kRange;
  TimeRange range;  // kRange: the range listed; kHeld: the window (listed: held outside it)
};
struct ManifestMsg {
  uint64_t id = 0;
  bool last = false;
  std::vector<ManifestEntry> entries;  // at most kMaxEntriesPerFrame
};
struct PullMsg {
  uint64_t id = 0;
  std::vector<RecordingRef> recordings;  // 1..kMaxEntriesPerFrame
};
enum class PullResult : uint8_t { kQueued = 0, kNotHere = 1, kErased = 2, kConflict = 3 };
// PULL_REP: u64 id, u32 n (1..kMaxEntriesPerFrame, the PULL's count), n x u8 result.
struct PullRepMsg {
  uint64_t id = 0;
  std::vector<PullResult> results;  // one per recording of the PULL, same order
};
struct HoldsReqMsg {
  uint64_t id = 0;
};
struct HoldsMsg {
  uint64_t id = 0;
  bool last = false;
  std::vector<HoldEntry> holds;  // at most kMaxEntriesPerFrame
};

// encode() appends the body (no frame header); decode() parses a whole body.
Status encode(const DigestReqMsg& m, std::vector<uint8_t>& out);
Status encode(const DigestRepMsg& m, std::vector<uint8_t>& out);
Status encode(const ListReqMsg& m, std::vector<uint8_t>& out);
Status encode(const ManifestMsg& m, std::vector<uint8_t>& out);
Status encode(const PullMsg& m, std::vector<uint8_t>& out);
Status encode(const HoldsReqMsg& m, std::vector<uint8_t>& out);
Status encode(const PullRepMsg& m, std::vector<uint8_t>& out);
Status encode(const HoldsMsg& m, std::vector<uint8_t>& out);
Status decode(std::span<const uint8_t> body, DigestReqMsg* m);
Status decode(std::span<const uint8_t> body, DigestRepMsg* m);
Status decode(std::span<const uint8_t> body, ListReqMsg* m);
Status decode(std::span<const uint8_t> body, ManifestMsg* m);
Status decode(std::span<const uint8_t> body, PullMsg* m);
Status decode(std::span<const uint8_t> body, HoldsReqMsg* m);
Status decode(std::span<const uint8_t> body, PullRepMsg* m);
Status decode(std::span<const uint8_t> body, HoldsMsg* m);

// Encoded size of one element (no validation), for packing frames by hand:
// a PULL fits when kPullHeadLen + the sum of its refs' sizes <=
// peer::kMaxFramePayload and it has at most kMaxEntriesPerFrame refs.
size_t encoded_size(const ManifestEntry& e);
size_t encoded_size(const RecordingRef& r);
size_t encoded_size(const HoldEntry& h);
// Largest encodings (every field at its maximum): 1320 and 2340 bytes, so a
// frame always has room for hundreds of them.
inline constexpr size_t kMaxEntryLen = 4 + kMaxPathLen + 4 + kMaxOriginLen + 8 + 1 + kHashLen + 8;
inline constexpr size_t kMaxHoldLen =
    4 + kMaxPathLen + 4 + kMaxOriginLen + 1 + kHashLen + 4 + kMaxHoldReasonLen + 8;

// Builds one MANIFEST (or HOLDS) stream for `id` as complete frames (header
// included): entries must be added in strictly increasing (path, origin)
// order. add() encodes into the frame being built; when the entry does not
// fit (kMaxEntriesPerFrame entries or peer::kMaxFramePayload bytes), that
// frame is first appended to `out` with last = 0. finish() appends the final
// frame, last = 1 (possibly with no entries: an empty stream is one frame).
// kInvalid for an entry breaking a rule or out of order (nothing appended),
// or a call after finish(). Memory: one frame being built.
template <typename Entry>
class StreamWriter {
 public:
  explicit StreamWriter(uint64_t id);
  Status add(const Entry& e, std::vector<uint8_t>& out);
  Status finish(std::vector<uint8_t>& out);
  uint64_t entries() const { return total_; }
  uint64_t frames() const { return frames_; }  // appended so far

 private:
  Status flush(bool last, std::vector<uint8_t>& out);

  uint64_t id_;
  std::vector<uint8_t> body_;  // head (kStreamHeadLen) + entries of the frame being built
  uint32_t count_ = 0;
  uint64_t total_ = 0;
  uint64_t frames_ = 0;
  std::string last_path_, last_origin_;
  bool finished_ = false;
};
using ManifestWriter = StreamWriter<ManifestEntry>;  // MANIFEST frames
using HoldsWriter = StreamWriter<HoldEntry>;         // HOLDS frames
extern template class StreamWriter<ManifestEntry>;
extern template class StreamWriter<HoldEntry>;

}  // namespace recsync::backfill
