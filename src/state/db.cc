#include "state/db.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "recsync/log.h"
#include "state/recordings.h"
#include "state/sql_util.h"

namespace recsync {

using sql::column_text;
using sql::Use;

namespace {

constexpr int kBusyTimeoutMs = 5000;

// Version 1. Totals are kept by triggers so stats() never scans the table.
// The UNIQUE(rel) and (rec_time_ms, id) indexes serve get/upsert and the
// retention walk; the name index (replaced in version 3) served find().
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE recordings(
  id INTEGER PRIMARY KEY,
  rel TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  hash TEXT NOT NULL DEFAULT '',
  rec_time_ms INTEGER NOT NULL,
  archived_at_ms INTEGER NOT NULL,
  origin TEXT NOT NULL,
  gen INTEGER NOT NULL DEFAULT 0);
CREATE INDEX recordings_name ON recordings(name);
CREATE INDEX recordings_time ON recordings(rec_time_ms, id);
CREATE TABLE totals(k INTEGER PRIMARY KEY CHECK (k = 0), files INTEGER NOT NULL,
                    bytes INTEGER NOT NULL);
INSERT INTO totals VALUES (0, 0, 0);
CREATE TRIGGER recordings_ins AFTER INSERT ON recordings BEGIN
  UPDATE totals SET files = files + 1, bytes = bytes + NEW.size WHERE k = 0;
END;
CREATE TRIGGER recordings_del AFTER DELETE ON recordings BEGIN
  UPDATE totals SET files = files - 1, bytes = bytes - OLD.size WHERE k = 0;
END;
CREATE TRIGGER recordings_upd AFTER UPDATE OF size ON recordings
  WHEN NEW.size <> OLD.size BEGIN
  UPDATE totals SET bytes = bytes - OLD.size + NEW.size WHERE k = 0;
END;
CREATE TABLE holds(target TEXT PRIMARY KEY, reason TEXT NOT NULL,
                   created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE audit(id INTEGER PRIMARY KEY, rel TEXT NOT NULL, size INTEGER NOT NULL,
                   hash TEXT NOT NULL, rec_time_ms INTEGER NOT NULL,
                   deleted_ms INTEGER NOT NULL, policy TEXT NOT NULL);
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

// Version 2: the durable replication queue, one row per (peer, recording)
// not yet acked by that peer. prio 0 = live, 1 = retry (after a failure).
// The (peer, prio, enqueued_ms) index serves queue_next's two walks.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE repl_queue(
  peer TEXT NOT NULL,
  rel TEXT NOT NULL,
  size INTEGER NOT NULL,
  hash TEXT NOT NULL,
  mtime_ns INTEGER NOT NULL,
  enqueued_ms INTEGER NOT NULL,
  prio INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_try_ms INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(peer, rel)) WITHOUT ROWID;
CREATE INDEX repl_queue_order ON repl_queue(peer, prio, enqueued_ms);
CREATE TABLE hold_queue(
  seq INTEGER PRIMARY KEY,
  peer TEXT NOT NULL,
  op INTEGER NOT NULL,
  target TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX hold_queue_peer ON hold_queue(peer, seq);
PRAGMA user_version = 2;
)sql";

// Version 3: find() by recording id goes through a 31-bit hash of the name
// (name_key(), filled by the code that writes the row) instead of an index
// on the name itself. Recording names are random (call UUIDs), so a text
// index on them is touched at random by every insert and delete; the
// integer one is a quarter of its size, which keeps a retention pass's
// index updates mostly in cache. The column is filled for old rows below,
// with the same function registered on the connection.
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE recordings ADD COLUMN name_key INTEGER NOT NULL DEFAULT 0;
UPDATE recordings SET name_key = recsync_name_key(name);
DROP INDEX IF EXISTS recordings_name;
CREATE INDEX recordings_name_key ON recordings(name_key);
PRAGMA user_version = 3;
)sql";

// Version 4: one identity for each recording across nodes (SPEC 4.2), and
// the state of backfill (SPEC 4.6) and erasure (SPEC 4.4).
// - recordings.origin_rel: the path the recording's origin gave it ('' =
//   rel, the common case); only qualified copies ("x.from-fs2.wav") differ,
//   so the index on it is partial and costs the other rows nothing.
// - repl_queue.origin_rel/origin: what an offer names ('' = rel / this node);
//   prio 2 = backfill.
// - holds are kept by key: an identity hold ("id:<origin>:<hash>:<path>")
//   holds one recording on every node; a name hold (key = the target, the
//   only kind before version 4) holds whatever has that name or path here.
// - tombstones: erased identities, never sent, pulled or pushed again.
// - backfill_jobs/peers/items: a backfill's plan and progress, durable.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE recordings ADD COLUMN origin_rel TEXT NOT NULL DEFAULT '';
CREATE INDEX recordings_origin_rel ON recordings(origin_rel) WHERE origin_rel <> '';
ALTER TABLE repl_queue ADD COLUMN origin_rel TEXT NOT NULL DEFAULT '';
ALTER TABLE repl_queue ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE holds RENAME TO holds_v3;
CREATE TABLE holds(
  key TEXT PRIMARY KEY,
  target TEXT NOT NULL,
  origin TEXT NOT NULL DEFAULT '',
  origin_rel TEXT NOT NULL DEFAULT '',
  hash TEXT NOT NULL DEFAULT '',
  reason TEXT NOT NULL,
  created_ms INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO holds(key, target, reason, created_ms)
  SELECT target, target, reason, created_ms FROM holds_v3;
DROP TABLE holds_v3;
ALTER TABLE hold_queue ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE hold_queue ADD COLUMN origin_rel TEXT NOT NULL DEFAULT '';
ALTER TABLE hold_queue ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE TABLE tombstones(
  origin_rel TEXT NOT NULL,
  origin TEXT NOT NULL,
  hash TEXT NOT NULL,
  erased_ms INTEGER NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY(origin_rel, origin)) WITHOUT ROWID;
CREATE TABLE backfill_jobs(
  id INTEGER PRIMARY KEY,
  state TEXT NOT NULL,
  dry_run INTEGER NOT NULL,
  window_start_ms INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '');
CREATE TABLE backfill_peers(
  job INTEGER NOT NULL,
  peer TEXT NOT NULL,
  state TEXT NOT NULL,
  summary TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(job, peer)) WITHOUT ROWID;
CREATE TABLE backfill_items(
  origin_rel TEXT NOT NULL,
  origin TEXT NOT NULL,
  dir INTEGER NOT NULL,
  job INTEGER NOT NULL,
  peer TEXT NOT NULL,
  rel TEXT NOT NULL DEFAULT '',
  hash TEXT NOT NULL,
  size INTEGER NOT NULL,
  state INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(origin_rel, origin, dir, job)) WITHOUT ROWID;
CREATE INDEX backfill_items_progress ON backfill_items(job, dir, state, peer, size);
PRAGMA user_version = 4;
)sql";

// Version 5: the object-store tier (state/objects.h). `objects` holds one
// row per recording verified in the store; its (rec_time_ms, rel) index
// serves the retention walk past keep, name_key serves find(), and the
// partial index the legal holds. Totals by trigger, as for recordings.
// `object_uploads` keeps multipart upload ids for resuming. Idempotent (IF
// NOT EXISTS), so a database taken back to an older version re-migrates.
constexpr const char* kSchemaV5 = R"sql(
CREATE TABLE IF NOT EXISTS objects(
  rel TEXT PRIMARY KEY,
  key TEXT NOT NULL,
  name TEXT NOT NULL,
  name_key INTEGER NOT NULL,
  size INTEGER NOT NULL,
  hash TEXT NOT NULL,
  rec_time_ms INTEGER NOT NULL,
  etag TEXT NOT NULL,
  version_id TEXT NOT NULL,
  verified_ms INTEGER NOT NULL,
  legal_hold INTEGER NOT NULL DEFAULT 0,
  origin TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS objects_time ON objects(rec_time_ms, rel);
CREATE INDEX IF NOT EXISTS objects_name_key ON objects(name_key);
CREATE INDEX IF NOT EXISTS objects_held ON objects(rel) WHERE legal_hold = 1;
CREATE TABLE IF NOT EXISTS object_totals(k INTEGER PRIMARY KEY CHECK (k = 0), files INTEGER NOT NULL,
                           bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO object_totals VALUES (0, 0, 0);
CREATE TRIGGER IF NOT EXISTS objects_ins AFTER INSERT ON objects BEGIN
  UPDATE object_totals SET files = files + 1, bytes = bytes + NEW.size WHERE k = 0;
END;
CREATE TRIGGER IF NOT EXISTS objects_del AFTER DELETE ON objects BEGIN
  UPDATE object_totals SET files = files - 1, bytes = bytes - OLD.size WHERE k = 0;
END;
CREATE TRIGGER IF NOT EXISTS objects_upd AFTER UPDATE OF size ON objects WHEN NEW.size <> OLD.size BEGIN
  UPDATE object_totals SET bytes = bytes - OLD.size + NEW.size WHERE k = 0;
END;
CREATE TABLE IF NOT EXISTS object_uploads(
  rel TEXT PRIMARY KEY,
  key TEXT NOT NULL,
  hash TEXT NOT NULL,
  size INTEGER NOT NULL,
  part_size INTEGER NOT NULL,
  upload_id TEXT NOT NULL,
  created_ms INTEGER NOT NULL) WITHOUT ROWID;
PRAGMA user_version = 5;
)sql";

// Version 6: erasure (erase/eraser.h): who asked, expiry and pending files
// on tombstones; erase_queue (one row per peer still to be told); the
// audit table keeps an erasure's reason and operator.
constexpr const char* kSchemaV6 = R"sql(
ALTER TABLE tombstones ADD COLUMN uid INTEGER NOT NULL DEFAULT -1;
ALTER TABLE tombstones ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tombstones ADD COLUMN from_peer TEXT NOT NULL DEFAULT '';
ALTER TABLE tombstones ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS erase_queue(
  peer TEXT NOT NULL,
  origin_rel TEXT NOT NULL,
  origin TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_try_ms INTEGER NOT NULL DEFAULT 0,
  refused INTEGER NOT NULL DEFAULT 0,
  last_error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(peer, origin_rel, origin)) WITHOUT ROWID;
ALTER TABLE audit ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN uid INTEGER NOT NULL DEFAULT -1;
PRAGMA user_version = 6;
)sql";

// recsync_name_key(name) in SQL: the v3 migration fills name_key with it.
void sql_name_key(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const unsigned char* p = sqlite3_value_text(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  std::string_view name =
      p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n))
        : std::string_view();
  sqlite3_result_int64(ctx, name_key(name));
}

Status map_error(int rc, const std::string& msg) {
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::corrupt(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::busy(msg);
    case SQLITE_FULL:
      return Status::from_errno(ENOSPC, msg);
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
      return Status::io(msg, EACCES);
    default:
      return Status::io(msg);
  }
}

}  // namespace

void Db::DbCloser::operator()(sqlite3* db) const {
  // All statements are finalized before the handle goes (member order), so
  // close_v2 releases everything at once.
  sqlite3_close_v2(db);
}
void Db::StmtFinalizer::operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }

Db::Txn::~Txn() {
  if (began_ && !done_) (void)db_.exec(l_, "ROLLBACK");
}
Status Db::Txn::begin() {
  RECSYNC_RETURN_IF_ERROR(db_.exec(l_, "BEGIN IMMEDIATE"));
  began_ = true;
  return Status::ok();
}
Status Db::Txn::commit() {
  RECSYNC_RETURN_IF_ERROR(db_.exec(l_, "COMMIT"));
  done_ = true;
  return Status::ok();
}

Db::Db(std::string path, DbPtr db) : path_(std::move(path)), db_(std::move(db)) {}

Db::~Db() {
  stmts_.clear();  // finalize before the handle closes
}

Status Db::error(int rc, const std::string& what) const {
  const char* m = db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc);
  return map_error(rc, "state db " + path_ + ": " + what + ": " + (m ? m : sqlite3_errstr(rc)));
}

Status Db::exec(const Lock&, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::ok();
  std::string m = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  std::string head(sql, std::min<size_t>(std::char_traits<char>::length(sql), 40));
  return map_error(rc, "state db " + path_ + ": " + head + ": " + m);
}

int64_t Db::changes(const Lock&) const { return sqlite3_changes64(db_.get()); }
int64_t Db::last_insert_id(const Lock&) const { return sqlite3_last_insert_rowid(db_.get()); }

Result<sqlite3_stmt*> Db::stmt(const Lock&, const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second.get();
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(s);
    return error(rc, "prepare");
  }
  stmts_.emplace(sql, StmtPtr(s));
  return s;
}

Result<std::unique_ptr<Db>> Db::open(const std::string& path, bool verify) {
  // Check the header before SQLite touches anything: given a file that is
  // not a database it would still open, and on close delete, the -wal file
  // that a post-mortem may want.
  {
    std::ifstream f(path, std::ios::binary);
    char head[16] = {};
    if (f && f.read(head, sizeof head).gcount() > 0 &&
        std::memcmp(head, "SQLite format 3", sizeof head) != 0)
      return Status::corrupt("state db " + path + ": not an SQLite database (bad header)");
  }
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr handle(raw);  // sqlite3_open_v2 hands out a handle even on failure
  if (rc != SQLITE_OK) {
    std::string m = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return map_error(rc, "state db " + path + ": open: " + m);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  std::unique_ptr<Db> db(new Db(path, std::move(handle)));
  Lock l(*db);
  // The first statements read the header: a file that is not a database
  // fails here with SQLITE_NOTADB.
  RECSYNC_RETURN_IF_ERROR(db->exec(l, "PRAGMA journal_mode = WAL"));
  RECSYNC_RETURN_IF_ERROR(db->exec(l, "PRAGMA synchronous = NORMAL"));
  RECSYNC_RETURN_IF_ERROR(db->exec(l, "PRAGMA foreign_keys = OFF"));
  rc = sqlite3_create_function_v2(raw, "recsync_name_key", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                  nullptr, sql_name_key, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return db->error(rc, "register recsync_name_key");
  RECSYNC_RETURN_IF_ERROR(db->init_schema(l, verify));
  return db;
}

Status Db::init_schema(const Lock& l, bool verify) {
  int64_t version = 0;
  {
    auto s = stmt(l, "PRAGMA user_version");
    if (!s) return s.status();
    Use u(*s);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_ROW) return error(rc, "read user_version");
    version = sqlite3_column_int64(u.get(), 0);
  }
  if (version > kSchemaVersion)
    return Status::invalid("state db " + path_ + ": schema version " + std::to_string(version) +
                           " is newer than this recsync understands (" +
                           std::to_string(kSchemaVersion) + ")");
  if (version > 0 && verify) {
    // Page-level damage shows up here rather than at some later write.
    auto s = stmt(l, "PRAGMA quick_check(1)");
    if (!s) return s.status();
    Use u(*s);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_ROW) return error(rc, "quick_check");
    std::string res = column_text(u.get(), 0);
    if (res != "ok") return Status::corrupt("state db " + path_ + ": quick_check: " + res);
  }
  if (version >= kSchemaVersion) return Status::ok();
  Txn t(*this, l);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  if (version < 1) RECSYNC_RETURN_IF_ERROR(exec(l, kSchemaV1));
  if (version < 2) RECSYNC_RETURN_IF_ERROR(exec(l, kSchemaV2));
  if (version < 3) RECSYNC_RETURN_IF_ERROR(exec(l, kSchemaV3));
  if (version < 4) RECSYNC_RETURN_IF_ERROR(exec(l, kSchemaV4));
  if (version < 5) RECSYNC_RETURN_IF_ERROR(exec(l, kSchemaV5));
  if (version < 6) RECSYNC_RETURN_IF_ERROR(exec(l, kSchemaV6));
  return t.commit();
}

Status Db::quarantine(Env* env, const std::string& path) {
  const int64_t t = to_ms(env->now()) / 1000;
  std::string suffix = ".corrupt-" + std::to_string(t);
  bool any = false;
  for (const char* ext : {"", "-wal", "-shm"}) {
    std::string from = path + ext;
    auto st = env->lstat(from);
    if (!st) {
      if (st.status().code() == Status::Code::kNotFound) continue;
      return st.status();
    }
    RECSYNC_RETURN_IF_ERROR(env->rename_noreplace(from, from + suffix));
    any = true;
  }
  if (!any) return Status::not_found("quarantine " + path + ": no such file");
  RECSYNC_RETURN_IF_ERROR(env->sync_dir(path_dirname(path)));
  log::get("state")->warn("moved unreadable state db {} aside as {}{}", path, path, suffix);
  return Status::ok();
}

Result<std::optional<std::string>> Db::get_meta(const std::string& key) {
  Lock l(*this);
  return get_meta(l, key);
}
Status Db::set_meta(const std::string& key, const std::string& value) {
  Lock l(*this);
  return set_meta(l, key, value);
}

Result<std::optional<std::string>> Db::get_meta(const Lock& l, const std::string& key) {
  auto s = stmt(l, "SELECT value FROM meta WHERE key = ?1");
  if (!s) return s.status();
  Use u(*s);
  sql::bind_text(u.get(), 1, key);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return error(rc, "get meta " + key);
  return std::optional<std::string>(column_text(u.get(), 0));
}

Status Db::set_meta(const Lock& l, const std::string& key, const std::string& value) {
  auto s = stmt(l, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)");
  if (!s) return s.status();
  Use u(*s);
  sql::bind_text(u.get(), 1, key);
  sql::bind_text(u.get(), 2, value);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "set meta " + key);
  return Status::ok();
}

Result<int64_t> Db::cache_kib() {
  Lock l(*this);
  auto s = stmt(l, "PRAGMA cache_size");
  if (!s) return s.status();
  Use u(*s);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_ROW) return error(rc, "cache_size");
  int64_t v = sqlite3_column_int64(u.get(), 0);
  if (v < 0) return -v;  // negative = KiB, positive = pages
  auto p = stmt(l, "PRAGMA page_size");
  if (!p) return p.status();
  Use up(*p);
  rc = sqlite3_step(up.get());
  if (rc != SQLITE_ROW) return error(rc, "page_size");
  return v * sqlite3_column_int64(up.get(), 0) / 1024;
}

Status Db::set_cache_kib(int64_t kib) {
  Lock l(*this);
  std::string sql = "PRAGMA cache_size = -" + std::to_string(std::max<int64_t>(kib, 1));
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return error(rc, "cache_size");
  sqlite3_db_release_memory(db_.get());
  return Status::ok();
}

Result<int64_t> Db::wal_autocheckpoint() {
  Lock l(*this);
  auto s = stmt(l, "PRAGMA wal_autocheckpoint");
  if (!s) return s.status();
  Use u(*s);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_ROW) return error(rc, "wal_autocheckpoint");
  return sqlite3_column_int64(u.get(), 0);
}

Status Db::set_wal_autocheckpoint(int64_t pages) {
  Lock l(*this);
  int rc = sqlite3_wal_autocheckpoint(db_.get(),
                                      static_cast<int>(std::clamp<int64_t>(pages, 0, INT32_MAX)));
  if (rc != SQLITE_OK) return error(rc, "wal_autocheckpoint");
  return Status::ok();
}

}  // namespace recsync
