#include "backfill/messages.h"

#include <algorithm>
#include <cstring>

namespace recsync::backfill {

using peer::WireReader;
using peer::WireWriter;

namespace {

constexpr uint8_t kHasHash = 1;
constexpr uint8_t kHeld = 2;

// A body's own bound: the frame parser never delivers more than this, and a
// sender must not build more.
Status check_body_size(size_t n, const char* what) {
  if (n > peer::kMaxFramePayload)
    return Status::invalid(std::string("encode ") + what + ": body of " + std::to_string(n) +
                           " bytes exceeds " + std::to_string(peer::kMaxFramePayload));
  return Status::ok();
}

Status check_count(size_t n, size_t max, const char* what) {
  if (n > max)
    return Status::invalid(std::string("encode ") + what + ": " + std::to_string(n) +
                           " elements exceed " + std::to_string(max));
  return Status::ok();
}

// Identity rules, as kInvalid (our own bug) when encoding.
Status check_identity(std::string_view path, std::string_view origin, const char* what) {
  Status s = validate_identity(path, origin);
  if (!s.is_ok()) return Status::invalid(std::string("encode ") + what + ": " + s.message());
  return Status::ok();
}

Status read_count(WireReader& r, size_t max, const char* what, uint32_t* n) {
  RECSYNC_RETURN_IF_ERROR(r.u32(n, what));
  if (*n > max)
    return Status::corrupt(std::string("peer message: ") + what + " " + std::to_string(*n) +
                           " exceeds " + std::to_string(max));
  return Status::ok();
}

Status read_i64(WireReader& r, int64_t* v, const char* what) {
  uint64_t u = 0;
  RECSYNC_RETURN_IF_ERROR(r.u64(&u, what));
  *v = static_cast<int64_t>(u);
  return Status::ok();
}

Status read_flags(WireReader& r, uint8_t allowed, uint8_t* flags, const char* what) {
  RECSYNC_RETURN_IF_ERROR(r.u8(flags, what));
  if (*flags & ~allowed)
    return Status::corrupt(std::string("peer message: ") + what + " has unknown bits " +
                           std::to_string(*flags));
  return Status::ok();
}

Status read_hash(WireReader& r, bool has, uint8_t* hash, const char* what) {
  if (has) return r.raw(hash, kHashLen, what);
  std::memset(hash, 0, kHashLen);
  return Status::ok();
}

// The decoded identity must obey the rules: kCorrupt naming the element.
Status check_read_identity(const std::string& path, const std::string& origin, const char* msg,
                           size_t i) {
  Status s = validate_identity(path, origin);
  if (!s.is_ok())
    return Status::corrupt(std::string("peer message: ") + msg + " element " + std::to_string(i) +
                           ": " + s.message());
  return Status::ok();
}

// Smallest encodings, to bound reserve() by the bytes actually present.
constexpr size_t kMinEntryLen = 4 + 1 + 4 + 1 + 8 + 1 + 8;
constexpr size_t kMinRefLen = 4 + 1 + 4 + 1 + 8 + 1;
constexpr size_t kMinHoldLen = 4 + 1 + 4 + 1 + 1 + 4 + 8;

void write_entry(WireWriter& w, const ManifestEntry& e) {
  w.str(e.path);
  w.str(e.origin);
  w.u64(e.size);
  w.u8(static_cast<uint8_t>((e.has_hash ? kHasHash : 0) | (e.held ? kHeld : 0)));
  if (e.has_hash) w.raw(e.hash);
  w.u64(static_cast<uint64_t>(e.rec_time_ms));
}
Status read_entry(WireReader& r, size_t i, ManifestEntry* e) {
  RECSYNC_RETURN_IF_ERROR(r.str(&e->path, kMaxPathLen, "MANIFEST path"));
  RECSYNC_RETURN_IF_ERROR(r.str(&e->origin, kMaxOriginLen, "MANIFEST origin"));
  RECSYNC_RETURN_IF_ERROR(r.u64(&e->size, "MANIFEST size"));
  uint8_t flags = 0;
  RECSYNC_RETURN_IF_ERROR(read_flags(r, kHasHash | kHeld, &flags, "MANIFEST flags"));
  e->has_hash = flags & kHasHash;
  e->held = flags & kHeld;
  RECSYNC_RETURN_IF_ERROR(read_hash(r, e->has_hash, e->hash, "MANIFEST hash"));
  RECSYNC_RETURN_IF_ERROR(read_i64(r, &e->rec_time_ms, "MANIFEST rec_time"));
  return check_read_identity(e->path, e->origin, "MANIFEST", i);
}

void write_ref(WireWriter& w, const RecordingRef& e) {
  w.str(e.path);
  w.str(e.origin);
  w.u64(e.size);
  w.u8(e.has_hash ? kHasHash : 0);
  if (e.has_hash) w.raw(e.hash);
}
Status read_ref(WireReader& r, size_t i, RecordingRef* e) {
  RECSYNC_RETURN_IF_ERROR(r.str(&e->path, kMaxPathLen, "PULL path"));
  RECSYNC_RETURN_IF_ERROR(r.str(&e->origin, kMaxOriginLen, "PULL origin"));
  RECSYNC_RETURN_IF_ERROR(r.u64(&e->size, "PULL size"));
  uint8_t flags = 0;
  RECSYNC_RETURN_IF_ERROR(read_flags(r, kHasHash, &flags, "PULL flags"));
  e->has_hash = flags & kHasHash;
  RECSYNC_RETURN_IF_ERROR(read_hash(r, e->has_hash, e->hash, "PULL hash"));
  return check_read_identity(e->path, e->origin, "PULL", i);
}

void write_hold(WireWriter& w, const HoldEntry& h) {
  w.str(h.path);
  w.str(h.origin);
  w.u8(h.has_hash ? kHasHash : 0);
  if (h.has_hash) w.raw(h.hash);
  w.str(h.reason);
  w.u64(static_cast<uint64_t>(h.created_ms));
}
Status read_hold(WireReader& r, size_t i, HoldEntry* h) {
  RECSYNC_RETURN_IF_ERROR(r.str(&h->path, kMaxPathLen, "HOLDS path"));
  RECSYNC_RETURN_IF_ERROR(r.str(&h->origin, kMaxOriginLen, "HOLDS origin"));
  uint8_t flags = 0;
  RECSYNC_RETURN_IF_ERROR(read_flags(r, kHasHash, &flags, "HOLDS flags"));
  h->has_hash = flags & kHasHash;
  RECSYNC_RETURN_IF_ERROR(read_hash(r, h->has_hash, h->hash, "HOLDS hash"));
  RECSYNC_RETURN_IF_ERROR(r.str(&h->reason, kMaxHoldReasonLen, "HOLDS reason"));
  RECSYNC_RETURN_IF_ERROR(read_i64(r, &h->created_ms, "HOLDS created"));
  return check_read_identity(h->path, h->origin, "HOLDS", i);
}

Status check_element(const ManifestEntry& e, const char* what) {
  return check_identity(e.path, e.origin, what);
}
Status check_element(const RecordingRef& e, const char* what) {
  return check_identity(e.path, e.origin, what);
}
Status check_element(const HoldEntry& h, const char* what) {
  RECSYNC_RETURN_IF_ERROR(check_identity(h.path, h.origin, what));
  if (h.reason.size() > kMaxHoldReasonLen)
    return Status::invalid(std::string("encode ") + what + ": hold reason of " +
                           std::to_string(h.reason.size()) + " bytes exceeds " +
                           std::to_string(kMaxHoldReasonLen));
  return Status::ok();
}

void write_element(WireWriter& w, const ManifestEntry& e) { write_entry(w, e); }
void write_element(WireWriter& w, const HoldEntry& h) { write_hold(w, h); }

// Validates a list of elements and the size of the body it makes.
template <typename T>
Status check_list(const std::vector<T>& v, size_t head, const char* what) {
  RECSYNC_RETURN_IF_ERROR(check_count(v.size(), kMaxEntriesPerFrame, what));
  size_t n = head;
  for (const T& e : v) {
    RECSYNC_RETURN_IF_ERROR(check_element(e, what));
    n += encoded_size(e);
  }
  return check_body_size(n, what);
}

}  // namespace

size_t encoded_size(const ManifestEntry& e) {
  return 4 + e.path.size() + 4 + e.origin.size() + 8 + 1 + (e.has_hash ? kHashLen : 0) + 8;
}
size_t encoded_size(const RecordingRef& r) {
  return 4 + r.path.size() + 4 + r.origin.size() + 8 + 1 + (r.has_hash ? kHashLen : 0);
}
size_t encoded_size(const HoldEntry& h) {
  return 4 + h.path.size() + 4 + h.origin.size() + 1 + (h.has_hash ? kHashLen : 0) + 4 +
         h.reason.size() + 8;
}

// ------------------------------------------------------------- digests

Status encode(const DigestReqMsg& m, std::vector<uint8_t>& out) {
  RECSYNC_RETURN_IF_ERROR(check_count(m.ranges.size(), kMaxRanges, "DIGEST_REQ"));
  for (size_t i = 0; i < m.ranges.size(); ++i) {
    const TimeRange& r = m.ranges[i];
    if (!r.valid())
      return Status::invalid("encode DIGEST_REQ: empty range [" + std::to_string(r.t0) + ", " +
                             std::to_string(r.t1) + ")");
    if (i > 0 && r.t0 < m.ranges[i - 1].t1)
      return Status::invalid("encode DIGEST_REQ: ranges not sorted and disjoint at " +
                             std::to_string(i));
  }
  WireWriter w(out);
  w.u64(m.id);
  w.u32(static_cast<uint32_t>(m.ranges.size()));
  for (const TimeRange& r : m.ranges) {
    w.u64(static_cast<uint64_t>(r.t0));
    w.u64(static_cast<uint64_t>(r.t1));
  }
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, DigestReqMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "DIGEST_REQ id"));
  uint32_t n = 0;
  RECSYNC_RETURN_IF_ERROR(read_count(r, kMaxRanges, "DIGEST_REQ count", &n));
  m->ranges.clear();
  m->ranges.reserve(std::min<size_t>(n, body.size() / 16));
  for (uint32_t i = 0; i < n; ++i) {
    TimeRange t;
    RECSYNC_RETURN_IF_ERROR(read_i64(r, &t.t0, "DIGEST_REQ t0"));
    RECSYNC_RETURN_IF_ERROR(read_i64(r, &t.t1, "DIGEST_REQ t1"));
    if (!t.valid())
      return Status::corrupt("peer message: DIGEST_REQ range " + std::to_string(i) +
                             " is empty: [" + std::to_string(t.t0) + ", " + std::to_string(t.t1) +
                             ")");
    if (!m->ranges.empty() && t.t0 < m->ranges.back().t1)
      return Status::corrupt("peer message: DIGEST_REQ range " + std::to_string(i) +
                             " overlaps or precedes the one before it");
    m->ranges.push_back(t);
  }
  return r.expect_end("DIGEST_REQ");
}

Status encode(const DigestRepMsg& m, std::vector<uint8_t>& out) {
  RECSYNC_RETURN_IF_ERROR(check_count(m.digests.size(), kMaxRanges, "DIGEST_REP"));
  WireWriter w(out);
  w.u64(m.id);
  w.u32(static_cast<uint32_t>(m.digests.size()));
  for (const RangeDigest& d : m.digests) {
    w.u64(d.count);
    w.u64(d.digest);
  }
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, DigestRepMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "DIGEST_REP id"));
  uint32_t n = 0;
  RECSYNC_RETURN_IF_ERROR(read_count(r, kMaxRanges, "DIGEST_REP count", &n));
  m->digests.clear();
  m->digests.reserve(std::min<size_t>(n, body.size() / 16));
  for (uint32_t i = 0; i < n; ++i) {
    RangeDigest d;
    RECSYNC_RETURN_IF_ERROR(r.u64(&d.count, "DIGEST_REP count"));
    RECSYNC_RETURN_IF_ERROR(r.u64(&d.digest, "DIGEST_REP digest"));
    m->digests.push_back(d);
  }
  return r.expect_end("DIGEST_REP");
}

// ------------------------------------------------------------- LIST_REQ

Status encode(const ListReqMsg& m, std::vector<uint8_t>& out) {
  if (m.kind != ListKind::kRange && m.kind != ListKind::kHeld)
    return Status::invalid("encode LIST_REQ: unknown kind " +
                           std::to_string(static_cast<int>(m.kind)));
  if (!m.range.valid())
    return Status::invalid("encode LIST_REQ: empty range [" + std::to_string(m.range.t0) + ", " +
                           std::to_string(m.range.t1) + ")");
  WireWriter w(out);
  w.u64(m.id);
  w.u8(static_cast<uint8_t>(m.kind));
  w.u64(static_cast<uint64_t>(m.range.t0));
  w.u64(static_cast<uint64_t>(m.range.t1));
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, ListReqMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "LIST_REQ id"));
  uint8_t kind = 0;
  RECSYNC_RETURN_IF_ERROR(r.u8(&kind, "LIST_REQ kind"));
  if (kind != static_cast<uint8_t>(ListKind::kRange) &&
      kind != static_cast<uint8_t>(ListKind::kHeld))
    return Status::corrupt("peer message: LIST_REQ kind " + std::to_string(kind));
  m->kind = static_cast<ListKind>(kind);
  RECSYNC_RETURN_IF_ERROR(read_i64(r, &m->range.t0, "LIST_REQ t0"));
  RECSYNC_RETURN_IF_ERROR(read_i64(r, &m->range.t1, "LIST_REQ t1"));
  if (!m->range.valid())
    return Status::corrupt("peer message: LIST_REQ range is empty: [" +
                           std::to_string(m->range.t0) + ", " + std::to_string(m->range.t1) + ")");
  return r.expect_end("LIST_REQ");
}

// ------------------------------------------------------------- MANIFEST, HOLDS

Status encode(const ManifestMsg& m, std::vector<uint8_t>& out) {
  RECSYNC_RETURN_IF_ERROR(check_list(m.entries, kStreamHeadLen, "MANIFEST"));
  WireWriter w(out);
  w.u64(m.id);
  w.u8(m.last ? 1 : 0);
  w.u32(static_cast<uint32_t>(m.entries.size()));
  for (const ManifestEntry& e : m.entries) write_entry(w, e);
  return Status::ok();
}

namespace {
Status read_last(WireReader& r, bool* last, const char* what) {
  uint8_t v = 0;
  RECSYNC_RETURN_IF_ERROR(r.u8(&v, what));
  if (v > 1) return Status::corrupt(std::string("peer message: ") + what + " " + std::to_string(v));
  *last = v == 1;
  return Status::ok();
}
}  // namespace

Status decode(std::span<const uint8_t> body, ManifestMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "MANIFEST id"));
  RECSYNC_RETURN_IF_ERROR(read_last(r, &m->last, "MANIFEST last"));
  uint32_t n = 0;
  RECSYNC_RETURN_IF_ERROR(read_count(r, kMaxEntriesPerFrame, "MANIFEST count", &n));
  // Reuse the caller's elements (and their strings' capacity) frame after frame.
  m->entries.resize(std::min<size_t>(n, body.size() / kMinEntryLen));
  for (uint32_t i = 0; i < n; ++i) {
    if (i == m->entries.size()) m->entries.emplace_back();
    RECSYNC_RETURN_IF_ERROR(read_entry(r, i, &m->entries[i]));
  }
  m->entries.resize(n);
  return r.expect_end("MANIFEST");
}

Status encode(const HoldsMsg& m, std::vector<uint8_t>& out) {
  RECSYNC_RETURN_IF_ERROR(check_list(m.holds, kStreamHeadLen, "HOLDS"));
  WireWriter w(out);
  w.u64(m.id);
  w.u8(m.last ? 1 : 0);
  w.u32(static_cast<uint32_t>(m.holds.size()));
  for (const HoldEntry& h : m.holds) write_hold(w, h);
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, HoldsMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "HOLDS id"));
  RECSYNC_RETURN_IF_ERROR(read_last(r, &m->last, "HOLDS last"));
  uint32_t n = 0;
  RECSYNC_RETURN_IF_ERROR(read_count(r, kMaxEntriesPerFrame, "HOLDS count", &n));
  m->holds.resize(std::min<size_t>(n, body.size() / kMinHoldLen));
  for (uint32_t i = 0; i < n; ++i) {
    if (i == m->holds.size()) m->holds.emplace_back();
    RECSYNC_RETURN_IF_ERROR(read_hold(r, i, &m->holds[i]));
  }
  m->holds.resize(n);
  return r.expect_end("HOLDS");
}

// ------------------------------------------------------------- PULL, HOLDS_REQ

Status encode(const PullMsg& m, std::vector<uint8_t>& out) {
  if (m.recordings.empty()) return Status::invalid("encode PULL: no recordings");
  RECSYNC_RETURN_IF_ERROR(check_count(m.recordings.size(), kMaxEntriesPerFrame, "PULL"));
  size_t n = kPullHeadLen;
  for (const RecordingRef& e : m.recordings) {
    RECSYNC_RETURN_IF_ERROR(check_element(e, "PULL"));
    n += encoded_size(e);
  }
  RECSYNC_RETURN_IF_ERROR(check_body_size(n, "PULL"));
  WireWriter w(out);
  w.u64(m.id);
  w.u32(static_cast<uint32_t>(m.recordings.size()));
  for (const RecordingRef& e : m.recordings) write_ref(w, e);
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, PullMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "PULL id"));
  uint32_t n = 0;
  RECSYNC_RETURN_IF_ERROR(read_count(r, kMaxEntriesPerFrame, "PULL count", &n));
  if (n == 0) return Status::corrupt("peer message: PULL with no recordings");
  m->recordings.clear();
  m->recordings.reserve(std::min<size_t>(n, body.size() / kMinRefLen));
  for (uint32_t i = 0; i < n; ++i) {
    RECSYNC_RETURN_IF_ERROR(read_ref(r, i, &m->recordings.emplace_back()));
  }
  return r.expect_end("PULL");
}

Status encode(const HoldsReqMsg& m, std::vector<uint8_t>& out) {
  WireWriter(out).u64(m.id);
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, HoldsReqMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "HOLDS_REQ id"));
  return r.expect_end("HOLDS_REQ");
}

Status encode(const PullRepMsg& m, std::vector<uint8_t>& out) {
  if (m.results.empty() || m.results.size() > kMaxEntriesPerFrame)
    return Status::invalid("PULL_REP: " + std::to_string(m.results.size()) + " results");
  WireWriter w(out);
  w.u64(m.id);
  w.u32(static_cast<uint32_t>(m.results.size()));
  for (PullResult x : m.results) w.u8(static_cast<uint8_t>(x));
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, PullRepMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "PULL_REP id"));
  uint32_t n = 0;
  RECSYNC_RETURN_IF_ERROR(r.u32(&n, "PULL_REP count"));
  if (n == 0 || n > kMaxEntriesPerFrame)
    return Status::corrupt("peer message: PULL_REP count " + std::to_string(n));
  if (body.size() != 12 + size_t{n})
    return Status::corrupt("peer message: PULL_REP of " + std::to_string(n) + " results has " +
                           std::to_string(body.size()) + " bytes");
  m->results.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint8_t v = 0;
    RECSYNC_RETURN_IF_ERROR(r.u8(&v, "PULL_REP result"));
    if (v > static_cast<uint8_t>(PullResult::kConflict))
      return Status::corrupt("peer message: PULL_REP result " + std::to_string(v));
    m->results[i] = static_cast<PullResult>(v);
  }
  return r.expect_end("PULL_REP");
}

// ------------------------------------------------------------- StreamWriter

namespace {
template <typename Entry>
constexpr peer::FrameType kWriterType = peer::FrameType::kManifest;
template <>
constexpr peer::FrameType kWriterType<HoldEntry> = peer::FrameType::kHolds;
template <typename Entry>
constexpr const char* kWriterName = "MANIFEST";
template <>
constexpr const char* kWriterName<HoldEntry> = "HOLDS";
}  // namespace

template <typename Entry>
StreamWriter<Entry>::StreamWriter(uint64_t id) : id_(id) {
  body_.resize(kStreamHeadLen);
}

template <typename Entry>
Status StreamWriter<Entry>::add(const Entry& e, std::vector<uint8_t>& out) {
  const char* what = kWriterName<Entry>;
  if (finished_) return Status::invalid(std::string(what) + " writer: add after finish");
  RECSYNC_RETURN_IF_ERROR(check_element(e, what));
  if (total_ > 0 && compare_key(e.path, e.origin, last_path_, last_origin_) <= 0)
    return Status::invalid(std::string(what) + " writer: " + describe_key(e.path, e.origin) +
                           " is not after " + describe_key(last_path_, last_origin_));
  const size_t need = encoded_size(e);
  RECSYNC_RETURN_IF_ERROR(check_body_size(kStreamHeadLen + need, what));
  if (count_ == kMaxEntriesPerFrame || body_.size() + need > peer::kMaxFramePayload)
    RECSYNC_RETURN_IF_ERROR(flush(false, out));
  WireWriter w(body_);
  write_element(w, e);
  ++count_;
  ++total_;
  last_path_ = e.path;
  last_origin_ = e.origin;
  return Status::ok();
}

template <typename Entry>
Status StreamWriter<Entry>::finish(std::vector<uint8_t>& out) {
  if (finished_)
    return Status::invalid(std::string(kWriterName<Entry>) + " writer: finish called twice");
  RECSYNC_RETURN_IF_ERROR(flush(true, out));
  finished_ = true;
  return Status::ok();
}

template <typename Entry>
Status StreamWriter<Entry>::flush(bool last, std::vector<uint8_t>& out) {
  std::vector<uint8_t> head;
  WireWriter w(head);
  w.u64(id_);
  w.u8(last ? 1 : 0);
  w.u32(count_);
  std::copy(head.begin(), head.end(), body_.begin());
  RECSYNC_RETURN_IF_ERROR(peer::encode_frame(kWriterType<Entry>, body_, out));
  ++frames_;
  body_.resize(kStreamHeadLen);
  count_ = 0;
  return Status::ok();
}

template class StreamWriter<ManifestEntry>;
template class StreamWriter<HoldEntry>;

}  // namespace recsync::backfill
