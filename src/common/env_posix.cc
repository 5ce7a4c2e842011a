// The real Env over POSIX/Linux calls, and the fault-injecting wrapper.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "recsync/env.h"

namespace recsync {
namespace {

int64_t ts_ns(const struct timespec& t) { return int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec; }

FileStat to_stat(const struct stat& st) {
  FileStat s;
  s.size = static_cast<uint64_t>(st.st_size);
  s.mtime_ns = ts_ns(st.st_mtim);
  s.ctime_ns = ts_ns(st.st_ctim);
  s.ino = st.st_ino;
  s.dev = st.st_dev;
  s.uid = st.st_uid;
  s.is_reg = S_ISREG(st.st_mode);
  s.is_dir = S_ISDIR(st.st_mode);
  s.is_link = S_ISLNK(st.st_mode);
  return s;
}

class PosixFile : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override {
    if (leased_) release_lease();
    ::close(fd_);
  }
  int fd() const override { return fd_; }

  Result<size_t> read(void* buf, size_t n) override {
    for (;;) {
      ssize_t r = ::read(fd_, buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return Status::from_errno(errno, "read " + path_);
    }
  }
  Status write_all(const void* buf, size_t n) override {
    const char* p = static_cast<const char*>(buf);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Status::from_errno(errno, "write " + path_);
      }
      if (w == 0) return Status::io("write " + path_ + ": wrote nothing");
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Status::ok();
  }
  Status sync() override {
    if (::fsync(fd_) != 0) return Status::from_errno(errno, "fsync " + path_);
    return Status::ok();
  }
  Result<FileStat> stat() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return Status::from_errno(errno, "fstat " + path_);
    return to_stat(st);
  }
  Status set_mtime_ns(int64_t ns) override {
    struct timespec t[2];
    t[0].tv_sec = 0;
    t[0].tv_nsec = UTIME_OMIT;
    t[1].tv_sec = ns / 1'000'000'000;
    t[1].tv_nsec = ns % 1'000'000'000;
    if (::futimens(fd_, t) != 0) return Status::from_errno(errno, "futimens " + path_);
    return Status::ok();
  }
  void drop_cache() override { ::posix_fadvise(fd_, 0, 0, POSIX_FADV_DONTNEED); }
  void write_behind() override {
    const off_t end = ::lseek(fd_, 0, SEEK_CUR);
    if (end < 0) return;
    if (wb_started_ > wb_done_) {
      ::sync_file_range(
          fd_, wb_done_, wb_started_ - wb_done_,
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      ::posix_fadvise(fd_, wb_done_, wb_started_ - wb_done_, POSIX_FADV_DONTNEED);
      wb_done_ = wb_started_;
    }
    if (end > wb_started_) {
      ::sync_file_range(fd_, wb_started_, end - wb_started_, SYNC_FILE_RANGE_WRITE);
      wb_started_ = end;
    }
  }
  void will_need() override { ::posix_fadvise(fd_, 0, 0, POSIX_FADV_WILLNEED); }
  Status take_read_lease() override {
    if (::fcntl(fd_, F_SETLEASE, F_RDLCK) != 0) {
      int e = errno;
      return Status::from_errno(e, "lease " + path_);
    }
    leased_ = true;
    return Status::ok();
  }
  bool lease_intact() override {
    // During a lease break F_GETLEASE reports the target type (F_UNLCK).
    return leased_ && ::fcntl(fd_, F_GETLEASE) == F_RDLCK;
  }
  void release_lease() override {
    if (leased_) ::fcntl(fd_, F_SETLEASE, F_UNLCK);
    leased_ = false;
  }

 private:
  int fd_;
  std::string path_;
  bool leased_ = false;
  off_t wb_started_ = 0;  // write_behind(): writeback started up to here
  off_t wb_done_ = 0;     // ... and waited for and dropped up to here
};

class PosixDir : public Dir {
 public:
  PosixDir(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixDir() override { ::close(fd_); }
  const std::string& path() const override { return path_; }
  Result<FileStat> lstat(const std::string& name) override {
    struct stat st;
    if (::fstatat(fd_, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return Status::from_errno(errno, "stat " + path_join(path_, name));
    return to_stat(st);
  }
  Status unlink(const std::string& name) override {
    if (::unlinkat(fd_, name.c_str(), 0) != 0)
      return Status::from_errno(errno, "unlink " + path_join(path_, name));
    return Status::ok();
  }

 private:
  int fd_;
  std::string path_;
};

class PosixEnv : public Env {
 public:
  Result<std::unique_ptr<File>> open_read(const std::string& path) override {
    // O_NONBLOCK: a FIFO swapped in at the path must not block the caller;
    // cleared again below (it means nothing for regular files).
    const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
    int fd = ::open(path.c_str(), flags | O_NOATIME);
    if (fd < 0 && errno == EPERM)  // O_NOATIME needs ownership
      fd = ::open(path.c_str(), flags);
    if (fd < 0) return Status::from_errno(errno, "open " + path);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return std::unique_ptr<File>(new PosixFile(fd, path));
  }
  Result<std::unique_ptr<File>> create_excl(const std::string& path, mode_t mode) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) return Status::from_errno(errno, "create " + path);
    return std::unique_ptr<File>(new PosixFile(fd, path));
  }
  Result<std::unique_ptr<File>> open_append(const std::string& path, mode_t mode) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
      fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                  mode);
      if (fd >= 0) {
        if (Status s = sync_dir(path_dirname(path)); !s) {
          ::close(fd);
          return s;
        }
      } else if (errno == EEXIST) {  // created by someone else meanwhile
        fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
      }
    }
    if (fd < 0) return Status::from_errno(errno, "open for appending " + path);
    return std::unique_ptr<File>(new PosixFile(fd, path));
  }
  Status rename_noreplace(const std::string& from, const std::string& to) override {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0)
      return Status::from_errno(errno, "rename " + from + " -> " + to);
    return Status::ok();
  }
  Status unlink(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::from_errno(errno, "unlink " + path);
    return Status::ok();
  }
  Status rmdir(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0) return Status::from_errno(errno, "rmdir " + path);
    return Status::ok();
  }
  Status mkdirs(const std::string& path, mode_t mode) override {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return Status::ok();
      return Status::io("mkdir " + path + ": exists and is not a folder", ENOTDIR);
    }
    std::string parent = path_dirname(path);
    if (parent != path && parent != "." && parent != "/")
      RECSYNC_RETURN_IF_ERROR(mkdirs(parent, mode));
    if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
      return Status::from_errno(errno, "mkdir " + path);
    return sync_dir(parent);
  }
  Status sync_dir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status::from_errno(errno, "open folder " + path);
    int r = ::fsync(fd);
    int e = errno;
    ::close(fd);
    if (r != 0 && e != EINVAL) return Status::from_errno(e, "fsync folder " + path);
    return Status::ok();
  }
  Result<FileStat> lstat(const std::string& path) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return Status::from_errno(errno, "stat " + path);
    return to_stat(st);
  }
  Result<std::unique_ptr<Dir>> open_dir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return Status::from_errno(errno, "open folder " + path);
    return std::unique_ptr<Dir>(new PosixDir(fd, path));
  }
  Result<std::vector<DirEntry>> list_dir(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (!d) return Status::from_errno(errno, "opendir " + path);
    std::vector<DirEntry> out;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      DirEntry de;
      de.name = e->d_name;
      switch (e->d_type) {
        case DT_REG:
          de.type = DirEntry::Type::kFile;
          break;
        case DT_DIR:
          de.type = DirEntry::Type::kDir;
          break;
        case DT_LNK:
          de.type = DirEntry::Type::kLink;
          break;
        case DT_UNKNOWN:
          de.type = DirEntry::Type::kUnknown;
          break;
        default:
          de.type = DirEntry::Type::kOther;
      }
      out.push_back(std::move(de));
    }
    int e = errno;
    ::closedir(d);
    if (e != 0) return Status::from_errno(e, "readdir " + path);
    return out;
  }
  Result<FsUsage> fs_usage(const std::string& path) override {
    struct statvfs v;
    if (::statvfs(path.c_str(), &v) != 0) return Status::from_errno(errno, "statvfs " + path);
    FsUsage u;
    u.total_bytes = uint64_t(v.f_blocks) * v.f_frsize;
    u.avail_bytes = uint64_t(v.f_bavail) * v.f_frsize;
    uint64_t used = uint64_t(v.f_blocks - v.f_bfree) * v.f_frsize;
    uint64_t denom = used + u.avail_bytes;
    u.used_pct = denom ? 100.0 * double(used) / double(denom) : 0.0;
    return u;
  }
  WallTime now() override { return std::chrono::system_clock::now(); }
};

// File wrapper that consults the FaultEnv switches.
class FaultFile : public File {
 public:
  FaultFile(std::unique_ptr<File> f, FaultEnv* env) : f_(std::move(f)), env_(env) {}
  int fd() const override { return f_->fd(); }
  Result<size_t> read(void* buf, size_t n) override { return f_->read(buf, n); }
  Status write_all(const void* buf, size_t n) override {
    env_->writes++;
    if (int e = env_->write_errno.load()) return Status::from_errno(e, "write (injected)");
    if (env_->short_writes.load()) {
      const char* p = static_cast<const char*>(buf);
      for (size_t i = 0; i < n; ++i) RECSYNC_RETURN_IF_ERROR(f_->write_all(p + i, 1));
      return Status::ok();
    }
    return f_->write_all(buf, n);
  }
  Status sync() override {
    env_->syncs++;
    if (int e = env_->sync_errno.load()) return Status::from_errno(e, "fsync (injected)");
    return f_->sync();
  }
  Result<FileStat> stat() override { return f_->stat(); }
  Status set_mtime_ns(int64_t ns) override { return f_->set_mtime_ns(ns); }
  void drop_cache() override { f_->drop_cache(); }
  void write_behind() override { f_->write_behind(); }
  void will_need() override { f_->will_need(); }
  Status take_read_lease() override {
    if (env_->lease_busy.load()) return Status::busy("lease (injected): file open for writing");
    return f_->take_read_lease();
  }
  bool lease_intact() override { return !env_->lease_busy.load() && f_->lease_intact(); }
  void release_lease() override { f_->release_lease(); }

 private:
  std::unique_ptr<File> f_;
  FaultEnv* env_;
};

}  // namespace

Env* Env::posix() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

Result<std::unique_ptr<File>> FaultEnv::open_read(const std::string& path) {
  auto r = base_->open_read(path);
  if (!r) return r.status();
  return std::unique_ptr<File>(new FaultFile(std::move(r).value(), this));
}
Result<std::unique_ptr<File>> FaultEnv::create_excl(const std::string& path, mode_t mode) {
  if (int e = create_errno.load()) return Status::from_errno(e, "create (injected) " + path);
  auto r = base_->create_excl(path, mode);
  if (!r) return r.status();
  return std::unique_ptr<File>(new FaultFile(std::move(r).value(), this));
}
Result<std::unique_ptr<File>> FaultEnv::open_append(const std::string& path, mode_t mode) {
  if (int e = create_errno.load()) return Status::from_errno(e, "open (injected) " + path);
  auto r = base_->open_append(path, mode);
  if (!r) return r.status();
  return std::unique_ptr<File>(new FaultFile(std::move(r).value(), this));
}
Status FaultEnv::rename_noreplace(const std::string& from, const std::string& to) {
  renames++;
  if (int e = rename_errno.load()) return Status::from_errno(e, "rename (injected) " + from);
  return base_->rename_noreplace(from, to);
}
Status FaultEnv::unlink(const std::string& path) {
  unlinks++;
  if (int e = unlink_errno.load()) return Status::from_errno(e, "unlink (injected) " + path);
  return base_->unlink(path);
}
namespace {
// Goes through the FaultEnv's path-based calls, so its switches, counters
// and any test subclass's overrides see every operation.
class FaultDir : public Dir {
 public:
  FaultDir(FaultEnv* env, std::string path) : env_(env), path_(std::move(path)) {}
  const std::string& path() const override { return path_; }
  Result<FileStat> lstat(const std::string& name) override {
    return env_->lstat(path_join(path_, name));
  }
  Status unlink(const std::string& name) override { return env_->unlink(path_join(path_, name)); }

 private:
  FaultEnv* env_;
  std::string path_;
};
}  // namespace

Result<std::unique_ptr<Dir>> FaultEnv::open_dir(const std::string& path) {
  auto d = base_->open_dir(path);  // the same errors as the real thing
  if (!d) return d.status();
  return std::unique_ptr<Dir>(new FaultDir(this, path));
}
Status FaultEnv::mkdirs(const std::string& path, mode_t mode) {
  if (int e = create_errno.load()) return Status::from_errno(e, "mkdir (injected) " + path);
  return base_->mkdirs(path, mode);
}
Status FaultEnv::sync_dir(const std::string& path) {
  syncs++;
  if (int e = sync_errno.load()) return Status::from_errno(e, "fsync folder (injected) " + path);
  return base_->sync_dir(path);
}
WallTime FaultEnv::now() {
  std::lock_guard<std::mutex> l(mu_);
  return has_now_ ? fixed_now_ : base_->now();
}

std::string path_join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  if (a.back() == '/') return b.front() == '/' ? a + b.substr(1) : a + b;
  return b.front() == '/' ? a + b : a + "/" + b;
}
std::string path_dirname(const std::string& p) {
  auto pos = p.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return p.substr(0, pos);
}
std::string path_basename(const std::string& p) {
  auto pos = p.find_last_of('/');
  return pos == std::string::npos ? p : p.substr(pos + 1);
}

}  // namespace recsync
