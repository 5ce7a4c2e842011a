#pragma once
// One named spdlog logger per component, so an operator can turn one up
// ([log] components in the config) without drowning in the others.
// When stderr is connected to journald (JOURNAL_STREAM), lines carry the
// sd-daemon "<N>" priority prefix and no timestamp; otherwise a timestamp.
#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <string>

namespace recsync::log {

inline constexpr const char* kComponents[] = {
    "daemon",      "watch", "archive",  "retention", "state", "control", "peer",
    "replication", "delta", "backfill", "objstore",  "cli",   "metrics"};

// Creates all component loggers (idempotent). Thread-safe loggers.
void init(const std::string& default_level = "info");
// Applies a default level and per-component overrides. Unknown names ignored
// here (the config parser rejects them).
void set_levels(const std::string& default_level, const std::map<std::string, std::string>& per);
// The logger for a component; init() is called on first use if needed.
std::shared_ptr<spdlog::logger> get(const std::string& component);

}  // namespace recsync::log
