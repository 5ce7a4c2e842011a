#include "backfill/entry.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "backfill_test_util.h"
#include "recsync/hash.h"

namespace recsync::backfill {
namespace {

using namespace testing;

TEST(Entry, KeyOrderIsBytewiseUnsigned) {
  // Path first, then origin; bytes compare unsigned (0xc3 after 'z'), a
  // prefix sorts first.
  EXPECT_LT(compare_key("a", "fs2", "b", "fs1"), 0);
  EXPECT_LT(compare_key("a", "fs1", "a", "fs2"), 0);
  EXPECT_EQ(compare_key("a", "fs1", "a", "fs1"), 0);
  EXPECT_LT(compare_key("a", "zz", "a/b", "aa"), 0);
  EXPECT_LT(compare_key("z.wav", "fs1", "\xc3\xa9.wav", "fs1"), 0);
  EXPECT_GT(compare_key("\xc3\xa9.wav", "fs1", "z.wav", "fs1"), 0);
  EXPECT_LT(compare_key("A", "fs1", "a", "fs1"), 0);
  EXPECT_GT(compare_key(entry("b"), entry("a")), 0);
}

TEST(Entry, OriginRules) {
  struct Case {
    std::string origin;
    bool ok;
  };
  const Case cases[] = {
      {"fs1", true},
      {std::string(kMaxOriginLen, 'n'), true},
      {std::string(kMaxOriginLen + 1, 'n'), false},
      {"", false},
      {"fs/1", false},
      {std::string("fs\0", 3), false},
      {"fs\n1", false},
      {"fs\x7f", false},
      {"n\xc3\xa9ud", true},  // UTF-8 is fine
      {"with space", true},
  };
  for (const Case& c : cases) {
    Status s = validate_origin(c.origin);
    EXPECT_EQ(s.is_ok(), c.ok) << printable(c.origin) << ": " << s.to_string();
    if (!c.ok) {
      EXPECT_EQ(s.code(), Status::Code::kRefused);
    }
  }
  EXPECT_TRUE(validate_identity("2026/12/01/a.wav", "fs1").is_ok());
  EXPECT_EQ(validate_identity("../a.wav", "fs1").code(), Status::Code::kRefused);
  EXPECT_EQ(validate_identity("a.wav", "").code(), Status::Code::kRefused);
}

TEST(Entry, PrintableEscapesAndCuts) {
  EXPECT_EQ(printable(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(printable("q\"\\\n\x7f"), "q\\x22\\x5c\\x0a\\x7f");
  EXPECT_EQ(printable(std::string(300, 'x')), std::string(200, 'x') + "...");
  EXPECT_EQ(printable("abc", 2), "ab...");
  EXPECT_EQ(describe_key("a\x01", "fs1"), "\"a\\x01\" (fs1)");
}

// The canonical encoding written out by hand, hashed with libxxhash directly.
uint64_t reference_digest(const std::string& path, const uint8_t* hash, uint64_t size) {
  Bytes b;
  peer::WireWriter w(b);
  w.str(path);
  w.u8(hash ? 1 : 0);
  if (hash) w.raw(std::span(hash, kHashLen));
  w.u64(size);
  return XXH3_64bits(b.data(), b.size());
}

TEST(Entry, DigestIsTheDocumentedEncoding) {
  ManifestEntry e = entry("2026/12/01/x.wav", "fs1", 12345, kT0, 9);
  EXPECT_EQ(entry_digest(e), reference_digest(e.path, e.hash, e.size));
  ManifestEntry u = entry("2026/12/01/x.wav", "fs1", 12345, kT0, 0);
  EXPECT_EQ(entry_digest(u), reference_digest(u.path, nullptr, u.size));
  EXPECT_NE(entry_digest(e), entry_digest(u));  // unknown hash differs from any hash
  // A path longer than the limit still hashes (no overflow of the stack buffer).
  std::string longp(5000, 'p');
  EXPECT_EQ(entry_digest(longp, true, e.hash, 1), reference_digest(longp, e.hash, 1));
}

TEST(Entry, DigestIgnoresOriginTimeAndHoldButNotContent) {
  ManifestEntry a = entry("d/x.wav", "fs1", 10, kT0, 5);
  ManifestEntry b = a;
  b.origin = "fs2";
  b.rec_time_ms += 1;
  b.held = true;
  EXPECT_EQ(entry_digest(a), entry_digest(b));
  ManifestEntry c = a;
  c.size = 11;
  EXPECT_NE(entry_digest(a), entry_digest(c));
  ManifestEntry d = a;
  d.hash[15] ^= 1;
  EXPECT_NE(entry_digest(a), entry_digest(d));
  ManifestEntry p = a;
  p.path = "d/y.wav";
  EXPECT_NE(entry_digest(a), entry_digest(p));
  // Path and size fields cannot bleed into each other: length-prefixed.
  EXPECT_NE(entry_digest("ab", false, nullptr, 0), entry_digest("a", false, nullptr, 0));
}

TEST(Entry, RangeDigestIsOrderFreeAndWraps) {
  std::vector<ManifestEntry> v;
  for (int i = 0; i < 50; ++i) v.push_back(entry("f" + std::to_string(i), "fs1", i, kT0, i + 1));
  RangeDigest fwd, back;
  for (const auto& e : v) fwd.add(e);
  std::reverse(v.begin(), v.end());
  for (const auto& e : v) back.add(e);
  EXPECT_EQ(fwd, back);
  EXPECT_EQ(fwd.count, 50u);
  RangeDigest w;
  w.add(~uint64_t{0});
  w.add(2);
  EXPECT_EQ(w.digest, 1u);  // mod 2^64
  EXPECT_EQ(w.count, 2u);
  RangeDigest missing_one;
  for (size_t i = 1; i < v.size(); ++i) missing_one.add(v[i]);
  EXPECT_NE(missing_one, fwd);
}

TEST(Entry, HashTextRoundTrip) {
  uint8_t h[kHashLen];
  bool has = true;
  ASSERT_TRUE(hash_from_text("", &has, h).is_ok());
  EXPECT_FALSE(has);
  EXPECT_EQ(hash_to_text(false, h), "");
  std::string text = "xxh128:000102030405060708090a0b0c0d0eff";
  ASSERT_TRUE(hash_from_text(text, &has, h).is_ok());
  EXPECT_TRUE(has);
  EXPECT_EQ(h[0], 0x00);
  EXPECT_EQ(h[1], 0x01);
  EXPECT_EQ(h[15], 0xff);
  EXPECT_EQ(hash_to_text(true, h), text);
  // The hash of real bytes, as the archive writes it.
  std::string real = hash_bytes("abc", 3);
  ASSERT_TRUE(hash_from_text(real, &has, h).is_ok());
  EXPECT_EQ(hash_to_text(true, h), real);
  for (const char* bad :
       {"xxh128:00", "md5:000102030405060708090a0b0c0d0eff",
        "xxh128:000102030405060708090a0b0c0d0eFF", "xxh128:000102030405060708090a0b0c0d0eg0"}) {
    EXPECT_EQ(hash_from_text(bad, &has, h).code(), Status::Code::kInvalid) << bad;
    EXPECT_FALSE(has);
  }
}

}  // namespace
}  // namespace recsync::backfill
