#include "state/tombstones.h"

#include <sqlite3.h>

#include "state/sql_util.h"

namespace recsync {

using sql::bind_text;
using sql::column_text;
using sql::Use;

Status Tombstones::add(const TombstoneRow& t) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "INSERT OR REPLACE INTO tombstones(origin_rel, origin, hash, erased_ms, "
                     "reason) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, t.origin_rel);
  bind_text(u.get(), 2, t.origin);
  bind_text(u.get(), 3, t.hash);
  sqlite3_bind_int64(u.get(), 4, t.erased_ms);
  bind_text(u.get(), 5, t.reason);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "add tombstone " + t.origin_rel);
  return Status::ok();
}

Result<bool> Tombstones::contains(const std::string& origin_rel, const std::string& origin) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "SELECT 1 FROM tombstones WHERE origin_rel = ?1 AND origin = ?2");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, origin_rel);
  bind_text(u.get(), 2, origin);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) return db_->error(rc, "tombstone " + origin_rel);
  return false;
}

Result<std::vector<TombstoneRow>> Tombstones::list() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT origin_rel, origin, hash, erased_ms, reason FROM tombstones ORDER BY "
                     "origin_rel, origin");
  if (!s) return s.status();
  Use u(*s);
  std::vector<TombstoneRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW)
    out.push_back({column_text(u.get(), 0), column_text(u.get(), 1), column_text(u.get(), 2),
                   sqlite3_column_int64(u.get(), 3), column_text(u.get(), 4)});
  if (rc != SQLITE_DONE) return db_->error(rc, "list tombstones");
  return out;
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

}  // namespace recsync
