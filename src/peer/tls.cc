#include "peer/tls.h"

#include <openssl/err.h>

#include <algorithm>
#include <cctype>

namespace recsync::peer {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

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
  BIO* r = BIO_new(BIO_s_mem());
  BIO* w = BIO_new(BIO_s_mem());
  if (!r || !w) {
    BIO_free(r);
    BIO_free(w);
    return openssl_status(Status::Code::kIo, "tls: BIO_new");
  }
  BIO_set_mem_eof_return(r, -1);  // empty means "try again", not EOF
  SSL_set_bio(s->ssl_.get(), r, w);
  s->rbio_ = r;
  s->wbio_ = w;
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

Status TlsSession::advance(std::vector<uint8_t>* plaintext) {
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
  if (!plaintext) return Status::ok();
  uint8_t buf[16384];
  for (;;) {
    size_t n = 0;
    int r = SSL_read_ex(ssl_.get(), buf, sizeof buf, &n);
    if (r == 1) {
      plaintext->insert(plaintext->end(), buf, buf + n);
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

Status TlsSession::feed_ciphertext(std::span<const uint8_t> in, std::vector<uint8_t>& plaintext) {
  if (!error_.is_ok()) return error_;
  if (!in.empty()) {
    size_t written = 0;
    if (BIO_write_ex(rbio_, in.data(), in.size(), &written) != 1 || written != in.size())
      return error_ = openssl_status(Status::Code::kIo, "tls: buffer ciphertext");
  }
  return advance(&plaintext);
}

Status TlsSession::write(std::span<const uint8_t> plain) {
  if (!error_.is_ok()) return error_;
  pending_.insert(pending_.end(), plain.begin(), plain.end());
  return advance(nullptr);
}

void TlsSession::take_ciphertext(std::vector<uint8_t>& out) {
  size_t n = BIO_ctrl_pending(wbio_);
  if (n == 0) return;
  size_t old = out.size();
  out.resize(old + n);
  size_t got = 0;
  if (BIO_read_ex(wbio_, out.data() + old, n, &got) != 1) got = 0;
  out.resize(old + got);
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
