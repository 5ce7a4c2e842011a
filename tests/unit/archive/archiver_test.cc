#include "archive/archiver.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "recsync/hash.h"
#include "recsync/names.h"

namespace recsync {
namespace {

namespace fs = std::filesystem;
using K = ArchiveOutcome::Kind;

constexpr int64_t kNsPerMs = 1'000'000;
// 2024-02-29T23:59:59.250Z: a leap day, a quarter second before midnight UTC.
constexpr int64_t kRecMs = 1709251199'250;
constexpr int64_t kRecNs = kRecMs * kNsPerMs + 123'456;  // sub-ms part must survive too
// The fixed clock: an hour after the recording (2024-03-01T00:59:59.250Z).
constexpr int64_t kNowMs = kRecMs + 3'600'000;
const Millis kSettle{10'000};
const char* const kDay = "2024/02/29/";

WallTime at_ms(int64_t ms) { return WallTime(Millis(ms)); }

// Deterministic bytes that differ per seed (so two files never hash alike).
std::string bytes(size_t n, uint32_t seed = 1) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

// Forwards to the real file; runs *hook once before the first write.
class HookFile : public File {
 public:
  HookFile(std::unique_ptr<File> f, std::function<void()>* hook) : f_(std::move(f)), hook_(hook) {}
  int fd() const override { return f_->fd(); }
  Result<size_t> read(void* buf, size_t n) override { return f_->read(buf, n); }
  Status write_all(const void* buf, size_t n) override {
    if (*hook_) std::exchange(*hook_, nullptr)();
    return f_->write_all(buf, n);
  }
  Status sync() override { return f_->sync(); }
  Result<FileStat> stat() override { return f_->stat(); }
  Status set_mtime_ns(int64_t ns) override { return f_->set_mtime_ns(ns); }
  void drop_cache() override { f_->drop_cache(); }
  void will_need() override { f_->will_need(); }
  void write_behind() override { f_->write_behind(); }
  Status take_read_lease() override { return f_->take_read_lease(); }
  bool lease_intact() override { return f_->lease_intact(); }
  void release_lease() override { f_->release_lease(); }

 private:
  std::unique_ptr<File> f_;
  std::function<void()>* hook_;
};

// The filesystem seam for these tests: FaultEnv over the real Env, plus
// one-shot hooks that let the test act as another process at a chosen step
// of the protocol. Single-threaded use only.
class TestEnv : public FaultEnv {
 public:
  TestEnv() : FaultEnv(Env::posix()) {}

  std::function<void()> after_lstat;     // right after the spool lstat
  std::function<void()> on_first_write;  // before the first write into a created file
  std::function<void()> on_sync_dir;     // at the first folder fsync after a rename
  int sync_dir_errno = 0;                // folder fsync only (file fsync unaffected)

  Result<FileStat> lstat(const std::string& path) override {
    auto r = FaultEnv::lstat(path);
    if (after_lstat) std::exchange(after_lstat, nullptr)();
    return r;
  }
  Result<std::unique_ptr<File>> create_excl(const std::string& path, mode_t mode) override {
    auto r = FaultEnv::create_excl(path, mode);
    if (!r) return r.status();
    return std::unique_ptr<File>(new HookFile(std::move(r).value(), &on_first_write));
  }
  Status sync_dir(const std::string& path) override {
    if (renames.load() > 0 && on_sync_dir) std::exchange(on_sync_dir, nullptr)();
    if (sync_dir_errno) return Status::from_errno(sync_dir_errno, "fsync folder (test) " + path);
    return FaultEnv::sync_dir(path);
  }
};

class ArchiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-archive-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    base_ = tmpl;
    spool_ = base_ + "/spool";
    archive_ = base_ + "/archive";
    fs::create_directories(spool_);
    fs::create_directories(archive_);
    auto st = StateStore::open(base_ + "/state.db");
    ASSERT_TRUE(st) << st.status().to_string();
    store_ = std::move(st).value();
    env_.set_now(at_ms(kNowMs));
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  Archiver archiver(Layout layout = Layout::kDate, OpenCheck check = OpenCheck::kAuto) {
    return Archiver(&env_, store_.get(), ArchiverOptions{spool_, archive_, layout, check});
  }

  static void write_file(const std::string& path, const std::string& content) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    ASSERT_TRUE(f.good()) << path;
  }
  static void set_mtime_ns(const std::string& path, int64_t ns) {
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = ns / 1'000'000'000;
    ts[0].tv_nsec = ts[1].tv_nsec = ns % 1'000'000'000;
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0)
        << path << ": " << std::strerror(errno);
  }
  static int64_t mtime_ns(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return -1;
    return int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  }
  static std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  static void append(const std::string& path, const std::string& more) {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::write(fd, more.data(), more.size()), ssize_t(more.size()));
    ::close(fd);
  }

  // A recording in the spool with the given content, recorded at rec_ns.
  void spool(const std::string& rel, const std::string& content, int64_t rec_ns = kRecNs) {
    write_file(spool_ + "/" + rel, content);
    set_mtime_ns(spool_ + "/" + rel, rec_ns);
  }
  std::string spool_path(const std::string& rel) const { return spool_ + "/" + rel; }
  std::string archive_path(const std::string& rel) const { return archive_ + "/" + rel; }

  // Every non-folder entry under the archive (temps included), relative, sorted.
  std::vector<std::string> archive_files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(archive_)) {
      if (!e.is_directory()) out.push_back(fs::relative(e.path(), archive_).string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  bool has_temp() const {
    for (const auto& f : archive_files())
      if (is_temp_name(fs::path(f).filename().string())) return true;
    return false;
  }
  std::optional<RecordingRow> row(const std::string& rel) {
    auto r = store_->recordings().get(rel);
    EXPECT_TRUE(r) << r.status().to_string();
    return r ? *r : std::nullopt;
  }
  uint64_t rows() {
    auto s = store_->recordings().stats();
    EXPECT_TRUE(s) << s.status().to_string();
    return s ? s->files : 0;
  }

  // The spool copy is as written and nothing was published or left behind.
  void expect_untouched(const std::string& rel, const std::string& content) {
    EXPECT_EQ(slurp(spool_path(rel)), content) << "spool copy of " << rel << " changed";
    EXPECT_EQ(mtime_ns(spool_path(rel)), kRecNs);
    EXPECT_EQ(archive_files(), std::vector<std::string>{}) << "archive should be empty";
    EXPECT_EQ(rows(), 0u);
  }
  // A correct archive copy at archive_rel of content recorded at kRecNs.
  void expect_archive_copy(const std::string& archive_rel, const std::string& content) {
    EXPECT_EQ(slurp(archive_path(archive_rel)), content) << archive_rel;
    EXPECT_EQ(mtime_ns(archive_path(archive_rel)), kRecNs) << archive_rel;
  }

  TestEnv env_;
  std::string base_, spool_, archive_;
  std::unique_ptr<StateStore> store_;
};

std::string describe(const ArchiveOutcome& o) {
  return std::string(outcome_name(o.kind)) + " [" + o.status.to_string() + "]";
}

// --- happy path ---------------------------------------------------------------

TEST_F(ArchiverTest, ArchivesUnderTheDateFolderAtEveryBufferBoundary) {
  // 1 MiB is the copy buffer: empty, tiny, one buffer exactly, one byte over, several.
  const std::vector<size_t> sizes = {0, 1, 4095, 1 << 20, (1 << 20) + 1, (5 << 20) / 2};
  for (size_t i = 0; i < sizes.size(); ++i) {
    SCOPED_TRACE("size " + std::to_string(sizes[i]));
    const std::string name = "call-" + std::to_string(i) + ".wav";
    const std::string content = bytes(sizes[i], uint32_t(i + 7));
    spool("tenant/" + name, content);

    ArchiveOutcome out = archiver().archive_one("tenant/" + name, kSettle);
    ASSERT_EQ(out.kind, K::kArchived) << describe(out);
    EXPECT_TRUE(out.status) << out.status.to_string();

    const std::string rel = kDay + name;
    expect_archive_copy(rel, content);
    EXPECT_FALSE(fs::exists(spool_path("tenant/" + name))) << "spool copy not removed";
    EXPECT_EQ(out.row.rel, rel);

    auto r = row(rel);
    ASSERT_TRUE(r.has_value()) << "no store row for " << rel;
    EXPECT_EQ(r->name, "call-" + std::to_string(i));
    EXPECT_EQ(r->size, sizes[i]);
    EXPECT_EQ(r->hash, hash_bytes(content.data(), content.size()));
    EXPECT_EQ(r->rec_time_ms, kRecMs);
    EXPECT_EQ(r->archived_at_ms, kNowMs);
    EXPECT_EQ(r->origin, "local");
    EXPECT_EQ(out.row.hash, r->hash);
  }
  EXPECT_FALSE(has_temp());
  EXPECT_EQ(archive_files().size(), sizes.size());
}

TEST_F(ArchiverTest, DateFolderIsTheUtcDayOfTheMtime) {
  struct Case {
    const char* name;
    int64_t rec_ns;
    const char* want;
  };
  const std::vector<Case> cases = {
      {"a.wav", (1709164800'000 - 1) * kNsPerMs, "2024/02/28/a.wav"},  // 1 ms before midnight
      {"b.wav", 1709164800'000 * kNsPerMs, "2024/02/29/b.wav"},        // leap day midnight
      {"c.wav", 1709251200'000 * kNsPerMs, "2024/03/01/c.wav"},        // day after
  };
  for (const auto& c : cases) {
    spool(c.name, "x", c.rec_ns);
    ArchiveOutcome out = archiver().archive_one(c.name, kSettle);
    ASSERT_EQ(out.kind, K::kArchived) << c.name << ": " << describe(out);
    EXPECT_EQ(out.row.rel, c.want);
    EXPECT_TRUE(fs::exists(archive_path(c.want))) << c.want;
    EXPECT_EQ(mtime_ns(archive_path(c.want)), c.rec_ns);
  }
}

TEST_F(ArchiverTest, FlatLayoutKeepsSubfolders) {
  const std::vector<std::string> rels = {"top.wav", "a/b.wav", "a/b/c/d.wav", "x.y/z"};
  for (size_t i = 0; i < rels.size(); ++i) {
    const std::string content = bytes(1000 + i, uint32_t(i));
    spool(rels[i], content);
    ArchiveOutcome out = archiver(Layout::kFlat).archive_one(rels[i], kSettle);
    ASSERT_EQ(out.kind, K::kArchived) << rels[i] << ": " << describe(out);
    EXPECT_EQ(out.row.rel, rels[i]);
    expect_archive_copy(rels[i], content);
    EXPECT_FALSE(fs::exists(spool_path(rels[i])));
    EXPECT_TRUE(row(rels[i]).has_value()) << rels[i];
  }
  std::vector<std::string> want = rels;
  std::sort(want.begin(), want.end());
  EXPECT_EQ(archive_files(), want);
}

TEST_F(ArchiverTest, ShortWritesStillGiveACorrectCopy) {
  env_.short_writes = true;
  const std::string content = bytes(3001, 3);
  spool("short.wav", content);
  ArchiveOutcome out = archiver().archive_one("short.wav", kSettle);
  ASSERT_EQ(out.kind, K::kArchived) << describe(out);
  expect_archive_copy(std::string(kDay) + "short.wav", content);
  EXPECT_EQ(archive_files(), std::vector<std::string>{std::string(kDay) + "short.wav"});
  EXPECT_GT(env_.writes.load(), 0);
}

// --- not settled, vanished, not a regular file --------------------------------

TEST_F(ArchiverTest, NotSettledUntilMtimePlusSettle) {
  struct Case {
    const char* what;
    int64_t age_ms;  // now - mtime; negative = mtime in the future
    Millis settle;
    bool settled;
  };
  const std::vector<Case> cases = {
      {"written 1 s ago", 1000, kSettle, false},
      {"written just now", 0, kSettle, false},
      {"mtime in the future", -5000, kSettle, false},
      {"1 ms short", kSettle.count() - 1, kSettle, false},
      {"exactly settle ago", kSettle.count(), kSettle, true},
      {"settle 0, written now", 0, Millis(0), true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.what);
    const std::string name = "s" + std::to_string(i) + ".wav";
    const int64_t mtime_ms = kNowMs - c.age_ms;
    spool(name, "data", mtime_ms * kNsPerMs);
    const auto files_before = archive_files();
    ArchiveOutcome out = archiver().archive_one(name, c.settle);
    if (c.settled) {
      EXPECT_EQ(out.kind, K::kArchived) << describe(out);
      continue;
    }
    EXPECT_EQ(out.kind, K::kNotSettled) << describe(out);
    EXPECT_EQ(out.retry_at_ms, mtime_ms + c.settle.count());
    EXPECT_EQ(slurp(spool_path(name)), "data");
    EXPECT_EQ(archive_files(), files_before) << "nothing may be written while not settled";
  }
  EXPECT_FALSE(has_temp());
}

TEST_F(ArchiverTest, VanishedSpoolFile) {
  for (const char* rel : {"never.wav", "no/such/folder.wav"}) {
    ArchiveOutcome out = archiver().archive_one(rel, kSettle);
    EXPECT_EQ(out.kind, K::kVanished) << rel << ": " << describe(out);
    EXPECT_EQ(out.status.code(), Status::Code::kNotFound) << rel;
  }
  EXPECT_EQ(archive_files(), std::vector<std::string>{});
  EXPECT_EQ(rows(), 0u);
}

TEST_F(ArchiverTest, VanishedBetweenLstatAndOpen) {
  spool("gone.wav", "data");
  env_.after_lstat = [&] { ASSERT_EQ(::unlink(spool_path("gone.wav").c_str()), 0); };
  ArchiveOutcome out = archiver().archive_one("gone.wav", kSettle);
  EXPECT_EQ(out.kind, K::kVanished) << describe(out);
  EXPECT_EQ(archive_files(), std::vector<std::string>{});
}

TEST_F(ArchiverTest, NonRegularFilesAreSkippedAndNeverFollowed) {
  const std::string outside = base_ + "/outside.wav";
  write_file(outside, "secret");
  set_mtime_ns(outside, kRecNs);
  fs::create_directories(base_ + "/outside-dir");
  write_file(base_ + "/outside-dir/in.wav", "in");

  ASSERT_EQ(::symlink(outside.c_str(), spool_path("link.wav").c_str()), 0);
  ASSERT_EQ(::symlink((base_ + "/outside-dir").c_str(), spool_path("dirlink.wav").c_str()), 0);
  ASSERT_EQ(::symlink("/nonexistent/x.wav", spool_path("dangling.wav").c_str()), 0);
  ASSERT_EQ(::mkfifo(spool_path("fifo.wav").c_str(), 0600), 0);
  fs::create_directories(spool_path("folder.wav"));
  for (const char* rel : {"link.wav", "dirlink.wav", "dangling.wav", "fifo.wav", "folder.wav"}) {
    set_mtime_ns(spool_path(rel), kRecNs);
    ArchiveOutcome out = archiver().archive_one(rel, kSettle);
    EXPECT_EQ(out.kind, K::kSkipped) << rel << ": " << describe(out);
    EXPECT_TRUE(fs::symlink_status(spool_path(rel)).type() != fs::file_type::not_found)
        << rel << " was removed";
  }
  EXPECT_EQ(slurp(outside), "secret");
  EXPECT_TRUE(fs::exists(base_ + "/outside-dir/in.wav"));
  EXPECT_EQ(archive_files(), std::vector<std::string>{});
  EXPECT_EQ(rows(), 0u);
}

TEST_F(ArchiverTest, SymlinkSwappedInAfterLstatIsNotFollowed) {
  const std::string outside = base_ + "/outside.wav";
  write_file(outside, "secret");
  spool("swap.wav", "data");
  env_.after_lstat = [&] {
    ASSERT_EQ(::unlink(spool_path("swap.wav").c_str()), 0);
    ASSERT_EQ(::symlink(outside.c_str(), spool_path("swap.wav").c_str()), 0);
  };
  ArchiveOutcome out = archiver().archive_one("swap.wav", kSettle);
  EXPECT_NE(out.kind, K::kArchived) << describe(out);
  EXPECT_NE(out.kind, K::kAlreadyArchived) << describe(out);
  EXPECT_TRUE(fs::is_symlink(spool_path("swap.wav")));
  EXPECT_EQ(slurp(outside), "secret");
  EXPECT_EQ(archive_files(), std::vector<std::string>{});
  EXPECT_EQ(rows(), 0u);
}

TEST_F(ArchiverTest, FileReplacedAfterLstatIsChanged) {
  spool("r.wav", "first");
  write_file(base_ + "/other.wav", "second, longer");
  env_.after_lstat = [&] {
    ASSERT_EQ(::rename((base_ + "/other.wav").c_str(), spool_path("r.wav").c_str()), 0);
  };
  ArchiveOutcome out = archiver().archive_one("r.wav", kSettle);
  EXPECT_EQ(out.kind, K::kChanged) << describe(out);
  EXPECT_EQ(slurp(spool_path("r.wav")), "second, longer");
  EXPECT_EQ(archive_files(), std::vector<std::string>{});
}

// Regression: a FIFO put in place of a recording between the lstat and the
// open must not block the worker (open_read uses O_NONBLOCK). This test
// unblocks it after a second and fails if it had to.
TEST_F(ArchiverTest, FifoSwappedInAfterLstatDoesNotBlock) {
  spool("p.wav", "data");
  std::atomic<bool> done{false}, had_to_unblock{false};
  std::thread rescuer;
  env_.after_lstat = [&] {
    ASSERT_EQ(::unlink(spool_path("p.wav").c_str()), 0);
    ASSERT_EQ(::mkfifo(spool_path("p.wav").c_str(), 0600), 0);
    rescuer = std::thread([&] {
      for (int i = 0; i < 100 && !done.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (done.load()) return;
      // A reader blocked in open() lets a non-blocking writer open succeed.
      for (int i = 0; i < 200 && !done.load(); ++i) {
        int fd = ::open(spool_path("p.wav").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
          had_to_unblock = true;
          ::close(fd);
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  };
  ArchiveOutcome out = archiver().archive_one("p.wav", kSettle);
  done = true;
  if (rescuer.joinable()) rescuer.join();
  EXPECT_FALSE(had_to_unblock) << "archive_one blocked in open() on a FIFO";
  EXPECT_NE(out.kind, K::kArchived) << describe(out);
  EXPECT_EQ(archive_files(), std::vector<std::string>{});
}

// Regression: unlink() goes by path, so the last look must check the path
// too: a new recording renamed over the spool path after the open (a
// re-recording, or any tool that writes temp + rename) must not be deleted
// without ever being archived.
TEST_F(ArchiverTest, NewFileRenamedOverTheSpoolPathIsNotDeleted) {
  struct Case {
    const char* what;
    std::function<void()> TestEnv::*hook;
  };
  const std::vector<Case> cases = {
      {"during the copy", &TestEnv::on_first_write},
      {"after publish, before the unlink", &TestEnv::on_sync_dir},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.what);
    const std::string name = "re" + std::to_string(i) + ".wav";
    const std::string first = bytes(2000, 40), second = bytes(2500, 41);
    spool(name, first);
    env_.*c.hook = [&] {
      write_file(spool_path(".incoming"), second);
      ASSERT_EQ(::rename(spool_path(".incoming").c_str(), spool_path(name).c_str()), 0);
    };
    ArchiveOutcome out = archiver(Layout::kDate, OpenCheck::kNone).archive_one(name, kSettle);
    EXPECT_FALSE(has_temp());
    // Whatever the outcome, the second recording is in the spool or the archive.
    const bool in_spool = slurp(spool_path(name)) == second;
    bool in_archive = false;
    for (const auto& f : archive_files()) in_archive |= slurp(archive_path(f)) == second;
    EXPECT_TRUE(in_spool || in_archive)
        << "the recording renamed over " << name << " was lost; outcome " << describe(out);
  }
}

// Regression: the temp name adds 30 bytes to the final name; names up to
// NAME_MAX (255) must still archive (the temp's name part is capped).
TEST_F(ArchiverTest, LongestLegalNameIsArchived) {
  for (size_t len : {size_t(200), size_t(255)}) {
    const std::string name = std::string(len - 4, 'n') + ".wav";
    SCOPED_TRACE("name length " + std::to_string(name.size()));
    spool(name, "long");
    ArchiveOutcome out = archiver().archive_one(name, kSettle);
    EXPECT_EQ(out.kind, K::kArchived) << describe(out);
    EXPECT_FALSE(has_temp());
  }
}

// --- writers ------------------------------------------------------------------

TEST_F(ArchiverTest, LeaseBusySwitchGivesWriterBusy) {
  const std::string content = bytes(5000);
  spool("busy.wav", content);
  env_.lease_busy = true;
  for (OpenCheck check : {OpenCheck::kAuto, OpenCheck::kLease}) {
    ArchiveOutcome out = archiver(Layout::kDate, check).archive_one("busy.wav", kSettle);
    EXPECT_EQ(out.kind, K::kWriterBusy) << open_check_name(check) << ": " << describe(out);
    expect_untouched("busy.wav", content);
  }
  env_.lease_busy = false;
  ArchiveOutcome out = archiver().archive_one("busy.wav", kSettle);
  ASSERT_EQ(out.kind, K::kArchived) << describe(out);
  expect_archive_copy(std::string(kDay) + "busy.wav", content);
}

TEST_F(ArchiverTest, RealWriterGivesWriterBusy) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (leases and /proc of any writer)";
  const std::string content = bytes(5000);
  spool("open.wav", content);
  int wfd = ::open(spool_path("open.wav").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(wfd, 0);
  for (OpenCheck check : {OpenCheck::kLease, OpenCheck::kAuto, OpenCheck::kProc}) {
    ArchiveOutcome out = archiver(Layout::kDate, check).archive_one("open.wav", kSettle);
    EXPECT_EQ(out.kind, K::kWriterBusy) << open_check_name(check) << ": " << describe(out);
    expect_untouched("open.wav", content);
  }
  ::close(wfd);
  ArchiveOutcome out = archiver(Layout::kDate, OpenCheck::kLease).archive_one("open.wav", kSettle);
  ASSERT_EQ(out.kind, K::kArchived) << describe(out);
  expect_archive_copy(std::string(kDay) + "open.wav", content);
}

TEST_F(ArchiverTest, WriterAppearingDuringTheCopyDiscardsTheTemp) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs a lease on the spool file";
  // Small: the break is seen after the copy; large: between two chunks.
  for (size_t size : {size_t(100), size_t(3) << 20}) {
    SCOPED_TRACE("size " + std::to_string(size));
    const std::string content = bytes(size, 9);
    spool("w.wav", content);
    env_.on_first_write = [&] { env_.lease_busy = true; };
    ArchiveOutcome out = archiver(Layout::kDate, OpenCheck::kLease).archive_one("w.wav", kSettle);
    env_.lease_busy = false;
    EXPECT_EQ(out.kind, K::kWriterBusy) << describe(out);
    expect_untouched("w.wav", content);
  }
}

TEST_F(ArchiverTest, FileChangedDuringTheCopyIsNotArchived) {
  struct Case {
    const char* what;
    std::function<void(const std::string&)> change;
  };
  const std::vector<Case> cases = {
      {"appended", [](const std::string& p) { append(p, "more"); }},
      {"mtime touched, same size", [](const std::string& p) { set_mtime_ns(p, kRecNs + 1); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string content = bytes(2000, 4);
    spool("c.wav", content);
    // No lease: the test's own writer must not wait for a lease break.
    env_.on_first_write = [&] { c.change(spool_path("c.wav")); };
    ArchiveOutcome out = archiver(Layout::kDate, OpenCheck::kNone).archive_one("c.wav", kSettle);
    EXPECT_EQ(out.kind, K::kChanged) << describe(out);
    EXPECT_TRUE(fs::exists(spool_path("c.wav")));
    EXPECT_EQ(archive_files(), std::vector<std::string>{});
    EXPECT_EQ(rows(), 0u);
  }
}

TEST_F(ArchiverTest, WriterAfterPublishKeepsTheSpoolCopyForANewVersion) {
  const std::string first = bytes(1500, 5);
  spool("late.wav", first);
  env_.on_sync_dir = [&] {
    append(spool_path("late.wav"), "tail");
    set_mtime_ns(spool_path("late.wav"), kRecNs + 500'000'000);  // same UTC day
  };
  ArchiveOutcome out = archiver(Layout::kDate, OpenCheck::kNone).archive_one("late.wav", kSettle);
  EXPECT_EQ(out.kind, K::kChanged) << describe(out);
  const std::string rel = std::string(kDay) + "late.wav";
  expect_archive_copy(rel, first);
  EXPECT_EQ(slurp(spool_path("late.wav")), first + "tail");
  EXPECT_FALSE(has_temp());

  ArchiveOutcome again = archiver().archive_one("late.wav", kSettle);
  ASSERT_EQ(again.kind, K::kArchived) << describe(again);
  EXPECT_EQ(again.row.rel, std::string(kDay) + "late.v2.wav");
  EXPECT_EQ(slurp(archive_path(again.row.rel)), first + "tail");
  EXPECT_EQ(slurp(archive_path(rel)), first);
  EXPECT_FALSE(fs::exists(spool_path("late.wav")));
}

// --- faults -------------------------------------------------------------------

struct FaultCase {
  const char* what;
  std::atomic<int> FaultEnv::*knob;
  int err;
  Status::Code code;
};

class ArchiverFaultTest : public ArchiverTest, public ::testing::WithParamInterface<FaultCase> {};

TEST_P(ArchiverFaultTest, LeavesTheSpoolCopyAndNoFileThenRetrySucceeds) {
  const FaultCase& c = GetParam();
  const std::string content = bytes((3 << 20) / 2, 11);  // two copy buffers
  spool("sub/f.wav", content);
  env_.*c.knob = c.err;
  ArchiveOutcome out = archiver().archive_one("sub/f.wav", kSettle);
  EXPECT_EQ(out.kind, K::kFailed) << describe(out);
  EXPECT_EQ(out.status.code(), c.code) << out.status.to_string();
  EXPECT_EQ(out.status.err(), c.err) << out.status.to_string();
  expect_untouched("sub/f.wav", content);

  env_.*c.knob = 0;
  ArchiveOutcome again = archiver().archive_one("sub/f.wav", kSettle);
  ASSERT_EQ(again.kind, K::kArchived) << describe(again);
  const std::string rel = std::string(kDay) + "f.wav";
  expect_archive_copy(rel, content);
  EXPECT_EQ(archive_files(), std::vector<std::string>{rel});
  EXPECT_FALSE(fs::exists(spool_path("sub/f.wav")));
}

INSTANTIATE_TEST_SUITE_P(
    Faults, ArchiverFaultTest,
    ::testing::Values(
        FaultCase{"write_ENOSPC", &FaultEnv::write_errno, ENOSPC, Status::Code::kNoSpace},
        FaultCase{"write_EDQUOT", &FaultEnv::write_errno, EDQUOT, Status::Code::kNoSpace},
        FaultCase{"write_EIO", &FaultEnv::write_errno, EIO, Status::Code::kIo},
        FaultCase{"fsync_EIO", &FaultEnv::sync_errno, EIO, Status::Code::kIo},
        FaultCase{"rename_EXDEV", &FaultEnv::rename_errno, EXDEV, Status::Code::kIo},
        FaultCase{"rename_EIO", &FaultEnv::rename_errno, EIO, Status::Code::kIo},
        FaultCase{"create_EROFS", &FaultEnv::create_errno, EROFS, Status::Code::kIo}),
    [](const ::testing::TestParamInfo<FaultCase>& i) { return std::string(i.param.what); });

TEST_F(ArchiverTest, PagesAreLeftForPeersOnlyWithinTheBudgetAndOnlyWhenQueued) {
  PageBudget budget(10'000);
  ArchiverOptions o{spool_, archive_, Layout::kFlat, OpenCheck::kAuto};
  store_->queue().set_peers({"fs2", "fs3"});
  o.page_budget = &budget;
  Archiver a(&env_, store_.get(), o);
  // 3000 bytes for two peers: a share of 6000.
  spool("a.wav", bytes(3000, 1));
  ASSERT_EQ(a.archive_one("a.wav", kSettle).kind, K::kArchived);
  EXPECT_EQ(budget.used(), 6000u);
  // The next one does not fit (12000 > 10000): archived all the same, no share.
  spool("b.wav", bytes(3000, 2));
  ASSERT_EQ(a.archive_one("b.wav", kSettle).kind, K::kArchived);
  EXPECT_EQ(budget.used(), 6000u);
  // A sender giving its shares back makes room again.
  budget.give_back(3000);
  budget.give_back(3000);
  EXPECT_EQ(budget.used(), 0u);
  // A recording that fails after its share was taken gives it back.
  spool("c.wav", bytes(3000, 3));
  env_.rename_errno = EIO;
  EXPECT_EQ(a.archive_one("c.wav", kSettle).kind, K::kFailed);
  EXPECT_EQ(budget.used(), 0u);
  env_.rename_errno = 0;
  ASSERT_EQ(a.archive_one("c.wav", kSettle).kind, K::kArchived);
  EXPECT_EQ(budget.used(), 6000u);
  // Without peers nothing is taken.
  store_->queue().set_peers({});
  Archiver solo(&env_, store_.get(),
                ArchiverOptions{spool_, archive_, Layout::kFlat, OpenCheck::kAuto, &budget});
  spool("d.wav", bytes(100, 4));
  ASSERT_EQ(solo.archive_one("d.wav", kSettle).kind, K::kArchived);
  EXPECT_EQ(budget.used(), 6000u);
}

TEST(PageBudget, GrantsWithinTheLimitAndNeverGoesBelowZero) {
  PageBudget b(100);
  EXPECT_TRUE(b.take(60));
  EXPECT_FALSE(b.take(41));
  EXPECT_TRUE(b.take(40));
  EXPECT_FALSE(b.take(1));
  EXPECT_EQ(b.used(), 100u);
  b.give_back(30);
  EXPECT_EQ(b.used(), 70u);
  b.give_back(1000);  // more than was taken (a restart, a share never granted)
  EXPECT_EQ(b.used(), 0u);
  EXPECT_FALSE(b.take(101));
  EXPECT_FALSE(b.take(UINT64_MAX));
  EXPECT_EQ(b.used(), 0u);
}

TEST_F(ArchiverTest, FolderFsyncFailureAfterPublishKeepsTheSpoolCopy) {
  const std::string content = bytes(4000, 12);
  spool("d.wav", content);
  env_.sync_dir_errno = EIO;
  ArchiveOutcome out = archiver().archive_one("d.wav", kSettle);
  EXPECT_EQ(out.kind, K::kFailed) << describe(out);
  EXPECT_EQ(out.status.err(), EIO);
  // Published (the rename happened) but not yet durable: the spool copy stays.
  EXPECT_EQ(slurp(spool_path("d.wav")), content);
  const std::string rel = std::string(kDay) + "d.wav";
  EXPECT_EQ(archive_files(), std::vector<std::string>{rel});

  env_.sync_dir_errno = 0;
  ArchiveOutcome again = archiver().archive_one("d.wav", kSettle);
  EXPECT_EQ(again.kind, K::kAlreadyArchived) << describe(again);
  EXPECT_EQ(archive_files(), std::vector<std::string>{rel});
  EXPECT_FALSE(fs::exists(spool_path("d.wav")));
  EXPECT_TRUE(row(rel).has_value());
}

TEST_F(ArchiverTest, SpoolUnlinkFailureThenRetryIsAlreadyArchived) {
  const std::string content = bytes(70000, 13);
  spool("u.wav", content);
  env_.unlink_errno = EIO;
  ArchiveOutcome out = archiver().archive_one("u.wav", kSettle);
  EXPECT_EQ(out.kind, K::kFailed) << describe(out);
  EXPECT_EQ(out.status.err(), EIO) << out.status.to_string();
  const std::string rel = std::string(kDay) + "u.wav";
  expect_archive_copy(rel, content);
  EXPECT_EQ(archive_files(), std::vector<std::string>{rel}) << "no temp, no other name";
  EXPECT_EQ(slurp(spool_path("u.wav")), content);
  EXPECT_TRUE(row(rel).has_value()) << "the copy is recorded before the spool unlink";

  env_.unlink_errno = 0;
  ArchiveOutcome again = archiver().archive_one("u.wav", kSettle);
  EXPECT_EQ(again.kind, K::kAlreadyArchived) << describe(again);
  EXPECT_EQ(again.row.rel, rel);
  EXPECT_EQ(archive_files(), std::vector<std::string>{rel}) << "no .v2 for an identical file";
  expect_archive_copy(rel, content);
  EXPECT_FALSE(fs::exists(spool_path("u.wav")));
  EXPECT_EQ(rows(), 1u);
}

// --- crash leftovers and name clashes -----------------------------------------

TEST_F(ArchiverTest, IdenticalFileAtTheFinalNameIsAlreadyArchived) {
  const std::string content = bytes(9000, 14);
  spool("same.wav", content);
  const std::string rel = std::string(kDay) + "same.wav";
  write_file(archive_path(rel), content);  // as if a crash came after the rename
  set_mtime_ns(archive_path(rel), kRecNs);
  ArchiveOutcome out = archiver().archive_one("same.wav", kSettle);
  EXPECT_EQ(out.kind, K::kAlreadyArchived) << describe(out);
  EXPECT_EQ(out.row.rel, rel);
  EXPECT_EQ(out.row.hash, hash_bytes(content.data(), content.size()));
  EXPECT_EQ(archive_files(), std::vector<std::string>{rel});
  expect_archive_copy(rel, content);
  EXPECT_FALSE(fs::exists(spool_path("same.wav")));
  EXPECT_TRUE(row(rel).has_value());
}

TEST_F(ArchiverTest, DifferentFilesAtTheNameGiveTheNextFreeVersion) {
  struct Case {
    const char* what;
    std::vector<std::string> taken;  // names in the day folder, each a different file
    const char* want;
  };
  const std::vector<Case> cases = {
      {"name taken", {"n.wav"}, "n.v2.wav"},
      {"name and v2 taken", {"n.wav", "n.v2.wav"}, "n.v3.wav"},
      {"name, v2, v3 taken", {"n.wav", "n.v2.wav", "n.v3.wav"}, "n.v4.wav"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.what);
    fs::remove_all(archive_);
    fs::create_directories(archive_);
    std::vector<std::string> want_files;
    for (size_t j = 0; j < c.taken.size(); ++j) {
      write_file(archive_path(kDay + c.taken[j]), "old " + std::to_string(j));
      set_mtime_ns(archive_path(kDay + c.taken[j]), 42'000'000'000);
      want_files.push_back(kDay + c.taken[j]);
    }
    const std::string content = bytes(3000, uint32_t(20 + i));
    spool("n.wav", content);
    ArchiveOutcome out = archiver().archive_one("n.wav", kSettle);
    ASSERT_EQ(out.kind, K::kArchived) << describe(out);
    EXPECT_EQ(out.row.rel, kDay + std::string(c.want));
    EXPECT_EQ(out.row.name, "n");
    expect_archive_copy(kDay + std::string(c.want), content);
    for (size_t j = 0; j < c.taken.size(); ++j) {
      EXPECT_EQ(slurp(archive_path(kDay + c.taken[j])), "old " + std::to_string(j));
      EXPECT_EQ(mtime_ns(archive_path(kDay + c.taken[j])), 42'000'000'000);
    }
    want_files.push_back(kDay + std::string(c.want));
    std::sort(want_files.begin(), want_files.end());
    EXPECT_EQ(archive_files(), want_files);
    EXPECT_FALSE(fs::exists(spool_path("n.wav")));
    EXPECT_TRUE(row(kDay + std::string(c.want)).has_value());
  }
}

TEST_F(ArchiverTest, IdenticalFileAtAVersionedNameIsAlreadyArchived) {
  // A crash after publishing as .v2 (the name was taken) and before the unlink.
  const std::string content = bytes(3000, 30);
  spool("v.wav", content);
  write_file(archive_path(std::string(kDay) + "v.wav"), "someone else");
  write_file(archive_path(std::string(kDay) + "v.v2.wav"), content);
  ArchiveOutcome out = archiver().archive_one("v.wav", kSettle);
  EXPECT_EQ(out.kind, K::kAlreadyArchived) << describe(out);
  EXPECT_EQ(out.row.rel, std::string(kDay) + "v.v2.wav");
  EXPECT_EQ(archive_files(), (std::vector<std::string>{std::string(kDay) + "v.v2.wav",
                                                       std::string(kDay) + "v.wav"}));
  EXPECT_EQ(slurp(archive_path(std::string(kDay) + "v.wav")), "someone else");
  EXPECT_FALSE(fs::exists(spool_path("v.wav")));
}

TEST_F(ArchiverTest, ALeftoverTempIsNeverTakenForTheFinalName) {
  // A partial temp from an earlier crash is neither reused nor taken for the final name.
  const std::string content = bytes(2000, 31);
  spool("t.wav", content);
  const std::string stale = std::string(kDay) + std::string(kTempPrefix) + "t.wav.0123456789abcdef";
  write_file(archive_path(stale), content.substr(0, 1000));
  ArchiveOutcome out = archiver().archive_one("t.wav", kSettle);
  ASSERT_EQ(out.kind, K::kArchived) << describe(out);
  expect_archive_copy(std::string(kDay) + "t.wav", content);
  // Only the stale temp (the reconcile scan's job) and the final file remain.
  EXPECT_EQ(archive_files(), (std::vector<std::string>{stale, std::string(kDay) + "t.wav"}));
}

}  // namespace
}  // namespace recsync
