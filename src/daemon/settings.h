#pragma once
// The components' settings as the configuration gives them (at start and at
// SIGHUP). Pure.
#include "recsync/config.h"
#include "replication/bandwidth.h"
#include "retention/scheduler.h"
#include "scrub/scrubber.h"

namespace recsync {

RetentionSettings retention_settings(const Config& c);
replication::BandwidthSettings bandwidth_settings(const Config& c);
scrub::Settings scrub_settings(const Config& c);

}  // namespace recsync
