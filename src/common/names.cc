#include "recsync/names.h"

#include "recsync/env.h"

namespace recsync {

const char* rel_path_problem(std::string_view rel, bool strict) {
  if (rel.empty()) return "empty";
  if (strict && rel.size() > kMaxRelPathLen) return "longer than 1024 bytes";
  if (rel.front() == '/') return "absolute";
  if (strict) {
    for (char c : rel) {
      auto u = static_cast<unsigned char>(c);
      if (u == 0) return "contains NUL";
      if (u < 0x20 || u == 0x7f) return "contains a control character";
      if (c == '\\') return "contains a backslash";
    }
  }
  size_t start = 0;
  for (;;) {
    size_t slash = rel.find('/', start);
    std::string_view comp =
        rel.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (comp.empty()) return "empty component";
    if (comp == "." || comp == "..") return "'.' or '..' component";
    if (strict) {
      if (comp.size() > kMaxRelComponentLen) return "component longer than 255 bytes";
      if (is_temp_name(comp)) return "engine temp name";
      if (is_hidden_name(comp)) return "hidden component";
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return nullptr;
}

std::string versioned_rel_path(const std::string& rel, int n) {
  std::string dir = rel.find('/') == std::string::npos ? "" : path_dirname(rel) + "/";
  std::string base = path_basename(rel);
  auto dot = base.rfind('.');
  std::string suffix = ".v" + std::to_string(n);
  if (dot == std::string::npos || dot == 0) return dir + base + suffix;
  return dir + base.substr(0, dot) + suffix + base.substr(dot);
}

}  // namespace recsync
