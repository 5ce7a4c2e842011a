#include "watch/writer_check.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "recsync/log.h"

namespace recsync {
namespace {

bool all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s)
    if (*s < '0' || *s > '9') return false;
  return true;
}

// Reads the octal "flags:" field of /proc/<pid>/fdinfo/<fd>; -1 if unreadable
// (the process or descriptor is gone, or we may not look).
long fdinfo_flags(const char* pid, const char* fd) {
  std::string p = std::string("/proc/") + pid + "/fdinfo/" + fd;
  int f = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (f < 0) return -1;
  char buf[512];
  ssize_t n;
  do {
    n = ::read(f, buf, sizeof(buf) - 1);
  } while (n < 0 && errno == EINTR);
  ::close(f);
  if (n <= 0) return -1;
  buf[n] = '\0';
  const char* k = std::strstr(buf, "flags:");
  if (!k) return -1;
  char* end = nullptr;
  long v = std::strtol(k + 6, &end, 8);
  if (end == k + 6) return -1;
  return v;
}

// Lease refused for lack of rights, or not supported where the file lives.
bool lease_unavailable(const Status& s) {
  return s.code() == Status::Code::kRefused || s.err() == EACCES || s.err() == EPERM ||
         s.err() == EINVAL || s.err() == ENOSYS;
}

bool lease_busy(const Status& s) {
  return s.code() == Status::Code::kBusy || s.err() == EAGAIN || s.err() == EWOULDBLOCK;
}

// Taking a lease makes the kernel send SIGIO to this process when a writer
// later breaks it; SIGIO's default action kills the process. The lease break
// is observed by polling F_GETLEASE (File::lease_intact), so the signal is
// not needed: ignore it unless someone installed a handler.
void ignore_default_sigio() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction cur;
    if (::sigaction(SIGIO, nullptr, &cur) == 0 && cur.sa_handler == SIG_DFL) {
      struct sigaction ign {};
      ign.sa_handler = SIG_IGN;
      sigemptyset(&ign.sa_mask);
      ::sigaction(SIGIO, &ign, nullptr);
    }
  });
}

}  // namespace

Result<OpenCheck> parse_open_check(std::string_view s) {
  if (s == "auto") return OpenCheck::kAuto;
  if (s == "lease") return OpenCheck::kLease;
  if (s == "proc") return OpenCheck::kProc;
  if (s == "none") return OpenCheck::kNone;
  return Status::invalid("open_check: \"" + std::string(s) +
                         "\" is not one of auto, lease, proc, none");
}

const char* open_check_name(OpenCheck c) {
  switch (c) {
    case OpenCheck::kAuto:
      return "auto";
    case OpenCheck::kLease:
      return "lease";
    case OpenCheck::kProc:
      return "proc";
    case OpenCheck::kNone:
      return "none";
  }
  return "?";
}

Status proc_check_no_writer(uint64_t dev, uint64_t ino, const std::string& path) {
  DIR* proc = ::opendir("/proc");
  if (!proc) return Status::from_errno(errno, "open-check " + path + ": opendir /proc");
  Status result;
  while (struct dirent* pe = ::readdir(proc)) {
    if (!all_digits(pe->d_name)) continue;
    std::string fd_dir = std::string("/proc/") + pe->d_name + "/fd";
    int dfd = ::open(fd_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) continue;  // exited, or not ours to inspect
    DIR* fds = ::fdopendir(dfd);
    if (!fds) {
      ::close(dfd);
      continue;
    }
    while (struct dirent* fe = ::readdir(fds)) {
      if (fe->d_name[0] == '.') continue;
      struct stat st;
      // Follows the magic link to the open file itself (works for deleted
      // or renamed files, unlike comparing readlink paths).
      if (::fstatat(dfd, fe->d_name, &st, 0) != 0) continue;
      if (uint64_t(st.st_dev) != dev || uint64_t(st.st_ino) != ino) continue;
      long flags = fdinfo_flags(pe->d_name, fe->d_name);
      if (flags < 0) continue;
      int acc = int(flags) & O_ACCMODE;
      if (acc == O_WRONLY || acc == O_RDWR) {
        result = Status::busy(path + " is open for writing by pid " + pe->d_name + " (fd " +
                              fe->d_name + ")");
        break;
      }
    }
    ::closedir(fds);  // closes dfd
    if (!result.is_ok()) break;
  }
  ::closedir(proc);
  return result;
}

Status check_no_writer(File& f, const std::string& path, OpenCheck mode) {
  switch (mode) {
    case OpenCheck::kNone:
      return Status::ok();
    case OpenCheck::kLease:
    case OpenCheck::kAuto: {
      ignore_default_sigio();
      Status s = f.take_read_lease();
      if (s.is_ok()) return s;
      if (lease_busy(s)) return Status::busy(path + " is open for writing (lease refused)");
      if (mode == OpenCheck::kLease || !lease_unavailable(s))
        return s.with_context("open-check (lease)");
      log::get("watch")->debug("lease unavailable for {} ({}), using /proc", path, s.to_string());
      break;
    }
    case OpenCheck::kProc:
      break;
  }
  auto st = f.stat();
  if (!st) return st.status().with_context("open-check");
  return proc_check_no_writer(st->dev, st->ino, path);
}

}  // namespace recsync
