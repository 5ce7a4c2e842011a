#include "peer/path_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace recsync::peer {
namespace {

using namespace std::string_literals;

struct Row {
  std::string path;
  bool ok;
  const char* why;  // expected fragment of the message when refused
};

TEST(PathPolicy, Table) {
  const std::string c255(255, 'a');
  const std::string c256(256, 'a');
  // Exactly 1024 bytes: 2 + 3 x 255 + 3 + 254.
  const std::string long_ok = "a/" + c255 + "/" + c255 + "/" + c255 + "/" + std::string(254, 'b');
  const Row rows[] = {
      {"2024/05/01/abc.wav", true, ""},
      {"abc.wav", true, ""},
      {"a b/c-d_e.f.wav", true, ""},
      {"x..y/z", true, ""},           // ".." inside a name is fine
      {"caf\xc3\xa9.wav", true, ""},  // UTF-8 is fine
      {c255, true, ""},
      {long_ok, true, ""},
      {"", false, "empty"},
      {"/etc/passwd", false, "absolute"},
      {"/", false, "absolute"},
      {"..", false, "'..'"},
      {"../x.wav", false, "'..'"},
      {"a/../../x.wav", false, "'..'"},
      {"a/..", false, "'..'"},
      {".", false, "'.'"},
      {"./x.wav", false, "'.'"},
      {"a/./b", false, "'.'"},
      {"a//b", false, "empty component"},
      {"a/", false, "empty component"},
      {"a\0b"s, false, "NUL"},
      {"a\nb", false, "control"},
      {"a\x7f", false, "control"},
      {"a\x01/b", false, "control"},
      {"a\\..\\b", false, "backslash"},
      {c256, false, "255"},
      {"a/" + c256 + "/b", false, "255"},
      {long_ok + "x", false, "1024"},
      {".hidden.wav", false, "hidden"},
      {"2024/.git/config", false, "hidden"},
      {".recsync-tmp.x.wav.1234", false, "temp"},
      {"2024/05/.recsync-tmp.abc.wav.ff", false, "temp"},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE("path=\"" + r.path.substr(0, 60) + "\" len=" + std::to_string(r.path.size()));
    Status s = validate_peer_path(r.path);
    EXPECT_EQ(s.is_ok(), r.ok) << s.to_string();
    if (!r.ok) {
      EXPECT_EQ(s.code(), Status::Code::kRefused);
      EXPECT_NE(s.message().find(r.why), std::string::npos) << s.message();
    }
  }
}

TEST(PathPolicy, MessageEscapesControlBytes) {
  Status s = validate_peer_path("a\nb\x1b[31m");
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  EXPECT_EQ(s.message().find('\x1b'), std::string::npos);
  EXPECT_NE(s.message().find("\\x0a"), std::string::npos);
}

}  // namespace
}  // namespace recsync::peer
