#include "watch/inotify_watcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "watch/scanner.h"
#include "watch_test_util.h"

namespace recsync {
namespace {

using testing::make_dirs;
using testing::TempDir;
using testing::write_file;

// Each test runs its own loop and proves a clean shutdown (libuv style):
// after close() one more uv_run must leave nothing behind for uv_loop_close.
class InotifyWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    ASSERT_TRUE(dir_.ok());
  }
  void TearDown() override {
    if (w_) w_->close();
    w_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }

  InotifyWatcher::Callbacks callbacks() {
    InotifyWatcher::Callbacks cb;
    cb.on_file = [this](const std::string& rel) {
      files_.push_back(rel);
      if (on_file_hook_) on_file_hook_(rel);
    };
    cb.on_new_dir = [this](const std::string& rel) {
      new_dirs_.push_back(rel);
      // What the caller must do: scan the new folder.
      Status s =
          scan_tree(Env::posix(), dir_ / rel, FileFilter({"*.wav"}, {}),
                    [&](const std::string& f, const FileStat&) { scanned_.insert(rel + "/" + f); });
      EXPECT_TRUE(s.is_ok()) << s.to_string();
    };
    cb.on_overflow = [this] { ++overflow_calls_; };
    return cb;
  }
  void start() {
    w_ = std::make_unique<InotifyWatcher>(&loop_, dir_.path(), callbacks());
    Status s = w_->start();
    ASSERT_TRUE(s.is_ok()) << s.to_string();
  }
  // Turns the loop until pred holds or timeout; bounded in time.
  bool run_until(const std::function<bool()>& pred, int timeout_ms = 3000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (pred()) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  void run_for(int ms) {
    run_until([] { return false; }, ms);
  }
  bool has_file(const std::string& rel) const {
    return std::find(files_.begin(), files_.end(), rel) != files_.end();
  }

  uv_loop_t loop_;
  TempDir dir_;
  std::unique_ptr<InotifyWatcher> w_;
  std::vector<std::string> files_;
  std::vector<std::string> new_dirs_;
  std::set<std::string> scanned_;
  int overflow_calls_ = 0;
  std::function<void(const std::string&)> on_file_hook_;
};

TEST_F(InotifyWatcherTest, CloseWriteIsReportedOpenIsNot) {
  make_dirs(dir_ / "2026/11/24");
  start();
  EXPECT_EQ(w_->watch_count(), 4u);  // root, 2026, 2026/11, 2026/11/24
  // A file being written: created and written, not closed: nothing yet.
  int fd = ::open((dir_ / "2026/11/24/live.wav").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "abc", 3), 3);
  run_for(100);
  EXPECT_TRUE(files_.empty());
  ::close(fd);
  ASSERT_TRUE(run_until([&] { return has_file("2026/11/24/live.wav"); }));
  write_file(dir_ / "top.wav");
  ASSERT_TRUE(run_until([&] { return has_file("top.wav"); }));
  // A read-only open and close is not a write.
  size_t before = files_.size();
  int rfd = ::open((dir_ / "top.wav").c_str(), O_RDONLY | O_CLOEXEC);
  ::close(rfd);
  run_for(100);
  EXPECT_EQ(files_.size(), before);
  EXPECT_EQ(overflow_calls_, 0);
}

TEST_F(InotifyWatcherTest, MovedInIsReported) {
  TempDir staging;  // same file system (/tmp)
  make_dirs(dir_ / "sub");
  start();
  write_file(staging / "in.wav");
  write_file(staging / "in2.wav");
  ASSERT_EQ(::rename((staging / "in.wav").c_str(), (dir_ / "in.wav").c_str()), 0);
  ASSERT_EQ(::rename((staging / "in2.wav").c_str(), (dir_ / "sub/in2.wav").c_str()), 0);
  ASSERT_TRUE(run_until([&] { return has_file("in.wav") && has_file("sub/in2.wav"); }));
  // A symlink or fifo moved in is not a regular file: not reported.
  ASSERT_EQ(::symlink("/etc/hostname", (staging / "l.wav").c_str()), 0);
  ASSERT_EQ(::rename((staging / "l.wav").c_str(), (dir_ / "l.wav").c_str()), 0);
  ASSERT_EQ(::mkfifo((dir_ / "fifo.wav").c_str(), 0644), 0);
  run_for(100);
  EXPECT_FALSE(has_file("l.wav"));
  EXPECT_FALSE(has_file("fifo.wav"));
}

TEST_F(InotifyWatcherTest, FileInNewSubfolderBeforeItsWatchIsFoundByScan) {
  start();
  // Created and closed before the loop runs, so before any watch on "new".
  make_dirs(dir_ / "new");
  write_file(dir_ / "new/early.wav");
  make_dirs(dir_ / "n1/n2");
  write_file(dir_ / "n1/n2/deep.wav");
  ASSERT_TRUE(run_until([&] {
    return scanned_.count("new/early.wav") && scanned_.count("n1/n2/deep.wav");
  })) << "scanned "
      << scanned_.size();
  std::set<std::string> dirs(new_dirs_.begin(), new_dirs_.end());
  EXPECT_TRUE(dirs.count("new"));
  EXPECT_TRUE(dirs.count("n1"));
  EXPECT_TRUE(dirs.count("n1/n2"));
  // Parent reported before child.
  auto pos = [&](const std::string& d) {
    return std::find(new_dirs_.begin(), new_dirs_.end(), d) - new_dirs_.begin();
  };
  EXPECT_LT(pos("n1"), pos("n1/n2"));
  EXPECT_EQ(w_->watch_count(), 4u);
  // The new folders are watched from now on.
  write_file(dir_ / "n1/n2/late.wav");
  ASSERT_TRUE(run_until([&] { return has_file("n1/n2/late.wav"); }));
}

TEST_F(InotifyWatcherTest, SymlinkedAndHiddenFoldersAreNotWatched) {
  TempDir outside;
  make_dirs(dir_ / ".hidden");
  ASSERT_EQ(::symlink(outside.path().c_str(), (dir_ / "link").c_str()), 0);
  start();
  EXPECT_EQ(w_->watch_count(), 1u);
  // A symlink to a folder created later is not followed either.
  ASSERT_EQ(::symlink(outside.path().c_str(), (dir_ / "link2").c_str()), 0);
  make_dirs(dir_ / ".hidden2");
  write_file(outside / "x.wav");
  write_file(dir_ / "marker.wav");
  ASSERT_TRUE(run_until([&] { return has_file("marker.wav"); }));
  run_for(50);
  EXPECT_EQ(w_->watch_count(), 1u);
  EXPECT_TRUE(new_dirs_.empty());
  EXPECT_FALSE(has_file("link/x.wav"));
  EXPECT_FALSE(has_file("link2/x.wav"));
}

TEST_F(InotifyWatcherTest, FolderMovedAndRemoved) {
  make_dirs(dir_ / "a/inner");
  start();
  EXPECT_EQ(w_->watch_count(), 3u);
  ASSERT_EQ(::rename((dir_ / "a").c_str(), (dir_ / "b").c_str()), 0);
  ASSERT_TRUE(run_until([&] { return new_dirs_.size() >= 2; }));
  write_file(dir_ / "b/inner/f.wav");
  ASSERT_TRUE(run_until([&] { return has_file("b/inner/f.wav"); }));
  EXPECT_FALSE(has_file("a/inner/f.wav"));
  EXPECT_EQ(w_->watch_count(), 3u);

  // Moved out of the spool: its watches go.
  TempDir elsewhere;
  ASSERT_EQ(::rename((dir_ / "b").c_str(), (elsewhere / "b").c_str()), 0);
  ASSERT_TRUE(run_until([&] { return w_->watch_count() == 1u; }));
  write_file(elsewhere / "b/inner/g.wav");
  write_file(dir_ / "marker.wav");
  ASSERT_TRUE(run_until([&] { return has_file("marker.wav"); }));
  for (const auto& f : files_) EXPECT_EQ(f.find("g.wav"), std::string::npos) << f;

  // Deleted: IN_IGNORED drops the watch.
  make_dirs(dir_ / "c");
  ASSERT_TRUE(run_until([&] { return w_->watch_count() == 2u; }));
  ASSERT_EQ(::rmdir((dir_ / "c").c_str()), 0);
  ASSERT_TRUE(run_until([&] { return w_->watch_count() == 1u; }));
  EXPECT_EQ(overflow_calls_, 0);
}

TEST_F(InotifyWatcherTest, CloseFromInsideACallback) {
  start();
  on_file_hook_ = [&](const std::string&) { w_->close(); };
  write_file(dir_ / "a.wav");
  write_file(dir_ / "b.wav");
  ASSERT_TRUE(run_until([&] { return !files_.empty(); }));
  run_for(50);
  EXPECT_EQ(files_.size(), 1u);  // nothing after close
  EXPECT_FALSE(w_->running());
  EXPECT_EQ(w_->watch_count(), 0u);
}

TEST_F(InotifyWatcherTest, MissingRootFailsAndLeavesNothingOpen) {
  w_ = std::make_unique<InotifyWatcher>(&loop_, dir_ / "missing", callbacks());
  Status s = w_->start();
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.message().find("missing"), std::string::npos) << s.message();
  EXPECT_FALSE(w_->running());
  // A file as root is not a folder.
  write_file(dir_ / "plain");
  InotifyWatcher w2(&loop_, dir_ / "plain", callbacks());
  EXPECT_FALSE(w2.start().is_ok());
}

TEST_F(InotifyWatcherTest, StartTwiceIsRefused) {
  start();
  EXPECT_EQ(w_->start().code(), Status::Code::kInvalid);
}

TEST_F(InotifyWatcherTest, DestructorWithoutCloseIsClean) {
  start();
  w_.reset();  // destructor closes; TearDown proves uv_loop_close succeeds
}

// max_queued_events is read at inotify_init time: lower it for our instance
// only, and put it back right after start().
class SysctlGuard {
 public:
  explicit SysctlGuard(std::string path) : path_(std::move(path)) {
    std::ifstream in(path_);
    in >> old_;
  }
  bool set(const std::string& v) {
    std::ofstream out(path_);
    out << v << "\n";
    out.close();
    return bool(out);
  }
  void restore() {
    if (!old_.empty()) set(old_);
    restored_ = true;
  }
  ~SysctlGuard() {
    if (!restored_) restore();
  }
  void dismiss() { restored_ = true; }  // never write anything back
  const std::string& old() const { return old_; }

 private:
  std::string path_, old_;
  bool restored_ = false;
};

TEST_F(InotifyWatcherTest, QueueOverflowAsksForRescan) {
  if (::geteuid() != 0) {
    std::printf("not root: cannot lower fs.inotify.max_queued_events\n");
    GTEST_SKIP() << "needs root";
  }
  make_dirs(dir_ / "sub");
  {
    SysctlGuard g("/proc/sys/fs/inotify/max_queued_events");
    ASSERT_FALSE(g.old().empty());
    // Another test (tests/integration) lowers this knob the same way; if it
    // is low now, that test is mid-flight and restoring its value would be
    // wrong.
    if (std::stol(g.old()) < 1024) {
      std::printf("max_queued_events=%s: lowered by a concurrent test\n", g.old().c_str());
      g.dismiss();
      GTEST_SKIP() << "max_queued_events already lowered";
    }
    ASSERT_TRUE(g.set("16"));
    w_ = std::make_unique<InotifyWatcher>(&loop_, dir_.path(), callbacks());
    Status s = w_->start();
    g.restore();
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    std::ifstream in("/proc/sys/fs/inotify/max_queued_events");
    std::string now;
    in >> now;
    EXPECT_EQ(now, g.old());
  }
  // 100 files = 200+ events, far past 16, written while the loop sleeps;
  // a folder is created during the flood, its event is lost too.
  for (int i = 0; i < 100; ++i) write_file(dir_ / ("f" + std::to_string(i) + ".wav"));
  make_dirs(dir_ / "lost-dir");
  ASSERT_TRUE(run_until([&] { return overflow_calls_ > 0; }));
  EXPECT_GE(w_->overflows(), 1u);
  EXPECT_EQ(overflow_calls_, 1);   // one rescan request per batch
  EXPECT_LT(files_.size(), 100u);  // some were lost: that is why we rescan
  // Watches were re-synced: the folder created during the flood is watched.
  EXPECT_EQ(w_->watch_count(), 3u);
  write_file(dir_ / "lost-dir/after.wav");
  ASSERT_TRUE(run_until([&] { return has_file("lost-dir/after.wav"); }));
}

}  // namespace
}  // namespace recsync
