#pragma once
// The scrub as status, `recsync verify` and the alarm show it. Pure.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "scrub/scrubber.h"

namespace recsync::scrub {

// {"kind", "path", "origin", "origin_path", "hash", "size", "found", "detail",
//  "aside", "repair", "peers": {name: answer}}; origin "local" shown as node.
nlohmann::json finding_json(const Finding& f, const std::string& node);
// status "scrub": {"running", "unpaced", "last_start", "last_end", "next",
// "interval_s", "rate_bps", "repair", "files", "bytes", "skipped",
// "errors": {kind: n}, "repaired_total", "open": [finding...]}; times ISO
// 8601 UTC ("" = never).
nlohmann::json snapshot_json(const Snapshot& s, const std::string& node);
// The "scrub" alarm: critical when a finding cannot be repaired here (no
// peer, repair off, moving it aside failed, or every peer answered without
// sending it), warning while every open finding awaits its copy; nullopt
// when none is open. .first = severity, .second = text.
std::optional<std::pair<std::string, std::string>> scrub_alarm(const Snapshot& s);

}  // namespace recsync::scrub
