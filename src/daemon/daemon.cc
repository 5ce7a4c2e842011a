#include "daemon/daemon.h"

#include <fmt/format.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "archive/archiver.h"
#include "control/control_server.h"
#include "peer/identity.h"
#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/thread_name.h"
#include "recsync/units.h"
#include "recsync/version.h"
#include "replication/service.h"
#include "retention/plan.h"
#include "retention/pruner.h"
#include "state/store.h"
#include "watch/aggregator.h"
#include "watch/file_filter.h"
#include "watch/inotify_watcher.h"
#include "watch/scanner.h"

namespace recsync {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// Left in state_dir by a clean stop; its absence at start means the last run
// crashed or was killed.
constexpr const char* kCleanShutdownMarker = "clean-shutdown";

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}
int64_t wall_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
std::string iso_time(int64_t ms) {
  if (ms <= 0) return "";
  std::time_t t = ms / 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Disk errors that mean "the archive cannot take files now" get an alarm text
// an operator can act on (see recsyncd(8), ALARMS).
std::string archive_alarm_text(const Status& s) {
  switch (s.err()) {
    case ENOSPC:
    case EDQUOT:
      return "archive full: " + s.message();
    case EROFS:
      return "archive read-only: " + s.message();
    default:
      return "archive I/O error: " + s.message();
  }
}

struct SpoolEntry {
  bool in_flight = false;
  bool dirty = false;  // an event arrived while in flight: look again after
  int attempts = 0;    // consecutive failed or busy attempts (backoff)
  uint64_t size = 0;
  int64_t first_seen_ms = 0;
  std::string last_error;
};

struct WorkResult {
  std::string rel;
  ArchiveOutcome outcome;
};

}  // namespace

class Daemon::Impl {
 public:
  Impl(Config cfg, Env* env) : cfg_(std::move(cfg)), env_(env), start_wall_(env->now()) {}

  Status run();

 private:
  // startup / shutdown
  Status open_state();
  Status start_watching();
  void start_threads();
  void begin_stop();
  void reload();
  // Sets the replication cap from replication.schedule at the local time of
  // day (replication.bandwidth outside its ranges, or without one); logs a
  // change with `why`. Loop thread; every second and after a reload.
  void apply_bandwidth(const char* why);

  // spool pipeline (loop thread)
  // due_ms and size come from a scan; an inotify event passes neither.
  void on_spool_file(const std::string& rel, std::optional<int64_t> due_ms,
                     std::optional<uint64_t> size = std::nullopt);
  void rescan_spool(const std::string& sub);
  void dispatch_due();
  void on_results();
  void handle_result(WorkResult& r);
  int64_t backoff_ms(int attempts, int64_t cap_ms, int64_t floor_ms);
  void maybe_clear_archive_alarm();

  // workers
  void worker_main();
  void retention_main();
  // filter: its own copy, made on the loop thread (reload replaces filter_).
  void reconcile_main(const FileFilter& filter);

  // status and control
  void on_slow_timer();
  json status_json();
  json alarms_json(const replication::ServiceStatus* rs);
  Status start_replication();
  std::vector<std::string> peer_names() const {
    return repl_ ? repl_->peer_names() : std::vector<std::string>{};
  }
  void handle_control(const json& req, const PeerCred& who, ControlServer::Reply reply);

  Config cfg_;
  Env* env_;
  WallTime start_wall_;
  std::shared_ptr<spdlog::logger> lg_ = log::get("daemon");
  std::shared_ptr<spdlog::logger> lga_ = log::get("archive");
  std::shared_ptr<spdlog::logger> lgw_ = log::get("watch");

  uv_loop_t loop_{};
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_timer_t tick_{}, slow_{};
  uv_async_t results_async_{};
  bool stopping_ = false;

  std::unique_ptr<StateStore> store_;
  // Recordings the archiver leaves in the page cache for the peer senders.
  PageBudget page_budget_;
  std::unique_ptr<Archiver> archiver_;
  std::unique_ptr<FileFilter> filter_;
  std::unique_ptr<Aggregator> agg_;
  std::unique_ptr<InotifyWatcher> watcher_;
  std::unique_ptr<ControlServer> control_;
  // Peer replication; null on a single node (no [[peer]]).
  std::unique_ptr<replication::Service> repl_;
  uint64_t cap_in_force_ = 0;  // the replication cap apply_bandwidth() last set

  // Spool work set, loop thread only.
  std::unordered_map<std::string, SpoolEntry> spool_;
  size_t in_flight_ = 0;
  std::mt19937 rng_{std::random_device{}()};

  // Worker queue.
  std::mutex qmu_;
  std::condition_variable qcv_;
  std::deque<std::string> queue_;
  std::vector<WorkResult> results_;
  bool workers_stop_ = false;
  std::vector<std::thread> workers_;
  std::atomic<int64_t> settle_ms_{500};

  // Counters and alarms (loop thread).
  uint64_t archived_files_ = 0, archived_bytes_ = 0, failures_ = 0;
  int64_t last_archived_ms_ = 0;
  std::string archive_alarm_;
  std::string spool_alarm_;
  std::string spool_alarm_severity_;
  FsUsage spool_usage_{}, archive_usage_{};
  std::string state_alarm_;
  std::string orphan_alarm_;  // queue entries for peers not in the config
  std::string watch_alarm_;
  uint64_t overflows_ = 0;
  uint64_t watchdog_usec_ = 0;
  int64_t last_watchdog_ms_ = 0;

  // Retention thread.
  std::thread retention_thread_;
  std::mutex rmu_;
  std::condition_variable rcv_;
  bool retention_now_ = false;
  std::atomic<bool> stop_{false};
  PruneReport last_prune_;
  int64_t last_prune_ms_ = 0, next_prune_ms_ = 0;
  bool prune_running_ = false;
  std::atomic<int64_t> keep_ms_{0}, interval_ms_{0};

  // Reconcile thread.
  std::thread reconcile_thread_;
  std::atomic<bool> reconciled_{false};
  std::atomic<uint64_t> reconcile_seen_{0};
};

Daemon::Daemon(Config cfg, Env* env) : impl_(std::make_unique<Impl>(std::move(cfg), env)) {}
Daemon::~Daemon() = default;
Status Daemon::run() { return impl_->run(); }

// ---------------------------------------------------------------- startup

Status Daemon::Impl::open_state() {
  if (Status s = env_->mkdirs(cfg_.state_dir, 0750); !s) return s.with_context("state_dir");
  // The full DB check reads every page: do it only when the last run did not
  // stop cleanly (a crash, kill -9, power loss), when damage is plausible.
  const std::string marker = path_join(cfg_.state_dir, kCleanShutdownMarker);
  const bool clean = env_->lstat(marker).is_ok();
  if (clean) {
    (void)env_->unlink(marker);
    (void)env_->sync_dir(cfg_.state_dir);
  }
  auto st = StateStore::open(cfg_.db_path(), /*verify=*/!clean);
  if (!st && st.status().code() == Status::Code::kCorrupt) {
    lg_->error("state database {} is corrupt ({}); moving it aside and rebuilding from disk",
               cfg_.db_path(), st.status().message());
    RECSYNC_RETURN_IF_ERROR(StateStore::quarantine(cfg_.db_path()));
    state_alarm_ = "state database was corrupt and has been rebuilt from the archive";
    st = StateStore::open(cfg_.db_path());
  }
  if (!st) return st.status();
  store_ = std::move(st).value();
  return Status::ok();
}

// The node identity is created on the first start (recsync id reads it),
// also on a single node, so a peer can be added later without a keygen step.
Status Daemon::Impl::start_replication() {
  auto id = peer::load_or_create_identity(env_, cfg_.state_dir, cfg_.node);
  if (!id) return id.status().with_context("node identity");
  // Entries queued for a peer that is no longer configured stay (the peer
  // may come back under that name) but are reported.
  if (auto q = store_->queue_peers()) {
    for (auto& [name, n] : *q) {
      bool known = std::any_of(cfg_.peers.begin(), cfg_.peers.end(),
                               [&](const PeerConfig& p) { return p.name == name; });
      if (known) continue;
      orphan_alarm_ += (orphan_alarm_.empty() ? "" : "; ") +
                       fmt::format(
                           "{} recordings are queued for peer '{}', which is not "
                           "configured any more",
                           n, name);
    }
    if (!orphan_alarm_.empty()) lg_->warn("{}", orphan_alarm_);
  }
  if (cfg_.peers.empty()) return Status::ok();
  replication::ServiceOptions o;
  o.node = cfg_.node;
  o.listen = cfg_.replication.listen;
  o.bandwidth_bps = cfg_.replication.bandwidth_bps;
  o.archive_root = cfg_.archive.path;
  o.peers = cfg_.peers;
  o.page_budget = &page_budget_;
  auto s = replication::Service::create(env_, store_.get(), *id, std::move(o));
  if (!s) return s.status();
  repl_ = std::move(s).value();
  return Status::ok();
}

Status Daemon::Impl::start_watching() {
  filter_ = std::make_unique<FileFilter>(cfg_.spool.include, cfg_.spool.exclude);
  agg_ = std::make_unique<Aggregator>(cfg_.spool.settle);
  InotifyWatcher::Callbacks cb;
  cb.on_file = [this](const std::string& rel) { on_spool_file(rel, std::nullopt); };
  cb.on_new_dir = [this](const std::string& rel_dir) { rescan_spool(rel_dir); };
  cb.on_overflow = [this] {
    overflows_++;
    lgw_->warn("inotify queue overflow or lost watch: rescanning the spool");
    rescan_spool("");
  };
  watcher_ = std::make_unique<InotifyWatcher>(&loop_, cfg_.spool.path, cb);
  if (Status s = watcher_->start(); !s) {
    if (s.err() == ENOSPC) watch_alarm_ = "inotify watch limit reached: " + s.message();
    return s;
  }
  rescan_spool("");  // startup scan, after the watches exist: nothing slips between
  return Status::ok();
}

void Daemon::Impl::start_threads() {
  for (int i = 0; i < cfg_.archive.workers; ++i) workers_.emplace_back([this] { worker_main(); });
  reconcile_thread_ = std::thread([this, f = *filter_] { reconcile_main(f); });
  retention_thread_ = std::thread([this] { retention_main(); });
}

Status Daemon::Impl::run() {
  // A read lease being broken raises SIGIO, whose default action kills us;
  // lease breaks are noticed by polling F_GETLEASE instead (Archiver).
  ::signal(SIGIO, SIG_IGN);
  log::set_levels(cfg_.log.level, cfg_.log.components);
  settle_ms_ = cfg_.spool.settle.count();
  keep_ms_ = cfg_.retention.keep.count();
  interval_ms_ = cfg_.retention.interval.count();
  for (const auto* p : {&cfg_.spool.path, &cfg_.archive.path}) {
    auto st = env_->lstat(*p);
    if (!st || !st->is_dir) return Status::invalid(*p + " is not a folder");
  }
  RECSYNC_RETURN_IF_ERROR(open_state());
  auto layout = parse_layout(cfg_.archive.layout);
  auto check = parse_open_check(cfg_.spool.open_check);
  if (!layout) return layout.status();
  if (!check) return check.status();
  RECSYNC_RETURN_IF_ERROR(start_replication());
  ArchiverOptions aopt{cfg_.spool.path, cfg_.archive.path, *layout, *check};
  if (repl_) aopt.replicate_to = repl_->peer_names();
  aopt.page_budget = &page_budget_;
  archiver_ = std::make_unique<Archiver>(env_, store_.get(), std::move(aopt));

  uv_loop_init(&loop_);
  loop_.data = this;
  uv_async_init(&loop_, &results_async_,
                [](uv_async_t* a) { static_cast<Impl*>(a->loop->data)->on_results(); });
  if (Status s = start_watching(); !s) {
    begin_stop();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return s;
  }
  control_ = std::make_unique<ControlServer>(
      &loop_, cfg_.control.socket, cfg_.control.group,
      [this](const json& req, const PeerCred& who, ControlServer::Reply reply) {
        handle_control(req, who, std::move(reply));
      });
  if (Status s = control_->start(); !s) {
    control_.reset();
    begin_stop();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return s.with_context("control socket");
  }

  auto on_sig = [](uv_signal_t* h, int sig) {
    auto* self = static_cast<Impl*>(h->loop->data);
    if (sig == SIGHUP)
      self->reload();
    else
      self->begin_stop();
  };
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  uv_signal_init(&loop_, &sighup_);
  uv_signal_start(&sigterm_, on_sig, SIGTERM);
  uv_signal_start(&sigint_, on_sig, SIGINT);
  uv_signal_start(&sighup_, on_sig, SIGHUP);
  uv_timer_init(&loop_, &tick_);
  uv_timer_start(
      &tick_, [](uv_timer_t* t) { static_cast<Impl*>(t->loop->data)->dispatch_due(); }, 50, 50);
  uv_timer_init(&loop_, &slow_);
  uv_timer_start(
      &slow_, [](uv_timer_t* t) { static_cast<Impl*>(t->loop->data)->on_slow_timer(); }, 0, 1000);
  start_threads();
  if (repl_) {
    cap_in_force_ = cfg_.replication.bandwidth_bps;  // what the Service was created with
    apply_bandwidth("schedule");
    repl_->start();
  }
  if (sd_watchdog_enabled(0, &watchdog_usec_) <= 0) watchdog_usec_ = 0;
  lg_->info("recsyncd {} ready: node {}, spool {} ({} files waiting, {} watches), archive {}",
            kVersion, cfg_.node, cfg_.spool.path, spool_.size(), watcher_->watch_count(),
            cfg_.archive.path);
  sd_notify(0, "READY=1\nSTATUS=watching the spool");

  uv_run(&loop_, UV_RUN_DEFAULT);

  // The loop has ended: every handle is closed; join the threads.
  {
    std::lock_guard<std::mutex> l(qmu_);
    workers_stop_ = true;
  }
  qcv_.notify_all();
  for (auto& t : workers_) t.join();
  // Taking the lock before notifying means the retention thread is either
  // waiting (and wakes) or has not checked stop_ yet (and sees it): no lost wakeup.
  { std::lock_guard<std::mutex> l(rmu_); }
  rcv_.notify_all();
  if (retention_thread_.joinable()) retention_thread_.join();
  if (reconcile_thread_.joinable()) reconcile_thread_.join();
  int rc = uv_loop_close(&loop_);
  if (rc != 0) lg_->warn("event loop closed with handles open: {}", uv_strerror(rc));
  store_.reset();  // closes the DB (checkpoints the WAL) before the marker says so
  auto m = env_->create_excl(path_join(cfg_.state_dir, kCleanShutdownMarker), 0640);
  if (m) (void)(*m)->sync();
  (void)env_->sync_dir(cfg_.state_dir);
  lg_->info("stopped cleanly");
  return Status::ok();
}

void Daemon::Impl::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  stop_ = true;
  sd_notify(0, "STOPPING=1\nSTATUS=stopping");
  lg_->info("stopping: finishing files in flight, flushing state");
  {
    std::lock_guard<std::mutex> l(qmu_);
    queue_.clear();  // not started: they stay in the spool for next time
    workers_stop_ = true;
  }
  qcv_.notify_all();
  rcv_.notify_all();
  auto close = [](auto* h) {
    auto* handle = reinterpret_cast<uv_handle_t*>(h);
    if (handle->loop && !uv_is_closing(handle)) uv_close(handle, nullptr);
  };
  if (watcher_) watcher_->close();
  if (control_) control_->close();
  // Receivers keep what they got as resume bases; senders stop mid-transfer
  // (the queue entry stays until acked).
  if (repl_) repl_->stop();
  close(&sigterm_);
  close(&sigint_);
  close(&sighup_);
  close(&tick_);
  close(&slow_);
  // The workers post their last results through results_async_; closing it
  // after they are joined is done here by joining now (copies are short).
  for (auto& t : workers_) t.join();
  workers_.clear();
  on_results();
  close(&results_async_);
}

void Daemon::Impl::reload() {
  auto c = load_config(cfg_.source);
  if (!c) {
    lg_->error("SIGHUP: keeping the running configuration: {}", c.status().message());
    return;
  }
  Config& n = *c;
  if (n.spool.path != cfg_.spool.path || n.archive.path != cfg_.archive.path ||
      n.state_dir != cfg_.state_dir || n.control.socket != cfg_.control.socket ||
      n.archive.layout != cfg_.archive.layout || n.archive.workers != cfg_.archive.workers)
    lg_->warn("SIGHUP: paths, layout, workers and the control socket change only on restart");
  cfg_.log = n.log;
  cfg_.spool.include = n.spool.include;
  cfg_.spool.exclude = n.spool.exclude;
  cfg_.spool.settle = n.spool.settle;
  cfg_.spool.usage_warn_pct = n.spool.usage_warn_pct;
  cfg_.spool.usage_crit_pct = n.spool.usage_crit_pct;
  cfg_.archive.retry_max = n.archive.retry_max;
  if (n.replication.listen != cfg_.replication.listen || n.peers.size() != cfg_.peers.size() ||
      !std::equal(n.peers.begin(), n.peers.end(), cfg_.peers.begin(), [](auto& a, auto& b) {
        return a.name == b.name && a.address == b.address && a.fingerprint == b.fingerprint;
      }))
    lg_->warn("SIGHUP: replication.listen and [[peer]] sections change only on restart");
  cfg_.replication.bandwidth_bps = n.replication.bandwidth_bps;
  cfg_.replication.schedule = n.replication.schedule;
  cfg_.replication.schedule_text = n.replication.schedule_text;
  apply_bandwidth("SIGHUP");
  log::set_levels(cfg_.log.level, cfg_.log.components);
  filter_ = std::make_unique<FileFilter>(cfg_.spool.include, cfg_.spool.exclude);
  agg_->set_settle(cfg_.spool.settle);
  settle_ms_ = cfg_.spool.settle.count();
  {
    std::lock_guard<std::mutex> l(rmu_);
    cfg_.retention = n.retention;
    keep_ms_ = n.retention.keep.count();
    interval_ms_ = n.retention.interval.count();
  }
  rcv_.notify_all();
  lg_->info("SIGHUP: configuration reloaded from {}", cfg_.source);
  rescan_spool("");  // include patterns may have widened
}

// ---------------------------------------------------------- spool pipeline

void Daemon::Impl::on_spool_file(const std::string& rel, std::optional<int64_t> due_ms,
                                 std::optional<uint64_t> size) {
  if (stopping_ || !filter_->matches(rel)) return;
  auto [it, fresh] = spool_.try_emplace(rel);
  if (fresh) it->second.first_seen_ms = wall_ms(env_->now());
  if (size) {
    it->second.size = *size;
  } else if (auto st = env_->lstat(path_join(cfg_.spool.path, rel))) {
    it->second.size = st->size;  // an event: one lstat on tmpfs is cheap
  }
  if (it->second.in_flight) {
    it->second.dirty = true;
    return;
  }
  if (due_ms)
    agg_->on_found(rel, *due_ms);
  else
    agg_->on_event(rel, steady_ms());
}

void Daemon::Impl::rescan_spool(const std::string& sub) {
  const int64_t now_wall = wall_ms(env_->now());
  const int64_t now = steady_ms();
  const int64_t settle = settle_ms_;
  std::string root = sub.empty() ? cfg_.spool.path : path_join(cfg_.spool.path, sub);
  Status s = scan_tree(env_, root, *filter_, [&](const std::string& r, const FileStat& st) {
    std::string rel = sub.empty() ? r : path_join(sub, r);
    int64_t quiet_at = st.mtime_ns / 1'000'000 + settle;
    on_spool_file(rel, now + std::max<int64_t>(0, quiet_at - now_wall), st.size);
  });
  if (!s) lgw_->warn("scan of {} incomplete: {}", root, s.message());
}

void Daemon::Impl::dispatch_due() {
  if (stopping_) return;
  auto due = agg_->take_due(steady_ms());
  if (due.empty()) return;
  {
    std::lock_guard<std::mutex> l(qmu_);
    for (auto& rel : due) {
      auto it = spool_.find(rel);
      if (it == spool_.end()) continue;
      if (it->second.in_flight) {
        it->second.dirty = true;
        continue;
      }
      it->second.in_flight = true;
      in_flight_++;
      queue_.push_back(rel);
    }
  }
  qcv_.notify_all();
}

void Daemon::Impl::worker_main() {
  name_this_thread("rs-archive");
  for (;;) {
    std::string rel;
    {
      std::unique_lock<std::mutex> l(qmu_);
      qcv_.wait(l, [&] { return workers_stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      rel = std::move(queue_.front());
      queue_.pop_front();
    }
    WorkResult r{rel, archiver_->archive_one(rel, Millis(settle_ms_.load()))};
    {
      std::lock_guard<std::mutex> l(qmu_);
      results_.push_back(std::move(r));
    }
    uv_async_send(&results_async_);
  }
}

void Daemon::Impl::on_results() {
  std::vector<WorkResult> batch;
  {
    std::lock_guard<std::mutex> l(qmu_);
    batch.swap(results_);
  }
  for (auto& r : batch) handle_result(r);
  if (!batch.empty()) dispatch_due();
}

// The archive alarm stands while any recording is still failing: one small
// file fitting into a nearly full disk does not mean the archive is fine.
void Daemon::Impl::maybe_clear_archive_alarm() {
  if (archive_alarm_.empty()) return;
  for (auto& [rel, e] : spool_)
    if (!e.last_error.empty()) return;
  lga_->info("archive is taking files again; alarm cleared ({})", archive_alarm_);
  archive_alarm_.clear();
}

int64_t Daemon::Impl::backoff_ms(int attempts, int64_t cap_ms, int64_t floor_ms) {
  int64_t d = floor_ms << std::min(attempts, 16);
  d = std::min(d, cap_ms);
  std::uniform_int_distribution<int64_t> jitter(0, d / 5);
  return d + jitter(rng_);
}

void Daemon::Impl::handle_result(WorkResult& r) {
  using K = ArchiveOutcome::Kind;
  auto it = spool_.find(r.rel);
  if (it == spool_.end()) return;
  SpoolEntry& e = it->second;
  e.in_flight = false;
  in_flight_--;
  const ArchiveOutcome& o = r.outcome;
  const int64_t now = steady_ms();
  switch (o.kind) {
    case K::kArchived:
    case K::kAlreadyArchived:
      if (repl_) repl_->notify_queued();
      archived_files_++;
      archived_bytes_ += o.row.size;
      last_archived_ms_ = wall_ms(env_->now());
      lga_->info("{} {} -> {} ({} bytes, {}, {:.0f} ms)",
                 o.kind == K::kArchived ? "archived" : "already archived", r.rel, o.row.rel,
                 o.row.size, o.row.hash, o.copy_ms);
      agg_->forget(r.rel);
      spool_.erase(it);
      maybe_clear_archive_alarm();
      return;
    case K::kVanished:
    case K::kSkipped:
      agg_->forget(r.rel);
      spool_.erase(it);
      maybe_clear_archive_alarm();
      return;
    case K::kNotSettled:
      agg_->on_found(r.rel, now + std::max<int64_t>(0, o.retry_at_ms - wall_ms(env_->now())));
      break;
    case K::kWriterBusy:
      // The writer's close brings an IN_CLOSE_WRITE; this poll is the backstop.
      e.attempts++;
      agg_->on_found(r.rel,
                     now + backoff_ms(e.attempts, 30'000, std::max<int64_t>(settle_ms_, 500)));
      lga_->debug("{} still open for writing; waiting", r.rel);
      break;
    case K::kChanged:
      agg_->on_event(r.rel, now);
      break;
    case K::kFailed: {
      e.attempts++;
      failures_++;
      e.last_error = o.status.message();
      std::string alarm = archive_alarm_text(o.status);
      // One error line per kind of trouble, not per file and retry.
      std::string kind = alarm.substr(0, alarm.find(':'));
      if (archive_alarm_.rfind(kind, 0) != 0) {
        lga_->error("{} (spool copies kept, retrying with backoff)", alarm);
      } else {
        lga_->debug("{} (retrying)", alarm);
      }
      archive_alarm_ = alarm;
      agg_->on_found(r.rel, now + backoff_ms(e.attempts - 1, cfg_.archive.retry_max.count(), 1000));
      break;
    }
  }
  if (e.dirty) {
    e.dirty = false;
    agg_->on_event(r.rel, now);
  }
}

// ------------------------------------------------------------ background

void Daemon::Impl::reconcile_main(const FileFilter& filter) {
  name_this_thread("rs-reconcile");
  // Adopt what the archive holds (e.g. the old cron's flat tree) and forget
  // rows whose files are gone. Disk is the truth; the DB is rebuilt from it.
  auto lg = log::get("state");
  auto t0 = Clock::now();
  auto gen = store_->begin_scan();
  if (!gen) {
    lg->error("archive reconcile: {}", gen.status().message());
    reconciled_ = true;
    return;
  }
  std::vector<RecordingRow> batch;
  uint64_t temps = 0;
  const int64_t start_ns = wall_ms(start_wall_) * 1'000'000;
  std::function<void(const std::string&)> walk = [&](const std::string& rel_dir) {
    if (stop_) return;
    std::string dir = rel_dir.empty() ? cfg_.archive.path : path_join(cfg_.archive.path, rel_dir);
    auto entries = env_->list_dir(dir);
    if (!entries) return;
    for (auto& de : *entries) {
      std::string rel = rel_dir.empty() ? de.name : rel_dir + "/" + de.name;
      std::string full = path_join(cfg_.archive.path, rel);
      if (is_temp_name(de.name)) {
        // Left by a crash of an earlier run (this run's temps are newer).
        auto st = env_->lstat(full);
        if (st && st->is_reg && st->mtime_ns < start_ns && st->ctime_ns < start_ns &&
            env_->unlink(full))
          temps++;
        continue;
      }
      if (is_hidden_name(de.name)) continue;
      if (de.type == DirEntry::Type::kDir) {
        walk(rel);
        continue;
      }
      if (de.type != DirEntry::Type::kFile && de.type != DirEntry::Type::kUnknown) continue;
      if (!filter.matches(rel)) continue;
      auto st = env_->lstat(full);
      if (!st || !st->is_reg) {
        if (st && st->is_dir) walk(rel);
        continue;
      }
      RecordingRow row;
      row.rel = rel;
      row.name = recording_id(de.name);
      row.size = st->size;
      row.rec_time_ms = st->mtime_ns / 1'000'000;
      row.archived_at_ms = row.rec_time_ms;
      batch.push_back(std::move(row));
      reconcile_seen_++;
      // Small batches: each holds the store's lock, which archive workers need.
      if (batch.size() >= 1000) {
        if (Status s = store_->scan_seen(batch, *gen); !s) lg->error("reconcile: {}", s.message());
        batch.clear();
      }
    }
  };
  walk("");
  if (stop_) {
    reconciled_ = true;
    return;  // a partial scan must not sweep
  }
  if (!batch.empty()) (void)store_->scan_seen(batch, *gen);
  auto gone = store_->end_scan(*gen);
  lg->info(
      "archive reconciled: {} recordings on disk, {} stale rows dropped, {} stale temps removed "
      "({:.1f} s)",
      reconcile_seen_.load(), gone ? *gone : 0, temps,
      std::chrono::duration<double>(Clock::now() - t0).count());
  reconciled_ = true;
  rcv_.notify_all();
}

void Daemon::Impl::retention_main() {
  name_this_thread("rs-retention");
  auto lg = log::get("retention");
  std::unique_lock<std::mutex> l(rmu_);
  // First pass 30 s after start (and after the archive is reconciled), so a
  // restart loop cannot turn into a pruning loop.
  next_prune_ms_ = wall_ms(env_->now()) + 30000;
  for (;;) {
    // A requested pass waits for the reconcile (it notifies rcv_ when done).
    rcv_.wait_for(l, std::chrono::seconds(1),
                  [&] { return stop_.load() || (retention_now_ && reconciled_); });
    if (stop_) return;
    if (!reconciled_) continue;
    if (!retention_now_ && wall_ms(env_->now()) < next_prune_ms_) continue;
    retention_now_ = false;
    RetentionPolicy p{cfg_.retention.keep, cfg_.retention.clock_tolerance};
    Pruner pruner(env_, store_.get(), cfg_.archive.path, cfg_.audit_log_path(), p,
                  cfg_.retention.pace, cfg_.retention.tmp_grace);
    prune_running_ = true;
    l.unlock();
    auto rep = pruner.run(false, stop_);
    l.lock();
    prune_running_ = false;
    last_prune_ms_ = wall_ms(env_->now());
    next_prune_ms_ = last_prune_ms_ + interval_ms_.load();
    if (!rep) {
      lg->error("retention pass failed: {}", rep.status().message());
      continue;
    }
    last_prune_ = *rep;
    if (!rep->refused.empty())
      lg->warn("retention refused: {}", rep->refused);
    else
      lg->info("retention pass: {} pruned ({} bytes), {} held, {} errors", rep->removed, rep->bytes,
               rep->held, rep->errors);
  }
}

// ------------------------------------------------------- status & control

void Daemon::Impl::apply_bandwidth(const char* why) {
  if (!repl_) return;
  const auto& r = cfg_.replication;
  uint64_t cap = r.bandwidth_bps;
  if (!r.schedule.empty()) {
    const time_t t = std::chrono::system_clock::to_time_t(env_->now());
    struct tm lt {};
    if (localtime_r(&t, &lt)) cap = r.schedule.rate_at(lt.tm_hour * 60 + lt.tm_min, cap);
  }
  if (cap == cap_in_force_) return;
  cap_in_force_ = cap;
  repl_->set_bandwidth(cap);
  lg_->info("{}: replication bandwidth cap now {}{}", why,
            cap ? format_bytes(cap) + "/s" : std::string("none"),
            r.schedule.empty() ? "" : " (schedule \"" + r.schedule_text + "\")");
}

void Daemon::Impl::on_slow_timer() {
  apply_bandwidth("schedule");
  if (auto u = env_->fs_usage(cfg_.spool.path)) {
    spool_usage_ = *u;
    std::string was = spool_alarm_;
    spool_alarm_.clear();
    if (u->used_pct >= cfg_.spool.usage_crit_pct) {
      spool_alarm_severity_ = "critical";
      spool_alarm_ = fmt::format("spool usage {:.0f}% (critical watermark {}%)", u->used_pct,
                                 cfg_.spool.usage_crit_pct);
    } else if (u->used_pct >= cfg_.spool.usage_warn_pct) {
      spool_alarm_severity_ = "warning";
      spool_alarm_ = fmt::format("spool usage {:.0f}% (warning watermark {}%)", u->used_pct,
                                 cfg_.spool.usage_warn_pct);
    }
    if (spool_alarm_ != was && !spool_alarm_.empty()) lgw_->warn("{}", spool_alarm_);
  }
  if (auto u = env_->fs_usage(cfg_.archive.path)) archive_usage_ = *u;
  std::string line = fmt::format("STATUS=spool {} files, {} archived, {} alarms", spool_.size(),
                                 archived_files_, alarms_json(nullptr).size());
  if (watchdog_usec_ && steady_ms() - last_watchdog_ms_ >= int64_t(watchdog_usec_ / 2000)) {
    line += "\nWATCHDOG=1";
    last_watchdog_ms_ = steady_ms();
  }
  sd_notify(0, line.c_str());
}

json Daemon::Impl::alarms_json(const replication::ServiceStatus* given) {
  json a = json::array();
  if (!archive_alarm_.empty()) a.push_back({{"severity", "critical"}, {"text", archive_alarm_}});
  if (!spool_alarm_.empty())
    a.push_back({{"severity", spool_alarm_severity_}, {"text", spool_alarm_}});
  if (!watch_alarm_.empty()) a.push_back({{"severity", "critical"}, {"text", watch_alarm_}});
  if (!state_alarm_.empty()) a.push_back({{"severity", "warning"}, {"text", state_alarm_}});
  if (!orphan_alarm_.empty()) a.push_back({{"severity", "warning"}, {"text", orphan_alarm_}});
  std::optional<replication::ServiceStatus> own;
  if (repl_ && !given) given = &own.emplace(repl_->status());
  if (given) {
    const int64_t now = wall_ms(env_->now());
    for (auto& p : given->peers) {
      using replication::PeerState;
      if (p.state == PeerState::kRefused) {
        a.push_back(
            {{"severity", "critical"}, {"text", "peer " + p.name + " refused: " + p.last_error}});
        continue;
      }
      const int64_t oldest_s =
          p.queue.oldest_enqueued_ms ? (now - p.queue.oldest_enqueued_ms) / 1000 : 0;
      if (p.state != PeerState::kConnected && p.queue.files() > 0 && oldest_s >= 60)
        a.push_back(
            {{"severity", oldest_s >= 3600 ? "critical" : "warning"},
             {"text", fmt::format("peer {} unreachable: {} recordings ({}) waiting, oldest {} s "
                                  "({})",
                                  p.name, p.queue.files(), format_bytes(p.queue.bytes()), oldest_s,
                                  p.last_error)}});
      else if (p.queue.retry_files > 0)
        a.push_back({{"severity", "warning"},
                     {"text", fmt::format("peer {}: {} recordings failed and wait for a retry "
                                          "(last: {})",
                                          p.name, p.queue.retry_files, p.last_error)}});
    }
    if (!given->last_refused.empty() && now - given->last_refused_ms < 600'000)
      a.push_back({{"severity", "warning"},
                   {"text", "refused an incoming peer connection: " + given->last_refused}});
  }
  std::lock_guard<std::mutex> l(rmu_);
  if (!last_prune_.refused.empty() && last_prune_.refused != "retention disabled")
    a.push_back({{"severity", "warning"}, {"text", "retention refused: " + last_prune_.refused}});
  if (last_prune_.errors > 0)
    a.push_back({{"severity", "warning"},
                 {"text", fmt::format("retention: {} files could not be deleted in the last pass",
                                      last_prune_.errors)}});
  return a;
}

json Daemon::Impl::status_json() {
  const int64_t now = wall_ms(env_->now());
  uint64_t spool_bytes = 0;
  int64_t oldest_ms = 0;
  size_t failing = 0;
  for (auto& [rel, e] : spool_) {
    spool_bytes += e.size;
    if (oldest_ms == 0 || e.first_seen_ms < oldest_ms) oldest_ms = e.first_seen_ms;
    if (!e.last_error.empty()) failing++;
  }
  json j;
  j["node"] = cfg_.node;
  j["version"] = kVersion;
  j["uptime_s"] = (now - wall_ms(start_wall_)) / 1000;
  j["spool"] = {{"path", cfg_.spool.path},
                {"files", spool_.size()},
                {"bytes", spool_bytes},
                {"used_pct", spool_usage_.used_pct},
                {"oldest_s", oldest_ms ? (now - oldest_ms) / 1000 : 0},
                {"overflows", overflows_},
                {"watches", watcher_ ? watcher_->watch_count() : 0}};
  StoreStats ss;
  if (auto s = store_->stats()) ss = *s;
  j["archive"] = {{"path", cfg_.archive.path},
                  {"files", ss.files},
                  {"bytes", ss.bytes},
                  {"used_pct", archive_usage_.used_pct},
                  {"pending", spool_.size()},
                  {"in_flight", in_flight_},
                  {"failing", failing},
                  {"archived_since_start", archived_files_},
                  {"archived_bytes_since_start", archived_bytes_},
                  {"last_archived", iso_time(last_archived_ms_)},
                  {"reconciled", reconciled_.load()},
                  {"layout", cfg_.archive.layout}};
  std::optional<replication::ServiceStatus> rs;
  if (repl_) rs = repl_->status();
  json peers = json::array();
  QueueStats total;
  if (rs) {
    for (auto& p : rs->peers) {
      const auto& q = p.queue;
      total.live_files += q.live_files;
      total.live_bytes += q.live_bytes;
      total.retry_files += q.retry_files;
      total.retry_bytes += q.retry_bytes;
      if (q.oldest_enqueued_ms &&
          (!total.oldest_enqueued_ms || q.oldest_enqueued_ms < total.oldest_enqueued_ms))
        total.oldest_enqueued_ms = q.oldest_enqueued_ms;
      json inflight = nullptr;
      if (p.in_flight)
        inflight = {{"path", p.in_flight->rel},
                    {"size", p.in_flight->size},
                    {"read_bytes", p.in_flight->read_bytes},
                    {"sent_bytes", p.in_flight->sent_bytes},
                    {"elapsed_s", (now - p.in_flight->started_ms) / 1000.0}};
      peers.push_back(
          {{"name", p.name},
           {"address", p.address},
           {"fingerprint", p.fingerprint},
           {"state", replication::peer_state_name(p.state)},
           {"connected_s",
            p.connected_since_ms ? json((now - p.connected_since_ms) / 1000) : json(nullptr)},
           {"last_ack_s", p.last_ack_ms ? json((now - p.last_ack_ms) / 1000.0) : json(nullptr)},
           {"rtt_ms", p.rtt_ms >= 0 ? json(p.rtt_ms) : json(nullptr)},
           {"sent_bytes", p.sent_bytes},
           {"received_bytes", p.received_bytes},
           {"acked_files", p.acked_files},
           {"received_files", p.received_files},
           {"failed_transfers", p.failed_transfers},
           {"queue",
            {{"files", q.files()},
             {"bytes", q.bytes()},
             {"oldest_s", q.oldest_enqueued_ms ? (now - q.oldest_enqueued_ms) / 1000 : 0},
             {"live", {{"files", q.live_files}, {"bytes", q.live_bytes}}},
             {"retry", {{"files", q.retry_files}, {"bytes", q.retry_bytes}}}}},
           {"in_flight", inflight},
           {"last_error", p.last_error}});
    }
  }
  j["replication"] = {
      {"enabled", rs.has_value()},
      {"listen", rs ? json(rs->listen) : json(nullptr)},
      {"listen_port", rs ? json(rs->listen_port) : json(nullptr)},
      {"bandwidth_bps", rs ? cap_in_force_ : cfg_.replication.bandwidth_bps},
      {"bandwidth_default_bps", cfg_.replication.bandwidth_bps},
      {"schedule", cfg_.replication.schedule_text},
      {"rate_bps", rs ? rs->rate_bps : 0},
      {"queue",
       {{"files", total.files()},
        {"bytes", total.bytes()},
        {"oldest_s", total.oldest_enqueued_ms ? (now - total.oldest_enqueued_ms) / 1000 : 0},
        {"live", {{"files", total.live_files}, {"bytes", total.live_bytes}}},
        {"retry", {{"files", total.retry_files}, {"bytes", total.retry_bytes}}}}}};
  j["peers"] = peers;
  size_t holds = 0;
  if (auto h = store_->holds()) holds = h->size();
  {
    std::lock_guard<std::mutex> l(rmu_);
    uint64_t pruned_total = 0;
    if (auto m = store_->get_meta("pruned_total"); m && m->has_value())
      pruned_total = std::stoull(**m);
    j["retention"] = {
        {"keep_s", keep_ms_.load() / 1000},       {"last_prune", iso_time(last_prune_ms_)},
        {"next_prune", iso_time(next_prune_ms_)}, {"running", prune_running_},
        {"last_pruned", last_prune_.removed},     {"pruned_total", pruned_total},
        {"refused", last_prune_.refused},         {"holds", holds}};
  }
  j["alarms"] = alarms_json(rs ? &*rs : nullptr);
  return j;
}

void Daemon::Impl::handle_control(const json& req, const PeerCred& who,
                                  ControlServer::Reply reply) {
  const std::string cmd = req["cmd"];
  auto lgc = log::get("control");
  auto err = [&](const std::string& e) { reply({{"ok", false}, {"error", e}}); };
  try {
    if (cmd == "status") {
      json j = status_json();
      j["ok"] = true;
      reply(j);
    } else if (cmd == "hold_add") {
      std::string target = req.value("target", "");
      if (target.empty()) return err("hold add needs a recording id or archive path");
      HoldRow h{target, req.value("reason", ""), wall_ms(env_->now())};
      if (Status s = store_->add_hold(h, peer_names()); !s) return err(s.message());
      if (repl_) repl_->notify_queued();
      auto matches = store_->find(target);
      size_t n = matches ? matches->size() : 0;
      lgc->info("hold added on '{}' by uid {} ({} archived recordings match){}", target, who.uid, n,
                h.reason.empty() ? "" : ": " + h.reason);
      reply({{"ok", true}, {"target", target}, {"matches", n}});
    } else if (cmd == "hold_release") {
      std::string target = req.value("target", "");
      auto r = store_->release_hold(target, peer_names());
      if (!r) return err(r.status().message());
      if (repl_) repl_->notify_queued();
      if (!*r) return err("no hold on '" + target + "'");
      lgc->info("hold released on '{}' by uid {}", target, who.uid);
      reply({{"ok", true}, {"target", target}});
    } else if (cmd == "hold_list") {
      auto h = store_->holds();
      if (!h) return err(h.status().message());
      json a = json::array();
      for (auto& x : *h)
        a.push_back(
            {{"target", x.target}, {"reason", x.reason}, {"created", iso_time(x.created_ms)}});
      reply({{"ok", true}, {"holds", a}});
    } else if (cmd == "locate") {
      std::string id = req.value("id", "");
      if (id.empty()) return err("locate needs a recording id or path");
      auto rows = store_->find(id);
      if (!rows) return err(rows.status().message());
      auto holds = store_->holds();
      HoldSet hs(holds ? *holds : std::vector<HoldRow>{});
      json a = json::array();
      for (auto& r : *rows)
        a.push_back({{"where", "archive"},
                     {"path", path_join(cfg_.archive.path, r.rel)},
                     {"size", r.size},
                     {"hash", r.hash},
                     {"recorded", iso_time(r.rec_time_ms)},
                     {"origin", r.origin},
                     {"held", hs.held(r)}});
      for (auto& [rel, e] : spool_)
        if (rel == id || recording_id(path_basename(rel)) == id)
          a.push_back({{"where", "spool"},
                       {"path", path_join(cfg_.spool.path, rel)},
                       {"size", e.size},
                       {"state", e.in_flight ? "archiving" : "waiting"},
                       {"last_error", e.last_error}});
      if (a.empty()) return err("no recording '" + id + "' in the spool or the archive");
      reply({{"ok", true}, {"locations", a}});
    } else if (cmd == "prune") {
      if (!req.value("dry_run", false)) {
        std::lock_guard<std::mutex> l(rmu_);
        retention_now_ = true;
        rcv_.notify_all();
        return reply({{"ok", true}, {"started", true}});
      }
      // A dry run may read many rows: off the loop thread, reply back on it.
      struct Job {
        uv_work_t w;
        Impl* self;
        ControlServer::Reply reply;
        Result<PruneReport> rep{Status::invalid("not run")};
      };
      auto* job = new Job{{}, this, std::move(reply), Status::invalid("not run")};
      job->w.data = job;
      uv_queue_work(
          &loop_, &job->w,
          [](uv_work_t* w) {
            auto* j = static_cast<Job*>(w->data);
            Impl* s = j->self;
            RetentionPolicy p{Millis(s->keep_ms_.load()), s->cfg_.retention.clock_tolerance};
            Pruner pr(s->env_, s->store_.get(), s->cfg_.archive.path, s->cfg_.audit_log_path(), p,
                      0, s->cfg_.retention.tmp_grace);
            std::atomic<bool> no_stop{false};
            j->rep = pr.run(true, no_stop);
          },
          [](uv_work_t* w, int) {
            std::unique_ptr<Job> j(static_cast<Job*>(w->data));
            if (!j->rep) {
              j->reply({{"ok", false}, {"error", j->rep.status().message()}});
              return;
            }
            json a = json::array();
            for (auto& r : j->rep->would_remove)
              a.push_back(
                  {{"path", r.rel}, {"size", r.size}, {"recorded", iso_time(r.rec_time_ms)}});
            j->reply({{"ok", true},
                      {"dry_run", true},
                      {"refused", j->rep->refused},
                      {"would_remove", a},
                      {"files", j->rep->removed},
                      {"bytes", j->rep->bytes},
                      {"held", j->rep->held},
                      {"keep_s", j->self->keep_ms_.load() / 1000}});
          });
    } else if (cmd == "reload") {
      reload();
      reply({{"ok", true}});
    } else {
      err("unknown command '" + cmd + "'");
    }
  } catch (const std::exception& e) {
    err(std::string("internal error: ") + e.what());
  }
}

}  // namespace recsync
