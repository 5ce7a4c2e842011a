#include "objtier/upload_board.h"

namespace recsync::objtier {

void UploadBoard::set_state(const std::string& st) {
  std::lock_guard<std::mutex> l(mu_);
  s_.state = st;
}

void UploadBoard::idle() {
  std::lock_guard<std::mutex> l(mu_);
  if ((s_.state == "uploading" && flights_.empty()) || s_.state == "starting") s_.state = "idle";
}

void UploadBoard::begin(const std::string& rel, uint64_t size, int64_t now_ms) {
  std::lock_guard<std::mutex> l(mu_);
  flights_[rel] = UploadInFlight{rel, size, 0, now_ms};
  if (s_.state != "refused" && s_.state != "backoff") s_.state = "uploading";
}

void UploadBoard::end(const std::string& rel) {
  std::lock_guard<std::mutex> l(mu_);
  flights_.erase(rel);
}

void UploadBoard::add_sent(const std::string& rel, uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  s_.sent_bytes += n;
  auto it = flights_.find(rel);
  if (it != flights_.end()) it->second.sent += n;
}

void UploadBoard::uploaded(uint64_t bytes, int64_t now_ms, bool was_present) {
  std::lock_guard<std::mutex> l(mu_);
  (was_present ? s_.present_files : s_.uploaded_files)++;
  if (!was_present) s_.uploaded_bytes += bytes;
  s_.last_success_ms = now_ms;
}

void UploadBoard::parts_reused(uint64_t n) {
  std::lock_guard<std::mutex> l(mu_);
  s_.parts_reused += n;
}

void UploadBoard::peer_copy_verified() {
  std::lock_guard<std::mutex> l(mu_);
  s_.peer_copies_verified++;
}

void UploadBoard::legal_hold(bool on) {
  std::lock_guard<std::mutex> l(mu_);
  (on ? s_.legal_holds_set : s_.legal_holds_released)++;
}

void UploadBoard::conflict() {
  std::lock_guard<std::mutex> l(mu_);
  s_.conflicts++;
}

void UploadBoard::error(const std::string& kind, const std::string& text, int64_t now_ms) {
  std::lock_guard<std::mutex> l(mu_);
  s_.errors[kind]++;
  s_.last_error = text;
  s_.last_error_kind = kind;
  s_.last_error_ms = now_ms;
  if (kind == "auth") s_.state = "refused";
}

void UploadBoard::store_ok(int64_t) {
  std::lock_guard<std::mutex> l(mu_);
  if (s_.state == "refused" || s_.state == "backoff")
    s_.state = flights_.empty() ? "idle" : "uploading";
}

UploadSnapshot UploadBoard::snapshot(int64_t now_ns) {
  std::lock_guard<std::mutex> l(mu_);
  // The rate over the last ~5 s of samples taken at snapshot calls.
  samples_.emplace_back(now_ns, s_.sent_bytes);
  while (samples_.size() > 2 && now_ns - samples_[1].first >= 5'000'000'000) samples_.pop_front();
  const auto& [t0, b0] = samples_.front();
  s_.rate_bps = now_ns - t0 > 200'000'000
                    ? static_cast<uint64_t>(double(s_.sent_bytes - b0) * 1e9 / double(now_ns - t0))
                    : 0;
  UploadSnapshot out = s_;
  out.in_flight_count = flights_.size();
  for (const auto& [rel, f] : flights_)
    if (!out.in_flight || f.started_ms < out.in_flight->started_ms) out.in_flight = f;
  return out;
}

}  // namespace recsync::objtier
