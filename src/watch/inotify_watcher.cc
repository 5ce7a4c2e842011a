#include "watch/inotify_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "recsync/env.h"
#include "recsync/log.h"
#include "recsync/names.h"

namespace recsync {
namespace {

constexpr uint32_t kDirMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                              IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;
constexpr size_t kBufBytes = 64 * 1024;
// Reads per poll callback: the poll is level-triggered, so a busy queue is
// drained over several loop turns instead of starving the loop.
constexpr int kMaxReadsPerWake = 256;

std::string sysctl_value(const char* name) {
  std::ifstream in(std::string("/proc/sys/fs/inotify/") + name);
  std::string v;
  if (!(in >> v)) return "?";
  return v;
}

Status limit_error(int err, const std::string& what) {
  Status s = Status::from_errno(err, what);
  if (err == ENOSPC)
    return Status::io(s.message() +
                          " (fs.inotify.max_user_watches=" + sysctl_value("max_user_watches") +
                          " is too low for one watch per spool folder; raise it with sysctl)",
                      err);
  if (err == EMFILE)
    return Status::io(s.message() + " (fs.inotify.max_user_instances=" +
                          sysctl_value("max_user_instances") + " reached; raise it with sysctl)",
                      err);
  return s;
}

bool skippable_name(std::string_view name) { return is_hidden_name(name) || is_temp_name(name); }

std::string join_rel(const std::string& dir, const char* name) {
  return dir.empty() ? std::string(name) : dir + "/" + name;
}

}  // namespace

struct InotifyWatcher::PollBox {
  uv_poll_t poll;  // first member: the close callback casts the handle back
  int fd = -1;
  InotifyWatcher* owner = nullptr;
};

InotifyWatcher::InotifyWatcher(uv_loop_t* loop, std::string root, Callbacks cb)
    : loop_(loop), root_(std::move(root)), cb_(std::move(cb)), buf_(kBufBytes / 8) {}

InotifyWatcher::~InotifyWatcher() { close(); }

std::string InotifyWatcher::full(const std::string& rel) const {
  return rel.empty() ? root_ : path_join(root_, rel);
}

Status InotifyWatcher::start() {
  if (box_ || fd_ >= 0) return Status::invalid("inotify watcher " + root_ + ": already started");
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return limit_error(errno, "inotify_init1");
  Status s = add_tree("", nullptr);
  if (!s.is_ok()) {
    ::close(fd_);
    fd_ = -1;
    wd_rel_.clear();
    rel_wd_.clear();
    return s;
  }
  auto* box = new PollBox;
  box->fd = fd_;
  box->owner = this;
  int r = uv_poll_init(loop_, &box->poll, fd_);
  if (r == 0) {
    box_ = box;
    r = uv_poll_start(&box->poll, UV_READABLE, &InotifyWatcher::on_poll);
    if (r != 0) {
      close();
      return Status::io(std::string("uv_poll_start inotify: ") + uv_strerror(r));
    }
  } else {
    delete box;
    ::close(fd_);
    fd_ = -1;
    wd_rel_.clear();
    rel_wd_.clear();
    return Status::io(std::string("uv_poll_init inotify: ") + uv_strerror(r));
  }
  log::get("watch")->info("watching {} ({} folders)", root_, wd_rel_.size());
  return Status::ok();
}

void InotifyWatcher::close() {
  if (box_) {
    PollBox* box = box_;
    box_ = nullptr;
    box->owner = nullptr;
    uv_poll_stop(&box->poll);
    // The fd must stay open until libuv is done with the handle.
    uv_close(reinterpret_cast<uv_handle_t*>(&box->poll), [](uv_handle_t* h) {
      auto* b = reinterpret_cast<PollBox*>(h);
      ::close(b->fd);
      delete b;
    });
    fd_ = -1;  // owned by the box now
  } else if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  wd_rel_.clear();
  rel_wd_.clear();
}

Status InotifyWatcher::add_one(const std::string& rel, bool* skip) {
  *skip = false;
  // Root may be a symlink to the spool; nothing below it is followed.
  uint32_t mask = kDirMask | (rel.empty() ? 0 : IN_DONT_FOLLOW);
  int wd = ::inotify_add_watch(fd_, full(rel).c_str(), mask);
  if (wd < 0) {
    int e = errno;
    if (e == ENOSPC || e == ENOMEM) return limit_error(e, "inotify_add_watch " + full(rel));
    if (rel.empty()) return Status::from_errno(e, "watch spool " + root_);
    if (e != ENOENT && e != ENOTDIR)
      log::get("watch")->warn("cannot watch {}: {}", full(rel), std::strerror(e));
    *skip = true;
    return Status::ok();
  }
  // The same folder may come back under another name (moved, re-synced).
  auto old = wd_rel_.find(wd);
  if (old != wd_rel_.end()) {
    auto it = rel_wd_.find(old->second);
    if (it != rel_wd_.end() && it->second == wd) rel_wd_.erase(it);
    old->second = rel;
  } else {
    wd_rel_.emplace(wd, rel);
  }
  auto prev = rel_wd_.find(rel);
  if (prev != rel_wd_.end() && prev->second != wd) {
    // A different folder now has this name; the old one's watch is stale.
    ::inotify_rm_watch(fd_, prev->second);
    wd_rel_.erase(prev->second);
  }
  rel_wd_[rel] = wd;
  return Status::ok();
}

Status InotifyWatcher::add_tree(const std::string& rel, std::vector<std::string>* added) {
  Env* env = Env::posix();
  std::vector<std::string> todo{rel};
  while (!todo.empty()) {
    std::string dir = std::move(todo.back());
    todo.pop_back();
    bool skip = false;
    // Watch first, then list: a folder created after the listing raises an
    // event, one created before is in the listing.
    RECSYNC_RETURN_IF_ERROR(add_one(dir, &skip));
    if (skip) continue;
    if (added) added->push_back(dir);
    auto listed = env->list_dir(full(dir));
    if (!listed) continue;  // vanished meanwhile; its IN_IGNORED will follow
    std::vector<std::string> subdirs;
    for (const DirEntry& e : listed.value()) {
      if (skippable_name(e.name)) continue;
      // Unknown d_type: let IN_ONLYDIR|IN_DONT_FOLLOW decide (ENOTDIR = skip).
      if (e.type == DirEntry::Type::kDir || e.type == DirEntry::Type::kUnknown)
        subdirs.push_back(join_rel(dir, e.name.c_str()));
    }
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) todo.push_back(std::move(*it));
  }
  return Status::ok();
}

void InotifyWatcher::forget_wd(int wd) {
  auto it = wd_rel_.find(wd);
  if (it == wd_rel_.end()) return;
  auto r = rel_wd_.find(it->second);
  if (r != rel_wd_.end() && r->second == wd) rel_wd_.erase(r);
  wd_rel_.erase(it);
}

void InotifyWatcher::remove_tree(const std::string& rel) {
  std::vector<int> wds;
  auto it = rel_wd_.find(rel);
  if (it != rel_wd_.end()) wds.push_back(it->second);
  std::string prefix = rel + "/";
  for (auto p = rel_wd_.lower_bound(prefix);
       p != rel_wd_.end() && p->first.compare(0, prefix.size(), prefix) == 0; ++p)
    wds.push_back(p->second);
  for (int wd : wds) {
    ::inotify_rm_watch(fd_, wd);  // its IN_IGNORED finds no mapping: fine
    forget_wd(wd);
  }
}

void InotifyWatcher::resync() {
  auto old = std::move(wd_rel_);
  wd_rel_.clear();
  rel_wd_.clear();
  Status s = add_tree("", nullptr);
  if (!s.is_ok()) {
    ++lost_;
    log::get("watch")->error("re-watching {} after lost events: {}", root_, s.to_string());
  }
  // Folders that are gone (their IN_IGNORED may itself have been lost).
  for (const auto& [wd, rel] : old)
    if (wd_rel_.count(wd) == 0) ::inotify_rm_watch(fd_, wd);
}

void InotifyWatcher::on_poll(uv_poll_t* h, int status, int events) {
  auto* box = reinterpret_cast<PollBox*>(h);
  InotifyWatcher* self = box->owner;
  if (!self) return;
  if (status < 0) {
    log::get("watch")->error("poll inotify fd: {}", uv_strerror(status));
    return;
  }
  if (events & UV_READABLE) self->read_events();
}

void InotifyWatcher::read_events() {
  bool lost = false;
  char* buf = reinterpret_cast<char*>(buf_.data());
  for (int i = 0; i < kMaxReadsPerWake && box_; ++i) {
    ssize_t n = ::read(fd_, buf, kBufBytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        log::get("watch")->error("read inotify fd: {}", std::strerror(errno));
      break;
    }
    if (n == 0) break;
    for (ssize_t off = 0; off + ssize_t(sizeof(inotify_event)) <= n && box_;) {
      auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += ssize_t(sizeof(inotify_event) + ev->len);
      handle(ev, &lost);
    }
  }
  if (lost && box_) {
    resync();
    log::get("watch")->warn("{}: inotify events lost, rescan ({} overflows)", root_, overflows_);
    if (cb_.on_overflow) cb_.on_overflow();
  }
}

void InotifyWatcher::handle(const inotify_event* ev, bool* lost) {
  if (ev->mask & IN_Q_OVERFLOW) {
    ++overflows_;
    *lost = true;
    return;
  }
  if (ev->mask & IN_IGNORED) {
    forget_wd(ev->wd);
    return;
  }
  auto it = wd_rel_.find(ev->wd);
  if (it == wd_rel_.end()) return;     // removed by us; late events
  const std::string dir = it->second;  // copy: callbacks may change the maps

  if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) {
    // A subfolder's move is handled through its parent's IN_MOVED_FROM and
    // its deletion through IN_IGNORED; losing root means losing everything.
    if (dir.empty() || (ev->mask & IN_UNMOUNT)) {
      ++lost_;
      *lost = true;
      log::get("watch")->error("lost the watch on {}", full(dir));
    }
    return;
  }
  if (ev->len == 0) return;
  const char* name = ev->name;
  std::string rel = join_rel(dir, name);

  if (ev->mask & IN_ISDIR) {
    if (ev->mask & IN_MOVED_FROM) {
      remove_tree(rel);
    } else if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
      if (skippable_name(name)) return;
      std::vector<std::string> added;
      Status s = add_tree(rel, &added);
      if (!s.is_ok()) {
        ++lost_;
        *lost = true;
        log::get("watch")->error("{}", s.to_string());
      }
      for (const auto& d : added) {
        if (!box_) return;
        if (cb_.on_new_dir) cb_.on_new_dir(d);
      }
    }
    return;
  }
  if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) {
    auto st = Env::posix()->lstat(full(rel));
    if (!st || !st->is_reg) return;  // gone already, or not a regular file
    if (cb_.on_file) cb_.on_file(rel);
  }
}

}  // namespace recsync
