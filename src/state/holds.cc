#include "state/holds.h"

#include <sqlite3.h>

#include "state/sql_util.h"

namespace recsync {

using sql::bind_text;
using sql::bind_text_copy;
using sql::column_text;
using sql::Use;

namespace {

constexpr const char* kHoldColumns = "target, reason, created_ms, origin, origin_rel, hash";

HoldRow read_hold(sqlite3_stmt* s, int first) {
  HoldRow h;
  h.target = column_text(s, first);
  h.reason = column_text(s, first + 1);
  h.created_ms = sqlite3_column_int64(s, first + 2);
  h.origin = column_text(s, first + 3);
  h.origin_rel = column_text(s, first + 4);
  h.hash = column_text(s, first + 5);
  return h;
}

}  // namespace

HoldSet::HoldSet(const std::vector<HoldRow>& holds) {
  for (const HoldRow& h : holds) (h.is_identity() ? identities_ : targets_).insert(h.key());
}

bool HoldSet::held(const RecordingRow& r) const {
  if (!targets_.empty() && (targets_.count(r.rel) > 0 || targets_.count(r.name) > 0 ||
                            targets_.count(r.identity_rel()) > 0))
    return true;
  if (identities_.empty() || r.hash.empty()) return false;
  HoldRow as_hold;
  as_hold.origin = r.origin;
  as_hold.origin_rel = r.identity_rel();
  as_hold.hash = r.hash;
  return identities_.count(as_hold.key()) > 0;
}

Status Holds::add_locked(const Db::Lock& l, const HoldRow& h) {
  auto s = db_->stmt(l,
                     "INSERT OR REPLACE INTO holds(key, target, reason, created_ms, origin, "
                     "origin_rel, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!s) return s.status();
  Use u(*s);
  bind_text_copy(u.get(), 1, h.key());
  bind_text(u.get(), 2, h.target);
  bind_text(u.get(), 3, h.reason);
  sqlite3_bind_int64(u.get(), 4, h.created_ms);
  bind_text(u.get(), 5, h.origin);
  bind_text(u.get(), 6, h.origin_rel);
  bind_text(u.get(), 7, h.hash);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "add hold " + h.target);
  return Status::ok();
}

Status Holds::queue_op_locked(const Db::Lock& l, const std::vector<std::string>& peers, int op,
                              const HoldRow& h) {
  auto s = db_->stmt(l,
                     "INSERT INTO hold_queue(peer, op, target, reason, created_ms, origin, "
                     "origin_rel, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!s) return s.status();
  for (const std::string& peer : peers) {
    Use u(*s);
    bind_text(u.get(), 1, peer);
    sqlite3_bind_int64(u.get(), 2, op);
    bind_text(u.get(), 3, h.target);
    bind_text(u.get(), 4, h.reason);
    sqlite3_bind_int64(u.get(), 5, h.created_ms);
    bind_text(u.get(), 6, h.origin);
    bind_text(u.get(), 7, h.origin_rel);
    bind_text(u.get(), 8, h.hash);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "queue hold for " + peer);
  }
  return Status::ok();
}

Status Holds::add(const std::vector<HoldRow>& holds) {
  const std::vector<std::string> peers = queue_->peers();
  {
    Db::Lock l(*db_);
    Db::Txn t(*db_, l);
    RECSYNC_RETURN_IF_ERROR(t.begin());
    for (const HoldRow& h : holds) {
      RECSYNC_RETURN_IF_ERROR(add_locked(l, h));
      RECSYNC_RETURN_IF_ERROR(queue_op_locked(l, peers, HoldOp::kAdd, h));
    }
    RECSYNC_RETURN_IF_ERROR(t.commit());
  }
  if (!peers.empty() && !holds.empty()) queue_->doorbell().ring();
  return Status::ok();
}

Result<std::vector<HoldRow>> Holds::release_locked(const Db::Lock& l, const std::string& what) {
  std::vector<HoldRow> gone;
  {
    auto s = db_->stmt(l,
                       "SELECT target, reason, created_ms, origin, origin_rel, hash FROM holds "
                       "WHERE key = ?1 OR target = ?1");
    if (!s) return s.status();
    Use u(*s);
    bind_text(u.get(), 1, what);
    int rc;
    while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) gone.push_back(read_hold(u.get(), 0));
    if (rc != SQLITE_DONE) return db_->error(rc, "find hold " + what);
  }
  auto s = db_->stmt(l, "DELETE FROM holds WHERE key = ?1 OR target = ?1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, what);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "release hold " + what);
  return gone;
}

Result<size_t> Holds::release(const std::string& what) {
  const std::vector<std::string> peers = queue_->peers();
  size_t n = 0;
  {
    Db::Lock l(*db_);
    Db::Txn t(*db_, l);
    RECSYNC_RETURN_IF_ERROR(t.begin());
    auto gone = release_locked(l, what);
    if (!gone) return gone.status();
    n = gone->size();
    for (HoldRow h : *gone) {
      h.reason.clear();
      h.created_ms = 0;
      RECSYNC_RETURN_IF_ERROR(queue_op_locked(l, peers, HoldOp::kRelease, h));
    }
    RECSYNC_RETURN_IF_ERROR(t.commit());
  }
  if (n > 0 && !peers.empty()) queue_->doorbell().ring();
  return n;
}

Status Holds::copy_to(const std::string& peer, const HoldRow& h) {
  {
    Db::Lock l(*db_);
    RECSYNC_RETURN_IF_ERROR(queue_op_locked(l, {peer}, HoldOp::kAdd, h));
  }
  queue_->doorbell().ring();
  return Status::ok();
}

Status Holds::add_copied(const HoldRow& h) {
  Db::Lock l(*db_);
  return add_locked(l, h);
}

Result<size_t> Holds::release_copied(const std::string& what) {
  Db::Lock l(*db_);
  auto gone = release_locked(l, what);
  if (!gone) return gone.status();
  return gone->size();
}

Result<std::optional<HoldOp>> Holds::next_op(const std::string& peer) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT seq, op, target, reason, created_ms, origin, origin_rel, hash FROM "
                     "hold_queue WHERE peer = ?1 ORDER BY seq LIMIT 1");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  int rc = sqlite3_step(u.get());
  if (rc == SQLITE_DONE) return std::optional<HoldOp>();
  if (rc != SQLITE_ROW) return db_->error(rc, "hold_ops_next");
  HoldOp o;
  o.seq = sqlite3_column_int64(u.get(), 0);
  o.op = static_cast<int>(sqlite3_column_int64(u.get(), 1));
  o.hold = read_hold(u.get(), 2);
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

Result<std::vector<HoldRow>> Holds::list() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT target, reason, created_ms, origin, origin_rel, hash FROM holds "
                     "ORDER BY target, key");
  if (!s) return s.status();
  Use u(*s);
  std::vector<HoldRow> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) out.push_back(read_hold(u.get(), 0));
  if (rc != SQLITE_DONE) return db_->error(rc, "list holds");
  return out;
}

}  // namespace recsync
