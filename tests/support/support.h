#pragma once
// Shared helpers for end-to-end tests: temporary folders, real tmpfs and
// loop-mounted ext4 filesystems, child processes (the real recsyncd, recsync
// and recsync-loadgen binaries), bounded waiting, file hashes and trees.
//
// Thread safety: none of these objects may be shared between threads without
// external locking; the free functions are safe to call from any thread.
// Every wait is bounded by an explicit timeout. Mount helpers need root (use
// RECSYNC_REQUIRE_ROOT() first).
#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "recsync/status.h"

namespace recsync::test {

using namespace std::chrono_literals;

// True when the effective uid is 0.
bool is_root();

// Skips the current test (with the reason printed) unless running as root.
#define RECSYNC_REQUIRE_ROOT()                                                     \
  do {                                                                             \
    if (!::recsync::test::is_root()) {                                             \
      GTEST_SKIP() << "needs root (real mounts, chown, other users); run as root"; \
    }                                                                              \
  } while (0)

// A fresh folder from mkdtemp("/tmp/recsync-test-XXXXXX"), removed with
// everything under it by the destructor. Aborts the test binary if /tmp is
// unusable (nothing sensible can run then). Declare before any mount placed
// inside it so the mount goes first.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path() + "/" + rel.
  std::string sub(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// A tmpfs of size_bytes mounted on dir (created if missing) with mount(2).
// The destructor unmounts it, lazily (MNT_DETACH) if something still uses it.
class TmpfsMount {
 public:
  static Result<std::unique_ptr<TmpfsMount>> make(const std::string& dir, uint64_t size_bytes);
  ~TmpfsMount();
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  const std::string& path() const { return dir_; }

 private:
  explicit TmpfsMount(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// An ext4 filesystem of size_bytes (default mkfs.ext4 options, journal on) in
// an image file /tmp/recsync-ext4-XXXXXX.img, loop-mounted on dir (created if
// missing) with mount(8) -o loop. The destructor unmounts it (lazily if
// busy; the loop device is auto-cleared on the last release) and deletes the
// image file.
class Ext4Image {
 public:
  static Result<std::unique_ptr<Ext4Image>> make(const std::string& dir, uint64_t size_bytes);
  ~Ext4Image();
  Ext4Image(const Ext4Image&) = delete;
  Ext4Image& operator=(const Ext4Image&) = delete;
  const std::string& path() const { return dir_; }
  const std::string& image() const { return image_; }

 private:
  Ext4Image(std::string dir, std::string image) : dir_(std::move(dir)), image_(std::move(image)) {}
  std::string dir_;
  std::string image_;
  bool mounted_ = true;
};

// A child process (fork + execvp). It gets SIGKILL if the thread that spawned
// it dies (PR_SET_PDEATHSIG: spawn from the test's main thread) and runs in its own process group.
// stdout/stderr go to the given files (created/truncated) or, when empty, are inherited. extra_env
// entries are added to (or override) the test's environment. The destructor SIGKILLs the process
// group and reaps the child if it is still running.
class Process {
 public:
  static Result<std::unique_ptr<Process>> spawn(std::vector<std::string> argv,
                                                std::map<std::string, std::string> extra_env = {},
                                                std::string stdout_path = "",
                                                std::string stderr_path = "");
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // False once the child has exited (reaps it).
  bool running();
  // Waits up to timeout for the child to exit. Returns its exit code, 128+N
  // when killed by signal N, or -1 on timeout (child left running). Calling
  // again after the child exited returns the same code.
  int wait(std::chrono::milliseconds timeout);
  // Sends sig to the child (not its group). No-op once reaped.
  void signal(int sig);
  // SIGKILLs the child's process group and reaps the child (bounded: 10 s).
  void kill9();

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  bool reap(bool block);
  pid_t pid_;
  bool exited_ = false;
  int code_ = -1;
};

struct RunResult {
  int exit_code = -1;  // as Process::wait(): -1 on timeout or spawn failure
  std::string out, err;
};

// Runs argv to completion, capturing stdout and stderr. On timeout the child
// is SIGKILLed and exit_code is -1. as_user (root only): run as that user
// (setgid/setuid to its passwd entry, supplementary groups dropped); spawn
// failures are reported in err with exit_code -1.
RunResult run(std::vector<std::string> argv, std::chrono::milliseconds timeout = 30s,
              const std::string& as_user = "");

// Polls cond every poll until it returns true (true) or timeout passes (false;
// cond is checked one last time at the deadline).
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll = 50ms);

// RECSYNC_BIN_DIR + "/" + name: the built recsyncd, recsync, recsync-loadgen.
std::string bin(const std::string& name);
// RECSYNC_SOURCE_DIR + "/" + rel.
std::string source_path(const std::string& rel);

// "xxh128:<hex>" of the file's content (recsync::Hasher); "" if unreadable.
std::string hash_file(const std::string& path);

struct FileInfo {
  uint64_t size = 0;
  std::string hash;
  bool operator==(const FileInfo&) const = default;
};
// Every regular file under root (symlinks not followed, nothing skipped),
// keyed by path relative to root. Files that vanish during the walk are left
// out. Empty map if root does not exist.
std::map<std::string, FileInfo> list_tree(const std::string& root);

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).
uint16_t free_tcp_port();

// Creates/truncates path (making parent folders) with content; returns path.
// Fails the current test (ADD_FAILURE) on error.
std::string write_file(const std::string& path, const std::string& content);
// The whole file, or "" if it cannot be read.
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);

// One line of a recsync-loadgen --manifest file.
struct ManifestEntry {
  std::string path;  // relative to the loadgen --dir
  uint64_t size = 0;
  std::string hash;
  int64_t closed_at_ms = 0;
};
// Parses a loadgen manifest (JSON lines); a torn last line is ignored.
std::vector<ManifestEntry> read_manifest(const std::string& path);

}  // namespace recsync::test
