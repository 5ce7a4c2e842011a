#include "backfill/ranges.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "backfill/merge.h"
#include "backfill_test_util.h"

namespace recsync::backfill {
namespace {

using namespace testing;

// Contiguous, non-empty, in order, covering r exactly.
void expect_cover(TimeRange r, const std::vector<TimeRange>& parts) {
  ASSERT_FALSE(parts.empty());
  EXPECT_EQ(parts.front().t0, r.t0);
  EXPECT_EQ(parts.back().t1, r.t1);
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_TRUE(parts[i].valid()) << i;
    if (i) {
      EXPECT_EQ(parts[i].t0, parts[i - 1].t1) << i;
    }
  }
}

TEST(Ranges, DayRanges) {
  struct Case {
    const char* what;
    TimeRange window;
    std::vector<TimeRange> want;
  };
  const Case cases[] = {
      {"whole days", {kT0, kT0 + 2 * kDay}, {{kT0, kT0 + kDay}, {kT0 + kDay, kT0 + 2 * kDay}}},
      {"partial ends",
       {kT0 - 5, kT0 + kDay + 7},
       {{kT0 - 5, kT0}, {kT0, kT0 + kDay}, {kT0 + kDay, kT0 + kDay + 7}}},
      {"inside one day", {kT0 + 10, kT0 + 20}, {{kT0 + 10, kT0 + 20}}},
      {"one ms", {kT0, kT0 + 1}, {{kT0, kT0 + 1}}},
      {"before 1970", {-kDay - 1, 1}, {{-kDay - 1, -kDay}, {-kDay, 0}, {0, 1}}},
      {"empty", {kT0, kT0}, {}},
      {"reversed", {kT0, kT0 - 1}, {}},
      {"at the end of time", {INT64_MAX - 10, INT64_MAX}, {{INT64_MAX - 10, INT64_MAX}}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(day_ranges(c.window), c.want) << c.what;
  }
  // 15 days plus a partial one: 16 ranges, every boundary a UTC midnight.
  auto d = day_ranges({kT0 - 15 * kDay + 3600000, kT0 + 3600000});
  EXPECT_EQ(d.size(), 16u);
  for (size_t i = 1; i < d.size(); ++i) EXPECT_EQ(d[i].t0 % kDay, 0);
}

TEST(Ranges, SplitRange) {
  struct Case {
    TimeRange r;
    uint32_t parts;
    size_t want;
  };
  const Case cases[] = {
      {{0, 16}, 16, 16},
      {{0, 17}, 16, 16},
      {{0, 5}, 16, 5},
      {{0, 1}, 16, 1},
      {{0, kDay}, 16, 16},
      {{kT0, kT0 + 3}, 0, 1},
      {{-100, 100}, 7, 7},
      {{INT64_MIN, INT64_MAX}, 16, 16},
      {{INT64_MAX - 2, INT64_MAX}, 16, 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.r.t0) + ".." + std::to_string(c.r.t1));
    auto parts = split_range(c.r, c.parts);
    EXPECT_EQ(parts.size(), c.want);
    expect_cover(c.r, parts);
  }
  EXPECT_TRUE(split_range({5, 5}, 4).empty());
  // Near-equal widths: 17 over 16 parts is fifteen 1s and one 2.
  auto p = split_range({0, 17}, 16);
  size_t twos = std::count_if(p.begin(), p.end(), [](TimeRange r) { return r.t1 - r.t0 == 2; });
  EXPECT_EQ(twos, 1u);
}

TEST(Ranges, PlanTable) {
  const RangePlanOptions opt{/*leaf_max=*/100, /*split_parts=*/4};
  RangeDigest empty{0, 0}, small{10, 1234}, small2{10, 999}, big{500, 77}, big2{501, 77};
  struct Case {
    const char* what;
    TimeRange r;
    RangeDigest local, peer;
    RangeAction want;
  };
  const Case cases[] = {
      {"both empty", {0, kDay}, empty, empty, RangeAction::kEqual},
      {"equal small", {0, kDay}, small, small, RangeAction::kEqual},
      {"equal big", {0, kDay}, big, big, RangeAction::kEqual},
      {"local empty, peer small", {0, kDay}, empty, small, RangeAction::kList},
      {"peer empty, local small", {0, kDay}, small, empty, RangeAction::kList},
      {"same count, digest differs", {0, kDay}, small, small2, RangeAction::kList},
      {"local empty, peer big", {0, kDay}, empty, big, RangeAction::kSplit},
      {"local big, peer empty", {0, kDay}, big, empty, RangeAction::kSplit},
      {"both big, differ", {0, kDay}, big, big2, RangeAction::kSplit},
      {"exactly leaf_max", {0, kDay}, RangeDigest{100, 1}, empty, RangeAction::kList},
      {"leaf_max + 1", {0, kDay}, RangeDigest{101, 1}, empty, RangeAction::kSplit},
      {"big but 1 ms wide", {5, 6}, big, big2, RangeAction::kList},
      {"big, 2 ms wide", {5, 7}, big, big2, RangeAction::kSplit},
  };
  for (const Case& c : cases) {
    TimeRange r[] = {c.r};
    RangeDigest l[] = {c.local}, p[] = {c.peer};
    auto steps = plan_ranges(r, l, p, opt);
    ASSERT_TRUE(steps) << c.what;
    ASSERT_EQ(steps->size(), 1u);
    EXPECT_EQ((*steps)[0].action, c.want)
        << c.what << ": " << range_action_name((*steps)[0].action);
    EXPECT_EQ((*steps)[0].range, c.r);
    EXPECT_EQ((*steps)[0].local, c.local);
    EXPECT_EQ((*steps)[0].peer, c.peer);
  }
}

TEST(Ranges, PlanErrorsAndNextRound) {
  std::vector<TimeRange> r = {{0, 100}, {100, 200}, {200, 300}};
  std::vector<RangeDigest> l = {{0, 0}, {1000, 5}, {3, 3}};
  std::vector<RangeDigest> p = {{0, 0}, {900, 5}, {3, 4}};
  auto bad_peer = plan_ranges(r, l, std::span(p).first(2));
  EXPECT_EQ(bad_peer.status().code(), Status::Code::kCorrupt);
  EXPECT_EQ(plan_ranges(r, std::span(l).first(2), p).status().code(), Status::Code::kInvalid);
  EXPECT_EQ(plan_ranges(r, l, p, {100, 1}).status().code(), Status::Code::kInvalid);
  std::vector<TimeRange> empty_range = {{5, 5}};
  RangeDigest z[] = {{0, 0}};
  EXPECT_EQ(plan_ranges(empty_range, z, z).status().code(), Status::Code::kInvalid);

  auto steps = plan_ranges(r, l, p, {100, 4});
  ASSERT_TRUE(steps);
  EXPECT_EQ((*steps)[0].action, RangeAction::kEqual);
  EXPECT_EQ((*steps)[1].action, RangeAction::kSplit);
  EXPECT_EQ((*steps)[2].action, RangeAction::kList);
  EXPECT_EQ(next_round(*steps, {100, 4}),
            (std::vector<TimeRange>{{100, 125}, {125, 150}, {150, 175}, {175, 200}}));
}

TEST(Ranges, ListPieces) {
  RangeStep st;
  st.range = {1000, 2000};
  st.action = RangeAction::kList;
  struct Case {
    uint64_t local, peer, rows;
    size_t want;
  };
  // n = max(local, peer); ceil(n / rows) pieces, at least one, at most the width.
  for (const Case& c : std::vector<Case>{{0, 0, 256, 1},
                                         {0, 1, 256, 1},
                                         {0, 256, 256, 1},
                                         {0, 257, 256, 2},
                                         {36000, 0, 256, 141},
                                         {0, 36000, 256, 141},
                                         {500, 100, 100, 5},
                                         {10, 10, 0, 10},
                                         {1'000'000, 0, 1, 1000}}) {
    st.local.count = c.local;
    st.peer.count = c.peer;
    std::vector<TimeRange> p = list_pieces(st, c.rows);
    SCOPED_TRACE(::testing::Message() << c.local << "/" << c.peer << " rows " << c.rows);
    ASSERT_EQ(p.size(), c.want);
    EXPECT_EQ(p.front().t0, st.range.t0);
    EXPECT_EQ(p.back().t1, st.range.t1);
    for (size_t i = 1; i < p.size(); ++i) EXPECT_EQ(p[i].t0, p[i - 1].t1);
    for (const TimeRange& r : p) EXPECT_LT(r.t0, r.t1);
  }
  // The open-ended last range (t1 = INT64_MAX) splits without overflow.
  st.range = {INT64_MAX - 10, INT64_MAX};
  st.local.count = 0;
  st.peer.count = 1000;
  std::vector<TimeRange> p = list_pieces(st, 256);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p.back().t1, INT64_MAX);
}

TEST(Ranges, DigesterBinsByRange) {
  std::vector<TimeRange> r = {{0, 10}, {10, 20}, {30, 40}};
  auto d = RangeDigester::make(r);
  ASSERT_TRUE(d);
  for (int64_t t : {-1, 0, 9, 10, 19, 20, 25, 29, 30, 39, 40, 1000}) d->add(t, uint64_t(t) + 1);
  EXPECT_EQ(d->digests()[0], (RangeDigest{2, 1 + 10}));
  EXPECT_EQ(d->digests()[1], (RangeDigest{2, 11 + 20}));
  EXPECT_EQ(d->digests()[2], (RangeDigest{2, 31 + 40}));
  EXPECT_EQ(d->span(), (TimeRange{0, 40}));
  std::vector<TimeRange> overlap = {{0, 10}, {5, 20}};
  EXPECT_EQ(RangeDigester::make(overlap).status().code(), Status::Code::kInvalid);
  std::vector<TimeRange> unsorted = {{10, 20}, {0, 5}};
  EXPECT_EQ(RangeDigester::make(unsorted).status().code(), Status::Code::kInvalid);
}

// The whole reconciliation loop between two in-memory nodes: digests per
// day, split, list and merge. Returns the keys pulled and the digests sent.
struct Node {
  std::map<std::pair<std::string, std::string>, ManifestEntry> by_key;
  std::vector<RangeDigest> digests(const std::vector<TimeRange>& r) const {
    auto d = RangeDigester::make(r);
    EXPECT_TRUE(d);
    for (const auto& [k, e] : by_key) d->add(e);
    return d->digests();
  }
  std::vector<ManifestEntry> list(TimeRange r) const {  // sorted by key
    std::vector<ManifestEntry> v;
    for (const auto& [k, e] : by_key)
      if (r.contains(e.rec_time_ms)) v.push_back(e);
    return v;
  }
};

struct LoopResult {
  std::set<std::string> pulled, pushed;
  size_t ranges_asked = 0, ranges_listed = 0, entries_listed = 0, rounds = 0;
};

LoopResult reconcile(const Node& local, const Node& peer, TimeRange window,
                     const RangePlanOptions& opt) {
  LoopResult out;
  std::vector<TimeRange> ranges = day_ranges(window);
  while (!ranges.empty() && out.rounds < 20) {
    ++out.rounds;
    out.ranges_asked += ranges.size();
    auto steps = plan_ranges(ranges, local.digests(ranges), peer.digests(ranges), opt);
    EXPECT_TRUE(steps);
    if (!steps) break;
    for (const RangeStep& s : *steps) {
      if (s.action != RangeAction::kList) continue;
      ++out.ranges_listed;
      auto l = local.list(s.range), p = peer.list(s.range);
      out.entries_listed += l.size() + p.size();
      VectorSource ls(l), ps(p);
      Merger m(MergeOptions{window.t0}, [&](const MergeItem& it) {
        if (it.decision == Decision::kPull) out.pulled.insert(it.peer->path);
        if (it.decision == Decision::kPush) out.pushed.insert(it.local->path);
        return Status::ok();
      });
      EXPECT_TRUE(merge_sources(ls, ps, m).is_ok());
    }
    ranges = next_round(*steps, opt);
  }
  return out;
}

TEST(Ranges, ReconcileLoopFindsExactlyTheDifference) {
  std::mt19937_64 rng(11);
  const TimeRange window{kT0 - 15 * kDay, kT0};
  Node full;
  for (int i = 0; i < 10000; ++i) {
    ManifestEntry e = entry("r/" + std::to_string(rng()) + ".wav", "fs1", rng() % 100000,
                            window.t0 + int64_t(rng() % uint64_t(window.t1 - window.t0)), i + 1);
    full.by_key[{e.path, e.origin}] = e;
  }
  const RangePlanOptions opt;  // the defaults

  // In sync: one digest per day, nothing listed.
  LoopResult same = reconcile(full, full, window, opt);
  EXPECT_EQ(same.rounds, 1u);
  EXPECT_EQ(same.ranges_asked, 15u);
  EXPECT_EQ(same.ranges_listed, 0u);

  // Empty node against a full peer: everything pulled, nothing pushed.
  LoopResult empty = reconcile(Node{}, full, window, opt);
  EXPECT_EQ(empty.pulled.size(), full.by_key.size());
  EXPECT_TRUE(empty.pushed.empty());

  // 1 % missing here, 0.5 % missing there: exactly those move. (Holes this
  // dense make nearly every leaf differ, so most entries are listed anyway.)
  Node local = full, peer = full;
  std::set<std::string> want_pull, want_push;
  size_t i = 0;
  for (auto& [k, e] : full.by_key) {
    if (i % 100 == 7) {
      local.by_key.erase(k);
      want_pull.insert(k.first);
    } else if (i % 200 == 9) {
      peer.by_key.erase(k);
      want_push.insert(k.first);
    }
    ++i;
  }
  LoopResult diff = reconcile(local, peer, window, opt);
  EXPECT_EQ(diff.pulled, want_pull);
  EXPECT_EQ(diff.pushed, want_push);
  EXPECT_LE(diff.rounds, 4u);

  // A single missing recording: found after a few rounds, listing only its leaf.
  Node one = full;
  one.by_key.erase(one.by_key.begin());
  LoopResult single = reconcile(one, full, window, opt);
  EXPECT_EQ(single.pulled.size(), 1u);
  EXPECT_EQ(single.ranges_listed, 1u);
  EXPECT_LE(single.entries_listed, 2 * opt.leaf_max);
}

}  // namespace
}  // namespace recsync::backfill
