#include "replication/finisher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

namespace recsync::replication {
namespace {

using namespace std::chrono_literals;

// Waits (bounded) until `done` or 5 s pass.
template <typename Pred>
bool eventually(Pred done) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(Finisher, AJobStaysPendingUntilItsVerdictIsTaken) {
  Finisher fin(2);
  std::atomic<bool> ran{false};
  fin.submit(7, "a/x.wav", [&] {
    ran = true;
    return Status::ok();
  });
  EXPECT_EQ(fin.pending(), 1u);
  ASSERT_TRUE(eventually([&] { return ran.load(); }));
  fin.wait_done(5s);
  // Done, but its ACK not sent yet: still pending, so the receiver keeps
  // polling for it instead of sleeping through its idle timeout.
  EXPECT_EQ(fin.pending(), 1u);
  auto v = fin.take_done();
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].id, 7u);
  EXPECT_TRUE(v[0].status.is_ok());
  EXPECT_EQ(fin.pending(), 0u);
  EXPECT_TRUE(fin.take_done().empty());
}

TEST(Finisher, VerdictsCarryEachJobsStatusAndBusyTracksThePath) {
  Finisher fin(1);
  std::atomic<bool> release{false};
  fin.submit(1, "p.wav", [&] {
    while (!release) std::this_thread::sleep_for(1ms);
    return Status::io("disk on fire");
  });
  fin.submit(2, "q.wav", [] { return Status::ok(); });
  EXPECT_TRUE(fin.busy("p.wav"));
  EXPECT_TRUE(fin.busy("q.wav"));  // queued behind p.wav on the one thread
  EXPECT_FALSE(fin.busy("r.wav"));
  EXPECT_EQ(fin.pending(), 2u);
  release = true;
  std::vector<Finisher::Verdict> got;
  ASSERT_TRUE(eventually([&] {
    for (auto& v : fin.take_done()) got.push_back(std::move(v));
    return got.size() == 2;
  }));
  EXPECT_EQ(got[0].id, 1u);
  EXPECT_EQ(got[0].status.code(), Status::Code::kIo);
  EXPECT_EQ(got[1].id, 2u);
  EXPECT_TRUE(got[1].status.is_ok());
  EXPECT_FALSE(fin.busy("p.wav"));
  EXPECT_EQ(fin.pending(), 0u);
}

TEST(Finisher, DestructorRunsEveryQueuedJob) {
  std::atomic<int> ran{0};
  {
    Finisher fin(1);
    for (int i = 0; i < 5; ++i)
      fin.submit(i, "f" + std::to_string(i), [&] {
        std::this_thread::sleep_for(2ms);
        ran++;
        return Status::ok();
      });
  }
  EXPECT_EQ(ran.load(), 5);
}

}  // namespace
}  // namespace recsync::replication
