#include "cli/cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include "control/control_client.h"
#include "peer/identity.h"
#include "recsync/config.h"
#include "recsync/exit_codes.h"
#include "recsync/units.h"

namespace recsync {
namespace {

using json = nlohmann::json;

struct Ctx {
  std::string config_path = "/etc/recsync/recsyncd.conf";
  std::string socket;  // overrides the config's [control] socket
  bool json_out = false;
};

// The control socket path: --socket, else the config file's, else the default.
Result<std::string> socket_path(const Ctx& c) {
  if (!c.socket.empty()) return c.socket;
  auto cfg = load_config(c.config_path);
  if (!cfg) return cfg.status();
  return cfg->control.socket;
}

// One request; maps failures to exit codes with a message on stderr.
int call(const Ctx& c, const json& req, json* out) {
  auto path = socket_path(c);
  if (!path) {
    std::fprintf(stderr, "recsync: %s\n", path.status().message().c_str());
    return kExitConfig;
  }
  auto r = control_call(*path, req);
  if (!r) {
    const Status& s = r.status();
    std::fprintf(stderr, "recsync: %s\n", s.message().c_str());
    if (s.code() == Status::Code::kRefused) return kExitNoPerm;
    return kExitUnavailable;
  }
  *out = std::move(r).value();
  if (!out->value("ok", false)) {
    std::fprintf(stderr, "recsync: %s\n", out->value("error", "failed").c_str());
    return kExitFailure;
  }
  return kExitOk;
}

std::string human_status(const json& s) {
  std::string o;
  auto dur = [](int64_t sec) { return format_duration(Millis(sec * 1000)); };
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
  if (s["peers"].empty()) {
    o += "peers      none configured (single node)\n";
  } else {
    const json& rp = s["replication"];
    const uint64_t cap = rp["bandwidth_bps"].get<uint64_t>();
    const std::string sched = rp.value("schedule", "");
    o += fmt::format("replicate  {}/s of {}{}; queue {} files ({}), oldest {}\n",
                     format_bytes(rp["rate_bps"].get<uint64_t>()),
                     cap ? format_bytes(cap) + "/s" : std::string("no cap"),
                     sched.empty() ? "" : " (schedule " + sched + ")",
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
  const json& re = s["retention"];
  std::string last = re["last_prune"].get<std::string>();
  o += fmt::format("retention  keep {}; last pass {}; {} pruned in total; {} holds{}\n",
                   re["keep_s"].get<int64_t>() ? dur(re["keep_s"].get<int64_t>()) : "forever",
                   last.empty() ? "not yet" : last, re["pruned_total"].get<uint64_t>(),
                   re["holds"].get<uint64_t>(),
                   re["refused"].get<std::string>().empty()
                       ? ""
                       : "; refused: " + re["refused"].get<std::string>());
  if (s["alarms"].empty()) {
    o += "alarms     none\n";
  } else {
    for (auto& a : s["alarms"])
      o += fmt::format("ALARM      {}: {}\n", a["severity"].get<std::string>(),
                       a["text"].get<std::string>());
  }
  return o;
}

// Nagios plugin convention: one line, exit 0/1/2/3.
int check_status(const json& s) {
  int worst = kExitOk;
  std::string texts;
  for (auto& a : s["alarms"]) {
    int lvl = a["severity"] == "critical" ? kExitCritical : kExitFailure;
    worst = std::max(worst, lvl);
    texts += (texts.empty() ? "" : "; ") + a["text"].get<std::string>();
  }
  const char* word[] = {"OK", "WARNING", "CRITICAL"};
  std::printf("RECSYNC %s - %s | spool_files=%llu archive_files=%llu\n", word[worst],
              texts.empty() ? "no alarms" : texts.c_str(),
              static_cast<unsigned long long>(s["spool"]["files"].get<uint64_t>()),
              static_cast<unsigned long long>(s["archive"]["files"].get<uint64_t>()));
  return worst;
}

volatile std::sig_atomic_t g_interrupted = 0;

int cmd_status(const Ctx& c, bool check, bool watch, int interval_s) {
  if (watch) std::signal(SIGINT, [](int) { g_interrupted = 1; });
  for (;;) {
    json s;
    int rc = call(c, {{"cmd", "status"}}, &s);
    if (rc != kExitOk) {
      if (check) {
        std::printf("RECSYNC UNKNOWN - daemon not reachable\n");
        return kExitUnknown;
      }
      return rc;
    }
    s.erase("ok");
    if (check) return check_status(s);
    if (watch && isatty(STDOUT_FILENO)) std::printf("\033[H\033[2J");
    if (c.json_out)
      std::printf("%s\n", s.dump(watch ? -1 : 2).c_str());
    else
      std::printf("%s", human_status(s).c_str());
    std::fflush(stdout);
    if (!watch) return kExitOk;
    for (int i = 0; i < interval_s * 10 && !g_interrupted; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_interrupted) return kExitOk;
  }
}

}  // namespace

int run_cli(int argc, char** argv) {
  Ctx c;
  CLI::App app{"recsync - operate the local recsyncd"};
  app.require_subcommand(1);
  app.add_option("-c,--config", c.config_path, "recsyncd configuration file")
      ->capture_default_str();
  app.add_option("--socket", c.socket, "control socket (default: from the configuration)");

  bool check = false, watch = false;
  int interval = 2;
  auto* status = app.add_subcommand("status", "show the daemon's state");
  status->add_flag("--json", c.json_out, "machine-readable output");
  status->add_flag("--check", check, "one line and exit 0/1/2/3 (Nagios plugin convention)");
  status->add_flag("--watch", watch, "refresh until interrupted");
  status->add_option("--interval", interval, "seconds between refreshes with --watch")
      ->check(CLI::Range(1, 3600));

  std::string target, reason;
  auto* hold = app.add_subcommand("hold", "keep recordings from being pruned");
  hold->require_subcommand(1);
  auto* hadd = hold->add_subcommand("add", "hold a recording (by id or archive path)");
  hadd->add_option("target", target, "recording id (call uuid) or archive-relative path")
      ->required();
  hadd->add_option("--reason", reason, "why (kept with the hold)");
  auto* hrel = hold->add_subcommand("release", "release a hold");
  hrel->add_option("target", target, "the held id or path")->required();
  auto* hlist = hold->add_subcommand("list", "list holds");
  hlist->add_flag("--json", c.json_out, "machine-readable output");

  bool dry_run = false;
  auto* prune = app.add_subcommand("prune", "run retention now, or show what it would remove");
  prune->add_flag("--dry-run", dry_run, "list what would be pruned, delete nothing");
  prune->add_flag("--json", c.json_out, "machine-readable output");

  std::string id;
  auto* locate = app.add_subcommand("locate", "find a recording in the spool and the archive");
  locate->add_option("id", id, "recording id (call uuid) or path")->required();
  locate->add_flag("--json", c.json_out, "machine-readable output");

  auto* backfill = app.add_subcommand("backfill", "bring this archive in line with the peer's");
  backfill->add_flag("--dry-run", dry_run, "list the plan only");
  backfill->add_flag("--json", c.json_out, "machine-readable output");

  auto* idcmd = app.add_subcommand(
      "id", "print this node's fingerprint (for the peer's [[peer]] fingerprint)");
  bool force = false;
  auto* keygen =
      app.add_subcommand("keygen", "create this node's TLS key and certificate in state_dir");
  keygen->add_flag("--force", force, "replace an existing identity (peers must re-pin)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  json r;
  if (status->parsed()) return cmd_status(c, check, watch, interval);
  if (hadd->parsed()) {
    int rc = call(c, {{"cmd", "hold_add"}, {"target", target}, {"reason", reason}}, &r);
    if (rc == kExitOk)
      std::printf("held %s (%llu archived recordings match now)\n", target.c_str(),
                  static_cast<unsigned long long>(r["matches"].get<uint64_t>()));
    return rc;
  }
  if (hrel->parsed()) {
    int rc = call(c, {{"cmd", "hold_release"}, {"target", target}}, &r);
    if (rc == kExitOk) std::printf("released %s\n", target.c_str());
    return rc;
  }
  if (hlist->parsed()) {
    int rc = call(c, {{"cmd", "hold_list"}}, &r);
    if (rc != kExitOk) return rc;
    if (c.json_out) {
      std::printf("%s\n", r["holds"].dump(2).c_str());
    } else {
      for (auto& h : r["holds"])
        std::printf("%s\t%s\t%s\n", h["target"].get<std::string>().c_str(),
                    h["created"].get<std::string>().c_str(),
                    h["reason"].get<std::string>().c_str());
    }
    return kExitOk;
  }
  if (prune->parsed()) {
    int rc = call(c, {{"cmd", "prune"}, {"dry_run", dry_run}}, &r);
    if (rc != kExitOk) return rc;
    r.erase("ok");
    if (c.json_out) {
      std::printf("%s\n", r.dump(2).c_str());
    } else if (!dry_run) {
      std::printf("retention pass started; see `recsync status`\n");
    } else if (!r["refused"].get<std::string>().empty()) {
      std::printf("retention would refuse to prune: %s\n", r["refused"].get<std::string>().c_str());
    } else {
      for (auto& f : r["would_remove"])
        std::printf("%s\t%s\t%s\n", f["recorded"].get<std::string>().c_str(),
                    format_bytes(f["size"].get<uint64_t>()).c_str(),
                    f["path"].get<std::string>().c_str());
      std::printf("%llu files (%s) would be pruned; %llu kept by holds\n",
                  static_cast<unsigned long long>(r["files"].get<uint64_t>()),
                  format_bytes(r["bytes"].get<uint64_t>()).c_str(),
                  static_cast<unsigned long long>(r["held"].get<uint64_t>()));
    }
    return kExitOk;
  }
  if (locate->parsed()) {
    int rc = call(c, {{"cmd", "locate"}, {"id", id}}, &r);
    if (rc != kExitOk) return rc;
    if (c.json_out) {
      std::printf("%s\n", r["locations"].dump(2).c_str());
    } else {
      for (auto& l : r["locations"])
        std::printf("%s\t%s\t%s\n", l["where"].get<std::string>().c_str(),
                    l["path"].get<std::string>().c_str(),
                    format_bytes(l["size"].get<uint64_t>()).c_str());
    }
    return kExitOk;
  }
  if (idcmd->parsed() || keygen->parsed()) {
    auto cfg = load_config(c.config_path);
    if (!cfg) {
      std::fprintf(stderr, "recsync: %s\n", cfg.status().message().c_str());
      return kExitConfig;
    }
    if (keygen->parsed()) {
      Status s = peer::generate_identity(Env::posix(), cfg->state_dir, cfg->node, force);
      if (!s) {
        std::fprintf(stderr, "recsync: %s\n", s.message().c_str());
        return s.code() == Status::Code::kRefused ? kExitNoPerm : kExitFailure;
      }
    }
    // `id` only reads: an identity created here would belong to whoever ran
    // the command (often root), and the daemon could not read it.
    auto id = peer::load_identity(Env::posix(), cfg->state_dir);
    if (!id && id.status().code() == Status::Code::kNotFound) {
      std::fprintf(stderr,
                   "recsync: no identity in %s yet: start recsyncd once (it creates one) or run "
                   "`recsync keygen` as the user recsyncd runs as\n",
                   cfg->state_dir.c_str());
      return kExitFailure;
    }
    if (!id) {
      std::fprintf(stderr, "recsync: %s\n", id.status().message().c_str());
      return id.status().code() == Status::Code::kRefused ? kExitNoPerm : kExitFailure;
    }
    std::printf("%s\n", id->fingerprint.c_str());
    return kExitOk;
  }
  if (backfill->parsed()) {
    std::fprintf(stderr,
                 "recsync: backfill is not built yet: recordings archived from now on are "
                 "replicated (and queued while the peer is away), but an archive rebuilt empty is "
                 "not refilled from the peer; see recsync(1) CAVEATS\n");
    return kExitFailure;
  }
  return kExitUsage;
}

}  // namespace recsync
