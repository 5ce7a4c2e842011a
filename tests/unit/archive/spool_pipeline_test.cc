// The spool pipeline against a fake archive step and a fixed clock: when a
// file is taken up, the retry machine, the archive alarm, a file written
// again while it is being archived.
#include "archive/spool_pipeline.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

namespace recsync {
namespace {

namespace fs = std::filesystem;
using K = ArchiveOutcome::Kind;
using namespace std::chrono_literals;

constexpr int64_t kWallMs = 1'750'000'000'000;  // 2025-06-15, the fixed wall clock

class SpoolPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-pipeline-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    spool_ = tmpl;
    env_.set_now(WallTime(Millis(kWallMs)));
  }
  void TearDown() override {
    p_.reset();
    fs::remove_all(spool_);
  }

  // The pipeline with `settle` and retry_max 8 s; the step answers from
  // script_ (per file, in order; kArchived once the script is used up).
  void make(Millis settle = Millis(500), int workers = 1) {
    SpoolPipelineOptions o;
    o.spool_root = spool_;
    o.settle = settle;
    o.workers = workers;
    o.retry_max = Millis(8000);
    p_ = std::make_unique<SpoolPipeline>(
        &env_, [this](const std::string& rel, Millis s) { return step(rel, s); }, o,
        [this] { return now_; });
    p_->start([this] {
      std::lock_guard<std::mutex> l(mu_);
      ready_++;
      cv_.notify_all();
    });
  }

  ArchiveOutcome step(const std::string& rel, Millis settle) {
    std::lock_guard<std::mutex> l(mu_);
    calls_.push_back(rel);
    settles_.push_back(settle);
    ArchiveOutcome o;
    o.kind = K::kArchived;
    auto& q = script_[rel];
    if (!q.empty()) {
      o = q.front();
      q.erase(q.begin());
    }
    o.row.rel = rel;
    o.row.size = 100;
    // Like the archiver: the spool copy goes once archived.
    if (o.kind == K::kArchived) fs::remove(spool_ + "/" + rel);
    return o;
  }

  void write(const std::string& rel, size_t n = 100) {
    std::ofstream(spool_ + "/" + rel) << std::string(n, 'x');
  }
  static ArchiveOutcome failed(int err) {
    ArchiveOutcome o;
    o.kind = K::kFailed;
    o.status = Status::from_errno(err, "write /archive/x");
    return o;
  }
  static ArchiveOutcome outcome(K k) {
    ArchiveOutcome o;
    o.kind = k;
    return o;
  }

  // Moves the steady clock to t, hands out what is due and applies the
  // outcomes of everything handed out. Returns how many were handed out.
  size_t run_at(int64_t t) {
    now_ = t;
    size_t before;
    {
      std::lock_guard<std::mutex> l(mu_);
      before = ready_;
    }
    p_->dispatch_due();
    const size_t n = p_->snapshot().in_flight;
    {
      std::unique_lock<std::mutex> l(mu_);
      EXPECT_TRUE(cv_.wait_for(l, 10s, [&] { return ready_ >= before + n; }));
    }
    p_->drain_results();
    return n;
  }
  size_t calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_.size();
  }

  FaultEnv env_{Env::posix()};
  std::string spool_;
  std::unique_ptr<SpoolPipeline> p_;
  int64_t now_ = 1'000'000;  // steady ms
  std::mutex mu_;
  std::condition_variable cv_;
  size_t ready_ = 0;
  std::vector<std::string> calls_;
  std::vector<Millis> settles_;
  std::map<std::string, std::vector<ArchiveOutcome>> script_;
};

TEST_F(SpoolPipelineTest, AFileIsTakenUpOnceItHasSettledAndThenForgotten) {
  make(Millis(500));
  write("a.wav");
  p_->on_event("a.wav");
  EXPECT_EQ(p_->snapshot().files, 1u);
  EXPECT_EQ(p_->snapshot().bytes, 100u);
  EXPECT_EQ(run_at(now_ + 499), 0u);  // not quiet yet
  EXPECT_EQ(run_at(now_ + 1), 1u);
  EXPECT_EQ(calls(), 1u);
  EXPECT_EQ(settles_.at(0), Millis(500));
  SpoolSnapshot s = p_->snapshot();
  EXPECT_EQ(s.files, 0u);
  EXPECT_EQ(s.archived_files, 1u);
  EXPECT_EQ(s.archived_bytes, 100u);
  EXPECT_EQ(s.last_archived_ms, kWallMs);
  EXPECT_EQ(run_at(now_ + 10'000), 0u);  // nothing left to take
}

TEST_F(SpoolPipelineTest, FilesTheFilterRefusesAreIgnored) {
  make();
  write("a.txt");
  p_->on_event("a.txt");
  p_->on_event(".hidden.wav");
  EXPECT_EQ(p_->snapshot().files, 0u);
}

TEST_F(SpoolPipelineTest, FailuresRaiseTheAlarmAndRetryWithBackoffUntilTheArchiveTakesFiles) {
  make(Millis(0));
  write("a.wav");
  script_["a.wav"] = {failed(ENOSPC), failed(ENOSPC)};
  p_->on_event("a.wav");
  ASSERT_EQ(run_at(now_), 1u);
  SpoolSnapshot s = p_->snapshot();
  EXPECT_EQ(s.files, 1u);
  EXPECT_EQ(s.failing, 1u);
  EXPECT_EQ(s.failures, 1u);
  EXPECT_EQ(s.archive_alarm.rfind("archive full: ", 0), 0u) << s.archive_alarm;
  // First retry after 1 s (+ up to 20 % jitter), not before.
  const int64_t t0 = now_;
  EXPECT_EQ(run_at(t0 + 999), 0u);
  EXPECT_EQ(run_at(t0 + 1200), 1u);
  // Second retry after 2 s.
  const int64_t t1 = now_;
  EXPECT_EQ(run_at(t1 + 1999), 0u);
  EXPECT_EQ(run_at(t1 + 2400), 1u);
  s = p_->snapshot();
  EXPECT_EQ(s.files, 0u);
  EXPECT_EQ(s.archive_alarm, "") << "cleared once nothing is failing";
}

TEST_F(SpoolPipelineTest, BackoffIsCappedAtRetryMax) {
  make(Millis(0));
  write("a.wav");
  script_["a.wav"] = std::vector<ArchiveOutcome>(8, failed(EIO));
  p_->on_event("a.wav");
  ASSERT_EQ(run_at(now_), 1u);
  for (int i = 0; i < 6; ++i) {
    const int64_t t = now_;
    ASSERT_EQ(run_at(t + 8000 * 12 / 10), 1u) << "retry " << i << " within retry_max + jitter";
  }
  EXPECT_EQ(p_->snapshot().archive_alarm.rfind("archive I/O error: ", 0), 0u);
}

TEST_F(SpoolPipelineTest, TheAlarmStandsWhileAnyRecordingIsStillFailing) {
  make(Millis(0));
  write("a.wav");
  write("b.wav");
  script_["a.wav"] = {failed(EROFS)};
  script_["b.wav"] = {failed(EROFS), failed(EROFS)};
  p_->on_event("a.wav");
  p_->on_event("b.wav");
  ASSERT_EQ(run_at(now_), 2u);
  EXPECT_EQ(p_->snapshot().archive_alarm.rfind("archive read-only: ", 0), 0u);
  ASSERT_EQ(run_at(now_ + 1200), 2u);  // a goes through, b fails again
  SpoolSnapshot s = p_->snapshot();
  EXPECT_EQ(s.files, 1u);
  EXPECT_NE(s.archive_alarm, "");
  ASSERT_EQ(run_at(now_ + 2400), 1u);
  EXPECT_EQ(p_->snapshot().archive_alarm, "");
}

TEST_F(SpoolPipelineTest, AWriterHoldingTheFileIsPolledWithBackoffFromSettle) {
  make(Millis(1000));
  write("a.wav");
  script_["a.wav"] = {outcome(K::kWriterBusy), outcome(K::kWriterBusy)};
  p_->on_event("a.wav");
  ASSERT_EQ(run_at(now_ + 1000), 1u);
  // attempts 1: 1000 << 1 = 2 s (+20 %).
  const int64_t t = now_;
  EXPECT_EQ(run_at(t + 1999), 0u);
  EXPECT_EQ(run_at(t + 2400), 1u);
  const int64_t t2 = now_;
  EXPECT_EQ(run_at(t2 + 3999), 0u);  // attempts 2: 4 s
  EXPECT_EQ(run_at(t2 + 4800), 1u);
  EXPECT_EQ(p_->snapshot().files, 0u);
  EXPECT_EQ(p_->snapshot().archive_alarm, "") << "a busy writer is no archive trouble";
}

TEST_F(SpoolPipelineTest, NotSettledWaitsUntilTheFileWillBeQuiet) {
  make(Millis(0));
  write("a.wav");
  ArchiveOutcome o = outcome(K::kNotSettled);
  o.retry_at_ms = kWallMs + 3000;  // wall time
  script_["a.wav"] = {o};
  p_->on_event("a.wav");
  ASSERT_EQ(run_at(now_), 1u);
  const int64_t t = now_;
  EXPECT_EQ(run_at(t + 2999), 0u);
  EXPECT_EQ(run_at(t + 3000), 1u);
}

TEST_F(SpoolPipelineTest, AFileWrittenAgainWhileBeingArchivedIsTakenAgain) {
  make(Millis(0));
  write("a.wav");
  // The event arrives while the (single) worker is inside the step.
  std::mutex gate_mu;
  std::condition_variable gate_cv;
  bool in_step = false, release = false;
  SpoolPipelineOptions o;
  o.spool_root = spool_;
  o.settle = Millis(0);
  o.workers = 1;
  int steps = 0;
  p_ = std::make_unique<SpoolPipeline>(
      &env_,
      [&](const std::string&, Millis) {
        std::unique_lock<std::mutex> l(gate_mu);
        if (steps++ == 0) {
          in_step = true;
          gate_cv.notify_all();
          gate_cv.wait(l, [&] { return release; });
        }
        ArchiveOutcome out;
        out.kind = K::kArchived;
        return out;
      },
      o, [this] { return now_; });
  std::atomic<int> ready{0};
  p_->start([&] { ready++; });
  p_->on_event("a.wav");
  p_->dispatch_due();
  {
    std::unique_lock<std::mutex> l(gate_mu);
    ASSERT_TRUE(gate_cv.wait_for(l, 10s, [&] { return in_step; }));
  }
  p_->on_event("a.wav");  // written again meanwhile
  {
    std::lock_guard<std::mutex> l(gate_mu);
    release = true;
  }
  gate_cv.notify_all();
  for (int i = 0; i < 1000 && ready.load() < 1; ++i) std::this_thread::sleep_for(10ms);
  p_->drain_results();
  // Archived, and since it was written again the entry went with it: the
  // event is taken up anew (the archiver compares and archives the new
  // content as a new version).
  p_->on_event("a.wav");
  p_->dispatch_due();
  for (int i = 0; i < 1000 && ready.load() < 2; ++i) std::this_thread::sleep_for(10ms);
  p_->drain_results();
  EXPECT_EQ(steps, 2);
}

TEST_F(SpoolPipelineTest, AChangedFileIsLookedAtAgainAfterSettle) {
  make(Millis(700));
  write("a.wav");
  script_["a.wav"] = {outcome(K::kChanged)};
  p_->on_event("a.wav");
  ASSERT_EQ(run_at(now_ + 700), 1u);
  const int64_t t = now_;
  EXPECT_EQ(run_at(t + 699), 0u);
  EXPECT_EQ(run_at(t + 700), 1u);
  EXPECT_EQ(calls(), 2u);
}

TEST_F(SpoolPipelineTest, RescanTakesUpFilesDueWhenQuietAfterTheirMtime) {
  make(Millis(2000));
  write("old.wav");
  fs::create_directories(spool_ + "/sub");
  write("sub/new.wav");
  write("skip.txt");
  // old.wav was written 10 s before "now"; sub/new.wav just now.
  auto set_mtime = [&](const std::string& rel, int64_t ms) {
    fs::last_write_time(spool_ + "/" + rel,
                        fs::file_time_type::clock::from_sys(
                            std::chrono::system_clock::time_point(Millis(ms))));
  };
  set_mtime("old.wav", kWallMs - 10'000);
  set_mtime("sub/new.wav", kWallMs);
  p_->rescan("");
  EXPECT_EQ(p_->snapshot().files, 2u);
  EXPECT_EQ(run_at(now_), 1u);  // old.wav is quiet already
  EXPECT_EQ(calls_.at(0), "old.wav");
  EXPECT_EQ(run_at(now_ + 1999), 0u);
  EXPECT_EQ(run_at(now_ + 1), 1u);
  EXPECT_EQ(calls_.at(1), "sub/new.wav");
  // A rescan of what is already known takes nothing twice.
  write("c.wav");
  set_mtime("c.wav", kWallMs - 10'000);
  p_->rescan("");
  p_->rescan("");
  EXPECT_EQ(run_at(now_), 1u);
}

TEST_F(SpoolPipelineTest, FindMatchesThePathOrTheRecordingId) {
  make(Millis(60'000));
  write("call-1.wav");
  p_->on_event("call-1.wav");
  ASSERT_EQ(p_->find("call-1").size(), 1u);
  EXPECT_EQ(p_->find("call-1.wav").at(0).rel, "call-1.wav");
  EXPECT_EQ(p_->find("call-1.wav").at(0).size, 100u);
  EXPECT_TRUE(p_->find("call-2").empty());
}

TEST_F(SpoolPipelineTest, ReloadChangesTheFilterAndTheSettleOfNewEvents) {
  make(Millis(500));
  write("a.mp3");
  p_->on_event("a.mp3");
  EXPECT_EQ(p_->snapshot().files, 0u);
  p_->reload({"*.mp3"}, {}, Millis(3000), Millis(8000));
  p_->on_event("a.mp3");
  EXPECT_EQ(run_at(now_ + 2999), 0u);
  EXPECT_EQ(run_at(now_ + 1), 1u);
  EXPECT_EQ(settles_.at(0), Millis(3000));
}

TEST_F(SpoolPipelineTest, StopKeepsQueuedFilesInTheSpoolAndTakesNoMore) {
  make(Millis(0));
  write("a.wav");
  p_->on_event("a.wav");
  p_->stop();
  p_->on_event("a.wav");
  p_->dispatch_due();
  EXPECT_EQ(calls(), 0u);
}

}  // namespace
}  // namespace recsync
