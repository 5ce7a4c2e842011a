#pragma once
// Numeric socket addresses as the configuration writes them: "a.b.c.d:port"
// or "[v6]:port" (an optional "%scope" inside the brackets). No name lookups:
// getaddrinfo may block for seconds. Used by the peer links, the metrics
// server and the preflight check alike. Pure; any thread.
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "recsync/status.h"

namespace recsync {

// A parsed numeric socket address. `text` is the input it came from.
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  std::string text;
};

// Parses "1.2.3.4:7373" / "[::1]:7373" / "[fe80::1%eth0]:7373" (numeric
// hosts only; port 0..65535, 0 allowed for listening). kInvalid naming the
// address and the reason otherwise.
Result<SockAddr> parse_address(const std::string& s);

// "1.2.3.4:5678" / "[::1]:5678" for an IPv4/IPv6 socket address.
std::string format_sockaddr(const sockaddr_storage& ss);

}  // namespace recsync
