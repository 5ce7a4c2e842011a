#include "peer/frame.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>
#include <set>

namespace recsync::peer {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr size_t kSizes[] = {0, 1, 2, 3, 7, 15, 100, 10000, 200000};

// Feeds `wire` to a fresh parser in pieces of `chunk` bytes (0: an empty feed
// before every 4096-byte piece) and collects the frames.
Status parse_all(const Bytes& wire, size_t chunk, std::vector<Frame>& frames,
                 FrameParser* parser = nullptr) {
  FrameParser local;
  FrameParser& p = parser ? *parser : local;
  auto sink = [&](Frame&& f) {
    frames.push_back(std::move(f));
    return Status::ok();
  };
  size_t step = chunk == 0 ? 4096 : chunk;
  for (size_t pos = 0; pos < wire.size();) {
    if (chunk == 0) {
      RECSYNC_RETURN_IF_ERROR(p.feed({}, sink));
      RECSYNC_RETURN_IF_ERROR(p.feed({}, sink));
    }
    size_t n = std::min(step, wire.size() - pos);
    RECSYNC_RETURN_IF_ERROR(p.feed(std::span(wire).subspan(pos, n), sink));
    pos += n;
  }
  return Status::ok();
}

Bytes pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 31 + seed);
  return b;
}

TEST(Frame, EncodeLayout) {
  Bytes out;
  ASSERT_TRUE(encode_frame(FrameType::kAck, Bytes{0xaa, 0xbb}, out).is_ok());
  EXPECT_EQ(out, (Bytes{0, 0, 0, 3, 6, 0xaa, 0xbb}));
  out.clear();
  ASSERT_TRUE(encode_frame(FrameType::kEnd, {}, out).is_ok());
  EXPECT_EQ(out, (Bytes{0, 0, 0, 1, 5}));
}

TEST(Frame, EncodeRefusesOversizeAndUnknownType) {
  Bytes out;
  EXPECT_EQ(encode_frame(FrameType::kDelta, Bytes(kMaxFramePayload + 1), out).code(),
            Status::Code::kInvalid);
  EXPECT_EQ(encode_frame(uint8_t{0}, {}, out).code(), Status::Code::kInvalid);
  EXPECT_EQ(encode_frame(uint8_t{200}, {}, out).code(), Status::Code::kInvalid);
  EXPECT_TRUE(out.empty());
}

TEST(Frame, ManyFramesAtEveryBufferSize) {
  // Back-to-back frames of assorted sizes, including empty and maximal.
  std::vector<std::pair<FrameType, Bytes>> sent;
  const size_t lens[] = {0, 1, 4, 5, 6, 100, 4095, 65536, 0, kMaxFramePayload, 3, 0};
  uint8_t t = 1;
  for (size_t len : lens) {
    sent.emplace_back(static_cast<FrameType>(t), pattern(len, t));
    t = t % 9 + 1;
  }
  Bytes wire;
  for (auto& [type, payload] : sent) ASSERT_TRUE(encode_frame(type, payload, wire).is_ok());
  for (size_t chunk : kSizes) {
    SCOPED_TRACE("chunk=" + std::to_string(chunk));
    std::vector<Frame> got;
    FrameParser p;
    Status s = parse_all(wire, chunk, got, &p);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    ASSERT_EQ(got.size(), sent.size());
    for (size_t i = 0; i < sent.size(); ++i) {
      EXPECT_EQ(got[i].type, sent[i].first) << i;
      EXPECT_TRUE(got[i].payload == sent[i].second) << i;
    }
    EXPECT_TRUE(p.idle());
  }
}

TEST(Frame, ZeroCopyFillingGivesTheSameFrames) {
  // buffer()/commit() filled by a writer that puts at most `most` bytes in
  // each buffer it is given: the header in pieces, payloads in place.
  Bytes wire;
  const size_t lens[] = {0, 1, 12, 65536 + 12, 0, 3};
  for (size_t i = 0; i < std::size(lens); ++i)
    ASSERT_TRUE(encode_frame(FrameType::kDelta, pattern(lens[i], uint8_t(i)), wire).is_ok());
  for (size_t most : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{7}, size_t{16384}}) {
    SCOPED_TRACE("most=" + std::to_string(most));
    FrameParser p;
    std::vector<Frame> got;
    auto on_frame = [&](Frame&& f) {
      got.push_back(std::move(f));
      return Status::ok();
    };
    for (size_t pos = 0; pos < wire.size();) {
      std::span<uint8_t> dst = p.buffer();
      ASSERT_FALSE(dst.empty());
      size_t n = std::min({dst.size(), most, wire.size() - pos});
      std::memcpy(dst.data(), wire.data() + pos, n);
      ASSERT_TRUE(p.commit(n, on_frame).is_ok());
      pos += n;
    }
    ASSERT_EQ(got.size(), std::size(lens));
    for (size_t i = 0; i < std::size(lens); ++i)
      EXPECT_TRUE(got[i].payload == pattern(lens[i], uint8_t(i))) << i;
    EXPECT_TRUE(p.idle());
  }
}

TEST(Frame, CommitPastTheBufferIsRefusedAndSticky) {
  FrameParser p;
  auto none = [](Frame&&) { return Status::ok(); };
  ASSERT_EQ(p.buffer().size(), kFrameHeaderLen);
  EXPECT_EQ(p.commit(kFrameHeaderLen + 1, none).code(), Status::Code::kInvalid);
  EXPECT_EQ(p.commit(1, none).code(), Status::Code::kInvalid);  // sticky

  FrameParser q;
  Bytes h = {0, 0, 0, 11, static_cast<uint8_t>(FrameType::kDelta)};  // 10-byte payload
  std::memcpy(q.buffer().data(), h.data(), h.size());
  ASSERT_TRUE(q.commit(h.size(), none).is_ok());
  ASSERT_EQ(q.buffer().size(), 10u);
  EXPECT_EQ(q.commit(11, none).code(), Status::Code::kInvalid);
}

TEST(Frame, PartialHeaderWaitsAndIsNotIdle) {
  Bytes wire;
  ASSERT_TRUE(encode_frame(FrameType::kPing, pattern(8, 1), wire).is_ok());
  for (size_t cut = 1; cut < wire.size(); ++cut) {
    FrameParser p;
    int n = 0;
    auto sink = [&](Frame&&) {
      ++n;
      return Status::ok();
    };
    ASSERT_TRUE(p.feed(std::span(wire).first(cut), sink).is_ok());
    EXPECT_EQ(n, 0) << cut;
    EXPECT_FALSE(p.idle()) << cut;
    ASSERT_TRUE(p.feed(std::span(wire).subspan(cut), sink).is_ok());
    EXPECT_EQ(n, 1) << cut;
    EXPECT_TRUE(p.idle());
  }
}

Bytes header(uint32_t len, uint8_t type) {
  return {static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
          static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len), type};
}

TEST(Frame, MaxSizeBoundary) {
  // Length field kMaxFrameLen is accepted, one more is refused at once (no
  // waiting for the payload).
  Bytes ok = header(kMaxFrameLen, 4);
  ok.resize(ok.size() + kMaxFramePayload, 0x11);
  std::vector<Frame> got;
  ASSERT_TRUE(parse_all(ok, 10000, got).is_ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload.size(), kMaxFramePayload);

  for (size_t chunk : kSizes) {
    SCOPED_TRACE(chunk);
    got.clear();
    Bytes big = header(kMaxFrameLen + 1, 4);
    Status s = parse_all(big, chunk, got);
    EXPECT_EQ(s.code(), Status::Code::kCorrupt);
    EXPECT_TRUE(got.empty());
  }
  got.clear();
  EXPECT_EQ(parse_all(header(0xffffffff, 4), 1, got).code(), Status::Code::kCorrupt);
}

TEST(Frame, ZeroLengthAndUnknownTypeAreCorrupt) {
  std::vector<Frame> got;
  EXPECT_EQ(parse_all(header(0, 4), 1, got).code(), Status::Code::kCorrupt);
  for (uint8_t t : {uint8_t{0}, uint8_t{20}, uint8_t{255}}) {
    got.clear();
    Status s = parse_all(header(1, t), 3, got);
    EXPECT_EQ(s.code(), Status::Code::kCorrupt) << int(t);
    EXPECT_NE(s.message().find("unknown type"), std::string::npos);
  }
}

TEST(Frame, EveryTypeHasADistinctName) {
  std::set<std::string> names;
  for (int t = 0; t < 256; ++t) {
    if (!is_known_frame_type(static_cast<uint8_t>(t))) continue;
    std::string n = frame_type_name(static_cast<FrameType>(t));
    EXPECT_NE(n, "UNKNOWN") << t;
    EXPECT_TRUE(names.insert(n).second) << n;
  }
  EXPECT_EQ(names.size(), 19u);  // HELLO .. HOLD, the eight backfill types, ERASE
  EXPECT_TRUE(is_known_frame_type(static_cast<uint8_t>(FrameType::kPullRep)));
}

TEST(Frame, ErrorsAreStickyAndCallbackErrorsStop) {
  Bytes wire;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(encode_frame(FrameType::kPing, {}, wire).is_ok());
  FrameParser p;
  int n = 0;
  Status s = p.feed(wire, [&](Frame&&) {
    ++n;
    return Status::invalid("stop here");
  });
  EXPECT_EQ(s.code(), Status::Code::kInvalid);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(p.feed(wire, [&](Frame&&) { return Status::ok(); }).code(), Status::Code::kInvalid);

  FrameParser q;
  Bytes bad = header(0, 1);
  ASSERT_FALSE(q.feed(bad, [](Frame&&) { return Status::ok(); }).is_ok());
  EXPECT_FALSE(q.feed(wire, [](Frame&&) { return Status::ok(); }).is_ok());
}

TEST(Frame, GarbageNeverCrashes) {
  std::mt19937 rng(3);
  int errors = 0;
  for (int i = 0; i < 500; ++i) {
    Bytes junk(rng() % 300);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    std::vector<Frame> got;
    if (!parse_all(junk, kSizes[i % 9], got).is_ok()) ++errors;
    for (auto& f : got) EXPECT_LE(f.payload.size(), kMaxFramePayload);
  }
  EXPECT_GT(errors, 400);  // random lengths are almost always oversized
}

// ------------------------------------------------------------- messages

template <typename Msg>
Bytes body_of(const Msg& m) {
  Bytes b;
  EXPECT_TRUE(encode(m, b).is_ok());
  return b;
}

// Every proper prefix and every one-byte extension of a body must be refused.
template <typename Msg>
void expect_strict(const Bytes& body) {
  for (size_t n = 0; n < body.size(); ++n) {
    Msg m;
    EXPECT_EQ(decode(std::span(body).first(n), &m).code(), Status::Code::kCorrupt) << n;
  }
  Bytes longer = body;
  longer.push_back(0);
  Msg m;
  EXPECT_EQ(decode(longer, &m).code(), Status::Code::kCorrupt);
}

TEST(Messages, RoundTripAndStrictness) {
  HelloMsg h{kProtocolVersion, "fs1", Lane::kBackfill};
  HelloMsg h2;
  ASSERT_TRUE(decode(body_of(h), &h2).is_ok());
  EXPECT_EQ(h2.version, kProtocolVersion);
  EXPECT_EQ(h2.node, "fs1");
  EXPECT_EQ(h2.lane, Lane::kBackfill);
  expect_strict<HelloMsg>(body_of(h));
  Bytes bad_lane = body_of(h);
  bad_lane.back() = 2;
  EXPECT_EQ(decode(bad_lane, &h2).code(), Status::Code::kCorrupt);

  OfferMsg o;
  o.id = 0x0102030405060708;
  o.path = "2024/05/01/abc.wav";
  o.origin = "fs2";
  o.size = 1ull << 40;
  for (size_t i = 0; i < kHashLen; ++i) o.hash[i] = static_cast<uint8_t>(i * 7);
  o.mtime_ns = -5;
  OfferMsg o2;
  ASSERT_TRUE(decode(body_of(o), &o2).is_ok());
  EXPECT_EQ(o2.id, o.id);
  EXPECT_EQ(o2.path, o.path);
  EXPECT_EQ(o2.origin, "fs2");
  EXPECT_EQ(o2.size, o.size);
  EXPECT_EQ(0, memcmp(o2.hash, o.hash, kHashLen));
  EXPECT_EQ(o2.mtime_ns, -5);
  expect_strict<OfferMsg>(body_of(o));
  Bytes ob = body_of(o);  // big-endian id first
  EXPECT_EQ(ob[0], 1);
  EXPECT_EQ(ob[7], 8);

  ChunkMsg c{9, pattern(1000, 3)};
  ChunkMsg c2;
  ASSERT_TRUE(decode(body_of(c), &c2).is_ok());
  EXPECT_EQ(c2.id, 9u);
  EXPECT_TRUE(c2.data == c.data);
  expect_strict<ChunkMsg>(body_of(c));

  NackMsg n{77, NackMsg::kHashMismatch, "hash mismatch"};
  NackMsg n2;
  ASSERT_TRUE(decode(body_of(n), &n2).is_ok());
  EXPECT_EQ(n2.id, 77u);
  EXPECT_EQ(n2.code, NackMsg::kHashMismatch);
  EXPECT_EQ(n2.reason, "hash mismatch");
  expect_strict<NackMsg>(body_of(n));

  IdMsg a{42}, a2;
  ASSERT_TRUE(decode(body_of(a), &a2).is_ok());
  EXPECT_EQ(a2.id, 42u);
  expect_strict<IdMsg>(body_of(a));
  PingMsg p{0xdeadbeef, -1, 2, 1'700'000'000'000'000'000}, p2;
  ASSERT_TRUE(decode(body_of(p), &p2).is_ok());
  EXPECT_EQ(p2.nonce, 0xdeadbeefu);
  EXPECT_EQ(p2.t0_ns, -1);
  EXPECT_EQ(p2.t1_ns, 2);
  EXPECT_EQ(p2.t2_ns, 1'700'000'000'000'000'000);
  expect_strict<PingMsg>(body_of(p));
}

TEST(Messages, OversizedFieldsRefused) {
  Bytes out;
  EXPECT_EQ(encode(HelloMsg{1, std::string(kMaxNodeName + 1, 'n')}, out).code(),
            Status::Code::kInvalid);
  EXPECT_EQ(encode(HelloMsg{1, ""}, out).code(), Status::Code::kInvalid);
  OfferMsg o;
  o.origin = "fs1";
  o.path = std::string(kMaxPathLen + 1, 'p');
  EXPECT_EQ(encode(o, out).code(), Status::Code::kInvalid);
  o.path = "a.wav";
  o.origin = "";
  EXPECT_EQ(encode(o, out).code(), Status::Code::kInvalid) << "an offer names its origin";
  EXPECT_EQ(encode(ChunkMsg{1, Bytes(kMaxChunk + 1)}, out).code(), Status::Code::kInvalid);
  EXPECT_TRUE(out.empty());
  // A maximal chunk fits in one frame.
  ASSERT_TRUE(encode_message(FrameType::kDelta, ChunkMsg{1, Bytes(kMaxChunk)}, out).is_ok());
  EXPECT_EQ(out.size(), kFrameHeaderLen + kMaxFramePayload);

  // Declared lengths larger than the limit (even with the bytes present).
  Bytes body;
  WireWriter w(body);
  w.u32(1);
  w.str(std::string(kMaxNodeName + 1, 'n'));
  HelloMsg h;
  Status s = decode(body, &h);
  EXPECT_EQ(s.code(), Status::Code::kCorrupt);
  EXPECT_NE(s.message().find("exceeds"), std::string::npos);
  body.clear();
  w.u64(1);
  w.u32(0xffffffff);  // chunk length, no bytes
  ChunkMsg c;
  EXPECT_EQ(decode(body, &c).code(), Status::Code::kCorrupt);
}

TEST(Messages, ThroughTheParser) {
  Bytes wire;
  ASSERT_TRUE(encode_message(FrameType::kHello, HelloMsg{1, "fs2"}, wire).is_ok());
  for (uint64_t i = 0; i < 50; ++i)
    ASSERT_TRUE(
        encode_message(FrameType::kSignature, ChunkMsg{i, pattern(i * 37, 1)}, wire).is_ok());
  ASSERT_TRUE(encode_message(FrameType::kEnd, IdMsg{49}, wire).is_ok());
  for (size_t chunk : kSizes) {
    std::vector<Frame> got;
    ASSERT_TRUE(parse_all(wire, chunk, got).is_ok());
    ASSERT_EQ(got.size(), 52u);
    HelloMsg h;
    ASSERT_TRUE(decode(got[0].payload, &h).is_ok());
    EXPECT_EQ(h.node, "fs2");
    for (uint64_t i = 0; i < 50; ++i) {
      ChunkMsg c;
      ASSERT_EQ(got[i + 1].type, FrameType::kSignature);
      ASSERT_TRUE(decode(got[i + 1].payload, &c).is_ok());
      EXPECT_EQ(c.id, i);
      EXPECT_TRUE(c.data == pattern(i * 37, 1));
    }
    IdMsg e;
    ASSERT_TRUE(decode(got[51].payload, &e).is_ok());
    EXPECT_EQ(e.id, 49u);
  }
}

TEST(Messages, HoldRoundTripAndStrictDecode) {
  HoldMsg m;
  m.id = 9;
  m.op = HoldMsg::kRelease;
  m.target = "2026/01/01/x.wav";
  m.reason = "legal";
  m.created_ms = 1234567;
  std::vector<uint8_t> b;
  ASSERT_TRUE(encode(m, b));
  HoldMsg d;
  ASSERT_TRUE(decode(b, &d));
  EXPECT_EQ(d.id, 9u);
  EXPECT_EQ(d.op, HoldMsg::kRelease);
  EXPECT_EQ(d.target, m.target);
  EXPECT_EQ(d.reason, "legal");
  EXPECT_EQ(d.created_ms, 1234567);
  for (size_t n = 0; n < b.size(); ++n)
    EXPECT_EQ(decode(std::span<const uint8_t>(b.data(), n), &d).code(), Status::Code::kCorrupt);
  auto bad_op = b;
  bad_op[8] = 3;
  EXPECT_EQ(decode(bad_op, &d).code(), Status::Code::kCorrupt);
  m.target = "";
  std::vector<uint8_t> e;
  EXPECT_EQ(encode(m, e).code(), Status::Code::kInvalid);
  m.target = std::string(kMaxHoldTarget + 1, 'x');
  EXPECT_EQ(encode(m, e).code(), Status::Code::kInvalid);
}

TEST(Messages, IdentityHoldRoundTrip) {
  HoldMsg m;
  m.id = 3;
  m.target = "call-1";
  m.origin = "fs2";
  m.origin_rel = "2026/01/01/call-1.wav";
  m.has_hash = true;
  for (size_t i = 0; i < kHashLen; ++i) m.hash[i] = static_cast<uint8_t>(0xa0 + i);
  std::vector<uint8_t> b;
  ASSERT_TRUE(encode(m, b));
  HoldMsg d;
  ASSERT_TRUE(decode(b, &d));
  EXPECT_TRUE(d.has_hash);
  EXPECT_EQ(d.origin, "fs2");
  EXPECT_EQ(d.origin_rel, m.origin_rel);
  EXPECT_EQ(0, memcmp(d.hash, m.hash, kHashLen));
  for (size_t n = 0; n < b.size(); ++n)
    EXPECT_EQ(decode(std::span<const uint8_t>(b.data(), n), &d).code(), Status::Code::kCorrupt);
  // An identity without its origin is refused.
  m.origin = "";
  std::vector<uint8_t> e;
  ASSERT_TRUE(encode(m, e));
  EXPECT_EQ(decode(e, &d).code(), Status::Code::kCorrupt);
}

EraseMsg erase_msg(uint64_t id) {
  EraseMsg m;
  m.id = id;
  m.origin = "fs1";
  m.origin_rel = "2026/12/06/call-" + std::to_string(id) + ".wav";
  for (size_t i = 0; i < kHashLen; ++i) m.hash[i] = static_cast<uint8_t>(id + i);
  m.reason = "GDPR request " + std::to_string(id);
  m.erased_ms = 1'780'000'000'000 + static_cast<int64_t>(id);
  m.uid = id % 2 ? 1000 : -1;
  return m;
}

TEST(Messages, EraseRoundTripAndStrictDecode) {
  const EraseMsg m = erase_msg(7);
  std::vector<uint8_t> b;
  ASSERT_TRUE(encode(m, b));
  EraseMsg d;
  ASSERT_TRUE(decode(b, &d));
  EXPECT_EQ(d.id, 7u);
  EXPECT_EQ(d.origin, "fs1");
  EXPECT_EQ(d.origin_rel, m.origin_rel);
  EXPECT_EQ(0, memcmp(d.hash, m.hash, kHashLen));
  EXPECT_EQ(d.reason, m.reason);
  EXPECT_EQ(d.erased_ms, m.erased_ms);
  EXPECT_EQ(d.uid, 1000);
  EXPECT_EQ(erase_msg(8).uid, -1);
  std::vector<uint8_t> b8;
  ASSERT_TRUE(encode(erase_msg(8), b8));
  ASSERT_TRUE(decode(b8, &d));
  EXPECT_EQ(d.uid, -1) << "no uid survives the wire";
  // Every truncation, and a trailing byte, is corrupt.
  for (size_t n = 0; n < b.size(); ++n)
    EXPECT_EQ(decode(std::span<const uint8_t>(b.data(), n), &d).code(), Status::Code::kCorrupt);
  auto longer = b;
  longer.push_back(0);
  EXPECT_EQ(decode(longer, &d).code(), Status::Code::kCorrupt);
  // Limits: empty or oversized fields are refused both ways.
  using Edit = std::function<void(EraseMsg&)>;
  const std::vector<Edit> edits = {
      [](EraseMsg& x) { x.origin = ""; }, [](EraseMsg& x) { x.origin_rel = ""; },
      [](EraseMsg& x) { x.origin = std::string(kMaxNodeName + 1, 'n'); },
      [](EraseMsg& x) { x.origin_rel = std::string(kMaxPathLen + 1, 'p'); },
      [](EraseMsg& x) { x.reason = std::string(kMaxReasonLen + 1, 'r'); }};
  for (const Edit& bad : edits) {
    EraseMsg x = m;
    bad(x);
    std::vector<uint8_t> e;
    EXPECT_EQ(encode(x, e).code(), Status::Code::kInvalid);
  }
  // A peer's oversized path length field is refused before reading it.
  auto huge = b;
  const size_t path_len_at = 8 + 4 + m.origin.size();
  huge[path_len_at] = 0x7f;
  EXPECT_EQ(decode(huge, &d).code(), Status::Code::kCorrupt);
}

TEST(Messages, EraseFramesThroughTheParserAtEveryBufferSize) {
  Bytes wire;
  for (uint64_t i = 1; i <= 20; ++i) {
    ASSERT_TRUE(encode_message(FrameType::kErase, erase_msg(i), wire).is_ok());
    ASSERT_TRUE(
        encode_message(FrameType::kNack, NackMsg{i, NackMsg::kHeld, "held on fs2"}, wire).is_ok());
  }
  for (size_t chunk : kSizes) {
    std::vector<Frame> got;
    ASSERT_TRUE(parse_all(wire, chunk, got).is_ok()) << chunk;
    ASSERT_EQ(got.size(), 40u);
    for (uint64_t i = 1; i <= 20; ++i) {
      const Frame& f = got[2 * (i - 1)];
      ASSERT_EQ(f.type, FrameType::kErase);
      EXPECT_STREQ(frame_type_name(f.type), "ERASE");
      EraseMsg e;
      ASSERT_TRUE(decode(f.payload, &e).is_ok());
      EXPECT_EQ(e.id, i);
      EXPECT_EQ(e.origin_rel, erase_msg(i).origin_rel);
      NackMsg n;
      ASSERT_TRUE(decode(got[2 * (i - 1) + 1].payload, &n).is_ok());
      EXPECT_EQ(n.code, NackMsg::kHeld);
    }
  }
}

}  // namespace
}  // namespace recsync::peer
