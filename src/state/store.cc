#include "state/store.h"

namespace recsync {

Result<std::unique_ptr<StateStore>> StateStore::open(const std::string& db_path, bool verify) {
  auto db = Db::open(db_path, verify);
  if (!db) return db.status();
  std::unique_ptr<StateStore> st(new StateStore());
  st->db_ = std::move(db).value();
  auto rec = Recordings::open(st->db_.get());
  if (!rec) return rec.status();
  st->recordings_ = std::move(rec).value();
  st->queue_ = std::make_unique<ReplQueue>(st->db_.get(), st->recordings_.get());
  st->holds_ = std::make_unique<Holds>(st->db_.get(), st->queue_.get());
  st->audit_ = std::make_unique<AuditTable>(st->db_.get());
  st->tombstones_ = std::make_unique<Tombstones>(st->db_.get(), &st->queue_->doorbell());
  st->backfill_ = std::make_unique<BackfillTable>(st->db_.get(), st->queue_.get());
  st->objects_ = std::make_unique<ObjectIndex>(st->db_.get());
  return st;
}

}  // namespace recsync
