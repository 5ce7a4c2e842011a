#include "watch/scanner.h"

#include <cerrno>
#include <vector>

#include "recsync/log.h"
#include "recsync/names.h"

namespace recsync {
namespace {

// The spool changes under a scan: a name listed a moment ago may be gone or
// replaced by another kind of file.
bool vanished(const Status& s) { return s.err() == ENOENT || s.err() == ENOTDIR; }

}  // namespace

Status scan_tree(Env* env, const std::string& root, const FileFilter& filter,
                 const std::function<void(const std::string& rel, const FileStat&)>& on_file,
                 const std::function<void(const std::string& rel_dir)>& on_dir) {
  Status first_error;
  auto note = [&](const Status& s) {
    log::get("watch")->warn("scan {}: {}", root, s.to_string());
    if (first_error.is_ok()) first_error = s;
  };

  std::vector<std::string> todo;  // rel folders still to list; "" is root
  todo.emplace_back();
  bool at_root = true;
  while (!todo.empty()) {
    std::string rel_dir = std::move(todo.back());
    todo.pop_back();
    std::string dir_path = rel_dir.empty() ? root : path_join(root, rel_dir);
    auto listed = env->list_dir(dir_path);
    if (!listed) {
      if (at_root) return listed.status().with_context("scan");
      if (!vanished(listed.status())) note(listed.status());
      continue;
    }
    at_root = false;
    if (!rel_dir.empty() && on_dir) on_dir(rel_dir);

    // Children are pushed in reverse so folders are entered in listing order.
    std::vector<std::string> subdirs;
    for (const DirEntry& e : listed.value()) {
      if (is_hidden_name(e.name) || is_temp_name(e.name)) continue;
      std::string rel = rel_dir.empty() ? e.name : rel_dir + "/" + e.name;
      DirEntry::Type type = e.type;
      if (type == DirEntry::Type::kLink || type == DirEntry::Type::kOther) continue;
      if (type == DirEntry::Type::kDir) {
        subdirs.push_back(std::move(rel));
        continue;
      }
      if (type == DirEntry::Type::kFile && !filter.matches(rel)) continue;
      auto st = env->lstat(path_join(root, rel));
      if (!st) {
        if (!vanished(st.status())) note(st.status());
        continue;
      }
      if (st->is_dir) {
        subdirs.push_back(std::move(rel));  // d_type unknown, or replaced since readdir
      } else if (st->is_reg && (type == DirEntry::Type::kFile || filter.matches(rel))) {
        on_file(rel, st.value());
      }
    }
    for (auto it = subdirs.rbegin(); it != subdirs.rend(); ++it) todo.push_back(std::move(*it));
  }
  return first_error;
}

}  // namespace recsync
