#include "replication/wire.h"

#include <fmt/format.h>

namespace recsync::replication {

bool hash_to_bytes(const std::string& h, uint8_t out[peer::kHashLen]) {
  constexpr std::string_view kPre = "xxh128:";
  if (h.size() != kPre.size() + 2 * peer::kHashLen || h.compare(0, kPre.size(), kPre) != 0)
    return false;
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < peer::kHashLen; ++i) {
    int a = nib(h[kPre.size() + 2 * i]), b = nib(h[kPre.size() + 2 * i + 1]);
    if (a < 0 || b < 0) return false;
    out[i] = static_cast<uint8_t>(a << 4 | b);
  }
  return true;
}

std::string bytes_to_hash(const uint8_t in[peer::kHashLen]) {
  static const char* d = "0123456789abcdef";
  std::string s = "xxh128:";
  for (size_t i = 0; i < peer::kHashLen; ++i) {
    s += d[in[i] >> 4];
    s += d[in[i] & 15];
  }
  return s;
}

const char* nack_name(uint8_t c) {
  switch (c) {
    case peer::NackMsg::kRetry:
      return "retry";
    case peer::NackMsg::kRefused:
      return "refused";
    case peer::NackMsg::kHashMismatch:
      return "hash mismatch";
    case peer::NackMsg::kNoSpace:
      return "no space";
    case peer::NackMsg::kConflict:
      return "conflict";
    case peer::NackMsg::kHeld:
      return "held";
  }
  return "unknown";
}

uint8_t nack_code_for(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNoSpace:
      return peer::NackMsg::kNoSpace;
    case Status::Code::kRefused:
    case Status::Code::kInvalid:
      return peer::NackMsg::kRefused;
    case Status::Code::kCorrupt:
      return peer::NackMsg::kHashMismatch;
    case Status::Code::kConflict:
      return peer::NackMsg::kConflict;
    default:
      return peer::NackMsg::kRetry;
  }
}

std::string printable(std::string_view in) {
  std::string o;
  for (unsigned char ch : in.substr(0, 300)) {
    if (ch < 0x20 || ch == 0x7f)
      o += fmt::format("\\x{:02x}", ch);
    else
      o += static_cast<char>(ch);
  }
  if (in.size() > 300) o += "...";
  return o;
}

ClockSample clock_sample(int64_t t0, int64_t t1, int64_t t2, int64_t t3) {
  ClockSample c;
  c.offset_ms = ((static_cast<double>(t1 - t0) + static_cast<double>(t2 - t3)) / 2) / 1e6;
  c.rtt_ms = (static_cast<double>(t3 - t0) - static_cast<double>(t2 - t1)) / 1e6;
  return c;
}

Status send_nack(peer::Connection& c, uint64_t id, uint8_t code, const std::string& reason) {
  peer::NackMsg m;
  m.id = id;
  m.code = code;
  m.reason = reason.substr(0, peer::kMaxReasonLen);
  return send_msg(c, peer::FrameType::kNack, m);
}

Result<uint64_t> verdict_id(const peer::Frame& f) {
  if (f.type == peer::FrameType::kAck) {
    peer::IdMsg m;
    RECSYNC_RETURN_IF_ERROR(peer::decode(f.payload, &m));
    return m.id;
  }
  if (f.type == peer::FrameType::kNack) {
    peer::NackMsg m;
    RECSYNC_RETURN_IF_ERROR(peer::decode(f.payload, &m));
    return m.id;
  }
  return unexpected(f, "where an ACK or NACK belongs");
}

Status unexpected(const peer::Frame& f, const char* while_what) {
  return Status::corrupt(std::string("unexpected ") + peer::frame_type_name(f.type) + " " +
                         while_what);
}

}  // namespace recsync::replication
