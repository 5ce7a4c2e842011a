#pragma once
// One recsync node for end-to-end tests: a real tmpfs spool, a real ext4
// archive on a loop device, a state folder, and the real recsyncd binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/support.h"

namespace recsync::test {

// One [[peer]] block of a node's config.
struct PeerSpec {
  std::string name;
  std::string address;      // "host:port"
  std::string fingerprint;  // "sha256:<hex>", from the peer's Node::fingerprint()
};

struct NodeOptions {
  std::string name = "fs1";  // `node =`
  uint64_t spool_bytes = 256ull << 20;
  uint64_t archive_bytes = 256ull << 20;
  std::string settle = "300ms";
  std::string layout = "date";
  std::string control_group = "";
  std::string extra;  // appended TOML (whole sections)
  std::string retention = "keep = \"15d\"\ninterval = \"1h\"\npace = 0\n";
  // [metrics] listen: a free port by default (status "metrics.port" tells
  // which), so nodes never fight over the default 9465; "" = off.
  std::string metrics_listen = "127.0.0.1:0";
  // Replication. With listen empty and no peers the config has no
  // [replication] section (as before replication existed).
  std::string listen;     // replication.listen, e.g. "127.0.0.1:0"
  std::string bandwidth;  // replication.bandwidth, e.g. "20MB/s"; "" = default
  std::string schedule;   // replication.schedule; "" = none
  std::vector<PeerSpec> peers;
  // Prepended to the recsyncd command line, e.g. {"ip", "netns", "exec", "ns1"}.
  std::vector<std::string> exec_prefix;
};

class Node {
 public:
  // Mounts the filesystems and writes the config. Root only.
  explicit Node(const NodeOptions& o = {});
  ~Node();

  // The options the config was written from; change them, then
  // write_config() (takes effect at the next start() or SIGHUP).
  NodeOptions& options() { return opts_; }
  void write_config();
  // Replaces the [[peer]] blocks and rewrites the config.
  void set_peers(std::vector<PeerSpec> peers);
  // This node's certificate fingerprint ("sha256:<64 hex>"): `recsync -c
  // CONF keygen` when state_dir has no key yet, then `recsync -c CONF id`.
  // "" (and a test failure) on error.
  std::string fingerprint();
  // The peers[] entry named `peer` from a status snapshot (null if absent).
  static nlohmann::json peer_of(const nlohmann::json& status, const std::string& peer);
  // peer_of(status(), peer).
  nlohmann::json peer_status(const std::string& peer) { return peer_of(status(), peer); }
  // Its "state" ("connected", "connecting", "backoff", "refused"); "" when
  // the daemon does not answer or has no such peer.
  std::string peer_state(const std::string& peer) {
    nlohmann::json p = peer_status(peer);
    return p.is_object() && p.contains("state") && p["state"].is_string()
               ? p["state"].get<std::string>()
               : std::string();
  }
  // replication.listen_port from status (0 when unknown).
  uint16_t listen_port();
  // "127.0.0.1:PORT" of the metrics endpoint from status ("" when off or unknown).
  std::string metrics_address();

  // Starts recsyncd and waits until it answers `status` (bounded).
  void start(std::map<std::string, std::string> extra_env = {});
  // SIGTERM; expects exit 0 within a few seconds.
  void stop();
  void kill9();
  bool running() { return daemon_ && daemon_->running(); }
  Process* process() { return daemon_.get(); }

  // `recsync status --json`; null json when the daemon does not answer.
  nlohmann::json status();
  // Runs the CLI with the node's socket: recsync --socket S <args...>.
  RunResult cli(std::vector<std::string> args, const std::string& as_user = "");
  // Runs recsync-loadgen into the spool with the given extra arguments.
  RunResult loadgen(std::vector<std::string> args, std::chrono::milliseconds timeout = 120s);

  // Regular files in spool / archive that are recordings (no temps).
  size_t spool_count();
  std::map<std::string, FileInfo> archive_recordings();
  // Every run's stderr, concatenated.
  std::string log() {
    std::string all;
    for (int i = 0; i < runs_; ++i) all += read_file(log_path_ + "." + std::to_string(i));
    return all;
  }

  std::string spool, archive, state_dir, socket, config_path, log_path_;
  TempDir dir;

 private:
  NodeOptions opts_;
  std::unique_ptr<TmpfsMount> spool_mount_;
  std::unique_ptr<Ext4Image> archive_mount_;
  std::unique_ptr<Process> daemon_;
  int runs_ = 0;
};

// Checks that every manifest entry is in `archive` exactly once (matched by
// file name, any folder) with the same size and hash.
// Two replicating nodes "fs1" and "fs2" on 127.0.0.1 (free ports), each
// pinning the other's fingerprint. The constructor mounts, writes the
// configs, creates both identities and writes the [[peer]] blocks; start()
// starts both and waits until each shows the other "connected".
struct PairOptions {
  NodeOptions base;        // name, listen and peers are set by Pair
  std::string bandwidth1;  // fs1's replication.bandwidth ("" = default)
  std::string bandwidth2;
  std::string host = "127.0.0.1";         // fs1's listen address (and fs2's unless host2)
  std::string host2;                      // fs2's listen address; "" = host
  uint16_t port1 = 0, port2 = 0;          // 0 = a free port on 127.0.0.1
  std::vector<std::string> exec1, exec2;  // NodeOptions::exec_prefix of each
};

class Pair {
 public:
  explicit Pair(const PairOptions& o = {});
  // Starts both daemons and waits (bounded) until both peers are connected.
  void start(std::chrono::milliseconds timeout = 30s);
  // True once both nodes show their peer "connected" (polls until timeout).
  bool wait_connected(std::chrono::milliseconds timeout);
  Node& node(int i) { return i == 0 ? *fs1 : *fs2; }

  std::unique_ptr<Node> fs1, fs2;
  std::string fp1, fp2;
  uint16_t port1 = 0, port2 = 0;
};

void expect_archived_exactly_once(const std::vector<ManifestEntry>& manifest,
                                  const std::map<std::string, FileInfo>& archive);

// ----- helpers shared by the replication and backfill tests -----

// A number at a path of keys in a status document; -1 when absent or not a
// number (so that "== 0" cannot pass on a missing field).
int64_t num(const nlohmann::json& j, std::initializer_list<const char*> path);
// replication.queue.files from status (-1 when the daemon does not answer).
int64_t queue_files(Node& n);
// Archive files with a hidden component (partials, temps): none must remain.
std::vector<std::string> hidden_files(Node& n);
// The same relative paths with the same size and hash on both nodes.
void expect_same_archives(Node& a, Node& b);
// recsync-loadgen into n's spool, in the background.
std::unique_ptr<Process> spawn_loadgen(Node& n, std::vector<std::string> args);
// Lines of log holding both a and b.
size_t count_lines_with(const std::string& log, const std::string& a, const std::string& b);
// Every node has archived everything it recorded, both queues are empty and
// both archives hold `want` recordings.
bool converged(Pair& p, size_t want);
// The end of n's log, for failure messages.
std::string log_tail(Node& n, size_t bytes = 6000);
// Publishes a finished recording into n's spool the way FreeSWITCH's
// move-in does: written under a hidden name, then renamed (IN_MOVED_TO).
void record(Node& n, const std::string& rel, const std::string& content);
// Spool, archive, replication and peers of both nodes, for failure messages.
std::string describe(Pair& p);
// Writes `size` pseudo-random bytes (incompressible, no repeated blocks).
void write_random_file(const std::string& path, uint64_t size, uint64_t seed);

}  // namespace recsync::test
