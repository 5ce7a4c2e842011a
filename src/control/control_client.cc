#include "control/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace recsync {

Result<nlohmann::json> control_call(const std::string& socket_path, const nlohmann::json& request,
                                    std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path)
    return Status::invalid("socket path too long: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::from_errno(errno, "socket");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Status::from_errno(errno, "connect " + socket_path);
  std::string out = request.dump() + "\n";
  // A daemon that refuses us answers and closes at once, maybe while we are
  // still sending: then its answer is waiting to be read, so read it.
  Status send_error;
  for (size_t off = 0; off < out.size();) {
    ssize_t w = ::send(fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      send_error = Status::from_errno(errno, "send to " + socket_path);
      if (errno != EPIPE && errno != ECONNRESET) return send_error;
      break;
    }
    off += static_cast<size_t>(w);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string in;
  char buf[65536];
  for (;;) {
    auto nl = in.find('\n');
    if (nl != std::string::npos) {
      auto j = nlohmann::json::parse(in.substr(0, nl), nullptr, false);
      if (j.is_discarded() || !j.is_object())
        return Status::io("malformed reply from daemon on " + socket_path);
      if (j.value("ok", false) == false) {
        std::string e = j.value("error", "unknown error");
        if (e.rfind("permission denied", 0) == 0) return Status::refused(e);
      }
      return j;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Status::io("timed out waiting for the daemon on " + socket_path, ETIMEDOUT);
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) return Status::from_errno(errno, "poll");
    if (r <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return send_error.is_ok() ? Status::from_errno(errno, "recv from " + socket_path)
                                : send_error;
    }
    if (n == 0)
      return send_error.is_ok()
                 ? Status::io("daemon closed the connection on " + socket_path, ECONNRESET)
                 : send_error;
    in.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace recsync
