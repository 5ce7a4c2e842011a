#pragma once
// The one seam between recsync and the outside world (after leveldb::Env and
// ninja's DiskInterface): every filesystem call, statvfs and the wall clock go
// through Env, so tests can inject faults (ENOSPC, EIO, short writes, fsync
// failure) and a fixed clock. Env::posix() is the real thing.
//
// Thread safety: Env implementations are safe to call from any thread.
// File objects belong to one thread at a time.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "recsync/clock.h"
#include "recsync/status.h"

namespace recsync {

struct FileStat {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t ino = 0;
  uint64_t dev = 0;
  uid_t uid = 0;
  bool is_reg = false;
  bool is_dir = false;
  bool is_link = false;
};

struct DirEntry {
  std::string name;
  enum class Type { kFile, kDir, kLink, kOther, kUnknown } type = Type::kUnknown;
};

struct FsUsage {
  uint64_t total_bytes = 0;
  uint64_t avail_bytes = 0;
  double used_pct = 0;  // 0..100, of the space available to unprivileged users
};

// An open file. Closed by the destructor.
class File {
 public:
  virtual ~File() = default;
  virtual int fd() const = 0;
  // Reads up to n bytes at the current offset; 0 at end of file.
  virtual Result<size_t> read(void* buf, size_t n) = 0;
  // Writes all n bytes or fails (a short write is retried, then an error).
  virtual Status write_all(const void* buf, size_t n) = 0;
  virtual Status sync() = 0;  // fsync
  virtual Result<FileStat> stat() = 0;
  virtual Status set_mtime_ns(int64_t ns) = 0;
  // Drops this file's cached pages (posix_fadvise DONTNEED); best effort.
  virtual void drop_cache() = 0;
  // For a file written front to back that nothing reads again soon (a
  // received recording): starts writeback of what was written since the
  // last call (sync_file_range WRITE); what the call before started is
  // waited for and its pages dropped (POSIX_FADV_DONTNEED). Call it every
  // MiB or so: the file then holds about two calls' worth of dirty or cached
  // pages, its final sync() has little left to write, and the next pages
  // written are warm recycled ones. Best effort (a write error shows at
  // sync()); not a durability step.
  virtual void write_behind() = 0;
  // Starts reading the whole file into the page cache in the background
  // (posix_fadvise WILLNEED), so later reads do not wait for the disk; best
  // effort.
  virtual void will_need() = 0;
  // Takes a read lease (F_SETLEASE F_RDLCK). Fails with kBusy while any
  // process has the file open for writing, kRefused when the caller is not
  // the owner and lacks CAP_LEASE (then another writer check must be used).
  virtual Status take_read_lease() = 0;
  // True while the lease is held and no opener tried to write since
  // take_read_lease() (a pending lease break means a writer is coming).
  virtual bool lease_intact() = 0;
  virtual void release_lease() = 0;
};

// A folder held open for many operations on its entries (what rm and find
// do with openat/unlinkat): the folder's path is walked once, not once per
// entry. name is a single entry, never a path with '/'. Errors name the
// whole path. Belongs to one thread at a time.
class Dir {
 public:
  virtual ~Dir() = default;
  virtual const std::string& path() const = 0;
  virtual Result<FileStat> lstat(const std::string& name) = 0;
  virtual Status unlink(const std::string& name) = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  // The process-wide real Env (never deleted).
  static Env* posix();

  virtual Result<std::unique_ptr<File>> open_read(const std::string& path) = 0;
  // O_CREAT|O_EXCL|O_WRONLY: fails with kExists if the name is taken.
  virtual Result<std::unique_ptr<File>> create_excl(const std::string& path, mode_t mode) = 0;
  // O_WRONLY|O_APPEND|O_CREAT, never through a symlink; a file it creates is
  // made durable (its folder fsynced). For append-only logs (the audit log).
  virtual Result<std::unique_ptr<File>> open_append(const std::string& path, mode_t mode) = 0;
  // renameat2(RENAME_NOREPLACE): never replaces an existing name (kExists).
  virtual Status rename_noreplace(const std::string& from, const std::string& to) = 0;
  virtual Status unlink(const std::string& path) = 0;
  virtual Status rmdir(const std::string& path) = 0;
  // mkdir -p; every folder it creates is made durable (parent fsynced).
  virtual Status mkdirs(const std::string& path, mode_t mode) = 0;
  virtual Status sync_dir(const std::string& path) = 0;
  virtual Result<FileStat> lstat(const std::string& path) = 0;
  // Opens a folder (O_DIRECTORY, not following a symlink at path).
  virtual Result<std::unique_ptr<Dir>> open_dir(const std::string& path) = 0;
  virtual Result<std::vector<DirEntry>> list_dir(const std::string& path) = 0;
  virtual Result<FsUsage> fs_usage(const std::string& path) = 0;
  virtual WallTime now() = 0;
};

// Wraps another Env and injects faults on demand (leveldb's FaultInjection
// and SpecialEnv idea). All switches are atomics and may be flipped from the
// test thread while workers run. Counters record what was attempted.
class FaultEnv : public Env {
 public:
  explicit FaultEnv(Env* base) : base_(base) {}

  std::atomic<int> write_errno{0};        // writes fail with this errno (ENOSPC, EIO)
  std::atomic<bool> short_writes{false};  // each write() writes at most 1 byte per call
  std::atomic<int> sync_errno{0};         // fsync of files and folders fails
  std::atomic<int> rename_errno{0};
  std::atomic<int> unlink_errno{0};
  std::atomic<int> create_errno{0};
  std::atomic<bool> lease_busy{false};  // take_read_lease() says a writer holds it
  std::atomic<int> writes{0}, syncs{0}, renames{0}, unlinks{0};

  // A fixed wall clock for planners and executors; unset = base clock.
  void set_now(WallTime t) {
    std::lock_guard<std::mutex> l(mu_);
    fixed_now_ = t;
    has_now_ = true;
  }

  Result<std::unique_ptr<File>> open_read(const std::string& path) override;
  Result<std::unique_ptr<File>> create_excl(const std::string& path, mode_t mode) override;
  // Subject to create_errno, and its File to write_errno and sync_errno.
  Result<std::unique_ptr<File>> open_append(const std::string& path, mode_t mode) override;
  Status rename_noreplace(const std::string& from, const std::string& to) override;
  Status unlink(const std::string& path) override;
  Status rmdir(const std::string& path) override { return base_->rmdir(path); }
  Status mkdirs(const std::string& path, mode_t mode) override;
  Status sync_dir(const std::string& path) override;
  Result<FileStat> lstat(const std::string& path) override { return base_->lstat(path); }
  // The Dir's calls go through this Env's lstat() and unlink() (by path).
  Result<std::unique_ptr<Dir>> open_dir(const std::string& path) override;
  Result<std::vector<DirEntry>> list_dir(const std::string& path) override {
    return base_->list_dir(path);
  }
  Result<FsUsage> fs_usage(const std::string& path) override { return base_->fs_usage(path); }
  WallTime now() override;

 private:
  Env* base_;
  std::mutex mu_;
  bool has_now_ = false;
  WallTime fixed_now_{};
};

// Joins a and b with one '/', b relative.
std::string path_join(const std::string& a, const std::string& b);
// The folder part of a path ("a/b/c" -> "a/b", "c" -> ".").
std::string path_dirname(const std::string& p);
std::string path_basename(const std::string& p);

}  // namespace recsync
