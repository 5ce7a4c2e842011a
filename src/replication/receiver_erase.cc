// The receiver's ERASE handler (receiver.h): a recording erased on the peer
// is erased here too, through the same Eraser as `recsync erase`.
#include "backfill/entry.h"
#include "erase/eraser.h"
#include "peer/path_policy.h"
#include "replication/receiver.h"
#include "replication/wire.h"

namespace recsync::replication {

using peer::Connection;
using peer::FrameType;

Status Receiver::receive_erase(Connection& c, size_t peer, const peer::EraseMsg& m) {
  const std::string& name = ctx_.board.config(peer).name;
  Status s;
  bool held = false;  // the Eraser's kRefused: a hold here
  if (Status p = peer::validate_peer_path(m.origin_rel); !p) {
    s = Status::refused("bad path in the erasure: " + p.message());
  } else if (Status o = backfill::validate_origin(m.origin); !o) {
    s = Status::refused("bad origin in the erasure: " + o.message());
  } else if (!ctx_.opt.eraser) {
    s = Status::busy("erasure is not available on " + ctx_.opt.node);
  } else {
    TombstoneRow t;
    t.origin_rel = m.origin_rel;
    t.origin = m.origin == ctx_.opt.node ? kLocalOrigin : m.origin;
    t.hash = bytes_to_hash(m.hash);
    t.erased_ms = m.erased_ms;
    t.reason = m.reason;
    t.uid = m.uid;
    s = ctx_.opt.eraser->apply_copied(t, name);
    held = s.code() == Status::Code::kRefused;
    // A transfer of it from this peer cut short leaves a partial: it goes too
    // (a transfer still running is refused at its end by the tombstone).
    if (s) {
      if (Status r = remove_inbound_partials(ctx_.env, ctx_.opt.archive_root, m.origin_rel); !r)
        ctx_.lg->warn("peer {}: partials of erased {} not removed: {}", name,
                      printable(m.origin_rel), r.message());
    }
  }
  if (s) {
    ctx_.lg->info("erased {} ({}'s recording) as asked by {}: {}", printable(m.origin_rel),
                  printable(m.origin), name, printable(m.reason));
    return send_id(c, FrameType::kAck, m.id);
  }
  ctx_.lg->warn("peer {}: erasure of {} refused: {}", name, printable(m.origin_rel), s.message());
  const uint8_t code = held                                 ? peer::NackMsg::kHeld
                       : s.code() == Status::Code::kRefused ? peer::NackMsg::kRefused
                                                            : peer::NackMsg::kRetry;
  return send_nack(c, m.id, code, s.message());
}

}  // namespace recsync::replication
