#include "state/store.h"

#include <sqlite3.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#include "recsync/env.h"
#include "recsync/log.h"

namespace recsync {

int64_t name_key(std::string_view name) {
  return static_cast<int64_t>(XXH3_64bits(name.data(), name.size()) & 0x7fffffffu);
}

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

void sql_name_key(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const unsigned char* p = sqlite3_value_text(argv[0]);
  int n = sqlite3_value_bytes(argv[0]);
  std::string_view name =
      p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n))
        : std::string_view();
  sqlite3_result_int64(ctx, name_key(name));
}

void bind_text(sqlite3_stmt* s, int i, const std::string& v) {
  // SQLITE_STATIC: the string outlives the step; Use clears bindings after.
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
}

std::string column_text(sqlite3_stmt* s, int i) {
  const unsigned char* p = sqlite3_column_text(s, i);
  int n = sqlite3_column_bytes(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

RecordingRow read_row(sqlite3_stmt* s) {
  RecordingRow r;
  r.id = sqlite3_column_int64(s, 0);
  r.rel = column_text(s, 1);
  r.name = column_text(s, 2);
  r.size = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
  r.hash = column_text(s, 4);
  r.rec_time_ms = sqlite3_column_int64(s, 5);
  r.archived_at_ms = sqlite3_column_int64(s, 6);
  r.origin = column_text(s, 7);
  return r;
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

void StateStore::DbCloser::operator()(sqlite3* db) const {
  // All statements are finalized before the handle goes (member order), so
  // close_v2 releases everything at once.
  sqlite3_close_v2(db);
}
void StateStore::StmtFinalizer::operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }

class StateStore::Use {
 public:
  explicit Use(sqlite3_stmt* s) : s_(s) {}
  ~Use() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Use(const Use&) = delete;
  Use& operator=(const Use&) = delete;
  sqlite3_stmt* get() const { return s_; }

 private:
  sqlite3_stmt* s_;
};

class StateStore::Txn {
 public:
  explicit Txn(StateStore* st) : st_(st) {}
  ~Txn() {
    if (began_ && !done_) (void)st_->exec("ROLLBACK");
  }
  Status begin() {
    RECSYNC_RETURN_IF_ERROR(st_->exec("BEGIN IMMEDIATE"));
    began_ = true;
    return Status::ok();
  }
  Status commit() {
    RECSYNC_RETURN_IF_ERROR(st_->exec("COMMIT"));
    done_ = true;
    return Status::ok();
  }

 private:
  StateStore* st_;
  bool began_ = false, done_ = false;
};

StateStore::StateStore(std::string path, DbPtr db) : path_(std::move(path)), db_(std::move(db)) {}

StateStore::~StateStore() {
  stmts_.clear();  // finalize before the handle closes
}

Status StateStore::error(int rc, const std::string& what) const {
  const char* m = db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc);
  return map_error(rc, "state db " + path_ + ": " + what + ": " + (m ? m : sqlite3_errstr(rc)));
}

Status StateStore::exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::ok();
  std::string m = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  std::string head(sql, std::min<size_t>(std::char_traits<char>::length(sql), 40));
  return map_error(rc, "state db " + path_ + ": " + head + ": " + m);
}

Result<sqlite3_stmt*> StateStore::stmt(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second.get();
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(s);
    return error(rc, "prepare");
  }
  sqlite3_stmt* raw = s;
  stmts_.emplace(sql, StmtPtr(s));
  return raw;
}

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& db_path, bool verify) {
  // Check the header before SQLite touches anything: given a file that is
  // not a database it would still open, and on close delete, the -wal file
  // that a post-mortem may want.
  {
    std::ifstream f(db_path, std::ios::binary);
    char head[16] = {};
    if (f && f.read(head, sizeof head).gcount() > 0 &&
        std::memcmp(head, "SQLite format 3", sizeof head) != 0)
      return Status::corrupt("state db " + db_path + ": not an SQLite database (bad header)");
  }
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(db_path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);  // sqlite3_open_v2 hands out a handle even on failure
  if (rc != SQLITE_OK) {
    std::string m = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return map_error(rc, "state db " + db_path + ": open: " + m);
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  std::unique_ptr<StateStore> st(new StateStore(db_path, std::move(db)));
  // The first statements read the header: a file that is not a database
  // fails here with SQLITE_NOTADB.
  RECSYNC_RETURN_IF_ERROR(st->exec("PRAGMA journal_mode = WAL"));
  RECSYNC_RETURN_IF_ERROR(st->exec("PRAGMA synchronous = NORMAL"));
  RECSYNC_RETURN_IF_ERROR(st->exec("PRAGMA foreign_keys = OFF"));
  rc = sqlite3_create_function_v2(st->db_.get(), "recsync_name_key", 1,
                                  SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr, sql_name_key,
                                  nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return st->error(rc, "register recsync_name_key");
  RECSYNC_RETURN_IF_ERROR(st->init_schema(verify));
  return st;
}

Status StateStore::init_schema(bool verify) {
  int64_t version = 0;
  {
    auto s = stmt("PRAGMA user_version");
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
    auto s = stmt("PRAGMA quick_check(1)");
    if (!s) return s.status();
    Use u(*s);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_ROW) return error(rc, "quick_check");
    std::string res = column_text(u.get(), 0);
    if (res != "ok") return Status::corrupt("state db " + path_ + ": quick_check: " + res);
  }
  if (version < kSchemaVersion) {
    Txn t(this);
    RECSYNC_RETURN_IF_ERROR(t.begin());
    if (version < 1) RECSYNC_RETURN_IF_ERROR(exec(kSchemaV1));
    if (version < 2) RECSYNC_RETURN_IF_ERROR(exec(kSchemaV2));
    if (version < 3) RECSYNC_RETURN_IF_ERROR(exec(kSchemaV3));
    RECSYNC_RETURN_IF_ERROR(t.commit());
  }
  auto gen = get_meta("scan_gen");
  if (!gen) return gen.status();
  if (gen->has_value()) scan_gen_ = std::stoll(**gen);
  return Status::ok();
}

Status StateStore::quarantine(const std::string& db_path) {
  Env* env = Env::posix();
  int64_t t =
      std::chrono::duration_cast<std::chrono::seconds>(env->now().time_since_epoch()).count();
  std::string suffix = ".corrupt-" + std::to_string(t);
  bool any = false;
  for (const char* ext : {"", "-wal", "-shm"}) {
    std::string from = db_path + ext;
    auto st = env->lstat(from);
    if (!st) {
      if (st.status().code() == Status::Code::kNotFound) continue;
      return st.status();
    }
    RECSYNC_RETURN_IF_ERROR(env->rename_noreplace(from, from + suffix));
    any = true;
  }
  if (!any) return Status::not_found("quarantine " + db_path + ": no such file");
  RECSYNC_RETURN_IF_ERROR(env->sync_dir(path_dirname(db_path)));
  log::get("state")->warn("moved unreadable state db {} aside as {}{}", db_path, db_path, suffix);
  return Status::ok();
}

Status StateStore::upsert_locked(const RecordingRow& r) {
  auto s = stmt(
      "INSERT INTO recordings(rel, name, size, hash, rec_time_ms, archived_at_ms, origin, gen, "
      "name_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(rel) DO UPDATE SET "
      "name = excluded.name, name_key = excluded.name_key, size = excluded.size, "
      "hash = excluded.hash, "
      "rec_time_ms = excluded.rec_time_ms, archived_at_ms = excluded.archived_at_ms, "
      "origin = excluded.origin, gen = excluded.gen");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, r.rel);
  bind_text(u.get(), 2, r.name);
  sqlite3_bind_int64(u.get(), 3, static_cast<int64_t>(r.size));
  bind_text(u.get(), 4, r.hash);
  sqlite3_bind_int64(u.get(), 5, r.rec_time_ms);
  sqlite3_bind_int64(u.get(), 6, r.archived_at_ms);
  bind_text(u.get(), 7, r.origin);
  sqlite3_bind_int64(u.get(), 8, scan_gen_);
  sqlite3_bind_int64(u.get(), 9, name_key(r.name));
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "upsert " + r.rel);
  return Status::ok();
}

Status StateStore::upsert_recording(const RecordingRow& r) {
  std::lock_guard<std::mutex> l(mu_);
  return upsert_locked(r);
}

Status StateStore::upsert_recording(const RecordingRow& r, const std::vector<std::string>& peers,
                                    int64_t mtime_ns) {
  if (peers.empty()) return upsert_recording(r);
  std::lock_guard<std::mutex> l(mu_);
  Txn t(this);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  RECSYNC_RETURN_IF_ERROR(upsert_locked(r));
  // A row already queued for this path keeps its place unless the content
  // differs (then it is a new transfer).
  auto s = stmt(
      "INSERT INTO repl_queue(peer, rel, size, hash, mtime_ns, enqueued_ms) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(peer, rel) DO UPDATE SET "
      "size = excluded.size, hash = excluded.hash, mtime_ns = excluded.mtime_ns, "
      "enqueued_ms = excluded.enqueued_ms, prio = 0, attempts = 0, next_try_ms = 0, "
      "last_error = '' WHERE repl_queue.hash <> excluded.hash");
  if (!s) return s.status();
  for (const std::string& peer : peers) {
    Use u(*s);
    bind_text(u.get(), 1, peer);
    bind_text(u.get(), 2, r.rel);
    sqlite3_bind_int64(u.get(), 3, static_cast<int64_t>(r.size));
    bind_text(u.get(), 4, r.hash);
    sqlite3_bind_int64(u.get(), 5, mtime_ns);
    sqlite3_bind_int64(u.get(), 6, r.archived_at_ms);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return error(rc, "enqueue " + r.rel + " for " + peer);
  }
  return t.commit();
}

namespace {
QueueItem read_queue_item(sqlite3_stmt* s) {
  QueueItem q;
  q.peer = column_text(s, 0);
  q.rel = column_text(s, 1);
  q.size = static_cast<uint64_t>(sqlite3_column_int64(s, 2));
  q.hash = column_text(s, 3);
  q.mtime_ns = sqlite3_column_int64(s, 4);
  q.enqueued_ms = sqlite3_column_int64(s, 5);
  q.prio = static_cast<int>(sqlite3_column_int64(s, 6));
  q.attempts = static_cast<int>(sqlite3_column_int64(s, 7));
  q.next_try_ms = sqlite3_column_int64(s, 8);
  q.last_error = column_text(s, 9);
  return q;
}
}  // namespace

Result<std::optional<QueueItem>> StateStore::queue_next(const std::string& peer, int64_t now_ms,
                                                        int64_t live_window_ms) {
  auto b = queue_batch(peer, now_ms, live_window_ms, 1);
  if (!b) return b.status();
  if (b->empty()) return std::optional<QueueItem>();
  return std::optional<QueueItem>(std::move(b->front()));
}

Result<std::vector<QueueItem>> StateStore::queue_batch(const std::string& peer, int64_t now_ms,
                                                       int64_t live_window_ms, size_t limit) {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<QueueItem> out;
  // Fresh live entries first (oldest of them first), so a backlog left by a
  // peer outage does not delay calls that just ended; then everything due in
  // (prio, age) order.
  auto fresh = stmt(
      "SELECT peer, rel, size, hash, mtime_ns, enqueued_ms, prio, attempts, next_try_ms, "
      "last_error FROM repl_queue WHERE peer = ?1 AND prio = 0 AND enqueued_ms >= ?2 "
      "ORDER BY enqueued_ms LIMIT ?3");
  if (!fresh) return fresh.status();
  {
    Use u(*fresh);
    bind_text(u.get(), 1, peer);
    sqlite3_bind_int64(u.get(), 2, now_ms - live_window_ms);
    sqlite3_bind_int64(u.get(), 3, static_cast<int64_t>(limit));
    int rc;
    while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) out.push_back(read_queue_item(u.get()));
    if (rc != SQLITE_DONE) return error(rc, "queue_batch");
  }
  if (out.size() >= limit) return out;
  auto any = stmt(
      "SELECT peer, rel, size, hash, mtime_ns, enqueued_ms, prio, attempts, next_try_ms, "
      "last_error FROM repl_queue WHERE peer = ?1 AND next_try_ms <= ?2 "
      "ORDER BY prio, enqueued_ms LIMIT ?3");
  if (!any) return any.status();
  Use u(*any);
  bind_text(u.get(), 1, peer);
  sqlite3_bind_int64(u.get(), 2, now_ms);
  // Fresh ones may come again in this walk: ask for enough to fill up.
  sqlite3_bind_int64(u.get(), 3, static_cast<int64_t>(limit + out.size()));
  const size_t n_fresh = out.size();
  int rc = SQLITE_DONE;
  while (out.size() < limit && (rc = sqlite3_step(u.get())) == SQLITE_ROW) {
    QueueItem q = read_queue_item(u.get());
    bool dup = false;
    for (size_t i = 0; i < n_fresh; ++i) dup |= out[i].rel == q.rel;
    if (!dup) out.push_back(std::move(q));
  }
  if (out.size() < limit && rc != SQLITE_DONE) return error(rc, "queue_batch");
  return out;
}

Status StateStore::queue_done(const std::string& peer, const std::string& rel,
                              const std::string& hash) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("DELETE FROM repl_queue WHERE peer = ?1 AND rel = ?2 AND hash = ?3");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  bind_text(u.get(), 2, rel);
  bind_text(u.get(), 3, hash);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "dequeue " + rel);
  return Status::ok();
}

Status StateStore::queue_defer(const std::string& peer, const std::string& rel, int64_t next_try_ms,
                               const std::string& error_text) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt(
      "UPDATE repl_queue SET prio = 1, attempts = attempts + 1, next_try_ms = ?3, "
      "last_error = ?4 WHERE peer = ?1 AND rel = ?2");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  bind_text(u.get(), 2, rel);
  sqlite3_bind_int64(u.get(), 3, next_try_ms);
  bind_text(u.get(), 4, error_text);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "defer " + rel);
  return Status::ok();
}

Result<std::vector<std::pair<std::string, uint64_t>>> StateStore::queue_peers() {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("SELECT peer, count(*) FROM repl_queue GROUP BY peer ORDER BY peer");
  if (!s) return s.status();
  Use u(*s);
  std::vector<std::pair<std::string, uint64_t>> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW)
    out.emplace_back(column_text(u.get(), 0),
                     static_cast<uint64_t>(sqlite3_column_int64(u.get(), 1)));
  if (rc != SQLITE_DONE) return error(rc, "queue_peers");
  return out;
}

Result<QueueStats> StateStore::queue_stats(const std::string& peer) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt(
      "SELECT prio, count(*), coalesce(sum(size), 0), coalesce(min(enqueued_ms), 0) "
      "FROM repl_queue WHERE peer = ?1 GROUP BY prio");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  QueueStats q;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
    const int prio = static_cast<int>(sqlite3_column_int64(u.get(), 0));
    const uint64_t n = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 1));
    const uint64_t b = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 2));
    const int64_t oldest = sqlite3_column_int64(u.get(), 3);
    (prio == 0 ? q.live_files : q.retry_files) += n;
    (prio == 0 ? q.live_bytes : q.retry_bytes) += b;
    if (oldest && (q.oldest_enqueued_ms == 0 || oldest < q.oldest_enqueued_ms))
      q.oldest_enqueued_ms = oldest;
  }
  if (rc != SQLITE_DONE) return error(rc, "queue_stats");
  return q;
}

Status StateStore::remove_recording(const std::string& rel) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("DELETE FROM recordings WHERE rel = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, rel);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "remove " + rel);
  return Status::ok();
}

Status StateStore::remove_recordings(const std::vector<std::string>& rels) {
  std::lock_guard<std::mutex> l(mu_);
  Txn t(this);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  auto s = stmt("DELETE FROM recordings WHERE rel = ?1");
  if (!s) return s.status();
  for (const std::string& rel : rels) {
    Use u(*s);
    bind_text(u.get(), 1, rel);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return error(rc, "remove " + rel);
  }
  return t.commit();
}

Result<std::optional<RecordingRow>> StateStore::get_recording(const std::string& rel) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt(
      "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin "
      "FROM recordings WHERE rel = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, rel);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_DONE) return std::optional<RecordingRow>();
  if (rc != SQLITE_ROW) return error(rc, "get " + rel);
  return std::optional<RecordingRow>(read_row(u.get()));
}

Result<std::vector<RecordingRow>> StateStore::find(const std::string& id_or_rel) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt(
      "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin "
      "FROM recordings WHERE (name_key = ?2 AND name = ?1) OR rel = ?1 ORDER BY id");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, id_or_rel);
  sqlite3_bind_int64(u.get(), 2, name_key(id_or_rel));
  std::vector<RecordingRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) out.push_back(read_row(u.get()));
  if (rc != SQLITE_DONE) return error(rc, "find " + id_or_rel);
  return out;
}

Result<std::vector<RecordingRow>> StateStore::older_than(int64_t cutoff_ms, int64_t after_time_ms,
                                                         int64_t after_id, size_t limit) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt(
      "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin "
      "FROM recordings WHERE rec_time_ms < ?1 AND (rec_time_ms, id) > (?2, ?3) "
      "ORDER BY rec_time_ms, id LIMIT ?4");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, cutoff_ms);
  sqlite3_bind_int64(u.get(), 2, after_time_ms);
  sqlite3_bind_int64(u.get(), 3, after_id);
  sqlite3_bind_int64(u.get(), 4, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  std::vector<RecordingRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) out.push_back(read_row(u.get()));
  if (rc != SQLITE_DONE) return error(rc, "older_than");
  return out;
}

Result<StoreStats> StateStore::stats() {
  std::lock_guard<std::mutex> l(mu_);
  StoreStats st;
  {
    auto s = stmt("SELECT files, bytes FROM totals WHERE k = 0");
    if (!s) return s.status();
    Use u(*s);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_ROW) return error(rc, "stats");
    st.files = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 0));
    st.bytes = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 1));
  }
  // Two separate queries so each uses the min/max optimisation on the index.
  for (bool newest : {true, false}) {
    auto s = newest ? stmt("SELECT MAX(rec_time_ms) FROM recordings")
                    : stmt("SELECT MIN(rec_time_ms) FROM recordings");
    if (!s) return s.status();
    Use u(*s);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_ROW) return error(rc, "stats");
    int64_t v =
        sqlite3_column_type(u.get(), 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(u.get(), 0);
    (newest ? st.newest_rec_time_ms : st.oldest_rec_time_ms) = v;
  }
  return st;
}

Status StateStore::add_hold(const HoldRow& h) {
  std::lock_guard<std::mutex> l(mu_);
  return add_hold_locked(h);
}

Status StateStore::add_hold_locked(const HoldRow& h) {
  auto s = stmt("INSERT OR REPLACE INTO holds(target, reason, created_ms) VALUES (?1, ?2, ?3)");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, h.target);
  bind_text(u.get(), 2, h.reason);
  sqlite3_bind_int64(u.get(), 3, h.created_ms);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "add hold " + h.target);
  return Status::ok();
}

Status StateStore::queue_hold_op_locked(const std::vector<std::string>& peers, int op,
                                        const HoldRow& h) {
  auto s = stmt(
      "INSERT INTO hold_queue(peer, op, target, reason, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!s) return s.status();
  for (const std::string& peer : peers) {
    Use u(*s);
    bind_text(u.get(), 1, peer);
    sqlite3_bind_int64(u.get(), 2, op);
    bind_text(u.get(), 3, h.target);
    bind_text(u.get(), 4, h.reason);
    sqlite3_bind_int64(u.get(), 5, h.created_ms);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return error(rc, "queue hold for " + peer);
  }
  return Status::ok();
}

Status StateStore::add_hold(const HoldRow& h, const std::vector<std::string>& peers) {
  std::lock_guard<std::mutex> l(mu_);
  Txn t(this);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  RECSYNC_RETURN_IF_ERROR(add_hold_locked(h));
  RECSYNC_RETURN_IF_ERROR(queue_hold_op_locked(peers, HoldOp::kAdd, h));
  return t.commit();
}

Result<bool> StateStore::release_hold(const std::string& target,
                                      const std::vector<std::string>& peers) {
  std::lock_guard<std::mutex> l(mu_);
  Txn t(this);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  auto r = release_hold_locked(target);
  if (!r) return r.status();
  HoldRow h;
  h.target = target;
  if (*r) RECSYNC_RETURN_IF_ERROR(queue_hold_op_locked(peers, HoldOp::kRelease, h));
  RECSYNC_RETURN_IF_ERROR(t.commit());
  return *r;
}

Result<std::optional<HoldOp>> StateStore::hold_ops_next(const std::string& peer) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt(
      "SELECT seq, op, target, reason, created_ms FROM hold_queue WHERE peer = ?1 "
      "ORDER BY seq LIMIT 1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_DONE) return std::optional<HoldOp>();
  if (rc != SQLITE_ROW) return error(rc, "hold_ops_next");
  HoldOp o;
  o.seq = sqlite3_column_int64(u.get(), 0);
  o.op = static_cast<int>(sqlite3_column_int64(u.get(), 1));
  o.hold.target = column_text(u.get(), 2);
  o.hold.reason = column_text(u.get(), 3);
  o.hold.created_ms = sqlite3_column_int64(u.get(), 4);
  return std::optional<HoldOp>(std::move(o));
}

Status StateStore::hold_op_done(int64_t seq) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("DELETE FROM hold_queue WHERE seq = ?1");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, seq);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "hold_op_done");
  return Status::ok();
}

Result<bool> StateStore::release_hold(const std::string& target) {
  std::lock_guard<std::mutex> l(mu_);
  return release_hold_locked(target);
}

Result<bool> StateStore::release_hold_locked(const std::string& target) {
  auto s = stmt("DELETE FROM holds WHERE target = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, target);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "release hold " + target);
  return sqlite3_changes(db_.get()) > 0;
}

Result<std::vector<HoldRow>> StateStore::holds() {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("SELECT target, reason, created_ms FROM holds ORDER BY target");
  if (!s) return s.status();
  Use u(*s);
  std::vector<HoldRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
    HoldRow h;
    h.target = column_text(u.get(), 0);
    h.reason = column_text(u.get(), 1);
    h.created_ms = sqlite3_column_int64(u.get(), 2);
    out.push_back(std::move(h));
  }
  if (rc != SQLITE_DONE) return error(rc, "list holds");
  return out;
}

Status StateStore::append_audit(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return Status::ok();
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt(
      "INSERT INTO audit(rel, size, hash, rec_time_ms, deleted_ms, policy) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!s) return s.status();
  Txn t(this);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  for (const AuditRow& a : rows) {
    Use u(*s);
    bind_text(u.get(), 1, a.rel);
    sqlite3_bind_int64(u.get(), 2, static_cast<int64_t>(a.size));
    bind_text(u.get(), 3, a.hash);
    sqlite3_bind_int64(u.get(), 4, a.rec_time_ms);
    sqlite3_bind_int64(u.get(), 5, a.deleted_ms);
    bind_text(u.get(), 6, a.policy);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return error(rc, "append audit " + a.rel);
  }
  return t.commit();
}

Result<uint64_t> StateStore::audit_count() {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("SELECT COUNT(*) FROM audit");
  if (!s) return s.status();
  Use u(*s);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_ROW) return error(rc, "audit count");
  return static_cast<uint64_t>(sqlite3_column_int64(u.get(), 0));
}

Result<int64_t> StateStore::cache_kib() {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("PRAGMA cache_size");
  if (!s) return s.status();
  Use u(*s);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_ROW) return error(rc, "cache_size");
  int64_t v = sqlite3_column_int64(u.get(), 0);
  if (v < 0) return -v;  // negative = KiB, positive = pages
  auto p = stmt("PRAGMA page_size");
  if (!p) return p.status();
  Use up(*p);
  rc = sqlite3_step(up.get());
  if (rc != SQLITE_ROW) return error(rc, "page_size");
  return v * sqlite3_column_int64(up.get(), 0) / 1024;
}

Status StateStore::set_cache_kib(int64_t kib) {
  std::lock_guard<std::mutex> l(mu_);
  std::string sql = "PRAGMA cache_size = -" + std::to_string(std::max<int64_t>(kib, 1));
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return error(rc, "cache_size");
  sqlite3_db_release_memory(db_.get());
  return Status::ok();
}

Result<int64_t> StateStore::wal_autocheckpoint() {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("PRAGMA wal_autocheckpoint");
  if (!s) return s.status();
  Use u(*s);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_ROW) return error(rc, "wal_autocheckpoint");
  return sqlite3_column_int64(u.get(), 0);
}

Status StateStore::set_wal_autocheckpoint(int64_t pages) {
  std::lock_guard<std::mutex> l(mu_);
  int rc = sqlite3_wal_autocheckpoint(db_.get(),
                                      static_cast<int>(std::clamp<int64_t>(pages, 0, INT32_MAX)));
  if (rc != SQLITE_OK) return error(rc, "wal_autocheckpoint");
  return Status::ok();
}

Result<std::optional<std::string>> StateStore::get_meta(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("SELECT value FROM meta WHERE key = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, key);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return error(rc, "get meta " + key);
  return std::optional<std::string>(column_text(u.get(), 0));
}

Status StateStore::set_meta(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, key);
  bind_text(u.get(), 2, value);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "set meta " + key);
  return Status::ok();
}

Result<int64_t> StateStore::begin_scan() {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("INSERT OR REPLACE INTO meta(key, value) VALUES ('scan_gen', ?1)");
  if (!s) return s.status();
  int64_t gen = scan_gen_ + 1;
  Use u(*s);
  std::string v = std::to_string(gen);
  bind_text(u.get(), 1, v);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "begin scan");
  scan_gen_ = gen;
  return gen;
}

Status StateStore::scan_seen(const std::vector<RecordingRow>& batch, int64_t gen) {
  if (batch.empty()) return Status::ok();
  std::lock_guard<std::mutex> l(mu_);
  // In an UPDATE every right-hand side sees the old row, so the CASE compares
  // the stored size/time with the new ones.
  auto s = stmt(
      "INSERT INTO recordings(rel, name, size, hash, rec_time_ms, archived_at_ms, origin, gen, "
      "name_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(rel) DO UPDATE SET "
      "name = excluded.name, name_key = excluded.name_key, size = excluded.size, "
      "hash = CASE WHEN size = excluded.size AND rec_time_ms = excluded.rec_time_ms "
      "AND hash <> '' THEN hash ELSE excluded.hash END, "
      "rec_time_ms = excluded.rec_time_ms, gen = MAX(gen, excluded.gen)");
  if (!s) return s.status();
  Txn t(this);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  for (const RecordingRow& r : batch) {
    Use u(*s);
    bind_text(u.get(), 1, r.rel);
    bind_text(u.get(), 2, r.name);
    sqlite3_bind_int64(u.get(), 3, static_cast<int64_t>(r.size));
    bind_text(u.get(), 4, r.hash);
    sqlite3_bind_int64(u.get(), 5, r.rec_time_ms);
    sqlite3_bind_int64(u.get(), 6, r.archived_at_ms);
    bind_text(u.get(), 7, r.origin);
    sqlite3_bind_int64(u.get(), 8, gen);
    sqlite3_bind_int64(u.get(), 9, name_key(r.name));
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return error(rc, "scan upsert " + r.rel);
  }
  return t.commit();
}

Result<uint64_t> StateStore::end_scan(int64_t gen) {
  std::lock_guard<std::mutex> l(mu_);
  auto s = stmt("DELETE FROM recordings WHERE gen < ?1");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, gen);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return error(rc, "end scan");
  return static_cast<uint64_t>(sqlite3_changes64(db_.get()));
}

}  // namespace recsync
