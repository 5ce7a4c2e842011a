// Every control command against real components (a state store in a temp
// folder, a spool pipeline with a fake archive step, a retention scheduler)
// without a daemon or a socket.
#include "daemon/control_commands.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace recsync {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int64_t kNow = 1'750'000'000'000;
constexpr int64_t kDayMs = 24LL * 3600 * 1000;

class ControlCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-control-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/spool");
    fs::create_directories(dir_ + "/archive");
    env_.set_now(WallTime(Millis(kNow)));
    auto st = StateStore::open(dir_ + "/state.db");
    ASSERT_TRUE(st) << st.status().to_string();
    store_ = std::move(st).value();
    SpoolPipelineOptions so;
    so.spool_root = dir_ + "/spool";
    spool_ = std::make_unique<SpoolPipeline>(
        &env_, [](const std::string&, Millis) { return ArchiveOutcome{}; }, so,
        [] { return int64_t{0}; });
    RetentionSettings rs;
    rs.policy = {Millis(15 * kDayMs), Millis(3600 * 1000)};
    rs.audit_log_path = dir_ + "/audit.log";
    retention_ = std::make_unique<RetentionScheduler>(&env_, store_.get(), dir_ + "/archive", rs);
    ctx_ = ControlContext{"fs1",           &env_,          store_.get(),
                          nullptr,         spool_.get(),   retention_.get(),
                          dir_ + "/spool", dir_ + "/archive"};
    ctx_.bandwidth = &bandwidth_;
    ctx_.status = [] { return json{{"node", "fs1"}}; };
    ctx_.reload = [this] { reloads_++; };
    ctx_.off_loop = [this](std::function<json()> work, std::function<void(json)> done) {
      off_loop_calls_++;
      done(work());
    };
  }
  void TearDown() override {
    retention_.reset();
    spool_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  json call(const json& req, uid_t uid = 0) {
    json out;
    int replies = 0;
    PeerCred who;
    who.uid = uid;
    handle_control(ctx_, req, who, [&](json j) {
      replies++;
      out = std::move(j);
    });
    EXPECT_EQ(replies, 1) << "exactly one reply for " << req.dump();
    return out;
  }
  void archive(const std::string& rel, int64_t rec_ms, const std::string& hash = "h") {
    fs::create_directories(fs::path(dir_ + "/archive/" + rel).parent_path());
    std::ofstream(dir_ + "/archive/" + rel) << "0123456789";
    fs::last_write_time(
        dir_ + "/archive/" + rel,
        fs::file_time_type::clock::from_sys(std::chrono::system_clock::time_point(Millis(rec_ms))));
    ASSERT_TRUE(store_->recordings().upsert(make_recording_row(
        rel, fs::path(rel).filename().string(), 10, hash, rec_ms, rec_ms, "local")));
  }

  FaultEnv env_{Env::posix()};
  std::string dir_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<SpoolPipeline> spool_;
  std::unique_ptr<RetentionScheduler> retention_;
  replication::Governor governor_{50'000'000, 0, 0};
  replication::BandwidthControl bandwidth_{&governor_, {50'000'000, {}, ""}};
  ControlContext ctx_;
  int reloads_ = 0, off_loop_calls_ = 0;
};

TEST_F(ControlCommandsTest, StatusAnswersTheStatusWithOk) {
  json r = call({{"cmd", "status"}});
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["node"], "fs1");
}

TEST_F(ControlCommandsTest, UnknownAndMissingCommandsAreErrors) {
  json r = call({{"cmd", "frobnicate"}});
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"], "unknown command 'frobnicate'");
  EXPECT_EQ(call(json::object())["ok"], false);
  EXPECT_EQ(call({{"cmd", 42}})["error"].get<std::string>().rfind("internal error", 0), 0u);
}

TEST_F(ControlCommandsTest, HoldAddCountsMatchesQueuesForPeersAndListsIt) {
  store_->queue().set_peers({"fs2"});
  archive("2025/06/01/call-7.wav", kNow - kDayMs);
  const uint64_t rung = store_->queue().doorbell().count();
  json r = call({{"cmd", "hold_add"}, {"target", "call-7"}, {"reason", "legal 12"}}, 1000);
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["matches"], 1);
  EXPECT_GT(store_->queue().doorbell().count(), rung) << "the senders are woken";
  auto op = store_->holds().next_op("fs2");
  ASSERT_TRUE(op && op->has_value());
  EXPECT_EQ((*op)->hold.target, "call-7");
  json l = call({{"cmd", "hold_list"}});
  ASSERT_EQ(l["holds"].size(), 1u);
  EXPECT_EQ(l["holds"][0]["target"], "call-7");
  EXPECT_EQ(l["holds"][0]["reason"], "legal 12");
  EXPECT_EQ(l["holds"][0]["created"], "2025-06-15T15:06:40Z");
  EXPECT_EQ(call({{"cmd", "hold_add"}})["error"], "hold add needs a recording id or archive path");
}

TEST_F(ControlCommandsTest, HoldReleaseOfAnUnknownTargetIsAnError) {
  ASSERT_EQ(call({{"cmd", "hold_add"}, {"target", "x"}})["ok"], true);
  EXPECT_EQ(call({{"cmd", "hold_release"}, {"target", "x"}})["ok"], true);
  json r = call({{"cmd", "hold_release"}, {"target", "x"}});
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["error"], "no hold on 'x'");
}

TEST_F(ControlCommandsTest, LocateFindsArchiveRowsAndSpoolEntriesWithHoldState) {
  archive("2025/06/01/call-9.wav", kNow - kDayMs, "xxh128:aa");
  std::ofstream(dir_ + "/spool/call-9.wav") << "abc";
  spool_->on_event("call-9.wav");
  ASSERT_EQ(call({{"cmd", "hold_add"}, {"target", "call-9"}})["ok"], true);
  json r = call({{"cmd", "locate"}, {"id", "call-9"}});
  ASSERT_EQ(r["ok"], true);
  ASSERT_EQ(r["locations"].size(), 2u);
  EXPECT_EQ(r["locations"][0]["where"], "archive");
  EXPECT_EQ(r["locations"][0]["path"], dir_ + "/archive/2025/06/01/call-9.wav");
  EXPECT_EQ(r["locations"][0]["hash"], "xxh128:aa");
  EXPECT_EQ(r["locations"][0]["held"], true);
  EXPECT_EQ(r["locations"][0]["origin"], "fs1") << "this node's own, by name";
  EXPECT_EQ(r["locations"][0]["origin_path"], "2025/06/01/call-9.wav");
  EXPECT_EQ(r["locations"][1]["where"], "spool");
  EXPECT_EQ(r["locations"][1]["size"], 3);
  EXPECT_EQ(r["locations"][1]["state"], "waiting");
  EXPECT_EQ(call({{"cmd", "locate"}, {"id", "nope"}})["error"],
            "no recording 'nope' in the spool or the archive");
  EXPECT_EQ(call({{"cmd", "locate"}})["ok"], false);
}

TEST_F(ControlCommandsTest, PruneDryRunRunsOffTheLoopAndListsWhatWouldGo) {
  archive("2025/05/01/old.wav", kNow - 40 * kDayMs);
  archive("2025/05/02/held.wav", kNow - 39 * kDayMs);
  archive("2025/06/14/new.wav", kNow - kDayMs);
  ASSERT_EQ(call({{"cmd", "hold_add"}, {"target", "held"}})["ok"], true);
  json r = call({{"cmd", "prune"}, {"dry_run", true}});
  EXPECT_EQ(off_loop_calls_, 1);
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["files"], 1);
  EXPECT_EQ(r["held"], 1);
  EXPECT_EQ(r["keep_s"], 15 * 24 * 3600);
  ASSERT_EQ(r["would_remove"].size(), 1u);
  EXPECT_EQ(r["would_remove"][0]["path"], "2025/05/01/old.wav");
  EXPECT_TRUE(fs::exists(dir_ + "/archive/2025/05/01/old.wav")) << "a dry run deletes nothing";
}

TEST_F(ControlCommandsTest, PruneStartsAPassAndReloadReloads) {
  EXPECT_EQ(call({{"cmd", "prune"}})["started"], true);
  EXPECT_EQ(off_loop_calls_, 0);
  EXPECT_EQ(call({{"cmd", "reload"}})["ok"], true);
  EXPECT_EQ(reloads_, 1);
}

TEST_F(ControlCommandsTest, BandwidthShowsSetsForAWhileAndClearsWithTheCallersUid) {
  json r = call({{"cmd", "bandwidth"}});
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["cap_bps"], 50'000'000);
  EXPECT_EQ(r["source"], "config");
  EXPECT_TRUE(r["override"].is_null());
  r = call({{"cmd", "bandwidth"}, {"action", "set"}, {"cap_bps", 2'000'000}, {"for_ms", 90'000}},
           1000);
  ASSERT_EQ(r["ok"], true) << r.dump();
  EXPECT_EQ(r["cap_bps"], 2'000'000);
  EXPECT_EQ(r["source"], "override");
  EXPECT_EQ(r["base_bps"], 50'000'000);
  EXPECT_EQ(r["base_source"], "config");
  EXPECT_EQ(r["override"]["uid"], 1000);
  EXPECT_EQ(r["override"]["set"], "2025-06-15T15:06:40Z");
  EXPECT_EQ(r["override"]["until"], "2025-06-15T15:08:10Z");
  EXPECT_EQ(governor_.rate(), 2'000'000u) << "in force at once";
  // The tick after the end time returns to the config.
  env_.set_now(WallTime(Millis(kNow + 90'000)));
  bandwidth_.apply(env_.now(), "tick");
  EXPECT_EQ(call({{"cmd", "bandwidth"}})["source"], "config");
  EXPECT_EQ(governor_.rate(), 50'000'000u);
  // Until cleared (no for_ms), then cleared by another uid.
  r = call({{"cmd", "bandwidth"}, {"action", "set"}, {"cap_bps", 0}}, 1001);
  EXPECT_EQ(r["cap_bps"], 0);
  EXPECT_EQ(r["override"]["until"], "");
  r = call({{"cmd", "bandwidth"}, {"action", "clear"}}, 1002);
  EXPECT_EQ(r["cleared"], true);
  EXPECT_EQ(r["source"], "config");
  EXPECT_EQ(call({{"cmd", "bandwidth"}, {"action", "clear"}})["cleared"], false);
}

TEST_F(ControlCommandsTest, BandwidthRefusesBadArguments) {
  auto err = [&](const json& req) {
    json r = call(req);
    EXPECT_EQ(r["ok"], false) << req.dump();
    return r.value("error", "");
  };
  EXPECT_EQ(err({{"cmd", "bandwidth"}, {"action", "set"}}),
            "bandwidth set needs cap_bps: bytes per second, 0 = no cap");
  EXPECT_EQ(err({{"cmd", "bandwidth"}, {"action", "set"}, {"cap_bps", -5}}),
            "bandwidth set needs cap_bps: bytes per second, 0 = no cap");
  EXPECT_EQ(err({{"cmd", "bandwidth"}, {"action", "set"}, {"cap_bps", "10MB/s"}}),
            "bandwidth set needs cap_bps: bytes per second, 0 = no cap");
  EXPECT_NE(err({{"cmd", "bandwidth"}, {"action", "set"}, {"cap_bps", 1}, {"for_ms", -1}})
                .find("for_ms must be"),
            std::string::npos);
  EXPECT_NE(err({{"cmd", "bandwidth"},
                 {"action", "set"},
                 {"cap_bps", 1},
                 {"for_ms", kMaxBandwidthOverride.count() + 1}})
                .find("for_ms must be"),
            std::string::npos);
  EXPECT_EQ(err({{"cmd", "bandwidth"}, {"action", "boost"}}),
            "unknown bandwidth action 'boost' (show, set or clear)");
  EXPECT_EQ(governor_.rate(), 50'000'000u) << "nothing was applied";
  ctx_.bandwidth = nullptr;
  EXPECT_EQ(err({{"cmd", "bandwidth"}}), "bandwidth control is not available");
}

}  // namespace
}  // namespace recsync
