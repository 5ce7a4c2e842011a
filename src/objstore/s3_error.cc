#include "objstore/s3_error.h"

#include <algorithm>
#include <cctype>

namespace recsync::objstore {

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kNone:
      return "none";
    case ErrorKind::kAuth:
      return "auth";
    case ErrorKind::kLocked:
      return "locked";
    case ErrorKind::kBadDigest:
      return "bad_digest";
    case ErrorKind::kQuota:
      return "quota";
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kNetwork:
      return "network";
    case ErrorKind::kServer:
      return "server";
    case ErrorKind::kAborted:
      return "aborted";
    case ErrorKind::kLocal:
      return "local";
    case ErrorKind::kOther:
      return "other";
  }
  return "other";
}

namespace {

bool contains_nocase(std::string_view hay, std::string_view needle) {
  auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  });
  return it != hay.end();
}

}  // namespace

ErrorKind classify_s3_error(int http, std::string_view code, std::string_view message) {
  // RGW says "forbidden by object lock", AWS "Access Denied because object
  // protected by object lock": both a 403 AccessDenied that is not about keys.
  if (http == 403 && contains_nocase(message, "object lock")) return ErrorKind::kLocked;
  static constexpr std::pair<std::string_view, ErrorKind> kCodes[] = {
      {"AccessDenied", ErrorKind::kAuth},
      {"InvalidAccessKeyId", ErrorKind::kAuth},
      {"SignatureDoesNotMatch", ErrorKind::kAuth},
      {"RequestTimeTooSkewed", ErrorKind::kAuth},
      {"ExpiredToken", ErrorKind::kAuth},
      {"InvalidToken", ErrorKind::kAuth},
      {"AuthorizationHeaderMalformed", ErrorKind::kAuth},
      {"UserSuspended", ErrorKind::kAuth},
      {"BadDigest", ErrorKind::kBadDigest},
      {"InvalidDigest", ErrorKind::kBadDigest},
      {"XAmzContentSHA256Mismatch", ErrorKind::kBadDigest},
      {"QuotaExceeded", ErrorKind::kQuota},
      {"TooManyBuckets", ErrorKind::kQuota},
      {"EntityTooLarge", ErrorKind::kQuota},
      {"NoSuchKey", ErrorKind::kNotFound},
      {"NoSuchUpload", ErrorKind::kNotFound},
      {"NoSuchBucket", ErrorKind::kNotFound},
      {"NoSuchVersion", ErrorKind::kNotFound},
  };
  for (const auto& [c, k] : kCodes) {
    if (code == c) return k;
  }
  if (http == 507) return ErrorKind::kQuota;
  if (http >= 500) return ErrorKind::kServer;
  if (http == 401 || http == 403) return ErrorKind::kAuth;
  if (http == 404) return ErrorKind::kNotFound;
  return ErrorKind::kOther;
}

S3Status s3_error(ErrorKind kind, std::string message, int http_status, std::string s3_code) {
  Status st;
  switch (kind) {
    case ErrorKind::kNone:
      return S3Status::ok();
    case ErrorKind::kAuth:
    case ErrorKind::kLocked:
      st = Status::refused(std::move(message));
      break;
    case ErrorKind::kBadDigest:
      st = Status::corrupt(std::move(message));
      break;
    case ErrorKind::kQuota:
      st = Status::from_errno(EDQUOT, std::move(message));
      break;
    case ErrorKind::kNotFound:
      st = Status::not_found(std::move(message));
      break;
    case ErrorKind::kServer:
    case ErrorKind::kAborted:
      st = Status::busy(std::move(message));
      break;
    default:
      st = Status::io(std::move(message));
      break;
  }
  return S3Status(kind, std::move(st), http_status, std::move(s3_code));
}

}  // namespace recsync::objstore
