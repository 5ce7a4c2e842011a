#include "state/tombstones.h"

#include <sqlite3.h>

#include <cstdlib>

#include "state/audit_table.h"
#include "state/sql_util.h"

namespace recsync {

using sql::bind_text;
using sql::column_text;
using sql::Use;

namespace {

TombstoneRow read_row(sqlite3_stmt* s, int first) {
  TombstoneRow t;
  t.origin_rel = column_text(s, first);
  t.origin = column_text(s, first + 1);
  t.hash = column_text(s, first + 2);
  t.erased_ms = sqlite3_column_int64(s, first + 3);
  t.reason = column_text(s, first + 4);
  t.uid = sqlite3_column_int64(s, first + 5);
  t.expires_ms = sqlite3_column_int64(s, first + 6);
  t.from_peer = column_text(s, first + 7);
  t.pending = sqlite3_column_int64(s, first + 8) != 0;
  return t;
}

}  // namespace

Status Tombstones::upsert_locked(const Db::Lock& l, const TombstoneRow& t) {
  auto s = db_->stmt(l,
                     "INSERT OR REPLACE INTO tombstones(origin_rel, origin, hash, erased_ms, "
                     "reason, uid, expires_ms, from_peer, pending) VALUES (?1, ?2, ?3, ?4, ?5, "
                     "?6, ?7, ?8, ?9)");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, t.origin_rel);
  bind_text(u.get(), 2, t.origin);
  bind_text(u.get(), 3, t.hash);
  sqlite3_bind_int64(u.get(), 4, t.erased_ms);
  bind_text(u.get(), 5, t.reason);
  sqlite3_bind_int64(u.get(), 6, t.uid);
  sqlite3_bind_int64(u.get(), 7, t.expires_ms);
  bind_text(u.get(), 8, t.from_peer);
  sqlite3_bind_int64(u.get(), 9, t.pending ? 1 : 0);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "add tombstone " + t.origin_rel);
  return Status::ok();
}

Status Tombstones::add(const TombstoneRow& t) {
  Db::Lock l(*db_);
  RECSYNC_RETURN_IF_ERROR(upsert_locked(l, t));
  generation_++;
  return Status::ok();
}

Result<bool> Tombstones::contains(const std::string& origin_rel, const std::string& origin) {
  auto t = get(origin_rel, origin);
  if (!t) return t.status();
  return t->has_value();
}

Result<std::optional<TombstoneRow>> Tombstones::get(const std::string& origin_rel,
                                                    const std::string& origin) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT origin_rel, origin, hash, erased_ms, reason, uid, expires_ms, "
                     "from_peer, pending FROM tombstones WHERE origin_rel = ?1 AND origin = ?2");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, origin_rel);
  bind_text(u.get(), 2, origin);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_ROW) return std::optional<TombstoneRow>(read_row(u.get(), 0));
  if (rc != SQLITE_DONE) return db_->error(rc, "tombstone " + origin_rel);
  return std::optional<TombstoneRow>();
}

Result<std::vector<TombstoneRow>> Tombstones::list() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT origin_rel, origin, hash, erased_ms, reason, uid, expires_ms, "
                     "from_peer, pending FROM tombstones ORDER BY origin_rel, origin");
  if (!s) return s.status();
  Use u(*s);
  std::vector<TombstoneRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) out.push_back(read_row(u.get(), 0));
  if (rc != SQLITE_DONE) return db_->error(rc, "list tombstones");
  return out;
}

Result<std::vector<TombstoneRow>> Tombstones::pending() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT origin_rel, origin, hash, erased_ms, reason, uid, expires_ms, "
                     "from_peer, pending FROM tombstones WHERE pending <> 0");
  if (!s) return s.status();
  Use u(*s);
  std::vector<TombstoneRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) out.push_back(read_row(u.get(), 0));
  if (rc != SQLITE_DONE) return db_->error(rc, "pending tombstones");
  return out;
}

Result<uint64_t> Tombstones::count() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "SELECT COUNT(*) FROM tombstones");
  if (!s) return s.status();
  Use u(*s);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_ROW) return db_->error(rc, "count tombstones");
  return static_cast<uint64_t>(sqlite3_column_int64(u.get(), 0));
}

Result<uint64_t> Tombstones::expire(int64_t cutoff_ms) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "DELETE FROM tombstones WHERE erased_ms < ?1");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, cutoff_ms);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "expire tombstones");
  return static_cast<uint64_t>(db_->changes(l));
}

Result<uint64_t> Tombstones::expire_due(int64_t now_ms) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "DELETE FROM tombstones WHERE expires_ms > 0 AND expires_ms <= ?1 AND "
                     "pending = 0 AND NOT EXISTS (SELECT 1 FROM erase_queue q WHERE "
                     "q.origin_rel = tombstones.origin_rel AND q.origin = tombstones.origin)");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, now_ms);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "expire tombstones");
  return static_cast<uint64_t>(db_->changes(l));
}

Status Tombstones::commit(const TombstoneRow& t, const std::vector<AuditRow>& audit,
                          const std::vector<std::string>& peers,
                          const std::vector<std::string>& dequeue_rels) {
  {
    Db::Lock l(*db_);
    Db::Txn txn(*db_, l);
    RECSYNC_RETURN_IF_ERROR(txn.begin());
    RECSYNC_RETURN_IF_ERROR(upsert_locked(l, t));
    RECSYNC_RETURN_IF_ERROR(AuditTable(db_).append_locked(l, audit));
    RECSYNC_RETURN_IF_ERROR(add_erased_locked(l, audit.size()));
    auto q = db_->stmt(l,
                       "INSERT OR REPLACE INTO erase_queue(peer, origin_rel, origin) VALUES "
                       "(?1, ?2, ?3)");
    if (!q) return q.status();
    for (const std::string& p : peers) {
      Use u(*q);
      bind_text(u.get(), 1, p);
      bind_text(u.get(), 2, t.origin_rel);
      bind_text(u.get(), 3, t.origin);
      int rc = sqlite3_step(u.get());
      if (rc != SQLITE_DONE) return db_->error(rc, "queue erasure of " + t.origin_rel);
    }
    auto d = db_->stmt(l, "DELETE FROM repl_queue WHERE rel = ?1");
    if (!d) return d.status();
    for (const std::string& rel : dequeue_rels) {
      Use u(*d);
      bind_text(u.get(), 1, rel);
      int rc = sqlite3_step(u.get());
      if (rc != SQLITE_DONE) return db_->error(rc, "dequeue " + rel);
    }
    // Backfill items of it that are not done will never be: gone (state 3).
    auto g = db_->stmt(l,
                       "UPDATE backfill_items SET state = 3 WHERE origin_rel = ?1 AND origin = ?2 "
                       "AND state < 2");
    if (!g) return g.status();
    {
      Use u(*g);
      bind_text(u.get(), 1, t.origin_rel);
      bind_text(u.get(), 2, t.origin);
      int rc = sqlite3_step(u.get());
      if (rc != SQLITE_DONE) return db_->error(rc, "backfill items of " + t.origin_rel);
    }
    RECSYNC_RETURN_IF_ERROR(txn.commit());
  }
  generation_++;
  if (bell_ && !peers.empty()) bell_->ring();
  return Status::ok();
}

Status Tombstones::add_erased_locked(const Db::Lock& l, uint64_t n) {
  if (n == 0) return Status::ok();
  auto v = db_->get_meta(l, "erased_total");
  if (!v) return v.status();
  const uint64_t now = (v->has_value() ? std::strtoull((*v)->c_str(), nullptr, 10) : 0) + n;
  return db_->set_meta(l, "erased_total", std::to_string(now));
}

Status Tombstones::add_erased(uint64_t n) {
  Db::Lock l(*db_);
  return add_erased_locked(l, n);
}

Result<uint64_t> Tombstones::erased_total() {
  auto v = db_->get_meta("erased_total");
  if (!v) return v.status();
  return v->has_value() ? std::strtoull((*v)->c_str(), nullptr, 10) : 0;
}

Status Tombstones::finished(const std::string& origin_rel, const std::string& origin) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "UPDATE tombstones SET pending = 0 WHERE origin_rel = ?1 AND origin = ?2");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, origin_rel);
  bind_text(u.get(), 2, origin);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "finish erasure of " + origin_rel);
  return Status::ok();
}

Status Tombstones::reopen(const std::string& origin_rel, const std::string& origin) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "UPDATE tombstones SET pending = 1 WHERE origin_rel = ?1 AND origin = ?2");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, origin_rel);
  bind_text(u.get(), 2, origin);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "reopen erasure of " + origin_rel);
  return Status::ok();
}

Result<std::optional<EraseOp>> Tombstones::next(const std::string& peer, int64_t now_ms) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT q.attempts, q.next_try_ms, q.refused, q.last_error, t.origin_rel, "
                     "t.origin, t.hash, t.erased_ms, t.reason, t.uid, t.expires_ms, t.from_peer, "
                     "t.pending FROM erase_queue q JOIN tombstones t ON t.origin_rel = "
                     "q.origin_rel AND t.origin = q.origin WHERE q.peer = ?1 AND q.next_try_ms "
                     "<= ?2 ORDER BY q.next_try_ms, t.erased_ms LIMIT 1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  sqlite3_bind_int64(u.get(), 2, now_ms);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_DONE) return std::optional<EraseOp>();
  if (rc != SQLITE_ROW) return db_->error(rc, "erase queue");
  EraseOp op;
  op.peer = peer;
  op.attempts = static_cast<int>(sqlite3_column_int64(u.get(), 0));
  op.next_try_ms = sqlite3_column_int64(u.get(), 1);
  op.refused = sqlite3_column_int64(u.get(), 2) != 0;
  op.last_error = column_text(u.get(), 3);
  op.t = read_row(u.get(), 4);
  return std::optional<EraseOp>(std::move(op));
}

Status Tombstones::acked(const std::string& peer, const TombstoneRow& t) {
  Db::Lock l(*db_);
  auto s =
      db_->stmt(l, "DELETE FROM erase_queue WHERE peer = ?1 AND origin_rel = ?2 AND origin = ?3");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  bind_text(u.get(), 2, t.origin_rel);
  bind_text(u.get(), 3, t.origin);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "erasure acked: " + t.origin_rel);
  return Status::ok();
}

Status Tombstones::failed(const std::string& peer, const TombstoneRow& t, int64_t next_try_ms,
                          const std::string& error, bool refused) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "UPDATE erase_queue SET attempts = attempts + 1, next_try_ms = ?4, refused = "
                     "?5, last_error = ?6 WHERE peer = ?1 AND origin_rel = ?2 AND origin = ?3");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  bind_text(u.get(), 2, t.origin_rel);
  bind_text(u.get(), 3, t.origin);
  sqlite3_bind_int64(u.get(), 4, next_try_ms);
  sqlite3_bind_int64(u.get(), 5, refused ? 1 : 0);
  bind_text(u.get(), 6, error);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "erasure failed: " + t.origin_rel);
  return Status::ok();
}

Result<std::vector<ErasePeerStats>> Tombstones::queue_stats() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT peer, COUNT(*), SUM(refused), MAX(last_error) FROM erase_queue "
                     "GROUP BY peer ORDER BY peer");
  if (!s) return s.status();
  Use u(*s);
  std::vector<ErasePeerStats> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW)
    out.push_back({column_text(u.get(), 0), static_cast<uint64_t>(sqlite3_column_int64(u.get(), 1)),
                   static_cast<uint64_t>(sqlite3_column_int64(u.get(), 2)),
                   column_text(u.get(), 3)});
  if (rc != SQLITE_DONE) return db_->error(rc, "erase queue stats");
  return out;
}

}  // namespace recsync
