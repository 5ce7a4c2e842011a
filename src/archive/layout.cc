#include "archive/layout.h"

#include <ctime>

namespace recsync {

Result<Layout> parse_layout(const std::string& s) {
  if (s == "date") return Layout::kDate;
  if (s == "flat") return Layout::kFlat;
  return Status::invalid("unknown layout '" + s + "' (expected \"date\" or \"flat\")");
}

std::string archive_rel_path(Layout layout, const std::string& spool_rel, WallTime rec_time) {
  if (layout == Layout::kFlat) return spool_rel;
  std::time_t t = std::chrono::system_clock::to_time_t(rec_time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char dir[32];
  std::strftime(dir, sizeof dir, "%Y/%m/%d", &tm);
  return std::string(dir) + "/" + path_basename(spool_rel);
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
