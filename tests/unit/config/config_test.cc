#include "recsync/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

namespace recsync {
namespace {

const std::string kFp = "sha256:" + std::string(64, 'a');

// The smallest valid file (lines 1-4), with a fixed node name.
const std::string kBase =
    "[spool]\n"
    "path = \"/spool\"\n"
    "[archive]\n"
    "path = \"/archive\"\n";

Result<Config> parse(const std::string& text) { return parse_config(text, "test.conf"); }

std::string error_of(const std::string& text) {
  auto r = parse(text);
  if (r.is_ok()) return "<parsed OK>";
  EXPECT_EQ(r.status().code(), Status::Code::kInvalid);
  return r.status().message();
}

std::string peer_block(const std::string& name, const std::string& address = "\"10.0.0.2:7373\"",
                       const std::string& fp = "") {
  return "[[peer]]\nname = \"" + name + "\"\naddress = " + address +
         "\nfingerprint = " + (fp.empty() ? "\"" + kFp + "\"" : fp) + "\n";
}

// Every field of a Config, one per line, so two configs compare as strings.
std::string dump(const Config& c) {
  std::ostringstream o;
  o << "node=" << c.node << "\nstate_dir=" << c.state_dir << "\nlog.level=" << c.log.level;
  for (const auto& [k, v] : c.log.components) o << "\nlog.components." << k << "=" << v;
  o << "\ncontrol.socket=" << c.control.socket << "\ncontrol.group=" << c.control.group
    << "\nspool.path=" << c.spool.path << "\nspool.include=";
  for (const auto& s : c.spool.include) o << s << ",";
  o << "\nspool.exclude=";
  for (const auto& s : c.spool.exclude) o << s << ",";
  o << "\nspool.settle=" << c.spool.settle.count() << "\nspool.open_check=" << c.spool.open_check
    << "\nspool.usage_warn=" << c.spool.usage_warn_pct
    << "\nspool.usage_crit=" << c.spool.usage_crit_pct << "\narchive.path=" << c.archive.path
    << "\narchive.layout=" << c.archive.layout << "\narchive.workers=" << c.archive.workers
    << "\narchive.retry_max=" << c.archive.retry_max.count()
    << "\nretention.keep=" << c.retention.keep.count()
    << "\nretention.interval=" << c.retention.interval.count()
    << "\nretention.pace=" << c.retention.pace
    << "\nretention.tmp_grace=" << c.retention.tmp_grace.count()
    << "\nretention.clock_tolerance=" << c.retention.clock_tolerance.count()
    << "\nretention.audit_log=" << c.retention.audit_log
    << "\nreplication.listen=" << c.replication.listen
    << "\nreplication.bandwidth=" << c.replication.bandwidth_bps
    << "\nreplication.schedule=" << c.replication.schedule_text << "("
    << c.replication.schedule.entries().size() << " entries)";
  for (const auto& p : c.peers)
    o << "\npeer=" << p.name << "," << p.address << "," << p.fingerprint;
  o << "\nmetrics.listen=" << c.metrics.listen;
  o << "\nscrub=" << c.scrub.interval.count() << "," << c.scrub.rate_bps << "," << c.scrub.repair;
  const auto& os = c.object_store;
  o << "\nobject_store=" << os.enabled << "," << os.endpoint << "," << os.bucket << "," << os.region
    << "," << os.prefix << "," << os.ca_file << "," << os.credentials << ","
    << (os.keep_local ? os.keep_local->count() : -1) << "," << os.keep_fetched.count() << ","
    << os.object_lock << "," << os.part_size << "," << os.multipart_threshold << "," << os.uploads
    << "," << os.upload_warn.count() << "," << os.retry_max.count() << "\n";
  return o.str();
}

std::string short_hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  EXPECT_EQ(gethostname(buf, sizeof(buf) - 1), 0);
  std::string h(buf);
  return h.substr(0, h.find('.'));
}

TEST(Config, MinimalFileGetsEveryDefault) {
  auto r = parse(kBase);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const Config& c = *r;
  EXPECT_EQ(c.source, "test.conf");
  EXPECT_EQ(c.node, short_hostname());
  EXPECT_EQ(c.state_dir, "/var/lib/recsync");
  EXPECT_EQ(c.log.level, "info");
  EXPECT_TRUE(c.log.components.empty());
  EXPECT_EQ(c.control.socket, "/run/recsync/recsyncd.sock");
  EXPECT_EQ(c.control.group, "recsync");
  EXPECT_EQ(c.spool.path, "/spool");
  EXPECT_EQ(c.spool.include, std::vector<std::string>{"*.wav"});
  EXPECT_TRUE(c.spool.exclude.empty());
  EXPECT_EQ(c.spool.settle, Millis{500});
  EXPECT_EQ(c.spool.open_check, "auto");
  EXPECT_EQ(c.spool.usage_warn_pct, 70);
  EXPECT_EQ(c.spool.usage_crit_pct, 90);
  EXPECT_EQ(c.archive.path, "/archive");
  EXPECT_EQ(c.archive.layout, "date");
  EXPECT_EQ(c.archive.workers, 2);
  EXPECT_EQ(c.archive.retry_max, Millis{60'000});
  EXPECT_EQ(c.retention.keep, Millis{15LL * 86'400'000});
  EXPECT_EQ(c.retention.interval, Millis{3'600'000});
  EXPECT_EQ(c.retention.pace, 200);
  EXPECT_EQ(c.retention.tmp_grace, Millis{86'400'000});
  EXPECT_EQ(c.retention.clock_tolerance, Millis{3'600'000});
  EXPECT_EQ(c.retention.audit_log, "");
  EXPECT_EQ(c.audit_log_path(), "/var/lib/recsync/audit.log");
  EXPECT_EQ(c.db_path(), "/var/lib/recsync/state.db");
  EXPECT_EQ(c.replication.listen, "0.0.0.0:7373");
  EXPECT_EQ(c.replication.bandwidth_bps, 50'000'000u);
  EXPECT_TRUE(c.peers.empty());
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9465");
}

TEST(Config, KeepsTheLineOfEveryKeyAndSectionForLaterChecks) {
  auto c = parse("node = \"fs1\"\n" + kBase + "[control]\n\ngroup = \"ops\"\n");
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->lines.at("node"), 1u);
  EXPECT_EQ(c->lines.at("spool"), 2u);
  EXPECT_EQ(c->lines.at("spool.path"), 3u);
  EXPECT_EQ(c->lines.at("archive.path"), 5u);
  EXPECT_EQ(c->at("control.group"), "test.conf:8: ");
  EXPECT_EQ(c->at("control.socket"), "test.conf:6: ") << "a default: its section's line";
  EXPECT_EQ(c->at("metrics.listen"), "test.conf: ") << "no section: no line";
  EXPECT_EQ(c->at("state_dir"), "test.conf: ");
  EXPECT_EQ(Config().at("spool.path"), ": ");
}

TEST(Config, FullFileSetsEveryField) {
  const std::string text = R"(# every key, none at its default
node = "fs1"
state_dir = "/srv/recsync/state/"

[log]
level = "debug"
components = { watch = "trace", peer = "off" }

[control]
socket = "/run/rs.sock"
group = ""

[spool]
path = "/var/lib/freeswitch/recordings"
include = ["*.wav", "*.mp3"]
exclude = ["tmp/*"]
settle = "2s500ms"
open_check = "proc"
usage_warn = 60
usage_crit = 95

[archive]
path = "/storage/recordings"
layout = "flat"
workers = 16
retry_max = "5m"

[retention]
keep = "30d"
interval = "10m"
pace = 0
tmp_grace = "12h"
clock_tolerance = "0"
audit_log = "/var/log/recsync/audit.log"

[replication]
listen = "[::]:7474"
bandwidth = "10MiB/s"
schedule = "08:00-20:00=20MB/s, 20:00-08:00=0"

[[peer]]
name = "fs2"
address = "192.168.1.109:7373"
fingerprint = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

[[peer]]
name = "fs3.site-b"
address = "[fe80::1%eth0]:7373"
fingerprint = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

[metrics]
listen = ""
)";
  auto r = parse(text);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const Config& c = *r;
  EXPECT_EQ(c.node, "fs1");
  EXPECT_EQ(c.state_dir, "/srv/recsync/state");  // trailing '/' dropped
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.components,
            (std::map<std::string, std::string>{{"watch", "trace"}, {"peer", "off"}}));
  EXPECT_EQ(c.control.socket, "/run/rs.sock");
  EXPECT_EQ(c.control.group, "");
  EXPECT_EQ(c.spool.path, "/var/lib/freeswitch/recordings");
  EXPECT_EQ(c.spool.include, (std::vector<std::string>{"*.wav", "*.mp3"}));
  EXPECT_EQ(c.spool.exclude, std::vector<std::string>{"tmp/*"});
  EXPECT_EQ(c.spool.settle, Millis{2500});
  EXPECT_EQ(c.spool.open_check, "proc");
  EXPECT_EQ(c.spool.usage_warn_pct, 60);
  EXPECT_EQ(c.spool.usage_crit_pct, 95);
  EXPECT_EQ(c.archive.path, "/storage/recordings");
  EXPECT_EQ(c.archive.layout, "flat");
  EXPECT_EQ(c.archive.workers, 16);
  EXPECT_EQ(c.archive.retry_max, Millis{300'000});
  EXPECT_EQ(c.retention.keep, Millis{30LL * 86'400'000});
  EXPECT_EQ(c.retention.interval, Millis{600'000});
  EXPECT_EQ(c.retention.pace, 0);
  EXPECT_EQ(c.retention.tmp_grace, Millis{12LL * 3'600'000});
  EXPECT_EQ(c.retention.clock_tolerance, Millis{0});
  EXPECT_EQ(c.retention.audit_log, "/var/log/recsync/audit.log");
  EXPECT_EQ(c.audit_log_path(), "/var/log/recsync/audit.log");
  EXPECT_EQ(c.db_path(), "/srv/recsync/state/state.db");
  EXPECT_EQ(c.replication.listen, "[::]:7474");
  EXPECT_EQ(c.replication.bandwidth_bps, 10u << 20);
  EXPECT_EQ(c.replication.schedule_text, "08:00-20:00=20MB/s, 20:00-08:00=0");
  ASSERT_EQ(c.replication.schedule.entries().size(), 2u);
  EXPECT_EQ(c.replication.schedule.rate_at(9 * 60, 1), 20'000'000u);
  EXPECT_EQ(c.replication.schedule.rate_at(21 * 60, 1), 0u);
  ASSERT_EQ(c.peers.size(), 2u);
  EXPECT_EQ(c.peers[0].name, "fs2");
  EXPECT_EQ(c.peers[0].address, "192.168.1.109:7373");
  EXPECT_EQ(c.peers[0].fingerprint,
            "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c.peers[1].name, "fs3.site-b");
  EXPECT_EQ(c.peers[1].address, "[fe80::1%eth0]:7373");
  EXPECT_EQ(c.metrics.listen, "");
}

TEST(Config, ValueVariants) {
  struct Case {
    std::string text;
    std::string field;  // expected line of dump()
  };
  const Case cases[] = {
      {kBase + "[replication]\nbandwidth = 0\n", "replication.bandwidth=0"},
      {kBase + "[replication]\nbandwidth = \"0\"\n", "replication.bandwidth=0"},
      {kBase + "[replication]\nbandwidth = \"1.5GB\"\n", "replication.bandwidth=1500000000"},
      {kBase + "[retention]\nkeep = 0\n", "retention.keep=0"},
      {kBase + "[retention]\nkeep = \"0\"\n", "retention.keep=0"},
      {kBase + "[replication]\nlisten = \"127.0.0.1:0\"\n", "replication.listen=127.0.0.1:0"},
      {kBase + "[metrics]\nlisten = \"[::1]:9465\"\n", "metrics.listen=[::1]:9465"},
      {"[spool]\npath = \"/a/b/../c/\"\n[archive]\npath = \"/a/b\"\n", "spool.path=/a/c"},
      {"[spool]\npath = \"/spool\"\n[archive]\npath = \"/spool2\"\n", "archive.path=/spool2"},
      {"spool.path = \"/s\"\narchive.path = \"/a\"\n", "spool.path=/s"},  // dotted keys
      {kBase + "[log.components]\narchive = \"warn\"\n", "log.components.archive=warn"},
      {"peer = [{ name = \"b\", address = \"10.0.0.2:1\", fingerprint = \"" + kFp + "\" }]\n" +
           kBase,
       "peer=b,10.0.0.2:1," + kFp},
  };
  for (const Case& c : cases) {
    auto r = parse(c.text);
    ASSERT_TRUE(r.is_ok()) << c.text << "\n" << r.status().message();
    EXPECT_NE(dump(*r).find("\n" + c.field + "\n"), std::string::npos) << c.text << dump(*r);
  }
}

// Every error path, with the exact message (and so the line) it produces.
TEST(Config, Errors) {
  struct Case {
    std::string text;
    std::string msg;
  };
  const std::string fp_err =
      "expected \"sha256:\" and 64 lowercase hex digits, as printed by `recsync id` on the peer";
  const std::string addr_tail = " (expected host:port or [v6]:port)";
  const Case cases[] = {
      // Unknown keys and sections, with suggestions.
      {"[spool]\npath = \"/spool\"\nsetle = \"2s\"\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: unknown key 'setle' in [spool] (did you mean 'settle'?)"},
      {"nod = \"x\"\n" + kBase, "test.conf:1: unknown key 'nod' (did you mean 'node'?)"},
      {"colour = \"x\"\n" + kBase, "test.conf:1: unknown key 'colour'"},
      {kBase + "[log]\nlevl = \"info\"\n",
       "test.conf:6: unknown key 'levl' in [log] (did you mean 'level'?)"},
      {kBase + "[retention]\nfoo = 1\n", "test.conf:6: unknown key 'foo' in [retention]"},
      {kBase + "[spoool]\nx = 1\n",
       "test.conf:5: unknown section [spoool] (did you mean [spool]?)"},
      {kBase + "[frobnicate]\n", "test.conf:5: unknown section [frobnicate]"},
      {kBase + "[spool.extra]\nx = 1\n", "test.conf:5: unknown key 'extra' in [spool]"},
      {kBase + "[[peer]]\nname = \"b\"\nadress = \"10.0.0.2:1\"\n",
       "test.conf:7: unknown key 'adress' in [[peer]] (did you mean 'address'?)"},
      {kBase + "[log]\ncomponents = { wach = \"debug\" }\n",
       "test.conf:6: log.components: unknown component 'wach' (known: daemon, watch, archive, "
       "retention, state, control, peer, replication, delta, backfill, objstore, cli, metrics)"},
      // Sections of the wrong shape.
      {"spool = 3\n[archive]\npath = \"/archive\"\n",
       "test.conf:1: 'spool' must be a section ([spool]), not an integer"},
      {"[[spool]]\npath = \"/spool\"\n[archive]\npath = \"/archive\"\n",
       "test.conf:1: 'spool' must be a section ([spool]), not an array"},
      {kBase + "[peer]\nname = \"b\"\n",
       "test.conf:5: peers are written [[peer]] (one block per peer), not [peer]"},
      {"peer = 3\n" + kBase,
       "test.conf:1: peers are written [[peer]] (one block per peer), not a single value"},
      {"peer = [1]\n" + kBase,
       "test.conf:1: peer: expected a table for each peer (got an integer)"},
      // Wrong types.
      {"node = 1\n" + kBase, "test.conf:1: node: expected a string (got an integer)"},
      {"state_dir = true\n" + kBase, "test.conf:1: state_dir: expected a string (got a boolean)"},
      {kBase + "[log]\nlevel = 3\n", "test.conf:6: log.level: expected a string (got an integer)"},
      {kBase + "[log]\ncomponents = \"debug\"\n",
       "test.conf:6: log.components: expected a table of component = level (got a string)"},
      {kBase + "[control]\nsocket = 1\n",
       "test.conf:6: control.socket: expected a string (got an integer)"},
      {kBase + "[control]\ngroup = [\"a\"]\n",
       "test.conf:6: control.group: expected a string (got an array)"},
      {"[spool]\npath = 1\n[archive]\npath = \"/archive\"\n",
       "test.conf:2: spool.path: expected a string (got an integer)"},
      {"[spool]\npath = \"/spool\"\ninclude = \"*.wav\"\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.include: expected an array of strings (got a string)"},
      {"[spool]\npath = \"/spool\"\ninclude = [\"*.wav\", 1]\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.include: expected an array of strings (found an integer)"},
      {"[spool]\npath = \"/spool\"\nexclude = [\"\"]\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.exclude: patterns must not be empty"},
      {"[spool]\npath = \"/spool\"\nsettle = 1.5\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.settle: expected a duration string such as \"30s\" (got a float)"},
      {"[spool]\npath = \"/spool\"\nusage_warn = \"70\"\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.usage_warn: expected an integer (got a string)"},
      {"[spool]\npath = \"/spool\"\nusage_crit = 90.0\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.usage_crit: expected an integer (got a float)"},
      {"[spool]\npath = \"/spool\"\n[archive]\npath = \"/archive\"\nworkers = \"2\"\n",
       "test.conf:5: archive.workers: expected an integer (got a string)"},
      {kBase + "[replication]\nbandwidth = true\n",
       "test.conf:6: replication.bandwidth: expected a rate string such as \"50MB/s\" (got a "
       "boolean)"},
      {kBase + "[replication]\nlisten = 7373\n",
       "test.conf:6: replication.listen: expected a string (got an integer)"},
      {kBase + "[metrics]\nlisten = false\n",
       "test.conf:6: metrics.listen: expected a string (got a boolean)"},
      {kBase + "[[peer]]\nname = 2\n",
       "test.conf:6: peer.name: expected a string (got an integer)"},
      {kBase + "[retention]\nkeep = 1979-05-27\n",
       "test.conf:6: retention.keep: expected a duration string such as \"30s\" (got a date)"},
      // Bad values and ranges.
      {kBase + "[log]\nlevel = \"verbose\"\n",
       "test.conf:6: log.level: must be one of trace, debug, info, warn, error, off (got "
       "'verbose')"},
      {kBase + "[log]\ncomponents = { watch = \"loud\" }\n",
       "test.conf:6: log.components.watch: must be one of trace, debug, info, warn, error, off "
       "(got 'loud')"},
      {"[spool]\npath = \"/spool\"\nsettle = 5\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.settle: a duration needs a unit, e.g. \"5s\" (got 5)"},
      {"[spool]\npath = \"/spool\"\nsettle = \"5x\"\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.settle: invalid duration '5x': unknown unit 'x' (use ms, s, m, h, d)"},
      {"[spool]\npath = \"/spool\"\nopen_check = \"magic\"\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.open_check: must be one of auto, lease, proc, none (got 'magic')"},
      {"[spool]\npath = \"/spool\"\nusage_warn = 0\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.usage_warn: must be between 1 and 100 (got 0)"},
      {"[spool]\npath = \"/spool\"\nusage_crit = 101\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.usage_crit: must be between 1 and 100 (got 101)"},
      {"[spool]\npath = \"/spool\"\nusage_warn = 90\nusage_crit = 80\n[archive]\npath = "
       "\"/archive\"\n",
       "test.conf:3: spool.usage_warn (90) must be below spool.usage_crit (80)"},
      {"[spool]\npath = \"/spool\"\nusage_warn = 90\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: spool.usage_warn (90) must be below spool.usage_crit (90)"},
      {"[spool]\npath = \"/spool\"\n\nusage_crit = 50\n[archive]\npath = \"/archive\"\n",
       "test.conf:4: spool.usage_warn (70) must be below spool.usage_crit (50)"},
      {kBase + "layout = \"tree\"\n",
       "test.conf:5: archive.layout: must be one of date, flat (got 'tree')"},
      {kBase + "workers = 0\n", "test.conf:5: archive.workers: must be between 1 and 16 (got 0)"},
      {kBase + "workers = 17\n", "test.conf:5: archive.workers: must be between 1 and 16 (got 17)"},
      {kBase + "retry_max = \"0\"\n", "test.conf:5: archive.retry_max: must be greater than 0"},
      {kBase + "[retention]\nkeep = \"forever\"\n",
       "test.conf:6: retention.keep: invalid duration 'forever': expected a number followed by a "
       "unit (ms, s, m, h, d)"},
      {kBase + "[retention]\ninterval = \"500ms\"\n",
       "test.conf:6: retention.interval: must be at least 1s (got 500ms)"},
      {kBase + "[retention]\ninterval = 0\n",
       "test.conf:6: retention.interval: must be at least 1s (got 0s)"},
      {kBase + "[retention]\npace = -1\n",
       "test.conf:6: retention.pace: must be between 0 and 1000000 (got -1)"},
      {kBase + "[retention]\ntmp_grace = \"0\"\n",
       "test.conf:6: retention.tmp_grace: must be greater than 0"},
      {kBase + "[retention]\nclock_tolerance = \"1y\"\n",
       "test.conf:6: retention.clock_tolerance: invalid duration '1y': unknown unit 'y' (use ms, "
       "s, m, h, d)"},
      {kBase + "[retention]\nkeep = \"999999999999d\"\n",
       "test.conf:6: retention.keep: invalid duration '999999999999d': too large"},
      {kBase + "[retention]\naudit_log = \"audit.log\"\n",
       "test.conf:6: retention.audit_log: must be an absolute path (got 'audit.log')"},
      {kBase + "[replication]\nbandwidth = 5\n",
       "test.conf:6: replication.bandwidth: a number alone must be 0 (no cap); write a rate such "
       "as \"50MB/s\" (got 5)"},
      {kBase + "[replication]\nbandwidth = \"fast\"\n",
       "test.conf:6: replication.bandwidth: invalid rate 'fast': expected a number followed by a "
       "unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"},
      {kBase + "[replication]\nbandwidth = \"50Mb/s\"\n",
       "test.conf:6: replication.bandwidth: invalid rate '50Mb/s': unknown unit 'Mb' (use B, KB, "
       "MB, GB, TB or KiB, MiB, GiB, TiB)"},
      {kBase + "[replication]\nbandwidth = \"99999999TB/s\"\n",
       "test.conf:6: replication.bandwidth: invalid rate '99999999TB/s': too large"},
      {kBase + "[replication]\nschedule = 5\n",
       "test.conf:6: replication.schedule: expected a string such as "
       "\"08:00-20:00=20MB/s,20:00-08:00=0\" (got an integer)"},
      {kBase + "[replication]\nschedule = \"08:00-20:00=1MB,19:00-21:00=2MB\"\n",
       "test.conf:6: replication.schedule: schedule entry \"19:00-21:00=2MB\": overlaps "
       "08:00-20:00 at 19:00"},
      {kBase + "[replication]\nschedule = \"8-20=1MB\"\n",
       "test.conf:6: replication.schedule: schedule entry \"8-20=1MB\": time \"8\" is not HH:MM"},
      // Addresses.
      {kBase + "[replication]\nlisten = \"7373\"\n",
       "test.conf:6: replication.listen: invalid address '7373': missing ':port'" + addr_tail},
      {kBase + "[replication]\nlisten = \":7373\"\n",
       "test.conf:6: replication.listen: invalid address ':7373': missing host" + addr_tail},
      {kBase + "[replication]\nlisten = \"::1:7373\"\n",
       "test.conf:6: replication.listen: invalid address '::1:7373': an IPv6 address must be in "
       "brackets, e.g. [::1]:7373" +
           addr_tail},
      {kBase + "[replication]\nlisten = \"[::1:7373\"\n",
       "test.conf:6: replication.listen: invalid address '[::1:7373': missing ']'" + addr_tail},
      {kBase + "[replication]\nlisten = \"[::1]7373\"\n",
       "test.conf:6: replication.listen: invalid address '[::1]7373': missing ':port' after ']'" +
           addr_tail},
      {kBase + "[replication]\nlisten = \"[zz]:1\"\n",
       "test.conf:6: replication.listen: invalid address '[zz]:1': 'zz' is not an IPv6 address" +
           addr_tail},
      {kBase + "[replication]\nlisten = \"999.1.1.1:1\"\n",
       "test.conf:6: replication.listen: invalid address '999.1.1.1:1': '999.1.1.1' is not an "
       "IPv4 address" +
           addr_tail},
      {kBase + "[replication]\nlisten = \"localhost:7373\"\n",
       "test.conf:6: replication.listen: invalid address 'localhost:7373': 'localhost' is a host "
       "name; use a numeric address (names are not resolved)" +
           addr_tail},
      {kBase + "[replication]\nlisten = \"ho st:1\"\n",
       "test.conf:6: replication.listen: invalid address 'ho st:1': 'ho st' is not a valid host "
       "name" +
           addr_tail},
      {kBase + "[replication]\nlisten = \"1.2.3.4:http\"\n",
       "test.conf:6: replication.listen: invalid address '1.2.3.4:http': 'http' is not a port "
       "number" +
           addr_tail},
      {kBase + "[replication]\nlisten = \"1.2.3.4:\"\n",
       "test.conf:6: replication.listen: invalid address '1.2.3.4:': '' is not a port number" +
           addr_tail},
      {kBase + "[replication]\nlisten = \"1.2.3.4:65536\"\n",
       "test.conf:6: replication.listen: invalid address '1.2.3.4:65536': port 65536 is out of "
       "range" +
           addr_tail},
      {kBase + "[metrics]\nlisten = \"nope\"\n",
       "test.conf:6: metrics.listen: invalid address 'nope': missing ':port'" + addr_tail},
      {kBase + peer_block("fs2", "\"10.0.0.2:0\""),
       "test.conf:7: peer.address: invalid address '10.0.0.2:0': port 0 is out of range" +
           addr_tail},
      {kBase + peer_block("fs2", "\"\""),
       "test.conf:7: peer.address: invalid address '': missing ':port'" + addr_tail},
      // Peers.
      {kBase + peer_block("fs2", "\"10.0.0.2:1\"", "\"sha256:abc\""),
       "test.conf:8: peer.fingerprint: " + fp_err + " (got 'sha256:abc')"},
      {kBase + peer_block("fs2", "\"10.0.0.2:1\"", "\"sha256:" + std::string(64, 'A') + "\""),
       "test.conf:8: peer.fingerprint: " + fp_err + " (got 'sha256:" + std::string(64, 'A') + "')"},
      {kBase + peer_block("fs2", "\"10.0.0.2:1\"", "\"md5:" + std::string(64, 'a') + "\""),
       "test.conf:8: peer.fingerprint: " + fp_err + " (got 'md5:" + std::string(64, 'a') + "')"},
      {kBase + peer_block("fs2", "\"10.0.0.2:1\"", "\"" + std::string(64, 'a') + "\""),
       "test.conf:8: peer.fingerprint: " + fp_err + " (got '" + std::string(64, 'a') + "')"},
      {kBase + peer_block("fs2", "\"10.0.0.2:1\"", "\"" + kFp + "a\""),
       "test.conf:8: peer.fingerprint: " + fp_err + " (got '" + kFp + "a')"},
      {kBase + peer_block("-fs2"),
       "test.conf:6: peer.name: '-fs2' is not a valid node name (1-64 letters, digits, '.', '_', "
       "'-'; starting with a letter or digit)"},
      {"node = \"fs 1\"\n" + kBase,
       "test.conf:1: node: 'fs 1' is not a valid node name (1-64 letters, digits, '.', '_', '-'; "
       "starting with a letter or digit)"},
      {"node = \"\"\n" + kBase,
       "test.conf:1: node: '' is not a valid node name (1-64 letters, digits, '.', '_', '-'; "
       "starting with a letter or digit)"},
      {kBase + "[[peer]]\nname = \"fs2\"\naddress = \"10.0.0.2:1\"\n",
       "test.conf:5: missing required key 'fingerprint' in [[peer]]"},
      {kBase + "[[peer]]\n", "test.conf:5: missing required key 'name' in [[peer]]"},
      {"node = \"fs1\"\n" + kBase + peer_block("fs2") + "\n" + peer_block("fs2", "\"10.0.0.3:2\""),
       "test.conf:12: peer.name: duplicate peer 'fs2' (first defined at line 7)"},
      {"node = \"fs1\"\n" + kBase + peer_block("fs1"),
       "test.conf:7: peer.name: 'fs1' is this node's own name (node = \"fs1\")"},
      // Paths.
      {"[spool]\npath = \"spool\"\n[archive]\npath = \"/archive\"\n",
       "test.conf:2: spool.path: must be an absolute path (got 'spool')"},
      {"[spool]\npath = \"\"\n[archive]\npath = \"/archive\"\n",
       "test.conf:2: spool.path: must be an absolute path (got '')"},
      {"[spool]\npath = \"/spool\"\n[archive]\npath = \"./archive\"\n",
       "test.conf:4: archive.path: must be an absolute path (got './archive')"},
      {"state_dir = \"var/lib/recsync\"\n" + kBase,
       "test.conf:1: state_dir: must be an absolute path (got 'var/lib/recsync')"},
      {kBase + "[control]\nsocket = \"recsyncd.sock\"\n",
       "test.conf:6: control.socket: must be an absolute path (got 'recsyncd.sock')"},
      {kBase + "[control]\nsocket = \"/" + std::string(107, 's') + "\"\n",
       "test.conf:6: control.socket: path is too long for a unix socket (at most 107 bytes)"},
      {"[spool]\npath = \"/data\"\n[archive]\npath = \"/data/archive\"\n",
       "test.conf:4: archive.path: '/data/archive' is inside spool.path '/data' (they must not be "
       "nested)"},
      {"[spool]\npath = \"/data/spool\"\n[archive]\npath = \"/data\"\n",
       "test.conf:4: archive.path: '/data' contains spool.path '/data/spool' (they must not be "
       "nested)"},
      {"[spool]\npath = \"/data\"\n[archive]\npath = \"/data/\"\n",
       "test.conf:4: archive.path: same folder as spool.path ('/data')"},
      {"[spool]\npath = \"/data/x/../spool\"\n[archive]\n\npath = \"/data/spool/a\"\n",
       "test.conf:5: archive.path: '/data/spool/a' is inside spool.path '/data/spool' (they must "
       "not be nested)"},
      {"[spool]\npath = \"/\"\n[archive]\npath = \"/archive\"\n",
       "test.conf:4: archive.path: '/archive' is inside spool.path '/' (they must not be nested)"},
      // Missing required keys: the line of the section header, or none.
      {"", "test.conf: missing required key 'path' in [spool]"},
      {"[spool]\npath = \"/spool\"\n", "test.conf: missing required key 'path' in [archive]"},
      {"[spool]\npath = \"/spool\"\n\n[archive]\nlayout = \"flat\"\n",
       "test.conf:4: missing required key 'path' in [archive]"},
      {"[archive]\npath = \"/archive\"\n[spool]\nsettle = \"1s\"\n",
       "test.conf:3: missing required key 'path' in [spool]"},
      // The first problem in file order wins (toml++ iterates keys by name).
      {"zzz = 1\n[spool]\npath = \"rel\"\naaa = 1\n[archive]\npath = \"/archive\"\n",
       "test.conf:1: unknown key 'zzz'"},
      {"[spool]\npath = \"/spool\"\nzzz = 1\naaa = 1\n[archive]\npath = \"/archive\"\n",
       "test.conf:3: unknown key 'zzz' in [spool]"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(error_of(c.text), c.msg) << "---\n" << c.text << "---";
  }
}

// Syntax errors (and what toml++ itself refuses, such as a table defined
// twice) carry toml++'s line and description.
TEST(Config, SyntaxErrorsCarryTheLine) {
  struct Case {
    std::string text;
    std::string prefix;
  };
  const Case cases[] = {
      {"[spool\npath = \"/spool\"\n", "test.conf:1: "},
      {kBase + "[retention]\nkeep = 15d\n", "test.conf:6: "},
      {"[spool]\npath = \"/a\"\npath = \"/b\"\n", "test.conf:3: "},
      {kBase + "[spool]\nsettle = \"1s\"\n", "test.conf:5: "},
      {kBase + "\n\nnode = \"unterminated\n", "test.conf:7: "},
      {"node = \"a\" garbage\n", "test.conf:1: "},
  };
  for (const Case& c : cases) {
    std::string m = error_of(c.text);
    EXPECT_EQ(m.rfind(c.prefix, 0), 0u) << c.text << "\n=> " << m;
    EXPECT_GT(m.size(), c.prefix.size() + 5) << m;  // a description follows
  }
}

TEST(Config, DefaultNodeIsTheShortHostname) {
  auto r = parse(kBase);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->node, short_hostname());
  EXPECT_EQ(r->node.find('.'), std::string::npos);
  // The default name also takes part in the peer checks.
  auto dup = parse(kBase + peer_block(short_hostname()));
  ASSERT_FALSE(dup.is_ok());
  EXPECT_NE(dup.status().message().find("is this node's own name"), std::string::npos)
      << dup.status().message();
}

TEST(Config, NeverThrowsOnOddInput) {
  const std::string inputs[] = {std::string("\0\0\0", 3),
                                "\xff\xfe",
                                "[[[",
                                "= 1",
                                "a.b.c.d.e = 1",
                                "node = \"\xc3\x28\"",
                                std::string(10000, '['),
                                "x = [" + std::string(5000, '[') + std::string(5000, ']') + "]"};
  for (const std::string& in : inputs) {
    auto r = parse(in);
    EXPECT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().message().rfind("test.conf", 0), 0u) << r.status().message();
  }
}

TEST(Config, LoadConfigReadsFilesAndFollowsSymlinks) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(::testing::TempDir()) / ("recsync_config_" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path file = dir / "recsyncd.conf";
  { std::ofstream(file) << "node = \"fs9\"\n" << kBase; }
  auto r = load_config(file.string());
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->node, "fs9");
  EXPECT_EQ(r->source, file.string());

  fs::path link = dir / "link.conf";
  fs::create_symlink(file, link);
  auto l = load_config(link.string());
  ASSERT_TRUE(l.is_ok()) << l.status().message();
  EXPECT_EQ(l->node, "fs9");

  { std::ofstream(file) << kBase << "[spool]\n"; }
  auto bad = load_config(file.string());
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().message().rfind(file.string() + ":5: ", 0), 0u) << bad.status().message();

  auto missing = load_config((dir / "absent.conf").string());
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), Status::Code::kNotFound);
  EXPECT_NE(missing.status().message().find("absent.conf"), std::string::npos);

  { std::ofstream(file) << "# " << std::string(2 << 20, 'x') << "\n"; }
  auto big = load_config(file.string());
  ASSERT_FALSE(big.is_ok());
  EXPECT_NE(big.status().message().find("too large"), std::string::npos);
  fs::remove_all(dir);
}

// config_keys() and the parser must agree: every listed key parses at its
// place with a valid value, its documented default is the real default, a
// misspelt variant is refused with a suggestion, and every key the struct
// has is listed.
std::string doc_with(const std::string& key, const std::string& value) {
  size_t dot = key.find('.');
  std::string section = dot == std::string::npos ? "" : key.substr(0, dot);
  std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
  std::map<std::string, std::string> top = {{"node", "\"n1\""}};
  std::map<std::string, std::map<std::string, std::string>> secs = {
      {"spool", {{"path", "\"/spool\""}}}, {"archive", {{"path", "\"/archive\""}}}};
  std::map<std::string, std::string> peer;
  if (section == "object_store") {  // its required keys, then the one under test
    secs["object_store"] = {{"endpoint", "\"http://127.0.0.1:7480\""},
                            {"bucket", "\"recordings\""},
                            {"credentials", "\"/etc/recsync/s3\""}};
  }
  if (section.empty()) {
    top[leaf] = value;
  } else if (section == "peer") {
    peer = {
        {"name", "\"p1\""}, {"address", "\"127.0.0.1:7373\""}, {"fingerprint", "\"" + kFp + "\""}};
    peer[leaf] = value;
  } else {
    secs[section][leaf] = value;
  }
  std::string out;
  for (const auto& [k, v] : top) out += k + " = " + v + "\n";
  for (const auto& [s, kv] : secs) {
    out += "[" + s + "]\n";
    for (const auto& [k, v] : kv) out += k + " = " + v + "\n";
  }
  if (!peer.empty()) {
    out += "[[peer]]\n";
    for (const auto& [k, v] : peer) out += k + " = " + v + "\n";
  }
  return out;
}

TEST(Config, ScrubSection) {
  auto c = parse(kBase + "[scrub]\ninterval = \"0\"\nrate = \"5MB/s\"\nrepair = false\n");
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->scrub.interval.count(), 0);
  EXPECT_EQ(c->scrub.rate_bps, 5'000'000u);
  EXPECT_FALSE(c->scrub.repair);
  auto d = parse(kBase);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->scrub.interval.count(), 7LL * 24 * 3600 * 1000);
  EXPECT_EQ(d->scrub.rate_bps, 20'000'000u);
  EXPECT_TRUE(d->scrub.repair);
  EXPECT_NE(error_of(kBase + "[scrub]\nrate = \"fast\"\n").find("test.conf:6:"), std::string::npos)
      << error_of(kBase + "[scrub]\nrate = \"fast\"\n");
  EXPECT_NE(error_of(kBase + "[scrub]\n\ninterval = \"soon\"\n").find("test.conf:7:"),
            std::string::npos);
}

TEST(ConfigKeys, AgreeWithTheParser) {
  // Values for keys without a default (required or computed).
  const std::map<std::string, std::string> samples = {
      {"node", "\"fs1\""},
      {"spool.path", "\"/srv/spool\""},
      {"archive.path", "\"/srv/archive\""},
      {"retention.audit_log", "\"/var/log/audit.log\""},
      {"peer.name", "\"fs2\""},
      {"peer.address", "\"[::1]:7373\""},
      {"peer.fingerprint", "\"sha256:" + std::string(64, 'b') + "\""},
      {"object_store.endpoint", "\"https://s3.example:443\""},
      {"object_store.bucket", "\"other\""},
      {"object_store.credentials", "\"systemd:s3\""},
      {"object_store.keep_local", "\"2d\""},
  };
  auto base = parse(doc_with("node", "\"n1\""));
  ASSERT_TRUE(base.is_ok()) << base.status().message();
  const std::string base_dump = dump(*base);
  // The object_store keys compare against a file with the section present.
  auto base_os = parse(doc_with("object_store.region", "\"us-east-1\""));
  ASSERT_TRUE(base_os.is_ok()) << base_os.status().message();
  const std::string base_os_dump = dump(*base_os);

  std::set<std::string> names;
  ASSERT_FALSE(config_keys().empty());
  for (const ConfigKey& k : config_keys()) {
    std::string name = k.name;
    SCOPED_TRACE(name);
    EXPECT_TRUE(names.insert(name).second) << "listed twice";
    EXPECT_GT(std::string(k.doc).size(), 10u);
    std::string value = k.default_;
    if (value.empty()) {
      auto it = samples.find(name);
      ASSERT_NE(it, samples.end()) << "no default and no sample value in this test";
      value = it->second;
    }
    auto r = parse(doc_with(name, value));
    ASSERT_TRUE(r.is_ok()) << doc_with(name, value) << r.status().message();
    const std::string& want = name.rfind("object_store.", 0) == 0 ? base_os_dump : base_dump;
    if (std::string(k.default_).empty()) {
      EXPECT_NE(dump(*r), want) << "the sample value did not land anywhere";
    } else {
      EXPECT_EQ(dump(*r), want) << "documented default differs from the real one";
    }

    // A misspelling of the key is refused and the right name suggested.
    size_t dot = name.find('.');
    std::string section = dot == std::string::npos ? "" : name.substr(0, dot);
    std::string leaf = dot == std::string::npos ? name : name.substr(dot + 1);
    std::string where = section.empty()     ? ""
                        : section == "peer" ? " in [[peer]]"
                                            : " in [" + section + "]";
    std::string bad =
        error_of(doc_with(section.empty() ? leaf + "x" : section + "." + leaf + "x", value));
    EXPECT_NE(bad.find("unknown key '" + leaf + "x'" + where + " (did you mean '" + leaf + "'?)"),
              std::string::npos)
        << bad;
  }
  // Every field of the struct has its key (a new field needs a line here and
  // an entry in config_keys()).
  const char* expected[] = {"node",
                            "state_dir",
                            "log.level",
                            "log.components",
                            "control.socket",
                            "control.group",
                            "spool.path",
                            "spool.include",
                            "spool.exclude",
                            "spool.settle",
                            "spool.open_check",
                            "spool.usage_warn",
                            "spool.usage_crit",
                            "archive.path",
                            "archive.layout",
                            "archive.workers",
                            "archive.retry_max",
                            "retention.keep",
                            "retention.interval",
                            "retention.pace",
                            "retention.tmp_grace",
                            "retention.clock_tolerance",
                            "retention.audit_log",
                            "replication.listen",
                            "replication.bandwidth",
                            "replication.schedule",
                            "peer.name",
                            "peer.address",
                            "peer.fingerprint",
                            "metrics.listen",
                            "scrub.interval",
                            "scrub.rate",
                            "scrub.repair",
                            "object_store.endpoint",
                            "object_store.bucket",
                            "object_store.region",
                            "object_store.prefix",
                            "object_store.ca_file",
                            "object_store.credentials",
                            "object_store.keep_local",
                            "object_store.keep_fetched",
                            "object_store.object_lock",
                            "object_store.part_size",
                            "object_store.multipart_threshold",
                            "object_store.uploads",
                            "object_store.upload_warn",
                            "object_store.retry_max"};
  EXPECT_EQ(names, std::set<std::string>(std::begin(expected), std::end(expected)));
  // Documentation order: sections are contiguous, as in SPEC.md section 7.
  std::vector<std::string> order;
  for (const ConfigKey& k : config_keys()) {
    std::string n = k.name;
    std::string s = n.find('.') == std::string::npos ? "" : n.substr(0, n.find('.'));
    if (order.empty() || order.back() != s) order.push_back(s);
  }
  EXPECT_EQ(order,
            (std::vector<std::string>{"", "log", "control", "spool", "archive", "retention",
                                      "replication", "peer", "metrics", "scrub", "object_store"}));
}

TEST(Config, ObjectStoreSection) {
  const std::string os =
      "[object_store]\nendpoint = \"https://s3.lan:8443/\"\nbucket = \"rec-ords\"\n"
      "prefix = \"fsA/\"\ncredentials = \"/etc/recsync/../recsync/s3\"\nkeep_local = \"2d\"\n"
      "object_lock = true\npart_size = \"8MiB\"\nmultipart_threshold = 33554432\n";
  auto r = parse(kBase + os);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const auto& o = r->object_store;
  EXPECT_TRUE(o.enabled);
  EXPECT_EQ(o.endpoint, "https://s3.lan:8443");
  EXPECT_EQ(o.bucket, "rec-ords");
  EXPECT_EQ(o.prefix, "fsA/");
  EXPECT_EQ(o.credentials, "/etc/recsync/s3");
  EXPECT_EQ(o.keep_local_or(r->retention.keep), Millis(2LL * 86'400'000));
  EXPECT_TRUE(o.object_lock);
  EXPECT_EQ(o.part_size, 8ull << 20);
  EXPECT_EQ(o.multipart_threshold, 32ull << 20);
  EXPECT_FALSE(parse(kBase)->object_store.enabled) << "no section: no tier";
  EXPECT_EQ(parse(kBase + "[object_store]\nendpoint = \"http://h:1\"\nbucket = \"bbb\"\n"
                          "credentials = \"systemd:s3\"\n")
                ->object_store.keep_local_or(Millis(5)),
            Millis(5))
      << "keep_local defaults to retention.keep";

  const std::string ok =
      "[object_store]\nendpoint = \"http://h:1\"\nbucket = \"bbb\"\ncredentials = \"/c\"\n";
  const std::pair<std::string, std::string> errors[] = {
      {kBase + "[object_store]\nbucket = \"bbb\"\ncredentials = \"/c\"\n",
       "test.conf:5: missing required key 'endpoint' in [object_store]"},
      {kBase + "[object_store]\nendpoint = \"http://h:1\"\nbucket = \"bbb\"\n",
       "missing required key 'credentials' in [object_store]"},
      {kBase + ok + "secret_key = \"x\"\n",
       "test.conf:9: unknown key 'secret_key' in [object_store]"},
      {kBase + "[object_store]\nendpoint = \"ftp://h\"\n",
       "test.conf:6: object_store.endpoint: must start"},
      {kBase + "[object_store]\nendpoint = \"http://h/path\"\n", "no path, query or user info"},
      {kBase + "[object_store]\nbucket = \"No_Caps\"\n",
       "test.conf:6: object_store.bucket: 'No_Caps'"},
      {kBase + "[object_store]\ncredentials = \"s3.cred\"\n", "must be an absolute path"},
      {kBase + "[object_store]\ncredentials = \"systemd:a/b\"\n", "single file name"},
      {kBase + "[object_store]\nprefix = \"/abs\"\n", "must not start with '/'"},
      {kBase + "[object_store]\nprefix = \"a//b\"\n", "empty, '.' or '..' segment"},
      {kBase + "[object_store]\nprefix = \"a/../b\"\n", "empty, '.' or '..' segment"},
      {kBase + "[object_store]\npart_size = \"1MiB\"\n", "must be between 5 MiB and 5 GiB"},
      {kBase + "[object_store]\nobject_lock = \"yes\"\n", "expected true or false"},
      {kBase + "[retention]\nkeep = \"1d\"\n" + ok + "keep_local = \"2d\"\n",
       "test.conf:11: object_store.keep_local (2d) must not be longer than retention.keep (1d)"},
  };
  for (const auto& [text, want] : errors) {
    std::string e = error_of(text);
    EXPECT_NE(e.find(want), std::string::npos) << "got: " << e << "\nwant: " << want;
  }
}

}  // namespace
}  // namespace recsync
