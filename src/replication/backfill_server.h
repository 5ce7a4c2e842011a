#pragma once
// The answering side of backfill (SPEC 4.6; frames in backfill/messages.h),
// run by a receiver session for the peer that asks:
//   DIGEST_REQ  count and digest of each requested range of recording time
//               (one pass over the index);
//   LIST_REQ    the recordings of a range (or the held ones outside the
//               window), sorted by identity, in MANIFEST frames;
//   PULL        each named recording this node has is queued for the asking
//               peer at backfill priority (it goes out on the backfill lane);
//               the PULL_REP says, per recording, queued / not here / erased /
//               conflict (other content under that identity);
//   HOLDS_REQ   this node's identity holds, sorted, in HOLDS frames.
// Recordings are named by identity: origin path and origin node name (this
// node's own recordings, stored as "local", are listed under its name).
//
// Threads: the calling session's; reads the state store.
#include <string>
#include <string_view>

#include "backfill/entry.h"
#include "peer/connection.h"
#include "replication/link.h"

namespace recsync::replication {

Status answer_backfill(LinkContext& ctx, peer::Connection& c, const std::string& peer,
                       const peer::Frame& f);

// A recording was received (or found already here): the pull items of a
// backfill waiting for it are done.
Status backfill_arrived(LinkContext& ctx, const RecordingRow& row);

// A row as a manifest entry (origin "local" named `self`).
backfill::ManifestEntry manifest_entry(const RecordingRow& r, const std::string& self, bool held);
// The digest of a recording from its stored identity path, hash text and
// size: entry_digest(manifest_entry(row, ...)) without building the entry.
uint64_t row_digest(std::string_view path, std::string_view hash_text, uint64_t size);

}  // namespace recsync::replication
