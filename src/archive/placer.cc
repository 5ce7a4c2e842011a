#include "archive/placer.h"

#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/publish.h"

namespace recsync {

Result<std::optional<Identity>> Placer::occupant(const std::string& rel) {
  auto row = store_->recordings().get(rel);
  if (!row) return row.status();
  if (row->has_value() && !(*row)->hash.empty()) {
    const RecordingRow& r = **row;
    return std::optional<Identity>(Identity{node_of(r.origin), r.identity_rel(), r.hash});
  }
  // No row (adopted but not indexed yet, or the index lost it) or no hash:
  // the file itself; a qualified name says whose it is, a plain one is ours
  // unless its row says otherwise.
  auto st = env_->lstat(path_join(root_, rel));
  if (!st) {
    // A qualified form of a name near NAME_MAX cannot exist, so is free.
    if (st.status().code() == Status::Code::kNotFound || st.status().err() == ENAMETOOLONG)
      return std::optional<Identity>();
    return st.status();
  }
  auto h = hash_file(env_, path_join(root_, rel));
  if (!h) return h.status();
  Identity id{self_, rel, *h};
  if (row->has_value()) {
    id.origin = node_of((*row)->origin);
    id.origin_rel = (*row)->identity_rel();
  } else if (auto q = parse_qualified_rel(rel)) {
    id.origin = q->origin;
    id.origin_rel = q->origin_rel;
  }
  return std::optional<Identity>(std::move(id));
}

Status Placer::publish_at(const std::string& tmp, const std::string& rel) {
  const std::string path = path_join(root_, rel);
  RECSYNC_RETURN_IF_ERROR(env_->mkdirs(path_dirname(path), 0750));
  return env_->rename_noreplace(tmp, path);
}

Result<Placed> Placer::place(const std::string& tmp, const Identity& id, const Record& record) {
  std::lock_guard<std::mutex> l(mu_);
  auto erased =
      store_->tombstones().get(id.origin_rel, id.origin == self_ ? kLocalOrigin : id.origin);
  if (!erased) return erased.status();
  if (erased->has_value() && (id.hash.empty() || (*erased)->hash == id.hash)) {
    (void)env_->unlink(tmp);
    log::get("archive")->warn("{} from {} was erased here: not published", id.origin_rel,
                              id.origin);
    return Status::refused("erased (tombstone): " + id.origin_rel + " from " + id.origin +
                           " is not published again");
  }
  auto placed = place_locked(tmp, id);
  if (!placed) return placed;
  RECSYNC_RETURN_IF_ERROR(env_->sync_dir(path_dirname(path_join(root_, placed->rel))));
  RECSYNC_RETURN_IF_ERROR(record(*placed));
  return placed;
}

Result<Placed> Placer::place_locked(const std::string& tmp, const Identity& id) {
  auto lg = log::get("archive");
  const std::string& plain = id.origin_rel;
  auto occ = occupant(plain);
  if (!occ) return occ.status();
  Placed out;
  out.action = decide_placement(id, *occ);
  switch (out.action) {
    case PlaceAction::kFree:
      out.rel = plain;
      RECSYNC_RETURN_IF_ERROR(publish_at(tmp, plain));
      return out;
    case PlaceAction::kSame:
      out.rel = plain;
      out.already = true;
      (void)env_->unlink(tmp);
      return out;
    case PlaceAction::kConflict:
      conflicts_++;
      lg->error("conflict: {} from {} ({}) differs from the copy here ({}); neither is replaced",
                plain, id.origin, id.hash, (*occ)->hash);
      (void)env_->unlink(tmp);
      return Status::conflict("conflict: " + plain + " from " + id.origin +
                              " differs from the copy here");
    case PlaceAction::kTakeOver: {
      collisions_++;
      const std::string moved = qualified_rel(plain, (*occ)->origin);
      RECSYNC_RETURN_IF_ERROR(
          env_->rename_noreplace(path_join(root_, plain), path_join(root_, moved)));
      RECSYNC_RETURN_IF_ERROR(env_->sync_dir(path_dirname(path_join(root_, plain))));
      RECSYNC_RETURN_IF_ERROR(store_->queue().move_recording(plain, moved));
      lg->warn("name collision at {}: {}'s recording moved to {}, {}'s takes the name", plain,
               (*occ)->origin, moved, id.origin);
      out.rel = plain;
      RECSYNC_RETURN_IF_ERROR(publish_at(tmp, plain));
      return out;
    }
    case PlaceAction::kQualified: {
      collisions_++;
      out.rel = qualified_rel(plain, id.origin);
      auto there = occupant(out.rel);
      if (!there) return there.status();
      if (*there && (*there)->hash == id.hash) {
        out.already = true;
        (void)env_->unlink(tmp);
        return out;
      }
      if (*there) {
        conflicts_++;
        (void)env_->unlink(tmp);
        return Status::conflict("conflict: " + out.rel + " holds other content");
      }
      lg->warn("name collision at {}: {}'s recording keeps the name, {}'s goes to {}", plain,
               (*occ)->origin, id.origin, out.rel);
      RECSYNC_RETURN_IF_ERROR(publish_at(tmp, out.rel));
      return out;
    }
  }
  return Status::invalid("placement: unknown action");
}

Result<std::string> Placer::relocate(const std::string& rel, const Identity& id) {
  std::lock_guard<std::mutex> l(mu_);
  auto lg = log::get("archive");
  const std::string& plain = id.origin_rel;
  auto occ = occupant(plain);
  if (!occ) return occ.status();
  std::string to;
  switch (decide_placement(id, *occ)) {
    case PlaceAction::kFree:
      to = plain;
      break;
    case PlaceAction::kTakeOver: {
      const std::string moved = qualified_rel(plain, (*occ)->origin);
      RECSYNC_RETURN_IF_ERROR(
          env_->rename_noreplace(path_join(root_, plain), path_join(root_, moved)));
      RECSYNC_RETURN_IF_ERROR(env_->sync_dir(path_dirname(path_join(root_, plain))));
      RECSYNC_RETURN_IF_ERROR(store_->queue().move_recording(plain, moved));
      to = plain;
      break;
    }
    case PlaceAction::kQualified: {
      to = qualified_rel(plain, id.origin);
      auto there = occupant(to);
      if (!there) return there.status();
      if (*there) {
        lg->warn("migration: {} stays where it is: {} is taken", rel, to);
        return rel;
      }
      break;
    }
    default:
      lg->warn("migration: {} stays where it is ({} at {})", rel,
               place_action_name(decide_placement(id, *occ)), plain);
      return rel;
  }
  RECSYNC_RETURN_IF_ERROR(env_->rename_noreplace(path_join(root_, rel), path_join(root_, to)));
  RECSYNC_RETURN_IF_ERROR(env_->sync_dir(path_dirname(path_join(root_, to))));
  RECSYNC_RETURN_IF_ERROR(store_->queue().move_recording(rel, to, plain));
  lg->info("migration: {} ({}'s recording of {}) moved to {}", rel, id.origin, plain, to);
  return to;
}

Status Placer::erase_copies(const Identity& id,
                            const std::function<Status(const std::string&)>& remove) {
  std::lock_guard<std::mutex> l(mu_);
  for (const std::string& at : {id.origin_rel, qualified_rel(id.origin_rel, id.origin)}) {
    auto occ = occupant(at);
    if (!occ) return occ.status();
    if (*occ && !id.hash.empty() && (*occ)->hash == id.hash) RECSYNC_RETURN_IF_ERROR(remove(at));
  }
  return Status::ok();
}

std::optional<std::string> Placer::find(const Identity& id) {
  std::lock_guard<std::mutex> l(mu_);
  for (const std::string& at : {id.origin_rel, qualified_rel(id.origin_rel, id.origin)}) {
    auto occ = occupant(at);
    if (occ && *occ && !id.hash.empty() && (*occ)->hash == id.hash) return at;
  }
  return std::nullopt;
}

Result<std::string> Placer::own_origin_rel(const std::string& candidate, const std::string& hash) {
  std::lock_guard<std::mutex> l(mu_);
  for (int n = 1; n <= kMaxVersions; ++n) {
    const std::string rel = n == 1 ? candidate : versioned_rel_path(candidate, n);
    // Ours at its plain path, or moved to our qualified path by a collision.
    bool taken = false;
    for (const std::string& at : {rel, qualified_rel(rel, self_)}) {
      auto occ = occupant(at);
      if (!occ) return occ.status();
      if (*occ && (*occ)->origin == self_ && (*occ)->origin_rel == rel) {
        if ((*occ)->hash == hash) return rel;  // the same recording, archived before
        taken = true;
      }
    }
    if (!taken) return rel;
  }
  return Status::io("no free version of " + candidate + " after " + std::to_string(kMaxVersions));
}

}  // namespace recsync
