// Pure parts of the client: multipart planning, and the checks on keys,
// metadata, buckets and endpoints that run before anything is sent.
#include <gtest/gtest.h>

#include "objstore/multipart.h"
#include "objstore/s3_client.h"

namespace recsync::objstore {
namespace {

constexpr uint64_t kMiB = 1 << 20;

TEST(PlanParts, SplitsAtThePartSizeWithTheRestLast) {
  auto p = plan_parts(13 * kMiB + 5, 5 * kMiB);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0], (PartRange{1, 0, 5 * kMiB}));
  EXPECT_EQ(p[1], (PartRange{2, 5 * kMiB, 5 * kMiB}));
  EXPECT_EQ(p[2], (PartRange{3, 10 * kMiB, 3 * kMiB + 5}));
  EXPECT_EQ(plan_parts(10 * kMiB, 5 * kMiB).size(), 2u);
  EXPECT_EQ(plan_parts(10 * kMiB + 1, 5 * kMiB).size(), 3u);
  EXPECT_EQ(plan_parts(0, 5 * kMiB), (std::vector<PartRange>{{1, 0, 0}}));
  EXPECT_EQ(plan_parts(1, 5 * kMiB), (std::vector<PartRange>{{1, 0, 1}}));
}

TEST(PlanParts, ClampsToS3Limits) {
  // Below the 5 MiB minimum: raised.
  EXPECT_EQ(plan_parts(12 * kMiB, 1024)[0].length, kMinPartSize);
  // More than 10000 parts: the part size grows.
  uint64_t huge = 100000ull * kMiB;
  auto p = plan_parts(huge, 5 * kMiB);
  EXPECT_LE(p.size(), size_t(kMaxParts));
  uint64_t sum = 0;
  for (const auto& r : p) {
    EXPECT_EQ(r.offset, sum);
    sum += r.length;
  }
  EXPECT_EQ(sum, huge);
  EXPECT_EQ(plan_parts(20ull << 30, 100ull << 30)[0].length, kMaxPartSize);
}

TEST(PartsToSend, OnlyMissingOrDifferentParts) {
  std::vector<LocalPart> local = {{1, 5, "aa"}, {2, 5, "bb"}, {3, 2, "cc"}, {4, 1, "dd"}};
  std::vector<Part> stored = {{1, "aa", 5}, {2, "xx", 5}, {3, "cc", 3}, {9, "zz", 1}};
  EXPECT_EQ(parts_to_send(local, stored), (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(parts_to_send(local, {}), (std::vector<int>{1, 2, 3, 4}));
  std::vector<Part> all = {{4, "dd", 1}, {3, "cc", 2}, {2, "bb", 5}, {1, "aa", 5}};
  EXPECT_TRUE(parts_to_send(local, all).empty());
}

TEST(Checks, Keys) {
  EXPECT_EQ(check_key("2026/12/06/call-1.wav"), "");
  EXPECT_EQ(check_key("a b+c/\xc3\xa9.wav"), "");
  EXPECT_EQ(check_key("dir/"), "");  // a trailing '/' is a key like any other
  for (std::string bad : {std::string(""), std::string("/abs"), std::string("a//b"),
                          std::string("a/./b"), std::string("../b"), std::string("a/.."),
                          std::string("a\nb"), std::string("a\0b", 3), std::string(1025, 'k')}) {
    EXPECT_NE(check_key(bad), "") << bad;
  }
}

TEST(Checks, Metadata) {
  EXPECT_EQ(check_metadata({{"xxh3", "xxh128:00ff"}, {"rec-time_ms", "1700000000000"}}), "");
  EXPECT_NE(check_metadata({{"Upper", "x"}}), "");
  EXPECT_NE(check_metadata({{"", "x"}}), "");
  EXPECT_NE(check_metadata({{"a", "line\r\nx-amz-evil: 1"}}), "");  // no header injection
  EXPECT_NE(check_metadata({{"a", "\xc3\xa9"}}), "");
  EXPECT_NE(check_metadata({{"a", " padded"}}), "");
  EXPECT_NE(check_metadata({{"a", std::string(2100, 'v')}}), "");
}

TEST(Checks, BucketsAndEndpoints) {
  EXPECT_EQ(check_bucket("recsync-archive.1"), "");
  for (const char* bad : {"ab", "Upper", "-lead", "trail-", "under_score",
                          "0123456789012345678901234567890123456789012345678901234567890123"}) {
    EXPECT_NE(check_bucket(bad), "") << bad;
  }
  EXPECT_EQ(check_endpoint("http://127.0.0.1:7480"), "");
  EXPECT_EQ(check_endpoint("https://s3.example.net/"), "");
  for (const char* bad : {"127.0.0.1:7480", "ftp://x", "http://", "http://h/path",
                          "http://user:pw@h", "http://h?x=1"}) {
    EXPECT_NE(check_endpoint(bad), "") << bad;
  }
  S3Options o;
  o.endpoint = "http://user:secret@h";
  o.bucket = "bucket";
  auto c = S3Client::make(o);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), Status::Code::kInvalid);
  o.endpoint = "http://127.0.0.1:1";
  o.bucket = "B";
  EXPECT_FALSE(S3Client::make(o).is_ok());
  o.bucket = "bucket";
  EXPECT_TRUE(S3Client::make(o).is_ok());
}

TEST(Checks, BadKeysFailBeforeAnythingIsSent) {
  S3Options o;
  o.endpoint = "http://127.0.0.1:1";
  o.bucket = "bucket";
  auto c = S3Client::make(o);
  ASSERT_TRUE(c.is_ok());
  auto h = (*c)->head_object("a/../b");
  ASSERT_FALSE(h.is_ok());
  EXPECT_EQ(h.kind(), ErrorKind::kOther);
  PutOptions po;
  po.metadata["x"] = "a\nb";
  auto p = (*c)->put_object("k", FileRange{0, 0, 0}, po);
  EXPECT_EQ(p.kind(), ErrorKind::kOther);
  EXPECT_EQ((*c)->stats().requests, 0u);
}

}  // namespace
}  // namespace recsync::objstore
