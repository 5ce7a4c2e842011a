#include "state/repl_queue.h"

#include <sqlite3.h>

#include "state/sql_util.h"

namespace recsync {

using sql::bind_text;
using sql::bind_text_copy;
using sql::column_text;
using sql::Use;

void ReplQueue::set_peers(std::vector<std::string> peers) {
  std::lock_guard<std::mutex> l(peers_mu_);
  peers_ = std::move(peers);
}

std::vector<std::string> ReplQueue::peers() const {
  std::lock_guard<std::mutex> l(peers_mu_);
  return peers_;
}

Status ReplQueue::record(const RecordingRow& r, int64_t mtime_ns) {
  const std::vector<std::string> to = peers();
  if (to.empty()) return recordings_->upsert(r);
  {
    Db::Lock l(*db_);
    Db::Txn t(*db_, l);
    RECSYNC_RETURN_IF_ERROR(t.begin());
    RECSYNC_RETURN_IF_ERROR(recordings_->upsert_locked(l, r));
    RECSYNC_RETURN_IF_ERROR(enqueue_locked(l, r, to, mtime_ns, 0));
    RECSYNC_RETURN_IF_ERROR(t.commit());
  }
  bell_.ring();
  return Status::ok();
}

Status ReplQueue::enqueue_locked(const Db::Lock& l, const RecordingRow& r,
                                 const std::vector<std::string>& peers, int64_t mtime_ns,
                                 int prio) {
  // A row already queued for this path keeps its place unless the content
  // differs (then it is a new transfer).
  auto s = db_->stmt(
      l,
      "INSERT INTO repl_queue(peer, rel, size, hash, mtime_ns, enqueued_ms, origin_rel, origin, "
      "prio) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(peer, rel) DO UPDATE SET "
      "size = excluded.size, hash = excluded.hash, mtime_ns = excluded.mtime_ns, "
      "enqueued_ms = excluded.enqueued_ms, prio = excluded.prio, attempts = 0, next_try_ms = 0, "
      "last_error = '', origin_rel = excluded.origin_rel, origin = excluded.origin "
      "WHERE repl_queue.hash <> excluded.hash");
  if (!s) return s.status();
  for (const std::string& peer : peers) {
    Use u(*s);
    bind_text(u.get(), 1, peer);
    bind_text(u.get(), 2, r.rel);
    sqlite3_bind_int64(u.get(), 3, static_cast<int64_t>(r.size));
    bind_text(u.get(), 4, r.hash);
    sqlite3_bind_int64(u.get(), 5, mtime_ns);
    sqlite3_bind_int64(u.get(), 6, r.archived_at_ms);
    bind_text_copy(u.get(), 7, r.origin_rel == r.rel ? std::string() : r.origin_rel);
    bind_text_copy(u.get(), 8, r.origin == kLocalOrigin ? std::string() : r.origin);
    sqlite3_bind_int64(u.get(), 9, prio);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "enqueue " + r.rel + " for " + peer);
  }
  return Status::ok();
}

Status ReplQueue::move_recording(const std::string& from_rel, const std::string& to_rel,
                                 const std::string& origin_rel) {
  Db::Lock l(*db_);
  Db::Txn t(*db_, l);
  RECSYNC_RETURN_IF_ERROR(t.begin());
  for (const char* sql : {"UPDATE recordings SET rel = ?2, origin_rel = CASE WHEN ?3 <> '' THEN ?3 "
                          "WHEN origin_rel = '' THEN ?1 ELSE origin_rel END WHERE rel = ?1",
                          "UPDATE repl_queue SET rel = ?2, origin_rel = CASE WHEN ?3 <> '' THEN ?3 "
                          "WHEN origin_rel = '' THEN ?1 ELSE origin_rel END WHERE rel = ?1",
                          // The object-store tier's rows: the object keeps its key (by
                          // identity), the index follows the archive path.
                          "UPDATE objects SET rel = ?2 WHERE rel = ?1",
                          "UPDATE object_uploads SET rel = ?2 WHERE rel = ?1"}) {
    auto s = db_->stmt(l, sql);
    if (!s) return s.status();
    Use u(*s);
    bind_text(u.get(), 1, from_rel);
    bind_text(u.get(), 2, to_rel);
    bind_text(u.get(), 3, origin_rel);
    int rc = sqlite3_step(u.get());
    if (rc != SQLITE_DONE) return db_->error(rc, "move " + from_rel + " -> " + to_rel);
  }
  return t.commit();
}

namespace {
QueueItem read_queue_item(sqlite3_stmt* s) {
  QueueItem q;
  q.peer = column_text(s, 0);
  q.rel = column_text(s, 1);
  q.size = static_cast<uint64_t>(sqlite3_column_int64(s, 2));
  q.hash = column_text(s, 3);
  q.mtime_ns = sqlite3_column_int64(s, 4);
  q.enqueued_ms = sqlite3_column_int64(s, 5);
  q.prio = static_cast<int>(sqlite3_column_int64(s, 6));
  q.attempts = static_cast<int>(sqlite3_column_int64(s, 7));
  q.next_try_ms = sqlite3_column_int64(s, 8);
  q.last_error = column_text(s, 9);
  q.origin_rel = column_text(s, 10);
  q.origin = column_text(s, 11);
  return q;
}
}  // namespace

Result<std::optional<QueueItem>> ReplQueue::next(const std::string& peer, int64_t now_ms,
                                                 int64_t live_window_ms) {
  auto b = batch(peer, now_ms, live_window_ms, 1, Lane::kLive);
  if (!b) return b.status();
  if (b->empty()) return std::optional<QueueItem>();
  return std::optional<QueueItem>(std::move(b->front()));
}

Result<std::vector<QueueItem>> ReplQueue::batch(const std::string& peer, int64_t now_ms,
                                                int64_t live_window_ms, size_t limit, Lane lane) {
  Db::Lock l(*db_);
  std::vector<QueueItem> out;
  // Fresh live entries first (oldest of them first), so a backlog left by a
  // peer outage does not delay calls that just ended; then everything due in
  // (prio, age) order.
  auto fresh =
      db_->stmt(l,
                "SELECT peer, rel, size, hash, mtime_ns, enqueued_ms, prio, attempts, next_try_ms, "
                "last_error, origin_rel, origin FROM repl_queue WHERE peer = ?1 AND prio = 0 AND "
                "enqueued_ms >= ?2 AND ?4 = 0 "
                "ORDER BY enqueued_ms LIMIT ?3");
  if (!fresh) return fresh.status();
  {
    Use u(*fresh);
    bind_text(u.get(), 1, peer);
    sqlite3_bind_int64(u.get(), 2, now_ms - live_window_ms);
    sqlite3_bind_int64(u.get(), 3, static_cast<int64_t>(limit));
    sqlite3_bind_int64(u.get(), 4, lane == Lane::kBackfill);
    int rc;
    while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) out.push_back(read_queue_item(u.get()));
    if (rc != SQLITE_DONE) return db_->error(rc, "queue_batch");
  }
  if (out.size() >= limit) return out;
  auto any =
      db_->stmt(l,
                "SELECT peer, rel, size, hash, mtime_ns, enqueued_ms, prio, attempts, next_try_ms, "
                "last_error, origin_rel, origin FROM repl_queue WHERE peer = ?1 AND "
                "next_try_ms <= ?2 AND prio BETWEEN ?4 AND ?5 ORDER BY prio, enqueued_ms LIMIT ?3");
  if (!any) return any.status();
  Use u(*any);
  bind_text(u.get(), 1, peer);
  sqlite3_bind_int64(u.get(), 2, now_ms);
  // Fresh ones may come again in this walk: ask for enough to fill up.
  sqlite3_bind_int64(u.get(), 3, static_cast<int64_t>(limit + out.size()));
  sqlite3_bind_int64(u.get(), 4, lane == Lane::kBackfill ? kBackfillPrio : 0);
  sqlite3_bind_int64(u.get(), 5, lane == Lane::kBackfill ? kBackfillPrio : kBackfillPrio - 1);
  const size_t n_fresh = out.size();
  int rc = SQLITE_DONE;
  while (out.size() < limit && (rc = sqlite3_step(u.get())) == SQLITE_ROW) {
    QueueItem q = read_queue_item(u.get());
    bool dup = false;
    for (size_t i = 0; i < n_fresh; ++i) dup |= out[i].rel == q.rel;
    if (!dup) out.push_back(std::move(q));
  }
  if (out.size() < limit && rc != SQLITE_DONE) return db_->error(rc, "queue_batch");
  return out;
}

Status ReplQueue::done(const std::string& peer, const std::string& rel, const std::string& hash) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "DELETE FROM repl_queue WHERE peer = ?1 AND rel = ?2 AND hash = ?3");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  bind_text(u.get(), 2, rel);
  bind_text(u.get(), 3, hash);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "dequeue " + rel);
  return Status::ok();
}

Status ReplQueue::defer(const std::string& peer, const std::string& rel, int64_t next_try_ms,
                        const std::string& error_text) {
  Db::Lock l(*db_);
  auto s = db_->stmt(
      l,
      "UPDATE repl_queue SET prio = MAX(prio, 1), attempts = attempts + 1, next_try_ms = ?3, "
      "last_error = ?4 WHERE peer = ?1 AND rel = ?2");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  bind_text(u.get(), 2, rel);
  sqlite3_bind_int64(u.get(), 3, next_try_ms);
  bind_text(u.get(), 4, error_text);
  int rc = sqlite3_step(u.get());
  if (rc != SQLITE_DONE) return db_->error(rc, "defer " + rel);
  return Status::ok();
}

Result<std::vector<std::pair<std::string, uint64_t>>> ReplQueue::peers_with_entries() {
  Db::Lock l(*db_);
  auto s = db_->stmt(l, "SELECT peer, count(*) FROM repl_queue GROUP BY peer ORDER BY peer");
  if (!s) return s.status();
  Use u(*s);
  std::vector<std::pair<std::string, uint64_t>> out;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW)
    out.emplace_back(column_text(u.get(), 0),
                     static_cast<uint64_t>(sqlite3_column_int64(u.get(), 1)));
  if (rc != SQLITE_DONE) return db_->error(rc, "queue_peers");
  return out;
}

Result<QueueStats> ReplQueue::stats(const std::string& peer) {
  Db::Lock l(*db_);
  auto s = db_->stmt(l,
                     "SELECT prio, count(*), coalesce(sum(size), 0), coalesce(min(enqueued_ms), 0) "
                     "FROM repl_queue WHERE peer = ?1 GROUP BY prio");
  if (!s) return s.status();
  Use u(*s);
  bind_text(u.get(), 1, peer);
  QueueStats q;
  int rc;
  while ((rc = sqlite3_step(u.get())) == SQLITE_ROW) {
    const int prio = static_cast<int>(sqlite3_column_int64(u.get(), 0));
    const uint64_t n = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 1));
    const uint64_t b = static_cast<uint64_t>(sqlite3_column_int64(u.get(), 2));
    const int64_t oldest = sqlite3_column_int64(u.get(), 3);
    (prio == 0 ? q.live_files : prio == 1 ? q.retry_files : q.backfill_files) += n;
    (prio == 0 ? q.live_bytes : prio == 1 ? q.retry_bytes : q.backfill_bytes) += b;
    if (oldest && (q.oldest_enqueued_ms == 0 || oldest < q.oldest_enqueued_ms))
      q.oldest_enqueued_ms = oldest;
  }
  if (rc != SQLITE_DONE) return db_->error(rc, "queue_stats");
  return q;
}

}  // namespace recsync
