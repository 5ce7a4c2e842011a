#include "retention/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "recsync/env.h"
#include "retention/plan.h"

namespace recsync {

namespace {

// Appends s as a JSON string. Plain printable ASCII (every name recsync
// writes) is copied as is; anything else goes through nlohmann, which
// escapes control characters and replaces invalid UTF-8 with U+FFFD, so the
// output is the same as a full nlohmann dump either way.
void append_json_string(std::string& out, const std::string& s) {
  bool plain = true;
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void append_audit_json_line(std::string& out, const AuditRow& row) {
  // Field order and format as nlohmann::ordered_json would print them.
  out += "{\"path\":";
  append_json_string(out, row.rel);
  out += ",\"size\":";
  out += std::to_string(row.size);
  out += ",\"hash\":";
  append_json_string(out, row.hash);
  out += ",\"rec_time\":\"";
  out += iso8601_utc_ms(row.rec_time_ms);
  out += "\",\"deleted_at\":\"";
  out += iso8601_utc_ms(row.deleted_ms);
  out += "\",\"policy\":";
  append_json_string(out, row.policy);
  out += '}';
}

std::string audit_json_line(const AuditRow& row) {
  std::string out;
  append_audit_json_line(out, row);
  return out;
}

Result<AuditLog> AuditLog::open(const std::string& path) {
  bool existed = ::access(path.c_str(), F_OK) == 0;
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return Status::from_errno(errno, "open audit log " + path);
  AuditLog log(fd, path);
  if (!existed) {
    int dfd = ::open(path_dirname(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
  return log;
}

AuditLog::AuditLog(AuditLog&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }

AuditLog::~AuditLog() {
  if (fd_ >= 0) ::close(fd_);
}

Status AuditLog::append(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return Status::ok();
  std::string buf;
  buf.reserve(rows.size() * 200);
  for (const AuditRow& r : rows) {
    append_audit_json_line(buf, r);
    buf += '\n';
  }
  const char* p = buf.data();
  size_t n = buf.size();
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno(errno, "write audit log " + path_);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (::fsync(fd_) != 0) return Status::from_errno(errno, "fsync audit log " + path_);
  return Status::ok();
}

}  // namespace recsync
