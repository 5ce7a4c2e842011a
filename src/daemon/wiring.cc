#include "daemon/wiring.h"

#include <fmt/format.h>

#include <algorithm>

namespace recsync {

RetentionSettings retention_settings(const Config& c) {
  RetentionSettings s;
  s.policy = {c.retention.keep, c.retention.clock_tolerance,
              c.object_store.enabled ? c.object_store.keep_local_or(c.retention.keep) : Millis{0},
              c.object_store.keep_fetched};
  s.interval = c.retention.interval;
  s.pace = c.retention.pace;
  s.tmp_grace = c.retention.tmp_grace;
  s.audit_log_path = c.audit_log_path();
  return s;
}

replication::BandwidthSettings bandwidth_settings(const Config& c) {
  return {c.replication.bandwidth_bps, c.replication.schedule, c.replication.schedule_text};
}

scrub::Settings scrub_settings(const Config& c) {
  return {c.scrub.interval, c.scrub.rate_bps, c.scrub.repair, c.audit_log_path()};
}

void queue_off_loop(uv_loop_t* loop, std::function<nlohmann::json()> work,
                    std::function<void(nlohmann::json)> done) {
  struct Job {
    uv_work_t w;
    std::function<nlohmann::json()> work;
    std::function<void(nlohmann::json)> done;
    nlohmann::json result;
  };
  auto* job = new Job{{}, std::move(work), std::move(done), {}};
  job->w.data = job;
  uv_queue_work(
      loop, &job->w,
      [](uv_work_t* w) { static_cast<Job*>(w->data)->result = static_cast<Job*>(w->data)->work(); },
      [](uv_work_t* w, int) {
        std::unique_ptr<Job> j(static_cast<Job*>(w->data));
        j->done(std::move(j->result));
      });
}

std::string orphaned_queue_report(const Config& cfg, StateStore& store) {
  std::string orphans;
  auto q = store.queue().peers_with_entries();
  if (!q) return orphans;
  for (auto& [name, n] : *q) {
    if (std::any_of(cfg.peers.begin(), cfg.peers.end(),
                    [&](const PeerConfig& p) { return p.name == name; }))
      continue;
    if (name == kStoreDestination) {
      if (!cfg.object_store.enabled)
        orphans += fmt::format(
            "{}{} recordings are queued for the object store, which is not "
            "configured any more",
            orphans.empty() ? "" : "; ", n);
      continue;
    }
    orphans += fmt::format(
        "{}{} recordings are queued for peer '{}', which is not configured "
        "any more",
        orphans.empty() ? "" : "; ", n, name);
  }
  return orphans;
}

std::unique_ptr<erase::Eraser> make_eraser(const Config& cfg, Env* env, StateStore* store,
                                           Placer* placer) {
  erase::EraserOptions o;
  o.node = cfg.node;
  o.archive_root = cfg.archive.path;
  o.spool_root = cfg.spool.path;
  o.audit_log_path = cfg.audit_log_path();
  o.keep = cfg.retention.keep;
  return std::make_unique<erase::Eraser>(env, store, placer, std::move(o));
}

void hook_eraser(erase::Eraser& e, objtier::ObjectTier* tier) {
  if (tier) e.set_tier_erase([tier](const std::string& rel) { return tier->erase(rel); });
}

}  // namespace recsync
