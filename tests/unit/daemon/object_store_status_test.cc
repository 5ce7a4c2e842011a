// The object-store part of status (daemon/status.h): JSON fields and alarms
// as a pure function of the tier's snapshot and a time.
#include <gtest/gtest.h>

#include "daemon/status.h"

namespace recsync {
namespace {

using json = nlohmann::json;
constexpr int64_t kNow = 1'750'000'000'000;

StatusInputs base() {
  StatusInputs in;
  in.node = "fs1";
  in.start_ms = kNow - 1000;
  in.retention.settings.policy.keep = Millis(15LL * 86'400'000);
  in.retention.settings.policy.keep_local = Millis(2LL * 86'400'000);
  objtier::TierStatus t;
  t.endpoint = "http://127.0.0.1:7480";
  t.bucket = "recordings";
  t.prefix = "fs/";
  t.object_lock = true;
  t.keep_local_ms = 2LL * 86'400'000;
  t.upload_warn_ms = 15 * 60'000;
  t.upload.state = "idle";
  in.object_store = t;
  return in;
}

std::vector<std::string> texts(const StatusInputs& in) {
  std::vector<std::string> out;
  for (const Alarm& a : status_alarms(in, kNow)) out.push_back(a.severity + ": " + a.text);
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& part) {
  for (auto& s : v)
    if (s.find(part) != std::string::npos) return true;
  return false;
}

TEST(ObjectStoreStatus, JsonCarriesQueueRateErrorsAndLastSuccess) {
  StatusInputs in = base();
  objtier::TierStatus& t = *in.object_store;
  t.queue.live_files = 2;
  t.queue.live_bytes = 2000;
  t.queue.retry_files = 1;
  t.queue.retry_bytes = 10;
  t.queue.oldest_enqueued_ms = kNow - 30'000;
  t.upload.rate_bps = 12345;
  t.upload.uploaded_files = 7;
  t.upload.uploaded_bytes = 7000;
  t.upload.present_files = 1;
  t.upload.last_success_ms = kNow - 5000;
  t.upload.errors = {{"network", 3}, {"bad_digest", 1}};
  t.upload.last_error = "PUT s3://recordings/x: Send failure";
  t.upload.last_error_kind = "network";
  t.objects.files = 100;
  t.objects.legal_holds = 2;
  t.upload.in_flight = objtier::UploadInFlight{"a.wav", 1000, 250, kNow - 500};
  json j = status_json(in, kNow)["object_store"];
  EXPECT_EQ(j["enabled"], true);
  EXPECT_EQ(j["bucket"], "recordings");
  EXPECT_EQ(j["state"], "idle");
  EXPECT_EQ(j["queue"]["files"], 3);
  EXPECT_EQ(j["queue"]["bytes"], 2010);
  EXPECT_EQ(j["queue"]["oldest_s"], 30);
  EXPECT_EQ(j["queue"]["retry"]["files"], 1);
  EXPECT_EQ(j["rate_bps"], 12345);
  EXPECT_EQ(j["uploaded_files"], 7);
  EXPECT_EQ(j["already_present"], 1);
  EXPECT_EQ(j["errors"]["network"], 3);
  EXPECT_EQ(j["errors"]["bad_digest"], 1);
  EXPECT_EQ(j["last_error_kind"], "network");
  EXPECT_FALSE(j["last_success"].get<std::string>().empty());
  EXPECT_EQ(j["objects"]["files"], 100);
  EXPECT_EQ(j["objects"]["legal_holds"], 2);
  EXPECT_EQ(j["in_flight"]["sent_bytes"], 250);
  EXPECT_EQ(j["keep_local_s"], 2 * 86400);
  EXPECT_EQ(j.dump().find("secret"), std::string::npos);
  StatusInputs off = base();
  off.object_store.reset();
  EXPECT_EQ(status_json(off, kNow)["object_store"], json({{"enabled", false}}));
}

TEST(ObjectStoreStatus, Alarms) {
  StatusInputs in = base();
  EXPECT_TRUE(texts(in).empty());
  objtier::TierStatus& t = *in.object_store;
  // Refused credentials: critical.
  t.upload.state = "refused";
  t.upload.last_error = "HTTP 403 SignatureDoesNotMatch";
  EXPECT_TRUE(has(texts(in), "critical: object store s3://recordings refuses our credentials"));
  // Down with uploads waiting: warning.
  t.upload.state = "backoff";
  t.upload.last_error_kind = "network";
  t.queue.live_files = 4;
  t.queue.oldest_enqueued_ms = kNow - 60'000;
  EXPECT_TRUE(has(texts(in), "warning: object store s3://recordings unreachable or failing: 4"));
  // Quota: critical.
  t.upload.last_error_kind = "quota";
  EXPECT_TRUE(has(texts(in), "critical: object store s3://recordings is full (quota)"));
  // The oldest upload older than upload_warn (15 min): warning, even while working.
  t.upload.state = "uploading";
  t.queue.oldest_enqueued_ms = kNow - 16 * 60'000;
  auto a = texts(in);
  EXPECT_TRUE(has(a, "warning: object store s3://recordings: the oldest upload has waited 16m"));
  t.queue.oldest_enqueued_ms = kNow - 14 * 60'000;
  EXPECT_FALSE(has(texts(in), "the oldest upload"));
  // Per-file failures waiting for a retry.
  t.queue.retry_files = 2;
  EXPECT_TRUE(has(texts(in), "2 recordings failed to upload and wait for a retry"));
  // Object deletions failing in the last retention pass.
  in.retention.last.objects.errors = 3;
  EXPECT_TRUE(has(texts(in), "retention: 3 objects could not be deleted"));
}

}  // namespace
}  // namespace recsync
