#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "control/control_client.h"
#include "control/control_server.h"

namespace recsync {
namespace {

TEST(ControlAccess, Rule) {
  PeerCred root{1, 0, 0, {}};
  PeerCred self{1, 1000, 1000, {}};
  PeerCred member_primary{1, 2000, 500, {}};
  PeerCred member_supp{1, 2000, 2000, {7, 500}};
  PeerCred stranger{1, 2000, 2000, {7, 8}};
  EXPECT_TRUE(control_access_allowed(root, 1000, true, 500));
  EXPECT_TRUE(control_access_allowed(self, 1000, true, 500));
  EXPECT_TRUE(control_access_allowed(member_primary, 1000, true, 500));
  EXPECT_TRUE(control_access_allowed(member_supp, 1000, true, 500));
  EXPECT_FALSE(control_access_allowed(stranger, 1000, true, 500));
  EXPECT_FALSE(control_access_allowed(member_supp, 1000, false, 500));
}

// Runs a ControlServer on its own loop thread.
class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-control-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/ctl.sock";
    uv_loop_init(&loop_);
    uv_async_init(&loop_, &stop_, [](uv_async_t* a) {
      auto* self = static_cast<ServerFixture*>(a->data);
      self->server_->close();
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    stop_.data = this;
    server_ = std::make_unique<ControlServer>(
        &loop_, path_, "", [this](const nlohmann::json& req, const PeerCred& who, auto reply) {
          calls_++;
          if (req["cmd"] == "echo")
            reply({{"ok", true}, {"echo", req.value("arg", "")}, {"uid", who.uid}});
          else
            reply({{"ok", false}, {"error", "unknown command"}});
        });
    ASSERT_TRUE(server_->start().is_ok());
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  void TearDown() override {
    uv_async_send(&stop_);
    thread_.join();
    EXPECT_EQ(uv_loop_close(&loop_), 0);  // every handle was closed
    rmdir(dir_.c_str());
  }
  std::string dir_, path_;
  uv_loop_t loop_;
  uv_async_t stop_;
  std::unique_ptr<ControlServer> server_;
  std::thread thread_;
  std::atomic<int> calls_{0};
};

TEST_F(ServerFixture, RoundTripAndSocketMode) {
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  auto r = control_call(path_, {{"cmd", "echo"}, {"arg", "hello"}});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)["echo"], "hello");
  EXPECT_EQ((*r)["uid"], geteuid());
  auto u = control_call(path_, {{"cmd", "nope"}});
  ASSERT_TRUE(u.is_ok());
  EXPECT_FALSE((*u)["ok"].get<bool>());
  EXPECT_EQ(calls_.load(), 2);
}

TEST_F(ServerFixture, MalformedRequestIsAnsweredNotFatal) {
  auto r = control_call(path_, nlohmann::json::array({1, 2}));
  ASSERT_TRUE(r.is_ok());
  EXPECT_FALSE((*r)["ok"].get<bool>());
  EXPECT_NE((*r)["error"].get<std::string>().find("malformed"), std::string::npos);
  auto ok = control_call(path_, {{"cmd", "echo"}});
  EXPECT_TRUE(ok.is_ok());
}

TEST(ControlClient, NoDaemonIsNotFound) {
  auto r = control_call("/tmp/recsync-no-such-dir/x.sock", {{"cmd", "status"}});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
}

TEST(ControlServerStart, RefusesToReplaceARegularFile) {
  char tmpl[] = "/tmp/recsync-control-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string p = dir + "/ctl.sock";
  FILE* f = fopen(p.c_str(), "w");
  fclose(f);
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    ControlServer s(&loop, p, "", [](auto&, auto&, auto r) { r({}); });
    Status st = s.start();
    EXPECT_FALSE(st.is_ok());
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
  struct stat sb;
  EXPECT_EQ(stat(p.c_str(), &sb), 0);  // untouched
  unlink(p.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace recsync
