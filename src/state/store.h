#pragma once
// Durable state of one node: one SQLite connection (db.h) and the tables
// over it, each its own class with its own contract:
//   recordings()  the index of archived recordings (recordings.h)
//   queue()       the replication queue, which knows the peers (repl_queue.h)
//   holds()       holds and the queue copying them to peers (holds.h)
//   audit()       the deletion audit table (audit_table.h)
//   tombstones()  erased identities and the queue telling peers (tombstones.h)
//   backfill()    backfill plans and progress (backfill_table.h)
//   objects()     the object-store tier: verified objects, multipart
//                 uploads in progress (objects.h)
//   db()          metadata, bulk-pass tuning
// Files on disk are the truth: a lost or corrupt database costs a rescan of
// the archive, never a recording (the replication queue is rebuilt empty).
//
// Thread safety: every table may be used from any thread (the Db lock
// serializes them). The StateStore outlives all users of its tables.
#include <memory>
#include <string>

#include "recsync/env.h"
#include "recsync/status.h"
#include "state/audit_table.h"
#include "state/backfill_table.h"
#include "state/db.h"
#include "state/holds.h"
#include "state/objects.h"
#include "state/recordings.h"
#include "state/repl_queue.h"
#include "state/rows.h"
#include "state/tombstones.h"

namespace recsync {

class StateStore {
 public:
  static constexpr int kSchemaVersion = Db::kSchemaVersion;

  // Opens (creating if absent) the database at db_path: see Db::open for
  // verify, kCorrupt and kInvalid.
  static Result<std::unique_ptr<StateStore>> open(const std::string& db_path, bool verify = true);
  // Moves an unreadable database aside (Db::quarantine); env gives the time.
  static Status quarantine(Env* env, const std::string& db_path) {
    return Db::quarantine(env, db_path);
  }

  const std::string& path() const { return db_->path(); }
  Db& db() { return *db_; }
  Recordings& recordings() { return *recordings_; }
  ReplQueue& queue() { return *queue_; }
  Holds& holds() { return *holds_; }
  AuditTable& audit() { return *audit_; }
  Tombstones& tombstones() { return *tombstones_; }
  BackfillTable& backfill() { return *backfill_; }
  ObjectIndex& objects() { return *objects_; }

 private:
  StateStore() = default;
  std::unique_ptr<Db> db_;
  std::unique_ptr<Recordings> recordings_;
  std::unique_ptr<ReplQueue> queue_;
  std::unique_ptr<Holds> holds_;
  std::unique_ptr<AuditTable> audit_;
  std::unique_ptr<Tombstones> tombstones_;
  std::unique_ptr<BackfillTable> backfill_;
  std::unique_ptr<ObjectIndex> objects_;
};

}  // namespace recsync
