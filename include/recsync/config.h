#pragma once
// recsyncd.conf (TOML). SPEC.md section 7 fixes the names; every key, its
// default and its meaning is listed in config_keys() and documented in
// recsyncd.conf(5) and etc/recsyncd.conf (a test keeps the three in step).
//
// Errors are "file:line: reason" (line 0 when the problem is a missing key).
// Unknown keys and bad values are errors, never ignored.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "recsync/schedule.h"
#include "recsync/status.h"
#include "recsync/units.h"

namespace recsync {

struct PeerConfig {
  std::string name;         // required, unique
  std::string address;      // required, "host:port" or "[v6]:port"
  std::string fingerprint;  // required, "sha256:<64 hex>" printed by `recsync id`
};

struct Config {
  std::string source;  // the file this came from
  std::string node;    // default: short hostname
  std::string state_dir = "/var/lib/recsync";

  struct {
    std::string level = "info";                     // trace|debug|info|warn|error|off
    std::map<std::string, std::string> components;  // per-component overrides
  } log;

  struct {
    std::string socket = "/run/recsync/recsyncd.sock";
    std::string group = "recsync";  // may use the socket; "" = root and the daemon's user only
  } control;

  struct {
    std::string path;  // required
    std::vector<std::string> include = {"*.wav"};
    std::vector<std::string> exclude;
    // Quiet time after close before a file is finished. 500 ms: FreeSWITCH
    // closes a recording once, after rewriting its header, and a writer that
    // has it open blocks the take anyway (open_check); settle only covers a
    // writer that closes and reopens at once, and every ms of it is latency
    // to the peer.
    Millis settle{500};
    std::string open_check = "auto";  // auto|lease|proc|none: how a live writer is detected
    int usage_warn_pct = 70;          // spool usage alarms
    int usage_crit_pct = 90;
  } spool;

  struct {
    std::string path;             // required
    std::string layout = "date";  // "date" (YYYY/MM/DD/, UTC) or "flat"
    int workers = 2;              // parallel archive copies
    Millis retry_max{60000};      // backoff cap for failing copies
  } archive;

  struct {
    Millis keep{15LL * 24 * 3600 * 1000};  // "0" = never prune
    Millis interval{3600 * 1000};          // time between retention passes
    int pace = 200;                        // deletions per second, 0 = unpaced
    Millis tmp_grace{24LL * 3600 * 1000};  // abandoned temp files older than this go
    Millis clock_tolerance{3600 *
                           1000};  // refuse pruning when newest recording is this far in the future
    std::string audit_log;         // default: <state_dir>/audit.log
  } retention;

  struct {
    std::string listen = "0.0.0.0:7373";
    uint64_t bandwidth_bps = 50'000'000;  // 0 = no cap
    // The cap by local time of day, e.g. "08:00-20:00=20MB/s" (schedule.h);
    // minutes it does not cover use bandwidth_bps. Empty: no schedule.
    Schedule schedule;
    std::string schedule_text;  // as written, for status and logs
  } replication;

  std::vector<PeerConfig> peers;

  struct {
    std::string listen = "127.0.0.1:9465";  // "" disables
  } metrics;

  // [scrub]: re-reading archived recordings against their stored hash.
  struct {
    Millis interval{7LL * 24 * 3600 * 1000};  // between background passes; 0 = none
    uint64_t rate_bps = 20'000'000;           // read pace; 0 = unpaced
    bool repair = true;                       // pull a damaged recording from a peer
  } scrub;

  // Where each key was written: "spool.path" -> line of its value, and each
  // section's header: "spool" -> line of "[spool]". Keys left at their
  // default have no entry. Filled by the parser; empty for a default Config.
  std::map<std::string, uint32_t> lines;
  // "source:line: " for a key (its own line, else its section's header, else
  // no line: "source: "), the prefix of every message about that key.
  std::string at(const std::string& key) const;
  // [object_store]: the archive tier in an S3 object store (Ceph RGW, MinIO).
  // No section = feature off. Credentials never live here: `credentials`
  // names a file readable only by the daemon, or a systemd credential.
  struct ObjectStore {
    bool enabled = false;              // the section is present
    std::string endpoint;              // required: http(s)://host[:port]
    std::string bucket;                // required
    std::string region = "us-east-1";  // SigV4 scope
    std::string prefix;                // object key = prefix + node + "/" + archive path
    std::string ca_file;               // https: CA bundle ("" = system store)
    std::string credentials;           // required: "/abs/path" or "systemd:NAME"
    // How long the local copy stays once its object is verified in the
    // store (counted from when it reached this disk). Unset: retention.keep.
    std::optional<Millis> keep_local;
    // A local copy that arrived late (fetched back for playback, or from a
    // peer after an outage) stays at least this long past keep_local.
    Millis keep_fetched{24LL * 3600 * 1000};
    bool object_lock = false;                    // holds set Object Lock legal holds
    uint64_t part_size = 16ull << 20;            // multipart part size
    uint64_t multipart_threshold = 64ull << 20;  // files this big or bigger go multipart
    int uploads = 2;                             // uploads in parallel (one connection each)
    Millis upload_warn{15 * 60 * 1000};          // status alarm when the oldest upload waits longer
    Millis retry_max{5 * 60 * 1000};             // backoff cap while the store fails
    Millis keep_local_or(Millis keep) const { return keep_local ? *keep_local : keep; }
  } object_store;

  std::string audit_log_path() const {
    return retention.audit_log.empty() ? state_dir + "/audit.log" : retention.audit_log;
  }
  std::string db_path() const { return state_dir + "/state.db"; }
};

// Parses TOML text. `source` names the file in error messages.
Result<Config> parse_config(const std::string& text, const std::string& source);
// Reads and parses a file.
Result<Config> load_config(const std::string& path);

struct ConfigKey {
  const char* name;      // "spool.settle", "peer.name" for [[peer]] keys, "node" top level
  const char* default_;  // as written in the file; "" when required or computed
  const char* doc;       // one line
};
// Every key the parser accepts, in documentation order.
const std::vector<ConfigKey>& config_keys();

}  // namespace recsync
