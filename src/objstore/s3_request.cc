#include "objstore/s3_request.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>

#include "objstore/xml.h"
#include "recsync/log.h"
#include "recsync/version.h"

namespace recsync::objstore {

namespace {

std::shared_ptr<spdlog::logger> logger() {
  static auto l = log::get("objstore");
  return l;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Server text put into a Status: bounded, one line, printable.
std::string clean(std::string_view s, size_t max = 200) {
  std::string out;
  for (unsigned char c : s.substr(0, max)) out += (c < 0x20 || c == 0x7f) ? ' ' : char(c);
  if (s.size() > max) out += "...";
  return out;
}

// curl_slist owner.
struct Headers {
  curl_slist* list = nullptr;
  ~Headers() { curl_slist_free_all(list); }
  bool add(const std::string& line) {
    curl_slist* n = curl_slist_append(list, line.c_str());
    if (!n) return false;
    list = n;
    return true;
  }
};

}  // namespace

// State the curl callbacks of one request share.
struct CurlSession::Transfer {
  CurlSession* session = nullptr;
  CURL* curl = nullptr;
  const S3Request* req = nullptr;
  S3Response* resp = nullptr;
  uint64_t body_pos = 0;  // next body byte to hand to curl
  uint64_t body_len = 0;
  size_t header_bytes = 0;
  std::optional<Md5> sink_md5;
  bool sink_active = false;  // decided at the first body byte
  bool decided = false;
  bool aborted = false;
  bool too_large = false;
  Status local;  // a local read or write error
  char errbuf[CURL_ERROR_SIZE] = {0};
  const Pacer* pacer = nullptr;

  void count_received(size_t n) { session->stats_.bytes_received += n; }
  void count_sent(size_t n) {
    session->stats_.body_bytes_sent += n;
    if (req->file) {
      session->stats_.file_bytes_sent += n;
      if (session->progress_) session->progress_(body_pos);
    }
  }
};

namespace {

size_t read_cb(char* buf, size_t size, size_t nitems, void* ud) {
  auto* t = static_cast<CurlSession::Transfer*>(ud);
  size_t want = std::min<uint64_t>(size * nitems, t->body_len - t->body_pos);
  if (want == 0) return 0;
  const S3Request& req = *t->req;
  if (req.file) {
    if (t->pacer && !(*t->pacer)(want)) {
      t->aborted = true;
      return CURL_READFUNC_ABORT;
    }
    size_t got = 0;
    while (got < want) {
      ssize_t n =
          ::pread(req.file->fd, buf + got, want - got, off_t(req.file->offset + t->body_pos + got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        t->local = n < 0 ? Status::from_errno(errno, "read upload source")
                         : Status::io("read upload source: file shorter than the range", EIO);
        return CURL_READFUNC_ABORT;
      }
      got += size_t(n);
    }
  } else {
    std::memcpy(buf, req.body.data() + t->body_pos, want);
  }
  t->body_pos += want;
  t->count_sent(want);
  return want;
}

int seek_cb(void* ud, curl_off_t offset, int origin) {
  auto* t = static_cast<CurlSession::Transfer*>(ud);
  // curl rewinds to resend a body (a reused connection found dead).
  if (origin != SEEK_SET || offset < 0 || uint64_t(offset) > t->body_len) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->body_pos = uint64_t(offset);
  return CURL_SEEKFUNC_OK;
}

size_t header_cb(char* buf, size_t size, size_t nitems, void* ud) {
  auto* t = static_cast<CurlSession::Transfer*>(ud);
  size_t n = size * nitems;
  t->header_bytes += n;
  if (t->header_bytes > t->session->options().max_response_headers) {
    t->too_large = true;
    return 0;
  }
  std::string_view line(buf, n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    t->resp->headers.clear();  // a new answer (after 100 Continue)
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name = lower(std::string(line.substr(0, colon)));
  std::string_view v = line.substr(colon + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  t->resp->headers.emplace_back(std::move(name), std::string(v));
  return n;
}

size_t write_cb(char* buf, size_t size, size_t nitems, void* ud) {
  auto* t = static_cast<CurlSession::Transfer*>(ud);
  size_t n = size * nitems;
  if (!t->decided) {
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    t->sink_active = t->req->sink && code >= 200 && code < 300;
    if (t->sink_active) t->sink_md5.emplace();
    t->decided = true;
  }
  t->count_received(n);
  if (t->sink_active) {
    Status s = t->req->sink->write_all(buf, n);
    if (!s.is_ok()) {
      t->local = s;
      return 0;
    }
    t->sink_md5->update(buf, n);
    t->resp->sink_bytes += n;
    return n;
  }
  if (t->resp->body.size() + n > t->session->options().max_response_body) {
    t->too_large = true;
    return 0;
  }
  t->resp->body.append(buf, n);
  return n;
}

}  // namespace

std::string S3Response::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

S3ErrorBody parse_error_body(const std::string& body) {
  S3ErrorBody e;
  auto doc = parse_xml(body);
  if (!doc.is_ok() || doc->name != "Error") return e;
  e.code = doc->child_text("Code");
  e.message = doc->child_text("Message");
  e.request_id = doc->child_text("RequestId");
  return e;
}

std::string check_endpoint(const std::string& ep) {
  size_t scheme_end = ep.find("://");
  if (scheme_end == std::string::npos) return "endpoint must start with http:// or https://";
  std::string scheme = ep.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return "endpoint must start with http:// or https://";
  std::string rest = ep.substr(scheme_end + 3);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty()) return "endpoint has no host";
  if (rest.find_first_of("/?#@ \t\r\n") != std::string::npos) {
    return "endpoint must be scheme://host[:port] only (no path, query or user info)";
  }
  return "";
}

Result<std::unique_ptr<CurlSession>> CurlSession::make(S3Options opts) {
  static std::once_flag once;
  static CURLcode global_rc = CURLE_OK;
  std::call_once(once, [] { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (global_rc != CURLE_OK) return Status::io("curl_global_init failed");
  if (std::string why = check_endpoint(opts.endpoint); !why.empty()) {
    return Status::invalid("object store endpoint '" + opts.endpoint + "': " + why);
  }
  if (!opts.endpoint.empty() && opts.endpoint.back() == '/') opts.endpoint.pop_back();
  opts.upload_buffer = std::clamp<size_t>(opts.upload_buffer, 16 << 10, 2 << 20);
  opts.list_page_size = std::clamp(opts.list_page_size, 1, 1000);
  CURL* h = curl_easy_init();
  if (!h) return Status::io("curl_easy_init failed");
  return std::unique_ptr<CurlSession>(new CurlSession(std::move(opts), h));
}

CurlSession::~CurlSession() { curl_easy_cleanup(curl_); }

std::string CurlSession::url_for(const S3Request& req) const {
  std::string url = opts_.endpoint + "/" + uri_encode(req.bucket, false);
  if (!req.key.empty()) url += "/" + uri_encode(req.key, true);
  std::string q = canonical_query(req.query);
  if (!q.empty()) url += "?" + q;
  return url;
}

// The method, and where the request body comes from: PUT bodies (files
// and small XML) through the read callback, POST bodies from memory.
void CurlSession::set_method(const S3Request& req, Transfer& t) {
  CURL* c = curl_;
  if (std::strcmp(req.method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (std::strcmp(req.method, "PUT") == 0) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, curl_off_t(t.body_len));
    curl_easy_setopt(c, CURLOPT_UPLOAD_BUFFERSIZE, long(opts_.upload_buffer));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, seek_cb);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
  } else if (std::strcmp(req.method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(req.body.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
    stats_.body_bytes_sent += req.body.size();
  } else if (std::strcmp(req.method, "GET") != 0) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method);
  }
}

S3Status CurlSession::perform(const S3Request& req, const std::string& what, S3Response& resp) {
  resp = S3Response{};
  curl_easy_reset(curl_);  // keeps the open connection and the DNS cache
  Transfer t;
  t.session = this;
  t.curl = curl_;
  t.req = &req;
  t.resp = &resp;
  t.body_len = req.file ? req.file->length : req.body.size();
  t.pacer = pacer_ ? &pacer_ : nullptr;
  ++stats_.requests;

  Headers hdrs;
  bool ok = true;
  for (const auto& [k, v] : req.headers) ok = ok && hdrs.add(k + ": " + v);
  std::string sha = req.file ? "UNSIGNED-PAYLOAD" : sha256_hex(req.body);
  // No "Expect:" override for small bodies: curl 7.88 signs every header
  // given here, including an empty one it then leaves out of the request,
  // and the server refuses the signature.
  ok = ok && hdrs.add("x-amz-content-sha256: " + sha);
  if (!ok) return s3_error(ErrorKind::kOther, what + ": out of memory for headers");

  std::string url = url_for(req);
  std::string sigv4 = "aws:amz:" + opts_.region + ":s3";
  std::string agent = std::string("recsync/") + kVersion;
  CURL* c = curl_;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, long(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t.errbuf);
  curl_easy_setopt(c, CURLOPT_USERAGENT, agent.c_str());
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
  curl_easy_setopt(c, CURLOPT_USERNAME, opts_.credentials.access_key.c_str());
  curl_easy_setopt(c, CURLOPT_PASSWORD, opts_.credentials.secret_key.c_str());
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!opts_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, opts_.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, long(opts_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, long(opts_.low_speed_bytes_per_s));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, long(opts_.low_speed_time.count()));
  if (req.timeout.count() > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(req.timeout.count()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs.list);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  set_method(req, t);
  auto t0 = std::chrono::steady_clock::now();
  CURLcode rc = curl_easy_perform(c);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (t.sink_md5) resp.sink_md5_hex = hex_lower(t.sink_md5->finish());
  S3Status st = finish(req, what, t, int(rc), resp);
  // Drop pointers into this frame before the handle is reused.
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  logger()->debug("{}: HTTP {} in {:.3f} s, {} body bytes out, {} in{}", what, resp.http_status,
                  secs, t.body_pos, resp.sink_bytes + resp.body.size(),
                  st.is_ok() ? "" : std::string(" (") + error_kind_name(st.kind()) + ")");
  return st;
}

S3Status CurlSession::finish(const S3Request& req, const std::string& what, Transfer& t, int rc,
                             S3Response& resp) {
  long code = 0;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &code);
  resp.http_status = int(code);
  if (!t.local.is_ok()) {
    return S3Status(ErrorKind::kLocal, t.local.with_context(what), resp.http_status);
  }
  if (t.aborted) return s3_error(ErrorKind::kAborted, what + ": stopped by the upload pacer");
  if (t.too_large) {
    return s3_error(ErrorKind::kOther, what + ": answer larger than the limit (" +
                                           std::to_string(opts_.max_response_body) + " bytes)");
  }
  bool http_error = code < 200 || code >= 300;
  // A server that refuses early answers while the body is still going up:
  // curl may then report a send error, but the answer is what matters.
  if (rc != CURLE_OK && !(http_error && code >= 300 && !resp.body.empty())) {
    std::string detail = t.errbuf[0] ? clean(t.errbuf) : curl_easy_strerror(CURLcode(rc));
    return s3_error(ErrorKind::kNetwork, what + ": " + detail);
  }
  if (!http_error) {
    if (req.sink && resp.header("content-length") != "" &&
        resp.header("content-length") != std::to_string(resp.sink_bytes)) {
      return s3_error(ErrorKind::kNetwork, what + ": answer shorter than its Content-Length");
    }
    return S3Status::ok();
  }
  S3ErrorBody e = parse_error_body(resp.body);
  ErrorKind kind = classify_s3_error(int(code), e.code, e.message);
  std::string msg = what + ": HTTP " + std::to_string(code);
  if (!e.code.empty()) msg += " " + clean(e.code, 64);
  if (!e.message.empty()) msg += ": " + clean(e.message);
  if (!e.request_id.empty()) msg += " (request " + clean(e.request_id, 80) + ")";
  return s3_error(kind, msg, int(code), e.code);
}

}  // namespace recsync::objstore
