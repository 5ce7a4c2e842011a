#include "peer/identity.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace recsync::peer {
namespace {

namespace fs = std::filesystem;

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-identity-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/state";  // does not exist yet: must be created
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string slurp(const std::string& name) {
    std::ifstream f(dir_ + "/" + name, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  void spit(const std::string& name, const std::string& data) {
    std::ofstream f(dir_ + "/" + name, std::ios::binary | std::ios::trunc);
    f << data;
  }
  std::string root_, dir_;
};

bool is_fingerprint(const std::string& fp) {
  if (fp.size() != 7 + 64 || fp.rfind("sha256:", 0) != 0) return false;
  for (char c : fp.substr(7))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

TEST_F(IdentityTest, CreateThenReloadKeepsFingerprint) {
  auto a = load_or_create_identity(Env::posix(), dir_, "fs1");
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_TRUE(is_fingerprint(a->fingerprint)) << a->fingerprint;
  EXPECT_EQ(a->node, "fs1");
  EXPECT_EQ(EVP_PKEY_get_id(a->key.get()), EVP_PKEY_ED25519);
  EXPECT_EQ(a->fingerprint, fingerprint(a->cert.get()));

  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);  // state dir created private
  // No temp files left behind.
  for (auto& e : fs::directory_iterator(dir_))
    EXPECT_TRUE(e.path().filename() == "node.key" || e.path().filename() == "node.crt") << e.path();

  std::string key_before = slurp("node.key");
  auto b = load_or_create_identity(Env::posix(), dir_, "ignored-on-reload");
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(b->fingerprint, a->fingerprint);
  EXPECT_EQ(b->node, "fs1");
  EXPECT_EQ(slurp("node.key"), key_before);
}

TEST_F(IdentityTest, CertificateLastsACentury) {
  auto a = load_or_create_identity(Env::posix(), dir_, "fs1");
  ASSERT_TRUE(a.is_ok());
  int days = 0, secs = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(a->cert.get())), 1);
  EXPECT_GT(days, 99 * 365);
  ASSERT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notBefore(a->cert.get())), 1);
  EXPECT_LE(days, 0);
}

TEST_F(IdentityTest, KeygenForceRegenerates) {
  ASSERT_TRUE(generate_identity(Env::posix(), dir_, "fs1", false).is_ok());
  auto a = load_identity(Env::posix(), dir_);
  ASSERT_TRUE(a.is_ok());
  Status again = generate_identity(Env::posix(), dir_, "fs1", false);
  EXPECT_EQ(again.code(), Status::Code::kExists) << again.to_string();
  auto same = load_identity(Env::posix(), dir_);
  EXPECT_EQ(same->fingerprint, a->fingerprint);

  ASSERT_TRUE(generate_identity(Env::posix(), dir_, "fs1", true).is_ok());
  auto b = load_identity(Env::posix(), dir_);
  ASSERT_TRUE(b.is_ok());
  EXPECT_NE(b->fingerprint, a->fingerprint);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(IdentityTest, LooseKeyPermissionsRefused) {
  ASSERT_TRUE(load_or_create_identity(Env::posix(), dir_, "fs1").is_ok());
  for (mode_t m : {0640, 0604, 0660}) {
    ASSERT_EQ(::chmod((dir_ + "/node.key").c_str(), m), 0);
    auto r = load_or_create_identity(Env::posix(), dir_, "fs1");
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), Status::Code::kRefused);
    EXPECT_NE(r.status().message().find("chmod 600"), std::string::npos) << r.status().message();
  }
}

TEST_F(IdentityTest, CorruptFilesAreErrors) {
  ASSERT_TRUE(load_or_create_identity(Env::posix(), dir_, "fs1").is_ok());
  std::string key = slurp("node.key"), cert = slurp("node.crt");

  spit("node.key", "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n");
  auto r = load_or_create_identity(Env::posix(), dir_, "fs1");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorrupt) << r.status().to_string();
  EXPECT_NE(r.status().message().find("node.key"), std::string::npos);
  // Not regenerated behind the operator's back.
  EXPECT_NE(slurp("node.key"), key);

  spit("node.key", key);
  spit("node.crt", cert.substr(0, cert.size() / 2));
  r = load_identity(Env::posix(), dir_);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorrupt);

  // A certificate of another key.
  std::string other = root_ + "/other";
  ASSERT_TRUE(generate_identity(Env::posix(), other, "fs2", false).is_ok());
  fs::copy_file(other + "/node.crt", dir_ + "/node.crt", fs::copy_options::overwrite_existing);
  r = load_identity(Env::posix(), dir_);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorrupt);
  EXPECT_NE(r.status().message().find("does not match"), std::string::npos);
}

TEST_F(IdentityTest, MissingCertificateIsRecreatedFromKey) {
  auto a = load_or_create_identity(Env::posix(), dir_, "fs1");
  ASSERT_TRUE(a.is_ok());
  std::string key = slurp("node.key");
  fs::remove(dir_ + "/node.crt");
  auto b = load_or_create_identity(Env::posix(), dir_, "fs1");
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(slurp("node.key"), key);
  EXPECT_EQ(EVP_PKEY_eq(a->key.get(), b->key.get()), 1);
}

TEST_F(IdentityTest, SyncFailureLeavesNoKey) {
  FaultEnv env(Env::posix());
  env.sync_errno = EIO;
  auto r = load_or_create_identity(&env, dir_, "fs1");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIo);
  if (fs::exists(dir_)) {
    EXPECT_FALSE(fs::exists(dir_ + "/node.key"));
    for (auto& e : fs::directory_iterator(dir_)) ADD_FAILURE() << "left behind: " << e.path();
  }
  env.sync_errno = 0;
  EXPECT_TRUE(load_or_create_identity(&env, dir_, "fs1").is_ok());
}

}  // namespace
}  // namespace recsync::peer
