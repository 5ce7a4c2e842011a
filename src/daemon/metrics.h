#pragma once
// recsyncd's Prometheus page (SPEC 4.5, 7) as a pure function of the same
// snapshot `recsync status` is built from (StatusInputs, daemon/status.h) and
// a time, so every family is unit-tested and checked by `promtool check
// metrics` without a daemon. The HTTP side (a snapshot cache and the server
// thread) is daemon/metrics_endpoint.h.
//
// Naming (prometheus.io "Metric and label naming"): prefix recsync_, base
// units (seconds, bytes, ratios 0..1), counters end in _total, one HELP and
// TYPE per family, no per-recording labels. Label values are only peer names
// (from the config), severities, link states, priorities and bandwidth
// sources: a bounded set.
//
// Families (names fixed: etc/recsync-alerts.yml and operators' dashboards use them):
//   recsync_build_info{version,node}                 1
//   recsync_start_time_seconds                       process start, Unix time
//   recsync_spool_{files,bytes,free_bytes,usage_ratio,oldest_seconds}
//   recsync_spool_overflows_total                    inotify overflows/lost watches
//   recsync_archive_{files,bytes,free_bytes,usage_ratio}
//   recsync_archive_{pending,in_flight,failing}_files
//   recsync_archived_{files,bytes}_total, recsync_archive_failures_total   since start
//   recsync_retention_{last,next}_run_timestamp_seconds   0 = none yet
//   recsync_retention_pruned_files_total             kept in the state DB
//   recsync_retention_refused                        0/1 (keep = 0 is not refused)
//   recsync_retention_keep_seconds, recsync_clock_tolerance_seconds, recsync_holds
//   recsync_alarms{severity="warning"|"critical"}    both always present
//   recsync_replication_bandwidth_cap_bytes_per_second   in force; 0 = no cap
//   recsync_replication_bandwidth_override           0/1
//   recsync_replication_bandwidth_source{source}     one-hot: config, schedule, override
//   recsync_replication_{sent,received}_bytes_total  all peers; rate() is the rate
//   per [[peer]] (replication on only), label peer:
//     recsync_peer_up                                1 when connected
//     recsync_peer_state{state}                      one-hot over the four states
//     recsync_peer_{sent,received}_{bytes,files}_total, recsync_peer_failed_transfers_total
//     recsync_peer_queue_{files,bytes}{priority="live"|"retry"|"backfill"}
//     recsync_peer_queue_oldest_seconds              0 when empty
//     recsync_peer_last_ack_age_seconds              NaN before the first ack
//     recsync_peer_rtt_seconds                       NaN until measured
//     recsync_peer_clock_offset_seconds              peer minus us; NaN until measured
//   recsync_identity_{collisions,conflicts}_total    since start
//   recsync_backfill_running                         0/1
//   recsync_backfill_remaining_{files,bytes}         of the running backfill; 0 when none
//   recsync_scrub_running                            0/1
//   recsync_scrub_last_end_timestamp_seconds         0 = none yet
//   recsync_scrub_checked_{files,bytes}_total        since start
//   recsync_scrub_errors_total{kind}                 corrupt, missing, unreadable, size
//   recsync_scrub_repairs_total                      since start
//   recsync_scrub_damaged_recordings                 found and not repaired yet
// Then the HTTP server's own recsync_metrics_http_* and recsync_metrics_render_seconds
// (metrics/http_server.h).
//
// Thread safety: pure; any thread.
#include <cstdint>
#include <string>

#include "daemon/status.h"
#include "metrics/exposition.h"
#include "metrics/http_server.h"

namespace recsync {

// Adds the daemon's families (above) to `out`, from `in` at wall ms now_ms.
void collect_daemon_metrics(const StatusInputs& in, int64_t now_ms, metrics::Exposition& out);

// The whole page: the daemon's families, then `server`'s own when not null.
// A refused family (a bug) is left out; the first refusal goes to
// *first_error when given.
std::string render_metrics(const StatusInputs& in, int64_t now_ms,
                           const metrics::HttpServer* server, Status* first_error = nullptr);

}  // namespace recsync
