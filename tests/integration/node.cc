#include "node.h"

#include <signal.h>

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
  write_file(config_path, "node = \"fs1\"\nstate_dir = \"" + state_dir +
                              "\"\n[log]\nlevel = \"info\"\n[control]\nsocket = \"" + socket +
                              "\"\ngroup = \"" + o.control_group + "\"\n[spool]\npath = \"" +
                              spool + "\"\nsettle = \"" + o.settle + "\"\n[archive]\npath = \"" +
                              archive + "\"\nlayout = \"" + o.layout +
                              "\"\nretry_max = \"2s\"\n[retention]\n" + o.retention + o.extra);
}

Node::~Node() {
  if (daemon_ && daemon_->running()) daemon_->kill9();
  daemon_.reset();
}

void Node::start(std::map<std::string, std::string> extra_env) {
  // One log file per run, so restarts keep their history (see log()).
  std::string logf = log_path_ + "." + std::to_string(runs_++);
  auto p = Process::spawn({bin("recsyncd"), "-c", config_path}, std::move(extra_env), "", logf);
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

}  // namespace recsync::test
