#pragma once
// The pure decisions of an erasure (SPEC 4.4), apart from the I/O that
// carries them out (erase/eraser.h): which recording an `recsync erase
// ID|PATH` names, whether it may go, and how long its tombstone is kept.
// No I/O, no clock: unit-tested with fixed values.
#include <cstdint>
#include <string>
#include <vector>

#include "recsync/status.h"
#include "recsync/units.h"
#include "state/holds.h"
#include "state/rows.h"

namespace recsync::erase {

// One recording to erase: its identity (origin as stored, "local" = this
// node) and its copies in this node's archive (normally one).
struct EraseTarget {
  std::string origin, origin_rel, hash;
  int64_t rec_time_ms = 0;
  std::vector<RecordingRow> copies;
};

// What the target (a recording id or an archive path) names among
// `matches` (Recordings::find(target): rows whose name or path is target):
//   - a row whose path is target: that recording alone (others may share
//     its name, or have it as their origin path);
//   - none: kNotFound;
//   - a row without a hash (adopted, not hashed yet): kBusy (the eraser
//     hashes such rows first, so this is a race);
//   - rows of more than one identity (an id recorded on two nodes):
//     kInvalid, naming them: erase by archive path instead;
//   - any copy held (holds, by identity or name): kRefused.
// Else the one identity with all its copies.
Result<EraseTarget> plan_erase(const std::string& target, const std::vector<RecordingRow>& matches,
                               const HoldSet& holds);

// The tombstone of a recording must outlive every copy that could still
// come back: a copy anywhere is pruned at rec_time + keep, and backfill
// never moves a recording past retention. So it is kept until
// max(erased, rec_time + keep) + keep more, at least kMinTombstoneKeep past
// the erasure. keep <= 0 (retention off: copies are kept for ever): 0 =
// never expires.
inline constexpr Millis kMinTombstoneKeep{30LL * 24 * 3600 * 1000};
int64_t tombstone_expiry(int64_t erased_ms, int64_t rec_time_ms, Millis keep);

}  // namespace recsync::erase
