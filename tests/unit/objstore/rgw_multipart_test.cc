// Multipart (and resuming it after a crash), the upload pacer, and quota,
// against the real Ceph RGW (support/rgw.h).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "objstore/encoding.h"
#include "objstore/multipart.h"
#include "rgw_test.h"

namespace recsync::objstore {
namespace {

using namespace std::chrono_literals;
constexpr uint64_t kMiB = 1 << 20;

// An open read-only fd, closed on scope exit.
struct OpenFile {
  explicit OpenFile(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    EXPECT_GE(fd, 0) << path;
  }
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
  FileRange range(uint64_t size) const { return {fd, 0, size}; }
  int fd;
};

class RgwMultipart : public RgwTest {};

TEST_F(RgwMultipart, UploadAboveThePartSizeIsByteIdentical) {
  const uint64_t size = 13 * kMiB + 12345;
  std::string path = make_file("big", size, 11);
  OpenFile f(path);
  MultipartOptions mo;
  mo.part_size = 5 * kMiB;
  mo.put.metadata = {{"xxh3", "xxh128:feed"}};
  std::string created;
  auto r = upload_multipart(*client_, "mp/big.wav", f.range(size), mo, "",
                            [&](const std::string& id) { created = id; });
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(created, r->upload_id);
  EXPECT_EQ(r->parts_sent, 3);
  EXPECT_EQ(r->parts_reused, 0);
  EXPECT_TRUE(r->etag.ends_with("-3")) << r->etag;
  EXPECT_EQ(client_->stats().file_bytes_sent, size);

  auto head = client_->head_object("mp/big.wav");
  ASSERT_TRUE(head.is_ok()) << head.status().to_string();
  EXPECT_EQ(head->size, size);
  EXPECT_EQ(head->etag, r->etag) << "HEAD has the multipart ETag computed locally";
  EXPECT_EQ(head->metadata, mo.put.metadata);
  EXPECT_EQ(fetch(*client_, "mp/big.wav"), test::read_file(path));
  auto uploads = client_->list_multipart_uploads("mp/");
  ASSERT_TRUE(uploads.is_ok());
  EXPECT_TRUE(uploads->empty()) << "completed uploads are not listed";
}

TEST_F(RgwMultipart, ANewClientResumesWithoutResendingStoredParts) {
  const uint64_t size = 12 * kMiB + 777;
  std::string path = make_file("resume", size, 12);
  OpenFile f(path);
  std::vector<PartRange> plan = plan_parts(size, 5 * kMiB);
  ASSERT_EQ(plan.size(), 3u);
  std::string upload_id;
  {
    // The first uploader stores two parts, then "crashes" (is dropped
    // without completing or aborting).
    auto first = make_client();
    auto id = first->create_multipart_upload("mp/resume.wav", {});
    ASSERT_TRUE(id.is_ok()) << id.status().to_string();
    upload_id = id.value();
    for (int i = 0; i < 2; ++i) {
      FileRange part{f.fd, plan[size_t(i)].offset, plan[size_t(i)].length};
      auto etag = first->upload_part("mp/resume.wav", upload_id, i + 1, part);
      ASSERT_TRUE(etag.is_ok()) << etag.status().to_string();
    }
    EXPECT_EQ(first->stats().file_bytes_sent, plan[0].length + plan[1].length);
  }
  auto second = make_client();
  auto uploads = second->list_multipart_uploads("mp/");
  ASSERT_TRUE(uploads.is_ok()) << uploads.status().to_string();
  ASSERT_EQ(uploads->size(), 1u);
  EXPECT_EQ((*uploads)[0].key, "mp/resume.wav");
  EXPECT_EQ((*uploads)[0].upload_id, upload_id);
  auto parts = second->list_parts("mp/resume.wav", upload_id);
  ASSERT_TRUE(parts.is_ok()) << parts.status().to_string();
  ASSERT_EQ(parts->size(), 2u);
  std::string data = test::read_file(path);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ((*parts)[i].number, int(i + 1));
    EXPECT_EQ((*parts)[i].size, plan[i].length);
    EXPECT_EQ((*parts)[i].etag,
              hex_lower(md5(std::string_view(data).substr(plan[i].offset, plan[i].length))));
  }

  MultipartOptions mo;
  mo.part_size = 5 * kMiB;
  auto r = upload_multipart(*second, "mp/resume.wav", f.range(size), mo, upload_id);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->parts_reused, 2);
  EXPECT_EQ(r->parts_sent, 1);
  EXPECT_EQ(second->stats().file_bytes_sent, plan[2].length) << "only the missing part was sent";
  auto head = second->head_object("mp/resume.wav");
  ASSERT_TRUE(head.is_ok());
  EXPECT_EQ(head->size, size);
  EXPECT_EQ(head->etag, r->etag);
  EXPECT_TRUE(fetch(*second, "mp/resume.wav") == data);
}

TEST_F(RgwMultipart, APartThatDiffersFromTheLocalFileIsSentAgain) {
  const uint64_t size = 10 * kMiB + 1;
  std::string path = make_file("differ", size, 13);
  std::string other = make_file("other", 5 * kMiB, 99);
  OpenFile f(path), g(other);
  auto id = client_->create_multipart_upload("mp/differ.wav", {});
  ASSERT_TRUE(id.is_ok());
  // Part 1 holds other bytes of the right size: its ETag gives it away.
  ASSERT_TRUE(client_->upload_part("mp/differ.wav", *id, 1, g.range(5 * kMiB)).is_ok());
  uint64_t before = client_->stats().file_bytes_sent;
  MultipartOptions mo;
  mo.part_size = 5 * kMiB;
  auto r = upload_multipart(*client_, "mp/differ.wav", f.range(size), mo, *id);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->parts_sent, 3);
  EXPECT_EQ(client_->stats().file_bytes_sent - before, size);
  EXPECT_TRUE(fetch(*client_, "mp/differ.wav") == test::read_file(path));
}

TEST_F(RgwMultipart, AbortedUploadCannotBeResumed) {
  std::string path = make_file("ab", 6 * kMiB, 14);
  OpenFile f(path);
  auto id = client_->create_multipart_upload("mp/abort.wav", {});
  ASSERT_TRUE(id.is_ok());
  ASSERT_TRUE(client_->upload_part("mp/abort.wav", *id, 1, f.range(5 * kMiB)).is_ok());
  S3Status st = client_->abort_multipart_upload("mp/abort.wav", *id);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  auto uploads = client_->list_multipart_uploads("mp/");
  ASSERT_TRUE(uploads.is_ok());
  EXPECT_TRUE(uploads->empty());
  auto parts = client_->list_parts("mp/abort.wav", *id);
  ASSERT_FALSE(parts.is_ok());
  EXPECT_EQ(parts.kind(), ErrorKind::kNotFound);
  // S3 says NoSuchUpload; RGW 16.2 says NoSuchKey. Both are not_found.
  EXPECT_TRUE(parts.status().s3_code() == "NoSuchUpload" || parts.status().s3_code() == "NoSuchKey")
      << parts.status().to_string();
  MultipartOptions mo;
  mo.part_size = 5 * kMiB;
  auto r = upload_multipart(*client_, "mp/abort.wav", f.range(6 * kMiB), mo, *id);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.kind(), ErrorKind::kNotFound);
  EXPECT_EQ(client_->head_object("mp/abort.wav").kind(), ErrorKind::kNotFound);
}

TEST_F(RgwMultipart, WrongPartDigestIsBadDigest) {
  std::string path = make_file("pd", 5 * kMiB, 15);
  OpenFile f(path);
  auto id = client_->create_multipart_upload("mp/pd.wav", {});
  ASSERT_TRUE(id.is_ok());
  auto e = client_->upload_part("mp/pd.wav", *id, 1, f.range(5 * kMiB), base64_encode(md5("x")));
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.kind(), ErrorKind::kBadDigest) << e.status().to_string();
  EXPECT_TRUE(client_->abort_multipart_upload("mp/pd.wav", *id).is_ok());
}

TEST_F(RgwMultipart, LegalHoldAtCreateHoldsTheObject) {
  std::string path = make_file("mh", 6 * kMiB, 16);
  OpenFile f(path);
  MultipartOptions mo;
  mo.part_size = 5 * kMiB;
  mo.put.legal_hold = true;
  auto r = upload_multipart(*client_, "mp/held.wav", f.range(6 * kMiB), mo);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  auto head = client_->head_object("mp/held.wav");
  ASSERT_TRUE(head.is_ok());
  EXPECT_EQ(head->legal_hold, std::optional<bool>(true));
  EXPECT_EQ(client_->delete_object("mp/held.wav", head->version_id).kind(), ErrorKind::kLocked);
  ASSERT_TRUE(client_->put_legal_hold("mp/held.wav", false, head->version_id).is_ok());
  EXPECT_TRUE(client_->delete_object("mp/held.wav", head->version_id).is_ok());
}

class RgwPacer : public RgwTest {};

TEST_F(RgwPacer, SeesEveryChunkAndCanPace) {
  const uint64_t size = 4 * kMiB + 100;
  std::string path = make_file("pace", size, 21);
  S3Options o = options();
  o.upload_buffer = 128 << 10;
  auto c = make_client(o);
  // A pacer holding the upload to 8 MiB/s: it sleeps until the bytes
  // allowed so far cover the chunk.
  const double rate = 8.0 * kMiB;
  uint64_t paced = 0, calls = 0, largest = 0, last_progress = 0;
  auto start = std::chrono::steady_clock::now();
  c->set_pacer([&](size_t n) {
    ++calls;
    largest = std::max<uint64_t>(largest, n);
    paced += n;
    auto due = start + std::chrono::duration<double>(double(paced) / rate);
    std::this_thread::sleep_until(due);
    return true;
  });
  c->set_progress([&](uint64_t sent) { last_progress = sent; });
  auto put = c->put_file("paced.wav", path, {});
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(put.is_ok()) << put.status().to_string();
  EXPECT_EQ(paced, size);
  EXPECT_EQ(last_progress, size);
  EXPECT_LE(largest, uint64_t(o.upload_buffer));
  EXPECT_GE(calls, size / o.upload_buffer);
  EXPECT_GE(took, 0.9 * double(size) / rate) << "the pacer's sleeps slowed the upload";
  EXPECT_LT(took, 10.0);
  EXPECT_TRUE(fetch(*c, "paced.wav") == test::read_file(path));
}

TEST_F(RgwPacer, StopAbortsTheTransferAndTheClientStaysUsable) {
  const uint64_t size = 6 * kMiB;
  std::string path = make_file("stop", size, 22);
  S3Options o = options();
  o.upload_buffer = 64 << 10;
  auto c = make_client(o);
  uint64_t allowed = 0;
  c->set_pacer([&](size_t n) {
    if (allowed >= kMiB) return false;
    allowed += n;
    return true;
  });
  auto put = c->put_file("stopped.wav", path, {});
  ASSERT_FALSE(put.is_ok());
  EXPECT_EQ(put.kind(), ErrorKind::kAborted) << put.status().to_string();
  EXPECT_LE(c->stats().file_bytes_sent, kMiB + (64 << 10));
  EXPECT_EQ(c->head_object("stopped.wav").kind(), ErrorKind::kNotFound);

  // In a multipart upload the stop fails the part, and the upload resumes.
  MultipartOptions mo;
  mo.part_size = 5 * kMiB;
  std::string id;
  allowed = 0;
  OpenFile f(path);
  auto r = upload_multipart(*c, "stopped-mp.wav", f.range(size), mo, "",
                            [&](const std::string& u) { id = u; });
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.kind(), ErrorKind::kAborted);
  ASSERT_FALSE(id.empty());
  c->set_pacer(nullptr);
  auto r2 = upload_multipart(*c, "stopped-mp.wav", f.range(size), mo, id);
  ASSERT_TRUE(r2.is_ok()) << r2.status().to_string();
  EXPECT_TRUE(fetch(*c, "stopped-mp.wav") == test::read_file(path));
}

class RgwQuota : public RgwTest {};

TEST_F(RgwQuota, UploadOverTheUserQuotaIsAQuotaError) {
  auto user = rgw_->create_user("quota-user");
  ASSERT_TRUE(user.is_ok()) << user.status().to_string();
  ASSERT_TRUE(rgw_->set_user_quota("quota-user", int64_t(kMiB)).is_ok());
  S3Options o = options("quota-bucket");
  o.credentials = Credentials(user->access_key, user->secret_key);
  auto c = make_client(o);
  S3Status st = c->create_bucket("quota-bucket", false);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  auto small = c->put_file("small.wav", make_file("q1", 1000, 31), {});
  ASSERT_TRUE(small.is_ok()) << small.status().to_string();
  auto big = c->put_file("big.wav", make_file("q2", 2 * kMiB, 32), {});
  ASSERT_FALSE(big.is_ok());
  EXPECT_EQ(big.kind(), ErrorKind::kQuota) << big.status().to_string();
  EXPECT_EQ(big.status().status().code(), Status::Code::kNoSpace);
}

}  // namespace
}  // namespace recsync::objstore
