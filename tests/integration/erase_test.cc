// End-to-end tests of erasure (SPEC 4.4, erase/eraser.h): real recsyncd
// nodes over TLS on 127.0.0.1, each with a real tmpfs spool and a real ext4
// archive on a loop device. `recsync erase` on one node removes the
// recording there and, through the durable erase queue, on the peer; a held
// one is refused; a peer down gets it when it returns; a transfer in flight
// is abandoned; backfill does not bring it back; kill -9 during erasures
// loses no other recording. Root only; skipped with a reason otherwise.
#include <cstdio>
#include <filesystem>
#include <set>
#include <thread>

#include "node.h"
#include "peer/connection.h"
#include "peer/frame.h"
#include "peer/identity.h"
#include "peer/tls.h"
#include "recsync/env.h"

namespace recsync::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// The archive path on n of the recording whose file name is `name` ("" when none).
std::string find_rel(Node& n, const std::string& name) {
  for (auto& [rel, fi] : n.archive_recordings())
    if (fs::path(rel).filename() == name) return rel;
  return "";
}

bool has(Node& n, const std::string& name) { return !find_rel(n, name).empty(); }

// Audit log lines of n naming `path` with policy erase.
std::vector<json> erase_audits(Node& n, const std::string& path) {
  std::vector<json> out;
  std::istringstream lines(read_file(n.state_dir + "/audit.log"));
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("policy", "") == "erase" && j.value("path", "") == path)
      out.push_back(j);
  }
  return out;
}

// erasure.peers[peer].pending from n's status (-1 when unknown; 0 when the
// peer has nothing queued).
int64_t erase_pending(Node& n, const std::string& peer) {
  json s = n.status();
  if (!s.is_object() || !s.contains("erasure")) return -1;
  for (auto& p : s["erasure"]["peers"])
    if (p["peer"] == peer) return p["pending"].get<int64_t>();
  return 0;
}

// A converged pair with `count` recordings recorded on fs1 ("e-<i>.wav").
void converged_pair(Pair& p, int count, size_t size = 2000) {
  p.start();
  if (::testing::Test::HasFatalFailure()) return;
  for (int i = 0; i < count; ++i)
    record(*p.fs1, "e-" + std::to_string(i) + ".wav",
           "call " + std::to_string(i) + std::string(size, static_cast<char>('a' + i % 26)));
  ASSERT_TRUE(wait_until([&] { return converged(p, count); }, 60s, 200ms)) << describe(p);
}

TEST(Erase, OnOneNodeGoneOnBothAuditedOnBoth) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  converged_pair(p, 5);
  if (HasFatalFailure()) return;
  const std::string rel = find_rel(*p.fs1, "e-2.wav");
  ASSERT_FALSE(rel.empty());
  const std::string hash = p.fs1->archive_recordings()[rel].hash;
  const auto t0 = std::chrono::steady_clock::now();
  RunResult r = p.fs1->cli({"erase", "e-2", "--reason", "GDPR request 12", "--json"});
  const auto t1 = std::chrono::steady_clock::now();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << log_tail(*p.fs1);
  json j = json::parse(r.out);
  EXPECT_EQ(j["origin"], "fs1");
  EXPECT_EQ(j["origin_path"], rel);
  EXPECT_EQ(j["peers"], json::array({"fs2"}));
  EXPECT_FALSE(has(*p.fs1, "e-2.wav")) << "gone here at once";
  ASSERT_TRUE(wait_until([&] { return !has(*p.fs2, "e-2.wav"); }, 20s, 5ms)) << log_tail(*p.fs2);
  const auto t2 = std::chrono::steady_clock::now();
  std::printf("erase: recsync erase took %.1f ms; gone on the peer %.1f ms after the command\n",
              std::chrono::duration<double, std::milli>(t1 - t0).count(),
              std::chrono::duration<double, std::milli>(t2 - t0).count());
  ASSERT_TRUE(wait_until([&] { return erase_pending(*p.fs1, "fs2") == 0; }, 10s));
  for (Node* n : {p.fs1.get(), p.fs2.get()}) {
    EXPECT_EQ(n->archive_recordings().size(), 4u) << "nothing else goes";
    auto a = erase_audits(*n, rel);
    ASSERT_EQ(a.size(), 1u) << read_file(n->state_dir + "/audit.log");
    EXPECT_EQ(a[0]["hash"], hash);
    EXPECT_NE(a[0]["reason"].get<std::string>().find("GDPR request 12"), std::string::npos);
    EXPECT_EQ(a[0]["uid"].get<int64_t>(), static_cast<int64_t>(::getuid()));
    json s = n->status();
    EXPECT_EQ(num(s, {"erasure", "tombstones"}), 1) << s["erasure"].dump();
    EXPECT_EQ(num(s, {"erasure", "erased_total"}), 1) << s["erasure"].dump();
  }
  // Erasing it again: nothing names it any more.
  EXPECT_EQ(p.fs1->cli({"erase", "e-2", "--reason", "again"}).exit_code, 1);
  // No reason: a usage error.
  EXPECT_EQ(p.fs1->cli({"erase", "e-3"}).exit_code, 64);
}

TEST(Erase, AHeldRecordingIsRefusedOnEveryNode) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  converged_pair(p, 3);
  if (HasFatalFailure()) return;
  ASSERT_EQ(p.fs1->cli({"hold", "add", "e-1", "--reason", "court case 4"}).exit_code, 0);
  // The hold is copied to fs2: an erasure asked there is refused too.
  ASSERT_TRUE(wait_until(
      [&] {
        return p.fs2->cli({"hold", "list", "--json"}).out.find("court case 4") != std::string::npos;
      },
      20s));
  for (Node* n : {p.fs1.get(), p.fs2.get()}) {
    RunResult r = n->cli({"erase", "e-1", "--reason", "GDPR", "--json"});
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.err.find("held"), std::string::npos) << r.err;
    EXPECT_TRUE(json::parse(r.out, nullptr, false).value("refused", false)) << r.out;
  }
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(has(*p.fs1, "e-1.wav"));
  EXPECT_TRUE(has(*p.fs2, "e-1.wav"));
  // Released: it can go.
  ASSERT_EQ(p.fs1->cli({"hold", "release", "e-1"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return p.fs2->cli({"hold", "list", "--json"}).out.find("court case 4") == std::string::npos;
      },
      20s));
  EXPECT_EQ(p.fs1->cli({"erase", "e-1", "--reason", "GDPR"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return !has(*p.fs2, "e-1.wav"); }, 20s));
}

// A hold placed on fs2 while fs1 was down: fs1 erases its copy (it does not
// know the hold yet), fs2 refuses (NACK held), fs1 reports the refusal.
TEST(Erase, APeerThatHoldsItRefusesAndTheErasingNodeSaysSo) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  converged_pair(p, 3);
  if (HasFatalFailure()) return;
  p.fs1->stop();
  ASSERT_EQ(p.fs2->cli({"hold", "add", "e-1", "--reason", "court case 9"}).exit_code, 0);
  p.fs2->stop();
  p.fs1->start();
  ASSERT_EQ(p.fs1->cli({"erase", "e-1", "--reason", "GDPR 9"}).exit_code, 0);
  EXPECT_FALSE(has(*p.fs1, "e-1.wav"));
  p.fs2->start();
  auto refused = [&] {
    json s = p.fs1->status();
    if (!s.is_object() || !s.contains("erasure")) return false;
    for (auto& e : s["erasure"]["peers"])
      if (e["peer"] == "fs2" && e["refused"].get<int64_t>() == 1) return true;
    return false;
  };
  ASSERT_TRUE(wait_until(refused, 30s)) << describe(p) << log_tail(*p.fs1);
  json s = p.fs1->status();
  bool alarm = false;
  for (auto& a : s["alarms"])
    alarm |= a["text"].get<std::string>().find("peer fs2 refused 1 erasure") != std::string::npos;
  EXPECT_TRUE(alarm) << s["alarms"].dump();
  EXPECT_NE(p.fs1->cli({"status"}).out.find("refused: held there"), std::string::npos);
  EXPECT_TRUE(has(*p.fs2, "e-1.wav")) << "held on fs2: kept";
  EXPECT_EQ(erase_audits(*p.fs2, find_rel(*p.fs2, "e-1.wav")).size(), 0u);
}

TEST(Erase, APeerThatWasDownGetsTheErasureWhenItReturns) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  converged_pair(p, 4);
  if (HasFatalFailure()) return;
  p.fs2->stop();
  ASSERT_EQ(p.fs1->cli({"erase", "e-0", "--reason", "GDPR 1"}).exit_code, 0);
  ASSERT_EQ(p.fs1->cli({"erase", "e-3", "--reason", "GDPR 2"}).exit_code, 0);
  EXPECT_EQ(erase_pending(*p.fs1, "fs2"), 2);
  // fs1 restarts meanwhile: the queue is durable.
  p.fs1->stop();
  p.fs1->start();
  EXPECT_EQ(erase_pending(*p.fs1, "fs2"), 2);
  EXPECT_TRUE(has(*p.fs2, "e-0.wav")) << "fs2 was down: its copy is still there";
  p.fs2->start();
  ASSERT_TRUE(wait_until([&] { return !has(*p.fs2, "e-0.wav") && !has(*p.fs2, "e-3.wav"); }, 30s))
      << describe(p) << log_tail(*p.fs2);
  ASSERT_TRUE(wait_until([&] { return erase_pending(*p.fs1, "fs2") == 0; }, 10s));
  EXPECT_EQ(p.fs2->archive_recordings().size(), 2u);
  EXPECT_EQ(erase_audits(*p.fs2, find_rel(*p.fs1, "e-1.wav")).size(), 0u);
}

TEST(Erase, ATransferInFlightIsAbandonedAndNotPublished) {
  RECSYNC_REQUIRE_ROOT();
  PairOptions o;
  o.bandwidth1 = "300KB/s";  // a 6 MB recording takes ~20 s to send
  Pair p(o);
  p.start();
  if (HasFatalFailure()) return;
  const std::string tmp = p.fs1->spool + "/.big";
  write_random_file(tmp, 6'000'000, 5);
  fs::rename(tmp, p.fs1->spool + "/big-call.wav");
  // Archived here and on its way to fs2.
  ASSERT_TRUE(wait_until(
      [&] {
        json peer = p.fs1->peer_status("fs2");
        return peer.is_object() && peer["in_flight"].is_object() &&
               peer["in_flight"]["sent_bytes"].get<uint64_t>() > 500'000;
      },
      30s, 100ms))
      << describe(p);
  RunResult r = p.fs1->cli({"erase", "big-call", "--reason", "GDPR mid-transfer"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(wait_until([&] { return erase_pending(*p.fs1, "fs2") == 0; }, 30s))
      << describe(p) << log_tail(*p.fs1);
  // Never published on fs2, no partial left, and not sent again.
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(has(*p.fs2, "big-call.wav"));
  EXPECT_FALSE(has(*p.fs1, "big-call.wav"));
  EXPECT_TRUE(hidden_files(*p.fs2).empty()) << testing::PrintToString(hidden_files(*p.fs2));
  EXPECT_EQ(queue_files(*p.fs1), 0);
  EXPECT_NE(p.fs1->log().find("abandoned: erased meanwhile"), std::string::npos)
      << log_tail(*p.fs1);
  // Live replication goes on.
  record(*p.fs1, "after.wav", "after the erasure");
  ASSERT_TRUE(wait_until([&] { return has(*p.fs2, "after.wav"); }, 30s)) << describe(p);
}

// `recsync backfill` on n to its end; its exit code.
int backfill(Node& n) {
  RunResult r = run({bin("recsync"), "--socket", n.socket, "backfill", "--json"}, 120s);
  return r.exit_code;
}

TEST(Erase, BackfillAfterwardsDoesNotBringItBack) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  converged_pair(p, 4);
  if (HasFatalFailure()) return;
  // fs2 is down when fs1 erases; fs2 returns and backfills at once (its
  // copy would be pushed to fs1), then fs1 backfills from fs2.
  const std::string rel = find_rel(*p.fs1, "e-1.wav");
  ASSERT_FALSE(rel.empty());
  const auto mtime = fs::last_write_time(p.fs1->archive + "/" + rel);
  p.fs2->stop();
  ASSERT_EQ(p.fs1->cli({"erase", "e-1", "--reason", "GDPR"}).exit_code, 0);
  p.fs2->start();
  ASSERT_TRUE(p.wait_connected(30s));
  EXPECT_EQ(backfill(*p.fs2), 0);
  EXPECT_EQ(backfill(*p.fs1), 0);
  ASSERT_TRUE(wait_until([&] { return !has(*p.fs2, "e-1.wav"); }, 30s)) << describe(p);
  ASSERT_TRUE(
      wait_until([&] { return queue_files(*p.fs1) == 0 && queue_files(*p.fs2) == 0; }, 30s));
  EXPECT_EQ(backfill(*p.fs2), 0);
  EXPECT_EQ(backfill(*p.fs1), 0);
  std::this_thread::sleep_for(2s);
  EXPECT_FALSE(has(*p.fs1, "e-1.wav"));
  EXPECT_FALSE(has(*p.fs2, "e-1.wav"));
  EXPECT_EQ(p.fs1->archive_recordings().size(), 3u);
  EXPECT_EQ(p.fs2->archive_recordings().size(), 3u);
  // The recording appearing in fs1's spool again (a restore from a backup)
  // is not archived again: its tombstone refuses it.
  // (The same bytes and recording time: the same identity.)
  const std::string tmp = p.fs1->spool + "/.restore";
  write_file(tmp, "call 1" + std::string(2000, 'b'));
  fs::last_write_time(tmp, mtime);
  fs::rename(tmp, p.fs1->spool + "/e-1.wav");
  ASSERT_TRUE(wait_until([&] { return p.fs1->spool_count() == 0; }, 20s));
  EXPECT_FALSE(has(*p.fs1, "e-1.wav"));
}

TEST(Erase, KillNineDuringErasuresLosesNoOtherRecording) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  const int kCount = 24;
  converged_pair(p, kCount);
  if (HasFatalFailure()) return;
  std::set<std::string> attempted, confirmed, fresh;
  for (int round = 0; round < 3; ++round) {
    Node& victim = round % 2 ? *p.fs2 : *p.fs1;
    // New calls on both nodes while the erasures and the kill happen.
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 2; ++k) {
        const std::string name = "live-" + std::to_string(round) + "-" + std::to_string(n) + "-" +
                                 std::to_string(k) + ".wav";
        record(p.node(n), name, name + std::string(3000, 'x'));
        fresh.insert(name);
      }
    // Three erasures on fs1, one of them racing the kill -9.
    for (int k = 0; k < 3; ++k) {
      const std::string id = "e-" + std::to_string(round * 3 + k);
      attempted.insert(id);
      if (k < 2) {
        if (p.fs1->cli({"erase", id, "--reason", "GDPR round"}).exit_code == 0)
          confirmed.insert(id);
        continue;
      }
      auto cli = Process::spawn(
          {bin("recsync"), "--socket", p.fs1->socket, "erase", id, "--reason", "GDPR racing"});
      ASSERT_TRUE(cli) << cli.status().message();
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * round));
      victim.kill9();
      if ((*cli)->wait(20s) == 0) confirmed.insert(id);
    }
    victim.start();
    ASSERT_TRUE(p.wait_connected(30s)) << describe(p);
  }
  // Whatever was erased is erased on both; everything else is on both.
  ASSERT_TRUE(wait_until(
      [&] {
        return queue_files(*p.fs1) == 0 && queue_files(*p.fs2) == 0 &&
               erase_pending(*p.fs1, "fs2") == 0 && p.fs1->spool_count() == 0 &&
               p.fs2->spool_count() == 0 &&
               p.fs1->archive_recordings() == p.fs2->archive_recordings();
      },
      60s, 200ms))
      << describe(p) << log_tail(*p.fs1) << log_tail(*p.fs2);
  for (int i = 0; i < kCount; ++i) {
    const std::string id = "e-" + std::to_string(i);
    const bool here = has(*p.fs1, id + ".wav");
    EXPECT_EQ(here, has(*p.fs2, id + ".wav")) << id;
    if (!attempted.count(id)) {
      EXPECT_TRUE(here) << id << " was never erased and is lost";
    }
    if (confirmed.count(id)) {
      EXPECT_FALSE(here) << id << " was erased and came back";
    }
  }
  for (const std::string& name : fresh) {
    EXPECT_TRUE(has(*p.fs1, name)) << name << " recorded during the rounds is lost on fs1";
    EXPECT_TRUE(has(*p.fs2, name)) << name << " recorded during the rounds is lost on fs2";
  }
  EXPECT_GE(confirmed.size(), 6u);
  EXPECT_TRUE(hidden_files(*p.fs1).empty());
}

// The peer protocol: version 3 adds ERASE; a version-2 peer is answered in
// version 2 and keeps working; an older one is refused with a clear message.
// A hostile ERASE (a path outside the archive) is refused, not applied.
TEST(Erase, ProtocolVersionsAndHostileErasures) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  converged_pair(p, 2);
  if (HasFatalFailure()) return;
  auto id = peer::load_identity(Env::posix(), p.fs1->state_dir);
  ASSERT_TRUE(id);
  auto tls = peer::TlsContext::create(*id, {p.fp2});
  ASSERT_TRUE(tls);
  auto link = [&](uint32_t version) {
    auto c = peer::Connection::connect("127.0.0.1:" + std::to_string(p.port2), **tls, 5s);
    EXPECT_TRUE(c) << c.status().message();
    if (!c) return std::shared_ptr<peer::Connection>();
    EXPECT_TRUE((*c)->send_msg(peer::FrameType::kHello, peer::HelloMsg{version, "fs1"}));
    auto hello = (*c)->recv(5s);
    peer::HelloMsg h;
    EXPECT_TRUE(hello && hello->type == peer::FrameType::kHello &&
                peer::decode(hello->payload, &h).is_ok());
    EXPECT_EQ(h.version, std::min(version, peer::kProtocolVersion)) << "answered in its version";
    return std::shared_ptr<peer::Connection>(std::move(c).value());
  };
  auto answer = [](peer::Connection& c) -> std::optional<peer::Frame> {
    auto r = c.recv(10s);
    if (!r) return std::nullopt;
    return std::move(r).value();
  };
  {  // version 2: works (PING answered)
    auto c = link(2);
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->send_msg(peer::FrameType::kPing, peer::PingMsg{7, 1, 0, 0}));
    auto f = answer(*c);
    ASSERT_TRUE(f && f->type == peer::FrameType::kPong);
  }
  {  // version 1: dropped
    auto c = link(1);
    ASSERT_TRUE(c);
    EXPECT_FALSE(answer(*c)) << "a version-1 link is dropped";
  }
  ASSERT_TRUE(wait_until(
      [&] { return p.fs2->log().find("older than 2: upgrade it") != std::string::npos; }, 5s));
  auto c = link(3);
  ASSERT_TRUE(c);
  peer::EraseMsg m;
  m.id = 1;
  m.origin = "fs1";
  m.origin_rel = "../../etc/passwd";
  m.reason = "hostile";
  ASSERT_TRUE(c->send_msg(peer::FrameType::kErase, m));
  auto f = answer(*c);
  ASSERT_TRUE(f && f->type == peer::FrameType::kNack);
  peer::NackMsg n;
  ASSERT_TRUE(peer::decode(f->payload, &n).is_ok());
  EXPECT_EQ(n.code, peer::NackMsg::kRefused) << n.reason;
  // An erasure of something fs2 never had: acked, remembered.
  m.id = 2;
  m.origin_rel = "never/there.wav";
  ASSERT_TRUE(c->send_msg(peer::FrameType::kErase, m));
  f = answer(*c);
  ASSERT_TRUE(f && f->type == peer::FrameType::kAck);
  EXPECT_EQ(num(p.fs2->status(), {"erasure", "tombstones"}), 1);
  EXPECT_EQ(p.fs2->archive_recordings().size(), 2u);
}

}  // namespace
}  // namespace recsync::test
