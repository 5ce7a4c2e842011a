// What the CLI prints about the object-store tier (cli/format.h).
#include <gtest/gtest.h>

#include "cli/format.h"

namespace recsync {
namespace {

using json = nlohmann::json;

TEST(CliObjectStore, StatusLines) {
  json t = json::parse(R"({"enabled": true, "endpoint": "http://10.0.0.9:7480",
    "bucket": "rec", "prefix": "fs1/", "state": "uploading", "object_lock": true,
    "queue": {"files": 3, "bytes": 3145728, "oldest_s": 65}, "rate_bps": 52428800,
    "uploaded_files": 10, "uploaded_bytes": 10485760, "already_present": 1,
    "last_success": "2026-12-01T10:00:00Z", "keep_local_s": 172800,
    "objects": {"files": 500, "bytes": 524288000, "legal_holds": 2},
    "in_flight": {"path": "2026/12/01/a.wav", "size": 1000, "sent_bytes": 500},
    "last_error": "HEAD s3://rec/x: timeout", "last_error_kind": "network",
    "last_error_at": "2026-12-01T09:59:00Z"})");
  const std::string s = human_object_store(t);
  EXPECT_NE(s.find("objstore   s3://rec/fs1/ at http://10.0.0.9:7480: uploading; queue 3 files "
                   "(3 MiB), oldest 1m5s; 50 MiB/s; 10 uploaded (10 MiB) since start, 1 already "
                   "there; last success 2026-12-01T10:00:00Z"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("  objects  500 verified (500 MiB), 2 legal holds; local copies kept 2d; "
                   "Object Lock on"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("  sending  2026/12/01/a.wav (1000 B), 50% sent"), std::string::npos) << s;
  EXPECT_NE(s.find("  error    HEAD s3://rec/x: timeout (network, 2026-12-01T09:59:00Z)"),
            std::string::npos)
      << s;
}

TEST(CliObjectStore, LocateShowsTheObjectAndItsHold) {
  json l = json::array({{{"where", "object_store"},
                         {"path", "s3://rec/fs1/2026/12/01/a.wav"},
                         {"size", 2048},
                         {"hash", "xxh128:ab"},
                         {"held", true},
                         {"legal_hold", true}}});
  EXPECT_EQ(human_locations(l),
            "object_store\ts3://rec/fs1/2026/12/01/a.wav\t2 KiB\txxh128:ab\theld\tlegal hold\n");
}

TEST(CliObjectStore, DryRunListsObjects) {
  json d = {{"refused", ""},
            {"would_remove", json::array()},
            {"files", 0},
            {"bytes", 0},
            {"held", 0},
            {"offloaded", 2},
            {"unstored", 1},
            {"objects_would_remove",
             {{{"recorded", "2026-11-01T00:00:00Z"}, {"size", 10}, {"key", "fs1/a.wav"}}}},
            {"objects", 1},
            {"object_bytes", 10},
            {"objects_held", 3}};
  const std::string s = human_dry_run(d);
  EXPECT_NE(s.find("of them 2 local copies at keep_local"), std::string::npos) << s;
  EXPECT_NE(s.find("2026-11-01T00:00:00Z\t10 B\tobject fs1/a.wav"), std::string::npos) << s;
  EXPECT_NE(s.find("1 objects (10 B) would be deleted from the object store; 3 kept by holds"),
            std::string::npos)
      << s;
}

}  // namespace
}  // namespace recsync
