#pragma once
// A node's TLS identity: an Ed25519 key (state_dir/node.key, PKCS#8 PEM, mode
// 0600) and a self-signed X.509 certificate (state_dir/node.crt, PEM,
// CN = node name, valid 100 years). Peers pin each other by the certificate
// fingerprint ("sha256:" + lowercase hex SHA-256 of the DER certificate),
// printed by `recsync id` and configured as [[peer]] fingerprint.
//
// Ed25519 because OpenSSL 3.0 supports it for both TLS 1.3 client and server
// authentication with self-signed certificates, and keys are small and fast.
//
// Files are published atomically (temp name, fsync, rename without replace,
// folder fsync) through Env. The key is written before the certificate; if a
// crash leaves a key without a certificate, the certificate is recreated from
// the key on the next load (nobody can have pinned it yet).
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "recsync/env.h"
#include "recsync/status.h"

namespace recsync::peer {

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Deleter {
  void operator()(X509* p) const { X509_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;

inline constexpr char kKeyFileName[] = "node.key";
inline constexpr char kCertFileName[] = "node.crt";

// Owns its key and certificate. Movable. Immutable after load: safe to share
// between threads for reading.
struct Identity {
  PkeyPtr key;
  X509Ptr cert;
  std::string node;         // the certificate's CN
  std::string fingerprint;  // fingerprint(cert)
};

// "sha256:" + lowercase hex SHA-256 of the DER encoding of `cert`.
std::string fingerprint(X509* cert);

// The OpenSSL error queue of this thread as text (then cleared), e.g.
// "error:0480006C:PEM routines::no start line"; "" when empty.
std::string take_openssl_errors();
// Status with `what` + the OpenSSL error queue.
Status openssl_status(Status::Code code, const std::string& what);

// Loads state_dir/node.{key,crt}. kNotFound when the key is absent;
// kRefused when the key file is readable by group/other; kCorrupt when a file
// does not parse or the certificate does not match the key.
Result<Identity> load_identity(Env* env, const std::string& state_dir);

// Loads the identity, creating state_dir (0700) and a new identity for `node`
// when there is no key yet (first start). An existing key is never replaced.
Result<Identity> load_or_create_identity(Env* env, const std::string& state_dir,
                                         const std::string& node);

// `recsync keygen`: creates a new identity for `node`. With an existing key:
// kExists unless `force`, which replaces both files (new fingerprint; the
// peer must be re-pinned).
Status generate_identity(Env* env, const std::string& state_dir, const std::string& node,
                         bool force);

}  // namespace recsync::peer
