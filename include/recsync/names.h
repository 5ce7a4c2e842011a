#pragma once
// Names the engine itself creates inside the spool and the archive. The
// watcher, scanner and pruner recognise them and leave them alone (except
// that the pruner removes abandoned temps after [retention] tmp_grace).
#include <string>
#include <string_view>

namespace recsync {

// Archive temp files: "<folder>/.recsync-tmp.<final name>.<random>".
inline constexpr std::string_view kTempPrefix = ".recsync-tmp.";

inline bool is_temp_name(std::string_view basename) {
  return basename.substr(0, kTempPrefix.size()) == kTempPrefix;
}
// Partial files of interrupted peer transfers (replication/inbound_file.h):
// kept as resume bases, removed by the retention temp sweep after tmp_grace
// without progress.
inline constexpr std::string_view kPartPrefix = ".recsync-part.";
inline bool is_part_name(std::string_view basename) {
  return basename.substr(0, kPartPrefix.size()) == kPartPrefix;
}
// Hidden files (leading '.') are never recordings.
inline bool is_hidden_name(std::string_view basename) {
  return !basename.empty() && basename.front() == '.';
}
// The recording id shown to operators: the file name without its extension
// (FreeSWITCH names recordings <uuid>.wav, so this is the call uuid).
inline std::string recording_id(std::string_view basename) {
  auto dot = basename.rfind('.');
  return std::string(dot == std::string_view::npos || dot == 0 ? basename
                                                               : basename.substr(0, dot));
}

// Why `rel` is not a safe path relative to a root, or nullptr when it is.
// Always: empty, absolute, an empty ("a//b", trailing '/'), "." or ".."
// component. With strict (what a peer may name): also NUL, another control
// character (< 0x20, 0x7f) or a backslash, a component over 255 bytes, a
// path over 1024 bytes, and a hidden component (leading '.', which includes
// the engine's temp and partial names). The one check for paths that come
// from outside (peers) or from the state database (the pruner).
inline constexpr size_t kMaxRelPathLen = 1024;
inline constexpr size_t kMaxRelComponentLen = 255;
const char* rel_path_problem(std::string_view rel, bool strict);

// The n-th alternative name used when a different file already holds a name
// in the archive (we never replace a file): "a/b.wav", 2 -> "a/b.v2.wav";
// "a/b", 3 -> "a/b.v3". n >= 2. Used by the archiver and the peer receiver.
std::string versioned_rel_path(const std::string& rel, int n);

}  // namespace recsync
