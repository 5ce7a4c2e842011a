#include "objtier/object_tier.h"

#include "recsync/clock.h"
#include "recsync/log.h"
#include "recsync/names.h"

namespace recsync::objtier {

using objstore::ErrorKind;
using objstore::S3Status;

namespace {

// A status for callers outside the tier: the S3 kind decides the code
// (s3_error.h), kLocked becomes kRefused.
Status to_status(const S3Status& s) { return s.is_ok() ? Status::ok() : s.status(); }

}  // namespace

ObjectTier::ObjectTier(Env* env, StateStore* store, TierOptions opt)
    : env_(env), store_(store), opt_(std::move(opt)) {}

ObjectTier::~ObjectTier() { stop(); }

Result<std::unique_ptr<ObjectTier>> ObjectTier::create(Env* env, StateStore* store,
                                                       replication::Governor* gov,
                                                       PageBudget* budget, TierOptions opt) {
  std::unique_ptr<ObjectTier> t(new ObjectTier(env, store, std::move(opt)));
  auto admin = objstore::S3Client::make(t->opt_.s3);
  if (!admin) return admin.status().with_context("object_store");
  t->admin_ = std::move(admin).value();
  auto up = Uploader::create(env, store, gov, budget, t->opt_, &t->board_);
  if (!up) return up.status().with_context("object_store");
  t->uploader_ = std::move(up).value();
  return t;
}

void ObjectTier::start() {
  started_ = true;
  log::get("objstore")
      ->info("object store tier: s3://{}/{} at {}, keep_local {}, object lock {}", opt_.s3.bucket,
             opt_.prefix, opt_.s3.endpoint, format_duration(opt_.keep_local),
             opt_.object_lock ? "on" : "off");
  uploader_->start();
}

void ObjectTier::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (uploader_) uploader_->stop();
}

TierStatus ObjectTier::status() {
  TierStatus t;
  t.endpoint = opt_.s3.endpoint;
  t.bucket = opt_.s3.bucket;
  t.prefix = opt_.prefix;
  t.object_lock = opt_.object_lock;
  t.keep_local_ms = opt_.keep_local.count();
  t.upload_warn_ms = opt_.upload_warn.count();
  t.upload = board_.snapshot(steady_ns());
  if (auto q = store_->queue().stats(kStoreDestination)) t.queue = *q;
  if (auto o = store_->objects().stats()) t.objects = *o;
  if (auto u = store_->objects().uploads()) t.multipart_in_progress = u->size();
  return t;
}

std::string ObjectTier::where(const ObjectRow& o) const {
  return "s3://" + opt_.s3.bucket + "/" + (o.key.empty() ? own_key(opt_, o.rel, "") : o.key);
}

// Lists and deletes until nothing of key is left (a version written while
// we delete shows in the next listing); bounded.
S3Status ObjectTier::delete_versions_locked(const std::string& key) {
  for (int round = 0; round < 5; ++round) {
    auto list = admin_->list_object_versions(key, 10000);
    if (!list) return list.status();
    bool any = false;
    for (const objstore::ObjectVersion& v : list->versions) {
      if (v.key != key) continue;  // the prefix also matches longer keys
      any = true;
      auto d = admin_->delete_object(key, v.version_id);
      if (!d && d.kind() != ErrorKind::kNotFound) return d.status();
    }
    if (!any) return S3Status::ok();
  }
  return objstore::s3_error(ErrorKind::kOther, "s3://" + opt_.s3.bucket + "/" + key +
                                                   ": versions keep appearing while deleting");
}

Status ObjectTier::delete_every_version(const ObjectRow& o) {
  const std::string key = o.key.empty() ? own_key(opt_, o.rel, "") : o.key;
  std::lock_guard<std::mutex> l(admin_mu_);
  S3Status s = delete_versions_locked(key);
  if (s.kind() == ErrorKind::kLocked)
    return Status::refused(where(o) + " is protected by Object Lock: " + s.message());
  return to_status(s);
}

std::unordered_set<std::string> ObjectTier::verify_in_store(const std::vector<RecordingRow>& rows,
                                                            size_t max_checks) {
  std::unordered_set<std::string> found;
  auto lg = log::get("objstore");
  size_t checked = 0;
  for (const RecordingRow& r : rows) {
    if (checked++ >= max_checks || r.hash.empty()) continue;
    auto row = row_from_store(key_of(opt_, r), r.rel);
    if (!row) {
      lg->warn("checking {} in the store: {}", r.rel, row.status().message());
      if (row.kind() != ErrorKind::kOther) break;  // the store is down: next pass
      continue;
    }
    auto known = store_->objects().get(r.rel);
    const bool indexed = known && known->has_value();
    if (!row->has_value() || (*row)->size != r.size || (*row)->hash != r.hash) {
      if (indexed) {
        lg->warn(
            "{}: the store no longer holds its object as indexed ({}); dropped from the index, "
            "the local copy stays",
            r.rel, row->has_value() ? "other content" : "gone");
        (void)store_->objects().remove(r.rel);
      }
      continue;  // a peer's copy not uploaded (yet) by its origin, or changed
    }
    ObjectRow o = std::move(**row);
    o.name = r.name;
    if (indexed) {  // keep what the uploader knew (legal hold, origin)
      o.legal_hold = (*known)->legal_hold || o.legal_hold;
      o.origin = (*known)->origin;
    }
    if (Status s = store_->objects().upsert(o); !s) {
      lg->error("{}", s.message());
      break;
    }
    if (!indexed) board_.peer_copy_verified();
    found.insert(r.rel);
  }
  return found;
}

Status ObjectTier::erase(const std::string& rel) {
  auto holds = store_->holds().list();
  if (!holds) return holds.status();
  RecordingRow r;
  r.rel = rel;
  r.name = recording_id(path_basename(rel));
  if (auto row = store_->objects().get(rel); row && row->has_value()) r.name = (*row)->name;
  if (HoldSet(*holds).held(r)) return Status::refused(rel + " is held; release the hold first");
  ObjectRow o;
  o.rel = rel;
  if (auto known = store_->objects().get(rel); known && known->has_value())
    o.key = (*known)->key;
  else if (auto rec = store_->recordings().get(rel); rec && rec->has_value())
    o.key = key_of(opt_, **rec);
  else
    o.key = own_key(opt_, rel, "");
  RECSYNC_RETURN_IF_ERROR(delete_every_version(o));
  RECSYNC_RETURN_IF_ERROR(store_->objects().remove(rel));
  log::get("objstore")->info("erased {} (every version)", where(o));
  return Status::ok();
}

}  // namespace recsync::objtier
