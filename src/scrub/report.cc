#include "scrub/report.h"

#include <fmt/format.h>

#include "recsync/clock.h"
#include "state/rows.h"

namespace recsync::scrub {
namespace {

using json = nlohmann::json;

std::string iso(std::optional<int64_t> ms) { return ms && *ms ? iso8601_utc_ms(*ms) : ""; }

// Every peer asked has answered, and none is sending it.
bool no_peer_sends(const Finding& f) {
  if (f.answers.empty()) return false;
  for (auto& [peer, a] : f.answers)
    if (a == "queued") return false;
  return true;
}

}  // namespace

json finding_json(const Finding& f, const std::string& node) {
  json peers = json::object();
  for (auto& [p, a] : f.answers) peers[p] = a;
  return {{"kind", kind_name(f.kind)},
          {"path", f.rel},
          {"origin", f.origin == kLocalOrigin ? node : f.origin},
          {"origin_path", f.origin_rel},
          {"hash", f.hash},
          {"size", f.size},
          {"found", iso(f.found_ms)},
          {"detail", f.detail},
          {"aside", f.aside},
          {"repair", f.repair},
          {"peers", peers}};
}

json snapshot_json(const Snapshot& s, const std::string& node) {
  json errors = json::object();
  for (Kind k : kErrorKinds) errors[kind_name(k)] = s.pass.errors[static_cast<int>(k)];
  json open = json::array();
  for (const Finding& f : s.open) open.push_back(finding_json(f, node));
  return {{"running", s.running},
          {"unpaced", s.unpaced},
          {"last_start", iso(s.last_start_ms)},
          {"last_end", iso(s.last_end_ms)},
          {"next", iso(s.next_ms)},
          {"interval_s", s.interval_ms / 1000},
          {"rate_bps", s.rate_bps},
          {"repair", s.repair},
          {"files", s.pass.files},
          {"bytes", s.pass.bytes},
          {"skipped", s.pass.skipped},
          {"errors", errors},
          {"repaired_total", s.repairs_total},
          {"open", open}};
}

std::optional<std::pair<std::string, std::string>> scrub_alarm(const Snapshot& s) {
  if (s.open.empty()) return std::nullopt;
  size_t by_kind[kKinds] = {}, stuck = 0, pending = 0;
  for (const Finding& f : s.open) {
    by_kind[static_cast<int>(f.kind)]++;
    if (f.repair != "pending" || no_peer_sends(f))
      stuck++;
    else
      pending++;
  }
  std::string kinds;
  for (Kind k : kErrorKinds)
    if (by_kind[static_cast<int>(k)])
      kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", by_kind[static_cast<int>(k)],
                           kind_name(k));
  std::string text = fmt::format("scrub: {} damaged recording{} ({})", s.open.size(),
                                 s.open.size() == 1 ? "" : "s", kinds);
  if (pending) text += fmt::format(", {} awaiting a good copy from a peer", pending);
  if (stuck)
    text += fmt::format(", {} not repairable here ({})", stuck,
                        !s.peers    ? "no peer"
                        : !s.repair ? "repair is off"
                                    : "no peer has a good copy");
  text += " (`recsync verify` lists them)";
  return std::pair<std::string, std::string>{stuck ? "critical" : "warning", text};
}

}  // namespace recsync::scrub
