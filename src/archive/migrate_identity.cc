#include "archive/migrate_identity.h"

#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/publish.h"

namespace recsync {

namespace {
constexpr const char* kDoneKey = "identity_migrated";
}  // namespace

std::optional<Unversioned> unversioned_rel(const std::string& rel) {
  const size_t slash = rel.rfind('/');
  const size_t base = slash == std::string::npos ? 0 : slash + 1;
  const size_t last_dot = rel.rfind('.');
  // ".v<digits>" right before the extension, or at the end (no extension).
  for (size_t end : {last_dot, rel.size()}) {
    if (end == std::string::npos || end <= base) continue;
    const size_t v = rel.rfind(".v", end - 1);
    if (v == std::string::npos || v <= base || v + 2 >= end) continue;
    int n = 0;
    bool digits = true;
    for (size_t i = v + 2; i < end && digits; ++i) {
      digits = rel[i] >= '0' && rel[i] <= '9' && n < 100000;
      if (digits) n = n * 10 + (rel[i] - '0');
    }
    if (!digits || n < 2) continue;
    Unversioned u{rel.substr(0, v) + rel.substr(end), n};
    if (versioned_rel_path(u.rel, n) == rel) return u;
  }
  return std::nullopt;
}

Status migrate_versioned_copies(Env* env, StateStore* store, Placer* placer,
                                const std::atomic<bool>& stop) {
  auto done = store->db().get_meta(kDoneKey);
  if (!done) return done.status();
  if (done->has_value()) return Status::ok();
  auto lg = log::get("archive");
  auto rows = store->recordings().versioned_candidates();
  if (!rows) return rows.status();
  uint64_t moved = 0;
  for (RecordingRow& r : *rows) {
    if (stop) return Status::ok();  // not recorded as done: runs again
    auto u = unversioned_rel(r.rel);
    if (!u) continue;
    auto plain = store->recordings().get(u->rel);
    if (!plain) return plain.status();
    if (!plain->has_value()) continue;
    if (placer->node_of((*plain)->origin) == placer->node_of(r.origin)) continue;  // a re-take
    if (r.hash.empty()) {
      auto h = hash_file(env, path_join(placer->root(), r.rel));
      if (!h) {
        lg->warn("migration: {}: {}", r.rel, h.status().message());
        continue;
      }
      r.hash = *h;
    }
    auto to = placer->relocate(r.rel, Identity{placer->node_of(r.origin), u->rel, r.hash});
    if (!to) return to.status();
    moved += *to != r.rel;
  }
  if (moved) lg->info("identity migration: {} recordings moved to their place", moved);
  return store->db().set_meta(kDoneKey, "1");
}

}  // namespace recsync
