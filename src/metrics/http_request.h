#pragma once
// The pure half of the metrics HTTP server (http_server.h): finding the end
// of a request head, judging the head, writing a response. No I/O, no state;
// any thread.
//
// Accepted request head (RFC 9112, reduced to what a scraper sends):
//   METHOD SP target SP ("HTTP/1.0" | "HTTP/1.1") CRLF
//   *( field-name ":" field-value CRLF )
//   CRLF
// Bare LF line ends are accepted too. The target is origin-form ("/metrics",
// a query string ignored) or absolute-form ("http://host:port/metrics").
// Anything else (no version, HTTP/2.0, spaces in the target, a header line
// without a name and colon, obsolete line folding, control characters) is a
// bad request.
#include <cstddef>
#include <string>
#include <string_view>

namespace recsync::metrics {

inline constexpr const char* kMetricsPath = "/metrics";

// Index just past the blank line that ends the head ("\r\n\r\n" or "\n\n"),
// or npos if the head is not complete yet. `from` lets a caller that appends
// to buf resume the search instead of rescanning (pass the old size).
size_t find_head_end(std::string_view buf, size_t from = 0);

// The status a complete head gets: 200 (GET /metrics), 400 (malformed), 405
// (well-formed, another method: HEAD included), 404 (GET of another path).
int classify_request(std::string_view head);

// "HTTP/1.1 <code> <reason>" with Content-Type, Content-Length,
// "Connection: close", "Cache-Control: no-store" and, for 405, "Allow: GET";
// then the body.
std::string build_response(int code, std::string_view content_type, std::string_view body);

// The reason phrase of the codes this server sends ("OK", "Not Found", ...);
// "Error" for others.
const char* reason_phrase(int code);

}  // namespace recsync::metrics
