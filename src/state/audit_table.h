#pragma once
// The deletion audit kept in the database (table `audit`), beside the
// audit log file (retention/audit_log.h), which is written first.
// Thread safety: any thread; every call takes the Db lock.
#include <cstdint>
#include <vector>

#include "state/db.h"
#include "state/rows.h"

namespace recsync {

class AuditTable {
 public:
  explicit AuditTable(Db* db) : db_(db) {}
  // Appends all rows in one transaction.
  Status append(const std::vector<AuditRow>& rows);
  Result<uint64_t> count();

 private:
  Db* db_;
};

}  // namespace recsync
