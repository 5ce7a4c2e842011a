#include "state/backfill_table.h"

#include <sqlite3.h>

#include "state/sql_util.h"

namespace recsync {

using sql::bind_text;
using sql::column_text;
using sql::Use;

namespace {

BackfillJob read_job(sqlite3_stmt* s) {
  BackfillJob j;
  j.id = sqlite3_column_int64(s, 0);
  j.state = column_text(s, 1);
  j.dry_run = sqlite3_column_int64(s, 2) != 0;
  j.window_start_ms = sqlite3_column_int64(s, 3);
  j.created_ms = sqlite3_column_int64(s, 4);
  j.finished_ms = sqlite3_column_int64(s, 5);
  j.error = column_text(s, 6);
  return j;
}

constexpr const char* kItemInsert =
    "INSERT OR IGNORE INTO backfill_items(origin_rel, origin, dir, job, peer, rel, hash, size, "
    "state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

void bind_item(sqlite3_stmt* s, const BackfillItem& it) {
  bind_text(s, 1, it.origin_rel);
  bind_text(s, 2, it.origin);
  sqlite3_bind_int64(s, 3, it.dir);
  sqlite3_bind_int64(s, 4, it.job);
  bind_text(s, 5, it.peer);
  bind_text(s, 6, it.rel);
  bind_text(s, 7, it.hash);
  sqlite3_bind_int64(s, 8, static_cast<int64_t>(it.size));
  sqlite3_bind_int64(s, 9, it.state);
}

}  // namespace

Result<int64_t> BackfillTable::create_job(bool dry_run, int64_t window_start_ms, int64_t now_ms,
                                          const std::vector<std::string>& peers) {
  Db::Lock l(*db_);
  Db::Txn t(*db_, l);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  auto s = db_->stmt(l,
                     "INSERT INTO backfill_jobs(state, dry_run, window_start_ms, created_ms) "
                     "VALUES ('running', ?1, ?2, ?3)");
  if (!s) return s.status();
  {
    Use u(*s);
    sqlite3_bind_int64(u.get(), 1, dry_run);
    sqlite3_bind_int64(u.get(), 2, window_start_ms);
    sqlite3_bind_int64(u.get(), 3, now_ms);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "create backfill job");
  }
  const int64_t id = db_->last_insert_id(l);
  auto p = db_->stmt(l, "INSERT INTO backfill_peers(job, peer, state) VALUES (?1, ?2, 'pending')");
  if (!p) return p.status();
  for (const std::string& peer : peers) {
    Use u(*p);
    sqlite3_bind_int64(u.get(), 1, id);
    bind_text(u.get(), 2, peer);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "backfill peer " + peer);
  }
  RECSYNC_RETURN_IF_ERROR(t.commit());
  return id;
}

Result<std::optional<BackfillJob>> BackfillTable::latest_job() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT id, state, dry_run, window_start_ms, created_ms, finished_ms, error "
                     "FROM backfill_jobs ORDER BY id DESC LIMIT 1");
  if (!s) return s.status();
  Use u(*s);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_DONE) return std::optional<BackfillJob>();
  if (rc != SQLITE_ROW) return db_->error(rc, "backfill job");
  return std::optional<BackfillJob>(read_job(u.get()));
}

Result<std::optional<BackfillJob>> BackfillTable::running_job() {
  auto j = latest_job();
  if (!j || !j->has_value() || (*j)->state == "running") return j;
  return std::optional<BackfillJob>();
}

Status BackfillTable::finish_job(int64_t job, const std::string& state, const std::string& error,
                                 int64_t now_ms) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "UPDATE backfill_jobs SET state = ?2, error = ?3, finished_ms = ?4 WHERE "
                     "id = ?1");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, job);
  bind_text(u.get(), 2, state);
  bind_text(u.get(), 3, error);
  sqlite3_bind_int64(u.get(), 4, now_ms);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "finish backfill job");
  return Status::ok();
}

Result<std::vector<BackfillPeer>> BackfillTable::peers(int64_t job) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT peer, state, summary, error FROM backfill_peers WHERE job = ?1 ORDER "
                     "BY peer");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, job);
  std::vector<BackfillPeer> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW)
    out.push_back({column_text(u.get(), 0), column_text(u.get(), 1), column_text(u.get(), 2),
                   column_text(u.get(), 3)});
  if (rc != SQLITE_DONE) return db_->error(rc, "backfill peers");
  return out;
}

Status BackfillTable::set_peer(int64_t job, const BackfillPeer& p) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "INSERT OR REPLACE INTO backfill_peers(job, peer, state, summary, error) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, job);
  bind_text(u.get(), 2, p.peer);
  bind_text(u.get(), 3, p.state);
  bind_text(u.get(), 4, p.summary);
  bind_text(u.get(), 5, p.error);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "backfill peer " + p.peer);
  return Status::ok();
}

Status BackfillTable::add_pulls(int64_t job, const std::string& peer,
                                const std::vector<BackfillItem>& items) {
  if (items.empty()) return Status::ok();
  Db::Lock l(*db_);
  Db::Txn t(*db_, l);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  auto s = db_->stmt(l, kItemInsert);
  if (!s) return s.status();
  for (BackfillItem it : items) {
    it.dir = BackfillItem::kPull;
    it.job = job;
    it.peer = peer;
    Use u(*s);
    bind_item(u.get(), it);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "plan pull " + it.origin_rel);
  }
  return t.commit();
}

Status BackfillTable::add_pushes(int64_t job, const std::string& peer,
                                 const std::vector<RecordingRow>& rows) {
  if (rows.empty()) return Status::ok();
  {
    Db::Lock l(*db_);
    Db::Txn t(*db_, l);
    RECSYNC_RETURN_IF_ERROR(t.begin());
    auto s = db_->stmt(l, kItemInsert);
    if (!s) return s.status();
    const std::vector<std::string> to{peer};
    for (const RecordingRow& r : rows) {
      BackfillItem it{r.identity_rel(), r.origin, BackfillItem::kPush,     job, peer, r.rel,
                      r.hash,           r.size,   BackfillItem::kRequested};
      Use u(*s);
      bind_item(u.get(), it);
      int rc = sqlite3_step(u.get());
      if (rc != SQLITE_DONE) return db_->error(rc, "plan push " + r.rel);
      RECSYNC_RETURN_IF_ERROR(
          queue_->enqueue_locked(l, r, to, r.rec_time_ms * 1'000'000, ReplQueue::kBackfillPrio));
    }
    RECSYNC_RETURN_IF_ERROR(t.commit());
  }
  queue_->doorbell().ring();
  return Status::ok();
}

Result<bool> BackfillTable::pull_planned(int64_t job, const std::string& origin_rel,
                                         const std::string& origin) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT 1 FROM backfill_items WHERE origin_rel = ?1 AND origin = ?2 AND "
                     "dir = 1 AND job = ?3");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, origin_rel);
  bind_text(u.get(), 2, origin);
  sqlite3_bind_int64(u.get(), 3, job);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) return db_->error(rc, "pull planned");
  return false;
}

Result<std::vector<BackfillItem>> BackfillTable::pulls(int64_t job, const std::string& peer,
                                                       int state, const std::string& after_rel,
                                                       const std::string& after_origin,
                                                       size_t limit) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT origin_rel, origin, dir, job, peer, rel, hash, size, state FROM "
                     "backfill_items WHERE job = ?1 AND dir = 1 AND state = ?2 AND peer = ?3 "
                     "AND (origin_rel, origin) > (?5, ?6) ORDER BY origin_rel, origin LIMIT ?4");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, job);
  sqlite3_bind_int64(u.get(), 2, state);
  bind_text(u.get(), 3, peer);
  sqlite3_bind_int64(u.get(), 4, static_cast<int64_t>(limit));
  bind_text(u.get(), 5, after_rel);
  bind_text(u.get(), 6, after_origin);
  std::vector<BackfillItem> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
    BackfillItem it;
    it.origin_rel = column_text(u.get(), 0);
    it.origin = column_text(u.get(), 1);
    it.dir = static_cast<int>(sqlite3_column_int64(u.get(), 2));
    it.job = sqlite3_column_int64(u.get(), 3);
    it.peer = column_text(u.get(), 4);
    it.rel = column_text(u.get(), 5);
    it.hash = column_text(u.get(), 6);
    it.size = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 7));
    it.state = static_cast<int>(sqlite3_column_int64(u.get(), 8));
    out.push_back(std::move(it));
  }
  if (rc != SQLITE_DONE) return db_->error(rc, "backfill pulls");
  return out;
}

Status BackfillTable::set_state(const std::vector<BackfillItem>& items, int state) {
  if (items.empty()) return Status::ok();
  Db::Lock l(*db_);
  Db::Txn t(*db_, l);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  auto s = db_->stmt(l,
                     "UPDATE backfill_items SET state = ?5 WHERE origin_rel = ?1 AND origin = ?2 "
                     "AND dir = ?3 AND job = ?4 AND state < 2");
  if (!s) return s.status();
  for (const BackfillItem& it : items) {
    Use u(*s);
    bind_text(u.get(), 1, it.origin_rel);
    bind_text(u.get(), 2, it.origin);
    sqlite3_bind_int64(u.get(), 3, it.dir);
    sqlite3_bind_int64(u.get(), 4, it.job);
    sqlite3_bind_int64(u.get(), 5, state);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "backfill item " + it.origin_rel);
  }
  return t.commit();
}

Status BackfillTable::arrived(const std::string& origin_rel, const std::string& origin) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "UPDATE backfill_items SET state = 2 WHERE origin_rel = ?1 AND origin = ?2 "
                     "AND dir = 1 AND state < 2");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, origin_rel);
  bind_text(u.get(), 2, origin);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "backfill arrived " + origin_rel);
  return Status::ok();
}

Status BackfillTable::pushed(const std::string& peer, const std::string& origin_rel,
                             const std::string& origin) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "UPDATE backfill_items SET state = 2 WHERE origin_rel = ?1 AND origin = ?2 "
                     "AND dir = 2 AND peer = ?3 AND state < 2");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, origin_rel);
  bind_text(u.get(), 2, origin);
  bind_text(u.get(), 3, peer);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "backfill pushed " + origin_rel);
  return Status::ok();
}

Result<BackfillProgress> BackfillTable::progress(int64_t job) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT dir, state, count(*), coalesce(sum(size), 0) FROM backfill_items "
                     "WHERE job = ?1 GROUP BY dir, state");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, job);
  BackfillProgress p;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
    const int dir = static_cast<int>(sqlite3_column_int64(u.get(), 0));
    const int state = static_cast<int>(sqlite3_column_int64(u.get(), 1));
    const BackfillCount c{static_cast<uint64_t>(sqlite3_column_int64(u.get(), 2)),
                          static_cast<uint64_t>(sqlite3_column_int64(u.get(), 3))};
    BackfillCount& total = dir == BackfillItem::kPull ? p.pull_total : p.push_total;
    total.files += c.files;
    total.bytes += c.bytes;
    if (state == BackfillItem::kDone || state == BackfillItem::kGone) {
      BackfillCount& d = dir == BackfillItem::kPull
                             ? (state == BackfillItem::kDone ? p.pull_done : p.pull_gone)
                             : (state == BackfillItem::kDone ? p.push_done : p.push_gone);
      d.files += c.files;
      d.bytes += c.bytes;
    }
  }
  if (rc != SQLITE_DONE) return db_->error(rc, "backfill progress");
  return p;
}

}  // namespace recsync
