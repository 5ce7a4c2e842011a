#include "scrub/scrubber.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "recsync/hash.h"
#include "recsync/log.h"
#include "scrub/report.h"

namespace recsync::scrub {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kNow = 1'717'200'000'000;

class ScrubberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "recsync-scrub-XXXXXX").string();
    base_ = ::mkdtemp(tmpl.data());
    root_ = base_ + "/archive";
    fs::create_directories(root_ + "/d");
    auto st = StateStore::open(base_ + "/state.db");
    ASSERT_TRUE(st) << st.status().to_string();
    store_ = std::move(st).value();
    env_.set_now(WallTime(Millis(kNow)));
    log::get("scrub")->set_level(spdlog::level::critical);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  // A recording on disk and in the index.
  RecordingRow add(const std::string& rel, const std::string& content, int64_t t) {
    std::ofstream(root_ + "/" + rel, std::ios::binary) << content;
    RecordingRow r =
        make_recording_row(rel, fs::path(rel).filename().string(), content.size(),
                           hash_bytes(content.data(), content.size()), t, t, kLocalOrigin);
    EXPECT_TRUE(store_->recordings().upsert(r));
    return r;
  }
  Settings settings(Millis interval = Millis{0}) {
    return {interval, 0, true, base_ + "/audit.log"};
  }
  // Waits (bounded) for the running pass to end.
  Snapshot wait_pass(Scrubber& s) {
    for (int i = 0; i < 200; ++i) {
      Snapshot sn = s.snapshot();
      if (!sn.running && sn.last_end_ms) return sn;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ADD_FAILURE() << "scrub pass did not end";
    return s.snapshot();
  }

  FaultEnv env_{Env::posix()};
  std::string base_, root_;
  std::unique_ptr<StateStore> store_;
};

TEST_F(ScrubberTest, PassFindsEachKindAndAlarmsWithoutPeer) {
  add("d/good.wav", std::string(1000, 'g'), kNow - 5000);
  add("d/flip.wav", std::string(1000, 'f'), kNow - 4000);
  add("d/short.wav", std::string(1000, 's'), kNow - 3000);
  add("d/gone.wav", std::string(1000, 'x'), kNow - 2000);
  {
    std::fstream f(root_ + "/d/flip.wav", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(500);
    f.put('F');
  }
  fs::resize_file(root_ + "/d/short.wav", 10);
  fs::remove(root_ + "/d/gone.wav");
  Scrubber s(&env_, store_.get(), root_, "fs1", nullptr, settings());
  s.start();
  s.start_pass(true);
  Snapshot sn = wait_pass(s);
  EXPECT_EQ(sn.pass.files, 4u);
  EXPECT_EQ(sn.pass.errors[int(Kind::kCorrupt)], 1u);
  EXPECT_EQ(sn.pass.errors[int(Kind::kSize)], 1u);
  EXPECT_EQ(sn.pass.errors[int(Kind::kMissing)], 1u);
  ASSERT_EQ(sn.open.size(), 3u);
  for (const Finding& f : sn.open) EXPECT_EQ(f.repair, "no peer");
  // Nothing moved without a peer to repair from.
  EXPECT_TRUE(fs::exists(root_ + "/d/flip.wav"));
  EXPECT_TRUE(store_->recordings().get("d/flip.wav")->has_value());
  auto alarm = scrub_alarm(sn);
  ASSERT_TRUE(alarm);
  EXPECT_EQ(alarm->first, "critical");
  EXPECT_NE(alarm->second.find("3 damaged"), std::string::npos) << alarm->second;
  EXPECT_NE(alarm->second.find("1 corrupt"), std::string::npos) << alarm->second;
  s.stop();
  // The findings survive a restart.
  Scrubber again(&env_, store_.get(), root_, "fs1", nullptr, settings());
  EXPECT_EQ(again.snapshot().open.size(), 3u);
  EXPECT_EQ(again.snapshot().pass.files, 4u);
}

TEST_F(ScrubberTest, RepairMovesTheBadCopyAsideAndAsksThePeers) {
  add("d/flip.wav", std::string(1000, 'f'), kNow - 4000);
  {
    std::fstream f(root_ + "/d/flip.wav", std::ios::in | std::ios::out | std::ios::binary);
    f.put('F');
  }
  replication::RepairRequests req;
  req.set_peers({"fs2"});
  Scrubber s(&env_, store_.get(), root_, "fs1", &req, settings());
  size_t checked = 0;
  auto r = s.check_now({"flip"}, &checked);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(checked, 1u);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].kind, Kind::kCorrupt);
  EXPECT_EQ((*r)[0].repair, "pending");
  EXPECT_EQ((*r)[0].aside, "d/.recsync-bad.flip.wav");
  EXPECT_FALSE(fs::exists(root_ + "/d/flip.wav"));
  EXPECT_TRUE(fs::exists(root_ + "/d/.recsync-bad.flip.wav"));  // kept, not deleted
  EXPECT_FALSE(store_->recordings().get("d/flip.wav")->has_value());
  // The scrub thread asks fs2 for the identity (origin "local" as fs1).
  s.start();
  std::vector<replication::RepairRef> asked;
  for (int i = 0; i < 200 && asked.empty(); ++i) {
    asked = req.take("fs2", 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].origin, "fs1");
  EXPECT_EQ(asked[0].origin_rel, "d/flip.wav");
  // The good copy arrives (as the receiver publishes it): closed, audited,
  // the bad copy removed.
  add("d/flip.wav", std::string(1000, 'f'), kNow - 4000);
  Snapshot sn;
  for (int i = 0; i < 400; ++i) {
    sn = s.snapshot();
    if (sn.open.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(sn.open.empty());
  EXPECT_EQ(sn.repairs_total, 1u);
  EXPECT_FALSE(fs::exists(root_ + "/d/.recsync-bad.flip.wav"));
  std::ifstream audit(base_ + "/audit.log");
  std::string line;
  std::getline(audit, line);
  EXPECT_NE(line.find("\"policy\":\"repair corrupt\""), std::string::npos) << line;
  EXPECT_EQ(*store_->audit().count(), 1u);
}

TEST_F(ScrubberTest, CrashBeforeTheMoveIsFinishedAfterTheRestart) {
  add("d/c.wav", std::string(100, 'c'), kNow - 4000);
  fs::resize_file(root_ + "/d/c.wav", 40);
  // What handle() saves before it moves the copy; then the process died.
  ASSERT_TRUE(store_->db().set_meta(
      "scrub.open",
      R"([{"kind":"size","rel":"d/c.wav","origin":"local","origin_rel":"d/c.wav",)"
      R"("hash":")" +
          hash_bytes(std::string(100, 'c').data(), 100) +
          R"(","size":100,"rec_time_ms":1,"found_ms":2,"detail":"","aside":"d/.recsync-bad.c.wav",)"
          R"("repair":"pending"}])"));
  replication::RepairRequests req;
  req.set_peers({"fs2"});
  Scrubber s(&env_, store_.get(), root_, "fs1", &req, settings());
  s.start();
  std::vector<replication::RepairRef> asked;
  for (int i = 0; i < 200 && asked.empty(); ++i) {
    asked = req.take("fs2", 10);
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(asked.size(), 1u);
  EXPECT_TRUE(fs::exists(root_ + "/d/.recsync-bad.c.wav"));
  EXPECT_FALSE(fs::exists(root_ + "/d/c.wav"));
  EXPECT_FALSE(store_->recordings().get("d/c.wav")->has_value());
  ASSERT_EQ(s.snapshot().open.size(), 1u);
  EXPECT_EQ(s.snapshot().open[0].repair, "pending");
}

TEST_F(ScrubberTest, WrongCopyArrivingDoesNotCloseTheRepair) {
  add("d/a.wav", std::string(100, 'a'), kNow - 4000);
  fs::resize_file(root_ + "/d/a.wav", 50);
  replication::RepairRequests req;
  req.set_peers({"fs2"});
  Scrubber s(&env_, store_.get(), root_, "fs1", &req, settings());
  size_t checked = 0;
  ASSERT_TRUE(s.check_now({"d/a.wav"}, &checked));
  // Another content under the path (not the stored hash): still open.
  std::ofstream(root_ + "/d/a.wav", std::ios::binary) << std::string(100, 'b');
  s.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  Snapshot sn = s.snapshot();
  ASSERT_EQ(sn.open.size(), 1u);
  EXPECT_EQ(sn.open[0].repair, "pending");
  EXPECT_TRUE(fs::exists(root_ + "/d/.recsync-bad.a.wav"));
}

TEST_F(ScrubberTest, FileDeletedByARunningPruneIsNotMissing) {
  add("d/old.wav", "old", kNow - 1000);
  fs::remove(root_ + "/d/old.wav");  // the pruner unlinked it; the row goes with the batch
  std::atomic<bool> pruning{true};
  Scrubber s(&env_, store_.get(), root_, "fs1", nullptr, settings());
  s.set_pruning([&] { return pruning.load(); });
  std::thread pruner([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    EXPECT_TRUE(store_->recordings().remove("d/old.wav"));
    pruning = false;
  });
  size_t checked = 0;
  auto r = s.check_now({"d/old.wav"}, &checked);
  pruner.join();
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_TRUE(r->empty()) << "pruned, not missing";
  EXPECT_EQ(checked, 0u);
  // Without a prune running, a missing file is reported.
  add("d/gone.wav", "gone", kNow - 1000);
  fs::remove(root_ + "/d/gone.wav");
  r = s.check_now({"gone"}, &checked);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].kind, Kind::kMissing);
}

TEST_F(ScrubberTest, PacedPassResumesFromItsCursor) {
  for (int i = 0; i < 6; ++i)
    add("d/r" + std::to_string(i) + ".wav", std::string(100'000, char('a' + i)), kNow - 1000 * i);
  Settings st = settings();
  st.rate_bps = 200'000;  // 0.5 s per file
  {
    Scrubber s(&env_, store_.get(), root_, "fs1", nullptr, st);
    s.start();
    s.start_pass(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    s.stop();
    Snapshot sn = s.snapshot();
    EXPECT_TRUE(sn.running);
    EXPECT_GE(sn.pass.files, 1u);
    EXPECT_LT(sn.pass.files, 6u);
  }
  st.rate_bps = 0;
  Scrubber s(&env_, store_.get(), root_, "fs1", nullptr, st);
  EXPECT_TRUE(s.snapshot().running);  // resumed, not restarted
  s.start();
  Snapshot sn = wait_pass(s);
  EXPECT_EQ(sn.pass.files, 6u);  // each file once over both runs
  EXPECT_EQ(sn.pass.error_total(), 0u);
}

TEST_F(ScrubberTest, FirstBackgroundPassWaitsOneInterval) {
  add("d/a.wav", "abc", kNow - 1000);
  Scrubber s(&env_, store_.get(), root_, "fs1", nullptr, settings(Millis{3600'000}));
  s.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  Snapshot sn = s.snapshot();
  EXPECT_FALSE(sn.running);
  EXPECT_FALSE(sn.last_end_ms);
  EXPECT_EQ(sn.next_ms, kNow + 3600'000);
  env_.set_now(WallTime(Millis(kNow + 3600'000)));
  sn = wait_pass(s);
  EXPECT_EQ(sn.pass.files, 1u);
  EXPECT_EQ(sn.next_ms, kNow + 2 * 3600'000);
}

}  // namespace
}  // namespace recsync::scrub
