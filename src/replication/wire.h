#pragma once
// Helpers the sender and the receiver share for the peer protocol
// (peer/frame.h): hash encoding, NACK codes, sending small messages, and
// making peer-supplied strings safe to log. Stateless; any thread.
#include <string>
#include <string_view>

#include "peer/connection.h"
#include "peer/frame.h"
#include "recsync/status.h"

namespace recsync::replication {

// "xxh128:<32 hex>" <-> 16 bytes. False on any other form.
bool hash_to_bytes(const std::string& h, uint8_t out[peer::kHashLen]);
std::string bytes_to_hash(const uint8_t in[peer::kHashLen]);

const char* nack_name(uint8_t code);
// The NACK code that tells the sender what to do about s.
uint8_t nack_code_for(const Status& s);

// A peer-supplied string made safe for one log line: control bytes as \xNN,
// at most 300 bytes.
std::string printable(std::string_view in);

// The peer's clock offset (its clock minus ours) and the round trip, from
// one PING/PONG's four wall-clock timestamps (ns): t0 PING sent, t1 PING
// received by the peer, t2 PONG sent by the peer, t3 PONG received. NTP's
// formulas; exact when the two directions take equally long.
struct ClockSample {
  double offset_ms = 0;
  double rtt_ms = 0;
};
ClockSample clock_sample(int64_t t0, int64_t t1, int64_t t2, int64_t t3);

// Encodes m and sends it as one frame of type t.
// (encode is found by argument-dependent lookup: peer:: or backfill::.)
template <typename Msg>
Status send_msg(peer::Connection& c, peer::FrameType t, const Msg& m) {
  std::vector<uint8_t> body;
  RECSYNC_RETURN_IF_ERROR(encode(m, body));
  return c.send(t, body);
}
inline Status send_id(peer::Connection& c, peer::FrameType t, uint64_t id) {
  return send_msg(c, t, peer::IdMsg{id});
}
// NACK{id, code, reason cut to kMaxReasonLen}.
Status send_nack(peer::Connection& c, uint64_t id, uint8_t code, const std::string& reason);
// The id an ACK or NACK frame answers (kCorrupt for any other frame).
Result<uint64_t> verdict_id(const peer::Frame& f);
// kCorrupt "unexpected <TYPE> <while>".
Status unexpected(const peer::Frame& f, const char* while_what);

}  // namespace recsync::replication
