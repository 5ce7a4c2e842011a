// recsync-bench-rgw: the tests' real Ceph RGW (tests/support/rgw.h) for the
// object-store benchmark. Starts one mon, one memstore OSD and radosgw on
// 127.0.0.1, prints one JSON line
//   {"endpoint": "http://127.0.0.1:PORT", "access_key": ..., "secret_key": ..., "dir": ...}
// and keeps the cluster up until its stdin closes (or SIGTERM/SIGINT), then
// stops it and removes its work folder. Exit 1 when the cluster cannot start.
// Argument: the memstore size in GiB (default 4): what the cluster can hold.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "support/rgw.h"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  recsync::test::RgwCluster::Options o;
  o.tls = false;
  if (argc > 1) o.memstore_bytes = std::strtoull(argv[1], nullptr, 10) << 30;
  auto c = recsync::test::RgwCluster::start(o);
  if (!c.is_ok()) {
    std::fprintf(stderr, "recsync-bench-rgw: %s\n", c.status().to_string().c_str());
    return 1;
  }
  nlohmann::json j = {{"endpoint", (*c)->endpoint()},
                      {"access_key", (*c)->user().access_key},
                      {"secret_key", (*c)->user().secret_key},
                      {"dir", (*c)->dir()},
                      {"startup_s", (*c)->startup_seconds()}};
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
  // SIGTERM/SIGINT end the read below (EINTR) as stdin's EOF does.
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  char buf[256];
  while (std::fread(buf, 1, sizeof buf, stdin) > 0) {
  }
  return 0;  // ~RgwCluster kills the daemons and removes the folder
}
