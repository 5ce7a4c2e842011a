#include "daemon/settings.h"

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

}  // namespace recsync
