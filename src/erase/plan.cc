#include "erase/plan.h"

#include <algorithm>

namespace recsync::erase {

Result<EraseTarget> plan_erase(const std::string& target, const std::vector<RecordingRow>& matches,
                               const HoldSet& holds) {
  std::vector<RecordingRow> rows;
  for (const RecordingRow& r : matches)
    if (r.rel == target) rows.push_back(r);
  if (rows.empty()) rows = matches;
  if (rows.empty()) return Status::not_found("no recording '" + target + "' in the archive");
  for (const RecordingRow& r : rows)
    if (r.hash.empty()) return Status::busy(r.rel + " has no hash yet: try again in a moment");
  EraseTarget t;
  t.origin = rows.front().origin;
  t.origin_rel = rows.front().identity_rel();
  t.hash = rows.front().hash;
  t.rec_time_ms = rows.front().rec_time_ms;
  std::string names;
  for (const RecordingRow& r : rows) {
    if (r.origin != t.origin || r.identity_rel() != t.origin_rel || r.hash != t.hash) {
      std::string all;
      for (const RecordingRow& x : rows) all += (all.empty() ? "" : ", ") + x.rel;
      return Status::invalid("'" + target + "' names " + std::to_string(rows.size()) +
                             " different recordings (" + all + "): erase one by its archive path");
    }
    if (holds.held(r))
      return Status::refused(r.rel + " is held: release the hold first (recsync hold list)");
    t.rec_time_ms = std::max(t.rec_time_ms, r.rec_time_ms);
    t.copies.push_back(r);
  }
  return t;
}

int64_t tombstone_expiry(int64_t erased_ms, int64_t rec_time_ms, Millis keep) {
  if (keep.count() <= 0) return 0;
  const int64_t last_copy = std::max(erased_ms, rec_time_ms + keep.count());
  return std::max(last_copy + keep.count(), erased_ms + kMinTombstoneKeep.count());
}

}  // namespace recsync::erase
