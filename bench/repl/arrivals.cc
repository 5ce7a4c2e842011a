// bench-repl-arrivals: records when files arrive under a folder tree (the
// replication benchmark's clock on node B).
//
//   bench-repl-arrivals ROOT OUT [MAX_SECONDS]
//
// Watches ROOT and every subfolder (new ones are watched as they appear and
// scanned at once, so a file renamed into a folder before its watch existed is
// still seen, stamped with the scan time). For every IN_MOVED_TO and
// IN_CLOSE_WRITE of a non-hidden name it appends one line to OUT:
//
//   <unix time, ms, 3 decimals>\t<moved|close|scan>\t<path relative to ROOT>\t<size>\t<riff>
//
// The time is CLOCK_REALTIME read right after the event was read (the same
// clock as recsync-loadgen's closed_at_ms). size is st_size at that moment
// and riff the WAV RIFF size field (bytes 4..7; 0 = record_session's
// placeholder header, so a copy taken before the call hung up), both -1 when
// the file is already gone. Hidden names are skipped: rsync's temp files
// (.name.XXXXXX) and recsync's (.recsync-part.*) are not arrivals.
// IN_Q_OVERFLOW writes a line "<t>\toverflow\t-\t-1\t-1" (events lost).
// "ready" goes to stdout once the initial watches are in place. Runs until
// SIGTERM/SIGINT or MAX_SECONDS (default 3600). Exit 0, or 1 on a setup error.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <unordered_map>

namespace {

volatile std::sig_atomic_t g_stop = 0;

double now_ms() {
  timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double mono_s() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

class Recorder {
 public:
  Recorder(std::string root, std::FILE* out) : root_(std::move(root)), out_(out) {}

  bool start() {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) {
      std::fprintf(stderr, "arrivals: inotify_init1: %s\n", std::strerror(errno));
      return false;
    }
    return add_tree("", /*scan=*/false);
  }

  // Reads and records every queued event; returns false on a read error.
  bool drain() {
    alignas(inotify_event) char buf[64 * 1024];
    for (;;) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        std::fprintf(stderr, "arrivals: read: %s\n", std::strerror(errno));
        return false;
      }
      double t = now_ms();
      for (char* p = buf; p < buf + n;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + ev->len;
        handle(*ev, t);
      }
    }
    std::fflush(out_);
    return true;
  }

  int fd() const { return fd_; }

 private:
  static constexpr uint32_t kMask = IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE;

  void handle(const inotify_event& ev, double t) {
    if (ev.mask & IN_Q_OVERFLOW) {
      std::fprintf(out_, "%.3f\toverflow\t-\t-1\t-1\n", t);
      return;
    }
    auto it = dirs_.find(ev.wd);
    if (it == dirs_.end() || ev.len == 0) return;
    const char* name = ev.name;
    if (name[0] == '.') return;
    std::string rel = it->second.empty() ? name : it->second + "/" + name;
    if (ev.mask & IN_ISDIR) {
      if (ev.mask & (IN_CREATE | IN_MOVED_TO)) add_tree(rel, /*scan=*/true);
      return;
    }
    if (ev.mask & IN_MOVED_TO)
      emit(t, "moved", rel);
    else if (ev.mask & IN_CLOSE_WRITE)
      emit(t, "close", rel);
  }

  void emit(double t, const char* kind, const std::string& rel) {
    std::string path = root_ + "/" + rel;
    long long size = -1;
    long long riff = -1;
    int f = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (f >= 0) {
      struct stat st;
      if (::fstat(f, &st) == 0) size = st.st_size;
      unsigned char h[4];
      if (::pread(f, h, 4, 4) == 4)
        riff = static_cast<long long>(h[0] | (h[1] << 8) | (h[2] << 16) |
                                      (static_cast<uint32_t>(h[3]) << 24));
      ::close(f);
    }
    std::fprintf(out_, "%.3f\t%s\t%s\t%lld\t%lld\n", t, kind, rel.c_str(), size, riff);
  }

  // Watches ROOT/rel and its subfolders; with scan, records the regular files
  // already there (they arrived before the watch).
  bool add_tree(const std::string& rel, bool scan) {
    std::string path = rel.empty() ? root_ : root_ + "/" + rel;
    int wd = ::inotify_add_watch(fd_, path.c_str(), kMask | IN_ONLYDIR | IN_DONT_FOLLOW);
    if (wd < 0) {
      if (errno == ENOENT || errno == ENOTDIR) return true;  // gone again
      std::fprintf(stderr, "arrivals: watch %s: %s\n", path.c_str(), std::strerror(errno));
      return false;
    }
    dirs_[wd] = rel;
    DIR* d = ::opendir(path.c_str());
    if (!d) return true;
    bool ok = true;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      if (rel.empty() && std::strcmp(e->d_name, "lost+found") == 0) continue;
      std::string child = rel.empty() ? e->d_name : rel + "/" + e->d_name;
      struct stat st;
      if (::lstat((root_ + "/" + child).c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode))
        ok = add_tree(child, scan) && ok;
      else if (scan && S_ISREG(st.st_mode))
        emit(now_ms(), "scan", child);
    }
    ::closedir(d);
    return ok;
  }

  std::string root_;
  std::FILE* out_;
  int fd_ = -1;
  std::unordered_map<int, std::string> dirs_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s ROOT OUT [MAX_SECONDS]\n", argv[0]);
    return 1;
  }
  double max_s = argc == 4 ? std::atof(argv[3]) : 3600;
  std::FILE* out = std::fopen(argv[2], "a");
  if (!out) {
    std::fprintf(stderr, "arrivals: open %s: %s\n", argv[2], std::strerror(errno));
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  Recorder r(argv[1], out);
  if (!r.start()) return 1;
  std::printf("ready\n");
  std::fflush(stdout);
  const double deadline = mono_s() + max_s;
  while (!g_stop && mono_s() < deadline) {
    pollfd p{r.fd(), POLLIN, 0};
    int n = ::poll(&p, 1, 200);
    if (n < 0 && errno != EINTR) break;
    if (n > 0 && !r.drain()) return 1;
  }
  r.drain();
  std::fclose(out);
  return 0;
}
