// bench-mkfiles: creates (or re-dates) many small recordings fast, for the
// startup and retention benchmarks (bench/run.sh). Not part of recsync.
//
//   bench-mkfiles create DIR COUNT SIZE PREFIX [DAYS]
//     COUNT files "<PREFIX>-<uuid-like>.wav" of SIZE bytes. With DAYS > 0 they
//     go into DIR/YYYY/MM/DD folders for the DAYS days before today (UTC),
//     round-robin, each with an mtime inside its folder's day; with DAYS = 0
//     they go into DIR itself with an mtime of one minute ago.
//   bench-mkfiles retime DIR DAYS KEEP_DAYS [folders|scrambled]
//     Gives every regular file below DIR (except lost+found) a new mtime,
//     keeping clear of the hour either side of KEEP_DAYS ago, so the count
//     older than KEEP_DAYS does not depend on when the retention pass runs.
//     "folders" (default): a file in a YYYY/MM/DD folder k days before today
//     gets an age in [(k-1)w, kw) days, w = DAYS / KEEP_DAYS, so folders stay
//     in time order as the date layout keeps them (with DAYS 30, KEEP_DAYS 15
//     a 15-day tree becomes a 30-day one and half of it is older than 15
//     days; with DAYS 16 the oldest folder, about 1/16, is: a daily pass);
//     files elsewhere are treated as "scrambled". "scrambled": ages spread evenly
//     over DAYS days regardless of the folder (an adopted tree whose folders
//     say nothing about the recording time). Prints "files N older K".
//
// Exit codes: 0 done; 1 I/O error; 2 bad usage.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

constexpr int64_t kDay = 86400;

uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

bool mkdirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i < path.size() && path[i] != '/') continue;
    std::string p = path.substr(0, i);
    if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) {
      std::fprintf(stderr, "mkdir %s: %s\n", p.c_str(), std::strerror(errno));
      return false;
    }
  }
  return true;
}

int create(const std::string& dir, uint64_t count, size_t size, const std::string& prefix,
           int days) {
  const int64_t now = ::time(nullptr);
  const int64_t today = now - now % kDay;
  std::string buf(size, '\0');
  for (size_t i = 0; i < size; ++i) buf[i] = char(mix(i) & 0xff);
  // One open folder fd per day: openat() saves the path walk per file.
  std::vector<int> dfds;
  std::vector<int64_t> day_start;
  int nd = days > 0 ? days : 1;
  for (int d = 0; d < nd; ++d) {
    std::string sub = dir;
    int64_t start = today - int64_t(d + 1) * kDay;
    if (days > 0) {
      std::time_t t = start;
      std::tm tm{};
      gmtime_r(&t, &tm);
      char rel[32];
      std::strftime(rel, sizeof rel, "/%Y/%m/%d", &tm);
      sub += rel;
    }
    if (!mkdirs(sub)) return 1;
    int fd = ::open(sub.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(stderr, "open %s: %s\n", sub.c_str(), std::strerror(errno));
      return 1;
    }
    dfds.push_back(fd);
    day_start.push_back(start);
  }
  char name[128];
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t a = mix(i ^ 0x5bd1e995ULL), b = mix(a);
    std::snprintf(name, sizeof name,
                  "%s-%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-a%03" PRIx64 "-%012" PRIx64 ".wav",
                  prefix.c_str(), a >> 32, (a >> 16) & 0xffff, a & 0xfff, (b >> 52) & 0xfff,
                  uint64_t(b & 0xffffffffffffULL));
    int d = int(i % uint64_t(nd));
    int fd = ::openat(dfds[d], name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      std::fprintf(stderr, "create %s: %s\n", name, std::strerror(errno));
      return 1;
    }
    if (size > 0 && ::write(fd, buf.data(), size) != ssize_t(size)) {
      std::fprintf(stderr, "write %s: %s\n", name, std::strerror(errno));
      ::close(fd);
      return 1;
    }
    struct timespec ts[2];
    int64_t mt = days > 0 ? day_start[d] + int64_t(mix(i) % kDay) : now - 60;
    ts[0].tv_sec = ts[1].tv_sec = mt;
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    if (::futimens(fd, ts) != 0 || ::close(fd) != 0) {
      std::fprintf(stderr, "finish %s: %s\n", name, std::strerror(errno));
      return 1;
    }
  }
  for (int fd : dfds) ::close(fd);
  return 0;
}

struct Retimer {
  int64_t now, span, keep;
  bool by_folder;
  uint64_t files = 0, older = 0;

  // Days before today of a ".../YYYY/MM/DD" folder (the last three parts of
  // rel); -1 when rel is not such a folder.
  int64_t folder_days_ago(const std::string& rel) const {
    int y = 0, m = 0, d = 0;
    char tail = 0;
    size_t cut = rel.size() >= 11 ? rel.size() - 11 : std::string::npos;
    if (cut == std::string::npos ||
        std::sscanf(rel.c_str() + cut, "/%4d/%2d/%2d%c", &y, &m, &d, &tail) != 3)
      return -1;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    int64_t start = ::timegm(&tm);
    return (now - now % kDay - start) / kDay;
  }

  bool walk(int dfd, const std::string& path, bool top) {
    const int64_t k = by_folder ? folder_days_ago(path) : -1;
    DIR* d = ::fdopendir(dfd);
    if (!d) {
      std::fprintf(stderr, "opendir %s: %s\n", path.c_str(), std::strerror(errno));
      ::close(dfd);
      return false;
    }
    bool ok = true;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      if (top && std::strcmp(e->d_name, "lost+found") == 0) continue;
      if (e->d_type == DT_DIR) {
        int sub = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sub < 0 || !walk(sub, path + "/" + e->d_name, false)) ok = false;
        continue;
      }
      if (e->d_type != DT_REG) continue;
      // Even spread over the span (or over the folder's two days), in a
      // scrambled order.
      const int64_t w = span / (keep / kDay);  // a folder's share of the span
      int64_t age = k >= 1 ? 120 + (k - 1) * w + int64_t(mix(files) % uint64_t(w - 240))
                           : 120 + int64_t(mix(files) % uint64_t(span - 240));
      if (age > keep - 3600 && age < keep + 3600) age += 7200;
      struct timespec ts[2];
      ts[0].tv_sec = ts[1].tv_sec = now - age;
      ts[0].tv_nsec = ts[1].tv_nsec = 0;
      if (::utimensat(::dirfd(d), e->d_name, ts, AT_SYMLINK_NOFOLLOW) != 0) {
        std::fprintf(stderr, "utimensat %s/%s: %s\n", path.c_str(), e->d_name,
                     std::strerror(errno));
        ok = false;
        continue;
      }
      files++;
      if (age > keep) older++;
    }
    ::closedir(d);
    return ok;
  }
};

int usage() {
  std::fprintf(stderr,
               "usage: bench-mkfiles create DIR COUNT SIZE PREFIX [DAYS]\n"
               "       bench-mkfiles retime DIR DAYS KEEP_DAYS [folders|scrambled]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  std::string mode = argv[1];
  if (mode == "create" && (argc == 6 || argc == 7)) {
    uint64_t count = std::strtoull(argv[3], nullptr, 10);
    size_t size = std::strtoull(argv[4], nullptr, 10);
    int days = argc == 7 ? std::atoi(argv[6]) : 0;
    if (days < 0 || days > 3650) return usage();
    if (!mkdirs(argv[2])) return 1;
    return create(argv[2], count, size, argv[5], days);
  }
  if (mode == "retime" && (argc == 5 || argc == 6)) {
    int days = std::atoi(argv[3]), keep_days = std::atoi(argv[4]);
    std::string how = argc == 6 ? argv[5] : "folders";
    if (days < 1 || keep_days < 1 || keep_days >= days || (how != "folders" && how != "scrambled"))
      return usage();
    Retimer r{::time(nullptr), int64_t(days) * kDay, int64_t(keep_days) * kDay, how == "folders"};
    int fd = ::open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(stderr, "open %s: %s\n", argv[2], std::strerror(errno));
      return 1;
    }
    bool ok = r.walk(fd, argv[2], true);
    std::printf("files %" PRIu64 " older %" PRIu64 "\n", r.files, r.older);
    return ok ? 0 : 1;
  }
  return usage();
}
