#include "replication/governor.h"

#include <algorithm>

namespace recsync::replication {
namespace {

using U128 = unsigned __int128;
constexpr uint64_t kNsPerSec = 1'000'000'000;
constexpr uint64_t kMinBurst = 4096;

}  // namespace

uint64_t default_burst(uint64_t rate_bps) {
  if (rate_bps == 0) return 0;
  return std::max<uint64_t>(rate_bps / 50, kMinBurst);
}

Governor::Governor(uint64_t rate_bps, uint64_t burst_bytes, int64_t now_ns)
    : rate_(rate_bps),
      burst_(burst_bytes ? burst_bytes : default_burst(rate_bps)),
      tokens_(U128(burst_) * kNsPerSec),
      last_ns_(now_ns) {}

void Governor::refill_locked(int64_t now_ns) {
  if (now_ns <= last_ns_) return;  // a clock that goes back earns nothing
  const U128 cap = U128(burst_) * kNsPerSec;
  tokens_ = std::min<U128>(cap, tokens_ + U128(uint64_t(now_ns - last_ns_)) * rate_);
  last_ns_ = now_ns;
}

void Governor::set_rate(uint64_t rate_bps, uint64_t burst_bytes, int64_t now_ns) {
  std::lock_guard<std::mutex> l(mu_);
  refill_locked(now_ns);
  last_ns_ = std::max(last_ns_, now_ns);
  rate_ = rate_bps;
  burst_ = burst_bytes ? burst_bytes : default_burst(rate_bps);
  tokens_ = std::min<U128>(tokens_, U128(burst_) * kNsPerSec);
}

uint64_t Governor::rate() const {
  std::lock_guard<std::mutex> l(mu_);
  return rate_;
}

uint64_t Governor::burst() const {
  std::lock_guard<std::mutex> l(mu_);
  return burst_;
}

uint64_t Governor::grant(Priority p, uint64_t want, int64_t now_ns) {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t n = 0;
  if (rate_ == 0) {
    n = want;
  } else if (p == Priority::kLive || live_waiters_ == 0) {
    refill_locked(now_ns);
    n = static_cast<uint64_t>(std::min<U128>(want, tokens_ / kNsPerSec));
    tokens_ -= U128(n) * kNsPerSec;
  }
  (p == Priority::kLive ? granted_live_ : granted_bulk_) += n;
  return n;
}

int64_t Governor::next_available(Priority p, uint64_t want, int64_t now_ns) {
  std::lock_guard<std::mutex> l(mu_);
  if (rate_ == 0 || want == 0) return now_ns;
  refill_locked(now_ns);
  const int64_t base = std::max(now_ns, last_ns_);
  auto ns_for = [this](U128 need) {  // ceil(need / rate), need in byte-ns
    return static_cast<int64_t>((need + rate_ - 1) / rate_);
  };
  if (p == Priority::kBulk && live_waiters_ > 0)
    return base + std::max<int64_t>(1, ns_for(U128(burst_) * kNsPerSec));
  const U128 need = U128(std::min(want, burst_)) * kNsPerSec;
  if (tokens_ >= need) return base;
  return base + ns_for(need - tokens_);
}

Governor::Waiter::Waiter(Governor* g, Priority p) : g_(g), p_(p) {
  std::lock_guard<std::mutex> l(g_->mu_);
  ++(p_ == Priority::kLive ? g_->live_waiters_ : g_->bulk_waiters_);
}

Governor::Waiter::~Waiter() {
  std::lock_guard<std::mutex> l(g_->mu_);
  --(p_ == Priority::kLive ? g_->live_waiters_ : g_->bulk_waiters_);
}

int Governor::waiters(Priority p) const {
  std::lock_guard<std::mutex> l(mu_);
  return p == Priority::kLive ? live_waiters_ : bulk_waiters_;
}

uint64_t Governor::granted(Priority p) const {
  std::lock_guard<std::mutex> l(mu_);
  return p == Priority::kLive ? granted_live_ : granted_bulk_;
}

}  // namespace recsync::replication
