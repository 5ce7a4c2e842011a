#pragma once
// Erased recordings (SPEC 4.4, table `tombstones`): an identity (origin path,
// origin) with the hash it had, when and why it was erased. Replication and
// backfill never send, pull or push a tombstoned identity again; a tombstone
// is kept at least for the retention window (expire() drops older ones).
// Origins are stored as in `recordings` ("local" = this node).
//
// Thread safety: any thread; every call takes the Db lock.
#include <string>
#include <vector>

#include "state/db.h"
#include "state/rows.h"

namespace recsync {

class Tombstones {
 public:
  explicit Tombstones(Db* db) : db_(db) {}
  Status add(const TombstoneRow& t);
  Result<bool> contains(const std::string& origin_rel, const std::string& origin);
  Result<std::vector<TombstoneRow>> list();
  // Drops tombstones erased before cutoff_ms; how many.
  Result<uint64_t> expire(int64_t cutoff_ms);

 private:
  Db* db_;
};

}  // namespace recsync
