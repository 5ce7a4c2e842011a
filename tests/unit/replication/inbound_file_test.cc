#include "replication/inbound_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

namespace recsync::replication {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

Bytes random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Bytes b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng());
  return b;
}

void write_file(const std::string& path, const Bytes& b) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

Bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(f), {});
}

std::string hash_of(const Bytes& b) { return hash_bytes(b.data(), b.size()); }

// What the sender does with the receiver's signature.
Bytes sender_delta(const Bytes& signature, const Bytes& file) {
  auto d = delta::delta_of(signature, file);
  EXPECT_TRUE(d) << d.status().to_string();
  return d ? *d : Bytes{};
}

Status feed_chunks(InboundFile& in, std::span<const uint8_t> delta, size_t chunk) {
  for (size_t pos = 0; pos < delta.size(); pos += chunk)
    RECSYNC_RETURN_IF_ERROR(in.feed_delta(delta.subspan(pos, std::min(chunk, delta.size() - pos))));
  return Status::ok();
}

class InboundFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-inbound-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ + "/archive";
    outside_ = base_ + "/outside";
    fs::create_directories(root_);
    fs::create_directories(outside_);
  }
  void TearDown() override { fs::remove_all(base_); }

  // Every name under a folder, recursively, relative to it.
  std::set<std::string> tree(const std::string& dir) {
    std::set<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir))
      out.insert(e.path().lexically_relative(dir).string());
    return out;
  }
  std::set<std::string> hidden_files(const std::string& dir) {
    std::set<std::string> out;
    for (auto& e : fs::recursive_directory_iterator(dir))
      if (e.path().filename().string()[0] == '.') out.insert(e.path().filename().string());
    return out;
  }
  Result<std::unique_ptr<InboundFile>> begin(const std::string& rel, const Bytes& content,
                                             const InboundOptions& opt = {}) {
    return InboundFile::begin(env_, root_, rel, content.size(), hash_of(content), kMtime, opt);
  }

  static constexpr int64_t kMtime = 1'700'000'000'123'456'789;
  Env* env_ = Env::posix();
  std::string base_, root_, outside_;
};

TEST_F(InboundFileTest, FullTransferWithNoBasisAtEveryChunkSize) {
  const Bytes file = random_bytes(300'000, 1);
  int i = 0;
  for (size_t chunk : {1, 2, 3, 7, 15, 100, 10000, 200000}) {
    const std::string rel = "2024/05/0" + std::to_string(i++) + "/call.wav";
    auto in = begin(rel, file);
    ASSERT_TRUE(in) << in.status().to_string();
    EXPECT_EQ((*in)->basis_kind(), BasisKind::kNone);
    EXPECT_FALSE((*in)->signature().empty());  // an empty basis still has a header
    const Bytes d = sender_delta((*in)->signature(), file);
    ASSERT_TRUE(feed_chunks(**in, d, chunk)) << chunk;
    auto res = (*in)->finish();
    ASSERT_TRUE(res) << res.status().to_string();
    EXPECT_EQ(res->rel, rel);
    EXPECT_FALSE(res->already);
    EXPECT_EQ(res->size, file.size());
    EXPECT_EQ(read_file(root_ + "/" + rel), file) << chunk;
    struct stat st;
    ASSERT_EQ(::stat((root_ + "/" + rel).c_str(), &st), 0);
    EXPECT_EQ(int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec, kMtime);
  }
  EXPECT_TRUE(hidden_files(root_).empty());
}

TEST_F(InboundFileTest, LiteralTransferWithNoBasisAtEveryChunkSize) {
  const Bytes file = random_bytes(300'000, 3);
  int i = 0;
  for (size_t chunk : {1, 2, 3, 7, 15, 100, 10000, 200000}) {
    const std::string rel = "lit/" + std::to_string(i++) + ".wav";
    auto in = begin(rel, file);
    ASSERT_TRUE(in) << in.status().to_string();
    ASSERT_EQ((*in)->basis_size(), 0u);
    for (size_t off = 0; off < file.size(); off += chunk) {
      std::span<const uint8_t> part(file.data() + off, std::min(chunk, file.size() - off));
      ASSERT_TRUE((*in)->feed_literal(part)) << chunk;
    }
    auto res = (*in)->finish();
    ASSERT_TRUE(res) << res.status().to_string();
    EXPECT_EQ(read_file(root_ + "/" + rel), file) << chunk;
  }
  EXPECT_TRUE(hidden_files(root_).empty());
}

TEST_F(InboundFileTest, LiteralIsRefusedWhenOversizedMixedOrWithABasis) {
  const Bytes file = random_bytes(1000, 4);
  {
    auto in = begin("over.wav", file);
    ASSERT_TRUE(in);
    const Bytes more = random_bytes(1001, 5);
    EXPECT_EQ((*in)->feed_literal(more).code(), Status::Code::kCorrupt);
    (*in)->discard();
  }
  {
    auto in = begin("mixed.wav", file);
    ASSERT_TRUE(in);
    ASSERT_TRUE((*in)->feed_literal(std::span<const uint8_t>(file.data(), 10)));
    EXPECT_EQ((*in)->feed_delta(sender_delta((*in)->signature(), file)).code(),
              Status::Code::kInvalid);
    (*in)->discard();
  }
  {
    // A short literal: finish() sees the wrong size and publishes nothing.
    auto in = begin("short.wav", file);
    ASSERT_TRUE(in);
    ASSERT_TRUE((*in)->feed_literal(std::span<const uint8_t>(file.data(), 999)));
    EXPECT_EQ((*in)->finish().status().code(), Status::Code::kCorrupt);
    EXPECT_FALSE(std::filesystem::exists(root_ + "/short.wav"));
  }
  {
    // With an older version as the basis, only a delta is accepted.
    auto first = begin("v.wav", file);
    ASSERT_TRUE(first);
    ASSERT_TRUE((*first)->feed_literal(file));
    ASSERT_TRUE((*first)->finish());
    const Bytes next = random_bytes(1000, 6);
    auto in = begin("v.wav", next);
    ASSERT_TRUE(in);
    ASSERT_GT((*in)->basis_size(), 0u);
    EXPECT_EQ((*in)->feed_literal(next).code(), Status::Code::kInvalid);
    (*in)->discard();
  }
}

TEST_F(InboundFileTest, EmptyFile) {
  const Bytes empty;
  auto in = begin("e.wav", empty);
  ASSERT_TRUE(in) << in.status().to_string();
  ASSERT_TRUE((*in)->feed_delta(sender_delta((*in)->signature(), empty)));
  auto res = (*in)->finish();
  ASSERT_TRUE(res) << res.status().to_string();
  EXPECT_TRUE(fs::exists(root_ + "/e.wav"));
  EXPECT_EQ(fs::file_size(root_ + "/e.wav"), 0u);
}

TEST_F(InboundFileTest, ResumeAfterCutSendsOnlyTheRest) {
  const Bytes file = random_bytes(2 << 20, 2);
  const std::string rel = "a/b/call.wav";
  {
    auto in = begin(rel, file);
    ASSERT_TRUE(in) << in.status().to_string();
    const Bytes d = sender_delta((*in)->signature(), file);
    ASSERT_TRUE(feed_chunks(**in, std::span(d).first(d.size() * 8 / 10), 65536));
    ASSERT_TRUE((*in)->abort_keep_partial());
  }
  EXPECT_EQ(hidden_files(root_), std::set<std::string>{".recsync-part.call.wav"});
  EXPECT_FALSE(fs::exists(root_ + "/" + rel));
  const uint64_t part = fs::file_size(root_ + "/a/b/.recsync-part.call.wav");
  EXPECT_GT(part, file.size() * 7 / 10);

  auto in = begin(rel, file);
  ASSERT_TRUE(in) << in.status().to_string();
  EXPECT_EQ((*in)->basis_kind(), BasisKind::kPartial);
  EXPECT_EQ((*in)->basis_size(), part);
  const Bytes d2 = sender_delta((*in)->signature(), file);
  EXPECT_LT(d2.size(), file.size() / 4) << "resume resent " << d2.size() << " bytes";
  ASSERT_TRUE(feed_chunks(**in, d2, 7777));
  auto res = (*in)->finish();
  ASSERT_TRUE(res) << res.status().to_string();
  EXPECT_EQ(read_file(root_ + "/" + rel), file);
  EXPECT_TRUE(hidden_files(root_).empty());
}

TEST_F(InboundFileTest, ResumeAfterReceiverCrash) {
  // Dropping the object without abort is what kill -9 leaves behind: the
  // in-progress output under its part name. The next begin resumes from it.
  const Bytes file = random_bytes(1 << 20, 3);
  {
    auto in = begin("x.wav", file);
    ASSERT_TRUE(in) << in.status().to_string();
    const Bytes d = sender_delta((*in)->signature(), file);
    ASSERT_TRUE(feed_chunks(**in, std::span(d).first(d.size() / 2), 65536));
  }
  auto left = hidden_files(root_);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_TRUE(is_part_name(*left.begin()));
  auto in = begin("x.wav", file);
  ASSERT_TRUE(in) << in.status().to_string();
  EXPECT_EQ((*in)->basis_kind(), BasisKind::kPartial);
  const Bytes d2 = sender_delta((*in)->signature(), file);
  EXPECT_LT(d2.size(), file.size() * 55 / 100);
  ASSERT_TRUE(feed_chunks(**in, d2, 100000));
  ASSERT_TRUE((*in)->finish());
  EXPECT_EQ(read_file(root_ + "/x.wav"), file);
  EXPECT_TRUE(hidden_files(root_).empty());
}

TEST_F(InboundFileTest, LeftoverPartialsOfAnArchivedRecordingAreRemovedAndNothingElse) {
  // Two crashed receives of a/b/x.wav (kill -9 mid-transfer) and a committed
  // partial; the recording then arrived whole (the receiver died after
  // publishing, before removing them), and the re-offer is answered from the
  // archive: no transfer will ever use these partials.
  const Bytes file = random_bytes(300000, 11);
  for (int i = 0; i < 2; ++i) {
    auto in = begin("a/b/x.wav", file);
    ASSERT_TRUE(in) << in.status().to_string();
    const Bytes d = sender_delta((*in)->signature(), file);
    ASSERT_TRUE(feed_chunks(**in, std::span(d).first(d.size() / 3), 4096));
  }
  write_file(root_ + "/a/b/.recsync-part.x.wav", Bytes(10, 1));
  write_file(root_ + "/a/b/x.wav", file);
  // Not partials of x.wav: another recording's, a look-alike, a symlink.
  write_file(root_ + "/a/b/.recsync-part.y.wav", Bytes(10, 2));
  write_file(root_ + "/a/b/.recsync-part.x.wav.notahexsuffix", Bytes(10, 3));
  fs::create_symlink(outside_ + "/victim", root_ + "/a/b/.recsync-part.x.wav.0123456789abcdef");
  write_file(outside_ + "/victim", Bytes(4, 4));
  ASSERT_EQ(hidden_files(root_).size(), 6u);

  ASSERT_TRUE(remove_inbound_partials(env_, root_, "a/b/x.wav"));
  EXPECT_EQ(hidden_files(root_),
            (std::set<std::string>{".recsync-part.y.wav", ".recsync-part.x.wav.notahexsuffix",
                                   ".recsync-part.x.wav.0123456789abcdef"}));
  EXPECT_EQ(read_file(root_ + "/a/b/x.wav"), file);
  EXPECT_TRUE(fs::exists(outside_ + "/victim"));
  // Nothing to do, a folder that does not exist, a hostile path.
  EXPECT_TRUE(remove_inbound_partials(env_, root_, "a/b/x.wav"));
  EXPECT_TRUE(remove_inbound_partials(env_, root_, "no/such/x.wav"));
  EXPECT_FALSE(remove_inbound_partials(env_, root_, "../outside/victim"));
}

TEST_F(InboundFileTest, SecondCutKeepsTheLongerPartial) {
  const Bytes file = random_bytes(1 << 20, 4);
  {
    auto in = begin("y.wav", file);
    ASSERT_TRUE(in);
    const Bytes d = sender_delta((*in)->signature(), file);
    ASSERT_TRUE(feed_chunks(**in, std::span(d).first(d.size() * 6 / 10), 65536));
    ASSERT_TRUE((*in)->abort_keep_partial());
  }
  const uint64_t first = fs::file_size(root_ + "/.recsync-part.y.wav");
  {
    auto in = begin("y.wav", file);
    ASSERT_TRUE(in);
    const Bytes d = sender_delta((*in)->signature(), file);
    ASSERT_TRUE((*in)->feed_delta(std::span(d).first(10)));
    ASSERT_TRUE((*in)->abort_keep_partial());  // cut almost at once
  }
  EXPECT_EQ(hidden_files(root_), std::set<std::string>{".recsync-part.y.wav"});
  EXPECT_EQ(fs::file_size(root_ + "/.recsync-part.y.wav"), first);
}

TEST_F(InboundFileTest, OlderVersionIsTheBasisAndTheNewOneIsKeptBeside) {
  Bytes old_version = random_bytes(1 << 20, 5);
  Bytes new_version = old_version;
  for (size_t i = 500'000; i < 510'000; ++i) new_version[i] ^= 0xff;  // an edit
  const Bytes tail = random_bytes(50'000, 6);
  new_version.insert(new_version.end(), tail.begin(), tail.end());  // and more audio
  write_file(root_ + "/d/rec.wav", old_version);

  auto in = begin("d/rec.wav", new_version);
  ASSERT_TRUE(in) << in.status().to_string();
  EXPECT_EQ((*in)->basis_kind(), BasisKind::kFinal);
  EXPECT_FALSE((*in)->already_present());
  const Bytes d = sender_delta((*in)->signature(), new_version);
  EXPECT_LT(d.size(), 100'000u);
  ASSERT_TRUE(feed_chunks(**in, d, 4096));
  auto res = (*in)->finish();
  ASSERT_TRUE(res) << res.status().to_string();
  EXPECT_EQ(res->rel, "d/rec.v2.wav");
  EXPECT_EQ(read_file(root_ + "/d/rec.v2.wav"), new_version);
  EXPECT_EQ(read_file(root_ + "/d/rec.wav"), old_version);  // never replaced

  // A third, different version goes to .v3.
  Bytes third = new_version;
  third[0] ^= 1;
  auto in3 = begin("d/rec.wav", third);
  ASSERT_TRUE(in3);
  ASSERT_TRUE((*in3)->feed_delta(sender_delta((*in3)->signature(), third)));
  auto res3 = (*in3)->finish();
  ASSERT_TRUE(res3) << res3.status().to_string();
  EXPECT_EQ(res3->rel, "d/rec.v3.wav");
  EXPECT_EQ(read_file(root_ + "/d/rec.v3.wav"), third);
}

TEST_F(InboundFileTest, IdenticalFileAlreadyThereIsSuccessWithoutDuplicate) {
  const Bytes file = random_bytes(200'000, 7);
  write_file(root_ + "/same.wav", file);
  auto in = begin("same.wav", file);
  ASSERT_TRUE(in) << in.status().to_string();
  EXPECT_TRUE((*in)->already_present());
  EXPECT_EQ((*in)->basis_kind(), BasisKind::kFinal);
  ASSERT_TRUE((*in)->feed_delta(sender_delta((*in)->signature(), file)));
  auto res = (*in)->finish();
  ASSERT_TRUE(res) << res.status().to_string();
  EXPECT_TRUE(res->already);
  EXPECT_EQ(res->rel, "same.wav");
  EXPECT_EQ(tree(root_), std::set<std::string>{"same.wav"});

  // The session may also skip the transfer altogether.
  auto skip = begin("same.wav", file);
  ASSERT_TRUE(skip);
  ASSERT_TRUE((*skip)->already_present());
  auto acc = (*skip)->accept_existing();
  ASSERT_TRUE(acc) << acc.status().to_string();
  EXPECT_TRUE(acc->already);
  EXPECT_EQ(acc->rel, "same.wav");
  EXPECT_EQ(tree(root_), std::set<std::string>{"same.wav"});

  // Same when the identical copy is the .v2 (a lost ack after a version).
  Bytes other = random_bytes(1000, 8);
  write_file(root_ + "/v.wav", other);
  write_file(root_ + "/v.v2.wav", file);
  auto in2 = begin("v.wav", file);
  ASSERT_TRUE(in2);
  EXPECT_FALSE((*in2)->already_present());
  EXPECT_EQ((*in2)->accept_existing().status().code(), Status::Code::kInvalid);
  ASSERT_TRUE((*in2)->feed_delta(sender_delta((*in2)->signature(), file)));
  auto res2 = (*in2)->finish();
  ASSERT_TRUE(res2) << res2.status().to_string();
  EXPECT_TRUE(res2->already);
  EXPECT_EQ(res2->rel, "v.v2.wav");
  EXPECT_EQ(tree(root_), (std::set<std::string>{"same.wav", "v.wav", "v.v2.wav"}));
}

TEST_F(InboundFileTest, HostilePathsAreRefusedAndNothingIsCreated) {
  const Bytes file = random_bytes(1000, 9);
  fs::create_directories(root_ + "/real");
  fs::create_symlink(outside_, root_ + "/link");
  fs::create_symlink(outside_, root_ + "/real/sub");
  const std::string nul("a\0b.wav", 7);
  for (const std::string& rel :
       {std::string("../x.wav"), std::string("/etc/passwd"), std::string("a/../../b.wav"), nul,
        std::string("link/x.wav"), std::string("link/deeper/x.wav"), std::string("real/sub/x.wav"),
        std::string("real/sub/deeper/x.wav"), std::string(".recsync-part.x.wav"),
        std::string(kMaxInboundNameLen + 1, 'n')}) {
    auto in = begin(rel, file);
    ASSERT_FALSE(in) << rel;
    EXPECT_EQ(in.status().code(), Status::Code::kRefused) << rel << ": " << in.status().to_string();
  }
  EXPECT_TRUE(fs::is_empty(outside_));
  EXPECT_EQ(tree(root_), (std::set<std::string>{"link", "real", "real/sub"}));
}

TEST_F(InboundFileTest, SymlinkAtTheFinalNameIsNeitherFollowedNorReplaced) {
  const Bytes target = random_bytes(500, 10);
  write_file(outside_ + "/secret", target);
  fs::create_symlink(outside_ + "/secret", root_ + "/evil.wav");
  const Bytes file = random_bytes(4000, 11);
  auto in = begin("evil.wav", file);
  ASSERT_TRUE(in) << in.status().to_string();
  EXPECT_EQ((*in)->basis_kind(), BasisKind::kNone);  // not read through the link
  ASSERT_TRUE((*in)->feed_delta(sender_delta((*in)->signature(), file)));
  auto res = (*in)->finish();
  ASSERT_TRUE(res) << res.status().to_string();
  EXPECT_EQ(res->rel, "evil.v2.wav");
  EXPECT_EQ(read_file(outside_ + "/secret"), target);
  EXPECT_TRUE(fs::is_symlink(root_ + "/evil.wav"));
}

TEST_F(InboundFileTest, OversizeIsRefused) {
  InboundOptions opt;
  opt.max_file_size = 1000;
  auto in = InboundFile::begin(env_, root_, "d/big.wav", 1001, "xxh128:00", 0, opt);
  ASSERT_FALSE(in);
  EXPECT_EQ(in.status().code(), Status::Code::kRefused);
  auto dflt = InboundFile::begin(env_, root_, "d/big.wav", (4ull << 30) + 1, "xxh128:00", 0);
  ASSERT_FALSE(dflt);
  EXPECT_EQ(dflt.status().code(), Status::Code::kRefused);
  EXPECT_TRUE(fs::is_empty(root_));

  // A delta that produces more than the announced size is cut off.
  const Bytes file = random_bytes(5000, 12);
  auto in2 = InboundFile::begin(env_, root_, "small.wav", 1000, hash_of(file), 0, opt);
  ASSERT_TRUE(in2) << in2.status().to_string();
  Status s = (*in2)->feed_delta(sender_delta((*in2)->signature(), file));
  EXPECT_EQ(s.code(), Status::Code::kCorrupt) << s.to_string();
  (*in2)->discard();
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(InboundFileTest, HashMismatchIsCorruptAndLeavesNothing) {
  const Bytes file = random_bytes(100'000, 13);
  Bytes wrong = file;
  wrong[50'000] ^= 1;
  auto in = InboundFile::begin(env_, root_, "m/h.wav", file.size(), hash_of(wrong), kMtime);
  ASSERT_TRUE(in) << in.status().to_string();
  ASSERT_TRUE((*in)->feed_delta(sender_delta((*in)->signature(), file)));
  auto res = (*in)->finish();
  ASSERT_FALSE(res);
  EXPECT_EQ(res.status().code(), Status::Code::kCorrupt);
  EXPECT_NE(res.status().message().find("hash"), std::string::npos) << res.status().to_string();
  EXPECT_FALSE(fs::exists(root_ + "/m/h.wav"));
  EXPECT_TRUE(hidden_files(root_).empty());

  // Wrong size announced: also corrupt.
  auto in2 = InboundFile::begin(env_, root_, "m/s.wav", file.size() + 1, hash_of(file), kMtime);
  ASSERT_TRUE(in2);
  ASSERT_TRUE((*in2)->feed_delta(sender_delta((*in2)->signature(), file)));
  auto res2 = (*in2)->finish();
  ASSERT_FALSE(res2);
  EXPECT_EQ(res2.status().code(), Status::Code::kCorrupt);
  EXPECT_EQ(tree(root_), std::set<std::string>{"m"});
}

TEST_F(InboundFileTest, MismatchAlsoDropsThePartialBasis) {
  // A damaged partial must not poison every retry.
  const Bytes file = random_bytes(300'000, 14);
  Bytes bad_part(file.begin(), file.begin() + 200'000);
  write_file(root_ + "/.recsync-part.p.wav", bad_part);
  auto in =
      InboundFile::begin(env_, root_, "p.wav", file.size(), hash_of(random_bytes(10, 15)), kMtime);
  ASSERT_TRUE(in);
  EXPECT_EQ((*in)->basis_kind(), BasisKind::kPartial);
  ASSERT_TRUE((*in)->feed_delta(sender_delta((*in)->signature(), file)));
  EXPECT_EQ((*in)->finish().status().code(), Status::Code::kCorrupt);
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(InboundFileTest, TruncatedDeltaIsCorruptAndLeavesNothing) {
  const Bytes file = random_bytes(100'000, 16);
  auto in = begin("t.wav", file);
  ASSERT_TRUE(in);
  const Bytes d = sender_delta((*in)->signature(), file);
  ASSERT_TRUE((*in)->feed_delta(std::span(d).first(d.size() - 3)));
  auto res = (*in)->finish();
  ASSERT_FALSE(res);
  EXPECT_EQ(res.status().code(), Status::Code::kCorrupt) << res.status().to_string();
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(InboundFileTest, WriteErrorsSurfaceAndDiscardCleansUp) {
  FaultEnv fenv(Env::posix());
  const Bytes file = random_bytes(600'000, 17);  // above the write batch
  auto in = InboundFile::begin(&fenv, root_, "f.wav", file.size(), hash_of(file), kMtime);
  ASSERT_TRUE(in) << in.status().to_string();
  fenv.write_errno = ENOSPC;
  Status s = (*in)->feed_delta(sender_delta((*in)->signature(), file));
  EXPECT_EQ(s.code(), Status::Code::kNoSpace) << s.to_string();
  EXPECT_EQ((*in)->feed_delta(std::span<const uint8_t>()).code(),
            Status::Code::kNoSpace);  // sticky
  EXPECT_FALSE((*in)->finish());
  (*in)->discard();
  EXPECT_TRUE(fs::is_empty(root_));
}

}  // namespace
}  // namespace recsync::replication
