#include "control/control_server.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "recsync/log.h"

namespace recsync {
namespace {
constexpr size_t kMaxRequest = 64 * 1024;
}

bool control_access_allowed(const PeerCred& c, uid_t daemon_uid, bool has_group, gid_t group) {
  if (c.uid == 0 || c.uid == daemon_uid) return true;
  if (!has_group) return false;
  if (c.gid == group) return true;
  return std::find(c.groups.begin(), c.groups.end(), group) != c.groups.end();
}

struct ControlServer::Conn {
  uv_pipe_t pipe;
  ControlServer* server;
  std::string buf;
  PeerCred cred;
  bool busy = false;  // a request is being handled
  bool closing = false;
};

ControlServer::ControlServer(uv_loop_t* loop, std::string path, std::string group, Handler handler)
    : loop_(loop), path_(std::move(path)), group_(std::move(group)), handler_(std::move(handler)) {}

ControlServer::~ControlServer() = default;

Status ControlServer::start() {
  if (!group_.empty()) {
    struct group* g = getgrnam(group_.c_str());
    if (!g) return Status::invalid("control group '" + group_ + "' does not exist");
    has_group_ = true;
    gid_ = g->gr_gid;
  }
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Status::invalid(path_ + " exists and is not a socket; refusing to replace it");
    ::unlink(path_.c_str());  // stale socket from a previous run
  }
  pipe_ = new uv_pipe_t;
  uv_pipe_init(loop_, pipe_, 0);
  pipe_->data = this;
  // Create the socket with no access for others from the first instant.
  mode_t old = umask(0117);
  int r = uv_pipe_bind(pipe_, path_.c_str());
  umask(old);
  if (r != 0) {
    close();
    return Status::io("bind " + path_ + ": " + uv_strerror(r), -r);
  }
  if (has_group_ && chown(path_.c_str(), static_cast<uid_t>(-1), gid_) != 0) {
    int e = errno;
    close();
    return Status::from_errno(e, "chown " + path_ + " to group " + group_);
  }
  if (chmod(path_.c_str(), 0660) != 0) {
    int e = errno;
    close();
    return Status::from_errno(e, "chmod " + path_);
  }
  if ((r = uv_listen(reinterpret_cast<uv_stream_t*>(pipe_), 64, on_connection)) != 0) {
    close();
    return Status::io("listen " + path_ + ": " + uv_strerror(r), -r);
  }
  return Status::ok();
}

void ControlServer::close() {
  for (Conn* c : std::vector<Conn*>(conns_)) drop(c);
  if (pipe_) {
    uv_close(reinterpret_cast<uv_handle_t*>(pipe_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
    pipe_ = nullptr;
    ::unlink(path_.c_str());
  }
}

void ControlServer::drop(Conn* c) {
  if (c->closing) return;
  c->closing = true;
  conns_.erase(std::remove(conns_.begin(), conns_.end(), c), conns_.end());
  uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe),
           [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
}

namespace {

void write_line(uv_stream_t* s, const std::string& line, std::function<void()> after = {}) {
  struct Req {
    uv_write_t w;
    std::string data;
    std::function<void()> after;
  };
  auto* req = new Req{{}, line + "\n", std::move(after)};
  uv_buf_t b = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  req->w.data = req;
  int r = uv_write(&req->w, s, &b, 1, [](uv_write_t* w, int) {
    auto* q = static_cast<Req*>(w->data);
    if (q->after) q->after();
    delete q;
  });
  if (r != 0) {
    if (req->after) req->after();
    delete req;
  }
}

bool peer_cred(int fd, PeerCred* out) {
  struct ucred uc;
  socklen_t len = sizeof uc;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0) return false;
  out->pid = uc.pid;
  out->uid = uc.uid;
  out->gid = uc.gid;
  std::vector<gid_t> g(64);
  len = static_cast<socklen_t>(g.size() * sizeof(gid_t));
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g.data(), &len) != 0 && errno == ERANGE) {
    g.resize(len / sizeof(gid_t) + 1);
    len = static_cast<socklen_t>(g.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g.data(), &len) != 0) len = 0;
  }
  g.resize(len / sizeof(gid_t));
  out->groups = std::move(g);
  return true;
}

}  // namespace

void ControlServer::on_connection(uv_stream_t* server, int status) {
  auto* self = static_cast<ControlServer*>(server->data);
  auto lg = log::get("control");
  if (status != 0) {
    lg->warn("accept failed: {}", uv_strerror(status));
    return;
  }
  auto* c = new Conn;
  c->server = self;
  uv_pipe_init(self->loop_, &c->pipe, 0);
  c->pipe.data = c;
  self->conns_.push_back(c);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) {
    self->drop(c);
    return;
  }
  uv_os_fd_t fd;
  uv_fileno(reinterpret_cast<uv_handle_t*>(&c->pipe), &fd);
  if (!peer_cred(fd, &c->cred) ||
      !control_access_allowed(c->cred, geteuid(), self->has_group_, self->gid_)) {
    self->refused_++;
    lg->warn(
        "refused control connection from uid {} pid {}: not root, not the daemon user, not "
        "in group '{}'",
        c->cred.uid, c->cred.pid, self->group_);
    nlohmann::json err = {
        {"ok", false},
        {"error", "permission denied: uid " + std::to_string(c->cred.uid) +
                      " is not allowed to use this socket (group '" + self->group_ + "')"}};
    write_line(reinterpret_cast<uv_stream_t*>(&c->pipe), err.dump(), [self, c] { self->drop(c); });
    return;
  }
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->pipe),
      [](uv_handle_t*, size_t suggested, uv_buf_t* b) {
        b->base = new char[suggested];
        b->len = suggested;
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
        auto* c = static_cast<Conn*>(s->data);
        std::unique_ptr<char[]> hold(b->base);
        ControlServer* self = c->server;
        if (n < 0) {
          self->drop(c);
          return;
        }
        c->buf.append(b->base, static_cast<size_t>(n));
        if (c->buf.size() > kMaxRequest) {
          write_line(s, R"({"ok":false,"error":"request too large"})",
                     [self, c] { self->drop(c); });
          uv_read_stop(s);
          return;
        }
        auto nl = c->buf.find('\n');
        if (nl == std::string::npos || c->busy) return;
        std::string line = c->buf.substr(0, nl);
        c->buf.erase(0, nl + 1);
        auto req = nlohmann::json::parse(line, nullptr, false);
        if (req.is_discarded() || !req.is_object() || !req.contains("cmd") ||
            !req["cmd"].is_string()) {
          write_line(s, R"({"ok":false,"error":"malformed request: expected {\"cmd\": ...}"})");
          return;
        }
        c->busy = true;
        uv_read_stop(s);  // one request at a time per connection
        // The reply may come later; the connection stays open until then.
        self->handler_(req, c->cred, [self, c](nlohmann::json reply) {
          if (c->closing) return;
          write_line(reinterpret_cast<uv_stream_t*>(&c->pipe), reply.dump(),
                     [self, c] { self->drop(c); });
        });
      });
}

}  // namespace recsync
