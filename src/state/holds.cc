#include "state/holds.h"

#include <sqlite3.h>

#include "state/sql_util.h"

namespace recsync {

using sql::bind_text;
using sql::column_text;
using sql::Use;

Status Holds::add_copied(const HoldRow& h) {
  Db::Lock l(*db_);
  return add_locked(l, h);
}

Status Holds::add_locked(const Db::Lock& l, const HoldRow& h) {
  auto s =
      db_->stmt(l, "INSERT OR REPLACE INTO holds(target, reason, created_ms) VALUES (?1, ?2, ?3)");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, h.target);
  bind_text(u.get(), 2, h.reason);
  sqlite3_bind_int64(u.get(), 3, h.created_ms);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "add hold " + h.target);
  return Status::ok();
}

Status Holds::queue_op_locked(const Db::Lock& l, const std::vector<std::string>& peers, int op,
                              const HoldRow& h) {
  auto s = db_->stmt(
      l,
      "INSERT INTO hold_queue(peer, op, target, reason, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!s) return s.status();
  for (const std::string& peer : peers) {
    Use u(*s);
    bind_text(u.get(), 1, peer);
    sqlite3_bind_int64(u.get(), 2, op);
    bind_text(u.get(), 3, h.target);
    bind_text(u.get(), 4, h.reason);
    sqlite3_bind_int64(u.get(), 5, h.created_ms);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "queue hold for " + peer);
  }
  return Status::ok();
}

Status Holds::add(const HoldRow& h) {
  const std::vector<std::string> peers = queue_->peers();
  {
    Db::Lock l(*db_);
    Db::Txn t(*db_, l);
    RECSYNC_RETURN_IF_ERROR(t.begin());
    RECSYNC_RETURN_IF_ERROR(add_locked(l, h));
    RECSYNC_RETURN_IF_ERROR(queue_op_locked(l, peers, HoldOp::kAdd, h));
    RECSYNC_RETURN_IF_ERROR(t.commit());
  }
  if (!peers.empty()) queue_->doorbell().ring();
  return Status::ok();
}

Result<bool> Holds::release(const std::string& target) {
  const std::vector<std::string> peers = queue_->peers();
  bool had = false;
  {
    Db::Lock l(*db_);
    Db::Txn t(*db_, l);
    RECSYNC_RETURN_IF_ERROR(t.begin());
    auto r = release_locked(l, target);
    if (!r) return r.status();
    had = *r;
    HoldRow h;
    h.target = target;
    if (had) RECSYNC_RETURN_IF_ERROR(queue_op_locked(l, peers, HoldOp::kRelease, h));
    RECSYNC_RETURN_IF_ERROR(t.commit());
  }
  if (had && !peers.empty()) queue_->doorbell().ring();
  return had;
}

Result<std::optional<HoldOp>> Holds::next_op(const std::string& peer) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT seq, op, target, reason, created_ms FROM hold_queue WHERE peer = ?1 "
                     "ORDER BY seq LIMIT 1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_DONE) return std::optional<HoldOp>();
  if (rc != SQLITE_ROW) return db_->error(rc, "hold_ops_next");
  HoldOp o;
  o.seq = sqlite3_column_int64(u.get(), 0);
  o.op = static_cast<int>(sqlite3_column_int64(u.get(), 1));
  o.hold.target = column_text(u.get(), 2);
  o.hold.reason = column_text(u.get(), 3);
  o.hold.created_ms = sqlite3_column_int64(u.get(), 4);
  return std::optional<HoldOp>(std::move(o));
}

Status Holds::op_done(int64_t seq) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "DELETE FROM hold_queue WHERE seq = ?1");
  if (!s) return s.status();
  Use u(*s);
  sqlite3_bind_int64(u.get(), 1, seq);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "hold_op_done");
  return Status::ok();
}

Result<bool> Holds::release_copied(const std::string& target) {
  Db::Lock l(*db_);
  return release_locked(l, target);
}

Result<bool> Holds::release_locked(const Db::Lock& l, const std::string& target) {
  auto s = db_->stmt(l, "DELETE FROM holds WHERE target = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, target);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "release hold " + target);
  return db_->changes(l) > 0;
}

Result<std::vector<HoldRow>> Holds::list() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "SELECT target, reason, created_ms FROM holds ORDER BY target");
  if (!s) return s.status();
  Use u(*s);
  std::vector<HoldRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
    HoldRow h;
    h.target = column_text(u.get(), 0);
    h.reason = column_text(u.get(), 1);
    h.created_ms = sqlite3_column_int64(u.get(), 2);
    out.push_back(std::move(h));
  }
  if (rc != SQLITE_DONE) return db_->error(rc, "list holds");
  return out;
}

}  // namespace recsync
