#pragma once
// What the recsync CLI prints, as pure functions of the daemon's JSON
// replies (so the output is unit-tested without a daemon).
#include <nlohmann/json.hpp>
#include <string>

namespace recsync {

// `recsync status`: a few aligned lines per component, one per alarm.
std::string human_status(const nlohmann::json& status);
// The scrub lines of it (status["scrub"], scrub/report.h snapshot_json).
std::string human_scrub(const nlohmann::json& scrub);
// "2 corrupt, 1 size" from a scrub's errors by kind, "no damage" for none.
std::string scrub_errors_text(const nlohmann::json& errors);
// One line per scrub finding: kind, path, what was read, the repair's state
// and each peer's answer.
std::string human_findings(const nlohmann::json& findings);
// The object-store lines of it (status["object_store"], enabled).
std::string human_object_store(const nlohmann::json& object_store);

struct CheckResult {
  int exit_code;     // 0 OK, 1 WARNING, 2 CRITICAL (Nagios plugin convention)
  std::string line;  // "RECSYNC OK - no alarms | spool_files=0 archive_files=3"
};
// `recsync status --check`: the worst alarm decides.
CheckResult check_status(const nlohmann::json& status);

// `recsync prune --dry-run` without --json.
std::string human_dry_run(const nlohmann::json& reply);
// `recsync locate` and `recsync hold list` without --json: one line each.
std::string human_locations(const nlohmann::json& locations);
std::string human_holds(const nlohmann::json& holds);
// `recsync bandwidth` without --json: the cap in force and why, one line
// (after "override cleared; " or "no override was in force; " for --clear).
std::string human_bandwidth(const nlohmann::json& reply);

// `recsync backfill` on a terminal: one line, redrawn in place: a bar, files
// and bytes moved of the total, the rate and the time left.
std::string backfill_bar(const nlohmann::json& backfill, double rate_bps, int width = 30);
// Without a terminal (or --json): one JSON object per line.
nlohmann::json backfill_progress_line(const nlohmann::json& backfill, double rate_bps);
// The last lines: what was moved or, for a dry run, planned, per peer.
std::string backfill_summary(const nlohmann::json& backfill);
// The exit code recsync(1) documents: 0 done (every peer, no conflict),
// 1 partial (a peer unreachable or failed, or conflicts found), 2 failed.
int backfill_exit_code(const nlohmann::json& backfill);

}  // namespace recsync
