#include "objtier/uploader.h"

#include "recsync/backoff.h"
#include "recsync/clock.h"
#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/thread_name.h"

namespace recsync::objtier {

using objstore::ErrorKind;
using objstore::S3Status;

namespace {

constexpr int64_t kHoldCheckMs = 60'000;

#define RECSYNC_RETURN_IF_S3_ERROR(expr) \
  do {                                   \
    S3Status s3s_ = (expr);              \
    if (!s3s_) return s3s_;              \
  } while (0)

// Failures of the store itself: the whole queue waits (backoff), nothing is
// deferred or dropped.
bool store_wide(ErrorKind k) {
  return k == ErrorKind::kAuth || k == ErrorKind::kNetwork || k == ErrorKind::kServer ||
         k == ErrorKind::kQuota;
}

}  // namespace

Uploader::Uploader(Env* env, StateStore* store, replication::Governor* gov, PageBudget* budget,
                   TierOptions opt, UploadBoard* board)
    : env_(env), store_(store), gov_(gov), budget_(budget), opt_(std::move(opt)), board_(board) {}

Result<std::unique_ptr<Uploader>> Uploader::create(Env* env, StateStore* store,
                                                   replication::Governor* gov, PageBudget* budget,
                                                   TierOptions opt, UploadBoard* board) {
  std::unique_ptr<Uploader> u(new Uploader(env, store, gov, budget, std::move(opt), board));
  for (int i = 0; i < std::clamp(u->opt_.uploads, 1, 8); ++i) {
    auto c = objstore::S3Client::make(u->opt_.s3);
    if (!c) return c.status();
    auto w = std::make_unique<Worker>();
    w->index = i;
    w->client = std::move(c).value();
    u->workers_.push_back(std::move(w));
  }
  return u;
}

Uploader::~Uploader() { stop(); }

void Uploader::start() {
  board_->set_state("idle");
  // The holds in force before any upload: a held recording goes up with its
  // legal hold from the first upload on.
  if (auto list = store_->holds().list()) holds_ = HoldSet(*list);
  for (auto& w : workers_) w->thread = std::thread([this, p = w.get()] { main(*p); });
}

void Uploader::stop() {
  if (stopped_) return;
  stopped_ = true;
  stop_.stop();
  store_->queue().doorbell().ring();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  std::lock_guard<std::mutex> l(mu_);
  prefetch_.clear();  // waits for digests in progress (they stop at stop_)
  board_->set_state("stopped");
}

void Uploader::main(Worker& w) {
  name_this_thread("rs-upload");
  auto lg = log::get("objstore");
  Doorbell& bell = store_->queue().doorbell();
  const Backoff backoff{opt_.retry_floor.count(), opt_.retry_max.count(), 0.25};
  while (!stop_.stopped()) {
    const uint64_t seen = bell.count();
    const Step s = step(w);
    if (s == Step::kStoreFailed) {
      const int64_t d = backoff.delay_ms(w.failures++, w.rng);
      lg->debug("object store: worker {} retrying in {} ms", w.index, d);
      if (stop_.sleep_for(std::chrono::milliseconds(d))) break;
      continue;
    }
    if (s == Step::kIdle) bell.wait_for(seen, std::chrono::seconds(1));
  }
}

std::optional<QueueItem> Uploader::claim(const std::vector<QueueItem>& batch, Worker& w) {
  std::lock_guard<std::mutex> l(mu_);
  std::optional<QueueItem> mine;
  w.upcoming.reset();
  for (const QueueItem& q : batch) {
    if (in_flight_.count(q.rel)) continue;
    if (!mine) {
      mine = q;
      in_flight_.insert(q.rel);
    } else if (!prefetch_.count(q.rel)) {
      w.upcoming = q;
      break;
    }
  }
  return mine;
}

void Uploader::release(const std::string& rel) {
  {
    std::lock_guard<std::mutex> l(mu_);
    in_flight_.erase(rel);
  }
  board_->end(rel);
}

Uploader::Step Uploader::step(Worker& w) {
  if (w.index == 0) {
    const bool due = to_ms(env_->now()) - holds_synced_ms_ >= kHoldCheckMs;
    S3Status hs = sync_holds(w, due);
    if (!hs) {
      count_error(hs);
      if (store_wide(hs.kind())) return Step::kStoreFailed;
    }
  }
  auto batch = store_->queue().batch(kStoreDestination, to_ms(env_->now()),
                                     opt_.live_window.count(), workers_.size() * 2 + 1);
  if (!batch) {
    log::get("objstore")->error("upload queue: {}", batch.status().message());
    return Step::kStoreFailed;  // the database: back off as well
  }
  std::optional<QueueItem> q = claim(*batch, w);
  if (!q) {
    if (batch->empty()) board_->idle();
    return Step::kIdle;
  }
  S3Status st = upload_one(w, *q);
  release(q->rel);
  Step r = finish_entry(w, *q, st);
  if (workers_.size() > 1) store_->queue().doorbell().ring();  // an idle worker may go on
  return r;
}

Uploader::Step Uploader::finish_entry(Worker& w, const QueueItem& q, const S3Status& st) {
  auto lg = log::get("objstore");
  if (st.is_ok()) {
    w.failures = 0;
    w.last_logged.clear();
    board_->store_ok(to_ms(env_->now()));
    return Step::kWorked;
  }
  if (st.kind() == ErrorKind::kAborted) {
    // Stopping, or starved by live traffic on the governor: not an error.
    if (!stop_.stopped()) lg->debug("upload of {} paused for bandwidth; retrying", q.rel);
    return Step::kWorked;
  }
  count_error(st);
  if (store_wide(st.kind())) {
    board_->set_state(st.kind() == ErrorKind::kAuth ? "refused" : "backoff");
    if (st.message() != w.last_logged) {
      lg->warn("object store: {} (uploads wait, retrying with backoff)", st.message());
      w.last_logged = st.message();
    }
    return Step::kStoreFailed;
  }
  w.failures = 0;  // the store answered; this file is the problem
  lg->warn("upload of {} failed: {}", q.rel, st.message());
  defer(w, q, st.message());
  return Step::kWorked;
}

void Uploader::defer(Worker& w, const QueueItem& q, const std::string& why) {
  const Backoff retry{5000, opt_.retry_max.count(), 0.25};
  const int64_t d = retry.delay_ms(q.attempts, w.rng);
  if (Status s = store_->queue().defer(kStoreDestination, q.rel, to_ms(env_->now()) + d, why); !s)
    log::get("objstore")->error("could not record the failed upload of {}: {}", q.rel, s.message());
}

void Uploader::count_error(const S3Status& st) {
  std::string kind = objstore::error_kind_name(st.kind());
  if (st.s3_code() == "Conflict") kind = "conflict";
  if (st.s3_code() == "Verify") kind = "verify";
  board_->error(kind, st.message(), to_ms(env_->now()));
}

bool Uploader::held(const QueueItem& q) {
  RecordingRow who;
  who.rel = q.rel;
  auto row = store_->recordings().get(q.rel);
  who.name = row && row->has_value() ? (*row)->name : recording_id(path_basename(q.rel));
  std::lock_guard<std::mutex> l(mu_);
  return holds_.held(who);
}

// Drains the hold changes queued for the store, then (when something
// changed, or every kHoldCheckMs) sets or releases legal holds so that
// exactly the held recordings' objects carry one. Worker 0 only.
S3Status Uploader::sync_holds(Worker& w, bool force) {
  bool changed = holds_dirty_;
  for (int i = 0; i < 10000; ++i) {
    auto op = store_->holds().next_op(kStoreDestination);
    if (!op || !op->has_value()) break;
    (void)store_->holds().op_done((*op)->seq);
    changed = true;
  }
  if (!changed && !force) return S3Status::ok();
  auto list = store_->holds().list();
  if (!list) return objstore::s3_error(ErrorKind::kLocal, list.status().message());
  {
    std::lock_guard<std::mutex> l(mu_);
    holds_ = HoldSet(*list);
  }
  holds_dirty_ = true;
  if (opt_.object_lock) {
    std::map<std::string, ObjectRow> want;
    for (const HoldRow& h : *list)
      if (auto rows = store_->objects().find(h.target))
        for (ObjectRow& o : *rows) want.emplace(o.rel, std::move(o));
    auto have = store_->objects().legally_held();
    if (!have) return objstore::s3_error(ErrorKind::kLocal, have.status().message());
    for (auto& [rel, o] : want)
      if (!o.legal_hold) RECSYNC_RETURN_IF_S3_ERROR(set_legal_hold(w, o, true));
    for (const ObjectRow& o : *have)
      if (!want.count(o.rel)) RECSYNC_RETURN_IF_S3_ERROR(set_legal_hold(w, o, false));
  }
  holds_dirty_ = false;
  holds_synced_ms_ = to_ms(env_->now());
  return S3Status::ok();
}

S3Status Uploader::set_legal_hold(Worker& w, const ObjectRow& o, bool on) {
  S3Status st = w.client->put_legal_hold(o.key, on, o.version_id);
  if (st.kind() == ErrorKind::kNotFound) {
    // Deleted behind our back (an operator, another node): forget it.
    log::get("objstore")->warn("object {} is gone from the store; dropped from the index", o.key);
    (void)store_->objects().remove(o.rel);
    return S3Status::ok();
  }
  if (!st) return st;
  if (Status s = store_->objects().set_legal_hold(o.rel, on); !s)
    return objstore::s3_error(ErrorKind::kLocal, s.message());
  board_->legal_hold(on);
  log::get("objstore")
      ->info("legal hold {} on s3://{}/{}", on ? "set" : "released", opt_.s3.bucket, o.key);
  return S3Status::ok();
}

}  // namespace recsync::objtier
