#pragma once
// The HTTP engine under S3Client (internal to the component): one libcurl
// easy handle, reused for every request so the connection stays open, with
// SigV4 signing done by libcurl (CURLOPT_AWS_SIGV4) and everything bounded.
//
// What it guarantees for each request:
// - path-style URL endpoint/bucket/key with the key URI-encoded per segment
//   and the query in SigV4 canonical form (see encoding.h for why);
// - x-amz-content-sha256: the SHA-256 of an in-memory body, UNSIGNED-PAYLOAD
//   for a file body (its integrity is carried by Content-MD5 instead);
// - a file body is read with pread() in chunks of at most
//   S3Options::upload_buffer bytes; the pacer is called before each chunk
//   and may block or stop the transfer (ErrorKind::kAborted);
// - a 2xx GET body streams into the sink File, MD5-hashed on the way; any
//   other answer body is kept in memory up to max_response_body;
// - errors become S3Status values (s3_error.h) whose message names the
//   operation and object and, from the server, the S3 code, message and
//   request id. Credentials are never put in a message or a log line.
//
// Thread safety: a CurlSession belongs to one thread at a time.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "objstore/credentials.h"
#include "objstore/encoding.h"
#include "objstore/s3_error.h"
#include "recsync/env.h"

typedef void CURL;

namespace recsync::objstore {

using namespace std::chrono_literals;

// Connection and limits of one S3 endpoint.
struct S3Options {
  // "http://host:port" or "https://host[:port]"; no path, query or user
  // info. Path-style requests (endpoint/bucket/key) are used.
  std::string endpoint;
  // The region the signature is scoped to. RGW accepts its zonegroup's
  // api_name; "us-east-1" suits a default RGW.
  std::string region = "us-east-1";
  // The bucket every object call goes to.
  std::string bucket;
  // https: a PEM bundle of CAs to verify the server against, instead of the
  // system store (/etc/ssl/certs). The host name is always verified.
  std::string ca_file;
  Credentials credentials;
  std::chrono::milliseconds connect_timeout = 10s;
  // A transfer that moves fewer than low_speed_bytes_per_s bytes per second
  // for low_speed_time is cut (kNetwork). A pacer must not hold an upload
  // below that rate for that long.
  uint32_t low_speed_bytes_per_s = 1024;
  std::chrono::seconds low_speed_time = 60s;
  // Whole-request limit for requests without a file body or a sink (HEAD,
  // lists, deletes, legal hold, multipart create/list/abort).
  std::chrono::milliseconds small_request_timeout = 60s;
  // Error bodies and XML listings larger than this fail with kOther.
  size_t max_response_body = 8 << 20;
  size_t max_response_headers = 64 << 10;
  // Entries asked per page of a listing (versions, parts, uploads); S3
  // answers at most 1000. 1..1000.
  int list_page_size = 1000;
  // Size of the chunks a file body is handed to curl in (curl's upload
  // buffer): the pacer's granularity. 16 KiB .. 2 MiB.
  size_t upload_buffer = 256 << 10;
};

// An upload body: [offset, offset + length) of an open file, read with
// pread() (the descriptor's offset is neither used nor moved; it stays the
// caller's to close).
struct FileRange {
  int fd = -1;
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Called with the size of the next chunk of a file body before curl gets
// it; may block to pace. Returning false stops the transfer (kAborted).
using Pacer = std::function<bool(size_t bytes)>;
// Called after each chunk of a file body was handed to curl, with the
// bytes of this request's body handed so far.
using Progress = std::function<void(uint64_t body_bytes_sent)>;

struct S3Request {
  const char* method = "GET";  // GET HEAD PUT POST DELETE
  std::string bucket;
  std::string key;  // "" for a bucket request
  QueryParams query;
  std::vector<std::pair<std::string, std::string>> headers;
  // Body: a file range, or the in-memory body (PUT/POST; may be empty).
  const FileRange* file = nullptr;
  std::string body;
  File* sink = nullptr;  // receives a 2xx answer's body
  // Whole-request time limit; 0 = none (transfers: the low-speed limit only).
  std::chrono::milliseconds timeout{0};
};

struct S3Response {
  int http_status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;
  uint64_t sink_bytes = 0;
  std::string sink_md5_hex;
  // Value of the first header with that (lower-case) name, "" if absent.
  std::string header(const std::string& name) const;
};

// Counters over a session's life (only ever grow).
struct ClientStats {
  uint64_t requests = 0;
  uint64_t file_bytes_sent = 0;  // file-body bytes handed to curl (resends included)
  uint64_t body_bytes_sent = 0;  // every request body (files and XML)
  uint64_t bytes_received = 0;   // answer bodies (sink and memory)
};

class CurlSession {
 public:
  // Validates the endpoint; curl_global_init runs once per process.
  static Result<std::unique_ptr<CurlSession>> make(S3Options opts);
  ~CurlSession();
  CurlSession(const CurlSession&) = delete;
  CurlSession& operator=(const CurlSession&) = delete;

  // Runs req. A non-2xx answer is an error (classified); `what` names the
  // operation in messages ("PUT s3://bucket/key").
  S3Status perform(const S3Request& req, const std::string& what, S3Response& resp);

  const S3Options& options() const { return opts_; }
  void set_pacer(Pacer p) { pacer_ = std::move(p); }
  void set_progress(Progress p) { progress_ = std::move(p); }
  const ClientStats& stats() const { return stats_; }

  struct Transfer;  // per-request state the curl callbacks share (s3_request.cc)

 private:
  explicit CurlSession(S3Options opts, CURL* h) : opts_(std::move(opts)), curl_(h) {}
  std::string url_for(const S3Request& req) const;
  void set_method(const S3Request& req, Transfer& t);
  S3Status finish(const S3Request& req, const std::string& what, Transfer& t, int rc,
                  S3Response& resp);

  S3Options opts_;
  CURL* curl_;
  Pacer pacer_;
  Progress progress_;
  ClientStats stats_;
};

// Parses an S3 error body: {code, message, request id}; all "" when the
// body is not an <Error> document.
struct S3ErrorBody {
  std::string code, message, request_id;
};
S3ErrorBody parse_error_body(const std::string& body);

// Endpoint checks shared with the config layer: "" when fine, else why not.
std::string check_endpoint(const std::string& endpoint);

}  // namespace recsync::objstore
