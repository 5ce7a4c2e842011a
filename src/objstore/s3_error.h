#pragma once
// Outcome of an S3 call: a Status (message with the operation, bucket and
// key; never a credential) plus the kind of failure the daemon counts and
// alarms on, the HTTP status and the S3 error code when the server sent one.
//
// Kinds (classify_s3_error() is the whole mapping):
//   kAuth       AccessDenied, InvalidAccessKeyId, SignatureDoesNotMatch,
//               RequestTimeTooSkewed, other 401/403 answers
//   kLocked     a 403 refusal because Object Lock protects the object (legal
//               hold or retention): not a credentials problem
//   kBadDigest  BadDigest, InvalidDigest, XAmzContentSHA256Mismatch
//   kQuota      QuotaExceeded, TooManyBuckets, EntityTooLarge (507 too)
//   kNotFound   NoSuchKey, NoSuchUpload, NoSuchBucket, NoSuchVersion, other 404
//   kNetwork    curl transport errors: connect, TLS, timeouts, resets
//   kServer     any other 5xx (500, 503 SlowDown, ...)
//   kAborted    the upload pacer said stop (not the store's fault)
//   kLocal      the local file could not be read or written
//   kOther      everything else (bad request, malformed answer, ...)
// Status codes follow: kAuth/kLocked -> kRefused, kBadDigest -> kCorrupt,
// kQuota -> kNoSpace, kNotFound -> kNotFound, kAborted/kServer -> kBusy,
// kLocal keeps its errno's code, the rest -> kIo.
//
// Thread safety: plain values.
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "recsync/status.h"

namespace recsync::objstore {

enum class ErrorKind {
  kNone,
  kAuth,
  kLocked,
  kBadDigest,
  kQuota,
  kNotFound,
  kNetwork,
  kServer,
  kAborted,
  kLocal,
  kOther
};
// "auth", "locked", "bad_digest", ... ("none" for kNone): metric labels.
const char* error_kind_name(ErrorKind k);

// The kind for an HTTP error answer (status >= 300) with the S3 error code
// and message from its body (both may be empty, e.g. for HEAD).
ErrorKind classify_s3_error(int http_status, std::string_view code, std::string_view message);

class [[nodiscard]] S3Status {
 public:
  S3Status() = default;
  static S3Status ok() { return {}; }
  // http_status 0 when no answer was received.
  S3Status(ErrorKind kind, Status status, int http_status = 0, std::string s3_code = "")
      : kind_(kind), status_(std::move(status)), http_(http_status), code_(std::move(s3_code)) {}

  bool is_ok() const { return kind_ == ErrorKind::kNone; }
  explicit operator bool() const { return is_ok(); }
  ErrorKind kind() const { return kind_; }
  const Status& status() const { return status_; }
  const std::string& message() const { return status_.message(); }
  int http_status() const { return http_; }
  const std::string& s3_code() const { return code_; }
  std::string to_string() const { return status_.to_string(); }

 private:
  ErrorKind kind_ = ErrorKind::kNone;
  Status status_;
  int http_ = 0;
  std::string code_;
};

// A value or the S3Status that explains its absence.
template <typename T>
class [[nodiscard]] S3Result {
 public:
  S3Result(T v) : v_(std::move(v)) {}
  S3Result(S3Status s) : v_(std::move(s)) {}
  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const S3Status& status() const {
    static const S3Status kOk;
    return is_ok() ? kOk : std::get<S3Status>(v_);
  }
  ErrorKind kind() const { return status().kind(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, S3Status> v_;
};

// An S3Status of kind, with a Status whose code follows the table above.
S3Status s3_error(ErrorKind kind, std::string message, int http_status = 0,
                  std::string s3_code = "");

}  // namespace recsync::objstore
