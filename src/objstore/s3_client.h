#pragma once
// S3 client for the archive tier: the object calls recsync needs, over
// Debian's libcurl, signed with AWS SigV4 by libcurl itself
// (CURLOPT_AWS_SIGV4 "aws:amz:<region>:s3"; access and secret key as the
// user name and password). Path-style URLs: endpoint/bucket/key. Tested
// against Ceph RGW 16.2 (Debian 12).
//
// Owns one CurlSession (one curl easy handle, so one kept-alive
// connection). Thread safety: none. Use one S3Client per thread; calls
// block until the request ends (bounded by S3Options' timeouts).
//
// Integrity: every PUT and UploadPart carries Content-MD5 (given, or
// computed by reading the range once before sending), so the store refuses
// a body that changed on the way (ErrorKind::kBadDigest). get_object()
// hashes what it writes (GetResult::md5_hex) and checks the length.
//
// Keys: 1..1024 bytes, no control characters, no leading '/', no empty,
// "." or ".." segment (curl would fold those; recsync never makes them).
// Metadata names: [a-z0-9_-], 1..128; values printable ASCII without
// leading or trailing space; all of it at most 2 KiB (the S3 limit).
// A bad key or metadata fails with kOther before anything is sent.
//
// Errors: S3Status / S3Result (s3_error.h) with the kind the daemon
// counts. Messages name the call and s3://bucket/key, never a credential.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "objstore/s3_error.h"
#include "objstore/s3_request.h"
#include "recsync/env.h"

namespace recsync::objstore {

// x-amz-meta-<name>: value. Names are sent and returned lower-case.
using UserMetadata = std::map<std::string, std::string>;

struct PutOptions {
  UserMetadata metadata;
  // Base64 MD5 of the body; "" = computed by reading the range first.
  std::string content_md5;
  // x-amz-object-lock-legal-hold: ON at upload (the bucket must have
  // Object Lock enabled, else the store refuses).
  bool legal_hold = false;
  std::string content_type = "application/octet-stream";
};

struct PutResult {
  std::string etag;        // without quotes; "" when the store sent none
  std::string version_id;  // "" on an unversioned bucket
  std::string md5_hex;     // MD5 of the body sent (a single PUT's ETag)
};

struct ObjectInfo {
  uint64_t size = 0;
  std::string etag;  // without quotes
  std::string version_id;
  std::string last_modified;  // as the server sent it (RFC 1123)
  UserMetadata metadata;
  std::optional<bool> legal_hold;  // absent when the server did not say
};

struct GetResult {
  ObjectInfo info;
  uint64_t bytes_written = 0;
  std::string md5_hex;  // of the bytes written
};

struct DeleteResult {
  std::string version_id;      // the version deleted, or the new delete marker
  bool delete_marker = false;  // a marker was created or removed
};

struct ObjectVersion {
  std::string key;
  std::string version_id;
  bool is_latest = false;
  bool is_delete_marker = false;
  uint64_t size = 0;  // 0 for a delete marker
  std::string etag;
  std::string last_modified;
};

struct VersionListing {
  std::vector<ObjectVersion> versions;  // versions and delete markers, in the store's order
  bool truncated = false;               // more than max_entries exist
};

struct Part {
  int number = 0;
  std::string etag;  // without quotes
  uint64_t size = 0;
};

struct MultipartUploadInfo {
  std::string key;
  std::string upload_id;
  std::string initiated;
};

class S3Client {
 public:
  // Checks the options (endpoint, bucket name); connects lazily.
  static Result<std::unique_ptr<S3Client>> make(S3Options opts);

  const S3Options& options() const { return session_->options(); }
  // The pacer sees every chunk of every file body (PUT, UploadPart).
  void set_pacer(Pacer p) { session_->set_pacer(std::move(p)); }
  void set_progress(Progress p) { session_->set_progress(std::move(p)); }
  const ClientStats& stats() const { return session_->stats(); }

  // Buckets (set-up and tests). An existing bucket owned by the caller is
  // success. object_lock: created with Object Lock (and so versioning) on.
  S3Status create_bucket(const std::string& name, bool object_lock);

  S3Result<PutResult> put_object(const std::string& key, const FileRange& body,
                                 const PutOptions& opts = {});
  // Opens path read-only and uploads the whole file.
  S3Result<PutResult> put_file(const std::string& key, const std::string& path,
                               const PutOptions& opts = {});
  S3Result<ObjectInfo> head_object(const std::string& key, const std::string& version_id = "");
  // Streams the object into dest at its current offset (dest is not
  // synced). An error answer writes nothing into dest; a transfer cut
  // midway leaves a partial body there, so download into a temp file and
  // publish it only on success (after checking size and hash).
  S3Result<GetResult> get_object(const std::string& key, File& dest,
                                 const std::string& version_id = "");
  // Without version_id: on a versioned bucket, adds a delete marker.
  S3Result<DeleteResult> delete_object(const std::string& key, const std::string& version_id = "");
  // Every version and delete marker of keys starting with prefix (pages of
  // S3Options::list_page_size), at most max_entries.
  S3Result<VersionListing> list_object_versions(const std::string& prefix,
                                                size_t max_entries = 100000);

  // Object Lock legal hold of one version ("" = the latest).
  S3Status put_legal_hold(const std::string& key, bool on, const std::string& version_id = "");
  // False when the version never had a hold set.
  S3Result<bool> get_legal_hold(const std::string& key, const std::string& version_id = "");

  // Multipart upload. Parts are 5 MiB .. 5 GiB except the last, numbered
  // 1..10000. content_md5 of upload_part: as PutOptions::content_md5.
  S3Result<std::string> create_multipart_upload(const std::string& key,
                                                const PutOptions& opts = {});
  // The part's ETag (without quotes).
  S3Result<std::string> upload_part(const std::string& key, const std::string& upload_id,
                                    int part_number, const FileRange& body,
                                    const std::string& content_md5 = "");
  // Parts stored so far, by number (at most 10000 parts).
  S3Result<std::vector<Part>> list_parts(const std::string& key, const std::string& upload_id);
  // parts: number and etag of every part, ascending. PutResult::etag is
  // what the store answered (RGW 16.2 answers ""; HEAD has the real one).
  S3Result<PutResult> complete_multipart_upload(const std::string& key,
                                                const std::string& upload_id,
                                                const std::vector<Part>& parts);
  S3Status abort_multipart_upload(const std::string& key, const std::string& upload_id);
  // Uploads in progress for keys starting with prefix (at most 10000).
  S3Result<std::vector<MultipartUploadInfo>> list_multipart_uploads(const std::string& prefix);

 private:
  explicit S3Client(std::unique_ptr<CurlSession> s) : session_(std::move(s)) {}
  S3Request object_request(const char* method, const std::string& key) const;
  std::string what(const char* op, const std::string& key) const;
  S3Status prepare_body(const FileRange& body, std::string& content_md5, const std::string& what);
  S3Status perform(const S3Request& req, const std::string& what, S3Response& resp) {
    return session_->perform(req, what, resp);
  }

  std::unique_ptr<CurlSession> session_;
};

// "" when key is acceptable, else why not (see the header comment).
std::string check_key(const std::string& key);
// "" when the metadata is acceptable, else why not.
std::string check_metadata(const UserMetadata& md);
// S3 bucket naming (3..63 of [a-z0-9.-], starts and ends alphanumeric).
std::string check_bucket(const std::string& name);
// The ETag header value without its quotes.
std::string unquote_etag(const std::string& etag);

}  // namespace recsync::objstore
