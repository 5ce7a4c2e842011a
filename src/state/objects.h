#pragma once
// The object-store tier's durable state (tables `objects` and
// `object_uploads`, schema version 5):
//   objects         one row per recording whose object was VERIFIED in the
//                   store (HEAD after the upload: size, ETag and the
//                   whole-file hash in its metadata), keyed by archive path.
//                   The local copy may be pruned at keep_local only when a
//                   row here has the recording's hash (stored_among()); the
//                   object is deleted past retention.keep by walking it
//                   (older_than()). It outlives the recordings row, which
//                   goes with the local copy.
//   object_uploads  multipart uploads in progress (upload id, part size),
//                   written BEFORE the first part is sent, so a crash or
//                   restart resumes the upload without sending the parts the
//                   store already holds.
// The upload queue itself is the replication queue under the reserved
// destination name kStoreDestination (state/repl_queue.h), so a recording
// is queued for the store in the same transaction that records it.
//
// Thread safety: any thread; every call takes the Db lock.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "state/db.h"
#include "state/rows.h"

namespace recsync {

// The replication-queue destination (and hold-queue peer) that stands for
// the object store. '@' is not allowed in a [[peer]] name, so no peer can
// have it.
inline constexpr const char* kStoreDestination = "@object-store";

struct ObjectRow {
  std::string rel;   // archive-relative path: the recording's identity
  std::string key;   // the object key (prefix + rel)
  std::string name;  // recording id (find() by it)
  uint64_t size = 0;
  std::string hash;  // "xxh128:<hex>", the recording's hash
  int64_t rec_time_ms = 0;
  std::string etag;        // as HEAD reported it once the upload completed
  std::string version_id;  // "" on an unversioned bucket
  int64_t verified_ms = 0;
  bool legal_hold = false;       // an Object Lock legal hold we set is on
  std::string origin = "local";  // "local" = uploaded by this node; else the uploader's node name
};

struct MultipartRow {
  std::string rel, key, hash;
  uint64_t size = 0, part_size = 0;
  std::string upload_id;
  int64_t created_ms = 0;
};

struct ObjectStats {
  uint64_t files = 0, bytes = 0, legal_holds = 0;
  int64_t newest_rec_time_ms = 0, oldest_rec_time_ms = 0;  // 0 when empty
};

class ObjectIndex {
 public:
  // db must outlive this.
  explicit ObjectIndex(Db* db) : db_(db) {}

  // Inserts or replaces the row for o.rel.
  Status upsert(const ObjectRow& o);
  Result<std::optional<ObjectRow>> get(const std::string& rel);
  // Rows whose rel or recording id equals id_or_rel, by rel.
  Result<std::vector<ObjectRow>> find(const std::string& id_or_rel);
  // Rows with rec_time_ms < cutoff_ms strictly after (after_time_ms,
  // after_rel) in (rec_time_ms, rel) order, at most limit. Start with
  // (INT64_MIN, "").
  Result<std::vector<ObjectRow>> older_than(int64_t cutoff_ms, int64_t after_time_ms,
                                            const std::string& after_rel, size_t limit);
  // Removes the row (and any multipart row) for rel; absent is fine.
  Status remove(const std::string& rel);
  // The rels of `rows` whose object is verified with the same hash.
  Result<std::unordered_set<std::string>> stored_among(const std::vector<RecordingRow>& rows);
  Status set_legal_hold(const std::string& rel, bool on);
  // Rows with legal_hold set, by rel.
  Result<std::vector<ObjectRow>> legally_held();
  // Counts come from triggers, times from the index: sub-millisecond.
  Result<ObjectStats> stats();

  // Multipart uploads in progress.
  Status save_upload(const MultipartRow& m);
  Result<std::optional<MultipartRow>> get_upload(const std::string& rel);
  Status drop_upload(const std::string& rel);
  Result<std::vector<MultipartRow>> uploads();

 private:
  Db* db_;
};

}  // namespace recsync
