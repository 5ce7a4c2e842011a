// Writes seed inputs for manifest_fuzz into the folder given as argv[1]:
// well-formed backfill conversations built with the real encoders, so the
// fuzzer starts past the length prefixes and the path rules (random bytes
// almost never make a valid MANIFEST entry) and mutates from there.
// Input layout as manifest_fuzz.cc expects: chunk selector, mode, frames.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "backfill/messages.h"
#include "peer/frame.h"

using namespace recsync;
using namespace recsync::backfill;
using Bytes = std::vector<uint8_t>;

namespace {

ManifestEntry entry(const std::string& path, const std::string& origin, int64_t t, bool hash,
                    bool held) {
  ManifestEntry e;
  e.path = path;
  e.origin = origin;
  e.size = 1234;
  e.has_hash = hash;
  for (size_t i = 0; i < kHashLen && hash; ++i) e.hash[i] = static_cast<uint8_t>(i * 17 + 1);
  e.rec_time_ms = t;
  e.held = held;
  return e;
}

template <typename Msg>
void frame(peer::FrameType t, const Msg& m, Bytes& out) {
  if (!peer::encode_message(t, m, out).is_ok()) std::abort();
}

void write(const std::string& dir, const std::string& name, uint8_t chunk, uint8_t mode,
           const Bytes& frames) {
  std::string path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  Bytes all = {chunk, mode};
  all.insert(all.end(), frames.begin(), frames.end());
  std::fwrite(all.data(), 1, all.size(), f);
  std::fclose(f);
}

// A LIST_REQ and its answer in two MANIFEST frames.
Bytes listing(ListKind kind, int64_t t0, int64_t t1, const std::vector<ManifestEntry>& v) {
  Bytes out;
  frame(peer::FrameType::kListReq, ListReqMsg{5, kind, {t0, t1}}, out);
  size_t half = v.size() / 2;
  frame(peer::FrameType::kManifest,
        ManifestMsg{5, false, std::vector<ManifestEntry>(v.begin(), v.begin() + half)}, out);
  frame(peer::FrameType::kManifest,
        ManifestMsg{5, true, std::vector<ManifestEntry>(v.begin() + half, v.end())}, out);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  std::vector<ManifestEntry> in_range = {
      entry("2026/12/01/a.wav", "fs1", 10, true, false),
      entry("2026/12/01/a.wav", "fs2", 11, false, false),
      entry("a", "fs1", 12, false, false),  // also in the merger's local list (size 3)
      entry("b.wav", "fs1", 999, true, true), entry("x/y.wav", "n1", 0, false, false)};
  in_range[2].size = 3;
  write(dir, "range", 1, 0, listing(ListKind::kRange, 0, 1000, in_range));
  write(dir, "range_chunked", 4, 0x80, listing(ListKind::kRange, 0, 1000, in_range));
  const std::vector<ManifestEntry> held = {entry("old/a.wav", "fs1", -50000, true, true),
                                           entry("z.wav", "fs2", 5000, false, true)};
  write(dir, "held", 6, 1, listing(ListKind::kHeld, 0, 1000, held));

  // A MANIFEST body with no frame header, for the raw path (id 0, range
  // [INT64_MIN, 0)).
  Bytes raw;
  if (!encode(ManifestMsg{0,
                          true,
                          {entry("r/a.wav", "fs1", -5, true, false),
                           entry("r/b.wav", "fs1", -4, false, false)}},
              raw)
           .is_ok())
    std::abort();
  write(dir, "raw_manifest", 8, 0, raw);

  Bytes digests;
  frame(peer::FrameType::kDigestReq,
        DigestReqMsg{7, {{0, 86'400'000}, {86'400'000, 86'400'000 * 2}, {1LL << 40, 1LL << 41}}},
        digests);
  frame(peer::FrameType::kDigestRep, DigestRepMsg{7, {{0, 0}, {300, 12345}, {3, 9}}}, digests);
  write(dir, "digests", 2, 0, digests);

  Bytes pulls;
  PullMsg pull{9, {}};
  for (const ManifestEntry& e : in_range) pull.recordings.push_back(ref_of(e));
  frame(peer::FrameType::kPull, pull, pulls);
  frame(peer::FrameType::kHoldsReq, HoldsReqMsg{0}, pulls);
  HoldEntry h;
  h.path = "2026/12/01/a.wav";
  h.origin = "fs1";
  h.has_hash = true;
  h.reason = "case 12";
  h.created_ms = 77;
  frame(peer::FrameType::kHolds, HoldsMsg{0, false, {h}}, pulls);
  h.path = "2026/12/02/b.wav";
  h.has_hash = false;
  frame(peer::FrameType::kHolds, HoldsMsg{0, true, {h}}, pulls);
  write(dir, "pull_holds", 3, 0, pulls);
  return 0;
}
