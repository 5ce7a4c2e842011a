#include "backfill/stream.h"

namespace recsync::backfill {
namespace {

// What both stream kinds check per frame before looking at entries.
Status check_frame_head(const std::string& where, uint64_t want_id, uint64_t got_id, bool done,
                        size_t n, uint64_t total, uint64_t max_entries) {
  if (got_id != want_id) return Status::corrupt(where + ": carries id " + std::to_string(got_id));
  if (done) return Status::corrupt(where + ": arrived after the last frame");
  if (n > kMaxEntriesPerFrame)
    return Status::corrupt(where + ": " + std::to_string(n) + " entries in one frame");
  if (n > max_entries - total)
    return Status::corrupt(where + ": " + std::to_string(total + n) +
                           " entries exceed the cap of " + std::to_string(max_entries));
  return Status::ok();
}

// Strictly increasing keys across the whole stream; updates the last key.
template <typename Entry>
Status check_order(const std::string& where, size_t i, const Entry& e, bool first,
                   std::string& last_path, std::string& last_origin) {
  if (!first) {
    int c = compare_key(e.path, e.origin, last_path, last_origin);
    if (c == 0)
      return Status::corrupt(where + ", entry " + std::to_string(i) + ": duplicate key " +
                             describe_key(e.path, e.origin));
    if (c < 0)
      return Status::corrupt(where + ", entry " + std::to_string(i) + ": " +
                             describe_key(e.path, e.origin) + " out of order, after " +
                             describe_key(last_path, last_origin));
  }
  last_path = e.path;
  last_origin = e.origin;
  return Status::ok();
}

Status check_identity_of(const std::string& where, size_t i, const std::string& path,
                         const std::string& origin) {
  Status s = validate_identity(path, origin);
  if (!s.is_ok())
    return Status::corrupt(where + ", entry " + std::to_string(i) + ": " + s.message());
  return Status::ok();
}

std::string frame_where(const char* what, uint64_t id, uint64_t frame_no) {
  return std::string(what) + " stream " + std::to_string(id) + ", frame " +
         std::to_string(frame_no);
}

}  // namespace

// ------------------------------------------------------------- ManifestStream

ManifestStream::ManifestStream(const ListReqMsg& req, uint64_t max_entries)
    : req_(req), max_entries_(max_entries) {}

Status ManifestStream::accept(std::span<const uint8_t> body, ManifestMsg* m) {
  if (!error_.is_ok()) return error_;
  if (Status s = decode(body, m); !s.is_ok())
    return error_ = s.with_context(frame_where("MANIFEST", req_.id, frames_));
  return error_ = check(*m, false);
}

Status ManifestStream::accept(const ManifestMsg& m) {
  if (!error_.is_ok()) return error_;
  return error_ = check(m, true);
}

Status ManifestStream::check(const ManifestMsg& m, bool validate) {
  const std::string where = frame_where("MANIFEST", req_.id, frames_);
  RECSYNC_RETURN_IF_ERROR(
      check_frame_head(where, req_.id, m.id, done_, m.entries.size(), total_, max_entries_));
  const TimeRange& r = req_.range;
  for (size_t i = 0; i < m.entries.size(); ++i) {
    const ManifestEntry& e = m.entries[i];
    if (validate) RECSYNC_RETURN_IF_ERROR(check_identity_of(where, i, e.path, e.origin));
    RECSYNC_RETURN_IF_ERROR(
        check_order(where, i, e, total_ == 0 && i == 0, last_path_, last_origin_));
    const bool inside = r.contains(e.rec_time_ms);
    if (req_.kind == ListKind::kRange && !inside)
      return Status::corrupt(where + ", entry " + std::to_string(i) + ": " +
                             describe_key(e.path, e.origin) + " has rec_time " +
                             std::to_string(e.rec_time_ms) + " outside the range [" +
                             std::to_string(r.t0) + ", " + std::to_string(r.t1) + ")");
    if (req_.kind == ListKind::kHeld && (inside || !e.held))
      return Status::corrupt(where + ", entry " + std::to_string(i) + ": " +
                             describe_key(e.path, e.origin) +
                             (e.held ? " is inside the window" : " is not held") +
                             " in a list of held recordings outside the window");
  }
  total_ += m.entries.size();
  ++frames_;
  done_ = m.last;
  return Status::ok();
}

Status ManifestStream::finish() const {
  if (!error_.is_ok()) return error_;
  if (!done_)
    return Status::corrupt("MANIFEST stream " + std::to_string(req_.id) + " ended after " +
                           std::to_string(frames_) + " frames, before its last frame");
  return Status::ok();
}

// ------------------------------------------------------------- HoldsStream

HoldsStream::HoldsStream(uint64_t id, uint64_t max_entries) : id_(id), max_entries_(max_entries) {}

Status HoldsStream::accept(std::span<const uint8_t> body, HoldsMsg* m) {
  if (!error_.is_ok()) return error_;
  if (Status s = decode(body, m); !s.is_ok())
    return error_ = s.with_context(frame_where("HOLDS", id_, frames_));
  return error_ = check(*m, false);
}

Status HoldsStream::accept(const HoldsMsg& m) {
  if (!error_.is_ok()) return error_;
  return error_ = check(m, true);
}

Status HoldsStream::check(const HoldsMsg& m, bool validate) {
  const std::string where = frame_where("HOLDS", id_, frames_);
  RECSYNC_RETURN_IF_ERROR(
      check_frame_head(where, id_, m.id, done_, m.holds.size(), total_, max_entries_));
  for (size_t i = 0; i < m.holds.size(); ++i) {
    const HoldEntry& h = m.holds[i];
    if (validate) {
      RECSYNC_RETURN_IF_ERROR(check_identity_of(where, i, h.path, h.origin));
      if (h.reason.size() > kMaxHoldReasonLen)
        return Status::corrupt(where + ", entry " + std::to_string(i) + ": reason too long");
    }
    RECSYNC_RETURN_IF_ERROR(
        check_order(where, i, h, total_ == 0 && i == 0, last_path_, last_origin_));
  }
  total_ += m.holds.size();
  ++frames_;
  done_ = m.last;
  return Status::ok();
}

Status HoldsStream::finish() const {
  if (!error_.is_ok()) return error_;
  if (!done_)
    return Status::corrupt("HOLDS stream " + std::to_string(id_) + " ended after " +
                           std::to_string(frames_) + " frames, before its last frame");
  return Status::ok();
}

}  // namespace recsync::backfill
