#pragma once
// What a peer may name: the receiving side calls validate_peer_path on every
// OFFER path before touching the filesystem. The path is relative to the
// archive root and names a regular file to create there.
#include <string_view>

#include "recsync/names.h"
#include "recsync/status.h"

namespace recsync::peer {

inline constexpr size_t kMaxPeerPathLen = kMaxRelPathLen;            // whole path, bytes
inline constexpr size_t kMaxPeerComponentLen = kMaxRelComponentLen;  // NAME_MAX

// OK, or kRefused with the reason, when names.h rel_path_problem(rel,
// strict) finds one: empty or absolute; an empty ("a//b", trailing '/'), "."
// or ".." component; NUL, another control character (< 0x20, 0x7f) or a
// backslash; a component longer than kMaxPeerComponentLen or a path longer
// than kMaxPeerPathLen; a hidden component (leading '.'), which includes the
// engine's temp names (names.h kTempPrefix). Pure; thread-safe.
Status validate_peer_path(std::string_view rel);

}  // namespace recsync::peer
