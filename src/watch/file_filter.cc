#include "watch/file_filter.h"

#include <fnmatch.h>

#include <string_view>

#include "recsync/names.h"

namespace recsync {

FileFilter::FileFilter(std::vector<std::string> include, std::vector<std::string> exclude)
    : include_(std::move(include)),
      exclude_(std::move(exclude)),
      inc_(compile(include_)),
      exc_(compile(exclude_)) {}

std::vector<FileFilter::Pattern> FileFilter::compile(const std::vector<std::string>& globs) {
  std::vector<Pattern> out;
  out.reserve(globs.size());
  for (const auto& g : globs) {
    if (g.empty()) continue;
    Pattern p;
    p.whole_path = g.find('/') != std::string::npos;
    size_t skip = 0;
    while (p.whole_path && skip < g.size() && g[skip] == '/') ++skip;  // "/a/*.wav" == "a/*.wav"
    p.glob = g.substr(skip);
    if (p.glob.empty()) continue;
    out.push_back(std::move(p));
  }
  return out;
}

bool FileFilter::any_match(const std::vector<Pattern>& pats, const std::string& rel,
                           const char* base) {
  for (const auto& p : pats) {
    int r = p.whole_path ? ::fnmatch(p.glob.c_str(), rel.c_str(), FNM_PATHNAME)
                         : ::fnmatch(p.glob.c_str(), base, 0);
    if (r == 0) return true;
  }
  return false;
}

bool FileFilter::matches(const std::string& rel) const {
  if (rel.empty()) return false;
  std::string_view v(rel);
  size_t start = 0;
  for (;;) {
    size_t slash = v.find('/', start);
    std::string_view comp =
        v.substr(start, slash == std::string_view::npos ? v.npos : slash - start);
    // An empty component ("a//b", trailing '/') is not a file name we accept.
    if (comp.empty() || is_hidden_name(comp) || is_temp_name(comp)) return false;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  const char* base = rel.c_str() + start;
  return any_match(inc_, rel, base) && !any_match(exc_, rel, base);
}

}  // namespace recsync
