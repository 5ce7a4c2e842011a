#pragma once
// The scrub's pure decisions (SPEC 4.5), unit-tested with a fixed clock:
// when a pass is due, how reads are paced, what a re-read copy's state is,
// and the cursor a pass resumes from after a restart.
//
// Thread safety: pure functions; a Pacer belongs to one thread.
#include <cstdint>
#include <optional>
#include <string>

namespace recsync::scrub {

// What a re-read found about one archived copy.
enum class Kind { kOk, kCorrupt, kMissing, kUnreadable, kSize };
inline constexpr int kKinds = 5;
// "ok", "corrupt", "missing", "unreadable", "size": status, metrics labels, CLI.
const char* kind_name(Kind k);
// The finding kinds (all but kOk), in label order.
inline constexpr Kind kErrorKinds[] = {Kind::kCorrupt, Kind::kMissing, Kind::kUnreadable,
                                       Kind::kSize};

// The verdict on a copy: absent file -> missing; a read error -> unreadable;
// another size -> size (the hash is not compared); another hash -> corrupt.
Kind classify(uint64_t want_size, const std::string& want_hash, bool exists, bool read_ok,
              uint64_t got_size, const std::string& got_hash);

// Whether a new background pass starts now: interval > 0 (0 = off) and at
// least interval since the last pass started (never: due at once). A pass
// in progress (resumed from its cursor) is not a new one.
bool pass_due(int64_t interval_ms, std::optional<int64_t> last_start_ms, int64_t now_ms);
// When the next background pass starts (0: off).
int64_t next_pass_ms(int64_t interval_ms, std::optional<int64_t> last_start_ms, int64_t now_ms);

// A token bucket in bytes/s over a caller's monotonic clock: take(n, now)
// returns how long to wait (ns) before reading n bytes; 0 = at once. The
// bucket holds at most a quarter second of tokens (no bursts after a pause).
// rate 0 = unpaced.
class Pacer {
 public:
  explicit Pacer(uint64_t rate_bps = 0) : rate_(rate_bps) {}
  void set_rate(uint64_t rate_bps) { rate_ = rate_bps; }
  uint64_t rate() const { return rate_; }
  int64_t take(uint64_t n, int64_t now_ns);

 private:
  uint64_t rate_;
  double tokens_ = 0;
  int64_t last_ns_ = -1;
};

// A pass's position: the last recording checked, in (rec_time_ms, id) order
// (Recordings::older_than). Stored as "T:ID" in the state database's meta.
struct Cursor {
  int64_t time_ms = 0, id = 0;
};
std::string cursor_text(const Cursor& c);
std::optional<Cursor> parse_cursor(const std::string& text);

}  // namespace recsync::scrub
