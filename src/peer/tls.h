#pragma once
// TLS 1.3 for the peer link, mutual authentication, peers pinned by
// certificate fingerprint (identity.h). No CA: the pin is the whole trust
// decision, made in a certificate verify callback; the TLS handshake proves
// the peer holds the key of the pinned certificate.
//
// TlsSession does no I/O: ciphertext goes in and out through memory BIOs, so
// the session can sit on a libuv stream (or a test's socketpair) without
// blocking.
#include <openssl/ssl.h>

#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "peer/identity.h"
#include "recsync/status.h"

namespace recsync::peer {

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

// SSL_CTX for both roles: TLS 1.3 only, own identity, peer certificate
// required both ways, accepted only if its fingerprint is in `pinned`
// ("sha256:<hex>", case-insensitive). No session tickets (no resumption).
// Not copyable; never moves (sessions point at it): held by unique_ptr.
// Thread-safe after creation (OpenSSL SSL_CTX rules); must outlive sessions.
class TlsContext {
 public:
  static Result<std::unique_ptr<TlsContext>> create(const Identity& self,
                                                    const std::vector<std::string>& pinned);
  SSL_CTX* get() const { return ctx_.get(); }
  bool is_pinned(const std::string& fp) const { return pins_.count(fp) > 0; }

 private:
  TlsContext() = default;
  static int verify_cb(X509_STORE_CTX* store, void* arg);
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx_;
  std::set<std::string> pins_;
};

// One TLS connection over memory buffers. Owns its SSL. One thread at a time.
// Errors are sticky; a verify failure is kRefused naming the fingerprint seen,
// other TLS failures kIo with the OpenSSL error text.
class TlsSession {
 public:
  enum class Role { kClient, kServer };
  static Result<std::unique_ptr<TlsSession>> create(const TlsContext& ctx, Role role);

  // Client: produces the ClientHello (take_ciphertext). Server: nothing yet.
  Status start();
  // Ciphertext received from the network: advances the handshake and appends
  // any decrypted application data to `plaintext`.
  Status feed_ciphertext(std::span<const uint8_t> in, std::vector<uint8_t>& plaintext);
  // Queues application data; encrypted now if established, else once the
  // handshake completes.
  Status write(std::span<const uint8_t> plain);
  // Moves all ciphertext waiting to be sent to the end of `out`. Call it after
  // an error too: it then holds the TLS alert that tells the peer why.
  void take_ciphertext(std::vector<uint8_t>& out);
  // Sends close_notify (take_ciphertext afterwards).
  Status close();

  bool established() const { return established_; }
  bool peer_closed() const { return peer_closed_; }
  // Negotiated protocol name, e.g. "TLSv1.3".
  const char* protocol() const { return SSL_get_version(ssl_.get()); }
  // The verified peer's fingerprint (set once established).
  const std::string& peer_fingerprint() const { return peer_fp_; }

 private:
  friend class TlsContext;
  TlsSession() = default;
  Status advance(std::vector<uint8_t>* plaintext);
  Status fail(int ssl_ret, const char* what);

  std::unique_ptr<SSL, SslDeleter> ssl_;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;  // owned by ssl_
  std::vector<uint8_t> pending_;
  bool established_ = false;
  bool peer_closed_ = false;
  std::string peer_fp_;
  std::string rejected_fp_;  // set by the verify callback on a pin mismatch
  Status error_;
};

}  // namespace recsync::peer
