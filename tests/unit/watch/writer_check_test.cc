#include "watch/writer_check.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "watch_test_util.h"

namespace recsync {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(ParseOpenCheck, Names) {
  EXPECT_EQ(parse_open_check("auto").value(), OpenCheck::kAuto);
  EXPECT_EQ(parse_open_check("lease").value(), OpenCheck::kLease);
  EXPECT_EQ(parse_open_check("proc").value(), OpenCheck::kProc);
  EXPECT_EQ(parse_open_check("none").value(), OpenCheck::kNone);
  for (const char* bad : {"", "Auto", "leases", "proc ", "yes"}) {
    auto r = parse_open_check(bad);
    EXPECT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalid);
  }
  for (auto c : {OpenCheck::kAuto, OpenCheck::kLease, OpenCheck::kProc, OpenCheck::kNone})
    EXPECT_EQ(parse_open_check(open_check_name(c)).value(), c);
}

// A child process that holds `path` open with `flags` until killed.
class Holder {
 public:
  Holder(const std::string& path, int flags) {
    int p[2];
    if (::pipe(p) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(p[0]);
      int fd = ::open(path.c_str(), flags | O_CLOEXEC);
      char c = fd >= 0 ? 'y' : 'n';
      (void)!::write(p[1], &c, 1);
      ::pause();
      ::_exit(0);
    }
    ::close(p[1]);
    char c = 0;
    ok_ = pid_ > 0 && ::read(p[0], &c, 1) == 1 && c == 'y';
    ::close(p[0]);
  }
  ~Holder() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool ok() const { return ok_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool ok_ = false;
};

// Filesystem seam fake: a file whose lease is always refused (as for a
// daemon without CAP_LEASE that does not own the file).
class NoLeaseFile : public File {
 public:
  explicit NoLeaseFile(std::unique_ptr<File> f) : f_(std::move(f)) {}
  int fd() const override { return f_->fd(); }
  Result<size_t> read(void* b, size_t n) override { return f_->read(b, n); }
  Status write_all(const void* b, size_t n) override { return f_->write_all(b, n); }
  Status sync() override { return f_->sync(); }
  Result<FileStat> stat() override { return f_->stat(); }
  Status set_mtime_ns(int64_t ns) override { return f_->set_mtime_ns(ns); }
  void drop_cache() override {}
  void will_need() override {}
  void write_behind() override {}
  Status take_read_lease() override {
    ++lease_attempts;
    return Status::from_errno(EACCES, "lease");
  }
  bool lease_intact() override { return false; }
  void release_lease() override {}
  int lease_attempts = 0;

 private:
  std::unique_ptr<File> f_;
};

class WriterCheckTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      std::printf("not root: leases on others' files and /proc of other users need root\n");
      GTEST_SKIP() << "needs root";
    }
    dir_ = std::make_unique<TempDir>(GetParam());
    ASSERT_TRUE(dir_->ok());
    path_ = *dir_ / "rec.wav";
    write_file(path_, "audio");
  }
  std::unique_ptr<File> open() {
    auto r = Env::posix()->open_read(path_);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<TempDir> dir_;
  std::string path_;
};

TEST_P(WriterCheckTest, WriterInThisProcessIsBusy) {
  int wfd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  ASSERT_GE(wfd, 0);
  for (OpenCheck m : {OpenCheck::kLease, OpenCheck::kProc, OpenCheck::kAuto}) {
    auto f = open();
    ASSERT_TRUE(f);
    Status s = check_no_writer(*f, path_, m);
    EXPECT_EQ(s.code(), Status::Code::kBusy) << open_check_name(m) << ": " << s.to_string();
    EXPECT_FALSE(f->lease_intact()) << open_check_name(m);
  }
  {
    auto f = open();
    Status s = check_no_writer(*f, path_, OpenCheck::kProc);
    EXPECT_NE(s.message().find("pid " + std::to_string(::getpid())), std::string::npos)
        << s.message();
  }
  {
    auto f = open();
    EXPECT_TRUE(check_no_writer(*f, path_, OpenCheck::kNone).is_ok());
  }
  ::close(wfd);
  for (OpenCheck m : {OpenCheck::kLease, OpenCheck::kProc, OpenCheck::kAuto}) {
    auto f = open();
    Status s = check_no_writer(*f, path_, m);
    EXPECT_TRUE(s.is_ok()) << open_check_name(m) << ": " << s.to_string();
    // lease and auto leave the lease held; proc holds nothing.
    EXPECT_EQ(f->lease_intact(), m != OpenCheck::kProc) << open_check_name(m);
  }
}

TEST_P(WriterCheckTest, WriterInAnotherProcessIsBusy) {
  for (int flags : {O_WRONLY, O_RDWR}) {
    Holder h(path_, flags);
    ASSERT_TRUE(h.ok());
    for (OpenCheck m : {OpenCheck::kLease, OpenCheck::kProc, OpenCheck::kAuto}) {
      auto f = open();
      Status s = check_no_writer(*f, path_, m);
      EXPECT_EQ(s.code(), Status::Code::kBusy) << open_check_name(m) << " flags " << flags;
    }
    auto f = open();
    Status s = check_no_writer(*f, path_, OpenCheck::kProc);
    EXPECT_NE(s.message().find("pid " + std::to_string(h.pid())), std::string::npos) << s.message();
  }
  // Holders are gone: no writer.
  auto f = open();
  EXPECT_TRUE(check_no_writer(*f, path_, OpenCheck::kProc).is_ok());
  EXPECT_TRUE(check_no_writer(*f, path_, OpenCheck::kLease).is_ok());
}

TEST_P(WriterCheckTest, ReadersAreNotWriters) {
  Holder h(path_, O_RDONLY);
  ASSERT_TRUE(h.ok());
  for (OpenCheck m : {OpenCheck::kLease, OpenCheck::kProc, OpenCheck::kAuto}) {
    auto f = open();
    Status s = check_no_writer(*f, path_, m);
    EXPECT_TRUE(s.is_ok()) << open_check_name(m) << ": " << s.to_string();
  }
}

TEST_P(WriterCheckTest, HeldLeaseSeesAWriterComing) {
  auto f = open();
  ASSERT_TRUE(check_no_writer(*f, path_, OpenCheck::kLease).is_ok());
  ASSERT_TRUE(f->lease_intact());
  // Another process opens for writing (non-blocking, so it does not wait for
  // the lease break): the lease is being broken, which the copier can see.
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ::_exit(fd < 0 && errno == EWOULDBLOCK ? 0 : 1);
  }
  ASSERT_GT(pid, 0);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "open did not meet the lease";
  EXPECT_FALSE(f->lease_intact());
  f->release_lease();
  // Still alive: SIGIO from the lease break did not kill the test process.
  SUCCEED();
}

TEST_P(WriterCheckTest, AutoFallsBackToProcWhenLeaseRefused) {
  {
    NoLeaseFile f(open());
    EXPECT_TRUE(check_no_writer(f, path_, OpenCheck::kAuto).is_ok());
    EXPECT_EQ(f.lease_attempts, 1);
  }
  Holder h(path_, O_WRONLY);
  ASSERT_TRUE(h.ok());
  NoLeaseFile f(open());
  EXPECT_EQ(check_no_writer(f, path_, OpenCheck::kAuto).code(), Status::Code::kBusy);
  // lease alone does not fall back: the refusal is an error, not "no writer".
  Status s = check_no_writer(f, path_, OpenCheck::kLease);
  EXPECT_FALSE(s.is_ok());
  EXPECT_NE(s.code(), Status::Code::kBusy);
  EXPECT_EQ(s.err(), EACCES);
}

TEST_P(WriterCheckTest, ProcCheckMatchesInodeNotName) {
  auto st = Env::posix()->lstat(path_);
  ASSERT_TRUE(st.is_ok());
  {
    // The writer opened the file under another name (hard link): still found.
    std::string other = *dir_ / "other-name.wav";
    ASSERT_EQ(::link(path_.c_str(), other.c_str()), 0);
    Holder h(other, O_WRONLY);
    ASSERT_TRUE(h.ok());
    auto f = open();
    EXPECT_EQ(check_no_writer(*f, path_, OpenCheck::kProc).code(), Status::Code::kBusy);
    EXPECT_EQ(proc_check_no_writer(st->dev, st->ino, path_).code(), Status::Code::kBusy);
  }
  {
    // A writer of a different file does not count.
    std::string third = *dir_ / "third.wav";
    write_file(third);
    Holder h(third, O_WRONLY);
    ASSERT_TRUE(h.ok());
    EXPECT_TRUE(proc_check_no_writer(st->dev, st->ino, path_).is_ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Filesystems, WriterCheckTest, ::testing::Values("/tmp", "/dev/shm"),
                         [](const auto& info) {
                           return std::string(info.param) == "/tmp" ? "ext4_tmp" : "tmpfs_shm";
                         });

}  // namespace
}  // namespace recsync
