#include "backfill/stream.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "backfill_test_util.h"

namespace recsync::backfill {
namespace {

using namespace testing;

// Several thousand sorted entries: short paths first (frames cut by the
// entry count), then long ones (frames cut by bytes); hashes known and not,
// some held, times spread over the range [kT0, kT0 + kDay).
std::vector<ManifestEntry> big_listing(size_t n_short, size_t n_long) {
  std::vector<ManifestEntry> v;
  char buf[64];
  for (size_t i = 0; i < n_short + n_long; ++i) {
    std::snprintf(buf, sizeof buf, "2026/12/01/%08zu", i);
    std::string path = buf;
    if (i >= n_short) path += "/" + std::string(200 + i % 50, 'x') + "/" + std::string(250, 'y');
    path += ".wav";
    v.push_back(entry(path, i % 3 ? "fs1" : "fs2", i * 1000 + 1, kT0 + int64_t(i * 7) % kDay,
                      i % 5 ? i : 0, i % 11 == 0));
  }
  return v;
}

// Feeds `wire` through a FrameParser in pieces of `chunk` bytes (0: two empty
// feeds before each 4096-byte piece), every MANIFEST frame into `stream`.
Status parse_stream(const Bytes& wire, size_t chunk, ManifestStream& stream,
                    std::vector<ManifestEntry>& got) {
  peer::FrameParser p;
  ManifestMsg m;
  auto on_frame = [&](peer::Frame&& f) -> Status {
    if (f.type != peer::FrameType::kManifest) return Status::corrupt("not a MANIFEST frame");
    RECSYNC_RETURN_IF_ERROR(stream.accept(f.payload, &m));
    got.insert(got.end(), m.entries.begin(), m.entries.end());
    return Status::ok();
  };
  size_t step = chunk == 0 ? 4096 : chunk;
  for (size_t pos = 0; pos < wire.size();) {
    if (chunk == 0) {
      RECSYNC_RETURN_IF_ERROR(p.feed({}, on_frame));
      RECSYNC_RETURN_IF_ERROR(p.feed({}, on_frame));
    }
    size_t n = std::min(step, wire.size() - pos);
    RECSYNC_RETURN_IF_ERROR(p.feed(std::span(wire).subspan(pos, n), on_frame));
    pos += n;
  }
  if (!p.idle()) return Status::corrupt("stream ends inside a frame");
  return stream.finish();
}

Bytes write_stream(uint64_t id, const std::vector<ManifestEntry>& v, uint64_t* frames = nullptr) {
  ManifestWriter w(id);
  Bytes wire;
  for (const auto& e : v) EXPECT_TRUE(w.add(e, wire).is_ok());
  EXPECT_TRUE(w.finish(wire).is_ok());
  if (frames) *frames = w.frames();
  return wire;
}

const ListReqMsg kReq{42, ListKind::kRange, {kT0, kT0 + kDay}};

TEST(ManifestStream, ThousandsOfEntriesAtEveryBufferSize) {
  const std::vector<ManifestEntry> sent = big_listing(4200, 2000);
  uint64_t frames = 0;
  const Bytes wire = write_stream(kReq.id, sent, &frames);
  // The first frame is cut by the entry count (4096 short entries), the
  // second by bytes (2000 long ones of ~550 bytes are over 1 MiB).
  EXPECT_GE(frames, 3u);
  for (size_t chunk : kSizes) {
    SCOPED_TRACE("chunk=" + std::to_string(chunk));
    ManifestStream stream(kReq);
    std::vector<ManifestEntry> got;
    Status s = parse_stream(wire, chunk, stream, got);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_TRUE(stream.done());
    EXPECT_EQ(stream.frames(), frames);
    EXPECT_EQ(stream.entries(), sent.size());
    ASSERT_EQ(got.size(), sent.size());
    EXPECT_TRUE(got == sent);
  }
}

TEST(ManifestStream, WriterRespectsFrameLimits) {
  const std::vector<ManifestEntry> sent = big_listing(kMaxEntriesPerFrame * 2 + 1, 3000);
  Bytes wire = write_stream(1, sent);
  peer::FrameParser p;
  size_t frames = 0, entries = 0, by_count = 0, by_bytes = 0;
  bool saw_last = false;
  ASSERT_TRUE(p.feed(wire, [&](peer::Frame&& f) {
                 ++frames;
                 EXPECT_LE(f.payload.size(), peer::kMaxFramePayload);
                 ManifestMsg m;
                 Status s = decode(f.payload, &m);
                 EXPECT_TRUE(s.is_ok()) << s.to_string();
                 EXPECT_LE(m.entries.size(), kMaxEntriesPerFrame);
                 EXPECT_FALSE(saw_last);
                 saw_last = m.last;
                 if (m.entries.size() == kMaxEntriesPerFrame) ++by_count;
                 if (!m.last && m.entries.size() < kMaxEntriesPerFrame) {
                   ++by_bytes;  // cut because the next entry did not fit
                   EXPECT_GT(f.payload.size() + kMaxEntryLen, peer::kMaxFramePayload);
                 }
                 entries += m.entries.size();
                 return Status::ok();
               }).is_ok());
  EXPECT_TRUE(saw_last);
  EXPECT_EQ(entries, sent.size());
  EXPECT_GE(frames, 4u);
  EXPECT_EQ(by_count, 2u);
  EXPECT_GE(by_bytes, 1u);
}

TEST(ManifestStream, WriterRefusesDisorderAndMisuse) {
  ManifestWriter w(1);
  Bytes out;
  ASSERT_TRUE(w.add(entry("b.wav", "fs1"), out).is_ok());
  EXPECT_EQ(w.add(entry("a.wav", "fs1"), out).code(), Status::Code::kInvalid);
  EXPECT_EQ(w.add(entry("b.wav", "fs1"), out).code(), Status::Code::kInvalid);
  EXPECT_EQ(w.add(entry("../c.wav", "fs1"), out).code(), Status::Code::kInvalid);
  ASSERT_TRUE(w.add(entry("b.wav", "fs2"), out).is_ok());
  EXPECT_TRUE(out.empty());  // nothing flushed yet
  ASSERT_TRUE(w.finish(out).is_ok());
  EXPECT_EQ(w.finish(out).code(), Status::Code::kInvalid);
  EXPECT_EQ(w.add(entry("c.wav"), out).code(), Status::Code::kInvalid);
  EXPECT_EQ(w.entries(), 2u);

  // An empty stream is one frame with last = 1.
  ManifestWriter e(9);
  Bytes one;
  ASSERT_TRUE(e.finish(one).is_ok());
  ManifestStream s(ListReqMsg{9, ListKind::kRange, {0, 1}});
  std::vector<ManifestEntry> got;
  ASSERT_TRUE(parse_stream(one, 3, s, got).is_ok());
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(s.frames(), 1u);
}

// One hostile frame sequence and the words its error must contain.
struct Hostile {
  const char* what;
  std::vector<Bytes> bodies;
  const char* message;
  ListReqMsg req = kReq;
  uint64_t cap = kDefaultMaxStreamEntries;
};

TEST(ManifestStream, HostileStreamsAreRefused) {
  const int64_t in = kT0 + 5;
  const ManifestEntry a = entry("a.wav", "fs1", 1, in), b = entry("b.wav", "fs1", 1, in),
                      c = entry("c.wav", "fs1", 1, in);
  ManifestEntry nul = entry(std::string("x\0.wav", 6), "fs1", 1, in);
  const std::vector<Hostile> cases = {
      {"unsorted in a frame", {raw_manifest(42, true, {b, a})}, "out of order"},
      {"unsorted across frames",
       {raw_manifest(42, false, {a, c}), raw_manifest(42, true, {b})},
       "out of order"},
      {"duplicate key", {raw_manifest(42, true, {a, a})}, "duplicate key"},
      {"duplicate across frames",
       {raw_manifest(42, false, {a}), raw_manifest(42, true, {a})},
       "duplicate key"},
      {"same path, origins unsorted",
       {raw_manifest(42, true, {entry("a.wav", "fs2", 1, in), entry("a.wav", "fs1", 1, in)})},
       "out of order"},
      {"entry before the range",
       {raw_manifest(42, true, {entry("a.wav", "fs1", 1, kT0 - 1)})},
       "outside the range"},
      {"entry at the range end",
       {raw_manifest(42, true, {entry("a.wav", "fs1", 1, kT0 + kDay)})},
       "outside the range"},
      {"frame after last",
       {raw_manifest(42, true, {a}), raw_manifest(42, true, {b})},
       "after the last frame"},
      {"empty frame after last",
       {raw_manifest(42, true, {}), raw_manifest(42, false, {})},
       "after the last frame"},
      {"wrong id", {raw_manifest(41, true, {a})}, "carries id 41"},
      {"../ path",
       {raw_manifest(42, true, {entry("../../etc/x.wav", "fs1", 1, in)})},
       "'.' or '..' component"},
      {"absolute path", {raw_manifest(42, true, {entry("/etc/x.wav", "fs1", 1, in)})}, "absolute"},
      {"NUL in path", {raw_manifest(42, true, {nul})}, "x\\x00.wav"},
      {"slash in origin",
       {raw_manifest(42, true, {entry("a.wav", "fs/1", 1, in)})},
       "contains '/'"},
      {"huge count, few bytes", {raw_manifest(42, 1, 0xfffffff0u, {a})}, "exceeds"},
      {"count over the frame maximum",
       {raw_manifest(42, 1, kMaxEntriesPerFrame + 1, {a})},
       "exceeds"},
      {"count larger than the entries", {raw_manifest(42, 1, 3, {a, b})}, "truncated"},
      {"trailing bytes", {raw_manifest(42, 1, 1, {a, b})}, "trailing"},
      {"cap exceeded",
       {raw_manifest(42, false, {a, b}), raw_manifest(42, true, {c})},
       "exceed the cap of 2",
       kReq,
       2},
      {"held list with an unheld entry",
       {raw_manifest(42, true, {entry("a.wav", "fs1", 1, kT0 - kDay)})},
       "is not held",
       {42, ListKind::kHeld, {kT0, kT0 + kDay}}},
      {"held list with an entry inside the window",
       {raw_manifest(42, true, {entry("a.wav", "fs1", 1, in, 1, true)})},
       "inside the window",
       {42, ListKind::kHeld, {kT0, kT0 + kDay}}},
  };
  for (const Hostile& h : cases) {
    SCOPED_TRACE(h.what);
    for (size_t chunk : kSizes) {
      Bytes wire;
      for (const Bytes& body : h.bodies) {
        Bytes f = frame_of(peer::FrameType::kManifest, body);
        wire.insert(wire.end(), f.begin(), f.end());
      }
      ManifestStream stream(h.req, h.cap);
      std::vector<ManifestEntry> got;
      Status s = parse_stream(wire, chunk, stream, got);
      ASSERT_EQ(s.code(), Status::Code::kCorrupt) << chunk << ": " << s.to_string();
      EXPECT_NE(s.message().find(h.message), std::string::npos) << s.message();
      EXPECT_NE(s.message().find("MANIFEST"), std::string::npos) << s.message();
      EXPECT_EQ(stream.finish().code(), Status::Code::kCorrupt);  // sticky
      ManifestMsg m;
      EXPECT_EQ(stream.accept(raw_manifest(42, true, {}), &m).code(), Status::Code::kCorrupt);
    }
  }
}

TEST(ManifestStream, HeldListAcceptsHeldOutsideTheWindow) {
  ListReqMsg req{3, ListKind::kHeld, {kT0, kT0 + 15 * kDay}};
  ManifestStream s(req);
  ManifestMsg m;
  Bytes body = raw_manifest(3, true,
                            {entry("2025/01/01/a.wav", "fs1", 1, kT0 - 300 * kDay, 1, true),
                             entry("2099/01/01/b.wav", "fs2", 1, kT0 + 16 * kDay, 1, true)});
  ASSERT_TRUE(s.accept(body, &m).is_ok()) << s.finish().to_string();
  EXPECT_TRUE(s.finish().is_ok());
  EXPECT_EQ(m.entries.size(), 2u);
}

TEST(ManifestStream, CutShortIsCorruptAndDecodedMessagesAreChecked) {
  ManifestStream s(kReq);
  ManifestMsg m;
  ASSERT_TRUE(s.accept(raw_manifest(42, false, {entry("a.wav", "fs1", 1, kT0)}), &m).is_ok());
  Status f = s.finish();
  EXPECT_EQ(f.code(), Status::Code::kCorrupt);
  EXPECT_NE(f.message().find("before its last frame"), std::string::npos);
  // accept(const ManifestMsg&) re-checks identity rules on messages built elsewhere.
  ManifestStream t(kReq);
  ManifestMsg bad{42, true, {entry("a/../b.wav", "fs1", 1, kT0)}};
  EXPECT_EQ(t.accept(bad).code(), Status::Code::kCorrupt);
  ManifestStream u(kReq);
  EXPECT_TRUE(u.accept(ManifestMsg{42, true, {entry("a.wav", "fs1", 1, kT0)}}).is_ok());
  EXPECT_TRUE(u.finish().is_ok());
}

TEST(HoldsStream, RoundTripAndHostile) {
  HoldsWriter w(5);
  Bytes wire;
  std::vector<HoldEntry> sent;
  for (int i = 0; i < 2600; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "d/%06d.wav", i);
    sent.push_back(hold(buf, "fs1", std::string(420, 'r'), i));
    ASSERT_TRUE(w.add(sent.back(), wire).is_ok());
  }
  ASSERT_TRUE(w.finish(wire).is_ok());
  EXPECT_GE(w.frames(), 2u);  // 2600 x ~470 bytes > 1 MiB
  for (size_t chunk : kSizes) {
    HoldsStream s(5);
    HoldsMsg m;
    std::vector<HoldEntry> got;
    peer::FrameParser p;
    size_t step = chunk ? chunk : 4096;
    for (size_t pos = 0; pos < wire.size(); pos += step) {
      ASSERT_TRUE(p.feed(std::span(wire).subspan(pos, std::min(step, wire.size() - pos)),
                         [&](peer::Frame&& f) {
                           EXPECT_EQ(f.type, peer::FrameType::kHolds);
                           RECSYNC_RETURN_IF_ERROR(s.accept(f.payload, &m));
                           got.insert(got.end(), m.holds.begin(), m.holds.end());
                           return Status::ok();
                         })
                      .is_ok());
    }
    ASSERT_TRUE(s.finish().is_ok()) << chunk;
    EXPECT_TRUE(got == sent);
  }

  HoldsStream dup(1);
  Status s = dup.accept(HoldsMsg{1, true, {hold("a.wav"), hold("a.wav", "fs1", "other")}});
  EXPECT_EQ(s.code(), Status::Code::kCorrupt);
  EXPECT_NE(s.message().find("duplicate key"), std::string::npos) << s.message();
  HoldsStream after(1);
  ASSERT_TRUE(after.accept(HoldsMsg{1, true, {}}).is_ok());
  EXPECT_EQ(after.accept(HoldsMsg{1, true, {}}).code(), Status::Code::kCorrupt);
  HoldsStream cap(1, 1);
  EXPECT_EQ(cap.accept(HoldsMsg{1, true, {hold("a.wav"), hold("b.wav")}}).code(),
            Status::Code::kCorrupt);
  HoldsStream bad(1);
  EXPECT_EQ(bad.accept(HoldsMsg{1, true, {hold("/abs.wav")}}).code(), Status::Code::kCorrupt);
  HoldsStream id(1);
  EXPECT_EQ(id.accept(HoldsMsg{2, true, {}}).code(), Status::Code::kCorrupt);
}

}  // namespace
}  // namespace recsync::backfill
