#pragma once
// One read of a recording before its upload, for everything the upload
// needs to know about its bytes: the whole-file XXH3-128 (checked against
// the hash recorded at archiving, so only the recorded content is ever
// uploaded) and the MD5s S3 checks (Content-MD5 of a single PUT, or of each
// part of a multipart upload). Reading once keeps the disk and CPU cost at
// one pass; the S3 client then reads the bytes again to send them (from
// the page cache in the common case).
//
// Thread safety: pure functions over a caller-owned descriptor.
#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "objstore/encoding.h"
#include "objstore/multipart.h"
#include "recsync/status.h"

namespace recsync::objtier {

using Md5Digest = std::array<uint8_t, objstore::Md5::kLen>;

struct FileDigest {
  std::string hash;                 // "xxh128:<32 hex>" of [0, size)
  Md5Digest md5{};                  // of the whole file (single PUT); zero with parts
  std::vector<Md5Digest> part_md5;  // one per part given (multipart)
};

// Reads [0, size) of fd with pread in 1 MiB chunks. With parts (a
// plan_parts() plan covering [0, size)) it computes each part's MD5 and not
// the whole file's; without, the whole file's. Errors: kIo (read error, or
// the file is shorter than size); kBusy when *stop became true.
Result<FileDigest> digest_file(int fd, uint64_t size,
                               const std::vector<objstore::PartRange>& parts = {},
                               const std::atomic<bool>* stop = nullptr);

}  // namespace recsync::objtier
