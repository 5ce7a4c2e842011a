#include "objstore/s3_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "objstore/xml.h"

namespace recsync::objstore {

namespace {

constexpr size_t kMaxKeyLen = 1024;
constexpr size_t kMaxMetadataBytes = 2048;
constexpr size_t kReadChunk = 1 << 20;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

ObjectInfo info_from_headers(const S3Response& r) {
  ObjectInfo i;
  i.size = parse_u64(r.header("content-length")).value_or(0);
  i.etag = unquote_etag(r.header("etag"));
  i.version_id = r.header("x-amz-version-id");
  i.last_modified = r.header("last-modified");
  for (const auto& [k, v] : r.headers) {
    if (k.starts_with("x-amz-meta-")) i.metadata[k.substr(11)] = v;
  }
  std::string hold = r.header("x-amz-object-lock-legal-hold");
  if (!hold.empty()) i.legal_hold = hold == "ON";
  return i;
}

void add_put_headers(S3Request& req, const PutOptions& o) {
  req.headers.emplace_back("Content-Type", o.content_type);
  for (const auto& [k, v] : o.metadata) req.headers.emplace_back("x-amz-meta-" + k, v);
  if (o.legal_hold) req.headers.emplace_back("x-amz-object-lock-legal-hold", "ON");
}

}  // namespace

std::string check_key(const std::string& key) {
  if (key.empty()) return "empty object key";
  if (key.size() > kMaxKeyLen) return "object key longer than 1024 bytes";
  for (unsigned char c : key) {
    if (c < 0x20 || c == 0x7f) return "object key has a control character";
  }
  if (key.front() == '/') return "object key starts with '/'";
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    std::string_view seg(key.data() + start, end - start);
    if (seg.empty() && end != key.size()) return "object key has an empty segment ('//')";
    if (seg == "." || seg == "..") return "object key has a '.' or '..' segment";
    start = end + 1;
  }
  return "";
}

std::string check_metadata(const UserMetadata& md) {
  size_t total = 0;
  for (const auto& [k, v] : md) {
    if (k.empty() || k.size() > 128) return "metadata name must be 1..128 characters";
    for (char c : k) {
      if (!is_lower_alnum(c) && c != '-' && c != '_') {
        return "metadata name '" + k + "' must be lower-case letters, digits, '-' or '_'";
      }
    }
    for (unsigned char c : v) {
      if (c < 0x20 || c > 0x7e) return "metadata value of '" + k + "' is not printable ASCII";
    }
    if (!v.empty() && (v.front() == ' ' || v.back() == ' ')) {
      return "metadata value of '" + k + "' starts or ends with a space";
    }
    total += k.size() + v.size();
  }
  if (total > kMaxMetadataBytes) return "metadata larger than 2 KiB";
  return "";
}

std::string check_bucket(const std::string& b) {
  if (b.size() < 3 || b.size() > 63) return "bucket name must be 3..63 characters";
  for (char c : b) {
    if (!is_lower_alnum(c) && c != '-' && c != '.') {
      return "bucket name must be lower-case letters, digits, '-' or '.'";
    }
  }
  if (!is_lower_alnum(b.front()) || !is_lower_alnum(b.back())) {
    return "bucket name must start and end with a letter or digit";
  }
  return "";
}

std::string unquote_etag(const std::string& e) {
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') return e.substr(1, e.size() - 2);
  return e;
}

Result<std::unique_ptr<S3Client>> S3Client::make(S3Options opts) {
  if (std::string why = check_bucket(opts.bucket); !why.empty()) {
    return Status::invalid("object store bucket '" + opts.bucket + "': " + why);
  }
  if (opts.region.empty() || opts.region.find_first_of(":/ ") != std::string::npos) {
    return Status::invalid("object store region '" + opts.region + "' is not a region name");
  }
  auto s = CurlSession::make(std::move(opts));
  if (!s.is_ok()) return s.status();
  return std::unique_ptr<S3Client>(new S3Client(std::move(s.value())));
}

std::string S3Client::what(const char* op, const std::string& key) const {
  return std::string(op) + " s3://" + options().bucket + "/" + key;
}

S3Request S3Client::object_request(const char* method, const std::string& key) const {
  S3Request r;
  r.method = method;
  r.bucket = options().bucket;
  r.key = key;
  r.timeout = options().small_request_timeout;
  return r;
}

// Reads the range once for its MD5 when the caller did not give one: the
// header goes out before the body, so it cannot be computed while sending.
S3Status S3Client::prepare_body(const FileRange& body, std::string& md5, const std::string& w) {
  if (body.fd < 0) return s3_error(ErrorKind::kLocal, w + ": no file to upload");
  if (!md5.empty()) {
    auto d = base64_decode(md5);
    if (!d || d->size() != Md5::kLen) {
      return s3_error(ErrorKind::kOther, w + ": Content-MD5 is not a base64 MD5");
    }
    return S3Status::ok();
  }
  Md5 m;
  std::vector<char> buf(std::min<uint64_t>(kReadChunk, std::max<uint64_t>(body.length, 1)));
  uint64_t done = 0;
  while (done < body.length) {
    size_t want = std::min<uint64_t>(buf.size(), body.length - done);
    ssize_t n = ::pread(body.fd, buf.data(), want, off_t(body.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return S3Status(ErrorKind::kLocal, Status::from_errno(errno, w + ": read"));
    if (n == 0) {
      return S3Status(ErrorKind::kLocal, Status::io(w + ": file shorter than the range"));
    }
    m.update(buf.data(), size_t(n));
    done += uint64_t(n);
  }
  md5 = base64_encode(m.finish());
  return S3Status::ok();
}

S3Status S3Client::create_bucket(const std::string& name, bool object_lock) {
  std::string w = "CreateBucket s3://" + name;
  if (std::string why = check_bucket(name); !why.empty()) {
    return s3_error(ErrorKind::kOther, w + ": " + why);
  }
  S3Request r;
  r.method = "PUT";
  r.bucket = name;
  r.timeout = options().small_request_timeout;
  if (object_lock) r.headers.emplace_back("x-amz-bucket-object-lock-enabled", "true");
  S3Response resp;
  S3Status st = perform(r, w, resp);
  if (!st.is_ok() && st.s3_code() == "BucketAlreadyOwnedByYou") return S3Status::ok();
  return st;
}

S3Result<PutResult> S3Client::put_object(const std::string& key, const FileRange& body,
                                         const PutOptions& o) {
  std::string w = what("PUT", key);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  if (std::string why = check_metadata(o.metadata); !why.empty()) {
    return s3_error(ErrorKind::kOther, w + ": " + why);
  }
  std::string md5 = o.content_md5;
  S3Status st = prepare_body(body, md5, w);
  if (!st.is_ok()) return st;
  S3Request r = object_request("PUT", key);
  r.timeout = {};
  r.file = &body;
  r.headers.emplace_back("Content-MD5", md5);
  add_put_headers(r, o);
  S3Response resp;
  st = perform(r, w, resp);
  if (!st.is_ok()) return st;
  PutResult out;
  out.etag = unquote_etag(resp.header("etag"));
  out.version_id = resp.header("x-amz-version-id");
  out.md5_hex = hex_lower(*base64_decode(md5));
  return out;
}

S3Result<PutResult> S3Client::put_file(const std::string& key, const std::string& path,
                                       const PutOptions& o) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return S3Status(ErrorKind::kLocal, Status::from_errno(errno, what("PUT", key) + ": " + path));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return S3Status(ErrorKind::kLocal, Status::from_errno(e, what("PUT", key) + ": " + path));
  }
  FileRange range{fd, 0, uint64_t(st.st_size)};
  auto r = put_object(key, range, o);
  ::close(fd);
  return r;
}

S3Result<ObjectInfo> S3Client::head_object(const std::string& key, const std::string& version) {
  std::string w = what("HEAD", key);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  S3Request r = object_request("HEAD", key);
  if (!version.empty()) r.query.emplace_back("versionId", version);
  S3Response resp;
  S3Status st = perform(r, w, resp);
  if (!st.is_ok()) return st;
  return info_from_headers(resp);
}

S3Result<GetResult> S3Client::get_object(const std::string& key, File& dest,
                                         const std::string& version) {
  std::string w = what("GET", key);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  S3Request r = object_request("GET", key);
  r.timeout = {};
  r.sink = &dest;
  if (!version.empty()) r.query.emplace_back("versionId", version);
  S3Response resp;
  S3Status st = perform(r, w, resp);
  if (!st.is_ok()) return st;
  GetResult g;
  g.info = info_from_headers(resp);
  g.bytes_written = resp.sink_bytes;
  g.md5_hex = resp.sink_md5_hex.empty() ? hex_lower(md5("")) : resp.sink_md5_hex;
  return g;
}

S3Result<DeleteResult> S3Client::delete_object(const std::string& key, const std::string& version) {
  std::string w = what("DELETE", key);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  S3Request r = object_request("DELETE", key);
  if (!version.empty()) r.query.emplace_back("versionId", version);
  S3Response resp;
  S3Status st = perform(r, w, resp);
  if (!st.is_ok()) return st;
  DeleteResult d;
  d.version_id = resp.header("x-amz-version-id");
  d.delete_marker = resp.header("x-amz-delete-marker") == "true";
  return d;
}

S3Result<VersionListing> S3Client::list_object_versions(const std::string& prefix,
                                                        size_t max_entries) {
  std::string w = what("ListObjectVersions", prefix);
  VersionListing out;
  std::string key_marker, version_marker;
  size_t page_size = size_t(options().list_page_size);
  // Each page returns at least one entry while truncated, so this ends.
  for (size_t page = 0; page <= max_entries / page_size + 1; ++page) {
    S3Request r = object_request("GET", "");
    r.query = {{"versions", ""}, {"prefix", prefix}, {"max-keys", std::to_string(page_size)}};
    if (!key_marker.empty()) r.query.emplace_back("key-marker", key_marker);
    if (!version_marker.empty()) r.query.emplace_back("version-id-marker", version_marker);
    S3Response resp;
    S3Status st = perform(r, w, resp);
    if (!st.is_ok()) return st;
    auto doc = parse_xml(resp.body);
    if (!doc.is_ok() || doc->name != "ListVersionsResult") {
      return s3_error(ErrorKind::kOther, w + ": malformed answer", resp.http_status);
    }
    for (const auto& n : doc->children) {
      bool marker = n.name == "DeleteMarker";
      if (!marker && n.name != "Version") continue;
      if (out.versions.size() >= max_entries) {
        out.truncated = true;
        return out;
      }
      ObjectVersion v;
      v.key = n.child_text("Key");
      v.version_id = n.child_text("VersionId");
      v.is_latest = n.child_text("IsLatest") == "true";
      v.is_delete_marker = marker;
      v.size = parse_u64(n.child_text("Size")).value_or(0);
      v.etag = unquote_etag(n.child_text("ETag"));
      v.last_modified = n.child_text("LastModified");
      out.versions.push_back(std::move(v));
    }
    if (doc->child_text("IsTruncated") != "true") return out;
    key_marker = doc->child_text("NextKeyMarker");
    version_marker = doc->child_text("NextVersionIdMarker");
    if (key_marker.empty()) return s3_error(ErrorKind::kOther, w + ": truncated without a marker");
  }
  out.truncated = true;
  return out;
}

S3Status S3Client::put_legal_hold(const std::string& key, bool on, const std::string& version) {
  std::string w = what(on ? "PutObjectLegalHold(ON)" : "PutObjectLegalHold(OFF)", key);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  S3Request r = object_request("PUT", key);
  r.query.emplace_back("legal-hold", "");
  if (!version.empty()) r.query.emplace_back("versionId", version);
  r.body = std::string("<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>") +
           (on ? "ON" : "OFF") + "</Status></LegalHold>";
  r.headers.emplace_back("Content-Type", "application/xml");
  r.headers.emplace_back("Content-MD5", base64_encode(md5(r.body)));
  S3Response resp;
  return perform(r, w, resp);
}

S3Result<bool> S3Client::get_legal_hold(const std::string& key, const std::string& version) {
  std::string w = what("GetObjectLegalHold", key);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  S3Request r = object_request("GET", key);
  r.query.emplace_back("legal-hold", "");
  if (!version.empty()) r.query.emplace_back("versionId", version);
  S3Response resp;
  S3Status st = perform(r, w, resp);
  // Never set: RGW says ObjectLockConfigurationNotFoundError, AWS
  // NoSuchObjectLockConfiguration. Both mean "no hold".
  if (!st.is_ok() && (st.s3_code() == "ObjectLockConfigurationNotFoundError" ||
                      st.s3_code() == "NoSuchObjectLockConfiguration")) {
    return false;
  }
  if (!st.is_ok()) return st;
  auto doc = parse_xml(resp.body);
  if (!doc.is_ok() || doc->name != "LegalHold") {
    return s3_error(ErrorKind::kOther, w + ": malformed answer", resp.http_status);
  }
  return doc->child_text("Status") == "ON";
}

}  // namespace recsync::objstore
