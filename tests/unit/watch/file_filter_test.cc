#include "watch/file_filter.h"

#include <gtest/gtest.h>

namespace recsync {
namespace {

struct Case {
  const char* rel;
  bool want;
};

TEST(FileFilter, DefaultWavPattern) {
  FileFilter f({"*.wav"}, {});
  const Case cases[] = {
      {"abc.wav", true},
      {"2026/11/24/abc.wav", true},
      {"abc.WAV", false},  // fnmatch is case sensitive
      {"abc.wav.part", false},
      {"abc.mp3", false},
      {".abc.wav", false},                  // hidden file
      {"2026/.tmp/abc.wav", false},         // hidden folder on the way
      {".recsync-tmp.abc.wav.123", false},  // engine temp
      {"x/.recsync-tmp.abc.wav.1/y.wav", false},
      {"", false},
      {"a//b.wav", false},  // empty component
      {"dir.wav/", false},  // trailing slash: no basename
  };
  for (const auto& c : cases) EXPECT_EQ(f.matches(c.rel), c.want) << c.rel;
}

TEST(FileFilter, ExcludeWins) {
  FileFilter f({"*.wav", "*.mp3"}, {"*-tmp.wav", "scratch/*"});
  EXPECT_TRUE(f.matches("a.wav"));
  EXPECT_TRUE(f.matches("a.mp3"));
  EXPECT_FALSE(f.matches("a-tmp.wav"));
  EXPECT_FALSE(f.matches("d/a-tmp.wav"));  // basename pattern applies at any depth
  EXPECT_FALSE(f.matches("scratch/a.wav"));
  EXPECT_TRUE(f.matches("scratch/sub/a.wav"));    // FNM_PATHNAME: '*' stops at '/'
  EXPECT_TRUE(f.matches("other/scratch/a.wav"));  // path patterns are anchored at root
}

TEST(FileFilter, PathPatternsMatchWholeRelativePath) {
  FileFilter f({"20[0-9][0-9]/*/*/*.wav"}, {});
  EXPECT_TRUE(f.matches("2026/11/24/abc.wav"));
  EXPECT_FALSE(f.matches("abc.wav"));
  EXPECT_FALSE(f.matches("2026/11/abc.wav"));
  EXPECT_FALSE(f.matches("2026/11/24/x/abc.wav"));
  EXPECT_FALSE(f.matches("x2026/11/24/abc.wav"));

  FileFilter anchored({"/top/*.wav"}, {});  // leading '/' = spool root
  EXPECT_TRUE(anchored.matches("top/a.wav"));
  EXPECT_FALSE(anchored.matches("x/top/a.wav"));
}

TEST(FileFilter, EmptyIncludeMatchesNothing) {
  FileFilter f({}, {});
  EXPECT_FALSE(f.matches("a.wav"));
  FileFilter star({"*"}, {});
  EXPECT_TRUE(star.matches("a.wav"));
  EXPECT_TRUE(star.matches("d/noext"));
  EXPECT_FALSE(star.matches("d/.hidden"));
}

TEST(FileFilter, QuestionMarkAndClasses) {
  FileFilter f({"rec-??.wav", "[ab]*.raw"}, {"*[0-9][0-9][0-9].raw"});
  EXPECT_TRUE(f.matches("rec-01.wav"));
  EXPECT_FALSE(f.matches("rec-001.wav"));
  EXPECT_TRUE(f.matches("a1.raw"));
  EXPECT_FALSE(f.matches("c1.raw"));
  EXPECT_FALSE(f.matches("a123.raw"));
}

}  // namespace
}  // namespace recsync
