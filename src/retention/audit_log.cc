#include "retention/audit_log.h"

#include <nlohmann/json.hpp>

#include "recsync/clock.h"

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
  // An erasure (policy "erase") says why and who asked.
  if (!row.reason.empty() || row.uid >= 0) {
    out += ",\"reason\":";
    append_json_string(out, row.reason);
    out += ",\"uid\":";
    out += std::to_string(row.uid);
  }
  out += '}';
}

std::string audit_json_line(const AuditRow& row) {
  std::string out;
  append_audit_json_line(out, row);
  return out;
}

Result<AuditLog> AuditLog::open(Env* env, const std::string& path) {
  auto f = env->open_append(path, 0640);
  if (!f) return f.status().with_context("audit log");
  return AuditLog(std::move(f).value());
}

Status AuditLog::append(const std::vector<AuditRow>& rows) {
  if (rows.empty()) return Status::ok();
  std::string buf;
  buf.reserve(rows.size() * 200);
  for (const AuditRow& r : rows) {
    append_audit_json_line(buf, r);
    buf += '\n';
  }
  RECSYNC_RETURN_IF_ERROR(f_->write_all(buf.data(), buf.size()).with_context("audit log"));
  return f_->sync().with_context("audit log");
}

}  // namespace recsync
