// The retention scheduler: a pass waits for the reconcile, run_now, the
// settings set on reload apply to the next pass and to dry runs.
#include "retention/scheduler.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

namespace recsync {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
constexpr int64_t kNow = 1'750'000'000'000;
constexpr int64_t kDayMs = 24LL * 3600 * 1000;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-sched-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/archive");
    env_.set_now(WallTime(Millis(kNow)));
    store_ = std::move(StateStore::open(dir_ + "/state.db")).value();
  }
  void TearDown() override {
    sched_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }
  RetentionSettings settings(int keep_days) {
    RetentionSettings s;
    s.policy = {Millis(keep_days * kDayMs), Millis(3600 * 1000)};
    s.pace = 0;
    s.audit_log_path = dir_ + "/audit.log";
    return s;
  }
  void archive(const std::string& name, int64_t age_days) {
    const int64_t rec = kNow - age_days * kDayMs;
    std::ofstream(dir_ + "/archive/" + name) << "data";
    fs::last_write_time(
        dir_ + "/archive/" + name,
        fs::file_time_type::clock::from_sys(std::chrono::system_clock::time_point(Millis(rec))));
    ASSERT_TRUE(
        store_->recordings().upsert(make_recording_row(name, name, 4, "", rec, rec, "local")));
  }
  bool wait_pass(uint64_t removed) {
    for (int i = 0; i < 500; ++i) {
      auto s = sched_->snapshot();
      if (s.last_prune_ms != 0 && !s.running && s.last.removed == removed) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  FaultEnv env_{Env::posix()};
  std::string dir_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<RetentionScheduler> sched_;
};

TEST_F(SchedulerTest, ReloadedSettingsApplyToDryRunsAndTheNextPass) {
  archive("a.wav", 20);
  archive("b.wav", 10);
  sched_ =
      std::make_unique<RetentionScheduler>(&env_, store_.get(), dir_ + "/archive", settings(15));
  auto dry = sched_->dry_run();
  ASSERT_TRUE(dry);
  EXPECT_EQ(dry->removed, 1u);
  sched_->set_settings(settings(5));
  EXPECT_EQ(sched_->snapshot().settings.policy.keep, Millis(5 * kDayMs));
  dry = sched_->dry_run();
  ASSERT_TRUE(dry);
  EXPECT_EQ(dry->removed, 2u) << "the reloaded keep applies";
  EXPECT_TRUE(fs::exists(dir_ + "/archive/a.wav"));
}

TEST_F(SchedulerTest, ARequestedPassWaitsForTheReconcile) {
  archive("a.wav", 20);
  sched_ =
      std::make_unique<RetentionScheduler>(&env_, store_.get(), dir_ + "/archive", settings(15));
  sched_->start();
  EXPECT_EQ(sched_->snapshot().next_prune_ms, kNow + RetentionScheduler::kFirstPassDelay.count());
  sched_->run_now();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(sched_->snapshot().last_prune_ms, 0) << "no pass before the archive is reconciled";
  EXPECT_TRUE(fs::exists(dir_ + "/archive/a.wav"));
  sched_->set_reconciled();
  ASSERT_TRUE(wait_pass(1));
  EXPECT_FALSE(fs::exists(dir_ + "/archive/a.wav"));
  auto s = sched_->snapshot();
  EXPECT_EQ(s.last_prune_ms, kNow);
  EXPECT_EQ(s.next_prune_ms, kNow + 3600 * 1000);
}

TEST_F(SchedulerTest, ThePassAfterAReloadUsesTheNewSettings) {
  archive("a.wav", 10);
  sched_ =
      std::make_unique<RetentionScheduler>(&env_, store_.get(), dir_ + "/archive", settings(15));
  sched_->start();
  sched_->set_reconciled();
  sched_->run_now();
  ASSERT_TRUE(wait_pass(0));
  EXPECT_TRUE(fs::exists(dir_ + "/archive/a.wav"));
  sched_->set_settings(settings(5));
  sched_->run_now();
  for (int i = 0; i < 500 && fs::exists(dir_ + "/archive/a.wav"); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(fs::exists(dir_ + "/archive/a.wav"));
}

TEST_F(SchedulerTest, StopEndsPromptlyAndIsIdempotent) {
  sched_ =
      std::make_unique<RetentionScheduler>(&env_, store_.get(), dir_ + "/archive", settings(15));
  sched_->start();
  const auto t0 = std::chrono::steady_clock::now();
  sched_->stop();
  sched_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

// A fake of the replication board: the test sets what the links measured.
struct FakeClocks {
  std::mutex mu;
  std::vector<PeerClock> peers;
  void set(std::vector<PeerClock> p) {
    std::lock_guard<std::mutex> l(mu);
    peers = std::move(p);
  }
  RetentionScheduler::PeerClocks fn() {
    return [this] {
      std::lock_guard<std::mutex> l(mu);
      return peers;
    };
  }
};

TEST_F(SchedulerTest, APeerClockOffByDaysRefusesThePassAndADryRun) {
  archive("a.wav", 20);
  FakeClocks clocks;
  clocks.set({{"fs2", 0, 0, 0}});
  sched_ =
      std::make_unique<RetentionScheduler>(&env_, store_.get(), dir_ + "/archive", settings(15));
  sched_->set_peer_clocks(clocks.fn());
  sched_->start();
  sched_->set_reconciled();
  sched_->run_now();
  // Not compared yet: the pass is held back and says why.
  for (int i = 0; i < 300 && sched_->snapshot().waiting.empty(); ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_EQ(sched_->snapshot().waiting, "waiting for a clock comparison with fs2");
  EXPECT_EQ(sched_->snapshot().last_prune_ms, 0);
  // The link measures the peer 3 days ahead: the pass is refused, nothing goes.
  clocks.set({{"fs2", kNow, 3.0 * kDayMs, 0.5}});
  ASSERT_TRUE(wait_pass(0));
  auto s = sched_->snapshot();
  EXPECT_EQ(s.waiting, "");
  EXPECT_EQ(s.last.refused, "clock differs from peer fs2 by 3d (the peer is ahead); tolerance 1h");
  EXPECT_TRUE(fs::exists(dir_ + "/archive/a.wav"));
  EXPECT_EQ(s.next_prune_ms, kNow + RetentionScheduler::kRefusedRetry.count())
      << "a refused pass is tried again sooner than the 1 h interval";
  auto dry = sched_->dry_run();
  ASSERT_TRUE(dry);
  EXPECT_EQ(dry->refused, s.last.refused);
  EXPECT_EQ(dry->removed, 0u);
  // The clocks agree again: the next pass prunes.
  clocks.set({{"fs2", kNow, 20, 0.5}});
  sched_->run_now();
  ASSERT_TRUE(wait_pass(1));
  EXPECT_EQ(sched_->snapshot().last.refused, "");
  EXPECT_FALSE(fs::exists(dir_ + "/archive/a.wav"));
}

TEST_F(SchedulerTest, APeerNeverComparedIsWaitedForOnlyABoundedTime) {
  archive("a.wav", 20);
  FakeClocks clocks;
  clocks.set({{"fs2", 0, 0, 0}});
  sched_ =
      std::make_unique<RetentionScheduler>(&env_, store_.get(), dir_ + "/archive", settings(15));
  sched_->set_peer_clocks(clocks.fn());
  sched_->start();
  sched_->set_reconciled();
  sched_->run_now();
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(fs::exists(dir_ + "/archive/a.wav"));
  env_.set_now(WallTime(Millis(kNow + kPeerClockWait.count())));  // the peer stayed away
  ASSERT_TRUE(wait_pass(1));
  EXPECT_FALSE(fs::exists(dir_ + "/archive/a.wav"));
}

}  // namespace
}  // namespace recsync
