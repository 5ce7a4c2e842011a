#pragma once
// The uploader: one thread (rs-upload) that empties the object-store
// upload queue. The queue is the replication queue's destination
// kStoreDestination (state/objects.h): the archiver queues every recording
// it archives for it in the same transaction that records the recording,
// so a crash never leaves a recording archived but never uploaded, and the
// order is the peers' (live recordings first, then the backlog; per-entry
// backoff after a failure). Only recordings this node archived from its own
// spool are queued: a copy from a peer is uploaded by its origin.
//
// One upload (upload_one.cc), for the next queue entry:
//   1. open the archive copy (gone: the entry is dropped); read it once for
//      its XXH3-128, which must equal the hash recorded at archiving, and
//      its MD5s (whole file, or each part);
//   2. HEAD the key: an object with the same size, xxh3 metadata and ETag
//      is already there (a restart after the upload, or another node): it
//      is recorded and not sent again. Other content under the key is a
//      conflict: never overwritten, retried with backoff, counted;
//   3. PUT with Content-MD5 (or, at multipart_threshold and above, a
//      multipart upload whose id is saved before the first part is sent,
//      each part with its Content-MD5; a restart lists the stored parts and
//      sends only the missing ones), metadata xxh3 / rec-time-ms / node,
//      and the legal hold when the recording is held and object_lock is on;
//      the body is metered by the node's one Governor, live or bulk;
//   4. HEAD again: size, ETag (MD5, or the multipart ETag computed from the
//      part MD5s; RGW's CompleteMultipartUpload answers none) and the xxh3
//      metadata must match before the upload counts; then the object is
//      recorded (ObjectIndex) and the queue entry removed.
// A failure of the store itself (network, 5xx, credentials, quota) stops
// the queue: the thread backs off with jitter (retry_floor doubling to
// retry_max) and tries the same entry again; nothing is dropped. A failure
// of one file (its copy changed, BadDigest, a conflict) defers that entry
// (prio retry, its own backoff) and the queue goes on.
//
// Legal holds (object_lock on): hold changes are queued for
// kStoreDestination like for peers; each one (and a check every minute,
// which also catches holds copied from peers) brings the store in line:
// every object whose recording is held gets an Object Lock legal hold on
// its verified version, and loses it when no hold matches any more.
//
// Upload workers (TierOptions::uploads, default 2): each takes the first
// queue entry no other worker has in flight, so the order stays live-first
// and one recording is never uploaded twice at once; each has its own S3
// connection. Why more than one: RGW handles a PUT's body in sequence (4 MiB
// RADOS writes), so one connection to a local RGW carried 118 MB/s where two
// carry more; with the usual cap (50 MB/s shared with replication) one would
// do, but a backlog after an outage drains faster with two. The hold sync
// runs on worker 0 only. While a worker sends one recording, a helper task
// reads the next free entry for its digest (step 1), so the disk read and
// MD5 of the next overlap the network of this one; any worker picking that
// entry uses the result.
//
// Threads: construct, start() and stop() from one thread; the board is
// read from any. stop() returns once each worker's current request ends: a
// transfer stops at its next chunk (128 KiB); a HEAD, list or legal-hold
// call within S3Options::small_request_timeout (10 s from tier_options());
// a connect within connect_timeout (5 s).
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "objstore/multipart.h"
#include "objstore/s3_client.h"
#include "objtier/digest.h"
#include "objtier/tier_options.h"
#include "objtier/upload_board.h"
#include "recsync/env.h"
#include "recsync/page_budget.h"
#include "recsync/stop_flag.h"
#include "replication/governor.h"
#include "retention/plan.h"
#include "state/store.h"

namespace recsync::objtier {

class Uploader {
 public:
  // All pointers must outlive the uploader; budget may be null. The S3
  // client is made here (errors: bad endpoint, bucket or region).
  static Result<std::unique_ptr<Uploader>> create(Env* env, StateStore* store,
                                                  replication::Governor* gov, PageBudget* budget,
                                                  TierOptions opt, UploadBoard* board);
  ~Uploader();  // stop()s
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  void start();
  void stop();

 private:
  enum class Step { kIdle, kWorked, kStoreFailed };
  // One upload worker: its thread, its S3 connection, its backoff.
  struct Worker {
    int index = 0;
    std::unique_ptr<objstore::S3Client> client;
    std::thread thread;
    std::mt19937_64 rng{std::random_device{}()};
    int failures = 0;                   // store failures in a row (backoff)
    std::string last_logged;            // the same store trouble is logged once
    std::optional<QueueItem> upcoming;  // the next free entry after the current one
  };
  struct Prefetch {
    std::string hash;
    std::future<Result<FileDigest>> digest;
  };

  Uploader(Env* env, StateStore* store, replication::Governor* gov, PageBudget* budget,
           TierOptions opt, UploadBoard* board);
  void main(Worker& w);
  Step step(Worker& w);
  // The first entry of batch no worker has in flight (marked in flight now).
  std::optional<QueueItem> claim(const std::vector<QueueItem>& batch, Worker& w);
  void release(const std::string& rel);
  // Hold changes queued for the store, and the legal holds they imply.
  objstore::S3Status sync_holds(Worker& w, bool force);
  objstore::S3Status set_legal_hold(Worker& w, const ObjectRow& o, bool on);
  // Handles the outcome of upload_one for q.
  Step finish_entry(Worker& w, const QueueItem& q, const objstore::S3Status& st);
  void defer(Worker& w, const QueueItem& q, const std::string& why);
  void count_error(const objstore::S3Status& st);

  // upload_one.cc
  objstore::S3Status upload_one(Worker& w, const QueueItem& q);
  // q's recording was erased (a tombstone with its hash): not uploaded.
  bool erased(const QueueItem& q);
  objstore::S3Status upload_parts(Worker& w, const std::string& key, const QueueItem& q, int fd,
                                  const std::vector<objstore::PartRange>& parts,
                                  const FileDigest& d, const objstore::PutOptions& po);
  objstore::S3Status verify_and_record(Worker& w, const std::string& key, const QueueItem& q,
                                       const std::string& etag, bool held, bool was_present,
                                       const objstore::ObjectInfo* present);
  bool meter(const std::string& rel, size_t n, replication::Priority prio);
  // The digest of q: a prefetched one when there is one for q, else read now.
  Result<FileDigest> digest_of(const QueueItem& q, int fd,
                               const std::vector<objstore::PartRange>& parts);
  // Starts reading w.upcoming for its digest on a helper task.
  void prefetch_next(Worker& w);
  bool held(const QueueItem& q);

  Env* env_;
  StateStore* store_;
  replication::Governor* gov_;
  PageBudget* budget_;
  const TierOptions opt_;
  UploadBoard* board_;
  std::vector<std::unique_ptr<Worker>> workers_;
  StopFlag stop_;
  bool stopped_ = false;
  std::mutex mu_;                             // guards the members below
  std::set<std::string> in_flight_;           // rels a worker is uploading
  std::map<std::string, Prefetch> prefetch_;  // by rel
  HoldSet holds_;                             // refreshed by sync_holds() (worker 0)
  int64_t holds_synced_ms_ = 0;               // worker 0 only
  bool holds_dirty_ = true;                   // worker 0 only
};

}  // namespace recsync::objtier
