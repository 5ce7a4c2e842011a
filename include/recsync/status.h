#pragma once
// Errors as values (after leveldb::Status). A Status is OK or carries a code,
// the errno it came from (0 when none) and a message with context (path, peer).
// Exceptions never cross a component boundary: convert at the edge.
#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace recsync {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk,
    kInvalid,
    kNotFound,
    kIo,
    kNoSpace,
    kExists,
    kBusy,
    kRefused,
    kCorrupt,
    kConflict,  // two different contents under one identity (placement.h)
  };

  Status() = default;
  static Status ok() { return {}; }
  static Status invalid(std::string m) { return {Code::kInvalid, 0, std::move(m)}; }
  static Status not_found(std::string m) { return {Code::kNotFound, ENOENT, std::move(m)}; }
  static Status busy(std::string m) { return {Code::kBusy, EBUSY, std::move(m)}; }
  static Status refused(std::string m) { return {Code::kRefused, EACCES, std::move(m)}; }
  static Status corrupt(std::string m) { return {Code::kCorrupt, 0, std::move(m)}; }
  static Status conflict(std::string m) { return {Code::kConflict, EEXIST, std::move(m)}; }
  static Status io(std::string m, int err = EIO) { return {Code::kIo, err, std::move(m)}; }
  // Maps an errno to the right code: ENOSPC/EDQUOT -> kNoSpace, ENOENT ->
  // kNotFound, EEXIST -> kExists, the rest -> kIo. Message is "what: strerror".
  static Status from_errno(int err, const std::string& what);

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  int err() const { return err_; }
  const std::string& message() const { return msg_; }
  std::string to_string() const { return is_ok() ? "OK" : msg_; }
  // Returns a copy with "context: " prefixed to the message.
  Status with_context(const std::string& context) const {
    return is_ok() ? *this : Status(code_, err_, context + ": " + msg_);
  }

 private:
  Status(Code c, int e, std::string m) : code_(c), err_(e), msg_(std::move(m)) {}
  Code code_ = Code::kOk;
  int err_ = 0;
  std::string msg_;
};

// A value or the Status that explains its absence.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}
  Result(Status s) : v_(std::move(s)) {}
  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Status> v_;
};

#define RECSYNC_RETURN_IF_ERROR(expr) \
  do {                                \
    ::recsync::Status _st = (expr);   \
    if (!_st.is_ok()) return _st;     \
  } while (0)

}  // namespace recsync
