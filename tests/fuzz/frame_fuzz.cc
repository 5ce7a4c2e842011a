// libFuzzer target: the peer frame parser and every message decoder, which
// read bytes straight from the network. The first byte picks the chunk size
// the input is fed in (the parser must not care); every decoded frame is also
// run through the matching body decoder and, when it decodes, re-encoded and
// checked to round-trip.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "peer/frame.h"

using namespace recsync;
using namespace recsync::peer;

namespace {

template <typename Msg>
void check_body(FrameType type, const std::vector<uint8_t>& payload) {
  Msg m;
  if (!decode(payload, &m).is_ok()) return;
  std::vector<uint8_t> again;
  if (!encode(m, again).is_ok()) std::abort();  // decodable must be encodable
  if (again != payload) std::abort();           // and encode to the same bytes
  std::vector<uint8_t> framed;
  if (!encode_frame(type, again, framed).is_ok()) std::abort();
}

Status on_frame(Frame&& f) {
  if (f.payload.size() > kMaxFramePayload) std::abort();
  switch (f.type) {
    case FrameType::kHello:
      check_body<HelloMsg>(f.type, f.payload);
      break;
    case FrameType::kOffer:
      check_body<OfferMsg>(f.type, f.payload);
      break;
    case FrameType::kSignature:
    case FrameType::kDelta:
      check_body<ChunkMsg>(f.type, f.payload);
      break;
    case FrameType::kEnd:
    case FrameType::kAck:
      check_body<IdMsg>(f.type, f.payload);
      break;
    case FrameType::kNack:
      check_body<NackMsg>(f.type, f.payload);
      break;
    case FrameType::kPing:
    case FrameType::kPong:
      check_body<PingMsg>(f.type, f.payload);
      break;
    case FrameType::kHold:
      check_body<HoldMsg>(f.type, f.payload);
      break;
    case FrameType::kErase:
      check_body<EraseMsg>(f.type, f.payload);
      break;
    case FrameType::kDigestReq:  // backfill bodies: manifest_fuzz.cc
    case FrameType::kDigestRep:
    case FrameType::kListReq:
    case FrameType::kManifest:
    case FrameType::kPull:
    case FrameType::kHoldsReq:
    case FrameType::kHolds:
    case FrameType::kPullRep:
      break;
  }
  return Status::ok();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const size_t kChunks[] = {0, 1, 2, 3, 7, 15, 100, 10000, 200000};
  size_t chunk = kChunks[data[0] % 9];
  std::span<const uint8_t> in(data + 1, size - 1);

  // Whole input as one stream.
  FrameParser whole;
  std::vector<Frame> a;
  Status sa = whole.feed(in, [&](Frame&& f) {
    a.push_back(f);
    return on_frame(std::move(f));
  });

  // Same input chunked: same frames, same verdict.
  FrameParser parts;
  std::vector<Frame> b;
  Status sb;
  size_t step = chunk == 0 ? 1 : chunk;
  for (size_t pos = 0; pos < in.size() && sb.is_ok(); pos += step) {
    if (chunk == 0) sb = parts.feed({}, [](Frame&&) { return Status::ok(); });
    if (!sb.is_ok()) break;
    sb = parts.feed(in.subspan(pos, std::min(step, in.size() - pos)), [&](Frame&& f) {
      b.push_back(std::move(f));
      return Status::ok();
    });
  }
  if (sa.is_ok() != sb.is_ok()) std::abort();
  if (a.size() != b.size()) std::abort();
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].type != b[i].type || a[i].payload != b[i].payload) std::abort();

  // The raw input as each message body too.
  std::vector<uint8_t> body(in.begin(), in.end());
  for (uint8_t t = 1; t <= 10; ++t) (void)on_frame(Frame{static_cast<FrameType>(t), body});
  return 0;
}
