#include "objtier/digest.h"

#include <unistd.h>

#include <cerrno>

#include "recsync/hash.h"

namespace recsync::objtier {

Result<FileDigest> digest_file(int fd, uint64_t size, const std::vector<objstore::PartRange>& parts,
                               const std::atomic<bool>* stop) {
  constexpr size_t kChunk = 1 << 20;
  std::vector<char> buf(kChunk);
  Hasher xxh;
  objstore::Md5 md5;
  FileDigest out;
  size_t part = 0;
  uint64_t off = 0;
  while (off < size) {
    if (stop && stop->load()) return Status::busy("stopping");
    // Never read across a part boundary: each chunk feeds one part's MD5.
    uint64_t want = std::min<uint64_t>(kChunk, size - off);
    if (!parts.empty()) {
      while (part < parts.size() && off >= parts[part].offset + parts[part].length) {
        out.part_md5.push_back(md5.finish());
        ++part;
      }
      if (part >= parts.size()) return Status::invalid("digest: the parts do not cover the file");
      want = std::min<uint64_t>(want, parts[part].offset + parts[part].length - off);
    }
    ssize_t n = ::pread(fd, buf.data(), want, off_t(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::from_errno(errno, "read");
    if (n == 0) return Status::io("the file is shorter than its recorded size");
    xxh.update(buf.data(), size_t(n));
    md5.update(buf.data(), size_t(n));
    off += uint64_t(n);
  }
  if (parts.empty()) {
    out.md5 = md5.finish();
  } else {
    // The last part (and an empty file's single empty part).
    while (out.part_md5.size() < parts.size()) out.part_md5.push_back(md5.finish());
  }
  out.hash = xxh.hex();
  return out;
}

}  // namespace recsync::objtier
