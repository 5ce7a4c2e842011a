#pragma once
// The daemon's control socket: a Unix stream socket speaking one JSON object
// per line each way (request {"cmd": "...", ...} -> reply {"ok": bool, ...}).
//
// Access: the socket file is mode 0660, group `group` (so the filesystem
// already keeps others out), and every connection is checked again with
// SO_PEERCRED / SO_PEERGROUPS: root, the daemon's own uid, and members of
// `group` are served; anyone else gets {"ok":false,"error":"permission denied..."}
// and is disconnected, and the refusal is logged.
//
// Thread safety: loop thread only. The handler runs on the loop thread and
// must call `reply` exactly once, possibly later (after work elsewhere) but on
// the loop thread.
#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "recsync/status.h"

namespace recsync {

struct PeerCred {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
};

// Pure access rule, tested on its own.
bool control_access_allowed(const PeerCred& c, uid_t daemon_uid, bool has_group, gid_t group);

class ControlServer {
 public:
  using Reply = std::function<void(nlohmann::json)>;
  using Handler = std::function<void(const nlohmann::json& req, const PeerCred& who, Reply reply)>;

  ControlServer(uv_loop_t* loop, std::string path, std::string group, Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the socket (a stale socket file left by a crash is replaced; any
  // other file at the path is an error), sets mode and group, listens.
  Status start();
  // Closes the listener and all connections (uv_close; the loop must run on).
  void close();
  size_t refused() const { return refused_; }

 private:
  struct Conn;
  static void on_connection(uv_stream_t* server, int status);
  void drop(Conn* c);

  uv_loop_t* loop_;
  std::string path_;
  std::string group_;
  Handler handler_;
  uv_pipe_t* pipe_ = nullptr;
  bool has_group_ = false;
  gid_t gid_ = 0;
  std::vector<Conn*> conns_;
  size_t refused_ = 0;
};

}  // namespace recsync
