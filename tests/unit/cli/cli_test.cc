// The recsync CLI without a daemon: its output as pure functions of the
// daemon's replies, and run_cli() against a control socket served by a
// ControlServer on a loop thread of the test (canned replies), for the exit
// codes recsync(1) documents.
#include "cli/cli.h"

#include <gtest/gtest.h>
#include <uv.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "cli/format.h"
#include "control/control_server.h"
#include "recsync/exit_codes.h"

namespace recsync {
namespace {

using json = nlohmann::json;

json sample_status() {
  return json::parse(R"({
    "node": "fs1", "version": "1.2.3", "uptime_s": 3725,
    "spool": {"path": "/spool", "files": 2, "bytes": 2048, "used_pct": 1.5, "oldest_s": 4},
    "archive": {"path": "/archive", "files": 10, "bytes": 10485760, "used_pct": 40.25,
                "in_flight": 1, "failing": 0, "archived_since_start": 7, "reconciled": true},
    "replication": {"bandwidth_bps": 50000000, "rate_bps": 1000000, "schedule": "",
                    "queue": {"files": 1, "bytes": 100, "oldest_s": 2}},
    "peers": [{"name": "fs2", "address": "10.0.0.2:7373", "state": "connected",
               "last_ack_s": 0.4, "queue": {"files": 1, "bytes": 100}, "sent_bytes": 5000,
               "received_bytes": 6000, "last_error": "",
               "in_flight": {"path": "a.wav", "size": 200, "read_bytes": 50}}],
    "retention": {"keep_s": 1296000, "last_prune": "", "pruned_total": 3, "holds": 1,
                  "refused": ""},
    "alarms": []})");
}

TEST(CliFormat, HumanStatusShowsEachPart) {
  const std::string s = human_status(sample_status());
  EXPECT_NE(s.find("recsyncd 1.2.3 on fs1, up 1h2m5s"), std::string::npos) << s;
  EXPECT_NE(s.find("spool      /spool: 2 files (2 KiB) waiting, oldest 4s, 1.5% used"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("archive    /archive: 10 files (10 MiB), 40.2% used; 1 in flight"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("peer       fs2 10.0.0.2:7373: connected; last ack 0s ago"), std::string::npos)
      << s;
  EXPECT_NE(s.find("  sending  a.wav (200 B), 25% read"), std::string::npos) << s;
  EXPECT_NE(s.find("retention  keep 15d; last pass not yet; 3 pruned in total; 1 holds"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("alarms     none"), std::string::npos) << s;
  EXPECT_EQ(s.find("backfill"), std::string::npos) << "no job, no line: " << s;
  json with = sample_status();
  with["backfill"] = {{"job", 4},
                      {"state", "running"},
                      {"started", "2026-12-06T10:00:00Z"},
                      {"files_done", 3},
                      {"files_total", 10},
                      {"bytes_done", 3072},
                      {"bytes_total", 10240},
                      {"dry_run", false}};
  EXPECT_NE(human_status(with).find("backfill   4 running (started 2026-12-06T10:00:00Z): 3 of 10 "
                                    "files, 3 KiB of 10 KiB\n"),
            std::string::npos)
      << human_status(with);
}

TEST(CliFormat, CheckFollowsTheWorstAlarm) {
  json s = sample_status();
  CheckResult r = check_status(s);
  EXPECT_EQ(r.exit_code, kExitOk);
  EXPECT_EQ(r.line, "RECSYNC OK - no alarms | spool_files=2 archive_files=10");
  s["alarms"] = json::array({{{"severity", "warning"}, {"text", "a"}}});
  EXPECT_EQ(check_status(s).exit_code, kExitFailure);
  s["alarms"].push_back({{"severity", "critical"}, {"text", "b"}});
  r = check_status(s);
  EXPECT_EQ(r.exit_code, kExitCritical);
  EXPECT_EQ(r.line, "RECSYNC CRITICAL - a; b | spool_files=2 archive_files=10");
}

TEST(CliFormat, DryRunLocateAndHolds) {
  json d = {{"refused", ""},
            {"would_remove",
             {{{"recorded", "2024-05-01T00:00:00Z"}, {"size", 2048}, {"path", "a/b.wav"}}}},
            {"files", 1},
            {"bytes", 2048},
            {"held", 4}};
  EXPECT_EQ(human_dry_run(d),
            "2024-05-01T00:00:00Z\t2 KiB\ta/b.wav\n1 files (2 KiB) would be pruned; 4 kept by "
            "holds\n");
  d["refused"] = "clock implausible";
  EXPECT_EQ(human_dry_run(d), "retention would refuse to prune: clock implausible\n");
  EXPECT_EQ(human_locations(json::array({{{"where", "spool"}, {"path", "/s/a.wav"}, {"size", 1}}})),
            "spool\t/s/a.wav\t1 B\n");
  EXPECT_EQ(human_holds(json::array(
                {{{"target", "x"}, {"created", "2024-05-01T00:00:00Z"}, {"reason", "legal"}}})),
            "x\t2024-05-01T00:00:00Z\tlegal\n");
}

TEST(CliFormat, BandwidthSaysWhyAndUntilWhen) {
  json r = {{"cap_bps", 50'000'000},   {"source", "config"}, {"base_bps", 50'000'000},
            {"base_source", "config"}, {"schedule", ""},     {"override", nullptr}};
  EXPECT_EQ(human_bandwidth(r), "replication cap 50 MB/s (config)\n");
  r["cap_bps"] = r["base_bps"] = 20'000'000;
  r["source"] = r["base_source"] = "schedule";
  r["schedule"] = "08:00-20:00=20MB/s";
  EXPECT_EQ(human_bandwidth(r), "replication cap 20 MB/s (schedule \"08:00-20:00=20MB/s\")\n");
  r["cap_bps"] = 0;
  r["source"] = "override";
  r["override"] = {{"cap_bps", 0}, {"uid", 1000}, {"set", "2026-12-01T10:00:00Z"}, {"until", ""}};
  EXPECT_EQ(human_bandwidth(r),
            "replication cap unlimited (override by uid 1000 at 2026-12-01T10:00:00Z, until "
            "`recsync bandwidth --clear`); then 20 MB/s (schedule \"08:00-20:00=20MB/s\")\n");
  r["override"]["until"] = "2026-12-01T12:00:00Z";
  r["cleared"] = false;
  EXPECT_EQ(human_bandwidth(r),
            "no override was in force; replication cap unlimited (override by uid 1000 at "
            "2026-12-01T10:00:00Z, until 2026-12-01T12:00:00Z); then 20 MB/s (schedule "
            "\"08:00-20:00=20MB/s\")\n");
}

// A control socket answering from `replies` by command (ok=false for others).
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-cli-XXXXXX";
    dir_ = mkdtemp(tmpl);
    sock_ = dir_ + "/ctl.sock";
  }
  void TearDown() override {
    if (thread_.joinable()) {
      uv_async_send(&stop_);
      thread_.join();
    }
    std::filesystem::remove_all(dir_);
  }
  void serve(std::map<std::string, json> replies) {
    replies_ = std::move(replies);
    thread_ = std::thread([this] {
      uv_loop_t loop;
      uv_loop_init(&loop);
      ControlServer server(
          &loop, sock_, "", [this](const json& req, const PeerCred&, ControlServer::Reply reply) {
            last_request_ = req;
            auto it = replies_.find(req.value("cmd", ""));
            reply(it != replies_.end() ? it->second : json{{"ok", false}, {"error", "nope"}});
          });
      stop_.data = &server;
      uv_async_init(&loop, &stop_, [](uv_async_t* a) {
        static_cast<ControlServer*>(a->data)->close();
        uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
      });
      started_ = server.start().is_ok();
      ready_ = true;
      uv_run(&loop, UV_RUN_DEFAULT);
      uv_loop_close(&loop);
    });
    while (!ready_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(started_);
  }
  int run(std::vector<std::string> args, std::string* out = nullptr) {
    args.insert(args.begin(), "recsync");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    testing::internal::CaptureStdout();
    int rc = run_cli(static_cast<int>(argv.size()), argv.data());
    std::string o = testing::internal::GetCapturedStdout();
    if (out) *out = o;
    return rc;
  }

  std::string dir_, sock_;
  std::thread thread_;
  uv_async_t stop_{};
  std::atomic<bool> ready_{false}, started_{false};
  std::map<std::string, json> replies_;
  json last_request_;
};

TEST_F(CliTest, StatusJsonAndCheckAgainstADaemon) {
  json st = sample_status();
  st["ok"] = true;
  serve({{"status", st}});
  std::string out;
  EXPECT_EQ(run({"--socket", sock_, "status", "--json"}, &out), kExitOk);
  json back = json::parse(out);
  EXPECT_EQ(back["node"], "fs1");
  EXPECT_FALSE(back.contains("ok"));
  EXPECT_EQ(run({"--socket", sock_, "status", "--check"}, &out), kExitOk);
  EXPECT_EQ(out, "RECSYNC OK - no alarms | spool_files=2 archive_files=10\n");
}

TEST_F(CliTest, HoldCommandsSendTheirArgumentsAndPrint) {
  serve({{"hold_add", {{"ok", true}, {"matches", 2}}},
         {"hold_list", {{"ok", true}, {"holds", json::array()}}}});
  std::string out;
  EXPECT_EQ(run({"--socket", sock_, "hold", "add", "call-1", "--reason", "legal"}, &out), kExitOk);
  EXPECT_EQ(out, "held call-1 (2 archived recordings match now)\n");
  EXPECT_EQ(last_request_["target"], "call-1");
  EXPECT_EQ(last_request_["reason"], "legal");
  EXPECT_EQ(run({"--socket", sock_, "hold", "list", "--json"}, &out), kExitOk);
  EXPECT_EQ(out, "[]\n");
  EXPECT_EQ(run({"--socket", sock_, "hold", "release", "call-1"}, &out), kExitFailure)
      << "the daemon said no";
}

TEST_F(CliTest, BandwidthSendsTheOverrideAndRefusesBadUsageLocally) {
  json shown = {{"ok", true},
                {"cap_bps", 10'000'000},
                {"source", "override"},
                {"base_bps", 50'000'000},
                {"base_source", "config"},
                {"schedule", ""},
                {"override",
                 {{"cap_bps", 10'000'000},
                  {"uid", 0},
                  {"set", "2026-12-01T10:00:00Z"},
                  {"until", "2026-12-01T12:00:00Z"}}}};
  serve({{"bandwidth", shown}});
  std::string out;
  EXPECT_EQ(run({"--socket", sock_, "bandwidth", "10MB/s", "--for", "2h"}, &out), kExitOk);
  EXPECT_EQ(last_request_["action"], "set");
  EXPECT_EQ(last_request_["cap_bps"], 10'000'000);
  EXPECT_EQ(last_request_["for_ms"], 7'200'000);
  EXPECT_EQ(out,
            "replication cap 10 MB/s (override by uid 0 at 2026-12-01T10:00:00Z, until "
            "2026-12-01T12:00:00Z); then 50 MB/s (config)\n");
  EXPECT_EQ(run({"--socket", sock_, "bandwidth", "0"}, &out), kExitOk);
  EXPECT_EQ(last_request_["cap_bps"], 0);
  EXPECT_FALSE(last_request_.contains("for_ms")) << "until cleared";
  EXPECT_EQ(run({"--socket", sock_, "bandwidth", "--json"}, &out), kExitOk);
  EXPECT_EQ(last_request_["action"], "show");
  EXPECT_EQ(json::parse(out)["source"], "override");
  EXPECT_EQ(run({"--socket", sock_, "bandwidth", "--clear"}, &out), kExitOk);
  EXPECT_EQ(last_request_["action"], "clear");
  last_request_ = nullptr;
  EXPECT_EQ(run({"--socket", sock_, "bandwidth", "fast"}), kExitUsage);
  EXPECT_EQ(run({"--socket", sock_, "bandwidth", "10MB/s", "--for", "soon"}), kExitUsage);
  EXPECT_EQ(run({"--socket", sock_, "bandwidth", "10MB/s", "--for", "0"}), kExitUsage);
  EXPECT_EQ(run({"--socket", sock_, "bandwidth", "--for", "1h"}), kExitUsage);
  EXPECT_EQ(run({"--socket", sock_, "bandwidth", "1MB/s", "--clear"}), kExitUsage);
  EXPECT_TRUE(last_request_.is_null()) << "usage errors never reach the daemon";
  EXPECT_EQ(run({"--socket", dir_ + "/no.sock", "bandwidth"}), kExitUnavailable);
}

TEST_F(CliTest, ExitCodesForUsageUnreachableAndConfigErrors) {
  EXPECT_EQ(run({}), kExitUsage);
  EXPECT_EQ(run({"frobnicate"}), kExitUsage);
  EXPECT_EQ(run({"hold", "add"}), kExitUsage) << "target is required";
  EXPECT_EQ(run({"status", "--interval", "0", "--watch"}), kExitUsage);
  const std::string none = dir_ + "/no.sock";
  EXPECT_EQ(run({"--socket", none, "status"}), kExitUnavailable);
  std::string out;
  EXPECT_EQ(run({"--socket", none, "status", "--check"}, &out), kExitUnknown);
  EXPECT_EQ(out, "RECSYNC UNKNOWN - daemon not reachable\n");
  EXPECT_EQ(run({"-c", dir_ + "/missing.conf", "status"}), kExitConfig);
  EXPECT_EQ(run({"-c", dir_ + "/missing.conf", "id"}), kExitConfig);
  EXPECT_EQ(run({"--socket", none, "backfill"}), kExitUnavailable);
}

json sample_backfill(const std::string& state, uint64_t conflicts) {
  json plan = json::object();
  for (const char* k : {"in_sync", "in_sync_unverified", "conflict", "pull", "push",
                        "skip_tombstoned", "skip_past_retention", "skip_planned"})
    plan[k] = {{"files", 0}, {"bytes", 0}};
  plan["pull"] = {{"files", 3}, {"bytes", 3000}};
  plan["conflict"] = {{"files", conflicts}, {"bytes", 0}};
  plan["files_equal"] = 10;
  return {{"job", 7},
          {"state", state},
          {"dry_run", false},
          {"peers", {{{"name", "fs2"}, {"state", "planned"}, {"plan", plan}, {"error", ""}}}},
          {"pull",
           {{"total", {{"files", 3}, {"bytes", 3000}}},
            {"done", {{"files", 2}, {"bytes", 2000}}},
            {"gone", {{"files", 1}, {"bytes", 1000}}}}},
          {"push",
           {{"total", {{"files", 0}, {"bytes", 0}}},
            {"done", {{"files", 0}, {"bytes", 0}}},
            {"gone", {{"files", 0}, {"bytes", 0}}}}},
          {"files_total", 3},
          {"files_done", 3},
          {"bytes_total", 3000},
          {"bytes_done", 3000}};
}

TEST(CliFormat, BackfillBarLineSummaryAndExitCode) {
  json bf = sample_backfill("running", 0);
  bf["files_done"] = 1;
  bf["bytes_done"] = 1500;
  const std::string bar = backfill_bar(bf, 500, 10);
  EXPECT_EQ(bar, "[#####     ]  50%  1/3 files  1.5 KiB/2.9 KiB  500 B/s  ETA 3s") << bar;
  json line = backfill_progress_line(bf, 500);
  EXPECT_EQ(line["files_done"], 1);
  EXPECT_DOUBLE_EQ(line["eta_s"].get<double>(), 3.0);
  EXPECT_TRUE(backfill_progress_line(bf, 0)["eta_s"].is_null());
  const std::string sum = backfill_summary(sample_backfill("done", 0));
  EXPECT_NE(sum.find("backfill 7 done"), std::string::npos) << sum;
  EXPECT_NE(sum.find("fs2: planned; to pull 3 (2.9 KiB), to push 0 (0 B), in sync 10"),
            std::string::npos)
      << sum;
  EXPECT_NE(sum.find("pulled 2 files (2 KiB), pushed 0 files (0 B), 1 no longer there"),
            std::string::npos)
      << sum;
  EXPECT_EQ(backfill_exit_code(sample_backfill("done", 0)), kExitOk);
  EXPECT_EQ(backfill_exit_code(sample_backfill("done", 2)), kExitFailure) << "conflicts";
  EXPECT_EQ(backfill_exit_code(sample_backfill("partial", 0)), kExitFailure);
  EXPECT_EQ(backfill_exit_code(sample_backfill("failed", 0)), kExitCritical);
}

TEST_F(CliTest, BackfillFollowsTheJobToItsEndInJsonLines) {
  serve({{"backfill_start", {{"ok", true}, {"job", 7}}},
         {"backfill_status", {{"ok", true}, {"backfill", sample_backfill("done", 0)}}}});
  std::string out;
  EXPECT_EQ(run({"--socket", sock_, "backfill", "--json", "--peer", "fs2", "--dry-run"}, &out),
            kExitOk);
  EXPECT_EQ(last_request_["cmd"], "backfill_status");
  json fin = json::parse(out.substr(0, out.find('\n')));
  EXPECT_EQ(fin["final"], true);
  EXPECT_EQ(fin["state"], "done");
}

}  // namespace
}  // namespace recsync
