#include "objtier/tier_options.h"

#include "objstore/credentials.h"

namespace recsync::objtier {

Result<TierOptions> tier_options(const Config& c) {
  const auto& os = c.object_store;
  if (!os.enabled) return Status::invalid("no [object_store] section in " + c.source);
  TierOptions t;
  t.s3.endpoint = os.endpoint;
  t.s3.region = os.region;
  t.s3.bucket = os.bucket;
  t.s3.ca_file = os.ca_file;
  t.s3.connect_timeout = std::chrono::seconds(5);
  // Bounds how long a stop waits for a request in flight (HEAD, lists).
  t.s3.small_request_timeout = std::chrono::seconds(10);
  // The governor meters the body in chunks of this size: 128 KiB is 2.6 ms
  // at 50 MB/s, fine against 1-second windows.
  t.s3.upload_buffer = 128 << 10;
  constexpr std::string_view kSystemd = "systemd:";
  auto creds = os.credentials.compare(0, kSystemd.size(), kSystemd) == 0
                   ? objstore::load_systemd_credential(os.credentials.substr(kSystemd.size()))
                   : objstore::load_credentials_file(os.credentials);
  if (!creds) return creds.status().with_context("object_store.credentials");
  t.s3.credentials = std::move(creds).value();
  t.prefix = os.prefix;
  t.node = c.node;
  t.archive_root = c.archive.path;
  t.layout = c.archive.layout;
  t.object_lock = os.object_lock;
  t.part_size = os.part_size;
  t.multipart_threshold = os.multipart_threshold;
  t.keep = c.retention.keep;
  t.keep_local = os.keep_local_or(c.retention.keep);
  t.retry_max = os.retry_max;
  t.upload_warn = os.upload_warn;
  t.uploads = os.uploads;
  return t;
}

std::string own_key(const TierOptions& o, const std::string& rel, const std::string& origin_rel) {
  return object_key(o.prefix, o.node, origin_rel.empty() ? rel : origin_rel);
}

std::string key_of(const TierOptions& o, const RecordingRow& r) {
  return object_key(o.prefix, r.origin == kLocalOrigin || r.origin.empty() ? o.node : r.origin,
                    r.origin_rel.empty() ? r.rel : r.origin_rel);
}

}  // namespace recsync::objtier
