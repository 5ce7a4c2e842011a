#include "erase/eraser.h"

#include <algorithm>

#include "recsync/clock.h"
#include "recsync/names.h"
#include "recsync/publish.h"
#include "recsync/thread_name.h"
#include "retention/audit_log.h"
#include "state/objects.h"

namespace recsync::erase {

namespace {

constexpr const char* kPolicy = "erase";

AuditRow audit_row(const RecordingRow& r, const TombstoneRow& t, int64_t now_ms) {
  AuditRow a;
  a.rel = r.rel;
  a.size = r.size;
  a.hash = r.hash.empty() ? t.hash : r.hash;
  a.rec_time_ms = r.rec_time_ms;
  a.deleted_ms = now_ms;
  a.policy = kPolicy;
  a.reason = t.from_peer.empty() ? t.reason : t.reason + " (erased on " + t.from_peer + ")";
  a.uid = t.uid;
  return a;
}

}  // namespace

Eraser::Eraser(Env* env, StateStore* store, Placer* placer, EraserOptions opt)
    : env_(env),
      store_(store),
      placer_(placer),
      opt_(std::move(opt)),
      keep_ms_(opt_.keep.count()) {}

std::vector<std::string> Eraser::peers() const {
  std::vector<std::string> out;
  for (const std::string& p : store_->queue().peers())
    if (p != kStoreDestination) out.push_back(p);
  return out;
}

Status Eraser::write_audit(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return Status::ok();
  auto log = AuditLog::open(env_, opt_.audit_log_path);
  if (!log) return log.status();
  return log->append(rows);
}

Result<EraseOutcome> Eraser::erase(const EraseRequest& req) {
  if (req.target.empty()) return Status::invalid("erase needs a recording id or archive path");
  if (req.reason.empty()) return Status::invalid("erase needs a reason (--reason TEXT)");
  std::lock_guard<std::mutex> l(local_mu_);
  // An absolute path in the archive (as `recsync locate` prints it) names its rel.
  std::string target = req.target;
  const std::string root = opt_.archive_root + "/";
  if (target.size() > root.size() && target.compare(0, root.size(), root) == 0)
    target = target.substr(root.size());
  auto matches = store_->recordings().find(target);
  if (!matches) return matches.status();
  if (matches->empty() && req.in_spool)
    return Status::busy("'" + req.target +
                        "' is still in the spool (not archived yet): try again in a few seconds");
  for (RecordingRow& r : *matches) {
    if (!r.hash.empty()) continue;  // adopted and not hashed yet: hash it now
    auto h = hash_file(env_, path_join(opt_.archive_root, r.rel));
    if (h) r.hash = *h;
  }
  auto holds = store_->holds().list();
  if (!holds) return holds.status();
  auto plan = plan_erase(target, *matches, HoldSet(*holds));
  if (!plan) return plan.status();
  const int64_t now = to_ms(env_->now());
  TombstoneRow t;
  t.origin = plan->origin;
  t.origin_rel = plan->origin_rel;
  t.hash = plan->hash;
  t.erased_ms = now;
  t.reason = req.reason.substr(0, 1024);
  t.uid = req.uid;
  t.expires_ms = tombstone_expiry(now, plan->rec_time_ms, Millis(keep_ms_.load()));
  t.pending = true;
  std::vector<AuditRow> audit;
  std::vector<std::string> rels;
  for (const RecordingRow& r : plan->copies) {
    audit.push_back(audit_row(r, t, now));
    rels.push_back(r.rel);
  }
  EraseOutcome out;
  out.origin = placer_->node_of(t.origin);
  out.origin_rel = t.origin_rel;
  out.hash = t.hash;
  out.peers = peers();
  RECSYNC_RETURN_IF_ERROR(write_audit(audit));
  RECSYNC_RETURN_IF_ERROR(store_->tombstones().commit(t, audit, out.peers, rels));
  lg_->info("erasing {} ({}'s recording, {}) by uid {}: {}", t.origin_rel, out.origin, t.hash,
            t.uid, t.reason);
  Status s = carry_out(t, /*with_store=*/true, &out);
  if (Status sp = delete_spool_copies(t, req.spool_rels, &out); !sp)
    lg_->warn("erasure of {}: spool copies: {}", t.origin_rel, sp.message());
  if (!s) {
    lg_->warn("erasure of {} not finished ({}); retried every {} s", t.origin_rel, s.message(),
              std::chrono::seconds(kRetryEvery).count());
    wake();
    // The store is only late (the outcome says so); anything else failed here.
    if (out.object_store.rfind("pending", 0) != 0)
      return s.with_context("erasure of " + t.origin_rel +
                            " recorded but not finished here (retried in the background)");
  }
  return out;
}

Status Eraser::apply_copied(TombstoneRow t, const std::string& from_peer) {
  std::lock_guard<std::mutex> l(local_mu_);
  auto row = store_->recordings().find_identity(t.origin_rel, t.origin);
  if (!row) return row.status();
  auto holds = store_->holds().list();
  if (!holds) return holds.status();
  RecordingRow probe;
  probe.rel = t.origin_rel;
  probe.origin_rel = t.origin_rel;
  probe.origin = t.origin;
  probe.hash = t.hash;
  probe.name = recording_id(path_basename(t.origin_rel));
  HoldSet hs(*holds);
  if (hs.held(probe) || (row->has_value() && hs.held(**row)))
    return Status::refused(t.origin_rel + " is held on " + opt_.node);
  auto known = store_->tombstones().get(t.origin_rel, t.origin);
  if (!known) return known.status();
  const int64_t now = to_ms(env_->now());
  t.from_peer = from_peer;
  // Counted from when this node learns of it (the peer's clock may differ,
  // or the ERASE waited long in its queue).
  const int64_t base = std::max(t.erased_ms, now);
  t.expires_ms = tombstone_expiry(base, row->has_value() ? (*row)->rec_time_ms : base,
                                  Millis(keep_ms_.load()));
  t.pending = true;
  if (!known->has_value() || (*known)->pending || row->has_value()) {
    std::vector<AuditRow> audit;
    std::vector<std::string> rels;
    if (row->has_value() && (*row)->hash == t.hash) {
      audit.push_back(audit_row(**row, t, now));
      rels.push_back((*row)->rel);
    }
    RECSYNC_RETURN_IF_ERROR(write_audit(audit));
    RECSYNC_RETURN_IF_ERROR(store_->tombstones().commit(t, audit, {}, rels));
    lg_->info("erasing {} ({}'s recording, {}) as asked by peer {}: {}", t.origin_rel,
              placer_->node_of(t.origin), t.hash, from_peer, t.reason);
  }
  Status s = carry_out(t, /*with_store=*/false, nullptr);
  if (!s) lg_->warn("erasure of {} not finished ({}); retried", t.origin_rel, s.message());
  wake();
  return Status::ok();
}

Status Eraser::delete_copy(const TombstoneRow& t, const std::string& rel, EraseOutcome* out) {
  const std::string path = path_join(opt_.archive_root, rel);
  auto st = env_->lstat(path);
  if (st && st->is_reg) {
    // A copy placed after the transaction (it raced with it): audited now.
    auto row = store_->recordings().get(rel);
    if (!row) return row.status();
    RecordingRow r = row->has_value() ? **row : RecordingRow{};
    r.rel = rel;
    r.size = st->size;
    r.rec_time_ms = r.rec_time_ms ? r.rec_time_ms : st->mtime_ns / 1'000'000;
    if (!row->has_value()) {
      std::vector<AuditRow> a{audit_row(r, t, to_ms(env_->now()))};
      RECSYNC_RETURN_IF_ERROR(write_audit(a));
      RECSYNC_RETURN_IF_ERROR(store_->audit().append(a));
      RECSYNC_RETURN_IF_ERROR(store_->tombstones().add_erased(1));
    }
    if (Status s = env_->unlink(path); !s && s.code() != Status::Code::kNotFound) return s;
    RECSYNC_RETURN_IF_ERROR(env_->sync_dir(path_dirname(path)));
    if (out) {
      out->removed.push_back(path);
      out->bytes += st->size;
    }
    lg_->info("erased {} ({} bytes)", rel, st->size);
  }
  return store_->recordings().remove(rel);
}

Status Eraser::delete_spool_copies(const TombstoneRow& t, const std::vector<std::string>& rels,
                                   EraseOutcome* out) {
  for (const std::string& rel : rels) {
    const std::string path = path_join(opt_.spool_root, rel);
    auto h = hash_file(env_, path);
    if (!h || *h != t.hash) continue;  // another recording of that name, or gone
    auto st = env_->lstat(path);
    if (Status s = env_->unlink(path); !s && s.code() != Status::Code::kNotFound) return s;
    RECSYNC_RETURN_IF_ERROR(env_->sync_dir(path_dirname(path)));
    if (out) {
      out->removed.push_back(path);
      out->bytes += st ? st->size : 0;
    }
    lg_->info("erased the spool copy {}", path);
  }
  return Status::ok();
}

Status Eraser::carry_out(const TombstoneRow& t, bool with_store, EraseOutcome* out) {
  const Identity id{placer_->node_of(t.origin), t.origin_rel, t.hash};
  // The archive path of the copy here (for the object key), before its row goes.
  std::string rel = t.origin_rel;
  if (auto r = store_->recordings().find_identity(t.origin_rel, t.origin); r && r->has_value())
    rel = (*r)->rel;
  RECSYNC_RETURN_IF_ERROR(
      placer_->erase_copies(id, [&](const std::string& at) { return delete_copy(t, at, out); }));
  if (tier_erase_) {
    if (!with_store) return Status::ok();  // left pending for the worker
    Status s = tier_erase_(rel);
    if (out) out->object_store = s ? "erased" : "pending: " + s.message();
    if (!s) return s.with_context("object store");
  }
  return store_->tombstones().finished(t.origin_rel, t.origin);
}

Status Eraser::finish_pending(bool with_store) {
  auto p = store_->tombstones().pending();
  if (!p) return p.status();
  Status first;
  for (const TombstoneRow& t : *p) {
    Status s;
    {
      std::lock_guard<std::mutex> l(local_mu_);
      s = carry_out(t, with_store, nullptr);
    }
    if (s && (with_store || !tier_erase_)) {
      lg_->info("erasure of {} ({}'s recording) finished", t.origin_rel,
                placer_->node_of(t.origin));
    } else if (first.is_ok()) {
      first = s.with_context("erasure of " + t.origin_rel);
    }
  }
  return first;
}

Status Eraser::sweep_archive() {
  auto all = store_->tombstones().list();
  if (!all) return all.status();
  std::lock_guard<std::mutex> l(local_mu_);
  for (const TombstoneRow& t : *all) {
    const Identity id{placer_->node_of(t.origin), t.origin_rel, t.hash};
    RECSYNC_RETURN_IF_ERROR(placer_->erase_copies(
        id, [&](const std::string& at) { return delete_copy(t, at, nullptr); }));
  }
  return Status::ok();
}

void Eraser::start() {
  thread_ = std::thread([this] { main(); });
}

void Eraser::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Eraser::wake() {
  {
    std::lock_guard<std::mutex> l(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void Eraser::main() {
  name_this_thread("rs-erase");
  auto next_expire = std::chrono::steady_clock::now();
  std::string last_error;
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, kRetryEvery, [&] { return stop_ || woken_; });
      if (stop_) return;
      woken_ = false;
    }
    Status s = finish_pending();
    if (!s && s.message() != last_error) lg_->warn("{}", s.message());
    last_error = s ? "" : s.message();
    if (std::chrono::steady_clock::now() < next_expire) continue;
    next_expire = std::chrono::steady_clock::now() + kExpireEvery;
    if (auto n = store_->tombstones().expire_due(to_ms(env_->now())); n && *n > 0)
      lg_->info("{} tombstones expired (past the retention window)", *n);
  }
}

}  // namespace recsync::erase
