#include "retention/pruner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "recsync/log.h"
#include "retention/audit_log.h"

namespace recsync {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr int64_t kDay = 86400000;
constexpr int64_t kHour = 3600000;
constexpr int64_t kNowMs = 1717200000000;  // 2024-06-01T00:00:00Z
const RetentionPolicy kPolicy{Millis(15 * kDay), Millis(kHour)};
const Millis kGrace(kDay);

class PrunerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "recsync-prune-XXXXXX").string();
    base_ = ::mkdtemp(tmpl.data());
    root_ = base_ + "/archive";
    fs::create_directories(root_);
    audit_path_ = base_ + "/audit.log";
    auto st = StateStore::open(base_ + "/state.db");
    ASSERT_TRUE(st) << st.status().to_string();
    store_ = std::move(st).value();
    env_.set_now(WallTime(Millis(kNowMs)));
    log::get("retention")->set_level(spdlog::level::warn);
  }
  void TearDown() override {
    log::get("retention")->set_level(spdlog::level::info);
    store_.reset();
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  // A recording on disk and in the store, recorded age_ms before now.
  RecordingRow add(const std::string& rel, int64_t age_ms, size_t size = 100, bool on_disk = true) {
    RecordingRow r;
    r.rel = rel;
    std::string base = fs::path(rel).filename().string();
    r.name = base.substr(0, base.rfind('.'));
    r.size = size;
    r.hash = "hash-" + r.name;
    r.rec_time_ms = kNowMs - age_ms;
    r.archived_at_ms = r.rec_time_ms + 1000;
    if (on_disk) {
      fs::create_directories(fs::path(root_ + "/" + rel).parent_path());
      {
        std::ofstream f(root_ + "/" + rel, std::ios::binary);
        f << std::string(size, 'x');
      }
      set_mtime_ms(rel, r.rec_time_ms);  // as the archiver leaves it
    }
    EXPECT_TRUE(store_->recordings().upsert(r));
    return r;
  }
  void set_mtime_ms(const std::string& rel, int64_t ms) {
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = ms / 1000;
    ts[0].tv_nsec = ts[1].tv_nsec = (ms % 1000) * 1000000;
    ASSERT_EQ(::utimensat(AT_FDCWD, (root_ + "/" + rel).c_str(), ts, 0), 0) << rel;
  }
  // A file whose mtime is age_ms before the fixed now.
  void add_temp(const std::string& rel, int64_t age_ms) {
    std::string p = root_ + "/" + rel;
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p) << "partial";
    int64_t t = kNowMs - age_ms;
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = t / 1000;
    ts[0].tv_nsec = ts[1].tv_nsec = (t % 1000) * 1000000;
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, 0), 0);
  }
  bool on_disk(const std::string& rel) { return fs::exists(root_ + "/" + rel); }
  bool in_store(const std::string& rel) {
    auto r = store_->recordings().get(rel);
    EXPECT_TRUE(r);
    return r && r->has_value();
  }
  Pruner pruner(int pace = 0, RetentionPolicy p = kPolicy) {
    return Pruner(&env_, store_.get(), root_, audit_path_, p, pace, kGrace);
  }
  std::vector<nlohmann::json> audit_lines() {
    std::vector<nlohmann::json> out;
    std::ifstream f(audit_path_);
    std::string line;
    while (std::getline(f, line)) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  std::string base_, root_, audit_path_;
  std::unique_ptr<StateStore> store_;
  FaultEnv env_{Env::posix()};
  std::atomic<bool> stop_{false};
};

TEST_F(PrunerTest, RemovesOldAuditsAndKeepsYoungAndHeld) {
  RecordingRow a = add("2024/05/01/a.wav", 31 * kDay, 111);
  add("2024/05/01/b.wav", 31 * kDay);                        // held by name
  add("2024/05/10/c.wav", 22 * kDay);                        // held by rel
  add("2024/05/30/d.wav", 2 * kDay);                         // young
  RecordingRow e = add("2024/04/01/e.wav", 61 * kDay, 222);  // alone in its folders
  ASSERT_TRUE(store_->holds().add_copied({"b", "legal", 1}));
  ASSERT_TRUE(store_->holds().add_copied({"2024/05/10/c.wav", "dispute", 2}));

  auto rep = pruner().run(false, stop_);
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->refused, "");
  EXPECT_EQ(rep->removed, 2u);
  EXPECT_EQ(rep->bytes, 333u);
  EXPECT_EQ(rep->held, 2u);
  EXPECT_EQ(rep->errors, 0u);
  EXPECT_EQ(rep->dirs_removed, 2u);  // 2024/04/01 and 2024/04

  EXPECT_FALSE(on_disk(a.rel));
  EXPECT_FALSE(on_disk(e.rel));
  EXPECT_FALSE(in_store(a.rel));
  EXPECT_FALSE(in_store(e.rel));
  for (const char* kept : {"2024/05/01/b.wav", "2024/05/10/c.wav", "2024/05/30/d.wav"}) {
    EXPECT_TRUE(on_disk(kept)) << kept;
    EXPECT_TRUE(in_store(kept)) << kept;
  }
  EXPECT_FALSE(fs::exists(root_ + "/2024/04"));
  EXPECT_TRUE(fs::exists(root_ + "/2024/05/01"));
  EXPECT_TRUE(fs::exists(root_));

  // Oldest first: e then a.
  auto lines = audit_lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["path"], e.rel);
  EXPECT_EQ(lines[0]["size"], 222);
  EXPECT_EQ(lines[0]["hash"], "hash-e");
  EXPECT_EQ(lines[0]["rec_time"], "2024-04-01T00:00:00.000Z");
  EXPECT_EQ(lines[0]["deleted_at"], "2024-06-01T00:00:00.000Z");
  EXPECT_EQ(lines[0]["policy"], "retention keep=15d");
  EXPECT_EQ(lines[1]["path"], a.rel);
  EXPECT_EQ(lines[1]["rec_time"], "2024-05-01T00:00:00.000Z");
  struct stat st;
  ASSERT_EQ(::stat(audit_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);

  auto n = store_->audit().count();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  auto last = store_->db().get_meta("last_prune");
  ASSERT_TRUE(last && last->has_value());
  EXPECT_EQ(**last, "2024-06-01T00:00:00.000Z");
  auto total = store_->db().get_meta("pruned_total");
  ASSERT_TRUE(total && total->has_value());
  EXPECT_EQ(**total, "2");

  // A second pass finds nothing new; the total accumulates.
  add("2024/05/02/f.wav", 30 * kDay);
  auto rep2 = pruner().run(false, stop_);
  ASSERT_TRUE(rep2);
  EXPECT_EQ(rep2->removed, 1u);
  auto total2 = store_->db().get_meta("pruned_total");
  ASSERT_TRUE(total2 && total2->has_value());
  EXPECT_EQ(**total2, "3");
  EXPECT_EQ(audit_lines().size(), 3u);
}

TEST_F(PrunerTest, RootIsNeverRemoved) {
  add("flat.wav", 20 * kDay);
  auto rep = pruner().run(false, stop_);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->removed, 1u);
  EXPECT_EQ(rep->dirs_removed, 0u);
  EXPECT_TRUE(fs::is_directory(root_));
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(PrunerTest, AbandonedTempsGoLiveOnesStay) {
  add_temp("2024/05/31/.recsync-tmp.young.wav.abc", kHour);
  add_temp("2024/05/20/.recsync-tmp.old.wav.def", 2 * kDay);
  add_temp("2024/05/20/not-a-temp.txt", 30 * kDay);  // not ours: left alone
  add_temp("2024/05/19/.recsync-tmp.alone.wav.x", 2 * kDay);
  auto rep = pruner().run(false, stop_);
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->temps_removed, 2u);
  EXPECT_TRUE(on_disk("2024/05/31/.recsync-tmp.young.wav.abc"));
  EXPECT_FALSE(on_disk("2024/05/20/.recsync-tmp.old.wav.def"));
  EXPECT_TRUE(on_disk("2024/05/20/not-a-temp.txt"));
  EXPECT_FALSE(fs::exists(root_ + "/2024/05/19"));  // emptied by the temp removal
  EXPECT_EQ(rep->dirs_removed, 1u);
  EXPECT_TRUE(audit_lines().empty());  // temps are not recordings
}

TEST_F(PrunerTest, StalePeerTransferPartialsGoFreshOnesStay) {
  add_temp("2024/05/31/.recsync-part.call.wav", kHour);  // a transfer may resume
  add_temp("2024/05/31/.recsync-part.call.wav.0123456789abcdef", kHour);
  add_temp("2024/05/20/.recsync-part.gone.wav", 2 * kDay);  // never resumed
  add_temp("2024/05/20/.recsync-part.gone.wav.fedcba9876543210", 2 * kDay);
  auto rep = pruner().run(false, stop_);
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->temps_removed, 2u);
  EXPECT_TRUE(on_disk("2024/05/31/.recsync-part.call.wav"));
  EXPECT_TRUE(on_disk("2024/05/31/.recsync-part.call.wav.0123456789abcdef"));
  EXPECT_FALSE(fs::exists(root_ + "/2024/05/20"));
  EXPECT_TRUE(audit_lines().empty());
}

TEST_F(PrunerTest, DryRunDeletesNothing) {
  add("2024/05/01/a.wav", 31 * kDay, 10);
  add("2024/05/02/b.wav", 30 * kDay, 20);
  add("2024/05/03/held.wav", 29 * kDay);
  add("2024/05/31/young.wav", kDay);
  add_temp("2024/05/20/.recsync-tmp.old.wav.def", 2 * kDay);
  ASSERT_TRUE(store_->holds().add_copied({"held", "", 0}));
  auto rep = pruner().run(true, stop_);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->removed, 2u);
  EXPECT_EQ(rep->bytes, 30u);
  EXPECT_EQ(rep->held, 1u);
  EXPECT_EQ(rep->temps_removed, 1u);
  ASSERT_EQ(rep->would_remove.size(), 2u);
  EXPECT_EQ(rep->would_remove[0].rel, "2024/05/01/a.wav");
  EXPECT_EQ(rep->would_remove[1].rel, "2024/05/02/b.wav");
  EXPECT_TRUE(on_disk("2024/05/01/a.wav"));
  EXPECT_TRUE(on_disk("2024/05/02/b.wav"));
  EXPECT_TRUE(on_disk("2024/05/20/.recsync-tmp.old.wav.def"));
  EXPECT_TRUE(in_store("2024/05/01/a.wav"));
  EXPECT_FALSE(fs::exists(audit_path_));
  EXPECT_EQ(env_.unlinks.load(), 0);
  auto last = store_->db().get_meta("last_prune");
  ASSERT_TRUE(last);
  EXPECT_FALSE(last->has_value());
}

TEST_F(PrunerTest, UnlinkErrorIsCountedAndRowKept) {
  add("2024/05/01/a.wav", 31 * kDay);
  add("2024/05/02/b.wav", 30 * kDay);
  env_.unlink_errno = EIO;
  auto rep = pruner().run(false, stop_);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->errors, 2u);
  EXPECT_EQ(rep->removed, 0u);
  EXPECT_TRUE(in_store("2024/05/01/a.wav"));
  EXPECT_TRUE(in_store("2024/05/02/b.wav"));
  EXPECT_TRUE(on_disk("2024/05/01/a.wav"));
  EXPECT_TRUE(fs::exists(root_ + "/2024/05/02"));

  // Once the disk recovers the next pass finishes the job.
  env_.unlink_errno = 0;
  auto rep2 = pruner().run(false, stop_);
  ASSERT_TRUE(rep2);
  EXPECT_EQ(rep2->removed, 2u);
  EXPECT_EQ(rep2->errors, 0u);
  EXPECT_FALSE(on_disk("2024/05/01/a.wav"));
  EXPECT_FALSE(in_store("2024/05/02/b.wav"));
}

TEST_F(PrunerTest, AlreadyGoneFileStillLeavesTheIndex) {
  add("2024/05/01/ghost.wav", 31 * kDay, 5, /*on_disk=*/false);
  auto rep = pruner().run(false, stop_);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->removed, 1u);
  EXPECT_EQ(rep->errors, 0u);
  EXPECT_FALSE(in_store("2024/05/01/ghost.wav"));
}

TEST_F(PrunerTest, PathOutsideTheArchiveIsRefused) {
  std::string outside = base_ + "/outside.wav";
  std::ofstream(outside) << "precious";
  add("../outside.wav", 31 * kDay, 8, /*on_disk=*/false);
  auto rep = pruner().run(false, stop_);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->errors, 1u);
  EXPECT_EQ(rep->removed, 0u);
  EXPECT_TRUE(fs::exists(outside));
  EXPECT_TRUE(audit_lines().empty());
}

TEST_F(PrunerTest, ClockBehindNewestRecordingRefuses) {
  add("2024/05/01/a.wav", 31 * kDay);
  add("2024/06/03/future.wav", -2 * kDay);  // recorded "after" now: the clock jumped back
  add_temp("2024/05/20/.recsync-tmp.old.wav.def", 2 * kDay);
  auto rep = pruner().run(false, stop_);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->refused.rfind("clock is behind the newest recording by 2d", 0), 0u)
      << rep->refused;
  EXPECT_EQ(rep->removed, 0u);
  EXPECT_TRUE(on_disk("2024/05/01/a.wav"));
  EXPECT_TRUE(on_disk("2024/05/20/.recsync-tmp.old.wav.def"));
  EXPECT_EQ(env_.unlinks.load(), 0);
}

TEST_F(PrunerTest, DisabledRetentionRefuses) {
  add("2024/05/01/a.wav", 31 * kDay);
  auto rep = pruner(0, RetentionPolicy{Millis(0), Millis(kHour)}).run(false, stop_);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->refused, "retention disabled");
  EXPECT_TRUE(on_disk("2024/05/01/a.wav"));
}

TEST_F(PrunerTest, ManyRowsAcrossChunksAndBatches) {
  // Index-only rows (already gone) keep this fast while crossing the chunk
  // and batch boundaries; every 7th is held.
  const int kRows = int(2 * std::max(Pruner::kChunk, Pruner::kBatch) + 500);
  std::vector<RecordingRow> rows;
  for (int i = 0; i < kRows; ++i) {
    RecordingRow r;
    r.rel = "old/" + std::to_string(i) + ".wav";
    r.name = std::to_string(i);
    r.size = 1;
    r.rec_time_ms = kNowMs - 20 * kDay + (i % 10);  // many ties on time
    rows.push_back(r);
    if (i % 7 == 0) {
      ASSERT_TRUE(store_->holds().add_copied({r.name, "", 0}));
    }
  }
  auto gen = store_->recordings().begin_scan();
  ASSERT_TRUE(gen);
  ASSERT_TRUE(store_->recordings().scan_seen(rows, *gen));
  const int held = (kRows + 6) / 7;
  auto rep = pruner().run(false, stop_);
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->removed, uint64_t(kRows - held));
  EXPECT_EQ(rep->held, uint64_t(held));
  auto s = store_->recordings().stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->files, uint64_t(held));
  auto n = store_->audit().count();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, uint64_t(kRows - held));
  EXPECT_EQ(audit_lines().size(), size_t(kRows - held));
}

TEST_F(PrunerTest, PacingSpacesDeletions) {
  for (int i = 0; i < 20; ++i) add("2024/05/01/p" + std::to_string(i) + ".wav", 20 * kDay, 1);
  auto t0 = SteadyClock::now();
  auto rep = pruner(/*pace=*/100).run(false, stop_);
  double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->removed, 20u);
  // 19 gaps of 10 ms; loose bounds for a shared machine.
  EXPECT_GE(secs, 0.18);
  EXPECT_LT(secs, 5.0);
}

TEST_F(PrunerTest, StopFlagEndsTheRunAndTheNextOneResumes) {
  const int kFiles = 60;
  for (int i = 0; i < kFiles; ++i) add("2024/05/01/s" + std::to_string(i) + ".wav", 20 * kDay, 1);

  std::atomic<bool> stop{true};
  auto none = pruner(50).run(false, stop);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->removed, 0u);
  EXPECT_TRUE(none->stopped);

  stop = false;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    stop = true;
  });
  auto t0 = SteadyClock::now();
  auto rep = pruner(/*pace=*/50).run(false, stop);  // 60 files would take ~1.2 s
  double secs = std::chrono::duration<double>(SteadyClock::now() - t0).count();
  stopper.join();
  ASSERT_TRUE(rep);
  EXPECT_TRUE(rep->stopped);
  EXPECT_GT(rep->removed, 0u);
  EXPECT_LT(rep->removed, uint64_t(kFiles));
  EXPECT_LT(secs, 1.0);
  // Disk and index agree for every file.
  for (int i = 0; i < kFiles; ++i) {
    std::string rel = "2024/05/01/s" + std::to_string(i) + ".wav";
    EXPECT_EQ(on_disk(rel), in_store(rel)) << rel;
  }

  auto rest = pruner().run(false, stop_);
  ASSERT_TRUE(rest);
  EXPECT_EQ(rep->removed + rest->removed, uint64_t(kFiles));
  EXPECT_FALSE(fs::exists(root_ + "/2024"));
  auto total = store_->db().get_meta("pruned_total");
  ASSERT_TRUE(total && total->has_value());
  EXPECT_EQ(**total, std::to_string(kFiles));
}

TEST_F(PrunerTest, ChangedFileIsLeftAloneWithItsRow) {
  RecordingRow grown = add("2024/05/01/grown.wav", 31 * kDay, 10);
  RecordingRow touched = add("2024/05/01/touched.wav", 31 * kDay, 10);
  RecordingRow same = add("2024/05/01/same.wav", 31 * kDay, 10);
  {
    // Rewritten with more content, mtime put back: the size differs.
    std::ofstream f(root_ + "/" + grown.rel, std::ios::binary | std::ios::app);
    f << "more";
  }
  set_mtime_ms(grown.rel, grown.rec_time_ms);
  // Same size, a newer mtime (replaced by another recording of that name).
  set_mtime_ms(touched.rel, kNowMs - kHour);

  auto rep = pruner().run(false, stop_);
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->removed, 1u);
  EXPECT_EQ(rep->changed, 2u);
  EXPECT_EQ(rep->errors, 0u);
  EXPECT_FALSE(on_disk(same.rel));
  EXPECT_FALSE(in_store(same.rel));
  for (const RecordingRow* r : {&grown, &touched}) {
    EXPECT_TRUE(on_disk(r->rel)) << r->rel;
    EXPECT_TRUE(in_store(r->rel)) << r->rel;
  }
  // Only the deleted one is in the audit.
  auto lines = audit_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["path"], same.rel);
}

TEST_F(PrunerTest, PacedRunAuditsOldestFirstAndRestoresTheCache) {
  // Across several folders, paced (unlinks in folder and inode order, not
  // in time order): the audit still lists them oldest first, all are gone,
  // and the store's page cache is back to what it was.
  const int kFiles = 30;
  std::vector<std::string> rels;
  for (int i = 0; i < kFiles; ++i) {
    RecordingRow r =
        add("2024/05/0" + std::to_string(1 + i % 3) + "/b" + std::to_string(i) + ".wav",
            20 * kDay + i, 3);
    rels.push_back(r.rel);
  }
  auto before = store_->db().cache_kib();
  ASSERT_TRUE(before);
  auto rep = pruner(/*pace=*/1000).run(false, stop_);
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->removed, uint64_t(kFiles));
  EXPECT_EQ(rep->changed, 0u);
  auto lines = audit_lines();
  ASSERT_EQ(lines.size(), size_t(kFiles));
  // Oldest first in the audit, as planned.
  for (int i = 0; i < kFiles; ++i) EXPECT_EQ(lines[i]["path"], rels[kFiles - 1 - i]);
  for (const std::string& rel : rels) EXPECT_FALSE(on_disk(rel)) << rel;
  auto s = store_->recordings().stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->files, 0u);
  auto after = store_->db().cache_kib();
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, *before);
}

// The filesystem seam, checking the write-ahead rule at every unlink: the
// file's audit line must already be in the audit log.
class AuditCheckingEnv : public FaultEnv {
 public:
  AuditCheckingEnv(Env* base, std::string audit_path, std::string root)
      : FaultEnv(base), audit_path_(std::move(audit_path)), root_(std::move(root)) {}
  Status unlink(const std::string& path) override {
    std::ifstream f(audit_path_);
    std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::string rel = path.substr(root_.size() + 1);
    if (all.find("{\"path\":\"" + rel + "\"") == std::string::npos) unaudited++;
    return FaultEnv::unlink(path);
  }
  std::atomic<int> unaudited{0};  // unlinks run on several threads

 private:
  std::string audit_path_, root_;
};

TEST_F(PrunerTest, EveryUnlinkIsAuditedFirst) {
  // Enough files for the unpaced run's checks and unlinks to use all
  // Pruner::kThreads threads.
  const int kFiles = int(Pruner::kThreads * Pruner::kMinSlice) + 100;
  for (int i = 0; i < kFiles; ++i)
    add("2024/05/0" + std::to_string(1 + i % 4) + "/w" + std::to_string(i) + ".wav", 20 * kDay, 2);
  AuditCheckingEnv env(Env::posix(), audit_path_, root_);
  env.set_now(WallTime(Millis(kNowMs)));
  Pruner p(&env, store_.get(), root_, audit_path_, kPolicy, /*pace=*/0, kGrace);
  auto rep = p.run(false, stop_);
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->removed, uint64_t(kFiles));
  EXPECT_EQ(env.unlinks.load(), kFiles);
  EXPECT_EQ(env.unaudited.load(), 0);
  EXPECT_EQ(audit_lines().size(), size_t(kFiles));
  for (int i = 0; i < kFiles; ++i)
    EXPECT_FALSE(
        on_disk("2024/05/0" + std::to_string(1 + i % 4) + "/w" + std::to_string(i) + ".wav"));
  EXPECT_EQ(store_->recordings().stats().value().files, 0u);
}

TEST_F(PrunerTest, AuditWriteFailureDeletesNothing) {
  add("2024/05/01/a.wav", 31 * kDay);
  // The audit log cannot be opened (its folder is a file): the run fails
  // and the recording stays.
  audit_path_ = base_ + "/not-a-folder/audit.log";
  std::ofstream(base_ + "/not-a-folder") << "x";
  auto rep = pruner().run(false, stop_);
  EXPECT_FALSE(rep);
  EXPECT_TRUE(on_disk("2024/05/01/a.wav"));
  EXPECT_TRUE(in_store("2024/05/01/a.wav"));
  EXPECT_EQ(env_.unlinks.load(), 0);
}

TEST(AuditLine, MatchesNlohmannForAnyName) {
  // The hand-built line must be what nlohmann::ordered_json prints.
  const std::string names[] = {"2024/05/01/a.wav",       "odd \"name\"\n.wav", "tab\there\\back",
                               "caf\xc3\xa9.wav",  // valid UTF-8
                               "bad\xff\xfe.wav",  // invalid UTF-8: replaced
                               std::string("nul\0x", 5), "del\x7f.wav",        ""};
  for (const std::string& n : names) {
    AuditRow r{n, 18446744073709551615ull, "h\"x", -1, 1717200000123, "retention keep=15d"};
    nlohmann::ordered_json j;
    j["path"] = r.rel;
    j["size"] = r.size;
    j["hash"] = r.hash;
    j["rec_time"] = iso8601_utc_ms(r.rec_time_ms);
    j["deleted_at"] = iso8601_utc_ms(r.deleted_ms);
    j["policy"] = r.policy;
    EXPECT_EQ(audit_json_line(r), j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
        << n;
    std::string appended = "x";
    append_audit_json_line(appended, r);
    EXPECT_EQ(appended, "x" + audit_json_line(r));
  }
}

TEST(AuditLine, EscapesAndFormats) {
  AuditRow r{"odd \"name\"\n.wav", 5, "abc", 0, 1000, "retention keep=1d"};
  auto j = nlohmann::json::parse(audit_json_line(r));
  EXPECT_EQ(j["path"], "odd \"name\"\n.wav");
  EXPECT_EQ(j["rec_time"], "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(j["deleted_at"], "1970-01-01T00:00:01.000Z");
  EXPECT_EQ(audit_json_line(r).find('\n'), std::string::npos);
}

}  // namespace
}  // namespace recsync
