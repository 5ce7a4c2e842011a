// The Eraser (erase/eraser.h) over a real state database and a real archive
// folder: what an erasure deletes, writes and queues; refusals; a crash
// between the transaction and the deletions; the Placer refusing an erased
// recording; tombstone expiry (fixed clock).
#include "erase/eraser.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "recsync/clock.h"
#include "recsync/publish.h"
#include "state/objects.h"

namespace recsync::erase {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNow = 1'780'000'000'000;
constexpr int64_t kDay = 24LL * 3600 * 1000;

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

class EraserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "erase-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    archive_ = dir_ + "/archive";
    spool_ = dir_ + "/spool";
    fs::create_directories(archive_);
    fs::create_directories(spool_);
    env_.set_now(WallTime(Millis(kNow)));
    auto st = StateStore::open(dir_ + "/state.db");
    ASSERT_TRUE(st) << st.status().message();
    store_ = std::move(st).value();
    store_->queue().set_peers({"fs2", kStoreDestination});
    placer_ = std::make_unique<Placer>(&env_, store_.get(), archive_, "fs1");
    EraserOptions o{"fs1", archive_, spool_, dir_ + "/audit.log", Millis{15 * kDay}};
    eraser_ = std::make_unique<Eraser>(&env_, store_.get(), placer_.get(), o);
  }
  void TearDown() override {
    eraser_.reset();
    placer_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  // A recording of this node at rel, archived and queued for fs2 and the store.
  RecordingRow archived(const std::string& rel, const std::string& content) {
    fs::create_directories(fs::path(archive_ + "/" + rel).parent_path());
    std::ofstream(archive_ + "/" + rel) << content;
    RecordingRow r = make_recording_row(rel, path_basename(rel), content.size(),
                                        *hash_file(&env_, archive_ + "/" + rel), kNow - kDay,
                                        kNow - kDay, kLocalOrigin);
    EXPECT_TRUE(store_->queue().record(r, (kNow - kDay) * 1'000'000));
    return r;
  }

  FaultEnv env_{Env::posix()};
  std::string dir_, archive_, spool_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<Placer> placer_;
  std::unique_ptr<Eraser> eraser_;
};

TEST_F(EraserTest, EraseDeletesTheCopyAuditsItKeepsATombstoneAndQueuesThePeer) {
  RecordingRow r = archived("2026/05/01/call-1.wav", "secret call");
  archived("2026/05/01/call-2.wav", "another call");
  auto out = eraser_->erase({"call-1", "GDPR request 7", 1000, {}, false});
  ASSERT_TRUE(out) << out.status().message();
  EXPECT_EQ(out->origin, "fs1");
  EXPECT_EQ(out->origin_rel, r.rel);
  EXPECT_EQ(out->hash, r.hash);
  ASSERT_EQ(out->removed.size(), 1u);
  EXPECT_EQ(out->peers, std::vector<std::string>{"fs2"});
  EXPECT_FALSE(fs::exists(archive_ + "/" + r.rel));
  EXPECT_TRUE(fs::exists(archive_ + "/2026/05/01/call-2.wav")) << "nothing else goes";
  EXPECT_FALSE(store_->recordings().get(r.rel)->has_value());
  // Tombstone, finished, kept past the retention window.
  auto t = store_->tombstones().get(r.rel, kLocalOrigin);
  ASSERT_TRUE(t && t->has_value());
  EXPECT_FALSE((*t)->pending);
  EXPECT_EQ((*t)->uid, 1000);
  EXPECT_EQ((*t)->reason, "GDPR request 7");
  EXPECT_GE((*t)->expires_ms, kNow + 15 * kDay - kDay);
  // Audited: log line and table, policy erase with reason, uid and hash.
  const std::string log = slurp(dir_ + "/audit.log");
  EXPECT_NE(log.find("\"path\":\"" + r.rel + "\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"hash\":\"" + r.hash + "\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"policy\":\"erase\",\"reason\":\"GDPR request 7\",\"uid\":1000"),
            std::string::npos)
      << log;
  EXPECT_EQ(*store_->audit().count_policy("erase"), 1u);
  EXPECT_EQ(*store_->tombstones().erased_total(), 1u);
  // Its replication and upload entries are gone; the other recording's stay.
  EXPECT_EQ(store_->queue().stats("fs2")->files(), 1u);
  EXPECT_EQ(store_->queue().stats(kStoreDestination)->files(), 1u);
  // fs2 is to be told.
  auto op = store_->tombstones().next("fs2", kNow);
  ASSERT_TRUE(op && op->has_value());
  EXPECT_EQ((*op)->t.origin_rel, r.rel);
  ASSERT_TRUE(store_->tombstones().failed("fs2", (*op)->t, kNow + 1000, "held: case 4", true));
  EXPECT_FALSE(store_->tombstones().next("fs2", kNow)->has_value()) << "not due yet";
  auto stats = store_->tombstones().queue_stats();
  ASSERT_EQ(stats->size(), 1u);
  EXPECT_EQ((*stats)[0].refused, 1u);
  ASSERT_TRUE(store_->tombstones().acked("fs2", (*op)->t));
  EXPECT_TRUE(store_->tombstones().queue_stats()->empty());
}

TEST_F(EraserTest, HeldIsRefusedAndNothingIsTouched) {
  RecordingRow r = archived("a/held.wav", "kept for court");
  ASSERT_TRUE(store_->holds().add(HoldRow{"held", "case 9", kNow, kLocalOrigin, r.rel, r.hash}));
  auto out = eraser_->erase({"held", "GDPR", 1000, {}, false});
  ASSERT_FALSE(out);
  EXPECT_EQ(out.status().code(), Status::Code::kRefused);
  EXPECT_TRUE(fs::exists(archive_ + "/" + r.rel));
  EXPECT_FALSE(*store_->tombstones().contains(r.rel, kLocalOrigin));
  EXPECT_FALSE(fs::exists(dir_ + "/audit.log") && !slurp(dir_ + "/audit.log").empty());
  // A peer's erasure of it is refused too (the peer reports it).
  TombstoneRow t{r.rel, kLocalOrigin, r.hash, kNow, "GDPR", 7, 0, "", false};
  EXPECT_EQ(eraser_->apply_copied(t, "fs2").code(), Status::Code::kRefused);
  EXPECT_TRUE(fs::exists(archive_ + "/" + r.rel));
}

TEST_F(EraserTest, ReasonAndTargetAreRequiredAndASpoolOnlyRecordingIsBusy) {
  EXPECT_EQ(eraser_->erase({"x", "", 0, {}, false}).status().code(), Status::Code::kInvalid);
  EXPECT_EQ(eraser_->erase({"", "r", 0, {}, false}).status().code(), Status::Code::kInvalid);
  EXPECT_EQ(eraser_->erase({"x", "r", 0, {}, false}).status().code(), Status::Code::kNotFound);
  EXPECT_EQ(eraser_->erase({"x", "r", 0, {"x.wav"}, true}).status().code(), Status::Code::kBusy);
}

TEST_F(EraserTest, ACrashBeforeTheDeletionsIsFinishedByFinishPending) {
  RecordingRow r = archived("a/crash.wav", "interrupted");
  // What erase() commits before it deletes anything, then "kill -9".
  TombstoneRow t{r.rel, kLocalOrigin, r.hash, kNow, "GDPR", 0, kNow + 30 * kDay, "", true};
  ASSERT_TRUE(store_->tombstones().commit(t, {}, {"fs2"}, {r.rel}));
  ASSERT_TRUE(fs::exists(archive_ + "/" + r.rel));
  ASSERT_EQ(store_->tombstones().pending()->size(), 1u);
  ASSERT_TRUE(eraser_->finish_pending());
  EXPECT_FALSE(fs::exists(archive_ + "/" + r.rel));
  EXPECT_FALSE(store_->recordings().get(r.rel)->has_value());
  EXPECT_TRUE(store_->tombstones().pending()->empty());
  // Idempotent.
  EXPECT_TRUE(eraser_->finish_pending());
}

TEST_F(EraserTest, ACopyRestoredIntoTheArchiveIsSweptAtStart) {
  RecordingRow r = archived("a/restored.wav", "restored from tape");
  archived("a/other.wav", "stays");
  ASSERT_TRUE(eraser_->erase({"restored", "GDPR 11", 1000, {}, false}));
  // Put back by hand (no row: the reconcile would adopt it).
  std::ofstream(archive_ + "/" + r.rel) << "restored from tape";
  ASSERT_TRUE(eraser_->sweep_archive());
  EXPECT_FALSE(fs::exists(archive_ + "/" + r.rel));
  EXPECT_TRUE(fs::exists(archive_ + "/a/other.wav"));
  EXPECT_EQ(*store_->audit().count_policy("erase"), 2u) << "the second deletion is audited too";
  // Other content at that path is not touched.
  std::ofstream(archive_ + "/" + r.rel) << "a different call";
  ASSERT_TRUE(eraser_->sweep_archive());
  EXPECT_TRUE(fs::exists(archive_ + "/" + r.rel));
}

TEST_F(EraserTest, ThePlacerRefusesToPublishAnErasedRecordingAgain) {
  RecordingRow r = archived("a/back.wav", "comes back");
  // By its absolute path, as `recsync locate` prints it.
  ASSERT_TRUE(eraser_->erase({archive_ + "/" + r.rel, "GDPR", 0, {}, false}));
  const std::string tmp = archive_ + "/a/.tmp-back";
  std::ofstream(tmp) << "comes back";
  bool recorded = false;
  auto placed = placer_->place(tmp, Identity{"fs1", r.rel, r.hash}, [&](const Placed&) {
    recorded = true;
    return Status::ok();
  });
  ASSERT_FALSE(placed);
  EXPECT_EQ(placed.status().code(), Status::Code::kRefused);
  EXPECT_FALSE(recorded);
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_FALSE(fs::exists(archive_ + "/" + r.rel));
  // Other content under that name (a new recording) is published.
  const std::string tmp2 = archive_ + "/a/.tmp-new";
  std::ofstream(tmp2) << "a new call";
  auto h = hash_file(&env_, tmp2);
  EXPECT_TRUE(
      placer_->place(tmp2, Identity{"fs1", r.rel, *h}, [](const Placed&) { return Status::ok(); }));
}

TEST_F(EraserTest, APeersErasureDeletesTheCopyHereWithoutQueueingItBack) {
  // fs2's recording, received here.
  fs::create_directories(archive_ + "/b");
  std::ofstream(archive_ + "/b/peer.wav") << "fs2 call";
  RecordingRow r =
      make_recording_row("b/peer.wav", "peer.wav", 8, *hash_file(&env_, archive_ + "/b/peer.wav"),
                         kNow - kDay, kNow - kDay, "fs2");
  ASSERT_TRUE(store_->recordings().upsert(r));
  // Erased on fs2 long ago (it waited in fs2's queue while this node was down).
  TombstoneRow t{r.rel, "fs2", r.hash, kNow - 90 * kDay, "GDPR 3", 1001, 0, "", false};
  ASSERT_TRUE(eraser_->apply_copied(t, "fs2"));
  EXPECT_FALSE(fs::exists(archive_ + "/b/peer.wav"));
  auto got = store_->tombstones().get(r.rel, "fs2");
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->from_peer, "fs2");
  EXPECT_GE((*got)->expires_ms, kNow + 30 * kDay) << "counted from when it arrived here";
  EXPECT_TRUE(store_->tombstones().queue_stats()->empty()) << "not told back";
  EXPECT_NE(slurp(dir_ + "/audit.log").find("\"reason\":\"GDPR 3 (erased on fs2)\",\"uid\":1001"),
            std::string::npos);
  // Again (the ACK was lost): fine.
  EXPECT_TRUE(eraser_->apply_copied(t, "fs2"));
}

TEST_F(EraserTest, TombstonesExpireOnlyWhenDueAndEveryPeerAcked) {
  TombstoneRow a{"a.wav", kLocalOrigin, "xxh128:01", kNow, "r", 0, kNow + 10, "", false};
  TombstoneRow b{"b.wav", kLocalOrigin, "xxh128:02", kNow, "r", 0, kNow + 10, "", false};
  TombstoneRow never{"c.wav", kLocalOrigin, "xxh128:03", kNow, "r", 0, 0, "", false};
  ASSERT_TRUE(store_->tombstones().commit(a, {}, {}, {}));
  ASSERT_TRUE(store_->tombstones().commit(b, {}, {"fs2"}, {}));
  ASSERT_TRUE(store_->tombstones().commit(never, {}, {}, {}));
  EXPECT_EQ(*store_->tombstones().expire_due(kNow), 0u) << "not due yet";
  EXPECT_EQ(*store_->tombstones().expire_due(kNow + 10), 1u) << "a only: fs2 has not acked b";
  EXPECT_FALSE(*store_->tombstones().contains("a.wav", kLocalOrigin));
  EXPECT_TRUE(*store_->tombstones().contains("b.wav", kLocalOrigin));
  ASSERT_TRUE(store_->tombstones().acked("fs2", b));
  EXPECT_EQ(*store_->tombstones().expire_due(kNow + 1000 * kDay), 1u);
  EXPECT_TRUE(*store_->tombstones().contains("c.wav", kLocalOrigin)) << "0 = kept for ever";
}

}  // namespace
}  // namespace recsync::erase
