#include "daemon/daemon.h"

#include <fmt/format.h>
#include <systemd/sd-daemon.h>
#include <uv.h>

#include <algorithm>
#include <csignal>

#include "archive/archiver.h"
#include "archive/reconcile.h"
#include "archive/spool_pipeline.h"
#include "control/control_server.h"
#include "daemon/control_commands.h"
#include "daemon/metrics_endpoint.h"
#include "daemon/preflight.h"
#include "daemon/status.h"
#include "daemon/wiring.h"
#include "erase/eraser.h"
#include "objtier/object_tier.h"
#include "peer/identity.h"
#include "recsync/clock.h"
#include "recsync/log.h"
#include "recsync/version.h"
#include "replication/bandwidth.h"
#include "replication/service.h"
#include "retention/scheduler.h"
#include "scrub/scrubber.h"
#include "state/store.h"
#include "watch/inotify_watcher.h"

namespace recsync {
namespace {

using json = nlohmann::json;

// Left in state_dir by a clean stop; its absence at start means the last run
// crashed or was killed.
constexpr const char* kCleanShutdownMarker = "clean-shutdown";

void close_handle(void* h) {
  auto* handle = static_cast<uv_handle_t*>(h);
  if (handle->loop && !uv_is_closing(handle)) uv_close(handle, nullptr);
}

}  // namespace

class Daemon::Impl {
 public:
  Impl(Config cfg, Env* env) : cfg_(std::move(cfg)), env_(env), start_ms_(to_ms(env->now())) {}
  Status run();

 private:
  Status open_state();
  Status start_replication();
  Status start_object_store();
  Status start_components();
  Status start_loop();
  void begin_stop();
  void reload();
  void on_slow_timer();
  // alarms_only: skip what status_alarms() does not read (store counts).
  StatusInputs status_inputs(bool alarms_only = false);
  json status() { return status_json(status_inputs(), to_ms(env_->now())); }
  void write_clean_marker();

  Config cfg_;
  Env* env_;
  const int64_t start_ms_;
  std::shared_ptr<spdlog::logger> lg_ = log::get("daemon");

  uv_loop_t loop_{};
  uv_signal_t sigterm_{}, sigint_{}, sighup_{};
  uv_timer_t tick_{}, slow_{};
  uv_async_t results_async_{};
  bool stopping_ = false;

  std::unique_ptr<StateStore> store_;
  // Where recordings land in the archive (the identity rule), shared by the
  // archiver and the peer receiver.
  std::unique_ptr<Placer> placer_;
  std::unique_ptr<erase::Eraser> eraser_;  // erasures (erase/eraser.h)
  // Recordings the archiver leaves in the page cache for the peer senders.
  PageBudget page_budget_;
  std::unique_ptr<Archiver> archiver_;
  std::unique_ptr<SpoolPipeline> spool_;
  std::unique_ptr<InotifyWatcher> watcher_;
  std::unique_ptr<ArchiveReconciler> reconciler_;
  std::unique_ptr<RetentionScheduler> retention_;
  // The one bandwidth governor: every byte sent to peers (and, with an
  // object store, uploaded) is metered by it; BandwidthControl sets its cap.
  replication::Governor governor_{cfg_.replication.bandwidth_bps, 0, steady_ns()};
  std::unique_ptr<replication::Service> repl_;  // null on a single node
  std::unique_ptr<replication::BandwidthControl> bandwidth_;
  std::unique_ptr<objtier::ObjectTier> tier_;  // null without [object_store]
  std::unique_ptr<scrub::Scrubber> scrub_;     // repairs from the peers (null: alarms only)
  std::unique_ptr<ControlServer> control_;
  ControlContext control_ctx_;
  std::unique_ptr<MetricsEndpoint> metrics_;  // null when [metrics] listen = ""

  // Loop thread.
  std::vector<Alarm> alarms_;  // state database, orphaned queue entries
  std::string watch_alarm_;
  std::string spool_alarm_logged_;
  FsUsage spool_usage_{}, archive_usage_{};
  uint64_t overflows_ = 0;
  uint64_t watchdog_usec_ = 0;
  int64_t last_watchdog_ms_ = 0;
};

Daemon::Daemon(Config cfg, Env* env) : impl_(std::make_unique<Impl>(std::move(cfg), env)) {}
Daemon::~Daemon() = default;
Status Daemon::run() { return impl_->run(); }

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
    RECSYNC_RETURN_IF_ERROR(StateStore::quarantine(env_, cfg_.db_path()));
    alarms_.push_back(
        {"warning", "state database was corrupt and has been rebuilt from the archive"});
    st = StateStore::open(cfg_.db_path());
  }
  if (!st) return st.status();
  store_ = std::move(st).value();
  placer_ = std::make_unique<Placer>(env_, store_.get(), cfg_.archive.path, cfg_.node);
  eraser_ = make_eraser(cfg_, env_, store_.get(), placer_.get());
  return Status::ok();
}

// The node identity is created on the first start (recsync id reads it),
// also on a single node, so a peer can be added later without a keygen step.
Status Daemon::Impl::start_replication() {
  auto id = peer::load_or_create_identity(env_, cfg_.state_dir, cfg_.node);
  if (!id) return id.status().with_context("node identity");
  // Entries queued for a peer that is no longer configured stay (the peer
  // may come back under that name) but are reported.
  const std::string orphans = orphaned_queue_report(cfg_, *store_);
  if (!orphans.empty()) {
    lg_->warn("{}", orphans);
    alarms_.push_back({"warning", orphans});
  }
  if (cfg_.peers.empty()) return Status::ok();
  replication::ServiceOptions o;
  o.node = cfg_.node;
  o.listen = cfg_.replication.listen;
  o.governor = &governor_;
  o.placer = placer_.get();
  o.archive_root = cfg_.archive.path;
  o.peers = cfg_.peers;
  o.page_budget = &page_budget_;
  o.eraser = eraser_.get();
  auto s = replication::Service::create(env_, store_.get(), *id, std::move(o));
  if (!s) return s.status();
  repl_ = std::move(s).value();
  return Status::ok();
}

// The object-store tier: recordings archived here are queued for it in the
// replication queue under kStoreDestination (after the peers the service
// set), and retention prunes its objects and local copies at keep_local.
Status Daemon::Impl::start_object_store() {
  if (!cfg_.object_store.enabled) return Status::ok();
  auto opt = objtier::tier_options(cfg_);
  if (!opt) return opt.status();
  auto t = objtier::ObjectTier::create(env_, store_.get(), &governor_, &page_budget_,
                                       std::move(opt).value());
  if (!t) return t.status();
  tier_ = std::move(t).value();
  std::vector<std::string> dest;
  for (const PeerConfig& p : cfg_.peers) dest.push_back(p.name);
  dest.push_back(kStoreDestination);
  store_->queue().set_peers(std::move(dest));
  return Status::ok();
}

Status Daemon::Impl::start_components() {
  auto layout = parse_layout(cfg_.archive.layout);
  if (!layout) return layout.status();
  auto check = parse_open_check(cfg_.spool.open_check);
  if (!check) return check.status();
  RECSYNC_RETURN_IF_ERROR(start_replication());
  RECSYNC_RETURN_IF_ERROR(start_object_store());
  bandwidth_ =
      std::make_unique<replication::BandwidthControl>(&governor_, bandwidth_settings(cfg_));
  ArchiverOptions aopt{cfg_.spool.path, cfg_.archive.path, *layout,
                       *check,          &page_budget_,     placer_.get()};
  archiver_ = std::make_unique<Archiver>(env_, store_.get(), std::move(aopt));
  SpoolPipelineOptions sopt{cfg_.spool.path,   cfg_.spool.include,   cfg_.spool.exclude,
                            cfg_.spool.settle, cfg_.archive.workers, cfg_.archive.retry_max};
  spool_ = std::make_unique<SpoolPipeline>(
      env_,
      [a = archiver_.get()](const std::string& rel, Millis settle) {
        return a->archive_one(rel, settle);
      },
      std::move(sopt), [] { return steady_ms(); });
  retention_ = std::make_unique<RetentionScheduler>(env_, store_.get(), cfg_.archive.path,
                                                    retention_settings(cfg_));
  retention_->set_object_tier(tier_.get());
  scrub_ =
      std::make_unique<scrub::Scrubber>(env_, store_.get(), cfg_.archive.path, cfg_.node,
                                        repl_ ? &repl_->repairs() : nullptr, scrub_settings(cfg_));
  reconciler_ = std::make_unique<ArchiveReconciler>(env_, store_.get(), cfg_.archive.path,
                                                    start_ms_, cfg_.node, placer_.get());
  control_ctx_ = ControlContext{cfg_.node,       env_,
                                store_.get(),    repl_.get(),
                                spool_.get(),    retention_.get(),
                                cfg_.spool.path, cfg_.archive.path};
  control_ctx_.bandwidth = bandwidth_.get();
  control_ctx_.tier = tier_.get();
  control_ctx_.scrub = scrub_.get();
  control_ctx_.status = [this] { return status(); };
  control_ctx_.reload = [this] { reload(); };
  control_ctx_.eraser = eraser_.get();
  control_ctx_.off_loop = [this](std::function<json()> work, std::function<void(json)> done) {
    queue_off_loop(&loop_, std::move(work), std::move(done));
  };
  hook_eraser(*eraser_, tier_.get());
  return Status::ok();
}

Status Daemon::Impl::start_loop() {
  InotifyWatcher::Callbacks cb;
  cb.on_file = [this](const std::string& rel) { spool_->on_event(rel); };
  cb.on_new_dir = [this](const std::string& rel_dir) { spool_->rescan(rel_dir); };
  cb.on_overflow = [this] {
    overflows_++;
    log::get("watch")->warn("inotify queue overflow or lost watch: rescanning the spool");
    spool_->rescan("");
  };
  watcher_ = std::make_unique<InotifyWatcher>(&loop_, cfg_.spool.path, cb);
  if (Status s = watcher_->start(); !s) {
    if (s.err() == ENOSPC) watch_alarm_ = "inotify watch limit reached: " + s.message();
    return s;
  }
  spool_->rescan("");  // startup scan, after the watches exist: nothing slips between
  // Under systemd RuntimeDirectory= made it; by hand it may be missing.
  if (Status s = env_->mkdirs(path_dirname(cfg_.control.socket), 0755); !s)
    return s.with_context("control socket folder");
  control_ = std::make_unique<ControlServer>(
      &loop_, cfg_.control.socket, cfg_.control.group,
      [this](const json& req, const PeerCred& who, ControlServer::Reply reply) {
        handle_control(control_ctx_, req, who, std::move(reply));
      });
  if (Status s = control_->start(); !s) {
    control_.reset();
    return s.with_context("control socket");
  }
  if (!cfg_.metrics.listen.empty()) {
    metrics_ = std::make_unique<MetricsEndpoint>([e = env_] { return to_ms(e->now()); });
    metrics_->publish(status_inputs());
    RECSYNC_RETURN_IF_ERROR(metrics_->start(cfg_.metrics.listen));  // names the address
  }
  auto on_sig = [](uv_signal_t* h, int sig) {
    auto* self = static_cast<Impl*>(h->loop->data);
    if (sig == SIGHUP)
      self->reload();
    else
      self->begin_stop();
  };
  for (auto [h, sig] : {std::pair{&sigterm_, SIGTERM}, {&sigint_, SIGINT}, {&sighup_, SIGHUP}}) {
    uv_signal_init(&loop_, h);
    uv_signal_start(h, on_sig, sig);
  }
  uv_timer_init(&loop_, &tick_);
  uv_timer_start(
      &tick_, [](uv_timer_t* t) { static_cast<Impl*>(t->loop->data)->spool_->dispatch_due(); }, 50,
      50);
  uv_timer_init(&loop_, &slow_);
  uv_timer_start(
      &slow_, [](uv_timer_t* t) { static_cast<Impl*>(t->loop->data)->on_slow_timer(); }, 0, 1000);
  return Status::ok();
}

Status Daemon::Impl::run() {
  // A read lease being broken raises SIGIO, whose default action kills us;
  // lease breaks are noticed by polling F_GETLEASE instead (Archiver).
  ::signal(SIGIO, SIG_IGN);
  log::set_levels(cfg_.log.level, cfg_.log.components);
  // The same checks as --check-config: every problem is logged, not only the first.
  size_t errors = 0;
  for (const PreflightProblem& p : preflight(cfg_, env_)) {
    errors += p.error();
    p.error() ? lg_->critical("{}", p.text) : lg_->warn("{}", p.text);
  }
  if (errors > 0)
    return Status::invalid(
        fmt::format("{} problem(s) in {} (above) stop the start", errors, cfg_.source));
  RECSYNC_RETURN_IF_ERROR(open_state());
  RECSYNC_RETURN_IF_ERROR(start_components());
  uv_loop_init(&loop_);
  loop_.data = this;
  uv_async_init(&loop_, &results_async_,
                [](uv_async_t* a) { static_cast<Impl*>(a->loop->data)->spool_->drain_results(); });
  spool_->start([this] { uv_async_send(&results_async_); });
  if (Status s = start_loop(); !s) {
    begin_stop();
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    return s;
  }
  // Erasures a crash interrupted are finished before the archive is adopted.
  if (Status e = eraser_->finish_pending(/*with_store=*/false); !e) lg_->warn("{}", e.message());
  if (Status e = eraser_->sweep_archive(); !e) lg_->warn("erased copies: {}", e.message());
  eraser_->start();
  reconciler_->start(spool_->filter(), [r = retention_.get()] { r->set_reconciled(); });
  if (repl_)
    retention_->set_peer_clocks([r = repl_.get()] {
      std::vector<PeerClock> out;
      for (const auto& p : r->peers())
        out.push_back({p.name, p.clock_measured_ms, p.clock_offset_ms, std::max(p.rtt_ms, 0.0)});
      return out;
    });
  retention_->start();
  scrub_->set_pruning([r = retention_.get()] { return r->snapshot().running; });
  scrub_->start();
  bandwidth_->apply(env_->now(), "schedule");
  if (repl_) repl_->start();
  if (tier_) tier_->start();
  if (sd_watchdog_enabled(0, &watchdog_usec_) <= 0) watchdog_usec_ = 0;
  lg_->info("recsyncd {} ready: node {}, spool {} ({} files waiting, {} watches), archive {}",
            kVersion, cfg_.node, cfg_.spool.path, spool_->snapshot().files, watcher_->watch_count(),
            cfg_.archive.path);
  sd_notify(0, "READY=1\nSTATUS=watching the spool");

  uv_run(&loop_, UV_RUN_DEFAULT);

  // The loop has ended: every handle is closed; join the threads.
  retention_->stop();
  scrub_->stop();
  reconciler_->stop();
  eraser_->stop();
  int rc = uv_loop_close(&loop_);
  if (rc != 0) lg_->warn("event loop closed with handles open: {}", uv_strerror(rc));
  write_clean_marker();
  lg_->info("stopped cleanly");
  return Status::ok();
}

void Daemon::Impl::write_clean_marker() {
  repl_.reset();
  eraser_.reset();
  archiver_.reset();
  placer_.reset();
  tier_.reset();
  store_.reset();  // closes the DB (checkpoints the WAL) before the marker says so
  auto m = env_->create_excl(path_join(cfg_.state_dir, kCleanShutdownMarker), 0640);
  if (m) (void)(*m)->sync();
  (void)env_->sync_dir(cfg_.state_dir);
}

void Daemon::Impl::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  sd_notify(0, "STOPPING=1\nSTATUS=stopping");
  lg_->info("stopping: finishing files in flight, flushing state");
  if (watcher_) watcher_->close();
  if (control_) control_->close();
  if (metrics_) metrics_->stop();
  // Receivers keep what they got as resume bases; senders stop mid-transfer
  // (the queue entry stays until acked).
  if (repl_) repl_->stop();
  if (tier_) tier_->stop();  // an upload stops at its next chunk; the entry stays queued
  for (void* h : {(void*)&sigterm_, (void*)&sigint_, (void*)&sighup_, (void*)&tick_, (void*)&slow_})
    close_handle(h);
  // The workers post their last results through results_async_: stop them
  // (copies are short) and take those results before closing it.
  spool_->stop();
  close_handle(&results_async_);
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
      n.archive.layout != cfg_.archive.layout || n.archive.workers != cfg_.archive.workers ||
      n.metrics.listen != cfg_.metrics.listen)
    lg_->warn(
        "SIGHUP: paths, layout, workers, the control socket and metrics.listen change only on "
        "restart");
  if (n.replication.listen != cfg_.replication.listen || n.peers.size() != cfg_.peers.size() ||
      !std::equal(n.peers.begin(), n.peers.end(), cfg_.peers.begin(), [](auto& a, auto& b) {
        return a.name == b.name && a.address == b.address && a.fingerprint == b.fingerprint;
      }))
    lg_->warn("SIGHUP: replication.listen and [[peer]] sections change only on restart");
  if (n.object_store.enabled != cfg_.object_store.enabled ||
      n.object_store.endpoint != cfg_.object_store.endpoint ||
      n.object_store.bucket != cfg_.object_store.bucket ||
      n.object_store.prefix != cfg_.object_store.prefix)
    lg_->warn(
        "SIGHUP: the [object_store] section changes only on restart (keep_local applies now)");
  cfg_.log = n.log;
  cfg_.spool.usage_warn_pct = n.spool.usage_warn_pct;
  cfg_.spool.usage_crit_pct = n.spool.usage_crit_pct;
  cfg_.replication.bandwidth_bps = n.replication.bandwidth_bps;
  cfg_.replication.schedule_text = n.replication.schedule_text;
  log::set_levels(cfg_.log.level, cfg_.log.components);
  bandwidth_->reload(bandwidth_settings(n), env_->now());
  spool_->reload(n.spool.include, n.spool.exclude, n.spool.settle, n.archive.retry_max);
  retention_->set_settings(retention_settings(n));
  scrub_->set_settings(scrub_settings(n));
  eraser_->set_keep(n.retention.keep);
  lg_->info("SIGHUP: configuration reloaded from {}", cfg_.source);
  spool_->rescan("");  // include patterns may have widened
}

StatusInputs Daemon::Impl::status_inputs(bool alarms_only) {
  StatusInputs in;
  in.node = cfg_.node;
  in.version = kVersion;
  in.start_ms = start_ms_;
  in.spool_path = cfg_.spool.path;
  in.spool = spool_->snapshot();
  in.spool_usage = spool_usage_;
  in.usage_warn_pct = cfg_.spool.usage_warn_pct;
  in.usage_crit_pct = cfg_.spool.usage_crit_pct;
  in.overflows = overflows_;
  in.watches = watcher_ ? watcher_->watch_count() : 0;
  in.archive_path = cfg_.archive.path;
  in.layout = cfg_.archive.layout;
  in.archive_usage = archive_usage_;
  in.reconciled = reconciler_->done();
  if (repl_) in.repl = repl_->status();
  in.collisions = placer_->collisions();
  in.conflicts = placer_->conflicts();
  if (tier_) in.object_store = tier_->status();
  in.bandwidth = bandwidth_->state();
  in.bandwidth_default_bps = cfg_.replication.bandwidth_bps;
  in.schedule_text = cfg_.replication.schedule_text;
  in.retention = retention_->snapshot();
  in.scrub = scrub_->snapshot();
  if (!watch_alarm_.empty()) in.other_alarms.push_back({"critical", watch_alarm_});
  in.other_alarms.insert(in.other_alarms.end(), alarms_.begin(), alarms_.end());
  in.metrics_listen = cfg_.metrics.listen;
  if (metrics_) {
    in.metrics_address = metrics_->address();
    in.metrics_port = metrics_->port();
  }
  if (alarms_only) return in;
  if (auto s = store_->recordings().stats()) in.archive = *s;
  if (auto m = store_->db().get_meta("pruned_total"); m && m->has_value())
    in.pruned_total = std::strtoull((*m)->c_str(), nullptr, 10);
  if (auto h = store_->holds().list()) in.holds = h->size();
  if (auto n = store_->tombstones().erased_total()) in.erased_total = *n;
  if (auto n = store_->tombstones().count()) in.tombstones = *n;
  if (auto p = store_->tombstones().pending()) in.erase_pending = p->size();
  if (auto q = store_->tombstones().queue_stats()) in.erase_queue = std::move(q).value();
  if (repl_)
    if (auto v = repl_->backfill().view()) in.backfill = std::move(v).value();
  return in;
}

void Daemon::Impl::on_slow_timer() {
  bandwidth_->apply(env_->now(), "schedule");
  if (repl_) repl_->tick();
  if (auto u = env_->fs_usage(cfg_.spool.path)) {
    spool_usage_ = *u;
    auto a = spool_usage_alarm(u->used_pct, cfg_.spool.usage_warn_pct, cfg_.spool.usage_crit_pct);
    std::string text = a ? a->text : "";
    if (text != spool_alarm_logged_ && !text.empty()) log::get("watch")->warn("{}", text);
    spool_alarm_logged_ = text;
  }
  if (auto u = env_->fs_usage(cfg_.archive.path)) archive_usage_ = *u;
  // The metrics page renders from this copy until the next tick.
  StatusInputs in = status_inputs(/*alarms_only=*/!metrics_);
  if (metrics_) metrics_->publish(in);
  std::string line =
      fmt::format("STATUS=spool {} files, {} archived, {} alarms", in.spool.files,
                  in.spool.archived_files, status_alarms(in, to_ms(env_->now())).size());
  if (watchdog_usec_ && steady_ms() - last_watchdog_ms_ >= int64_t(watchdog_usec_ / 2000)) {
    line += "\nWATCHDOG=1";
    last_watchdog_ms_ = steady_ms();
  }
  sd_notify(0, line.c_str());
}

}  // namespace recsync
