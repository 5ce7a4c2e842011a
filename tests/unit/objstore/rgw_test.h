#pragma once
// Shared by the objstore tests that run against the real Ceph RGW
// (support/rgw.h): one cluster per test binary, a fresh Object Lock bucket
// per test, random files in a temp folder.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "objstore/s3_client.h"
#include "support/rgw.h"
#include "support/support.h"

namespace recsync::objstore {

class RgwTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RECSYNC_REQUIRE_RGW(c);
    rgw_ = c;
    bucket_ = unique_bucket();
    client_ = make_client();
    ASSERT_NE(client_, nullptr);
    S3Status st = client_->create_bucket(bucket_, /*object_lock=*/true);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }

  // A bucket name unique in this run: "t<n>-<test name>", lower-case, cut
  // to the 63-character limit.
  static std::string unique_bucket() {
    static int n = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "t" + std::to_string(++n) + "-";
    for (char ch : std::string(info->name())) {
      name += std::isalnum(static_cast<unsigned char>(ch))
                  ? char(std::tolower(static_cast<unsigned char>(ch)))
                  : '-';
    }
    name = name.substr(0, 60);
    while (name.back() == '-') name.pop_back();
    return name;
  }

  S3Options options(const std::string& bucket = "") const {
    S3Options o;
    o.endpoint = rgw_->endpoint();
    o.bucket = bucket.empty() ? bucket_ : bucket;
    o.credentials = Credentials(rgw_->user().access_key, rgw_->user().secret_key);
    return o;
  }
  std::unique_ptr<S3Client> make_client(S3Options o) const {
    auto c = S3Client::make(std::move(o));
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c.is_ok() ? std::move(c.value()) : nullptr;
  }
  std::unique_ptr<S3Client> make_client() const { return make_client(options()); }

  // A file of size random bytes (seeded), returns its path.
  std::string make_file(const std::string& name, size_t size, uint32_t seed) {
    std::string data(size, '\0');
    std::mt19937 rng(seed);
    for (size_t i = 0; i + 4 <= size; i += 4) {
      uint32_t v = rng();
      std::memcpy(&data[i], &v, 4);
    }
    for (size_t i = size & ~size_t(3); i < size; ++i) data[i] = char(rng());
    return test::write_file(tmp_.sub(name), data);
  }

  // Downloads key into a new file and returns the file's content.
  std::string fetch(S3Client& c, const std::string& key, const std::string& version = "") {
    static int n = 0;
    std::string path = tmp_.sub("fetched-" + std::to_string(++n));
    auto f = Env::posix()->create_excl(path, 0600);
    EXPECT_TRUE(f.is_ok()) << f.status().to_string();
    if (!f.is_ok()) return "";
    auto g = c.get_object(key, **f, version);
    EXPECT_TRUE(g.is_ok()) << g.status().to_string();
    return test::read_file(path);
  }

  test::RgwCluster* rgw_ = nullptr;
  std::string bucket_;
  std::unique_ptr<S3Client> client_;
  test::TempDir tmp_;
};

}  // namespace recsync::objstore
