#pragma once
// Which replication cap is in force, and why (SPEC 4.2: a cap, "0" for none,
// changeable at runtime, optionally by time of day). The decision is a pure
// function of the settings and the local minute of the day; BandwidthControl
// applies it to the Governor (the one owner of the cap in force) when it
// changes, logging the change once.
//
// Threads: apply()/reload() from the owner thread (the daemon's loop, every
// second and on SIGHUP); state() from any thread.
#include <cstdint>
#include <mutex>
#include <string>

#include "recsync/clock.h"
#include "recsync/schedule.h"
#include "replication/governor.h"

namespace recsync::replication {

struct BandwidthSettings {
  uint64_t bandwidth_bps = 50'000'000;  // replication.bandwidth; 0 = no cap
  Schedule schedule;                    // replication.schedule; empty = none
  std::string schedule_text;            // as written, for status and logs
};

struct BandwidthState {
  uint64_t cap_bps = 0;  // in force; 0 = no cap
  std::string source;    // "config" or "schedule"
};

// The cap for local minute of the day `minute` (0..1439).
BandwidthState bandwidth_at(const BandwidthSettings& s, int minute);

class BandwidthControl {
 public:
  // gov: the node's governor; must outlive this.
  BandwidthControl(Governor* gov, BandwidthSettings s);

  // Recomputes the cap for local time `now`; sets it on the governor and
  // logs it (prefixed with `why`) when it changed.
  void apply(WallTime now, const char* why);
  void reload(BandwidthSettings s, WallTime now);
  BandwidthState state() const;
  BandwidthSettings settings() const;

 private:
  Governor* gov_;
  mutable std::mutex mu_;
  BandwidthSettings settings_;
  BandwidthState state_;
};

}  // namespace recsync::replication
