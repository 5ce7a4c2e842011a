// The one read before an upload: XXH3 and the MD5s S3 checks, at part
// boundaries and for every size class; and the tier's options from config.
#include "objtier/digest.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>

#include "objtier/tier_options.h"
#include "recsync/hash.h"
#include "support/support.h"

namespace recsync::objtier {
namespace {

using objstore::hex_lower;
using objstore::md5;

std::string bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = char(rng());
  return s;
}

TEST(Digest, WholeFileAndPartsMatchOneShotDigests) {
  test::TempDir dir;
  const uint64_t kPart = objstore::kMinPartSize;
  const uint64_t sizes[] = {0,     1,         (1 << 20) - 1, 1 << 20,          (1 << 20) + 1,
                            kPart, kPart + 1, 2 * kPart,     2 * kPart + 12345};
  for (uint64_t size : sizes) {
    SCOPED_TRACE(size);
    const std::string data = bytes(size, uint32_t(size + 1));
    const std::string path = test::write_file(dir.sub("f" + std::to_string(size)), data);
    int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    auto whole = digest_file(fd, size);
    ASSERT_TRUE(whole) << whole.status().to_string();
    EXPECT_EQ(whole->hash, hash_bytes(data.data(), data.size()));
    EXPECT_EQ(hex_lower(whole->md5), hex_lower(md5(data)));
    EXPECT_TRUE(whole->part_md5.empty());
    auto plan = objstore::plan_parts(size, kPart);
    auto parts = digest_file(fd, size, plan);
    ASSERT_TRUE(parts) << parts.status().to_string();
    EXPECT_EQ(parts->hash, whole->hash);
    ASSERT_EQ(parts->part_md5.size(), plan.size());
    for (size_t i = 0; i < plan.size(); ++i)
      EXPECT_EQ(hex_lower(parts->part_md5[i]),
                hex_lower(md5(std::string_view(data).substr(plan[i].offset, plan[i].length))))
          << "part " << i + 1;
    ::close(fd);
  }
}

TEST(Digest, AShortFileIsAnError) {
  test::TempDir dir;
  const std::string path = test::write_file(dir.sub("short"), "12345");
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto d = digest_file(fd, 10);
  EXPECT_FALSE(d);
  ::close(fd);
}

Config base_config(const std::string& creds) {
  auto c = parse_config(
      "node = \"fs1\"\n[spool]\npath = \"/s\"\n[archive]\npath = \"/a\"\n[retention]\n"
      "keep = \"10d\"\n[object_store]\nendpoint = \"http://127.0.0.1:1\"\nbucket = \"b-1\"\n"
      "prefix = \"p/\"\ncredentials = \"" +
          creds + "\"\n",
      "t.conf");
  EXPECT_TRUE(c) << c.status().to_string();
  return c ? *c : Config{};
}

TEST(TierOptions, FromConfigWithCredentialsFileAndDefaults) {
  test::TempDir dir;
  const std::string creds =
      test::write_file(dir.sub("creds"), "access_key = AK\nsecret_key = SECRET\n");
  ASSERT_EQ(::chmod(creds.c_str(), 0600), 0);
  auto t = tier_options(base_config(creds));
  ASSERT_TRUE(t) << t.status().to_string();
  EXPECT_EQ(t->s3.credentials.access_key, "AK");
  EXPECT_EQ(t->s3.bucket, "b-1");
  EXPECT_EQ(t->prefix, "p/");
  EXPECT_EQ(t->keep_local, Millis(10LL * 86400000)) << "default: retention.keep";
  EXPECT_EQ(t->part_size, 16ull << 20);
  ASSERT_EQ(::chmod(creds.c_str(), 0644), 0);
  auto bad = tier_options(base_config(creds));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), Status::Code::kRefused);
  EXPECT_NE(bad.status().message().find("object_store.credentials"), std::string::npos);
  EXPECT_EQ(bad.status().message().find("SECRET"), std::string::npos);
}

TEST(TierOptions, SystemdCredential) {
  test::TempDir dir;
  const std::string creds = test::write_file(dir.sub("s3"), "access_key = A\nsecret_key = B\n");
  ASSERT_EQ(::chmod(creds.c_str(), 0400), 0);
  ::setenv("CREDENTIALS_DIRECTORY", dir.path().c_str(), 1);
  auto t = tier_options(base_config("systemd:s3"));
  ::unsetenv("CREDENTIALS_DIRECTORY");
  ASSERT_TRUE(t) << t.status().to_string();
  EXPECT_EQ(t->s3.credentials.secret_key, "B");
}

}  // namespace
}  // namespace recsync::objtier
