#include "backfill/entry.h"

#include <xxhash.h>

#include <cstring>
#include <vector>

#include "peer/path_policy.h"

namespace recsync::backfill {

RecordingRef ref_of(const ManifestEntry& e) {
  RecordingRef r{e.path, e.origin, e.size, e.has_hash, {}};
  std::memcpy(r.hash, e.hash, kHashLen);
  return r;
}

int compare_key(std::string_view path_a, std::string_view origin_a, std::string_view path_b,
                std::string_view origin_b) {
  // string_view::compare is char_traits<char>::compare: unsigned bytes, as memcmp.
  if (int c = path_a.compare(path_b); c != 0) return c;
  return origin_a.compare(origin_b);
}

std::string printable(std::string_view s, size_t max) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : s.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\' || c == '"') {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

std::string describe_key(std::string_view path, std::string_view origin) {
  return "\"" + printable(path) + "\" (" + printable(origin, 64) + ")";
}

Status validate_origin(std::string_view origin) {
  auto refuse = [&](const char* why) {
    return Status::refused("origin \"" + printable(origin) + "\" refused: " + why);
  };
  if (origin.empty()) return refuse("empty");
  if (origin.size() > kMaxOriginLen) return refuse("longer than 255 bytes");
  for (char c : origin) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return refuse("contains a control character");
    if (c == '/') return refuse("contains '/'");
  }
  return Status::ok();
}

Status validate_identity(std::string_view path, std::string_view origin) {
  RECSYNC_RETURN_IF_ERROR(peer::validate_peer_path(path));
  return validate_origin(origin);
}

uint64_t entry_digest(std::string_view path, bool has_hash, const uint8_t* hash, uint64_t size) {
  // One buffer and one XXH3 call. A path longer than kMaxPathLen never passes
  // validation, but the function stays total (heap buffer then).
  constexpr size_t kFixed = 4 + 1 + kHashLen + 8;
  uint8_t stack[kFixed + kMaxPathLen];
  std::vector<uint8_t> heap;
  uint8_t* buf = stack;
  if (path.size() > kMaxPathLen) {
    heap.resize(kFixed + path.size());
    buf = heap.data();
  }
  size_t n = 0;
  const auto plen = static_cast<uint32_t>(path.size());
  for (int s = 24; s >= 0; s -= 8) buf[n++] = static_cast<uint8_t>(plen >> s);
  if (!path.empty()) std::memcpy(buf + n, path.data(), path.size());
  n += path.size();
  buf[n++] = has_hash ? 1 : 0;
  if (has_hash) {
    std::memcpy(buf + n, hash, kHashLen);
    n += kHashLen;
  }
  for (int s = 56; s >= 0; s -= 8) buf[n++] = static_cast<uint8_t>(size >> s);
  return XXH3_64bits(buf, n);
}

namespace {
constexpr std::string_view kHashPrefix = "xxh128:";
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}
}  // namespace

Status hash_from_text(std::string_view text, bool* has_hash, uint8_t out[kHashLen]) {
  *has_hash = false;
  std::memset(out, 0, kHashLen);
  if (text.empty()) return Status::ok();
  if (text.size() != kHashPrefix.size() + 2 * kHashLen || !text.starts_with(kHashPrefix))
    return Status::invalid("hash \"" + printable(text, 64) + "\" is not xxh128:<32 hex>");
  for (size_t i = 0; i < kHashLen; ++i) {
    int hi = hex_value(text[kHashPrefix.size() + 2 * i]);
    int lo = hex_value(text[kHashPrefix.size() + 2 * i + 1]);
    if (hi < 0 || lo < 0)
      return Status::invalid("hash \"" + printable(text, 64) + "\" is not xxh128:<32 hex>");
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  *has_hash = true;
  return Status::ok();
}

std::string hash_to_text(bool has_hash, const uint8_t hash[kHashLen]) {
  if (!has_hash) return "";
  static const char kHex[] = "0123456789abcdef";
  std::string s(kHashPrefix);
  for (size_t i = 0; i < kHashLen; ++i) {
    s += kHex[hash[i] >> 4];
    s += kHex[hash[i] & 15];
  }
  return s;
}

}  // namespace recsync::backfill
