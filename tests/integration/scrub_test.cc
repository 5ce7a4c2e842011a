// End-to-end tests of the scrub (SPEC 4.5): real recsyncd nodes with real
// tmpfs spools and ext4 archives on loop devices, over TLS on 127.0.0.1.
// Damage is done to archived files behind the daemon's back; `recsync verify`
// must find it, status must alarm, and a pair must repair it byte-identical
// from the peer through the backfill path, audited, without ever publishing
// a copy that does not match the stored hash. Root only.
#include <filesystem>
#include <fstream>
#include <thread>

#include "node.h"
#include "support/http_client.h"

namespace recsync::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

void record(Node& n, const std::string& rel, uint64_t size, uint64_t seed) {
  const std::string tmp = n.spool + "/.writing-" + std::to_string(seed);
  write_random_file(tmp, size, seed);
  fs::rename(tmp, n.spool + "/" + rel);
}

// The archive path (relative) of the recording named `name`, "" if none.
std::string rel_of(Node& n, const std::string& name) {
  for (auto& [rel, fi] : n.archive_recordings())
    if (fs::path(rel).filename() == name) return rel;
  return "";
}

void flip_bytes(const std::string& path, uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(at));
  f.put(static_cast<char>(c ^ 0x5a));
  f.put(static_cast<char>(c ^ 0xa5));
}

struct Verify {
  int exit_code = -1;
  json out;
  std::string err;
};
Verify verify(Node& n, std::vector<std::string> args) {
  std::vector<std::string> argv = {"verify", "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = n.cli(argv);
  return {r.exit_code, json::parse(r.out, nullptr, false), r.err};
}

std::string alarm_text(const json& status) {
  std::string all;
  if (status.is_object() && status["alarms"].is_array())
    for (auto& a : status["alarms"])
      all += a["severity"].get<std::string>() + ": " + a["text"].get<std::string>() + "\n";
  return all;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) n++;
  return n;
}

TEST(Scrub, FindsDamageAndRepairsItFromThePeer) {
  RECSYNC_REQUIRE_ROOT();
  Pair p;
  p.start();
  if (HasFatalFailure()) return;
  const std::vector<std::string> names = {"flip.wav", "short.wav", "gone.wav",
                                          "both.wav", "fine1.wav", "fine2.wav"};
  for (size_t i = 0; i < names.size(); ++i) record(*p.fs1, names[i], 300'000 + i * 1000, 100 + i);
  record(*p.fs2, "theirs.wav", 250'000, 99);  // fs2's recording, damaged in fs1's archive
  ASSERT_TRUE(wait_until([&] { return converged(p, names.size() + 1); }, 60s, 200ms))
      << describe(p);
  std::map<std::string, std::string> rel;
  for (auto& n : names) rel[n] = rel_of(*p.fs1, n);
  rel["theirs.wav"] = rel_of(*p.fs1, "theirs.wav");
  const std::string a1 = p.fs1->archive + "/", a2 = p.fs2->archive + "/";
  // The damage, on fs1; "both" is damaged on fs2 too (differently).
  flip_bytes(a1 + rel["flip.wav"], 1000);
  fs::resize_file(a1 + rel["short.wav"], 4096);
  fs::remove(a1 + rel["gone.wav"]);
  flip_bytes(a1 + rel["both.wav"], 2000);
  flip_bytes(a1 + rel["theirs.wav"], 100'000);
  flip_bytes(a2 + rel["both.wav"], 5000);
  const std::string both_bad_fs1 = read_file(a1 + rel["both.wav"]);

  Verify v = verify(*p.fs1, {"--now"});
  ASSERT_EQ(v.exit_code, 1) << v.err << v.out.dump(2);
  ASSERT_TRUE(v.out.is_object()) << v.err;
  EXPECT_EQ(num(v.out, {"files"}), 7) << v.out.dump(2);
  EXPECT_EQ(num(v.out, {"errors", "corrupt"}), 3) << v.out.dump(2);
  EXPECT_EQ(num(v.out, {"errors", "size"}), 1);
  EXPECT_EQ(num(v.out, {"errors", "missing"}), 1);
  EXPECT_NE(alarm_text(p.fs1->status()).find("scrub: "), std::string::npos)
      << alarm_text(p.fs1->status());

  // Four come back from fs2, byte-identical; "both" has no good copy.
  auto repaired = [&] {
    for (auto& n : {"flip.wav", "short.wav", "gone.wav", "theirs.wav"})
      if (!fs::exists(a1 + rel[n]) || read_file(a1 + rel[n]) != read_file(a2 + rel[n]))
        return false;
    json s = p.fs1->status();
    return s.is_object() && s["scrub"]["open"].size() == 1;
  };
  ASSERT_TRUE(wait_until(repaired, 60s, 200ms))
      << p.fs1->status()["scrub"].dump(2) << log_tail(*p.fs1, 20000);
  json sc = p.fs1->status()["scrub"];
  EXPECT_EQ(num(sc, {"repaired_total"}), 4) << sc.dump(2);
  const json& open = sc["open"][0];
  EXPECT_EQ(open["path"], rel["both.wav"]);
  EXPECT_EQ(open["kind"], "corrupt");
  EXPECT_EQ(open["repair"], "pending");
  // Never published with bad data: the bad copy is kept aside as it was,
  // nothing else is at its place.
  EXPECT_FALSE(fs::exists(a1 + rel["both.wav"]));
  const std::string aside = a1 + open["aside"].get<std::string>();
  EXPECT_EQ(fs::path(aside).filename().string(), ".recsync-bad.both.wav");
  EXPECT_EQ(read_file(aside), both_bad_fs1);
  // No leftovers of the repaired ones.
  for (auto& n : {"flip.wav", "short.wav"})
    EXPECT_FALSE(
        fs::exists(fs::path(a1 + rel[n]).parent_path() / (".recsync-bad." + std::string(n))));
  // Audited: one line per repair.
  const std::string audit = read_file(p.fs1->state_dir + "/audit.log");
  EXPECT_EQ(count(audit, "\"policy\":\"repair "), 4u) << audit;
  EXPECT_EQ(count(audit, "repair corrupt"), 2u) << audit;
  EXPECT_EQ(count(audit, "repair size"), 1u) << audit;
  EXPECT_EQ(count(audit, "repair missing"), 1u) << audit;
  // The fine ones were never touched, and fs2's archive is as it was.
  for (auto& n : {"fine1.wav", "fine2.wav"})
    EXPECT_EQ(read_file(a1 + rel[n]), read_file(a2 + rel[n]));
  // Checking the repaired recordings by name: all good now.
  Verify again = verify(*p.fs1, {"flip", "short", "gone"});
  EXPECT_EQ(again.exit_code, 0) << again.err << again.out.dump(2);
  EXPECT_EQ(num(again.out, {"checked"}), 3);
  // "both" is still reported, with fs2's answer.
  Verify still = verify(*p.fs1, {"both"});
  EXPECT_EQ(still.exit_code, 1) << still.err;
  ASSERT_EQ(still.out["findings"].size(), 1u) << still.out.dump(2);
  EXPECT_TRUE(still.out["findings"][0]["peers"].contains("fs2")) << still.out.dump(2);
  // Metrics carry it too (published once a second).
  std::string body;
  auto metrics_show = [&] {
    auto mr = http_get(p.fs1->metrics_address(), "/metrics");
    body = mr ? mr->body : mr.status().to_string();
    return body.find("recsync_scrub_errors_total{kind=\"corrupt\"} 3") != std::string::npos &&
           body.find("recsync_scrub_repairs_total 4") != std::string::npos &&
           body.find("recsync_scrub_damaged_recordings 1") != std::string::npos;
  };
  EXPECT_TRUE(wait_until(metrics_show, 10s, 200ms)) << body;
}

TEST(Scrub, SingleNodeOnlyAlarms) {
  RECSYNC_REQUIRE_ROOT();
  Node n;
  n.start();
  if (HasFatalFailure()) return;
  record(n, "one.wav", 100'000, 1);
  record(n, "two.wav", 100'000, 2);
  ASSERT_TRUE(wait_until([&] { return n.archive_recordings().size() == 2; }, 30s, 100ms));
  // The row is written after the file: wait for the index too.
  ASSERT_TRUE(wait_until([&] { return num(n.status(), {"archive", "files"}) == 2; }, 10s, 100ms));
  const std::string path = n.archive + "/" + rel_of(n, "one.wav");
  flip_bytes(path, 10);
  const std::string bad = read_file(path);

  Verify good = verify(n, {"two"});
  EXPECT_EQ(good.exit_code, 0) << good.err;
  Verify v = verify(n, {"--now"});
  ASSERT_EQ(v.exit_code, 1) << v.err;
  EXPECT_EQ(num(v.out, {"errors", "corrupt"}), 1) << v.out.dump(2);
  ASSERT_EQ(v.out["open"].size(), 1u);
  EXPECT_EQ(v.out["open"][0]["repair"], "no peer");
  // Nothing moved, nothing replaced; the alarm is critical.
  EXPECT_EQ(read_file(path), bad);
  const std::string alarms = alarm_text(n.status());
  EXPECT_NE(alarms.find("critical: scrub: 1 damaged recording (1 corrupt)"), std::string::npos)
      << alarms;
  // Human output names it.
  RunResult h = n.cli({"verify", "one"});
  EXPECT_EQ(h.exit_code, 1);
  EXPECT_NE(h.out.find("corrupt"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("no peer"), std::string::npos) << h.out;
  // The findings survive a restart.
  n.stop();
  n.start();
  EXPECT_EQ(n.status()["scrub"]["open"].size(), 1u);
}

}  // namespace
}  // namespace recsync::test
