// End-to-end tests of peer replication (SPEC 4.2): two real recsyncd nodes,
// each with a real tmpfs spool and a real ext4 archive on a loop device,
// talking TLS 1.3 over 127.0.0.1 (or over a veth pair between two network
// namespaces the test creates). Root only; skipped with a reason otherwise.
//
// Loadgen seeds differ per node and per round: the same seed makes the same
// call uuids, and two nodes never record the same call.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <deque>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "delta/delta.h"
#include "node.h"
#include "peer/frame.h"
#include "peer/identity.h"
#include "peer/tls.h"
#include "recsync/env.h"
#include "recsync/hash.h"
#include "recsync/names.h"
#include "support/netns.h"

namespace recsync::test {
namespace {

using json = nlohmann::json;


// ---------------------------------------------------------------- tests

TEST(Replication, ConcurrentRecordingsOnBothNodesConvergeByteIdentical) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  p.start();
  if (HasFatalFailure()) return;
  std::string m1 = p.fs1->dir.sub("manifest.jsonl"), m2 = p.fs2->dir.sub("manifest.jsonl");
  auto l1 = spawn_loadgen(
      *p.fs1, {"--calls", "100", "--concurrency", "20", "--speed", "50", "--min-duration", "1",
               "--max-duration", "4", "--seed", "101", "--subdirs", "--manifest", m1});
  auto l2 = spawn_loadgen(
      *p.fs2, {"--calls", "100", "--concurrency", "20", "--speed", "50", "--min-duration", "1",
               "--max-duration", "4", "--seed", "202", "--manifest", m2});
  ASSERT_TRUE(l1 && l2);
  ASSERT_EQ(l1->wait(60s), 0);
  ASSERT_EQ(l2->wait(60s), 0);
  auto man1 = read_manifest(m1), man2 = read_manifest(m2);
  ASSERT_EQ(man1.size(), 100u);
  ASSERT_EQ(man2.size(), 100u);
  std::vector<ManifestEntry> all = man1;
  all.insert(all.end(), man2.begin(), man2.end());

  ASSERT_TRUE(wait_until([&] { return converged(p, 200); }, 90s, 200ms)) << describe(p);
  // Exactly once, whole, no ".v2" copies, no partials or temps (any file not
  // named in the manifests fails here).
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(p.node(i).options().name);
    expect_archived_exactly_once(all, p.node(i).archive_recordings());
    EXPECT_EQ(p.node(i).archive_recordings().size(), 200u);
    EXPECT_EQ(hidden_files(p.node(i)), std::vector<std::string>());
    EXPECT_EQ(p.node(i).spool_count(), 0u);
  }
  expect_same_archives(*p.fs1, *p.fs2);

  // Nothing came back: each received exactly what the other originated, and
  // each had exactly its own recordings acked.
  json s1 = p.fs1->status(), s2 = p.fs2->status();
  json q1 = Node::peer_of(s1, "fs2"), q2 = Node::peer_of(s2, "fs1");
  EXPECT_EQ(num(q1, {"received_files"}), 100) << q1.dump();
  EXPECT_EQ(num(q1, {"acked_files"}), 100) << q1.dump();
  EXPECT_EQ(num(q2, {"received_files"}), 100) << q2.dump();
  EXPECT_EQ(num(q2, {"acked_files"}), 100) << q2.dump();
  EXPECT_EQ(num(q1, {"queue", "files"}), 0);
  EXPECT_EQ(num(q2, {"queue", "files"}), 0);
  EXPECT_EQ(num(s1, {"replication", "queue", "bytes"}), 0);
  EXPECT_EQ(num(s1, {"archive", "files"}), 200) << s1["archive"].dump();
  EXPECT_EQ(num(s2, {"archive", "files"}), 200) << s2["archive"].dump();
  // One log line per file each way (contract: "replicated <rel> to <peer> (",
  // "received <rel> from <peer> (").
  std::string log1 = p.fs1->log(), log2 = p.fs2->log();
  EXPECT_EQ(count_lines_with(log1, "replicated ", " to fs2 ("), 100u);
  EXPECT_EQ(count_lines_with(log1, "received ", " from fs2 ("), 100u);
  EXPECT_EQ(count_lines_with(log2, "replicated ", " to fs1 ("), 100u);
  EXPECT_EQ(count_lines_with(log2, "received ", " from fs1 ("), 100u);
  p.fs1->stop();
  p.fs2->stop();
}

TEST(Replication, ResumesAfterTheReceiverIsKilledMidTransfer) {
  RECSYNC_REQUIRE_ROOT();
  PairOptions o;
  o.bandwidth1 = "20MB/s";
  Pair p(o);
  p.start();
  if (HasFatalFailure()) return;
  const uint64_t size = 100ull << 20;
  const std::string rel_name = "resume-0001.wav";
  write_random_file(p.fs1->spool + "/" + rel_name, size, 42);
  if (HasFatalFailure()) return;
  std::string want_hash = hash_file(p.fs1->spool + "/" + rel_name);
  ASSERT_FALSE(want_hash.empty());

  // Kill the receiver once a bit over half has been sent (55 %: far enough
  // from the 60 % bound below that bytes still in socket buffers when the
  // receiver dies cannot decide the result).
  uint64_t sent_at_kill = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        json q = p.fs1->peer_status("fs2");
        if (!q.is_object() || !q.contains("in_flight") || !q["in_flight"].is_object()) return false;
        int64_t sent = num(q["in_flight"], {"sent_bytes"});
        if (sent < int64_t(size * 55 / 100)) return false;
        sent_at_kill = uint64_t(sent);
        return true;
      },
      60s, 20ms))
      << describe(p);
  p.fs2->kill9();
  ASSERT_TRUE(wait_until([&] { return p.fs1->peer_state("fs2") != "connected"; }, 30s))
      << describe(p);
  int64_t s1 = num(p.fs1->peer_status("fs2"), {"sent_bytes"});
  ASSERT_GE(s1, int64_t(size / 2));
  EXPECT_LT(s1, int64_t(size)) << "the whole file went out before the kill: nothing to resume";
  // The receiver kept what it had as the next basis.
  uint64_t partial = 0;
  for (auto& [rel, fi] : p.fs2->archive_recordings())
    if (rel.find(".recsync-part.") != std::string::npos) partial += fi.size;
  EXPECT_GT(partial, 0u) << "no .recsync-part. file on fs2 after the kill";
  for (auto& [rel, fi] : p.fs2->archive_recordings())
    EXPECT_NE(path_basename(rel), rel_name) << "published before the transfer finished";

  p.fs2->start();
  auto on_fs2 = [&] {
    for (auto& [rel, fi] : p.fs2->archive_recordings())
      if (path_basename(rel) == rel_name && fi.size == size && fi.hash == want_hash) return true;
    return false;
  };
  ASSERT_TRUE(wait_until(on_fs2, 90s, 200ms)) << describe(p) << log_tail(*p.fs2);
  ASSERT_TRUE(wait_until([&] { return queue_files(*p.fs1) == 0; }, 30s)) << describe(p);
  int64_t s2 = num(p.fs1->peer_status("fs2"), {"sent_bytes"});
  std::cout << "[ resume   ] size " << size << ", in_flight sent at kill " << sent_at_kill
            << ", partial on fs2 " << partial << ", sent before S1 " << s1 << ", after S2 " << s2
            << ", resent S2-S1 " << (s2 - s1) << " (" << (100.0 * double(s2 - s1) / double(size))
            << " %)\n";
  EXPECT_GT(s2, s1);
  EXPECT_LT(s2 - s1, int64_t(size * 6 / 10)) << "resume resent (nearly) the whole file";
  expect_same_archives(*p.fs1, *p.fs2);
  EXPECT_EQ(hidden_files(*p.fs2), std::vector<std::string>());
  p.fs1->stop();
  p.fs2->stop();
}

TEST(Replication, KillNineRoundsLoseNothingAndDuplicateNothing) {
  RECSYNC_REQUIRE_ROOT();
  // A low cap keeps transfers in flight long enough for kills to land in them.
  PairOptions o;
  o.bandwidth1 = o.bandwidth2 = "1MB/s";
  Pair p(o);
  p.start();
  if (HasFatalFailure()) return;
  std::mt19937 rng(4242);
  std::vector<ManifestEntry> all;
  int mid_transfer = 0;
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::string m[2];
    std::unique_ptr<Process> lg[2];
    for (int i = 0; i < 2; ++i) {
      m[i] = p.node(i).dir.sub("manifest." + std::to_string(round));
      // 8 calls of 1-5 s at 10x: producing for 0.1-0.5 s, through the kill.
      lg[i] =
          spawn_loadgen(p.node(i), {"--calls", "8", "--concurrency", "8", "--speed", "10",
                                    "--min-duration", "1", "--max-duration", "5", "--seed",
                                    std::to_string(1000 * (i + 1) + round), "--manifest", m[i]});
      ASSERT_TRUE(lg[i]);
    }
    int victim = int(rng() % 2);
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 700));
    // Was a transfer (either way: both involve the victim) under way?
    for (int i = 0; i < 2; ++i) {
      json q = p.node(i).peer_status(i == 0 ? "fs2" : "fs1");
      if (q.is_object() && q.contains("in_flight") && q["in_flight"].is_object()) {
        mid_transfer++;
        break;
      }
    }
    p.node(victim).kill9();
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(lg[i]->wait(30s), 0);
      for (auto& e : read_manifest(m[i])) all.push_back(e);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
    p.node(victim).start();
    if (HasFatalFailure()) return;
  }
  ASSERT_EQ(all.size(), 20u * 2 * 8);
  std::cout << "[ kill -9  ] " << mid_transfer << " of 20 kills landed while a transfer was in "
            << "flight\n";
  EXPECT_GE(mid_transfer, 5) << "the kills did not exercise interrupted transfers";
  ASSERT_TRUE(wait_until([&] { return converged(p, all.size()); }, 150s, 250ms))
      << describe(p) << "fs1 log:\n"
      << log_tail(*p.fs1) << "\nfs2 log:\n"
      << log_tail(*p.fs2);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(p.node(i).options().name);
    Node& n = p.node(i);
    ASSERT_TRUE(wait_until([&] { return n.status()["archive"]["reconciled"] == true; }, 30s));
    expect_archived_exactly_once(all, n.archive_recordings());
    EXPECT_EQ(n.archive_recordings().size(), all.size());
    EXPECT_EQ(hidden_files(n), std::vector<std::string>());
    EXPECT_EQ(num(n.status(), {"archive", "files"}), int64_t(all.size()));
  }
  expect_same_archives(*p.fs1, *p.fs2);
  p.fs1->stop();
  p.fs2->stop();
}

TEST(Replication, PeerDownQueuesDurablyAndDrainsWhenItReturns) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  p.start();
  if (HasFatalFailure()) return;
  p.fs2->stop();
  std::string mf = p.fs1->dir.sub("manifest.jsonl");
  auto r = p.fs1->loadgen({"--calls", "30", "--concurrency", "30", "--speed", "0", "--min-duration",
                           "1", "--max-duration", "4", "--seed", "77", "--manifest", mf});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto manifest = read_manifest(mf);
  ASSERT_EQ(manifest.size(), 30u);
  // Archived locally at once; queued for the peer.
  ASSERT_TRUE(wait_until(
      [&] { return p.fs1->spool_count() == 0 && p.fs1->archive_recordings().size() == 30; }, 30s))
      << describe(p);
  ASSERT_TRUE(wait_until([&] { return queue_files(*p.fs1) == 30; }, 10s)) << describe(p);
  expect_archived_exactly_once(manifest, p.fs1->archive_recordings());
  ASSERT_TRUE(wait_until(
      [&] {
        std::string st = p.fs1->peer_state("fs2");
        return st == "connecting" || st == "backoff";
      },
      10s))
      << describe(p);
  json q = p.fs1->peer_status("fs2");
  EXPECT_EQ(num(q, {"queue", "files"}), 30) << q.dump();
  EXPECT_GT(num(q, {"queue", "bytes"}), 0) << q.dump();
  EXPECT_EQ(num(q, {"acked_files"}), 0) << q.dump();
  // The queue survives a crash of the sender too.
  p.fs1->kill9();
  p.fs1->start();
  if (HasFatalFailure()) return;
  EXPECT_EQ(queue_files(*p.fs1), 30);
  EXPECT_EQ(p.fs2->archive_recordings().size(), 0u);

  p.fs2->start();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(wait_until(
      [&] { return queue_files(*p.fs1) == 0 && p.fs2->archive_recordings().size() >= 30; }, 90s,
      200ms))
      << describe(p);
  expect_archived_exactly_once(manifest, p.fs2->archive_recordings());
  expect_same_archives(*p.fs1, *p.fs2);
  EXPECT_EQ(num(p.fs2->peer_status("fs1"), {"received_files"}), 30);
  p.fs1->stop();
  p.fs2->stop();
}

// A config good enough for `recsync keygen` / `recsync id` of a throwaway
// identity (no daemon runs with it).
std::string identity_conf(const TempDir& d, const std::string& node) {
  return write_file(d.sub(node + ".conf"),
                    "node = \"" + node + "\"\nstate_dir = \"" + d.sub(node + "-state") +
                        "\"\n[control]\nsocket = \"" + d.sub(node + ".sock") +
                        "\"\n[spool]\npath = \"" + d.sub("s") + "\"\n[archive]\npath = \"" +
                        d.sub("a") + "\"\n");
}

std::string make_identity(const TempDir& d, const std::string& node) {
  std::string conf = identity_conf(d, node);
  RunResult k = run({bin("recsync"), "-c", conf, "keygen"});
  EXPECT_EQ(k.exit_code, 0) << k.err;
  RunResult id = run({bin("recsync"), "-c", conf, "id"});
  EXPECT_EQ(id.exit_code, 0) << id.err;
  std::string fp = id.out;
  while (!fp.empty() && fp.back() == '\n') fp.pop_back();
  return fp;
}

TEST(Replication, BandwidthScheduleSetsTheCapInForceAndSighupChangesIt) {
  RECSYNC_REQUIRE_ROOT();
  NodeOptions o;
  o.listen = "127.0.0.1:0";
  o.bandwidth = "50MB/s";
  o.schedule = "00:00-24:00=1MB/s";  // the whole day, whatever the local time
  // A peer that is never there (loopback port 1): replication runs, links fail.
  o.peers = {{"fs2", "127.0.0.1:1", "sha256:" + std::string(64, 'a')}};
  Node n(o);
  n.start();
  auto cap = [&] { return num(n.status(), {"replication", "bandwidth_bps"}); };
  ASSERT_TRUE(wait_until([&] { return cap() == 1'000'000; }, 10s)) << n.status().dump(1);
  json s = n.status();
  EXPECT_EQ(num(s, {"replication", "bandwidth_default_bps"}), 50'000'000);
  EXPECT_EQ(s["replication"]["schedule"], "00:00-24:00=1MB/s");
  EXPECT_NE(n.log().find("replication bandwidth cap now"), std::string::npos) << n.log();
  // Without the schedule, SIGHUP puts the configured cap back.
  n.options().schedule = "";
  n.write_config();
  n.process()->signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return cap() == 50'000'000; }, 10s)) << n.status().dump(1);
  EXPECT_EQ(n.status()["replication"]["schedule"], "");
  n.stop();
}

TEST(ReplicationSecurity, WrongFingerprintIsRefusedAndNothingMoves) {
  RECSYNC_REQUIRE_ROOT();
  TempDir other;
  std::string fp_other = make_identity(other, "fs9");
  ASSERT_EQ(fp_other.size(), 7u + 64u);
  Pair p;
  // fs2 pins someone else instead of fs1.
  p.fs2->set_peers({{"fs1", p.fs2->options().peers[0].address, fp_other}});
  p.fs1->start();
  p.fs2->start();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(wait_until(
      [&] {
        return p.fs1->peer_state("fs2") == "refused" || p.fs2->peer_state("fs1") == "refused";
      },
      30s))
      << describe(p);
  ASSERT_EQ(p.fs1->loadgen({"--calls", "5", "--speed", "0", "--seed", "11"}).exit_code, 0);
  ASSERT_EQ(p.fs2->loadgen({"--calls", "5", "--speed", "0", "--seed", "22"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return p.fs1->archive_recordings().size() == 5 && p.fs2->archive_recordings().size() == 5;
      },
      30s))
      << describe(p);
  std::this_thread::sleep_for(3s);  // time enough for any wrong transfer
  EXPECT_EQ(p.fs1->archive_recordings().size(), 5u);
  EXPECT_EQ(p.fs2->archive_recordings().size(), 5u);
  EXPECT_EQ(num(p.fs1->peer_status("fs2"), {"received_files"}), 0);
  EXPECT_EQ(num(p.fs2->peer_status("fs1"), {"received_files"}), 0);
  EXPECT_EQ(num(p.fs1->peer_status("fs2"), {"acked_files"}), 0);
  EXPECT_EQ(queue_files(*p.fs1), 5);
  EXPECT_EQ(queue_files(*p.fs2), 5);
  // fs2 saw fs1's real certificate and names it when it refuses it.
  EXPECT_NE(p.fs2->log().find(p.fp1), std::string::npos) << log_tail(*p.fs2);
  EXPECT_TRUE(p.fs1->running());
  EXPECT_TRUE(p.fs2->running());
  p.fs1->stop();
  p.fs2->stop();
}

// A TCP connection to 127.0.0.1:port (blocking connect), or -1.
int tcp_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when the other end closes (EOF or reset) within timeout; reads and
// discards anything it sends first.
bool closed_within(int fd, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pf{fd, POLLIN, 0};
    if (::poll(&pf, 1, 100) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
  return false;
}

TEST(ReplicationSecurity, TcpGarbageAndSilentConnectionsDoNotHurt) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  p.start();
  if (HasFatalFailure()) return;
  p.fs2->stop();  // fs2 must open a fresh connection to fs1 after the abuse
  // 64 KiB of random bytes instead of a TLS ClientHello.
  int garbage = tcp_connect(p.port1);
  ASSERT_GE(garbage, 0);
  std::mt19937 rng(5);
  std::string junk(64 << 10, '\0');
  for (auto& c : junk) c = char(rng());
  size_t off = 0;
  while (off < junk.size()) {
    ssize_t n = ::send(garbage, junk.data() + off, junk.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the daemon may hang up early: fine
    off += size_t(n);
  }
  EXPECT_TRUE(closed_within(garbage, 15s)) << "fs1 kept a garbage connection open";
  ::close(garbage);
  // A connection that says nothing, held open through the rest of the test;
  // plus one that connects and closes at once.
  int silent = tcp_connect(p.port1);
  ASSERT_GE(silent, 0);
  int quick = tcp_connect(p.port1);
  ASSERT_GE(quick, 0);
  ::close(quick);
  EXPECT_FALSE(p.fs1->status().is_null());

  p.fs2->start();
  if (HasFatalFailure()) {
    ::close(silent);
    return;
  }
  EXPECT_TRUE(p.wait_connected(30s)) << describe(p);
  ASSERT_EQ(p.fs1->loadgen({"--calls", "5", "--speed", "0", "--seed", "31"}).exit_code, 0);
  ASSERT_EQ(p.fs2->loadgen({"--calls", "5", "--speed", "0", "--seed", "32"}).exit_code, 0);
  bool ok = wait_until([&] { return converged(p, 10); }, 60s, 200ms);
  ::close(silent);
  ASSERT_TRUE(ok) << describe(p);
  expect_same_archives(*p.fs1, *p.fs2);
  EXPECT_EQ(p.fs1->archive_recordings().size(), 10u);
  EXPECT_TRUE(p.fs1->running());
  p.fs1->stop();
  p.fs2->stop();
}

// ------------------------------------------------------- a hostile peer

std::vector<uint8_t> hash_be(const std::string& content) {
  std::string hex = hash_bytes(content.data(), content.size());  // "xxh128:<32 hex>"
  std::vector<uint8_t> out;
  for (size_t i = hex.find(':') + 1; i + 1 < hex.size(); i += 2)
    out.push_back(uint8_t(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// The real protocol over a real TLS session (src/peer), driven by a blocking
// loop with poll(): the test's own client, so it can say what a real sender
// never would.
class RawPeer {
 public:
  // TCP connect + TLS handshake as client. nullptr with *err on failure.
  static std::unique_ptr<RawPeer> connect(uint16_t port, const peer::TlsContext& ctx,
                                          std::string* err) {
    std::unique_ptr<RawPeer> p(new RawPeer);
    p->fd_ = tcp_connect(port);
    if (p->fd_ < 0) {
      *err = "connect failed";
      return nullptr;
    }
    auto s = peer::TlsSession::create(ctx, peer::TlsSession::Role::kClient);
    if (!s) {
      *err = s.status().to_string();
      return nullptr;
    }
    p->tls_ = std::move(s).value();
    Status st = p->tls_->start();
    if (st && !p->flush()) st = Status::io("send failed");
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (st && !p->tls_->established() && std::chrono::steady_clock::now() < deadline) {
      if (!p->read_some(100ms)) {
        if (p->closed_) st = Status::io("closed during handshake");
      }
      if (!p->error_.is_ok()) st = p->error_;
    }
    if (st && !p->tls_->established()) st = Status::io("handshake timed out");
    if (!st) {
      *err = st.to_string();
      return nullptr;
    }
    return p;
  }
  ~RawPeer() {
    if (fd_ >= 0) ::close(fd_);
  }

  template <typename Msg>
  bool send_msg(peer::FrameType t, const Msg& m) {
    std::vector<uint8_t> out;
    if (!peer::encode_message(t, m, out)) return false;
    return send_plain(out);
  }
  // Application bytes as they are (for broken frames).
  bool send_plain(const std::vector<uint8_t>& plain) {
    if (!tls_->write(plain)) return false;
    return flush();
  }
  // The next frame, or nullopt when the connection closed (closed() true),
  // failed or timed out.
  std::optional<peer::Frame> recv(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (frames_.empty() && !closed_ && error_.is_ok() &&
           std::chrono::steady_clock::now() < deadline) {
      read_some(100ms);
    }
    if (frames_.empty()) return std::nullopt;
    peer::Frame f = std::move(frames_.front());
    frames_.pop_front();
    return f;
  }
  // True once the daemon hung up, reset, or sent a TLS alert or a bad frame.
  bool closed() const { return closed_ || !error_.is_ok(); }

 private:
  RawPeer() = default;

  bool flush() {
    std::vector<uint8_t> out;
    tls_->take_ciphertext(out);
    size_t off = 0;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (off < out.size() && std::chrono::steady_clock::now() < deadline) {
      ssize_t n = ::send(fd_, out.data() + off, out.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += size_t(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        pollfd pf{fd_, POLLOUT, 0};
        ::poll(&pf, 1, 100);
      } else {
        closed_ = true;
        return false;
      }
    }
    return off == out.size();
  }
  // One read (waits up to `wait`); decrypts and parses. False if nothing came.
  bool read_some(std::chrono::milliseconds wait) {
    pollfd pf{fd_, POLLIN, 0};
    if (::poll(&pf, 1, int(wait.count())) <= 0) return false;
    uint8_t buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      closed_ = true;
      return false;
    }
    if (n < 0) return false;
    std::vector<uint8_t> plain;
    Status s = tls_->feed_ciphertext({buf, size_t(n)}, plain);
    flush();
    if (!s) error_ = s;
    Status ps = parser_.feed(plain, [&](peer::Frame&& f) {
      frames_.push_back(std::move(f));
      return Status::ok();
    });
    if (!ps && error_.is_ok()) error_ = ps;
    if (tls_->peer_closed()) closed_ = true;
    return true;
  }

  int fd_ = -1;
  std::unique_ptr<peer::TlsSession> tls_;
  peer::FrameParser parser_;
  std::deque<peer::Frame> frames_;
  bool closed_ = false;
  Status error_;
};

struct Outcome {
  enum Kind { kAck, kNack, kClosed, kTimeout, kUnexpected } kind = kTimeout;
  bool got_signature = false;
  std::string detail;
};
std::ostream& operator<<(std::ostream& o, const Outcome& r) {
  static const char* names[] = {"ACK", "NACK", "closed", "timeout", "unexpected"};
  return o << names[r.kind] << (r.got_signature ? " (after SIGNATURE)" : "") << " " << r.detail;
}

// HELLO both ways, then one OFFER of `content` under `path` (declaring
// `declared_size`), and the whole transfer if the receiver asks for it.
Outcome offer(RawPeer& c, const std::string& path, const std::string& content,
              uint64_t declared_size) {
  Outcome r;
  peer::OfferMsg o;
  o.id = 1;
  o.path = path;
  o.origin = "evil";
  o.size = declared_size;
  auto h = hash_be(content);
  std::copy(h.begin(), h.end(), o.hash);
  o.mtime_ns = int64_t(time(nullptr)) * 1'000'000'000;
  if (!c.send_msg(peer::FrameType::kOffer, o)) {
    r.kind = Outcome::kClosed;
    r.detail = "could not send OFFER";
    return r;
  }
  delta::LoadedSignature sig;
  size_t sig_bytes = 0;
  for (;;) {
    auto f = c.recv(15s);
    if (!f) {
      r.kind = c.closed() ? Outcome::kClosed : Outcome::kTimeout;
      return r;
    }
    switch (f->type) {
      case peer::FrameType::kAck:
        r.kind = Outcome::kAck;
        return r;
      case peer::FrameType::kNack: {
        peer::NackMsg n;
        r.kind = Outcome::kNack;
        if (peer::decode(f->payload, &n))
          r.detail = "code " + std::to_string(n.code) + ": " + n.reason;
        return r;
      }
      case peer::FrameType::kSignature: {
        r.got_signature = true;
        peer::ChunkMsg m;
        if (peer::decode(f->payload, &m)) sig_bytes += m.data.size();
        if (!m.data.size() || !sig.feed(m.data, false)) {
          r.kind = Outcome::kUnexpected;
          r.detail = "bad SIGNATURE";
          return r;
        }
        break;
      }
      case peer::FrameType::kEnd: {
        // Signature complete: send the delta against it, then END.
        if (!sig.feed({}, true) || !sig.ready()) {
          r.kind = Outcome::kUnexpected;
          r.detail = "incomplete signature";
          return r;
        }
        // Against an empty basis (a 12-byte signature) the protocol sends
        // the bytes as they are; otherwise a librsync delta.
        std::vector<uint8_t> d;
        auto job = delta::DeltaJob::create(sig);
        if (sig_bytes == 12) {
          d.assign(content.begin(), content.end());
        } else if (!job ||
                   !job->feed({reinterpret_cast<const uint8_t*>(content.data()), content.size()},
                              true, d)) {
          r.kind = Outcome::kUnexpected;
          r.detail = "delta failed";
          return r;
        }
        for (size_t off = 0; off < d.size(); off += peer::kMaxChunk) {
          peer::ChunkMsg m;
          m.id = 1;
          m.data.assign(d.begin() + off, d.begin() + std::min(d.size(), off + peer::kMaxChunk));
          if (!c.send_msg(peer::FrameType::kDelta, m)) break;
        }
        c.send_msg(peer::FrameType::kEnd, peer::IdMsg{1});
        break;
      }
      case peer::FrameType::kPing: {
        peer::PingMsg m;
        if (peer::decode(f->payload, &m)) c.send_msg(peer::FrameType::kPong, m);
        break;
      }
      default:
        r.kind = Outcome::kUnexpected;
        r.detail = std::string("frame ") + peer::frame_type_name(f->type);
        return r;
    }
  }
}

// Connects and exchanges HELLO. nullptr (with a test failure) on error.
std::unique_ptr<RawPeer> hello(uint16_t port, const peer::TlsContext& ctx) {
  std::string err;
  auto c = RawPeer::connect(port, ctx, &err);
  EXPECT_TRUE(c) << "TLS connect to the daemon failed: " << err;
  if (!c) return nullptr;
  EXPECT_TRUE(c->send_msg(peer::FrameType::kHello, peer::HelloMsg{peer::kProtocolVersion, "evil"}));
  auto f = c->recv(10s);
  EXPECT_TRUE(f && f->type == peer::FrameType::kHello)
      << "no HELLO from the daemon"
      << (f ? std::string(": got ") + peer::frame_type_name(f->type) : "");
  if (!f || f->type != peer::FrameType::kHello) return nullptr;
  return c;
}

TEST(ReplicationSecurity, HostilePinnedPeerCanOnlyCreateFilesInsideTheArchive) {
  RECSYNC_REQUIRE_ROOT();
  TempDir evil_dir;
  std::string fp_evil = make_identity(evil_dir, "evil");
  ASSERT_EQ(fp_evil.size(), 7u + 64u);
  NodeOptions o;
  o.name = "fs1";
  o.layout = "flat";
  o.listen = "127.0.0.1:" + std::to_string(free_tcp_port());
  // Nobody listens at the evil peer's address: fs1's sender just backs off.
  o.peers = {{"evil", "127.0.0.1:" + std::to_string(free_tcp_port()), fp_evil}};
  Node n(o);
  std::string fp1 = n.fingerprint();
  n.start();
  if (HasFatalFailure()) return;
  ASSERT_EQ(n.status()["replication"].value("enabled", false), true) << n.status().dump();
  uint16_t port = n.listen_port();
  ASSERT_NE(port, 0);

  auto self = peer::load_identity(Env::posix(), evil_dir.sub("evil-state"));
  ASSERT_TRUE(self) << self.status().to_string();
  auto ctx = peer::TlsContext::create(*self, {fp1});
  ASSERT_TRUE(ctx) << ctx.status().to_string();

  // Positive control: a well-formed transfer from this client is accepted,
  // so the refusals below are the daemon's decisions, not client bugs.
  std::string good(100000, '\0');
  std::mt19937 rng(9);
  for (auto& ch : good) ch = char(rng());
  {
    auto c = hello(port, **ctx);
    ASSERT_TRUE(c);
    Outcome r = offer(*c, "ok/good.wav", good, good.size());
    ASSERT_EQ(r.kind, Outcome::kAck) << r;
    ASSERT_TRUE(file_exists(n.archive + "/ok/good.wav"));
    EXPECT_EQ(hash_file(n.archive + "/ok/good.wav"), hash_bytes(good.data(), good.size()));
  }

  ASSERT_FALSE(file_exists("/etc/x.wav"));
  ASSERT_EQ(::mkdir(n.dir.sub("outside").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(n.dir.sub("outside").c_str(), (n.archive + "/link").c_str()), 0);
  struct Case {
    std::string path;
    uint64_t size;
    std::vector<std::string> log_has;  // any one of these in the new log text
  };
  const std::string nul_path("a\0b.wav", 7);
  std::vector<Case> cases = {
      {"../x.wav", 0, {"../x.wav"}},
      {"/etc/x.wav", 0, {"/etc/x.wav"}},
      {nul_path, 0, {"a\\x00b.wav", "NUL"}},
      {"huge.wav", (64ull << 30) + 1, {"huge.wav", "68719476737"}},
      {"link/x.wav", 0, {"link/x.wav", "symlink", "symbolic link"}},
      {".recsync-part.ok.wav", 0, {".recsync-part.ok.wav"}},
  };
  std::string small = "RIFF....WAVEfmt small recording";
  for (const Case& k : cases) {
    SCOPED_TRACE("offer path \"" + k.path + "\"");
    size_t log_before = n.log().size();
    auto c = hello(port, **ctx);
    ASSERT_TRUE(c);
    Outcome r = offer(*c, k.path, small, k.size ? k.size : small.size());
    EXPECT_TRUE(r.kind == Outcome::kNack || r.kind == Outcome::kClosed) << r;
    EXPECT_FALSE(r.got_signature) << "the daemon asked for the data of a path it must refuse";
    std::cout << "[ hostile  ] " << (k.path == nul_path ? "a\\0b.wav" : k.path) << " -> " << r
              << "\n";
    ASSERT_TRUE(wait_until(
        [&] {
          std::string fresh = n.log().substr(std::min(log_before, n.log().size()));
          for (auto& w : k.log_has)
            if (fresh.find(w) != std::string::npos) return true;
          return false;
        },
        5s))
        << "the log does not name the refused path; new log text:\n"
        << n.log().substr(log_before);
  }

  // Broken frames after HELLO: a length far above the limit, an unknown
  // type, a truncated OFFER body. Each ends the connection.
  std::vector<std::vector<uint8_t>> broken = {
      {0xff, 0xff, 0xff, 0xff, 0x02},
      {0x00, 0x00, 0x00, 0x01, 0x63},
      {0x00, 0x00, 0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x01},
  };
  for (size_t i = 0; i < broken.size(); ++i) {
    SCOPED_TRACE("broken frame " + std::to_string(i));
    auto c = hello(port, **ctx);
    ASSERT_TRUE(c);
    c->send_plain(broken[i]);
    auto f = c->recv(10s);
    while (f && f->type == peer::FrameType::kNack) f = c->recv(10s);  // a NACK may come first
    EXPECT_TRUE(!f && c->closed())
        << "connection still open after a broken frame"
        << (f ? std::string(", got ") + peer::frame_type_name(f->type) : "");
  }

  // Nothing outside the archive, nothing new inside it but the good file.
  EXPECT_FALSE(file_exists(n.dir.sub("x.wav")));
  EXPECT_FALSE(file_exists("/etc/x.wav"));
  EXPECT_TRUE(list_tree(n.dir.sub("outside")).empty());
  auto tree = n.archive_recordings();
  std::vector<std::string> names;
  for (auto& [rel, fi] : tree) names.push_back(rel);
  EXPECT_EQ(names, std::vector<std::string>{"ok/good.wav"});
  // Still serving: status, and another good transfer.
  EXPECT_TRUE(n.running());
  EXPECT_FALSE(n.status().is_null());
  {
    auto c = hello(port, **ctx);
    ASSERT_TRUE(c);
    Outcome r = offer(*c, "ok/after.wav", small, small.size());
    EXPECT_EQ(r.kind, Outcome::kAck) << r;
    EXPECT_EQ(hash_file(n.archive + "/ok/after.wav"), hash_bytes(small.data(), small.size()));
  }
  n.stop();
}

// ------------------------------------------------- network namespaces

// A unique short tag for namespace and interface names.
std::string ns_tag() { return "rst" + std::to_string(::getpid() % 100000); }

// fs1 in the pair's first namespace (10.231.0.1), fs2 in its second
// (10.231.0.2), both on port 17373 (fresh namespaces: free).
PairOptions netns_pair_options(NetnsPair& nsp) {
  PairOptions o;
  o.host = "10.231.0.1";
  o.host2 = "10.231.0.2";
  o.port1 = o.port2 = 17373;
  o.exec1 = nsp.exec_prefix(1);
  o.exec2 = nsp.exec_prefix(2);
  return o;
}

// 20 calls recorded on each node at once (loadgen seeds seed and seed + 1);
// both archives must end with all 40, once each, identical.
void record_on_both_and_converge(Pair& p, int seed) {
  std::string m1 = p.fs1->dir.sub("m"), m2 = p.fs2->dir.sub("m");
  auto record = [](Node& node, const std::string& manifest, int sd) {
    RunResult r = node.loadgen(
        {"--calls", "20", "--speed", "0", "--seed", std::to_string(sd), "--manifest", manifest});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  };
  record(*p.fs1, m1, seed);
  record(*p.fs2, m2, seed + 1);
  if (::testing::Test::HasFatalFailure()) return;
  auto all = read_manifest(m1);
  for (auto& e : read_manifest(m2)) all.push_back(e);
  ASSERT_TRUE(wait_until([&] { return converged(p, 40); }, 120s, 250ms)) << describe(p);
  expect_archived_exactly_once(all, p.fs1->archive_recordings());
  expect_same_archives(*p.fs1, *p.fs2);
}

TEST(ReplicationNetns, CutLinkMidTransferResumesAndCompletes) {
  RECSYNC_REQUIRE_ROOT();
  auto nsp = NetnsPair::make(ns_tag(), "10.231.0.1/24", "10.231.0.2/24");
  ASSERT_TRUE(nsp) << nsp.status().to_string();
  PairOptions o = netns_pair_options(**nsp);
  o.bandwidth1 = "8MB/s";
  {
    Pair p(o);
    p.start();
    if (HasFatalFailure()) return;
    const uint64_t size = 24ull << 20;  // about 3 s at 8 MB/s
    write_random_file(p.fs1->spool + "/cut-0001.wav", size, 7);
    std::string want = hash_file(p.fs1->spool + "/cut-0001.wav");
    ASSERT_TRUE(wait_until(
        [&] {
          json q = p.fs1->peer_status("fs2");
          return q.is_object() && q.contains("in_flight") && q["in_flight"].is_object() &&
                 num(q["in_flight"], {"sent_bytes"}) >= int64_t(size * 3 / 10);
        },
        60s, 20ms))
        << describe(p);
    ASSERT_TRUE((*nsp)->set_link(1, false).is_ok());
    std::this_thread::sleep_for(3s);
    int64_t sent_cut = num(p.fs1->peer_status("fs2"), {"sent_bytes"});
    ASSERT_TRUE((*nsp)->set_link(1, true).is_ok());
    auto on_fs2 = [&] {
      for (auto& [rel, fi] : p.fs2->archive_recordings())
        if (path_basename(rel) == "cut-0001.wav" && fi.size == size && fi.hash == want) return true;
      return false;
    };
    ASSERT_TRUE(wait_until(on_fs2, 90s, 200ms)) << describe(p) << log_tail(*p.fs1);
    ASSERT_TRUE(wait_until([&] { return queue_files(*p.fs1) == 0; }, 30s)) << describe(p);
    int64_t sent = num(p.fs1->peer_status("fs2"), {"sent_bytes"});
    std::cout << "[ cut link ] size " << size << ", sent when cut " << sent_cut << ", total sent "
              << sent << "\n";
    EXPECT_LT(sent, int64_t(size * 17 / 10)) << "far more than one copy went out: no resume";
    expect_same_archives(*p.fs1, *p.fs2);
    EXPECT_EQ(hidden_files(*p.fs2), std::vector<std::string>());
    p.fs1->stop();
    p.fs2->stop();
  }
}

TEST(ReplicationNetns, DelayAndLossStillConverge) {
  RECSYNC_REQUIRE_ROOT();
  auto nsp = NetnsPair::make(ns_tag(), "10.231.0.1/24", "10.231.0.2/24");
  ASSERT_TRUE(nsp) << nsp.status().to_string();
  RunResult tc = (*nsp)->exec(1, {"tc", "qdisc", "add", "dev", (*nsp)->veth(1), "root", "netem",
                                  "delay", "40ms", "loss", "1%"});
  if (tc.exit_code != 0) {
    GTEST_SKIP() << "netem is not available on this kernel (tc: " << tc.err
                 << "); delay/loss not tested";
  }
  RunResult tc2 = (*nsp)->exec(
      2, {"tc", "qdisc", "add", "dev", (*nsp)->veth(2), "root", "netem", "delay", "40ms"});
  ASSERT_EQ(tc2.exit_code, 0) << tc2.err;
  PairOptions o = netns_pair_options(**nsp);
  Pair p(o);
  p.start(60s);
  if (HasFatalFailure()) return;
  record_on_both_and_converge(p, 61);
  if (HasFatalFailure()) return;
  p.fs1->stop();
  p.fs2->stop();
}

// Real packet loss without netem: an iptables `statistic` rule in each
// namespace drops 3 % of the packets leaving its veth (data one way, ACKs the
// other), so TCP retransmits under TLS while both nodes record at once.
TEST(ReplicationNetns, PacketLossBothWaysStillConverges) {
  RECSYNC_REQUIRE_ROOT();
  auto nsp = NetnsPair::make(ns_tag(), "10.231.0.1/24", "10.231.0.2/24");
  ASSERT_TRUE(nsp) << nsp.status().to_string();
  for (int side : {1, 2}) {
    RunResult r =
        (*nsp)->exec(side, {"iptables", "-A", "OUTPUT", "-o", (*nsp)->veth(side), "-m", "statistic",
                            "--mode", "random", "--probability", "0.03", "-j", "DROP"});
    if (r.exit_code != 0)
      GTEST_SKIP() << "iptables statistic match not available (" << r.err
                   << "); packet loss not tested";
  }
  PairOptions o = netns_pair_options(**nsp);
  Pair p(o);
  p.start(60s);
  if (HasFatalFailure()) return;
  record_on_both_and_converge(p, 81);
  if (HasFatalFailure()) return;
  // The loss was real: both rules dropped packets.
  for (int side : {1, 2}) {
    RunResult r = (*nsp)->exec(side, {"iptables", "-L", "OUTPUT", "-v", "-x", "-n"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream lines(r.out);
    std::string line;
    long dropped = -1;
    while (std::getline(lines, line)) {
      std::istringstream f(line);
      long pkts = 0;
      std::string bytes, target;
      if (f >> pkts >> bytes >> target && target == "DROP") dropped = pkts;
    }
    std::cout << "[ packet loss ] side " << side << " dropped " << dropped << " packets\n";
    EXPECT_GT(dropped, 0) << "no packet was dropped on side " << side << ":\n" << r.out;
  }
  p.fs1->stop();
  p.fs2->stop();
}

TEST(ReplicationNetns, TbfShapedLinkStillConverges) {
  RECSYNC_REQUIRE_ROOT();
  auto nsp = NetnsPair::make(ns_tag(), "10.231.0.1/24", "10.231.0.2/24");
  ASSERT_TRUE(nsp) << nsp.status().to_string();
  // 16 Mbit/s out of ns1: slower than the 50 MB/s default cap, so the link
  // (not the governor) is the bottleneck and queues build up.
  RunResult tc = (*nsp)->exec(1, {"tc", "qdisc", "add", "dev", (*nsp)->veth(1), "root", "tbf",
                                  "rate", "16mbit", "burst", "32kbit", "latency", "400ms"});
  if (tc.exit_code != 0) GTEST_SKIP() << "tc tbf is not available: " << tc.err;
  PairOptions o = netns_pair_options(**nsp);
  Pair p(o);
  p.start(60s);
  if (HasFatalFailure()) return;
  std::string m1 = p.fs1->dir.sub("m");
  ASSERT_EQ(p.fs1
                ->loadgen({"--calls", "30", "--concurrency", "30", "--speed", "0", "--seed", "71",
                           "--min-duration", "5", "--max-duration", "10", "--manifest", m1})
                .exit_code,
            0);
  auto all = read_manifest(m1);  // ~7 MB: about 4 s through the shaped link
  ASSERT_TRUE(wait_until([&] { return converged(p, 30); }, 90s, 250ms)) << describe(p);
  expect_archived_exactly_once(all, p.fs2->archive_recordings());
  expect_same_archives(*p.fs1, *p.fs2);
  p.fs1->stop();
  p.fs2->stop();
}

}  // namespace
}  // namespace recsync::test
