#include "cli/cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <deque>
#include <thread>

#include "cli/format.h"
#include "control/control_client.h"
#include "peer/identity.h"
#include "recsync/config.h"
#include "recsync/exit_codes.h"
#include "recsync/units.h"

namespace recsync {
namespace {

using json = nlohmann::json;

// What the command line said, for every subcommand.
struct Ctx {
  std::string config_path = "/etc/recsync/recsyncd.conf";
  std::string socket;  // overrides the config's [control] socket
  bool json_out = false;
  bool check = false, watch = false, dry_run = false, force = false, window = false;
  int interval = 2;
  std::string target, reason, id;
  std::string rate, for_duration;    // bandwidth RATE [--for D]
  bool clear = false;                // bandwidth --clear
  bool now = false;                  // verify --now
  std::vector<std::string> targets;  // verify ID|PATH...
};

void print(const std::string& s) { std::fputs(s.c_str(), stdout); }
void print_json(const json& j) { std::printf("%s\n", j.dump(2).c_str()); }

// The control socket path: --socket, else the config file's, else the default.
Result<std::string> socket_path(const Ctx& c) {
  if (!c.socket.empty()) return c.socket;
  auto cfg = load_config(c.config_path);
  if (!cfg) return cfg.status();
  return cfg->control.socket;
}

// One request; maps failures to exit codes with a message on stderr.
int call(const Ctx& c, const json& req, json* out,
         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto path = socket_path(c);
  if (!path) {
    std::fprintf(stderr, "recsync: %s\n", path.status().message().c_str());
    return kExitConfig;
  }
  auto r = control_call(*path, req, timeout);
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

volatile std::sig_atomic_t g_interrupted = 0;

int cmd_status(const Ctx& c) {
  if (c.watch) std::signal(SIGINT, [](int) { g_interrupted = 1; });
  for (;;) {
    json s;
    int rc = call(c, {{"cmd", "status"}}, &s);
    if (rc != kExitOk) {
      if (c.check) {
        std::printf("RECSYNC UNKNOWN - daemon not reachable\n");
        return kExitUnknown;
      }
      return rc;
    }
    s.erase("ok");
    if (c.check) {
      CheckResult r = check_status(s);
      std::printf("%s\n", r.line.c_str());
      return r.exit_code;
    }
    if (c.watch && isatty(STDOUT_FILENO)) std::printf("\033[H\033[2J");
    if (c.json_out)
      std::printf("%s\n", s.dump(c.watch ? -1 : 2).c_str());
    else
      print(human_status(s));
    std::fflush(stdout);
    if (!c.watch) return kExitOk;
    for (int i = 0; i < c.interval * 10 && !g_interrupted; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_interrupted) return kExitOk;
  }
}

int cmd_hold_add(const Ctx& c) {
  json r;
  int rc = call(c, {{"cmd", "hold_add"}, {"target", c.target}, {"reason", c.reason}}, &r);
  if (rc != kExitOk) return rc;
  const auto n = r["matches"].get<uint64_t>();
  std::printf("held %s (%llu archived recording%s now)\n", c.target.c_str(),
              static_cast<unsigned long long>(n), n == 1 ? " matches" : "s match");
  return rc;
}

int cmd_hold_release(const Ctx& c) {
  json r;
  int rc = call(c, {{"cmd", "hold_release"}, {"target", c.target}}, &r);
  if (rc == kExitOk) std::printf("released %s\n", c.target.c_str());
  return rc;
}

int cmd_hold_list(const Ctx& c) {
  json r;
  int rc = call(c, {{"cmd", "hold_list"}}, &r);
  if (rc != kExitOk) return rc;
  c.json_out ? print_json(r["holds"]) : print(human_holds(r["holds"]));
  return kExitOk;
}

int cmd_prune(const Ctx& c) {
  json r;
  int rc = call(c, {{"cmd", "prune"}, {"dry_run", c.dry_run}}, &r);
  if (rc != kExitOk) return rc;
  r.erase("ok");
  if (c.json_out)
    print_json(r);
  else if (!c.dry_run)
    std::printf("retention pass started; see `recsync status`\n");
  else
    print(human_dry_run(r));
  return kExitOk;
}

int cmd_locate(const Ctx& c) {
  json r;
  int rc = call(c, {{"cmd", "locate"}, {"id", c.id}}, &r);
  if (rc != kExitOk) return rc;
  c.json_out ? print_json(r["locations"]) : print(human_locations(r["locations"]));
  return kExitOk;
}

// Erases one recording here and on every peer (they are told through a
// durable queue; status shows what they have not acked yet). The object
// store's deletions can take a while.
int cmd_erase(const Ctx& c) {
  if (c.reason.empty()) {
    std::fprintf(stderr, "recsync: erase needs --reason TEXT (kept in the audit log)\n");
    return kExitUsage;
  }
  json r;
  int rc = call(c, {{"cmd", "erase"}, {"target", c.target}, {"reason", c.reason}}, &r,
                std::chrono::seconds(120));
  if (rc == kExitFailure && c.json_out) print_json(r);
  if (rc != kExitOk) return rc;
  r.erase("ok");
  if (c.json_out) {
    print_json(r);
    return kExitOk;
  }
  std::printf("erased %s (%s's recording, %s)\n", r["origin_path"].get<std::string>().c_str(),
              r["origin"].get<std::string>().c_str(), r["hash"].get<std::string>().c_str());
  for (auto& p : r["removed"]) std::printf("  deleted %s\n", p.get<std::string>().c_str());
  if (r.contains("object_store"))
    std::printf("  object store: %s\n", r["object_store"].get<std::string>().c_str());
  std::string peers;
  for (auto& p : r["peers"]) peers += (peers.empty() ? "" : ", ") + p.get<std::string>();
  if (!peers.empty())
    std::printf("  peers told through the erase queue: %s (see recsync status)\n", peers.c_str());
  return kExitOk;
}

// A download can take a while; the window of a rebuilt node much longer.
int cmd_fetch(const Ctx& c) {
  if (c.window == !c.id.empty()) {
    std::fprintf(stderr, "recsync: fetch takes a recording id or path, or --window (not both)\n");
    return kExitUsage;
  }
  json r;
  json req = {{"cmd", "fetch"}, {"id", c.id}, {"window", c.window}};
  int rc = call(c, req, &r, c.window ? std::chrono::hours(24) : std::chrono::hours(1));
  if (rc != kExitOk) return rc;
  r.erase("ok");
  if (c.json_out) {
    print_json(r);
  } else if (c.window) {
    std::printf(
        "%llu objects of this node in the store, %llu indexed; %llu fetched (%s), %llu already "
        "here; %llu of other nodes left alone; %llu errors%s\n",
        (unsigned long long)r["listed"].get<uint64_t>(),
        (unsigned long long)r["indexed"].get<uint64_t>(),
        (unsigned long long)r["fetched"].get<uint64_t>(),
        format_bytes(r["bytes"].get<uint64_t>()).c_str(),
        (unsigned long long)r["already"].get<uint64_t>(),
        (unsigned long long)r["other_nodes"].get<uint64_t>(),
        (unsigned long long)r["errors"].get<uint64_t>(),
        r["last_error"].get<std::string>().empty()
            ? ""
            : (" (last: " + r["last_error"].get<std::string>() + ")").c_str());
  } else {
    for (auto& f : r["fetched"])
      std::printf("%s\t%s\t%s\n", f["already"].get<bool>() ? "already" : "fetched",
                  f["path"].get<std::string>().c_str(),
                  format_bytes(f["size"].get<uint64_t>()).c_str());
  }
  return r.value("errors", 0) > 0 ? kExitFailure : kExitOk;
}

// `id` only reads: an identity created here would belong to whoever ran the
// command (often root), and the daemon could not read it. `keygen` creates.
int cmd_identity(const Ctx& c, bool keygen) {
  auto cfg = load_config(c.config_path);
  if (!cfg) {
    std::fprintf(stderr, "recsync: %s\n", cfg.status().message().c_str());
    return kExitConfig;
  }
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "recsync: %s\n", s.message().c_str());
    return s.code() == Status::Code::kRefused ? kExitNoPerm : kExitFailure;
  };
  if (keygen) {
    Status s = peer::generate_identity(Env::posix(), cfg->state_dir, cfg->node, c.force);
    if (!s) return fail(s);
  }
  auto id = peer::load_identity(Env::posix(), cfg->state_dir);
  if (!id && id.status().code() == Status::Code::kNotFound) {
    std::fprintf(stderr,
                 "recsync: no identity in %s yet: start recsyncd once (it creates one) or run "
                 "`recsync keygen` as the user recsyncd runs as\n",
                 cfg->state_dir.c_str());
    return kExitFailure;
  }
  if (!id) return fail(id.status());
  std::printf("%s\n", id->fingerprint.c_str());
  return kExitOk;
}

// Starts a backfill (or attaches to the running one) and follows it once a
// second until it ends; Ctrl-C leaves it running in the daemon.
int cmd_backfill(const Ctx& c) {
  json r;
  json req = {{"cmd", "backfill_start"}, {"dry_run", c.dry_run}};
  if (!c.target.empty()) req["peer"] = c.target;
  if (int rc = call(c, req, &r); rc != kExitOk) return rc;
  const int64_t job = r["job"].get<int64_t>();
  const bool bar = !c.json_out && isatty(STDOUT_FILENO);
  std::signal(SIGINT, [](int) { g_interrupted = 1; });
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> samples;
  for (;;) {
    if (int rc = call(c, {{"cmd", "backfill_status"}}, &r); rc != kExitOk) return rc;
    const json& bf = r["backfill"];
    if (bf.is_null() || bf["job"].get<int64_t>() != job) {
      std::fprintf(stderr, "recsync: backfill %lld is no longer the daemon's newest\n",
                   static_cast<long long>(job));
      return kExitFailure;
    }
    const auto now = std::chrono::steady_clock::now();
    samples.emplace_back(now, bf["bytes_done"].get<uint64_t>());
    while (samples.size() > 2 && now - samples.front().first > std::chrono::seconds(10))
      samples.pop_front();
    const double secs = std::chrono::duration<double>(now - samples.front().first).count();
    const double rate =
        secs > 0.5 ? double(samples.back().second - samples.front().second) / secs : 0.0;
    const bool over = bf["state"] != "running";
    if (bar)
      std::printf("\r\033[K%s", backfill_bar(bf, rate).c_str());
    else if (!over)
      std::printf("%s\n", backfill_progress_line(bf, rate).dump().c_str());
    std::fflush(stdout);
    if (over) {
      if (bar) std::printf("\n");
      if (c.json_out) {
        json fin = bf;
        fin["final"] = true;
        std::printf("%s\n", fin.dump().c_str());
      } else {
        print(backfill_summary(bf));
      }
      return backfill_exit_code(bf);
    }
    for (int i = 0; i < 10 && !g_interrupted; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_interrupted) {
      if (bar) std::printf("\n");
      std::fprintf(stderr,
                   "recsync: backfill %lld goes on in the daemon; `recsync backfill` shows it "
                   "again\n",
                   static_cast<long long>(job));
      return kExitOk;
    }
  }
}

// verify ID|PATH...: reads them now; 0 all good, 1 damage found.
int verify_targets(const Ctx& c) {
  json r;
  if (int rc =
          call(c, {{"cmd", "scrub_check"}, {"targets", c.targets}}, &r, std::chrono::minutes(30));
      rc != kExitOk)
    return rc;
  r.erase("ok");
  if (c.json_out)
    print_json(r);
  else if (r["findings"].empty())
    std::printf("%llu recording(s) checked: all match their stored hash\n",
                static_cast<unsigned long long>(r["checked"].get<uint64_t>()));
  else
    print(human_findings(r["findings"]));
  return r["findings"].empty() ? kExitOk : kExitFailure;
}

// verify: a whole pass (or the running one), followed to its end; Ctrl-C
// leaves it running in the daemon. 0 no damage, 1 damage found.
int cmd_verify(const Ctx& c) {
  if (!c.targets.empty()) return verify_targets(c);
  json r;
  if (int rc = call(c, {{"cmd", "scrub_status"}}, &r); rc != kExitOk) return rc;
  const std::string before = r["scrub"].value("last_end", "");
  const bool attach = r["scrub"].value("running", false);
  if (int rc = call(c, {{"cmd", "scrub_start"}, {"unpaced", c.now}}, &r); rc != kExitOk) return rc;
  const bool bar = !c.json_out && isatty(STDOUT_FILENO);
  std::signal(SIGINT, [](int) { g_interrupted = 1; });
  for (;;) {
    if (int rc = call(c, {{"cmd", "scrub_status"}}, &r); rc != kExitOk) return rc;
    const json& sc = r["scrub"];
    const bool over = !sc.value("running", false) && (attach || sc.value("last_end", "") != before);
    if (bar)
      std::printf("\r\033[Kscrub: %llu files (%s) checked, %s",
                  static_cast<unsigned long long>(sc["files"].get<uint64_t>()),
                  format_bytes(sc["bytes"].get<uint64_t>()).c_str(),
                  scrub_errors_text(sc["errors"]).c_str());
    std::fflush(stdout);
    if (over) {
      if (bar) std::printf("\n");
      if (c.json_out) {
        print_json(sc);
      } else {
        print(human_scrub(sc));
        print(human_findings(sc["open"]));
      }
      uint64_t errors = 0;
      for (auto& [k, v] : sc["errors"].items()) errors += v.get<uint64_t>();
      return errors == 0 && sc["open"].empty() ? kExitOk : kExitFailure;
    }
    for (int i = 0; i < 5 && !g_interrupted; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_interrupted) {
      if (bar) std::printf("\n");
      std::fprintf(stderr, "recsync: the scrub goes on in the daemon; `recsync status` shows it\n");
      return kExitOk;
    }
  }
}

int usage(const std::string& why) {
  std::fprintf(stderr, "recsync: %s\n", why.c_str());
  return kExitUsage;
}

// The request for `bandwidth [RATE [--for D] | --clear]`, or a usage error.
Result<json> bandwidth_request(const Ctx& c) {
  json req = {{"cmd", "bandwidth"}, {"action", "show"}};
  if (c.clear) {
    if (!c.rate.empty() || !c.for_duration.empty())
      return Status::invalid("bandwidth --clear takes no RATE and no --for");
    req["action"] = "clear";
    return req;
  }
  if (c.rate.empty()) {
    if (!c.for_duration.empty()) return Status::invalid("bandwidth --for needs a RATE");
    return req;
  }
  auto rate = parse_rate(c.rate);
  if (!rate) return Status::invalid("bandwidth RATE: " + rate.status().message());
  req["action"] = "set";
  req["cap_bps"] = *rate;
  if (!c.for_duration.empty()) {
    auto d = parse_duration(c.for_duration);
    if (!d) return Status::invalid("bandwidth --for: " + d.status().message());
    if (d->count() <= 0) return Status::invalid("bandwidth --for: must be longer than 0");
    req["for_ms"] = d->count();
  }
  return req;
}

int cmd_bandwidth(const Ctx& c) {
  auto req = bandwidth_request(c);
  if (!req) return usage(req.status().message());
  json r;
  int rc = call(c, *req, &r);
  if (rc != kExitOk) return rc;
  r.erase("ok");
  c.json_out ? print_json(r) : print(human_bandwidth(r));
  return kExitOk;
}

// The subcommands that act on single recordings: hold, locate, erase,
// fetch, verify. on(f) is the callback that makes f the command to run.
using OnParsed = std::function<std::function<void()>(int (*)(const Ctx&))>;
void add_recording_commands(CLI::App& app, Ctx& c, const OnParsed& on) {
  auto* hold = app.add_subcommand("hold", "keep recordings from being pruned");
  hold->require_subcommand(1);
  auto* hadd = hold->add_subcommand("add", "hold a recording (by id or archive path)");
  hadd->add_option("target", c.target, "recording id (call uuid) or archive-relative path")
      ->required();
  hadd->add_option("--reason", c.reason, "why (kept with the hold)");
  hadd->callback(on(cmd_hold_add));
  auto* hrel = hold->add_subcommand("release", "release a hold");
  hrel->add_option("target", c.target, "the held id or path")->required();
  hrel->callback(on(cmd_hold_release));
  auto* hlist = hold->add_subcommand("list", "list holds");
  hlist->add_flag("--json", c.json_out, "machine-readable output");
  hlist->callback(on(cmd_hold_list));

  auto* locate = app.add_subcommand("locate", "find a recording in the spool and the archive");
  locate->add_option("id", c.id, "recording id (call uuid) or path")->required();
  locate->add_flag("--json", c.json_out, "machine-readable output");
  locate->callback(on(cmd_locate));

  auto* erase = app.add_subcommand(
      "erase", "erase one recording here and on every peer (GDPR Art. 17); refused while held");
  erase->add_option("target", c.target, "recording id (call uuid) or archive-relative path")
      ->required();
  erase->add_option("--reason", c.reason, "why (required; kept in the audit log on every node)");
  erase->add_flag("--json", c.json_out, "machine-readable output");
  erase->callback(on(cmd_erase));

  auto* fetch = app.add_subcommand(
      "fetch", "bring a recording back from the object store into the archive (for playback)");
  fetch->add_option("id", c.id, "recording id (call uuid) or archive-relative path");
  fetch->add_flag("--window", c.window,
                  "a rebuilt node: re-index this node's objects and fetch its keep_local window");
  fetch->add_flag("--json", c.json_out, "machine-readable output");
  fetch->callback(on(cmd_fetch));

  auto* verify = app.add_subcommand(
      "verify", "re-read archived recordings against their stored hash (a scrub pass now)");
  verify->add_option("target", c.targets,
                     "recording ids or archive paths to check now (default: a whole pass)");
  verify->add_flag("--now", c.now, "read at full speed, not at [scrub] rate");
  verify->add_flag("--json", c.json_out, "machine-readable output");
  verify->callback(on(cmd_verify));
}

// The subcommands and their options; each sets `run` when parsed.
void build(CLI::App& app, Ctx& c, std::function<int()>& run) {
  app.require_subcommand(1);
  app.add_option("-c,--config", c.config_path, "recsyncd configuration file")
      ->capture_default_str();
  app.add_option("--socket", c.socket, "control socket (default: from the configuration)");
  auto on = [&run, &c](int (*f)(const Ctx&)) -> std::function<void()> {
    return [&run, &c, f] { run = [&c, f] { return f(c); }; };
  };

  auto* status = app.add_subcommand("status", "show the daemon's state");
  status->add_flag("--json", c.json_out, "machine-readable output");
  status->add_flag("--check", c.check, "one line and exit 0/1/2/3 (Nagios plugin convention)");
  status->add_flag("--watch", c.watch, "refresh until interrupted");
  status->add_option("--interval", c.interval, "seconds between refreshes with --watch")
      ->check(CLI::Range(1, 3600));
  status->callback(on(cmd_status));
  add_recording_commands(app, c, on);

  auto* prune = app.add_subcommand("prune", "run retention now, or show what it would remove");
  prune->add_flag("--dry-run", c.dry_run, "list what would be pruned, delete nothing");
  prune->add_flag("--json", c.json_out, "machine-readable output");
  prune->callback(on(cmd_prune));

  auto* bw = app.add_subcommand(
      "bandwidth", "show the replication cap in force and why, or override it for a while");
  bw->add_option("rate", c.rate, "new cap, e.g. 10MB/s, 500KiB/s; 0 = no cap");
  bw->add_option("--for", c.for_duration, "end the override by itself after this, e.g. 2h");
  bw->add_flag("--clear", c.clear, "end the override: back to the config and schedule");
  bw->add_flag("--json", c.json_out, "machine-readable output");
  bw->callback(on(cmd_bandwidth));

  auto* backfill = app.add_subcommand(
      "backfill", "bring this archive in line with the peers' (after a rebuild, or any time)");
  backfill->add_flag("--dry-run", c.dry_run, "plan only: show what would move");
  backfill->add_flag("--json", c.json_out, "one JSON line per second, and a final one");
  backfill->add_option("--peer", c.target, "only this peer (a [[peer]] name)");
  backfill->callback(on(cmd_backfill));

  app.add_subcommand("id", "print this node's fingerprint (for the peer's [[peer]] fingerprint)")
      ->callback([&] { run = [&c] { return cmd_identity(c, false); }; });
  auto* keygen =
      app.add_subcommand("keygen", "create this node's TLS key and certificate in state_dir");
  keygen->add_flag("--force", c.force, "replace an existing identity (peers must re-pin)");
  keygen->callback([&] { run = [&c] { return cmd_identity(c, true); }; });
}

}  // namespace

int run_cli(int argc, char** argv) {
  Ctx c;
  std::function<int()> run;
  CLI::App app{"recsync - operate the local recsyncd"};
  build(app, c, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }
  return run ? run() : kExitUsage;
}

}  // namespace recsync
