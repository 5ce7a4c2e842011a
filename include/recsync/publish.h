#pragma once
// Durable publishing, the one place that knows the protocol (STYLE habit 7):
// write a temp name in the final folder -> fsync -> verify -> rename to the
// final name WITHOUT replacing anything -> fsync the folder. A crash at any
// point leaves the old state or the whole new file under its final name,
// never a half file under a final name. The archiver, the peer receiver and
// the node identity all publish through here.
//
// Thread safety: free functions over Env; safe from any thread.
#include <sys/types.h>

#include <cstdint>
#include <string>

#include "recsync/env.h"
#include "recsync/status.h"

namespace recsync {

// 16 random hex digits (not for security: temp names are created O_EXCL).
std::string random_suffix();
// "<dir>/.recsync-tmp.<name, at most 200 bytes>.<16 hex>": a hidden temp name
// in the final folder that the watcher, scanner and reconcile recognise
// (names.h is_temp_name); name + prefix + suffix stay within NAME_MAX.
std::string temp_path_for(const std::string& dir, const std::string& name);

// The XXH3-128 content hash ("xxh128:<32 hex>", hash.h) of the file at path.
// keep_pages: leave its pages in the page cache (else dropped after).
Result<std::string> hash_file(Env* env, const std::string& path, bool keep_pages = false);

// Writes `data` to a temp in dir, fsyncs it, renames it to dir/name without
// replacing (kExists if the name is taken), fsyncs dir. The temp is removed
// on failure. For small files written whole (keys, certificates).
Status write_file_durably(Env* env, const std::string& dir, const std::string& name,
                          const std::string& data, mode_t mode);

struct Published {
  std::string rel;       // where it was published (rel, or rel.vN)
  bool already = false;  // an identical file (size and hash) already held rel: tmp removed
};
// Publishes `tmp` (written, fsynced and verified to hold `size` bytes with
// content `hash`) as root/rel without ever replacing a file: an identical
// file already there means "already published" (the temp is removed); a
// different one moves the new file to the next free versioned name (rel.v2,
// .v3, ... up to kMaxVersions). Then fsyncs the final folder. On an error
// the temp is left for the caller to discard.
inline constexpr int kMaxVersions = 1000;
Result<Published> publish_noreplace(Env* env, const std::string& tmp, const std::string& root,
                                    const std::string& rel, uint64_t size, const std::string& hash);

}  // namespace recsync
