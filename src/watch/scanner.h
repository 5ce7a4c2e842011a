#pragma once
// The full scan of the spool: at start, after an inotify overflow or a lost
// watch, and for each folder the watcher reports new (files created before
// its watch existed).
#include <functional>
#include <string>

#include "recsync/env.h"
#include "recsync/status.h"
#include "watch/file_filter.h"

namespace recsync {

// Walks root recursively through env->list_dir / env->lstat and calls
// on_file(rel, stat) for every regular file whose spool-relative path passes
// `filter`, and on_dir(rel_dir) (if given) for every subfolder entered (not
// for root itself), parent before children.
//
// - Symlinks are never followed (neither to files nor to folders); other
//   non-regular files are skipped; hidden and engine temp names (names.h) are
//   skipped, folders included, without being entered.
// - The d_type from readdir is trusted when known; lstat is called for every
//   matching file (the caller needs size and mtime) and for unknown types.
// - Entries that vanish during the walk (ENOENT, ENOTDIR: replaced) are
//   skipped silently: the spool changes under the scan.
// - An error listing root is returned at once. Any other error (EACCES on a
//   subfolder, EIO) is logged, the walk goes on with the rest, and the first
//   such error is returned at the end, so a partial scan is never mistaken
//   for a complete one yet still reports everything it could reach.
//
// Iterative (no recursion depth limit). Runs on the caller's thread; the
// callbacks must not throw.
Status scan_tree(Env* env, const std::string& root, const FileFilter& filter,
                 const std::function<void(const std::string& rel, const FileStat&)>& on_file,
                 const std::function<void(const std::string& rel_dir)>& on_dir = {});

}  // namespace recsync
