#include "daemon/settings.h"

#include <memory>

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

std::function<void(std::function<nlohmann::json()>, std::function<void(nlohmann::json)>)>
off_loop_runner(uv_loop_t* loop) {
  using json = nlohmann::json;
  return [loop](std::function<json()> work, std::function<void(json)> done) {
    struct Job {
      uv_work_t w;
      std::function<json()> work;
      std::function<void(json)> done;
      json result;
    };
    auto* job = new Job{{}, std::move(work), std::move(done), {}};
    job->w.data = job;
    uv_queue_work(
        loop, &job->w,
        [](uv_work_t* w) {
          static_cast<Job*>(w->data)->result = static_cast<Job*>(w->data)->work();
        },
        [](uv_work_t* w, int) {
          std::unique_ptr<Job> j(static_cast<Job*>(w->data));
          j->done(std::move(j->result));
        });
  };
}

}  // namespace recsync
