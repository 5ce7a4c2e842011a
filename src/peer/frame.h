#pragma once
// Wire framing and message bodies of the peer protocol (inside TLS).
//
// Frame: u32 big-endian length L (of type + payload, 1 <= L <= kMaxFrameLen),
// u8 type, L-1 payload bytes. A larger length, L = 0 or an unknown type is
// kCorrupt: the connection is dropped.
//
// Proposed protocol (one transfer shown; `id` lets both sides pipeline):
//   both      HELLO{version, node}            first frame each way after TLS
//   sender    OFFER{id, path, size, hash, mtime_ns}
//   receiver  ACK{id}                          already has it (same hash), or
//             SIGNATURE{id, bytes}...  END{id} signature of its basis (partial
//                                              temp or older file; empty basis ok)
//   sender    DELTA{id, bytes}...      END{id} librsync delta against it; when
//                                              the signature has no blocks (empty
//                                              basis) the file's bytes as they are
//   receiver  ACK{id} after hash check + fsync + rename + dir fsync, or
//             NACK{id, code, reason}          (sender retries later / gives up)
//   either    PING{nonce} -> PONG{nonce}      liveness
//   sender    HOLD{id, op, target, reason, created_ms}
//   receiver  ACK{id} once the hold is stored, or NACK
//             (holds placed on one node are copied to its peers)
//   sender    ERASE{id, origin, path, hash, reason, erased_ms, uid}   (version 3)
//   receiver  ACK{id} once erased there (files gone, tombstone stored), or
//             NACK{id, kHeld} (a hold there keeps it) / NACK{id, kRetry}
// Backfill (SPEC 4.6; bodies and their limits in backfill/messages.h):
//   initiator DIGEST_REQ{id, ranges}  -> DIGEST_REP{id, (count, digest) per range}
//   initiator LIST_REQ{id, kind, t0, t1} -> MANIFEST{id, last, entries}... until last
//   initiator PULL{id, recordings}    -> ACK{id} once queued at backfill priority, or NACK
//   initiator HOLDS_REQ{id}           -> HOLDS{id, last, holds}... until last
// END closes whichever stream the side sending it was sending for `id`.
// Body fields: integers big-endian; strings and byte blobs are a u32 length
// then bytes, each with a maximum; decoders reject truncation, oversized
// fields and trailing bytes (kCorrupt).
//
// Thread safety: none; FrameParser belongs to one connection/thread.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "recsync/status.h"

namespace recsync::peer {

enum class FrameType : uint8_t {
  kHello = 1,
  kOffer = 2,
  kSignature = 3,
  kDelta = 4,
  kEnd = 5,
  kAck = 6,
  kNack = 7,
  kPing = 8,
  kPong = 9,
  kHold = 10,
  // Backfill; bodies in backfill/messages.h.
  kDigestReq = 11,
  kDigestRep = 12,
  kListReq = 13,
  kManifest = 14,
  kPull = 15,
  kHoldsReq = 16,
  kHolds = 17,
  kPullRep = 18,
  kErase = 19,  // protocol version 3
};
bool is_known_frame_type(uint8_t t);
const char* frame_type_name(FrameType t);

inline constexpr size_t kFrameHeaderLen = 5;                  // u32 length + u8 type
inline constexpr size_t kMaxFramePayload = 1 << 20;           // 1 MiB
inline constexpr size_t kMaxFrameLen = kMaxFramePayload + 1;  // value of the length field
// Data chunk per SIGNATURE/DELTA frame: the payload minus the id and blob length.
inline constexpr size_t kMaxChunk = kMaxFramePayload - 8 - 4;
// 2: HELLO names its lane, OFFER its origin, HOLD the identity it holds,
// PING/PONG carry wall-clock timestamps; backfill frames 11-18.
// 3: ERASE (19). A receiver answers HELLO with the older of the two
// versions; a sender accepts a peer of kMinProtocolVersion or later (a
// version-2 node drops a link whose HELLO names 3: the sender then says 2 on
// the next link). With a version-2 peer everything but ERASE works, and
// erasures wait in the queue until the peer is upgraded.
inline constexpr uint32_t kProtocolVersion = 3;
inline constexpr uint32_t kMinProtocolVersion = 2;
inline constexpr uint32_t kEraseVersion = 3;  // the first version with ERASE
inline constexpr size_t kMaxNodeName = 255;
inline constexpr size_t kMaxPathLen = 1024;  // same limit as validate_peer_path
inline constexpr size_t kMaxReasonLen = 1024;
inline constexpr size_t kHashLen = 16;  // XXH3-128, big-endian

struct Frame {
  FrameType type{};
  std::vector<uint8_t> payload;
};

// Appends one frame to `out`. kInvalid if the payload exceeds
// kMaxFramePayload or the type is unknown (nothing appended then).
Status encode_frame(uint8_t type, std::span<const uint8_t> payload, std::vector<uint8_t>& out);
inline Status encode_frame(FrameType type, std::span<const uint8_t> payload,
                           std::vector<uint8_t>& out) {
  return encode_frame(static_cast<uint8_t>(type), payload, out);
}

// Incremental frame parser: feed bytes in any chunking (empty spans too);
// every complete frame is passed to on_frame in order. Memory: at most one
// frame (kMaxFrameLen) buffered. The first error (bad header, or a non-OK
// Status from on_frame, which stops parsing) is returned and is sticky.
class FrameParser {
 public:
  using OnFrame = std::function<Status(Frame&&)>;
  Status feed(std::span<const uint8_t> in, const OnFrame& on_frame);

  // Zero-copy feeding (what Connection does with TLS plaintext): buffer() is
  // where the next bytes of the stream belong, the rest of the header or of
  // the payload being assembled (never empty); commit(n) says its first n
  // bytes were written (n larger than buffer().size() is kInvalid, sticky).
  // feed() is buffer() + memcpy + commit().
  std::span<uint8_t> buffer();
  Status commit(size_t n, const OnFrame& on_frame);

  // True between frames (no partial frame buffered): a clean place for EOF.
  bool idle() const { return header_got_ == 0; }

 private:
  Status emit(const OnFrame& on_frame);

  uint8_t header_[kFrameHeaderLen]{};
  size_t header_got_ = 0;
  size_t payload_len_ = 0;
  size_t payload_got_ = 0;
  Frame cur_;
  Status error_;
};

// ------------------------------------------------------------- body codecs

// Appends big-endian integers and length-prefixed fields.
class WireWriter {
 public:
  explicit WireWriter(std::vector<uint8_t>& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(v); }
  void u32(uint32_t v);
  void u64(uint64_t v);
  void bytes(std::span<const uint8_t> b);  // u32 length + bytes
  void str(std::string_view s);            // u32 length + bytes
  void raw(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }

 private:
  std::vector<uint8_t>& out_;
};

// Reads what WireWriter wrote, with bounds checks: every getter fails with
// kCorrupt on truncation, or a length above `max`. `what` names the field.
class WireReader {
 public:
  explicit WireReader(std::span<const uint8_t> in) : in_(in) {}
  Status u8(uint8_t* v, const char* what);
  Status u32(uint32_t* v, const char* what);
  Status u64(uint64_t* v, const char* what);
  Status bytes(std::vector<uint8_t>* v, size_t max, const char* what);
  // Borrowed view into the input (valid while the input lives).
  Status bytes_view(std::span<const uint8_t>* v, size_t max, const char* what);
  Status str(std::string* v, size_t max, const char* what);
  Status raw(uint8_t* dst, size_t n, const char* what);
  // kCorrupt if anything is left.
  Status expect_end(const char* msg) const;

 private:
  std::span<const uint8_t> in_;
};

// The two links a sender keeps to a peer: live recordings never wait behind
// backfill (SPEC 4.6).
enum class Lane : uint8_t { kLive = 0, kBackfill = 1 };
struct HelloMsg {
  uint32_t version = kProtocolVersion;
  std::string node;         // 1..kMaxNodeName bytes
  Lane lane = Lane::kLive;  // decode rejects other values
};
struct OfferMsg {
  uint64_t id = 0;
  std::string path;    // the origin path (archive/placement.h); validate_peer_path
  std::string origin;  // the node that recorded it, 1..kMaxNodeName bytes
  uint64_t size = 0;
  uint8_t hash[kHashLen]{};
  int64_t mtime_ns = 0;
};
// SIGNATURE and DELTA frames share this body. `data` is at most kMaxChunk.
struct ChunkMsg {
  uint64_t id = 0;
  std::vector<uint8_t> data;
};
struct IdMsg {  // END, ACK
  uint64_t id = 0;
};
struct NackMsg {
  // kConflict: the receiver holds other content under this identity; the
  // sender drops the entry (neither copy is overwritten).
  // kHeld: (ERASE) a hold on the receiver keeps the recording; not erased.
  enum Code : uint8_t {
    kRetry = 1,
    kRefused = 2,
    kHashMismatch = 3,
    kNoSpace = 4,
    kConflict = 5,
    kHeld = 6
  };
  uint64_t id = 0;
  uint8_t code = kRetry;
  std::string reason;  // at most kMaxReasonLen bytes
};
// PING carries its send time t0; the PONG echoes nonce and t0 and adds when
// the peer received the PING (t1) and sent the PONG (t2), all wall-clock ns
// since the epoch: with the PONG's arrival t3 the sender gets the peer's
// clock offset ((t1 - t0) + (t2 - t3)) / 2 and the round trip
// (t3 - t0) - (t2 - t1), as NTP does.
struct PingMsg {  // PING, PONG
  uint64_t nonce = 0;
  int64_t t0_ns = 0, t1_ns = 0, t2_ns = 0;
};
inline constexpr size_t kMaxHoldTarget = 1024;
struct HoldMsg {
  enum Op : uint8_t { kAdd = 1, kRelease = 2 };
  uint64_t id = 0;
  uint8_t op = kAdd;   // decode rejects other values
  std::string target;  // recording id or archive-relative path, 1..kMaxHoldTarget bytes
  std::string reason;  // at most kMaxReasonLen bytes
  int64_t created_ms = 0;
  // An identity hold (has_hash): the recording (origin, origin_rel, hash);
  // origin 1..kMaxNodeName bytes, origin_rel a valid peer path. A name hold
  // has none of them.
  std::string origin, origin_rel;
  bool has_hash = false;
  uint8_t hash[kHashLen]{};
};

// One recording erased on the sender's node (SPEC 4.4): the receiver
// erases its copies of that identity and keeps a tombstone.
struct EraseMsg {
  uint64_t id = 0;
  std::string origin;      // the node that recorded it, 1..kMaxNodeName bytes
  std::string origin_rel;  // its origin path, 1..kMaxPathLen bytes
  uint8_t hash[kHashLen]{};
  std::string reason;  // at most kMaxReasonLen bytes
  int64_t erased_ms = 0;
  int64_t uid = -1;  // the operator's uid on the node it was asked on (-1: none)
};

// encode() appends the body (not the frame header) and returns kInvalid when
// a field breaks its limit. decode() parses a whole body (kCorrupt on any
// violation).
Status encode(const HelloMsg& m, std::vector<uint8_t>& out);
Status encode(const OfferMsg& m, std::vector<uint8_t>& out);
Status encode(const ChunkMsg& m, std::vector<uint8_t>& out);
Status encode(const IdMsg& m, std::vector<uint8_t>& out);
Status encode(const NackMsg& m, std::vector<uint8_t>& out);
Status encode(const PingMsg& m, std::vector<uint8_t>& out);
Status encode(const HoldMsg& m, std::vector<uint8_t>& out);
Status encode(const EraseMsg& m, std::vector<uint8_t>& out);
Status decode(std::span<const uint8_t> body, HelloMsg* m);
Status decode(std::span<const uint8_t> body, OfferMsg* m);
Status decode(std::span<const uint8_t> body, ChunkMsg* m);
Status decode(std::span<const uint8_t> body, IdMsg* m);
Status decode(std::span<const uint8_t> body, NackMsg* m);
Status decode(std::span<const uint8_t> body, PingMsg* m);
Status decode(std::span<const uint8_t> body, HoldMsg* m);
Status decode(std::span<const uint8_t> body, EraseMsg* m);

// Without copying the data: encode_chunk appends a SIGNATURE/DELTA body for
// (id, data) to out; decode_chunk_view points `data` into `body` (valid while
// body lives). Same limits and errors as the ChunkMsg codecs.
Status encode_chunk(uint64_t id, std::span<const uint8_t> data, std::vector<uint8_t>& out);
// The body without its data: what precedes `data_len` bytes of data (the id
// and the data's length), for a sender that writes the data from where it is
// (Connection::queue with a head and a tail). kInvalid above kMaxChunk.
inline constexpr size_t kChunkHeadLen = 8 + 4;
Status encode_chunk_head(uint64_t id, size_t data_len, uint8_t out[kChunkHeadLen]);
Status decode_chunk_view(std::span<const uint8_t> body, uint64_t* id,
                         std::span<const uint8_t>* data);

// Encodes a body and wraps it in a frame of the given type, appended to out.
template <typename Msg>
Status encode_message(FrameType type, const Msg& m, std::vector<uint8_t>& out) {
  std::vector<uint8_t> body;
  RECSYNC_RETURN_IF_ERROR(encode(m, body));
  return encode_frame(type, body, out);
}

}  // namespace recsync::peer
