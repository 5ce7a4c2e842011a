// Two replication services in one process, over real loopback TCP + TLS,
// with real state stores and archive folders: the protocol end to end, and a
// hostile peer that holds a pinned identity but sends bad offers and frames.
#include "replication/service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "peer/connection.h"
#include "peer/frame.h"
#include "peer/tls.h"
#include "recsync/hash.h"

namespace recsync::replication {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

template <typename F>
bool wait_for(F f, std::chrono::milliseconds limit = 10s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

struct Node {
  std::string root, archive, name;
  std::unique_ptr<StateStore> store;
  peer::Identity id;
  std::unique_ptr<Service> svc;
  uint16_t port = 0;
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "recsync-repl-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    for (auto* n : {&a_, &b_}) {
      n->name = n == &a_ ? "fs1" : "fs2";
      n->root = dir_ + "/" + n->name;
      n->archive = n->root + "/archive";
      fs::create_directories(n->archive);
      auto st = StateStore::open(n->root + "/state.db");
      ASSERT_TRUE(st) << st.status().to_string();
      n->store = std::move(st).value();
      auto id = peer::load_or_create_identity(Env::posix(), n->root + "/state", n->name);
      ASSERT_TRUE(id) << id.status().to_string();
      n->id = std::move(id).value();
    }
    // Ports: bind both listeners on port 0 first (peers' addresses are only
    // known after that), then create the services with the real ports.
    a_.port = free_port();
    b_.port = free_port();
  }
  void TearDown() override {
    for (auto* n : {&a_, &b_})
      if (n->svc) n->svc->stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  static uint16_t free_port() {
    auto fd = peer::listen_tcp("127.0.0.1:0");
    EXPECT_TRUE(fd);
    auto p = peer::bound_port(*fd);
    ::close(*fd);
    return *p;
  }
  void start(Node& n, Node& other, uint64_t bps = 0, PageBudget* budget = nullptr) {
    ServiceOptions o;
    o.page_budget = budget;
    o.node = n.name;
    o.listen = "127.0.0.1:" + std::to_string(n.port);
    o.bandwidth_bps = bps;
    o.archive_root = n.archive;
    o.peers.push_back(
        {other.name, "127.0.0.1:" + std::to_string(other.port), other.id.fingerprint});
    auto s = Service::create(Env::posix(), n.store.get(), n.id, o);
    ASSERT_TRUE(s) << s.status().to_string();
    n.svc = std::move(s).value();
    n.svc->start();
  }
  // Writes an archived recording on n and queues it for the peer.
  std::string archive(Node& n, const std::string& rel, const std::string& content) {
    fs::create_directories(fs::path(n.archive + "/" + rel).parent_path());
    std::ofstream(n.archive + "/" + rel, std::ios::binary) << content;
    RecordingRow r;
    r.rel = rel;
    r.name = fs::path(rel).stem();
    r.size = content.size();
    r.hash = hash_bytes(content.data(), content.size());
    r.rec_time_ms = 1;
    r.archived_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    EXPECT_TRUE(n.store->queue().record(r, 1'000'000'000));
    return r.hash;
  }
  static std::string random_bytes(size_t n, uint64_t seed) {
    std::mt19937_64 g(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(g());
    return s;
  }

  std::string dir_;
  Node a_, b_;
};

TEST_F(ServiceTest, BothWaysWithAcksAndNoEcho) {
  start(a_, b_);
  start(b_, a_);
  const std::string x = random_bytes(300'000, 1), y = random_bytes(5, 2);
  archive(a_, "2026/01/01/x.wav", x);
  archive(b_, "2026/01/01/y.wav", y);
  ASSERT_TRUE(wait_for([&] {
    return a_.store->queue().stats("fs2").value().files() == 0 &&
           b_.store->queue().stats("fs1").value().files() == 0 &&
           fs::exists(b_.archive + "/2026/01/01/x.wav") &&
           fs::exists(a_.archive + "/2026/01/01/y.wav");
  }));
  EXPECT_EQ(slurp(b_.archive + "/2026/01/01/x.wav"), x);
  EXPECT_EQ(slurp(a_.archive + "/2026/01/01/y.wav"), y);
  // Indexed on the receiver with the sender as origin, and not queued back.
  auto row = b_.store->recordings().get("2026/01/01/x.wav").value();
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->origin, "fs1");
  EXPECT_EQ(b_.store->queue().stats("fs1").value().files(), 0u);
  EXPECT_EQ(fs::last_write_time(b_.archive + "/2026/01/01/x.wav").time_since_epoch().count() != 0,
            true);
  auto st = a_.svc->status();
  ASSERT_EQ(st.peers.size(), 1u);
  EXPECT_EQ(st.peers[0].state, PeerState::kConnected);
  EXPECT_EQ(st.peers[0].acked_files, 1u);
  EXPECT_EQ(st.peers[0].received_files, 1u);
  EXPECT_GE(st.peers[0].sent_bytes, x.size());
  // Re-offering the same file (a crash before the ack was recorded) is acked
  // without a transfer and without a second copy.
  const uint64_t sent_before = a_.svc->status().peers[0].sent_bytes;
  archive(a_, "2026/01/01/x.wav", x);
  ASSERT_TRUE(wait_for([&] { return a_.store->queue().stats("fs2").value().files() == 0; }));
  EXPECT_LT(a_.svc->status().peers[0].sent_bytes - sent_before, 1000u);
  EXPECT_FALSE(fs::exists(b_.archive + "/2026/01/01/x.wav.v2"));
}

TEST_F(ServiceTest, SendersGiveThePageBudgetBackHoweverATransferEnds) {
  PageBudget budget(1 << 20);
  start(b_, a_);
  start(a_, b_, 0, &budget);
  // As the archiver does: a share per queued recording.
  const std::string x = random_bytes(200'000, 3);
  ASSERT_TRUE(budget.take(x.size()));
  archive(a_, "2026/01/02/sent.wav", x);
  ASSERT_TRUE(wait_for([&] { return a_.store->queue().stats("fs2").value().files() == 0; }));
  EXPECT_EQ(budget.used(), 0u);
  // Queued, then gone from the archive before the sender got to it (pruned,
  // or removed by hand): dropped from the queue, and its share still back.
  a_.svc->stop();
  ASSERT_TRUE(budget.take(x.size()));
  archive(a_, "2026/01/02/gone.wav", x);
  fs::remove(a_.archive + "/2026/01/02/gone.wav");
  a_.svc.reset();
  start(a_, b_, 0, &budget);
  ASSERT_TRUE(wait_for([&] { return a_.store->queue().stats("fs2").value().files() == 0; }));
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_FALSE(fs::exists(b_.archive + "/2026/01/02/gone.wav"));
}

TEST_F(ServiceTest, HoldsAreCopiedToThePeerDurablyAndNotEchoed) {
  start(a_, b_);  // b_ is down: the hold change waits in a_'s queue
  HoldRow h{"call-1234", "complaint 77", 5};
  ASSERT_TRUE(a_.store->holds().add(h));
  ASSERT_TRUE(a_.store->holds().add({"other", "x", 6}));
  ASSERT_TRUE(a_.store->holds().release("other").value());
  // Releasing what is not held copies nothing.
  EXPECT_FALSE(a_.store->holds().release("never").value());
  start(b_, a_);
  ASSERT_TRUE(wait_for([&] { return !a_.store->holds().next_op("fs2").value().has_value(); }, 40s));
  auto holds = b_.store->holds().list().value();
  ASSERT_EQ(holds.size(), 1u);
  EXPECT_EQ(holds[0].target, "call-1234");
  EXPECT_EQ(holds[0].reason, "complaint 77 (copied from fs1)");
  EXPECT_EQ(holds[0].created_ms, 5);
  EXPECT_FALSE(b_.store->holds().next_op("fs1").value().has_value());  // not sent back
  ASSERT_TRUE(a_.store->holds().release("call-1234").value());
  ASSERT_TRUE(wait_for([&] { return b_.store->holds().list().value().empty(); }));
}

TEST_F(ServiceTest, PeerDownQueuesThenDrains) {
  start(a_, b_);
  for (int i = 0; i < 5; ++i) archive(a_, "d/" + std::to_string(i) + ".wav", random_bytes(1000, i));
  ASSERT_TRUE(wait_for([&] { return a_.svc->status().peers[0].state == PeerState::kBackoff; }));
  EXPECT_EQ(a_.svc->status().peers[0].queue.files(), 5u);
  start(b_, a_);
  ASSERT_TRUE(wait_for([&] { return a_.store->queue().stats("fs2").value().files() == 0; }, 40s));
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(slurp(b_.archive + "/d/" + std::to_string(i) + ".wav"), random_bytes(1000, i));
}

TEST_F(ServiceTest, ResumesFromThePartialAfterACut) {
  // Capped so that the transfer is still running when the link is cut.
  start(b_, a_);
  start(a_, b_, 4'000'000);
  const std::string big = random_bytes(8'000'000, 7);
  archive(a_, "big.wav", big);
  ASSERT_TRUE(wait_for([&] {
    auto p = a_.svc->status().peers[0];
    return p.in_flight && p.in_flight->read_bytes >= 4'000'000;
  }));
  b_.svc->stop();  // the receiver goes away mid-transfer: keeps its partial
  bool part = false;
  for (auto& e : fs::directory_iterator(b_.archive))
    part |= e.path().filename().string().rfind(".recsync-part.big.wav", 0) == 0;
  EXPECT_TRUE(part);
  ASSERT_TRUE(wait_for([&] { return a_.svc->status().peers[0].state != PeerState::kConnected; }));
  const uint64_t sent_before = a_.svc->status().peers[0].sent_bytes;
  b_.svc.reset();
  start(b_, a_);
  ASSERT_TRUE(wait_for([&] { return a_.store->queue().stats("fs2").value().files() == 0; }, 40s));
  EXPECT_EQ(slurp(b_.archive + "/big.wav"), big);
  const uint64_t resent = a_.svc->status().peers[0].sent_bytes - sent_before;
  // About half was missing; a full resend would be 8 MB.
  EXPECT_LT(resent, 5'500'000u) << "resent " << resent;
  for (auto& e : fs::directory_iterator(b_.archive))
    EXPECT_NE(e.path().filename().string().rfind(".recsync-part.", 0), 0u) << e.path();
}

TEST_F(ServiceTest, HostilePeerIsRefusedAndTheServiceKeepsServing) {
  start(b_, a_);
  // a_'s identity is pinned by b_: this client speaks the protocol as fs1.
  std::vector<std::string> pins = {b_.id.fingerprint};
  auto ctx = peer::TlsContext::create(a_.id, pins);
  ASSERT_TRUE(ctx);
  auto c = peer::Connection::connect("127.0.0.1:" + std::to_string(b_.port), **ctx, 5s);
  ASSERT_TRUE(c) << c.status().to_string();
  auto& conn = **c;
  ASSERT_TRUE(
      conn.send_msg(peer::FrameType::kHello, peer::HelloMsg{peer::kProtocolVersion, "fs1"}));
  auto h = conn.recv(5s);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->type, peer::FrameType::kHello);
  uint64_t id = 1;
  auto offer = [&](const std::string& path, uint64_t size, std::string origin = "fs1") {
    peer::OfferMsg o;
    o.id = id++;
    o.path = path;
    o.origin = std::move(origin);
    o.size = size;
    EXPECT_TRUE(conn.send_msg(peer::FrameType::kOffer, o));
    auto r = conn.recv(5s);
    EXPECT_TRUE(r) << r.status().to_string();
    if (!r) return std::string("error");
    EXPECT_EQ(r->type, peer::FrameType::kNack) << path;
    peer::NackMsg n;
    EXPECT_TRUE(peer::decode(r->payload, &n));
    EXPECT_EQ(n.code, peer::NackMsg::kRefused) << path;
    return n.reason;
  };
  EXPECT_NE(offer("../escape.wav", 10).find(".."), std::string::npos);
  offer("/etc/evil.wav", 10);
  offer(std::string("a\0b.wav", 7), 10);
  offer(".hidden.wav", 10);
  offer(std::string(300, 'n') + ".wav", 10);
  offer("huge.wav", 100ull << 30);
  EXPECT_NE(offer("fine.wav", 10, "a/b").find("origin"), std::string::npos);
  offer("fine.wav", 10, std::string("fs\x01", 3));
  // A symlinked folder inside the archive must not be followed.
  fs::create_directories(dir_ + "/outside");
  fs::create_directory_symlink(dir_ + "/outside", b_.archive + "/link");
  offer("link/x.wav", 10);
  EXPECT_TRUE(fs::is_empty(dir_ + "/outside"));
  EXPECT_FALSE(fs::exists(dir_ + "/escape.wav"));
  // A malformed OFFER body: the receiver drops the link.
  std::vector<uint8_t> junk = {1, 2, 3};
  ASSERT_TRUE(conn.send(peer::FrameType::kOffer, junk));
  auto r = conn.recv(5s);
  EXPECT_FALSE(r);
  // Still serving: the real fs1 replicates to it.
  start(a_, b_);
  archive(a_, "ok.wav", "fine");
  ASSERT_TRUE(wait_for([&] { return fs::exists(b_.archive + "/ok.wav"); }));
  EXPECT_EQ(slurp(b_.archive + "/ok.wav"), "fine");
}

TEST_F(ServiceTest, UnpinnedPeerIsRefused) {
  // b_ pins a different fingerprint for fs1: the link is refused both ways.
  peer::Identity stranger =
      std::move(peer::load_or_create_identity(Env::posix(), dir_ + "/stranger", "fs1").value());
  std::swap(a_.id, stranger);
  start(b_, a_);  // pins the stranger's fingerprint for "fs1"
  std::swap(a_.id, stranger);
  start(a_, b_);
  archive(a_, "r.wav", "data");
  ASSERT_TRUE(wait_for([&] { return a_.svc->status().peers[0].state == PeerState::kRefused; }));
  EXPECT_FALSE(fs::exists(b_.archive + "/r.wav"));
  EXPECT_NE(b_.svc->status().last_refused.what, "");
}

}  // namespace
}  // namespace recsync::replication
