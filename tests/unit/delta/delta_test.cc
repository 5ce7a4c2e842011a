#include "delta/delta.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace recsync::delta {
namespace {

using Bytes = std::vector<uint8_t>;

// librsync's tests/testcommon.sh buffer sizes. 0 means: interleave empty
// calls (no input, or no output space) with real ones of kZeroStandIn bytes.
constexpr size_t kSizes[] = {0, 1, 2, 3, 7, 15, 100, 10000, 200000};
constexpr size_t kZeroStandIn = 4096;

Bytes random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

Bytes concat(const Bytes& a, const Bytes& b) {
  Bytes r = a;
  r.insert(r.end(), b.begin(), b.end());
  return r;
}

// Drives a job one step() at a time: input offered `chunk` bytes at a time,
// output drained `drain` bytes at a time. Fails on any stall.
Status drive(StreamJob& job, std::span<const uint8_t> input, size_t chunk, size_t drain,
             Bytes& out) {
  size_t pos = 0;
  const size_t in_step = chunk == 0 ? kZeroStandIn : chunk;
  const size_t out_step = drain == 0 ? kZeroStandIn : drain;
  Bytes buf(out_step);
  bool eof_given = false;  // once the last byte was offered, eof stays set
  const size_t max_rounds = 4 * (input.size() + 1) + 4 * (out.capacity() + 1) + 10'000'000;
  for (size_t round = 0; !job.done(); ++round) {
    if (round > max_rounds) return Status::invalid("test: too many rounds");
    // An empty offer must be harmless (after eof only once all input is in:
    // eof says the offered bytes are all there is).
    if (chunk == 0 && (!eof_given || pos == input.size())) {
      std::span<const uint8_t> none;
      std::span<uint8_t> space(buf);
      size_t before = space.size();
      RECSYNC_RETURN_IF_ERROR(job.step(none, eof_given, space));
      out.insert(out.end(), buf.begin(), buf.begin() + (before - space.size()));
      if (job.done()) break;
    }
    size_t n = std::min(in_step, input.size() - pos);
    std::span<const uint8_t> in = input.subspan(pos, n);
    bool eof = pos + n == input.size();
    if (drain == 0) {  // no output space must be harmless too
      std::span<uint8_t> none;
      eof_given = eof_given || eof;
      RECSYNC_RETURN_IF_ERROR(job.step(in, eof, none));
      pos += n - in.size();
      if (job.done()) break;
      n = std::min(in_step, input.size() - pos);
      in = input.subspan(pos, n);
      eof = pos + n == input.size();
    }
    std::span<uint8_t> space(buf);
    eof_given = eof_given || eof;
    RECSYNC_RETURN_IF_ERROR(job.step(in, eof, space));
    size_t used_in = n - in.size();
    size_t produced = buf.size() - space.size();
    out.insert(out.end(), buf.begin(), buf.begin() + produced);
    pos += used_in;
    if (used_in == 0 && produced == 0 && eof && !job.done())
      return Status::invalid("test: job stalled at end of input");
  }
  if (pos != input.size()) return Status::invalid("test: job done before input consumed");
  return Status::ok();
}

// Feeds the whole input through feed() in chunks (0: empty feeds in between).
Status drive_feed(StreamJob& job, std::span<const uint8_t> input, size_t chunk, Bytes& out) {
  size_t step = chunk == 0 ? kZeroStandIn : chunk;
  size_t pos = 0;
  do {
    if (chunk == 0) {
      RECSYNC_RETURN_IF_ERROR(job.feed({}, false, out));
      RECSYNC_RETURN_IF_ERROR(job.feed({}, false, out));
    }
    size_t n = std::min(step, input.size() - pos);
    RECSYNC_RETURN_IF_ERROR(job.feed(input.subspan(pos, n), pos + n == input.size(), out));
    pos += n;
  } while (pos < input.size());
  if (!job.done()) return Status::invalid("test: not done after eof");
  return Status::ok();
}

Status load_chunked(LoadedSignature& sig, std::span<const uint8_t> bytes, size_t chunk) {
  size_t step = chunk == 0 ? kZeroStandIn : chunk;
  size_t pos = 0;
  do {
    if (chunk == 0) RECSYNC_RETURN_IF_ERROR(sig.feed({}, false));
    size_t n = std::min(step, bytes.size() - pos);
    RECSYNC_RETURN_IF_ERROR(sig.feed(bytes.subspan(pos, n), pos + n == bytes.size()));
    pos += n;
  } while (pos < bytes.size());
  return Status::ok();
}

BasisReader span_reader(std::span<const uint8_t> basis) {
  return [basis](uint64_t off, std::span<uint8_t> buf) -> Result<size_t> {
    if (off >= basis.size()) return size_t{0};
    size_t n = std::min<uint64_t>(buf.size(), basis.size() - off);
    std::copy_n(basis.begin() + off, n, buf.begin());
    return n;
  };
}

Bytes must(Result<Bytes> r) {
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r ? std::move(r).value() : Bytes{};
}

// ------------------------------------------------------------- round trips

struct Case {
  const char* name;
  Bytes basis;
  Bytes next;
};

std::vector<Case> round_trip_cases() {
  std::vector<Case> cs;
  Bytes big = random_bytes(3 << 20, 1);
  Bytes mid = random_bytes(1 << 20, 2);
  cs.push_back({"empty basis", {}, mid});
  cs.push_back({"basis is prefix (resume)", Bytes(big.begin(), big.begin() + 2'400'017), big});
  cs.push_back({"identical", big, big});
  cs.push_back({"unrelated", random_bytes(500'000, 3), mid});
  cs.push_back({"new file empty", mid, {}});
  cs.push_back({"both empty", {}, {}});
  for (size_t n : {size_t{1}, size_t{2}, size_t{100}, size_t{4097}, size_t{65537}}) {
    Bytes f = random_bytes(n, 10 + n);
    Bytes b = f;
    if (!b.empty()) b[b.size() / 2] ^= 0x5a;  // one changed byte
    cs.push_back({"small edited", b, f});
  }
  // Edited in the middle and appended to: typical of a re-sent recording.
  Bytes edited = big;
  for (size_t i = 1'000'000; i < 1'000'500; ++i) edited[i] = 0;
  edited.insert(edited.end(), 12345, 7);
  cs.push_back({"edited and grown", big, edited});
  return cs;
}

TEST(DeltaRoundTrip, OneShotReproducesNewFile) {
  for (const Case& c : round_trip_cases()) {
    SCOPED_TRACE(std::string(c.name) + " basis=" + std::to_string(c.basis.size()) +
                 " new=" + std::to_string(c.next.size()));
    Bytes sig = must(signature_of(c.basis));
    Bytes d = must(delta_of(sig, c.next));
    Bytes out = must(patch(c.basis, d));
    ASSERT_EQ(out.size(), c.next.size());
    EXPECT_TRUE(out == c.next);
  }
}

TEST(DeltaRoundTrip, ResumeDeltaIsSmall) {
  // The receiver holds the first 80% of the file (an interrupted transfer):
  // the delta must carry little more than the missing 20%.
  Bytes file = random_bytes(3'000'000, 42);
  Bytes partial(file.begin(), file.begin() + 2'400'000);
  Bytes d = must(delta_of(must(signature_of(partial)), file));
  EXPECT_LT(d.size(), file.size() / 4);
  EXPECT_GE(d.size(), file.size() - partial.size());  // the new bytes must be in it
  EXPECT_TRUE(must(patch(partial, d)) == file);
}

TEST(DeltaRoundTrip, IdenticalAndUnrelatedDeltaSizes) {
  Bytes file = random_bytes(1'000'000, 5);
  Bytes same = must(delta_of(must(signature_of(file)), file));
  EXPECT_LT(same.size(), file.size() / 100);
  Bytes other = random_bytes(1'000'000, 6);
  Bytes diff = must(delta_of(must(signature_of(other)), file));
  EXPECT_GT(diff.size(), file.size());  // all literal, plus command bytes
}

TEST(SignatureJob, BlockLengthFollowsBasisSize) {
  auto small = SignatureJob::create(1000);
  auto large = SignatureJob::create(100 << 20);
  auto unknown = SignatureJob::create(-1);
  ASSERT_TRUE(small && large && unknown);
  EXPECT_LT(small->block_len(), large->block_len());
  EXPECT_GT(unknown->block_len(), 0u);
  Bytes sig = must(signature_of(random_bytes(1000, 1)));
  ASSERT_GE(sig.size(), 12u);
  uint32_t magic = (uint32_t{sig[0]} << 24) | (uint32_t{sig[1]} << 16) | (sig[2] << 8) | sig[3];
  EXPECT_EQ(magic, static_cast<uint32_t>(RS_BLAKE2_SIG_MAGIC));
}

// ------------------------------------------- every job at every buffer size

class BufferSizes : public ::testing::Test {
 protected:
  void SetUp() override {
    next_ = random_bytes(20'000, 77);
    basis_ = Bytes(next_.begin(), next_.begin() + 13'001);  // partial file
    basis_.insert(basis_.end(), 300, 9);                    // plus junk
    sig_ = must(signature_of(basis_));
    delta_ = must(delta_of(sig_, next_));
    ASSERT_TRUE(must(patch(basis_, delta_)) == next_);
  }
  Bytes basis_, next_, sig_, delta_;
};

TEST_F(BufferSizes, SignatureJob) {
  for (size_t c : kSizes) {
    for (size_t d : kSizes) {
      SCOPED_TRACE("chunk=" + std::to_string(c) + " drain=" + std::to_string(d));
      auto job = SignatureJob::create(static_cast<int64_t>(basis_.size()));
      ASSERT_TRUE(job);
      Bytes out;
      Status s = drive(*job, basis_, c, d, out);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      EXPECT_TRUE(out == sig_);
    }
    auto job = SignatureJob::create(static_cast<int64_t>(basis_.size()));
    Bytes out;
    ASSERT_TRUE(drive_feed(*job, basis_, c, out).is_ok());
    EXPECT_TRUE(out == sig_);
  }
}

TEST_F(BufferSizes, LoadedSignature) {
  for (size_t c : kSizes) {
    SCOPED_TRACE("chunk=" + std::to_string(c));
    LoadedSignature sig;
    Status s = load_chunked(sig, sig_, c);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    ASSERT_TRUE(sig.ready());
    auto job = DeltaJob::create(sig);
    ASSERT_TRUE(job);
    Bytes out;
    ASSERT_TRUE(job->feed(next_, true, out).is_ok());
    EXPECT_TRUE(out == delta_);
  }
}

TEST_F(BufferSizes, DeltaJob) {
  LoadedSignature sig;
  ASSERT_TRUE(sig.feed(sig_, true).is_ok());
  for (size_t c : kSizes) {
    for (size_t d : kSizes) {
      SCOPED_TRACE("chunk=" + std::to_string(c) + " drain=" + std::to_string(d));
      auto job = DeltaJob::create(sig);
      ASSERT_TRUE(job);
      Bytes out;
      Status s = drive(*job, next_, c, d, out);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      EXPECT_TRUE(out == delta_);
    }
    auto job = DeltaJob::create(sig);
    Bytes out;
    ASSERT_TRUE(drive_feed(*job, next_, c, out).is_ok());
    EXPECT_TRUE(out == delta_);
  }
}

TEST_F(BufferSizes, PatchJob) {
  for (size_t c : kSizes) {
    for (size_t d : kSizes) {
      SCOPED_TRACE("chunk=" + std::to_string(c) + " drain=" + std::to_string(d));
      auto job = PatchJob::create(span_reader(basis_));
      ASSERT_TRUE(job);
      Bytes out;
      Status s = drive(**job, delta_, c, d, out);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      EXPECT_TRUE(out == next_);
    }
    auto job = PatchJob::create(span_reader(basis_));
    Bytes out;
    ASSERT_TRUE(drive_feed(**job, delta_, c, out).is_ok());
    EXPECT_TRUE(out == next_);
  }
}

TEST(BufferSizesLarge, FeedChunkingOnMegabytes) {
  Bytes next = random_bytes(3 << 20, 8);
  Bytes basis(next.begin(), next.begin() + (2 << 20) + 3);
  Bytes sig = must(signature_of(basis));
  Bytes d = must(delta_of(sig, next));
  for (size_t c : {size_t{100}, size_t{10000}, size_t{200000}}) {
    SCOPED_TRACE("chunk=" + std::to_string(c));
    auto sj = SignatureJob::create(static_cast<int64_t>(basis.size()));
    Bytes s_out;
    ASSERT_TRUE(drive_feed(*sj, basis, c, s_out).is_ok());
    EXPECT_TRUE(s_out == sig);
    LoadedSignature ls;
    ASSERT_TRUE(load_chunked(ls, sig, c).is_ok());
    auto dj = DeltaJob::create(ls);
    Bytes d_out;
    ASSERT_TRUE(drive_feed(*dj, next, c, d_out).is_ok());
    EXPECT_TRUE(d_out == d);
    auto pj = PatchJob::create(span_reader(basis));
    Bytes p_out;
    ASSERT_TRUE(drive_feed(**pj, d, c, p_out).is_ok());
    EXPECT_TRUE(p_out == next);
  }
}

// ----------------------------------------------------------- bad input

TEST(DeltaErrors, TruncatedSignatureIsCorrupt) {
  Bytes sig = must(signature_of(random_bytes(5000, 1)));  // 256-byte blocks, 36-byte entries
  for (size_t n :
       {size_t{0}, size_t{3}, size_t{11}, size_t{12 + 1}, size_t{12 + 35}, sig.size() - 1}) {
    SCOPED_TRACE(n);
    LoadedSignature ls;
    Status s = ls.feed(std::span(sig).first(n), true);
    EXPECT_EQ(s.code(), Status::Code::kCorrupt) << s.to_string();
    EXPECT_FALSE(ls.ready());
    EXPECT_FALSE(DeltaJob::create(ls).is_ok());
  }
}

TEST(DeltaErrors, BadSignatureHeadersAreCorrupt) {
  Bytes good = must(signature_of(random_bytes(5000, 1)));
  auto with = [&](size_t at, uint32_t v) {
    Bytes b = good;
    b[at] = v >> 24, b[at + 1] = v >> 16, b[at + 2] = v >> 8, b[at + 3] = v;
    return b;
  };
  std::vector<Bytes> bad = {
      with(0, 0x12345678),                               // not librsync
      with(0, static_cast<uint32_t>(RS_MD4_SIG_MAGIC)),  // weak hash: refused
      with(4, 0),                                        // block length 0
      with(4, kMaxBlockLen + 1),                         // absurd block length
      with(8, 4),                                        // strong sum too short
      with(8, 1000),                                     // strong sum too long
      random_bytes(1000, 99),
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(i);
    LoadedSignature ls;
    Status s = ls.feed(bad[i], true);
    EXPECT_EQ(s.code(), Status::Code::kCorrupt) << s.to_string();
    // Sticky.
    EXPECT_FALSE(ls.feed({}, true).is_ok());
  }
}

TEST(DeltaErrors, OversizedSignatureRefused) {
  Bytes sig = must(signature_of(random_bytes(100'000, 1)));
  LoadedSignature ls(/*max_bytes=*/1000);
  Status s = load_chunked(ls, sig, 100);
  EXPECT_EQ(s.code(), Status::Code::kCorrupt);
}

TEST(DeltaErrors, TruncatedDeltaIsCorrupt) {
  Bytes basis = random_bytes(10'000, 1);
  Bytes next = concat(Bytes(basis.begin(), basis.begin() + 6000), random_bytes(3000, 2));
  Bytes d = must(delta_of(must(signature_of(basis)), next));
  for (size_t n = 0; n < d.size(); n += (n < 64 || n + 64 > d.size()) ? 1 : 97) {
    auto job = PatchJob::create(span_reader(basis));
    Bytes out;
    Status s = (*job)->feed(std::span(d).first(n), true, out);
    ASSERT_EQ(s.code(), Status::Code::kCorrupt) << "n=" << n << " " << s.to_string();
  }
}

TEST(DeltaErrors, GarbageAndTrailingBytes) {
  Bytes basis = random_bytes(10'000, 1);
  Bytes d = must(delta_of(must(signature_of(basis)), basis));
  {
    auto job = PatchJob::create(span_reader(basis));
    Bytes out;
    EXPECT_EQ((*job)->feed(random_bytes(500, 3), true, out).code(), Status::Code::kCorrupt);
  }
  {
    auto job = PatchJob::create(span_reader(basis));
    Bytes out;
    Status s = (*job)->feed(concat(d, {1, 2, 3}), true, out);
    EXPECT_EQ(s.code(), Status::Code::kCorrupt) << s.to_string();
  }
}

TEST(DeltaErrors, CopyPastEndOfBasis) {
  // A delta made against a longer basis, applied to a shorter one.
  Bytes basis = random_bytes(50'000, 1);
  Bytes d = must(delta_of(must(signature_of(basis)), basis));
  Bytes shorter(basis.begin(), basis.begin() + 20'000);
  auto r = patch(shorter, d);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorrupt);
  EXPECT_NE(r.status().message().find("past end of basis"), std::string::npos);
}

TEST(DeltaErrors, BasisReadErrorPropagates) {
  Bytes basis = random_bytes(50'000, 1);
  Bytes d = must(delta_of(must(signature_of(basis)), basis));
  auto job = PatchJob::create(
      [](uint64_t, std::span<uint8_t>) -> Result<size_t> { return Status::io("disk on fire"); });
  Bytes out;
  Status s = (*job)->feed(d, true, out);
  EXPECT_EQ(s.code(), Status::Code::kIo);
  EXPECT_NE(s.message().find("disk on fire"), std::string::npos);
}

TEST(DeltaErrors, OutputCap) {
  Bytes next = random_bytes(100'000, 1);
  Bytes d = must(delta_of(must(signature_of({})), next));
  auto job = PatchJob::create(span_reader({}), /*max_output=*/50'000);
  Bytes out;
  EXPECT_EQ((*job)->feed(d, true, out).code(), Status::Code::kCorrupt);
}

TEST(DeltaErrors, FlippedDeltaBytesNeverCrashOrHang) {
  Bytes basis = random_bytes(20'000, 1);
  Bytes next = concat(Bytes(basis.begin(), basis.begin() + 15'000), random_bytes(2000, 2));
  Bytes d = must(delta_of(must(signature_of(basis)), next));
  std::mt19937 rng(7);
  int failures = 0;
  for (int i = 0; i < 300; ++i) {
    Bytes bad = d;
    bad[rng() % bad.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    auto job = PatchJob::create(span_reader(basis), 1 << 20);
    Bytes out;
    Status s = (*job)->feed(bad, true, out);
    if (!s.is_ok()) ++failures;
    // A flip in literal data passes here; the whole-file hash catches it.
  }
  EXPECT_GT(failures, 0);
}

TEST(DeltaErrors, EofCannotBeWithdrawn) {
  auto job = SignatureJob::create(10);
  Bytes out;
  Bytes in = {1, 2, 3};
  std::span<const uint8_t> s(in);
  std::span<uint8_t> none;
  ASSERT_TRUE(job->step(s, true, none).is_ok());
  EXPECT_EQ(job->feed({}, false, out).code(), Status::Code::kInvalid);
}

}  // namespace
}  // namespace recsync::delta
