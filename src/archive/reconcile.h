#pragma once
// The startup reconcile of the archive with the state store (files are the
// truth): walks the archive, adopts every recording it finds (an old flat
// cron tree included) into the index, drops rows whose files are gone, and
// removes archive temps left by a crashed earlier run (older than this
// run's start). A file it adopts is this node's own unless its name says
// otherwise: "x.from-fs2.wav" is fs2's recording of origin path "x.wav"
// (placement.h). Then, once per archive, it moves copies that an older
// recsync published as "name.vN.ext" beside another node's recording of the
// same name to where the identity rule puts them (migrate_identity.h). Runs once per start, in the
// background, on its own thread (rs-reconcile), while archiving goes on (rows written meanwhile
// count as seen). Stopped early, it never sweeps (a partial walk must not drop rows).
//
// Threads: start()/stop() from the owner; done() and seen() from any thread;
// on_done runs on the reconcile thread.
#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "archive/placer.h"
#include "recsync/env.h"
#include "state/store.h"
#include "watch/file_filter.h"

namespace recsync {

class ArchiveReconciler {
 public:
  // env and recordings must outlive this. started_ms: this run's start
  // (wall); temps older than it are a crashed run's.
  // self: this node's name. placer: for the one-time migration (may be
  // null: none).
  ArchiveReconciler(Env* env, StateStore* store, std::string root, int64_t started_ms,
                    std::string self, Placer* placer)
      : env_(env),
        store_(store),
        rec_(&store->recordings()),
        root_(std::move(root)),
        started_ms_(started_ms),
        self_(std::move(self)),
        placer_(placer) {}
  ~ArchiveReconciler() { stop(); }

  // filter: which files are recordings (a copy is kept).
  void start(const FileFilter& filter, std::function<void()> on_done);
  void stop();
  bool done() const { return done_.load(); }
  uint64_t seen() const { return seen_.load(); }

 private:
  void run(const FileFilter& filter);
  void walk(const FileFilter& filter, const std::string& rel_dir, int64_t gen,
            std::vector<RecordingRow>& batch, uint64_t& temps);

  Env* env_;
  StateStore* store_;
  Recordings* rec_;
  const std::string root_;
  const int64_t started_ms_;
  const std::string self_;
  Placer* placer_;
  std::thread thread_;
  std::atomic<bool> stop_{false}, done_{false};
  std::atomic<uint64_t> seen_{0};
};

}  // namespace recsync
