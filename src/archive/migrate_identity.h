#pragma once
// The one-time move of an archive kept by an older recsync to the identity
// rule (placement.h). Before it, a node that received another node's
// recording under a name it already held (or archived its own under a name
// a peer's recording held) published the second one as "name.vN.ext", so
// the same path held different recordings on the two nodes. For each
// recording at such a versioned path whose plain path holds a recording of
// ANOTHER origin, its origin path becomes the plain path and the Placer
// moves it (and, if the rule says so, the other one) to where the rule puts
// it. A node's own re-takes (name.v2 beside its own name) are left alone.
// Runs after the startup reconcile; recorded as done in the metadata
// (identity_migrated), so it runs once; stopped early, it runs again.
//
// Thread safety: the reconcile thread.
#include <atomic>

#include "archive/placer.h"
#include "recsync/env.h"
#include "state/store.h"

namespace recsync {

// "a/b.v2.wav" -> {"a/b.wav", 2}; nullopt when rel is not versioned.
struct Unversioned {
  std::string rel;
  int n = 0;
};
std::optional<Unversioned> unversioned_rel(const std::string& rel);

Status migrate_versioned_copies(Env* env, StateStore* store, Placer* placer,
                                const std::atomic<bool>& stop);

}  // namespace recsync
