#pragma once
// The raw spool watcher (SPEC 4.1): one inotify watch per folder under the
// spool, read from a raw inotify fd polled by the libuv loop. libuv's
// uv_fs_event is not used: it never reports IN_CLOSE_WRITE and drops
// IN_Q_OVERFLOW. This class only reports raw events; deciding when a file is
// finished is the Aggregator's job, which files count is the FileFilter's.
//
// Ownership and threads: lives on the loop thread; every method and every
// callback runs there. The loop is borrowed and must outlive the watcher and
// keep running until close()'s handle close completes (libuv style: after
// close(), one more uv_run lets uv_loop_close succeed). The destructor calls
// close(). Callbacks may call close() (no callback runs after it) but must not
// destroy the watcher.
//
// What is watched: root (a symlink to a folder is followed for root only)
// and every folder below it, except symlinks and hidden/engine-temp names
// (names.h), which the scanner skips too. Mask: IN_CLOSE_WRITE, IN_MOVED_TO,
// IN_MOVED_FROM, IN_CREATE, IN_DELETE_SELF, IN_MOVE_SELF with IN_ONLYDIR,
// IN_DONT_FOLLOW (below root) and IN_EXCL_UNLINK.
//
// Limits: each folder costs one watch of fs.inotify.max_user_watches; each
// watcher one of fs.inotify.max_user_instances; events queue up to
// fs.inotify.max_queued_events before IN_Q_OVERFLOW (see etc/sysctl.d).
#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "recsync/status.h"

struct inotify_event;

namespace recsync {

class InotifyWatcher {
 public:
  struct Callbacks {
    // IN_CLOSE_WRITE or IN_MOVED_TO of a name that lstat shows is a regular
    // file (gone or other kinds are dropped). rel is spool-relative. Filter
    // and debounce are the caller's job.
    std::function<void(const std::string& rel)> on_file;
    // A new subfolder (created or moved in) got its watch. Called for it and
    // then for each folder nested in it at that moment, parent first. The
    // caller must scan it: files created before the watch existed raise no
    // event. Folders may be reported more than once in races; harmless.
    std::function<void(const std::string& rel_dir)> on_new_dir;
    // IN_Q_OVERFLOW, or a lost watch (spool root deleted/moved/unmounted, a
    // new folder that could not be watched): events were lost, the caller
    // must rescan everything. Watches are re-synced before this is called.
    // Several losses in one read batch give one call.
    std::function<void()> on_overflow;
  };

  InotifyWatcher(uv_loop_t* loop, std::string root, Callbacks cb);
  ~InotifyWatcher();
  InotifyWatcher(const InotifyWatcher&) = delete;
  InotifyWatcher& operator=(const InotifyWatcher&) = delete;

  // Creates the inotify fd, watches root and every folder below it, and
  // starts polling. Root missing or not a folder is an error (kNotFound,
  // ENOTDIR). On error nothing is left open; ENOSPC (too many watches)
  // and EMFILE (too many inotify instances) name the sysctl to raise. Call
  // once.
  Status start();
  // Stops polling (uv_close; the fd is closed in the close callback) and
  // forgets the watches. Idempotent.
  void close();

  bool running() const { return box_ != nullptr; }
  const std::string& root() const { return root_; }
  size_t watch_count() const { return wd_rel_.size(); }
  // IN_Q_OVERFLOW events seen.
  uint64_t overflows() const { return overflows_; }
  // Watches lost or folders that could not be watched (each triggers
  // on_overflow).
  uint64_t lost_watches() const { return lost_; }

 private:
  struct PollBox;  // heap-owned uv_poll_t + fd; freed by the close callback
  static void on_poll(uv_poll_t* h, int status, int events);

  // Watches rel and every folder below it; appends each newly watched rel
  // (top-down) to *added when given. Only a limit error (ENOSPC, ENOMEM) is
  // returned; vanished or unwatchable entries are skipped.
  Status add_tree(const std::string& rel, std::vector<std::string>* added);
  // inotify_add_watch for one folder and record it; *skip when it is gone,
  // not a folder or may not be watched (logged).
  Status add_one(const std::string& rel, bool* skip);
  void remove_tree(const std::string& rel);
  void forget_wd(int wd);
  // After lost events: re-watch the whole tree, drop watches on folders that
  // are gone.
  void resync();
  void read_events();
  void handle(const struct inotify_event* ev, bool* lost);
  std::string full(const std::string& rel) const;

  uv_loop_t* loop_;
  std::string root_;
  Callbacks cb_;
  int fd_ = -1;
  PollBox* box_ = nullptr;
  std::unordered_map<int, std::string> wd_rel_;
  std::map<std::string, int> rel_wd_;  // ordered: a folder's subtree is a key range
  uint64_t overflows_ = 0;
  uint64_t lost_ = 0;
  std::vector<uint64_t> buf_;  // 64 KiB, aligned for inotify_event
};

}  // namespace recsync
