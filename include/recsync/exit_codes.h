#pragma once
// Exit codes of recsyncd and recsync, documented in recsyncd(8) and recsync(1)
// and named in the systemd unit (RestartPreventExitStatus). sysexits.h values
// where one fits; 0-3 for `recsync status --check` follow the Nagios plugin
// convention.
namespace recsync {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,       // runtime failure; `status --check`: WARNING
  kExitCritical = 2,      // `status --check`: CRITICAL
  kExitUnknown = 3,       // `status --check`: UNKNOWN (daemon not reachable)
  kExitUsage = 64,        // EX_USAGE: bad command line
  kExitUnavailable = 69,  // EX_UNAVAILABLE: daemon not reachable
  kExitNoPerm = 77,       // EX_NOPERM: control socket refused us
  kExitConfig = 78,       // EX_CONFIG: bad configuration file
};

}  // namespace recsync
