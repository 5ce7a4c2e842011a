// Single-object calls, versions, legal hold, credentials and TLS against the
// real Ceph RGW (support/rgw.h). Suites are named Rgw* so ctest runs them in
// one process that starts the cluster once (tests/CMakeLists.txt).
#include <spdlog/sinks/ringbuffer_sink.h>
#include <sys/stat.h>

#include "objstore/encoding.h"
#include "recsync/log.h"
#include "rgw_test.h"

namespace recsync::objstore {
namespace {

// The cluster is shared by every Rgw* test of this binary and stopped at
// the end of the run.
[[maybe_unused]] ::testing::Environment* const kRgwEnv =
    ::testing::AddGlobalTestEnvironment(new test::SharedRgw);

class RgwObjects : public RgwTest {};

TEST_F(RgwObjects, PutHeadGetAreByteIdentical) {
  const std::pair<std::string, size_t> cases[] = {
      {"2026/12/06/empty.wav", 0},
      {"2026/12/06/one byte.wav", 1},
      {"2026/12/06/call+1 \xc3\xa9t\xc3\xa9.wav", (1 << 20) + 3},
      {"multi/mb.wav", 7 * (1 << 20) + 11},
  };
  uint32_t seed = 1;
  for (const auto& [key, size] : cases) {
    SCOPED_TRACE(key);
    std::string path = make_file("f" + std::to_string(seed), size, seed);
    ++seed;
    std::string data = test::read_file(path);
    PutOptions po;
    po.metadata = {{"xxh3", "xxh128:0123456789abcdef0123456789abcdef"},
                   {"rec-time-ms", "1780000000123"}};
    auto put = client_->put_file(key, path, po);
    ASSERT_TRUE(put.is_ok()) << put.status().to_string();
    EXPECT_EQ(put->etag, hex_lower(md5(data)));
    EXPECT_EQ(put->md5_hex, put->etag);
    EXPECT_FALSE(put->version_id.empty()) << "an Object Lock bucket is versioned";

    auto head = client_->head_object(key);
    ASSERT_TRUE(head.is_ok()) << head.status().to_string();
    EXPECT_EQ(head->size, size);
    EXPECT_EQ(head->etag, put->etag);
    EXPECT_EQ(head->version_id, put->version_id);
    EXPECT_EQ(head->metadata, po.metadata);

    std::string got = fetch(*client_, key);
    EXPECT_EQ(got.size(), data.size());
    EXPECT_TRUE(got == data) << "downloaded bytes differ";
  }
}

TEST_F(RgwObjects, GetReportsSizeMd5AndMetadataOfWhatItWrote) {
  std::string path = make_file("g", 300000, 9);
  PutOptions po;
  po.metadata["a"] = "1";
  ASSERT_TRUE(client_->put_file("g.wav", path, po).is_ok());
  std::string out = tmp_.sub("g.out");
  auto f = Env::posix()->create_excl(out, 0600);
  ASSERT_TRUE(f.is_ok());
  auto g = client_->get_object("g.wav", **f);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_EQ(g->bytes_written, 300000u);
  EXPECT_EQ(g->md5_hex, hex_lower(md5(test::read_file(path))));
  EXPECT_EQ(g->info.etag, g->md5_hex);
  EXPECT_EQ(g->info.metadata.at("a"), "1");
  // A missing key writes nothing into the file and says not_found.
  auto f2 = Env::posix()->create_excl(tmp_.sub("missing.out"), 0600);
  ASSERT_TRUE(f2.is_ok());
  auto miss = client_->get_object("missing.wav", **f2);
  ASSERT_FALSE(miss.is_ok());
  EXPECT_EQ(miss.kind(), ErrorKind::kNotFound);
  EXPECT_EQ(miss.status().s3_code(), "NoSuchKey");
  EXPECT_EQ(test::read_file(tmp_.sub("missing.out")), "");
  auto head = client_->head_object("missing.wav");
  ASSERT_FALSE(head.is_ok());
  EXPECT_EQ(head.kind(), ErrorKind::kNotFound);
}

TEST_F(RgwObjects, WrongContentMd5IsRefusedWithBadDigest) {
  std::string path = make_file("d", 100000, 3);
  PutOptions po;
  po.content_md5 = base64_encode(md5("not the file"));
  auto put = client_->put_file("digest.wav", path, po);
  ASSERT_FALSE(put.is_ok());
  EXPECT_EQ(put.kind(), ErrorKind::kBadDigest) << put.status().to_string();
  EXPECT_EQ(put.status().s3_code(), "BadDigest");
  EXPECT_EQ(put.status().http_status(), 400);
  EXPECT_EQ(put.status().status().code(), Status::Code::kCorrupt);
  EXPECT_EQ(client_->head_object("digest.wav").kind(), ErrorKind::kNotFound);
  // The same client, right digest: stored.
  po.content_md5 = base64_encode(md5(test::read_file(path)));
  ASSERT_TRUE(client_->put_file("digest.wav", path, po).is_ok());
}

TEST_F(RgwObjects, EveryVersionListedAndDeletedLeavesNothing) {
  S3Options o = options();
  o.list_page_size = 2;  // several pages: the markers are followed
  auto c = make_client(o);
  std::vector<std::string> ids;
  for (uint32_t i = 0; i < 3; ++i) {
    auto p = c->put_file("v/rec.wav", make_file("v" + std::to_string(i), 1000 + i, i), {});
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    ids.push_back(p->version_id);
  }
  ASSERT_TRUE(c->put_file("v/other.wav", make_file("o", 10, 7), {}).is_ok());
  auto marker = c->delete_object("v/rec.wav");
  ASSERT_TRUE(marker.is_ok()) << marker.status().to_string();
  EXPECT_TRUE(marker->delete_marker);
  EXPECT_EQ(c->head_object("v/rec.wav").kind(), ErrorKind::kNotFound);

  auto list = c->list_object_versions("v/rec.wav");
  ASSERT_TRUE(list.is_ok()) << list.status().to_string();
  EXPECT_FALSE(list->truncated);
  ASSERT_EQ(list->versions.size(), 4u);
  int markers = 0;
  std::vector<std::string> listed;
  for (const auto& v : list->versions) {
    EXPECT_EQ(v.key, "v/rec.wav");
    if (v.is_delete_marker) {
      ++markers;
      EXPECT_TRUE(v.is_latest);
      EXPECT_EQ(v.version_id, marker->version_id);
    } else {
      listed.push_back(v.version_id);
      EXPECT_EQ(v.size,
                1000u + uint64_t(std::find(ids.begin(), ids.end(), v.version_id) - ids.begin()));
    }
  }
  EXPECT_EQ(markers, 1);
  std::sort(listed.begin(), listed.end());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(listed, ids);
  auto capped = c->list_object_versions("v/", 2);
  ASSERT_TRUE(capped.is_ok());
  EXPECT_EQ(capped->versions.size(), 2u);
  EXPECT_TRUE(capped->truncated);

  for (const auto& v : list->versions) {
    auto d = c->delete_object(v.key, v.version_id);
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  }
  auto after = c->list_object_versions("v/rec.wav");
  ASSERT_TRUE(after.is_ok());
  EXPECT_TRUE(after->versions.empty());
  auto others = c->list_object_versions("v/");
  ASSERT_TRUE(others.is_ok());
  ASSERT_EQ(others->versions.size(), 1u) << "other keys untouched";
  EXPECT_EQ(others->versions[0].key, "v/other.wav");
}

TEST_F(RgwObjects, LegalHoldBlocksDeletionUntilReleased) {
  PutOptions po;
  po.legal_hold = true;
  auto put = client_->put_file("held.wav", make_file("h", 5000, 5), po);
  ASSERT_TRUE(put.is_ok()) << put.status().to_string();
  auto head = client_->head_object("held.wav");
  ASSERT_TRUE(head.is_ok());
  ASSERT_TRUE(head->legal_hold.has_value());
  EXPECT_TRUE(*head->legal_hold);
  auto hold = client_->get_legal_hold("held.wav", put->version_id);
  ASSERT_TRUE(hold.is_ok()) << hold.status().to_string();
  EXPECT_TRUE(hold.value());

  auto del = client_->delete_object("held.wav", put->version_id);
  ASSERT_FALSE(del.is_ok()) << "RGW deleted a held version";
  EXPECT_EQ(del.kind(), ErrorKind::kLocked) << del.status().to_string();
  EXPECT_EQ(del.status().http_status(), 403);
  EXPECT_TRUE(client_->head_object("held.wav", put->version_id).is_ok());

  S3Status off = client_->put_legal_hold("held.wav", false, put->version_id);
  ASSERT_TRUE(off.is_ok()) << off.to_string();
  hold = client_->get_legal_hold("held.wav", put->version_id);
  ASSERT_TRUE(hold.is_ok());
  EXPECT_FALSE(hold.value());
  auto del2 = client_->delete_object("held.wav", put->version_id);
  ASSERT_TRUE(del2.is_ok()) << del2.status().to_string();
  EXPECT_EQ(client_->head_object("held.wav", put->version_id).kind(), ErrorKind::kNotFound);
}

TEST_F(RgwObjects, LegalHoldSetAfterUploadAlsoBlocks) {
  auto put = client_->put_file("later.wav", make_file("l", 10, 6), {});
  ASSERT_TRUE(put.is_ok());
  auto none = client_->get_legal_hold("later.wav");
  ASSERT_TRUE(none.is_ok()) << none.status().to_string();
  EXPECT_FALSE(none.value()) << "never held";
  ASSERT_TRUE(client_->put_legal_hold("later.wav", true).is_ok());
  EXPECT_EQ(client_->delete_object("later.wav", put->version_id).kind(), ErrorKind::kLocked);
  ASSERT_TRUE(client_->put_legal_hold("later.wav", false).is_ok());
  EXPECT_TRUE(client_->delete_object("later.wav", put->version_id).is_ok());
}

class RgwAuth : public RgwTest {};

TEST_F(RgwAuth, WrongCredentialsAreAuthErrorsAndSecretsStayOut) {
  const std::string real_secret = rgw_->user().secret_key;
  const std::string wrong_secret = real_secret.substr(0, real_secret.size() - 4) + "ZZZZ";
  // Everything the client logs at any level, captured.
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  auto logger = log::get("objstore");
  auto old_level = logger->level();
  logger->sinks().push_back(sink);
  logger->set_level(spdlog::level::trace);

  std::string path = make_file("a", 70000, 4);
  S3Options bad_key = options();
  bad_key.credentials = Credentials("NOSUCHACCESSKEY00000", real_secret);
  auto c1 = make_client(bad_key);
  auto r1 = c1->put_file("a.wav", path, {});
  S3Options bad_secret = options();
  bad_secret.credentials = Credentials(rgw_->user().access_key, wrong_secret);
  auto c2 = make_client(bad_secret);
  auto r2 = c2->put_file("a.wav", path, {});
  auto r3 = c2->head_object("a.wav");
  auto r4 = c2->list_object_versions("");
  auto ok = client_->put_file("a.wav", path, {});

  logger->sinks().pop_back();
  logger->set_level(old_level);

  ASSERT_FALSE(r1.is_ok());
  EXPECT_EQ(r1.kind(), ErrorKind::kAuth);
  EXPECT_EQ(r1.status().s3_code(), "InvalidAccessKeyId");
  ASSERT_FALSE(r2.is_ok());
  EXPECT_EQ(r2.kind(), ErrorKind::kAuth);
  EXPECT_EQ(r2.status().s3_code(), "SignatureDoesNotMatch");
  EXPECT_EQ(r2.status().status().code(), Status::Code::kRefused);
  EXPECT_EQ(r3.kind(), ErrorKind::kAuth);
  EXPECT_EQ(r4.kind(), ErrorKind::kAuth);
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(c2->stats().file_bytes_sent, 0u) << "refused before the body (100-continue)";

  auto lines = sink->last_formatted();
  EXPECT_GE(lines.size(), 5u) << "the calls above were logged";
  std::vector<std::string> texts = {r1.status().message(), r2.status().message(),
                                    r3.status().message(), r4.status().message()};
  texts.insert(texts.end(), lines.begin(), lines.end());
  for (const auto& t : texts) {
    EXPECT_EQ(t.find(real_secret), std::string::npos) << t;
    EXPECT_EQ(t.find(wrong_secret), std::string::npos) << t;
  }
}

TEST_F(RgwAuth, CredentialsFileFeedsTheClient) {
  std::string path = tmp_.sub("s3.keys");
  test::write_file(path, "# test user\naccess_key = " + rgw_->user().access_key +
                             "\nsecret_key = " + rgw_->user().secret_key + "\n");
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto refused = load_credentials_file(path);
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("0644"), std::string::npos);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  auto creds = load_credentials_file(path);
  ASSERT_TRUE(creds.is_ok()) << creds.status().to_string();
  S3Options o = options();
  o.credentials = creds.value();
  auto c = make_client(o);
  auto p = c->put_file("from-file.wav", make_file("ff", 10, 1), {});
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
}

class RgwTls : public RgwTest {};

TEST_F(RgwTls, HttpsVerifiesTheServerAgainstTheCaFile) {
  ASSERT_FALSE(rgw_->https_endpoint().empty());
  std::string path = make_file("tls", 2 << 20, 8);
  S3Options o = options();
  o.endpoint = rgw_->https_endpoint();
  o.ca_file = rgw_->ca_file();
  auto c = make_client(o);
  auto put = c->put_file("tls.wav", path, {});
  ASSERT_TRUE(put.is_ok()) << put.status().to_string();
  EXPECT_EQ(fetch(*c, "tls.wav"), test::read_file(path));

  // The system store does not know the test CA: refused, as a network error.
  o.ca_file.clear();
  auto untrusting = make_client(o);
  auto r = untrusting->head_object("tls.wav");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.kind(), ErrorKind::kNetwork);
  EXPECT_NE(r.status().message().find("certificate"), std::string::npos) << r.status().to_string();
}

class RgwOutage : public RgwTest {};

TEST_F(RgwOutage, StoreDownIsNetworkAndTheClientRecovers) {
  std::string path = make_file("o", 100000, 40);
  ASSERT_TRUE(client_->put_file("before.wav", path, {}).is_ok());
  rgw_->kill_rgw();
  auto t0 = std::chrono::steady_clock::now();
  auto down = client_->put_file("during.wav", path, {});
  ASSERT_FALSE(down.is_ok());
  EXPECT_EQ(down.kind(), ErrorKind::kNetwork) << down.status().to_string();
  EXPECT_EQ(down.status().http_status(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  Status up = rgw_->restart_rgw();
  ASSERT_TRUE(up.is_ok()) << up.to_string();
  // The same client (its kept-alive connection is dead) works again.
  auto again = client_->put_file("during.wav", path, {});
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_TRUE(client_->head_object("before.wav").is_ok()) << "data survived the restart";
}

}  // namespace
}  // namespace recsync::objstore
