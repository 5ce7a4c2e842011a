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
  if (const char* why = rel_path_problem(rel, /*strict=*/true)) return refuse(rel, why);
  return Status::ok();
}

}  // namespace recsync::peer
