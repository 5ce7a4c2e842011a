#include "scrub/scrubber.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "recsync/clock.h"
#include "recsync/hash.h"
#include "recsync/names.h"
#include "recsync/publish.h"
#include "recsync/thread_name.h"
#include "retention/audit_log.h"

namespace recsync::scrub {
namespace {

using json = nlohmann::json;

constexpr size_t kBatch = 16;  // rows read from the index at a time
constexpr size_t kReadSize = 256 << 10;
constexpr int64_t kFollowEveryMs = 2000;  // open repairs are looked at this often
constexpr const char* kBadPrefix = ".recsync-bad.";
constexpr int kPruneWaitMs = 10 * 60 * 1000;

std::optional<int64_t> meta_int(Db& db, const char* key) {
  auto v = db.get_meta(key);
  if (!v || !v->has_value() || (*v)->empty()) return std::nullopt;
  return std::strtoll((*v)->c_str(), nullptr, 10);
}

json counts_json(const Counts& c) {
  json e = json::object();
  for (Kind k : kErrorKinds) e[kind_name(k)] = c.errors[static_cast<int>(k)];
  return {{"files", c.files}, {"bytes", c.bytes}, {"skipped", c.skipped}, {"errors", e}};
}

Counts counts_from(const json& j) {
  Counts c;
  if (!j.is_object()) return c;
  c.files = j.value("files", uint64_t{0});
  c.bytes = j.value("bytes", uint64_t{0});
  c.skipped = j.value("skipped", uint64_t{0});
  if (j.contains("errors") && j["errors"].is_object())
    for (Kind k : kErrorKinds)
      c.errors[static_cast<int>(k)] = j["errors"].value(kind_name(k), uint64_t{0});
  return c;
}

json finding_store_json(const Finding& f) {
  return {{"kind", kind_name(f.kind)},
          {"rel", f.rel},
          {"origin", f.origin},
          {"origin_rel", f.origin_rel},
          {"hash", f.hash},
          {"size", f.size},
          {"rec_time_ms", f.rec_time_ms},
          {"found_ms", f.found_ms},
          {"detail", f.detail},
          {"aside", f.aside},
          {"repair", f.repair}};
}

Finding finding_from(const json& j) {
  Finding f;
  const std::string k = j.value("kind", "");
  for (Kind x : kErrorKinds)
    if (k == kind_name(x)) f.kind = x;
  f.rel = j.value("rel", "");
  f.origin = j.value("origin", "");
  f.origin_rel = j.value("origin_rel", "");
  f.hash = j.value("hash", "");
  f.size = j.value("size", uint64_t{0});
  f.rec_time_ms = j.value("rec_time_ms", int64_t{0});
  f.found_ms = j.value("found_ms", int64_t{0});
  f.detail = j.value("detail", "");
  f.aside = j.value("aside", "");
  f.repair = j.value("repair", "");
  return f;
}

}  // namespace

replication::RepairRef Scrubber::ref_of(const Finding& f) const {
  return {f.origin_rel, f.origin == kLocalOrigin ? node_ : f.origin, f.hash, f.size};
}

uint64_t Counts::error_total() const {
  uint64_t n = 0;
  for (uint64_t e : errors) n += e;
  return n;
}

Scrubber::Scrubber(Env* env, StateStore* store, std::string archive_root, std::string node,
                   replication::RepairRequests* repairs, Settings s)
    : env_(env),
      store_(store),
      root_(std::move(archive_root)),
      node_(std::move(node)),
      repairs_(repairs),
      s_(std::move(s)),
      pacer_(s_.rate_bps) {
  load();
}

Scrubber::~Scrubber() { stop(); }

void Scrubber::start() {
  thread_ = std::thread([this] { run(); });
}

void Scrubber::stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_.stop();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Scrubber::set_settings(Settings s) {
  std::lock_guard<std::mutex> l(mu_);
  s_ = std::move(s);
  pacer_.set_rate(s_.rate_bps);
  cv_.notify_all();
}

void Scrubber::start_pass(bool unpaced) {
  std::lock_guard<std::mutex> l(mu_);
  start_requested_ = true;
  unpaced_ = unpaced_ || unpaced;
  cv_.notify_all();
}

void Scrubber::load() {
  Db& db = store_->db();
  last_start_ms_ = meta_int(db, "scrub.last_start_ms");
  last_end_ms_ = meta_int(db, "scrub.last_end_ms");
  pass_start_ms_ = meta_int(db, "scrub.pass_start_ms");
  // The first background pass comes one interval after the first start, not
  // at once (no read storm when the daemon is installed on a full archive).
  since_ms_ = meta_int(db, "scrub.since_ms").value_or(0);
  if (since_ms_ == 0) {
    since_ms_ = to_ms(env_->now());
    (void)db.set_meta("scrub.since_ms", std::to_string(since_ms_));
  }
  if (auto v = db.get_meta("scrub.last"); v && v->has_value())
    last_ = counts_from(json::parse(**v, nullptr, false));
  if (auto v = db.get_meta("scrub.cursor"); v && v->has_value()) cursor_ = parse_cursor(**v);
  if (cursor_) {
    running_ = true;  // resumes the pass a restart interrupted
    if (auto v = db.get_meta("scrub.pass"); v && v->has_value())
      pass_ = counts_from(json::parse(**v, nullptr, false));
  }
  if (auto v = db.get_meta("scrub.open"); v && v->has_value()) {
    json a = json::parse(**v, nullptr, false);
    if (a.is_array())
      for (const json& j : a) open_.push_back(finding_from(j));
  }
}

// Caller holds mu_.
void Scrubber::save_pass() {
  Db& db = store_->db();
  Status s = db.set_meta("scrub.cursor", cursor_ ? cursor_text(*cursor_) : "");
  if (s) s = db.set_meta("scrub.pass", counts_json(pass_).dump());
  if (s)
    s = db.set_meta("scrub.pass_start_ms", pass_start_ms_ ? std::to_string(*pass_start_ms_) : "");
  if (s)
    s = db.set_meta("scrub.last_start_ms", last_start_ms_ ? std::to_string(*last_start_ms_) : "");
  if (s) s = db.set_meta("scrub.last_end_ms", last_end_ms_ ? std::to_string(*last_end_ms_) : "");
  if (s) s = db.set_meta("scrub.last", counts_json(last_).dump());
  if (!s) lg_->warn("position not saved: {}", s.message());
}

// Caller holds mu_.
void Scrubber::save_open() {
  json a = json::array();
  for (const Finding& f : open_) a.push_back(finding_store_json(f));
  if (Status s = store_->db().set_meta("scrub.open", a.dump()); !s)
    lg_->warn("findings not saved: {}", s.message());
}

void Scrubber::run() {
  name_this_thread("rs-scrub");
  follow_repairs(/*rerequest_all=*/true);
  int64_t followed = steady_ms();
  while (!stop_.stopped()) {
    bool running = false;
    {
      std::unique_lock<std::mutex> l(mu_);
      const int64_t now = to_ms(env_->now());
      if (!running_ && (start_requested_ ||
                        pass_due(s_.interval.count(), last_start_ms_.value_or(since_ms_), now))) {
        running_ = true;
        cursor_ = Cursor{Recordings::kFirstTime, 0};
        pass_ = {};
        pass_start_ms_ = now;
        save_pass();
        lg_->info("pass started{}", unpaced_ ? " (unpaced)" : "");
      }
      start_requested_ = false;
      running = running_;
    }
    if (running) step_pass();
    if (steady_ms() - followed >= kFollowEveryMs) {
      follow_repairs(false);
      followed = steady_ms();
    }
    if (!running) {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait_for(l, std::chrono::seconds(1),
                   [this] { return stop_.stopped() || start_requested_; });
    }
  }
}

void Scrubber::step_pass() {
  Cursor c;
  bool unpaced = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    c = cursor_.value_or(Cursor{Recordings::kFirstTime, 0});
    unpaced = unpaced_;
  }
  auto rows =
      store_->recordings().older_than(std::numeric_limits<int64_t>::max(), c.time_ms, c.id, kBatch);
  if (!rows) {
    lg_->warn("reading the archive index: {}", rows.status().message());
    stop_.sleep_for(std::chrono::seconds(5));
    return;
  }
  if (rows->empty()) {
    std::lock_guard<std::mutex> l(mu_);
    last_ = pass_;
    last_start_ms_ = pass_start_ms_;
    last_end_ms_ = to_ms(env_->now());
    running_ = unpaced_ = false;
    cursor_.reset();
    pass_start_ms_.reset();
    save_pass();
    lg_->info("pass done: {} files, {} bytes checked, {} damaged, {} skipped", last_.files,
              last_.bytes, last_.error_total(), last_.skipped);
    return;
  }
  for (const RecordingRow& r : *rows) {
    uint64_t bytes = 0;
    bool skipped = false;
    Finding f = check(r, !unpaced, &bytes, &skipped);
    if (stop_.stopped()) break;  // the cursor stays before r: checked again after a restart
    {
      std::lock_guard<std::mutex> l(mu_);
      for (Counts* n : {&pass_, &totals_}) {
        n->bytes += bytes;
        (skipped ? n->skipped : n->files)++;
        if (f.kind != Kind::kOk) n->errors[static_cast<int>(f.kind)]++;
      }
      cursor_ = Cursor{r.rec_time_ms, r.id};
    }
    if (f.kind != Kind::kOk) handle(std::move(f));
  }
  std::lock_guard<std::mutex> l(mu_);
  save_pass();
}

Finding Scrubber::check(const RecordingRow& r, bool paced, uint64_t* bytes_read, bool* skipped) {
  Finding f;
  f.rel = r.rel;
  f.origin = r.origin;
  f.origin_rel = r.identity_rel();
  f.hash = r.hash;
  f.size = r.size;
  f.rec_time_ms = r.rec_time_ms;
  if (r.hash.empty()) {  // adopted, never hashed: nothing to compare with
    *skipped = true;
    return f;
  }
  bool exists = true, read_ok = true;
  uint64_t got = 0;
  Hasher h;
  auto file = env_->open_read(path_join(root_, r.rel));
  if (!file) {
    exists = file.status().err() != ENOENT;
    read_ok = false;
    f.detail = file.status().message();
  } else {
    std::vector<uint8_t> buf(kReadSize);
    while (!stop_.stopped()) {
      auto n = (*file)->read(buf.data(), buf.size());
      if (!n) {
        read_ok = false;
        f.detail = n.status().message();
        break;
      }
      if (*n == 0) break;
      h.update(buf.data(), *n);
      got += *n;
      if (paced) {  // pays for what was read: the next read waits
        int64_t wait = 0;
        {
          std::lock_guard<std::mutex> l(mu_);
          wait = pacer_.take(*n, steady_ns());
        }
        if (wait > 0 && stop_.sleep_for(std::chrono::nanoseconds(wait))) break;
      }
    }
    (*file)->drop_cache();
  }
  *bytes_read = got;
  if (stop_.stopped()) {  // interrupted: neither checked nor damaged
    *skipped = true;
    return f;
  }
  const std::string got_hash = read_ok ? h.hex() : "";
  f.kind = classify(r.size, r.hash, exists, read_ok, got, got_hash);
  if (f.kind == Kind::kOk) return f;
  // The pruner unlinks a batch before it removes the rows: let its pass end
  // (at most kPruneWait) before a missing file counts.
  if (f.kind == Kind::kMissing && pruning_)
    for (int i = 0; i < kPruneWaitMs / 200 && pruning_(); ++i)
      if (stop_.sleep_for(std::chrono::milliseconds(200))) break;
  // Confirm against the index: a row pruned, moved or replaced meanwhile is
  // not damage.
  auto now = store_->recordings().get(r.rel);
  if (!now || !now->has_value() || (*now)->hash != r.hash || (*now)->size != r.size ||
      (*now)->id != r.id) {
    f.kind = Kind::kOk;
    *skipped = true;
    return f;
  }
  if (f.kind == Kind::kSize)
    f.detail = fmt::format("{} bytes, {} stored", got, r.size);
  else if (f.kind == Kind::kCorrupt)
    f.detail = fmt::format("hash {}, {} stored", got_hash, r.hash);
  else if (f.kind == Kind::kMissing)
    f.detail = "file not found";
  f.found_ms = to_ms(env_->now());
  return f;
}

// Caller holds mu_: f replaces any open finding at its path; saved.
void Scrubber::record_locked(const Finding& f) {
  open_.erase(
      std::remove_if(open_.begin(), open_.end(), [&](const Finding& o) { return o.rel == f.rel; }),
      open_.end());
  open_.push_back(f);
  if (open_.size() > kMaxOpen) open_.erase(open_.begin());
  save_open();
}

// A free hidden name beside f.rel for the bad copy ("" if none of 99 is free).
std::string Scrubber::aside_name(const Finding& f) {
  const std::string dir = path_dirname(f.rel);
  const std::string base = std::string(kBadPrefix) + path_basename(f.rel);
  for (int n = 1; n < 100; ++n) {
    const std::string name = n == 1 ? base : fmt::format("{}.{}", base, n);
    const std::string aside = dir == "." ? name : path_join(dir, name);
    auto st = env_->lstat(path_join(root_, aside));
    if (!st && st.status().err() == ENOENT) return aside;
  }
  return "";
}

// Moves the bad copy at f.rel to f.aside (rename without replacing, folder
// fsync) and drops its row: the recording reads as absent here. Write-ahead:
// the finding, with its aside name, is saved before (handle()), so a crash
// in between is finished by settle_moved() after the restart.
Status Scrubber::move_aside(const Finding& f) {
  if (!f.aside.empty()) {
    RECSYNC_RETURN_IF_ERROR(
        env_->rename_noreplace(path_join(root_, f.rel), path_join(root_, f.aside)));
    RECSYNC_RETURN_IF_ERROR(env_->sync_dir(path_dirname(path_join(root_, f.rel))));
  }
  return store_->recordings().remove(f.rel);
}

void Scrubber::handle(Finding f) {
  lg_->error("{} is damaged ({}): {}", f.rel, kind_name(f.kind), f.detail);
  std::lock_guard<std::mutex> moving(move_mu_);
  std::unique_lock<std::mutex> l(mu_);
  // A pass and `recsync verify NAME` may find the same copy at once: the
  // first one moves it aside, the second leaves it be.
  for (const Finding& o : open_)
    if (o.rel == f.rel && o.repair == "pending") return;
  if (!s_.repair || !repairs_) {
    f.repair = !s_.repair ? "off" : "no peer";  // alarmed only: nothing moves
    record_locked(f);
    return;
  }
  if (f.kind != Kind::kMissing) f.aside = aside_name(f);
  if (f.kind != Kind::kMissing && f.aside.empty()) {
    f.repair = "failed: no free name for the bad copy";
    record_locked(f);
    return;
  }
  f.repair = "pending";
  record_locked(f);  // before the move: a crash in it is finished after the restart
  asked_ms_.erase(ref_of(f).key());
  l.unlock();
  if (Status s = move_aside(f); !s) {
    lg_->error("{}: not repaired: {}", f.rel, s.message());
    f.repair = "failed: " + s.message();
    f.aside.clear();
    l.lock();
    record_locked(f);
    return;
  }
  lg_->warn("{}: asking the peers for a good copy{}", f.rel,
            f.aside.empty() ? "" : " (the bad copy is kept as " + f.aside + ")");
}

// After a crash between saving a pending finding and moving its copy aside
// (see move_aside): the row still names the bad copy. Finishes the move.
void Scrubber::settle_moved(const Finding& f, const RecordingRow& row) {
  if (row.rel != f.rel) return;
  const bool at_place = env_->lstat(path_join(root_, f.rel)).is_ok();
  const bool aside = !f.aside.empty() && env_->lstat(path_join(root_, f.aside)).is_ok();
  Status s;
  if (at_place && !aside && !f.aside.empty())
    s = move_aside(f);  // never moved
  else if (!at_place)
    s = store_->recordings().remove(f.rel);  // moved (or missing); the row stayed
  else
    return;  // both there: leave it to the operator (the alarm stays)
  lg_->info("{}: interrupted repair resumed{}", f.rel, s ? "" : ": " + s.message());
}

// The recording is back with the stored hash: read it again, audit, and
// remove the bad copy. False while it is not back (or reads wrong).
bool Scrubber::repaired(Finding& f) {
  auto row = store_->recordings().find_identity(f.origin_rel, f.origin);
  if (!row || !row->has_value() || (*row)->hash != f.hash) return false;
  const std::string rel = (*row)->rel;
  auto h = hash_file(env_, path_join(root_, rel));
  if (!h || *h != f.hash) {
    if (rel == f.rel)
      settle_moved(f, **row);
    else
      lg_->warn("{}: the copy received reads {}: still damaged", rel,
                h ? *h : h.status().message());
    return false;
  }
  AuditRow a{
      f.aside.empty() ? f.rel : f.aside,         f.size, f.hash, f.rec_time_ms, to_ms(env_->now()),
      std::string("repair ") + kind_name(f.kind)};
  std::string audit_path;
  {
    std::lock_guard<std::mutex> l(mu_);
    audit_path = s_.audit_log_path;
  }
  auto log = AuditLog::open(env_, audit_path);
  Status s = log ? log->append({a}) : log.status();
  if (s) s = store_->audit().append({a});
  if (!s) {
    lg_->warn("{}: repair not audited yet: {}", rel, s.message());
    return false;
  }
  if (!f.aside.empty()) {
    if (Status u = env_->unlink(path_join(root_, f.aside)); !u && u.err() != ENOENT)
      lg_->warn("{}: bad copy not removed: {}", f.aside, u.message());
    (void)env_->sync_dir(path_dirname(path_join(root_, f.aside)));
  }
  lg_->info("{} repaired from a peer ({}, {} bytes, {})", rel, kind_name(f.kind), f.size, f.hash);
  f.rel = rel;
  return true;
}

void Scrubber::follow_repairs(bool rerequest_all) {
  if (!repairs_) return;
  std::vector<Finding> pending;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const Finding& f : open_)
      if (f.repair == "pending") pending.push_back(f);
  }
  if (pending.empty()) return;
  const int64_t now = steady_ms();
  std::vector<std::string> done;
  bool asked = false;
  for (Finding& f : pending) {
    const replication::RepairRef ref = ref_of(f);
    bool back = false;
    {
      std::lock_guard<std::mutex> moving(move_mu_);
      back = repaired(f);
    }
    if (back) {
      repairs_->drop(ref);
      done.push_back(ref.key());
      continue;
    }
    std::lock_guard<std::mutex> l(mu_);
    auto it = asked_ms_.find(ref.key());
    if (rerequest_all || it == asked_ms_.end() || now - it->second >= kRerequestMs) {
      repairs_->request(ref);
      asked_ms_[ref.key()] = now;
      asked = true;
    }
  }
  if (asked) store_->queue().doorbell().ring();
  if (done.empty()) return;
  std::lock_guard<std::mutex> l(mu_);
  auto is_done = [&](const Finding& f) {
    return f.repair == "pending" &&
           std::find(done.begin(), done.end(), ref_of(f).key()) != done.end();
  };
  repairs_total_ += std::count_if(open_.begin(), open_.end(), is_done);
  for (const std::string& k : done) asked_ms_.erase(k);
  open_.erase(std::remove_if(open_.begin(), open_.end(), is_done), open_.end());
  save_open();
}

Result<std::vector<Finding>> Scrubber::check_now(const std::vector<std::string>& targets,
                                                 size_t* checked) {
  std::vector<Finding> out;
  *checked = 0;
  for (const std::string& t : targets) {
    auto rows = store_->recordings().find(t);
    if (!rows) return rows.status();
    if (rows->empty()) {
      // Moved aside and waiting for its repair?
      std::lock_guard<std::mutex> l(mu_);
      bool known = false;
      for (const Finding& f : open_)
        if (f.rel == t || recording_id(path_basename(f.rel)) == t) {
          out.push_back(f);
          if (repairs_ && f.repair == "pending") out.back().answers = repairs_->answers(ref_of(f));
          known = true;
        }
      if (!known) return Status::not_found("no recording '" + t + "' in the archive");
      continue;
    }
    for (const RecordingRow& r : *rows) {
      uint64_t bytes = 0;
      bool skipped = false;
      Finding f = check(r, /*paced=*/false, &bytes, &skipped);
      {
        std::lock_guard<std::mutex> l(mu_);
        totals_.bytes += bytes;
        (skipped ? totals_.skipped : totals_.files)++;
        if (f.kind != Kind::kOk) totals_.errors[static_cast<int>(f.kind)]++;
      }
      *checked += !skipped;
      if (f.kind == Kind::kOk) continue;
      handle(f);
      std::lock_guard<std::mutex> l(mu_);
      auto it = std::find_if(open_.rbegin(), open_.rend(),
                             [&](const Finding& o) { return o.rel == f.rel; });
      out.push_back(it != open_.rend() ? *it : f);
    }
  }
  return out;
}

Snapshot Scrubber::snapshot() {
  std::lock_guard<std::mutex> l(mu_);
  Snapshot s;
  s.running = running_;
  s.unpaced = unpaced_;
  s.last_start_ms = running_ ? pass_start_ms_ : last_start_ms_;
  s.last_end_ms = last_end_ms_;
  const int64_t now = to_ms(env_->now());
  s.next_ms =
      running_ ? 0 : next_pass_ms(s_.interval.count(), last_start_ms_.value_or(since_ms_), now);
  s.pass = running_ ? pass_ : last_;
  s.totals = totals_;
  s.repairs_total = repairs_total_;
  s.rate_bps = s_.rate_bps;
  s.interval_ms = s_.interval.count();
  s.repair = s_.repair;
  s.peers = repairs_ != nullptr;
  s.open = open_;
  if (repairs_)
    for (Finding& f : s.open)
      if (f.repair == "pending") f.answers = repairs_->answers(ref_of(f));
  return s;
}

}  // namespace recsync::scrub
