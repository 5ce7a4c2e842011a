#pragma once
// Small pieces of recsyncd's wiring (daemon.h), kept out of daemon.cc: the
// settings the components take from the config, the off-loop runner of the
// control commands, the report of queue entries left for peers that are no
// longer configured, and the eraser's object-store hook. Stateless; called on the loop thread.
#include <uv.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "archive/spool_pipeline.h"
#include "erase/eraser.h"
#include "objtier/object_tier.h"
#include "recsync/config.h"
#include "replication/bandwidth.h"
#include "retention/scheduler.h"
#include "scrub/scrubber.h"
#include "state/store.h"

namespace recsync {

RetentionSettings retention_settings(const Config& c);
replication::BandwidthSettings bandwidth_settings(const Config& c);
scrub::Settings scrub_settings(const Config& c);

// Runs work on libuv's thread pool and done(result) back on the loop thread
// (ControlContext::off_loop). loop outlives every job (the daemon runs the
// loop until its handles close).
void queue_off_loop(uv_loop_t* loop, std::function<nlohmann::json()> work,
                    std::function<void(nlohmann::json)> done);

// "N recordings are queued for peer 'X', which is not configured any more"
// for every such name ("" when none).
std::string orphaned_queue_report(const Config& cfg, StateStore& store);

// The eraser of this node (erase/eraser.h) over the placer, with the
// retention window of cfg.
std::unique_ptr<erase::Eraser> make_eraser(const Config& cfg, Env* env, StateStore* store,
                                           Placer* placer);
// Its object-store hook (tier may be null: none); tier outlives the eraser.
void hook_eraser(erase::Eraser& e, objtier::ObjectTier* tier);

}  // namespace recsync
