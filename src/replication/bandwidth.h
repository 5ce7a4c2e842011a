#pragma once
// Which replication cap is in force, and why (SPEC 4.2: a cap, "0" for none,
// changeable at runtime by SIGHUP or the CLI, optionally by time of day).
//
// Precedence (pure: bandwidth_at()): an operator's override (`recsync
// bandwidth RATE [--for D]`) while it lasts, else the schedule's rate for the
// local minute of the day, else replication.bandwidth. An override with an
// end time ends by itself at that time (the daemon's 1-s tick calls apply());
// one without lasts until cleared. A reload (SIGHUP) replaces the settings
// and keeps the override; a restart forgets it (it is not stored).
//
// BandwidthControl applies the decision to the Governor (the one owner of the
// cap in force) when the cap changes. Every change is logged once (logger
// "replication"); an override set, cleared or expired is logged as an audit
// line with who (uid from the control socket), the old and new cap and the
// end time.
//
// Threads: apply()/reload()/set_override()/clear_override() from the owner
// thread (the daemon's loop); state() and settings() from any thread.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "recsync/clock.h"
#include "recsync/schedule.h"
#include "recsync/units.h"
#include "replication/governor.h"

namespace recsync::replication {

struct BandwidthSettings {
  uint64_t bandwidth_bps = 50'000'000;  // replication.bandwidth; 0 = no cap
  Schedule schedule;                    // replication.schedule; empty = none
  std::string schedule_text;            // as written, for status and logs
};

// An operator's cap, set through the control socket.
struct BandwidthOverride {
  uint64_t cap_bps = 0;  // 0 = no cap
  uint32_t uid = 0;      // who set it (SO_PEERCRED of the control connection)
  int64_t set_ms = 0;    // wall
  int64_t until_ms = 0;  // wall; 0 = until cleared
};

// Whether an override has reached its end time at wall ms now_ms.
inline bool override_expired(const BandwidthOverride& o, int64_t now_ms) {
  return o.until_ms != 0 && now_ms >= o.until_ms;
}

struct BandwidthState {
  uint64_t cap_bps = 0;  // in force; 0 = no cap
  std::string source;    // "config", "schedule" or "override"
  // What config and schedule say: the cap once an override ends.
  uint64_t base_bps = 0;
  std::string base_source;  // "config" or "schedule"
  std::optional<BandwidthOverride> override_in_force;
};

// The cap for local minute of the day `minute` (0..1439) and wall ms now_ms,
// with an override (ignored once expired).
BandwidthState bandwidth_at(const BandwidthSettings& s, int minute,
                            const std::optional<BandwidthOverride>& o = std::nullopt,
                            int64_t now_ms = 0);

// The local minute of the day (0..1439) of a wall time.
int local_minute(WallTime t);

class BandwidthControl {
 public:
  // gov: the node's governor; must outlive this.
  BandwidthControl(Governor* gov, BandwidthSettings s);

  // Recomputes the cap for local time `now` (an expired override ends here,
  // logged); sets it on the governor and logs it (prefixed with `why`) when
  // it changed.
  void apply(WallTime now, const char* why);
  // New settings (SIGHUP); the override, if any, stays.
  void reload(BandwidthSettings s, WallTime now);
  // Sets (or replaces) the override from now: cap_bps (0 = no cap) for
  // `duration` (0 = until cleared), by uid. Applied at once; audited.
  // Returns the state after.
  BandwidthState set_override(uint64_t cap_bps, Millis duration, uint32_t uid, WallTime now);
  // Ends the override now (audited, by uid). False when none was in force.
  bool clear_override(uint32_t uid, WallTime now);

  BandwidthState state() const;
  BandwidthSettings settings() const;

 private:
  // Decides with the lock held; returns the state before.
  BandwidthState decide_locked(WallTime now);
  void push(const BandwidthState& before, const BandwidthState& after, const std::string& line);

  Governor* gov_;
  mutable std::mutex mu_;
  BandwidthSettings settings_;
  std::optional<BandwidthOverride> override_;
  BandwidthState state_;
};

}  // namespace recsync::replication
