#include "state/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <tuple>
#include <unordered_map>

namespace recsync {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "recsync-state-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

RecordingRow row(const std::string& rel, uint64_t size, int64_t t, const std::string& hash = "") {
  RecordingRow r;
  r.rel = rel;
  auto slash = rel.rfind('/');
  std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
  r.name = base.substr(0, base.rfind('.'));
  r.size = size;
  r.hash = hash;
  r.rec_time_ms = t;
  r.archived_at_ms = t + 5;
  return r;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_path_ = dir_.path() + "/state.db";
    auto st = StateStore::open(db_path_);
    ASSERT_TRUE(st) << st.status().to_string();
    store_ = std::move(st).value();
  }
  TempDir dir_;
  std::string db_path_;
  std::unique_ptr<StateStore> store_;
};

TEST_F(StoreTest, UpsertGetRemoveRoundTrip) {
  RecordingRow r = row("2024/05/01/abc.wav", 1234, 1714521600000, "h1");
  r.origin = "fs2";
  ASSERT_TRUE(store_->recordings().upsert(r));
  auto got = store_->recordings().get(r.rel);
  ASSERT_TRUE(got);
  ASSERT_TRUE(got->has_value());
  const RecordingRow& g = **got;
  EXPECT_GT(g.id, 0);
  EXPECT_EQ(g.rel, r.rel);
  EXPECT_EQ(g.name, "abc");
  EXPECT_EQ(g.size, 1234u);
  EXPECT_EQ(g.hash, "h1");
  EXPECT_EQ(g.rec_time_ms, 1714521600000);
  EXPECT_EQ(g.archived_at_ms, 1714521600005);
  EXPECT_EQ(g.origin, "fs2");

  // Upsert by rel replaces the fields and keeps the id.
  r.size = 99;
  r.hash = "h2";
  ASSERT_TRUE(store_->recordings().upsert(r));
  auto again = store_->recordings().get(r.rel);
  ASSERT_TRUE(again && again->has_value());
  EXPECT_EQ((*again)->id, g.id);
  EXPECT_EQ((*again)->size, 99u);
  EXPECT_EQ((*again)->hash, "h2");

  ASSERT_TRUE(store_->recordings().remove(r.rel));
  auto gone = store_->recordings().get(r.rel);
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
  // Removing an absent row is fine.
  EXPECT_TRUE(store_->recordings().remove(r.rel));
}

TEST_F(StoreTest, FindByNameOrRel) {
  ASSERT_TRUE(store_->recordings().upsert(row("2024/05/01/call-1.wav", 1, 10)));
  ASSERT_TRUE(store_->recordings().upsert(row("2024/05/02/call-1.wav", 2, 20)));
  ASSERT_TRUE(store_->recordings().upsert(row("2024/05/02/call-2.wav", 3, 30)));
  auto by_name = store_->recordings().find("call-1");
  ASSERT_TRUE(by_name);
  ASSERT_EQ(by_name->size(), 2u);
  EXPECT_EQ((*by_name)[0].rel, "2024/05/01/call-1.wav");
  EXPECT_EQ((*by_name)[1].rel, "2024/05/02/call-1.wav");
  auto by_rel = store_->recordings().find("2024/05/02/call-2.wav");
  ASSERT_TRUE(by_rel);
  ASSERT_EQ(by_rel->size(), 1u);
  EXPECT_EQ((*by_rel)[0].size, 3u);
  auto none = store_->recordings().find("call-3");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(StoreTest, FindByNameIgnoresOtherNamesWithTheSameKey) {
  // Two names whose 31-bit keys collide (a birthday search, ~2^16 tries).
  std::unordered_map<int64_t, std::string> seen;
  std::string a, b;
  for (int i = 0; a.empty() && i < 2'000'000; i++) {
    std::string n = "call-" + std::to_string(i);
    auto [it, fresh] = seen.emplace(name_key(n), n);
    if (!fresh) a = it->second, b = n;
  }
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(name_key(a), name_key(b));
  ASSERT_TRUE(store_->recordings().upsert(row("2024/05/01/" + a + ".wav", 1, 10)));
  ASSERT_TRUE(store_->recordings().upsert(row("2024/05/01/" + b + ".wav", 2, 20)));
  for (const std::string& n : {a, b}) {
    auto found = store_->recordings().find(n);
    ASSERT_TRUE(found) << found.status().to_string();
    ASSERT_EQ(found->size(), 1u) << n;
    EXPECT_EQ((*found)[0].name, n);
  }
}

TEST_F(StoreTest, StatsFollowInsertsUpdatesDeletes) {
  auto empty = store_->recordings().stats();
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->files, 0u);
  EXPECT_EQ(empty->bytes, 0u);
  EXPECT_EQ(empty->newest_rec_time_ms, 0);
  EXPECT_EQ(empty->oldest_rec_time_ms, 0);

  ASSERT_TRUE(store_->recordings().upsert(row("a.wav", 100, 3000)));
  ASSERT_TRUE(store_->recordings().upsert(row("b.wav", 200, 1000)));
  ASSERT_TRUE(store_->recordings().upsert(row("c.wav", 300, 2000)));
  ASSERT_TRUE(store_->recordings().upsert(row("b.wav", 250, 1000)));  // size change
  ASSERT_TRUE(store_->recordings().remove("c.wav"));
  auto s = store_->recordings().stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->files, 2u);
  EXPECT_EQ(s->bytes, 350u);
  EXPECT_EQ(s->newest_rec_time_ms, 3000);
  EXPECT_EQ(s->oldest_rec_time_ms, 1000);
}

TEST_F(StoreTest, HoldsAddReplaceListRelease) {
  ASSERT_TRUE(store_->holds().add_copied({"zz-call", "legal", 5}));
  ASSERT_TRUE(store_->holds().add_copied({"2024/05/01/a.wav", "dispute", 6}));
  ASSERT_TRUE(store_->holds().add_copied({"zz-call", "legal case 42", 7}));  // replaces
  auto h = store_->holds().list();
  ASSERT_TRUE(h);
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].target, "2024/05/01/a.wav");
  EXPECT_EQ((*h)[1].target, "zz-call");
  EXPECT_EQ((*h)[1].reason, "legal case 42");
  EXPECT_EQ((*h)[1].created_ms, 7);

  auto released = store_->holds().release_copied("zz-call");
  ASSERT_TRUE(released);
  EXPECT_TRUE(*released);
  auto again = store_->holds().release_copied("zz-call");
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  auto left = store_->holds().list();
  ASSERT_TRUE(left);
  EXPECT_EQ(left->size(), 1u);
}

TEST_F(StoreTest, AuditAppendAndCount) {
  auto zero = store_->audit().count();
  ASSERT_TRUE(zero);
  EXPECT_EQ(*zero, 0u);
  ASSERT_TRUE(store_->audit().append({}));
  std::vector<AuditRow> rows = {{"a.wav", 1, "h", 10, 20, "retention keep=15d"},
                                {"b.wav", 2, "", 11, 20, "retention keep=15d"}};
  ASSERT_TRUE(store_->audit().append(rows));
  ASSERT_TRUE(store_->audit().append({rows[0]}));
  auto n = store_->audit().count();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 3u);
}

TEST_F(StoreTest, MetaGetSet) {
  auto missing = store_->db().get_meta("last_prune");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store_->db().set_meta("last_prune", "2024-05-01T00:00:00.000Z"));
  ASSERT_TRUE(store_->db().set_meta("last_prune", "2024-05-02T00:00:00.000Z"));
  auto v = store_->db().get_meta("last_prune");
  ASSERT_TRUE(v && v->has_value());
  EXPECT_EQ(**v, "2024-05-02T00:00:00.000Z");
}

TEST_F(StoreTest, ScanMarkAndSweep) {
  ASSERT_TRUE(store_->recordings().upsert(row("same.wav", 10, 100, "hash-same")));
  ASSERT_TRUE(store_->recordings().upsert(row("resized.wav", 10, 100, "hash-resized")));
  ASSERT_TRUE(store_->recordings().upsert(row("retimed.wav", 10, 100, "hash-retimed")));
  ASSERT_TRUE(store_->recordings().upsert(row("gone.wav", 10, 100, "hash-gone")));
  auto before = store_->recordings().get("same.wav");
  ASSERT_TRUE(before && before->has_value());

  auto gen = store_->recordings().begin_scan();
  ASSERT_TRUE(gen);
  RecordingRow same = row("same.wav", 10, 100);
  same.origin = "scan";  // the scan does not know the origin: stored one stays
  std::vector<RecordingRow> batch = {same, row("resized.wav", 11, 100), row("retimed.wav", 10, 101),
                                     row("new.wav", 5, 50)};
  ASSERT_TRUE(store_->recordings().scan_seen(batch, *gen));
  // Archived while the scan ran: must survive the sweep.
  ASSERT_TRUE(store_->recordings().upsert(row("live.wav", 7, 700, "hash-live")));
  auto swept = store_->recordings().end_scan(*gen);
  ASSERT_TRUE(swept);
  EXPECT_EQ(*swept, 1u);

  auto g = store_->recordings().get("same.wav");
  ASSERT_TRUE(g && g->has_value());
  EXPECT_EQ((*g)->hash, "hash-same");
  EXPECT_EQ((*g)->id, (*before)->id);
  EXPECT_EQ((*g)->origin, "local");
  auto rs = store_->recordings().get("resized.wav");
  ASSERT_TRUE(rs && rs->has_value());
  EXPECT_EQ((*rs)->hash, "");
  EXPECT_EQ((*rs)->size, 11u);
  auto rt = store_->recordings().get("retimed.wav");
  ASSERT_TRUE(rt && rt->has_value());
  EXPECT_EQ((*rt)->hash, "");
  EXPECT_EQ((*rt)->rec_time_ms, 101);
  auto gone = store_->recordings().get("gone.wav");
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
  auto nw = store_->recordings().get("new.wav");
  ASSERT_TRUE(nw && nw->has_value());
  EXPECT_EQ((*nw)->size, 5u);
  auto live = store_->recordings().get("live.wav");
  ASSERT_TRUE(live && live->has_value());

  auto s = store_->recordings().stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->files, 5u);
  EXPECT_EQ(s->bytes, 10u + 11u + 10u + 5u + 7u);

  // A second scan that sees nothing sweeps everything.
  auto gen2 = store_->recordings().begin_scan();
  ASSERT_TRUE(gen2);
  EXPECT_GT(*gen2, *gen);
  auto swept2 = store_->recordings().end_scan(*gen2);
  ASSERT_TRUE(swept2);
  EXPECT_EQ(*swept2, 5u);
  auto s2 = store_->recordings().stats();
  ASSERT_TRUE(s2);
  EXPECT_EQ(s2->files, 0u);
  EXPECT_EQ(s2->bytes, 0u);
}

TEST_F(StoreTest, OlderThanPagesInTimeIdOrder) {
  // 30 rows, times 0..14 each twice (ties broken by id), 5 of them at/after cutoff.
  std::vector<std::pair<int64_t, std::string>> expected;
  for (int i = 0; i < 30; ++i) {
    int64_t t = 1000 + (i % 15) * 10;
    std::string rel = "r" + std::to_string(i) + ".wav";
    ASSERT_TRUE(store_->recordings().upsert(row(rel, 1, t)));
  }
  const int64_t cutoff = 1000 + 12 * 10;  // times 1120..1140 excluded
  for (size_t limit : {1u, 4u, 7u, 100u}) {
    std::vector<RecordingRow> all;
    int64_t at = Recordings::kFirstTime, aid = 0;
    for (int guard = 0; guard < 100; ++guard) {
      auto page = store_->recordings().older_than(cutoff, at, aid, limit);
      ASSERT_TRUE(page);
      ASSERT_LE(page->size(), limit);
      if (page->empty()) break;
      at = page->back().rec_time_ms;
      aid = page->back().id;
      all.insert(all.end(), page->begin(), page->end());
    }
    ASSERT_EQ(all.size(), 24u) << "limit " << limit;
    for (size_t i = 1; i < all.size(); ++i) {
      EXPECT_TRUE(std::make_pair(all[i - 1].rec_time_ms, all[i - 1].id) <
                  std::make_pair(all[i].rec_time_ms, all[i].id));
    }
    for (const auto& r : all) EXPECT_LT(r.rec_time_ms, cutoff);
  }

  // Deleting rows already returned does not disturb the walk.
  auto first = store_->recordings().older_than(cutoff, Recordings::kFirstTime, 0, 5);
  ASSERT_TRUE(first);
  for (const auto& r : *first) ASSERT_TRUE(store_->recordings().remove(r.rel));
  auto next =
      store_->recordings().older_than(cutoff, first->back().rec_time_ms, first->back().id, 100);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->size(), 19u);
}

TEST_F(StoreTest, IdentityPageInsideAndOutsideInIdentityOrder) {
  // 40 rows: times 1000..1390, origins local (read as "fs1"), fs2 and fs0,
  // some stored at a qualified path (identity path = origin_rel).
  struct Want {
    std::string ipath, inode;
    int64_t t;
  };
  std::vector<Want> all;
  for (int i = 0; i < 40; ++i) {
    const int64_t t = 1000 + ((i * 17) % 40) * 10;
    const std::string origin = i % 3 == 0 ? kLocalOrigin : (i % 3 == 1 ? "fs2" : "fs0");
    const std::string path = "d" + std::to_string(i % 4) + "/c" + std::to_string(i / 2) + ".wav";
    RecordingRow r = row(path, 1, t);
    r.origin = origin;
    if (i % 3 != 0 && i % 2 == 1) {  // a copy kept beside another origin's
      r.origin_rel = path;
      r.rel = path.substr(0, path.size() - 4) + ".from-" + origin + ".wav";
    }
    ASSERT_TRUE(store_->recordings().upsert(r)) << r.rel;
    all.push_back({path, origin == kLocalOrigin ? "fs1" : origin, t});
  }
  auto key = [](const Want& w) { return std::make_pair(w.ipath, w.inode); };
  std::sort(all.begin(), all.end(), [&](const Want& a, const Want& b) { return key(a) < key(b); });
  const int64_t t0 = 1100, t1 = 1250;
  for (bool inside : {true, false}) {
    std::vector<Want> want;
    for (const Want& w : all)
      if ((w.t >= t0 && w.t < t1) == inside) want.push_back(w);
    ASSERT_FALSE(want.empty());
    for (size_t limit : {1u, 3u, 7u, 100u}) {
      std::vector<Want> got;
      std::string ap, ao;
      for (int guard = 0; guard < 100; ++guard) {
        auto page = store_->recordings().identity_page(t0, t1, "fs1", ap, ao, limit, inside);
        ASSERT_TRUE(page) << page.status().to_string();
        ASSERT_LE(page->size(), limit);
        for (const RecordingRow& r : *page)
          got.push_back(
              {r.identity_rel(), r.origin == kLocalOrigin ? "fs1" : r.origin, r.rec_time_ms});
        if (page->size() < limit) break;
        ap = got.back().ipath;
        ao = got.back().inode;
      }
      SCOPED_TRACE(::testing::Message() << "inside " << inside << " limit " << limit);
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(key(got[i]), key(want[i])) << i;
        EXPECT_EQ(got[i].t, want[i].t) << i;
      }
    }
  }
  // The range's edges: t0 is inside, t1 outside; an empty range lists nothing.
  auto edge = store_->recordings().identity_page(1100, 1101, "fs1", "", "", 100, true);
  ASSERT_TRUE(edge);
  ASSERT_EQ(edge->size(), 1u);
  EXPECT_EQ(edge->front().rec_time_ms, 1100);
  auto none = store_->recordings().identity_page(1101, 1110, "fs1", "", "", 100, true);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  auto rest = store_->recordings().identity_page(1101, 1110, "fs1", "", "", 100, false);
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->size(), 40u);
}

TEST_F(StoreTest, DigestInputReadsExactlyTheRangeByRowidOrByIndex) {
  // 9,000 rows (more than two pages of 4,096), times a permutation of
  // 1000..9999, every third at a qualified path (identity = origin_rel).
  std::vector<RecordingRow> batch;
  std::map<std::string, std::tuple<std::string, uint64_t, int64_t>> all;  // path -> hash, size, t
  for (int i = 0; i < 9000; ++i) {
    RecordingRow r = row("d/c" + std::to_string(i) + ".wav", 100 + i, 1000 + (i * 7919) % 9000,
                         i % 2 ? "" : "xxh128:" + std::string(32, "0123456789abcdef"[i % 16]));
    r.origin = i % 3 ? kLocalOrigin : "fs2";
    if (i % 3 == 0) {
      r.origin_rel = r.rel;
      r.rel = "d/c" + std::to_string(i) + ".from-fs2.wav";
    }
    all[r.identity_rel()] = {r.hash, r.size, r.rec_time_ms};
    batch.push_back(r);
  }
  ASSERT_TRUE(store_->recordings().scan_seen(batch, 1));
  // [1000, 9000): 8,000 rows, read by rowid; [2000, 2500): 500 rows (under an
  // eighth of the table), through the time index; [9999, 10000): the last one.
  for (auto [t0, t1] :
       std::vector<std::pair<int64_t, int64_t>>{{1000, 9000},
                                                {2000, 2500},
                                                {9999, 10000},
                                                {0, 1000},
                                                {Recordings::kFirstTime, INT64_MAX}}) {
    std::map<std::string, std::tuple<std::string, uint64_t, int64_t>> want, got;
    for (const auto& [p, v] : all)
      if (std::get<2>(v) >= t0 && std::get<2>(v) < t1) want[p] = v;
    size_t calls = 0;
    ASSERT_TRUE(store_->recordings().for_each_digest_input(
        t0, t1, [&](std::string_view path, std::string_view hash, uint64_t size, int64_t t) {
          got[std::string(path)] = {std::string(hash), size, t};
          ++calls;
        }));
    SCOPED_TRACE(::testing::Message() << "[" << t0 << ", " << t1 << ")");
    EXPECT_EQ(calls, want.size());  // each row once
    EXPECT_EQ(got, want);
  }
}

TEST_F(StoreTest, ReopenPersists) {
  ASSERT_TRUE(store_->recordings().upsert(row("keep.wav", 42, 4242, "hh")));
  ASSERT_TRUE(store_->holds().add_copied({"keep", "why", 1}));
  ASSERT_TRUE(store_->db().set_meta("pruned_total", "17"));
  ASSERT_TRUE(store_->audit().append({{"x.wav", 1, "", 1, 2, "p"}}));
  auto gen = store_->recordings().begin_scan();
  ASSERT_TRUE(gen);
  store_.reset();

  auto reopened = StateStore::open(db_path_);
  ASSERT_TRUE(reopened) << reopened.status().to_string();
  auto& st = *reopened;
  auto r = st->recordings().get("keep.wav");
  ASSERT_TRUE(r && r->has_value());
  EXPECT_EQ((*r)->size, 42u);
  EXPECT_EQ((*r)->hash, "hh");
  auto h = st->holds().list();
  ASSERT_TRUE(h);
  EXPECT_EQ(h->size(), 1u);
  auto m = st->db().get_meta("pruned_total");
  ASSERT_TRUE(m && m->has_value());
  EXPECT_EQ(**m, "17");
  auto n = st->audit().count();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);
  auto s = st->recordings().stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->files, 1u);
  EXPECT_EQ(s->bytes, 42u);
  // Generations keep rising across restarts.
  auto gen2 = st->recordings().begin_scan();
  ASSERT_TRUE(gen2);
  EXPECT_GT(*gen2, *gen);
}

TEST_F(StoreTest, ConcurrentCallersAreSerialized) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < 100; ++i) {
        std::string rel = "t" + std::to_string(t) + "/r" + std::to_string(i) + ".wav";
        EXPECT_TRUE(store_->recordings().upsert(row(rel, 2, i)));
        EXPECT_TRUE(store_->recordings().stats());
        EXPECT_TRUE(store_->recordings().find("r" + std::to_string(i)));
      }
    });
  }
  for (auto& th : threads) th.join();
  auto s = store_->recordings().stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->files, 400u);
  EXPECT_EQ(s->bytes, 800u);
}

TEST(StoreOpenTest, GarbageFileIsCorruptAndQuarantineMovesItAside) {
  TempDir dir;
  const std::string db = dir.path() + "/state.db";
  {
    std::ofstream f(db, std::ios::binary);
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>('A' + i % 26));
    std::ofstream w(db + "-wal", std::ios::binary);
    w << "junk";
  }
  auto st = StateStore::open(db);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.status().code(), Status::Code::kCorrupt);
  EXPECT_NE(st.status().message().find(db), std::string::npos) << st.status().message();

  ASSERT_TRUE(StateStore::quarantine(Env::posix(), db));
  EXPECT_FALSE(fs::exists(db));
  EXPECT_FALSE(fs::exists(db + "-wal"));
  int moved_db = 0, moved_wal = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    std::string n = e.path().filename().string();
    if (n.rfind("state.db.corrupt-", 0) == 0) moved_db++;
    if (n.rfind("state.db-wal.corrupt-", 0) == 0) moved_wal++;
  }
  EXPECT_EQ(moved_db, 1);
  EXPECT_EQ(moved_wal, 1);

  auto fresh = StateStore::open(db);
  ASSERT_TRUE(fresh) << fresh.status().to_string();
  auto s = (*fresh)->recordings().stats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->files, 0u);
}

TEST(StoreOpenTest, DamagedPagesAreCorrupt) {
  TempDir dir;
  const std::string db = dir.path() + "/state.db";
  {
    auto st = StateStore::open(db);
    ASSERT_TRUE(st);
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE((*st)->recordings().upsert(row("d/" + std::to_string(i) + ".wav", 1, i, "hash")));
    }
  }  // closing checkpoints the WAL into the main file
  {
    // Overwrite pages after the header page with garbage.
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 2);
    for (int i = 0; i < 4096 * 4; ++i) f.put(static_cast<char>(0x5a));
  }
  auto st = StateStore::open(db);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.status().code(), Status::Code::kCorrupt) << st.status().to_string();
}

TEST(StoreOpenTest, NewerSchemaIsRefusedNotCorrupt) {
  TempDir dir;
  const std::string db = dir.path() + "/state.db";
  { ASSERT_TRUE(StateStore::open(db)); }
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(h);
  }
  auto st = StateStore::open(db);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.status().code(), Status::Code::kInvalid);
}

TEST(StoreOpenTest, QuarantineOfMissingFileIsNotFound) {
  TempDir dir;
  Status s = StateStore::quarantine(Env::posix(), dir.path() + "/nope.db");
  EXPECT_EQ(s.code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace recsync

namespace recsync {
namespace {

TEST(StoreOpenTest, GarbageFileIsCorruptEvenWithoutTheFullCheck) {
  TempDir dir;
  const std::string db = dir.path() + "/state.db";
  {
    std::ofstream f(db, std::ios::binary);
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>('a' + i % 26));
  }
  auto st = StateStore::open(db, /*verify=*/false);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.status().code(), Status::Code::kCorrupt) << st.status().to_string();
}

TEST_F(StoreTest, RemoveRecordingsInOneBatch) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(
        store_->recordings().upsert(row("d/r" + std::to_string(i) + ".wav", 10, 1000 + i, "")));
  ASSERT_TRUE(store_->recordings().remove_many({"d/r1.wav", "d/r3.wav", "d/absent.wav"}));
  auto stats = store_->recordings().stats();
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->files, 3u);
  EXPECT_EQ(stats->bytes, 30u);
  EXPECT_FALSE(store_->recordings().get("d/r1.wav")->has_value());
  EXPECT_TRUE(store_->recordings().get("d/r2.wav")->has_value());
  ASSERT_TRUE(store_->recordings().remove_many({}));
}

// ------------------------------------------------------- replication queue

TEST_F(StoreTest, QueueIsWrittenWithTheRecordingAndDrainedByAcks) {
  RecordingRow r = row("2024/05/01/a.wav", 100, 1000, "xxh128:aa");
  r.archived_at_ms = 50'000;
  store_->queue().set_peers({"fs2", "fs3"});
  ASSERT_TRUE(store_->queue().record(r, 123));
  ASSERT_TRUE(store_->recordings().get(r.rel).value().has_value());
  auto q = store_->queue().next("fs2", 50'000, 60'000);
  ASSERT_TRUE(q && q->has_value());
  EXPECT_EQ((*q)->rel, r.rel);
  EXPECT_EQ((*q)->size, 100u);
  EXPECT_EQ((*q)->hash, "xxh128:aa");
  EXPECT_EQ((*q)->mtime_ns, 123);
  EXPECT_EQ((*q)->prio, 0);
  EXPECT_EQ(store_->queue().stats("fs2").value().live_files, 1u);
  EXPECT_EQ(store_->queue().stats("fs3").value().bytes(), 100u);
  // An ack for other content does not remove it; the right one does, per peer.
  ASSERT_TRUE(store_->queue().done("fs2", r.rel, "xxh128:bb"));
  EXPECT_EQ(store_->queue().stats("fs2").value().files(), 1u);
  ASSERT_TRUE(store_->queue().done("fs2", r.rel, "xxh128:aa"));
  EXPECT_EQ(store_->queue().stats("fs2").value().files(), 0u);
  EXPECT_FALSE(store_->queue().next("fs2", 50'000, 60'000).value().has_value());
  EXPECT_EQ(store_->queue().stats("fs3").value().files(), 1u);
  auto peers = store_->queue().peers_with_entries().value();
  ASSERT_EQ(peers.size(), 1u);
  EXPECT_EQ(peers[0].first, "fs3");
  EXPECT_EQ(peers[0].second, 1u);
}

TEST_F(StoreTest, QueueOffersFreshLiveEntriesBeforeBacklogAndRetries) {
  store_->queue().set_peers({"p"});
  auto add = [&](const std::string& rel, int64_t at) {
    RecordingRow r = row(rel, 10, at, "xxh128:" + rel);
    r.archived_at_ms = at;
    ASSERT_TRUE(store_->queue().record(r, 0));
  };
  add("old1.wav", 1'000);  // backlog from an outage
  add("old2.wav", 2'000);
  add("fresh1.wav", 100'000);  // within the live window at now = 110'000
  add("fresh2.wav", 101'000);
  const int64_t now = 110'000, window = 60'000;
  auto next = [&] { return store_->queue().next("p", now, window).value().value().rel; };
  EXPECT_EQ(next(), "fresh1.wav");
  ASSERT_TRUE(store_->queue().done("p", "fresh1.wav", "xxh128:fresh1.wav"));
  // A failed transfer becomes a retry and is not due before next_try_ms.
  ASSERT_TRUE(store_->queue().defer("p", "fresh2.wav", now + 5'000, "no space"));
  EXPECT_EQ(next(), "old1.wav");
  ASSERT_TRUE(store_->queue().done("p", "old1.wav", "xxh128:old1.wav"));
  EXPECT_EQ(next(), "old2.wav");
  ASSERT_TRUE(store_->queue().done("p", "old2.wav", "xxh128:old2.wav"));
  EXPECT_FALSE(store_->queue().next("p", now, window).value().has_value());
  auto st = store_->queue().stats("p").value();
  EXPECT_EQ(st.retry_files, 1u);
  EXPECT_EQ(st.live_files, 0u);
  auto due = store_->queue().next("p", now + 5'000, window).value();
  ASSERT_TRUE(due.has_value());
  EXPECT_EQ(due->rel, "fresh2.wav");
  EXPECT_EQ(due->attempts, 1);
  EXPECT_EQ(due->last_error, "no space");
}

TEST_F(StoreTest, RequeueKeepsPlaceForSameContentAndResetsForNew) {
  RecordingRow r = row("x.wav", 10, 1, "xxh128:1");
  r.archived_at_ms = 1'000;
  store_->queue().set_peers({"p"});
  ASSERT_TRUE(store_->queue().record(r, 0));
  ASSERT_TRUE(store_->queue().defer("p", "x.wav", 999'999, "boom"));
  r.archived_at_ms = 2'000;  // same content again (a crash re-archived it)
  ASSERT_TRUE(store_->queue().record(r, 0));
  EXPECT_EQ(store_->queue().stats("p").value().retry_files, 1u);
  r.hash = "xxh128:2";  // different content: a new transfer, live again
  ASSERT_TRUE(store_->queue().record(r, 0));
  auto q = store_->queue().next("p", 2'000, 60'000).value();
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->hash, "xxh128:2");
  EXPECT_EQ(q->attempts, 0);
}

TEST(StoreOpenTest, VersionOneDatabaseGainsTheQueue) {
  TempDir dir;
  const std::string db = dir.path() + "/state.db";
  {
    auto st = StateStore::open(db);
    ASSERT_TRUE(st);
    ASSERT_TRUE((*st)->recordings().upsert(row("2026/01/02/a.wav", 1, 1)));
    ASSERT_TRUE((*st)->recordings().upsert(row("2026/01/02/c.wav", 1, 1)));
  }
  {  // make it look like a version 1 database
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(h,
                           "DROP TABLE repl_queue; DROP TABLE hold_queue; "
                           "DROP INDEX recordings_name_key; "
                           "ALTER TABLE recordings DROP COLUMN name_key; "
                           "CREATE INDEX recordings_name ON recordings(name); "
                           // and what version 4 added
                           "DROP INDEX recordings_origin_rel; "
                           "ALTER TABLE recordings DROP COLUMN origin_rel; DROP TABLE holds; "
                           "CREATE TABLE holds(target TEXT PRIMARY KEY, reason TEXT NOT NULL, "
                           "created_ms INTEGER NOT NULL) WITHOUT ROWID; "
                           "INSERT INTO holds VALUES ('call-9', 'legal', 5); "
                           "DROP TABLE tombstones; DROP TABLE backfill_jobs; "
                           "DROP TABLE backfill_peers; DROP TABLE backfill_items; "
                           // and what version 6 added
                           "ALTER TABLE audit DROP COLUMN reason; "
                           "ALTER TABLE audit DROP COLUMN uid; DROP TABLE erase_queue; "
                           "PRAGMA user_version = 1",
                           nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(h);
    sqlite3_close(h);
  }
  auto st = StateStore::open(db);
  ASSERT_TRUE(st) << st.status().to_string();
  EXPECT_TRUE((*st)->recordings().get("2026/01/02/a.wav").value().has_value());
  // The old rows got their name keys: find() by recording id sees them.
  auto found = (*st)->recordings().find("a");
  ASSERT_TRUE(found) << found.status().to_string();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].rel, "2026/01/02/a.wav");
  RecordingRow r = row("b.wav", 1, 1, "xxh128:b");
  (*st)->queue().set_peers({"p"});
  ASSERT_TRUE((*st)->queue().record(r, 0));
  EXPECT_EQ((*st)->queue().stats("p").value().files(), 1u);
  // Version 4: an old hold is kept as a name hold.
  auto holds = (*st)->holds().list().value();
  ASSERT_EQ(holds.size(), 1u);
  EXPECT_EQ(holds[0].target, "call-9");
  EXPECT_FALSE(holds[0].is_identity());
  EXPECT_EQ(holds[0].created_ms, 5);
}

}  // namespace
}  // namespace recsync

namespace recsync {
namespace {

TEST(ReplQueueDoorbell, RecordingAndHoldChangesWakeTheSendersOnlyWithPeers) {
  char tmpl[] = "/tmp/recsync-bell-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  {
    auto st = StateStore::open(dir + "/state.db");
    ASSERT_TRUE(st);
    StateStore& s = **st;
    Doorbell& bell = s.queue().doorbell();
    RecordingRow r;
    r.rel = "a.wav";
    r.name = "a";
    r.hash = "xxh128:1";
    ASSERT_TRUE(s.queue().record(r, 0));
    EXPECT_EQ(bell.count(), 0u) << "no peers: nothing queued, nobody to wake";
    ASSERT_TRUE(s.holds().add({"a", "why", 1}));
    EXPECT_EQ(bell.count(), 0u);
    s.queue().set_peers({"fs2"});
    ASSERT_TRUE(s.queue().record(r, 0));
    EXPECT_EQ(bell.count(), 1u);
    ASSERT_TRUE(s.holds().add({"b", "why", 1}));
    EXPECT_EQ(bell.count(), 2u);
    ASSERT_TRUE(s.holds().release("b"));
    EXPECT_EQ(bell.count(), 3u);
    ASSERT_FALSE(s.holds().release("never").value());
    EXPECT_EQ(bell.count(), 3u) << "nothing released, nothing queued";
    ASSERT_TRUE(s.holds().add_copied({"c", "from fs2", 1}));
    EXPECT_EQ(bell.count(), 3u) << "a copied hold is not sent back";
    EXPECT_EQ(s.queue().stats("fs2")->files(), 1u);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace recsync

namespace recsync {
namespace {

// Version 5 -> 6 (erasure): a tombstone kept by version 5 survives with no
// uid, no expiry (kept for ever) and nothing pending; the erase queue and
// the audit's reason and uid appear.
TEST(StoreOpenTest, VersionFiveTombstonesSurviveTheErasureSchema) {
  TempDir dir;
  const std::string db = dir.path() + "/state.db";
  { ASSERT_TRUE(StateStore::open(db)); }
  {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
    ASSERT_EQ(
        sqlite3_exec(h,
                     "DROP TABLE erase_queue; ALTER TABLE audit DROP COLUMN reason; "
                     "ALTER TABLE audit DROP COLUMN uid; DROP TABLE tombstones; "
                     "CREATE TABLE tombstones(origin_rel TEXT NOT NULL, origin TEXT NOT "
                     "NULL, hash TEXT NOT NULL, erased_ms INTEGER NOT NULL, reason TEXT NOT "
                     "NULL, PRIMARY KEY(origin_rel, origin)) WITHOUT ROWID; "
                     "INSERT INTO tombstones VALUES ('a/x.wav', 'fs2', 'xxh128:1', 5, 'old'); "
                     "PRAGMA user_version = 5",
                     nullptr, nullptr, nullptr),
        SQLITE_OK)
        << sqlite3_errmsg(h);
    sqlite3_close(h);
  }
  auto st = StateStore::open(db);
  ASSERT_TRUE(st) << st.status().to_string();
  auto t = (*st)->tombstones().get("a/x.wav", "fs2");
  ASSERT_TRUE(t && t->has_value());
  EXPECT_EQ((*t)->reason, "old");
  EXPECT_EQ((*t)->uid, -1);
  EXPECT_EQ((*t)->expires_ms, 0);
  EXPECT_FALSE((*t)->pending);
  EXPECT_TRUE((*st)->tombstones().queue_stats()->empty());
  AuditRow a;
  a.rel = "a/y.wav";
  a.policy = "erase";
  a.reason = "GDPR";
  a.uid = 1000;
  ASSERT_TRUE((*st)->audit().append({a}));
  EXPECT_EQ(*(*st)->audit().count_policy("erase"), 1u);
}

}  // namespace
}  // namespace recsync
