#include "support/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace recsync::test {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::max<int64_t>(ms, 0));
}

Status io(const std::string& address, const std::string& what, int err) {
  return Status::from_errno(err, "http " + address + ": " + what);
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Decodes a chunked body; false if it is malformed or incomplete.
bool decode_chunked(std::string_view in, std::string& out) {
  for (;;) {
    size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) return false;
    std::string size_text(in.substr(0, std::min(eol, in.find(';'))));
    char* end = nullptr;
    unsigned long n = std::strtoul(size_text.c_str(), &end, 16);
    if (size_text.empty() || *end != '\0') return false;
    in.remove_prefix(eol + 2);
    if (n == 0) return true;
    if (in.size() < n + 2) return false;
    out.append(in.substr(0, n));
    in.remove_prefix(n + 2);
  }
}

}  // namespace

Result<int> tcp_connect(const std::string& address, std::chrono::milliseconds timeout) {
  auto bad = [&](const std::string& why) {
    return Status::invalid("http client: address '" + address + "': " + why);
  };
  sockaddr_storage ss{};
  socklen_t len = 0;
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 >= address.size()) return bad("missing :port");
  std::string host = address.substr(0, colon);
  int port = std::atoi(address.c_str() + colon + 1);
  if (port <= 0 || port > 65535) return bad("bad port");
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a->sin6_addr) != 1)
      return bad("not a numeric IPv6 address");
    if (!IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return bad("not loopback (tests talk to ::1 only)");
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1)
      return bad("not a numeric IPv4 address");
    if ((ntohl(a->sin_addr.s_addr) >> 24) != 127)
      return bad("not loopback (tests talk to 127.0.0.0/8 only)");
    len = sizeof *a;
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return io(address, "socket", errno);
  auto deadline = Clock::now() + timeout;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) {
      int e = errno;
      ::close(fd);
      return io(address, "connect", e);
    }
    int err = ETIMEDOUT;
    socklen_t el = sizeof err;
    if (wait_fd(fd, POLLOUT, deadline)) ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err != 0) {
      ::close(fd);
      return io(address, "connect", err);
    }
  }
  // Back to blocking: callers may use plain send/recv (with their own timeouts).
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
}

Result<HttpResponse> parse_http_response(std::string raw) {
  HttpResponse r;
  size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) return Status::corrupt("http response: no end of headers");
  std::string_view head(raw.data(), head_end);
  size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ')
    return Status::corrupt("http response: bad status line '" + std::string(status_line) + "'");
  r.status = std::atoi(std::string(status_line.substr(9, 3)).c_str());
  while (eol != std::string_view::npos) {
    size_t start = eol + 2;
    eol = head.find("\r\n", start);
    std::string_view line = head.substr(start, eol == std::string_view::npos ? eol : eol - start);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Status::corrupt("http response: bad header line");
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    r.headers[lower(std::string(line.substr(0, colon)))] = value;
  }
  std::string_view body(raw.data() + head_end + 4, raw.size() - head_end - 4);
  if (lower(r.headers["transfer-encoding"]) == "chunked") {
    if (!decode_chunked(body, r.body)) return Status::corrupt("http response: bad chunked body");
  } else if (r.headers.count("content-length")) {
    size_t n = std::strtoull(r.headers["content-length"].c_str(), nullptr, 10);
    if (body.size() < n) return Status::corrupt("http response: body shorter than Content-Length");
    r.body = body.substr(0, n);
  } else {
    r.body = body;
  }
  r.raw = std::move(raw);
  return r;
}

Result<HttpResponse> http_exchange(const std::string& address, std::string_view request,
                                   std::chrono::milliseconds timeout, size_t max_bytes) {
  auto deadline = Clock::now() + timeout;
  auto fd = tcp_connect(address, timeout);
  if (!fd) return fd.status();
  int s = *fd;
  Status st;
  for (size_t sent = 0; sent < request.size() && st.is_ok();) {
    if (!wait_fd(s, POLLOUT, deadline)) {
      st = io(address, "send", ETIMEDOUT);
      break;
    }
    ssize_t n =
        ::send(s, request.data() + sent, request.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EINTR) st = io(address, "send", errno);
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[16384];
  while (st.is_ok()) {
    if (!wait_fd(s, POLLIN, deadline)) {
      st = io(address, "read (after " + std::to_string(raw.size()) + " bytes)", ETIMEDOUT);
      break;
    }
    ssize_t n = ::recv(s, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) break;
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) st = io(address, "read", errno);
      continue;
    }
    raw.append(buf, static_cast<size_t>(n));
    if (raw.size() > max_bytes) st = Status::io("http " + address + ": response over max_bytes");
  }
  ::close(s);
  if (!st.is_ok()) return st;
  return parse_http_response(std::move(raw));
}

Result<HttpResponse> http_get(const std::string& address, const std::string& path,
                              std::chrono::milliseconds timeout) {
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + address +
                    "\r\nUser-Agent: recsync-test\r\nAccept: */*\r\n\r\n";
  return http_exchange(address, req, timeout);
}

std::string url_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace recsync::test
