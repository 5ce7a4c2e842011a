#include "metrics/exposition.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <limits>

namespace recsync::metrics {
namespace {

TEST(ExpositionTest, ExactOutputForASmallCase) {
  Exposition e;
  ASSERT_TRUE(
      e.begin_family("recsync_build_info", MetricType::kInfo, "Build of this node.").is_ok());
  ASSERT_TRUE(e.add_sample({{"version", "0.1.0"}, {"node", "fs1"}}, 1).is_ok());
  ASSERT_TRUE(
      e.begin_family("recsync_peer_up", MetricType::kGauge, "Link up (1) or not (0).").is_ok());
  ASSERT_TRUE(e.add_sample({{"peer", "fs2"}}, 1).is_ok());
  ASSERT_TRUE(e.add_sample({{"peer", "fs3"}}, 0).is_ok());
  ASSERT_TRUE(
      e.begin_family("recsync_scrub_errors_total", MetricType::kCounter, "Scrub findings by kind.")
          .is_ok());
  ASSERT_TRUE(e.add_sample({{"kind", "corrupt"}}, 3).is_ok());
  ASSERT_TRUE(e.begin_family("recsync_archive_usage_ratio", MetricType::kGauge, "Used.").is_ok());
  ASSERT_TRUE(e.add_sample(0.25).is_ok());
  EXPECT_EQ(e.text(),
            "# HELP recsync_build_info Build of this node.\n"
            "# TYPE recsync_build_info gauge\n"
            "recsync_build_info{version=\"0.1.0\",node=\"fs1\"} 1\n"
            "# HELP recsync_peer_up Link up (1) or not (0).\n"
            "# TYPE recsync_peer_up gauge\n"
            "recsync_peer_up{peer=\"fs2\"} 1\n"
            "recsync_peer_up{peer=\"fs3\"} 0\n"
            "# HELP recsync_scrub_errors_total Scrub findings by kind.\n"
            "# TYPE recsync_scrub_errors_total counter\n"
            "recsync_scrub_errors_total{kind=\"corrupt\"} 3\n"
            "# HELP recsync_archive_usage_ratio Used.\n"
            "# TYPE recsync_archive_usage_ratio gauge\n"
            "recsync_archive_usage_ratio 0.25\n");
  EXPECT_EQ(e.family_count(), 4u);
  EXPECT_EQ(e.sample_count(), 5u);
  EXPECT_TRUE(e.first_error().is_ok());
}

TEST(ExpositionTest, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_label_value("plain fs-2.example"), "plain fs-2.example");
  EXPECT_EQ(escape_label_value("tab\tand\rcr"), "tab\tand\rcr");  // only \\ \" \n are escaped
  EXPECT_EQ(escape_help("line1\nline2 \\ \"q\""), "line1\\nline2 \\\\ \"q\"");  // quotes stay

  Exposition e;
  ASSERT_TRUE(e.begin_family("x", MetricType::kGauge, "two\nlines").is_ok());
  ASSERT_TRUE(e.add_sample({{"peer", "a\"b\\c\n"}}, 1).is_ok());
  EXPECT_EQ(e.text(), "# HELP x two\\nlines\n# TYPE x gauge\nx{peer=\"a\\\"b\\\\c\\n\"} 1\n");
}

TEST(ExpositionTest, InvalidUtf8IsReplaced) {
  const std::string kFffd = "\xEF\xBF\xBD";
  EXPECT_EQ(escape_label_value("ok \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "ok \xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");  // é € 😀 are fine
  EXPECT_EQ(escape_label_value("a\xFF"
                               "b"),
            "a" + kFffd + "b");                                          // stray byte
  EXPECT_EQ(escape_label_value("\xC3"), kFffd);                          // truncated sequence
  EXPECT_EQ(escape_label_value("\xC0\xAF"), kFffd + kFffd);              // overlong '/'
  EXPECT_EQ(escape_label_value("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogate
  EXPECT_EQ(escape_label_value("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(escape_help("h\xFE"), "h" + kFffd);
}

TEST(ExpositionTest, ValidatesNames) {
  for (const char* ok : {"a", "_a", ":a", "a:b_c9", "recsync_peer_up", "A"}) {
    EXPECT_TRUE(valid_metric_name(ok)) << ok;
  }
  for (const char* bad : {"", "9a", "a-b", "a b", "a.b", "\xC3\xA9", "a{"}) {
    EXPECT_FALSE(valid_metric_name(bad)) << bad;
  }
  for (const char* ok : {"a", "_a", "peer", "le", "a9_b"}) EXPECT_TRUE(valid_label_name(ok)) << ok;
  for (const char* bad : {"", "__name__", "__x", "a:b", "9", "a-b", "a b"}) {
    EXPECT_FALSE(valid_label_name(bad)) << bad;
  }
}

TEST(ExpositionTest, RefusesNamesThatDoNotFitTheType) {
  struct Case {
    const char* name;
    MetricType type;
    bool ok;
  } cases[] = {
      {"recsync_x_total", MetricType::kCounter, true},
      {"recsync_x", MetricType::kCounter, false},      // counters end in _total
      {"recsync_x_total", MetricType::kGauge, false},  // only counters do
      {"recsync_x_total", MetricType::kInfo, false},
      {"recsync_x_count", MetricType::kGauge, false},  // histogram/summary suffixes
      {"recsync_x_sum", MetricType::kGauge, false},
      {"recsync_x_bucket", MetricType::kGauge, false},
      {"recsync_x_info", MetricType::kInfo, true},
      {"recsync_x", MetricType::kInfo, false},  // info ends in _info
      {"recsync_x_info", MetricType::kGauge, true},
      {"9bad", MetricType::kGauge, false},
      {"", MetricType::kGauge, false},
  };
  for (const auto& c : cases) {
    Exposition e;
    Status s = e.begin_family(c.name, c.type, "h");
    EXPECT_EQ(s.is_ok(), c.ok) << c.name << ": " << s.to_string();
    if (!c.ok) {
      EXPECT_EQ(s.code(), Status::Code::kInvalid);
      EXPECT_NE(s.message().find(std::string("'") + c.name + "'"), std::string::npos)
          << s.message();
      EXPECT_EQ(e.text(), "") << "a refused family writes nothing";
    }
  }
}

TEST(ExpositionTest, RefusedFamilyRefusesItsSamplesAndKeepsTheTextValid) {
  Exposition e;
  ASSERT_TRUE(e.begin_family("good", MetricType::kGauge, "h").is_ok());
  ASSERT_TRUE(e.add_sample(1).is_ok());
  const std::string before = e.text();
  Status bad = e.begin_family("bad", MetricType::kCounter, "h");
  EXPECT_FALSE(bad.is_ok());
  EXPECT_FALSE(e.add_sample(2).is_ok()) << "must not land in 'good'";
  EXPECT_EQ(e.text(), before);
  EXPECT_EQ(e.first_error().message(), bad.message()) << "the first refusal is kept";
  // Begun twice.
  Status twice = e.begin_family("good", MetricType::kGauge, "again");
  EXPECT_EQ(twice.code(), Status::Code::kInvalid);
  EXPECT_NE(twice.message().find("twice"), std::string::npos);
  EXPECT_EQ(e.text(), before);
  EXPECT_EQ(e.first_error().message(), bad.message());
  // Nothing begun at all.
  Exposition fresh;
  EXPECT_FALSE(fresh.add_sample(1).is_ok());
}

TEST(ExpositionTest, RefusesBadSamples) {
  Exposition e;
  ASSERT_TRUE(e.begin_family("c_total", MetricType::kCounter, "h").is_ok());
  EXPECT_FALSE(e.add_sample({{"k", "a"}}, -1).is_ok());
  EXPECT_FALSE(e.add_sample({{"k", "b"}}, std::nan("")).is_ok());
  EXPECT_TRUE(e.add_sample({{"k", "c"}}, std::numeric_limits<double>::infinity()).is_ok());
  EXPECT_FALSE(e.add_sample({{"__name__", "x"}}, 1).is_ok());
  EXPECT_FALSE(e.add_sample({{"bad-name", "x"}}, 1).is_ok());
  EXPECT_FALSE(e.add_sample({{"k", "d"}, {"k", "e"}}, 1).is_ok()) << "label given twice";
  ASSERT_TRUE(e.add_sample({{"a", "1"}, {"b", "2"}}, 1).is_ok());
  EXPECT_FALSE(e.add_sample({{"a", "1"}, {"b", "2"}}, 2).is_ok()) << "same series twice";
  EXPECT_FALSE(e.add_sample({{"b", "2"}, {"a", "1"}}, 2).is_ok()) << "same series, other order";
  EXPECT_TRUE(e.add_sample({{"a", "1"}, {"b", "3"}}, 2).is_ok());
  ASSERT_TRUE(e.begin_family("g", MetricType::kGauge, "h").is_ok());
  EXPECT_TRUE(e.add_sample({{"k", "a"}}, -1).is_ok()) << "gauges may go negative";
  EXPECT_TRUE(e.add_sample({{"k", "b"}}, std::nan("")).is_ok());
  EXPECT_TRUE(e.add_sample({{"k", "a"}, {"j", "x"}}, 1).is_ok());
  ASSERT_TRUE(e.begin_family("x_info", MetricType::kInfo, "h").is_ok());
  EXPECT_FALSE(e.add_sample({{"v", "1"}}, 2).is_ok());
  EXPECT_TRUE(e.add_sample({{"v", "1"}}, 1).is_ok());
  EXPECT_EQ(e.sample_count(), 7u);
  EXPECT_EQ(e.text(),
            "# HELP c_total h\n# TYPE c_total counter\n"
            "c_total{k=\"c\"} +Inf\nc_total{a=\"1\",b=\"2\"} 1\nc_total{a=\"1\",b=\"3\"} 2\n"
            "# HELP g h\n# TYPE g gauge\n"
            "g{k=\"a\"} -1\ng{k=\"b\"} NaN\ng{k=\"a\",j=\"x\"} 1\n"
            "# HELP x_info h\n# TYPE x_info gauge\nx_info{v=\"1\"} 1\n");
}

TEST(ExpositionTest, FormatsValuesSoTheyReadBack) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(1), "1");
  EXPECT_EQ(format_value(-1), "-1");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1e21), "1e+21");
  EXPECT_EQ(format_value(1e-7), "1e-07");
  EXPECT_EQ(format_value(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(format_value(1234567), "1234567");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  for (double v :
       {1.0 / 3, 2.0 / 3 * 1e300, 5e-324, 0.1 + 0.2, -123.456e-10, 1.7976931348623157e308}) {
    std::string s = format_value(v);
    EXPECT_EQ(std::strtod(s.c_str(), nullptr), v) << s;
  }
}

TEST(ExpositionTest, TakeEmptiesAndResets) {
  Exposition e;
  ASSERT_TRUE(e.begin_family("a", MetricType::kGauge, "h").is_ok());
  ASSERT_TRUE(e.add_sample(1).is_ok());
  std::string t = e.take();
  EXPECT_EQ(t, "# HELP a h\n# TYPE a gauge\na 1\n");
  EXPECT_EQ(e.text(), "");
  EXPECT_TRUE(e.begin_family("a", MetricType::kGauge, "h").is_ok()) << "a fresh exposition";
}

TEST(ExpositionTest, RenderCollectorsRunsEachInOrder) {
  int calls = 0;
  std::vector<Collector> cs = {
      [&](Exposition& e) {
        ++calls;
        (void)e.begin_family("first", MetricType::kGauge, "1").is_ok();
        (void)e.add_sample(1).is_ok();
      },
      nullptr,  // an empty slot is skipped
      [&](Exposition& e) {
        ++calls;
        (void)e.begin_family("second_total", MetricType::kGauge, "refused").is_ok();
        (void)e.begin_family("third", MetricType::kGauge, "3").is_ok();
        (void)e.add_sample(3).is_ok();
      },
  };
  Status first;
  std::string text = render_collectors(cs, &first);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(
      text,
      "# HELP first 1\n# TYPE first gauge\nfirst 1\n# HELP third 3\n# TYPE third gauge\nthird 3\n");
  EXPECT_EQ(first.code(), Status::Code::kInvalid);
  EXPECT_NE(first.message().find("second_total"), std::string::npos);
}

}  // namespace
}  // namespace recsync::metrics
