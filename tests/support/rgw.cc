#include "support/rgw.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace recsync::test {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool on_path(const std::string& prog) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  p += ":/usr/sbin:/sbin";
  std::stringstream ss(p);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + prog).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0; ++n) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) return text;
    pos = nl;
  }
  return text.substr(pos);
}

std::string new_uuid() {
  std::string u = read_file("/proc/sys/kernel/random/uuid");
  while (!u.empty() && (u.back() == '\n' || u.back() == '\r')) u.pop_back();
  return u;
}

// True when an anonymous "GET /" on 127.0.0.1:port answers HTTP 200 (RGW
// lists no buckets for anonymous): radosgw is serving.
bool http_ok(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  timeval tv{1, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = false;
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const char req[] = "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(s, req, sizeof req - 1, MSG_NOSIGNAL) == ssize_t(sizeof req - 1)) {
      char buf[64] = {0};
      ssize_t n = ::recv(s, buf, sizeof buf - 1, 0);
      ok = n > 12 && std::string(buf, size_t(n)).find(" 200 ") != std::string::npos;
    }
  }
  ::close(s);
  return ok;
}

Result<RgwUser> parse_user(const std::string& json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.contains("keys") || !j["keys"].is_array() || j["keys"].empty()) {
    return Status::corrupt("radosgw-admin printed no keys");
  }
  RgwUser u;
  u.uid = j.value("user_id", "");
  u.access_key = j["keys"][0].value("access_key", "");
  u.secret_key = j["keys"][0].value("secret_key", "");
  if (u.access_key.empty() || u.secret_key.empty()) {
    return Status::corrupt("radosgw-admin printed empty keys");
  }
  return u;
}

}  // namespace

std::string RgwCluster::missing_programs(bool tls) {
  std::vector<std::string> progs = {"ceph-mon",      "ceph-osd",   "radosgw",
                                    "radosgw-admin", "monmaptool", "ceph"};
  if (tls) progs.push_back("openssl");
  std::string missing;
  for (const auto& p : progs) {
    if (!on_path(p)) missing += (missing.empty() ? "" : ", ") + p;
  }
  if (missing.empty()) return "";
  return "Ceph RGW test cluster: not found on PATH: " + missing +
         " (apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common)";
}

RunResult RgwCluster::tool(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  argv.insert(argv.begin() + 1, {"--conf", conf_});
  return run(std::move(argv), timeout);
}

std::string RgwCluster::log_tail(const std::string& name) const {
  return "\n--- tail of " + name + " ---" + tail(read_file(dir_ + "/log/" + name), 15);
}

Status RgwCluster::write_conf() {
  std::string w = dir_;
  std::string frontends = "beast endpoint=127.0.0.1:" + std::to_string(rgw_port_);
  if (opts_.tls) {
    frontends += " ssl_endpoint=127.0.0.1:" + std::to_string(rgw_tls_port_) +
                 " ssl_certificate=" + w + "/tls/cert.pem ssl_private_key=" + w + "/tls/key.pem";
  }
  std::ostringstream c;
  c << "[global]\n"
    << "fsid = " << fsid_ << "\n"
    << "mon_host = v2:127.0.0.1:" << mon_port_ << "\n"
    << "mon_initial_members = a\n"
    << "auth_cluster_required = none\nauth_service_required = none\n"
    << "auth_client_required = none\n"
    << "ms_mon_client_mode = crc\nms_client_mode = crc\nms_cluster_mode = crc\n"
    << "ms_service_mode = crc\nms_mon_cluster_mode = crc\nms_mon_service_mode = crc\n"
    << "ms_bind_msgr1 = false\n"
    << "run_dir = " << w << "/run\n"
    << "admin_socket = " << w << "/run/$name.asok\n"
    << "log_file = " << w << "/log/$name.log\n"
    << "mon_cluster_log_file = " << w << "/log/cluster.log\n"
    << "keyring = " << w << "/keyring\n"
    << "osd_pool_default_size = 1\nosd_pool_default_min_size = 1\n"
    << "mon_allow_pool_size_one = true\nmon_warn_on_pool_no_redundancy = false\n"
    << "osd_pool_default_pg_num = 8\nosd_pool_default_pgp_num = 8\n"
    << "osd_pool_default_pg_autoscale_mode = off\nmon_max_pg_per_osd = 1000\n"
    << "osd_crush_chooseleaf_type = 0\n"
    << "mon_data_avail_warn = 2\nmon_data_avail_crit = 1\n"
    << "paxos_propose_interval = 0.01\n"
    // A killed radosgw leaves its watches on the cache notify objects; the
    // next metadata change (CreateBucket) waits for them to time out, 30 s
    // by default.
    << "osd_client_watch_timeout = 3\n"
    << "osd_objectstore = memstore\nmemstore_device_bytes = " << opts_.memstore_bytes << "\n"
    << "[mon]\nmon_data = " << w << "/mon\n"
    << "[osd]\nosd_data = " << w << "/osd\n"
    << "[client.rgw]\n"
    << "rgw_frontends = " << frontends << "\n"
    << "rgw_data = " << w << "/rgw\n"
    << "rgw_thread_pool_size = 64\n"
    << "rgw_gc_obj_min_wait = 0\nrgw_gc_processor_period = 2\n";
  conf_ = w + "/ceph.conf";
  write_file(conf_, c.str());
  return file_exists(conf_) ? Status::ok() : Status::io("cannot write " + conf_);
}

Status RgwCluster::make_cert() {
  std::string d = dir_ + "/tls";
  fs::create_directories(d);
  auto r =
      run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
           "-nodes", "-keyout", d + "/key.pem", "-out", d + "/cert.pem", "-days", "2", "-subj",
           "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
          20s);
  if (r.exit_code != 0) return Status::io("openssl req failed: " + tail(r.err, 5));
  ca_file_ = d + "/cert.pem";
  return Status::ok();
}

Status RgwCluster::start_mon() {
  auto r = run({"monmaptool", "--create", "--fsid", fsid_, "--addv", "a",
                "[v2:127.0.0.1:" + std::to_string(mon_port_) + "]", dir_ + "/monmap"});
  if (r.exit_code != 0) return Status::io("monmaptool failed: " + tail(r.err, 5));
  r = tool({"ceph-mon", "-i", "a", "--mkfs", "--monmap", dir_ + "/monmap"});
  if (r.exit_code != 0) return Status::io("ceph-mon --mkfs failed: " + tail(r.err, 5));
  auto p = Process::spawn({"ceph-mon", "--conf", conf_, "-i", "a", "-f"}, {}, dir_ + "/log/mon.out",
                          dir_ + "/log/mon.out");
  if (!p.is_ok()) return p.status();
  mon_ = std::move(p.value());
  return Status::ok();
}

Status RgwCluster::start_osd() {
  std::string uuid = new_uuid();
  // The ceph CLI waits for the mon to form its quorum.
  auto r = tool({"ceph", "--connect-timeout", "30", "osd", "new", uuid}, 40s);
  if (r.exit_code != 0) {
    return Status::io("ceph osd new failed: " + tail(r.err, 5) + log_tail("mon.a.log"));
  }
  r = tool({"ceph-osd", "-i", "0", "--mkfs", "--osd-uuid", uuid});
  if (r.exit_code != 0) return Status::io("ceph-osd --mkfs failed: " + tail(r.err, 5));
  auto p = Process::spawn({"ceph-osd", "--conf", conf_, "-i", "0", "-f"}, {}, dir_ + "/log/osd.out",
                          dir_ + "/log/osd.out");
  if (!p.is_ok()) return p.status();
  osd_ = std::move(p.value());
  return Status::ok();
}

Status RgwCluster::start_rgw() {
  auto p = Process::spawn({"radosgw", "--conf", conf_, "-n", "client.rgw", "-f"}, {},
                          dir_ + "/log/rgw.out", dir_ + "/log/rgw.out");
  if (!p.is_ok()) return p.status();
  rgw_ = std::move(p.value());
  return wait_rgw_ready();
}

Status RgwCluster::wait_rgw_ready() {
  auto deadline = Clock::now() + opts_.start_timeout;
  while (Clock::now() < deadline) {
    if (http_ok(rgw_port_)) return Status::ok();
    for (auto* proc : {mon_.get(), osd_.get(), rgw_.get()}) {
      if (proc && !proc->running()) {
        return Status::io("a Ceph daemon exited during start" + log_tail("mon.a.log") +
                          log_tail("osd.0.log") + log_tail("client.rgw.log") + log_tail("rgw.out"));
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  return Status::io("radosgw did not answer within the start timeout" + log_tail("client.rgw.log"));
}

Result<std::unique_ptr<RgwCluster>> RgwCluster::start(const Options& opts) {
  auto t0 = Clock::now();
  if (std::string why = missing_programs(opts.tls); !why.empty()) return Status::not_found(why);
  std::unique_ptr<RgwCluster> c(new RgwCluster());
  c->opts_ = opts;
  char tmpl[] = "/tmp/recsync-rgw-XXXXXX";
  if (!::mkdtemp(tmpl)) return Status::from_errno(errno, "mkdtemp /tmp/recsync-rgw-XXXXXX");
  c->dir_ = tmpl;
  for (const char* sub : {"mon", "osd", "run", "log", "rgw"})
    fs::create_directories(c->dir_ + "/" + sub);
  c->fsid_ = new_uuid();
  c->mon_port_ = free_tcp_port();
  c->rgw_port_ = free_tcp_port();
  c->rgw_tls_port_ = free_tcp_port();
  if (c->mon_port_ == 0 || c->rgw_port_ == 0 || c->rgw_tls_port_ == 0) {
    return Status::io("no free TCP port on 127.0.0.1");
  }
  auto mark = [&, last = t0](const char* step) mutable {
    auto now = Clock::now();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s%s %.2f s", c->phases_.empty() ? "" : ", ", step,
                  std::chrono::duration<double>(now - last).count());
    c->phases_ += buf;
    last = now;
  };
  RECSYNC_RETURN_IF_ERROR(c->write_conf());
  if (opts.tls) RECSYNC_RETURN_IF_ERROR(c->make_cert());
  mark("conf+cert");
  RECSYNC_RETURN_IF_ERROR(c->start_mon());
  mark("mon");
  RECSYNC_RETURN_IF_ERROR(c->start_osd());
  mark("osd");
  RECSYNC_RETURN_IF_ERROR(c->start_rgw());
  mark("rgw");
  auto u = c->create_user("recsync");
  if (!u.is_ok()) return u.status();
  c->user_ = u.value();
  mark("user");
  c->startup_s_ = std::chrono::duration<double>(Clock::now() - t0).count();
  return c;
}

RgwCluster::~RgwCluster() {
  // radosgw first, then the OSD, then the mon: each Process destructor
  // SIGKILLs and reaps.
  rgw_.reset();
  osd_.reset();
  mon_.reset();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string RgwCluster::endpoint() const { return "http://127.0.0.1:" + std::to_string(rgw_port_); }

std::string RgwCluster::https_endpoint() const {
  return opts_.tls ? "https://127.0.0.1:" + std::to_string(rgw_tls_port_) : "";
}

Result<RgwUser> RgwCluster::create_user(const std::string& uid) {
  auto r = tool({"radosgw-admin", "user", "create", "--uid=" + uid, "--display-name=" + uid});
  if (r.exit_code != 0) {
    return Status::io("radosgw-admin user create failed: " + tail(r.err, 5));
  }
  return parse_user(r.out);
}

Status RgwCluster::set_user_quota(const std::string& uid, int64_t max_bytes) {
  auto r = tool({"radosgw-admin", "quota", "set", "--quota-scope=user", "--uid=" + uid,
                 "--max-size=" + std::to_string(max_bytes)});
  if (r.exit_code != 0) return Status::io("radosgw-admin quota set failed: " + tail(r.err, 5));
  r = tool({"radosgw-admin", "quota", "enable", "--quota-scope=user", "--uid=" + uid});
  if (r.exit_code != 0) return Status::io("radosgw-admin quota enable failed: " + tail(r.err, 5));
  return Status::ok();
}

void RgwCluster::kill_rgw() {
  if (rgw_) rgw_->kill9();
}

Status RgwCluster::restart_rgw() {
  kill_rgw();
  rgw_.reset();
  return start_rgw();
}

// ---- SharedRgw ----

namespace {

struct Shared {
  std::unique_ptr<RgwCluster> cluster;
  bool tried = false;
  std::string why;
  bool failed = false;
};

Shared& shared() {
  static Shared s;
  return s;
}

}  // namespace

RgwCluster* SharedRgw::get(std::string* why, bool* failed) {
  Shared& s = shared();
  if (!s.tried) {
    s.tried = true;
    if (std::string missing = RgwCluster::missing_programs(); !missing.empty()) {
      s.why = missing;
    } else {
      auto c = RgwCluster::start();
      if (c.is_ok()) {
        s.cluster = std::move(c.value());
        std::fprintf(stderr, "[rgw] cluster up in %.2f s (%s) at %s, work folder %s\n",
                     s.cluster->startup_seconds(), s.cluster->startup_phases().c_str(),
                     s.cluster->endpoint().c_str(), s.cluster->dir().c_str());
      } else {
        s.why = "Ceph RGW test cluster did not start: " + c.status().to_string();
        s.failed = true;
      }
    }
  }
  if (why) *why = s.why;
  if (failed) *failed = s.failed;
  return s.cluster.get();
}

void SharedRgw::TearDown() { shared().cluster.reset(); }

}  // namespace recsync::test
