// The preflight checks (daemon/preflight.h) on configs parsed from text, so
// the reported lines are the parser's, against real folders in a temp dir.
#include "daemon/preflight.h"

#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace recsync {
namespace {

namespace fs = std::filesystem;

constexpr const char* kNoGroup = "recsync-no-such-group-5f3a";

class PreflightTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/recsync-preflight-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/spool");
    fs::create_directories(dir_ + "/archive");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A config whose every path is in the temp dir; `control`, `spool_extra`
  // and `tail` are spliced in. Line numbers: 1 node, 2 state_dir, 3 [control],
  // 4 socket, then `control` lines, then [spool] ...
  std::string conf(const std::string& control = "group = \"\"\n",
                   const std::string& spool_extra = "", const std::string& tail = "") {
    return "node = \"fs1\"\nstate_dir = \"" + dir_ + "/state\"\n[control]\nsocket = \"" + dir_ +
           "/run/ctl.sock\"\n" + control + "[spool]\npath = \"" + dir_ + "/spool\"\n" +
           spool_extra + "[archive]\npath = \"" + dir_ + "/archive\"\n[metrics]\nlisten = \"\"\n" +
           tail;
  }
  std::vector<PreflightProblem> check(const std::string& text) {
    auto c = parse_config(text, "t.conf");
    EXPECT_TRUE(c) << c.status().to_string();
    if (!c) return {};
    return preflight(*c, Env::posix());
  }
  static std::vector<std::string> texts(const std::vector<PreflightProblem>& ps) {
    std::vector<std::string> t;
    for (auto& p : ps) t.push_back((p.error() ? "E " : "W ") + p.text);
    return t;
  }

  std::string dir_;
};

TEST_F(PreflightTest, ACleanConfigHasNoProblems) {
  EXPECT_TRUE(check(conf()).empty()) << testing::PrintToString(texts(check(conf())));
  // The socket folder and state_dir are missing but creatable: fine.
  EXPECT_FALSE(fs::exists(dir_ + "/run"));
  EXPECT_FALSE(fs::exists(dir_ + "/state")) << "nothing is created";
}

TEST_F(PreflightTest, MissingControlGroupIsReportedAtItsLine) {
  auto p = check(conf("group = \"" + std::string(kNoGroup) + "\"\n"));
  ASSERT_EQ(p.size(), 1u) << testing::PrintToString(texts(p));
  EXPECT_TRUE(p[0].error());
  EXPECT_EQ(p[0].text.rfind(
                "t.conf:5: control.group: group '" + std::string(kNoGroup) + "' does not exist", 0),
            0u)
      << p[0].text;
  EXPECT_TRUE(check(conf("group = \"root\"\n")).empty());
  EXPECT_TRUE(group_exists("root"));
  EXPECT_FALSE(group_exists(kNoGroup));
}

TEST_F(PreflightTest, ADefaultGroupPointsAtTheSectionOrTheFile) {
  if (group_exists("recsync")) GTEST_SKIP() << "this host has a group 'recsync'";
  // [control] is on line 3; group is left at its default "recsync".
  auto p = check(conf(""));
  ASSERT_EQ(p.size(), 1u) << testing::PrintToString(texts(p));
  EXPECT_EQ(p[0].text.rfind("t.conf:3: control.group: group 'recsync' does not exist", 0), 0u)
      << p[0].text;
}

TEST_F(PreflightTest, EveryFolderProblemIsReportedNotOnlyTheFirst) {
  fs::remove_all(dir_ + "/spool");
  fs::remove_all(dir_ + "/archive");
  std::ofstream(dir_ + "/archive") << "a file";
  std::ofstream(dir_ + "/state") << "a file";
  auto p = texts(check(conf("group = \"" + std::string(kNoGroup) + "\"\n")));
  ASSERT_EQ(p.size(), 4u) << testing::PrintToString(p);
  EXPECT_EQ(p[0].rfind("E t.conf:5: control.group:", 0), 0u) << p[0];
  EXPECT_EQ(p[1], "E t.conf:7: spool.path: folder '" + dir_ + "/spool' does not exist");
  EXPECT_EQ(p[2], "E t.conf:9: archive.path: '" + dir_ + "/archive' is not a folder");
  EXPECT_EQ(p[3], "E t.conf:2: state_dir: '" + dir_ + "/state' exists and is not a folder");
}

TEST_F(PreflightTest, SymlinkedSpoolIsRefusedAsTheDaemonDoes) {
  fs::rename(dir_ + "/spool", dir_ + "/real-spool");
  fs::create_directory_symlink(dir_ + "/real-spool", dir_ + "/spool");
  auto p = texts(check(conf()));
  ASSERT_EQ(p.size(), 1u) << testing::PrintToString(p);
  EXPECT_EQ(p[0], "E t.conf:7: spool.path: '" + dir_ +
                      "/spool' is a symlink; give the folder it points to");
}

TEST_F(PreflightTest, StateDirUnderAFileCannotBeCreated) {
  std::ofstream(dir_ + "/blocker") << "x";
  std::string text = conf();
  text.replace(text.find(dir_ + "/state"), (dir_ + "/state").size(), dir_ + "/blocker/state");
  auto p = texts(check(text));
  ASSERT_EQ(p.size(), 1u) << testing::PrintToString(p);
  EXPECT_EQ(p[0], "E t.conf:2: state_dir: '" + dir_ + "/blocker/state' cannot be created: '" +
                      dir_ + "/blocker' is not a folder");
}

TEST_F(PreflightTest, ControlSocketPathTakenByAFileOrUnderAFile) {
  fs::create_directories(dir_ + "/run");
  std::ofstream(dir_ + "/run/ctl.sock") << "not a socket";
  auto p = texts(check(conf()));
  ASSERT_EQ(p.size(), 1u) << testing::PrintToString(p);
  EXPECT_EQ(p[0], "E t.conf:4: control.socket: '" + dir_ +
                      "/run/ctl.sock' exists and is not a socket (it is not replaced)");
  fs::remove_all(dir_ + "/run");
  std::ofstream(dir_ + "/run") << "a file where the folder should be";
  p = texts(check(conf()));
  ASSERT_EQ(p.size(), 1u) << testing::PrintToString(p);
  EXPECT_EQ(p[0], "E t.conf:4: control.socket: the socket's folder: '" + dir_ +
                      "/run' exists and is not a folder");
}

// Runs preflight as `nobody` when we are root (root may write anywhere, so
// access(2) would never refuse), in a child process; returns its texts.
std::vector<std::string> check_as_nobody(const std::string& text) {
  auto c = parse_config(text, "t.conf");
  EXPECT_TRUE(c) << c.status().to_string();
  if (!c) return {};
  auto texts_of = [&] {
    std::string all;
    for (auto& p : preflight(*c, Env::posix())) all += p.text + "\n";
    return all;
  };
  if (::geteuid() != 0) {
    std::string all = texts_of();
    return {all};
  }
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(2);
    std::string all = texts_of();
    (void)!::write(fds[1], all.data(), all.size());
    _exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, n);
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  return {out};
}

TEST_F(PreflightTest, NotWritableFoldersAreReportedForTheCheckingUser) {
  // Readable by everyone (the check may run as nobody), writable by none of them.
  fs::permissions(dir_, fs::perms::all & ~fs::perms::group_write & ~fs::perms::others_write);
  fs::create_directories(dir_ + "/ro");
  fs::permissions(dir_ + "/ro", fs::perms::owner_read | fs::perms::owner_exec |
                                    fs::perms::group_read | fs::perms::group_exec |
                                    fs::perms::others_read | fs::perms::others_exec);
  std::string text = conf();
  text.replace(text.find(dir_ + "/state"), (dir_ + "/state").size(), dir_ + "/ro/state");
  auto p = check_as_nobody(text);
  fs::permissions(dir_ + "/ro", fs::perms::owner_all);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("t.conf:2: state_dir: '" + dir_ +
                      "/ro/state' does not exist and cannot be "
                      "created in '" +
                      dir_ + "/ro' (not writable by uid"),
            std::string::npos)
      << p[0];
}

TEST_F(PreflightTest, MetricsListenOnAForeignAddressOrAnUnknownScope) {
  std::string text = conf();
  const std::string off = "listen = \"\"\n";
  auto with_metrics = [&](const std::string& listen) {
    std::string t = text;
    t.replace(t.find(off), off.size(), "listen = \"" + listen + "\"\n");
    return texts(check(t));
  };
  EXPECT_TRUE(with_metrics("127.0.0.1:0").empty());
  EXPECT_TRUE(with_metrics("127.0.0.53:9465").empty()) << "all of 127/8 is local";
  EXPECT_TRUE(with_metrics("0.0.0.0:9465").empty());
  EXPECT_TRUE(with_metrics("[::1]:9465").empty());
  auto p = with_metrics("[fe80::1%nosuchif0]:9465");
  ASSERT_EQ(p.size(), 1u) << testing::PrintToString(p);
  EXPECT_EQ(p[0].rfind("E t.conf:11: metrics.listen: invalid address", 0), 0u) << p[0];
  EXPECT_NE(p[0].find("unknown IPv6 scope 'nosuchif0'"), std::string::npos) << p[0];
  p = with_metrics("[fe80::1]:9465");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("needs its interface"), std::string::npos) << p[0];
  std::ifstream nonlocal("/proc/sys/net/ipv4/ip_nonlocal_bind");
  int v = 0;
  if ((nonlocal >> v) && v != 0) GTEST_SKIP() << "net.ipv4.ip_nonlocal_bind is on";
  p = with_metrics("198.51.100.7:9465");  // TEST-NET-2: on no interface
  ASSERT_EQ(p.size(), 1u) << testing::PrintToString(p);
  EXPECT_EQ(p[0],
            "E t.conf:11: metrics.listen: no interface of this host has the address of "
            "'198.51.100.7:9465' (bind would fail)");
}

TEST_F(PreflightTest, MetricsOnTheReplicationPortCollidesOnlyWithPeers) {
  const std::string peer = "[[peer]]\nname = \"fs2\"\naddress = \"127.0.0.1:7374\"\n" +
                           std::string("fingerprint = \"sha256:") + std::string(64, 'a') + "\"\n";
  std::string base = conf();
  base.replace(base.find("listen = \"\"\n"), 12, "listen = \"127.0.0.1:7373\"\n");
  base += "[replication]\nlisten = \"0.0.0.0:7373\"\n";
  EXPECT_TRUE(check(base).empty()) << "no peers: replication.listen is not bound";
  auto p = texts(check(base + peer));
  ASSERT_EQ(p.size(), 1u) << testing::PrintToString(p);
  EXPECT_EQ(p[0],
            "E t.conf:11: metrics.listen: '127.0.0.1:7373' takes the same port as "
            "replication.listen '0.0.0.0:7373'");
  // A replication listen on a foreign address is an error with peers.
  std::string foreign = base + peer;
  foreign.replace(foreign.find("0.0.0.0:7373"), 12, "198.51.100.7:7373");
  p = texts(check(foreign));
  ASSERT_GE(p.size(), 1u);
  EXPECT_EQ(p[0].rfind("E t.conf:13: replication.listen: no interface", 0), 0u) << p[0];
}

// In a fresh network namespace lo is down and has no address: 127.0.0.1
// cannot be bound until it is up. Checked in a child process (root only).
TEST(ListenProblem, LoopbackCountsOnlyWhenLoIsUp) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET) != 0) _exit(3);
    if (listen_problem("127.0.0.1:9465").empty()) _exit(4);  // lo down: not local
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    ifreq ifr{};
    std::strcpy(ifr.ifr_name, "lo");
    if (::ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) _exit(5);
    ifr.ifr_flags |= IFF_UP;
    if (::ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) _exit(5);
    ::close(fd);
    if (!listen_problem("127.0.0.1:9465").empty()) _exit(6);   // lo up: 127.0.0.1
    if (!listen_problem("127.0.0.53:9465").empty()) _exit(7);  // and all of 127/8
    if (listen_problem("192.0.2.2:9465").empty()) _exit(8);    // the host's eth0: not here
    _exit(0);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  if (WEXITSTATUS(st) == 3) GTEST_SKIP() << "unshare(CLONE_NEWNET) refused";
  EXPECT_EQ(WEXITSTATUS(st), 0) << "see the _exit codes in the test";
}

TEST(ListensCollide, PortsAndWildcards) {
  EXPECT_TRUE(listens_collide("127.0.0.1:9465", "127.0.0.1:9465"));
  EXPECT_TRUE(listens_collide("0.0.0.0:9465", "127.0.0.1:9465"));
  EXPECT_TRUE(listens_collide("127.0.0.1:9465", "0.0.0.0:9465"));
  EXPECT_TRUE(listens_collide("[::]:9465", "127.0.0.1:9465")) << "dual-stack wildcard";
  EXPECT_TRUE(listens_collide("[::1]:9465", "[::]:9465"));
  EXPECT_FALSE(listens_collide("127.0.0.1:9465", "127.0.0.2:9465"));
  EXPECT_FALSE(listens_collide("127.0.0.1:9465", "127.0.0.1:9466"));
  EXPECT_FALSE(listens_collide("127.0.0.1:0", "127.0.0.1:0")) << "port 0: any free port";
  EXPECT_FALSE(listens_collide("0.0.0.0:9465", "[::1]:9465"));
  EXPECT_FALSE(listens_collide("garbage", "127.0.0.1:9465"));
}

TEST_F(PreflightTest, PatternsThatArchiveNothingAreWarnings) {
  auto p = check(conf("group = \"\"\n", "include = []\n"));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_FALSE(p[0].error());
  EXPECT_EQ(p[0].text,
            "t.conf:8: spool.include: no patterns: no file in the spool is ever archived");
  auto t = texts(check(conf("group = \"\"\n",
                            "include = [\"*.wav\", \"sub/.*.wav\"]\n"
                            "exclude = [\"*\", \"*.wav\"]\n")));
  ASSERT_EQ(t.size(), 3u) << testing::PrintToString(t);
  EXPECT_EQ(t[0],
            "W t.conf:8: spool.include: 'sub/.*.wav' matches only hidden files, which are never "
            "recordings");
  EXPECT_EQ(t[1], "W t.conf:9: spool.exclude: '*' excludes every recording");
  EXPECT_EQ(t[2], "W t.conf:9: spool.exclude: '*.wav' is also an include pattern: it excludes it");
}

}  // namespace
}  // namespace recsync
