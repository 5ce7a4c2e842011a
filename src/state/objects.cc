#include "state/objects.h"

#include <sqlite3.h>

#include <algorithm>

#include "state/recordings.h"
#include "state/sql_util.h"

namespace recsync {

using sql::bind_text;
using sql::column_text;
using sql::Use;

namespace {

ObjectRow read_object(sqlite3_stmt* s) {
  ObjectRow o;
  o.rel = column_text(s, 0);
  o.key = column_text(s, 1);
  o.name = column_text(s, 2);
  o.size = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
  o.hash = column_text(s, 4);
  o.rec_time_ms = sqlite3_column_int64(s, 5);
  o.etag = column_text(s, 6);
  o.version_id = column_text(s, 7);
  o.verified_ms = sqlite3_column_int64(s, 8);
  o.legal_hold = sqlite3_column_int64(s, 9) != 0;
  o.origin = column_text(s, 10);
  return o;
}

MultipartRow read_upload(sqlite3_stmt* s) {
  MultipartRow m;
  m.rel = column_text(s, 0);
  m.key = column_text(s, 1);
  m.hash = column_text(s, 2);
  m.size = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
  m.part_size = static_cast<uint64_t>(sqlite3_column_int64(s, 4));
  m.upload_id = column_text(s, 5);
  m.created_ms = sqlite3_column_int64(s, 6);
  return m;
}

// Steps a bound statement to completion, collecting rows with read.
template <typename Row, typename Read>
Result<std::vector<Row>> collect(Db& db, sqlite3_stmt* s, Read read, const std::string& what) {
  std::vector<Row> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(read(s));
  if (rc != SQLITE_DONE) return db.error(rc, what);
  return out;
}

Status step_done(Db& db, sqlite3_stmt* s, const std::string& what) {
  int rc = sqlite3_step(s);
  return rc == SQLITE_DONE ? Status::ok() : db.error(rc, what);
}

}  // namespace

Status ObjectIndex::upsert(const ObjectRow& o) {
  Db::Lock l(*db_);
  auto s = db_->stmt(
      l,
      // Not INSERT OR REPLACE: its implicit delete would not fire the
      // totals trigger (recursive_triggers is off).
      "INSERT INTO objects(rel, key, name, name_key, size, hash, rec_time_ms, etag, "
      "version_id, verified_ms, legal_hold, origin) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT(rel) DO UPDATE SET "
      "key = excluded.key, name = excluded.name, name_key = excluded.name_key, "
      "size = excluded.size, hash = excluded.hash, rec_time_ms = excluded.rec_time_ms, "
      "etag = excluded.etag, version_id = excluded.version_id, "
      "verified_ms = excluded.verified_ms, legal_hold = excluded.legal_hold, "
      "origin = excluded.origin");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, o.rel);
  bind_text(u.get(), 2, o.key);
  bind_text(u.get(), 3, o.name);
  sqlite3_bind_int64(u.get(), 4, name_key(o.name));
  sqlite3_bind_int64(u.get(), 5, static_cast<int64_t>(o.size));
  bind_text(u.get(), 6, o.hash);
  sqlite3_bind_int64(u.get(), 7, o.rec_time_ms);
  bind_text(u.get(), 8, o.etag);
  bind_text(u.get(), 9, o.version_id);
  sqlite3_bind_int64(u.get(), 10, o.verified_ms);
  sqlite3_bind_int(u.get(), 11, o.legal_hold ? 1 : 0);
  bind_text(u.get(), 12, o.origin);
  return step_done(*db_, u.get(), "object upsert " + o.rel);
}

Result<std::optional<ObjectRow>> ObjectIndex::get(const std::string& rel) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT rel, key, name, size, hash, rec_time_ms, etag, version_id, "
                     "verified_ms, legal_hold, origin FROM objects WHERE rel = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, rel);
  auto rows = collect<ObjectRow>(*db_, u.get(), read_object, "object get " + rel);
  if (!rows) return rows.status();
  if (rows->empty()) return std::optional<ObjectRow>();
  return std::optional<ObjectRow>(std::move(rows->front()));
}

Result<std::vector<ObjectRow>> ObjectIndex::find(const std::string& id_or_rel) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT rel, key, name, size, hash, rec_time_ms, etag, version_id, "
                     "verified_ms, legal_hold, origin FROM objects "
                     "WHERE (name_key = ?2 AND name = ?1) OR rel = ?1 ORDER BY rel");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, id_or_rel);
  sqlite3_bind_int64(u.get(), 2, name_key(id_or_rel));
  return collect<ObjectRow>(*db_, u.get(), read_object, "object find " + id_or_rel);
}

Result<std::vector<ObjectRow>> ObjectIndex::older_than(int64_t cutoff_ms, int64_t after_time_ms,
                                                       const std::string& after_rel, size_t limit) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT rel, key, name, size, hash, rec_time_ms, etag, version_id, "
                     "verified_ms, legal_hold, origin FROM objects "
                     "WHERE rec_time_ms < ?1 AND (rec_time_ms, rel) > (?2, ?3) "
                     "ORDER BY rec_time_ms, rel LIMIT ?4");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, cutoff_ms);
  sqlite3_bind_int64(u.get(), 2, after_time_ms);
  bind_text(u.get(), 3, after_rel);
  sqlite3_bind_int64(u.get(), 4, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  return collect<ObjectRow>(*db_, u.get(), read_object, "object older_than");
}

Status ObjectIndex::remove(const std::string& rel) {
  Db::Lock l(*db_);
  Db::Txn t(*db_, l);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  for (const char* sql :
       {"DELETE FROM objects WHERE rel = ?1", "DELETE FROM object_uploads WHERE rel = ?1"}) {
    auto s = db_->stmt(l, sql);
    if (!s) return s.status();
    Use u(*s);
    bind_text(u.get(), 1, rel);
    RECSYNC_RETURN_IF_ERROR(step_done(*db_, u.get(), "object remove " + rel));
  }
  return t.commit();
}

Result<std::unordered_set<std::string>> ObjectIndex::stored_among(
    const std::vector<RecordingRow>& rows) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "SELECT 1 FROM objects WHERE rel = ?1 AND hash = ?2");
  if (!s) return s.status();
  std::unordered_set<std::string> out;
  for (const RecordingRow& r : rows) {
    if (r.hash.empty()) continue;  // never hashed: cannot be proven stored
    Use u(*s);
    bind_text(u.get(), 1, r.rel);
    bind_text(u.get(), 2, r.hash);
    int rc = sqlite3_step(u.get());
    if (rc == SQLITE_ROW) out.insert(r.rel);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_->error(rc, "stored_among");
  }
  return out;
}

Status ObjectIndex::set_legal_hold(const std::string& rel, bool on) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "UPDATE objects SET legal_hold = ?2 WHERE rel = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, rel);
  sqlite3_bind_int(u.get(), 2, on ? 1 : 0);
  return step_done(*db_, u.get(), "object legal hold " + rel);
}

Result<std::vector<ObjectRow>> ObjectIndex::legally_held() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT rel, key, name, size, hash, rec_time_ms, etag, version_id, "
                     "verified_ms, legal_hold, origin FROM objects WHERE legal_hold = 1 "
                     "ORDER BY rel");
  if (!s) return s.status();
  Use u(*s);
  return collect<ObjectRow>(*db_, u.get(), read_object, "objects held");
}

Result<ObjectStats> ObjectIndex::stats() {
  Db::Lock l(*db_);
  ObjectStats st;
  auto s = db_->stmt(l, "SELECT files, bytes FROM object_totals WHERE k = 0");
  if (!s) return s.status();
  {
    Use u(*s);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_ROW) return db_->error(rc, "object stats");
    st.files = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 0));
    st.bytes = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 1));
  }
  // Separate queries so each takes the min/max shortcut of its index.
  const char* sqls[] = {"SELECT MAX(rec_time_ms) FROM objects",
                        "SELECT MIN(rec_time_ms) FROM objects",
                        "SELECT count(*) FROM objects WHERE legal_hold = 1"};
  int64_t* outs[] = {&st.newest_rec_time_ms, &st.oldest_rec_time_ms, nullptr};
  for (int i = 0; i < 3; ++i) {
    auto q = db_->stmt(l, sqls[i]);
    if (!q) return q.status();
    Use u(*q);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_ROW) return db_->error(rc, "object stats");
    const int64_t v = sqlite3_column_int64(u.get(), 0);  // NULL reads as 0
    if (outs[i])
      *outs[i] = v;
    else
      st.legal_holds = static_cast<uint64_t>(v);
  }
  return st;
}

Status ObjectIndex::save_upload(const MultipartRow& m) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "INSERT OR REPLACE INTO object_uploads(rel, key, hash, size, part_size, "
                     "upload_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, m.rel);
  bind_text(u.get(), 2, m.key);
  bind_text(u.get(), 3, m.hash);
  sqlite3_bind_int64(u.get(), 4, static_cast<int64_t>(m.size));
  sqlite3_bind_int64(u.get(), 5, static_cast<int64_t>(m.part_size));
  bind_text(u.get(), 6, m.upload_id);
  sqlite3_bind_int64(u.get(), 7, m.created_ms);
  return step_done(*db_, u.get(), "save upload " + m.rel);
}

Result<std::optional<MultipartRow>> ObjectIndex::get_upload(const std::string& rel) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT rel, key, hash, size, part_size, upload_id, created_ms "
                     "FROM object_uploads WHERE rel = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, rel);
  auto rows = collect<MultipartRow>(*db_, u.get(), read_upload, "get upload " + rel);
  if (!rows) return rows.status();
  if (rows->empty()) return std::optional<MultipartRow>();
  return std::optional<MultipartRow>(std::move(rows->front()));
}

Status ObjectIndex::drop_upload(const std::string& rel) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "DELETE FROM object_uploads WHERE rel = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, rel);
  return step_done(*db_, u.get(), "drop upload " + rel);
}

Result<std::vector<MultipartRow>> ObjectIndex::uploads() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT rel, key, hash, size, part_size, upload_id, created_ms "
                     "FROM object_uploads ORDER BY created_ms");
  if (!s) return s.status();
  Use u(*s);
  return collect<MultipartRow>(*db_, u.get(), read_upload, "uploads");
}

}  // namespace recsync
