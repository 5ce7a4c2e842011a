#include "recsync/env.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace recsync {
namespace {

namespace fs = std::filesystem;

class DirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-env-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ + "/a");
    std::ofstream(root_ + "/a/one.wav") << "12345";
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_;
};

TEST_F(DirTest, StatsAndUnlinksEntriesByName) {
  auto d = Env::posix()->open_dir(root_ + "/a");
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_EQ((*d)->path(), root_ + "/a");
  auto st = (*d)->lstat("one.wav");
  ASSERT_TRUE(st) << st.status().to_string();
  EXPECT_TRUE(st->is_reg);
  EXPECT_EQ(st->size, 5u);
  ASSERT_TRUE((*d)->unlink("one.wav"));
  EXPECT_FALSE(fs::exists(root_ + "/a/one.wav"));
  // Gone: kNotFound, and the message names the whole path.
  auto again = (*d)->lstat("one.wav");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.status().code(), Status::Code::kNotFound);
  EXPECT_NE(again.status().message().find(root_ + "/a/one.wav"), std::string::npos)
      << again.status().message();
  Status u = (*d)->unlink("one.wav");
  EXPECT_EQ(u.code(), Status::Code::kNotFound);
}

TEST_F(DirTest, DoesNotFollowASymlinkOrOpenAFile) {
  ASSERT_EQ(::symlink((root_ + "/a").c_str(), (root_ + "/link").c_str()), 0);
  EXPECT_FALSE(Env::posix()->open_dir(root_ + "/link"));
  EXPECT_FALSE(Env::posix()->open_dir(root_ + "/a/one.wav"));
  auto gone = Env::posix()->open_dir(root_ + "/nope");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.status().code(), Status::Code::kNotFound);
}

TEST_F(DirTest, FaultEnvDirGoesThroughItsSwitches) {
  FaultEnv env(Env::posix());
  auto d = env.open_dir(root_ + "/a");
  ASSERT_TRUE(d) << d.status().to_string();
  env.unlink_errno = EIO;
  Status s = (*d)->unlink("one.wav");
  EXPECT_EQ(s.code(), Status::Code::kIo) << s.to_string();
  EXPECT_TRUE(fs::exists(root_ + "/a/one.wav"));
  env.unlink_errno = 0;
  EXPECT_TRUE((*d)->unlink("one.wav"));
  EXPECT_EQ(env.unlinks.load(), 2);
  EXPECT_FALSE(fs::exists(root_ + "/a/one.wav"));
}

}  // namespace
}  // namespace recsync
