#include "backfill/merge.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "backfill_test_util.h"

namespace recsync::backfill {
namespace {

using namespace testing;

const int64_t kWindow = kT0 - 15 * kDay;  // window start
const int64_t kIn = kT0 - kDay;           // a time inside the window
const int64_t kOld = kT0 - 40 * kDay;     // past retention

struct Verdict {
  std::string path, origin;
  Decision d;
  bool operator==(const Verdict&) const = default;
};
std::ostream& operator<<(std::ostream& o, const Verdict& v) {
  return o << v.path << "(" << v.origin << "):" << decision_name(v.d);
}

struct MergeRun {
  Status status;
  std::vector<Verdict> verdicts;
  PlanSummary summary;
};

MergeRun run_merge(const std::vector<ManifestEntry>& local, const std::vector<ManifestEntry>& peer,
                   MergeOptions opt) {
  MergeRun r;
  Merger m(std::move(opt), [&](const MergeItem& it) {
    const ManifestEntry& s = it.subject();
    r.verdicts.push_back({s.path, s.origin, it.decision});
    return Status::ok();
  });
  VectorSource ls(local), ps(peer);
  r.status = merge_sources(ls, ps, m);
  if (r.status.is_ok()) {
    EXPECT_TRUE(m.done());
  }
  r.summary = m.summary();
  return r;
}

std::function<bool(const ManifestEntry&)> in_set(std::set<std::string> paths) {
  return [paths = std::move(paths)](const ManifestEntry& e) { return paths.count(e.path) > 0; };
}

TEST(Merge, DecisionTable) {
  using D = Decision;
  ManifestEntry unknown_a = entry("a.wav", "fs1", 100, kIn, 0);
  struct Case {
    const char* what;
    std::vector<ManifestEntry> local, peer;
    std::vector<Verdict> want;
    std::set<std::string> tombstones = {}, planned = {};
  };
  const Case cases[] = {
      {"both empty", {}, {}, {}},
      {"local empty: everything pulled",
       {},
       {entry("a.wav"), entry("b.wav"), entry("c.wav", "fs2")},
       {{"a.wav", "fs1", D::kPull}, {"b.wav", "fs1", D::kPull}, {"c.wav", "fs2", D::kPull}}},
      {"peer empty: everything pushed",
       {entry("a.wav"), entry("b.wav")},
       {},
       {{"a.wav", "fs1", D::kPush}, {"b.wav", "fs1", D::kPush}}},
      {"both equal",
       {entry("a.wav"), entry("b.wav")},
       {entry("a.wav"), entry("b.wav")},
       {{"a.wav", "fs1", D::kInSync}, {"b.wav", "fs1", D::kInSync}}},
      {"interleaved",
       {entry("a.wav"), entry("c.wav"), entry("e.wav")},
       {entry("b.wav"), entry("c.wav"), entry("d.wav")},
       {{"a.wav", "fs1", D::kPush},
        {"b.wav", "fs1", D::kPull},
        {"c.wav", "fs1", D::kInSync},
        {"d.wav", "fs1", D::kPull},
        {"e.wav", "fs1", D::kPush}}},
      {"conflict: hashes differ",
       {entry("a.wav", "fs1", 100, kIn, 1)},
       {entry("a.wav", "fs1", 100, kIn, 2)},
       {{"a.wav", "fs1", D::kConflict}}},
      {"conflict: sizes differ, same hash",
       {entry("a.wav", "fs1", 100, kIn, 1)},
       {entry("a.wav", "fs1", 101, kIn, 1)},
       {{"a.wav", "fs1", D::kConflict}}},
      {"unknown hash here, same size",
       {unknown_a},
       {entry("a.wav", "fs1", 100, kIn, 4)},
       {{"a.wav", "fs1", D::kInSyncUnverified}}},
      {"unknown hash there, same size",
       {entry("a.wav", "fs1", 100, kIn, 4)},
       {unknown_a},
       {{"a.wav", "fs1", D::kInSyncUnverified}}},
      {"both unknown, same size",
       {unknown_a},
       {unknown_a},
       {{"a.wav", "fs1", D::kInSyncUnverified}}},
      {"unknown hash, sizes differ",
       {unknown_a},
       {entry("a.wav", "fs1", 99, kIn, 4)},
       {{"a.wav", "fs1", D::kConflict}}},
      {"same path, different origins: two recordings",
       {entry("a.wav", "fs1", 100, kIn, 1)},
       {entry("a.wav", "fs2", 100, kIn, 2)},
       {{"a.wav", "fs1", D::kPush}, {"a.wav", "fs2", D::kPull}}},
      {"held recording outside the window, peer only",
       {},
       {entry("old.wav", "fs1", 5, kOld, 1, true)},
       {{"old.wav", "fs1", D::kPull}}},
      {"held recording outside the window, local only",
       {entry("old.wav", "fs1", 5, kOld, 1, true)},
       {},
       {{"old.wav", "fs1", D::kPush}}},
      {"peer holds one this node has unheld: in sync",
       {entry("old.wav", "fs1", 5, kOld, 1, false)},
       {entry("old.wav", "fs1", 5, kOld, 1, true)},
       {{"old.wav", "fs1", D::kInSync}}},
      {"past retention, both directions",
       {entry("l.wav", "fs1", 5, kOld)},
       {entry("p.wav", "fs1", 5, kOld)},
       {{"l.wav", "fs1", D::kSkipPastRetention}, {"p.wav", "fs1", D::kSkipPastRetention}}},
      {"window start itself is inside",
       {},
       {entry("edge.wav", "fs1", 5, kWindow), entry("gone.wav", "fs1", 5, kWindow - 1)},
       {{"edge.wav", "fs1", D::kPull}, {"gone.wav", "fs1", D::kSkipPastRetention}}},
      {"tombstones, both directions (even held)",
       {entry("l.wav", "fs1", 5, kIn), entry("m.wav")},
       {entry("p.wav", "fs1", 5, kOld, 1, true), entry("q.wav")},
       {{"l.wav", "fs1", D::kSkipTombstoned},
        {"m.wav", "fs1", D::kPush},
        {"p.wav", "fs1", D::kSkipTombstoned},
        {"q.wav", "fs1", D::kPull}},
       {"l.wav", "p.wav"}},
      {"already planned from another peer",
       {},
       {entry("a.wav"), entry("b.wav")},
       {{"a.wav", "fs1", D::kSkipPlanned}, {"b.wav", "fs1", D::kPull}},
       {},
       {"a.wav"}},
      {"planned does not hide a conflict or a push",
       {entry("a.wav", "fs1", 1, kIn, 1), entry("c.wav")},
       {entry("a.wav", "fs1", 1, kIn, 2)},
       {{"a.wav", "fs1", D::kConflict}, {"c.wav", "fs1", D::kPush}},
       {},
       {"a.wav", "c.wav"}},
  };
  for (const Case& c : cases) {
    MergeOptions opt{kWindow, c.tombstones.empty() ? nullptr : in_set(c.tombstones),
                     c.planned.empty() ? nullptr : in_set(c.planned)};
    MergeRun r = run_merge(c.local, c.peer, std::move(opt));
    ASSERT_TRUE(r.status.is_ok()) << c.what << ": " << r.status.to_string();
    EXPECT_EQ(r.verdicts, c.want) << c.what;
  }
}

TEST(Merge, OutOfOrderInputIsCorrupt) {
  struct Case {
    const char* what;
    std::vector<ManifestEntry> local, peer;
    const char* side;
  };
  const Case cases[] = {
      {"local unsorted", {entry("b.wav"), entry("a.wav")}, {}, "local manifest out of order"},
      {"peer unsorted", {}, {entry("b.wav"), entry("a.wav")}, "peer manifest out of order"},
      {"local duplicate",
       {entry("a.wav"), entry("a.wav")},
       {entry("a.wav")},
       "local manifest repeats"},
      {"peer duplicate",
       {entry("a.wav")},
       {entry("a.wav"), entry("a.wav")},
       "peer manifest repeats"},
      {"origins unsorted",
       {},
       {entry("a.wav", "fs2"), entry("a.wav", "fs1")},
       "peer manifest out of order"},
      {"disorder late in a long stream",
       {entry("a.wav"), entry("c.wav"), entry("e.wav"), entry("d.wav")},
       {entry("b.wav"), entry("f.wav")},
       "local manifest out of order"},
  };
  for (const Case& c : cases) {
    MergeRun r = run_merge(c.local, c.peer, MergeOptions{kWindow});
    EXPECT_EQ(r.status.code(), Status::Code::kCorrupt) << c.what;
    EXPECT_NE(r.status.message().find(c.side), std::string::npos)
        << c.what << ": " << r.status.message();
  }
}

TEST(Merge, SeveralPeersEachRecordingLandsOnce) {
  // A rebuilt node (empty) backfills from A, then from B. A and B overlap;
  // the "already planned" predicate is fed by the pulls planned so far.
  std::vector<ManifestEntry> a = {entry("1.wav"), entry("2.wav"), entry("3.wav", "fsA"),
                                  entry("5.wav", "fsB")};
  std::vector<ManifestEntry> b = {entry("2.wav"), entry("3.wav", "fsA"), entry("4.wav"),
                                  entry("5.wav", "fsB"), entry("6.wav", "fsB")};
  std::vector<ManifestEntry> local = {entry("0.wav", "fsC")};  // what survived here
  std::map<std::string, std::string> planned;                  // path|origin -> peer
  auto key = [](const ManifestEntry& e) { return e.path + "|" + e.origin; };
  std::map<std::string, int> pushes;
  for (auto [name, list] : {std::pair{"A", &a}, std::pair{"B", &b}}) {
    MergeOptions opt{kWindow, nullptr,
                     [&](const ManifestEntry& e) { return planned.count(key(e)) > 0; }};
    Merger m(std::move(opt), [&, name = name](const MergeItem& it) {
      if (it.decision == Decision::kPull) {
        EXPECT_TRUE(planned.emplace(key(*it.peer), name).second) << key(*it.peer);
      }
      if (it.decision == Decision::kPush) ++pushes[name];
      return Status::ok();
    });
    VectorSource ls(local), ps(*list);
    ASSERT_TRUE(merge_sources(ls, ps, m).is_ok());
    if (std::string(name) == "B") {
      EXPECT_EQ(m.summary()[Decision::kSkipPlanned].files, 3u);  // 2, 3, 5 from A
      EXPECT_EQ(m.summary()[Decision::kPull].files, 2u);         // 4, 6
    }
  }
  const std::map<std::string, std::string> want = {{"1.wav|fs1", "A"}, {"2.wav|fs1", "A"},
                                                   {"3.wav|fsA", "A"}, {"5.wav|fsB", "A"},
                                                   {"4.wav|fs1", "B"}, {"6.wav|fsB", "B"}};
  EXPECT_EQ(planned, want);
  EXPECT_EQ(pushes["A"], 1);  // 0.wav goes to each peer that lacks it
  EXPECT_EQ(pushes["B"], 1);
}

TEST(Merge, SummaryCountsFilesAndBytes) {
  std::vector<ManifestEntry> local = {entry("a.wav", "fs1", 10), entry("b.wav", "fs1", 20, kIn, 1),
                                      entry("d.wav", "fs1", 40)};
  std::vector<ManifestEntry> peer = {entry("a.wav", "fs1", 10), entry("b.wav", "fs1", 20, kIn, 2),
                                     entry("c.wav", "fs1", 30), entry("e.wav", "fs1", 50, kOld)};
  MergeRun r = run_merge(local, peer, MergeOptions{kWindow});
  ASSERT_TRUE(r.status.is_ok());
  EXPECT_EQ(r.summary[Decision::kInSync], (Tally{1, 10}));
  EXPECT_EQ(r.summary[Decision::kConflict], (Tally{1, 20}));
  EXPECT_EQ(r.summary[Decision::kPull], (Tally{1, 30}));
  EXPECT_EQ(r.summary[Decision::kPush], (Tally{1, 40}));
  EXPECT_EQ(r.summary[Decision::kSkipPastRetention], (Tally{1, 50}));
  PlanSummary total = r.summary;
  total += r.summary;
  total.add_equal_range(RangeDigest{7, 1});
  EXPECT_EQ(total[Decision::kPull], (Tally{2, 60}));
  EXPECT_EQ(total.ranges_equal, 1u);
  EXPECT_EQ(total.files_equal, 7u);
  std::set<std::string> names;
  for (size_t i = 0; i < kDecisionCount; ++i) names.insert(decision_name(static_cast<Decision>(i)));
  EXPECT_EQ(names.size(), kDecisionCount);
  EXPECT_EQ(names.count("unknown"), 0u);
}

TEST(Merge, StateMachineRulesAndCallbackErrors) {
  Merger m(MergeOptions{kWindow}, nullptr);
  EXPECT_EQ(m.need(), Side::kLocal);
  ASSERT_TRUE(m.push(Side::kLocal, entry("b.wav")).is_ok());
  EXPECT_FALSE(m.wants(Side::kLocal));  // holds b until the peer side catches up
  EXPECT_EQ(m.need(), Side::kPeer);
  ASSERT_TRUE(m.push(Side::kPeer, entry("a.wav")).is_ok());  // a decided (pull)
  EXPECT_EQ(m.need(), Side::kPeer);
  ASSERT_TRUE(m.end(Side::kPeer).is_ok());  // b decided (push)
  EXPECT_EQ(m.need(), Side::kLocal);
  ASSERT_TRUE(m.end(Side::kLocal).is_ok());
  EXPECT_TRUE(m.done());
  EXPECT_EQ(m.need(), std::nullopt);
  EXPECT_EQ(m.summary()[Decision::kPull].files, 1u);
  EXPECT_EQ(m.summary()[Decision::kPush].files, 1u);

  Merger twice(MergeOptions{}, nullptr);
  ASSERT_TRUE(twice.push(Side::kLocal, entry("a.wav")).is_ok());
  EXPECT_EQ(twice.push(Side::kLocal, entry("b.wav")).code(), Status::Code::kInvalid);
  EXPECT_EQ(twice.end(Side::kPeer).code(), Status::Code::kInvalid);  // sticky

  Merger ended(MergeOptions{}, nullptr);
  ASSERT_TRUE(ended.end(Side::kLocal).is_ok());
  EXPECT_EQ(ended.push(Side::kLocal, entry("a.wav")).code(), Status::Code::kInvalid);

  int calls = 0;
  Merger stop(MergeOptions{}, [&](const MergeItem&) {
    ++calls;
    return Status::io("plan table full");
  });
  std::vector<ManifestEntry> l = {entry("a.wav"), entry("b.wav")};
  VectorSource ls(l), ps({});
  Status s = merge_sources(ls, ps, stop);
  EXPECT_EQ(s.code(), Status::Code::kIo);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(stop.done());
}

// Reference: the same decisions computed with whole maps in memory.
std::map<std::pair<std::string, std::string>, Decision> reference(
    const std::vector<ManifestEntry>& local, const std::vector<ManifestEntry>& peer,
    int64_t window) {
  std::map<std::pair<std::string, std::string>, const ManifestEntry*> l, p;
  for (auto& e : local) l[{e.path, e.origin}] = &e;
  for (auto& e : peer) p[{e.path, e.origin}] = &e;
  std::map<std::pair<std::string, std::string>, Decision> out;
  for (auto& [k, e] : l) {
    auto it = p.find(k);
    if (it == p.end()) {
      out[k] = e->rec_time_ms < window && !e->held ? Decision::kSkipPastRetention : Decision::kPush;
    } else if (e->size != it->second->size) {
      out[k] = Decision::kConflict;
    } else if (e->has_hash && it->second->has_hash) {
      out[k] = memcmp(e->hash, it->second->hash, kHashLen) == 0 ? Decision::kInSync
                                                                : Decision::kConflict;
    } else {
      out[k] = Decision::kInSyncUnverified;
    }
  }
  for (auto& [k, e] : p)
    if (!l.count(k))
      out[k] = e->rec_time_ms < window && !e->held ? Decision::kSkipPastRetention : Decision::kPull;
  return out;
}

TEST(Merge, MatchesAReferenceOnRandomManifests) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    std::map<std::pair<std::string, std::string>, ManifestEntry> lm, pm;
    for (int i = 0; i < 400; ++i) {
      ManifestEntry e =
          entry("d/" + std::to_string(rng() % 300) + ".wav", rng() % 4 ? "fs1" : "fs2",
                10 + rng() % 3, rng() % 5 ? kIn : kOld, rng() % 4, rng() % 7 == 0);
      switch (rng() % 3) {
        case 0:
          lm[{e.path, e.origin}] = e;
          break;
        case 1:
          pm[{e.path, e.origin}] = e;
          break;
        default:
          lm[{e.path, e.origin}] = e;
          pm[{e.path, e.origin}] = e;
      }
    }
    std::vector<ManifestEntry> l, p;
    for (auto& [k, e] : lm) l.push_back(e);
    for (auto& [k, e] : pm) p.push_back(e);
    auto want = reference(l, p, kWindow);

    // Driven both ways: two pull sources, and peer frames with local pulled.
    std::map<std::pair<std::string, std::string>, Decision> got_a, got_b;
    auto collect = [](auto& into) {
      return [&into](const MergeItem& it) {
        const ManifestEntry& s = it.subject();
        EXPECT_TRUE(into.emplace(std::pair{s.path, s.origin}, it.decision).second);
        return Status::ok();
      };
    };
    Merger a(MergeOptions{kWindow}, collect(got_a));
    VectorSource ls(l), ps(p);
    ASSERT_TRUE(merge_sources(ls, ps, a).is_ok());
    Merger b(MergeOptions{kWindow}, collect(got_b));
    VectorSource ls2(l);
    size_t frame = 1 + seed % 17;
    for (size_t i = 0; i < p.size(); i += frame)
      ASSERT_TRUE(b.feed_peer(std::span(p).subspan(i, std::min(frame, p.size() - i)), ls2).is_ok());
    ASSERT_TRUE(b.finish_peer(ls2).is_ok());
    EXPECT_TRUE(b.done());
    EXPECT_EQ(got_a, want) << seed;
    EXPECT_EQ(got_b, want) << seed;
  }
}

}  // namespace
}  // namespace recsync::backfill
