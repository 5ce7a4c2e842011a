// Bringing recordings back from the store: one (recsync fetch ID) or a
// rebuilt node's hot window (recsync fetch --window). See object_tier.h.
#include <ctime>

#include "objtier/object_tier.h"
#include "recsync/clock.h"
#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/publish.h"
#include "state/recordings.h"

namespace recsync::objtier {

using objstore::ErrorKind;
using objstore::S3Status;

namespace {

constexpr mode_t kFileMode = 0640;  // as the archiver's
constexpr mode_t kDirMode = 0750;
constexpr size_t kMaxListed = 1'000'000;

// "YYYY/MM/DD/" of a UTC time (the date layout's folders).
std::string day_folder(int64_t ms) {
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d/%02d/%02d/", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
}

}  // namespace

objstore::S3Result<std::optional<ObjectRow>> ObjectTier::row_from_store(const std::string& key,
                                                                        const std::string& rel) {
  objstore::S3Result<objstore::ObjectInfo> head = [&] {
    std::lock_guard<std::mutex> l(admin_mu_);
    return admin_->head_object(key);
  }();
  if (head.kind() == ErrorKind::kNotFound) return std::optional<ObjectRow>();
  if (!head) return head.status();
  auto meta = [&](const char* k) {
    auto it = head->metadata.find(k);
    return it == head->metadata.end() ? std::string() : it->second;
  };
  ObjectRow o;
  o.rel = rel;
  o.key = key;
  o.name = recording_id(path_basename(rel));
  o.size = head->size;
  o.hash = meta(kMetaHash);
  if (o.hash.empty())
    return objstore::s3_error(ErrorKind::kOther,
                              where(o) + " has no xxh3 metadata (not uploaded by recsync)");
  o.rec_time_ms = static_cast<int64_t>(objstore::parse_u64(meta(kMetaRecTime)).value_or(0));
  o.etag = head->etag;
  o.version_id = head->version_id;
  o.verified_ms = to_ms(env_->now());
  o.legal_hold = head->legal_hold.value_or(false);
  const std::string node = meta(kMetaNode);
  if (!node.empty() && node != opt_.node) o.origin = node;
  return std::optional<ObjectRow>(std::move(o));
}

Result<std::vector<FetchResult>> ObjectTier::fetch(const std::string& id_or_rel) {
  auto rows = store_->objects().find(id_or_rel);
  if (!rows) return rows.status();
  if (rows->empty() && !rel_path_problem(id_or_rel, true)) {
    // Not in the index (a rebuilt node): ask the store for this node's
    // recording of that path.
    auto r = row_from_store(own_key(opt_, id_or_rel, ""), id_or_rel);
    if (!r) return r.status().status();
    if (r->has_value()) rows->push_back(std::move(**r));
  }
  if (rows->empty())
    return Status::not_found("no object for '" + id_or_rel + "' in the object store index");
  std::vector<FetchResult> out;
  for (const ObjectRow& o : *rows) {
    auto f = fetch_one(o);
    if (!f) return f.status();
    out.push_back(std::move(f).value());
  }
  return out;
}

Result<FetchResult> ObjectTier::fetch_one(const ObjectRow& o) {
  if (const char* why = rel_path_problem(o.rel, false))
    return Status::invalid("object index row '" + o.rel + "': " + why);
  FetchResult res{o.rel, o.size, o.hash, false};
  const std::string dest = path_join(opt_.archive_root, o.rel);
  const RecordingRow row = make_recording_row(o.rel, path_basename(o.rel), o.size, o.hash,
                                              o.rec_time_ms, to_ms(env_->now()), o.origin);
  if (auto st = env_->lstat(dest); st) {
    auto h = st->is_reg && st->size == o.size ? hash_file(env_, dest)
                                              : Result<std::string>(std::string());
    if (!h || *h != o.hash)
      return Status::from_errno(EEXIST,
                                dest + " holds another file; not replaced by the store's copy");
    res.already = true;
    if (auto have = store_->recordings().get(o.rel); have && !have->has_value())
      RECSYNC_RETURN_IF_ERROR(store_->recordings().upsert(row));
    return res;
  }
  const std::string dir = path_dirname(dest);
  RECSYNC_RETURN_IF_ERROR(env_->mkdirs(dir, kDirMode));
  const std::string tmp = temp_path_for(dir, path_basename(o.rel));
  Status s = [&]() -> Status {
    auto f = env_->create_excl(tmp, kFileMode);
    if (!f) return f.status();
    objstore::S3Result<objstore::GetResult> g = [&] {
      std::lock_guard<std::mutex> l(admin_mu_);
      return admin_->get_object(o.key, **f, o.version_id);
    }();
    if (!g) return g.status().status();
    if (g->bytes_written != o.size)
      return Status::corrupt(where(o) + ": got " + std::to_string(g->bytes_written) +
                             " bytes, the index says " + std::to_string(o.size));
    RECSYNC_RETURN_IF_ERROR((*f)->set_mtime_ns(o.rec_time_ms * 1'000'000));
    return (*f)->sync();
  }();
  if (s) {
    // Read back from the disk: what was written is what was uploaded.
    auto h = hash_file(env_, tmp);
    if (!h)
      s = h.status();
    else if (*h != o.hash)
      s = Status::corrupt(where(o) + ": the copy's hash " + *h + " is not the recorded " + o.hash);
  }
  Result<Published> pub = s ? publish_noreplace(env_, tmp, opt_.archive_root, o.rel, o.size, o.hash)
                            : Result<Published>(s);
  if (!pub) {
    (void)env_->unlink(tmp);
    return pub.status();
  }
  RecordingRow r = row;
  r.rel = pub->rel;
  RECSYNC_RETURN_IF_ERROR(store_->recordings().upsert(r));
  res.rel = pub->rel;
  res.already = pub->already;
  log::get("objstore")
      ->info("fetched {} from {} ({} bytes, hash verified)", pub->rel, where(o), o.size);
  return res;
}

Result<WindowReport> ObjectTier::fetch_window() {
  WindowReport rep;
  const int64_t now = to_ms(env_->now());
  const int64_t local_cutoff = now - opt_.keep_local.count();
  std::vector<std::string> prefixes;
  if (opt_.layout == "date" && opt_.keep.count() > 0) {
    // One listing per day folder within keep (and tomorrow: clocks differ).
    for (int64_t t = now - opt_.keep.count() - 86'400'000; t <= now + 86'400'000; t += 86'400'000)
      prefixes.push_back(object_key(opt_.prefix, opt_.node, day_folder(t)));
  } else {
    prefixes.push_back(object_key(opt_.prefix, opt_.node, ""));
  }
  const std::string own = object_key(opt_.prefix, opt_.node, "");
  auto lg = log::get("objstore");
  for (const std::string& p : prefixes) {
    objstore::S3Result<objstore::VersionListing> list = [&] {
      std::lock_guard<std::mutex> l(admin_mu_);
      return admin_->list_object_versions(p, kMaxListed);
    }();
    if (!list) return list.status().status().with_context("listing " + p);
    if (list->truncated)
      lg->warn("listing {}: more than {} entries; the rest is skipped", p, kMaxListed);
    for (const objstore::ObjectVersion& v : list->versions) {
      if (!v.is_latest || v.is_delete_marker || v.key.size() <= own.size()) continue;
      const std::string rel = v.key.substr(own.size());
      if (rel_path_problem(rel, true)) continue;
      auto row = row_from_store(v.key, rel);
      if (!row || !row->has_value()) {
        rep.errors += !row;
        if (!row) rep.last_error = row.status().message();
        continue;
      }
      ObjectRow o = std::move(**row);
      if (o.origin != "local") {
        rep.other_nodes++;
        continue;
      }
      rep.listed++;
      if (opt_.keep.count() > 0 && o.rec_time_ms < now - opt_.keep.count()) continue;
      RECSYNC_RETURN_IF_ERROR(store_->objects().upsert(o));
      rep.indexed++;
      if (o.rec_time_ms < local_cutoff) continue;
      auto f = fetch_one(o);
      if (!f) {
        rep.errors++;
        rep.last_error = f.status().message();
        continue;
      }
      (f->already ? rep.already : rep.fetched)++;
      if (!f->already) rep.fetched_bytes += o.size;
    }
  }
  lg->info(
      "fetch --window: {} objects of this node listed, {} indexed, {} fetched ({} bytes), "
      "{} already here, {} of other nodes left alone, {} errors",
      rep.listed, rep.indexed, rep.fetched, rep.fetched_bytes, rep.already, rep.other_nodes,
      rep.errors);
  return rep;
}

}  // namespace recsync::objtier
