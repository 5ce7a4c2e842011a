#pragma once
// The rows of the state database, as plain values shared by the store's
// tables, the planners (retention, backfill) and the services that carry
// their plans out. No behaviour here.
#include <cstdint>
#include <string>

namespace recsync {

// The origin of this node's own recordings, as stored: the database writes
// "local" for this node (so a renamed node keeps its recordings), and maps
// it to the node name where recordings are compared across nodes.
inline constexpr const char* kLocalOrigin = "local";

// One archived recording.
struct RecordingRow {
  int64_t id = 0;    // assigned by the store; ignored on upsert
  std::string rel;   // archive-relative path, unique
  std::string name;  // recording id (names.h recording_id of the basename)
  uint64_t size = 0;
  std::string hash;         // "" = not computed (adopted files)
  int64_t rec_time_ms = 0;  // recording time (file mtime at take-up), ms since epoch
  int64_t archived_at_ms = 0;
  // The node that recorded it: kLocalOrigin for this node's own, else the
  // peer's name.
  std::string origin = "local";
  // The path its origin gave it, when it differs from rel (a qualified copy,
  // "x.from-fs2.wav", of origin path "x.wav"); "" = rel. See placement.h.
  std::string origin_rel;
  const std::string& identity_rel() const { return origin_rel.empty() ? rel : origin_rel; }
};

// A hold keeps recordings from being pruned until released. An identity
// hold (hash set) holds one recording, (origin, origin_rel, hash), wherever
// it lies and on every node it is copied to; a name hold (hash empty) holds
// whatever has `target` as its recording id or path on this node.
struct HoldRow {
  std::string target;  // what the operator named: recording id or path
  std::string reason;
  int64_t created_ms = 0;
  std::string origin, origin_rel, hash;  // identity holds only ("local" = this node)
  bool is_identity() const { return !hash.empty(); }
  // The hold's key in the store: one row per key.
  std::string key() const {
    return is_identity() ? "id:" + origin + ":" + hash + ":" + origin_rel : target;
  }
};

// One deletion, as written to the audit table (and the audit log file).
struct AuditRow {
  std::string rel;
  uint64_t size = 0;
  std::string hash;
  int64_t rec_time_ms = 0;
  int64_t deleted_ms = 0;
  std::string policy;
  // Erasure only (policy "erase"): why, and the operator's uid (-1: none,
  // e.g. a pruning pass). Written to the log line only when set.
  std::string reason;
  int64_t uid = -1;
};

// One recording waiting to be acked by one peer (the replication queue).
struct QueueItem {
  std::string peer;
  std::string rel;  // where the file is here
  // What the offer names (placement.h): the origin path ('' = rel) and the
  // origin ('' = this node).
  std::string origin_rel, origin;
  uint64_t size = 0;
  std::string hash;
  int64_t mtime_ns = 0;
  int64_t enqueued_ms = 0;
  int prio = 0;  // 0 live, 1 retry (a transfer of it failed before), 2 backfill
  int attempts = 0;
  int64_t next_try_ms = 0;  // not offered before this (wall ms)
  std::string last_error;
};

struct QueueStats {
  uint64_t live_files = 0, live_bytes = 0, retry_files = 0, retry_bytes = 0;
  uint64_t backfill_files = 0, backfill_bytes = 0;  // counted in files()/bytes() too
  int64_t oldest_enqueued_ms = 0;                   // 0 when empty
  uint64_t files() const { return live_files + retry_files + backfill_files; }
  uint64_t bytes() const { return live_bytes + retry_bytes + backfill_bytes; }
};

// A hold change waiting to be copied to one peer.
struct HoldOp {
  static constexpr int kAdd = 1, kRelease = 2;  // same values as peer::HoldMsg::Op
  int64_t seq = 0;
  int op = kAdd;
  HoldRow hold;  // reason and created_ms are empty/0 for a release
};

// An erased recording (SPEC 4.4): never sent, pulled or pushed again.
struct TombstoneRow {
  std::string origin_rel, origin, hash;
  int64_t erased_ms = 0;
  std::string reason;
  int64_t uid = -1;        // the operator who asked (on the node it was asked on)
  int64_t expires_ms = 0;  // dropped after this (erase/plan.h); 0 = kept for ever
  std::string from_peer;   // "" = asked here; else the peer whose ERASE it was
  // Files (and the object-store object) still to delete: a crash between the
  // transaction and the deletions leaves it set; the eraser finishes it.
  bool pending = false;
};

// An erasure waiting to be told to one peer (table erase_queue).
struct EraseOp {
  std::string peer;
  TombstoneRow t;
  int attempts = 0;
  int64_t next_try_ms = 0;
  bool refused = false;  // the peer refused (a hold there): retried later
  std::string last_error;
};

struct StoreStats {
  uint64_t files = 0, bytes = 0;
  // 0 when the store holds no recordings.
  int64_t newest_rec_time_ms = 0, oldest_rec_time_ms = 0;
};

}  // namespace recsync
