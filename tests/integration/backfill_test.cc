// End-to-end tests of one identity per recording across nodes (SPEC 4.2) and
// of backfill after a node rebuild (SPEC 4.6): real recsyncd nodes, each
// with a real tmpfs spool and a real ext4 archive on a loop device, over
// TLS on 127.0.0.1. Root only; skipped with a reason otherwise.
#include <filesystem>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "backfill/messages.h"
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

// Stops nothing: n must be stopped. Empties its archive and its state but
// keeps its identity (node.key, node.crt): a node rebuilt with the same
// identity, its peers' pins still valid.
void wipe(Node& n) {
  for (auto& e : fs::directory_iterator(n.archive))
    if (e.path().filename() != "lost+found") fs::remove_all(e.path());
  for (auto& e : fs::directory_iterator(n.state_dir)) {
    const std::string name = e.path().filename();
    if (name != peer::kKeyFileName && name != peer::kCertFileName) fs::remove_all(e.path());
  }
}

// `recsync backfill --json [args]` to its end: the final JSON line and the
// exit code.
struct BackfillRun {
  int exit_code = -1;
  json final;
  std::string out, err;
};
BackfillRun backfill(Node& n, std::vector<std::string> args = {},
                     std::chrono::milliseconds timeout = 180s) {
  std::vector<std::string> argv = {bin("recsync"), "--socket", n.socket, "backfill", "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = run(argv, timeout);
  BackfillRun b{r.exit_code, nullptr, r.out, r.err};
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    json j = json::parse(line, nullptr, false);
    if (j.is_object() && j.value("final", false)) b.final = j;
  }
  return b;
}

int64_t files(const json& bf, const char* dir, const char* what) {
  return num(bf, {dir, what, "files"});
}

bool queues_empty(Node& n) { return queue_files(n) == 0 && n.spool_count() == 0; }

// ------------------------------------------------------------------ identity

TEST(Identity, SameNamesOnBothNodesConvergeToTheSameBytesPerPath) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  p.start();
  if (HasFatalFailure()) return;
  // A dialplan naming recordings by the second and caller: both nodes record
  // different calls under the same 16 names at the same time.
  std::vector<std::string> names;
  for (int i = 0; i < 16; ++i) {
    char name[64];
    snprintf(name, sizeof name, "2026-12-06-10-00-%02d_1001.wav", i);
    names.push_back(name);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    record(*p.fs1, names[i], "call on fs1 #" + std::to_string(i) + std::string(1000 + i, 'a'));
    record(*p.fs2, names[i], "call on fs2 #" + std::to_string(i) + std::string(2000 + i, 'b'));
  }
  ASSERT_TRUE(wait_until([&] { return converged(p, 32); }, 60s, 200ms))
      << describe(p) << log_tail(*p.fs1, 20000) << "\n=== fs2\n"
      << log_tail(*p.fs2, 20000);
  expect_same_archives(*p.fs1, *p.fs2);
  // The rule: fs1 sorts first and keeps the plain name; fs2's recording of
  // the same name is "<name>.from-fs2.wav". The same on both nodes.
  for (int n = 0; n < 2; ++n) {
    auto tree = p.node(n).archive_recordings();
    ASSERT_EQ(tree.size(), 32u);
    size_t plain = 0, qualified = 0;
    for (auto& [rel, fi] : tree) {
      const std::string content = read_file(p.node(n).archive + "/" + rel);
      if (rel.find(".from-fs2.wav") != std::string::npos) {
        qualified++;
        EXPECT_EQ(content.rfind("call on fs2", 0), 0u) << rel;
      } else {
        plain++;
        EXPECT_EQ(content.rfind("call on fs1", 0), 0u) << rel;
      }
    }
    EXPECT_EQ(plain, 16u);
    EXPECT_EQ(qualified, 16u);
    EXPECT_GE(num(p.node(n).status(), {"identity", "collisions"}), 16) << p.node(n).options().name;
  }
  // locate NAME on either node lists both recordings, with origin and hash.
  const std::string id = names[3].substr(0, names[3].size() - 4);
  RunResult loc = p.fs2->cli({"locate", id, "--json"});
  ASSERT_EQ(loc.exit_code, 0) << loc.err;
  json l = json::parse(loc.out);
  ASSERT_EQ(l.size(), 2u) << loc.out;
  std::set<std::string> origins;
  for (auto& x : l) {
    origins.insert(x["origin"].get<std::string>());
    EXPECT_EQ(x["origin_path"].get<std::string>().find(names[3]) != std::string::npos, true);
    EXPECT_EQ(x["hash"].get<std::string>().rfind("xxh128:", 0), 0u);
  }
  EXPECT_EQ(origins, (std::set<std::string>{"fs1", "fs2"}));
  // A hold placed on fs1 on fs1's recording (by its path) holds that very
  // recording on fs2, not fs2's recording of the same name.
  const json mine = l[0]["origin"] == "fs1" ? l[0] : l[1];
  std::string rel = mine["path"].get<std::string>().substr(p.fs2->archive.size() + 1);
  ASSERT_EQ(p.fs1->cli({"hold", "add", rel, "--reason", "complaint 12"}).exit_code, 0);
  auto held_on_fs2 = [&]() -> std::map<std::string, bool> {
    std::map<std::string, bool> h;
    RunResult r = p.fs2->cli({"locate", id, "--json"});
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_array()) return h;
    for (auto& x : j) h[x["origin"].get<std::string>()] = x["held"].get<bool>();
    return h;
  };
  ASSERT_TRUE(wait_until([&] { return held_on_fs2()["fs1"]; }, 20s))
      << p.fs2->cli({"hold", "list", "--json"}).out;
  EXPECT_FALSE(held_on_fs2()["fs2"]) << "fs2's own recording of the same name is not held";
}

// ------------------------------------------------------------------ backfill

// Two nodes with `per_node` recordings each, converged; fs1 holds one of
// fs2's and fs2 one of fs1's.
void make_converged_pair(Pair& p, int per_node) {
  p.start();
  if (::testing::Test::HasFatalFailure()) return;
  auto l1 = spawn_loadgen(
      *p.fs1, {"--calls", std::to_string(per_node), "--concurrency", "10", "--speed", "50",
               "--min-duration", "1", "--max-duration", "3", "--seed", "11", "--subdirs"});
  auto l2 =
      spawn_loadgen(*p.fs2, {"--calls", std::to_string(per_node), "--concurrency", "10", "--speed",
                             "50", "--min-duration", "1", "--max-duration", "3", "--seed", "22"});
  ASSERT_TRUE(l1 && l2);
  ASSERT_EQ(l1->wait(60s), 0);
  ASSERT_EQ(l2->wait(60s), 0);
  ASSERT_TRUE(wait_until([&] { return converged(p, 2 * per_node); }, 90s, 200ms)) << describe(p);
}

TEST(Backfill, RebuiltNodeGetsEveryRecordingAndHoldBackAndThePeerItsLostFiles) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  make_converged_pair(p, 30);
  if (HasFatalFailure()) return;
  // One hold each, by path of the other node's recording.
  auto t1 = p.fs1->archive_recordings(), t2 = p.fs2->archive_recordings();
  std::string held_a, held_b;
  for (auto& [rel, fi] : t1) (held_a.empty() ? held_a : held_b) = rel;
  ASSERT_EQ(p.fs1->cli({"hold", "add", held_a, "--reason", "legal 1"}).exit_code, 0);
  ASSERT_EQ(p.fs2->cli({"hold", "add", held_b, "--reason", "legal 2"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return p.fs1->cli({"hold", "list", "--json"}).out.find("legal 2") != std::string::npos;
      },
      20s));
  // fs2 is rebuilt empty, its identity kept.
  p.fs2->stop();
  wipe(*p.fs2);
  p.fs2->start();
  ASSERT_TRUE(p.wait_connected(30s)) << describe(p);
  EXPECT_EQ(p.fs2->archive_recordings().size(), 0u);

  BackfillRun b = backfill(*p.fs2);
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err << log_tail(*p.fs2);
  EXPECT_EQ(b.final["state"], "done") << b.final.dump();
  EXPECT_EQ(files(b.final, "pull", "done"), 60) << b.final.dump();
  EXPECT_EQ(files(b.final, "push", "total"), 0) << b.final.dump();
  ASSERT_TRUE(wait_until([&] { return queues_empty(*p.fs1) && queues_empty(*p.fs2); }, 30s));
  EXPECT_EQ(p.fs2->archive_recordings(), t2) << "every recording back, byte-identical";
  // Both holds are back on the rebuilt node.
  std::string holds = p.fs2->cli({"hold", "list", "--json"}).out;
  EXPECT_NE(holds.find("legal 1"), std::string::npos) << holds;
  EXPECT_NE(holds.find("legal 2"), std::string::npos) << holds;

  // fs1 loses three recordings (a disk error, a mistaken rm): a backfill
  // from fs2 pushes them back.
  p.fs1->stop();
  std::vector<std::string> lost;
  for (auto& [rel, fi] : t1)
    if (lost.size() < 3 && rel != held_a && rel != held_b) lost.push_back(rel);
  for (auto& rel : lost) fs::remove(p.fs1->archive + "/" + rel);
  p.fs1->start();
  ASSERT_TRUE(p.wait_connected(30s)) << describe(p);
  ASSERT_TRUE(wait_until(
      [&] {
        return num(p.fs1->status(), {"archive", "files"}) == 57;
      },
      30s))
      << "fs1's reconcile notices";
  BackfillRun push = backfill(*p.fs2);
  ASSERT_EQ(push.exit_code, 0) << push.out << push.err << log_tail(*p.fs2);
  EXPECT_EQ(files(push.final, "push", "done"), 3) << push.final.dump();
  EXPECT_EQ(files(push.final, "pull", "total"), 0) << push.final.dump();
  ASSERT_TRUE(wait_until([&] { return queues_empty(*p.fs1) && queues_empty(*p.fs2); }, 30s));
  EXPECT_EQ(p.fs1->archive_recordings(), t1) << "the peer got its lost files back";
  expect_same_archives(*p.fs1, *p.fs2);
  // A second backfill finds the pair in sync and moves nothing.
  BackfillRun again = backfill(*p.fs2);
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_EQ(files(again.final, "pull", "total"), 0) << again.final.dump();
  EXPECT_EQ(files(again.final, "push", "total"), 0) << again.final.dump();
  // Planning a pair in sync exchanged digests only.
  EXPECT_LT(num(again.final["peers"][0]["plan"], {"bytes_exchanged"}), 100'000)
      << again.final.dump();
}

TEST(Backfill, DryRunMovesNothingAndPeerLimitsIt) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  make_converged_pair(p, 10);
  if (HasFatalFailure()) return;
  p.fs2->stop();
  wipe(*p.fs2);
  p.fs2->start();
  ASSERT_TRUE(p.wait_connected(30s));
  BackfillRun b = backfill(*p.fs2, {"--dry-run", "--peer", "fs1"});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  EXPECT_EQ(b.final["dry_run"], true);
  EXPECT_EQ(num(b.final["peers"][0]["plan"], {"pull", "files"}), 20) << b.final.dump();
  EXPECT_EQ(p.fs2->archive_recordings().size(), 0u) << "a dry run moves nothing";
  RunResult bad = run({bin("recsync"), "--socket", p.fs2->socket, "backfill", "--peer", "fs9"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("fs9"), std::string::npos) << bad.err;
}

TEST(Backfill, Kill9OfEitherNodeLosesNothingAndResendsLittle) {
  RECSYNC_REQUIRE_ROOT();
  PairOptions po;
  po.base.archive_bytes = 512ull << 20;
  po.bandwidth1 = "8MB/s";  // ~10 s of backfill: the kills land mid-way
  Pair p(po);
  p.start();
  if (HasFatalFailure()) return;
  uint64_t total = 0;
  for (int i = 0; i < 40; ++i) {
    const uint64_t size = (1 + i % 3) * 1'000'000 + uint64_t(i) * 1000;
    write_random_file(p.fs1->spool + "/.in", size, 700 + i);
    fs::rename(p.fs1->spool + "/.in", p.fs1->spool + "/big-" + std::to_string(i) + ".wav");
    total += size;
  }
  ASSERT_TRUE(wait_until([&] { return converged(p, 40); }, 120s, 200ms)) << describe(p);
  p.fs2->stop();
  const size_t log_before = p.fs2->log().size();
  wipe(*p.fs2);
  p.fs2->start();
  ASSERT_TRUE(p.wait_connected(30s));
  // Start it (the CLI gives up at once; the daemon goes on).
  run({bin("recsync"), "--socket", p.fs2->socket, "backfill", "--json"}, 1500ms);
  std::mt19937 rng(5);
  int mid_way = 0;
  for (int round = 0; round < 10; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 700));
    json bf = p.fs2->status()["backfill"];
    mid_way += bf.is_object() && bf["state"] == "running";
    Node& victim = p.node(int(rng() % 2));
    victim.kill9();
    victim.start();
  }
  EXPECT_GE(mid_way, 5) << "most kills must land while the backfill runs";
  ASSERT_TRUE(p.wait_connected(30s)) << describe(p);
  BackfillRun b = backfill(*p.fs2, {}, 240s);
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err << log_tail(*p.fs2);
  ASSERT_TRUE(wait_until([&] { return queues_empty(*p.fs1) && queues_empty(*p.fs2); }, 60s));
  expect_same_archives(*p.fs1, *p.fs2);
  EXPECT_EQ(p.fs2->archive_recordings().size(), 40u) << "nothing lost, nothing twice";
  EXPECT_EQ(hidden_files(*p.fs2), std::vector<std::string>());
  // Bytes that crossed, at most: the delta bytes of every transfer fs2
  // finished plus what every interrupted one had written, over all its runs
  // since the rebuild; close to the data it was missing (a kill re-sends at
  // most what was in flight; a partial is resumed, not sent again).
  uint64_t crossed = 0;
  const std::string log = p.fs2->log().substr(log_before);
  for (const char* pattern : {"received \\S+ from fs1 \\(\\d+ bytes, (\\d+) delta bytes",
                              "transfer of \\S+ interrupted at (\\d+) of"}) {
    std::regex re(pattern);
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it)
      crossed += std::stoull((*it)[1]);
  }
  EXPECT_GT(crossed, 0u);
  EXPECT_LE(crossed, total * 3 / 2) << "re-sent far more than was missing (" << total << ")";
}

TEST(Backfill, LiveRecordingsDoNotWaitBehindACappedBackfill) {
  RECSYNC_REQUIRE_ROOT();
  PairOptions po;
  po.base.archive_bytes = 512ull << 20;
  Pair p(po);
  p.start();
  if (HasFatalFailure()) return;
  for (int i = 0; i < 15; ++i) {
    write_random_file(p.fs1->spool + "/.in", 2'000'000, 900 + i);
    fs::rename(p.fs1->spool + "/.in", p.fs1->spool + "/old-" + std::to_string(i) + ".wav");
  }
  ASSERT_TRUE(wait_until([&] { return converged(p, 15); }, 120s, 200ms)) << describe(p);
  // fs2 rebuilt; fs1 now capped at 3 MB/s: the 30 MB backfill takes ~10 s.
  p.fs2->stop();
  wipe(*p.fs2);
  p.fs1->options().bandwidth = "3MB/s";
  p.fs1->write_config();
  p.fs1->process()->signal(SIGHUP);
  p.fs2->start();
  ASSERT_TRUE(p.wait_connected(30s));
  auto cli = Process::spawn({bin("recsync"), "--socket", p.fs2->socket, "backfill", "--json"}, {},
                            p.fs2->dir.sub("backfill.out"), "");
  ASSERT_TRUE(cli);
  ASSERT_TRUE(wait_until(
      [&] {
        return num(p.fs2->status(), {"backfill", "bytes_done"}) > 2'000'000;
      },
      60s))
      << p.fs2->status()["backfill"].dump();
  // Live recordings made meanwhile arrive within a few seconds each, while
  // the backfill is still far from done.
  for (int i = 0; i < 4; ++i) {
    const std::string name = "live-" + std::to_string(i) + ".wav";
    const auto t0 = std::chrono::steady_clock::now();
    record(*p.fs1, name, std::string(50'000 + i, 'l'));
    ASSERT_TRUE(wait_until(
        [&] {
          for (auto& [rel, fi] : p.fs2->archive_recordings())
            if (rel.find(name) != std::string::npos) return true;
          return false;
        },
        5s, 50ms))
        << name << " waited behind the backfill: " << p.fs2->status()["backfill"].dump();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  }
  json bf = p.fs2->status()["backfill"];
  EXPECT_EQ(bf["state"], "running") << "the live files came while backfill ran: " << bf.dump();
  EXPECT_LT(num(bf, {"bytes_done"}), num(bf, {"bytes_total"}));
  EXPECT_EQ((*cli)->wait(120s), 0);
  expect_same_archives(*p.fs1, *p.fs2);
}

// Three nodes, each a peer of the other two.
struct Trio {
  std::vector<std::unique_ptr<Node>> n;
  std::vector<std::string> fp;
  Trio() {
    std::vector<uint16_t> ports;
    for (int i = 0; i < 3; ++i) {
      NodeOptions o;
      o.name = "fs" + std::to_string(i + 1);
      ports.push_back(free_tcp_port());
      o.listen = "127.0.0.1:" + std::to_string(ports.back());
      n.push_back(std::make_unique<Node>(o));
      fp.push_back(n.back()->fingerprint());
    }
    for (int i = 0; i < 3; ++i) {
      std::vector<PeerSpec> peers;
      for (int j = 0; j < 3; ++j)
        if (j != i)
          peers.push_back(
              {"fs" + std::to_string(j + 1), "127.0.0.1:" + std::to_string(ports[j]), fp[j]});
      n[i]->set_peers(peers);
    }
  }
  bool connected(int i) {
    for (int j = 0; j < 3; ++j)
      if (j != i && n[i]->peer_state("fs" + std::to_string(j + 1)) != "connected") return false;
    return true;
  }
};

TEST(Backfill, ThreeNodesConvergeAndARebuiltOneGetsEachRecordingOnce) {
  RECSYNC_REQUIRE_ROOT();
  Trio t;
  for (auto& n : t.n) n->start();
  ASSERT_TRUE(wait_until([&] { return t.connected(0) && t.connected(1) && t.connected(2); }, 30s));
  for (int i = 0; i < 3; ++i) {
    auto l = spawn_loadgen(
        *t.n[i], {"--calls", "12", "--concurrency", "6", "--speed", "50", "--min-duration", "1",
                  "--max-duration", "2", "--seed", std::to_string(300 + i)});
    ASSERT_TRUE(l);
    ASSERT_EQ(l->wait(60s), 0);
  }
  auto all_have = [&](size_t want) {
    for (auto& n : t.n)
      if (!queues_empty(*n) || n->archive_recordings().size() != want) return false;
    return true;
  };
  ASSERT_TRUE(wait_until([&] { return all_have(36); }, 90s, 200ms));
  EXPECT_EQ(t.n[0]->archive_recordings(), t.n[1]->archive_recordings());
  EXPECT_EQ(t.n[0]->archive_recordings(), t.n[2]->archive_recordings());
  t.n[2]->stop();
  wipe(*t.n[2]);
  t.n[2]->start();
  ASSERT_TRUE(wait_until([&] { return t.connected(2); }, 30s));
  BackfillRun b = backfill(*t.n[2]);
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err << log_tail(*t.n[2]);
  EXPECT_EQ(b.final["peers"].size(), 2u);
  // Each of the 36 is pulled once, from one of the two peers.
  EXPECT_EQ(files(b.final, "pull", "total"), 36) << b.final.dump();
  EXPECT_EQ(files(b.final, "pull", "done"), 36) << b.final.dump();
  ASSERT_TRUE(wait_until([&] { return all_have(36); }, 30s));
  EXPECT_EQ(t.n[2]->archive_recordings(), t.n[0]->archive_recordings());
  const std::string log = t.n[2]->log();
  EXPECT_EQ(count_lines_with(log, "received", "(already here"), 0u) << "nothing came twice";
}

// A pinned peer sending broken backfill requests: each is refused (the link
// dropped), nothing is written, the daemon keeps serving its real peer.
TEST(Backfill, HostileRequestsAreRefusedAndTheDaemonKeepsServing) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  p.start();
  if (HasFatalFailure()) return;
  record(*p.fs1, "before.wav", "x");
  ASSERT_TRUE(wait_until([&] { return converged(p, 1); }, 30s));
  auto id = peer::load_identity(Env::posix(), p.fs1->state_dir);
  ASSERT_TRUE(id);
  auto tls = peer::TlsContext::create(*id, {p.fp2});
  ASSERT_TRUE(tls);
  auto attempt = [&](peer::FrameType t, const std::vector<uint8_t>& body) -> bool {
    auto c = peer::Connection::connect("127.0.0.1:" + std::to_string(p.port2), **tls, 5s);
    if (!c) return false;
    peer::HelloMsg h{peer::kProtocolVersion, "fs1", peer::Lane::kBackfill};
    EXPECT_TRUE((*c)->send_msg(peer::FrameType::kHello, h));
    auto hello = (*c)->recv(5s);
    EXPECT_TRUE(hello && hello->type == peer::FrameType::kHello);
    EXPECT_TRUE((*c)->send(t, body));
    auto r = (*c)->recv(5s);
    return !r;  // refused: the link is dropped without an answer
  };
  std::vector<uint8_t> b;
  backfill::DigestReqMsg unsorted{1, {{100, 200}, {0, 50}}};
  {  // encode refuses unsorted ranges: build the body by hand
    peer::WireWriter w(b);
    w.u64(1);
    w.u32(2);
    for (auto r : unsorted.ranges) {
      w.u64(uint64_t(r.t0));
      w.u64(uint64_t(r.t1));
    }
  }
  EXPECT_TRUE(attempt(peer::FrameType::kDigestReq, b)) << "unsorted ranges";
  b.clear();
  {
    peer::WireWriter w(b);
    w.u64(2);
    w.u8(1);
    w.u64(500);
    w.u64(100);  // t0 > t1
  }
  EXPECT_TRUE(attempt(peer::FrameType::kListReq, b)) << "empty range";
  b.clear();
  {
    peer::WireWriter w(b);
    w.u64(3);
    w.u32(1);
    w.str("../../etc/passwd");
    w.str("fs1");
    w.u64(10);
    w.u8(0);
  }
  EXPECT_TRUE(attempt(peer::FrameType::kPull, b)) << "a path out of the archive";
  b.clear();
  {
    peer::WireWriter w(b);
    w.u64(4);
    w.u32(0xffffffff);  // a huge count, no entries
  }
  EXPECT_TRUE(attempt(peer::FrameType::kPull, b)) << "huge count";
  EXPECT_TRUE(attempt(peer::FrameType::kHoldsReq, {1, 2, 3})) << "truncated";
  // A proper request is answered.
  {
    auto c = peer::Connection::connect("127.0.0.1:" + std::to_string(p.port2), **tls, 5s);
    ASSERT_TRUE(c);
    ASSERT_TRUE(
        (*c)->send_msg(peer::FrameType::kHello,
                       peer::HelloMsg{peer::kProtocolVersion, "fs1", peer::Lane::kBackfill}));
    ASSERT_TRUE((*c)->recv(5s));
    backfill::ListReqMsg req{9, backfill::ListKind::kRange, {0, INT64_MAX}};
    std::vector<uint8_t> body;
    ASSERT_TRUE(backfill::encode(req, body));
    ASSERT_TRUE((*c)->send(peer::FrameType::kListReq, body));
    auto r = (*c)->recv(5s);
    ASSERT_TRUE(r) << r.status().to_string();
    backfill::ManifestMsg m;
    ASSERT_TRUE(backfill::decode(r->payload, &m));
    EXPECT_TRUE(m.last);
    ASSERT_EQ(m.entries.size(), 1u);
    EXPECT_NE(m.entries[0].path.find("/before.wav"), std::string::npos) << m.entries[0].path;
    EXPECT_EQ(m.entries[0].origin, "fs1");
  }
  EXPECT_FALSE(fs::exists(p.fs2->archive + "/../etc/passwd.wav"));
  // Still serving: the real fs1 replicates to it.
  ASSERT_TRUE(p.wait_connected(30s)) << describe(p);
  record(*p.fs1, "after.wav", "fine");
  ASSERT_TRUE(wait_until([&] { return converged(p, 2); }, 30s)) << describe(p);
  expect_same_archives(*p.fs1, *p.fs2);
}

}  // namespace
}  // namespace recsync::test
