#pragma once
// The object-store tier's settings, built once from [object_store] (and the
// parts of the rest of the config it needs), with the credentials loaded
// from their file or systemd credential. Plain values; any thread.
//
// Object keys: prefix + the recording's identity, its origin node and the
// path that node gave it, e.g. "recordings/fs1/2026/12/01/<uuid>.wav". Not
// the archive path alone: that can change when another node's recording
// claims it (the .from-<origin> rule, archive/placement.h); the identity
// cannot, so no two recordings ever share a key.
// Object metadata written with every upload (x-amz-meta-*):
//   xxh3         the recording's whole-file hash ("xxh128:<32 hex>")
//   rec-time-ms  its recording time, ms since the epoch
//   node         the node that uploaded it (its origin)
#include <chrono>
#include <cstdint>
#include <string>

#include "objstore/s3_request.h"
#include "recsync/config.h"
#include "recsync/status.h"
#include "recsync/units.h"
#include "state/rows.h"

namespace recsync::objtier {

inline constexpr const char* kMetaHash = "xxh3";
inline constexpr const char* kMetaRecTime = "rec-time-ms";
inline constexpr const char* kMetaNode = "node";

struct TierOptions {
  objstore::S3Options s3;  // endpoint, region, bucket, ca_file, credentials, limits
  std::string prefix;
  std::string node;          // this node's name (metadata "node")
  std::string archive_root;  // [archive] path
  std::string layout;        // [archive] layout ("date" or "flat"): fetch --window lists by day
  bool object_lock = false;
  uint64_t part_size = 16ull << 20;
  uint64_t multipart_threshold = 64ull << 20;
  Millis keep{0};              // retention.keep (0 = forever)
  Millis keep_local{0};        // how long local copies stay once stored
  Millis live_window{60'000};  // an upload queued this recently is live (governor priority)
  Millis retry_max{300'000};   // backoff cap while the store fails
  Millis retry_floor{1'000};   // first backoff wait
  Millis upload_warn{900'000};
  int uploads = 2;  // upload workers (uploader.h)
  // The longest the uploader waits for the governor's tokens before it
  // stops the transfer and retries later (the S3 client cuts a transfer
  // slower than 1 KiB/s for 60 s).
  Millis max_pacer_wait{30'000};
};

// Builds the options from a parsed config with [object_store] present and
// loads the credentials. Errors name the config key or the credentials
// source, never a key or secret.
Result<TierOptions> tier_options(const Config& c);

// prefix + origin node + "/" + origin path.
inline std::string object_key(const std::string& prefix, const std::string& origin_node,
                              const std::string& origin_rel) {
  return prefix + origin_node + "/" + origin_rel;
}
// The key of this node's recording at archive path rel with origin path
// origin_rel ("" = rel), or of a row (origins as stored: "local" = this node).
std::string own_key(const TierOptions& o, const std::string& rel, const std::string& origin_rel);
std::string key_of(const TierOptions& o, const RecordingRow& r);

}  // namespace recsync::objtier
