#pragma once
// The control socket's commands (recsync(1) talks to them), as a table of
// handlers over the components they use. Each handler answers through
// `reply` exactly once, on the owner (loop) thread; work that may take long
// (a dry-run prune reads many rows) goes through ControlContext::off_loop.
//
//   status                         the status JSON (daemon/status.h)
//   hold_add {target, reason}      hold every recording the target names, by
//                                  identity (copied to peers); a name hold
//                                  when none is archived yet; counts matches
//   hold_release {target}          release (copied to peers)
//   hold_list                      every hold
//   locate {id}                    every archive row (with its identity: origin,
//                                  origin path, hash, hold), spool entry and object
//   backfill_start {dry_run, peer} start a backfill, or attach to the running one
//   backfill_status                the newest backfill: state, peers, progress
//   fetch {id} | {window: true}    a recording (or this node's hot window)
//                                  back from the object store (off the loop)
//   erase {target, reason}         erase one recording here and on every peer
//                                  (erase/eraser.h), audited with the
//                                  caller's uid; off the loop
//   prune {dry_run}                a pass now, or what one would remove
//   reload                         what SIGHUP does
//   bandwidth {action}             the replication cap in force and why;
//     action "show" (default), "set" {cap_bps, for_ms (0 = until cleared,
//     at most kMaxBandwidthOverride)}, "clear"; set and clear are audited
//     with the caller's uid (replication/bandwidth.h)
//   scrub_start {unpaced}          a scrub pass now (or the running one)
//   scrub_status                   the scrub as status shows it (scrub/report.h)
//   scrub_check {targets}          reads the named recordings now (off the
//                                  loop): {checked, findings}
// Unknown commands and bad arguments answer {"ok": false, "error": ...}.
//
// Threads: handle_control() on the owner thread only.
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "archive/spool_pipeline.h"
#include "control/control_server.h"
#include "erase/eraser.h"
#include "objtier/object_tier.h"
#include "recsync/env.h"
#include "replication/bandwidth.h"
#include "replication/service.h"
#include "retention/scheduler.h"
#include "scrub/scrubber.h"
#include "state/store.h"

namespace recsync {

// The longest `recsync bandwidth RATE --for D` accepted.
inline constexpr Millis kMaxBandwidthOverride{366LL * 24 * 3600 * 1000};

struct ControlContext {
  std::string node;  // this node's name (the origin of its own recordings)
  Env* env = nullptr;
  StateStore* store = nullptr;
  replication::Service* repl = nullptr;  // null on a single node
  SpoolPipeline* spool = nullptr;
  RetentionScheduler* retention = nullptr;
  std::string spool_root, archive_root;
  replication::BandwidthControl* bandwidth = nullptr;  // null: the command says so
  objtier::ObjectTier* tier = nullptr;                 // null without [object_store]
  scrub::Scrubber* scrub = nullptr;                    // always set by the daemon
  erase::Eraser* eraser = nullptr;                     // null: the command says so
  std::function<nlohmann::json()> status;
  std::function<void()> reload;
  // Runs work on another thread and calls done(result) back on the owner
  // thread (the daemon: uv_queue_work). Tests may run both at once.
  std::function<void(std::function<nlohmann::json()> work,
                     std::function<void(nlohmann::json)> done)>
      off_loop;
};

void handle_control(ControlContext& ctx, const nlohmann::json& req, const PeerCred& who,
                    ControlServer::Reply reply);

}  // namespace recsync
