#pragma once
// recsyncd's engine: wiring only. It builds the components, runs them on one
// libuv loop and fans signals and reloads out to them:
//   state store (state/store.h)         durable state, opened first
//   SpoolPipeline (archive/)            watcher events -> archived recordings
//   InotifyWatcher (watch/)             raw events for the pipeline
//   ArchiveReconciler (archive/)        adopts the archive at start
//   RetentionScheduler (retention/)     pruning passes
//   replication::Service + BandwidthControl (replication/)   peers, the cap
//   ControlServer + control_commands (control/, daemon/)     the CLI's socket
//   MetricsEndpoint (daemon/metrics_endpoint.h)   /metrics, after the socket
// Status is daemon/status.h over the components' snapshots; the metrics page
// (daemon/metrics.h) renders from the same snapshot, published every second.
// The start is refused when preflight (daemon/preflight.h) finds an error.
//
// Threads: the loop thread owns every libuv handle and calls the pipeline;
// the components run their own threads (archive workers, reconcile,
// retention, replication). Results come back to the loop through uv_async.
#include <memory>

#include "recsync/config.h"
#include "recsync/env.h"
#include "recsync/status.h"

namespace recsync {

class Daemon {
 public:
  // env must outlive the daemon.
  Daemon(Config cfg, Env* env);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Starts everything, tells systemd READY=1 once the spool is watched, and
  // runs until SIGTERM or SIGINT. OK on a clean stop; an error if it could not
  // start (bad paths, socket in use, inotify limits).
  Status run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace recsync
