#include "config/values.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "recsync/log.h"

namespace recsync::config_values {
namespace {
constexpr size_t kMaxSocketPath = 107;  // sizeof(sockaddr_un::sun_path) - 1
}  // namespace

std::string where_of(const std::string& source, uint32_t line) {
  return line == 0 ? source + ": " : source + ":" + std::to_string(line) + ": ";
}

const char* type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "nothing";
  }
}

Status wrong_type(const Item& it, const char* want) {
  return it.fail(std::string("expected ") + want + " (got " + type_name(it.node.type()) + ")");
}

namespace {
std::string join(std::initializer_list<const char*> xs) {
  std::string out;
  for (const char* x : xs) out += (out.empty() ? "" : ", ") + std::string(x);
  return out;
}

}  // namespace

Status get_string(const Item& it, std::string* out) {
  const auto* s = it.node.as_string();
  if (!s) return wrong_type(it, "a string");
  *out = s->get();
  return Status::ok();
}

Status get_int(const Item& it, int64_t lo, int64_t hi, int* out) {
  const auto* v = it.node.as_integer();
  if (!v) return wrong_type(it, "an integer");
  int64_t n = v->get();
  if (n < lo || n > hi) {
    return it.fail("must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                   " (got " + std::to_string(n) + ")");
  }
  *out = static_cast<int>(n);
  return Status::ok();
}

Status get_choice(const Item& it, std::initializer_list<const char*> choices, std::string* out) {
  std::string s;
  RECSYNC_RETURN_IF_ERROR(get_string(it, &s));
  for (const char* c : choices) {
    if (s == c) {
      *out = s;
      return Status::ok();
    }
  }
  return it.fail("must be one of " + join(choices) + " (got '" + s + "')");
}

Status get_level(const Item& it, std::string* out) {
  return get_choice(it, {"trace", "debug", "info", "warn", "error", "off"}, out);
}

Status get_duration(const Item& it, Millis min, Millis* out) {
  Millis d{0};
  if (const auto* i = it.node.as_integer()) {
    if (i->get() != 0) {
      return it.fail("a duration needs a unit, e.g. \"" + std::to_string(i->get()) + "s\" (got " +
                     std::to_string(i->get()) + ")");
    }
  } else if (const auto* s = it.node.as_string()) {
    auto r = parse_duration(s->get());
    if (!r) return it.fail(r.status().message());
    d = *r;
  } else {
    return wrong_type(it, "a duration string such as \"30s\"");
  }
  if (d < min) {
    if (min == Millis{1}) return it.fail("must be greater than 0");
    return it.fail("must be at least " + format_duration(min) + " (got " + format_duration(d) +
                   ")");
  }
  *out = d;
  return Status::ok();
}

Status get_string_list(const Item& it, std::vector<std::string>* out) {
  const auto* a = it.node.as_array();
  if (!a) return wrong_type(it, "an array of strings");
  std::vector<std::string> v;
  for (const toml::node& el : *a) {
    const auto* s = el.as_string();
    if (!s) {
      return it.fail(std::string("expected an array of strings (found ") + type_name(el.type()) +
                     ")");
    }
    if (s->get().empty()) return it.fail("patterns must not be empty");
    v.push_back(s->get());
  }
  *out = std::move(v);
  return Status::ok();
}

std::string normal_path(const std::string& p) {
  std::string n = std::filesystem::path(p).lexically_normal().string();
  while (n.size() > 1 && n.back() == '/') n.pop_back();
  return n;
}

Status get_abs_path(const Item& it, bool allow_empty, std::string* out) {
  std::string s;
  RECSYNC_RETURN_IF_ERROR(get_string(it, &s));
  if (s.empty() && allow_empty) {
    out->clear();
    return Status::ok();
  }
  if (s.empty() || s[0] != '/') return it.fail("must be an absolute path (got '" + s + "')");
  *out = normal_path(s);
  return Status::ok();
}

bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

Status get_name(const Item& it, std::string* out) {
  std::string s;
  RECSYNC_RETURN_IF_ERROR(get_string(it, &s));
  if (!valid_name(s)) {
    return it.fail("'" + s +
                   "' is not a valid node name (1-64 letters, digits, '.', '_', '-'; "
                   "starting with a letter or digit)");
  }
  *out = s;
  return Status::ok();
}

std::string address_problem(const std::string& s, bool allow_port0) {
  std::string host, port;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) return "missing ']'";
    if (close + 1 >= s.size() || s[close + 1] != ':') return "missing ':port' after ']'";
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    std::string addr = host.substr(0, host.find('%'));  // fe80::1%eth0
    in6_addr a6;
    if (inet_pton(AF_INET6, addr.c_str(), &a6) != 1) return "'" + host + "' is not an IPv6 address";
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string::npos) return "missing ':port'";
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.empty()) return "missing host";
    if (host.find(':') != std::string::npos) {
      return "an IPv6 address must be in brackets, e.g. [::1]:7373";
    }
    bool ok = std::all_of(host.begin(), host.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    });
    if (!ok) return "'" + host + "' is not a valid host name";
    bool numeric = std::all_of(host.begin(), host.end(),
                               [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
    if (!numeric)
      return "'" + host + "' is a host name; use a numeric address (names are not resolved)";
    in_addr a4;
    if (inet_pton(AF_INET, host.c_str(), &a4) != 1) {
      return "'" + host + "' is not an IPv4 address";
    }
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "'" + port + "' is not a port number";
  }
  int p = std::stoi(port);
  if (p > 65535 || (p == 0 && !allow_port0)) return "port " + port + " is out of range";
  return "";
}

Status get_address(const Item& it, bool listen, bool allow_empty, std::string* out) {
  std::string s;
  RECSYNC_RETURN_IF_ERROR(get_string(it, &s));
  if (s.empty() && allow_empty) {
    out->clear();
    return Status::ok();
  }
  std::string why = address_problem(s, listen);
  if (!why.empty()) {
    return it.fail("invalid address '" + s + "': " + why + " (expected host:port or [v6]:port)");
  }
  *out = s;
  return Status::ok();
}

Status get_bandwidth(const Item& it, uint64_t* out) {
  if (const auto* i = it.node.as_integer()) {
    if (i->get() != 0) {
      return it.fail("a number alone must be 0 (no cap); write a rate such as \"50MB/s\" (got " +
                     std::to_string(i->get()) + ")");
    }
    *out = 0;
    return Status::ok();
  }
  const auto* s = it.node.as_string();
  if (!s) return wrong_type(it, "a rate string such as \"50MB/s\"");
  auto r = parse_rate(s->get());
  if (!r) return it.fail(r.status().message());
  *out = *r;
  return Status::ok();
}

Status get_schedule(const Item& it, Schedule* out, std::string* text) {
  const auto* s = it.node.as_string();
  if (!s) return wrong_type(it, "a string such as \"08:00-20:00=20MB/s,20:00-08:00=0\"");
  auto sc = parse_schedule(s->get());
  if (!sc) return it.fail(sc.status().message());
  *out = std::move(sc).value();
  *text = s->get();
  return Status::ok();
}

Status get_fingerprint(const Item& it, std::string* out) {
  std::string s;
  RECSYNC_RETURN_IF_ERROR(get_string(it, &s));
  constexpr std::string_view kPrefix = "sha256:";
  bool ok = s.size() == kPrefix.size() + 64 && s.compare(0, kPrefix.size(), kPrefix) == 0 &&
            std::all_of(s.begin() + kPrefix.size(), s.end(),
                        [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (!ok) {
    return it.fail(
        "expected \"sha256:\" and 64 lowercase hex digits, as printed by `recsync id` "
        "on the peer (got '" +
        s + "')");
  }
  *out = s;
  return Status::ok();
}

Status get_socket_path(const Item& it, std::string* out) {
  RECSYNC_RETURN_IF_ERROR(get_abs_path(it, false, out));
  if (out->size() > kMaxSocketPath) {
    return it.fail("path is too long for a unix socket (at most " + std::to_string(kMaxSocketPath) +
                   " bytes)");
  }
  return Status::ok();
}

Status get_bool(const Item& it, bool* out) {
  const auto* b = it.node.as_boolean();
  if (!b) return wrong_type(it, "true or false");
  *out = b->get();
  return Status::ok();
}

Status get_size(const Item& it, uint64_t min, uint64_t max, uint64_t* out) {
  uint64_t v = 0;
  if (const auto* i = it.node.as_integer()) {
    if (i->get() < 0) return it.fail("must not be negative");
    v = static_cast<uint64_t>(i->get());
  } else if (const auto* s = it.node.as_string()) {
    auto r = parse_size(s->get());
    if (!r) return it.fail(r.status().message());
    v = *r;
  } else {
    return wrong_type(it, "a size such as \"16MiB\"");
  }
  if (v < min || v > max)
    return it.fail("must be between " + format_bytes(min) + " and " + format_bytes(max) + " (got " +
                   format_bytes(v) + ")");
  *out = v;
  return Status::ok();
}

Status get_endpoint(const Item& it, std::string* out) {
  std::string s;
  RECSYNC_RETURN_IF_ERROR(get_string(it, &s));
  const size_t scheme_end = s.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : s.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    return it.fail("must start with http:// or https:// (got '" + s + "')");
  std::string rest = s.substr(scheme_end + 3);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty()) return it.fail("has no host (got '" + s + "')");
  if (rest.find_first_of("/?#@ \t\r\n") != std::string::npos)
    return it.fail("must be scheme://host[:port] only, no path, query or user info (got '" + s +
                   "')");
  *out = scheme + "://" + rest;
  return Status::ok();
}

Status get_bucket(const Item& it, std::string* out) {
  std::string b;
  RECSYNC_RETURN_IF_ERROR(get_string(it, &b));
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  bool ok =
      b.size() >= 3 && b.size() <= 63 && alnum(b.front()) && alnum(b.back()) &&
      std::all_of(b.begin(), b.end(), [&](char c) { return alnum(c) || c == '-' || c == '.'; });
  if (!ok)
    return it.fail("'" + b +
                   "' is not a bucket name (3-63 lower-case letters, digits, '-' or '.', "
                   "starting and ending with a letter or digit)");
  *out = b;
  return Status::ok();
}

Status get_key_prefix(const Item& it, std::string* out) {
  std::string p;
  RECSYNC_RETURN_IF_ERROR(get_string(it, &p));
  if (p.size() > 512) return it.fail("longer than 512 bytes");
  if (!p.empty() && p.front() == '/') return it.fail("must not start with '/' (got '" + p + "')");
  for (unsigned char c : p)
    if (c < 0x20 || c == 0x7f) return it.fail("has a control character");
  // The key is prefix + node + "/" + archive path: no empty, "." or ".." segment in it.
  size_t start = 0;
  while (start < p.size()) {
    size_t end = p.find('/', start);
    const bool last = end == std::string::npos;
    std::string seg = p.substr(start, last ? std::string::npos : end - start);
    if ((seg.empty() && !last) || seg == "." || seg == "..")
      return it.fail("has an empty, '.' or '..' segment (got '" + p + "')");
    if (last) break;
    start = end + 1;
  }
  *out = p;
  return Status::ok();
}

Status get_credentials_ref(const Item& it, std::string* out) {
  std::string s;
  RECSYNC_RETURN_IF_ERROR(get_string(it, &s));
  constexpr std::string_view kSystemd = "systemd:";
  if (s.compare(0, kSystemd.size(), kSystemd) == 0) {
    std::string name = s.substr(kSystemd.size());
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
      return it.fail("systemd credential name must be a single file name (got '" + s + "')");
    *out = s;
    return Status::ok();
  }
  if (s.empty() || s[0] != '/')
    return it.fail("must be an absolute path to a credentials file, or \"systemd:NAME\" (got '" +
                   s + "'); the keys themselves never go in this file");
  *out = normal_path(s);
  return Status::ok();
}

Status get_components(const Item& it, const std::string& source,
                      std::map<std::string, std::string>* out) {
  const auto* t = it.node.as_table();
  if (!t) return wrong_type(it, "a table of component = level");
  std::map<std::string, std::string> m;
  for (auto&& [k, v] : *t) {
    std::string name(k.str());
    bool known = false;
    std::string all;
    for (const char* c : log::kComponents) {
      known = known || name == c;
      all += (all.empty() ? "" : ", ") + std::string(c);
    }
    if (!known) {
      return Status::invalid(where_of(source, k.source().begin.line) +
                             "log.components: unknown component '" + name + "' (known: " + all +
                             ")");
    }
    Item sub{v, "log.components." + name, where_of(source, v.source().begin.line)};
    RECSYNC_RETURN_IF_ERROR(get_level(sub, &m[name]));
  }
  *out = std::move(m);
  return Status::ok();
}

}  // namespace recsync::config_values
