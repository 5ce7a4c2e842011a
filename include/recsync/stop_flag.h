#pragma once
// A stop flag that sleepers can wait on: stop() sets it and wakes every
// sleep_for() at once, so a thread pacing itself or backing off stops within
// its next check instead of at the end of its sleep. Thread-safe.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace recsync {

class StopFlag {
 public:
  void stop() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }
  bool stopped() const { return stopped_.load(); }
  // Sleeps up to d; true when stopped (before or during the sleep).
  template <typename Rep, typename Period>
  bool sleep_for(std::chrono::duration<Rep, Period> d) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, d, [&] { return stopped_.load(); });
  }
  // The flag itself, for code that polls a std::atomic<bool> (the pruner).
  const std::atomic<bool>& flag() const { return stopped_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopped_{false};
};

}  // namespace recsync
