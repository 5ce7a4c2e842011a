#include "replication/governor.h"

#include <algorithm>
#include <cstdio>

#include "recsync/units.h"

namespace recsync::replication {
namespace {

using U128 = unsigned __int128;
constexpr uint64_t kNsPerSec = 1'000'000'000;
constexpr uint64_t kMinBurst = 4096;
constexpr int kDayMin = 24 * 60;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "HH:MM" -> minutes; 24:00 only when allow_24.
Result<int> parse_hhmm(std::string_view s, bool allow_24) {
  s = trim(s);
  auto digits = [](std::string_view d) {
    return d.size() == 2 && d[0] >= '0' && d[0] <= '9' && d[1] >= '0' && d[1] <= '9';
  };
  if (s.size() != 5 || s[2] != ':' || !digits(s.substr(0, 2)) || !digits(s.substr(3, 2)))
    return Status::invalid("time \"" + std::string(s) + "\" is not HH:MM");
  int h = (s[0] - '0') * 10 + (s[1] - '0');
  int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
    return Status::invalid("time \"" + std::string(s) + "\" is out of range" +
                           (h == 24 && m == 0 ? " (24:00 is allowed only as an end)" : ""));
  return h * 60 + m;
}

std::string hhmm(int min) {
  char buf[16];
  snprintf(buf, sizeof buf, "%02d:%02d", (min / 60) % 100, min % 60);
  return buf;
}

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

Result<Schedule> Schedule::parse(std::string_view s) {
  Schedule out;
  std::vector<int> owner(kDayMin, -1);  // minute -> entry index, for overlaps
  s = trim(s);
  if (s.empty()) return out;
  size_t pos = 0;
  for (int idx = 0; pos <= s.size(); ++idx) {
    size_t comma = s.find(',', pos);
    std::string_view item =
        trim(s.substr(pos, comma == std::string_view::npos ? s.npos : comma - pos));
    pos = comma == std::string_view::npos ? s.size() + 1 : comma + 1;
    const std::string ctx = "schedule entry \"" + std::string(item) + "\"";
    if (item.empty()) return Status::invalid("schedule: empty entry (stray ',')");
    size_t eq = item.find('=');
    size_t dash = item.find('-');
    if (eq == item.npos || dash == item.npos || dash > eq)
      return Status::invalid(ctx + ": expected HH:MM-HH:MM=<rate>");
    auto start = parse_hhmm(item.substr(0, dash), false);
    if (!start) return start.status().with_context(ctx);
    auto end = parse_hhmm(item.substr(dash + 1, eq - dash - 1), true);
    if (!end) return end.status().with_context(ctx);
    if (*start == *end)
      return Status::invalid(ctx + ": start equals end (use 00:00-24:00 for the whole day)");
    auto rate = parse_rate(trim(item.substr(eq + 1)));
    if (!rate) return rate.status().with_context(ctx);
    // "00:00" as an end is midnight at the end of the day.
    Entry e{*start, *end == 0 ? kDayMin : *end, *rate};
    // Walk the covered minutes (wrapping) to detect overlaps.
    int m = e.start_min;
    do {
      if (owner[m] >= 0) {
        const Entry& o = out.entries_[owner[m]];
        return Status::invalid(ctx + ": overlaps " + hhmm(o.start_min) + "-" + hhmm(o.end_min) +
                               " at " + hhmm(m));
      }
      owner[m] = idx;
      m = (m + 1) % kDayMin;
    } while (m != e.end_min % kDayMin);
    out.entries_.push_back(e);
  }
  return out;
}

std::optional<uint64_t> Schedule::rate_at(int minute_of_day) const {
  int m = ((minute_of_day % kDayMin) + kDayMin) % kDayMin;
  for (const Entry& e : entries_) {
    const bool in = e.start_min < e.end_min ? (m >= e.start_min && m < e.end_min)
                                            : (m >= e.start_min || m < e.end_min);
    if (in) return e.rate_bps;
  }
  return std::nullopt;
}

}  // namespace recsync::replication
