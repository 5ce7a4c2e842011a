#pragma once
// Whole-file content hash: XXH3-128 (librsync has none). Printed as 32 lower
// hex digits prefixed "xxh128:". Not a security boundary: the peer link's
// integrity comes from TLS; this detects torn or wrong copies.
#include <xxhash.h>

#include <cstddef>
#include <string>

namespace recsync {

class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(const void* data, size_t n);
  std::string hex() const;  // "xxh128:<32 hex>"
 private:
  XXH3_state_t* st_;
};

std::string hash_bytes(const void* data, size_t n);

}  // namespace recsync
