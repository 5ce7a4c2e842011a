#pragma once
// The deletion audit kept in the database (table `audit`), beside the
// audit log file (retention/audit_log.h), which is written first.
// Thread safety: any thread; every call takes the Db lock.
#include <cstdint>
#include <string>
#include <vector>

#include "state/db.h"
#include "state/rows.h"

namespace recsync {

class AuditTable {
 public:
  explicit AuditTable(Db* db) : db_(db) {}
  // Appends all rows in one transaction.
  Status append(const std::vector<AuditRow>& rows);
  // The same inside a caller's transaction (the erasure's).
  Status append_locked(const Db::Lock& l, const std::vector<AuditRow>& rows);
  Result<uint64_t> count();
  // Rows with this policy ("erase").
  Result<uint64_t> count_policy(const std::string& policy);

 private:
  Db* db_;
};

}  // namespace recsync
