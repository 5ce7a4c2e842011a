#pragma once
// Preflight: what in a parsed configuration would stop recsyncd at start, or
// leave it running uselessly, found without starting anything. One function
// serves both `recsyncd --check-config` and the daemon's own start (which
// refuses to go on after an error), so the two cannot disagree.
//
// Every problem found is reported, not only the first, each as
//   "<file>:<line>: <key>: <reason>"
// where the line is the key's own (Config::at), its section header's when
// the key was left at its default, or none ("<file>: <key>: ...").
//
// Errors (the daemon would exit at start):
//   control.group     the group does not exist
//   control.socket    a non-socket file is in the way; its folder is missing
//                     and cannot be created
//   spool.path, archive.path   missing, a symlink, or not a folder
//   state_dir         not a folder, or missing and cannot be created
//   replication.listen (only with [[peer]]s: bound only then) and
//   metrics.listen    not parseable by the binder (e.g. an unknown IPv6
//                     scope), an address that no interface of this host has,
//                     or the same port as the other listener on an
//                     overlapping address
// Warnings (the daemon starts, but archives nothing it should):
//   spool.include     empty, or a pattern for hidden files (never taken)
//   spool.exclude     a pattern excluding every file, or one equal to an
//                     include pattern
//
// "Creatable" and "writable" are judged for the user running the check
// (access(2)); run --check-config as the daemon's user for an exact answer.
// Nothing is created, bound or changed: a running daemon holding the ports
// and the socket does not make its own config fail.
//
// Thread safety: pure apart from reading the filesystem, the group database
// and the interface list; any thread.
#include <string>
#include <vector>

#include "recsync/config.h"
#include "recsync/env.h"

namespace recsync {

struct PreflightProblem {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  std::string text;  // "file:line: key: reason"
  bool error() const { return severity == Severity::kError; }
};

// Every problem, errors and warnings, in the order of the checks above.
// env: for the spool and archive folders (the daemon's own seam).
std::vector<PreflightProblem> preflight(const Config& c, Env* env);

// Helpers the checks use, exposed for tests.
bool group_exists(const std::string& name);
// "" when `listen` can be bound on this host as far as can be told without
// binding (parseable, wildcard or an address of a local interface), else why.
std::string listen_problem(const std::string& listen);
// Whether two listen addresses would collide on bind: same non-zero port and
// the same address, or a wildcard covering the other (a v6 wildcard covers
// IPv4 too: Linux binds it dual-stack). Unparseable input: false.
bool listens_collide(const std::string& a, const std::string& b);

}  // namespace recsync
