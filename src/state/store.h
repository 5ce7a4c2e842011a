#pragma once
// Durable state of one node in SQLite: the index of archived recordings,
// holds, the deletion audit, and small key/value metadata.
//
// Files on disk are the truth; the recordings table is an index that can be
// rebuilt from a scan of the archive (begin_scan / scan_seen / end_scan). A
// lost or corrupt database therefore costs a rescan, never a recording.
//
// Storage: WAL journal, synchronous=NORMAL (a power cut may lose the last
// commits, never consistency), busy_timeout 5 s, foreign keys off. Schema
// versioned with PRAGMA user_version (kSchemaVersion). Prepared statements are
// cached for the life of the store.
//
// Thread safety: every method may be called from any thread; one internal
// mutex serializes all calls (the loop thread and archive workers share one
// store). SQLite runs in its no-mutex mode under that lock.
//
// Errors: SQLite failures become Status values naming the database path;
// SQLITE_CORRUPT / SQLITE_NOTADB become kCorrupt, SQLITE_BUSY kBusy,
// SQLITE_FULL kNoSpace, the rest kIo.
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "recsync/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace recsync {

// One archived recording.
struct RecordingRow {
  int64_t id = 0;    // assigned by the store; ignored on upsert
  std::string rel;   // archive-relative path, unique
  std::string name;  // recording id (names.h recording_id of the basename)
  uint64_t size = 0;
  std::string hash;         // "" = not computed (adopted files)
  int64_t rec_time_ms = 0;  // recording time (file mtime at take-up), ms since epoch
  int64_t archived_at_ms = 0;
  std::string origin = "local";  // "local" or the peer name it came from
};

// A hold keeps matching recordings from being pruned until released.
struct HoldRow {
  std::string target;  // recording id or archive-relative path
  std::string reason;
  int64_t created_ms = 0;
};

// One deletion, as written to the audit table (and the audit log file).
struct AuditRow {
  std::string rel;
  uint64_t size = 0;
  std::string hash;
  int64_t rec_time_ms = 0;
  int64_t deleted_ms = 0;
  std::string policy;
};

// One recording waiting to be acked by one peer (the replication queue).
struct QueueItem {
  std::string peer;
  std::string rel;
  uint64_t size = 0;
  std::string hash;
  int64_t mtime_ns = 0;
  int64_t enqueued_ms = 0;
  int prio = 0;  // 0 live, 1 retry (a transfer of it failed before)
  int attempts = 0;
  int64_t next_try_ms = 0;  // not offered before this (wall ms)
  std::string last_error;
};

struct QueueStats {
  uint64_t live_files = 0, live_bytes = 0, retry_files = 0, retry_bytes = 0;
  int64_t oldest_enqueued_ms = 0;  // 0 when empty
  uint64_t files() const { return live_files + retry_files; }
  uint64_t bytes() const { return live_bytes + retry_bytes; }
};

// A hold change waiting to be copied to one peer.
struct HoldOp {
  static constexpr int kAdd = 1, kRelease = 2;  // same values as peer::HoldMsg::Op
  int64_t seq = 0;
  int op = kAdd;
  HoldRow hold;  // reason and created_ms are empty/0 for a release
};

struct StoreStats {
  uint64_t files = 0, bytes = 0;
  // 0 when the store holds no recordings.
  int64_t newest_rec_time_ms = 0, oldest_rec_time_ms = 0;
};

// The lookup key find() uses for a recording name: the low 31 bits of its
// XXH3-64 hash. Stored in the database (recordings.name_key), so it must
// never change; equal names always give equal keys, different names may too.
int64_t name_key(std::string_view name);

class StateStore {
 public:
  static constexpr int kSchemaVersion = 3;
  // The cursor that starts an older_than() walk.
  static constexpr int64_t kFirstTime = std::numeric_limits<int64_t>::min();

  // Opens (creating if absent) the database at db_path and, with verify,
  // checks it (PRAGMA quick_check: reads the whole file, seconds for a
  // 500k-recording DB on a cold cache; the daemon verifies only after an
  // unclean shutdown). A file that is not a database (detected either way) or
  // fails the check gives kCorrupt with the path: the caller may quarantine()
  // it and open again to start empty. A schema newer than kSchemaVersion
  // gives kInvalid (a downgrade; do not quarantine).
  static Result<std::unique_ptr<StateStore>> open(const std::string& db_path, bool verify = true);

  // Renames db_path, db_path-wal and db_path-shm (those that exist) to
  // "<name>.corrupt-<unixtime>", never over an existing file, and fsyncs the
  // folder. The store must not be open.
  static Status quarantine(const std::string& db_path);

  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  const std::string& path() const { return path_; }

  // Inserts or replaces the row with r.rel (r.id is ignored; an existing row
  // keeps its id). The row counts as seen by the scan in progress, if any.
  Status upsert_recording(const RecordingRow& r);
  // The same, and in the same transaction queues the recording for every
  // peer in `peers` (replication queue; mtime_ns is sent with it). An entry
  // already queued for (peer, rel) with the same hash keeps its place.
  Status upsert_recording(const RecordingRow& r, const std::vector<std::string>& peers,
                          int64_t mtime_ns);

  // ---- replication queue (rows live until the peer acks) ----
  // The next entry to offer `peer` at wall time now_ms: first the oldest live
  // (prio 0) entry enqueued within live_window_ms, else the first due entry
  // by (prio, enqueued_ms). nullopt when nothing is due.
  Result<std::optional<QueueItem>> queue_next(const std::string& peer, int64_t now_ms,
                                              int64_t live_window_ms);
  // Up to `limit` entries in the order queue_next would offer them (fresh
  // live entries, then everything due by (prio, age)), no duplicates. The
  // sender skips those already in flight.
  Result<std::vector<QueueItem>> queue_batch(const std::string& peer, int64_t now_ms,
                                             int64_t live_window_ms, size_t limit);
  // The peer acked (peer, rel) with this hash: the entry goes. An entry
  // re-queued meanwhile with other content stays.
  Status queue_done(const std::string& peer, const std::string& rel, const std::string& hash);
  // A transfer failed: the entry becomes a retry (prio 1), due at next_try_ms.
  Status queue_defer(const std::string& peer, const std::string& rel, int64_t next_try_ms,
                     const std::string& error_text);
  Result<QueueStats> queue_stats(const std::string& peer);
  // Files queued per peer name, for every name with entries (finds entries
  // left for a peer that was removed or renamed in the config).
  Result<std::vector<std::pair<std::string, uint64_t>>> queue_peers();

  // Removes the row for rel; absent is fine.
  Status remove_recording(const std::string& rel);
  // Removes many rows in one transaction (the pruner's batches).
  Status remove_recordings(const std::vector<std::string>& rels);
  Result<std::optional<RecordingRow>> get_recording(const std::string& rel);
  // Rows whose name or rel equals id_or_rel, ordered by id.
  Result<std::vector<RecordingRow>> find(const std::string& id_or_rel);
  // Rows with rec_time_ms < cutoff_ms, ordered by (rec_time_ms, id), strictly
  // after the cursor (after_time_ms, after_id), at most limit. Start with
  // (kFirstTime, 0); continue with the last row's (rec_time_ms, id). Rows
  // deleted between calls do not disturb the walk.
  Result<std::vector<RecordingRow>> older_than(int64_t cutoff_ms, int64_t after_time_ms,
                                               int64_t after_id, size_t limit);
  // Counts and byte totals are kept by triggers, times come from the
  // (rec_time_ms, id) index: answers in well under a millisecond at any size.
  Result<StoreStats> stats();

  // Adds or replaces the hold on h.target.
  Status add_hold(const HoldRow& h);
  // True when a hold on target existed and is now gone.
  Result<bool> release_hold(const std::string& target);
  // The same, and in the same transaction queues the change for every peer
  // in `peers` (holds are copied to peers, SPEC 4.4; a release only when a
  // hold was there).
  Status add_hold(const HoldRow& h, const std::vector<std::string>& peers);
  Result<bool> release_hold(const std::string& target, const std::vector<std::string>& peers);
  // The oldest hold change not yet acked by `peer`; hold_op_done removes it.
  Result<std::optional<HoldOp>> hold_ops_next(const std::string& peer);
  Status hold_op_done(int64_t seq);
  // All holds, ordered by target.
  Result<std::vector<HoldRow>> holds();

  // Appends all rows in one transaction.
  Status append_audit(const std::vector<AuditRow>& rows);
  Result<uint64_t> audit_count();

  // This connection's SQLite page cache in KiB (PRAGMA cache_size, default
  // 2,000 KiB). A bulk pass (the pruner) raises it for the pass so the pages
  // of a big transaction stay in memory instead of spilling to the WAL
  // several times, and restores it after; lowering it releases the memory.
  Result<int64_t> cache_kib();
  Status set_cache_kib(int64_t kib);

  // WAL pages after which a commit checkpoints (PRAGMA wal_autocheckpoint,
  // SQLite's default 1,000). A bulk pass raises it so the pages it dirties
  // again in every transaction reach the database file once, not once per
  // checkpoint, and puts the old value back after; the next commit then
  // checkpoints what built up.
  Result<int64_t> wal_autocheckpoint();
  Status set_wal_autocheckpoint(int64_t pages);

  Result<std::optional<std::string>> get_meta(const std::string& key);
  Status set_meta(const std::string& key, const std::string& value);

  // Rebuild from disk (mark and sweep). begin_scan() starts a new generation
  // and returns it. scan_seen() upserts rows found on disk (one transaction
  // per batch) marked with that generation: an existing row keeps its stored
  // hash when size and rec_time_ms are unchanged (else takes the batch's,
  // normally "" = cleared), and keeps its id, archived_at_ms and origin.
  // end_scan(gen) deletes the rows not seen in generation gen or later and
  // returns how many. Rows upserted through upsert_recording() during a scan
  // count as seen, so live archiving may run concurrently with a scan.
  Result<int64_t> begin_scan();
  Status scan_seen(const std::vector<RecordingRow>& batch, int64_t gen);
  Result<uint64_t> end_scan(int64_t gen);

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
  using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;
  class Use;  // resets a cached statement when done with it
  class Txn;  // BEGIN IMMEDIATE ... COMMIT, rolled back unless committed

  StateStore(std::string path, DbPtr db);
  Status init_schema(bool verify);
  Status exec(const char* sql);
  Status error(int rc, const std::string& what) const;
  // The cached prepared statement for sql (sql must be a string literal: the
  // cache is keyed by its text).
  Result<sqlite3_stmt*> stmt(const char* sql);
  Status upsert_locked(const RecordingRow& r);
  Status add_hold_locked(const HoldRow& h);
  Result<bool> release_hold_locked(const std::string& target);
  Status queue_hold_op_locked(const std::vector<std::string>& peers, int op, const HoldRow& h);

  std::string path_;
  std::mutex mu_;
  DbPtr db_;
  std::unordered_map<std::string, StmtPtr> stmts_;
  int64_t scan_gen_ = 0;  // the newest generation handed out
};

}  // namespace recsync
