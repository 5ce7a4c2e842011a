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

}  // namespace recsync
