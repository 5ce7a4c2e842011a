#include "replication/backfill_jobs.h"

#include <nlohmann/json.hpp>

namespace recsync::replication {

namespace {

std::string summary_json(const BackfillPlanResult& r) {
  nlohmann::json j;
  for (size_t d = 0; d < backfill::kDecisionCount; ++d) {
    const auto& t = r.summary.by_decision[d];
    j[backfill::decision_name(static_cast<backfill::Decision>(d))] = {{"files", t.files},
                                                                      {"bytes", t.bytes}};
  }
  j["ranges_equal"] = r.summary.ranges_equal;
  j["files_equal"] = r.summary.files_equal;
  j["ranges_listed"] = r.summary.ranges_listed;
  j["holds_received"] = r.holds_received;
  j["holds_sent"] = r.holds_sent;
  j["bytes_exchanged"] = r.bytes_exchanged;
  return j.dump();
}

}  // namespace

Status BackfillJobs::load_running() {
  if (loaded_) return Status::ok();
  auto j = ctx_.store->backfill().running_job();
  if (!j) return j.status();
  running_ = *j;
  loaded_ = true;
  return Status::ok();
}

Result<int64_t> BackfillJobs::start(const BackfillStart& s) {
  std::lock_guard<std::mutex> l(mu_);
  RECSYNC_RETURN_IF_ERROR(load_running());
  if (running_) return running_->id;  // attach
  std::vector<std::string> peers;
  for (size_t i = 0; i < ctx_.board.size(); ++i) {
    const std::string& name = ctx_.board.config(i).name;
    if (s.peers.empty() || std::find(s.peers.begin(), s.peers.end(), name) != s.peers.end())
      peers.push_back(name);
  }
  for (const std::string& want : s.peers)
    if (std::find(peers.begin(), peers.end(), want) == peers.end())
      return Status::invalid("no [[peer]] named '" + want + "'");
  if (peers.empty()) return Status::invalid("no peers configured: nothing to backfill from");
  const int64_t now = ctx_.now_ms();
  auto id = ctx_.store->backfill().create_job(s.dry_run, s.window_start_ms, now, peers);
  if (!id) return id.status();
  running_ = BackfillJob{*id, "running", s.dry_run, s.window_start_ms, now, 0, ""};
  ctx_.lg->info("backfill {} started{} with {} peer(s), window from {}", *id,
                s.dry_run ? " (dry run)" : "", peers.size(),
                format_utc(s.window_start_ms, TimeFormat::kSeconds));
  ctx_.store->queue().doorbell().ring();  // the backfill lanes look for work
  return *id;
}

std::optional<BackfillJobs::Work> BackfillJobs::work_for(const std::string& peer) {
  std::lock_guard<std::mutex> l(mu_);
  if (!load_running() || !running_) return std::nullopt;
  auto peers = ctx_.store->backfill().peers(running_->id);
  if (!peers) return std::nullopt;
  for (const BackfillPeer& p : *peers) {
    if (p.peer != peer) continue;
    if (p.state != "pending" && p.state != "planned") return std::nullopt;
    return Work{running_->id, p.state == "pending", running_->dry_run, running_->window_start_ms};
  }
  return std::nullopt;
}

void BackfillJobs::planned(int64_t job, const std::string& peer,
                           const Result<BackfillPlanResult>& r) {
  BackfillPeer p{peer, "planned", "", ""};
  if (r) {
    p.summary = summary_json(r.value());
    const auto& s = r->summary;
    ctx_.lg->info(
        "backfill {} with {}: planned: {} to pull, {} to push, {} in sync, {} conflicts, "
        "{} bytes of manifests",
        job, peer, s[backfill::Decision::kPull].files, s[backfill::Decision::kPush].files,
        s[backfill::Decision::kInSync].files + s.files_equal,
        s[backfill::Decision::kConflict].files, r->bytes_exchanged);
  } else {
    const Status& e = r.status();
    const bool link = e.code() == Status::Code::kIo || e.code() == Status::Code::kBusy ||
                      e.code() == Status::Code::kNotFound;
    ctx_.lg->warn("backfill {} with {}: planning {}: {}", job, peer,
                  link ? "interrupted (again once the link is back)" : "failed", e.message());
    if (link) return;
    p.state = "failed";
    p.error = e.message();
  }
  if (Status s = ctx_.store->backfill().set_peer(job, p); !s)
    ctx_.lg->error("backfill {}: {}", job, s.message());
}

void BackfillJobs::finish_if_complete(const BackfillJob& job) {
  auto peers = ctx_.store->backfill().peers(job.id);
  if (!peers) return;
  std::string error;
  for (const BackfillPeer& p : *peers) {
    if (p.state == "pending") return;
    if (p.state != "planned") error += (error.empty() ? "" : "; ") + p.peer + " " + p.state;
  }
  if (!job.dry_run) {
    auto pr = ctx_.store->backfill().progress(job.id);
    if (!pr) return;
    if (pr->pull_done.files + pr->pull_gone.files < pr->pull_total.files ||
        pr->push_done.files + pr->push_gone.files < pr->push_total.files)
      return;
  }
  const std::string state = error.empty() ? "done" : "partial";
  if (!ctx_.store->backfill().finish_job(job.id, state, error, ctx_.now_ms())) return;
  running_.reset();
  ctx_.lg->info("backfill {} {}{}", job.id, state, error.empty() ? "" : ": " + error);
}

void BackfillJobs::tick() {
  std::lock_guard<std::mutex> l(mu_);
  if (!load_running() || !running_) return;
  const BackfillJob job = *running_;
  const bool late =
      ctx_.now_ms() - job.created_ms >=
      std::chrono::duration_cast<std::chrono::milliseconds>(kUnreachableAfter).count();
  if (late) {
    auto peers = ctx_.store->backfill().peers(job.id);
    if (!peers) return;
    const std::vector<PeerStatus> board = ctx_.board.peers();
    for (BackfillPeer p : *peers) {
      if (p.state != "pending") continue;
      for (const PeerStatus& b : board)
        if (b.name == p.peer && b.state != PeerState::kConnected) {
          p.state = "unreachable";
          p.error = b.last_error;
          ctx_.lg->warn("backfill {}: peer {} is unreachable; left out", job.id, p.peer);
          (void)ctx_.store->backfill().set_peer(job.id, p);
        }
    }
  }
  finish_if_complete(job);
}

Result<BackfillView> BackfillJobs::view() {
  BackfillView v;
  auto j = ctx_.store->backfill().latest_job();
  if (!j) return j.status();
  v.job = *j;
  if (!v.job) return v;
  auto p = ctx_.store->backfill().peers(v.job->id);
  if (!p) return p.status();
  v.peers = std::move(p).value();
  auto pr = ctx_.store->backfill().progress(v.job->id);
  if (!pr) return pr.status();
  v.progress = *pr;
  return v;
}

}  // namespace recsync::replication
