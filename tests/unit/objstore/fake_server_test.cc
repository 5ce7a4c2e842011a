// The client against a scripted HTTP server on 127.0.0.1: what goes on the
// wire, and the error paths a real RGW does not produce on demand (5xx,
// oversized or truncated answers, a server that never answers).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "objstore/s3_client.h"
#include "objstore/xml.h"

namespace recsync::objstore {
namespace {

using namespace std::chrono_literals;

constexpr char kSecret[] = "fakeSECRETvalue/0123456789abcdefghijklm";

struct HttpRequest {
  std::string method, target, head, body;
  std::string header(const std::string& lower_name) const {
    size_t p = 0;
    while ((p = head.find("\r\n", p)) != std::string::npos) {
      p += 2;
      size_t colon = head.find(':', p);
      size_t eol = head.find("\r\n", p);
      if (colon == std::string::npos || eol == std::string::npos || colon > eol) continue;
      std::string name = head.substr(p, colon - p);
      for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
      if (name == lower_name) {
        size_t v = head.find_first_not_of(' ', colon + 1);
        return head.substr(v, eol - v);
      }
    }
    return "";
  }
};

// One thread, one connection at a time, keep-alive; every wait is bounded
// by the stop flag (checked every 20 ms). The handler returns the raw answer;
// "" closes the connection without answering; "HANG" answers nothing.
class FakeServer {
 public:
  using Handler = std::function<std::string(const HttpRequest&)>;
  explicit FakeServer(Handler h) : handler_(std::move(h)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<HttpRequest> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }

 private:
  bool wait_readable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }
  // Reads until `buf` holds n bytes past `from`, or the peer closes.
  bool fill(int c, std::string& buf, size_t n) {
    char tmp[65536];
    while (buf.size() < n) {
      if (!wait_readable(c)) return false;
      ssize_t r = ::recv(c, tmp, sizeof tmp, 0);
      if (r <= 0) return false;
      buf.append(tmp, size_t(r));
    }
    return true;
  }
  void serve() {
    while (!stop_) {
      if (!wait_readable(fd_)) return;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      connection(c);
      ::close(c);
    }
  }
  void connection(int c) {
    std::string buf;
    while (!stop_) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        if (!fill(c, buf, buf.size() + 1)) return;
      }
      HttpRequest req;
      req.head = buf.substr(0, end + 2);
      buf.erase(0, end + 4);
      size_t sp1 = req.head.find(' '), sp2 = req.head.find(' ', sp1 + 1);
      req.method = req.head.substr(0, sp1);
      req.target = req.head.substr(sp1 + 1, sp2 - sp1 - 1);
      size_t len = std::stoul("0" + req.header("content-length"));
      if (req.header("expect") == "100-continue") {
        ::send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL);
      }
      if (!fill(c, buf, len)) return;
      req.body = buf.substr(0, len);
      buf.erase(0, len);
      {
        std::lock_guard<std::mutex> l(mu_);
        seen_.push_back(req);
      }
      std::string out = handler_(req);
      if (out.empty()) return;
      if (out == "HANG") {
        while (!stop_ && wait_readable(c)) {
          char tmp[4096];
          if (::recv(c, tmp, sizeof tmp, 0) <= 0) return;
        }
        return;
      }
      size_t off = 0;
      while (off < out.size()) {
        ssize_t w = ::send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += size_t(w);
      }
      if (out.find("\r\nConnection: close\r\n") != std::string::npos) return;
    }
  }

  Handler handler_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<HttpRequest> seen_;
};

std::string answer(int code, const std::string& reason, const std::string& body,
                   const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(code) + " " + reason +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers + "\r\n" +
         body;
}

std::string error_xml(const std::string& code, const std::string& msg) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" +
         msg + "</Message><RequestId>tx-fake-1</RequestId></Error>";
}

std::unique_ptr<S3Client> client_for(const std::string& endpoint, S3Options o = {}) {
  o.endpoint = endpoint;
  o.bucket = "bucket";
  o.region = "test-region";
  o.credentials = Credentials("AKFAKE", kSecret);
  auto c = S3Client::make(o);
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return c.is_ok() ? std::move(c.value()) : nullptr;
}

// A temp file with content; closed and removed by the destructor.
struct TempFile {
  explicit TempFile(const std::string& content) {
    char tmpl[] = "/tmp/recsync-objstore-XXXXXX";
    fd = ::mkstemp(tmpl);
    path = tmpl;
    EXPECT_EQ(::write(fd, content.data(), content.size()), ssize_t(content.size()));
  }
  ~TempFile() {
    ::close(fd);
    ::unlink(path.c_str());
  }
  int fd;
  std::string path;
};

TEST(FakeServer, PutSendsSignedEncodedRequestWithContentMd5) {
  FakeServer srv([](const HttpRequest&) {
    return answer(200, "OK", "", "ETag: \"0cc175b9c0f1b6a831c399e269772661\"\r\n");
  });
  auto c = client_for(srv.endpoint());
  TempFile f("a");
  PutOptions po;
  po.metadata = {{"xxh3", "xxh128:0011"}, {"rec-time", "17"}};
  auto r = c->put_object("2026/12/06/call 1+2.wav", FileRange{f.fd, 0, 1}, po);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->etag, "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(r->md5_hex, "0cc175b9c0f1b6a831c399e269772661");
  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const HttpRequest& q = reqs[0];
  EXPECT_EQ(q.method, "PUT");
  EXPECT_EQ(q.target, "/bucket/2026/12/06/call%201%2B2.wav");
  EXPECT_EQ(q.body, "a");
  EXPECT_EQ(q.header("content-md5"), "DMF1ucDxtqgxw5niaXcmYQ==");
  EXPECT_EQ(q.header("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
  EXPECT_EQ(q.header("x-amz-meta-xxh3"), "xxh128:0011");
  std::string auth = q.header("authorization");
  EXPECT_EQ(auth.rfind("AWS4-HMAC-SHA256 Credential=AKFAKE/", 0), 0u) << auth;
  EXPECT_NE(auth.find("/test-region/s3/aws4_request"), std::string::npos) << auth;
  // Every header that matters to integrity is covered by the signature.
  for (const char* h : {"content-md5", "x-amz-content-sha256", "x-amz-meta-xxh3", "host"}) {
    EXPECT_NE(auth.find(h), std::string::npos) << h << " not signed: " << auth;
  }
  EXPECT_EQ(q.head.find(kSecret), std::string::npos);
  EXPECT_EQ(c->stats().file_bytes_sent, 1u);
}

TEST(FakeServer, QueriesAreCanonicalAndMemoryBodiesHashed) {
  FakeServer srv([](const HttpRequest& q) {
    if (q.target.find("legal-hold") != std::string::npos) return answer(200, "OK", "");
    return answer(200, "OK",
                  "<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>");
  });
  auto c = client_for(srv.endpoint());
  auto l = c->list_object_versions("a b/");
  ASSERT_TRUE(l.is_ok()) << l.status().to_string();
  EXPECT_TRUE(l->versions.empty());
  ASSERT_TRUE(c->put_legal_hold("k", true, "v+1").is_ok());
  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, "/bucket?max-keys=1000&prefix=a%20b%2F&versions=");
  EXPECT_EQ(reqs[0].header("x-amz-content-sha256"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(reqs[1].target, "/bucket/k?legal-hold=&versionId=v%2B1");
  EXPECT_NE(reqs[1].body.find("<Status>ON</Status>"), std::string::npos);
  EXPECT_EQ(reqs[1].header("content-md5"), base64_encode(md5(reqs[1].body)));
  EXPECT_EQ(reqs[1].header("x-amz-content-sha256"), sha256_hex(reqs[1].body));
}

TEST(FakeServer, ServerErrorsAreClassifiedWithCodeAndRequestId) {
  FakeServer srv([](const HttpRequest& q) {
    if (q.target.find("slow") != std::string::npos) {
      return answer(503, "Slow Down", error_xml("SlowDown", "Please reduce your request rate."));
    }
    return answer(502, "Bad Gateway", "<html>proxy error</html>");
  });
  auto c = client_for(srv.endpoint());
  auto r = c->head_object("x");  // HEAD: no body at all
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.kind(), ErrorKind::kServer);
  EXPECT_EQ(r.status().http_status(), 502);
  auto d = c->delete_object("slow");
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.kind(), ErrorKind::kServer);
  EXPECT_EQ(d.status().s3_code(), "SlowDown");
  const std::string& m = d.status().message();
  EXPECT_NE(m.find("DELETE s3://bucket/slow"), std::string::npos) << m;
  EXPECT_NE(m.find("SlowDown"), std::string::npos) << m;
  EXPECT_NE(m.find("tx-fake-1"), std::string::npos) << m;
  EXPECT_EQ(m.find(kSecret), std::string::npos);
}

TEST(FakeServer, CompleteMultipartErrorInsideA200) {
  FakeServer srv([](const HttpRequest&) {
    return answer(200, "OK", error_xml("InternalError", "We encountered an internal error."));
  });
  auto c = client_for(srv.endpoint());
  auto r = c->complete_multipart_upload("k", "up1", {{1, "aa", 5}});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.kind(), ErrorKind::kServer);
  EXPECT_EQ(r.status().s3_code(), "InternalError");
  auto reqs = srv.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/bucket/k?uploadId=up1");
  auto doc = parse_xml(reqs[0].body);
  ASSERT_TRUE(doc.is_ok()) << reqs[0].body;
  EXPECT_EQ(doc->child("Part")->child_text("ETag"), "\"aa\"");
}

TEST(FakeServer, OversizedAnswersAreCutNotBuffered) {
  std::string huge(3 << 20, 'x');
  FakeServer srv([&](const HttpRequest&) { return answer(500, "Oops", huge); });
  S3Options o;
  o.max_response_body = 64 << 10;
  auto c = client_for(srv.endpoint(), o);
  auto r = c->list_multipart_uploads("");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.kind(), ErrorKind::kOther);
  EXPECT_NE(r.status().message().find("larger than the limit"), std::string::npos);
  EXPECT_LE(c->stats().bytes_received, o.max_response_body + 65536);
}

TEST(FakeServer, GetStreamsToTheSinkAndDetectsATruncatedBody) {
  std::string data = "0123456789";
  FakeServer srv([&](const HttpRequest& q) {
    if (q.target.find("short") != std::string::npos) {
      return std::string("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n") +
             data;
    }
    return answer(200, "OK", data, "ETag: \"x\"\r\nx-amz-meta-a: b\r\n");
  });
  auto c = client_for(srv.endpoint());
  char tmpl[] = "/tmp/recsync-objstore-get-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ::close(fd);
  {
    auto f = Env::posix()->create_excl(std::string(tmpl) + ".1", 0600);
    ASSERT_TRUE(f.is_ok());
    auto g = c->get_object("ok", **f);
    ASSERT_TRUE(g.is_ok()) << g.status().to_string();
    EXPECT_EQ(g->bytes_written, data.size());
    EXPECT_EQ(g->md5_hex, hex_lower(md5(data)));
    EXPECT_EQ(g->info.metadata.at("a"), "b");
  }
  {
    auto f = Env::posix()->create_excl(std::string(tmpl) + ".2", 0600);
    ASSERT_TRUE(f.is_ok());
    auto g = c->get_object("short", **f);
    ASSERT_FALSE(g.is_ok());
    EXPECT_EQ(g.kind(), ErrorKind::kNetwork) << g.status().to_string();
  }
  ::unlink(tmpl);
  ::unlink((std::string(tmpl) + ".1").c_str());
  ::unlink((std::string(tmpl) + ".2").c_str());
}

TEST(FakeServer, ASilentServerTimesOutAsNetwork) {
  FakeServer srv([](const HttpRequest&) { return std::string("HANG"); });
  S3Options o;
  o.small_request_timeout = 300ms;
  auto c = client_for(srv.endpoint(), o);
  auto t0 = std::chrono::steady_clock::now();
  auto r = c->head_object("k");
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.kind(), ErrorKind::kNetwork);
  EXPECT_LT(took, 5s);
  EXPECT_GE(took, 250ms);
}

TEST(FakeServer, ConnectionRefusedIsNetwork) {
  uint16_t port;
  {
    // A port that was free a moment ago and has no listener.
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port = ntohs(a.sin_port);
    ::close(s);
  }
  auto c = client_for("http://127.0.0.1:" + std::to_string(port));
  auto r = c->head_object("k");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.kind(), ErrorKind::kNetwork);
  EXPECT_EQ(r.status().http_status(), 0);
  EXPECT_NE(r.status().message().find("HEAD s3://bucket/k"), std::string::npos);
}

}  // namespace
}  // namespace recsync::objstore
