#pragma once
// The one exponential backoff with jitter (archive retries, peer reconnects,
// per-recording transfer retries all use it): the n-th wait is
// floor * 2^n, capped at cap, plus a uniform jitter of up to `jitter` of it
// (0.25 = up to 25 % more), so many waiters do not retry in lock step.
// Pure apart from the random source, which the caller owns (one per thread).
#include <algorithm>
#include <cstdint>
#include <random>

namespace recsync {

struct Backoff {
  int64_t floor_ms;
  int64_t cap_ms;
  double jitter = 0.25;

  // The wait before attempt n+1 after n failures (n = 0: the first retry).
  // Without jitter: min(floor << n, cap).
  int64_t base_ms(int n) const {
    int64_t d = floor_ms;
    for (int i = 0; i < n && d < cap_ms; ++i) d *= 2;
    return std::min(d, cap_ms);
  }
  template <typename Rng>
  int64_t delay_ms(int n, Rng& rng) const {
    const int64_t d = base_ms(n);
    const auto extra = static_cast<int64_t>(static_cast<double>(d) * jitter);
    if (extra <= 0) return d;
    return d + std::uniform_int_distribution<int64_t>(0, extra)(rng);
  }
};

}  // namespace recsync
