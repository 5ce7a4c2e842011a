#pragma once
// What retention needs from the object-store tier (SPEC 5: the archive tier
// behind an interface). objtier/ObjectTier implements it over S3; tests use
// a fake. Retention never talks S3 itself.
//
// Thread safety: implementations are called from the retention thread (and
// erasure from whichever thread runs it); they serialise internally.
#include <string>
#include <unordered_set>
#include <vector>

#include "recsync/status.h"
#include "state/objects.h"

namespace recsync {

class ObjectTierOps {
 public:
  virtual ~ObjectTierOps() = default;
  // "s3://bucket/key" of the object, for logs and the audit policy.
  virtual std::string where(const ObjectRow& o) const = 0;
  // Deletes every version (and delete marker) of o's object, so nothing of
  // it is left in the store. OK when nothing is left, also when nothing was
  // there. kRefused when Object Lock protects a version (a legal hold or a
  // retention period): the store refused, the object is still there. Any
  // other error: the store failed (down, credentials); retry later.
  virtual Status delete_every_version(const ObjectRow& o) = 0;
  // Local copies due at keep_local: asks the store (HEAD) whether it holds
  // each with the same size and hash, and returns the rels it does. Those
  // are (re)recorded in the index (a copy from a peer is uploaded by its
  // origin); an indexed object the store no longer has is dropped from the
  // index, its local copy kept. Store trouble leaves the rest unconfirmed.
  // At most max_checks requests per call.
  virtual std::unordered_set<std::string> verify_in_store(const std::vector<RecordingRow>& rows,
                                                          size_t max_checks) = 0;
};

}  // namespace recsync
