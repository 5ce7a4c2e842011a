#include "recsync/names.h"

#include "recsync/env.h"

namespace recsync {

std::string versioned_rel_path(const std::string& rel, int n) {
  std::string dir = rel.find('/') == std::string::npos ? "" : path_dirname(rel) + "/";
  std::string base = path_basename(rel);
  auto dot = base.rfind('.');
  std::string suffix = ".v" + std::to_string(n);
  if (dot == std::string::npos || dot == 0) return dir + base + suffix;
  return dir + base.substr(0, dot) + suffix + base.substr(dot);
}

}  // namespace recsync
