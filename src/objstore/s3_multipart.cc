// S3Client's multipart calls (the helper that drives them is multipart.h).
#include <string>

#include "objstore/s3_client.h"
#include "objstore/xml.h"

namespace recsync::objstore {

namespace {

constexpr int kMaxPartNumber = 10000;
constexpr size_t kMaxUploadsListed = 10000;

int to_int(const std::string& s) {
  if (s.empty() || s.size() > 6) return 0;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

S3Result<std::string> S3Client::create_multipart_upload(const std::string& key,
                                                        const PutOptions& o) {
  std::string w = what("CreateMultipartUpload", key);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  if (std::string why = check_metadata(o.metadata); !why.empty()) {
    return s3_error(ErrorKind::kOther, w + ": " + why);
  }
  S3Request r = object_request("POST", key);
  r.query.emplace_back("uploads", "");
  r.headers.emplace_back("Content-Type", o.content_type);
  for (const auto& [k, v] : o.metadata) r.headers.emplace_back("x-amz-meta-" + k, v);
  if (o.legal_hold) r.headers.emplace_back("x-amz-object-lock-legal-hold", "ON");
  S3Response resp;
  S3Status st = perform(r, w, resp);
  if (!st.is_ok()) return st;
  auto doc = parse_xml(resp.body);
  std::string id = doc.is_ok() ? doc->child_text("UploadId") : "";
  if (id.empty()) return s3_error(ErrorKind::kOther, w + ": answer has no UploadId");
  return id;
}

S3Result<std::string> S3Client::upload_part(const std::string& key, const std::string& upload_id,
                                            int part_number, const FileRange& body,
                                            const std::string& content_md5) {
  std::string w = what("UploadPart", key) + " part " + std::to_string(part_number);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  if (part_number < 1 || part_number > kMaxPartNumber) {
    return s3_error(ErrorKind::kOther, w + ": part number must be 1..10000");
  }
  std::string md5 = content_md5;
  S3Status st = prepare_body(body, md5, w);
  if (!st.is_ok()) return st;
  S3Request r = object_request("PUT", key);
  r.timeout = {};
  r.file = &body;
  r.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}};
  r.headers.emplace_back("Content-MD5", md5);
  S3Response resp;
  st = perform(r, w, resp);
  if (!st.is_ok()) return st;
  std::string etag = unquote_etag(resp.header("etag"));
  if (etag.empty()) return s3_error(ErrorKind::kOther, w + ": answer has no ETag");
  return etag;
}

S3Result<std::vector<Part>> S3Client::list_parts(const std::string& key,
                                                 const std::string& upload_id) {
  std::string w = what("ListParts", key);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  std::vector<Part> parts;
  std::string marker;
  int page_size = options().list_page_size;
  for (int page = 0; page <= kMaxPartNumber / page_size; ++page) {
    S3Request r = object_request("GET", key);
    r.query = {{"uploadId", upload_id}, {"max-parts", std::to_string(page_size)}};
    if (!marker.empty()) r.query.emplace_back("part-number-marker", marker);
    S3Response resp;
    S3Status st = perform(r, w, resp);
    if (!st.is_ok()) return st;
    auto doc = parse_xml(resp.body);
    if (!doc.is_ok() || doc->name != "ListPartsResult") {
      return s3_error(ErrorKind::kOther, w + ": malformed answer", resp.http_status);
    }
    for (const XmlNode* n : doc->children_named("Part")) {
      Part p;
      p.number = to_int(n->child_text("PartNumber"));
      p.etag = unquote_etag(n->child_text("ETag"));
      p.size = parse_u64(n->child_text("Size")).value_or(0);
      if (p.number < 1) return s3_error(ErrorKind::kOther, w + ": part without a number");
      parts.push_back(std::move(p));
    }
    std::string next = doc->child_text("NextPartNumberMarker");
    if (doc->child_text("IsTruncated") != "true") return parts;
    if (next.empty() || next == marker) {
      return s3_error(ErrorKind::kOther, w + ": truncated without a new marker");
    }
    marker = next;
  }
  return s3_error(ErrorKind::kOther, w + ": more than 10000 parts listed");
}

S3Result<PutResult> S3Client::complete_multipart_upload(const std::string& key,
                                                        const std::string& upload_id,
                                                        const std::vector<Part>& parts) {
  std::string w = what("CompleteMultipartUpload", key);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  if (parts.empty()) return s3_error(ErrorKind::kOther, w + ": no parts");
  std::string body = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const Part& p : parts) {
    body += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>\"" +
            xml_escape(p.etag) + "\"</ETag></Part>";
  }
  body += "</CompleteMultipartUpload>";
  S3Request r = object_request("POST", key);
  // Assembling many parts can take the store a while: only the low-speed
  // limit applies.
  r.timeout = {};
  r.query.emplace_back("uploadId", upload_id);
  r.headers.emplace_back("Content-Type", "application/xml");
  r.body = std::move(body);
  S3Response resp;
  S3Status st = perform(r, w, resp);
  if (!st.is_ok()) return st;
  // S3 may answer 200 and still fail, with an <Error> body.
  S3ErrorBody e = parse_error_body(resp.body);
  if (!e.code.empty()) {
    return s3_error(classify_s3_error(500, e.code, e.message),
                    w + ": " + e.code + " in a 200 answer: " + e.message.substr(0, 200),
                    resp.http_status, e.code);
  }
  PutResult out;
  auto doc = parse_xml(resp.body);
  out.etag = doc.is_ok() ? unquote_etag(doc->child_text("ETag")) : "";
  out.version_id = resp.header("x-amz-version-id");
  return out;
}

S3Status S3Client::abort_multipart_upload(const std::string& key, const std::string& upload_id) {
  std::string w = what("AbortMultipartUpload", key);
  if (std::string why = check_key(key); !why.empty())
    return s3_error(ErrorKind::kOther, w + ": " + why);
  S3Request r = object_request("DELETE", key);
  r.query.emplace_back("uploadId", upload_id);
  S3Response resp;
  return perform(r, w, resp);
}

S3Result<std::vector<MultipartUploadInfo>> S3Client::list_multipart_uploads(
    const std::string& prefix) {
  std::string w = what("ListMultipartUploads", prefix);
  std::vector<MultipartUploadInfo> out;
  std::string key_marker, id_marker;
  size_t page_size = size_t(options().list_page_size);
  for (size_t page = 0; page <= kMaxUploadsListed / page_size; ++page) {
    S3Request r = object_request("GET", "");
    r.query = {{"uploads", ""}, {"prefix", prefix}, {"max-uploads", std::to_string(page_size)}};
    if (!key_marker.empty()) r.query.emplace_back("key-marker", key_marker);
    if (!id_marker.empty()) r.query.emplace_back("upload-id-marker", id_marker);
    S3Response resp;
    S3Status st = perform(r, w, resp);
    if (!st.is_ok()) return st;
    auto doc = parse_xml(resp.body);
    if (!doc.is_ok() || doc->name != "ListMultipartUploadsResult") {
      return s3_error(ErrorKind::kOther, w + ": malformed answer", resp.http_status);
    }
    for (const XmlNode* n : doc->children_named("Upload")) {
      out.push_back({n->child_text("Key"), n->child_text("UploadId"), n->child_text("Initiated")});
    }
    if (doc->child_text("IsTruncated") != "true") return out;
    key_marker = doc->child_text("NextKeyMarker");
    id_marker = doc->child_text("NextUploadIdMarker");
    if (key_marker.empty()) return s3_error(ErrorKind::kOther, w + ": truncated without a marker");
  }
  return s3_error(ErrorKind::kOther, w + ": more than 10000 uploads listed");
}

}  // namespace recsync::objstore
