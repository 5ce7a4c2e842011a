// End-to-end tests of the object-store tier (issue 12): real recsyncd nodes
// (real tmpfs spool, real ext4 archive) uploading to a real Ceph RGW that
// the test starts on 127.0.0.1 (support/rgw.h, one cluster for the binary).
// Root only (the nodes' mounts); skipped with the reason when the Ceph
// programs are missing.
#include <fcntl.h>
#include <sys/stat.h>

#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "node.h"
#include "objstore/s3_client.h"
#include "recsync/env.h"
#include "recsync/hash.h"
#include "support/rgw.h"

namespace recsync::test {
namespace {

using json = nlohmann::json;
using objstore::ErrorKind;

[[maybe_unused]] ::testing::Environment* const kRgwEnv =
    ::testing::AddGlobalTestEnvironment(new SharedRgw);

constexpr int64_t kDay = 86'400'000;

int64_t num(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return -1;
    cur = &(*cur)[k];
  }
  return cur->is_number() ? cur->get<int64_t>() : -1;
}

std::string str(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return "";
    cur = &(*cur)[k];
  }
  return cur->is_string() ? cur->get<std::string>() : "";
}

void set_mtime(const std::string& path, int64_t ms) {
  struct timespec ts[2];
  ts[0].tv_sec = ts[1].tv_sec = ms / 1000;
  ts[0].tv_nsec = ts[1].tv_nsec = (ms % 1000) * 1'000'000;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0) << path;
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, 8);
  }
  return s;
}

int64_t now_ms() { return to_ms(Env::posix()->now()); }

// A bucket of its own per test, a credentials file, and the [object_store]
// section for a node's config.
class ObjStore : public ::testing::Test {
 protected:
  void SetUp() override {
    RECSYNC_REQUIRE_ROOT();
    RECSYNC_REQUIRE_RGW(c);
    rgw_ = c;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    static int n = 0;
    bucket_ = "it" + std::to_string(++n) + "-";
    for (char ch : std::string(info->name()))
      bucket_ += std::isalnum(static_cast<unsigned char>(ch))
                     ? char(std::tolower(static_cast<unsigned char>(ch)))
                     : '-';
    bucket_ = bucket_.substr(0, 50);
    while (bucket_.back() == '-') bucket_.pop_back();
    client_ = make_client();
    ASSERT_TRUE(client_);
    auto st = client_->create_bucket(bucket_, true);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    creds_ = write_creds("good", rgw_->user().secret_key);
  }

  std::string write_creds(const std::string& name, const std::string& secret) {
    std::string p = dir_.sub("creds-" + name);
    write_file(p, "access_key = " + rgw_->user().access_key + "\nsecret_key = " + secret + "\n");
    EXPECT_EQ(::chmod(p.c_str(), 0600), 0);
    return p;
  }

  std::unique_ptr<objstore::S3Client> make_client() {
    objstore::S3Options o;
    o.endpoint = rgw_->endpoint();
    o.bucket = bucket_;
    o.credentials = objstore::Credentials(rgw_->user().access_key, rgw_->user().secret_key);
    auto c = objstore::S3Client::make(o);
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    return c.is_ok() ? std::move(c).value() : nullptr;
  }

  std::string section(const std::string& creds, const std::string& more = "") const {
    return "\n[object_store]\nendpoint = \"" + rgw_->endpoint() + "\"\nbucket = \"" + bucket_ +
           "\"\nprefix = \"rec/\"\ncredentials = \"" + creds +
           "\"\nobject_lock = true\npart_size = \"5MiB\"\nmultipart_threshold = \"5MiB\"\n"
           "retry_max = \"2s\"\n" +
           more;
  }

  NodeOptions options(const std::string& creds, const std::string& more = "") const {
    NodeOptions o;
    o.archive_bytes = 512ull << 20;
    o.extra = section(creds, more);
    return o;
  }

  std::string get(const std::string& key) {
    static int n = 0;
    std::string path = dir_.sub("got-" + std::to_string(++n));
    auto f = Env::posix()->create_excl(path, 0600);
    if (!f) return "";
    auto g = client_->get_object(key, **f);
    if (!g.is_ok()) return "<" + g.status().to_string() + ">";
    return read_file(path);
  }

  // Every version of key (delete markers included).
  size_t versions(const std::string& key) {
    auto l = client_->list_object_versions(key);
    EXPECT_TRUE(l.is_ok()) << l.status().to_string();
    size_t n = 0;
    if (l.is_ok())
      for (auto& v : l->versions) n += v.key == key;
    return n;
  }

  // The key of a recording its origin `node` archived at rel: prefix, node,
  // path (objtier/tier_options.h).
  static std::string key(const std::string& rel, const std::string& node = "fs1") {
    return "rec/" + node + "/" + rel;
  }
  // Archive path -> key, for every object in the store (any origin).
  std::map<std::string, std::string> keys_by_rel() {
    std::map<std::string, std::string> out;
    auto l = client_->list_object_versions("rec/");
    EXPECT_TRUE(l.is_ok());
    if (!l) return out;
    for (auto& v : l->versions) {
      const size_t slash = v.key.find('/', 4);
      if (v.is_latest && !v.is_delete_marker && slash != std::string::npos)
        out[v.key.substr(slash + 1)] = v.key;
    }
    return out;
  }

  // Each archive recording of the node is in the store, byte-identical
  // (a GET compared with the local copy's hash), with exactly one version.
  void expect_uploaded(Node& node, size_t want) {
    auto arch = node.archive_recordings();
    ASSERT_EQ(arch.size(), want);
    auto keys = keys_by_rel();
    size_t bad = 0;
    for (auto& [rel, fi] : arch) {
      if (!keys.count(rel)) {
        if (bad++ < 5) ADD_FAILURE() << rel << ": no object in the store";
        continue;
      }
      std::string body = get(keys[rel]);
      if (hash_bytes_of(body) != fi.hash || body.size() != fi.size) {
        if (bad++ < 5) ADD_FAILURE() << rel << ": the object differs from the archive copy";
      } else if (size_t v = versions(keys[rel]); v != 1) {
        if (bad++ < 5) ADD_FAILURE() << rel << ": " << v << " versions in the store";
      }
    }
    EXPECT_EQ(bad, 0u);
  }
  static std::string hash_bytes_of(const std::string& s) { return hash_bytes(s.data(), s.size()); }

  bool drained(Node& n, int64_t want_objects) {
    json s = n.status();
    return num(s, {"object_store", "queue", "files"}) == 0 &&
           num(s, {"object_store", "objects", "files"}) >= want_objects;
  }

  RgwCluster* rgw_ = nullptr;
  TempDir dir_;
  std::string bucket_, creds_;
  std::unique_ptr<objstore::S3Client> client_;
};

TEST_F(ObjStore, RecordingsAreUploadedByteIdenticalAndLocateShowsThem) {
  Node n(options(creds_));
  n.start();
  auto r = n.loadgen({"--calls", "30", "--concurrency", "10", "--speed", "0", "--min-duration", "1",
                      "--max-duration", "200", "--seed", "11", "--subdirs"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(wait_until([&] { return drained(n, 30); }, 90s, 200ms)) << n.status().dump();
  expect_uploaded(n, 30);
  json s = n.status();
  EXPECT_EQ(str(s, {"object_store", "state"}), "idle");
  EXPECT_EQ(num(s, {"object_store", "uploaded_files"}), 30);
  EXPECT_TRUE(s["alarms"].empty()) << s["alarms"].dump();
  // locate shows the object with its bucket/key, size, hash and hold state.
  const std::string rel = n.archive_recordings().begin()->first;
  const std::string id = path_basename(rel).substr(0, path_basename(rel).rfind('.'));
  RunResult loc = n.cli({"locate", id, "--json"});
  ASSERT_EQ(loc.exit_code, 0) << loc.err;
  json l = json::parse(loc.out);
  bool found = false;
  for (auto& e : l)
    if (e["where"] == "object_store") {
      found = true;
      EXPECT_EQ(e["path"], "s3://" + bucket_ + "/" + key(rel));
      EXPECT_EQ(e["held"], false);
      EXPECT_EQ(e["hash"], n.archive_recordings()[rel].hash);
    }
  EXPECT_TRUE(found) << loc.out;
  n.stop();
}

TEST_F(ObjStore, KillNineMidUploadLosesNothingAndUploadsEachOnce) {
  NodeOptions o = options(creds_);
  o.bandwidth = "25MB/s";  // uploads take a while: the kills land mid-transfer
  o.listen = "127.0.0.1:0";
  Node n(o);
  auto r = n.loadgen({"--calls", "24", "--concurrency", "24", "--speed", "0", "--min-duration",
                      "100", "--max-duration", "300", "--seed", "21"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::mt19937 rng(7);
  const auto t0 = std::chrono::steady_clock::now();
  int rounds = 0, mid_upload = 0;
  for (; rounds < 12 && std::chrono::steady_clock::now() - t0 < 120s; ++rounds) {
    n.start();
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
    json s = n.status();  // was an upload in flight just before the kill?
    mid_upload += s.is_object() && s["object_store"]["in_flight"].is_object();
    n.kill9();
  }
  EXPECT_GE(rounds, 10);
  EXPECT_GE(mid_upload, 5) << "too few kills landed while an upload was in flight";
  n.start();
  ASSERT_TRUE(wait_until([&] { return drained(n, 24); }, 120s, 250ms))
      << n.status().dump() << log_tail(n);
  expect_uploaded(n, 24);
  auto uploads = client_->list_multipart_uploads("rec/");
  ASSERT_TRUE(uploads.is_ok());
  EXPECT_TRUE(uploads->empty()) << uploads->size() << " multipart uploads left behind";
  json s = n.status();
  EXPECT_EQ(num(s, {"object_store", "multipart_in_progress"}), 0);
  n.stop();
}

TEST_F(ObjStore, RadosgwKilledThenBackNothingLostQueueDrains) {
  NodeOptions o = options(creds_);
  o.bandwidth = "20MB/s";
  o.listen = "127.0.0.1:0";
  Node n(o);
  n.start();
  auto r = n.loadgen({"--calls", "12", "--concurrency", "12", "--speed", "0", "--min-duration",
                      "60", "--max-duration", "200", "--seed", "31"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(wait_until(
      [&] {
        return num(n.status(), {"object_store", "uploaded_files"}) >= 1;
      },
      60s));
  rgw_->kill_rgw();
  ASSERT_TRUE(wait_until(
      [&] {
        json s = n.status();
        return str(s, {"object_store", "state"}) == "backoff" && !s["alarms"].empty();
      },
      30s, 200ms))
      << n.status().dump();
  std::this_thread::sleep_for(3s);
  ASSERT_TRUE(rgw_->restart_rgw()) << "radosgw did not come back";
  ASSERT_TRUE(wait_until([&] { return drained(n, 12); }, 90s, 250ms)) << n.status().dump();
  expect_uploaded(n, 12);
  EXPECT_GE(num(n.status(), {"object_store", "errors", "network"}), 1);
  n.stop();
}

TEST_F(ObjStore, WrongCredentialsAlarmCriticalAndLoseNothing) {
  std::string bad = write_creds("bad", "not-the-secret");
  Node n(options(bad));
  n.start();
  ASSERT_EQ(n.loadgen({"--calls", "5", "--speed", "0", "--seed", "41"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        json s = n.status();
        return str(s, {"object_store", "state"}) == "refused" &&
               num(s, {"object_store", "queue", "files"}) == 5;
      },
      30s))
      << n.status().dump();
  RunResult check = n.cli({"status", "--check"});
  EXPECT_EQ(check.exit_code, 2) << check.out;
  EXPECT_NE(check.out.find("refuses our credentials"), std::string::npos) << check.out;
  EXPECT_EQ(check.out.find("not-the-secret"), std::string::npos);
  EXPECT_EQ(n.log().find("not-the-secret"), std::string::npos) << "a secret in the log";
  EXPECT_EQ(n.status().dump().find("not-the-secret"), std::string::npos);
  EXPECT_EQ(num(n.status(), {"object_store", "queue", "retry", "files"}), 0);
  n.stop();
  n.options().extra = section(creds_);
  n.write_config();
  n.start();
  ASSERT_TRUE(wait_until([&] { return drained(n, 5); }, 60s)) << n.status().dump();
  expect_uploaded(n, 5);
  n.stop();
}

// Recordings written into the spool with old recording times (their mtime).
std::vector<std::string> old_recordings(Node& n, int count, int64_t age_ms, uint64_t seed) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) {
    std::string name = "old-" + std::to_string(seed) + "-" + std::to_string(i) + ".wav";
    std::string p = n.spool + "/" + name;
    write_file(p, random_bytes(100'000 + size_t(i), seed * 100 + uint64_t(i)));
    set_mtime(p, now_ms() - age_ms - i * 1000);
    names.push_back(name);
  }
  return names;
}

TEST_F(ObjStore, AHeldObjectCannotBeDeletedAndIsKeptPastRetention) {
  Node n(options(creds_));
  old_recordings(n, 4, 20 * kDay, 5);
  n.start();
  ASSERT_TRUE(wait_until([&] { return drained(n, 4); }, 60s)) << n.status().dump();
  auto arch = n.archive_recordings();
  ASSERT_EQ(arch.size(), 4u);
  const std::string held_rel = arch.begin()->first;
  const std::string held_id = path_basename(held_rel).substr(0, path_basename(held_rel).rfind('.'));
  ASSERT_EQ(n.cli({"hold", "add", held_id, "--reason", "case 7"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return num(n.status(), {"object_store", "objects", "legal_holds"}) == 1;
      },
      30s))
      << n.status().dump();
  auto head = client_->head_object(key(held_rel));
  ASSERT_TRUE(head.is_ok());
  EXPECT_EQ(head->legal_hold, std::optional<bool>(true));
  // The store itself refuses to delete the held version.
  EXPECT_EQ(client_->delete_object(key(held_rel), head->version_id).kind(), ErrorKind::kLocked);
  // Past retention (keep 15d, recorded 20 days ago): everything else goes,
  // files and objects (every version); the held one stays in both.
  ASSERT_EQ(n.cli({"prune"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return n.archive_recordings().size() == 1; }, 60s))
      << n.status().dump();
  ASSERT_TRUE(wait_until(
      [&] {
        return num(n.status(), {"object_store", "objects", "files"}) == 1;
      },
      30s))
      << n.status().dump();
  for (auto& [rel, fi] : arch) EXPECT_EQ(versions(key(rel)), rel == held_rel ? 1u : 0u) << rel;
  EXPECT_TRUE(file_exists(n.archive + "/" + held_rel));
  std::string audit = read_file(n.state_dir + "/audit.log");
  size_t object_lines = 0;
  for (size_t p = 0; (p = audit.find("every version", p)) != std::string::npos; ++p) object_lines++;
  EXPECT_EQ(object_lines, 3u) << audit;
  // Released: the next pass deletes it too.
  ASSERT_EQ(n.cli({"hold", "release", held_id}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return num(n.status(), {"object_store", "objects", "legal_holds"}) == 0;
      },
      30s));
  ASSERT_EQ(n.cli({"prune"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return versions(key(held_rel)) == 0; }, 60s));
  n.stop();
}

TEST_F(ObjStore, KeepLocalPrunesOnlyVerifiedUploadsAndFetchRestores) {
  std::string bad = write_creds("bad", "wrong");
  // keep_fetched 0: these copies arrive now with old recording times.
  const std::string tier = "keep_local = \"2d\"\nkeep_fetched = \"0s\"\n";
  Node n(options(bad, tier));
  old_recordings(n, 3, 3 * kDay, 6);
  n.start();
  ASSERT_TRUE(wait_until([&] { return num(n.status(), {"archive", "files"}) == 3; }, 30s));
  const auto arch = n.archive_recordings();
  // Not uploaded (the store refuses us): the local copies are the last ones.
  ASSERT_EQ(n.cli({"prune"}).exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return !str(n.status(), {"retention", "last_prune"}).empty();
      },
      60s));
  EXPECT_EQ(n.archive_recordings().size(), 3u);
  EXPECT_EQ(num(n.status(), {"retention", "last_unstored"}), 3);
  n.stop();
  // Uploads allowed: once verified, the next pass removes the local copies.
  n.options().extra = section(creds_, tier);
  n.write_config();
  n.start();
  ASSERT_TRUE(wait_until([&] { return drained(n, 3); }, 60s)) << n.status().dump();
  ASSERT_EQ(n.cli({"prune"}).exit_code, 0);
  ASSERT_TRUE(wait_until([&] { return n.archive_recordings().empty(); }, 60s)) << n.status().dump();
  for (auto& [rel, fi] : arch) EXPECT_EQ(versions(key(rel)), 1u);
  std::string audit = read_file(n.state_dir + "/audit.log");
  EXPECT_NE(audit.find("keep_local=2d, object verified in the store"), std::string::npos);
  // fetch brings one back, byte-identical, with its recording time.
  const std::string rel = arch.begin()->first;
  const std::string id = path_basename(rel).substr(0, path_basename(rel).rfind('.'));
  RunResult f = n.cli({"fetch", id});
  ASSERT_EQ(f.exit_code, 0) << f.err;
  EXPECT_NE(f.out.find("fetched\t" + rel), std::string::npos) << f.out;
  auto now_arch = n.archive_recordings();
  ASSERT_EQ(now_arch.size(), 1u);
  EXPECT_EQ(now_arch[rel], arch.at(rel)) << "not byte-identical";
  EXPECT_EQ(n.cli({"fetch", id}).exit_code, 0) << "again: already there";
  RunResult loc = n.cli({"locate", id});
  EXPECT_NE(loc.out.find("archive"), std::string::npos) << loc.out;
  EXPECT_NE(loc.out.find("object_store\ts3://" + bucket_), std::string::npos) << loc.out;
  EXPECT_EQ(n.cli({"fetch", "no-such-call"}).exit_code, 1);
  n.stop();
}

TEST_F(ObjStore, TwoNodesPlusTheStoreEachRecordingUploadedOnceByItsOrigin) {
  PairOptions po;
  po.base = options(creds_);
  Pair p(po);  // both nodes with the same [object_store]
  p.start();
  if (HasFatalFailure()) return;
  auto r1 = p.fs1->loadgen({"--calls", "20", "--concurrency", "10", "--speed", "0",
                            "--max-duration", "60", "--seed", "51", "--subdirs"});
  auto r2 = p.fs2->loadgen({"--calls", "20", "--concurrency", "10", "--speed", "0",
                            "--max-duration", "60", "--seed", "52", "--subdirs"});
  ASSERT_EQ(r1.exit_code, 0);
  ASSERT_EQ(r2.exit_code, 0);
  ASSERT_TRUE(wait_until(
      [&] {
        return p.fs1->archive_recordings().size() == 40 &&
               p.fs2->archive_recordings().size() == 40 && drained(*p.fs1, 20) &&
               drained(*p.fs2, 20);
      },
      120s, 250ms))
      << p.fs1->status().dump() << "\n"
      << p.fs2->status().dump();
  expect_uploaded(*p.fs1, 40);  // both archives hold all 40; each object once
  json s1 = p.fs1->status(), s2 = p.fs2->status();
  EXPECT_EQ(num(s1, {"object_store", "uploaded_files"}), 20);
  EXPECT_EQ(num(s2, {"object_store", "uploaded_files"}), 20);
  EXPECT_EQ(num(s1, {"object_store", "already_present"}), 0);
  // Each object names its origin.
  std::map<std::string, int> by_node;
  auto keys = keys_by_rel();
  for (auto& [rel, fi] : p.fs1->archive_recordings()) {
    auto h = client_->head_object(keys[rel]);
    ASSERT_TRUE(h.is_ok());
    by_node[h->metadata["node"]]++;
    EXPECT_EQ(keys[rel], key(rel, h->metadata["node"])) << "keyed by its origin";
  }
  EXPECT_EQ(by_node["fs1"], 20);
  EXPECT_EQ(by_node["fs2"], 20);
  // Both nodes record a call under one name: two recordings, two keys (by
  // identity), no conflict; on both archives fs2's copy is the .from-fs2 one.
  for (int i = 0; i < 2; ++i) {
    write_file(p.node(i).spool + "/.w", "same name, node " + std::to_string(i + 1));
    ASSERT_EQ(::rename((p.node(i).spool + "/.w").c_str(), (p.node(i).spool + "/same.wav").c_str()),
              0);
  }
  ASSERT_TRUE(wait_until(
      [&] {
        return p.fs1->archive_recordings().size() == 42 &&
               p.fs2->archive_recordings().size() == 42 && drained(*p.fs1, 21) &&
               drained(*p.fs2, 21);
      },
      60s, 250ms))
      << p.fs1->status().dump() << "\n"
      << p.fs2->status().dump() << "\nfs1 log:\n"
      << log_tail(*p.fs1, 20000) << "\nfs2 log:\n"
      << log_tail(*p.fs2, 20000);
  std::string plain;  // the archive path both nodes gave "same.wav" (date layout)
  for (auto& [rel, fi] : p.fs1->archive_recordings())
    if (path_basename(rel) == "same.wav") plain = rel;
  ASSERT_FALSE(plain.empty());
  const std::string moved = plain.substr(0, plain.size() - 8) + "same.from-fs2.wav";
  for (int i = 0; i < 2; ++i) {
    const std::string node = "fs" + std::to_string(i + 1);
    EXPECT_EQ(get(key(plain, node)), "same name, node " + std::to_string(i + 1)) << node;
    EXPECT_EQ(versions(key(plain, node)), 1u);
    EXPECT_EQ(p.node(i).archive_recordings().count(moved), 1u) << node;
    const json errors = p.node(i).status()["object_store"]["errors"];
    EXPECT_FALSE(errors.contains("conflict")) << node << ": " << errors.dump();
  }
  p.fs1->stop();
  p.fs2->stop();
}

// Erasure (erase/eraser.h) with an object store: the object goes too, every
// version of it, and the rest stays.
TEST_F(ObjStore, EraseDeletesEveryVersionOfTheObjectAndNothingElse) {
  Node n(options(creds_));
  n.start();
  auto r = n.loadgen({"--calls", "6", "--concurrency", "6", "--speed", "0", "--min-duration", "1",
                      "--max-duration", "20", "--seed", "21"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(wait_until([&] { return drained(n, 6); }, 90s, 200ms)) << n.status().dump();
  const std::string rel = n.archive_recordings().begin()->first;
  ASSERT_EQ(versions(key(rel)), 1u);
  RunResult e = n.cli({"erase", rel, "--reason", "GDPR request 5", "--json"});
  ASSERT_EQ(e.exit_code, 0) << e.out << e.err << n.log();
  json j = json::parse(e.out);
  EXPECT_EQ(j["object_store"], "erased") << e.out;
  EXPECT_EQ(versions(key(rel)), 0u) << "every version of the object is gone";
  EXPECT_EQ(n.archive_recordings().count(rel), 0u);
  EXPECT_EQ(n.archive_recordings().size(), 5u);
  EXPECT_EQ(keys_by_rel().size(), 5u) << "the other objects stay";
  json s = n.status();
  EXPECT_EQ(num(s, {"object_store", "objects", "files"}), 5);
  EXPECT_EQ(num(s, {"erasure", "pending"}), 0);
  // locate knows it no more, in the archive or the store.
  EXPECT_EQ(n.cli({"locate", rel}).exit_code, 1);
  n.stop();
}

}  // namespace
}  // namespace recsync::test
