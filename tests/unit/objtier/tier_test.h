#pragma once
// Shared by the objtier tests against the real Ceph RGW (support/rgw.h):
// one cluster per test binary, a fresh Object Lock bucket per test, a state
// store and an archive folder in a temp folder, recordings written into the
// archive and queued for the store as the archiver does it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "objstore/s3_client.h"
#include "objtier/object_tier.h"
#include "recsync/clock.h"
#include "recsync/hash.h"
#include "recsync/log.h"
#include "state/recordings.h"
#include "state/store.h"
#include "support/rgw.h"
#include "support/support.h"

namespace recsync::objtier {

class TierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RECSYNC_REQUIRE_RGW(c);
    rgw_ = c;
    bucket_ = unique_bucket();
    admin_ = make_client(bucket_);
    ASSERT_NE(admin_, nullptr);
    auto st = admin_->create_bucket(bucket_, /*object_lock=*/true);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    archive_ = tmp_.sub("archive");
    ASSERT_TRUE(Env::posix()->mkdirs(archive_, 0750));
    auto s = StateStore::open(tmp_.sub("state.db"));
    ASSERT_TRUE(s) << s.status().to_string();
    store_ = std::move(s).value();
    store_->queue().set_peers({kStoreDestination});
  }
  void TearDown() override {
    if (tier_) tier_->stop();
    tier_.reset();
  }

  static std::string unique_bucket() {
    static int n = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "tier" + std::to_string(++n) + "-";
    for (char ch : std::string(info->name()))
      name += std::isalnum(static_cast<unsigned char>(ch))
                  ? char(std::tolower(static_cast<unsigned char>(ch)))
                  : '-';
    name = name.substr(0, 60);
    while (name.back() == '-') name.pop_back();
    return name;
  }

  objstore::S3Options s3(const std::string& bucket) const {
    objstore::S3Options o;
    o.endpoint = rgw_->endpoint();
    o.bucket = bucket;
    o.credentials = objstore::Credentials(rgw_->user().access_key, rgw_->user().secret_key);
    return o;
  }
  std::unique_ptr<objstore::S3Client> make_client(const std::string& bucket) const {
    auto c = objstore::S3Client::make(s3(bucket));
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c.is_ok() ? std::move(c.value()) : nullptr;
  }

  TierOptions options() const {
    TierOptions t;
    t.s3 = s3(bucket_);
    t.s3.upload_buffer = 128 << 10;
    t.prefix = "rec/";
    t.node = "fs1";
    t.archive_root = archive_;
    t.layout = "date";
    t.object_lock = true;
    t.part_size = 5ull << 20;
    t.multipart_threshold = 6ull << 20;
    t.keep = Millis(15LL * 86400000);
    t.keep_local = Millis(2LL * 86400000);
    t.retry_floor = Millis(100);
    t.retry_max = Millis(1000);
    return t;
  }

  std::unique_ptr<ObjectTier> make_tier(TierOptions t, replication::Governor* gov = nullptr) {
    auto r = ObjectTier::create(Env::posix(), store_.get(), gov, nullptr, std::move(t));
    EXPECT_TRUE(r) << r.status().to_string();
    return r ? std::move(r).value() : nullptr;
  }

  static std::string random_bytes(size_t size, uint32_t seed) {
    std::string data(size, '\0');
    std::mt19937 rng(seed);
    for (size_t i = 0; i < size; ++i) data[i] = char(rng());
    return data;
  }

  // Writes a recording into the archive (mtime = its recording time) and
  // records it as the archiver does: the row and the queue entry at once.
  RecordingRow archive(const std::string& rel, const std::string& data, int64_t rec_time_ms) {
    std::string path = archive_ + "/" + rel;
    test::write_file(path, data);
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = rec_time_ms / 1000;
    ts[0].tv_nsec = ts[1].tv_nsec = (rec_time_ms % 1000) * 1000000;
    EXPECT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0);
    RecordingRow r = make_recording_row(rel, path_basename(rel), data.size(),
                                        hash_bytes(data.data(), data.size()), rec_time_ms,
                                        rec_time_ms + 1000, "local");
    EXPECT_TRUE(store_->queue().record(r, rec_time_ms * 1'000'000));
    return r;
  }

  uint64_t queued() {
    auto q = store_->queue().stats(kStoreDestination);
    return q ? q->files() : ~0ull;
  }
  bool wait_drained(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    return test::wait_until([&] { return queued() == 0; }, timeout, std::chrono::milliseconds(20));
  }

  // The object's bytes (latest version), "" on error.
  std::string get(const std::string& key) {
    static int n = 0;
    std::string path = tmp_.sub("got-" + std::to_string(++n));
    auto f = Env::posix()->create_excl(path, 0600);
    if (!f) return "";
    auto g = admin_->get_object(key, **f);
    EXPECT_TRUE(g.is_ok()) << key << ": " << g.status().to_string();
    return test::read_file(path);
  }

  size_t versions_of(const std::string& key) {
    auto l = admin_->list_object_versions(key);
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    size_t n = 0;
    if (l.is_ok())
      for (auto& v : l->versions) n += v.key == key;
    return n;
  }

  test::RgwCluster* rgw_ = nullptr;
  std::string bucket_, archive_;
  std::unique_ptr<objstore::S3Client> admin_;
  test::TempDir tmp_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<ObjectTier> tier_;
};

}  // namespace recsync::objtier
