#pragma once
// Helpers shared by the backfill unit tests: entry builders, and a raw writer
// that encodes bodies WITHOUT the encoders' checks (what a hostile or buggy
// peer can send).
#include <cstdint>
#include <string>
#include <vector>

#include "backfill/entry.h"
#include "backfill/messages.h"
#include "peer/frame.h"

namespace recsync::backfill::testing {

using Bytes = std::vector<uint8_t>;
inline constexpr size_t kSizes[] = {0, 1, 2, 3, 7, 15, 100, 10000, 200000};
inline constexpr int64_t kDay = 86'400'000;
// 2026-12-01T00:00:00Z
inline constexpr int64_t kT0 = 1796083200000;

inline void fill_hash(uint8_t* h, uint64_t seed) {
  for (size_t i = 0; i < kHashLen; ++i) h[i] = static_cast<uint8_t>(seed * 131 + i * 7 + 1);
}

inline ManifestEntry entry(std::string path, std::string origin = "fs1", uint64_t size = 1000,
                           int64_t rec_time = kT0, uint64_t hash_seed = 1, bool held = false) {
  ManifestEntry e;
  e.path = std::move(path);
  e.origin = std::move(origin);
  e.size = size;
  e.has_hash = hash_seed != 0;
  if (e.has_hash) fill_hash(e.hash, hash_seed);
  e.rec_time_ms = rec_time;
  e.held = held;
  return e;
}

inline HoldEntry hold(std::string path, std::string origin = "fs1", std::string reason = "case 7",
                      int64_t created = kT0) {
  HoldEntry h;
  h.path = std::move(path);
  h.origin = std::move(origin);
  h.has_hash = true;
  fill_hash(h.hash, 3);
  h.reason = std::move(reason);
  h.created_ms = created;
  return h;
}

// A valid path of exactly kMaxPathLen bytes (components within 255).
inline std::string max_path() {
  std::string p;
  for (int i = 0; i < 5; ++i) p += (i ? "/" : "") + std::string(204, char('a' + i));
  return p;  // 5 x 204 + 4 = 1024
}

// Raw MANIFEST body: no validation, count as given.
inline Bytes raw_manifest(uint64_t id, uint8_t last, uint32_t count,
                          const std::vector<ManifestEntry>& entries, uint8_t flags_or = 0) {
  Bytes b;
  peer::WireWriter w(b);
  w.u64(id);
  w.u8(last);
  w.u32(count);
  for (const ManifestEntry& e : entries) {
    w.str(e.path);
    w.str(e.origin);
    w.u64(e.size);
    w.u8(static_cast<uint8_t>((e.has_hash ? 1 : 0) | (e.held ? 2 : 0) | flags_or));
    if (e.has_hash) w.raw(e.hash);
    w.u64(static_cast<uint64_t>(e.rec_time_ms));
  }
  return b;
}
inline Bytes raw_manifest(uint64_t id, bool last, const std::vector<ManifestEntry>& entries) {
  return raw_manifest(id, last ? 1 : 0, static_cast<uint32_t>(entries.size()), entries);
}

inline Bytes frame_of(peer::FrameType t, const Bytes& body) {
  Bytes out;
  if (!peer::encode_frame(t, body, out).is_ok()) out.clear();
  return out;
}

}  // namespace recsync::backfill::testing
