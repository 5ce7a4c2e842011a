#pragma once
// The components' settings as the configuration gives them (at start and at
// SIGHUP), pure; and the daemon's off-loop runner.
#include <uv.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "recsync/config.h"
#include "replication/bandwidth.h"
#include "retention/scheduler.h"
#include "scrub/scrubber.h"

namespace recsync {

RetentionSettings retention_settings(const Config& c);
replication::BandwidthSettings bandwidth_settings(const Config& c);
scrub::Settings scrub_settings(const Config& c);

// ControlContext::off_loop for the daemon: runs work on libuv's thread pool
// (uv_queue_work) and done(result) back on the loop's thread. loop outlives
// every job (the daemon runs the loop until its handles close).
std::function<void(std::function<nlohmann::json()>, std::function<void(nlohmann::json)>)>
off_loop_runner(uv_loop_t* loop);

}  // namespace recsync
