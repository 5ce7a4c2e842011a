#include "recsync/sockaddr.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <algorithm>

namespace recsync {
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string format_sockaddr(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    // (Not "[" + std::string(host): g++ 12 -O2 warns -Wrestrict on it, a
    // false positive.)
    std::string out = "[";
    out += host;
    out += "]:";
    out += std::to_string(ntohs(a->sin6_port));
    return out;
  }
  return "(unknown address family " + std::to_string(ss.ss_family) + ")";
}

Result<SockAddr> parse_address(const std::string& s) {
  auto bad = [&](const std::string& why) {
    return Status::invalid("invalid address '" + s + "': " + why +
                           " (expected a.b.c.d:port or [v6]:port)");
  };
  std::string host, port;
  bool v6 = false;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) return bad("missing ']'");
    if (close + 1 >= s.size() || s[close + 1] != ':') return bad("missing ':port' after ']'");
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    v6 = true;
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos) return bad("missing ':port'");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string::npos)
      return bad("an IPv6 address must be in brackets, e.g. [::1]:7373");
  }
  if (host.empty()) return bad("missing host");
  if (!all_digits(port) || port.size() > 5) return bad("'" + port + "' is not a port number");
  int p = std::stoi(port);
  if (p > 65535) return bad("port " + port + " is out of range");

  SockAddr out;
  out.text = s;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&out.ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(p));
    std::string addr = host.substr(0, host.find('%'));
    if (inet_pton(AF_INET6, addr.c_str(), &a->sin6_addr) != 1)
      return bad("'" + host + "' is not a numeric IPv6 address");
    if (addr.size() != host.size()) {
      std::string scope = host.substr(addr.size() + 1);
      unsigned idx = 0;
      if (all_digits(scope) && scope.size() < 10)
        idx = static_cast<unsigned>(std::stoul(scope));
      else if (!scope.empty())
        idx = if_nametoindex(scope.c_str());
      if (idx == 0) return bad("unknown IPv6 scope '" + scope + "'");
      a->sin6_scope_id = idx;
    }
    out.len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&out.ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(p));
    // inet_pton, not inet_aton: "127.1" and friends are not accepted.
    if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1)
      return bad("'" + host + "' is not a numeric IPv4 address (host names are not resolved)");
    out.len = sizeof(sockaddr_in);
  }
  return out;
}

}  // namespace recsync
