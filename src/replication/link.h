#pragma once
// What the senders and the receiver of one replication service share: the
// outside world (Env, state store, TLS), the governor, the peer board, the
// stop flag and the options. Owned by the Service; senders and the receiver
// hold a reference for their lifetime.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "archive/placer.h"
#include "peer/connection.h"
#include "peer/tls.h"
#include "recsync/clock.h"
#include "recsync/config.h"
#include "recsync/env.h"
#include "recsync/log.h"
#include "recsync/page_budget.h"
#include "recsync/stop_flag.h"
#include "replication/governor.h"
#include "replication/inbound_file.h"
#include "replication/peer_board.h"
#include "state/store.h"

namespace recsync::erase {
class Eraser;
}

namespace recsync::replication {

using namespace std::chrono_literals;

inline constexpr auto kConnectTimeout = 10s;
inline constexpr auto kHelloTimeout = 10s;
inline constexpr auto kReplyTimeout = 120s;  // OFFER/END -> reply: covers the peer's fsyncs
inline constexpr auto kIdlePing = 10s;       // a sender pings an idle link this often
inline constexpr auto kClockPing = 60s;      // and a busy live link (clock offset), between files
inline constexpr auto kReceiverIdle = 45s;   // a receiver drops a link silent this long
inline constexpr size_t kReadChunk = 256 * 1024;
inline constexpr size_t kWindow = 4;  // transfers awaiting their ACK at once, per link

struct ServiceOptions {
  std::string node;
  std::string listen;
  // The one bandwidth governor, shared with every other sender of the node
  // (the object-store uploads); not owned. Null: the service makes its own
  // with bandwidth_bps (tests).
  Governor* governor = nullptr;
  uint64_t bandwidth_bps = 50'000'000;  // the cap of a governor of its own (0 = none)
  std::string archive_root;
  std::vector<PeerConfig> peers;
  InboundOptions inbound;
  std::chrono::milliseconds live_window{60'000};
  std::chrono::milliseconds retry_max{300'000};  // backoff cap for a failed file
  // Shares of recordings the archiver left cached for the senders: a sender
  // gives back a recording's share when its transfer of it ends, whichever
  // way. Not owned; may be null.
  PageBudget* page_budget = nullptr;
  // Where received recordings are published (archive/placer.h), shared with
  // the archiver; not owned. Null: the service uses one of its own.
  Placer* placer = nullptr;
  // Applies the peers' ERASE messages (erase/eraser.h); not owned. Null: an
  // ERASE is answered NACK retry (the peer keeps it queued).
  erase::Eraser* eraser = nullptr;
};

inline int64_t wall_ns(Env* env) { return to_ns(env->now()); }

struct LinkContext {
  Env* env;
  StateStore* store;
  const ServiceOptions& opt;
  const peer::TlsContext& tls;
  peer::Canceller& cancel;  // stop(): aborts handshakes, wakes the acceptor
  Governor& gov;
  PeerBoard& board;
  Placer& placer;
  StopFlag& stop;
  class BackfillJobs* jobs = nullptr;       // set by the Service once built
  class RepairRequests* repairs = nullptr;  // likewise (scrub repairs)
  std::shared_ptr<spdlog::logger> lg = log::get("replication");

  int64_t now_ms() const { return to_ms(env->now()); }
};

}  // namespace recsync::replication
