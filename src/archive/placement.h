#pragma once
// "One path, one recording, on every node" (SPEC 4.2): where a recording
// lives in the archive, as pure functions both nodes apply the same way.
//
// A recording's identity is (origin, origin path, hash): the node that
// recorded it, the archive path that node gave it (its own re-takes of the
// same name get name.v2.wav, name.v3.wav, ... there, so one origin never has
// two recordings at one origin path), and its content hash.
//
// The rule: of the recordings of DIFFERENT origins that claim the same
// origin path P, the one whose origin name sorts first (bytewise) is stored
// at P; each other one at qualified_rel(P, its origin) =
// "dir/stem.from-<origin>.ext". The rule depends only on which recordings a
// node holds, never on the order they arrived in: a node that receives the
// winner after it stored a loser at P moves the loser to its qualified path
// first. Two nodes holding the same recordings therefore hold each at the
// same path. Two different contents under one identity (same origin, same
// origin path) are a conflict: neither is overwritten.
//
// A qualified name carries its origin, so an archive rescanned without its
// database (parse_qualified_rel) still knows whose recording it is.
//
// Thread safety: pure functions.
#include <optional>
#include <string>

#include "state/rows.h"

namespace recsync {

struct Identity {
  std::string origin;      // node name (never kLocalOrigin: map it first)
  std::string origin_rel;  // the path its origin gave it
  std::string hash;        // "xxh128:<hex>"; "" = unknown
};

// "a/b.wav", "fs2" -> "a/b.from-fs2.wav"; "a/b" -> "a/b.from-fs2".
std::string qualified_rel(const std::string& origin_rel, const std::string& origin);
// The inverse: "a/b.from-fs2.wav" -> {"a/b.wav", "fs2"}; nullopt when rel is
// not a qualified name (the origin must be a valid node name).
struct Qualified {
  std::string origin_rel;
  std::string origin;
};
std::optional<Qualified> parse_qualified_rel(const std::string& rel);

// True when a recording of origin `a` keeps the plain path against one of
// origin `b` (a != b).
inline bool origin_wins(const std::string& a, const std::string& b) { return a < b; }

// What to do with an incoming recording whose plain path is taken.
enum class PlaceAction {
  kFree,       // nothing there: publish at the plain path
  kSame,       // the same content is there already: nothing to publish
  kConflict,   // the same identity with other content: publish nothing, report
  kTakeOver,   // the occupant loses: move it to its qualified path, then publish
  kQualified,  // the incoming loses: publish at qualified_rel(path, origin)
};
const char* place_action_name(PlaceAction a);

// The decision for `incoming` at its plain path, given what occupies it
// (nullopt: free). hashes compare as given; an unknown occupant hash ("")
// never equals a known one.
PlaceAction decide_placement(const Identity& incoming, const std::optional<Identity>& occupant);

}  // namespace recsync
