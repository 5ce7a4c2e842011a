#include "state/recordings.h"

#include <sqlite3.h>
#include <xxhash.h>

#include <algorithm>

#include "recsync/names.h"
#include "state/sql_util.h"

namespace recsync {

using sql::bind_text;
using sql::bind_text_copy;
using sql::column_text;
using sql::Use;

int64_t name_key(std::string_view name) {
  return static_cast<int64_t>(XXH3_64bits(name.data(), name.size()) & 0x7fffffffu);
}

RecordingRow make_recording_row(std::string rel, std::string_view id_source, uint64_t size,
                                std::string hash, int64_t rec_time_ms, int64_t archived_at_ms,
                                std::string origin) {
  RecordingRow r;
  r.rel = std::move(rel);
  r.name = recording_id(id_source);
  r.size = size;
  r.hash = std::move(hash);
  r.rec_time_ms = rec_time_ms;
  r.archived_at_ms = archived_at_ms;
  r.origin = std::move(origin);
  return r;
}

namespace {

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
  r.origin_rel = column_text(s, 8);
  return r;
}

// The ten columns an upsert writes, in the order both upserts list them.
void bind_row(sqlite3_stmt* s, const RecordingRow& r, int64_t gen) {
  bind_text(s, 1, r.rel);
  bind_text(s, 2, r.name);
  sqlite3_bind_int64(s, 3, static_cast<int64_t>(r.size));
  bind_text(s, 4, r.hash);
  sqlite3_bind_int64(s, 5, r.rec_time_ms);
  sqlite3_bind_int64(s, 6, r.archived_at_ms);
  bind_text(s, 7, r.origin);
  sqlite3_bind_int64(s, 8, gen);
  sqlite3_bind_int64(s, 9, name_key(r.name));
  bind_text_copy(s, 10, r.origin_rel == r.rel ? std::string() : r.origin_rel);
}

}  // namespace

Result<std::unique_ptr<Recordings>> Recordings::open(Db* db) {
  std::unique_ptr<Recordings> r(new Recordings(db));
  auto gen = db->get_meta("scan_gen");
  if (!gen) return gen.status();
  if (gen->has_value()) r->scan_gen_ = std::stoll(**gen);
  return r;
}

Status Recordings::upsert(const RecordingRow& r) {
  Db::Lock l(*db_);
  return upsert_locked(l, r);
}

Status Recordings::upsert_locked(const Db::Lock& l, const RecordingRow& r) {
  auto s = db_->stmt(
      l,
      "INSERT INTO recordings(rel, name, size, hash, rec_time_ms, archived_at_ms, origin, gen, "
      "name_key, origin_rel) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(rel) "
      "DO UPDATE SET name = excluded.name, name_key = excluded.name_key, size = excluded.size, "
      "hash = excluded.hash, "
      "rec_time_ms = excluded.rec_time_ms, archived_at_ms = excluded.archived_at_ms, "
      "origin = excluded.origin, gen = excluded.gen, origin_rel = excluded.origin_rel");
  if (!s) return s.status();
  Use u(*s);
  bind_row(u.get(), r, scan_gen_);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "upsert " + r.rel);
  return Status::ok();
}

Status Recordings::remove(const std::string& rel) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "DELETE FROM recordings WHERE rel = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, rel);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "remove " + rel);
  return Status::ok();
}

Status Recordings::remove_many(const std::vector<std::string>& rels) {
  Db::Lock l(*db_);
  Db::Txn t(*db_, l);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  auto s = db_->stmt(l, "DELETE FROM recordings WHERE rel = ?1");
  if (!s) return s.status();
  for (const std::string& rel : rels) {
    Use u(*s);
    bind_text(u.get(), 1, rel);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "remove " + rel);
  }
  return t.commit();
}

Result<std::optional<RecordingRow>> Recordings::get(const std::string& rel) {
  Db::Lock l(*db_);
  auto s =
      db_->stmt(l,
                "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin, origin_rel "
                "FROM recordings WHERE rel = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, rel);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_DONE) return std::optional<RecordingRow>();
  if (rc != SQLITE_ROW) return db_->error(rc, "get " + rel);
  return std::optional<RecordingRow>(read_row(u.get()));
}

Result<std::vector<RecordingRow>> Recordings::find(const std::string& id_or_rel) {
  Db::Lock l(*db_);
  auto s =
      db_->stmt(l,
                "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin, origin_rel "
                "FROM recordings WHERE (name_key = ?2 AND name = ?1) OR rel = ?1 OR "
                "(origin_rel = ?1 AND origin_rel <> '') ORDER BY id");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, id_or_rel);
  sqlite3_bind_int64(u.get(), 2, name_key(id_or_rel));
  std::vector<RecordingRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) out.push_back(read_row(u.get()));
  if (rc != SQLITE_DONE) return db_->error(rc, "find " + id_or_rel);
  return out;
}

Result<std::vector<RecordingRow>> Recordings::older_than(int64_t cutoff_ms, int64_t after_time_ms,
                                                         int64_t after_id, size_t limit) {
  Db::Lock l(*db_);
  auto s =
      db_->stmt(l,
                "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin, origin_rel "
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
  if (rc != SQLITE_DONE) return db_->error(rc, "older_than");
  return out;
}

Status Recordings::for_each_in_time(int64_t t0, int64_t t1,
                                    const std::function<Status(const RecordingRow&)>& fn) {
  int64_t after_time = t0 == kFirstTime ? kFirstTime : t0 - 1, after_id = INT64_MAX;
  if (t0 == kFirstTime) after_id = 0;
  while (true) {
    std::vector<RecordingRow> page;
    {
      Db::Lock l(*db_);
      auto s = db_->stmt(l,
                         "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin, "
                         "origin_rel FROM recordings WHERE rec_time_ms < ?1 AND (rec_time_ms, id) "
                         "> (?2, ?3) ORDER BY rec_time_ms, id LIMIT 2000");
      if (!s) return s.status();
      Use u(*s);
      sqlite3_bind_int64(u.get(), 1, t1);
      sqlite3_bind_int64(u.get(), 2, after_time);
      sqlite3_bind_int64(u.get(), 3, after_id);
      int rc;
      while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) page.push_back(read_row(u.get()));
      if (rc != SQLITE_DONE) return db_->error(rc, "scan by time");
    }
    if (page.empty()) return Status::ok();
    after_time = page.back().rec_time_ms;
    after_id = page.back().id;
    for (const RecordingRow& r : page) RECSYNC_RETURN_IF_ERROR(fn(r));
    if (page.size() < 2000) return Status::ok();
  }
}

Status Recordings::for_each_digest_input(int64_t t0, int64_t t1, const DigestInputFn& fn) {
  constexpr int64_t kPage = 4096;
  auto text = [](sqlite3_stmt* s, int i) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
    return std::string_view(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(s, i)));
  };
  bool by_rowid = false;
  {
    Db::Lock l(*db_);
    auto c = db_->stmt(l,
                       "SELECT (SELECT count(*) FROM recordings WHERE rec_time_ms >= ?1 AND "
                       "rec_time_ms < ?2), (SELECT files FROM totals WHERE k = 0)");
    if (!c) return c.status();
    Use u(*c);
    sqlite3_bind_int64(u.get(), 1, t0);
    sqlite3_bind_int64(u.get(), 2, t1);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_ROW) return db_->error(rc, "digest input count");
    by_rowid = sqlite3_column_int64(u.get(), 0) * 8 > sqlite3_column_int64(u.get(), 1);
  }
  // "+rec_time_ms" keeps the time index out: the rowid range drives the scan.
  const char* sql =
      by_rowid ? "SELECT id, CASE WHEN origin_rel = '' THEN rel ELSE origin_rel END, hash, size, "
                 "rec_time_ms FROM recordings WHERE id > ?3 AND +rec_time_ms >= ?1 AND "
                 "+rec_time_ms < ?2 ORDER BY id LIMIT ?4"
               : "SELECT id, CASE WHEN origin_rel = '' THEN rel ELSE origin_rel END, hash, size, "
                 "rec_time_ms FROM recordings WHERE rec_time_ms >= ?1 AND rec_time_ms < ?2 AND "
                 "(rec_time_ms, id) > (?5, ?3) ORDER BY rec_time_ms, id LIMIT ?4";
  int64_t after_id = std::numeric_limits<int64_t>::min(), after_time = t0;
  if (!by_rowid && t0 > std::numeric_limits<int64_t>::min()) after_time = t0 - 1;
  while (true) {
    Db::Lock l(*db_);
    auto s = db_->stmt(l, sql);
    if (!s) return s.status();
    Use u(*s);
    sqlite3_bind_int64(u.get(), 1, t0);
    sqlite3_bind_int64(u.get(), 2, t1);
    sqlite3_bind_int64(u.get(), 3, after_id);
    sqlite3_bind_int64(u.get(), 4, kPage);
    if (!by_rowid) sqlite3_bind_int64(u.get(), 5, after_time);
    int64_t n = 0;
    int rc;
    while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
      after_id = sqlite3_column_int64(u.get(), 0);
      after_time = sqlite3_column_int64(u.get(), 4);
      fn(text(u.get(), 1), text(u.get(), 2),
         static_cast<uint64_t>(sqlite3_column_int64(u.get(), 3)), after_time);
      ++n;
    }
    if (rc != SQLITE_DONE) return db_->error(rc, "digest input");
    if (n < kPage) return Status::ok();
  }
}

Result<std::vector<RecordingRow>> Recordings::identity_page(int64_t t0, int64_t t1,
                                                            const std::string& self,
                                                            const std::string& after_path,
                                                            const std::string& after_origin,
                                                            size_t limit, bool inside) {
  // The time bound is written so that SQLite walks the (rec_time_ms, id)
  // index over the range (inside) or the two ranges around it (outside):
  // a page then reads only the rows of its range, not the whole table (the
  // earlier "(t0 <= t AND t < t1) = inside" form could use no index, so every
  // page of a manifest scanned and sorted every recording: minutes of CPU
  // per backfill plan at 500,000 recordings).
  static constexpr const char* kInside =
      "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin, origin_rel, "
      "CASE WHEN origin_rel = '' THEN rel ELSE origin_rel END AS ipath, "
      "CASE WHEN origin = 'local' THEN ?3 ELSE origin END AS inode "
      "FROM recordings WHERE rec_time_ms >= ?1 AND rec_time_ms < ?2 AND "
      "(ipath, inode) > (?4, ?5) ORDER BY ipath, inode LIMIT ?6";
  static constexpr const char* kOutside =
      "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin, origin_rel, "
      "CASE WHEN origin_rel = '' THEN rel ELSE origin_rel END AS ipath, "
      "CASE WHEN origin = 'local' THEN ?3 ELSE origin END AS inode "
      "FROM recordings WHERE (rec_time_ms < ?1 OR rec_time_ms >= ?2) AND "
      "(ipath, inode) > (?4, ?5) ORDER BY ipath, inode LIMIT ?6";
  Db::Lock l(*db_);
  auto s = db_->stmt(l, inside ? kInside : kOutside);
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, t0);
  sqlite3_bind_int64(u.get(), 2, t1);
  bind_text(u.get(), 3, self);
  bind_text(u.get(), 4, after_path);
  bind_text(u.get(), 5, after_origin);
  sqlite3_bind_int64(u.get(), 6, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  std::vector<RecordingRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) out.push_back(read_row(u.get()));
  if (rc != SQLITE_DONE) return db_->error(rc, "identity page");
  return out;
}

Result<std::optional<RecordingRow>> Recordings::find_identity(const std::string& origin_rel,
                                                              const std::string& origin) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin, "
                     "origin_rel FROM recordings WHERE ((rel = ?1 AND origin_rel = '') OR "
                     "(origin_rel = ?1 AND origin_rel <> '')) AND origin = ?2 LIMIT 1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, origin_rel);
  bind_text(u.get(), 2, origin);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_DONE) return std::optional<RecordingRow>();
  if (rc != SQLITE_ROW) return db_->error(rc, "find identity " + origin_rel);
  return std::optional<RecordingRow>(read_row(u.get()));
}

Result<std::vector<RecordingRow>> Recordings::versioned_candidates() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT id, rel, name, size, hash, rec_time_ms, archived_at_ms, origin, "
                     "origin_rel FROM recordings WHERE origin_rel = '' AND rel LIKE '%.v%' "
                     "ORDER BY rel");
  if (!s) return s.status();
  Use u(*s);
  std::vector<RecordingRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) out.push_back(read_row(u.get()));
  if (rc != SQLITE_DONE) return db_->error(rc, "versioned candidates");
  return out;
}

Result<StoreStats> Recordings::stats() {
  Db::Lock l(*db_);
  StoreStats st;
  {
    auto s = db_->stmt(l, "SELECT files, bytes FROM totals WHERE k = 0");
    if (!s) return s.status();
    Use u(*s);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_ROW) return db_->error(rc, "stats");
    st.files = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 0));
    st.bytes = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 1));
  }
  // Two separate queries so each uses the min/max optimisation on the index.
  for (bool newest : {true, false}) {
    auto s = newest ? db_->stmt(l, "SELECT MAX(rec_time_ms) FROM recordings")
                    : db_->stmt(l, "SELECT MIN(rec_time_ms) FROM recordings");
    if (!s) return s.status();
    Use u(*s);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_ROW) return db_->error(rc, "stats");
    int64_t v =
        sqlite3_column_type(u.get(), 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(u.get(), 0);
    (newest ? st.newest_rec_time_ms : st.oldest_rec_time_ms) = v;
  }
  return st;
}

Result<int64_t> Recordings::begin_scan() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "INSERT OR REPLACE INTO meta(key, value) VALUES ('scan_gen', ?1)");
  if (!s) return s.status();
  int64_t gen = scan_gen_ + 1;
  Use u(*s);
  std::string v = std::to_string(gen);
  bind_text(u.get(), 1, v);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "begin scan");
  scan_gen_ = gen;
  return gen;
}

Status Recordings::scan_seen(const std::vector<RecordingRow>& batch, int64_t gen) {
  if (batch.empty()) return Status::ok();
  Db::Lock l(*db_);
  // In an UPDATE every right-hand side sees the old row, so the CASE compares
  // the stored size/time with the new ones.
  auto s = db_->stmt(
      l,
      "INSERT INTO recordings(rel, name, size, hash, rec_time_ms, archived_at_ms, origin, gen, "
      "name_key, origin_rel) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(rel) "
      "DO UPDATE SET "
      "name = excluded.name, name_key = excluded.name_key, size = excluded.size, "
      "hash = CASE WHEN size = excluded.size AND rec_time_ms = excluded.rec_time_ms "
      "AND hash <> '' THEN hash ELSE excluded.hash END, "
      "rec_time_ms = excluded.rec_time_ms, gen = MAX(gen, excluded.gen)");
  if (!s) return s.status();
  Db::Txn t(*db_, l);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  for (const RecordingRow& r : batch) {
    Use u(*s);
    bind_row(u.get(), r, gen);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "scan upsert " + r.rel);
  }
  return t.commit();
}

Result<uint64_t> Recordings::end_scan(int64_t gen) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "DELETE FROM recordings WHERE gen < ?1");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, gen);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "end scan");
  return static_cast<uint64_t>(db_->changes(l));
}

}  // namespace recsync
