// recsyncd: parse options, load the config, run the Daemon, map to an exit code.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "daemon/daemon.h"
#include "daemon/preflight.h"
#include "recsync/config.h"
#include "recsync/exit_codes.h"
#include "recsync/log.h"
#include "recsync/version.h"

int main(int argc, char** argv) {
  using namespace recsync;
  CLI::App app{"recsyncd - recording sync and retention daemon"};
  std::string config_path = "/etc/recsync/recsyncd.conf";
  bool check_only = false, list_keys = false, version = false;
  app.add_option("-c,--config", config_path, "configuration file");
  app.add_flag("--check-config", check_only, "check the configuration and exit");
  app.add_flag("--list-config-keys", list_keys, "print every configuration key and exit");
  app.add_flag("-V,--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (version) {
    std::printf("recsyncd %s\n", kVersion);
    return kExitOk;
  }
  if (list_keys) {
    for (const auto& k : config_keys()) std::printf("%s\n", k.name);
    return kExitOk;
  }
  auto cfg = load_config(config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
    return kExitConfig;
  }
  if (check_only) {
    // Everything the daemon's own start would refuse (daemon/preflight.h).
    size_t errors = 0;
    for (const PreflightProblem& p : preflight(*cfg, Env::posix())) {
      errors += p.error();
      std::fprintf(stderr, "%s%s\n", p.error() ? "" : "warning: ", p.text.c_str());
    }
    if (errors > 0) {
      std::fprintf(stderr, "%s: %zu problem%s would stop recsyncd at start\n", config_path.c_str(),
                   errors, errors == 1 ? "" : "s");
      return kExitConfig;
    }
    std::printf("%s: OK\n", config_path.c_str());
    return kExitOk;
  }
  log::init(cfg->log.level);
  Daemon d(std::move(cfg).value(), Env::posix());
  Status s = d.run();
  if (!s) {
    log::get("daemon")->critical("{}", s.message());
    return s.code() == Status::Code::kInvalid ? kExitConfig : kExitFailure;
  }
  return kExitOk;
}
