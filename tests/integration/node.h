#pragma once
// One recsync node for end-to-end tests: a real tmpfs spool, a real ext4
// archive on a loop device, a state folder, and the real recsyncd binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "support/support.h"

namespace recsync::test {

struct NodeOptions {
  uint64_t spool_bytes = 256ull << 20;
  uint64_t archive_bytes = 256ull << 20;
  std::string settle = "300ms";
  std::string layout = "date";
  std::string control_group = "";
  std::string extra;  // appended TOML (whole sections)
  std::string retention = "keep = \"15d\"\ninterval = \"1h\"\npace = 0\n";
};

class Node {
 public:
  // Mounts the filesystems and writes the config. Root only.
  explicit Node(const NodeOptions& o = {});
  ~Node();

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
  std::unique_ptr<TmpfsMount> spool_mount_;
  std::unique_ptr<Ext4Image> archive_mount_;
  std::unique_ptr<Process> daemon_;
  int runs_ = 0;
};

// Checks that every manifest entry is in `archive` exactly once (matched by
// file name, any folder) with the same size and hash.
void expect_archived_exactly_once(const std::vector<ManifestEntry>& manifest,
                                  const std::map<std::string, FileInfo>& archive);

}  // namespace recsync::test
