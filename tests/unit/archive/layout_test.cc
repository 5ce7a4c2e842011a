#include "archive/layout.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <time.h>

#include <optional>
#include <string>
#include <vector>

namespace recsync {
namespace {

WallTime at_ms(int64_t ms) { return WallTime(std::chrono::milliseconds(ms)); }
constexpr int64_t kSec = 1000;

// Runs a body under a local time zone far from UTC (POSIX TZ strings, no
// tzdata needed), so a layout that used local time would give another date.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = ::getenv("TZ")) old_ = old;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~ScopedTz() {
    if (old_)
      ::setenv("TZ", old_->c_str(), 1);
    else
      ::unsetenv("TZ");
    ::tzset();
  }

 private:
  std::optional<std::string> old_;
};

TEST(ParseLayout, AcceptsTheTwoNames) {
  auto d = parse_layout("date");
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_EQ(*d, Layout::kDate);
  auto f = parse_layout("flat");
  ASSERT_TRUE(f) << f.status().to_string();
  EXPECT_EQ(*f, Layout::kFlat);
}

TEST(ParseLayout, RejectsAnythingElseWithTheValueInTheMessage) {
  for (const char* bad : {"", "Date", "FLAT", "date ", " flat", "dated", "tree", "flat\n", "0"}) {
    auto r = parse_layout(bad);
    ASSERT_FALSE(r) << "'" << bad << "'";
    EXPECT_EQ(r.status().code(), Status::Code::kInvalid) << "'" << bad << "'";
    EXPECT_NE(r.status().message().find("'" + std::string(bad) + "'"), std::string::npos)
        << r.status().message();
  }
}

struct DateCase {
  const char* what;
  int64_t ms;  // recording time, ms since the epoch (UTC)
  const char* spool_rel;
  const char* want;
};

TEST(ArchiveRelPath, DateLayoutUsesTheUtcDateOfTheRecordingTime) {
  const std::vector<DateCase> cases = {
      {"epoch", 0, "a.wav", "1970/01/01/a.wav"},
      {"last second of a day", 1709164799 * kSec, "a.wav", "2024/02/28/a.wav"},
      {"last ms of a day", 1709164799 * kSec + 999, "a.wav", "2024/02/28/a.wav"},
      {"midnight", 1709164800 * kSec, "a.wav", "2024/02/29/a.wav"},
      {"leap day, last second", 1709251199 * kSec + 999, "a.wav", "2024/02/29/a.wav"},
      {"day after a leap day", 1709251200 * kSec, "a.wav", "2024/03/01/a.wav"},
      {"new year's eve", 1704067199 * kSec + 500, "a.wav", "2023/12/31/a.wav"},
      {"new year", 1704067200 * kSec, "a.wav", "2024/01/01/a.wav"},
      {"2000 is a leap year", 951825600 * kSec, "a.wav", "2000/02/29/a.wav"},
      {"2100 is not: 28 Feb + 1 day", (4107499200 + 86400) * kSec, "a.wav", "2100/03/01/a.wav"},
      {"spool subfolders are dropped", 1717200000 * kSec, "tenant1/2024/x/uuid-1.wav",
       "2024/06/01/uuid-1.wav"},
      {"no extension", 1717200000 * kSec, "dir/rec", "2024/06/01/rec"},
  };
  for (const char* tz : {"UTC0", "KST-14", "HST+12"}) {
    ScopedTz scoped(tz);
    for (const auto& c : cases) {
      EXPECT_EQ(archive_rel_path(Layout::kDate, c.spool_rel, at_ms(c.ms)), c.want)
          << c.what << " (TZ=" << tz << ")";
    }
  }
}

TEST(ArchiveRelPath, FlatLayoutKeepsTheSpoolRelativePath) {
  const WallTime t = at_ms(1709164800 * kSec);
  for (const char* rel : {"a.wav", "sub/a.wav", "a/b/c/d.wav", "dir.with.dots/rec", ".hidden/x.wav",
                          "2019/01/01/old.wav"}) {
    EXPECT_EQ(archive_rel_path(Layout::kFlat, rel, t), rel);
  }
  // The time plays no part in the flat layout.
  EXPECT_EQ(archive_rel_path(Layout::kFlat, "sub/a.wav", at_ms(0)),
            archive_rel_path(Layout::kFlat, "sub/a.wav", at_ms(4107499200 * kSec)));
}

struct VersionCase {
  const char* rel;
  int n;
  const char* want;
};

TEST(VersionedRelPath, InsertsTheVersionBeforeTheLastExtension) {
  const std::vector<VersionCase> cases = {
      {"b.wav", 2, "b.v2.wav"},
      {"a/b.wav", 2, "a/b.v2.wav"},
      {"a/b.wav", 3, "a/b.v3.wav"},
      {"a/b.wav", 1000, "a/b.v1000.wav"},
      {"2024/06/01/uuid.wav", 10, "2024/06/01/uuid.v10.wav"},
      // No extension: the suffix goes at the end.
      {"a/b", 3, "a/b.v3"},
      {"b", 2, "b.v2"},
      // Only the last extension moves.
      {"x.tar.gz", 2, "x.tar.v2.gz"},
      {"d/rec.v2.wav", 3, "d/rec.v2.v3.wav"},
      // A leading dot is not an extension (hidden-like names).
      {".hidden", 2, ".hidden.v2"},
      {"a/.hidden", 4, "a/.hidden.v4"},
      {".hidden.wav", 2, ".hidden.v2.wav"},
      // Dots in folder names are not extensions.
      {"dir.d/rec", 2, "dir.d/rec.v2"},
      {"a.b/c.d/rec.wav", 5, "a.b/c.d/rec.v5.wav"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(versioned_rel_path(c.rel, c.n), c.want) << c.rel << " n=" << c.n;
  }
}

TEST(VersionedRelPath, VersionsAreDistinctFromEachOtherAndFromTheName) {
  const std::string rel = "2024/06/01/uuid.wav";
  std::vector<std::string> seen = {rel};
  for (int n = 2; n <= 20; ++n) {
    std::string v = versioned_rel_path(rel, n);
    EXPECT_EQ(v.rfind("2024/06/01/", 0), 0u) << v;  // same folder
    for (const auto& s : seen) EXPECT_NE(v, s);
    seen.push_back(v);
  }
}

}  // namespace
}  // namespace recsync
