#include "recsync/status.h"

#include <cstring>

namespace recsync {

Status Status::from_errno(int err, const std::string& what) {
  std::string m = what + ": " + std::strerror(err);
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return Status(Code::kNoSpace, err, std::move(m));
    case ENOENT:
      return Status(Code::kNotFound, err, std::move(m));
    case EEXIST:
      return Status(Code::kExists, err, std::move(m));
    case EACCES:
    case EPERM:
      return Status(Code::kRefused, err, std::move(m));
    case EAGAIN:
    case EBUSY:
      return Status(Code::kBusy, err, std::move(m));
    default:
      return Status(Code::kIo, err, std::move(m));
  }
}

}  // namespace recsync
