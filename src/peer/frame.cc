#include "peer/frame.h"

#include <algorithm>
#include <cstring>

namespace recsync::peer {

bool is_known_frame_type(uint8_t t) {
  return t >= static_cast<uint8_t>(FrameType::kHello) &&
         t <= static_cast<uint8_t>(FrameType::kErase);
}

const char* frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::kHello:
      return "HELLO";
    case FrameType::kOffer:
      return "OFFER";
    case FrameType::kSignature:
      return "SIGNATURE";
    case FrameType::kDelta:
      return "DELTA";
    case FrameType::kEnd:
      return "END";
    case FrameType::kAck:
      return "ACK";
    case FrameType::kNack:
      return "NACK";
    case FrameType::kPing:
      return "PING";
    case FrameType::kPong:
      return "PONG";
    case FrameType::kHold:
      return "HOLD";
    case FrameType::kDigestReq:
      return "DIGEST_REQ";
    case FrameType::kDigestRep:
      return "DIGEST_REP";
    case FrameType::kListReq:
      return "LIST_REQ";
    case FrameType::kManifest:
      return "MANIFEST";
    case FrameType::kPull:
      return "PULL";
    case FrameType::kHoldsReq:
      return "HOLDS_REQ";
    case FrameType::kHolds:
      return "HOLDS";
    case FrameType::kPullRep:
      return "PULL_REP";
    case FrameType::kErase:
      return "ERASE";
  }
  return "UNKNOWN";
}

Status encode_frame(uint8_t type, std::span<const uint8_t> payload, std::vector<uint8_t>& out) {
  if (!is_known_frame_type(type))
    return Status::invalid("encode frame: unknown type " + std::to_string(type));
  if (payload.size() > kMaxFramePayload)
    return Status::invalid("encode frame: payload of " + std::to_string(payload.size()) +
                           " bytes exceeds " + std::to_string(kMaxFramePayload));
  WireWriter w(out);
  w.u32(static_cast<uint32_t>(payload.size() + 1));
  w.u8(type);
  w.raw(payload);
  return Status::ok();
}

Status FrameParser::feed(std::span<const uint8_t> in, const OnFrame& on_frame) {
  while (!in.empty()) {
    if (!error_.is_ok()) return error_;
    std::span<uint8_t> dst = buffer();
    size_t take = std::min(dst.size(), in.size());
    std::memcpy(dst.data(), in.data(), take);
    in = in.subspan(take);
    if (Status s = commit(take, on_frame); !s.is_ok()) return s;
  }
  return error_;
}

std::span<uint8_t> FrameParser::buffer() {
  if (header_got_ < kFrameHeaderLen || !error_.is_ok())
    return std::span(header_ + header_got_ % kFrameHeaderLen,
                     kFrameHeaderLen - header_got_ % kFrameHeaderLen);
  return std::span(cur_.payload).subspan(payload_got_);
}

Status FrameParser::emit(const OnFrame& on_frame) {
  header_got_ = 0;
  Frame f = std::move(cur_);
  cur_ = Frame{};
  if (Status s = on_frame(std::move(f)); !s.is_ok()) return error_ = s;
  return Status::ok();
}

Status FrameParser::commit(size_t n, const OnFrame& on_frame) {
  if (!error_.is_ok()) return error_;
  if (n == 0) return Status::ok();
  if (header_got_ < kFrameHeaderLen) {
    if (n > kFrameHeaderLen - header_got_)
      return error_ = Status::invalid("peer frame: commit past the header buffer");
    const size_t before = header_got_;
    header_got_ += n;
    // Check the length as soon as it is known, before waiting for more.
    if (before < 4 && header_got_ >= 4) {
      uint32_t len = (uint32_t{header_[0]} << 24) | (uint32_t{header_[1]} << 16) |
                     (uint32_t{header_[2]} << 8) | uint32_t{header_[3]};
      if (len == 0) return error_ = Status::corrupt("peer frame: zero length");
      if (len > kMaxFrameLen)
        return error_ = Status::corrupt("peer frame: length " + std::to_string(len) + " exceeds " +
                                        std::to_string(kMaxFrameLen));
      payload_len_ = len - 1;
    }
    if (header_got_ < kFrameHeaderLen) return Status::ok();
    if (!is_known_frame_type(header_[4]))
      return error_ = Status::corrupt("peer frame: unknown type " + std::to_string(header_[4]));
    cur_.type = static_cast<FrameType>(header_[4]);
    cur_.payload.resize(payload_len_);
    payload_got_ = 0;
    return payload_len_ == 0 ? emit(on_frame) : Status::ok();
  }
  if (n > payload_len_ - payload_got_)
    return error_ = Status::invalid("peer frame: commit past the payload buffer");
  payload_got_ += n;
  return payload_got_ == payload_len_ ? emit(on_frame) : Status::ok();
}

// ------------------------------------------------------------- WireWriter

void WireWriter::u32(uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<uint8_t>(v >> s));
}
void WireWriter::u64(uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out_.push_back(static_cast<uint8_t>(v >> s));
}
void WireWriter::bytes(std::span<const uint8_t> b) {
  u32(static_cast<uint32_t>(b.size()));
  raw(b);
}
void WireWriter::str(std::string_view s) {
  bytes(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

// ------------------------------------------------------------- WireReader

Status WireReader::raw(uint8_t* dst, size_t n, const char* what) {
  if (in_.size() < n) return Status::corrupt(std::string("peer message: truncated ") + what);
  if (n) std::memcpy(dst, in_.data(), n);
  in_ = in_.subspan(n);
  return Status::ok();
}
Status WireReader::u8(uint8_t* v, const char* what) { return raw(v, 1, what); }
Status WireReader::u32(uint32_t* v, const char* what) {
  uint8_t b[4];
  RECSYNC_RETURN_IF_ERROR(raw(b, 4, what));
  *v = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  return Status::ok();
}
Status WireReader::u64(uint64_t* v, const char* what) {
  uint8_t b[8];
  RECSYNC_RETURN_IF_ERROR(raw(b, 8, what));
  *v = 0;
  for (uint8_t x : b) *v = (*v << 8) | x;
  return Status::ok();
}
Status WireReader::bytes_view(std::span<const uint8_t>* v, size_t max, const char* what) {
  uint32_t n;
  RECSYNC_RETURN_IF_ERROR(u32(&n, what));
  if (n > max)
    return Status::corrupt(std::string("peer message: ") + what + " of " + std::to_string(n) +
                           " bytes exceeds " + std::to_string(max));
  if (in_.size() < n) return Status::corrupt(std::string("peer message: truncated ") + what);
  *v = in_.first(n);
  in_ = in_.subspan(n);
  return Status::ok();
}
Status WireReader::bytes(std::vector<uint8_t>* v, size_t max, const char* what) {
  std::span<const uint8_t> view;
  RECSYNC_RETURN_IF_ERROR(bytes_view(&view, max, what));
  v->assign(view.begin(), view.end());
  return Status::ok();
}
Status WireReader::str(std::string* v, size_t max, const char* what) {
  std::span<const uint8_t> view;
  RECSYNC_RETURN_IF_ERROR(bytes_view(&view, max, what));
  v->assign(reinterpret_cast<const char*>(view.data()), view.size());
  return Status::ok();
}
Status WireReader::expect_end(const char* msg) const {
  if (!in_.empty())
    return Status::corrupt(std::string("peer message: ") + std::to_string(in_.size()) +
                           " trailing bytes in " + msg);
  return Status::ok();
}

// ------------------------------------------------------------- messages

namespace {
Status check_len(size_t n, size_t max, const char* what) {
  if (n > max)
    return Status::invalid(std::string("encode: ") + what + " of " + std::to_string(n) +
                           " bytes exceeds " + std::to_string(max));
  return Status::ok();
}
}  // namespace

Status encode(const HelloMsg& m, std::vector<uint8_t>& out) {
  RECSYNC_RETURN_IF_ERROR(check_len(m.node.size(), kMaxNodeName, "node name"));
  if (m.node.empty()) return Status::invalid("encode: empty node name");
  WireWriter w(out);
  w.u32(m.version);
  w.str(m.node);
  w.u8(static_cast<uint8_t>(m.lane));
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, HelloMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u32(&m->version, "HELLO version"));
  RECSYNC_RETURN_IF_ERROR(r.str(&m->node, kMaxNodeName, "HELLO node"));
  if (m->node.empty()) return Status::corrupt("peer message: empty HELLO node");
  uint8_t lane = 0;
  RECSYNC_RETURN_IF_ERROR(r.u8(&lane, "HELLO lane"));
  if (lane > static_cast<uint8_t>(Lane::kBackfill))
    return Status::corrupt("peer message: HELLO lane " + std::to_string(lane));
  m->lane = static_cast<Lane>(lane);
  return r.expect_end("HELLO");
}

Status encode(const OfferMsg& m, std::vector<uint8_t>& out) {
  RECSYNC_RETURN_IF_ERROR(check_len(m.path.size(), kMaxPathLen, "path"));
  RECSYNC_RETURN_IF_ERROR(check_len(m.origin.size(), kMaxNodeName, "origin"));
  if (m.origin.empty()) return Status::invalid("encode: empty OFFER origin");
  WireWriter w(out);
  w.u64(m.id);
  w.str(m.path);
  w.str(m.origin);
  w.u64(m.size);
  w.raw(m.hash);
  w.u64(static_cast<uint64_t>(m.mtime_ns));
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, OfferMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "OFFER id"));
  RECSYNC_RETURN_IF_ERROR(r.str(&m->path, kMaxPathLen, "OFFER path"));
  RECSYNC_RETURN_IF_ERROR(r.str(&m->origin, kMaxNodeName, "OFFER origin"));
  if (m->origin.empty()) return Status::corrupt("peer message: empty OFFER origin");
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->size, "OFFER size"));
  RECSYNC_RETURN_IF_ERROR(r.raw(m->hash, kHashLen, "OFFER hash"));
  uint64_t mt;
  RECSYNC_RETURN_IF_ERROR(r.u64(&mt, "OFFER mtime"));
  m->mtime_ns = static_cast<int64_t>(mt);
  return r.expect_end("OFFER");
}

Status encode_chunk(uint64_t id, std::span<const uint8_t> data, std::vector<uint8_t>& out) {
  uint8_t head[kChunkHeadLen];
  RECSYNC_RETURN_IF_ERROR(encode_chunk_head(id, data.size(), head));
  out.insert(out.end(), head, head + kChunkHeadLen);
  out.insert(out.end(), data.begin(), data.end());
  return Status::ok();
}
Status encode_chunk_head(uint64_t id, size_t data_len, uint8_t out[kChunkHeadLen]) {
  RECSYNC_RETURN_IF_ERROR(check_len(data_len, kMaxChunk, "chunk"));
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(id >> (56 - 8 * i));
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<uint8_t>(data_len >> (24 - 8 * i));
  return Status::ok();
}
Status decode_chunk_view(std::span<const uint8_t> body, uint64_t* id,
                         std::span<const uint8_t>* data) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(id, "chunk id"));
  RECSYNC_RETURN_IF_ERROR(r.bytes_view(data, kMaxChunk, "chunk data"));
  return r.expect_end("chunk");
}
Status encode(const ChunkMsg& m, std::vector<uint8_t>& out) {
  return encode_chunk(m.id, m.data, out);
}
Status decode(std::span<const uint8_t> body, ChunkMsg* m) {
  std::span<const uint8_t> view;
  RECSYNC_RETURN_IF_ERROR(decode_chunk_view(body, &m->id, &view));
  m->data.assign(view.begin(), view.end());
  return Status::ok();
}

Status encode(const IdMsg& m, std::vector<uint8_t>& out) {
  WireWriter(out).u64(m.id);
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, IdMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "id"));
  return r.expect_end("END/ACK");
}

Status encode(const NackMsg& m, std::vector<uint8_t>& out) {
  RECSYNC_RETURN_IF_ERROR(check_len(m.reason.size(), kMaxReasonLen, "reason"));
  WireWriter w(out);
  w.u64(m.id);
  w.u8(m.code);
  w.str(m.reason);
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, NackMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "NACK id"));
  RECSYNC_RETURN_IF_ERROR(r.u8(&m->code, "NACK code"));
  RECSYNC_RETURN_IF_ERROR(r.str(&m->reason, kMaxReasonLen, "NACK reason"));
  return r.expect_end("NACK");
}

Status encode(const HoldMsg& m, std::vector<uint8_t>& out) {
  if (m.op != HoldMsg::kAdd && m.op != HoldMsg::kRelease)
    return Status::invalid("HOLD: unknown op " + std::to_string(m.op));
  if (m.target.empty()) return Status::invalid("HOLD: empty target");
  RECSYNC_RETURN_IF_ERROR(check_len(m.target.size(), kMaxHoldTarget, "hold target"));
  RECSYNC_RETURN_IF_ERROR(check_len(m.reason.size(), kMaxReasonLen, "reason"));
  WireWriter w(out);
  w.u64(m.id);
  w.u8(m.op);
  w.str(m.target);
  w.str(m.reason);
  w.u64(static_cast<uint64_t>(m.created_ms));
  RECSYNC_RETURN_IF_ERROR(check_len(m.origin.size(), kMaxNodeName, "hold origin"));
  RECSYNC_RETURN_IF_ERROR(check_len(m.origin_rel.size(), kMaxPathLen, "hold path"));
  w.str(m.origin);
  w.str(m.origin_rel);
  w.u8(m.has_hash ? 1 : 0);
  if (m.has_hash) w.raw(m.hash);
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, HoldMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "HOLD id"));
  RECSYNC_RETURN_IF_ERROR(r.u8(&m->op, "HOLD op"));
  if (m->op != HoldMsg::kAdd && m->op != HoldMsg::kRelease)
    return Status::corrupt("peer message: HOLD op " + std::to_string(m->op));
  RECSYNC_RETURN_IF_ERROR(r.str(&m->target, kMaxHoldTarget, "HOLD target"));
  if (m->target.empty()) return Status::corrupt("peer message: empty HOLD target");
  RECSYNC_RETURN_IF_ERROR(r.str(&m->reason, kMaxReasonLen, "HOLD reason"));
  uint64_t t = 0;
  RECSYNC_RETURN_IF_ERROR(r.u64(&t, "HOLD time"));
  m->created_ms = static_cast<int64_t>(t);
  RECSYNC_RETURN_IF_ERROR(r.str(&m->origin, kMaxNodeName, "HOLD origin"));
  RECSYNC_RETURN_IF_ERROR(r.str(&m->origin_rel, kMaxPathLen, "HOLD path"));
  uint8_t flags = 0;
  RECSYNC_RETURN_IF_ERROR(r.u8(&flags, "HOLD flags"));
  if (flags > 1) return Status::corrupt("peer message: HOLD flags " + std::to_string(flags));
  m->has_hash = flags == 1;
  if (m->has_hash) RECSYNC_RETURN_IF_ERROR(r.raw(m->hash, kHashLen, "HOLD hash"));
  if (m->has_hash && (m->origin.empty() || m->origin_rel.empty()))
    return Status::corrupt("peer message: HOLD identity without origin or path");
  return r.expect_end("HOLD");
}

Status encode(const EraseMsg& m, std::vector<uint8_t>& out) {
  if (m.origin.empty() || m.origin_rel.empty())
    return Status::invalid("ERASE: empty origin or path");
  RECSYNC_RETURN_IF_ERROR(check_len(m.origin.size(), kMaxNodeName, "erase origin"));
  RECSYNC_RETURN_IF_ERROR(check_len(m.origin_rel.size(), kMaxPathLen, "erase path"));
  RECSYNC_RETURN_IF_ERROR(check_len(m.reason.size(), kMaxReasonLen, "reason"));
  WireWriter w(out);
  w.u64(m.id);
  w.str(m.origin);
  w.str(m.origin_rel);
  w.raw(m.hash);
  w.str(m.reason);
  w.u64(static_cast<uint64_t>(m.erased_ms));
  w.u64(static_cast<uint64_t>(m.uid));
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, EraseMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->id, "ERASE id"));
  RECSYNC_RETURN_IF_ERROR(r.str(&m->origin, kMaxNodeName, "ERASE origin"));
  RECSYNC_RETURN_IF_ERROR(r.str(&m->origin_rel, kMaxPathLen, "ERASE path"));
  if (m->origin.empty() || m->origin_rel.empty())
    return Status::corrupt("peer message: ERASE without origin or path");
  RECSYNC_RETURN_IF_ERROR(r.raw(m->hash, kHashLen, "ERASE hash"));
  RECSYNC_RETURN_IF_ERROR(r.str(&m->reason, kMaxReasonLen, "ERASE reason"));
  uint64_t t = 0, uid = 0;
  RECSYNC_RETURN_IF_ERROR(r.u64(&t, "ERASE time"));
  RECSYNC_RETURN_IF_ERROR(r.u64(&uid, "ERASE uid"));
  m->erased_ms = static_cast<int64_t>(t);
  m->uid = static_cast<int64_t>(uid);
  return r.expect_end("ERASE");
}

Status encode(const PingMsg& m, std::vector<uint8_t>& out) {
  WireWriter w(out);
  w.u64(m.nonce);
  for (int64_t t : {m.t0_ns, m.t1_ns, m.t2_ns}) w.u64(static_cast<uint64_t>(t));
  return Status::ok();
}
Status decode(std::span<const uint8_t> body, PingMsg* m) {
  WireReader r(body);
  RECSYNC_RETURN_IF_ERROR(r.u64(&m->nonce, "nonce"));
  for (int64_t* t : {&m->t0_ns, &m->t1_ns, &m->t2_ns}) {
    uint64_t v = 0;
    RECSYNC_RETURN_IF_ERROR(r.u64(&v, "PING time"));
    *t = static_cast<int64_t>(v);
  }
  return r.expect_end("PING/PONG");
}

}  // namespace recsync::peer
