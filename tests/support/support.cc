#include "support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "recsync/hash.h"

extern char** environ;

namespace recsync::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Closes an fd on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

struct SpawnSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // full environment, "K=V"
  int stdin_fd = -1;             // -1: inherit
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::optional<std::pair<uid_t, gid_t>> user;
};

std::vector<std::string> current_env(const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

// fork + execvp. The child runs in its own process group and gets SIGKILL
// when the parent thread dies. Only async-signal-safe calls after fork():
// every string and fd is prepared before. An exec failure travels back over
// a close-on-exec pipe, so spawn() fails instead of returning a dead child.
Result<pid_t> spawn_child(const SpawnSpec& spec) {
  if (spec.argv.empty()) return Status::invalid("spawn: empty argv");
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int errpipe[2];
  if (::pipe2(errpipe, O_CLOEXEC) != 0) return Status::from_errno(errno, "pipe2");
  Fd err_r(errpipe[0]), err_w(errpipe[1]);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Status::from_errno(errno, "fork");
  if (pid == 0) {
    auto die = [&](int e) {
      (void)!::write(err_w.get(), &e, sizeof e);
      ::_exit(127);
    };
    ::setpgid(0, 0);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die(errno);
    if (::getppid() != parent) ::_exit(127);  // parent already gone
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (spec.stdin_fd >= 0 && ::dup2(spec.stdin_fd, 0) < 0) die(errno);
    if (spec.stdout_fd >= 0 && ::dup2(spec.stdout_fd, 1) < 0) die(errno);
    if (spec.stderr_fd >= 0 && ::dup2(spec.stderr_fd, 2) < 0) die(errno);
    if (spec.user) {
      gid_t g = spec.user->second;
      if (::setgroups(1, &g) != 0 || ::setgid(g) != 0 || ::setuid(spec.user->first) != 0) {
        die(errno);
      }
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    die(errno);
  }
  err_w.reset();
  int child_err = 0;
  ssize_t n;
  do {
    n = ::read(err_r.get(), &child_err, sizeof child_err);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    int st;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return Status::from_errno(child_err, "spawn " + spec.argv[0]);
  }
  return pid;
}

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

Result<int> open_out(const std::string& path) {
  if (path.empty()) return -1;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::from_errno(errno, "open " + path);
  return fd;
}

}  // namespace

bool is_root() { return ::geteuid() == 0; }

// ---- TempDir ----

TempDir::TempDir() {
  char tmpl[] = "/tmp/recsync-test-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    std::perror("mkdtemp /tmp/recsync-test-XXXXXX");
    std::abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
  if (ec)
    std::fprintf(stderr, "TempDir: cannot remove %s: %s\n", path_.c_str(), ec.message().c_str());
}

// ---- TmpfsMount ----

Result<std::unique_ptr<TmpfsMount>> TmpfsMount::make(const std::string& dir, uint64_t size_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io("mkdir " + dir + ": " + ec.message());
  std::string opts = "size=" + std::to_string(size_bytes) + ",mode=0755";
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    return Status::from_errno(errno, "mount tmpfs on " + dir);
  }
  return std::unique_ptr<TmpfsMount>(new TmpfsMount(dir));
}

static void unmount_dir(const std::string& dir) {
  if (::umount2(dir.c_str(), 0) == 0) return;
  if (errno == EBUSY && ::umount2(dir.c_str(), MNT_DETACH) == 0) return;
  std::fprintf(stderr, "unmount %s: %s\n", dir.c_str(), std::strerror(errno));
}

TmpfsMount::~TmpfsMount() { unmount_dir(dir_); }

// ---- Ext4Image ----

Result<std::unique_ptr<Ext4Image>> Ext4Image::make(const std::string& dir, uint64_t size_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io("mkdir " + dir + ": " + ec.message());
  char tmpl[] = "/tmp/recsync-ext4-XXXXXX.img";
  int fd = ::mkstemps(tmpl, 4);
  if (fd < 0) return Status::from_errno(errno, "mkstemps /tmp/recsync-ext4-XXXXXX.img");
  std::string image = tmpl;
  int rc = ::ftruncate(fd, static_cast<off_t>(size_bytes));
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    ::unlink(image.c_str());
    return Status::from_errno(err, "truncate " + image);
  }
  RunResult mk = run({"mkfs.ext4", "-q", "-F", image}, 60s);
  if (mk.exit_code != 0) {
    ::unlink(image.c_str());
    return Status::io("mkfs.ext4 " + image + " failed (" + std::to_string(mk.exit_code) +
                      "): " + mk.err);
  }
  RunResult mt = run({"mount", "-o", "loop", image, dir}, 30s);
  if (mt.exit_code != 0) {
    ::unlink(image.c_str());
    return Status::io("mount -o loop " + image + " " + dir + " failed (" +
                      std::to_string(mt.exit_code) + "): " + mt.err);
  }
  return std::unique_ptr<Ext4Image>(new Ext4Image(dir, image));
}

Ext4Image::~Ext4Image() {
  if (mounted_) unmount_dir(dir_);
  // mount -o loop sets autoclear, so the device goes with the last user;
  // detach explicitly anyway in case an older mount(8) did not.
  RunResult lo = run({"losetup", "-j", image_}, 10s);
  std::istringstream in(lo.out);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon != std::string::npos) (void)run({"losetup", "-d", line.substr(0, colon)}, 10s);
  }
  ::unlink(image_.c_str());
}

// ---- Process ----

Result<std::unique_ptr<Process>> Process::spawn(std::vector<std::string> argv,
                                                std::map<std::string, std::string> extra_env,
                                                std::string stdout_path, std::string stderr_path) {
  auto out = open_out(stdout_path);
  if (!out) return out.status();
  Fd out_fd(*out);
  auto err = open_out(stderr_path);
  if (!err) return err.status();
  Fd err_fd(*err);
  Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  SpawnSpec spec;
  spec.argv = std::move(argv);
  spec.env = current_env(extra_env);
  spec.stdin_fd = null_fd.get();
  spec.stdout_fd = out_fd.get();
  spec.stderr_fd = err_fd.get();
  auto pid = spawn_child(spec);
  if (!pid) return pid.status();
  return std::unique_ptr<Process>(new Process(*pid));
}

Process::~Process() {
  if (!exited_) kill9();
}

bool Process::reap(bool block) {
  if (exited_) return true;
  int st;
  pid_t r;
  do {
    r = ::waitpid(pid_, &st, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exited_ = true;
    code_ = decode_status(st);
  } else if (r < 0) {  // ECHILD: someone else reaped it; treat as gone
    exited_ = true;
  }
  return exited_;
}

bool Process::running() { return !reap(false); }

int Process::wait(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  auto nap = 1ms;
  while (!reap(false)) {
    if (Clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(nap);
    nap = std::min<std::chrono::milliseconds>(nap * 2, 20ms);
  }
  return code_;
}

void Process::signal(int sig) {
  if (!exited_) ::kill(pid_, sig);
}

void Process::kill9() {
  if (exited_) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  if (wait(10s) < 0 && !exited_) {
    std::fprintf(stderr, "Process %d did not die after SIGKILL\n", static_cast<int>(pid_));
  }
}

// ---- run ----

RunResult run(std::vector<std::string> argv, std::chrono::milliseconds timeout,
              const std::string& as_user) {
  RunResult res;
  SpawnSpec spec;
  if (!as_user.empty()) {
    struct passwd* pw = ::getpwnam(as_user.c_str());
    if (!pw) {
      res.err = "run: unknown user " + as_user;
      return res;
    }
    spec.user = std::make_pair(pw->pw_uid, pw->pw_gid);
  }
  int po[2], pe[2];
  if (::pipe2(po, O_CLOEXEC) != 0) {
    res.err = "run: pipe2 failed";
    return res;
  }
  Fd out_r(po[0]), out_w(po[1]);
  if (::pipe2(pe, O_CLOEXEC) != 0) {
    res.err = "run: pipe2 failed";
    return res;
  }
  Fd err_r(pe[0]), err_w(pe[1]);
  Fd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  spec.argv = std::move(argv);
  spec.env = current_env({});
  spec.stdin_fd = null_fd.get();
  spec.stdout_fd = out_w.get();
  spec.stderr_fd = err_w.get();
  auto spawned = spawn_child(spec);
  out_w.reset();
  err_w.reset();
  if (!spawned) {
    res.err = spawned.status().to_string();
    return res;
  }
  pid_t pid = *spawned;
  auto deadline = Clock::now() + timeout;
  bool out_open = true, err_open = true, exited = false, timed_out = false;
  int status = 0;
  char buf[65536];
  // Read both pipes until they close; stop early if the child exited and a
  // grandchild holds the pipes open (nothing more will come from the child).
  while (out_open || err_open) {
    auto now = Clock::now();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    pollfd p[2] = {{out_open ? out_r.get() : -1, POLLIN, 0},
                   {err_open ? err_r.get() : -1, POLLIN, 0}};
    int wait_ms = static_cast<int>(std::min<int64_t>(
        50, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1));
    int n = ::poll(p, 2, wait_ms);
    if (n < 0 && errno != EINTR) break;
    bool got = false;
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = ::read(p[i].fd, buf, sizeof buf);
      if (r > 0) {
        (i == 0 ? res.out : res.err).append(buf, static_cast<size_t>(r));
        got = true;
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        (i == 0 ? out_open : err_open) = false;
      }
    }
    if (!got && !exited) {
      pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) exited = true;
    } else if (!got && exited) {
      break;  // child gone and nothing more to read in this round
    }
  }
  if (!exited) {
    if (timed_out) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
    // Bounded even if the child ignores closed pipes: after the deadline it
    // has been SIGKILLed, which always ends it.
    while (!exited) {
      pid_t w = ::waitpid(pid, &status, timed_out ? 0 : WNOHANG);
      if (w == pid) {
        exited = true;
        break;
      }
      if (w < 0 && errno != EINTR) break;
      if (Clock::now() >= deadline) {
        timed_out = true;
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
      } else {
        std::this_thread::sleep_for(2ms);
      }
    }
  }
  res.exit_code = timed_out ? -1 : (exited ? decode_status(status) : -1);
  return res;
}

// ---- misc ----

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(poll);
  }
  return cond();
}

std::string bin(const std::string& name) { return std::string(RECSYNC_BIN_DIR) + "/" + name; }
std::string source_path(const std::string& rel) {
  return std::string(RECSYNC_SOURCE_DIR) + "/" + rel;
}

std::string hash_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return "";
  Hasher h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return "";
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
  }
  return h.hex();
}

std::map<std::string, FileInfo> list_tree(const std::string& root) {
  std::map<std::string, FileInfo> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) return out;
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::error_code sec;
    if (it->symlink_status(sec).type() != fs::file_type::regular || sec) continue;
    std::string path = it->path().string();
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;  // vanished
    std::string h = hash_file(path);
    if (h.empty()) continue;
    out[fs::path(path).lexically_relative(root).string()] =
        FileInfo{static_cast<uint64_t>(st.st_size), h};
  }
  return out;
}

uint16_t free_tcp_port() {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return 0;
  }
  return ntohs(a.sin_port);
}

std::string write_file(const std::string& path, const std::string& content) {
  std::error_code ec;
  auto parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  f.close();
  if (!f) ADD_FAILURE() << "write_file " << path << " failed";
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<ManifestEntry> read_manifest(const std::string& path) {
  std::vector<ManifestEntry> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) continue;
    ManifestEntry e;
    e.path = j.value("path", "");
    e.size = j.value("size", uint64_t{0});
    e.hash = j.value("hash", "");
    e.closed_at_ms = j.value("closed_at_ms", int64_t{0});
    if (!e.path.empty()) out.push_back(std::move(e));
  }
  return out;
}

}  // namespace recsync::test
