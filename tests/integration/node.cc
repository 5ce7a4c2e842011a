#include "node.h"

#include <signal.h>

#include <fstream>
#include <random>
#include <set>

#include "recsync/env.h"
#include "recsync/names.h"

namespace recsync::test {

Node::Node(const NodeOptions& o) {
  spool = dir.sub("spool");
  archive = dir.sub("archive");
  state_dir = dir.sub("state");
  socket = dir.sub("ctl.sock");
  config_path = dir.sub("recsyncd.conf");
  log_path_ = dir.sub("recsyncd.log");
  auto t = TmpfsMount::make(spool, o.spool_bytes);
  if (!t)
    ADD_FAILURE() << t.status().to_string();
  else
    spool_mount_ = std::move(t).value();
  auto e = Ext4Image::make(archive, o.archive_bytes);
  if (!e)
    ADD_FAILURE() << e.status().to_string();
  else
    archive_mount_ = std::move(e).value();
  opts_ = o;
  write_config();
}

void Node::write_config() {
  const NodeOptions& o = opts_;
  std::string c = "node = \"" + o.name + "\"\nstate_dir = \"" + state_dir +
                  "\"\n[log]\nlevel = \"info\"\n[control]\nsocket = \"" + socket +
                  "\"\ngroup = \"" + o.control_group + "\"\n[spool]\npath = \"" + spool +
                  "\"\nsettle = \"" + o.settle + "\"\n[archive]\npath = \"" + archive +
                  "\"\nlayout = \"" + o.layout + "\"\nretry_max = \"2s\"\n[retention]\n" +
                  o.retention + o.extra + "\n[metrics]\nlisten = \"" + o.metrics_listen + "\"\n";
  if (!o.listen.empty() || !o.peers.empty() || !o.bandwidth.empty()) {
    c += "[replication]\n";
    if (!o.listen.empty()) c += "listen = \"" + o.listen + "\"\n";
    if (!o.bandwidth.empty()) c += "bandwidth = \"" + o.bandwidth + "\"\n";
    if (!o.schedule.empty()) c += "schedule = \"" + o.schedule + "\"\n";
    for (const PeerSpec& p : o.peers) {
      c += "[[peer]]\nname = \"" + p.name + "\"\naddress = \"" + p.address +
           "\"\nfingerprint = \"" + p.fingerprint + "\"\n";
    }
  }
  write_file(config_path, c);
}

void Node::set_peers(std::vector<PeerSpec> peers) {
  opts_.peers = std::move(peers);
  write_config();
}

std::string Node::fingerprint() {
  if (!file_exists(state_dir + "/node.key")) {
    RunResult k = run({bin("recsync"), "-c", config_path, "keygen"});
    if (k.exit_code != 0) {
      ADD_FAILURE() << "recsync keygen failed (" << k.exit_code << "): " << k.err;
      return "";
    }
  }
  RunResult r = run({bin("recsync"), "-c", config_path, "id"});
  std::string fp = r.out;
  while (!fp.empty() && (fp.back() == '\n' || fp.back() == '\r')) fp.pop_back();
  if (r.exit_code != 0 || fp.rfind("sha256:", 0) != 0 || fp.size() != 7 + 64) {
    ADD_FAILURE() << "recsync id failed (" << r.exit_code << "): " << r.out << r.err;
    return "";
  }
  return fp;
}

nlohmann::json Node::peer_of(const nlohmann::json& s, const std::string& peer) {
  if (!s.is_object() || !s.contains("peers") || !s["peers"].is_array()) return nullptr;
  for (const auto& p : s["peers"])
    if (p.value("name", "") == peer) return p;
  return nullptr;
}

uint16_t Node::listen_port() {
  nlohmann::json s = status();
  if (!s.is_object() || !s.contains("replication") || !s["replication"].is_object()) return 0;
  const auto& p = s["replication"]["listen_port"];
  return p.is_number_unsigned() ? p.get<uint16_t>() : 0;
}

std::string Node::metrics_address() {
  nlohmann::json s = status();
  if (!s.is_object() || !s.contains("metrics") || !s["metrics"].is_object()) return "";
  const auto& a = s["metrics"]["address"];
  return a.is_string() ? a.get<std::string>() : std::string();
}

Node::~Node() {
  if (daemon_ && daemon_->running()) daemon_->kill9();
  daemon_.reset();
}

void Node::start(std::map<std::string, std::string> extra_env) {
  // One log file per run, so restarts keep their history (see log()).
  std::string logf = log_path_ + "." + std::to_string(runs_++);
  std::vector<std::string> argv = opts_.exec_prefix;
  argv.insert(argv.end(), {bin("recsyncd"), "-c", config_path});
  auto p = Process::spawn(std::move(argv), std::move(extra_env), "", logf);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  daemon_ = std::move(p).value();
  ASSERT_TRUE(wait_until([&] { return !status().is_null() || !daemon_->running(); }, 20s))
      << "recsyncd did not answer status";
  ASSERT_TRUE(daemon_->running()) << "recsyncd exited at start";
}

void Node::stop() {
  if (!daemon_) return;
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(15s), 0) << "recsyncd did not exit cleanly on SIGTERM";
  daemon_.reset();
}

void Node::kill9() {
  if (!daemon_) return;
  daemon_->kill9();
  daemon_.reset();
}

nlohmann::json Node::status() {
  auto r = run({bin("recsync"), "--socket", socket, "status", "--json"}, 10s);
  if (r.exit_code != 0) return nullptr;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

RunResult Node::cli(std::vector<std::string> args, const std::string& as_user) {
  std::vector<std::string> argv = {bin("recsync"), "--socket", socket};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, 30s, as_user);
}

RunResult Node::loadgen(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {bin("recsync-loadgen"), "--dir", spool};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, timeout);
}

size_t Node::spool_count() {
  size_t n = 0;
  for (auto& [rel, fi] : list_tree(spool))
    if (!is_hidden_name(path_basename(rel))) n++;
  return n;
}

std::map<std::string, FileInfo> Node::archive_recordings() {
  std::map<std::string, FileInfo> out;
  for (auto& [rel, fi] : list_tree(archive))
    if (rel.rfind("lost+found", 0) != 0) out.emplace(rel, fi);
  return out;
}

Pair::Pair(const PairOptions& o) {
  port1 = o.port1 ? o.port1 : free_tcp_port();
  port2 = o.port2 ? o.port2 : free_tcp_port();
  for (int i = 0; i < 10 && port2 == port1 && !o.port2; ++i) port2 = free_tcp_port();
  NodeOptions a = o.base, b = o.base;
  a.name = "fs1";
  b.name = "fs2";
  a.listen = o.host + ":" + std::to_string(port1);
  b.listen = (o.host2.empty() ? o.host : o.host2) + ":" + std::to_string(port2);
  a.exec_prefix = o.exec1;
  b.exec_prefix = o.exec2;
  a.bandwidth = o.bandwidth1;
  b.bandwidth = o.bandwidth2;
  a.peers.clear();
  b.peers.clear();
  fs1 = std::make_unique<Node>(a);
  fs2 = std::make_unique<Node>(b);
  fp1 = fs1->fingerprint();
  fp2 = fs2->fingerprint();
  fs1->set_peers({{"fs2", b.listen, fp2}});
  fs2->set_peers({{"fs1", a.listen, fp1}});
}

void Pair::start(std::chrono::milliseconds timeout) {
  fs1->start();
  fs2->start();
  for (Node* n : {fs1.get(), fs2.get()}) {
    nlohmann::json s = n->status();
    ASSERT_TRUE(s.is_object() && s.contains("replication") && s["replication"].is_object() &&
                s["replication"].value("enabled", false) == true)
        << n->options().name << ": status shows no \"replication\": {\"enabled\": true} (is the "
        << "replication engine in this build?): " << s.dump();
  }
  ASSERT_TRUE(wait_connected(timeout))
      << "fs1: " << fs1->status().dump() << "\nfs2: " << fs2->status().dump();
}

bool Pair::wait_connected(std::chrono::milliseconds timeout) {
  return wait_until(
      [&] {
        return fs1->peer_state("fs2") == "connected" && fs2->peer_state("fs1") == "connected";
      },
      timeout, 100ms);
}

void expect_archived_exactly_once(const std::vector<ManifestEntry>& manifest,
                                  const std::map<std::string, FileInfo>& archive) {
  std::map<std::string, std::vector<std::pair<std::string, FileInfo>>> by_name;
  for (auto& [rel, fi] : archive) by_name[path_basename(rel)].push_back({rel, fi});
  size_t bad = 0;
  for (auto& m : manifest) {
    auto it = by_name.find(path_basename(m.path));
    if (it == by_name.end()) {
      if (bad++ < 10) ADD_FAILURE() << "missing from the archive: " << m.path;
      continue;
    }
    if (it->second.size() != 1) {
      if (bad++ < 10)
        ADD_FAILURE() << m.path << " is in the archive " << it->second.size() << " times";
      continue;
    }
    const FileInfo& fi = it->second[0].second;
    if (fi.size != m.size || fi.hash != m.hash) {
      if (bad++ < 10)
        ADD_FAILURE() << m.path << " differs: archive " << fi.size << " " << fi.hash << ", written "
                      << m.size << " " << m.hash;
    }
  }
  EXPECT_EQ(bad, 0u);
  // Nothing but recordings under final names: every archive file is one of them.
  std::set<std::string> names;
  for (auto& m : manifest) names.insert(path_basename(m.path));
  for (auto& [rel, fi] : archive)
    EXPECT_TRUE(names.count(path_basename(rel))) << "unexpected file in the archive: " << rel;
}

// ----- helpers shared by the replication and backfill tests -----

using json = nlohmann::json;

// A number at a path of keys in a status document; -1 when absent or not a
// number (so that "== 0" cannot pass on a missing field).
int64_t num(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return -1;
    cur = &(*cur)[k];
  }
  return cur->is_number() ? cur->get<int64_t>() : -1;
}

int64_t queue_files(Node& n) { return num(n.status(), {"replication", "queue", "files"}); }

// Archive files with a hidden component (partials, temps): none must remain.
std::vector<std::string> hidden_files(Node& n) {
  std::vector<std::string> out;
  for (auto& [rel, fi] : n.archive_recordings()) {
    size_t start = 0;
    for (;;) {
      size_t slash = rel.find('/', start);
      if (is_hidden_name(rel.substr(start, slash == std::string::npos ? slash : slash - start))) {
        out.push_back(rel);
        break;
      }
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
  }
  return out;
}

// The same relative paths with the same size and hash on both nodes.
void expect_same_archives(Node& a, Node& b) {
  auto ta = a.archive_recordings(), tb = b.archive_recordings();
  size_t shown = 0;
  for (auto& [rel, fi] : ta) {
    auto it = tb.find(rel);
    if (it == tb.end()) {
      if (shown++ < 10) ADD_FAILURE() << rel << " is on fs1 only";
    } else if (!(it->second == fi)) {
      if (shown++ < 10)
        ADD_FAILURE() << rel << " differs: fs1 " << fi.size << " " << fi.hash << ", fs2 "
                      << it->second.size << " " << it->second.hash;
    }
  }
  for (auto& [rel, fi] : tb)
    if (!ta.count(rel) && shown++ < 10) ADD_FAILURE() << rel << " is on fs2 only";
  EXPECT_EQ(shown, 0u) << "archives differ (" << ta.size() << " vs " << tb.size() << " files)";
}

std::unique_ptr<Process> spawn_loadgen(Node& n, std::vector<std::string> args) {
  std::vector<std::string> argv = {bin("recsync-loadgen"), "--dir", n.spool};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = Process::spawn(argv, {}, "/dev/null", "");
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return p ? std::move(p).value() : nullptr;
}

size_t count_lines_with(const std::string& log, const std::string& a, const std::string& b) {
  size_t n = 0, pos = 0;
  while (pos < log.size()) {
    size_t end = log.find('\n', pos);
    if (end == std::string::npos) end = log.size();
    std::string_view line(log.data() + pos, end - pos);
    if (line.find(a) != std::string_view::npos && line.find(b) != std::string_view::npos) n++;
    pos = end + 1;
  }
  return n;
}

// Every node has archived everything it recorded, both queues are empty and
// both archives hold `want` recordings.
bool converged(Pair& p, size_t want) {
  for (int i = 0; i < 2; ++i) {
    Node& n = p.node(i);
    if (n.spool_count() != 0 || queue_files(n) != 0) return false;
    if (n.archive_recordings().size() < want) return false;
  }
  return true;
}

std::string log_tail(Node& n, size_t bytes) {
  std::string l = n.log();
  return l.size() > bytes ? l.substr(l.size() - bytes) : l;
}

std::string describe(Pair& p) {
  std::string s;
  for (int i = 0; i < 2; ++i) {
    Node& n = p.node(i);
    json st = n.status();
    s += n.options().name + ": spool " + std::to_string(n.spool_count()) + ", archive " +
         std::to_string(n.archive_recordings().size()) + ", replication " +
         (st.is_object() && st.contains("replication") ? st["replication"].dump() : "?") +
         ", peers " + (st.is_object() && st.contains("peers") ? st["peers"].dump() : "?") + "\n";
  }
  return s;
}

// Writes `size` pseudo-random bytes (incompressible, no repeated blocks).
void write_random_file(const std::string& path, uint64_t size, uint64_t seed) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  ASSERT_TRUE(f.good()) << path;
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> buf(1 << 17);  // 1 MiB
  for (uint64_t done = 0; done < size;) {
    for (auto& w : buf) w = rng();
    uint64_t n = std::min<uint64_t>(size - done, buf.size() * 8);
    f.write(reinterpret_cast<const char*>(buf.data()), std::streamsize(n));
    done += n;
  }
  f.close();
  ASSERT_TRUE(f.good()) << path;
}

void record(Node& n, const std::string& rel, const std::string& content) {
  const std::string tmp = n.spool + "/.writing-" + std::to_string(std::hash<std::string>{}(rel));
  write_file(tmp, content);
  std::filesystem::create_directories(std::filesystem::path(n.spool + "/" + rel).parent_path());
  std::filesystem::rename(tmp, n.spool + "/" + rel);
}

}  // namespace recsync::test
