// The durable backfill plan: jobs, peers, items and their progress.
#include "state/backfill_table.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "state/store.h"

namespace recsync {
namespace {

class BackfillTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-bft-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store_ = std::move(StateStore::open(dir_ + "/state.db")).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  BackfillItem pull(const std::string& path, uint64_t size) {
    return {path, "fs1", BackfillItem::kPull, 0, "", "", "xxh128:" + path, size,
            BackfillItem::kPlanned};
  }
  std::string dir_;
  std::unique_ptr<StateStore> store_;
};

TEST_F(BackfillTableTest, AJobsPlanMovesAndShowsItsProgress) {
  BackfillTable& t = store_->backfill();
  EXPECT_FALSE(t.latest_job().value().has_value());
  auto job = t.create_job(false, 1000, 2000, {"fs1", "fs3"});
  ASSERT_TRUE(job);
  EXPECT_EQ(t.running_job().value()->id, *job);
  EXPECT_EQ(t.peers(*job).value().size(), 2u);
  EXPECT_EQ(t.peers(*job).value()[0].state, "pending");
  ASSERT_TRUE(t.add_pulls(*job, "fs1", {pull("a.wav", 10), pull("b.wav", 20), pull("c.wav", 30)}));
  EXPECT_TRUE(t.pull_planned(*job, "a.wav", "fs1").value());
  EXPECT_FALSE(t.pull_planned(*job, "a.wav", "fs3").value());
  // Re-planning (after a crash mid-plan) adds nothing twice.
  ASSERT_TRUE(t.add_pulls(*job, "fs1", {pull("a.wav", 10)}));
  // A push is queued for the peer at backfill priority in the same step.
  RecordingRow r = make_recording_row("x.wav", "x.wav", 40, "xxh128:x", 5, 5, kLocalOrigin);
  ASSERT_TRUE(store_->recordings().upsert(r));
  ASSERT_TRUE(t.add_pushes(*job, "fs1", {r}));
  auto q = store_->queue().stats("fs1").value();
  EXPECT_EQ(q.backfill_files, 1u);
  EXPECT_EQ(q.live_files, 0u);
  auto batch = store_->queue().batch("fs1", 10, 1, 5, ReplQueue::Lane::kBackfill).value();
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].rel, "x.wav");
  EXPECT_TRUE(store_->queue().batch("fs1", 10, 1, 5, ReplQueue::Lane::kLive).value().empty())
      << "the live lane never takes backfill entries";

  auto p = t.progress(*job).value();
  EXPECT_EQ(p.pull_total.files, 3u);
  EXPECT_EQ(p.pull_total.bytes, 60u);
  EXPECT_EQ(p.push_total.files, 1u);
  EXPECT_EQ(p.pull_done.files, 0u);
  // Pulls go out in pages, in key order.
  auto first = t.pulls(*job, "fs1", BackfillItem::kPlanned, "", "", 2).value();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[1].origin_rel, "b.wav");
  auto rest = t.pulls(*job, "fs1", BackfillItem::kPlanned, "b.wav", "fs1", 2).value();
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest[0].origin_rel, "c.wav");
  ASSERT_TRUE(t.set_state(first, BackfillItem::kRequested));
  ASSERT_TRUE(t.set_state(rest, BackfillItem::kGone));
  ASSERT_TRUE(t.arrived("a.wav", "fs1"));
  ASSERT_TRUE(t.pushed("fs1", "x.wav", kLocalOrigin));
  p = t.progress(*job).value();
  EXPECT_EQ(p.pull_done.files, 1u);
  EXPECT_EQ(p.pull_gone.files, 1u);
  EXPECT_EQ(p.pull_gone.bytes, 30u);
  EXPECT_EQ(p.push_done.files, 1u);
  // A done item stays done.
  ASSERT_TRUE(t.set_state({pull("a.wav", 10)}, BackfillItem::kRequested));
  EXPECT_EQ(t.progress(*job).value().pull_done.files, 1u);

  ASSERT_TRUE(t.set_peer(*job, {"fs1", "planned", "{\"x\":1}", ""}));
  EXPECT_EQ(t.peers(*job).value()[0].summary, "{\"x\":1}");
  ASSERT_TRUE(t.finish_job(*job, "done", "", 3000));
  EXPECT_FALSE(t.running_job().value().has_value());
  EXPECT_EQ(t.latest_job().value()->state, "done");
  EXPECT_EQ(t.latest_job().value()->finished_ms, 3000);
}

TEST_F(BackfillTableTest, TombstonesAreKeptAndExpire) {
  Tombstones& t = store_->tombstones();
  ASSERT_TRUE(t.add({"a.wav", "fs1", "xxh128:1", 100, "gdpr 7"}));
  EXPECT_TRUE(t.contains("a.wav", "fs1").value());
  EXPECT_FALSE(t.contains("a.wav", "fs2").value());
  EXPECT_EQ(t.list().value().size(), 1u);
  EXPECT_EQ(t.expire(100).value(), 0u);
  EXPECT_EQ(t.expire(101).value(), 1u);
  EXPECT_FALSE(t.contains("a.wav", "fs1").value());
}

}  // namespace
}  // namespace recsync
