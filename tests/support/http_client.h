#pragma once
// A small blocking HTTP/1.x client for tests, loopback only: it refuses any
// address outside 127.0.0.0/8 and ::1, so a test cannot reach the network.
//
// Every call is bounded by its timeout (connect, send and read together) and
// by max_bytes of response. Thread safety: free functions, any thread.
#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "recsync/status.h"

namespace recsync::test {

struct HttpResponse {
  int status = 0;                              // e.g. 200
  std::map<std::string, std::string> headers;  // names lower-cased; last one wins
  std::string body;                            // chunked bodies decoded
  std::string raw;                             // everything the server sent
};

// A connected, blocking TCP socket to a loopback "a.b.c.d:port" or
// "[::1]:port". The caller owns (closes) the fd. kInvalid for a malformed or
// non-loopback address, kIo naming the address if connect fails or times out.
Result<int> tcp_connect(const std::string& address,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Parses a complete response (status line, headers, body). The body is taken
// by Content-Length, chunked encoding, or up to the end. kCorrupt if the
// status line or framing is malformed.
Result<HttpResponse> parse_http_response(std::string raw);

// Sends `request` verbatim, reads until the server closes the connection,
// and parses the response.
Result<HttpResponse> http_exchange(const std::string& address, std::string_view request,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10),
                                   size_t max_bytes = 64 << 20);

// GET path (with any query string already encoded) as HTTP/1.0, so the
// server answers without chunking and closes after the body.
Result<HttpResponse> http_get(const std::string& address, const std::string& path,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string url_encode(std::string_view s);

}  // namespace recsync::test
