#include "metrics/http_request.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace recsync::metrics {
namespace {

// The librsync buffer sizes (STYLE.md habit 6): the head end must be found
// exactly when the last byte of the blank line arrives, however it is cut.
TEST(HttpRequestTest, FindsTheHeadEndAtEveryBufferSize) {
  const std::string heads[] = {
      "GET /metrics HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
      "GET /metrics HTTP/1.0\n\n",
      "GET / HTTP/1.1\r\n\r\n",
      "GET /metrics HTTP/1.1\nHost: a\n\r\n",
  };
  for (const auto& head : heads) {
    const std::string with_body = head + "BODY\r\n\r\n";
    for (size_t step : {1, 2, 3, 7, 15, 100, 10000}) {
      std::string buf;
      size_t found = std::string::npos;
      size_t found_at_len = 0;
      for (size_t pos = 0; pos < with_body.size() && found == std::string::npos; pos += step) {
        size_t old = buf.size();
        buf += with_body.substr(pos, step);
        found = find_head_end(buf, old);
        found_at_len = buf.size();
      }
      EXPECT_EQ(found, head.size()) << "step " << step << " head " << head;
      EXPECT_GE(found_at_len, head.size());
      EXPECT_LT(found_at_len, head.size() + step) << "found late, step " << step;
    }
  }
  EXPECT_EQ(find_head_end("GET /metrics HTTP/1.1\r\nHost: a\r\n"), std::string::npos);
  EXPECT_EQ(find_head_end(""), std::string::npos);
}

TEST(HttpRequestTest, ClassifiesRequests) {
  struct Case {
    const char* head;
    int want;
  } cases[] = {
      {"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9465\r\nAccept: text/plain\r\n\r\n", 200},
      {"GET /metrics HTTP/1.0\r\n\r\n", 200},
      {"GET /metrics HTTP/1.1\nHost: a\n\n", 200},  // bare LF
      {"GET /metrics?x=1&y=2 HTTP/1.1\r\n\r\n", 200},
      {"GET http://127.0.0.1:9465/metrics HTTP/1.1\r\n\r\n", 200},  // absolute-form
      {"GET /metrics HTTP/1.1\r\nX-Empty:\r\nX-Tab:\tv\r\n\r\n", 200},
      {"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\n", 405},
      {"HEAD /metrics HTTP/1.1\r\n\r\n", 405},
      {"DELETE /other HTTP/1.1\r\n\r\n", 405},
      {"get /metrics HTTP/1.1\r\n\r\n", 405},  // methods are case-sensitive
      {"GET / HTTP/1.1\r\n\r\n", 404},
      {"GET /metrics/ HTTP/1.1\r\n\r\n", 404},
      {"GET /metricsx HTTP/1.1\r\n\r\n", 404},
      {"GET /Metrics HTTP/1.1\r\n\r\n", 404},
      {"hello\r\n\r\n", 400},
      {"\r\n\r\n", 400},
      {"GET /metrics\r\n\r\n", 400},  // HTTP/0.9 style
      {"GET /metrics HTTP/2.0\r\n\r\n", 400},
      {"GET /metrics HTTP/1.1 extra\r\n\r\n", 400},
      {"GET  /metrics HTTP/1.1\r\n\r\n", 400},  // two spaces
      {"GET metrics HTTP/1.1\r\n\r\n", 400},
      {"GET http://host HTTP/1.1\r\n\r\n", 400},  // absolute-form without a path
      {"GET /met\x01rics HTTP/1.1\r\n\r\n", 400},
      {"G\xFFT /metrics HTTP/1.1\r\n\r\n", 400},
      {"GET /metrics HTTP/1.1\r\nNoColon\r\n\r\n", 400},
      {"GET /metrics HTTP/1.1\r\n: novalue\r\n\r\n", 400},
      {"GET /metrics HTTP/1.1\r\nBad Name: v\r\n\r\n", 400},
      {"GET /metrics HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400},  // obsolete folding
      {"GET /metrics HTTP/1.1\r\nA: b\x01\r\n\r\n", 400},
      {"GET /metrics HTTP/1.1\rX: y\r\n\r\n", 400},  // lone CR
  };
  for (const auto& c : cases) {
    EXPECT_EQ(classify_request(c.head), c.want) << c.head;
  }
}

// Random bytes and mutations of a good request: always one of the four
// answers, never a crash (ASan/UBSan run this too).
TEST(HttpRequestTest, RandomInputGetsAnAnswer) {
  std::mt19937 rng(20261206);
  const std::string good = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    if (i % 2) {
      s.resize(rng() % 300);
      for (auto& c : s) c = static_cast<char>(rng() % 256);
    } else {
      s = good;
      for (int k = 0, n = 1 + rng() % 4; k < n; ++k)
        s[rng() % s.size()] = static_cast<char>(rng() % 256);
    }
    size_t end = find_head_end(s);
    int code = classify_request(end == std::string::npos ? s : s.substr(0, end));
    switch (code) {
      case 200:
        ++counts[0];
        break;
      case 400:
        ++counts[1];
        break;
      case 404:
        ++counts[2];
        break;
      case 405:
        ++counts[3];
        break;
      default:
        FAIL() << "code " << code;
    }
  }
  EXPECT_GT(counts[1], 10000) << "mostly malformed";
  EXPECT_GT(counts[0] + counts[2] + counts[3], 0) << "some mutations stay well-formed";
}

TEST(HttpRequestTest, BuildsResponses) {
  EXPECT_EQ(build_response(200, "text/plain", "abc"),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
            "Connection: close\r\nCache-Control: no-store\r\n\r\nabc");
  std::string r = build_response(405, "text/plain; charset=utf-8", "");
  EXPECT_EQ(r,
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 0\r\nConnection: close\r\nCache-Control: no-store\r\n"
            "Allow: GET\r\n\r\n");
  EXPECT_STREQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_STREQ(reason_phrase(404), "Not Found");
  EXPECT_STREQ(reason_phrase(400), "Bad Request");
  EXPECT_STREQ(reason_phrase(500), "Internal Server Error");
}

}  // namespace
}  // namespace recsync::metrics
