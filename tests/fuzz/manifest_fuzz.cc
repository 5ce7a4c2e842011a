// libFuzzer target: the backfill bodies a peer sends (backfill/messages.h),
// the stream checkers (backfill/stream.h) and, behind them, the merger and
// range planner that trust what the checkers let through.
//
// Input: byte 0 picks the chunk size the rest is fed to the FrameParser in;
// byte 1 picks the request the MANIFEST stream answers (kind, range) and the
// stream cap. The rest is a frame stream; every frame of a backfill type is
// decoded, and when it decodes it must re-encode to the same bytes. MANIFEST
// frames go through one ManifestStream (a LIST_REQ frame starts a new one);
// what it accepts is fed to a Merger against a fixed local listing, which
// must never see disorder. The raw rest is also tried as every body type.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "backfill/merge.h"
#include "backfill/messages.h"
#include "backfill/ranges.h"
#include "backfill/stream.h"
#include "peer/frame.h"

using namespace recsync;
using namespace recsync::backfill;

namespace {

#define CHECK(c) \
  if (!(c)) std::abort()

template <typename Msg>
bool round_trips(std::span<const uint8_t> body, Msg* m) {
  if (!decode(body, m).is_ok()) return false;
  std::vector<uint8_t> again;
  CHECK(encode(*m, again).is_ok());  // decodable must be encodable
  CHECK(again.size() == body.size() && std::memcmp(again.data(), body.data(), body.size()) == 0);
  return true;
}

void check_ranges(const std::vector<TimeRange>& ranges, uint64_t id) {
  for (size_t i = 0; i < ranges.size(); ++i) {
    CHECK(ranges[i].valid());
    CHECK(i == 0 || ranges[i].t0 >= ranges[i - 1].t1);
  }
  CHECK(RangeDigester::make(ranges).is_ok());
  for (const TimeRange& r : ranges) {
    auto parts = split_range(r, static_cast<uint32_t>(id % 40));
    CHECK(!parts.empty() && parts.front().t0 == r.t0 && parts.back().t1 == r.t1);
    for (size_t i = 1; i < parts.size(); ++i) CHECK(parts[i].t0 == parts[i - 1].t1);
    if (static_cast<__int128>(r.t1) - r.t0 <= 64 * kDayMs) {
      auto days = day_ranges(r);
      CHECK(!days.empty() && days.front().t0 == r.t0 && days.back().t1 == r.t1);
    }
  }
}

void check_digest_rep(const DigestRepMsg& m) {
  std::vector<TimeRange> ranges;
  for (size_t i = 0; i < m.digests.size(); ++i)
    ranges.push_back({static_cast<int64_t>(i) * 1000, static_cast<int64_t>(i) * 1000 + 1000});
  std::vector<RangeDigest> local(m.digests.size());
  auto steps = plan_ranges(ranges, local, m.digests, RangePlanOptions{16, 4});
  CHECK(steps.is_ok());
  auto next = next_round(*steps, RangePlanOptions{16, 4});
  CHECK(RangeDigester::make(next).is_ok());  // sorted and disjoint
}

// A fixed local side for the merge.
const std::vector<ManifestEntry>& local_listing() {
  static const std::vector<ManifestEntry> v = [] {
    std::vector<ManifestEntry> out;
    for (const char* p : {"a", "a/b.wav", "b.wav", "m", "x/y.wav"}) {
      ManifestEntry e;
      e.path = p;
      e.origin = "fs1";
      e.size = 3;
      e.has_hash = p[0] != 'm';
      out.push_back(e);
    }
    return out;
  }();
  return v;
}

struct Session {
  std::optional<ManifestStream> stream;
  std::optional<Merger> merger;
  std::optional<VectorSource> local;
  std::optional<HoldsStream> holds;
  uint64_t cap = 0;

  void start(const ListReqMsg& req) {
    stream.emplace(req, cap);
    local.emplace(local_listing());
    merger.emplace(MergeOptions{req.range.t0, nullptr, nullptr}, nullptr);
  }

  void manifest(std::span<const uint8_t> body) {
    if (!stream || stream->done() || !stream->status().is_ok()) return;
    ManifestMsg m;
    if (!stream->accept(body, &m).is_ok()) return;
    CHECK(stream->entries() <= cap);
    ManifestMsg again;
    CHECK(round_trips(body, &again));
    Status s = merger->feed_peer(m.entries, *local);
    CHECK(s.is_ok());  // the checker let through only what the merger can take
    if (stream->done()) {
      CHECK(merger->finish_peer(*local).is_ok());
      CHECK(merger->done());
    }
  }

  void holds_frame(std::span<const uint8_t> body) {
    if (!holds) holds.emplace(0, cap);
    HoldsMsg m;
    if (holds->accept(body, &m).is_ok()) {
      HoldsMsg again;
      CHECK(round_trips(body, &again));
    }
  }

  Status on_frame(peer::Frame&& f) {
    CHECK(f.payload.size() <= peer::kMaxFramePayload);
    std::span<const uint8_t> body = f.payload;
    switch (f.type) {
      case peer::FrameType::kDigestReq: {
        DigestReqMsg m;
        if (round_trips(body, &m)) check_ranges(m.ranges, m.id);
        break;
      }
      case peer::FrameType::kDigestRep: {
        DigestRepMsg m;
        if (round_trips(body, &m)) check_digest_rep(m);
        break;
      }
      case peer::FrameType::kListReq: {
        ListReqMsg m;
        if (round_trips(body, &m)) start(m);
        break;
      }
      case peer::FrameType::kManifest:
        manifest(body);
        break;
      case peer::FrameType::kPull: {
        PullMsg m;
        round_trips(body, &m);
        break;
      }
      case peer::FrameType::kHoldsReq: {
        HoldsReqMsg m;
        round_trips(body, &m);
        break;
      }
      case peer::FrameType::kHolds:
        holds_frame(body);
        break;
      default:
        break;
    }
    return Status::ok();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const size_t kChunks[] = {0, 1, 2, 3, 7, 15, 100, 10000, 200000};
  const size_t chunk = kChunks[data[0] % 9];
  const uint8_t mode = data[1];
  std::span<const uint8_t> in(data + 2, size - 2);

  Session s;
  s.cap = mode & 0x80 ? 3 : kDefaultMaxStreamEntries;
  // Request 0: a small range around 0, or held outside it.
  s.start(ListReqMsg{0,
                     mode & 1 ? ListKind::kHeld : ListKind::kRange,
                     {-static_cast<int64_t>(mode & 0x70), 1000}});

  peer::FrameParser parser;
  auto on_frame = [&](peer::Frame&& f) { return s.on_frame(std::move(f)); };
  const size_t step = chunk == 0 ? 1 : chunk;
  for (size_t pos = 0; pos < in.size(); pos += step) {
    if (chunk == 0 && !parser.feed({}, on_frame).is_ok()) break;
    if (!parser.feed(in.subspan(pos, std::min(step, in.size() - pos)), on_frame).is_ok()) break;
  }

  // The raw rest as each body, with fresh checkers.
  Session raw;
  raw.cap = s.cap;
  raw.start(ListReqMsg{0, mode & 1 ? ListKind::kHeld : ListKind::kRange, {INT64_MIN, 0}});
  for (uint8_t t = static_cast<uint8_t>(peer::FrameType::kDigestReq);
       t <= static_cast<uint8_t>(peer::FrameType::kHolds); ++t) {
    std::vector<uint8_t> body(in.begin(), in.end());
    (void)raw.on_frame(peer::Frame{static_cast<peer::FrameType>(t), std::move(body)});
  }
  return 0;
}
