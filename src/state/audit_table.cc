#include "state/audit_table.h"

#include <sqlite3.h>

#include "state/sql_util.h"

namespace recsync {

using sql::bind_text;
using sql::Use;

Status AuditTable::append(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return Status::ok();
  Db::Lock l(*db_);
  Db::Txn t(*db_, l);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  RECSYNC_RETURN_IF_ERROR(append_locked(l, rows));
  return t.commit();
}

Status AuditTable::append_locked(const Db::Lock& l, const std::vector<AuditRow>& rows) {
  auto s =
      db_->stmt(l,
                "INSERT INTO audit(rel, size, hash, rec_time_ms, deleted_ms, policy, reason, uid) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!s) return s.status();
  for (const AuditRow& a : rows) {
    Use u(*s);
    bind_text(u.get(), 1, a.rel);
    sqlite3_bind_int64(u.get(), 2, static_cast<int64_t>(a.size));
    bind_text(u.get(), 3, a.hash);
    sqlite3_bind_int64(u.get(), 4, a.rec_time_ms);
    sqlite3_bind_int64(u.get(), 5, a.deleted_ms);
    bind_text(u.get(), 6, a.policy);
    bind_text(u.get(), 7, a.reason);
    sqlite3_bind_int64(u.get(), 8, a.uid);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "append audit " + a.rel);
  }
  return Status::ok();
}

Result<uint64_t> AuditTable::count_policy(const std::string& policy) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "SELECT COUNT(*) FROM audit WHERE policy = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, policy);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_ROW) return db_->error(rc, "audit count");
  return static_cast<uint64_t>(sqlite3_column_int64(u.get(), 0));
}

Result<uint64_t> AuditTable::count() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "SELECT COUNT(*) FROM audit");
  if (!s) return s.status();
  Use u(*s);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_ROW) return db_->error(rc, "audit count");
  return static_cast<uint64_t>(sqlite3_column_int64(u.get(), 0));
}

}  // namespace recsync
