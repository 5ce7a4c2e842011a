#include "objstore/xml.h"

#include <gtest/gtest.h>

#include "objstore/s3_error.h"
#include "objstore/s3_request.h"

namespace recsync::objstore {
namespace {

// What RGW 16.2 sends for ListObjectVersions (trimmed).
constexpr char kVersions[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<ListVersionsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>bkt1</Name><Prefix>a</Prefix><IsTruncated>false</IsTruncated>"
    "<Version><Key>a b+c &amp; &lt;d&gt;</Key><VersionId>v1</VersionId><IsLatest>true</IsLatest>"
    "<ETag>&quot;dba3ea02e24b74ae3a9b19d5b5ec9b1c&quot;</ETag><Size>1000</Size></Version>"
    "<DeleteMarker><Key>x</Key><VersionId>v2</VersionId><IsLatest>false</IsLatest></DeleteMarker>"
    "</ListVersionsResult>";

TEST(Xml, ParsesAnS3Listing) {
  auto doc = parse_xml(kVersions);
  ASSERT_TRUE(doc.is_ok()) << doc.status().to_string();
  EXPECT_EQ(doc->name, "ListVersionsResult");
  EXPECT_EQ(doc->child_text("Name"), "bkt1");
  EXPECT_EQ(doc->child_text("Missing"), "");
  ASSERT_EQ(doc->children_named("Version").size(), 1u);
  const XmlNode* v = doc->child("Version");
  EXPECT_EQ(v->child_text("Key"), "a b+c & <d>");
  EXPECT_EQ(v->child_text("ETag"), "\"dba3ea02e24b74ae3a9b19d5b5ec9b1c\"");
  EXPECT_EQ(doc->child("DeleteMarker")->child_text("VersionId"), "v2");
}

TEST(Xml, EntitiesCdataCommentsPrefixesAndSelfClosingTags) {
  auto doc = parse_xml(
      "<!-- c --><s3:R xmlns:s3=\"u\" a='x>y'><A>&#65;&#x42;&#xe9;&apos;&quot;</A>"
      "<B><![CDATA[<raw & text>]]></B><C/><D a=\"1\" /><!-- inner --></s3:R>\n");
  ASSERT_TRUE(doc.is_ok()) << doc.status().to_string();
  EXPECT_EQ(doc->name, "R");
  EXPECT_EQ(doc->child_text("A"), "AB\xc3\xa9'\"");
  EXPECT_EQ(doc->child_text("B"), "<raw & text>");
  ASSERT_NE(doc->child("C"), nullptr);
  ASSERT_NE(doc->child("D"), nullptr);
  EXPECT_TRUE(doc->child("C")->children.empty());
}

TEST(Xml, RefusesMalformedAndDangerousInput) {
  for (const char* bad : {"", "text", "<a>", "<a></b>", "<a><b></a></b>", "<a>&bogus;</a>",
                          "<a>&#0;</a>", "<a>&#x110000;</a>", "<a x=1></a>", "<a></a><b/>",
                          "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", "<a><!DOCTYPE b></a>",
                          "<a><![CDATA[x</a>", "<a><!-- x</a>", "<a>&amp</a>", "< a></a>"}) {
    auto r = parse_xml(bad);
    EXPECT_FALSE(r.is_ok()) << bad;
    if (!r.is_ok()) {
      EXPECT_EQ(r.status().code(), Status::Code::kCorrupt) << bad;
    }
  }
}

TEST(Xml, EveryTruncationFailsCleanly) {
  std::string doc = kVersions;
  for (size_t n = 0; n < doc.size(); ++n) {
    auto r = parse_xml(std::string_view(doc).substr(0, n));
    EXPECT_FALSE(r.is_ok()) << "prefix of " << n << " bytes parsed";
  }
  EXPECT_TRUE(parse_xml(doc).is_ok());
}

TEST(Xml, DepthAndNodeLimits) {
  std::string deep;
  for (int i = 0; i < kMaxXmlDepth + 1; ++i) deep += "<a>";
  for (int i = 0; i < kMaxXmlDepth + 1; ++i) deep += "</a>";
  EXPECT_FALSE(parse_xml(deep).is_ok());
  std::string ok_depth;
  for (int i = 0; i < kMaxXmlDepth; ++i) ok_depth += "<a>";
  for (int i = 0; i < kMaxXmlDepth; ++i) ok_depth += "</a>";
  EXPECT_TRUE(parse_xml(ok_depth).is_ok());
  std::string wide = "<r>";
  for (size_t i = 0; i < kMaxXmlNodes; ++i) wide += "<b/>";
  wide += "</r>";
  auto r = parse_xml(wide);
  EXPECT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("too many"), std::string::npos) << r.status().to_string();
}

TEST(Xml, Escape) {
  EXPECT_EQ(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
  auto doc = parse_xml("<e>" + xml_escape("<&>\"'") + "</e>");
  ASSERT_TRUE(doc.is_ok());
  EXPECT_EQ(doc->text, "<&>\"'");
}

TEST(S3ErrorBody, ParsesRgwErrors) {
  auto e = parse_error_body(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code>"
      "<Message>forbidden by object lock</Message><BucketName>b</BucketName>"
      "<RequestId>tx0001</RequestId><HostId>h</HostId></Error>");
  EXPECT_EQ(e.code, "AccessDenied");
  EXPECT_EQ(e.message, "forbidden by object lock");
  EXPECT_EQ(e.request_id, "tx0001");
  EXPECT_EQ(parse_error_body("").code, "");
  EXPECT_EQ(parse_error_body("<html>502 Bad Gateway</html>").code, "");
  EXPECT_EQ(parse_error_body("<Other><Code>X</Code></Other>").code, "");
}

TEST(S3ErrorKind, Classification) {
  struct Case {
    int http;
    const char* code;
    const char* msg;
    ErrorKind kind;
  } cases[] = {
      {403, "AccessDenied", "", ErrorKind::kAuth},
      {403, "InvalidAccessKeyId", "", ErrorKind::kAuth},
      {403, "SignatureDoesNotMatch", "", ErrorKind::kAuth},
      {403, "RequestTimeTooSkewed", "", ErrorKind::kAuth},
      {403, "", "", ErrorKind::kAuth},
      {401, "", "", ErrorKind::kAuth},
      {403, "AccessDenied", "forbidden by object lock", ErrorKind::kLocked},
      {403, "AccessDenied", "Access Denied because object protected by object lock",
       ErrorKind::kLocked},
      {400, "BadDigest", "", ErrorKind::kBadDigest},
      {400, "InvalidDigest", "", ErrorKind::kBadDigest},
      {400, "XAmzContentSHA256Mismatch", "", ErrorKind::kBadDigest},
      {403, "QuotaExceeded", "", ErrorKind::kQuota},
      {400, "TooManyBuckets", "", ErrorKind::kQuota},
      {400, "EntityTooLarge", "", ErrorKind::kQuota},
      {507, "", "", ErrorKind::kQuota},
      {404, "NoSuchKey", "", ErrorKind::kNotFound},
      {404, "NoSuchUpload", "", ErrorKind::kNotFound},
      {404, "NoSuchBucket", "", ErrorKind::kNotFound},
      {404, "NoSuchVersion", "", ErrorKind::kNotFound},
      {404, "", "", ErrorKind::kNotFound},
      {500, "InternalError", "", ErrorKind::kServer},
      {503, "SlowDown", "", ErrorKind::kServer},
      {502, "", "", ErrorKind::kServer},
      {400, "InvalidArgument", "", ErrorKind::kOther},
      {409, "BucketNotEmpty", "", ErrorKind::kOther},
      {301, "", "", ErrorKind::kOther},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(classify_s3_error(c.http, c.code, c.msg), c.kind)
        << c.http << " " << c.code << " -> "
        << error_kind_name(classify_s3_error(c.http, c.code, c.msg));
  }
}

TEST(S3ErrorKind, StatusCodesFollowTheKind) {
  EXPECT_EQ(s3_error(ErrorKind::kAuth, "m").status().code(), Status::Code::kRefused);
  EXPECT_EQ(s3_error(ErrorKind::kLocked, "m").status().code(), Status::Code::kRefused);
  EXPECT_EQ(s3_error(ErrorKind::kBadDigest, "m").status().code(), Status::Code::kCorrupt);
  EXPECT_EQ(s3_error(ErrorKind::kQuota, "m").status().code(), Status::Code::kNoSpace);
  EXPECT_EQ(s3_error(ErrorKind::kNotFound, "m").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(s3_error(ErrorKind::kServer, "m").status().code(), Status::Code::kBusy);
  EXPECT_EQ(s3_error(ErrorKind::kNetwork, "m").status().code(), Status::Code::kIo);
  EXPECT_TRUE(s3_error(ErrorKind::kNone, "m").is_ok());
  auto st = s3_error(ErrorKind::kAuth, "PUT s3://b/k: HTTP 403", 403, "AccessDenied");
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(st.http_status(), 403);
  EXPECT_EQ(st.s3_code(), "AccessDenied");
  EXPECT_EQ(std::string(error_kind_name(st.kind())), "auth");
}

}  // namespace
}  // namespace recsync::objstore
