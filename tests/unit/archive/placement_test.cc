// The identity rule (placement.h) as a table, and the Placer carrying it out
// in a real folder with a real state store: whatever order two recordings of
// one name arrive in, each node ends with the same recording at each path.
#include "archive/placement.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "archive/migrate_identity.h"
#include "archive/placer.h"
#include "recsync/hash.h"
#include "recsync/publish.h"

namespace recsync {
namespace {

namespace fs = std::filesystem;

TEST(Placement, QualifiedNamesAndBack) {
  EXPECT_EQ(qualified_rel("2026/12/06/a_1001.wav", "fs2"), "2026/12/06/a_1001.from-fs2.wav");
  EXPECT_EQ(qualified_rel("a", "fs2"), "a.from-fs2");
  EXPECT_EQ(qualified_rel("d.x/a.tar.gz", "n.1"), "d.x/a.tar.from-n.1.gz");
  // (A name without an extension and a node name with a '.' would read two
  // ways; recordings have an extension.)
  for (const std::string rel : {"2026/12/06/a_1001.wav", "d.x/a.tar.gz", "x.from-y.wav"})
    for (const std::string origin : {"fs2", "n.1", "a-b_c"}) {
      auto q = parse_qualified_rel(qualified_rel(rel, origin));
      ASSERT_TRUE(q) << rel << " " << origin;
      EXPECT_EQ(q->origin_rel, rel);
      EXPECT_EQ(q->origin, origin);
    }
  EXPECT_FALSE(parse_qualified_rel("2026/12/06/a.wav"));
  EXPECT_FALSE(parse_qualified_rel(".from-fs2.wav")) << "no stem";
  EXPECT_FALSE(parse_qualified_rel("a.from-.wav")) << "no origin";
  EXPECT_FALSE(parse_qualified_rel("a.from-f/s.wav"));
}

TEST(Placement, DecisionTable) {
  const Identity mine{"fs1", "a.wav", "xxh128:1"};
  struct Row {
    const char* what;
    Identity in;
    std::optional<Identity> occ;
    PlaceAction want;
  } rows[] = {
      {"free", mine, std::nullopt, PlaceAction::kFree},
      {"same bytes, any origin", mine, Identity{"fs2", "a.wav", "xxh128:1"}, PlaceAction::kSame},
      {"same identity, other bytes", mine, Identity{"fs1", "a.wav", "xxh128:2"},
       PlaceAction::kConflict},
      {"incoming sorts first", mine, Identity{"fs2", "a.wav", "xxh128:2"}, PlaceAction::kTakeOver},
      {"occupant sorts first", Identity{"fs3", "a.wav", "xxh128:3"},
       Identity{"fs2", "a.wav", "xxh128:2"}, PlaceAction::kQualified},
      {"unknown hashes never equal", Identity{"fs2", "a.wav", ""}, Identity{"fs1", "a.wav", ""},
       PlaceAction::kQualified},
  };
  for (const Row& r : rows)
    EXPECT_EQ(decide_placement(r.in, r.occ), r.want)
        << r.what << ": " << place_action_name(decide_placement(r.in, r.occ));
}

class PlacerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-placer-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/archive");
    store_ = std::move(StateStore::open(dir_ + "/state.db")).value();
    placer_ = std::make_unique<Placer>(Env::posix(), store_.get(), dir_ + "/archive", "fs2");
  }
  void TearDown() override {
    placer_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }
  // Places `content` as recording (origin, rel): as the receiver does for a
  // peer's, as the archiver does for this node's own (origin "fs2").
  Result<Placed> put(const std::string& origin, const std::string& rel,
                     const std::string& content) {
    const std::string tmp = temp_path_for(dir_ + "/archive", "x");
    std::ofstream(tmp) << content;
    const Identity id{origin, rel, hash_bytes(content.data(), content.size())};
    return placer_->place(tmp, id, [&](const Placed& p) {
      RecordingRow r = make_recording_row(p.rel, "x.wav", content.size(), id.hash, 1, 1,
                                          origin == "fs2" ? kLocalOrigin : origin);
      r.origin_rel = rel;
      return store_->queue().record(r, 0);
    });
  }
  std::string at(const std::string& rel) {
    std::ifstream f(dir_ + "/archive/" + rel);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

  std::string dir_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<Placer> placer_;
};

TEST_F(PlacerTest, EitherOrderGivesTheSamePaths) {
  // Here (fs2) first, then fs1's recording of the same name: fs1 sorts first,
  // so fs2's own is moved aside (its queue entry follows it).
  store_->queue().set_peers({"fs1"});
  auto own = put("fs2", "d/a.wav", "fs2 call");
  ASSERT_TRUE(own);
  EXPECT_EQ(own->action, PlaceAction::kFree);
  auto peer = put("fs1", "d/a.wav", "fs1 call");
  ASSERT_TRUE(peer) << peer.status().to_string();
  EXPECT_EQ(peer->action, PlaceAction::kTakeOver);
  EXPECT_EQ(at("d/a.wav"), "fs1 call");
  EXPECT_EQ(at("d/a.from-fs2.wav"), "fs2 call");
  auto row = store_->recordings().get("d/a.from-fs2.wav").value();
  ASSERT_TRUE(row);
  EXPECT_EQ(row->origin, kLocalOrigin);
  EXPECT_EQ(row->identity_rel(), "d/a.wav");
  auto q = store_->queue().next("fs1", 0, 1).value();
  ASSERT_TRUE(q);
  EXPECT_EQ(q->rel, "d/a.from-fs2.wav") << "the queue entry moved with it";
  EXPECT_EQ(q->origin_rel, "d/a.wav");
  EXPECT_EQ(placer_->collisions(), 1u);
  // The other order on a second name: the same layout.
  ASSERT_TRUE(put("fs1", "d/b.wav", "fs1 b"));
  auto late = put("fs2", "d/b.wav", "fs2 b");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->action, PlaceAction::kQualified);
  EXPECT_EQ(at("d/b.wav"), "fs1 b");
  EXPECT_EQ(at("d/b.from-fs2.wav"), "fs2 b");
  // The same content again is "already here", wherever it lies.
  auto again = put("fs2", "d/b.wav", "fs2 b");
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->already);
  EXPECT_EQ(placer_->find({"fs2", "d/a.wav", hash_bytes("fs2 call", 8)}), "d/a.from-fs2.wav");
  EXPECT_FALSE(placer_->find({"fs2", "d/a.wav", hash_bytes("other", 5)}));
}

TEST_F(PlacerTest, OtherContentUnderOneIdentityIsAConflictAndNothingIsReplaced) {
  ASSERT_TRUE(put("fs1", "c.wav", "first"));
  auto r = put("fs1", "c.wav", "second");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), Status::Code::kConflict);
  EXPECT_EQ(at("c.wav"), "first");
  EXPECT_EQ(placer_->conflicts(), 1u);
  size_t files = 0;
  for (auto& e : fs::recursive_directory_iterator(dir_ + "/archive")) files += e.is_regular_file();
  EXPECT_EQ(files, 1u) << "the temp was removed";
}

TEST_F(PlacerTest, OwnFilesWrittenAgainGetVersions) {
  auto first = placer_->own_origin_rel("d/r.wav", hash_bytes("v1", 2));
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, "d/r.wav");
  ASSERT_TRUE(put("fs2", "d/r.wav", "v1"));
  EXPECT_EQ(placer_->own_origin_rel("d/r.wav", hash_bytes("v1", 2)).value(), "d/r.wav")
      << "the same recording again";
  EXPECT_EQ(placer_->own_origin_rel("d/r.wav", hash_bytes("v2", 2)).value(), "d/r.v2.wav");
  // Its first version moved aside by a peer's of the same name: still ours.
  ASSERT_TRUE(put("fs1", "d/r.wav", "peer"));
  EXPECT_EQ(placer_->own_origin_rel("d/r.wav", hash_bytes("v2", 2)).value(), "d/r.v2.wav");
}

}  // namespace
}  // namespace recsync

namespace recsync {
namespace {

TEST(Migration, UnversionedPaths) {
  EXPECT_EQ(unversioned_rel("a/b.v2.wav")->rel, "a/b.wav");
  EXPECT_EQ(unversioned_rel("a/b.v12.wav")->n, 12);
  EXPECT_EQ(unversioned_rel("b.v3")->rel, "b");
  EXPECT_FALSE(unversioned_rel("a/b.wav"));
  EXPECT_FALSE(unversioned_rel("a/b.v1.wav")) << "versions start at 2";
  EXPECT_FALSE(unversioned_rel("a/b.vx.wav"));
  EXPECT_FALSE(unversioned_rel("a.v2/b.wav")) << "the folder is not the name";
}

class MigrationTest : public PlacerTest {
 protected:
  // A file and its row as an older recsync left them.
  void old(const std::string& rel, const std::string& origin, const std::string& content) {
    fs::create_directories(fs::path(dir_ + "/archive/" + rel).parent_path());
    std::ofstream(dir_ + "/archive/" + rel) << content;
    ASSERT_TRUE(store_->recordings().upsert(
        make_recording_row(rel, fs::path(rel).filename().string(), content.size(),
                           hash_bytes(content.data(), content.size()), 1, 1, origin)));
  }
};

TEST_F(MigrationTest, OldCollisionCopiesMoveToTheirPlaceOnceOwnRetakesStay) {
  old("d/p.wav", kLocalOrigin, "own p");     // this node is fs2
  old("d/p.v2.wav", "fs1", "fs1 p");         // fs1's, published second by the old rule
  old("d/q.wav", "fs1", "fs1 q");            // fs1's arrived first
  old("d/q.v2.wav", kLocalOrigin, "own q");  // ours, archived second
  old("d/r.wav", kLocalOrigin, "own r1");    // a re-take of our own
  old("d/r.v2.wav", kLocalOrigin, "own r2");
  std::atomic<bool> stop{false};
  ASSERT_TRUE(migrate_versioned_copies(Env::posix(), store_.get(), placer_.get(), stop));
  EXPECT_EQ(at("d/p.wav"), "fs1 p");
  EXPECT_EQ(at("d/p.from-fs2.wav"), "own p");
  EXPECT_EQ(at("d/q.wav"), "fs1 q");
  EXPECT_EQ(at("d/q.from-fs2.wav"), "own q");
  EXPECT_EQ(at("d/r.wav"), "own r1");
  EXPECT_EQ(at("d/r.v2.wav"), "own r2");
  EXPECT_FALSE(fs::exists(dir_ + "/archive/d/p.v2.wav"));
  EXPECT_FALSE(fs::exists(dir_ + "/archive/d/q.v2.wav"));
  auto q = store_->recordings().get("d/q.from-fs2.wav").value();
  ASSERT_TRUE(q);
  EXPECT_EQ(q->origin, kLocalOrigin);
  EXPECT_EQ(q->identity_rel(), "d/q.wav");
  auto p = store_->recordings().get("d/p.wav").value();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->origin, "fs1");
  // Done once: a copy made later by hand is not touched.
  old("d/s.wav", kLocalOrigin, "own s");
  old("d/s.v2.wav", "fs1", "fs1 s");
  ASSERT_TRUE(migrate_versioned_copies(Env::posix(), store_.get(), placer_.get(), stop));
  EXPECT_EQ(at("d/s.v2.wav"), "fs1 s");
}

}  // namespace
}  // namespace recsync
