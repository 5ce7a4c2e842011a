// The uploader against the real Ceph RGW: byte-identical objects with their
// metadata, verified before they count; present objects not sent again;
// conflicts never overwritten; multipart resumed without resending stored
// parts; wrong credentials and a dead radosgw lose nothing; the governor
// meters the bodies.
#include <fcntl.h>
#include <unistd.h>

#include <thread>

#include "objstore/encoding.h"
#include "objstore/multipart.h"
#include "tier_test.h"

namespace recsync::objtier {
namespace {

using namespace std::chrono_literals;
constexpr int64_t kDay = 86400000;
constexpr uint64_t kMiB = 1 << 20;

[[maybe_unused]] ::testing::Environment* const kRgwEnv =
    ::testing::AddGlobalTestEnvironment(new test::SharedRgw);

int64_t now_ms() { return to_ms(Env::posix()->now()); }

class RgwUpload : public TierTest {};

TEST_F(RgwUpload, RecordingsAreUploadedByteIdenticalAndVerified) {
  struct Case {
    std::string rel;
    size_t size;
  };
  const Case cases[] = {{"2026/12/01/empty.wav", 0},
                        {"2026/12/01/small.wav", 1000},
                        {"2026/12/01/mid.wav", 3 * kMiB + 7},
                        {"2026/12/01/big.wav", 13 * kMiB + 5}};  // multipart (threshold 6 MiB)
  std::map<std::string, std::string> data;
  uint32_t seed = 1;
  for (const Case& c : cases) {
    data[c.rel] = random_bytes(c.size, seed++);
    archive(c.rel, data[c.rel], now_ms() - 1000);
  }
  tier_ = make_tier(options());
  ASSERT_TRUE(tier_);
  tier_->start();
  ASSERT_TRUE(wait_drained()) << "queue: " << queued();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.rel);
    const std::string key = "rec/fs1/" + c.rel;
    EXPECT_TRUE(get(key) == data[c.rel]) << "object bytes differ";
    auto head = admin_->head_object(key);
    ASSERT_TRUE(head.is_ok()) << head.status().to_string();
    EXPECT_EQ(head->metadata["xxh3"], hash_bytes(data[c.rel].data(), c.size));
    EXPECT_EQ(head->metadata["node"], "fs1");
    auto row = store_->objects().get(c.rel);
    ASSERT_TRUE(row && row->has_value());
    EXPECT_EQ((*row)->key, key);
    EXPECT_EQ((*row)->size, c.size);
    EXPECT_EQ((*row)->etag, head->etag);
    EXPECT_EQ((*row)->version_id, head->version_id);
    EXPECT_EQ((*row)->origin, "local");
    if (c.size >= 6 * kMiB)
      EXPECT_TRUE(head->etag.ends_with("-3")) << head->etag;
    else
      EXPECT_EQ(head->etag, objstore::hex_lower(objstore::md5(data[c.rel])));
  }
  TierStatus st = tier_->status();
  EXPECT_EQ(st.upload.uploaded_files, std::size(cases));
  EXPECT_EQ(st.objects.files, std::size(cases));
  uint64_t total = 0;
  for (const Case& c : cases) total += c.size;
  EXPECT_EQ(st.upload.sent_bytes, total) << "each body sent once";
  EXPECT_NE(st.upload.last_success_ms, 0);
  EXPECT_TRUE(st.upload.errors.empty());
  EXPECT_EQ(st.multipart_in_progress, 0u);
}

TEST_F(RgwUpload, AnObjectAlreadyThereIsNotSentAgain) {
  const std::string data = random_bytes(2 * kMiB, 7);
  RecordingRow r = archive("2026/12/01/again.wav", data, now_ms());
  tier_ = make_tier(options());
  tier_->start();
  ASSERT_TRUE(wait_drained());
  const uint64_t sent = tier_->status().upload.sent_bytes;
  // The index is lost (a rebuilt state database) and the recording queued again.
  ASSERT_TRUE(store_->objects().remove(r.rel));
  ASSERT_TRUE(store_->queue().record(r, r.rec_time_ms * 1'000'000));
  ASSERT_TRUE(wait_drained());
  TierStatus st = tier_->status();
  EXPECT_EQ(st.upload.sent_bytes, sent) << "the body was sent again";
  EXPECT_EQ(st.upload.present_files, 1u);
  EXPECT_EQ(versions_of("rec/fs1/" + r.rel), 1u);
  auto row = store_->objects().get(r.rel);
  ASSERT_TRUE(row && row->has_value()) << "re-indexed from the HEAD";
}

TEST_F(RgwUpload, OtherContentUnderTheKeyIsAConflictNotOverwritten) {
  const std::string theirs = random_bytes(1000, 1), ours = random_bytes(1000, 2);
  test::write_file(tmp_.sub("theirs"), theirs);
  ASSERT_TRUE(admin_->put_file("rec/fs1/2026/12/01/clash.wav", tmp_.sub("theirs")).is_ok());
  archive("2026/12/01/clash.wav", ours, now_ms());
  tier_ = make_tier(options());
  tier_->start();
  ASSERT_TRUE(test::wait_until([&] { return tier_->status().upload.conflicts > 0; }, 20s));
  EXPECT_TRUE(get("rec/fs1/2026/12/01/clash.wav") == theirs);
  EXPECT_EQ(versions_of("rec/fs1/2026/12/01/clash.wav"), 1u);
  EXPECT_EQ(queued(), 1u) << "kept queued (retried with backoff)";
  auto q = store_->queue().stats(kStoreDestination);
  EXPECT_EQ(q->retry_files, 1u);
  EXPECT_EQ(tier_->status().upload.errors["conflict"], 1u);
}

TEST_F(RgwUpload, AChangedArchiveCopyIsNotUploaded) {
  RecordingRow r = archive("2026/12/01/changed.wav", random_bytes(5000, 3), now_ms());
  test::write_file(archive_ + "/" + r.rel, random_bytes(5000, 4));  // same size, other bytes
  tier_ = make_tier(options());
  tier_->start();
  ASSERT_TRUE(test::wait_until([&] { return tier_->status().upload.errors["local"] > 0; }, 20s));
  EXPECT_EQ(admin_->head_object("rec/fs1/" + r.rel).kind(), objstore::ErrorKind::kNotFound);
  EXPECT_EQ(queued(), 1u);
}

TEST_F(RgwUpload, MultipartResumesWithoutResendingStoredParts) {
  const std::string data = random_bytes(16 * kMiB + 3, 9);
  RecordingRow r = archive("2026/12/01/resume.wav", data, now_ms());
  const std::string key = "rec/fs1/" + r.rel;
  TierOptions opt = options();
  // A "crashed" uploader: created the upload, saved its id, stored 2 of 4 parts.
  auto plan = objstore::plan_parts(data.size(), opt.part_size);
  ASSERT_EQ(plan.size(), 4u);
  objstore::PutOptions po;  // as the uploader creates it
  po.metadata = {{"xxh3", r.hash}, {"rec-time-ms", std::to_string(r.rec_time_ms)}, {"node", "fs1"}};
  auto id = admin_->create_multipart_upload(key, po);
  ASSERT_TRUE(id.is_ok());
  ASSERT_TRUE(
      store_->objects().save_upload({r.rel, key, r.hash, r.size, opt.part_size, *id, now_ms()}));
  int fd = ::open((archive_ + "/" + r.rel).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(
        admin_->upload_part(key, *id, i + 1, {fd, plan[size_t(i)].offset, plan[size_t(i)].length})
            .is_ok());
  ::close(fd);
  tier_ = make_tier(opt);
  tier_->start();
  ASSERT_TRUE(wait_drained());
  TierStatus st = tier_->status();
  EXPECT_EQ(st.upload.parts_reused, 2u);
  EXPECT_EQ(st.upload.sent_bytes, plan[2].length + plan[3].length) << "only the missing parts";
  EXPECT_TRUE(get(key) == data);
  EXPECT_EQ(st.multipart_in_progress, 0u);
  auto uploads = admin_->list_multipart_uploads("rec/");
  ASSERT_TRUE(uploads.is_ok());
  EXPECT_TRUE(uploads->empty());
}

TEST_F(RgwUpload, WrongCredentialsAlarmAndLoseNothing) {
  archive("2026/12/01/a.wav", random_bytes(1000, 1), now_ms());
  archive("2026/12/01/b.wav", random_bytes(1000, 2), now_ms());
  TierOptions bad = options();
  bad.s3.credentials = objstore::Credentials(rgw_->user().access_key, "not-the-secret");
  tier_ = make_tier(bad);
  tier_->start();
  ASSERT_TRUE(test::wait_until([&] { return tier_->status().upload.state == "refused"; }, 20s));
  TierStatus st = tier_->status();
  EXPECT_GE(st.upload.errors["auth"], 1u);
  EXPECT_EQ(st.queue.files(), 2u);
  EXPECT_EQ(st.queue.retry_files, 0u) << "a store-wide failure defers nothing";
  tier_->stop();
  tier_ = make_tier(options());
  tier_->start();
  ASSERT_TRUE(wait_drained());
  EXPECT_EQ(tier_->status().upload.state, "idle");
  EXPECT_EQ(store_->objects().stats()->files, 2u);
}

TEST_F(RgwUpload, RadosgwKilledMidQueueNothingLostQueueDrainsAfter) {
  TierOptions opt = options();
  replication::Governor gov(8 * kMiB, 0, steady_ns());  // slow enough to kill mid-upload
  std::map<std::string, std::string> data;
  for (int i = 0; i < 6; ++i) {
    std::string rel = "2026/12/01/k" + std::to_string(i) + ".wav";
    data[rel] = random_bytes(3 * kMiB, 40 + uint32_t(i));
    archive(rel, data[rel], now_ms());
  }
  tier_ = make_tier(opt, &gov);
  tier_->start();
  ASSERT_TRUE(test::wait_until([&] { return tier_->status().upload.uploaded_files >= 1; }, 20s));
  rgw_->kill_rgw();
  ASSERT_TRUE(test::wait_until([&] { return tier_->status().upload.state == "backoff"; }, 20s));
  EXPECT_GT(queued(), 0u);
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(rgw_->restart_rgw()) << "radosgw did not come back";
  ASSERT_TRUE(wait_drained(60s));
  for (auto& [rel, d] : data) EXPECT_TRUE(get("rec/fs1/" + rel) == d) << rel;
  EXPECT_GE(tier_->status().upload.errors["network"], 1u);
}

TEST_F(RgwUpload, TheGovernorMetersTheBodies) {
  const uint64_t rate = 4 * kMiB;
  replication::Governor gov(rate, 0, steady_ns());
  for (int i = 0; i < 4; ++i)
    archive("2026/12/01/g" + std::to_string(i) + ".wav", random_bytes(2 * kMiB, 50 + uint32_t(i)),
            now_ms());
  tier_ = make_tier(options(), &gov);
  const auto t0 = std::chrono::steady_clock::now();
  tier_->start();
  ASSERT_TRUE(wait_drained(60s));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(took, 0.9 * 8.0 * kMiB / double(rate)) << "faster than the cap";
  EXPECT_LT(took, 8.0 * kMiB / double(rate) + 5.0);
  EXPECT_EQ(gov.granted(replication::Priority::kLive) + gov.granted(replication::Priority::kBulk),
            8 * kMiB);
}

TEST_F(RgwUpload, AFileGoneFromTheArchiveIsDroppedFromTheQueue) {
  RecordingRow r = archive("2026/12/01/gone.wav", random_bytes(100, 1), now_ms());
  ASSERT_EQ(::unlink((archive_ + "/" + r.rel).c_str()), 0);
  tier_ = make_tier(options());
  tier_->start();
  ASSERT_TRUE(wait_drained());
  EXPECT_EQ(store_->objects().stats()->files, 0u);
}

}  // namespace
}  // namespace recsync::objtier
