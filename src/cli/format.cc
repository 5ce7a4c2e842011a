#include "cli/format.h"

#include <fmt/format.h>

#include "recsync/exit_codes.h"
#include "recsync/units.h"

namespace recsync {

using json = nlohmann::json;

namespace {

std::string dur(int64_t sec) { return format_duration(Millis(sec * 1000)); }

// The replicate line and one or more lines per peer.
std::string replication_lines(const json& s) {
  std::string o;
  if (s["peers"].empty()) {
    o += "peers      none configured (single node)\n";
  } else {
    const json& rp = s["replication"];
    const uint64_t cap = rp["bandwidth_bps"].get<uint64_t>();
    const std::string sched = rp.value("schedule", "");
    const json ovr = rp.value("bandwidth_override", json());
    std::string why = sched.empty() ? "" : " (schedule " + sched + ")";
    if (ovr.is_object())
      why = fmt::format(" (override by uid {}{})", ovr.value("uid", 0),
                        ovr.value("until", "").empty() ? "" : " until " + ovr.value("until", ""));
    o += fmt::format("replicate  {}/s of {}{}; queue {} files ({}), oldest {}\n",
                     format_bytes(rp["rate_bps"].get<uint64_t>()),
                     cap ? format_bytes(cap) + "/s" : std::string("no cap"), why,
                     rp["queue"]["files"].get<uint64_t>(),
                     format_bytes(rp["queue"]["bytes"].get<uint64_t>()),
                     dur(rp["queue"]["oldest_s"].get<int64_t>()));
    for (auto& p : s["peers"]) {
      std::string ack =
          p["last_ack_s"].is_null()
              ? "no ack yet"
              : "last ack " + dur(static_cast<int64_t>(p["last_ack_s"].get<double>())) + " ago";
      o += fmt::format("peer       {} {}: {}; {}; queue {} files ({}); sent {}, received {}\n",
                       p["name"].get<std::string>(), p["address"].get<std::string>(),
                       p["state"].get<std::string>(), ack, p["queue"]["files"].get<uint64_t>(),
                       format_bytes(p["queue"]["bytes"].get<uint64_t>()),
                       format_bytes(p["sent_bytes"].get<uint64_t>()),
                       format_bytes(p["received_bytes"].get<uint64_t>()));
      if (!p["in_flight"].is_null()) {
        const json& f = p["in_flight"];
        const uint64_t size = f["size"].get<uint64_t>();
        o += fmt::format("  sending  {} ({}), {:.0f}% read\n", f["path"].get<std::string>(),
                         format_bytes(size),
                         size ? 100.0 * f["read_bytes"].get<uint64_t>() / size : 100.0);
      }
      if (p["state"] != "connected" && !p["last_error"].get<std::string>().empty())
        o += fmt::format("  error    {}\n", p["last_error"].get<std::string>());
    }
  }
  return o;
}

}  // namespace

std::string human_object_store(const json& t) {
  const json& q = t["queue"];
  const std::string last = t["last_success"].get<std::string>();
  std::string o = fmt::format(
      "objstore   s3://{}/{} at {}: {}; queue {} files ({}), oldest {}; {}/s; {} uploaded ({}) "
      "since start, {} already there; last success {}\n",
      t["bucket"].get<std::string>(), t["prefix"].get<std::string>(),
      t["endpoint"].get<std::string>(), t["state"].get<std::string>(), q["files"].get<uint64_t>(),
      format_bytes(q["bytes"].get<uint64_t>()), dur(q["oldest_s"].get<int64_t>()),
      format_bytes(t["rate_bps"].get<uint64_t>()), t["uploaded_files"].get<uint64_t>(),
      format_bytes(t["uploaded_bytes"].get<uint64_t>()), t["already_present"].get<uint64_t>(),
      last.empty() ? "none yet" : last);
  const json& ob = t["objects"];
  o += fmt::format("  objects  {} verified ({}), {} legal holds; local copies kept {}{}\n",
                   ob["files"].get<uint64_t>(), format_bytes(ob["bytes"].get<uint64_t>()),
                   ob["legal_holds"].get<uint64_t>(), dur(t["keep_local_s"].get<int64_t>()),
                   t["object_lock"].get<bool>() ? "; Object Lock on" : "");
  if (!t["in_flight"].is_null()) {
    const json& f = t["in_flight"];
    const uint64_t size = f["size"].get<uint64_t>();
    o += fmt::format("  sending  {} ({}), {:.0f}% sent\n", f["path"].get<std::string>(),
                     format_bytes(size),
                     size ? 100.0 * f["sent_bytes"].get<uint64_t>() / size : 100.0);
  }
  if (!t["last_error"].get<std::string>().empty())
    o +=
        fmt::format("  error    {} ({}, {})\n", t["last_error"].get<std::string>(),
                    t["last_error_kind"].get<std::string>(), t["last_error_at"].get<std::string>());
  return o;
}

std::string scrub_errors_text(const json& errors) {
  std::string t;
  uint64_t n = 0;
  for (auto& [k, v] : errors.items())
    if (v.get<uint64_t>()) {
      t += fmt::format("{}{} {}", t.empty() ? "" : ", ", v.get<uint64_t>(), k);
      n += v.get<uint64_t>();
    }
  return n ? t : "no damage";
}

std::string human_scrub(const json& sc) {
  const std::string last = sc.value("last_start", ""), end = sc.value("last_end", "");
  const uint64_t rate = sc.value("rate_bps", uint64_t{0});
  std::string o;
  if (sc.value("running", false))
    o = fmt::format("scrub      running since {} at {}: {} files ({}) checked, {}\n", last,
                    sc.value("unpaced", false) ? "full speed"
                    : rate                     ? format_bytes(rate) + "/s"
                                               : "full speed",
                    sc["files"].get<uint64_t>(), format_bytes(sc["bytes"].get<uint64_t>()),
                    scrub_errors_text(sc["errors"]));
  else if (end.empty())
    o = "scrub      no pass yet";
  else
    o = fmt::format("scrub      last pass {} to {}: {} files ({}), {}", last, end,
                    sc["files"].get<uint64_t>(), format_bytes(sc["bytes"].get<uint64_t>()),
                    scrub_errors_text(sc["errors"]));
  if (!sc.value("running", false)) {
    const std::string next = sc.value("next", "");
    o += next.empty() ? "; no background passes\n" : "; next " + next + "\n";
  }
  if (sc.value("repaired_total", uint64_t{0}))
    o += fmt::format("           {} repaired from a peer since start\n",
                     sc["repaired_total"].get<uint64_t>());
  return o;
}

std::string human_findings(const json& findings) {
  std::string o;
  for (const json& f : findings) {
    std::string peers;
    for (auto& [p, a] : f["peers"].items())
      peers += fmt::format("{}{}: {}", peers.empty() ? " (" : ", ", p, a.get<std::string>());
    if (!peers.empty()) peers += ")";
    o += fmt::format("{:<10} {}: {}; repair: {}{}\n", f["kind"].get<std::string>(),
                     f["path"].get<std::string>(), f["detail"].get<std::string>(),
                     f["repair"].get<std::string>(), peers);
  }
  return o;
}

std::string human_status(const json& s) {
  std::string o;
  o += fmt::format("recsyncd {} on {}, up {}\n", s["version"].get<std::string>(),
                   s["node"].get<std::string>(), dur(s["uptime_s"].get<int64_t>()));
  const json& sp = s["spool"];
  o += fmt::format("spool      {}: {} files ({}) waiting, oldest {}, {:.1f}% used\n",
                   sp["path"].get<std::string>(), sp["files"].get<uint64_t>(),
                   format_bytes(sp["bytes"].get<uint64_t>()), dur(sp["oldest_s"].get<int64_t>()),
                   sp["used_pct"].get<double>());
  const json& ar = s["archive"];
  o += fmt::format(
      "archive    {}: {} files ({}), {:.1f}% used; {} in flight, {} failing; "
      "{} archived since start{}\n",
      ar["path"].get<std::string>(), ar["files"].get<uint64_t>(),
      format_bytes(ar["bytes"].get<uint64_t>()), ar["used_pct"].get<double>(),
      ar["in_flight"].get<uint64_t>(), ar["failing"].get<uint64_t>(),
      ar["archived_since_start"].get<uint64_t>(),
      ar["reconciled"].get<bool>() ? "" : " (still scanning the archive)");
  o += replication_lines(s);
  if (s.contains("object_store") && s["object_store"].value("enabled", false))
    o += human_object_store(s["object_store"]);
  const json& re = s["retention"];
  std::string last = re["last_prune"].get<std::string>();
  o += fmt::format("retention  keep {}; last pass {}; {} pruned in total; {} holds{}\n",
                   re["keep_s"].get<int64_t>() ? dur(re["keep_s"].get<int64_t>()) : "forever",
                   last.empty() ? "not yet" : last, re["pruned_total"].get<uint64_t>(),
                   re["holds"].get<uint64_t>(),
                   re["refused"].get<std::string>().empty()
                       ? ""
                       : "; refused: " + re["refused"].get<std::string>());
  if (re.contains("waiting") && !re["waiting"].get<std::string>().empty())
    o += "           next pass " + re["waiting"].get<std::string>() + "\n";
  if (s.contains("erasure") && s["erasure"].is_object()) {
    const json& er = s["erasure"];
    std::string peers;
    for (auto& p : er["peers"])
      peers += fmt::format(
          "; {} not acked by {}{}", p["pending"].get<uint64_t>(), p["peer"].get<std::string>(),
          p["refused"].get<uint64_t>()
              ? fmt::format(" ({} refused: held there)", p["refused"].get<uint64_t>())
              : "");
    o += fmt::format("erasure    {} erased here, {} tombstones{}{}\n",
                     er["erased_total"].get<uint64_t>(), er["tombstones"].get<uint64_t>(),
                     er["pending"].get<uint64_t>()
                         ? fmt::format(", {} not finished", er["pending"].get<uint64_t>())
                         : "",
                     peers);
  }
  if (s.contains("backfill") && s["backfill"].is_object()) {
    const json& bf = s["backfill"];
    const uint64_t total = bf["bytes_total"].get<uint64_t>();
    o += fmt::format("backfill   {} {} (started {}): {} of {} files, {} of {}{}\n",
                     bf["job"].get<int64_t>(), bf["state"].get<std::string>(),
                     bf["started"].get<std::string>(), bf["files_done"].get<uint64_t>(),
                     bf["files_total"].get<uint64_t>(),
                     format_bytes(bf["bytes_done"].get<uint64_t>()), format_bytes(total),
                     bf["dry_run"].get<bool>() ? " (dry run)" : "");
  }
  if (s.contains("scrub") && s["scrub"].is_object()) o += human_scrub(s["scrub"]);
  if (s["alarms"].empty()) {
    o += "alarms     none\n";
  } else {
    for (auto& a : s["alarms"])
      o += fmt::format("ALARM      {}: {}\n", a["severity"].get<std::string>(),
                       a["text"].get<std::string>());
  }
  return o;
}

CheckResult check_status(const json& s) {
  int worst = kExitOk;
  std::string texts;
  for (auto& a : s["alarms"]) {
    int lvl = a["severity"] == "critical" ? kExitCritical : kExitFailure;
    worst = std::max(worst, lvl);
    texts += (texts.empty() ? "" : "; ") + a["text"].get<std::string>();
  }
  const char* word[] = {"OK", "WARNING", "CRITICAL"};
  return {worst,
          fmt::format("RECSYNC {} - {} | spool_files={} archive_files={}", word[worst],
                      texts.empty() ? "no alarms" : texts, s["spool"]["files"].get<uint64_t>(),
                      s["archive"]["files"].get<uint64_t>())};
}

std::string human_dry_run(const json& r) {
  if (!r["refused"].get<std::string>().empty())
    return "retention would refuse to prune: " + r["refused"].get<std::string>() + "\n";
  std::string o;
  for (auto& f : r["would_remove"])
    o += fmt::format("{}\t{}\t{}\n", f["recorded"].get<std::string>(),
                     format_bytes(f["size"].get<uint64_t>()), f["path"].get<std::string>());
  o += fmt::format("{} files ({}) would be pruned; {} kept by holds\n", r["files"].get<uint64_t>(),
                   format_bytes(r["bytes"].get<uint64_t>()), r["held"].get<uint64_t>());
  if (r.value("offloaded", 0) || r.value("unstored", 0))
    o += fmt::format(
        "of them {} local copies at keep_local (object verified in the store); {} "
        "past keep_local kept until their upload is verified\n",
        r.value("offloaded", 0), r.value("unstored", 0));
  if (r.contains("objects_would_remove")) {
    for (auto& f : r["objects_would_remove"])
      o += fmt::format("{}\t{}\tobject {}\n", f["recorded"].get<std::string>(),
                       format_bytes(f["size"].get<uint64_t>()), f["key"].get<std::string>());
    if (r.value("objects", 0) || r.value("objects_held", 0))
      o += fmt::format("{} objects ({}) would be deleted from the object store; {} kept by holds\n",
                       r.value("objects", 0), format_bytes(r.value("object_bytes", uint64_t{0})),
                       r.value("objects_held", 0));
  }
  return o;
}

std::string human_locations(const json& locations) {
  std::string o;
  for (auto& l : locations) {
    o += fmt::format("{}\t{}\t{}", l["where"].get<std::string>(), l["path"].get<std::string>(),
                     format_bytes(l["size"].get<uint64_t>()));
    if (l.contains("hash")) o += "\t" + l["hash"].get<std::string>();
    if (l.value("held", false)) o += "\theld";
    if (l.value("legal_hold", false)) o += "\tlegal hold";
    o += "\n";
  }
  return o;
}

std::string human_holds(const json& holds) {
  std::string o;
  for (auto& h : holds)
    o += fmt::format("{}\t{}\t{}\n", h["target"].get<std::string>(),
                     h["created"].get<std::string>(), h["reason"].get<std::string>());
  return o;
}

namespace {

uint64_t u64(const json& j, const char* k) { return j.contains(k) ? j[k].get<uint64_t>() : 0; }

uint64_t conflicts(const json& bf) {
  uint64_t n = 0;
  for (auto& p : bf["peers"])
    if (p["plan"].is_object()) n += p["plan"]["conflict"]["files"].get<uint64_t>();
  return n;
}

}  // namespace

std::string backfill_bar(const json& bf, double rate_bps, int width) {
  const uint64_t total = u64(bf, "bytes_total"), done = u64(bf, "bytes_done");
  const double frac = total ? std::min(1.0, double(done) / double(total)) : 0.0;
  const int fill = static_cast<int>(frac * width);
  std::string planning;
  for (auto& p : bf["peers"])
    if (p["state"] == "pending")
      planning += (planning.empty() ? "" : ", ") + p["name"].get<std::string>();
  std::string eta = "--";
  if (rate_bps > 0 && total > done)
    eta = format_duration(Millis(static_cast<int64_t>(double(total - done) / rate_bps * 1000)));
  return fmt::format("[{}{}] {:3.0f}%  {}/{} files  {}/{}  {}/s  ETA {}{}", std::string(fill, '#'),
                     std::string(width - fill, ' '), frac * 100, u64(bf, "files_done"),
                     u64(bf, "files_total"), format_bytes(done), format_bytes(total),
                     format_bytes(static_cast<uint64_t>(rate_bps)), eta,
                     planning.empty() ? "" : "  (planning with " + planning + ")");
}

json backfill_progress_line(const json& bf, double rate_bps) {
  const uint64_t total = u64(bf, "bytes_total"), done = u64(bf, "bytes_done");
  json j = {{"job", bf["job"]},
            {"state", bf["state"]},
            {"files_done", u64(bf, "files_done")},
            {"files_total", u64(bf, "files_total")},
            {"bytes_done", done},
            {"bytes_total", total},
            {"rate_bps", static_cast<uint64_t>(rate_bps)}};
  j["eta_s"] = rate_bps > 0 && total > done ? json(double(total - done) / rate_bps) : json(nullptr);
  return j;
}

std::string backfill_summary(const json& bf) {
  std::string o =
      fmt::format("backfill {} {}{}\n", bf["job"].get<int64_t>(), bf["state"].get<std::string>(),
                  bf["dry_run"].get<bool>() ? " (dry run: nothing moved)" : "");
  for (auto& p : bf["peers"]) {
    o += fmt::format("  {}: {}", p["name"].get<std::string>(), p["state"].get<std::string>());
    if (p["plan"].is_object()) {
      const json& pl = p["plan"];
      auto t = [&](const char* k) {
        return fmt::format("{} ({})", pl[k]["files"].get<uint64_t>(),
                           format_bytes(pl[k]["bytes"].get<uint64_t>()));
      };
      o += fmt::format("; to pull {}, to push {}, in sync {}, conflicts {}, skipped {}", t("pull"),
                       t("push"),
                       pl["in_sync"]["files"].get<uint64_t>() + pl["files_equal"].get<uint64_t>(),
                       pl["conflict"]["files"].get<uint64_t>(),
                       pl["skip_past_retention"]["files"].get<uint64_t>() +
                           pl["skip_tombstoned"]["files"].get<uint64_t>() +
                           pl["skip_planned"]["files"].get<uint64_t>());
    }
    if (!p["error"].get<std::string>().empty()) o += " (" + p["error"].get<std::string>() + ")";
    o += "\n";
  }
  if (!bf["dry_run"].get<bool>())
    o += fmt::format(
        "  pulled {} files ({}), pushed {} files ({}), {} no longer there\n",
        bf["pull"]["done"]["files"].get<uint64_t>(),
        format_bytes(bf["pull"]["done"]["bytes"].get<uint64_t>()),
        bf["push"]["done"]["files"].get<uint64_t>(),
        format_bytes(bf["push"]["done"]["bytes"].get<uint64_t>()),
        bf["pull"]["gone"]["files"].get<uint64_t>() + bf["push"]["gone"]["files"].get<uint64_t>());
  return o;
}

int backfill_exit_code(const json& bf) {
  const std::string st = bf["state"];
  if (st == "failed") return kExitCritical;
  if (st != "done" || conflicts(bf) > 0) return kExitFailure;
  return kExitOk;
}

std::string human_bandwidth(const json& r) {
  std::string o;
  if (r.contains("cleared"))
    o = r.value("cleared", false) ? "override cleared; " : "no override was in force; ";
  const std::string src = r.value("source", "");
  const std::string base_src = r.value("base_source", "");
  auto from = [&](const std::string& source) {
    return source == "schedule" ? "schedule \"" + r.value("schedule", "") + "\"" : source;
  };
  o += fmt::format("replication cap {}", format_rate(r.value("cap_bps", uint64_t{0})));
  const json ovr = r.value("override", json());
  if (src != "override" || !ovr.is_object()) return o + " (" + from(src) + ")\n";
  const std::string until = ovr.value("until", "");
  o += fmt::format(" (override by uid {} at {}, {}); then {} ({})\n", ovr.value("uid", 0),
                   ovr.value("set", ""),
                   until.empty() ? "until `recsync bandwidth --clear`" : "until " + until,
                   format_rate(r.value("base_bps", uint64_t{0})), from(base_src));
  return o;
}

}  // namespace recsync
