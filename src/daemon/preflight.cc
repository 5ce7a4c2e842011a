#include "daemon/preflight.h"

#include <arpa/inet.h>
#include <grp.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "peer/connection.h"

namespace recsync {
namespace {

using Severity = PreflightProblem::Severity;

class Checker {
 public:
  Checker(const Config& c, Env* env) : c_(c), env_(env) {}
  std::vector<PreflightProblem> run();

 private:
  void add(Severity s, const std::string& key, const std::string& why) {
    out_.push_back({s, c_.at(key) + key + ": " + why});
  }
  void error(const std::string& key, const std::string& why) { add(Severity::kError, key, why); }
  void warn(const std::string& key, const std::string& why) { add(Severity::kWarning, key, why); }

  void check_control();
  void check_data_folder(const std::string& key, const std::string& path);
  void check_state_dir();
  void check_listeners();
  void check_patterns();

  const Config& c_;
  Env* env_;
  std::vector<PreflightProblem> out_;
};

std::string who() { return "uid " + std::to_string(::geteuid()); }

// "" when `path` is a writable folder, or is missing but its nearest existing
// ancestor is a writable folder (mkdirs would succeed); else why not.
std::string folder_or_creatable(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return "'" + path + "' exists and is not a folder";
    if (::access(path.c_str(), W_OK | X_OK) != 0)
      return "'" + path + "' is not writable by " + who();
    return "";
  }
  if (errno != ENOENT && errno != ENOTDIR) return "'" + path + "': " + std::strerror(errno);
  for (std::string p = path_dirname(path);; p = path_dirname(p)) {
    if (::stat(p.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode))
        return "'" + path + "' cannot be created: '" + p + "' is not a folder";
      if (::access(p.c_str(), W_OK | X_OK) != 0)
        return "'" + path + "' does not exist and cannot be created in '" + p +
               "' (not writable by " + who() + ")";
      return "";
    }
    if (p == "/" || p == ".") return "'" + path + "' cannot be created";
  }
}

bool nonlocal_bind_allowed(int family) {
  std::ifstream f(family == AF_INET6 ? "/proc/sys/net/ipv6/ip_nonlocal_bind"
                                     : "/proc/sys/net/ipv4/ip_nonlocal_bind");
  int v = 0;
  return (f >> v) && v != 0;
}

bool is_wildcard(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(ss).sin_addr.s_addr == htonl(INADDR_ANY);
  const auto& a6 = reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr;
  return IN6_IS_ADDR_UNSPECIFIED(&a6);
}

// Whether an interface of this host has the address. On a loopback
// interface its whole subnet counts (Linux answers for all of 127/8 once lo
// has 127.0.0.1/8; a namespace whose lo is down has none of it).
bool address_is_local(const sockaddr_storage& ss) {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return true;  // cannot tell: let bind decide
  bool found = false;
  for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != ss.ss_family) continue;
    const bool loopback = (i->ifa_flags & IFF_LOOPBACK) && i->ifa_netmask;
    if (ss.ss_family == AF_INET) {
      const uint32_t want = reinterpret_cast<const sockaddr_in&>(ss).sin_addr.s_addr;
      const uint32_t have = reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
      const uint32_t mask =
          loopback ? reinterpret_cast<const sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr
                   : 0xffffffffu;
      found = (want & mask) == (have & mask);
    } else {
      found =
          std::memcmp(&reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr,
                      &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, sizeof(in6_addr)) == 0;
    }
  }
  ::freeifaddrs(list);
  return found;
}

uint16_t port_of(const sockaddr_storage& ss) {
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(ss).sin_port
                                       : reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
}

}  // namespace

bool group_exists(const std::string& name) {
  group g{}, *found = nullptr;
  std::vector<char> buf(16384);
  for (int tries = 0; tries < 8; ++tries) {
    int r = ::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found);
    if (r != ERANGE) return r == 0 && found != nullptr;
    buf.resize(buf.size() * 4);
  }
  return false;
}

std::string listen_problem(const std::string& listen) {
  auto sa = peer::parse_address(listen);
  if (!sa) return sa.status().message();
  if (is_wildcard(sa->ss)) return "";
  if (sa->ss.ss_family == AF_INET6) {
    const auto& a6 = reinterpret_cast<const sockaddr_in6&>(sa->ss);
    if (IN6_IS_ADDR_LINKLOCAL(&a6.sin6_addr) && a6.sin6_scope_id == 0)
      return "the link-local address in '" + listen +
             "' needs its interface, e.g. [fe80::1%eth0]:port";
  }
  if (address_is_local(sa->ss) || nonlocal_bind_allowed(sa->ss.ss_family)) return "";
  return "no interface of this host has the address of '" + listen + "' (bind would fail)";
}

bool listens_collide(const std::string& a, const std::string& b) {
  auto x = peer::parse_address(a);
  auto y = peer::parse_address(b);
  if (!x || !y) return false;
  const uint16_t px = port_of(x->ss), py = port_of(y->ss);
  if (px == 0 || px != py) return false;
  const int fx = x->ss.ss_family, fy = y->ss.ss_family;
  // A v6 wildcard is bound dual-stack: it takes the port on IPv4 too.
  if ((fx == AF_INET6 && is_wildcard(x->ss)) || (fy == AF_INET6 && is_wildcard(y->ss))) return true;
  if (fx != fy) return false;
  if (is_wildcard(x->ss) || is_wildcard(y->ss)) return true;
  if (fx == AF_INET)
    return reinterpret_cast<const sockaddr_in&>(x->ss).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(y->ss).sin_addr.s_addr;
  return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(x->ss).sin6_addr,
                     &reinterpret_cast<const sockaddr_in6&>(y->ss).sin6_addr,
                     sizeof(in6_addr)) == 0;
}

void Checker::check_control() {
  const std::string& g = c_.control.group;
  if (!g.empty() && !group_exists(g))
    error("control.group",
          "group '" + g +
              "' does not exist (create it, e.g. with systemd-sysusers or groupadd, or set "
              "group = \"\" to let only root and the daemon's user use the socket)");
  const std::string& sock = c_.control.socket;
  struct stat st;
  if (::lstat(sock.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode))
    error("control.socket", "'" + sock + "' exists and is not a socket (it is not replaced)");
  std::string why = folder_or_creatable(path_dirname(sock));
  if (!why.empty()) error("control.socket", "the socket's folder: " + why);
}

void Checker::check_data_folder(const std::string& key, const std::string& path) {
  auto st = env_->lstat(path);
  if (!st)
    error(key, "folder '" + path + "' " +
                   (st.status().code() == Status::Code::kNotFound ? std::string("does not exist")
                                                                  : st.status().message()));
  else if (st->is_link)
    error(key, "'" + path + "' is a symlink; give the folder it points to");
  else if (!st->is_dir)
    error(key, "'" + path + "' is not a folder");
}

void Checker::check_state_dir() {
  std::string why = folder_or_creatable(c_.state_dir);
  if (!why.empty()) error("state_dir", why);
}

void Checker::check_listeners() {
  const bool repl = !c_.peers.empty();  // replication.listen is bound only with peers
  if (repl) {
    std::string why = listen_problem(c_.replication.listen);
    if (!why.empty()) error("replication.listen", why);
  }
  const std::string& m = c_.metrics.listen;
  if (m.empty()) return;
  std::string why = listen_problem(m);
  if (!why.empty())
    error("metrics.listen", why);
  else if (repl && listens_collide(m, c_.replication.listen))
    error("metrics.listen",
          "'" + m + "' takes the same port as replication.listen '" + c_.replication.listen + "'");
}

void Checker::check_patterns() {
  auto base = [](const std::string& p) { return p.substr(p.find_last_of('/') + 1); };
  if (c_.spool.include.empty())
    warn("spool.include", "no patterns: no file in the spool is ever archived");
  for (const std::string& p : c_.spool.include) {
    if (!base(p).empty() && base(p)[0] == '.')
      warn("spool.include", "'" + p + "' matches only hidden files, which are never recordings");
  }
  for (const std::string& p : c_.spool.exclude) {
    if (p == "*") warn("spool.exclude", "'" + p + "' excludes every recording");
    for (const std::string& i : c_.spool.include)
      if (i == p) warn("spool.exclude", "'" + p + "' is also an include pattern: it excludes it");
  }
}

std::vector<PreflightProblem> Checker::run() {
  check_control();
  check_data_folder("spool.path", c_.spool.path);
  check_data_folder("archive.path", c_.archive.path);
  check_state_dir();
  check_listeners();
  check_patterns();
  return std::move(out_);
}

std::vector<PreflightProblem> preflight(const Config& c, Env* env) { return Checker(c, env).run(); }

}  // namespace recsync
