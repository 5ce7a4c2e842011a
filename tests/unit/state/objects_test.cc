// The object-store tier's tables (state/objects.h): verified objects, the
// retention walk, stored_among, legal-hold flags, totals and multipart rows.
#include "state/objects.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <limits>

#include "state/store.h"

namespace recsync {
namespace {

class ObjectIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-objects-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto st = StateStore::open(dir_ + "/state.db");
    ASSERT_TRUE(st) << st.status().to_string();
    store_ = std::move(st).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static ObjectRow obj(const std::string& rel, int64_t t, uint64_t size = 10) {
    ObjectRow o;
    o.rel = rel;
    o.key = "p/" + rel;
    o.name = rel.substr(rel.rfind('/') + 1, rel.rfind('.') - rel.rfind('/') - 1);
    o.size = size;
    o.hash = "xxh128:" + rel;
    o.rec_time_ms = t;
    o.etag = "e";
    o.version_id = "v";
    o.verified_ms = t + 1;
    return o;
  }
  std::string dir_;
  std::unique_ptr<StateStore> store_;
};

TEST_F(ObjectIndexTest, UpsertGetFindAndTotals) {
  ObjectIndex& ix = store_->objects();
  ASSERT_TRUE(ix.upsert(obj("2026/12/01/a.wav", 100, 10)));
  ASSERT_TRUE(ix.upsert(obj("2026/12/02/a.wav", 200, 20)));  // same id, other day
  ASSERT_TRUE(ix.upsert(obj("2026/12/02/b.wav", 300, 30)));
  ObjectRow changed = obj("2026/12/02/b.wav", 300, 35);
  changed.origin = "fs2";
  ASSERT_TRUE(ix.upsert(changed));  // replaces, totals follow
  auto st = ix.stats();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->files, 3u);
  EXPECT_EQ(st->bytes, 65u);
  EXPECT_EQ(st->newest_rec_time_ms, 300);
  EXPECT_EQ(st->oldest_rec_time_ms, 100);
  auto b = ix.get("2026/12/02/b.wav");
  ASSERT_TRUE(b && b->has_value());
  EXPECT_EQ((*b)->size, 35u);
  EXPECT_EQ((*b)->origin, "fs2");
  EXPECT_EQ((*b)->key, "p/2026/12/02/b.wav");
  auto by_id = ix.find("a");
  ASSERT_TRUE(by_id);
  EXPECT_EQ(by_id->size(), 2u);
  auto by_rel = ix.find("2026/12/02/b.wav");
  ASSERT_TRUE(by_rel);
  ASSERT_EQ(by_rel->size(), 1u);
  EXPECT_FALSE(ix.get("nope")->has_value());
  ASSERT_TRUE(ix.remove("2026/12/01/a.wav"));
  ASSERT_TRUE(ix.remove("never"));
  EXPECT_EQ(ix.stats()->files, 2u);
  EXPECT_EQ(ix.stats()->bytes, 55u);
}

TEST_F(ObjectIndexTest, OlderThanWalksInTimeOrderAcrossEqualTimes) {
  ObjectIndex& ix = store_->objects();
  for (int i = 0; i < 25; ++i)
    ASSERT_TRUE(ix.upsert(obj("d/r" + std::to_string(100 + i) + ".wav", 1000 + i / 5)));
  std::vector<std::string> seen;
  int64_t t = std::numeric_limits<int64_t>::min();
  std::string rel;
  for (int guard = 0; guard < 100; ++guard) {
    auto chunk = ix.older_than(1004, t, rel, 3);
    ASSERT_TRUE(chunk);
    if (chunk->empty()) break;
    for (auto& o : *chunk) seen.push_back(o.rel);
    t = chunk->back().rec_time_ms;
    rel = chunk->back().rel;
  }
  ASSERT_EQ(seen.size(), 20u) << "times 1000..1003, five each";
  for (size_t i = 0; i < seen.size(); ++i)
    EXPECT_EQ(seen[i], "d/r" + std::to_string(100 + i) + ".wav");
}

TEST_F(ObjectIndexTest, StoredAmongNeedsTheSameHash) {
  ObjectIndex& ix = store_->objects();
  ASSERT_TRUE(ix.upsert(obj("a.wav", 1)));
  ASSERT_TRUE(ix.upsert(obj("b.wav", 1)));
  RecordingRow a, b, c, unhashed;
  a.rel = "a.wav";
  a.hash = "xxh128:a.wav";
  b.rel = "b.wav";
  b.hash = "xxh128:other";  // a different file under the same name
  c.rel = "c.wav";
  c.hash = "xxh128:c.wav";
  unhashed.rel = "a.wav";  // adopted, never hashed
  auto s = ix.stored_among({a, b, c});
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, (std::unordered_set<std::string>{"a.wav"}));
  EXPECT_TRUE(ix.stored_among({unhashed})->empty());
}

TEST_F(ObjectIndexTest, LegalHoldFlags) {
  ObjectIndex& ix = store_->objects();
  ASSERT_TRUE(ix.upsert(obj("a.wav", 1)));
  ASSERT_TRUE(ix.upsert(obj("b.wav", 1)));
  ASSERT_TRUE(ix.set_legal_hold("b.wav", true));
  auto held = ix.legally_held();
  ASSERT_TRUE(held);
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0].rel, "b.wav");
  EXPECT_EQ(ix.stats()->legal_holds, 1u);
  ASSERT_TRUE(ix.set_legal_hold("b.wav", false));
  EXPECT_TRUE(ix.legally_held()->empty());
}

TEST_F(ObjectIndexTest, MultipartRowsSurviveReopenAndGoWithTheObject) {
  {
    ObjectIndex& ix = store_->objects();
    ASSERT_TRUE(ix.save_upload({"big.wav", "p/big.wav", "xxh128:1", 100, 5 << 20, "up-1", 7}));
    ASSERT_TRUE(ix.save_upload({"big.wav", "p/big.wav", "xxh128:1", 100, 5 << 20, "up-2", 8}));
    ASSERT_TRUE(ix.save_upload({"other.wav", "p/other.wav", "xxh128:2", 9, 5 << 20, "up-3", 9}));
  }
  store_.reset();
  store_ = std::move(StateStore::open(dir_ + "/state.db").value());
  ObjectIndex& ix = store_->objects();
  auto m = ix.get_upload("big.wav");
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ((*m)->upload_id, "up-2");
  EXPECT_EQ((*m)->part_size, 5u << 20);
  EXPECT_EQ(ix.uploads()->size(), 2u);
  ASSERT_TRUE(ix.drop_upload("big.wav"));
  ASSERT_TRUE(ix.remove("other.wav"));
  EXPECT_TRUE(ix.uploads()->empty());
}

TEST_F(ObjectIndexTest, TheStoreDestinationIsAReplicationQueueDestination) {
  store_->queue().set_peers({"fs2", kStoreDestination});
  RecordingRow r;
  r.rel = "x.wav";
  r.name = "x";
  r.hash = "xxh128:x";
  r.size = 5;
  ASSERT_TRUE(store_->queue().record(r, 0));
  EXPECT_EQ(store_->queue().stats(kStoreDestination)->files(), 1u);
  EXPECT_EQ(store_->queue().stats("fs2")->files(), 1u);
  ASSERT_TRUE(store_->holds().add({"x", "why", 1}));
  auto op = store_->holds().next_op(kStoreDestination);
  ASSERT_TRUE(op && op->has_value()) << "hold changes are queued for the store too";
  EXPECT_EQ(std::string(kStoreDestination).find_first_of("@"), 0u) << "no peer name can have '@'";
}

}  // namespace
}  // namespace recsync
