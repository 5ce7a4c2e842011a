#include "recsync/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <map>

#include "config/values.h"
#include "recsync/log.h"

namespace recsync {
namespace {

using namespace config_values;

constexpr size_t kMaxConfigBytes = 1 << 20;

using ApplyFn = Status (*)(const Item&, const std::string& source, Config&);
using PeerApplyFn = Status (*)(const Item&, PeerConfig&);

// The schema: every key the parser accepts, in documentation order. The
// parser and config_keys() both read this table, so they cannot disagree.
struct Field {
  ConfigKey key;
  ApplyFn apply;           // keys of the top level and of plain sections
  PeerApplyFn peer_apply;  // keys of [[peer]]
};

#define APPLY(body)                                                     \
  +[](const Item& it, const std::string& source, Config& c) -> Status { \
    (void)source;                                                       \
    body;                                                               \
  }
#define PEER(body) +[](const Item& it, PeerConfig& p) -> Status { body; }

const Field kFields[] = {
    {{"node", "", "this node's name, used by peers and in status; default: the short hostname"},
     APPLY(return get_name(it, &c.node)),
     nullptr},
    {{"state_dir", "\"/var/lib/recsync\"",
      "durable state: database, TLS key and certificate, partial transfers"},
     APPLY(return get_abs_path(it, false, &c.state_dir)),
     nullptr},

    {{"log.level", "\"info\"", "default log level: trace, debug, info, warn, error or off"},
     APPLY(return get_level(it, &c.log.level)),
     nullptr},
    {{"log.components", "{}",
      "per-component levels, e.g. { watch = \"debug\" }; components: daemon, watch, archive, "
      "retention, state, control, peer, replication, delta, backfill, objstore, cli, metrics"},
     APPLY(return get_components(it, source, &c.log.components)),
     nullptr},

    {{"control.socket", "\"/run/recsync/recsyncd.sock\"",
      "unix socket where the recsync CLI finds the daemon"},
     APPLY(return get_socket_path(it, &c.control.socket)),
     nullptr},
    {{"control.group", "\"recsync\"",
      "group allowed to use the control socket; \"\" = root and the daemon's user only"},
     APPLY(return get_string(it, &c.control.group)),
     nullptr},

    {{"spool.path", "", "folder the media server records into (required)"},
     APPLY(return get_abs_path(it, false, &c.spool.path)),
     nullptr},
    {{"spool.include", "[\"*.wav\"]",
      "glob patterns of recordings, matched against the file name (or the relative path "
      "when the pattern has a '/')"},
     APPLY(return get_string_list(it, &c.spool.include)),
     nullptr},
    {{"spool.exclude", "[]", "glob patterns never treated as recordings"},
     APPLY(return get_string_list(it, &c.spool.exclude)),
     nullptr},
    {{"spool.settle", "\"500ms\"",
      "quiet time after the writer closes a file before it is finished"},
     APPLY(return get_duration(it, Millis{0}, &c.spool.settle)),
     nullptr},
    {{"spool.open_check", "\"auto\"", "how a live writer is detected: auto, lease, proc or none"},
     APPLY(return get_choice(it, {"auto", "lease", "proc", "none"}, &c.spool.open_check)),
     nullptr},
    {{"spool.usage_warn", "70", "spool usage percentage (1-100) that raises a warning"},
     APPLY(return get_int(it, 1, 100, &c.spool.usage_warn_pct)),
     nullptr},
    {{"spool.usage_crit", "90",
      "spool usage percentage (1-100) that raises a critical alarm; above usage_warn"},
     APPLY(return get_int(it, 1, 100, &c.spool.usage_crit_pct)),
     nullptr},

    {{"archive.path", "", "long-term archive folder (required)"},
     APPLY(return get_abs_path(it, false, &c.archive.path)),
     nullptr},
    {{"archive.layout", "\"date\"", "\"date\" (YYYY/MM/DD/ folders, UTC) or \"flat\""},
     APPLY(return get_choice(it, {"date", "flat"}, &c.archive.layout)),
     nullptr},
    {{"archive.workers", "2", "parallel archive copies (1-16)"},
     APPLY(return get_int(it, 1, 16, &c.archive.workers)),
     nullptr},
    {{"archive.retry_max", "\"1m\"", "longest wait between retries of a failing copy"},
     APPLY(return get_duration(it, Millis{1}, &c.archive.retry_max)),
     nullptr},

    {{"retention.keep", "\"15d\"", "age after which archived recordings are pruned; \"0\" = never"},
     APPLY(return get_duration(it, Millis{0}, &c.retention.keep)),
     nullptr},
    {{"retention.interval", "\"1h\"", "time between retention passes (at least 1s)"},
     APPLY(return get_duration(it, Millis{1000}, &c.retention.interval)),
     nullptr},
    {{"retention.pace", "200", "deletions per second; 0 = unpaced"},
     APPLY(return get_int(it, 0, 1'000'000, &c.retention.pace)),
     nullptr},
    {{"retention.tmp_grace", "\"1d\"", "abandoned temporary files older than this are removed"},
     APPLY(return get_duration(it, Millis{1}, &c.retention.tmp_grace)),
     nullptr},
    {{"retention.clock_tolerance", "\"1h\"",
      "pruning stops when the newest recording is this far in the future, or a peer's clock "
      "this far off (a clock went wrong)"},
     APPLY(return get_duration(it, Millis{0}, &c.retention.clock_tolerance)),
     nullptr},
    {{"retention.audit_log", "", "file listing every deletion; default: <state_dir>/audit.log"},
     APPLY(return get_abs_path(it, true, &c.retention.audit_log)),
     nullptr},

    {{"replication.listen", "\"0.0.0.0:7373\"",
      "address the peer connects to (host:port or [v6]:port)"},
     APPLY(return get_address(it, true, false, &c.replication.listen)),
     nullptr},
    {{"replication.bandwidth", "\"50MB/s\"",
      "cap on replication traffic, e.g. \"50MB/s\", \"10MiB/s\"; \"0\" = no cap"},
     APPLY(return get_bandwidth(it, &c.replication.bandwidth_bps)),
     nullptr},
    {{"replication.schedule", "\"\"",
      "cap by local time of day, \"HH:MM-HH:MM=<rate>,...\" (e.g. \"08:00-20:00=20MB/s\"); "
      "minutes not covered use replication.bandwidth; \"\" = none"},
     APPLY(return get_schedule(it, &c.replication.schedule, &c.replication.schedule_text)),
     nullptr},

    {{"peer.name", "", "the peer's node name (required, unique)"},
     nullptr,
     PEER(return get_name(it, &p.name))},
    {{"peer.address", "", "where to reach the peer: host:port or [v6]:port (required)"},
     nullptr,
     PEER(return get_address(it, false, false, &p.address))},
    {{"peer.fingerprint", "",
      "the peer's certificate fingerprint, \"sha256:...\" as printed by `recsync id` there "
      "(required)"},
     nullptr,
     PEER(return get_fingerprint(it, &p.fingerprint))},

    {{"metrics.listen", "\"127.0.0.1:9465\"", "Prometheus metrics address; \"\" disables"},
     APPLY(return get_address(it, true, true, &c.metrics.listen)),
     nullptr},

    {{"scrub.interval", "\"7d\"",
      "time between background scrub passes (re-reading the archive against the stored "
      "hashes); \"0\" = none (`recsync verify` still runs one)"},
     APPLY(return get_duration(it, Millis{0}, &c.scrub.interval)),
     nullptr},
    {{"scrub.rate", "\"20MB/s\"", "how fast a scrub pass reads, e.g. \"20MB/s\"; \"0\" = unpaced"},
     APPLY(return get_bandwidth(it, &c.scrub.rate_bps)),
     nullptr},
    {{"scrub.repair", "true",
      "replace a damaged recording with a peer's good copy (pulled over the backfill lane)"},
     APPLY(return get_bool(it, &c.scrub.repair)),
     nullptr},

    {{"object_store.endpoint", "",
      "S3 endpoint, http://host:port or https://host[:port] (required in [object_store]); "
      "without an [object_store] section there is no object-store tier"},
     APPLY(return get_endpoint(it, &c.object_store.endpoint)),
     nullptr},
    {{"object_store.bucket", "", "bucket the recordings go to (required in [object_store])"},
     APPLY(return get_bucket(it, &c.object_store.bucket)),
     nullptr},
    {{"object_store.region", "\"us-east-1\"", "region the requests are signed for (SigV4)"},
     APPLY(return get_string(it, &c.object_store.region)),
     nullptr},
    {{"object_store.prefix", "\"\"",
      "key prefix; a recording's key is prefix + node + \"/\" + its archive path"},
     APPLY(return get_key_prefix(it, &c.object_store.prefix)),
     nullptr},
    {{"object_store.ca_file", "\"\"",
      "https: PEM file of the CAs to verify the store against; \"\" = the system store"},
     APPLY(return get_abs_path(it, true, &c.object_store.ca_file)),
     nullptr},
    {{"object_store.credentials", "",
      "access and secret key: a file only the daemon can read (mode 0600), or "
      "\"systemd:NAME\" for a LoadCredential= credential (required in [object_store])"},
     APPLY(return get_credentials_ref(it, &c.object_store.credentials)),
     nullptr},
    {{"object_store.keep_local", "",
      "local copies of recordings older than this go once their object is verified in the "
      "store (the hot window); at most retention.keep; default: retention.keep"},
     APPLY(Millis v{0}; RECSYNC_RETURN_IF_ERROR(get_duration(it, Millis{1000}, &v));
           c.object_store.keep_local = v; return Status::ok()),
     nullptr},
    {{"object_store.keep_fetched", "\"1d\"",
      "a local copy that arrived late (fetched back with `recsync fetch`, or from a peer after an "
      "outage) stays at least this long on this disk, whatever keep_local says"},
     APPLY(return get_duration(it, Millis{0}, &c.object_store.keep_fetched)),
     nullptr},
    {{"object_store.object_lock", "false",
      "set an Object Lock legal hold on the objects of held recordings (the bucket must have "
      "Object Lock enabled)"},
     APPLY(return get_bool(it, &c.object_store.object_lock)),
     nullptr},
    {{"object_store.part_size", "\"16MiB\"", "multipart part size, 5MiB to 5GiB"},
     APPLY(return get_size(it, 5ull << 20, 5ull << 30, &c.object_store.part_size)),
     nullptr},
    {{"object_store.multipart_threshold", "\"64MiB\"",
      "recordings this large or larger are uploaded in parts (resumable), 5MiB to 5GiB"},
     APPLY(return get_size(it, 5ull << 20, 5ull << 30, &c.object_store.multipart_threshold)),
     nullptr},
    {{"object_store.uploads", "2",
      "uploads in parallel (1-8), each on its own connection; the order stays live first"},
     APPLY(return get_int(it, 1, 8, &c.object_store.uploads)),
     nullptr},
    {{"object_store.upload_warn", "\"15m\"",
      "a warning alarm (and `recsync status --check` exit 1) when the oldest upload waits longer"},
     APPLY(return get_duration(it, Millis{1000}, &c.object_store.upload_warn)),
     nullptr},
    {{"object_store.retry_max", "\"5m\"",
      "longest wait between attempts while the store is down or refusing"},
     APPLY(return get_duration(it, Millis{1000}, &c.object_store.retry_max)),
     nullptr},
};

#undef APPLY
#undef PEER

std::string section_of(const char* name) {
  const char* dot = std::strchr(name, '.');
  return dot ? std::string(name, dot) : std::string();
}
std::string leaf_of(const char* name) {
  const char* dot = std::strchr(name, '.');
  return dot ? std::string(dot + 1) : std::string(name);
}

const Field* find_field(const std::string& section, const std::string& key) {
  for (const Field& f : kFields) {
    if (section_of(f.key.name) == section && leaf_of(f.key.name) == key) return &f;
  }
  return nullptr;
}

bool is_section(const std::string& name) {
  if (name.empty()) return false;
  for (const Field& f : kFields) {
    if (section_of(f.key.name) == name) return true;
  }
  return false;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The closest candidate within two edits, or "".
std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_d = 3;
  for (const std::string& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_d && d < c.size()) {
      best = c;
      best_d = d;
    }
  }
  return best;
}

std::vector<std::string> keys_in(const std::string& section) {
  std::vector<std::string> out;
  for (const Field& f : kFields) {
    if (section_of(f.key.name) == section) out.push_back(leaf_of(f.key.name));
  }
  return out;
}

std::vector<std::string> section_names() {
  std::vector<std::string> out;
  for (const Field& f : kFields) {
    std::string s = section_of(f.key.name);
    if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}

Result<std::string> short_hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return Status::from_errno(errno, "gethostname");
  std::string h(buf);
  return h.substr(0, h.find('.'));
}

// "'/a/b' is inside '/a'" when `inner` is `outer` or below it, lexically.
bool is_inside(const std::string& inner, const std::string& outer) {
  if (outer == "/") return true;
  return inner == outer ||
         (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
          inner[outer.size()] == '/');
}

class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  Result<Config> run(const toml::table& root);

 private:
  std::string at(uint32_t line) const { return where_of(source_, line); }
  void error(uint32_t line, std::string msg) { errors_.push_back({line, std::move(msg)}); }
  void error(uint32_t line, const Status& s) { errors_.push_back({line, s.message()}); }
  void unknown_key(const toml::key& k, const std::string& section, bool is_table);
  void walk_section(const std::string& section, const toml::table& t);
  void walk_peers(const toml::key& k, const toml::node& v);
  void check_required(const char* name);
  // Rules between keys (after every key parsed without error).
  Status check_node();
  void check_peer_names();
  void check_watermarks();
  void check_paths();
  void check_object_store();

  std::string source_;
  Config c_;
  std::vector<std::pair<uint32_t, std::string>> errors_;
  std::map<std::string, uint32_t> line_of_;       // key name -> line of its value
  std::map<std::string, uint32_t> section_line_;  // section -> line of its header
  std::vector<uint32_t> peer_name_lines_;
};

void Parser::unknown_key(const toml::key& k, const std::string& section, bool is_table) {
  std::string name(k.str());
  uint32_t line = k.source().begin.line;
  if (section.empty() && is_table) {
    std::string hint = closest(name, section_names());
    error(line, at(line) + "unknown section [" + name + "]" +
                    (hint.empty() ? "" : " (did you mean [" + hint + "]?)"));
    return;
  }
  std::string hint = closest(name, keys_in(section));
  std::string in = section.empty()     ? ""
                   : section == "peer" ? " in [[peer]]"
                                       : " in [" + section + "]";
  error(line, at(line) + "unknown key '" + name + "'" + in +
                  (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
}

void Parser::walk_section(const std::string& section, const toml::table& t) {
  for (auto&& [k, v] : t) {
    const Field* f = find_field(section, std::string(k.str()));
    if (!f) {
      unknown_key(k, section, v.is_table());
      continue;
    }
    uint32_t line = v.source().begin.line;
    Item it{v, f->key.name, at(line)};
    Status s = f->apply(it, source_, c_);
    if (!s) {
      error(line, s);
    } else {
      line_of_[f->key.name] = line;
    }
  }
}

void Parser::walk_peers(const toml::key& k, const toml::node& v) {
  uint32_t key_line = k.source().begin.line;
  const auto* arr = v.as_array();
  if (!arr) {
    error(key_line, at(key_line) + "peers are written [[peer]] (one block per peer), not " +
                        (v.is_table() ? "[peer]" : "a single value"));
    return;
  }
  for (const toml::node& el : *arr) {
    uint32_t peer_line = el.source().begin.line;
    const auto* t = el.as_table();
    if (!t) {
      error(peer_line, at(peer_line) + "peer: expected a table for each peer (got " +
                           type_name(el.type()) + ")");
      continue;
    }
    PeerConfig p;
    std::map<std::string, bool> seen;
    uint32_t name_line = peer_line;
    bool ok = true;
    for (auto&& [pk, pv] : *t) {
      const Field* f = find_field("peer", std::string(pk.str()));
      if (!f) {
        unknown_key(pk, "peer", pv.is_table());
        ok = false;
        continue;
      }
      seen[f->key.name] = true;
      uint32_t line = pv.source().begin.line;
      Status s = f->peer_apply(Item{pv, f->key.name, at(line)}, p);
      if (!s) {
        error(line, s);
        ok = false;
        continue;
      }
      if (std::string_view(f->key.name) == "peer.name") name_line = line;
    }
    // A misspelt key is reported as such, not also as a missing one.
    for (const char* req : {"peer.name", "peer.address", "peer.fingerprint"}) {
      if (ok && !seen[req]) {
        error(peer_line, at(peer_line) + "missing required key '" + leaf_of(req) + "' in [[peer]]");
        ok = false;
      }
    }
    if (ok) {
      c_.peers.push_back(std::move(p));
      peer_name_lines_.push_back(name_line);
    }
  }
}

void Parser::check_required(const char* name) {
  if (line_of_.count(name)) return;
  std::string section = section_of(name);
  auto it = section_line_.find(section);
  uint32_t line = it == section_line_.end() ? 0 : it->second;
  error(line, at(line) + "missing required key '" + leaf_of(name) + "' in [" + section + "]");
}

Status Parser::check_node() {
  if (line_of_.count("node")) return Status::ok();
  auto h = short_hostname();
  if (!h) return Status::invalid(at(0) + "node: not set and " + h.status().message());
  if (!valid_name(*h)) {
    return Status::invalid(at(0) + "node: not set and the hostname '" + *h +
                           "' is not a valid node name; set node explicitly");
  }
  c_.node = *h;
  return Status::ok();
}

void Parser::check_peer_names() {
  std::map<std::string, uint32_t> names;
  for (size_t i = 0; i < c_.peers.size(); ++i) {
    const std::string& n = c_.peers[i].name;
    uint32_t line = peer_name_lines_[i];
    if (n == c_.node) {
      error(line, at(line) + "peer.name: '" + n + "' is this node's own name (node = \"" + c_.node +
                      "\")");
    } else if (auto it = names.find(n); it != names.end()) {
      error(line, at(line) + "peer.name: duplicate peer '" + n + "' (first defined at line " +
                      std::to_string(it->second) + ")");
    } else {
      names[n] = line;
    }
  }
}

void Parser::check_watermarks() {
  if (c_.spool.usage_warn_pct < c_.spool.usage_crit_pct) return;
  uint32_t line = line_of_.count("spool.usage_warn") ? line_of_["spool.usage_warn"]
                                                     : line_of_["spool.usage_crit"];
  error(line, at(line) + "spool.usage_warn (" + std::to_string(c_.spool.usage_warn_pct) +
                  ") must be below spool.usage_crit (" + std::to_string(c_.spool.usage_crit_pct) +
                  ")");
}

void Parser::check_paths() {
  const std::string& sp = c_.spool.path;
  const std::string& ar = c_.archive.path;
  uint32_t line = line_of_["archive.path"];
  if (sp == ar) {
    error(line, at(line) + "archive.path: same folder as spool.path ('" + ar + "')");
  } else if (is_inside(ar, sp)) {
    error(line, at(line) + "archive.path: '" + ar + "' is inside spool.path '" + sp +
                    "' (they must not be nested)");
  } else if (is_inside(sp, ar)) {
    error(line, at(line) + "archive.path: '" + ar + "' contains spool.path '" + sp +
                    "' (they must not be nested)");
  }
}

// [object_store]: its required keys (when the section is there) and
// keep_local within retention.keep (a local copy never outlives retention).
void Parser::check_object_store() {
  if (!c_.object_store.enabled) return;
  for (const char* req :
       {"object_store.endpoint", "object_store.bucket", "object_store.credentials"})
    check_required(req);
  const auto& os = c_.object_store;
  const Millis keep = c_.retention.keep;
  if (os.keep_local && keep.count() > 0 && *os.keep_local > keep) {
    uint32_t line = line_of_["object_store.keep_local"];
    error(line, at(line) + "object_store.keep_local (" + format_duration(*os.keep_local) +
                    ") must not be longer than retention.keep (" + format_duration(keep) + ")");
  }
}

Result<Config> Parser::run(const toml::table& root) {
  c_.source = source_;
  for (auto&& [k, v] : root) {
    std::string name(k.str());
    uint32_t key_line = k.source().begin.line;
    if (name == "peer") {
      walk_peers(k, v);
    } else if (is_section(name)) {
      const auto* t = v.as_table();
      if (!t) {
        error(key_line, at(key_line) + "'" + name + "' must be a section ([" + name + "]), not " +
                            type_name(v.type()));
        continue;
      }
      uint32_t header = t->source().begin.line;
      section_line_[name] = header != 0 ? header : key_line;
      if (name == "object_store") c_.object_store.enabled = true;
      walk_section(name, *t);
    } else if (find_field("", name)) {
      // Top-level keys are walked as the "" section, one key at a time.
      const Field* f = find_field("", name);
      uint32_t line = v.source().begin.line;
      Status s = f->apply(Item{v, f->key.name, at(line)}, source_, c_);
      if (!s) {
        error(line, s);
      } else {
        line_of_[f->key.name] = line;
      }
    } else {
      unknown_key(k, "", v.is_table());
    }
  }

  if (errors_.empty()) {
    check_required("spool.path");
    check_required("archive.path");
  }
  if (errors_.empty()) RECSYNC_RETURN_IF_ERROR(check_node());
  if (errors_.empty()) check_peer_names();
  if (errors_.empty()) check_watermarks();
  if (errors_.empty()) check_paths();
  if (errors_.empty()) check_object_store();
  for (auto& [k, line] : line_of_) c_.lines[k] = line;
  for (auto& [k, line] : section_line_) c_.lines[k] = line;
  if (!errors_.empty()) {
    // Report the first problem in file order (toml++ tables iterate by name).
    auto first = std::min_element(errors_.begin(), errors_.end(),
                                  [](const auto& a, const auto& b) { return a.first < b.first; });
    return Status::invalid(first->second);
  }
  return std::move(c_);
}

}  // namespace

Result<Config> parse_config(const std::string& text, const std::string& source) {
  try {
    toml::table root;
    try {
      root = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
      return Status::invalid(where_of(source, e.source().begin.line) +
                             std::string(e.description()));
    }
    return Parser(source).run(root);
  } catch (const std::exception& e) {
    return Status::invalid(source + ": " + e.what());
  } catch (...) {
    return Status::invalid(source + ": unexpected error while reading the configuration");
  }
}

Result<Config> load_config(const std::string& path) {
  // Plain open(2), not Env::open_read: that refuses symlinks (O_NOFOLLOW) and
  // a symlinked config file is a normal deployment.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, "open " + path);
  std::string text;
  char buf[16384];
  Status st;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      st = Status::from_errno(errno, "read " + path);
      break;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      st = Status::invalid(path + ": too large for a configuration file (over 1 MiB)");
      break;
    }
  }
  ::close(fd);
  RECSYNC_RETURN_IF_ERROR(st);
  return parse_config(text, path);
}

std::string Config::at(const std::string& key) const {
  auto it = lines.find(key);
  if (it == lines.end()) {
    const size_t dot = key.find('.');
    if (dot != std::string::npos) it = lines.find(key.substr(0, dot));
  }
  return where_of(source, it == lines.end() ? 0 : it->second);
}

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> v;
    for (const Field& f : kFields) v.push_back(f.key);
    return v;
  }();
  return keys;
}

}  // namespace recsync
