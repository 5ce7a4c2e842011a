#include "recsync/hash.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <vector>

namespace recsync {
namespace {

// The baseline (non-dispatched) one-shot XXH3-128 of libxxhash, as text:
// hash.cc uses the dispatching entry points, so comparing them checks that
// the fast path gives the same digests.
std::string baseline_hex(const void* p, size_t n) {
  XXH128_hash_t h = XXH3_128bits(p, n);
  char buf[64];
  std::snprintf(buf, sizeof buf, "xxh128:%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}

TEST(Hash, KnownDigestOfEmptyInput) {
  EXPECT_EQ(hash_bytes("", 0), "xxh128:99aa06d3014798d86001c324468d497f");
  Hasher h;
  EXPECT_EQ(h.hex(), "xxh128:99aa06d3014798d86001c324468d497f");
}

TEST(Hash, StreamingEqualsOneShotAtEveryLengthAndChunkSize) {
  std::mt19937 rng(7);
  std::vector<unsigned char> data(300'000);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  // Lengths around XXH3's internal boundaries (16, 128, 240 bytes, 1 KiB
  // stripes blocks, the 256-byte buffer) and a large one.
  const size_t lengths[] = {0,   1,   3,    15,   16,   17,   128,   129,     240,     241,    255,
                            256, 257, 1023, 1024, 1025, 4096, 65537, 100'003, 299'999, 300'000};
  const size_t chunks[] = {1, 2, 3, 7, 15, 100, 10000, 200000};
  for (size_t len : lengths) {
    const std::string want = baseline_hex(data.data(), len);
    EXPECT_EQ(hash_bytes(data.data(), len), want) << "one-shot, length " << len;
    for (size_t c : chunks) {
      if (len > 5000 && c < 100) continue;  // enough coverage, far quicker
      Hasher h;
      for (size_t off = 0; off < len; off += c) h.update(data.data() + off, std::min(c, len - off));
      ASSERT_EQ(h.hex(), want) << "length " << len << " in chunks of " << c;
    }
  }
}

TEST(Hash, DifferentInputGivesADifferentDigest) {
  std::vector<unsigned char> a(4096, 0x55), b = a;
  b[4000] ^= 1;
  EXPECT_NE(hash_bytes(a.data(), a.size()), hash_bytes(b.data(), b.size()));
}

}  // namespace
}  // namespace recsync
