#pragma once
// The uploader's status, the one owner of it: what it is doing, counters
// since start, the last success and the errors by kind. The uploader thread
// writes it; status readers take snapshot() from any thread (own lock).
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "objstore/s3_error.h"

namespace recsync::objtier {

struct UploadInFlight {
  std::string rel;
  uint64_t size = 0;
  uint64_t sent = 0;  // body bytes handed to the network for it
  int64_t started_ms = 0;
};

struct UploadSnapshot {
  // "starting", "idle", "uploading", "backoff" (the store failed; retrying),
  // "refused" (the store refused our credentials), "stopped".
  std::string state = "starting";
  uint64_t uploaded_files = 0, uploaded_bytes = 0;  // verified since start
  uint64_t present_files = 0;         // already in the store with the same content: not sent again
  uint64_t sent_bytes = 0;            // object bodies sent (resends included)
  uint64_t parts_reused = 0;          // multipart parts found stored when resuming
  uint64_t peer_copies_verified = 0;  // copies from peers found in the store
  uint64_t legal_holds_set = 0, legal_holds_released = 0;
  uint64_t conflicts = 0;  // the key holds other content: not overwritten
  uint64_t rate_bps = 0;   // body bytes per second over the last ~5 s
  int64_t last_success_ms = 0;
  std::string last_error, last_error_kind;
  int64_t last_error_ms = 0;
  std::map<std::string, uint64_t> errors;   // by error kind name ("auth", "network", ...)
  std::optional<UploadInFlight> in_flight;  // the oldest upload in flight
  uint64_t in_flight_count = 0;             // uploads in flight (one per upload worker)
};

class UploadBoard {
 public:
  void set_state(const std::string& s);
  // Nothing to upload: "idle", unless the store is refusing or failing.
  void idle();
  void begin(const std::string& rel, uint64_t size, int64_t now_ms);
  void end(const std::string& rel);
  void add_sent(const std::string& rel, uint64_t n);
  void uploaded(uint64_t bytes, int64_t now_ms, bool was_present);
  void parts_reused(uint64_t n);
  void peer_copy_verified();
  void legal_hold(bool on);
  void conflict();
  // Counts an error of kind `kind` (error_kind_name(), or "conflict",
  // "verify", "local").
  void error(const std::string& kind, const std::string& text, int64_t now_ms);
  // A store call succeeded: the store is reachable and takes our keys.
  void store_ok(int64_t now_ms);
  UploadSnapshot snapshot(int64_t steady_ns);

 private:
  mutable std::mutex mu_;
  UploadSnapshot s_;  // in_flight unused here: see flights_
  std::map<std::string, UploadInFlight> flights_;
  std::deque<std::pair<int64_t, uint64_t>> samples_;  // (steady ns, sent_bytes)
};

}  // namespace recsync::objtier
