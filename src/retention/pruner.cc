#include "retention/pruner.h"

#include <algorithm>
#include <optional>
#include <set>
#include <thread>
#include <unordered_set>

#include "recsync/log.h"
#include "recsync/names.h"
#include "retention/audit_log.h"
#include "retention/prune_parts.h"

namespace recsync {
namespace {

using namespace prune_detail;

class PruneRun {
 public:
  PruneRun(Env* env, StateStore* store, const std::string& root, const std::string& audit_path,
           const RetentionPolicy& p, int pace, Millis tmp_grace, bool dry_run,
           const std::atomic<bool>& stop)
      : env_(env),
        store_(store),
        root_(root),
        audit_path_(audit_path),
        policy_(p),
        policy_str_(policy_string(p)),
        offload_policy_str_(offload_policy_string(p)),
        tmp_grace_(tmp_grace),
        dry_run_(dry_run),
        stop_(stop),
        pacer_(pace),
        batch_size_(pace > 0 ? std::clamp<size_t>(size_t(pace), 1, Pruner::kBatch)
                             : Pruner::kBatch),
        threads_(pace > 0 ? 1 : Pruner::kThreads),
        log_(log::get("retention")) {}

  // The object-store tier and the deletion pace for its objects.
  void set_tier(ObjectTierOps* tier, int pace) {
    tier_ = tier;
    pacer_per_s_ = pace;
  }

  Result<PruneReport> run() {
    const WallTime now = env_->now();
    now_ms_ = to_ms(now);
    auto stats = store_->recordings().stats();
    if (!stats) return stats.status();
    int64_t newest = stats->newest_rec_time_ms;
    if (tier_) {
      auto os = store_->objects().stats();
      if (!os) return os.status();
      newest = std::max(newest, os->newest_rec_time_ms);
    }
    rep_.refused = clock_refusal(now, newest, policy_);
    if (!rep_.refused.empty()) {
      log_->info("prune refused: {}", rep_.refused);
      return std::move(rep_);
    }
    auto hold_rows = store_->holds().list();
    if (!hold_rows) return hold_rows.status();
    const HoldSet holds(*hold_rows);

    {
      PassTuning tuning(store_, dry_run_ ? 0 : Pruner::kPassCacheKib,
                        dry_run_ ? 0 : Pruner::kPassWalPages);
      FolderSyncer syncer(env_, log_);
      StoreWriter writer(store_);
      syncer_ = &syncer;
      writer_ = &writer;
      Status s = prune_recordings(now, holds);
      Status p = submit_pending();  // also after an error: those files are gone
      Status w = writer.finish();
      writer_ = nullptr;
      syncer_ = nullptr;
      timing_.sync = syncer.busy();
      timing_.rows = writer.busy();
      RECSYNC_RETURN_IF_ERROR(s);
      RECSYNC_RETURN_IF_ERROR(p);
      RECSYNC_RETURN_IF_ERROR(w);
    }
    auto t0 = SteadyClock::now();
    if (!stop_.load()) RECSYNC_RETURN_IF_ERROR(sweep_temps());
    timing_.sweep += SteadyClock::now() - t0;
    t0 = SteadyClock::now();
    if (!dry_run_) RECSYNC_RETURN_IF_ERROR(remove_empty_dirs());
    timing_.dirs += SteadyClock::now() - t0;
    rep_.stopped = stop_.load();
    if (tier_ && !stop_.load()) {
      ObjectPruner op(env_, store_, tier_, audit_path_, policy_, pacer_per_s_);
      auto orep = op.run(now, holds, dry_run_, stop_);
      if (!orep) return orep.status();
      rep_.objects = std::move(orep).value();
    }
    if (!dry_run_) RECSYNC_RETURN_IF_ERROR(record_meta());
    log_->info("prune {}: {} recordings ({} bytes) {}, {} held, {} temps, {} folders, {} errors{}",
               dry_run_ ? "dry run" : "done", rep_.removed, rep_.bytes,
               dry_run_ ? "would go" : "removed", rep_.held, rep_.temps_removed, rep_.dirs_removed,
               rep_.errors, rep_.stopped ? " (stopped)" : "");
    if (tier_ && (rep_.offloaded || rep_.unstored))
      log_->info(
          "prune: {} local copies {} at keep_local (object verified in the store); {} past "
          "keep_local kept until their upload is verified",
          rep_.offloaded, dry_run_ ? "would go" : "removed", rep_.unstored);
    if (rep_.changed > 0)
      log_->warn(
          "prune: {} recordings left alone because their files changed since they were "
          "indexed (the next archive scan re-indexes them)",
          rep_.changed);
    log_->debug(
        "prune timing (s): query {:.3f}, check {:.3f}, audit log {:.3f}, unlink {:.3f}, "
        "folder sync (background) {:.3f}, store (background) {:.3f}, waited for them {:.3f}, "
        "temp sweep {:.3f}, folders {:.3f}",
        secs(timing_.query), secs(timing_.check), secs(timing_.audit), secs(timing_.unlink),
        secs(timing_.sync), secs(timing_.rows), secs(timing_.wait), secs(timing_.sweep),
        secs(timing_.dirs));
    return std::move(rep_);
  }

 private:
  Status prune_recordings(WallTime now, const HoldSet& holds) {
    const int64_t cutoff = candidate_cutoff_ms(now, policy_);
    int64_t after_time = Recordings::kFirstTime, after_id = 0;
    std::vector<RecordingRow> batch;
    batch.reserve(batch_size_);
    while (!stop_.load()) {
      auto t0 = SteadyClock::now();
      auto chunk = store_->recordings().older_than(cutoff, after_time, after_id, Pruner::kChunk);
      timing_.query += SteadyClock::now() - t0;
      if (!chunk) return chunk.status();
      RECSYNC_RETURN_IF_ERROR(submit_pending());
      if (chunk->empty()) break;
      after_time = chunk->back().rec_time_ms;
      after_id = chunk->back().id;
      const bool last = chunk->size() < Pruner::kChunk;
      auto planned = plan_chunk(*chunk, holds, now);
      if (!planned) return planned.status();
      PlanResult plan = std::move(planned).value();
      chunk->clear();
      chunk->shrink_to_fit();
      rep_.held += plan.held.size();
      rep_.unstored += plan.unstored.size();
      if (dry_run_) rep_.offloaded += plan.offload.size();  // a real run counts in account()
      for (RecordingRow& r : plan.offload) {
        if (!dry_run_) offload_rels_.insert(r.rel);
        plan.remove.push_back(std::move(r));
      }
      if (dry_run_) {
        for (RecordingRow& r : plan.remove) {
          rep_.removed++;
          rep_.bytes += r.size;
          if (rep_.would_remove.size() < Pruner::kDryRunCap)
            rep_.would_remove.push_back(std::move(r));
        }
        if (last) break;
        continue;
      }
      for (RecordingRow& r : plan.remove) {
        // A row's rel comes from our own database, but a damaged or
        // hand-edited one must never make the pruner delete outside the archive.
        if (rel_path_problem(r.rel, /*strict=*/false)) {
          rep_.errors++;
          log_->error("not pruning {}: path is not inside the archive", r.rel);
          continue;
        }
        batch.push_back(std::move(r));
        if (batch.size() >= batch_size_) {
          RECSYNC_RETURN_IF_ERROR(delete_batch(batch));
          batch.clear();
        }
      }
      if (last) break;
    }
    if (!batch.empty()) RECSYNC_RETURN_IF_ERROR(delete_batch(batch));
    return submit_pending();
  }

  // The plan for one chunk. With a tier, every local copy due at keep_local
  // is checked in the store right before it goes (a HEAD: size and hash),
  // whatever the index says: an object removed behind recsync's back (by
  // hand, a lifecycle rule) must not make this copy the last one lost.
  // Copies the index does not know (from peers, whose origin uploads them,
  // or an index lost) are found the same way. A dry run trusts the index.
  Result<PlanResult> plan_chunk(const std::vector<RecordingRow>& chunk, const HoldSet& holds,
                                WallTime now) {
    if (!tier_ || policy_.keep_local.count() <= 0)
      return plan_retention(chunk, holds, now, policy_);
    auto indexed = store_->objects().stored_among(chunk);
    if (!indexed) return indexed.status();
    PlanResult plan = plan_retention(chunk, holds, now, policy_, &*indexed);
    if (dry_run_) return plan;
    std::vector<RecordingRow> ask = plan.offload;
    ask.insert(ask.end(), plan.unstored.begin(), plan.unstored.end());
    if (ask.empty()) return plan;
    std::unordered_set<std::string> found;
    if (verify_budget_ > 0) found = tier_->verify_in_store(ask, verify_budget_);
    verify_budget_ -= std::min(verify_budget_, ask.size());
    return plan_retention(chunk, holds, now, policy_, &found);
  }

  // One file of a batch, after the identity check.
  struct Victim {
    const RecordingRow* row;
    std::string_view dir;  // of row->rel
    uint64_t ino;
    bool present;  // false: the file was already gone
  };
  // A folder ("" = the root) files went from, in unlink order.
  struct Touched {
    std::string dir;
    uint64_t files = 0, bytes = 0, gone = 0;
    int64_t oldest_ms = INT64_MAX, newest_ms = INT64_MIN;
  };

  Status delete_batch(const std::vector<RecordingRow>& batch) {
    if (stop_.load()) return Status::ok();
    auto t0 = SteadyClock::now();
    std::vector<Victim> victims;
    std::vector<AuditRow> audit;
    check_batch(batch, victims, audit);
    timing_.check += SteadyClock::now() - t0;
    if (victims.empty()) return Status::ok();

    // 2. Write-ahead audit: durable in the log file before any of these
    //    files is touched. (The store's audit table gets the same rows with
    //    the row removals, below.)
    t0 = SteadyClock::now();
    RECSYNC_RETURN_IF_ERROR(ensure_audit_log());
    RECSYNC_RETURN_IF_ERROR(audit_->append(audit));
    timing_.audit += SteadyClock::now() - t0;

    t0 = SteadyClock::now();
    std::vector<std::optional<Status>> results = unlink_victims(victims);
    std::vector<Touched> touched;
    std::vector<std::string> gone;  // rows removed in one transaction below
    account(victims, results, touched, gone);
    timing_.unlink += SteadyClock::now() - t0;

    // 4. Make the unlinks durable (folder fsyncs, in the background), so a
    //    crash cannot bring back a file whose row is gone, then drop the rows
    //    (submit_pending() waits for the syncs first). A crash before the
    //    rows' commit leaves rows whose files are gone: the next pass finds
    //    them "already gone" and removes them. Rows in rel order:
    //    neighbouring index entries share pages. They go to the writer after
    //    the next chunk is read (the read needs the store too), so the store
    //    work overlaps the next batch.
    RECSYNC_RETURN_IF_ERROR(submit_pending());
    std::vector<std::string> sync_dirs;
    sync_dirs.reserve(touched.size());
    for (const Touched& t : touched)
      sync_dirs.push_back(t.dir.empty() ? root_ : path_join(root_, t.dir));
    syncer_->start(std::move(sync_dirs));
    std::sort(gone.begin(), gone.end());
    pending_ = Pending{std::move(audit), std::move(gone)};
    return Status::ok();
  }

  // 1. Identity: only the file the row describes goes. A regular file of the
  //    row's size and mtime (rec_time_ms is the file's mtime, set by the
  //    archiver and the inbound path, read back by reconcile); anything else
  //    (replaced, rewritten, touched, not a file) is left with its row for
  //    the next reconcile to re-index. This lstat also brings the inode into
  //    the cache, so the unlink does not wait for it.
  void check_batch(const std::vector<RecordingRow>& batch, std::vector<Victim>& victims,
                   std::vector<AuditRow>& audit) {
    victims.reserve(batch.size());
    audit.reserve(batch.size());
    const int64_t deleted_ms = to_ms(env_->now());
    std::vector<std::optional<Result<FileStat>>> stats(batch.size());
    for_slices(batch.size(), threads_, [&](size_t b, size_t e) {
      DirCache dirs(env_, root_);
      for (size_t i = b; i < e; i++) {
        Result<Dir*> d = dirs.get(dir_part(batch[i].rel));
        stats[i].emplace(d ? (*d)->lstat(base_part(batch[i].rel)) : Result<FileStat>(d.status()));
      }
    });
    for (size_t i = 0; i < batch.size(); i++) {
      const RecordingRow& r = batch[i];
      const Result<FileStat>& st = *stats[i];
      uint64_t ino = 0;
      bool present = false;
      if (st) {
        if (!st->is_reg || st->size != r.size || st->mtime_ns / 1'000'000 != r.rec_time_ms) {
          rep_.changed++;
          log_->warn("not pruning {}: the file changed since it was indexed ({} bytes, mtime {})",
                     r.rel, st->size, iso8601_utc_ms(st->mtime_ns / 1'000'000));
          continue;
        }
        ino = st->ino;
        present = true;
      } else if (st.status().code() != Status::Code::kNotFound) {
        rep_.errors++;
        log_->warn("prune {}: {}", r.rel, st.status().to_string());
        continue;
      }
      victims.push_back({&r, dir_part(r.rel), ino, present});
      audit.push_back({r.rel, r.size, r.hash, r.rec_time_ms, deleted_ms,
                       offload_rels_.count(r.rel) ? offload_policy_str_ : policy_str_});
    }
  }

  // 3. Unlink folder by folder in inode order (what rm -r does for big
  //    folders): neighbouring inodes share inode-table and bitmap blocks.
  //    Unpaced, the unlinks run on threads_ threads (each a slice of the
  //    sorted list): an unlink waits for inode and bitmap blocks and for
  //    journal space, and the waits overlap. nullopt = not attempted (stop).
  std::vector<std::optional<Status>> unlink_victims(std::vector<Victim>& victims) {
    std::sort(victims.begin(), victims.end(), [](const Victim& a, const Victim& b) {
      return a.dir != b.dir ? a.dir < b.dir : a.ino < b.ino;
    });
    std::vector<std::optional<Status>> results(victims.size());
    auto unlink_one = [&](DirCache& dirs, size_t i) {
      const Victim& v = victims[i];
      if (!v.present) {
        results[i] = Status::ok();
        return;
      }
      Result<Dir*> d = dirs.get(v.dir);
      results[i] = d ? (*d)->unlink(base_part(v.row->rel)) : d.status();
    };
    if (threads_ == 1) {
      DirCache dirs(env_, root_);
      for (size_t i = 0; i < victims.size() && pacer_.wait(stop_); i++) unlink_one(dirs, i);
    } else {
      for_slices(victims.size(), threads_, [&](size_t b, size_t e) {
        DirCache dirs(env_, root_);
        for (size_t i = b; i < e && !stop_.load(); i++) unlink_one(dirs, i);
      });
    }
    return results;
  }

  // Counts what went, folder by folder, and logs a line per folder.
  void account(const std::vector<Victim>& victims,
               const std::vector<std::optional<Status>>& results, std::vector<Touched>& touched,
               std::vector<std::string>& gone) {
    gone.reserve(victims.size());
    for (size_t i = 0; i < victims.size(); i++) {
      if (!results[i]) continue;
      const Victim& v = victims[i];
      const RecordingRow& r = *v.row;
      const Status& s = *results[i];
      if (!s && s.code() != Status::Code::kNotFound) {
        rep_.errors++;
        log_->warn("prune {}: {}", r.rel, s.to_string());
        continue;
      }
      const bool already_gone = !v.present || !s;
      gone.push_back(r.rel);
      rep_.removed++;
      rep_.offloaded += offload_rels_.count(r.rel);
      rep_.bytes += r.size;
      // Per file only at trace: the audit log is the record of each
      // deletion, and a line per file would flood the journal (a first pass
      // can remove hundreds of thousands).
      log_->trace("pruned {} ({} bytes, recorded {}){}", r.rel, r.size,
                  iso8601_utc_ms(r.rec_time_ms), already_gone ? " (already gone)" : "");
      if (touched.empty() || touched.back().dir != v.dir) {
        if (!v.dir.empty()) add_dir_chain(std::string(v.dir));
        touched.push_back({std::string(v.dir)});
      }
      Touched& t = touched.back();
      t.files++;
      t.bytes += r.size;
      t.gone += already_gone;
      t.oldest_ms = std::min(t.oldest_ms, r.rec_time_ms);
      t.newest_ms = std::max(t.newest_ms, r.rec_time_ms);
    }
    for (const Touched& t : touched)
      log_->info("pruned {} recordings ({} bytes, recorded {} to {}) in {}{}", t.files, t.bytes,
                 iso8601_utc_ms(t.oldest_ms), iso8601_utc_ms(t.newest_ms),
                 t.dir.empty() ? "the archive root" : t.dir,
                 t.gone ? fmt::format(", {} of them already gone", t.gone) : "");
  }

  // Hands the held-back store work of the last batch to the writer.
  Status submit_pending() {
    if (!pending_) return Status::ok();
    auto t0 = SteadyClock::now();
    syncer_->wait();
    Status s = writer_->submit(std::move(pending_->audit), std::move(pending_->gone));
    pending_.reset();
    timing_.wait += SteadyClock::now() - t0;
    return s;
  }

  Status sweep_temps() {
    const int64_t grace = tmp_grace_.count();
    std::vector<std::string> stack{""};
    size_t visited = 0;
    while (!stack.empty() && !stop_.load()) {
      std::string rel = std::move(stack.back());
      stack.pop_back();
      const std::string abs = rel.empty() ? root_ : path_join(root_, rel);
      auto entries = env_->list_dir(abs);
      if (!entries) {
        if (entries.status().code() == Status::Code::kNotFound && !rel.empty()) continue;
        rep_.errors++;
        log_->warn("temp sweep: {}", entries.status().to_string());
        continue;
      }
      visited++;
      if (entries->empty() && !rel.empty() && !is_hidden_name(path_basename(rel))) {
        // An empty folder left by an interrupted run; a fresh one may be
        // about to receive a recording, hence the grace.
        auto st = env_->lstat(abs);
        if (st && now_ms_ - st->mtime_ns / 1'000'000 > grace) add_dir_chain(rel);
      }
      for (const DirEntry& e : *entries) {
        const std::string crel = rel.empty() ? e.name : rel + "/" + e.name;
        if (rel.empty() && e.name == "lost+found") continue;
        DirEntry::Type type = e.type;
        std::optional<FileStat> st;
        if (type == DirEntry::Type::kUnknown ||
            (type == DirEntry::Type::kFile && (is_temp_name(e.name) || is_part_name(e.name)))) {
          auto r = env_->lstat(path_join(root_, crel));
          if (!r) continue;  // vanished under us
          st = *r;
          type = st->is_dir   ? DirEntry::Type::kDir
                 : st->is_reg ? DirEntry::Type::kFile
                              : DirEntry::Type::kOther;
        }
        if (type == DirEntry::Type::kDir) {
          stack.push_back(crel);
          continue;
        }
        // Archive temps, and partials of peer transfers that made no
        // progress within the grace time (the sender gave up or was pruned).
        if (type != DirEntry::Type::kFile || !(is_temp_name(e.name) || is_part_name(e.name)) || !st)
          continue;
        int64_t age_ms = now_ms_ - st->mtime_ns / 1'000'000;
        if (age_ms <= grace) continue;
        if (dry_run_) {
          rep_.temps_removed++;
          continue;
        }
        if (!pacer_.wait(stop_)) return Status::ok();
        Status s = env_->unlink(path_join(root_, crel));
        if (!s && s.code() != Status::Code::kNotFound) {
          rep_.errors++;
          log_->warn("temp sweep: {}", s.to_string());
          continue;
        }
        rep_.temps_removed++;
        log_->info("removed abandoned temp {} (age {})", crel, format_span(Millis(age_ms)));
        if (!rel.empty()) add_dir_chain(rel);
      }
    }
    log_->debug("temp sweep visited {} folders", visited);
    return Status::ok();
  }

  // Queues dir and its ancestors (below the root) for an rmdir attempt.
  void add_dir_chain(std::string dir) {
    while (!dir.empty() && dir != "." && dir != "/") {
      if (!dirs_.insert(dir).second) break;  // ancestors already queued
      dir = path_dirname(dir);
    }
  }

  Status remove_empty_dirs() {
    for (const std::string& d : dirs_) {
      if (d == "lost+found") continue;
      Status s = env_->rmdir(path_join(root_, d));
      if (!s) continue;  // not empty (ENOTEMPTY), gone, or busy: leave it
      rep_.dirs_removed++;
      log_->debug("removed empty folder {}", d);
      std::string parent = path_dirname(d);
      Status ss = env_->sync_dir(parent == "." ? root_ : path_join(root_, parent));
      if (!ss) log_->warn("{}", ss.to_string());
    }
    dirs_.clear();
    return Status::ok();
  }

  Status record_meta() {
    RECSYNC_RETURN_IF_ERROR(store_->db().set_meta("last_prune", iso8601_utc_ms(now_ms_)));
    auto prev = store_->db().get_meta("pruned_total");
    if (!prev) return prev.status();
    uint64_t total = rep_.removed;
    if (prev->has_value()) {
      try {
        total += std::stoull(**prev);
      } catch (const std::exception&) {
        // A damaged counter restarts from this run rather than failing it.
      }
    }
    return store_->db().set_meta("pruned_total", std::to_string(total));
  }

  // The audit log is opened on first use, so a run with nothing to delete
  // never creates it.
  Status ensure_audit_log() {
    if (audit_) return Status::ok();
    auto a = AuditLog::open(env_, audit_path_);
    if (!a) return a.status();
    audit_.emplace(std::move(a).value());
    return Status::ok();
  }

  Env* env_;
  StateStore* store_;
  const std::string& root_;
  const std::string& audit_path_;
  const RetentionPolicy policy_;
  const std::string policy_str_;
  const std::string offload_policy_str_;
  // Rels of the local copies going at keep_local (audited as such).
  std::unordered_set<std::string> offload_rels_;
  ObjectTierOps* tier_ = nullptr;
  int pacer_per_s_ = 0;
  // Store checks (HEAD) a pass may make for unstored local copies.
  size_t verify_budget_ = Pruner::kMaxStoreChecks;
  const Millis tmp_grace_;
  const bool dry_run_;
  const std::atomic<bool>& stop_;
  Pacer pacer_;
  const size_t batch_size_;
  const int threads_;  // for the identity checks and the unlinks
  std::shared_ptr<spdlog::logger> log_;
  // Where a run's time goes, for the debug line at its end.
  struct {
    SteadyClock::duration query{}, check{}, audit{}, unlink{}, sync{}, rows{}, wait{}, sweep{},
        dirs{};
  } timing_;
  int64_t now_ms_ = 0;
  PruneReport rep_;
  std::optional<AuditLog> audit_;
  StoreWriter* writer_ = nullptr;   // set while prune_recordings() runs
  FolderSyncer* syncer_ = nullptr;  // likewise
  // The last batch's store work, not yet handed to writer_.
  struct Pending {
    std::vector<AuditRow> audit;
    std::vector<std::string> gone;
  };
  std::optional<Pending> pending_;
  std::set<std::string, DeeperFirst> dirs_;
};

}  // namespace

Pruner::Pruner(Env* env, StateStore* store, std::string archive_root, std::string audit_log_path,
               RetentionPolicy p, int pace_per_s, Millis tmp_grace, ObjectTierOps* tier)
    : env_(env),
      store_(store),
      root_(std::move(archive_root)),
      audit_path_(std::move(audit_log_path)),
      policy_(p),
      pace_(pace_per_s),
      tmp_grace_(tmp_grace),
      tier_(tier) {
  if (!tier_) policy_.keep_local = Millis{0};  // no store: no second cutoff
}

Result<PruneReport> Pruner::run(bool dry_run, const std::atomic<bool>& stop) {
  PruneRun r(env_, store_, root_, audit_path_, policy_, pace_, tmp_grace_, dry_run, stop);
  r.set_tier(tier_, pace_);
  return r.run();
}

}  // namespace recsync
