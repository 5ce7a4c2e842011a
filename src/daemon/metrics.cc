#include "daemon/metrics.h"

#include <cmath>
#include <limits>

namespace recsync {
namespace {

using metrics::Exposition;
using metrics::Labels;
using metrics::MetricType;
using replication::PeerState;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double seconds(int64_t ms) { return static_cast<double>(ms) / 1000.0; }
double age_s(int64_t now_ms, int64_t then_ms) {
  return then_ms ? std::max(0.0, seconds(now_ms - then_ms)) : 0.0;
}
double ratio(double pct) { return pct / 100.0; }

// Family + samples in one call each; refusals are collected by the
// Exposition (first_error) and leave the family out.
class Writer {
 public:
  explicit Writer(Exposition& e) : e_(e) {}
  bool family(const char* name, MetricType t, const char* help) {
    return e_.begin_family(name, t, help).is_ok();
  }
  void sample(const Labels& l, double v) { (void)e_.add_sample(l, v).is_ok(); }
  void gauge(const char* name, const char* help, double v) {
    if (family(name, MetricType::kGauge, help)) sample({}, v);
  }
  void counter(const char* name, const char* help, double v) {
    if (family(name, MetricType::kCounter, help)) sample({}, v);
  }

 private:
  Exposition& e_;
};

void collect_process(const StatusInputs& in, Writer& w) {
  if (w.family("recsync_build_info", MetricType::kInfo, "Version and node name of this recsyncd."))
    w.sample({{"version", in.version}, {"node", in.node}}, 1);
  w.gauge("recsync_start_time_seconds", "When recsyncd started, as Unix time in seconds.",
          seconds(in.start_ms));
}

void collect_spool(const StatusInputs& in, int64_t now, Writer& w) {
  const SpoolSnapshot& sp = in.spool;
  w.gauge("recsync_spool_files",
          "Recordings in the spool waiting to be archived or being archived.", sp.files);
  w.gauge("recsync_spool_bytes", "Bytes of the recordings in the spool.", sp.bytes);
  w.gauge("recsync_spool_free_bytes",
          "Bytes free on the spool filesystem (for unprivileged users).",
          in.spool_usage.avail_bytes);
  w.gauge("recsync_spool_usage_ratio", "Used fraction of the spool filesystem (0 to 1).",
          ratio(in.spool_usage.used_pct));
  w.gauge("recsync_spool_oldest_seconds",
          "Age of the oldest recording waiting in the spool, in seconds; 0 when none.",
          age_s(now, sp.oldest_ms));
  w.counter("recsync_spool_overflows_total",
            "Inotify queue overflows and lost watches since start (each causes a rescan).",
            in.overflows);
}

void collect_archive(const StatusInputs& in, Writer& w) {
  const SpoolSnapshot& sp = in.spool;
  w.gauge("recsync_archive_files", "Recordings in the archive (the state database's index).",
          in.archive.files);
  w.gauge("recsync_archive_bytes", "Bytes of the recordings in the archive.", in.archive.bytes);
  w.gauge("recsync_archive_free_bytes",
          "Bytes free on the archive filesystem (for unprivileged users).",
          in.archive_usage.avail_bytes);
  w.gauge("recsync_archive_usage_ratio", "Used fraction of the archive filesystem (0 to 1).",
          ratio(in.archive_usage.used_pct));
  w.gauge("recsync_archive_pending_files",
          "Recordings waiting to be archived (in the spool, including those being copied).",
          sp.files);
  w.gauge("recsync_archive_in_flight_files", "Recordings being copied into the archive now.",
          sp.in_flight);
  w.gauge("recsync_archive_failing_files",
          "Recordings whose last archive attempt failed and that wait for a retry.", sp.failing);
  w.counter("recsync_archived_files_total", "Recordings archived since start.", sp.archived_files);
  w.counter("recsync_archived_bytes_total", "Bytes archived since start.", sp.archived_bytes);
  w.counter("recsync_archive_failures_total", "Failed archive attempts since start.", sp.failures);
}

void collect_retention(const StatusInputs& in, Writer& w) {
  const RetentionSnapshot& r = in.retention;
  w.gauge("recsync_retention_last_run_timestamp_seconds",
          "When the last retention pass ended, as Unix time in seconds; 0 before the first.",
          seconds(r.last_prune_ms));
  w.gauge("recsync_retention_next_run_timestamp_seconds",
          "When the next retention pass is due, as Unix time in seconds; 0 when not scheduled.",
          seconds(r.next_prune_ms));
  w.counter("recsync_retention_pruned_files_total",
            "Recordings pruned by retention on this node (kept across restarts).", in.pruned_total);
  const bool refused = !r.last.refused.empty() && r.last.refused != "retention disabled";
  w.gauge("recsync_retention_refused",
          "Whether the last retention pass refused to prune (1) or not (0); see recsync status.",
          refused ? 1 : 0);
  w.gauge("recsync_retention_keep_seconds",
          "Age past which recordings are pruned, in seconds; 0 = retention disabled.",
          seconds(r.settings.policy.keep.count()));
  w.gauge("recsync_clock_tolerance_seconds",
          "Clock difference beyond which pruning is refused, in seconds.",
          seconds(r.settings.policy.clock_tolerance.count()));
  w.gauge("recsync_holds", "Holds in force (recordings kept from pruning).", in.holds);
}

void collect_erasure(const StatusInputs& in, Writer& w) {
  w.counter("recsync_erasures_total",
            "Recording copies erased on this node by recsync erase or a peer's erasure (kept "
            "across restarts).",
            in.erased_total);
  w.gauge("recsync_tombstones", "Erased recordings remembered so they never come back.",
          in.tombstones);
  w.gauge("recsync_erase_unfinished", "Erasures whose files or object are still to delete here.",
          in.erase_pending);
  if (!in.repl || in.repl->peers.empty()) return;
  // Every configured peer, 0 when nothing waits for it.
  auto of = [&](const std::string& peer) {
    for (const ErasePeerStats& e : in.erase_queue)
      if (e.peer == peer) return e;
    return ErasePeerStats{};
  };
  if (w.family("recsync_erase_pending", MetricType::kGauge,
               "Erasures the peer has not acknowledged yet (refused ones included)."))
    for (const auto& p : in.repl->peers) w.sample({{"peer", p.name}}, of(p.name).pending);
  if (w.family("recsync_erase_refused", MetricType::kGauge,
               "Erasures the peer refused (a hold there); asked again every 10 minutes."))
    for (const auto& p : in.repl->peers) w.sample({{"peer", p.name}}, of(p.name).refused);
}

void collect_alarms(const StatusInputs& in, int64_t now, Writer& w) {
  double warning = 0, critical = 0;
  for (const Alarm& a : status_alarms(in, now)) (a.severity == "critical" ? critical : warning)++;
  if (!w.family("recsync_alarms", MetricType::kGauge,
                "Active alarms by severity, as recsync status lists them."))
    return;
  w.sample({{"severity", "warning"}}, warning);
  w.sample({{"severity", "critical"}}, critical);
}

void collect_bandwidth(const StatusInputs& in, Writer& w) {
  const replication::BandwidthState& b = in.bandwidth;
  w.gauge("recsync_replication_bandwidth_cap_bytes_per_second",
          "Replication bandwidth cap in force, in bytes per second; 0 = no cap.", b.cap_bps);
  w.gauge("recsync_replication_bandwidth_override",
          "Whether an operator's override (recsync bandwidth) sets the cap (1) or not (0).",
          b.source == "override" ? 1 : 0);
  if (w.family("recsync_replication_bandwidth_source", MetricType::kGauge,
               "What sets the replication cap in force: 1 for the source in force."))
    for (const char* s : {"config", "schedule", "override"})
      w.sample({{"source", s}}, b.source == s ? 1 : 0);
  uint64_t sent = 0, received = 0;
  if (in.repl)
    for (const auto& p : in.repl->peers) {
      sent += p.sent_bytes;
      received += p.received_bytes;
    }
  w.counter("recsync_replication_sent_bytes_total",
            "Bytes sent to all peers since start; rate() of it is the replication rate.", sent);
  w.counter("recsync_replication_received_bytes_total",
            "Bytes received from all peers since start.", received);
}

// One family with one sample per peer, value from `f`.
template <typename F>
void per_peer(Writer& w, const replication::ServiceStatus& rs, const char* name, MetricType t,
              const char* help, F f) {
  if (!w.family(name, t, help)) return;
  for (const auto& p : rs.peers) w.sample({{"peer", p.name}}, f(p));
}

void collect_peer_queues(const replication::ServiceStatus& rs, int64_t now, Writer& w) {
  if (w.family("recsync_peer_queue_files", MetricType::kGauge,
               "Recordings queued for the peer, by priority (live first; retry after a "
               "failure; backfill last)."))
    for (const auto& p : rs.peers) {
      w.sample({{"peer", p.name}, {"priority", "live"}}, p.queue.live_files);
      w.sample({{"peer", p.name}, {"priority", "retry"}}, p.queue.retry_files);
      w.sample({{"peer", p.name}, {"priority", "backfill"}}, p.queue.backfill_files);
    }
  if (w.family("recsync_peer_queue_bytes", MetricType::kGauge,
               "Bytes of the recordings queued for the peer, by priority."))
    for (const auto& p : rs.peers) {
      w.sample({{"peer", p.name}, {"priority", "live"}}, p.queue.live_bytes);
      w.sample({{"peer", p.name}, {"priority", "retry"}}, p.queue.retry_bytes);
      w.sample({{"peer", p.name}, {"priority", "backfill"}}, p.queue.backfill_bytes);
    }
  per_peer(w, rs, "recsync_peer_queue_oldest_seconds", MetricType::kGauge,
           "Age of the oldest recording queued for the peer, in seconds; 0 when none.",
           [&](const auto& p) { return age_s(now, p.queue.oldest_enqueued_ms); });
}

void collect_peers(const replication::ServiceStatus& rs, int64_t now, Writer& w) {
  using T = MetricType;
  per_peer(w, rs, "recsync_peer_up", T::kGauge,
           "Whether the replication link to the peer is up (1) or not (0).",
           [](const auto& p) { return p.state == PeerState::kConnected ? 1 : 0; });
  if (w.family("recsync_peer_state", T::kGauge,
               "State of the link to the peer: 1 for the state it is in."))
    for (const auto& p : rs.peers)
      for (PeerState s : {PeerState::kConnecting, PeerState::kConnected, PeerState::kBackoff,
                          PeerState::kRefused})
        w.sample({{"peer", p.name}, {"state", replication::peer_state_name(s)}},
                 p.state == s ? 1 : 0);
  per_peer(w, rs, "recsync_peer_sent_bytes_total", T::kCounter,
           "Bytes sent to the peer since start.", [](const auto& p) { return p.sent_bytes; });
  per_peer(w, rs, "recsync_peer_received_bytes_total", T::kCounter,
           "Bytes received from the peer since start.",
           [](const auto& p) { return p.received_bytes; });
  per_peer(w, rs, "recsync_peer_sent_files_total", T::kCounter,
           "Recordings sent to the peer and acknowledged by it since start.",
           [](const auto& p) { return p.acked_files; });
  per_peer(w, rs, "recsync_peer_received_files_total", T::kCounter,
           "Recordings received from the peer since start.",
           [](const auto& p) { return p.received_files; });
  per_peer(w, rs, "recsync_peer_failed_transfers_total", T::kCounter,
           "Transfers to the peer that failed since start (each is retried).",
           [](const auto& p) { return p.failed_transfers; });
  collect_peer_queues(rs, now, w);
  per_peer(w, rs, "recsync_peer_last_ack_age_seconds", T::kGauge,
           "Seconds since the peer last acknowledged a recording; NaN before the first.",
           [&](const auto& p) { return p.last_ack_ms ? age_s(now, p.last_ack_ms) : kNaN; });
  per_peer(w, rs, "recsync_peer_rtt_seconds", T::kGauge,
           "Round trip of the last ping on the link to the peer, in seconds; NaN until measured.",
           [](const auto& p) { return p.rtt_ms >= 0 ? p.rtt_ms / 1000.0 : kNaN; });
  per_peer(w, rs, "recsync_peer_clock_offset_seconds", T::kGauge,
           "The peer's clock minus this node's, in seconds (NTP-style, over the link); NaN "
           "until measured. Beyond clock_tolerance, pruning is refused.",
           [](const auto& p) { return p.clock_measured_ms ? p.clock_offset_ms / 1000.0 : kNaN; });
}

// Identity (one path, one recording) and the newest backfill job.
void collect_identity_and_backfill(const StatusInputs& in, Writer& w) {
  w.counter("recsync_identity_collisions_total",
            "Recordings of different origins that claimed one path since start (one kept the "
            "path, the others got .from-<origin>).",
            in.collisions);
  w.counter("recsync_identity_conflicts_total",
            "Offers refused since start because another content is stored under that identity.",
            in.conflicts);
  const bool job = in.backfill && in.backfill->job;
  const BackfillProgress pr = job ? in.backfill->progress : BackfillProgress{};
  const bool running = job && in.backfill->job->state == "running";
  w.gauge("recsync_backfill_running", "Whether a backfill is running (1) or not (0).",
          running ? 1 : 0);
  const uint64_t files = pr.pull_total.files + pr.push_total.files,
                 bytes = pr.pull_total.bytes + pr.push_total.bytes;
  const uint64_t done_files =
      pr.pull_done.files + pr.push_done.files + pr.pull_gone.files + pr.push_gone.files;
  const uint64_t done_bytes =
      pr.pull_done.bytes + pr.push_done.bytes + pr.pull_gone.bytes + pr.push_gone.bytes;
  w.gauge("recsync_backfill_remaining_files",
          "Recordings the newest backfill still has to pull or push; 0 when none runs.",
          running && files > done_files ? files - done_files : 0);
  w.gauge("recsync_backfill_remaining_bytes",
          "Bytes the newest backfill still has to pull or push; 0 when none runs.",
          running && bytes > done_bytes ? bytes - done_bytes : 0);
}

// The scrub (scrub/scrubber.h): counters since start, the open findings.
void collect_scrub(const scrub::Snapshot& s, Writer& w) {
  w.gauge("recsync_scrub_running", "Whether a scrub pass is running (1) or not (0).",
          s.running ? 1 : 0);
  w.gauge("recsync_scrub_last_end_timestamp_seconds",
          "When the last scrub pass ended, as Unix time in seconds; 0 = none yet.",
          s.last_end_ms ? *s.last_end_ms / 1000.0 : 0);
  w.counter("recsync_scrub_checked_files_total",
            "Archived recordings re-read and compared with their stored hash since start.",
            s.totals.files);
  w.counter("recsync_scrub_checked_bytes_total", "Bytes re-read by the scrub since start.",
            s.totals.bytes);
  if (w.family("recsync_scrub_errors_total", MetricType::kCounter,
               "Damaged copies found by the scrub since start, by kind (corrupt: hash "
               "mismatch, size, missing, unreadable)."))
    for (scrub::Kind k : scrub::kErrorKinds)
      w.sample({{"kind", scrub::kind_name(k)}}, s.totals.errors[static_cast<int>(k)]);
  w.counter("recsync_scrub_repairs_total",
            "Damaged recordings replaced with a peer's verified copy since start.",
            s.repairs_total);
  w.gauge("recsync_scrub_damaged_recordings",
          "Damaged recordings found by the scrub and not repaired yet.", s.open.size());
}

}  // namespace

void collect_daemon_metrics(const StatusInputs& in, int64_t now_ms, Exposition& out) {
  Writer w(out);
  collect_process(in, w);
  collect_spool(in, now_ms, w);
  collect_archive(in, w);
  collect_retention(in, w);
  collect_erasure(in, w);
  collect_alarms(in, now_ms, w);
  collect_bandwidth(in, w);
  if (in.repl && !in.repl->peers.empty()) collect_peers(*in.repl, now_ms, w);
  collect_identity_and_backfill(in, w);
  if (in.scrub) collect_scrub(*in.scrub, w);
}

std::string render_metrics(const StatusInputs& in, int64_t now_ms,
                           const metrics::HttpServer* server, Status* first_error) {
  Exposition e;
  collect_daemon_metrics(in, now_ms, e);
  if (server) server->collect(e);
  if (first_error) *first_error = e.first_error();
  return e.take();
}

}  // namespace recsync
