#pragma once
// Resumable multipart upload of a file range, and the pure planning under it.
//
// State is explicit so an upload survives a crash of the uploader: the
// caller persists the upload id (on_created runs before any part is sent)
// and passes it back to resume. Resuming lists the parts the store already
// has and sends only the missing ones; a stored part is kept only if its
// size and ETag (the MD5 of its bytes) match the local range, so the object
// assembled is the local file byte for byte. Every part is read from disk
// once for its MD5 (Content-MD5), then again to send it.
//
// A resume id the store no longer knows fails with kNotFound (S3 says
// NoSuchUpload, RGW 16.2 NoSuchKey): the upload was completed (HEAD the
// key) or aborted (start afresh).
//
// Legal hold: the header goes with CreateMultipartUpload (AWS applies it),
// and the hold is set again on the completed version with
// put_legal_hold(), because RGW 16.2 ignores it on multipart uploads. If
// that last call fails, the object exists without its hold: the error says
// so, and the caller sets the hold (the upload id is gone by then). On any failure the
// upload is left in place, resumable; the caller aborts it when it gives up
// (abort_multipart_upload) and may find leftovers with
// list_multipart_uploads.
//
// Thread safety: the planners are pure; upload_multipart uses the client
// given, from the client's thread.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "objstore/s3_client.h"

namespace recsync::objstore {

inline constexpr uint64_t kMinPartSize = 5ull << 20;  // S3: every part but the last
inline constexpr uint64_t kMaxPartSize = 5ull << 30;  // S3
inline constexpr int kMaxParts = 10000;               // S3
inline constexpr uint64_t kDefaultPartSize = 16ull << 20;

struct PartRange {
  int number = 0;  // 1-based
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const PartRange&) const = default;
};

// The parts of a size-byte object: part_size clamped to
// [kMinPartSize, kMaxPartSize] and raised so there are at most kMaxParts;
// the last part takes the rest. size 0 gives one empty part.
std::vector<PartRange> plan_parts(uint64_t size, uint64_t part_size);

struct LocalPart {
  int number = 0;
  uint64_t length = 0;
  std::string md5_hex;
};
// Numbers of the local parts to send: absent from `stored`, or stored with
// another size or ETag. Ascending.
std::vector<int> parts_to_send(const std::vector<LocalPart>& local,
                               const std::vector<Part>& stored);

struct MultipartOptions {
  uint64_t part_size = kDefaultPartSize;
  PutOptions put;  // metadata, legal hold, content type (content_md5 unused)
};

struct MultipartResult {
  std::string upload_id;
  std::string etag;  // the multipart ETag computed locally: "<md5 of md5s>-<parts>"
  std::string version_id;
  int parts_sent = 0;
  int parts_reused = 0;  // already stored, not sent again
};

// Uploads body to key as a multipart object, resuming resume_upload_id when
// it is not empty. on_created(upload_id), if set, is called once a new
// upload exists, before any part is sent.
S3Result<MultipartResult> upload_multipart(
    S3Client& client, const std::string& key, const FileRange& body, const MultipartOptions& opts,
    const std::string& resume_upload_id = "",
    const std::function<void(const std::string&)>& on_created = {});

}  // namespace recsync::objstore
