#pragma once
// The index of archived recordings (table `recordings`).
//
// Files on disk are the truth; this table is an index that can be rebuilt
// from a scan of the archive (begin_scan / scan_seen / end_scan). A lost or
// corrupt database therefore costs a rescan, never a recording.
//
// Thread safety: any thread; every call takes the Db lock. The *_locked
// forms are for callers that hold it inside a wider transaction (the
// replication queue records and queues a recording in one).
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/db.h"
#include "state/rows.h"

namespace recsync {

// The lookup key find() uses for a recording name: the low 31 bits of its
// XXH3-64 hash. Stored in the database (recordings.name_key), so it must
// never change; equal names always give equal keys, different names may too.
int64_t name_key(std::string_view name);

// A row for a recording published at rel; its name (the recording id
// operators look it up by) is recording_id() of id_source, a basename.
RecordingRow make_recording_row(std::string rel, std::string_view id_source, uint64_t size,
                                std::string hash, int64_t rec_time_ms, int64_t archived_at_ms,
                                std::string origin);

class Recordings {
 public:
  // The cursor that starts an older_than() walk.
  static constexpr int64_t kFirstTime = std::numeric_limits<int64_t>::min();

  // Reads the scan generation from the metadata. db must outlive this.
  static Result<std::unique_ptr<Recordings>> open(Db* db);

  // Inserts or replaces the row with r.rel (r.id is ignored; an existing row
  // keeps its id). The row counts as seen by the scan in progress, if any.
  Status upsert(const RecordingRow& r);
  Status upsert_locked(const Db::Lock& l, const RecordingRow& r);
  // Removes the row for rel; absent is fine.
  Status remove(const std::string& rel);
  // Removes many rows in one transaction (the pruner's batches).
  Status remove_many(const std::vector<std::string>& rels);
  Result<std::optional<RecordingRow>> get(const std::string& rel);
  // Rows whose name or rel equals id_or_rel, ordered by id.
  Result<std::vector<RecordingRow>> find(const std::string& id_or_rel);
  // Rows with rec_time_ms < cutoff_ms, ordered by (rec_time_ms, id), strictly
  // after the cursor (after_time_ms, after_id), at most limit. Start with
  // (kFirstTime, 0); continue with the last row's (rec_time_ms, id). Rows
  // deleted between calls do not disturb the walk.
  Result<std::vector<RecordingRow>> older_than(int64_t cutoff_ms, int64_t after_time_ms,
                                               int64_t after_id, size_t limit);
  // Every row with t0 <= rec_time_ms < t1, in (rec_time_ms, id) order, read
  // in pages (the lock is not held across calls of fn).
  Status for_each_in_time(int64_t t0, int64_t t1,
                          const std::function<Status(const RecordingRow&)>& fn);
  // What a backfill digest needs of every row with t0 <= rec_time_ms < t1,
  // in no particular order: identity path, hash text, size, rec_time_ms.
  // When the range holds more than an eighth of the table it is read in
  // rowid order (sequential pages; through the time index every row is a
  // random table read: ~20x the cost at 500,000 rows), else through the
  // index. fn runs with the store locked and the views are valid only during
  // the call: it must not call the store.
  using DigestInputFn = std::function<void(std::string_view path, std::string_view hash,
                                           uint64_t size, int64_t rec_time_ms)>;
  Status for_each_digest_input(int64_t t0, int64_t t1, const DigestInputFn& fn);
  // Rows with t0 <= rec_time_ms < t1 ordered by identity (origin path, then
  // origin with kLocalOrigin read as `self`), strictly after (after_path,
  // after_origin), at most limit: a manifest, page by page (backfill).
  // inside = false: the rows OUTSIDE [t0, t1) instead.
  Result<std::vector<RecordingRow>> identity_page(int64_t t0, int64_t t1, const std::string& self,
                                                  const std::string& after_path,
                                                  const std::string& after_origin, size_t limit,
                                                  bool inside = true);
  // The row of the recording (origin_rel, origin as stored) wherever the
  // placement rule put it: at origin_rel, or at a qualified path.
  Result<std::optional<RecordingRow>> find_identity(const std::string& origin_rel,
                                                    const std::string& origin);
  // Rows at a path that looks versioned ("*.v*"), without an origin path:
  // the candidates of the identity migration (archive/migrate_identity.h).
  Result<std::vector<RecordingRow>> versioned_candidates();
  // Counts and byte totals are kept by triggers, times come from the
  // (rec_time_ms, id) index: answers in well under a millisecond at any size.
  Result<StoreStats> stats();

  // Rebuild from disk (mark and sweep). begin_scan() starts a new generation
  // and returns it. scan_seen() upserts rows found on disk (one transaction
  // per batch) marked with that generation: an existing row keeps its stored
  // hash when size and rec_time_ms are unchanged (else takes the batch's,
  // normally "" = cleared), and keeps its id, archived_at_ms and origin.
  // end_scan(gen) deletes the rows not seen in generation gen or later and
  // returns how many. Rows upserted through upsert() during a scan count as
  // seen, so live archiving may run concurrently with a scan.
  Result<int64_t> begin_scan();
  Status scan_seen(const std::vector<RecordingRow>& batch, int64_t gen);
  Result<uint64_t> end_scan(int64_t gen);

 private:
  explicit Recordings(Db* db) : db_(db) {}
  Db* db_;
  int64_t scan_gen_ = 0;  // the newest generation handed out (Db lock)
};

}  // namespace recsync
