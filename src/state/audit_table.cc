#include "state/audit_table.h"

#include <sqlite3.h>

#include "state/sql_util.h"

namespace recsync {

using sql::bind_text;
using sql::Use;

Status AuditTable::append(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return Status::ok();
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "INSERT INTO audit(rel, size, hash, rec_time_ms, deleted_ms, policy) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!s) return s.status();
  Db::Txn t(*db_, l);
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
    if (rc != SQLITE_DONE) return db_->error(rc, "append audit " + a.rel);
  }
  return t.commit();
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
