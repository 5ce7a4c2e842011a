#pragma once
// The rows of the state database, as plain values shared by the store's
// tables, the planners (retention, backfill) and the services that carry
// their plans out. No behaviour here.
#include <cstdint>
#include <string>

namespace recsync {

// One archived recording.
struct RecordingRow {
  int64_t id = 0;    // assigned by the store; ignored on upsert
  std::string rel;   // archive-relative path, unique
  std::string name;  // recording id (names.h recording_id of the basename)
  uint64_t size = 0;
  std::string hash;         // "" = not computed (adopted files)
  int64_t rec_time_ms = 0;  // recording time (file mtime at take-up), ms since epoch
  int64_t archived_at_ms = 0;
  std::string origin = "local";  // "local" or the peer name it came from
};

// A hold keeps matching recordings from being pruned until released.
struct HoldRow {
  std::string target;  // recording id or archive-relative path
  std::string reason;
  int64_t created_ms = 0;
};

// One deletion, as written to the audit table (and the audit log file).
struct AuditRow {
  std::string rel;
  uint64_t size = 0;
  std::string hash;
  int64_t rec_time_ms = 0;
  int64_t deleted_ms = 0;
  std::string policy;
};

// One recording waiting to be acked by one peer (the replication queue).
struct QueueItem {
  std::string peer;
  std::string rel;
  uint64_t size = 0;
  std::string hash;
  int64_t mtime_ns = 0;
  int64_t enqueued_ms = 0;
  int prio = 0;  // 0 live, 1 retry (a transfer of it failed before)
  int attempts = 0;
  int64_t next_try_ms = 0;  // not offered before this (wall ms)
  std::string last_error;
};

struct QueueStats {
  uint64_t live_files = 0, live_bytes = 0, retry_files = 0, retry_bytes = 0;
  int64_t oldest_enqueued_ms = 0;  // 0 when empty
  uint64_t files() const { return live_files + retry_files; }
  uint64_t bytes() const { return live_bytes + retry_bytes; }
};

// A hold change waiting to be copied to one peer.
struct HoldOp {
  static constexpr int kAdd = 1, kRelease = 2;  // same values as peer::HoldMsg::Op
  int64_t seq = 0;
  int op = kAdd;
  HoldRow hold;  // reason and created_ms are empty/0 for a release
};

struct StoreStats {
  uint64_t files = 0, bytes = 0;
  // 0 when the store holds no recordings.
  int64_t newest_rec_time_ms = 0, oldest_rec_time_ms = 0;
};

}  // namespace recsync
