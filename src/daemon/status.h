#pragma once
// `recsync status` as a pure function: the JSON (SPEC 7) and the alarms are
// built from snapshots the components hand out and a time, so every field
// and every alarm rule is unit-tested without a daemon.
//
// Alarms (severity, text): the archive alarm (critical, from the spool
// pipeline), spool usage above the watermarks, inotify trouble (critical),
// a rebuilt state database and queue entries for unknown peers (warning),
// per peer: refused (critical), unreachable with recordings waiting 60 s
// (warning; critical after 1 h), recordings waiting for a retry (warning),
// a refused incoming link in the last 10 minutes (warning), retention
// refused or failing deletions (warning); the object store (object_store):
// credentials refused (critical), quota (critical), unreachable or failing
// with uploads waiting (warning), the oldest upload waiting longer than
// upload_warn (warning: `recsync status --check` exits 1), uploads waiting
// for a retry or in conflict (warning), object deletions failing (warning);
// damaged recordings found by the scrub (scrub/report.h scrub_alarm);
// erasures a peer refused (a hold there) or not finished here (warning).
//
// Thread safety: pure functions; any thread.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "archive/spool_pipeline.h"
#include "objtier/object_tier.h"
#include "recsync/env.h"
#include "replication/backfill_jobs.h"
#include "replication/bandwidth.h"
#include "replication/service.h"
#include "retention/scheduler.h"
#include "scrub/scrubber.h"
#include "state/rows.h"
#include "state/tombstones.h"

namespace recsync {

struct Alarm {
  std::string severity;  // "warning" or "critical"
  std::string text;
};

struct StatusInputs {
  std::string node, version;
  int64_t start_ms = 0;  // wall
  // spool
  std::string spool_path;
  SpoolSnapshot spool;
  FsUsage spool_usage;
  int usage_warn_pct = 70, usage_crit_pct = 90;
  uint64_t overflows = 0;
  size_t watches = 0;
  // archive
  std::string archive_path, layout;
  StoreStats archive;
  FsUsage archive_usage;
  bool reconciled = false;
  // replication (nullopt on a single node)
  std::optional<replication::ServiceStatus> repl;
  replication::BandwidthState bandwidth;
  uint64_t bandwidth_default_bps = 0;
  std::string schedule_text;
  // backfill (the newest job; nullopt on a single node or before any)
  std::optional<replication::BackfillView> backfill;
  // identity rule (placement.h), since start
  uint64_t collisions = 0, conflicts = 0;
  // retention
  RetentionSnapshot retention;
  uint64_t pruned_total = 0;
  size_t holds = 0;
  // object-store tier (nullopt without [object_store]); also what the
  // metrics exposition reads: queue, rate, errors by kind, last success
  std::optional<objtier::TierStatus> object_store;
  // alarms raised elsewhere (state database, inotify, orphaned queue entries)
  std::vector<Alarm> other_alarms;
  // metrics endpoint: [metrics] listen as configured, and where it is bound
  // ("" / 0 when off), so a client finds a port-0 server.
  std::string metrics_listen, metrics_address;
  uint16_t metrics_port = 0;
  // the scrub (nullopt: none; the daemon always has one)
  std::optional<scrub::Snapshot> scrub;
  // erasure (erase/eraser.h): recordings erased here (audit rows, kept
  // across restarts), tombstones kept, erasures not finished here, and per
  // peer the erasures it has not acked (refused: held there)
  uint64_t erased_total = 0, tombstones = 0, erase_pending = 0;
  std::vector<ErasePeerStats> erase_queue;
};

// Spool usage against the watermarks, or nullopt below them.
std::optional<Alarm> spool_usage_alarm(double used_pct, int warn_pct, int crit_pct);
std::vector<Alarm> status_alarms(const StatusInputs& in, int64_t now_ms);
// An operator's bandwidth override as status and `recsync bandwidth` show it:
// {"cap_bps", "uid", "set", "until" ("" = until cleared)}, or null for none.
nlohmann::json bandwidth_override_json(const std::optional<replication::BandwidthOverride>& o);
nlohmann::json status_json(const StatusInputs& in, int64_t now_ms);
// A backfill job for status and `recsync backfill`: state, per peer (with
// the plan's counts), files and bytes to move and moved.
nlohmann::json backfill_json(const replication::BackfillView& v);

}  // namespace recsync
