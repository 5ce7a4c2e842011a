#pragma once
// What backfill compares: one manifest entry per recording, the rules its
// identity fields obey, and the digests that let two nodes compare a time
// range without listing it (SPEC 4.2 identity, 4.6 backfill).
//
// A recording's identity is (path, origin, hash):
//   path    archive-relative path in the origin node's namespace ("origin
//           path"); obeys peer::validate_peer_path (no "..", not absolute, no
//           NUL/control bytes, no empty or hidden components, <= 1024 bytes).
//   origin  name of the node that recorded it: 1..kMaxOriginLen bytes, no
//           control byte (< 0x20, 0x7f), no '/'.
//   hash    XXH3-128 of the content, big-endian (recsync/hash.h); unknown
//           (has_hash = false) for a file adopted from an old archive and not
//           hashed yet.
// Manifest streams are sorted strictly increasing by key (path, origin),
// compared bytewise (unsigned, as memcmp; SQLite's BINARY collation and
// std::string::compare agree).
//
// Range digests: a range is [t0, t1) of recording time (rec_time_ms). Its
// digest is the count of entries with rec_time in the range and the sum mod
// 2^64 of entry_digest() over them. A sum is order-free, so each node computes
// it from its own index (any order, one pass, O(1) memory) and two nodes that
// hold the same recordings in a range get the same digest.
//
// Everything here is pure and thread-safe (no state, no I/O).
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "peer/frame.h"
#include "recsync/status.h"

namespace recsync::backfill {

inline constexpr size_t kHashLen = peer::kHashLen;        // 16
inline constexpr size_t kMaxPathLen = peer::kMaxPathLen;  // 1024, as validate_peer_path
inline constexpr size_t kMaxOriginLen = 255;
inline constexpr size_t kMaxHoldReasonLen = peer::kMaxReasonLen;  // 1024

// One recording as listed in a MANIFEST frame.
struct ManifestEntry {
  std::string path;    // origin path (see above)
  std::string origin;  // node that recorded it
  uint64_t size = 0;
  bool has_hash = false;
  uint8_t hash[kHashLen]{};  // meaningful only when has_hash; not sent otherwise
  int64_t rec_time_ms = 0;   // recording time, ms since the epoch (the same on every node:
                             // a receiver takes it from the sender's mtime)
  bool held = false;         // the listing node holds it (legal hold)

  bool operator==(const ManifestEntry&) const = default;
};

// A recording's identity plus its size: what PULL names.
struct RecordingRef {
  std::string path;
  std::string origin;
  uint64_t size = 0;
  bool has_hash = false;
  uint8_t hash[kHashLen]{};

  bool operator==(const RecordingRef&) const = default;
};
RecordingRef ref_of(const ManifestEntry& e);

// One hold as sent in HOLDS (a rebuilt node gets its holds back).
struct HoldEntry {
  std::string path;
  std::string origin;
  bool has_hash = false;
  uint8_t hash[kHashLen]{};
  std::string reason;  // at most kMaxHoldReasonLen bytes
  int64_t created_ms = 0;

  bool operator==(const HoldEntry&) const = default;
};

// Bytewise order of (path, origin): negative, zero or positive.
int compare_key(std::string_view path_a, std::string_view origin_a, std::string_view path_b,
                std::string_view origin_b);
template <typename A, typename B>
int compare_key(const A& a, const B& b) {
  return compare_key(a.path, a.origin, b.path, b.origin);
}

// OK, or kRefused naming the rule broken (origin shown printable).
Status validate_origin(std::string_view origin);
// validate_peer_path(path) and validate_origin(origin); kRefused.
Status validate_identity(std::string_view path, std::string_view origin);

// Peer-supplied text made safe for a log line or an error message: bytes
// < 0x20, 0x7f, '\\' and '"' as \xNN; cut to `max` bytes with "..." after.
std::string printable(std::string_view s, size_t max = 200);
// "\"path\" (origin)", printable, for messages.
std::string describe_key(std::string_view path, std::string_view origin);

// XXH3_64 (seed 0) of the canonical encoding of (path, hash or unknown, size):
//   u32 big-endian length of path, the path bytes,
//   u8 1 then the 16 hash bytes, or u8 0 when the hash is unknown,
//   u64 big-endian size.
// This is part of the protocol: both nodes must compute it the same way.
// The origin is deliberately left out: a node whose state was rebuilt from a
// scan of its archive may not know which node recorded a file, and must still
// produce the same digest as its peer for the same bytes at the same path.
// (Entries are still merged by (path, origin); see merge.h.) rec_time and
// held are left out too: rec_time only places the entry in a range, and a
// hold is exchanged separately (HOLDS).
uint64_t entry_digest(std::string_view path, bool has_hash, const uint8_t* hash, uint64_t size);
inline uint64_t entry_digest(const ManifestEntry& e) {
  return entry_digest(e.path, e.has_hash, e.hash, e.size);
}

// Count and digest of the entries of one range (the body of DIGEST_REP).
struct RangeDigest {
  uint64_t count = 0;
  uint64_t digest = 0;  // sum mod 2^64 of entry_digest
  void add(const ManifestEntry& e) { add(entry_digest(e)); }
  void add(uint64_t entry_digest_value) {
    ++count;
    digest += entry_digest_value;  // unsigned: wraps mod 2^64
  }
  bool operator==(const RangeDigest&) const = default;
};

// The state store's hash text ("xxh128:" + 32 lower hex digits, recsync/hash.h)
// to the wire's 16 big-endian bytes and back. hash_from_text: OK with
// *has_hash = false for "" (not computed), OK with *has_hash = true for a
// well-formed hash, kInvalid for anything else.
Status hash_from_text(std::string_view text, bool* has_hash, uint8_t out[kHashLen]);
std::string hash_to_text(bool has_hash, const uint8_t hash[kHashLen]);  // "" when unknown

}  // namespace recsync::backfill
