#include "peer/path_policy.h"

#include <string>

#include "recsync/names.h"

namespace recsync::peer {
namespace {

Status refuse(std::string_view rel, const char* why) {
  // The path may hold control bytes: show it escaped and cut short.
  std::string shown;
  for (char c : rel.substr(0, 200)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') {
      static const char kHex[] = "0123456789abcdef";
      shown += "\\x";
      shown += kHex[u >> 4];
      shown += kHex[u & 15];
    } else {
      shown += c;
    }
  }
  if (rel.size() > 200) shown += "...";
  return Status::refused(std::string("peer path \"") + shown + "\" refused: " + why);
}

}  // namespace

Status validate_peer_path(std::string_view rel) {
  if (rel.empty()) return refuse(rel, "empty");
  if (rel.size() > kMaxPeerPathLen) return refuse(rel, "longer than 1024 bytes");
  if (rel.front() == '/') return refuse(rel, "absolute");
  for (char c : rel) {
    auto u = static_cast<unsigned char>(c);
    if (u == 0) return refuse(rel, "contains NUL");
    if (u < 0x20 || u == 0x7f) return refuse(rel, "contains a control character");
    if (c == '\\') return refuse(rel, "contains a backslash");
  }
  size_t start = 0;
  for (;;) {
    size_t slash = rel.find('/', start);
    std::string_view comp =
        rel.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (comp.empty()) return refuse(rel, "empty component");
    if (comp == "." || comp == "..") return refuse(rel, "'.' or '..' component");
    if (comp.size() > kMaxPeerComponentLen) return refuse(rel, "component longer than 255 bytes");
    if (is_temp_name(comp)) return refuse(rel, "engine temp name");
    if (is_hidden_name(comp)) return refuse(rel, "hidden component");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::ok();
}

}  // namespace recsync::peer
