#include "backfill/messages.h"

#include <gtest/gtest.h>

#include <cstring>

#include "backfill_test_util.h"

namespace recsync::backfill {
namespace {

using namespace testing;

template <typename Msg>
Bytes body_of(const Msg& m) {
  Bytes b;
  Status s = encode(m, b);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return b;
}

// Every proper prefix, and the body with one more byte, must be kCorrupt;
// the body itself must decode and re-encode to the same bytes.
template <typename Msg>
void expect_strict(const Bytes& body) {
  for (size_t n = 0; n < body.size(); ++n) {
    Msg m;
    ASSERT_EQ(decode(std::span(body).first(n), &m).code(), Status::Code::kCorrupt) << n;
  }
  Bytes longer = body;
  longer.push_back(0);
  Msg m;
  EXPECT_EQ(decode(longer, &m).code(), Status::Code::kCorrupt);
  Msg ok;
  ASSERT_TRUE(decode(body, &ok).is_ok());
  EXPECT_EQ(body_of(ok), body);
}

template <typename Msg>
Status decode_bytes(const Bytes& b) {
  Msg m;
  return decode(b, &m);
}

TEST(Messages, DigestReqRep) {
  DigestReqMsg q{7, {{kT0, kT0 + kDay}, {kT0 + kDay, kT0 + 2 * kDay}, {-5, -4}}};
  q.ranges.back() = {kT0 + 3 * kDay, INT64_MAX};
  DigestReqMsg q2;
  ASSERT_TRUE(decode(body_of(q), &q2).is_ok());
  EXPECT_EQ(q2.id, 7u);
  EXPECT_EQ(q2.ranges, q.ranges);
  expect_strict<DigestReqMsg>(body_of(q));
  expect_strict<DigestReqMsg>(body_of(DigestReqMsg{1, {}}));

  DigestRepMsg p{7, {{3, 0xdeadbeefcafef00d}, {0, 0}, {~uint64_t{0}, 1}}};
  DigestRepMsg p2;
  ASSERT_TRUE(decode(body_of(p), &p2).is_ok());
  EXPECT_EQ(p2.id, 7u);
  EXPECT_EQ(p2.digests, p.digests);
  expect_strict<DigestRepMsg>(body_of(p));
}

TEST(Messages, DigestLimits) {
  Bytes out;
  DigestReqMsg q{1, std::vector<TimeRange>(kMaxRanges)};
  for (size_t i = 0; i < kMaxRanges; ++i) q.ranges[i] = {int64_t(i), int64_t(i) + 1};
  ASSERT_TRUE(encode(q, out).is_ok());
  EXPECT_TRUE(decode_bytes<DigestReqMsg>(out).is_ok());
  EXPECT_EQ(decode_bytes<DigestReqMsg>(Bytes(out.begin(), out.end() - 1)).code(),
            Status::Code::kCorrupt);
  out.clear();
  q.ranges.push_back({int64_t(kMaxRanges), int64_t(kMaxRanges) + 1});
  EXPECT_EQ(encode(q, out).code(), Status::Code::kInvalid);
  EXPECT_EQ(encode(DigestReqMsg{1, {{5, 5}}}, out).code(), Status::Code::kInvalid);
  EXPECT_EQ(encode(DigestReqMsg{1, {{5, 9}, {8, 10}}}, out).code(), Status::Code::kInvalid);
  EXPECT_EQ(encode(DigestRepMsg{1, std::vector<RangeDigest>(kMaxRanges + 1)}, out).code(),
            Status::Code::kInvalid);
  EXPECT_TRUE(out.empty());

  // Hand-made bodies a peer could send.
  auto req = [](uint32_t n, std::vector<std::pair<int64_t, int64_t>> rs) {
    Bytes b;
    peer::WireWriter w(b);
    w.u64(1);
    w.u32(n);
    for (auto [a, c] : rs) {
      w.u64(uint64_t(a));
      w.u64(uint64_t(c));
    }
    return b;
  };
  EXPECT_TRUE(decode_bytes<DigestReqMsg>(req(2, {{1, 2}, {2, 3}})).is_ok());
  EXPECT_EQ(decode_bytes<DigestReqMsg>(req(1, {{2, 2}})).code(), Status::Code::kCorrupt);
  EXPECT_EQ(decode_bytes<DigestReqMsg>(req(1, {{3, 2}})).code(), Status::Code::kCorrupt);
  EXPECT_EQ(decode_bytes<DigestReqMsg>(req(2, {{1, 3}, {2, 4}})).code(), Status::Code::kCorrupt);
  EXPECT_EQ(decode_bytes<DigestReqMsg>(req(2, {{5, 6}, {1, 2}})).code(), Status::Code::kCorrupt);
  Status s = decode_bytes<DigestReqMsg>(req(kMaxRanges + 1, {}));
  EXPECT_EQ(s.code(), Status::Code::kCorrupt);
  EXPECT_NE(s.message().find("exceeds"), std::string::npos) << s.message();
  EXPECT_EQ(decode_bytes<DigestReqMsg>(req(0xffffffff, {{1, 2}})).code(), Status::Code::kCorrupt);
  Bytes rep;
  peer::WireWriter w(rep);
  w.u64(1);
  w.u32(kMaxRanges + 1);
  EXPECT_EQ(decode_bytes<DigestRepMsg>(rep).code(), Status::Code::kCorrupt);
}

TEST(Messages, ListReq) {
  for (ListKind k : {ListKind::kRange, ListKind::kHeld}) {
    ListReqMsg m{9, k, {kT0, kT0 + kDay}};
    ListReqMsg m2;
    ASSERT_TRUE(decode(body_of(m), &m2).is_ok());
    EXPECT_EQ(m2.id, 9u);
    EXPECT_EQ(m2.kind, k);
    EXPECT_EQ(m2.range, m.range);
    expect_strict<ListReqMsg>(body_of(m));
  }
  Bytes out;
  EXPECT_EQ(encode(ListReqMsg{1, ListKind::kRange, {5, 5}}, out).code(), Status::Code::kInvalid);
  EXPECT_EQ(encode(ListReqMsg{1, static_cast<ListKind>(3), {5, 6}}, out).code(),
            Status::Code::kInvalid);
  EXPECT_TRUE(out.empty());
  Bytes b = body_of(ListReqMsg{1, ListKind::kRange, {5, 6}});
  for (uint8_t kind : {0, 3, 255}) {
    Bytes bad = b;
    bad[8] = kind;
    EXPECT_EQ(decode_bytes<ListReqMsg>(bad).code(), Status::Code::kCorrupt) << int(kind);
  }
  auto raw = [](int64_t t0, int64_t t1) {
    Bytes r;
    peer::WireWriter w(r);
    w.u64(1);
    w.u8(1);
    w.u64(uint64_t(t0));
    w.u64(uint64_t(t1));
    return r;
  };
  EXPECT_TRUE(decode_bytes<ListReqMsg>(raw(5, 6)).is_ok());
  EXPECT_EQ(decode_bytes<ListReqMsg>(raw(6, 6)).code(), Status::Code::kCorrupt);
  EXPECT_EQ(decode_bytes<ListReqMsg>(raw(7, 6)).code(), Status::Code::kCorrupt);
  EXPECT_EQ(decode_bytes<ListReqMsg>(raw(0, INT64_MIN)).code(), Status::Code::kCorrupt);
}

TEST(Messages, ManifestRoundTrip) {
  ManifestMsg m;
  m.id = 0x0102030405060708;
  m.last = true;
  m.entries = {entry("2026/12/01/a.wav", "fs1", 1, kT0, 1),
               entry("2026/12/01/b.wav", "fs2", 1ull << 40, -1, 0),  // unknown hash
               entry("2026/12/01/c.wav", "n\xc3\xa9", 0, INT64_MAX, 3, true)};
  ManifestMsg m2;
  ASSERT_TRUE(decode(body_of(m), &m2).is_ok());
  EXPECT_EQ(m2.id, m.id);
  EXPECT_TRUE(m2.last);
  EXPECT_EQ(m2.entries, m.entries);
  expect_strict<ManifestMsg>(body_of(m));
  m.last = false;
  m.entries.clear();
  expect_strict<ManifestMsg>(body_of(m));
  // Decoding into a message that held more entries leaves exactly the new ones.
  ASSERT_TRUE(decode(body_of(m), &m2).is_ok());
  EXPECT_TRUE(m2.entries.empty());
  EXPECT_FALSE(m2.last);
}

TEST(Messages, ManifestFieldLimits) {
  // One byte over each maximum is refused by the encoder (kInvalid) and, sent
  // raw, by the decoder (kCorrupt); exactly the maximum passes both.
  struct Case {
    const char* what;
    ManifestEntry e;
    bool ok;
  };
  ASSERT_EQ(max_path().size(), kMaxPathLen);
  const Case cases[] = {
      {"max path", entry(max_path()), true},
      {"path one over", entry(max_path() + "e"), false},
      {"max origin", entry("a.wav", std::string(kMaxOriginLen, 'o')), true},
      {"origin one over", entry("a.wav", std::string(kMaxOriginLen + 1, 'o')), false},
      {"empty origin", entry("a.wav", ""), false},
      {"origin with /", entry("a.wav", "fs/1"), false},
      {"origin with NUL", entry("a.wav", std::string("fs\0", 3)), false},
      {"../ path", entry("../etc/passwd"), false},
      {"inner ..", entry("a/../../b.wav"), false},
      {"absolute path", entry("/etc/passwd"), false},
      {"NUL in path", entry(std::string("a\0.wav", 6)), false},
      {"control in path", entry("a\n.wav"), false},
      {"empty path", entry(""), false},
      {"empty component", entry("a//b.wav"), false},
      {"hidden component", entry(".x/b.wav"), false},
      {"component over 255", entry(std::string(256, 'c')), false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Bytes out;
    Status enc = encode(ManifestMsg{1, true, {c.e}}, out);
    EXPECT_EQ(enc.is_ok(), c.ok) << enc.to_string();
    if (!c.ok) {
      EXPECT_EQ(enc.code(), Status::Code::kInvalid);
      EXPECT_TRUE(out.empty());
    }
    Status dec = decode_bytes<ManifestMsg>(raw_manifest(1, true, {c.e}));
    EXPECT_EQ(dec.is_ok(), c.ok) << dec.to_string();
    if (!c.ok) {
      EXPECT_EQ(dec.code(), Status::Code::kCorrupt);
    }
  }
}

TEST(Messages, ManifestEnumsCountsAndSize) {
  ManifestEntry e = entry("a.wav");
  for (uint8_t flag : {4, 8, 0x80}) {
    EXPECT_EQ(decode_bytes<ManifestMsg>(raw_manifest(1, 1, 1, {e}, flag)).code(),
              Status::Code::kCorrupt)
        << int(flag);
  }
  for (uint8_t last : {2, 255})
    EXPECT_EQ(decode_bytes<ManifestMsg>(raw_manifest(1, last, 1, {e})).code(),
              Status::Code::kCorrupt);
  // Huge count field, few bytes: refused before anything is allocated for it.
  for (uint32_t n : {uint32_t(kMaxEntriesPerFrame + 1), 0xffffffffu}) {
    Status s = decode_bytes<ManifestMsg>(raw_manifest(1, 1, n, {e}));
    EXPECT_EQ(s.code(), Status::Code::kCorrupt);
    EXPECT_NE(s.message().find("exceeds"), std::string::npos) << s.message();
  }
  // A count within the maximum but larger than the entries present: truncated.
  EXPECT_EQ(decode_bytes<ManifestMsg>(raw_manifest(1, 1, kMaxEntriesPerFrame, {e})).code(),
            Status::Code::kCorrupt);
  // Count below the entries present: trailing bytes.
  EXPECT_EQ(decode_bytes<ManifestMsg>(raw_manifest(1, 1, 1, {e, e})).code(),
            Status::Code::kCorrupt);

  // kMaxEntriesPerFrame entries encode; one more does not.
  ManifestMsg m{1, false, {}};
  for (size_t i = 0; i < kMaxEntriesPerFrame; ++i) m.entries.push_back(entry("e.wav"));
  Bytes out;
  ASSERT_TRUE(encode(m, out).is_ok());
  ASSERT_TRUE(decode_bytes<ManifestMsg>(out).is_ok());
  m.entries.push_back(entry("e.wav"));
  out.clear();
  EXPECT_EQ(encode(m, out).code(), Status::Code::kInvalid);
  // Entries that fit by count but not in kMaxFramePayload bytes.
  ManifestMsg big{1, false, {}};
  std::string long_path =
      std::string(255, 'a') + "/" + std::string(255, 'b') + "/" + std::string(255, 'c');
  while (kStreamHeadLen + big.entries.size() * encoded_size(entry(long_path)) <=
         peer::kMaxFramePayload)
    big.entries.push_back(entry(long_path));
  out.clear();
  EXPECT_EQ(encode(big, out).code(), Status::Code::kInvalid);
  EXPECT_TRUE(out.empty());
  big.entries.pop_back();
  EXPECT_TRUE(encode(big, out).is_ok());
  EXPECT_LE(out.size(), peer::kMaxFramePayload);
}

TEST(Messages, EncodedSizeMatches) {
  ManifestEntry e = entry("2026/12/01/a.wav", "fs1", 5, kT0, 1, true);
  EXPECT_EQ(body_of(ManifestMsg{1, false, {e}}).size(), kStreamHeadLen + encoded_size(e));
  ManifestEntry u = entry("a.wav", "fs1", 5, kT0, 0);
  EXPECT_EQ(body_of(ManifestMsg{1, false, {u}}).size(), kStreamHeadLen + encoded_size(u));
  RecordingRef r = ref_of(e);
  EXPECT_EQ(body_of(PullMsg{1, {r}}).size(), kPullHeadLen + encoded_size(r));
  HoldEntry h = hold("a.wav");
  EXPECT_EQ(body_of(HoldsMsg{1, false, {h}}).size(), kStreamHeadLen + encoded_size(h));
  EXPECT_EQ(encoded_size(entry(max_path(), std::string(kMaxOriginLen, 'o'))), kMaxEntryLen);
  EXPECT_EQ(encoded_size(hold(max_path(), std::string(kMaxOriginLen, 'o'),
                              std::string(kMaxHoldReasonLen, 'r'))),
            kMaxHoldLen);
}

TEST(Messages, Pull) {
  PullMsg m{5,
            {ref_of(entry("a.wav", "fs1", 7, kT0, 2)), ref_of(entry("b.wav", "fs2", 8, kT0, 0))}};
  PullMsg m2;
  ASSERT_TRUE(decode(body_of(m), &m2).is_ok());
  EXPECT_EQ(m2.id, 5u);
  EXPECT_EQ(m2.recordings, m.recordings);
  EXPECT_FALSE(m2.recordings[1].has_hash);
  expect_strict<PullMsg>(body_of(m));

  Bytes out;
  EXPECT_EQ(encode(PullMsg{1, {}}, out).code(), Status::Code::kInvalid);
  EXPECT_EQ(encode(PullMsg{1, {ref_of(entry("../x"))}}, out).code(), Status::Code::kInvalid);
  PullMsg many{1, {}};
  many.recordings.assign(kMaxEntriesPerFrame + 1, ref_of(entry("a.wav")));
  EXPECT_EQ(encode(many, out).code(), Status::Code::kInvalid);
  EXPECT_TRUE(out.empty());

  auto raw = [](uint32_t n, const std::string& path, uint8_t flags) {
    Bytes b;
    peer::WireWriter w(b);
    w.u64(1);
    w.u32(n);
    if (n) {
      w.str(path);
      w.str("fs1");
      w.u64(1);
      w.u8(flags);
    }
    return b;
  };
  EXPECT_TRUE(decode_bytes<PullMsg>(raw(1, "a.wav", 0)).is_ok());
  EXPECT_EQ(decode_bytes<PullMsg>(raw(0, "", 0)).code(), Status::Code::kCorrupt);
  EXPECT_EQ(decode_bytes<PullMsg>(raw(1, "/abs", 0)).code(), Status::Code::kCorrupt);
  EXPECT_EQ(decode_bytes<PullMsg>(raw(1, "a.wav", 2)).code(),
            Status::Code::kCorrupt);  // no held bit
  EXPECT_EQ(decode_bytes<PullMsg>(raw(0xffffffff, "a.wav", 0)).code(), Status::Code::kCorrupt);
}

TEST(Messages, HoldsAndHoldsReq) {
  HoldsReqMsg q{77}, q2;
  ASSERT_TRUE(decode(body_of(q), &q2).is_ok());
  EXPECT_EQ(q2.id, 77u);
  expect_strict<HoldsReqMsg>(body_of(q));

  HoldEntry unknown = hold("b.wav", "fs2", "", -3);
  unknown.has_hash = false;
  std::memset(unknown.hash, 0, kHashLen);
  HoldsMsg m{4, true, {hold("a.wav"), unknown}};
  HoldsMsg m2;
  ASSERT_TRUE(decode(body_of(m), &m2).is_ok());
  EXPECT_EQ(m2.id, 4u);
  EXPECT_TRUE(m2.last);
  EXPECT_EQ(m2.holds, m.holds);
  expect_strict<HoldsMsg>(body_of(m));

  Bytes out;
  EXPECT_TRUE(
      encode(HoldsMsg{1, true, {hold("a.wav", "fs1", std::string(kMaxHoldReasonLen, 'r'))}}, out)
          .is_ok());
  out.clear();
  EXPECT_EQ(
      encode(HoldsMsg{1, true, {hold("a.wav", "fs1", std::string(kMaxHoldReasonLen + 1, 'r'))}},
             out)
          .code(),
      Status::Code::kInvalid);
  EXPECT_EQ(encode(HoldsMsg{1, true, {hold("a/./b.wav")}}, out).code(), Status::Code::kInvalid);
  EXPECT_TRUE(out.empty());
  // A reason one byte over, sent raw.
  Bytes b = body_of(HoldsMsg{1, true, {hold("a.wav", "fs1", std::string(kMaxHoldReasonLen, 'r'))}});
  const size_t reason_len_at = kStreamHeadLen + 4 + 5 + 4 + 3 + 1 + kHashLen;
  ASSERT_EQ(b[reason_len_at + 2], (kMaxHoldReasonLen >> 8) & 0xff);
  b[reason_len_at + 3] += 1;  // declared 1025
  b.insert(b.begin() + reason_len_at + 4, 'r');
  Status s = decode_bytes<HoldsMsg>(b);
  EXPECT_EQ(s.code(), Status::Code::kCorrupt);
  EXPECT_NE(s.message().find("reason"), std::string::npos) << s.message();
}

TEST(Messages, FrameTypesAreKnownAndNamed) {
  using peer::FrameType;
  const std::pair<FrameType, const char*> types[] = {{FrameType::kDigestReq, "DIGEST_REQ"},
                                                     {FrameType::kDigestRep, "DIGEST_REP"},
                                                     {FrameType::kListReq, "LIST_REQ"},
                                                     {FrameType::kManifest, "MANIFEST"},
                                                     {FrameType::kPull, "PULL"},
                                                     {FrameType::kHoldsReq, "HOLDS_REQ"},
                                                     {FrameType::kHolds, "HOLDS"},
                                                     {FrameType::kPullRep, "PULL_REP"}};
  uint8_t want = 11;
  for (auto [t, name] : types) {
    EXPECT_EQ(static_cast<uint8_t>(t), want++);
    EXPECT_TRUE(peer::is_known_frame_type(static_cast<uint8_t>(t)));
    EXPECT_STREQ(peer::frame_type_name(t), name);
  }
  EXPECT_EQ(static_cast<uint8_t>(FrameType::kHold), 10);
  EXPECT_EQ(static_cast<uint8_t>(FrameType::kErase), 19);  // erasure, protocol version 3
  EXPECT_FALSE(peer::is_known_frame_type(20));
}

}  // namespace
}  // namespace recsync::backfill
