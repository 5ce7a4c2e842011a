#include "metrics/http_request.h"

#include <algorithm>
#include <vector>

namespace recsync::metrics {
namespace {

// RFC 9110 tchar: what a method and a field name are made of.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Visible ASCII, no space: what a request target may hold.
bool is_target_char(char c) { return c > 0x20 && c < 0x7F; }

// Splits the head into lines without their CRLF/LF; the final empty line is
// dropped. A CR anywhere but before LF makes the head malformed (false).
bool split_lines(std::string_view head, std::vector<std::string_view>& lines) {
  size_t start = 0;
  while (start < head.size()) {
    size_t lf = head.find('\n', start);
    if (lf == std::string_view::npos) return false;  // the head always ends in LF
    std::string_view line = head.substr(start, lf - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) return false;
    lines.push_back(line);
    start = lf + 1;
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  return !lines.empty();
}

bool valid_field_line(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return false;
  // Field values: visible characters, space, tab and obs-text; no controls.
  return std::none_of(line.begin() + colon + 1, line.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7F;
  });
}

// The path of an origin-form or absolute-form target without its query, or
// "" if the target is neither.
std::string_view target_path(std::string_view target) {
  if (target.starts_with("http://") || target.starts_with("https://")) {
    size_t authority = target.find("//") + 2;
    size_t slash = target.find('/', authority);
    if (slash == std::string_view::npos || slash == authority) return {};
    target.remove_prefix(slash);
  }
  if (target.empty() || target[0] != '/') return {};
  return target.substr(0, std::min(target.find('?'), target.find('#')));
}

}  // namespace

size_t find_head_end(std::string_view buf, size_t from) {
  // Step back so a terminator split across two appends is still found.
  size_t i = from > 3 ? from - 3 : 0;
  for (; i < buf.size(); ++i) {
    if (buf[i] != '\n') continue;
    if (i + 1 < buf.size() && buf[i + 1] == '\n') return i + 2;
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

int classify_request(std::string_view head) {
  std::vector<std::string_view> lines;
  if (!split_lines(head, lines)) return 400;
  std::string_view rl = lines[0];
  size_t sp1 = rl.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || rl.find(' ', sp2 + 1) != std::string_view::npos) return 400;
  std::string_view method = rl.substr(0, sp1);
  std::string_view target = rl.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = rl.substr(sp2 + 1);
  if (!is_token(method) || target.empty() ||
      !std::all_of(target.begin(), target.end(), is_target_char)) {
    return 400;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return 400;
  std::string_view path = target_path(target);
  if (path.empty()) return 400;
  for (size_t i = 1; i < lines.size(); ++i) {
    // A line starting with space or tab is obsolete folding: refused (RFC 9112 5.2).
    if (!valid_field_line(lines[i])) return 400;
  }
  if (method != "GET") return 405;
  if (path != kMetricsPath) return 404;
  return 200;
}

const char* reason_phrase(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    default:
      return "Error";
  }
}

std::string build_response(int code, std::string_view content_type, std::string_view body) {
  std::string r;
  r.reserve(200 + body.size());
  r += "HTTP/1.1 ";
  r += std::to_string(code);
  r += ' ';
  r += reason_phrase(code);
  r += "\r\nContent-Type: ";
  r += content_type;
  r += "\r\nContent-Length: ";
  r += std::to_string(body.size());
  r += "\r\nConnection: close\r\nCache-Control: no-store\r\n";
  if (code == 405) r += "Allow: GET\r\n";
  r += "\r\n";
  r += body;
  return r;
}

}  // namespace recsync::metrics
