#pragma once
// The object-store archive tier, one facade for the daemon: it owns the
// uploader thread (uploader.h) and its status board, and a second S3
// connection (the "admin" client, under its own lock) for what other
// threads ask of the store: retention's deletions and store checks
// (ObjectTierOps), erasure, fetch. recsyncd builds one when the config has
// an [object_store] section.
//
// Identity: an object's key is prefix + the recording's archive path, the
// same on every node; only the node that archived a recording from its own
// spool uploads it.
//
// Threads: create/start/stop from the daemon's loop thread; everything else
// from any thread (the admin calls serialise on the admin lock; fetch and
// delete calls block on the network, so call them off the event loop).
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "objstore/s3_client.h"
#include "objtier/tier_options.h"
#include "objtier/upload_board.h"
#include "objtier/uploader.h"
#include "retention/object_tier.h"
#include "state/store.h"

namespace recsync::objtier {

// What status shows of the tier.
struct TierStatus {
  std::string endpoint, bucket, prefix;
  bool object_lock = false;
  int64_t keep_local_ms = 0, upload_warn_ms = 0;
  UploadSnapshot upload;
  QueueStats queue;     // the upload queue
  ObjectStats objects;  // verified objects in the index
  uint64_t multipart_in_progress = 0;
};

struct FetchResult {
  std::string rel;  // where it is in the archive now
  uint64_t size = 0;
  std::string hash;
  bool already = false;  // an identical copy was already there
};

struct WindowReport {
  uint64_t listed = 0;   // objects of this node found in the store
  uint64_t indexed = 0;  // recorded in the index
  uint64_t fetched = 0, fetched_bytes = 0, already = 0;
  uint64_t other_nodes = 0;  // objects uploaded by other nodes (left alone)
  uint64_t errors = 0;
  std::string last_error;
};

class ObjectTier : public ObjectTierOps {
 public:
  // gov: the node's one Governor (uploads are metered by it); budget: the
  // archiver's page budget (may be null). All must outlive the tier.
  static Result<std::unique_ptr<ObjectTier>> create(Env* env, StateStore* store,
                                                    replication::Governor* gov, PageBudget* budget,
                                                    TierOptions opt);
  ~ObjectTier() override;  // stop()s

  void start();  // the uploader thread
  void stop();   // idempotent

  const TierOptions& options() const { return opt_; }
  TierStatus status();

  // ObjectTierOps (retention/object_tier.h).
  std::string where(const ObjectRow& o) const override;
  Status delete_every_version(const ObjectRow& o) override;
  std::unordered_set<std::string> verify_in_store(const std::vector<RecordingRow>& rows,
                                                  size_t max_checks) override;

  // For erasure (GDPR Art. 17): deletes every version of the recording's
  // object and forgets it. kRefused while a hold matches the recording (by
  // path or id) or Object Lock protects a version; OK when the store holds
  // nothing under its key (also when it never did). The caller audits.
  Status erase(const std::string& rel);

  // Brings a recording (by id or archive path) back from the store into the
  // archive for playback: downloaded to a temp in its folder, fsynced, its
  // size and XXH3 checked against the index (or the object's metadata),
  // its mtime set to the recording time, published without replacing
  // anything, and indexed (not queued for peers or upload). An identical
  // file already there is success (already). A different file there: kExists.
  Result<std::vector<FetchResult>> fetch(const std::string& id_or_rel);

  // A rebuilt node: lists this node's objects in the store (by day folder
  // with the date layout, within retention.keep; else the whole prefix),
  // re-indexes them (so retention deletes them at keep) and fetches those
  // whose recording time is within keep_local and that are not in the
  // archive. Objects uploaded by other nodes are left to them.
  Result<WindowReport> fetch_window();

 private:
  ObjectTier(Env* env, StateStore* store, TierOptions opt);
  Result<FetchResult> fetch_one(const ObjectRow& o);
  // An index row for key from a HEAD (metadata), or nullopt when absent.
  objstore::S3Result<std::optional<ObjectRow>> row_from_store(const std::string& key,
                                                              const std::string& rel);
  objstore::S3Status delete_versions_locked(const std::string& key);

  Env* env_;
  StateStore* store_;
  const TierOptions opt_;
  UploadBoard board_;
  std::unique_ptr<Uploader> uploader_;
  std::mutex admin_mu_;
  std::unique_ptr<objstore::S3Client> admin_;
  bool started_ = false, stopped_ = false;
};

}  // namespace recsync::objtier
