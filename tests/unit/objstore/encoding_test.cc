#include "objstore/encoding.h"

#include <gtest/gtest.h>

#include <random>

namespace recsync::objstore {
namespace {

std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, enc] : cases) {
    EXPECT_EQ(base64_encode(bytes(plain)), enc) << plain;
    auto d = base64_decode(enc);
    ASSERT_TRUE(d.has_value()) << enc;
    EXPECT_EQ(std::string(d->begin(), d->end()), plain);
  }
}

TEST(Base64, RoundTripsEveryLengthAndByte) {
  std::mt19937 rng(7);
  for (size_t len = 0; len < 70; ++len) {
    std::vector<uint8_t> v(len);
    for (auto& b : v) b = uint8_t(rng());
    auto d = base64_decode(base64_encode(v));
    ASSERT_TRUE(d.has_value()) << len;
    EXPECT_EQ(*d, v) << len;
  }
  std::vector<uint8_t> all(256);
  for (int i = 0; i < 256; ++i) all[size_t(i)] = uint8_t(i);
  EXPECT_EQ(*base64_decode(base64_encode(all)), all);
}

TEST(Base64, RejectsMalformed) {
  for (const char* bad :
       {"Zg=", "Zg", "Z===", "Zm9v=", "Zg==Zg==", "Zm9*", "Zm 9", "=Zm9", "Zm=v", "Zm9v\n"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

TEST(Md5, Rfc1321Vectors) {
  EXPECT_EQ(hex_lower(md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(hex_lower(md5("a")), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(hex_lower(md5("abc")), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(hex_lower(md5("message digest")), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(
      hex_lower(
          md5("12345678901234567890123456789012345678901234567890123456789012345678901234567890")),
      "57edf4a22be3c955ac49da2e2107b67a");
  // Content-MD5 as S3 documents it for "hello world" style checks.
  EXPECT_EQ(base64_encode(md5("")), "1B2M2Y8AsgTpgAmY7PhCfg==");
}

TEST(Md5, IncrementalEqualsOneShotAtEveryBufferSize) {
  std::string data(200000, '\0');
  std::mt19937 rng(1);
  for (auto& c : data) c = char(rng());
  auto whole = md5(data);
  for (size_t chunk : {1, 2, 3, 7, 15, 100, 10000, 200000}) {
    Md5 m;
    for (size_t off = 0; off < data.size(); off += chunk) {
      m.update(data.data() + off, std::min(chunk, data.size() - off));
    }
    EXPECT_EQ(m.finish(), whole) << chunk;
  }
  Md5 m;
  m.update("abc", 3);
  (void)m.finish();
  m.update("a", 1);
  EXPECT_EQ(hex_lower(m.finish()), "0cc175b9c0f1b6a831c399e269772661") << "finish() resets";
}

TEST(Sha256, KnownValues) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(UriEncode, AwsRules) {
  EXPECT_EQ(uri_encode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(uri_encode("a b+c/d=e&f", false), "a%20b%2Bc%2Fd%3De%26f");
  EXPECT_EQ(uri_encode("2026/12/06/call 1+2.wav", true), "2026/12/06/call%201%2B2.wav");
  EXPECT_EQ(uri_encode("\xc3\xa9*%", true), "%C3%A9%2A%25");  // upper-case hex, UTF-8 bytes
  EXPECT_EQ(uri_encode("", true), "");
}

TEST(CanonicalQuery, SortedEncodedAndEveryNameHasEquals) {
  EXPECT_EQ(canonical_query({}), "");
  EXPECT_EQ(canonical_query({{"versions", ""}, {"prefix", "a b"}}), "prefix=a%20b&versions=");
  EXPECT_EQ(canonical_query({{"uploadId", "x/y+z"}, {"partNumber", "2"}}),
            "partNumber=2&uploadId=x%2Fy%2Bz");
  EXPECT_EQ(canonical_query({{"legal-hold", ""}}), "legal-hold=");
  // Sorted by the encoded name (AWS), so "a%20" sorts before "aa".
  EXPECT_EQ(canonical_query({{"aa", "1"}, {"a ", "2"}}), "a%20=2&aa=1");
}

TEST(MultipartEtag, MatchesTheS3Formula) {
  auto a = md5("part one");
  auto b = md5("part two");
  std::string concat(reinterpret_cast<const char*>(a.data()), a.size());
  concat.append(reinterpret_cast<const char*>(b.data()), b.size());
  EXPECT_EQ(multipart_etag({a, b}), hex_lower(md5(concat)) + "-2");
}

TEST(ParseU64, DigitsOnly) {
  EXPECT_EQ(parse_u64("0"), 0u);
  EXPECT_EQ(parse_u64("18446744073709551"), 18446744073709551u);
  EXPECT_FALSE(parse_u64("").has_value());
  EXPECT_FALSE(parse_u64("-1").has_value());
  EXPECT_FALSE(parse_u64("12a").has_value());
  EXPECT_FALSE(parse_u64(" 1").has_value());
  EXPECT_FALSE(parse_u64("99999999999999999999").has_value());
}

}  // namespace
}  // namespace recsync::objstore
