// The pure decisions of an erasure (erase/plan.h): which recording a target
// names, refusals, and how long a tombstone is kept (fixed times).
#include "erase/plan.h"

#include <gtest/gtest.h>

namespace recsync::erase {
namespace {

constexpr int64_t kDay = 24LL * 3600 * 1000;
constexpr int64_t kNow = 1'780'000'000'000;  // a fixed "now"

RecordingRow row(const std::string& rel, const std::string& name, const std::string& origin,
                 const std::string& hash, const std::string& origin_rel = "") {
  RecordingRow r;
  r.rel = rel;
  r.name = name;
  r.origin = origin;
  r.hash = hash;
  r.origin_rel = origin_rel;
  r.size = 100;
  r.rec_time_ms = kNow - kDay;
  return r;
}

TEST(ErasePlan, AnIdNamingOneRecordingErasesItsIdentity) {
  auto p = plan_erase("call-1", {row("2026/01/02/call-1.wav", "call-1", "local", "xxh128:aa")},
                      HoldSet());
  ASSERT_TRUE(p) << p.status().message();
  EXPECT_EQ(p->origin, "local");
  EXPECT_EQ(p->origin_rel, "2026/01/02/call-1.wav");
  EXPECT_EQ(p->hash, "xxh128:aa");
  ASSERT_EQ(p->copies.size(), 1u);
}

TEST(ErasePlan, NothingNamedIsNotFound) {
  auto p = plan_erase("nope", {}, HoldSet());
  ASSERT_FALSE(p);
  EXPECT_EQ(p.status().code(), Status::Code::kNotFound);
}

TEST(ErasePlan, AnIdRecordedOnTwoNodesIsRefusedButAPathPicksOne) {
  const std::vector<RecordingRow> rows = {
      row("a/x.wav", "x", "local", "xxh128:01"),
      row("a/x.from-fs2.wav", "x", "fs2", "xxh128:02", "a/x.wav")};
  auto p = plan_erase("x", rows, HoldSet());
  ASSERT_FALSE(p);
  EXPECT_EQ(p.status().code(), Status::Code::kInvalid);
  EXPECT_NE(p.status().message().find("a/x.from-fs2.wav"), std::string::npos);
  // The other node's copy by its path here: its identity is fs2's origin path.
  auto q = plan_erase("a/x.from-fs2.wav", rows, HoldSet());
  ASSERT_TRUE(q) << q.status().message();
  EXPECT_EQ(q->origin, "fs2");
  EXPECT_EQ(q->origin_rel, "a/x.wav");
  EXPECT_EQ(q->hash, "xxh128:02");
}

TEST(ErasePlan, HeldByIdentityOrByNameIsRefused) {
  const RecordingRow r = row("a/x.wav", "x", "local", "xxh128:01");
  HoldRow by_id{"x", "legal", kNow, "local", "a/x.wav", "xxh128:01"};
  auto p = plan_erase("x", {r}, HoldSet({by_id}));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.status().code(), Status::Code::kRefused);
  HoldRow by_name{"x", "legal", kNow, "", "", ""};
  EXPECT_EQ(plan_erase("a/x.wav", {r}, HoldSet({by_name})).status().code(), Status::Code::kRefused);
  // A hold on another recording does not stop it.
  HoldRow other{"y", "legal", kNow, "local", "a/y.wav", "xxh128:09"};
  EXPECT_TRUE(plan_erase("x", {r}, HoldSet({other})));
}

TEST(ErasePlan, ARowWithoutHashIsBusy) {
  auto p = plan_erase("x", {row("a/x.wav", "x", "local", "")}, HoldSet());
  ASSERT_FALSE(p);
  EXPECT_EQ(p.status().code(), Status::Code::kBusy);
}

TEST(TombstoneExpiry, KeptPastTheLastPossibleCopyAndAtLeastThirtyDays) {
  const Millis keep{15 * kDay};
  // Recorded yesterday: a copy could live until rec + keep; then keep more
  // (here under the 30-day floor).
  EXPECT_EQ(tombstone_expiry(kNow, kNow - kDay, keep), kNow + 30 * kDay);
  const Millis month{40 * kDay};
  EXPECT_EQ(tombstone_expiry(kNow, kNow - kDay, month), kNow - kDay + 40 * kDay + 40 * kDay);
  // Recorded long ago (past retention): at least 30 days from the erasure.
  EXPECT_EQ(tombstone_expiry(kNow, kNow - 100 * kDay, keep), kNow + 30 * kDay);
  // A long retention: erased + keep at least.
  const Millis year{365 * kDay};
  EXPECT_GE(tombstone_expiry(kNow, kNow - 400 * kDay, year), kNow + 365 * kDay);
  // Never before the retention window ends, whatever the times.
  for (int64_t rec : {kNow - 20 * kDay, kNow, kNow + kDay})
    EXPECT_GE(tombstone_expiry(kNow, rec, keep), std::max(kNow, rec) + keep.count());
  // Retention off: copies are never pruned, so neither is the tombstone.
  EXPECT_EQ(tombstone_expiry(kNow, kNow, Millis{0}), 0);
}

}  // namespace
}  // namespace recsync::erase
