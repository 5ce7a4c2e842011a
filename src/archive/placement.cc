#include "archive/placement.h"

#include <algorithm>
#include <cctype>

namespace recsync {
namespace {

constexpr std::string_view kFrom = ".from-";

bool valid_node_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || !std::isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// The offset of the extension dot in the basename part of rel, or npos.
size_t ext_dot(const std::string& rel) {
  const size_t slash = rel.rfind('/');
  const size_t base = slash == std::string::npos ? 0 : slash + 1;
  const size_t dot = rel.rfind('.');
  return dot == std::string::npos || dot <= base ? std::string::npos : dot;
}

}  // namespace

std::string qualified_rel(const std::string& origin_rel, const std::string& origin) {
  const size_t dot = ext_dot(origin_rel);
  if (dot == std::string::npos) return origin_rel + std::string(kFrom) + origin;
  return origin_rel.substr(0, dot) + std::string(kFrom) + origin + origin_rel.substr(dot);
}

std::optional<Qualified> parse_qualified_rel(const std::string& rel) {
  const size_t slash = rel.rfind('/');
  const size_t base = slash == std::string::npos ? 0 : slash + 1;
  const size_t dot = ext_dot(rel);
  // The qualifier sits before the extension (or at the end without one).
  // Node names may contain '.', and an origin path may itself hold
  // ".from-": the last qualifier is the outermost, so try from the end.
  for (size_t at = rel.rfind(kFrom); at != std::string::npos && at >= base;
       at = at == 0 ? std::string::npos : rel.rfind(kFrom, at - 1)) {
    if (at == base) continue;  // the stem must not be empty
    const size_t end = (dot != std::string::npos && dot > at) ? dot : rel.size();
    std::string origin = rel.substr(at + kFrom.size(), end - at - kFrom.size());
    if (!valid_node_name(origin)) continue;
    std::string origin_rel = rel.substr(0, at) + rel.substr(end);
    if (qualified_rel(origin_rel, origin) != rel) continue;
    return Qualified{std::move(origin_rel), std::move(origin)};
  }
  return std::nullopt;
}

const char* place_action_name(PlaceAction a) {
  switch (a) {
    case PlaceAction::kFree:
      return "free";
    case PlaceAction::kSame:
      return "same";
    case PlaceAction::kConflict:
      return "conflict";
    case PlaceAction::kTakeOver:
      return "take-over";
    case PlaceAction::kQualified:
      return "qualified";
  }
  return "?";
}

PlaceAction decide_placement(const Identity& in, const std::optional<Identity>& occ) {
  if (!occ) return PlaceAction::kFree;
  if (!in.hash.empty() && in.hash == occ->hash) return PlaceAction::kSame;
  if (occ->origin == in.origin) return PlaceAction::kConflict;
  return origin_wins(in.origin, occ->origin) ? PlaceAction::kTakeOver : PlaceAction::kQualified;
}

}  // namespace recsync
