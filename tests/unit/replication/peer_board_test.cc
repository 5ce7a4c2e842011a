// The peer board: each peer's status under its own lock, addressed by index.
#include "replication/peer_board.h"

#include <gtest/gtest.h>

#include <thread>

namespace recsync::replication {
namespace {

constexpr int64_t kNow = 1'750'000'000'000;

class PeerBoardTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.set_now(WallTime(Millis(kNow))); }
  FaultEnv env_{Env::posix()};
  PeerBoard board_{&env_,
                   {{"fs2", "10.0.0.2:7373", "sha256:aa"}, {"fs3", "10.0.0.3:7373", "sha256:bb"}}};
};

TEST_F(PeerBoardTest, StartsConnectingWithTheConfiguredIdentity) {
  auto p = board_.peers();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].name, "fs3");
  EXPECT_EQ(p[1].address, "10.0.0.3:7373");
  EXPECT_EQ(p[1].fingerprint, "sha256:bb");
  EXPECT_EQ(p[1].state, PeerState::kConnecting);
  EXPECT_EQ(p[1].rtt_ms, -1);
  EXPECT_EQ(board_.find_fingerprint("sha256:bb"), 1u);
  EXPECT_FALSE(board_.find_fingerprint("sha256:cc"));
}

TEST_F(PeerBoardTest, StateErrorsAndConnectedSince) {
  board_.set_state(0, PeerState::kBackoff, "connection refused");
  EXPECT_EQ(board_.peers()[0].last_error, "connection refused");
  board_.set_state(0, PeerState::kConnected);
  auto p = board_.peers()[0];
  EXPECT_EQ(p.connected_since_ms, kNow);
  EXPECT_EQ(p.last_error, "connection refused") << "kept until cleared";
  board_.clear_error(0);
  board_.set_state(0, PeerState::kRefused, "bad certificate");
  p = board_.peers()[0];
  EXPECT_EQ(p.connected_since_ms, 0);
  EXPECT_EQ(p.state, PeerState::kRefused);
  EXPECT_EQ(peer_state_name(p.state), std::string("refused"));
  EXPECT_EQ(board_.peers()[1].state, PeerState::kConnecting) << "the other peer is untouched";
}

TEST_F(PeerBoardTest, TransferProgressAndCounters) {
  board_.begin_transfer(1, false, "a.wav", 1000);
  board_.add_sent(1, false, 300);
  board_.transfer_read(1, false, 512);
  auto p = board_.peers()[1];
  ASSERT_TRUE(p.in_flight);
  EXPECT_EQ(p.in_flight->rel, "a.wav");
  EXPECT_EQ(p.in_flight->sent_bytes, 300u);
  EXPECT_EQ(p.in_flight->read_bytes, 512u);
  EXPECT_EQ(p.in_flight->started_ms, kNow);
  board_.end_transfer(1, false);
  board_.add_sent(1, false, 100);  // no transfer: only the peer's total
  board_.acked(1);
  board_.received_file(1);
  board_.add_received(1, 77);
  board_.failed(1, "x.wav: no space");
  board_.set_rtt(1, 0.5);
  p = board_.peers()[1];
  EXPECT_FALSE(p.in_flight);
  EXPECT_EQ(p.sent_bytes, 400u);
  EXPECT_EQ(board_.sent_bytes(1), 400u);
  EXPECT_EQ(p.acked_files, 1u);
  EXPECT_EQ(p.last_ack_ms, kNow);
  EXPECT_EQ(p.received_files, 1u);
  EXPECT_EQ(p.received_bytes, 77u);
  EXPECT_EQ(p.failed_transfers, 1u);
  EXPECT_EQ(p.last_error, "x.wav: no space");
  EXPECT_EQ(p.rtt_ms, 0.5);
  EXPECT_EQ(board_.peers()[0].sent_bytes, 0u);
}

TEST_F(PeerBoardTest, RefusedLinksKeepTheLastOne) {
  EXPECT_EQ(board_.last_refused().what, "");
  board_.refused_link("10.9.9.9:1: not a peer");
  EXPECT_EQ(board_.last_refused().what, "10.9.9.9:1: not a peer");
  EXPECT_EQ(board_.last_refused().at_ms, kNow);
}

TEST_F(PeerBoardTest, WritersOnSeveralThreadsAddUp) {
  std::vector<std::thread> t;
  for (int i = 0; i < 4; ++i)
    t.emplace_back([&] {
      for (int j = 0; j < 10000; ++j) board_.add_sent(0, false, 1);
    });
  for (auto& x : t) x.join();
  EXPECT_EQ(board_.sent_bytes(0), 40000u);
}

}  // namespace
}  // namespace recsync::replication
