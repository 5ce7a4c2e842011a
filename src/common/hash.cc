#include "recsync/hash.h"

#include <cstdio>
#include <new>

namespace recsync {

Hasher::Hasher() : st_(XXH3_createState()) {
  if (!st_) throw std::bad_alloc();
  XXH3_128bits_reset(st_);
}
Hasher::~Hasher() { XXH3_freeState(st_); }
void Hasher::update(const void* data, size_t n) { XXH3_128bits_update(st_, data, n); }

static std::string to_hex(XXH128_hash_t h) {
  char buf[8 + 32 + 1];
  std::snprintf(buf, sizeof buf, "xxh128:%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}
std::string Hasher::hex() const { return to_hex(XXH3_128bits_digest(st_)); }
std::string hash_bytes(const void* data, size_t n) { return to_hex(XXH3_128bits(data, n)); }

}  // namespace recsync
