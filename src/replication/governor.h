#pragma once
// The global bandwidth governor (SPEC 4.2): one token bucket over every byte
// sent to every peer. Pure arithmetic: the caller passes the time (steady
// clock, nanoseconds), so tests drive it with a fake clock and the daemon
// with uv_hrtime().
//
// Accuracy: a saturated sender gets `rate` bytes per second on average and,
// in any window of T seconds, at most rate*T + burst bytes. With the default
// burst (default_burst(): 20 ms of traffic) every 1-second window of a
// backlog stays within +-2% of the cap, where rsync --bwlimit bursts a
// whole 100 ms block at a time.
//
// Priorities: live recordings go first; retries and backfill (kBulk) use what
// is left. A sender that has bytes to send but was told to wait registers as
// a waiter (Governor::Waiter, RAII); while any kLive waiter exists, kBulk
// grants are 0, so the tokens that accumulate go to live traffic. A live
// sender that is idle holds no Waiter and takes nothing.
//
// Rate 0 means unlimited: grant() returns what was asked, at once.
//
// Thread safety: all methods may be called from any thread (internal mutex).
#include <cstdint>
#include <mutex>

namespace recsync::replication {

enum class Priority { kLive, kBulk };

// Bucket size used when the caller gives none: 20 ms at `rate`, at least
// 4 KiB (so tiny rates still move a frame header); 0 for rate 0.
uint64_t default_burst(uint64_t rate_bps);

class Governor {
 public:
  // rate_bps: bytes per second, 0 = unlimited. burst_bytes: bucket size, 0 =
  // default_burst(rate_bps). The bucket starts full at time `now_ns`.
  Governor(uint64_t rate_bps, uint64_t burst_bytes, int64_t now_ns = 0);

  // Changes the cap at runtime (SIGHUP, CLI, schedule). Tokens earned so far
  // are kept, up to the new bucket size; the new rate applies from now_ns.
  void set_rate(uint64_t rate_bps, uint64_t burst_bytes, int64_t now_ns);
  uint64_t rate() const;
  uint64_t burst() const;

  // Bytes the caller may send now: min(want, tokens), possibly 0. The caller
  // must send (or count as sent) exactly what it was granted. kBulk gets 0
  // while a kLive waiter is registered.
  uint64_t grant(Priority p, uint64_t want, int64_t now_ns);

  // When (steady ns, >= now_ns) a grant(p, want) will return at least
  // min(want, burst) bytes, assuming nobody else takes tokens meanwhile. For
  // kBulk held back by a live waiter: now + the time to refill the bucket
  // (re-ask then). Unlimited: now_ns.
  int64_t next_available(Priority p, uint64_t want, int64_t now_ns);

  // Registers a sender with pending bytes at priority p (see file comment).
  // Unregisters in its destructor. Must not outlive the Governor.
  class Waiter {
   public:
    Waiter(Governor* g, Priority p);
    ~Waiter();
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

   private:
    Governor* g_;
    Priority p_;
  };
  int waiters(Priority p) const;

  // Total bytes granted since construction, per priority (status, tests).
  uint64_t granted(Priority p) const;

 private:
  void refill_locked(int64_t now_ns);
  mutable std::mutex mu_;
  uint64_t rate_;
  uint64_t burst_;
  // Tokens in byte-nanoseconds (bytes * 1e9), so refills are exact integer
  // arithmetic: elapsed_ns * rate.
  unsigned __int128 tokens_;
  int64_t last_ns_;
  int live_waiters_ = 0;
  int bulk_waiters_ = 0;
  uint64_t granted_live_ = 0;
  uint64_t granted_bulk_ = 0;
};

}  // namespace recsync::replication
