#pragma once
// A real Ceph RADOS Gateway for tests, from Debian 12's own packages
// (ceph-mon, ceph-osd, radosgw, ceph-common; Ceph 16.2): one ceph-mon, one
// ceph-osd on memstore (in RAM) and radosgw (beast) answering S3 on
// 127.0.0.1, no ceph-mgr, everything under one temp work folder with its
// own ceph.conf, as root or not. Starting takes 1.0-1.6 s on the 2-core VM
// (startup_phases() says where it went).
//
// The test process is the daemons' parent (support.h Process: SIGKILLed
// when the spawning thread dies) and reaps them; the destructor kills them
// (SIGKILL: memstore keeps nothing worth a clean stop) and removes the work
// folder. Logs are under dir()/log while the cluster runs; a failed start
// reports their tails.
//
// Configuration choices (each was needed on Ceph 16.2.15):
// - auth none everywhere, with ms_*_mode = crc (radosgw hangs on a secure
//   msgr2 mode without cephx);
// - paxos_propose_interval 0.01 (RGW's pool creation takes ~9 s otherwise);
// - run_dir, admin_socket, log_file, mon_cluster_log_file in the work
//   folder (the mon writes under /var/log/ceph otherwise);
// - low mon_data_avail_warn/crit (a full /tmp does not stop the test mon);
// - osd_client_watch_timeout 3 s: after kill_rgw() the dead radosgw's watches
//   would hold up the next CreateBucket for 30 s;
// - RGW's garbage collection every 2 s with no minimum wait: the tails of
//   deleted objects (past the first 4 MiB) are freed in seconds, not hours,
//   so a long run does not fill the memstore;
// - one replica, 8 PGs per pool, no autoscaler (no mgr).
// HTTPS: radosgw also listens on a second port with a self-signed P-256
// certificate for 127.0.0.1 made by openssl(1); ca_file() is that cert.
//
// Thread safety: a cluster belongs to the test thread that started it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recsync/status.h"
#include "support/support.h"

namespace recsync::test {

struct RgwUser {
  std::string uid;
  std::string access_key;
  std::string secret_key;
};

class RgwCluster {
 public:
  struct Options {
    bool tls = true;  // also serve https (needs openssl(1))
    std::chrono::milliseconds start_timeout = 60s;
    // The memstore OSD's size: what the cluster can hold at once (in RAM,
    // only what is stored).
    uint64_t memstore_bytes = 4ull << 30;
  };

  // "" when every program the cluster needs is on PATH, else which are
  // missing (the reason to print when skipping).
  static std::string missing_programs(bool tls = true);

  // Starts the cluster and creates the S3 user "recsync". The error says
  // which step failed, with the tail of the relevant log.
  static Result<std::unique_ptr<RgwCluster>> start(const Options& opts);
  static Result<std::unique_ptr<RgwCluster>> start() { return start(Options{}); }
  ~RgwCluster();
  RgwCluster(const RgwCluster&) = delete;
  RgwCluster& operator=(const RgwCluster&) = delete;

  std::string endpoint() const;        // http://127.0.0.1:<port>
  std::string https_endpoint() const;  // https://127.0.0.1:<port>, "" without tls
  const std::string& ca_file() const { return ca_file_; }
  const RgwUser& user() const { return user_; }
  const std::string& dir() const { return dir_; }
  double startup_seconds() const { return startup_s_; }
  // How long each start step took: "conf+cert 0.03 s, mon 0.15 s, ...".
  const std::string& startup_phases() const { return phases_; }

  // radosgw-admin user create; keys from its JSON output.
  Result<RgwUser> create_user(const std::string& uid);
  // radosgw-admin quota set + enable, scope user: at most max_bytes stored.
  Status set_user_quota(const std::string& uid, int64_t max_bytes);
  // SIGKILLs radosgw (the cluster stays up); restart_rgw() starts it again
  // on the same ports and waits until it answers.
  void kill_rgw();
  Status restart_rgw();

 private:
  RgwCluster() = default;
  Status write_conf();
  Status start_mon();
  Status start_osd();
  Status start_rgw();
  Status wait_rgw_ready();
  Status make_cert();
  // Runs a ceph tool with --conf, bounded.
  RunResult tool(std::vector<std::string> argv, std::chrono::milliseconds timeout = 30s);
  std::string log_tail(const std::string& name) const;

  Options opts_;
  std::string dir_, conf_, fsid_, ca_file_;
  uint16_t mon_port_ = 0, rgw_port_ = 0, rgw_tls_port_ = 0;
  std::unique_ptr<Process> mon_, osd_, rgw_;
  RgwUser user_;
  double startup_s_ = 0;
  std::string phases_;
};

// One cluster shared by every test of a binary that asks for it: started by
// the first get(), stopped by TearDown() at the end of the run (register it
// with ::testing::AddGlobalTestEnvironment) or, failing that, at exit.
class SharedRgw : public ::testing::Environment {
 public:
  // The cluster, or nullptr with *why set: programs missing (skip) or the
  // start failed (*failed = true: fail the test). A failed start is not
  // retried within the run.
  static RgwCluster* get(std::string* why, bool* failed);
  void TearDown() override;
};

// Sets `var` (RgwCluster*) to the shared cluster; skips the test when the
// Ceph programs are missing, fails it when the cluster did not start.
#define RECSYNC_REQUIRE_RGW(var)                            \
  ::recsync::test::RgwCluster* var = nullptr;               \
  do {                                                      \
    std::string why_;                                       \
    bool failed_ = false;                                   \
    var = ::recsync::test::SharedRgw::get(&why_, &failed_); \
    if (!var && failed_) GTEST_FAIL() << why_;              \
    if (!var) GTEST_SKIP() << why_;                         \
  } while (0)

}  // namespace recsync::test
