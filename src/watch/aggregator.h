#pragma once
// The debouncer (after Syncthing's lib/watchaggregator): decides when a spool
// file is finished, i.e. no write has been seen for `settle`. It never looks
// at the clock or the filesystem; the caller passes the time in (steady-clock
// milliseconds) and feeds it the watcher's raw events and the scanner's finds.
//
// Each pending path has one due time. take_due(now) hands out, in due order
// (ties in arming order), every path due at or before now and forgets them;
// a path written again later is simply armed again.
//
// Cost: O(log n) per call, O(k log n) for k paths taken; 100k pending paths
// are fine. Thread safety: none; use from one thread (the loop thread).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "recsync/units.h"

namespace recsync {

class Aggregator {
 public:
  // settle: quiet time after the last event before a path is due. Negative
  // values are treated as 0.
  explicit Aggregator(Millis settle);

  // Activity on rel at now (close-write, moved-in): (re)arms it to be due at
  // now + settle, replacing any earlier due time, so a later event pushes it
  // back.
  void on_event(const std::string& rel, int64_t now_ms);
  // A scan found rel, quiet until due_ms (typically mtime + settle, mapped to
  // the steady clock by the caller). If rel is already pending the later of
  // the two due times is kept: a scan never makes a just-written file due
  // early.
  void on_found(const std::string& rel, int64_t due_ms);
  // Removes and returns every path due at or before now, earliest first.
  std::vector<std::string> take_due(int64_t now_ms);
  // The earliest due time, or nullopt when nothing is pending (for a timer).
  std::optional<int64_t> next_due() const;
  size_t pending() const { return by_rel_.size(); }
  bool is_pending(const std::string& rel) const { return by_rel_.count(rel) != 0; }
  // Drops rel if pending (deleted, moved away, taken up by other means).
  void forget(const std::string& rel);
  // Applies to events from now on; already armed paths keep their due time.
  void set_settle(Millis settle);
  Millis settle() const { return Millis(settle_ms_); }

 private:
  using Index = std::multimap<int64_t, std::string>;
  void arm(const std::string& rel, int64_t due_ms, bool keep_later);

  int64_t settle_ms_;
  Index by_due_;  // due -> rel; equal keys keep arming order
  // Keys view the strings owned by by_due_ nodes (stable until erased).
  std::unordered_map<std::string_view, Index::iterator> by_rel_;
};

}  // namespace recsync
