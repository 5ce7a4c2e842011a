#pragma once
// A doorbell: producers ring() when there is new work; a consumer remembers
// the count it last saw and waits until it changes (or a timeout), so a ring
// between the consumer's look at its work and its wait is never lost. Used
// by the replication queue to wake the peer senders, and by stop() paths to
// wake every waiter at once. Thread-safe; any thread.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace recsync {

class Doorbell {
 public:
  void ring() {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++count_;
    }
    cv_.notify_all();
  }
  uint64_t count() const {
    std::lock_guard<std::mutex> l(mu_);
    return count_;
  }
  // Waits until count() != seen or the timeout passes; returns count().
  template <typename Rep, typename Period>
  uint64_t wait_for(uint64_t seen, std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, timeout, [&] { return count_ != seen; });
    return count_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t count_ = 0;
};

}  // namespace recsync
