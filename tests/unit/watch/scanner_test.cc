#include "watch/scanner.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include "watch_test_util.h"

namespace recsync {
namespace {

using testing::make_dirs;
using testing::TempDir;
using testing::write_file;

// Filesystem seam fake: wraps the real Env and alters what list_dir / lstat
// report, to simulate races and odd file systems.
class TweakEnv : public FaultEnv {
 public:
  explicit TweakEnv(Env* base) : FaultEnv(base), base_(base) {}
  std::vector<DirEntry> extra;  // appended to every listing of root
  std::string root;
  bool unknown_types = false;             // d_type DT_UNKNOWN everywhere
  std::map<std::string, int> list_errno;  // path -> errno for list_dir
  int lstat_calls = 0;

  Result<std::vector<DirEntry>> list_dir(const std::string& path) override {
    auto e = list_errno.find(path);
    if (e != list_errno.end()) return Status::from_errno(e->second, "opendir " + path);
    auto r = base_->list_dir(path);
    if (!r) return r;
    auto v = std::move(r).value();
    if (path == root) v.insert(v.end(), extra.begin(), extra.end());
    if (unknown_types)
      for (auto& d : v) d.type = DirEntry::Type::kUnknown;
    return v;
  }
  Result<FileStat> lstat(const std::string& path) override {
    ++lstat_calls;
    return base_->lstat(path);
  }

 private:
  Env* base_;
};

struct Found {
  std::map<std::string, FileStat> files;
  std::vector<std::string> dirs;
};

Status scan(Env* env, const std::string& root, const FileFilter& f, Found* out) {
  return scan_tree(
      env, root, f,
      [&](const std::string& rel, const FileStat& st) {
        EXPECT_TRUE(out->files.emplace(rel, st).second) << "reported twice: " << rel;
      },
      [&](const std::string& d) { out->dirs.push_back(d); });
}

class ScannerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok() && outside_.ok());
    const std::string r = dir_.path();
    write_file(r + "/a.wav", "12345");
    write_file(r + "/b.txt");
    write_file(r + "/.hidden.wav");
    write_file(r + "/.recsync-tmp.a.wav.123");
    make_dirs(r + "/sub/deep");
    make_dirs(r + "/sub/.hid");
    make_dirs(r + "/.hiddendir");
    make_dirs(r + "/empty");
    write_file(r + "/sub/c.wav", "cc");
    write_file(r + "/sub/deep/e.wav", "");
    write_file(r + "/sub/.hid/d.wav");
    write_file(r + "/.hiddendir/g.wav");
    write_file(outside_.path() + "/f.wav");
    ASSERT_EQ(::symlink((r + "/a.wav").c_str(), (r + "/link.wav").c_str()), 0);
    ASSERT_EQ(::symlink(outside_.path().c_str(), (r + "/linkdir").c_str()), 0);
    ASSERT_EQ(::symlink("/nonexistent", (r + "/dangling.wav").c_str()), 0);
    ASSERT_EQ(::mkfifo((r + "/fifo.wav").c_str(), 0644), 0);
  }

  void expect_standard(const Found& f) {
    std::set<std::string> names;
    for (const auto& [rel, st] : f.files) names.insert(rel);
    EXPECT_EQ(names, (std::set<std::string>{"a.wav", "sub/c.wav", "sub/deep/e.wav"}));
    if (f.files.count("a.wav")) {
      EXPECT_EQ(f.files.at("a.wav").size, 5u);
      EXPECT_TRUE(f.files.at("a.wav").is_reg);
      EXPECT_GT(f.files.at("a.wav").mtime_ns, 0);
    }
    if (f.files.count("sub/c.wav")) {
      EXPECT_EQ(f.files.at("sub/c.wav").size, 2u);
    }
    std::set<std::string> dirs(f.dirs.begin(), f.dirs.end());
    EXPECT_EQ(dirs, (std::set<std::string>{"sub", "sub/deep", "empty"}));
    // Parent before child.
    auto pos = [&](const std::string& d) {
      return std::find(f.dirs.begin(), f.dirs.end(), d) - f.dirs.begin();
    };
    EXPECT_LT(pos("sub"), pos("sub/deep"));
  }

  TempDir dir_;
  TempDir outside_;
  FileFilter wav_{{"*.wav"}, {}};
};

TEST_F(ScannerTest, ReportsMatchingRegularFilesOnly) {
  Found f;
  ASSERT_TRUE(scan(Env::posix(), dir_.path(), wav_, &f).is_ok());
  expect_standard(f);
}

TEST_F(ScannerTest, UnknownDirentTypesUseLstat) {
  TweakEnv env(Env::posix());
  env.root = dir_.path();
  env.unknown_types = true;
  Found f;
  ASSERT_TRUE(scan(&env, dir_.path(), wav_, &f).is_ok());
  expect_standard(f);
}

TEST_F(ScannerTest, LstatOnlyForMatchingFilesWhenTypesKnown) {
  TweakEnv env(Env::posix());
  env.root = dir_.path();
  Found f;
  ASSERT_TRUE(scan(&env, dir_.path(), wav_, &f).is_ok());
  EXPECT_EQ(env.lstat_calls, 3);  // a.wav, sub/c.wav, sub/deep/e.wav
}

TEST_F(ScannerTest, VanishedEntriesAreSkipped) {
  TweakEnv env(Env::posix());
  env.root = dir_.path();
  env.extra = {{"ghost.wav", DirEntry::Type::kFile},
               {"ghostdir", DirEntry::Type::kDir},
               {"ghost2.wav", DirEntry::Type::kUnknown}};
  Found f;
  Status s = scan(&env, dir_.path(), wav_, &f);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  expect_standard(f);
}

TEST_F(ScannerTest, FileRemovedDuringScanIsSkipped) {
  // Delete sub/deep/e.wav when sub is entered (after the root listing).
  Found f;
  Status s = scan_tree(
      Env::posix(), dir_.path(), wav_,
      [&](const std::string& rel, const FileStat& st) { f.files.emplace(rel, st); },
      [&](const std::string& d) {
        if (d == "sub/deep") ::unlink(dir_.operator/("sub/deep/e.wav").c_str());
        if (d == "sub") std::filesystem::remove_all(dir_ / "empty");
      });
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(f.files.count("sub/deep/e.wav"), 0u);
  EXPECT_EQ(f.files.count("a.wav"), 1u);
  EXPECT_EQ(f.files.count("sub/c.wav"), 1u);
}

TEST_F(ScannerTest, UnreadableSubfolderIsReportedButScanContinues) {
  TweakEnv env(Env::posix());
  env.root = dir_.path();
  env.list_errno[dir_ / "sub"] = EACCES;
  Found f;
  Status s = scan(&env, dir_.path(), wav_, &f);
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.err(), EACCES);
  EXPECT_NE(s.message().find("sub"), std::string::npos) << s.message();
  EXPECT_EQ(f.files.count("a.wav"), 1u);
  EXPECT_EQ(f.files.count("sub/c.wav"), 0u);
}

TEST_F(ScannerTest, MissingRootIsAnError) {
  Found f;
  Status s = scan(Env::posix(), dir_ / "nope", wav_, &f);
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
  EXPECT_TRUE(f.files.empty());
}

TEST_F(ScannerTest, ExcludePatternsApply) {
  FileFilter filt({"*.wav", "*.txt"}, {"sub/*"});
  Found f;
  ASSERT_TRUE(scan(Env::posix(), dir_.path(), filt, &f).is_ok());
  std::set<std::string> names;
  for (const auto& [rel, st] : f.files) names.insert(rel);
  EXPECT_EQ(names, (std::set<std::string>{"a.wav", "b.txt", "sub/deep/e.wav"}));
}

TEST(ScannerScale, FiftyThousandFiles) {
  TempDir dir("/dev/shm");
  ASSERT_TRUE(dir.ok());
  constexpr int kDirs = 50, kPerDir = 1000;
  for (int d = 0; d < kDirs; ++d) {
    std::string sub = dir / ("2026/11/" + std::to_string(d));
    make_dirs(sub);
    for (int i = 0; i < kPerDir; ++i) {
      int fd = ::open((sub + "/" + std::to_string(i) + ".wav").c_str(),
                      O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      ASSERT_GE(fd, 0);
      ::close(fd);
    }
  }
  FileFilter filt({"*.wav"}, {});
  size_t n = 0;
  auto t0 = std::chrono::steady_clock::now();
  Status s = scan_tree(Env::posix(), dir.path(), filt,
                       [&](const std::string&, const FileStat& st) { n += st.is_reg; });
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(n, size_t(kDirs * kPerDir));
  EXPECT_LT(ms, 3000) << "scan of 50k files took " << ms << " ms";
  std::printf("scan of %d files: %lld ms\n", kDirs * kPerDir, (long long)ms);
}

}  // namespace
}  // namespace recsync
