#include "retention/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "recsync/env.h"
#include "retention/plan.h"

namespace recsync {

std::string audit_json_line(const AuditRow& row) {
  nlohmann::ordered_json j;
  j["path"] = row.rel;
  j["size"] = row.size;
  j["hash"] = row.hash;
  j["rec_time"] = iso8601_utc_ms(row.rec_time_ms);
  j["deleted_at"] = iso8601_utc_ms(row.deleted_ms);
  j["policy"] = row.policy;
  // Invalid UTF-8 in a file name must not abort a prune: replace it.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
  for (const AuditRow& r : rows) {
    buf += audit_json_line(r);
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
