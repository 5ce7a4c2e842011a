#pragma once
// Receiving side of a MANIFEST or HOLDS stream: the checks that make a
// peer's listing safe to merge (merge.h) before anything trusts it.
//
// One object per stream (one LIST_REQ or HOLDS_REQ id). Feed it the bodies of
// that id's frames in the order they arrived; each accept() decodes a body
// (messages.h, whose decoder already refuses bad paths and origins, huge
// counts, truncation and trailing bytes) and then checks it against the
// stream so far:
//   - the frame's id is the request's id;
//   - no frame after the one with last = 1;
//   - entries strictly increasing by (path, origin), across frames too
//     (a duplicate key is refused like any other disorder);
//   - MANIFEST for ListKind::kRange: every rec_time_ms inside the range;
//     for kHeld: every entry held and its rec_time_ms outside the window;
//   - the stream's total entries at most `max_entries` (caller's cap).
// Any failure is kCorrupt with a message naming the frame, the element and
// the rule, peer strings shown printable (entry.h printable()); the first
// failure is sticky (later calls return it). The caller drops the link.
//
// Memory: the previous key only (two strings); the decoded frame lives in
// the caller's message object, reused frame after frame.
// Thread safety: none; one stream belongs to one session thread.
#include <cstdint>
#include <span>
#include <string>

#include "backfill/messages.h"
#include "recsync/status.h"

namespace recsync::backfill {

// Default cap on a stream's entries: a 15-day window at SPEC 4.6's full load
// is ~500,000 recordings; twenty times that still bounds a hostile peer.
inline constexpr uint64_t kDefaultMaxStreamEntries = 10'000'000;

class ManifestStream {
 public:
  explicit ManifestStream(const ListReqMsg& req, uint64_t max_entries = kDefaultMaxStreamEntries);

  // Decodes one MANIFEST body into *m (reusing its storage) and checks it.
  // On OK, m->entries are this frame's entries, safe to use.
  Status accept(std::span<const uint8_t> body, ManifestMsg* m);
  // The same checks for a message decoded elsewhere (identity rules included).
  Status accept(const ManifestMsg& m);

  bool done() const { return done_; }          // the last frame was accepted
  uint64_t entries() const { return total_; }  // accepted so far
  uint64_t frames() const { return frames_; }
  const Status& status() const { return error_; }  // the sticky error, or OK
  // OK once done(); otherwise kCorrupt ("stream ended before its last frame"),
  // or the sticky error. For when the link closes or a deadline passes.
  Status finish() const;

 private:
  Status check(const ManifestMsg& m, bool validate_identity);

  ListReqMsg req_;
  uint64_t max_entries_;
  uint64_t total_ = 0;
  uint64_t frames_ = 0;
  bool done_ = false;
  std::string last_path_, last_origin_;
  Status error_;
};

class HoldsStream {
 public:
  explicit HoldsStream(uint64_t id, uint64_t max_entries = kDefaultMaxStreamEntries);

  Status accept(std::span<const uint8_t> body, HoldsMsg* m);
  Status accept(const HoldsMsg& m);

  bool done() const { return done_; }
  uint64_t entries() const { return total_; }
  uint64_t frames() const { return frames_; }
  const Status& status() const { return error_; }
  Status finish() const;

 private:
  Status check(const HoldsMsg& m, bool validate_identity);

  uint64_t id_;
  uint64_t max_entries_;
  uint64_t total_ = 0;
  uint64_t frames_ = 0;
  bool done_ = false;
  std::string last_path_, last_origin_;
  Status error_;
};

}  // namespace recsync::backfill
