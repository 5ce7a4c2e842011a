#pragma once
// The deletion audit log: one JSON object per line, appended and fsynced
// before the files it names are deleted (write-ahead), so every deletion is
// on record even across a crash. A line whose file still exists means the
// deletion was interrupted or failed; the next pass writes it again.
//
//   {"path":"2024/05/01/a.wav","size":123,"hash":"...","rec_time":"2024-05-01T10:00:00.000Z",
//    "deleted_at":"2024-05-16T10:00:00.000Z","policy":"retention keep=15d"}
// An erasure adds why and who asked (uid -1: it came from a peer without one):
//   {...,"policy":"erase","reason":"GDPR request 12","uid":1000}
//
// Thread safety: one AuditLog per thread (the pruner owns it for one run).
#include <memory>
#include <string>
#include <vector>

#include "recsync/env.h"
#include "recsync/status.h"
#include "state/rows.h"

namespace recsync {

// The JSON line for one row, without the newline. Pure. Built by hand (no
// JSON object per line: a pass writes 100,000s of them), byte for byte what
// nlohmann::ordered_json with these fields in this order prints.
std::string audit_json_line(const AuditRow& row);
// The same, appended to out.
void append_audit_json_line(std::string& out, const AuditRow& row);

class AuditLog {
 public:
  // Opens path for appending through env (Env::open_append: created 0640, a
  // new file's folder fsynced), so fault injection reaches the audit log.
  static Result<AuditLog> open(Env* env, const std::string& path);

  // Writes all lines in one write and fsyncs; ok only when they are durable.
  Status append(const std::vector<AuditRow>& rows);

 private:
  explicit AuditLog(std::unique_ptr<File> f) : f_(std::move(f)) {}
  std::unique_ptr<File> f_;
};

}  // namespace recsync
