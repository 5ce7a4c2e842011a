#pragma once
// The scrub (SPEC 4.5): re-reads archived recordings and compares each with
// the hash and size stored when it was archived (state/recordings.h).
//
// Background passes: one every `interval` (0 = none), walking the archive
// index in (rec_time, id) order, paced by a token bucket at `rate` bytes/s
// (plan.h Pacer). The position is kept in the state database's meta table
// (scrub.cursor), so a pass stopped by a restart continues where it was.
// `recsync verify` starts a pass at once (unpaced with --now), or checks the
// named recordings (check_now()).
//
// A finding (corrupt, size, missing, unreadable) is logged, counted, listed
// in status (alarm "scrub") and, with `repair` on and peers configured,
// repaired through the backfill path (replication/repair_requests.h):
//   1. the finding, with a free hidden name in the copy's folder
//      (".recsync-bad.<name>"), is saved; then the bad copy is moved there
//      (rename without replacing; kept, never overwritten) and its row
//      removed, so the recording reads as absent here and the receiver
//      publishes the pulled copy at its place. A crash between the save and
//      the move is finished after the restart (settle_moved);
//   2. every peer is asked (PULL of the identity with its stored hash: a
//      peer whose copy has another hash answers "conflict" and sends
//      nothing); the receiver checks the whole-file hash before the rename,
//      so bytes that do not match the stored hash are never published;
//   3. when the recording is back with the stored hash, the scrubber reads it
//      again, then writes the audit line (policy "repair <kind>") and only
//      then deletes the bad copy; the finding is closed.
// Open findings are kept in meta (scrub.open) and asked for again every
// kRerequest and after a restart. Without peers, or with repair off, a
// finding is only alarmed: nothing is moved.
//
// Rows that change while being checked (pruned, moved by the placement
// rule, re-archived) are skipped, not reported; a missing file is confirmed
// after a running retention pass ends (set_pruning). Rows without a stored hash
// (adopted from an old archive) are skipped and counted.
//
// Threads: start() runs the scrub thread; every other call from any thread.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "recsync/env.h"
#include "recsync/log.h"
#include "recsync/stop_flag.h"
#include "recsync/units.h"
#include "replication/repair_requests.h"
#include "scrub/plan.h"
#include "state/store.h"

namespace recsync::scrub {

struct Settings {
  Millis interval{7LL * 24 * 3600 * 1000};  // 0 = no background passes
  uint64_t rate_bps = 20'000'000;           // 0 = unpaced
  bool repair = true;
  std::string audit_log_path;
};

// One damaged copy.
struct Finding {
  Kind kind = Kind::kOk;
  std::string rel;                       // where it was
  std::string origin, origin_rel, hash;  // identity (origin as stored)
  uint64_t size = 0;                     // stored size
  int64_t rec_time_ms = 0, found_ms = 0;
  std::string detail;  // what was read instead
  std::string aside;   // rel of the bad copy moved aside ("" = none)
  // "pending" (asked from the peers), "no peer", "off" (repair = false),
  // "failed: ..." (could not be moved aside), "repaired"
  std::string repair;
  std::map<std::string, std::string> answers;  // snapshot only: peer -> its PULL answer
};

struct Counts {
  uint64_t files = 0, bytes = 0, skipped = 0;
  uint64_t errors[kKinds] = {};
  uint64_t error_total() const;
};

struct Snapshot {
  bool running = false, unpaced = false;
  std::optional<int64_t> last_start_ms,
      last_end_ms;      // of the last finished pass (start of running)
  int64_t next_ms = 0;  // next background pass (0 = off)
  Counts pass;          // running pass, else the last one
  Counts totals;        // since the daemon started (metrics)
  uint64_t repairs_total = 0;
  uint64_t rate_bps = 0;
  int64_t interval_ms = 0;
  bool repair = true, peers = false;
  std::vector<Finding> open;  // not repaired yet (newest last, at most kMaxOpen)
};

class Scrubber {
 public:
  static constexpr size_t kMaxOpen = 1000;
  static constexpr int64_t kRerequestMs = 5 * 60 * 1000;

  // repairs: null on a single node (findings are only alarmed). All
  // pointers outlive the Scrubber.
  Scrubber(Env* env, StateStore* store, std::string archive_root, std::string node,
           replication::RepairRequests* repairs, Settings s);
  ~Scrubber();  // stop()s

  // Whether a retention pass is running now: a file it has just deleted may
  // still have its row until the batch ends, so a missing file is confirmed
  // only after the pass (bounded). Call before start().
  void set_pruning(std::function<bool()> pruning) { pruning_ = std::move(pruning); }
  void start();
  void stop();
  void set_settings(Settings s);

  // Starts a pass now (or keeps the running one); unpaced: at full speed.
  void start_pass(bool unpaced);
  // Checks the rows named (recording id or path) at once, unpaced, and
  // handles findings as a pass does. Any thread (not the loop: it reads).
  Result<std::vector<Finding>> check_now(const std::vector<std::string>& targets, size_t* checked);
  Snapshot snapshot();

 private:
  void run();
  void step_pass();
  Finding check(const RecordingRow& r, bool paced, uint64_t* bytes_read, bool* skipped);
  void handle(Finding f);
  void record_locked(const Finding& f);
  std::string aside_name(const Finding& f);
  Status move_aside(const Finding& f);
  void settle_moved(const Finding& f, const RecordingRow& row);
  void follow_repairs(bool rerequest_all);
  bool repaired(Finding& f);
  void save_open();
  void save_pass();
  void load();
  replication::RepairRef ref_of(const Finding& f) const;

  Env* env_;
  StateStore* store_;
  const std::string root_, node_;
  replication::RepairRequests* repairs_;
  std::function<bool()> pruning_;
  std::shared_ptr<spdlog::logger> lg_ = log::get("scrub");
  StopFlag stop_;
  std::thread thread_;

  std::mutex move_mu_;  // a copy moved aside by one thread at a time (before mu_)
  std::mutex mu_;       // everything below
  std::condition_variable cv_;
  Settings s_;
  Pacer pacer_;
  bool running_ = false, unpaced_ = false, start_requested_ = false;
  std::optional<Cursor> cursor_;
  std::optional<int64_t> last_start_ms_, last_end_ms_, pass_start_ms_;
  int64_t since_ms_ = 0;  // first start: the base of the first pass's due time
  Counts pass_, last_, totals_;
  uint64_t repairs_total_ = 0;
  std::vector<Finding> open_;
  std::map<std::string, int64_t> asked_ms_;  // identity key -> last request
};

}  // namespace recsync::scrub
