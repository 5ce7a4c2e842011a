#pragma once
// How many bytes of archived recordings may sit in the page cache waiting for
// the peer senders (SPEC 4.2, 4.3). The archiver leaves a recording queued
// for peers in the page cache after its verify only if take() grants its
// size (one share per peer), so the sender reads it from memory; a sender
// gives its share back once it has read the recording and dropped its pages.
// Past the limit (a backlog: a peer down for hours, a burst of finished
// calls) the archiver drops the pages like any other file and the sender
// reads from disk: the page cache is not filled with gigabytes of backlog,
// and the pages the archiver drops are reused warm by the next copy.
//
// Approximate by design: a share given back for a recording that was not
// kept (after a restart, or past the limit) only makes room earlier; used()
// never goes below 0 and take() never grants past the limit. Thread-safe.
#include <atomic>
#include <cstdint>

namespace recsync {

class PageBudget {
 public:
  // Default limit: 256 MiB, a few seconds of sending at any usual cap and
  // more than the few recordings a sender is behind in steady state.
  static constexpr uint64_t kDefaultLimit = 256ull << 20;
  explicit PageBudget(uint64_t limit = kDefaultLimit) : limit_(limit) {}

  // Counts n and returns true if used() + n fits the limit; else false.
  bool take(uint64_t n) {
    uint64_t cur = used_.load(std::memory_order_relaxed);
    do {
      if (n > limit_ || cur > limit_ - n) return false;
    } while (!used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
    return true;
  }
  void give_back(uint64_t n) {
    uint64_t cur = used_.load(std::memory_order_relaxed);
    while (!used_.compare_exchange_weak(cur, cur > n ? cur - n : 0, std::memory_order_relaxed)) {
    }
  }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t limit() const { return limit_; }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> used_{0};
};

}  // namespace recsync
