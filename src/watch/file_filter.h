#pragma once
// Which spool files are recordings: include/exclude glob patterns from
// [spool] include / exclude (default include "*.wav", no exclude).
//
// A path is given relative to the spool root ("2026/11/24/abc.wav" or
// "abc.wav"). It never matches when any of its components is hidden (leading
// '.') or an engine temp name (names.h). A pattern without '/' is matched
// against the basename; a pattern with '/' against the whole relative path
// with FNM_PATHNAME ('*' does not cross '/'; a leading '/' anchors at the
// spool root and is ignored). A path is a recording when some include
// pattern matches and no exclude pattern does; an empty include list
// matches nothing. fnmatch(3) syntax: '*', '?', '[...]'; no '**'.
//
// Thread safety: immutable after construction; matches() may be called from
// any thread.
#include <string>
#include <vector>

namespace recsync {

class FileFilter {
 public:
  FileFilter(std::vector<std::string> include, std::vector<std::string> exclude);

  bool matches(const std::string& rel) const;

  const std::vector<std::string>& include() const { return include_; }
  const std::vector<std::string>& exclude() const { return exclude_; }

 private:
  struct Pattern {
    std::string glob;
    bool whole_path;  // contains '/': match the relative path, not the basename
  };
  static std::vector<Pattern> compile(const std::vector<std::string>& globs);
  static bool any_match(const std::vector<Pattern>& pats, const std::string& rel, const char* base);

  std::vector<std::string> include_, exclude_;
  std::vector<Pattern> inc_, exc_;
};

}  // namespace recsync
