// One upload: read once, HEAD, PUT or resumable multipart, HEAD again
// (uploader.h states the protocol).
#include <optional>

#include "objstore/encoding.h"
#include "objtier/uploader.h"
#include "recsync/clock.h"
#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/thread_name.h"

namespace recsync::objtier {

using objstore::ErrorKind;
using objstore::ObjectInfo;
using objstore::PartRange;
using objstore::s3_error;
using objstore::S3Status;

namespace {

// Gives back the recording's share of the page cache the archiver kept for
// this destination, however the upload ends.
struct GiveBack {
  PageBudget* b;
  uint64_t n;
  ~GiveBack() {
    if (b) b->give_back(n);
  }
};

S3Status local_error(const std::string& what) { return s3_error(ErrorKind::kLocal, what); }

// The object holds exactly this recording: size, the xxh3 metadata and the
// ETag. A multipart ETag depends on the part size its uploader chose (maybe
// another node with another part_size): then size and xxh3 decide.
bool same_content(const ObjectInfo& i, uint64_t size, const std::string& hash,
                  const std::string& etag) {
  auto it = i.metadata.find(kMetaHash);
  if (i.size != size || it == i.metadata.end() || it->second != hash) return false;
  return i.etag == etag || i.etag.find('-') != std::string::npos;
}

std::string describe(const ObjectInfo& i) {
  auto it = i.metadata.find(kMetaHash);
  return std::to_string(i.size) + " bytes, ETag " + i.etag + ", xxh3 " +
         (it == i.metadata.end() ? std::string("none") : it->second);
}

}  // namespace

bool Uploader::erased(const QueueItem& q) {
  auto t = store_->tombstones().get(q.origin_rel.empty() ? q.rel : q.origin_rel,
                                    q.origin.empty() ? kLocalOrigin : q.origin);
  return t && t->has_value() && (*t)->hash == q.hash;
}

S3Status Uploader::upload_one(Worker& w, const QueueItem& q) {
  auto lg = log::get("objstore");
  // Erased (erase/eraser.h): never uploaded.
  if (erased(q)) {
    lg->warn("{} was erased; dropped from the upload queue", q.rel);
    (void)store_->queue().done(kStoreDestination, q.rel, q.hash);
    return S3Status::ok();
  }
  const std::string key = own_key(opt_, q.rel, q.origin_rel);
  GiveBack give_back{budget_, q.size};
  auto f = env_->open_read(path_join(opt_.archive_root, q.rel));
  if (!f && f.status().code() == Status::Code::kNotFound) {
    // Being moved to its qualified path by a name collision (the row names
    // the old path until the move's transaction): looked for again.
    if (auto row = store_->recordings().get(q.rel); row && row->has_value() && q.attempts < 3)
      return local_error(q.rel + " is being moved in the archive");
    // Pruned, erased or removed by hand before it was uploaded.
    lg->warn("{} is no longer in the archive; dropped from the upload queue", q.rel);
    if (auto m = store_->objects().get_upload(q.rel); m && m->has_value())
      (void)w.client->abort_multipart_upload((*m)->key, (*m)->upload_id);
    (void)store_->objects().drop_upload(q.rel);
    (void)store_->queue().done(kStoreDestination, q.rel, q.hash);
    return S3Status::ok();
  }
  if (!f) return local_error(f.status().message());
  const int fd = (*f)->fd();
  auto st = (*f)->stat();
  if (!st) return local_error(st.status().message());
  if (st->size != q.size)
    return local_error(q.rel + ": the archive copy has " + std::to_string(st->size) + " bytes, " +
                       std::to_string(q.size) + " were recorded");
  const bool multipart = q.size >= opt_.multipart_threshold;
  const std::vector<PartRange> parts =
      multipart ? objstore::plan_parts(q.size, opt_.part_size) : std::vector<PartRange>{};
  auto d = digest_of(q, fd, parts);
  if (!d && stop_.stopped()) return s3_error(ErrorKind::kAborted, "stopping");
  if (!d) return local_error(q.rel + ": " + d.status().message());
  prefetch_next(w);
  if (d->hash != q.hash)
    return local_error(q.rel + ": the archive copy's hash " + d->hash + " differs from the " +
                       "recorded " + q.hash + "; not uploaded");
  const std::string etag =
      multipart ? objstore::multipart_etag(d->part_md5) : objstore::hex_lower(d->md5);
  auto head = w.client->head_object(key);
  if (head) {
    if (same_content(*head, q.size, q.hash, etag))
      return verify_and_record(w, key, q, etag, head->legal_hold.value_or(false), true, &*head);
    board_->conflict();
    return s3_error(ErrorKind::kOther,
                    "s3://" + opt_.s3.bucket + "/" + key + " already holds other content (" +
                        describe(*head) + "); not overwritten",
                    0, "Conflict");
  }
  if (head.kind() != ErrorKind::kNotFound) return head.status();
  board_->store_ok(to_ms(env_->now()));

  const bool held = opt_.object_lock && this->held(q);
  objstore::PutOptions po;
  po.metadata = {{kMetaHash, q.hash},
                 {kMetaRecTime, std::to_string(q.mtime_ns / 1'000'000)},
                 {kMetaNode, opt_.node}};
  po.legal_hold = held;
  const auto prio = q.prio == 0 && to_ms(env_->now()) - q.enqueued_ms < opt_.live_window.count()
                        ? replication::Priority::kLive
                        : replication::Priority::kBulk;
  board_->begin(q.rel, q.size, to_ms(env_->now()));
  w.client->set_pacer([this, prio, rel = q.rel](size_t n) { return meter(rel, n, prio); });
  S3Status sent;
  if (!multipart) {
    po.content_md5 = objstore::base64_encode(d->md5);
    sent = w.client->put_object(key, {fd, 0, q.size}, po).status();
  } else {
    sent = upload_parts(w, key, q, fd, parts, *d, po);
  }
  w.client->set_pacer(nullptr);
  if (!sent) return sent;
  return verify_and_record(w, key, q, etag, held, false, nullptr);
}

S3Status Uploader::upload_parts(Worker& w, const std::string& key, const QueueItem& q, int fd,
                                const std::vector<PartRange>& parts, const FileDigest& d,
                                const objstore::PutOptions& po) {
  std::string id;
  std::vector<objstore::Part> stored;
  auto saved = store_->objects().get_upload(q.rel);
  if (!saved) return local_error(saved.status().message());
  if (saved->has_value()) {
    const MultipartRow& m = **saved;
    if (m.key == key && m.hash == q.hash && m.size == q.size && m.part_size == opt_.part_size) {
      auto lp = w.client->list_parts(key, m.upload_id);
      if (lp) {
        id = m.upload_id;
        stored = std::move(lp).value();
      } else if (lp.kind() != ErrorKind::kNotFound) {
        return lp.status();
      }
    } else {
      (void)w.client->abort_multipart_upload(m.key, m.upload_id);
    }
    if (id.empty()) (void)store_->objects().drop_upload(q.rel);
  }
  if (id.empty()) {
    // Uploads of this key we hold no id for: created just before a crash
    // (before their id was saved). Their parts cannot be trusted to be
    // ours, and left alone they would stay in the store: abort them.
    auto orphans = w.client->list_multipart_uploads(key);
    if (!orphans) return orphans.status();
    for (const auto& u : *orphans)
      if (u.key == key) (void)w.client->abort_multipart_upload(key, u.upload_id);
    auto c = w.client->create_multipart_upload(key, po);
    if (!c) return c.status();
    id = c.value();
    // Saved before the first part goes: a crash from here on resumes.
    MultipartRow m{q.rel, key, q.hash, q.size, opt_.part_size, id, to_ms(env_->now())};
    if (Status s = store_->objects().save_upload(m); !s) {
      (void)w.client->abort_multipart_upload(key, id);
      return local_error(s.message());
    }
  }
  std::vector<objstore::LocalPart> local;
  for (size_t i = 0; i < parts.size(); ++i)
    local.push_back({parts[i].number, parts[i].length, objstore::hex_lower(d.part_md5[i])});
  const std::vector<int> send = objstore::parts_to_send(local, stored);
  board_->parts_reused(parts.size() - send.size());
  for (int n : send) {
    const PartRange& p = parts[size_t(n - 1)];
    auto etag = w.client->upload_part(key, id, n, {fd, p.offset, p.length},
                                      objstore::base64_encode(d.part_md5[size_t(n - 1)]));
    if (!etag) return etag.status();
    if (etag.value() != local[size_t(n - 1)].md5_hex)
      return s3_error(ErrorKind::kBadDigest, "part " + std::to_string(n) + " of " + key +
                                                 ": the store's ETag differs from its MD5");
  }
  std::vector<objstore::Part> all;
  for (const auto& l : local) all.push_back({l.number, l.md5_hex, l.length});
  auto done = w.client->complete_multipart_upload(key, id, all);
  // Not found: completed before a crash; the HEAD that follows decides.
  if (!done && done.kind() != ErrorKind::kNotFound) return done.status();
  if (po.legal_hold) {
    // RGW 16.2 ignores the legal hold of CreateMultipartUpload.
    S3Status h = w.client->put_legal_hold(key, true, done ? done->version_id : "");
    if (!h) return h;
  }
  (void)store_->objects().drop_upload(q.rel);
  return S3Status::ok();
}

S3Status Uploader::verify_and_record(Worker& w, const std::string& key, const QueueItem& q,
                                     const std::string& etag, bool held, bool was_present,
                                     const ObjectInfo* present) {
  std::optional<ObjectInfo> info;
  if (present) {
    info = *present;
  } else {
    auto h = w.client->head_object(key);
    if (!h) return h.status();
    info = std::move(h).value();
  }
  if (!same_content(*info, q.size, q.hash, etag) || (!was_present && info->etag != etag)) {
    return s3_error(ErrorKind::kOther,
                    "s3://" + opt_.s3.bucket + "/" + key + ": after the upload the store shows " +
                        describe(*info) + "; expected " + std::to_string(q.size) + " bytes, ETag " +
                        etag + ", xxh3 " + q.hash,
                    0, "Verify");
  }
  ObjectRow o;
  o.rel = q.rel;
  o.key = key;
  auto row = store_->recordings().get(q.rel);
  o.name = row && row->has_value() ? (*row)->name : recording_id(path_basename(q.rel));
  o.size = q.size;
  o.hash = q.hash;
  o.rec_time_ms = q.mtime_ns / 1'000'000;
  o.etag = info->etag;
  o.version_id = info->version_id;
  o.verified_ms = to_ms(env_->now());
  o.legal_hold = held;
  auto node = info->metadata.find(kMetaNode);
  if (was_present && node != info->metadata.end() && node->second != opt_.node)
    o.origin = node->second;
  if (Status s = store_->objects().upsert(o); !s) return local_error(s.message());
  if (erased(q)) {
    // Erased while it was on its way: the eraser deletes the object again.
    (void)store_->tombstones().reopen(q.origin_rel.empty() ? q.rel : q.origin_rel,
                                      q.origin.empty() ? kLocalOrigin : q.origin);
    log::get("objstore")->warn("{} was erased during its upload: the object goes too", q.rel);
  }
  if (opt_.object_lock && !o.legal_hold && this->held(q)) {
    // Held while it was on its way (the hold sync had not seen the object).
    S3Status h = set_legal_hold(w, o, true);
    if (!h) return h;
  }
  (void)store_->objects().drop_upload(q.rel);
  if (Status s = store_->queue().done(kStoreDestination, q.rel, q.hash); !s)
    return local_error(s.message());
  board_->uploaded(q.size, o.verified_ms, was_present);
  auto lg = log::get("objstore");
  if (was_present)
    lg->info("{} is already in the store as s3://{}/{} (same content): not sent again", q.rel,
             opt_.s3.bucket, key);
  else
    lg->info("uploaded {} to s3://{}/{} ({} bytes, verified{})", q.rel, opt_.s3.bucket, key, q.size,
             held ? ", legal hold on" : "");
  return S3Status::ok();
}

Result<FileDigest> Uploader::digest_of(const QueueItem& q, int fd,
                                       const std::vector<PartRange>& parts) {
  std::optional<Prefetch> p;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = prefetch_.find(q.rel);
    if (it != prefetch_.end()) {
      p = std::move(it->second);
      prefetch_.erase(it);
    }
  }
  if (p && p->hash == q.hash) {
    Result<FileDigest> d = p->digest.get();
    if (d) return d;  // else (the file was busy or changed) read it here
  }
  return digest_file(fd, q.size, parts, &stop_.flag());
}

void Uploader::prefetch_next(Worker& w) {
  if (!w.upcoming) return;
  const QueueItem n = *w.upcoming;
  w.upcoming.reset();
  const std::vector<PartRange> parts = n.size >= opt_.multipart_threshold
                                           ? objstore::plan_parts(n.size, opt_.part_size)
                                           : std::vector<PartRange>{};
  const std::string path = path_join(opt_.archive_root, n.rel);
  Env* env = env_;
  const std::atomic<bool>* stop = &stop_.flag();
  std::lock_guard<std::mutex> l(mu_);
  if (prefetch_.count(n.rel) || in_flight_.count(n.rel)) return;
  // Bounded: at most one per worker is kept waiting.
  if (prefetch_.size() >= workers_.size()) return;
  prefetch_[n.rel] = Prefetch{n.hash, std::async(std::launch::async, [env, path, n, parts, stop] {
                                name_this_thread("rs-upload-dg");
                                auto f = env->open_read(path);
                                if (!f) return Result<FileDigest>(f.status());
                                return digest_file((*f)->fd(), n.size, parts, stop);
                              })};
}

bool Uploader::meter(const std::string& rel, size_t n, replication::Priority prio) {
  if (stop_.stopped()) return false;
  if (gov_) {
    uint64_t got = 0;
    std::optional<replication::Governor::Waiter> waiting;
    const int64_t t0 = steady_ns();
    const int64_t max_wait = opt_.max_pacer_wait.count() * 1'000'000;
    while (got < n) {
      const int64_t now = steady_ns();
      got += gov_->grant(prio, n - got, now);
      if (got >= n) break;
      if (!waiting) waiting.emplace(gov_, prio);
      if (now - t0 > max_wait) return false;  // starved by live traffic: retried later
      const int64_t at = gov_->next_available(prio, n - got, now);
      if (stop_.sleep_for(
              std::chrono::nanoseconds(std::clamp<int64_t>(at - now, 100'000, 100'000'000))))
        return false;
    }
  }
  board_->add_sent(rel, n);
  return true;
}

}  // namespace recsync::objtier
