#pragma once
// recsyncd's engine: wires the watcher, aggregator, archive workers, state
// store, retention and the control socket onto one libuv loop.
//
// Threads: the loop thread owns every libuv handle and the in-memory spool
// work set; `archive.workers` threads run Archiver::archive_one; one thread
// runs retention passes; one reconciles the archive with the state store at
// start (adopting an existing archive in place). Results come back to the
// loop through uv_async.
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
