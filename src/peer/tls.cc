#include "peer/tls.h"

#include <openssl/err.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace recsync::peer {
namespace {

constexpr const char* kCipherSuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Appends plaintext to a vector, 16 KiB (one record) of room at a time.
class VectorSink : public PlaintextSink {
 public:
  explicit VectorSink(std::vector<uint8_t>& v) : v_(v), used_(v.size()) {}
  ~VectorSink() override { v_.resize(used_); }
  std::span<uint8_t> buffer() override {
    if (v_.size() - used_ < 16384) v_.resize(used_ + 16384);
    return std::span(v_).subspan(used_);
  }
  Status commit(size_t n) override {
    used_ += n;
    return Status::ok();
  }

 private:
  std::vector<uint8_t>& v_;
  size_t used_;
};

}  // namespace

// The session's BIO: reads serve the ciphertext span being fed (no copy into
// a memory BIO first), writes append to the session's output buffer. Empty
// input means "try again" (retry), never EOF.
struct SessionBio {
  static TlsSession* session(BIO* b) { return static_cast<TlsSession*>(BIO_get_data(b)); }

  static int write(BIO* b, const char* data, int len) {
    BIO_clear_retry_flags(b);
    if (len <= 0) return 0;
    auto& out = session(b)->out_;
    out.insert(out.end(), data, data + len);
    return len;
  }
  static int read(BIO* b, char* buf, int len) {
    BIO_clear_retry_flags(b);
    TlsSession* s = session(b);
    if (len <= 0) return 0;
    if (s->in_len_ == 0) {
      BIO_set_retry_read(b);
      return -1;
    }
    size_t n = std::min(s->in_len_, static_cast<size_t>(len));
    std::memcpy(buf, s->in_, n);
    s->in_ += n;
    s->in_len_ -= n;
    return static_cast<int>(n);
  }
  static long ctrl(BIO* b, int cmd, long, void*) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_PENDING:
        return static_cast<long>(session(b)->in_len_);
      case BIO_CTRL_WPENDING:
        return static_cast<long>(session(b)->out_.size());
      default:
        return 0;
    }
  }
  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  // One method table for the process, made once (thread-safe).
  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm =
          BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "recsync session buffer");
      if (bm) {
        BIO_meth_set_write(bm, &SessionBio::write);
        BIO_meth_set_read(bm, &SessionBio::read);
        BIO_meth_set_ctrl(bm, &SessionBio::ctrl);
        BIO_meth_set_create(bm, &SessionBio::create);
      }
      return bm;
    }();
    return m;
  }
};

// ---------------------------------------------------------------- TlsContext

Result<std::unique_ptr<TlsContext>> TlsContext::create(const Identity& self,
                                                       const std::vector<std::string>& pinned) {
  if (!self.key || !self.cert) return Status::invalid("tls: identity without key or certificate");
  ERR_clear_error();
  std::unique_ptr<TlsContext> c(new TlsContext());
  c->ctx_.reset(SSL_CTX_new(TLS_method()));
  SSL_CTX* ctx = c->ctx_.get();
  if (!ctx) return openssl_status(Status::Code::kIo, "tls: SSL_CTX_new");
  for (const std::string& p : pinned) c->pins_.insert(lower(p));
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
    return openssl_status(Status::Code::kIo, "tls: restrict to TLS 1.3");
  if (SSL_CTX_use_certificate(ctx, self.cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, self.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
    return openssl_status(Status::Code::kInvalid, "tls: load own identity");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, &TlsContext::verify_cb, c.get());
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_set_ciphersuites(ctx, kCipherSuites) != 1)
    return openssl_status(Status::Code::kIo, "tls: set cipher suites");
  return c;
}

// Replaces chain building entirely: the peer sends one self-signed
// certificate and the only question is whether it is the pinned one.
int TlsContext::verify_cb(X509_STORE_CTX* store, void* arg) {
  auto* self = static_cast<TlsContext*>(arg);
  X509* cert = X509_STORE_CTX_get0_cert(store);
  std::string fp = fingerprint(cert);
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* session = ssl ? static_cast<TlsSession*>(SSL_get_app_data(ssl)) : nullptr;
  if (!fp.empty() && self->is_pinned(fp)) {
    if (session) session->peer_fp_ = fp;
    return 1;
  }
  if (session) session->rejected_fp_ = fp.empty() ? "(unreadable certificate)" : fp;
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return 0;
}

// ---------------------------------------------------------------- TlsSession

Result<std::unique_ptr<TlsSession>> TlsSession::create(const TlsContext& ctx, Role role) {
  ERR_clear_error();
  std::unique_ptr<TlsSession> s(new TlsSession());
  s->ssl_.reset(SSL_new(ctx.get()));
  if (!s->ssl_) return openssl_status(Status::Code::kIo, "tls: SSL_new");
  BIO_METHOD* m = SessionBio::method();
  BIO* b = m ? BIO_new(m) : nullptr;
  if (!b) return openssl_status(Status::Code::kIo, "tls: BIO_new");
  BIO_set_data(b, s.get());
  SSL_set_bio(s->ssl_.get(), b, b);  // one BIO both ways: one reference, owned by ssl_
  SSL_set_app_data(s->ssl_.get(), s.get());
  if (role == Role::kClient)
    SSL_set_connect_state(s->ssl_.get());
  else
    SSL_set_accept_state(s->ssl_.get());
  return s;
}

Status TlsSession::fail(int ssl_ret, const char* what) {
  int e = SSL_get_error(ssl_.get(), ssl_ret);
  if (!rejected_fp_.empty()) {
    take_openssl_errors();
    return error_ = Status::refused(std::string("tls ") + what + ": peer certificate " +
                                    rejected_fp_ + " is not pinned");
  }
  if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL) {
    return error_ = openssl_status(Status::Code::kIo, std::string("tls ") + what);
  }
  return error_ = openssl_status(Status::Code::kIo,
                                 std::string("tls ") + what + ": error " + std::to_string(e));
}

Status TlsSession::advance(PlaintextSink* sink) {
  if (!error_.is_ok()) return error_;
  ERR_clear_error();
  if (!established_) {
    int r = SSL_do_handshake(ssl_.get());
    if (r != 1) {
      int e = SSL_get_error(ssl_.get(), r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return Status::ok();
      return fail(r, "handshake");
    }
    established_ = true;
    if (peer_fp_.empty())  // the verify callback records it; be safe
      peer_fp_ = fingerprint(SSL_get0_peer_certificate(ssl_.get()));
  }
  while (!pending_.empty()) {
    size_t n = 0;
    int r = SSL_write_ex(ssl_.get(), pending_.data(), pending_.size(), &n);
    if (r != 1) {
      int e = SSL_get_error(ssl_.get(), r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      return fail(r, "write");
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(n));
  }
  if (!sink) return Status::ok();
  for (;;) {
    std::span<uint8_t> buf = sink->buffer();
    size_t n = 0;
    int r = SSL_read_ex(ssl_.get(), buf.data(), buf.size(), &n);
    if (r == 1) {
      if (Status c = sink->commit(n); !c.is_ok()) return c;
      continue;
    }
    int e = SSL_get_error(ssl_.get(), r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (e == SSL_ERROR_ZERO_RETURN) {
      peer_closed_ = true;
      break;
    }
    return fail(r, "read");
  }
  return Status::ok();
}

Status TlsSession::start() { return advance(nullptr); }

Status TlsSession::feed_ciphertext(std::span<const uint8_t> in, PlaintextSink& sink) {
  if (!error_.is_ok()) return error_;
  in_ = in.data();
  in_len_ = in.size();
  Status s = advance(&sink);
  // OpenSSL reads until the BIO has nothing left (it keeps a partial record
  // itself), except after an error: what is left is not needed then.
  in_ = nullptr;
  in_len_ = 0;
  return s;
}

Status TlsSession::feed_ciphertext(std::span<const uint8_t> in, std::vector<uint8_t>& plaintext) {
  VectorSink sink(plaintext);
  return feed_ciphertext(in, sink);
}

Status TlsSession::write(std::span<const uint8_t> plain) {
  if (!error_.is_ok()) return error_;
  if (!established_ || !pending_.empty()) {
    pending_.insert(pending_.end(), plain.begin(), plain.end());
    return advance(nullptr);
  }
  // The BIO never refuses a write, so SSL_write takes everything at once.
  while (!plain.empty()) {
    ERR_clear_error();
    size_t n = 0;
    int r = SSL_write_ex(ssl_.get(), plain.data(), plain.size(), &n);
    if (r != 1) {
      int e = SSL_get_error(ssl_.get(), r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return fail(r, "write");
      pending_.assign(plain.begin(), plain.end());
      return Status::ok();
    }
    plain = plain.subspan(n);
  }
  return Status::ok();
}

void TlsSession::take_ciphertext(std::vector<uint8_t>& out) {
  if (out_.empty()) return;
  if (out.empty()) {
    out.swap(out_);  // both keep their capacity: no copy, no reallocation
  } else {
    out.insert(out.end(), out_.begin(), out_.end());
  }
  out_.clear();
}

Status TlsSession::close() {
  if (!error_.is_ok()) return error_;
  if (!established_) return Status::ok();
  ERR_clear_error();
  int r = SSL_shutdown(ssl_.get());
  if (r < 0) {
    int e = SSL_get_error(ssl_.get(), r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return fail(r, "shutdown");
  }
  return Status::ok();
}

}  // namespace recsync::peer
