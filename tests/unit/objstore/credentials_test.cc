#include "objstore/credentials.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace recsync::objstore {
namespace {

namespace fs = std::filesystem;

constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzSECRETzKEY";
constexpr char kAccess[] = "AKIAIOSFODNN7EXAMPLE";

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-cred-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& name, const std::string& text, mode_t mode) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::trunc) << text;
    EXPECT_EQ(::chmod(p.c_str(), mode), 0);
    return p;
  }
  static std::string good_text() {
    return std::string("# object store keys\n\n; also a comment\n  access_key = ") + kAccess +
           "  \nsecret_key=\"" + kSecret + "\"\r\n";
  }
  std::string dir_;
};

TEST_F(CredentialsTest, LoadsAFileOnlyTheOwnerCanRead) {
  for (mode_t mode : {0600, 0400}) {
    auto c = load_credentials_file(write("keys", good_text(), mode));
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    EXPECT_EQ(c->access_key, kAccess);
    EXPECT_EQ(c->secret_key, kSecret);
  }
}

TEST_F(CredentialsTest, RefusesGroupOrOtherPermissionsNamingFileAndMode) {
  for (mode_t mode : {0640, 0604, 0644, 0660, 0602, 0620, 0610, 0601}) {
    std::string p = write("keys", good_text(), mode);
    auto c = load_credentials_file(p);
    ASSERT_FALSE(c.is_ok()) << std::oct << mode;
    EXPECT_EQ(c.status().code(), Status::Code::kRefused);
    const std::string& m = c.status().message();
    EXPECT_NE(m.find(p), std::string::npos) << m;
    char mode_text[8];
    std::snprintf(mode_text, sizeof mode_text, "%04o", unsigned(mode));
    EXPECT_NE(m.find(mode_text), std::string::npos) << m;
    EXPECT_EQ(m.find(kSecret), std::string::npos) << m;
  }
}

TEST_F(CredentialsTest, RefusesSymlinksFoldersAndMissingFiles) {
  std::string target = write("real", good_text(), 0600);
  std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  auto c = load_credentials_file(link);
  ASSERT_FALSE(c.is_ok());
  EXPECT_EQ(c.status().code(), Status::Code::kRefused);
  EXPECT_NE(c.status().message().find("symlink"), std::string::npos);
  std::string sub = dir_ + "/sub";
  ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
  EXPECT_EQ(load_credentials_file(sub).status().code(), Status::Code::kRefused);
  EXPECT_EQ(load_credentials_file(dir_ + "/none").status().code(), Status::Code::kNotFound);
}

TEST_F(CredentialsTest, FormatErrorsNameTheLineButNeverTheValue) {
  struct Case {
    std::string text;
    std::string expect;
  } cases[] = {
      {std::string("access_key = ") + kAccess + "\n", "secret_key missing"},
      {std::string("secret_key = ") + kSecret + "\n", "access_key missing"},
      {std::string("access_key = a\nsecret_kye = ") + kSecret + "\nsecret_key = x\n",
       ":2: unknown key"},
      {std::string("access_key = a\n") + kSecret + "\n", ":2: expected key = value"},
      {std::string("access_key = a\nsecret_key = ") + kSecret + "\nsecret_key = " + kSecret + "\n",
       ":3: key given twice"},
      {std::string("access_key = a\nsecret_key = ") + kSecret + " tail\n", ":2: value has spaces"},
      {"access_key = a\nsecret_key =\n", ":2: empty value"},
      {std::string("access_key = a\nsecret_key = ") + std::string(1025, 'x') + "\n",
       ":2: value too long"},
  };
  for (const auto& c : cases) {
    std::string p = write("keys", c.text, 0600);
    auto r = load_credentials_file(p);
    ASSERT_FALSE(r.is_ok()) << c.text;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalid);
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().to_string();
    EXPECT_EQ(r.status().message().find(kSecret), std::string::npos) << r.status().to_string();
  }
}

TEST_F(CredentialsTest, RefusesOversizedFiles) {
  std::string big = good_text() + "#" + std::string(kMaxCredentialsFile, 'x') + "\n";
  auto r = load_credentials_file(write("big", big, 0600));
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("64 KiB"), std::string::npos);
}

TEST_F(CredentialsTest, SystemdCredentialsDirectory) {
  ::unsetenv("CREDENTIALS_DIRECTORY");
  auto r = load_systemd_credential("s3");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  EXPECT_NE(r.status().message().find("CREDENTIALS_DIRECTORY"), std::string::npos);

  write("s3", good_text(), 0400);
  ASSERT_EQ(::setenv("CREDENTIALS_DIRECTORY", dir_.c_str(), 1), 0);
  r = load_systemd_credential("s3");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->secret_key, kSecret);
  EXPECT_EQ(load_systemd_credential("../s3").status().code(), Status::Code::kInvalid);
  EXPECT_EQ(load_systemd_credential("other").status().code(), Status::Code::kNotFound);
  ::unsetenv("CREDENTIALS_DIRECTORY");
}

}  // namespace
}  // namespace recsync::objstore
