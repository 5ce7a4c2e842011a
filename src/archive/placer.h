#pragma once
// Carries out the placement rule (placement.h) in this node's archive: the
// archiver (this node's recordings) and the peer receiver (everybody
// else's) publish through one Placer, so two recordings claiming one path
// are always settled the same way, whatever order they come in.
//
// place(): under the Placer's lock, looks at what occupies the incoming
// recording's plain path (its row in the store, else the file itself), then
//   free       publishes the temp there (rename without replacing);
//   same       removes the temp: that content is here already;
//   take-over  moves the occupant to its qualified path (rename without
//              replacing, folder fsync, its row and queue entries follow),
//              then publishes the temp at the plain path;
//   qualified  publishes the temp at its own qualified path (or finds the
//              same content already there);
//   conflict   removes the temp and returns kExists "conflict: ...": the
//              same identity with other content is never overwritten.
// Then fsyncs the folder and calls `record` with the final path, still
// under the lock, so the next placement sees the row. Collisions (take-over
// or qualified) and conflicts are counted and logged. An erased recording
// (a tombstone with its identity and hash) is never published: the temp is
// removed and place() returns kRefused "erased ..." (erase/eraser.h deletes
// copies under the same lock, so a placement racing with an erasure is
// either deleted by it or refused).
//
// Thread safety: any thread; placements are serialized (they are a few
// renames and a row). env and store outlive the Placer.
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "archive/placement.h"
#include "recsync/env.h"
#include "state/store.h"

namespace recsync {

struct Placed {
  std::string rel;       // where the recording is now
  bool already = false;  // the same content was there: the temp was removed
  PlaceAction action = PlaceAction::kFree;
};

class Placer {
 public:
  // self: this node's name (the origin of kLocalOrigin rows).
  Placer(Env* env, StateStore* store, std::string archive_root, std::string self)
      : env_(env), store_(store), root_(std::move(archive_root)), self_(std::move(self)) {}

  const std::string& self() const { return self_; }
  const std::string& root() const { return root_; }
  // "local" -> this node's name; others unchanged.
  std::string node_of(const std::string& origin) const {
    return origin == kLocalOrigin ? self_ : origin;
  }

  // Publishes `tmp` (written, verified and fsynced in the archive, content
  // id.hash) as the recording `id` (origin a node name) and records it with
  // record(final rel) before returning.
  using Record = std::function<Status(const Placed&)>;
  Result<Placed> place(const std::string& tmp, const Identity& id, const Record& record);

  // Moves the recording now at rel (the content of `id`, published by an
  // older recsync as name.vN.ext beside another node's recording) to where
  // the rule puts it, the other recording too if it must move, and updates
  // their rows and queue entries. Leaves it where it is when that place
  // holds the same content or a conflict (logged). Returns where it is now.
  Result<std::string> relocate(const std::string& rel, const Identity& id);

  // Under the placement lock: calls remove(rel) for each path (plain or
  // qualified) that holds the content of `id` (by its row, else the file).
  // The first error stops it.
  Status erase_copies(const Identity& id, const std::function<Status(const std::string&)>& remove);

  // Where this node holds the content of `id` (at its plain or its
  // qualified path), or nullopt (not here, or it could not be told).
  std::optional<std::string> find(const Identity& id);

  // The origin path for a new recording of this node whose layout path is
  // `candidate` with content `hash`: candidate itself, unless this node
  // already has another recording of its own there (a file written again
  // after it was taken up); then candidate.v2, .v3, ... (names.h).
  Result<std::string> own_origin_rel(const std::string& candidate, const std::string& hash);

  uint64_t collisions() const { return collisions_.load(); }
  uint64_t conflicts() const { return conflicts_.load(); }

 private:
  // The recording at rel as an identity (its row, else the file on disk);
  // nullopt when nothing is there.
  Result<std::optional<Identity>> occupant(const std::string& rel);
  // Renames tmp to rel without replacing; kExists when taken.
  Status publish_at(const std::string& tmp, const std::string& rel);
  Result<Placed> place_locked(const std::string& tmp, const Identity& id);

  Env* env_;
  StateStore* store_;
  const std::string root_;
  const std::string self_;
  std::mutex mu_;
  std::atomic<uint64_t> collisions_{0}, conflicts_{0};
};

}  // namespace recsync
