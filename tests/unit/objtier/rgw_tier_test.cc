// The tier's other duties against the real Ceph RGW: legal holds follow the
// holds, every version deleted (refused while held), fetch back
// byte-identical, retention with keep_local and keep (the Pruner with the
// tier), peer copies verified in the store, a rebuilt node's window.
#include <atomic>

#include "retention/pruner.h"
#include "tier_test.h"

namespace recsync::objtier {
namespace {

using namespace std::chrono_literals;
constexpr int64_t kDay = 86400000;

[[maybe_unused]] ::testing::Environment* const kRgwEnv =
    ::testing::AddGlobalTestEnvironment(new test::SharedRgw);

int64_t now_ms() { return to_ms(Env::posix()->now()); }

class RgwTier : public TierTest {
 protected:
  void start_and_drain() {
    tier_ = make_tier(options());
    ASSERT_TRUE(tier_);
    tier_->start();
    ASSERT_TRUE(wait_drained()) << "queue: " << queued();
  }
  std::optional<ObjectRow> row(const std::string& rel) {
    auto r = store_->objects().get(rel);
    return r && r->has_value() ? std::optional<ObjectRow>(**r) : std::nullopt;
  }
  Result<PruneReport> prune(Millis keep, Millis keep_local, bool dry_run = false) {
    RetentionPolicy p{keep, Millis(3600000), keep_local};
    Pruner pruner(Env::posix(), store_.get(), archive_, tmp_.sub("audit.log"), p, 0, Millis(kDay),
                  tier_.get());
    std::atomic<bool> stop{false};
    return pruner.run(dry_run, stop);
  }
};

TEST_F(RgwTier, LegalHoldsFollowTheHoldsAndBlockDeletion) {
  RecordingRow a = archive("2026/12/01/held.wav", random_bytes(3000, 1), now_ms());
  RecordingRow b = archive("2026/12/01/free.wav", random_bytes(3000, 2), now_ms());
  start_and_drain();
  ASSERT_TRUE(store_->holds().add({"held", "dispute 42", now_ms()}));  // by recording id
  ASSERT_TRUE(test::wait_until([&] { return row(a.rel) && row(a.rel)->legal_hold; }, 20s));
  auto head = admin_->head_object("rec/fs1/" + a.rel);
  ASSERT_TRUE(head.is_ok());
  EXPECT_EQ(head->legal_hold, std::optional<bool>(true));
  EXPECT_FALSE(row(b.rel)->legal_hold);
  // The store itself refuses to delete it, and so does the tier.
  EXPECT_EQ(admin_->delete_object("rec/fs1/" + a.rel, head->version_id).kind(),
            objstore::ErrorKind::kLocked);
  EXPECT_EQ(tier_->delete_every_version(*row(a.rel)).code(), Status::Code::kRefused);
  EXPECT_EQ(tier_->erase(a.rel).code(), Status::Code::kRefused);
  EXPECT_EQ(versions_of("rec/fs1/" + a.rel), 1u);
  // Released: the legal hold goes, and erasure works.
  ASSERT_TRUE(store_->holds().release("held").value());
  ASSERT_TRUE(test::wait_until([&] { return row(a.rel) && !row(a.rel)->legal_hold; }, 20s));
  EXPECT_EQ(admin_->head_object("rec/fs1/" + a.rel)->legal_hold.value_or(false), false);
  ASSERT_TRUE(tier_->erase(a.rel));
  EXPECT_EQ(versions_of("rec/fs1/" + a.rel), 0u);
  EXPECT_FALSE(row(a.rel));
  EXPECT_EQ(tier_->status().upload.legal_holds_set, 1u);
  EXPECT_EQ(tier_->status().upload.legal_holds_released, 1u);
}

TEST_F(RgwTier, AHeldRecordingIsUploadedWithItsLegalHold) {
  ASSERT_TRUE(store_->holds().add({"2026/12/01/pre.wav", "held before upload", now_ms()}));
  RecordingRow a = archive("2026/12/01/pre.wav", random_bytes(7 << 20, 3), now_ms());  // multipart
  start_and_drain();
  ASSERT_TRUE(row(a.rel));
  EXPECT_TRUE(row(a.rel)->legal_hold);
  EXPECT_EQ(admin_->head_object("rec/fs1/" + a.rel)->legal_hold, std::optional<bool>(true));
}

TEST_F(RgwTier, EraseDeletesEveryVersion) {
  const std::string data = random_bytes(2000, 5);
  RecordingRow a = archive("2026/12/01/v.wav", data, now_ms());
  start_and_drain();
  // Two more versions and a delete marker under the same key.
  test::write_file(tmp_.sub("v2"), random_bytes(10, 6));
  ASSERT_TRUE(admin_->put_file("rec/fs1/" + a.rel, tmp_.sub("v2")).is_ok());
  ASSERT_TRUE(admin_->put_file("rec/fs1/" + a.rel, tmp_.sub("v2")).is_ok());
  ASSERT_TRUE(admin_->delete_object("rec/fs1/" + a.rel).is_ok());
  ASSERT_EQ(versions_of("rec/fs1/" + a.rel), 4u);
  // A neighbour whose key starts with this one is not touched.
  test::write_file(tmp_.sub("n"), "n");
  ASSERT_TRUE(admin_->put_file("rec/fs1/" + a.rel + ".txt", tmp_.sub("n")).is_ok());
  ASSERT_TRUE(tier_->erase(a.rel));
  EXPECT_EQ(versions_of("rec/fs1/" + a.rel), 0u);
  EXPECT_EQ(versions_of("rec/fs1/" + a.rel + ".txt"), 1u);
  EXPECT_TRUE(tier_->erase("2026/12/01/never-there.wav")) << "nothing to delete is success";
}

TEST_F(RgwTier, FetchRestoresByteIdenticalAndNeverReplaces) {
  const std::string data = random_bytes(9 << 20, 8);
  const int64_t rec = now_ms() - 5 * kDay;
  RecordingRow a = archive("2026/11/26/back.wav", data, rec);
  start_and_drain();
  ASSERT_EQ(::unlink((archive_ + "/" + a.rel).c_str()), 0);
  ASSERT_TRUE(store_->recordings().remove(a.rel));
  auto f = tier_->fetch("back");  // by recording id
  ASSERT_TRUE(f) << f.status().to_string();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_FALSE((*f)[0].already);
  EXPECT_TRUE(test::read_file(archive_ + "/" + a.rel) == data);
  auto st = Env::posix()->lstat(archive_ + "/" + a.rel);
  EXPECT_EQ(st->mtime_ns / 1'000'000, rec) << "the recording time is the mtime";
  auto r = store_->recordings().get(a.rel);
  ASSERT_TRUE(r && r->has_value());
  EXPECT_EQ((*r)->hash, a.hash);
  EXPECT_GT((*r)->archived_at_ms, rec) << "counted as arrived now (keep_local starts again)";
  EXPECT_EQ(queued(), 0u) << "a fetched copy is not queued again";
  // Again: already there.
  auto again = tier_->fetch(a.rel);
  ASSERT_TRUE(again);
  EXPECT_TRUE((*again)[0].already);
  // A different file at the name is never replaced.
  test::write_file(archive_ + "/" + a.rel, "something else");
  auto clash = tier_->fetch(a.rel);
  EXPECT_FALSE(clash);
  EXPECT_EQ(test::read_file(archive_ + "/" + a.rel), "something else");
  EXPECT_EQ(tier_->fetch("no-such-recording").status().code(), Status::Code::kNotFound);
}

TEST_F(RgwTier, KeepLocalPrunesOnlyVerifiedCopiesAndKeepDeletesObjects) {
  const int64_t now = now_ms();
  RecordingRow fresh = archive("2026/12/01/fresh.wav", random_bytes(100, 1), now - kDay);
  RecordingRow warm = archive("2026/11/28/warm.wav", random_bytes(100, 2), now - 3 * kDay);
  RecordingRow lost = archive("2026/11/28/lost.wav", random_bytes(100, 5), now - 3 * kDay);
  RecordingRow old = archive("2026/11/10/old.wav", random_bytes(100, 3), now - 20 * kDay);
  RecordingRow held = archive("2026/11/10/held.wav", random_bytes(100, 4), now - 20 * kDay);
  ASSERT_TRUE(store_->holds().add({"held", "kept", now}));
  // Not uploaded yet: past keep_local but the only copy.
  tier_ = make_tier(options());
  auto rep = prune(Millis(15 * kDay), Millis(2 * kDay));
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->offloaded, 0u);
  EXPECT_GE(rep->unstored, 1u);
  EXPECT_TRUE(test::file_exists(archive_ + "/" + warm.rel)) << "the last copy stays";
  EXPECT_FALSE(test::file_exists(archive_ + "/" + old.rel)) << "past keep goes anyway";
  // Uploaded and verified (old's entry is dropped: its file is gone): the
  // next pass removes the warm local copy.
  tier_->start();
  ASSERT_TRUE(wait_drained());
  // One object disappears behind recsync's back (by hand, a lifecycle rule):
  // its local copy must not go, whatever the index says.
  ASSERT_TRUE(row(lost.rel));
  ASSERT_TRUE(tier_->delete_every_version(*row(lost.rel)));
  rep = prune(Millis(15 * kDay), Millis(2 * kDay));
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->offloaded, 1u);
  EXPECT_TRUE(test::file_exists(archive_ + "/" + lost.rel)) << "its object is gone: kept";
  EXPECT_FALSE(row(lost.rel)) << "dropped from the index";
  EXPECT_FALSE(test::file_exists(archive_ + "/" + warm.rel));
  EXPECT_TRUE(test::file_exists(archive_ + "/" + fresh.rel));
  EXPECT_TRUE(test::file_exists(archive_ + "/" + held.rel));
  EXPECT_TRUE(row(warm.rel)) << "the object stays";
  EXPECT_EQ(versions_of("rec/fs1/" + warm.rel), 1u);
  std::string audit = test::read_file(tmp_.sub("audit.log"));
  EXPECT_NE(audit.find("keep_local=2d, object verified in the store"), std::string::npos) << audit;
  // Past keep: the objects go (every version), the held one stays.
  ASSERT_TRUE(row(held.rel));
  rep = prune(Millis(2 * kDay), Millis(2 * kDay));
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->objects.removed, 1u) << "warm's object";
  EXPECT_EQ(rep->objects.held, 1u);
  EXPECT_EQ(versions_of("rec/fs1/" + warm.rel), 0u);
  EXPECT_FALSE(row(warm.rel));
  EXPECT_EQ(versions_of("rec/fs1/" + held.rel), 1u);
  audit = test::read_file(tmp_.sub("audit.log"));
  EXPECT_NE(audit.find("object s3://" + bucket_ + "/rec/fs1/" + warm.rel + ", every version"),
            std::string::npos)
      << audit;
}

TEST_F(RgwTier, PeerCopiesAreVerifiedInTheStoreBeforeTheirLocalCopyGoes) {
  const int64_t now = now_ms();
  // The origin (another node) uploaded it; here it is a copy from a peer.
  const std::string data = random_bytes(4000, 11);
  test::write_file(tmp_.sub("p"), data);
  objstore::PutOptions po;
  po.metadata = {{"xxh3", hash_bytes(data.data(), data.size())},
                 {"rec-time-ms", std::to_string(now - 3 * kDay)},
                 {"node", "fs2"}};
  ASSERT_TRUE(admin_->put_file("rec/fs2/2026/11/28/peer.wav", tmp_.sub("p"), po).is_ok());
  RecordingRow peer = make_recording_row("2026/11/28/peer.wav", "peer.wav", data.size(),
                                         hash_bytes(data.data(), data.size()), now - 3 * kDay,
                                         now - 3 * kDay + 500, "fs2");
  test::write_file(archive_ + "/" + peer.rel, data);
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = peer.rec_time_ms / 1000;
  ts[0].tv_nsec = ts[1].tv_nsec = (peer.rec_time_ms % 1000) * 1000000;
  ASSERT_EQ(::utimensat(AT_FDCWD, (archive_ + "/" + peer.rel).c_str(), ts, 0), 0);
  ASSERT_TRUE(store_->recordings().upsert(peer));  // received: not queued here
  // A copy the store does not have stays.
  RecordingRow lone = make_recording_row("2026/11/28/lone.wav", "lone.wav", 5, "xxh128:x",
                                         now - 3 * kDay, now - 3 * kDay, "fs2");
  test::write_file(archive_ + "/" + lone.rel, "lone!");
  ASSERT_TRUE(store_->recordings().upsert(lone));
  tier_ = make_tier(options());
  auto rep = prune(Millis(15 * kDay), Millis(2 * kDay));
  ASSERT_TRUE(rep) << rep.status().to_string();
  EXPECT_EQ(rep->offloaded, 1u);
  EXPECT_FALSE(test::file_exists(archive_ + "/" + peer.rel));
  EXPECT_TRUE(test::file_exists(archive_ + "/" + lone.rel));
  ASSERT_TRUE(row(peer.rel));
  EXPECT_EQ(row(peer.rel)->origin, "fs2");
  EXPECT_EQ(tier_->status().upload.peer_copies_verified, 1u);
  EXPECT_EQ(versions_of("rec/fs2/2026/11/28/peer.wav"), 1u) << "nothing uploaded by this node";
}

TEST_F(RgwTier, ARebuiltNodeReindexesAndFetchesItsWindow) {
  const int64_t now = now_ms();
  std::map<std::string, std::string> data;
  auto add = [&](const std::string& name, int64_t age) {
    const int64_t t = now - age;
    time_t s = t / 1000;
    struct tm tm {};
    gmtime_r(&s, &tm);
    char day[48];
    std::snprintf(day, sizeof day, "%04d/%02d/%02d/", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    std::string rel = std::string(day) + name + ".wav";
    data[rel] = random_bytes(1000 + data.size(), uint32_t(data.size() + 1));
    archive(rel, data[rel], t);
    return rel;
  };
  std::string recent = add("recent", kDay), older = add("older", 5 * kDay);
  start_and_drain();
  tier_->stop();
  tier_.reset();
  // The disk and the state are lost.
  store_.reset();
  for (auto& [rel, d] : data) ASSERT_EQ(::unlink((archive_ + "/" + rel).c_str()), 0);
  ASSERT_EQ(::unlink(tmp_.sub("state.db").c_str()), 0);
  (void)::unlink(tmp_.sub("state.db-wal").c_str());
  (void)::unlink(tmp_.sub("state.db-shm").c_str());
  store_ = std::move(StateStore::open(tmp_.sub("state.db")).value());
  tier_ = make_tier(options());
  auto w = tier_->fetch_window();
  ASSERT_TRUE(w) << w.status().to_string();
  EXPECT_EQ(w->listed, 2u);
  EXPECT_EQ(w->indexed, 2u);
  EXPECT_EQ(w->fetched, 1u);
  EXPECT_TRUE(test::read_file(archive_ + "/" + recent) == data[recent]);
  EXPECT_FALSE(test::file_exists(archive_ + "/" + older))
      << "outside keep_local: left in the store";
  EXPECT_TRUE(row(older)) << "re-indexed: retention will delete it at keep";
}

}  // namespace
}  // namespace recsync::objtier
