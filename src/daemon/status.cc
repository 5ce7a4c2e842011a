#include "daemon/status.h"

#include <fmt/format.h>

#include "recsync/clock.h"
#include "recsync/units.h"
#include "scrub/report.h"

namespace recsync {

using json = nlohmann::json;
using replication::PeerState;

namespace {

std::string iso(int64_t ms) { return format_utc(ms, TimeFormat::kSeconds, /*blank_unset=*/true); }
int64_t age_s(int64_t now_ms, int64_t then_ms) { return then_ms ? (now_ms - then_ms) / 1000 : 0; }

void peer_alarms(const replication::ServiceStatus& rs, int64_t now, std::vector<Alarm>& a) {
  for (auto& p : rs.peers) {
    if (p.state == PeerState::kRefused) {
      a.push_back({"critical", "peer " + p.name + " refused: " + p.last_error});
      continue;
    }
    const int64_t oldest_s = age_s(now, p.queue.oldest_enqueued_ms);
    if (p.state != PeerState::kConnected && p.queue.files() > 0 && oldest_s >= 60)
      a.push_back(
          {oldest_s >= 3600 ? "critical" : "warning",
           fmt::format("peer {} unreachable: {} recordings ({}) waiting, oldest {} s ({})", p.name,
                       p.queue.files(), format_bytes(p.queue.bytes()), oldest_s, p.last_error)});
    else if (p.queue.retry_files > 0)
      a.push_back(
          {"warning", fmt::format("peer {}: {} recordings failed and wait for a retry (last: {})",
                                  p.name, p.queue.retry_files, p.last_error)});
  }
  if (!rs.last_refused.what.empty() && now - rs.last_refused.at_ms < 600'000)
    a.push_back({"warning", "refused an incoming peer connection: " + rs.last_refused.what});
}

json queue_json(const QueueStats& q, int64_t now) {
  return {{"files", q.files()},
          {"bytes", q.bytes()},
          {"oldest_s", age_s(now, q.oldest_enqueued_ms)},
          {"live", {{"files", q.live_files}, {"bytes", q.live_bytes}}},
          {"retry", {{"files", q.retry_files}, {"bytes", q.retry_bytes}}}};
}

json peer_json(const replication::PeerStatus& p, int64_t now) {
  json inflight = nullptr;
  if (p.in_flight)
    inflight = {{"path", p.in_flight->rel},
                {"size", p.in_flight->size},
                {"read_bytes", p.in_flight->read_bytes},
                {"sent_bytes", p.in_flight->sent_bytes},
                {"elapsed_s", (now - p.in_flight->started_ms) / 1000.0}};
  return {
      {"name", p.name},
      {"address", p.address},
      {"fingerprint", p.fingerprint},
      {"state", replication::peer_state_name(p.state)},
      {"connected_s",
       p.connected_since_ms ? json((now - p.connected_since_ms) / 1000) : json(nullptr)},
      {"last_ack_s", p.last_ack_ms ? json((now - p.last_ack_ms) / 1000.0) : json(nullptr)},
      {"rtt_ms", p.rtt_ms >= 0 ? json(p.rtt_ms) : json(nullptr)},
      {"clock_offset_s", p.clock_measured_ms ? json(p.clock_offset_ms / 1000.0) : json(nullptr)},
      {"clock_measured_s",
       p.clock_measured_ms ? json((now - p.clock_measured_ms) / 1000) : json(nullptr)},
      {"sent_bytes", p.sent_bytes},
      {"received_bytes", p.received_bytes},
      {"acked_files", p.acked_files},
      {"received_files", p.received_files},
      {"failed_transfers", p.failed_transfers},
      {"queue", queue_json(p.queue, now)},
      {"in_flight", inflight},
      {"last_error", p.last_error}};
}

json replication_json(const StatusInputs& in, int64_t now, json& peers) {
  QueueStats total;
  if (in.repl) {
    for (auto& p : in.repl->peers) {
      const auto& q = p.queue;
      total.live_files += q.live_files;
      total.live_bytes += q.live_bytes;
      total.retry_files += q.retry_files;
      total.retry_bytes += q.retry_bytes;
      if (q.oldest_enqueued_ms &&
          (!total.oldest_enqueued_ms || q.oldest_enqueued_ms < total.oldest_enqueued_ms))
        total.oldest_enqueued_ms = q.oldest_enqueued_ms;
      peers.push_back(peer_json(p, now));
    }
  }
  const bool on = in.repl.has_value();
  return {{"enabled", on},
          {"listen", on ? json(in.repl->listen) : json(nullptr)},
          {"listen_port", on ? json(in.repl->listen_port) : json(nullptr)},
          {"bandwidth_bps", on ? in.repl->bandwidth_bps : in.bandwidth.cap_bps},
          {"bandwidth_default_bps", in.bandwidth_default_bps},
          {"bandwidth_source", in.bandwidth.source},
          {"bandwidth_override", bandwidth_override_json(in.bandwidth.override_in_force)},
          {"schedule", in.schedule_text},
          {"rate_bps", on ? in.repl->rate_bps : 0},
          {"queue", queue_json(total, now)}};
}

void object_store_alarms(const objtier::TierStatus& t, int64_t now, std::vector<Alarm>& a) {
  const objtier::UploadSnapshot& u = t.upload;
  const std::string where = "object store s3://" + t.bucket;
  const int64_t oldest_s = age_s(now, t.queue.oldest_enqueued_ms);
  if (u.state == "refused") {
    a.push_back({"critical", where + " refuses our credentials: " + u.last_error});
  } else if (u.state == "backoff" && u.last_error_kind == "quota") {
    a.push_back({"critical", where + " is full (quota): " + u.last_error});
  } else if (u.state == "backoff" && t.queue.files() > 0) {
    a.push_back({"warning", fmt::format("{} unreachable or failing: {} recordings ({}) waiting, "
                                        "oldest {} s ({})",
                                        where, t.queue.files(), format_bytes(t.queue.bytes()),
                                        oldest_s, u.last_error)});
  }
  if (t.queue.files() > 0 && t.upload_warn_ms > 0 && oldest_s * 1000 > t.upload_warn_ms)
    a.push_back({"warning", fmt::format("{}: the oldest upload has waited {} (over upload_warn {})",
                                        where, format_duration(Millis(oldest_s * 1000)),
                                        format_duration(Millis(t.upload_warn_ms)))});
  if (t.queue.retry_files > 0 && u.state != "backoff" && u.state != "refused")
    a.push_back({"warning", fmt::format("{}: {} recordings failed to upload and wait for a retry "
                                        "(last: {})",
                                        where, t.queue.retry_files, u.last_error)});
}

json object_store_json(const std::optional<objtier::TierStatus>& ot, int64_t now) {
  if (!ot) return {{"enabled", false}};
  const objtier::TierStatus& t = *ot;
  const objtier::UploadSnapshot& u = t.upload;
  json inflight = nullptr;
  if (u.in_flight)
    inflight = {{"path", u.in_flight->rel},
                {"size", u.in_flight->size},
                {"sent_bytes", u.in_flight->sent},
                {"elapsed_s", (now - u.in_flight->started_ms) / 1000.0}};
  return {{"enabled", true},
          {"endpoint", t.endpoint},
          {"bucket", t.bucket},
          {"prefix", t.prefix},
          {"object_lock", t.object_lock},
          {"keep_local_s", t.keep_local_ms / 1000},
          {"upload_warn_s", t.upload_warn_ms / 1000},
          {"state", u.state},
          {"queue", queue_json(t.queue, now)},
          {"rate_bps", u.rate_bps},
          {"uploaded_files", u.uploaded_files},
          {"uploaded_bytes", u.uploaded_bytes},
          {"already_present", u.present_files},
          {"sent_bytes", u.sent_bytes},
          {"parts_reused", u.parts_reused},
          {"multipart_in_progress", t.multipart_in_progress},
          {"peer_copies_verified", u.peer_copies_verified},
          {"conflicts", u.conflicts},
          {"legal_holds_set", u.legal_holds_set},
          {"legal_holds_released", u.legal_holds_released},
          {"last_success", iso(u.last_success_ms)},
          {"last_error", u.last_error},
          {"last_error_kind", u.last_error_kind},
          {"last_error_at", iso(u.last_error_ms)},
          {"errors", u.errors},
          {"in_flight", inflight},
          {"uploads_in_flight", u.in_flight_count},
          {"objects",
           {{"files", t.objects.files},
            {"bytes", t.objects.bytes},
            {"legal_holds", t.objects.legal_holds}}}};
}

}  // namespace

json backfill_json(const replication::BackfillView& v) {
  if (!v.job) return nullptr;
  const BackfillJob& j = *v.job;
  json peers = json::array();
  for (const BackfillPeer& p : v.peers) {
    json s = p.summary.empty() ? json(nullptr) : json::parse(p.summary, nullptr, false);
    peers.push_back({{"name", p.peer}, {"state", p.state}, {"plan", s}, {"error", p.error}});
  }
  const BackfillProgress& pr = v.progress;
  auto count = [](const BackfillCount& c) { return json{{"files", c.files}, {"bytes", c.bytes}}; };
  const uint64_t total = pr.pull_total.bytes + pr.push_total.bytes;
  const uint64_t moved = pr.pull_done.bytes + pr.push_done.bytes;
  const uint64_t gone = pr.pull_gone.bytes + pr.push_gone.bytes;
  return {{"job", j.id},
          {"state", j.state},
          {"dry_run", j.dry_run},
          {"started", format_utc(j.created_ms, TimeFormat::kSeconds, true)},
          {"finished", format_utc(j.finished_ms, TimeFormat::kSeconds, true)},
          {"window_start", format_utc(j.window_start_ms, TimeFormat::kSeconds, true)},
          {"error", j.error},
          {"peers", peers},
          {"pull",
           {{"total", count(pr.pull_total)},
            {"done", count(pr.pull_done)},
            {"gone", count(pr.pull_gone)}}},
          {"push",
           {{"total", count(pr.push_total)},
            {"done", count(pr.push_done)},
            {"gone", count(pr.push_gone)}}},
          {"files_total", pr.pull_total.files + pr.push_total.files},
          {"files_done",
           pr.pull_done.files + pr.push_done.files + pr.pull_gone.files + pr.push_gone.files},
          {"bytes_total", total},
          {"bytes_done", moved + gone}};
}

json bandwidth_override_json(const std::optional<replication::BandwidthOverride>& o) {
  if (!o) return nullptr;
  return {{"cap_bps", o->cap_bps},
          {"uid", o->uid},
          {"set", iso(o->set_ms)},
          {"until", iso(o->until_ms)}};
}

std::optional<Alarm> spool_usage_alarm(double used_pct, int warn_pct, int crit_pct) {
  if (used_pct >= crit_pct)
    return Alarm{"critical",
                 fmt::format("spool usage {:.0f}% (critical watermark {}%)", used_pct, crit_pct)};
  if (used_pct >= warn_pct)
    return Alarm{"warning",
                 fmt::format("spool usage {:.0f}% (warning watermark {}%)", used_pct, warn_pct)};
  return std::nullopt;
}

std::vector<Alarm> status_alarms(const StatusInputs& in, int64_t now) {
  std::vector<Alarm> a;
  if (!in.spool.archive_alarm.empty()) a.push_back({"critical", in.spool.archive_alarm});
  if (auto s = spool_usage_alarm(in.spool_usage.used_pct, in.usage_warn_pct, in.usage_crit_pct))
    a.push_back(*s);
  a.insert(a.end(), in.other_alarms.begin(), in.other_alarms.end());
  for (const ErasePeerStats& e : in.erase_queue)
    if (e.refused > 0)
      a.push_back({"warning", "peer " + e.peer + " refused " + std::to_string(e.refused) +
                                  " erasure(s): " + e.last_error});
  if (in.erase_pending > 0)
    a.push_back({"warning", std::to_string(in.erase_pending) +
                                " erasure(s) not finished here (retried; see the log)"});
  if (in.repl) peer_alarms(*in.repl, now, a);
  if (in.conflicts > 0)
    a.push_back({"warning",
                 fmt::format("identity conflicts: {} recordings arrived with content that differs "
                             "from the copy here; neither was replaced (log: \"conflict:\")",
                             in.conflicts)});
  if (in.object_store) object_store_alarms(*in.object_store, now, a);
  if (in.scrub)
    if (auto sa = scrub::scrub_alarm(*in.scrub)) a.push_back({sa->first, sa->second});
  const PruneReport& last = in.retention.last;
  if (!last.refused.empty() && last.refused != "retention disabled")
    a.push_back({"warning", "retention refused: " + last.refused});
  if (last.errors > 0)
    a.push_back({"warning", fmt::format("retention: {} files could not be deleted in the last pass",
                                        last.errors)});
  if (last.objects.errors > 0)
    a.push_back({"warning", fmt::format("retention: {} objects could not be deleted from the "
                                        "object store in the last pass ({})",
                                        last.objects.errors, last.objects.last_error)});
  return a;
}

json status_json(const StatusInputs& in, int64_t now) {
  json j;
  j["node"] = in.node;
  j["version"] = in.version;
  j["uptime_s"] = (now - in.start_ms) / 1000;
  const SpoolSnapshot& sp = in.spool;
  j["spool"] = {{"path", in.spool_path},
                {"files", sp.files},
                {"bytes", sp.bytes},
                {"used_pct", in.spool_usage.used_pct},
                {"oldest_s", age_s(now, sp.oldest_ms)},
                {"overflows", in.overflows},
                {"watches", in.watches}};
  j["archive"] = {{"path", in.archive_path},
                  {"files", in.archive.files},
                  {"bytes", in.archive.bytes},
                  {"used_pct", in.archive_usage.used_pct},
                  {"pending", sp.files},
                  {"in_flight", sp.in_flight},
                  {"failing", sp.failing},
                  {"archived_since_start", sp.archived_files},
                  {"archived_bytes_since_start", sp.archived_bytes},
                  {"last_archived", iso(sp.last_archived_ms)},
                  {"reconciled", in.reconciled},
                  {"layout", in.layout}};
  json peers = json::array();
  j["replication"] = replication_json(in, now, peers);
  j["peers"] = peers;
  const RetentionSnapshot& r = in.retention;
  j["retention"] = {{"keep_s", r.settings.policy.keep.count() / 1000},
                    {"last_prune", iso(r.last_prune_ms)},
                    {"next_prune", iso(r.next_prune_ms)},
                    {"running", r.running},
                    {"last_pruned", r.last.removed},
                    {"pruned_total", in.pruned_total},
                    {"refused", r.last.refused},
                    {"waiting", r.waiting},
                    {"holds", in.holds},
                    {"keep_local_s", r.settings.policy.keep_local.count() / 1000},
                    {"last_offloaded", r.last.offloaded},
                    {"last_unstored", r.last.unstored},
                    {"last_objects_deleted", r.last.objects.removed},
                    {"last_objects_held", r.last.objects.held}};
  j["object_store"] = object_store_json(in.object_store, now);
  j["backfill"] = in.backfill ? backfill_json(*in.backfill) : json(nullptr);
  j["scrub"] = in.scrub ? scrub::snapshot_json(*in.scrub, in.node) : json(nullptr);
  j["identity"] = {{"collisions", in.collisions}, {"conflicts", in.conflicts}};
  json eq = json::array();
  for (const ErasePeerStats& e : in.erase_queue)
    eq.push_back({{"peer", e.peer},
                  {"pending", e.pending},
                  {"refused", e.refused},
                  {"last_error", e.last_error}});
  j["erasure"] = {{"erased_total", in.erased_total},
                  {"tombstones", in.tombstones},
                  {"pending", in.erase_pending},
                  {"peers", eq}};
  const bool serving = !in.metrics_address.empty();
  j["metrics"] = {{"listen", in.metrics_listen},
                  {"address", serving ? json(in.metrics_address) : json(nullptr)},
                  {"port", serving ? json(in.metrics_port) : json(nullptr)}};
  json alarms = json::array();
  for (const Alarm& a : status_alarms(in, now))
    alarms.push_back({{"severity", a.severity}, {"text", a.text}});
  j["alarms"] = alarms;
  return j;
}

}  // namespace recsync
