// End-to-end tests of the single-node engine (issue 2): the real recsyncd,
// recsync and recsync-loadgen binaries on a real tmpfs spool and a real ext4
// archive on a loop device. Root only (mounts); skipped with a reason otherwise.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <utime.h>

#include <fstream>
#include <random>
#include <thread>

#include "node.h"
#include "recsync/env.h"
#include "recsync/names.h"

namespace recsync::test {
namespace {

using json = nlohmann::json;

// The end of the daemon's log, for failure messages.
bool archived_all(Node& n, size_t want) {
  return n.spool_count() == 0 && n.archive_recordings().size() >= want;
}

TEST(Engine, FiveHundredConcurrentRecordingsArchivedByteIdentical) {
  RECSYNC_REQUIRE_ROOT();
  Node n;
  n.start();
  // 500 calls, 100 recording at once, FreeSWITCH's write pattern at 50x real
  // time (1-6 s of audio each), some in date subfolders of the spool.
  auto r = n.loadgen({"--calls", "500", "--concurrency", "100", "--speed", "50", "--min-duration",
                      "1", "--max-duration", "6", "--seed", "7", "--subdirs", "--manifest",
                      n.dir.sub("manifest.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto manifest = read_manifest(n.dir.sub("manifest.jsonl"));
  ASSERT_EQ(manifest.size(), 500u);
  ASSERT_TRUE(wait_until([&] { return archived_all(n, 500); }, 60s))
      << "spool " << n.spool_count() << ", archive " << n.archive_recordings().size();
  expect_archived_exactly_once(manifest, n.archive_recordings());
  json s = n.status();
  EXPECT_EQ(s["archive"]["files"], 500);
  EXPECT_EQ(s["spool"]["files"], 0);
  EXPECT_TRUE(s["alarms"].empty()) << s["alarms"].dump();
  n.stop();
}

TEST(Engine, RestartWhileTwentyCallsRecordTakesEachOnlyWhenClosed) {
  RECSYNC_REQUIRE_ROOT();
  Node n;
  n.start();
  std::string release = n.dir.sub("hangup");
  auto lg =
      Process::spawn({bin("recsync-loadgen"), "--dir", n.spool, "--calls", "20", "--concurrency",
                      "20", "--speed", "20", "--min-duration", "2", "--max-duration", "4",
                      "--keep-open-until", release, "--manifest", n.dir.sub("manifest.jsonl")});
  ASSERT_TRUE(lg.is_ok());
  ASSERT_TRUE(wait_until([&] { return n.spool_count() == 20; }, 10s));
  std::this_thread::sleep_for(500ms);
  n.stop();  // restart while every call is still recording
  n.start();
  // The startup scan finds all 20; none is finished, so none may be taken even
  // though their audio stopped growing (the writer still holds them open).
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(n.spool_count(), 20u);
  EXPECT_EQ(n.archive_recordings().size(), 0u);
  EXPECT_EQ(n.status()["spool"]["files"], 20);
  write_file(release, "");
  ASSERT_EQ((*lg)->wait(30s), 0);
  auto manifest = read_manifest(n.dir.sub("manifest.jsonl"));
  ASSERT_EQ(manifest.size(), 20u);
  ASSERT_TRUE(wait_until([&] { return archived_all(n, 20); }, 30s));
  expect_archived_exactly_once(manifest, n.archive_recordings());  // whole: final headers
  n.stop();
}

TEST(Engine, KillNineWhileArchivingNeverLosesOrDuplicates) {
  RECSYNC_REQUIRE_ROOT();
  Node n;
  std::mt19937 rng(1234);
  std::vector<ManifestEntry> all;
  for (int round = 0; round < 20; ++round) {
    n.start();
    std::string mf = n.dir.sub("manifest." + std::to_string(round));
    auto r =
        n.loadgen({"--calls", "25", "--concurrency", "25", "--speed", "0", "--min-duration", "2",
                   "--max-duration", "10", "--seed", std::to_string(round + 1), "--manifest", mf});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (auto& m : read_manifest(mf)) all.push_back(m);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));  // mid-archive
    n.kill9();
  }
  n.start();
  ASSERT_TRUE(wait_until([&] { return archived_all(n, all.size()); }, 120s))
      << "spool " << n.spool_count() << ", archive " << n.archive_recordings().size() << " of "
      << all.size() << "\n"
      << log_tail(n);
  // Exactly once, whole, under the final name; stale temps from the kills are
  // removed by the startup reconcile.
  ASSERT_TRUE(wait_until([&] { return n.status()["archive"]["reconciled"] == true; }, 30s));
  auto tree = list_tree(n.archive);
  for (auto& [rel, fi] : tree) EXPECT_FALSE(is_temp_name(path_basename(rel))) << rel;
  expect_archived_exactly_once(all, n.archive_recordings());
  EXPECT_EQ(n.status()["archive"]["files"], all.size());
  n.stop();
}

TEST(Engine, FullArchiveKeepsRecordingsInSpoolAlarmsAndRecovers) {
  RECSYNC_REQUIRE_ROOT();
  NodeOptions o;
  o.archive_bytes = 32ull << 20;
  Node n(o);
  // Ballast leaves about 2 MB free in the archive filesystem.
  auto usage = [&] {
    struct statvfs v;
    statvfs(n.archive.c_str(), &v);
    return uint64_t(v.f_bavail) * v.f_frsize;
  };
  {
    std::ofstream b(n.archive + "/ballast.bin", std::ios::binary);
    std::string chunk(1 << 20, 'x');
    uint64_t fill = usage() - (2ull << 20);
    for (uint64_t i = 0; i < fill / chunk.size(); ++i) b.write(chunk.data(), chunk.size());
  }
  n.start();
  auto r = n.loadgen({"--calls", "40", "--concurrency", "40", "--speed", "0", "--min-duration", "5",
                      "--max-duration", "10", "--manifest", n.dir.sub("manifest.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto manifest = read_manifest(n.dir.sub("manifest.jsonl"));
  ASSERT_TRUE(wait_until(
      [&] {
        json s = n.status();
        for (auto& a : s["alarms"])
          if (a["text"].get<std::string>().find("archive full") != std::string::npos) return true;
        return false;
      },
      30s))
      << n.status().dump();
  EXPECT_GT(n.spool_count(), 0u);
  EXPECT_EQ(n.status()["alarms"][0]["severity"], "critical");
  RunResult chk = n.cli({"status", "--check"});
  EXPECT_EQ(chk.exit_code, 2) << chk.out;
  EXPECT_NE(chk.out.find("CRITICAL"), std::string::npos);
  // Whatever made it is whole; nothing half-written under a final name.
  for (auto& [rel, fi] : n.archive_recordings()) {
    if (rel == "ballast.bin" || is_temp_name(path_basename(rel))) continue;
    bool found = false;
    for (auto& m : manifest)
      if (path_basename(m.path) == path_basename(rel)) found = fi.hash == m.hash;
    EXPECT_TRUE(found) << rel << " is not a whole recording";
  }
  ASSERT_EQ(::unlink((n.archive + "/ballast.bin").c_str()), 0);
  ASSERT_TRUE(wait_until([&] { return n.spool_count() == 0; }, 60s));
  ASSERT_TRUE(wait_until([&] { return n.status()["alarms"].empty(); }, 10s)) << n.status().dump();
  expect_archived_exactly_once(manifest, n.archive_recordings());
  n.stop();
}

// Sets a file's mtime to now - age.
void age_file(const std::string& path, std::chrono::seconds age) {
  struct utimbuf t;
  t.actime = t.modtime = time(nullptr) - age.count();
  ASSERT_EQ(utime(path.c_str(), &t), 0);
}

TEST(Engine, RetentionPrunesOldSkipsHeldAuditsAndRemovesEmptyFolders) {
  RECSYNC_REQUIRE_ROOT();
  NodeOptions o;
  o.layout = "flat";
  Node n(o);
  using std::chrono::hours;
  // An old cron tree, adopted in place: 6 old recordings in their own folder,
  // 2 old ones beside young ones, and a young one.
  for (int i = 0; i < 6; ++i) {
    std::string p = n.archive + "/old/a" + std::to_string(i) + ".wav";
    write_file(p, std::string(1000 + i, 'a'));
    age_file(p, hours(24 * 20));
  }
  write_file(n.archive + "/mixed/old1.wav", "old1");
  age_file(n.archive + "/mixed/old1.wav", hours(24 * 16));
  write_file(n.archive + "/mixed/held-call.wav", "held");
  age_file(n.archive + "/mixed/held-call.wav", hours(24 * 30));
  write_file(n.archive + "/mixed/young.wav", "young");
  age_file(n.archive + "/mixed/young.wav", hours(24 * 14));
  n.start();
  ASSERT_TRUE(wait_until([&] { return n.status()["archive"]["files"] == 9; }, 20s))
      << n.status().dump();
  RunResult h = n.cli({"hold", "add", "held-call", "--reason", "legal case 42"});
  ASSERT_EQ(h.exit_code, 0) << h.err;
  RunResult dry = n.cli({"prune", "--dry-run", "--json"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  json d = json::parse(dry.out);
  EXPECT_EQ(d["files"], 7);
  EXPECT_EQ(d["held"], 1);
  EXPECT_EQ(n.archive_recordings().size(), 9u);  // a dry run deletes nothing

  ASSERT_EQ(n.cli({"prune"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return n.archive_recordings().size() == 2; }, 20s));
  // The pass ends (and records pruned_total) after it removes empty folders.
  ASSERT_TRUE(wait_until([&] { return n.status()["retention"]["pruned_total"] == 7; }, 10s));
  EXPECT_TRUE(file_exists(n.archive + "/mixed/held-call.wav"));
  EXPECT_TRUE(file_exists(n.archive + "/mixed/young.wav"));
  struct stat st;
  EXPECT_NE(stat((n.archive + "/old").c_str(), &st), 0) << "empty folder not removed";
  EXPECT_EQ(stat(n.archive.c_str(), &st), 0);

  // The audit log has one line per deletion with every field.
  std::ifstream audit(n.state_dir + "/audit.log");
  std::string line;
  std::set<std::string> paths;
  while (std::getline(audit, line)) {
    json a = json::parse(line);
    for (const char* k : {"path", "size", "hash", "rec_time", "deleted_at", "policy"})
      EXPECT_TRUE(a.contains(k)) << k << " missing in " << line;
    paths.insert(a["path"].get<std::string>());
  }
  EXPECT_EQ(paths.size(), 7u);
  EXPECT_TRUE(paths.count("old/a0.wav") || paths.count(n.archive + "/old/a0.wav"));
  EXPECT_FALSE(paths.count("mixed/held-call.wav"));

  // Released, the held recording goes on the next pass.
  ASSERT_EQ(n.cli({"hold", "release", "held-call"}).exit_code, 0);
  EXPECT_EQ(n.cli({"hold", "release", "held-call"}).exit_code, 1);  // no such hold now
  ASSERT_EQ(n.cli({"prune"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return !file_exists(n.archive + "/mixed/held-call.wav"); }, 20s));
  n.stop();
}

TEST(Engine, RetentionRefusesWhenTheClockIsBehindTheNewestRecording) {
  RECSYNC_REQUIRE_ROOT();
  NodeOptions o;
  o.layout = "flat";
  Node n(o);
  write_file(n.archive + "/old.wav", "old");
  age_file(n.archive + "/old.wav", std::chrono::hours(24 * 40));
  write_file(n.archive + "/future.wav", "future");
  age_file(n.archive + "/future.wav", -std::chrono::hours(48));  // the clock is 2 days behind
  n.start();
  ASSERT_TRUE(wait_until([&] { return n.status()["archive"]["files"] == 2; }, 20s));
  ASSERT_EQ(n.cli({"prune"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] { return !n.status()["retention"]["refused"].get<std::string>().empty(); }, 20s));
  EXPECT_TRUE(file_exists(n.archive + "/old.wav"));
  json s = n.status();
  bool alarmed = false;
  for (auto& a : s["alarms"])
    alarmed |= a["text"].get<std::string>().find("retention refused") != std::string::npos;
  EXPECT_TRUE(alarmed) << s.dump();
  n.stop();
}

TEST(Engine, InotifyOverflowMissesNothing) {
  RECSYNC_REQUIRE_ROOT();
  const std::string knob = "/proc/sys/fs/inotify/max_queued_events";
  std::string old = read_file(knob);
  ASSERT_FALSE(old.empty());
  Node n;
  write_file(knob, "64\n");  // taken at inotify_init: only the daemon's queue is tiny
  n.start();
  write_file(knob, old);
  n.process()->signal(SIGSTOP);  // the loop cannot drain while 2000 files land
  for (int i = 0; i < 2000; ++i)
    write_file(n.spool + "/burst-" + std::to_string(i) + ".wav", "pcm");
  n.process()->signal(SIGCONT);
  ASSERT_TRUE(wait_until([&] { return archived_all(n, 2000); }, 60s))
      << "spool " << n.spool_count() << " archive " << n.archive_recordings().size();
  EXPECT_GE(n.status()["spool"]["overflows"].get<int>(), 1);
  EXPECT_EQ(n.archive_recordings().size(), 2000u);
  n.stop();
}

TEST(Engine, ControlSocketRefusesUsersOutsideTheGroup) {
  RECSYNC_REQUIRE_ROOT();
  Node n;  // control group "": root and the daemon's user only
  n.start();
  ASSERT_EQ(chmod(n.dir.path().c_str(), 0755), 0);  // let "nobody" reach the socket path
  RunResult fs_refused = n.cli({"status"}, "nobody");
  EXPECT_EQ(fs_refused.exit_code, 77) << fs_refused.err;  // socket mode 0660 root:root
  // Even with the file opened up, the daemon checks the peer's credentials.
  ASSERT_EQ(chmod(n.socket.c_str(), 0666), 0);
  RunResult refused = n.cli({"status"}, "nobody");
  EXPECT_EQ(refused.exit_code, 77) << refused.err;
  EXPECT_NE(refused.err.find("permission denied"), std::string::npos) << refused.err;
  EXPECT_NE(n.log().find("refused control connection from uid 65534"), std::string::npos);
  EXPECT_EQ(n.cli({"status"}).exit_code, 0);  // root still served
  n.stop();
}

TEST(Engine, BadConfigIsReportedWithFileAndLine) {
  TempDir d;
  std::string conf =
      write_file(d.sub("bad.conf"),
                 "[spool]\npath = \"/tmp/x\"\nsetle = \"1s\"\n[archive]\npath = \"/tmp/y\"\n");
  RunResult r = run({bin("recsyncd"), "--check-config", "-c", conf});
  EXPECT_EQ(r.exit_code, 78);
  EXPECT_NE(r.err.find(conf + ":3: unknown key 'setle'"), std::string::npos) << r.err;
  RunResult start = run({bin("recsyncd"), "-c", conf}, 10s);
  EXPECT_EQ(start.exit_code, 78);
}

TEST(Engine, SighupReloadsAndABadReloadKeepsRunning) {
  RECSYNC_REQUIRE_ROOT();
  Node n;
  n.start();
  std::string good = read_file(n.config_path);
  write_file(n.config_path, good + "\n[bogus]\n");
  n.process()->signal(SIGHUP);
  ASSERT_TRUE(wait_until(
      [&] { return n.log().find("keeping the running configuration") != std::string::npos; }, 10s));
  EXPECT_FALSE(n.status().is_null());
  write_file(n.config_path, good);
  n.process()->signal(SIGHUP);
  ASSERT_TRUE(
      wait_until([&] { return n.log().find("configuration reloaded") != std::string::npos; }, 10s));
  ASSERT_EQ(n.loadgen({"--calls", "5", "--speed", "0"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return archived_all(n, 5); }, 20s));
  n.stop();
}

}  // namespace
}  // namespace recsync::test

namespace recsync::test {
namespace {

TEST(Cli, ExitCodesIdAndKeygen) {
  TempDir d;
  std::string conf =
      write_file(d.sub("r.conf"), "node = \"fs9\"\nstate_dir = \"" + d.sub("state") +
                                      "\"\n[control]\nsocket = \"" + d.sub("none.sock") +
                                      "\"\n[spool]\npath = \"" + d.sub("s") +
                                      "\"\n[archive]\npath = \"" + d.sub("a") + "\"\n");
  EXPECT_EQ(run({bin("recsync"), "-c", conf, "frobnicate"}).exit_code, 64);
  EXPECT_EQ(run({bin("recsync"), "-c", conf, "status"}).exit_code, 69);  // no daemon
  RunResult chk = run({bin("recsync"), "-c", conf, "status", "--check"});
  EXPECT_EQ(chk.exit_code, 3);
  EXPECT_NE(chk.out.find("UNKNOWN"), std::string::npos);
  EXPECT_EQ(run({bin("recsync"), "-c", d.sub("missing.conf"), "status"}).exit_code, 78);

  RunResult none = run({bin("recsync"), "-c", conf, "id"});  // reads only: none yet
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no identity"), std::string::npos) << none.err;
  ASSERT_EQ(run({bin("recsync"), "-c", conf, "keygen"}).exit_code, 0);
  RunResult id1 = run({bin("recsync"), "-c", conf, "id"});
  ASSERT_EQ(id1.exit_code, 0) << id1.err;
  EXPECT_EQ(id1.out.rfind("sha256:", 0), 0u);
  EXPECT_EQ(id1.out.size(), 7u + 64u + 1u);
  EXPECT_EQ(run({bin("recsync"), "-c", conf, "id"}).out, id1.out);      // stable
  EXPECT_EQ(run({bin("recsync"), "-c", conf, "keygen"}).exit_code, 1);  // never replaced silently
  RunResult k = run({bin("recsync"), "-c", conf, "keygen", "--force"});
  ASSERT_EQ(k.exit_code, 0) << k.err;
  EXPECT_NE(k.out, id1.out);
  EXPECT_EQ(run({bin("recsync"), "-c", conf, "id"}).out, k.out);
  struct stat st;
  ASSERT_EQ(stat(d.sub("state/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace recsync::test

namespace recsync::test {
namespace {

// Receives sd_notify datagrams the way systemd does (NOTIFY_SOCKET).
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~NotifySocket() { ::close(fd_); }
  // Everything received so far, appended.
  std::string drain() {
    char buf[4096];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got_.append(buf, size_t(n)).append("\n");
    }
    return got_;
  }

 private:
  std::string path_, got_;
  int fd_;
};

TEST(Engine, TellsSystemdReadyStatusAndWatchdog) {
  RECSYNC_REQUIRE_ROOT();
  Node n;
  NotifySocket ns(n.dir.sub("notify.sock"));
  n.start({{"NOTIFY_SOCKET", n.dir.sub("notify.sock")}, {"WATCHDOG_USEC", "2000000"}});
  ASSERT_TRUE(wait_until([&] { return ns.drain().find("WATCHDOG=1") != std::string::npos; }, 10s))
      << ns.drain();
  std::string got = ns.drain();
  EXPECT_NE(got.find("READY=1"), std::string::npos);
  EXPECT_NE(got.find("STATUS=spool 0 files"), std::string::npos) << got;
  n.stop();
  EXPECT_NE(ns.drain().find("STOPPING=1"), std::string::npos);
}

TEST(Engine, SpoolUsageAlarmsAtTheWatermarks) {
  RECSYNC_REQUIRE_ROOT();
  NodeOptions o;
  o.spool_bytes = 8ull << 20;
  Node n(o);
  n.start();
  EXPECT_TRUE(n.status()["alarms"].empty());
  // Not a recording (*.wav only), so it stays: 6 MiB of 8 is 75% > 70%.
  write_file(n.spool + "/ballast.bin", std::string(6 << 20, 'b'));
  auto has = [&](const char* what) {
    json s = n.status();  // not n.status()["alarms"]: the temporary would dangle
    for (auto& a : s["alarms"])
      if (a["text"].get<std::string>().find(what) != std::string::npos)
        return a["severity"].get<std::string>();
    return std::string();
  };
  ASSERT_TRUE(wait_until([&] { return has("spool usage") == "warning"; }, 10s))
      << n.status().dump();
  write_file(n.spool + "/ballast2.bin", std::string(3 << 19, 'b'));  // 7.5 MiB: > 90%
  ASSERT_TRUE(wait_until([&] { return has("spool usage") == "critical"; }, 10s))
      << n.status().dump();
  EXPECT_EQ(n.cli({"status", "--check"}).exit_code, 2);
  ::unlink((n.spool + "/ballast.bin").c_str());
  ::unlink((n.spool + "/ballast2.bin").c_str());
  ASSERT_TRUE(wait_until([&] { return has("spool usage").empty(); }, 10s));
  n.stop();
}

TEST(Engine, CorruptStateDatabaseIsRebuiltFromTheArchive) {
  RECSYNC_REQUIRE_ROOT();
  Node n;
  n.start();
  ASSERT_EQ(n.loadgen({"--calls", "30", "--speed", "0"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return archived_all(n, 30); }, 30s));
  n.stop();
  write_file(n.state_dir + "/state.db", std::string(65536, 'x'));  // garbage over the DB
  ::unlink((n.state_dir + "/state.db-wal").c_str());
  n.start();
  ASSERT_TRUE(wait_until([&] { return n.status()["archive"]["files"] == 30; }, 30s))
      << n.status().dump();
  bool alarmed = false;
  json s = n.status();
  for (auto& a : s["alarms"])
    alarmed |= a["text"].get<std::string>().find("state database was corrupt") != std::string::npos;
  EXPECT_TRUE(alarmed);
  EXPECT_EQ(n.archive_recordings().size(), 30u);  // disk untouched
  n.stop();
}

}  // namespace
}  // namespace recsync::test
