#include "peer/identity.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdio>

#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/publish.h"

namespace recsync::peer {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

constexpr size_t kMaxIdentityFile = 64 * 1024;
constexpr long kValidityDays = 36525;  // 100 years

std::string hex(const unsigned char* p, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    s += kHex[p[i] >> 4];
    s += kHex[p[i] & 15];
  }
  return s;
}

// Reads a small file whole; `mode` receives its permission bits.
Result<std::string> read_small(Env* env, const std::string& path, mode_t* mode) {
  auto f = env->open_read(path);
  if (!f) return f.status();
  struct stat st {};
  if (::fstat((*f)->fd(), &st) != 0) return Status::from_errno(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return Status::corrupt(path + ": not a regular file");
  if (mode) *mode = st.st_mode & 07777;
  std::string data;
  char buf[4096];
  for (;;) {
    auto n = (*f)->read(buf, sizeof buf);
    if (!n) return n.status();
    if (*n == 0) break;
    data.append(buf, *n);
    if (data.size() > kMaxIdentityFile) return Status::corrupt(path + ": too large");
  }
  return data;
}

Result<PkeyPtr> new_key() {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
    return openssl_status(Status::Code::kIo, "generate Ed25519 key");
  return PkeyPtr(raw);
}

Result<X509Ptr> self_signed_cert(EVP_PKEY* key, const std::string& node) {
  X509Ptr x(X509_new());
  std::unique_ptr<BIGNUM, BnDeleter> serial(BN_new());
  if (!x || !serial) return openssl_status(Status::Code::kIo, "allocate certificate");
  bool ok = X509_set_version(x.get(), 2) == 1 &&
            BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
            BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get())) != nullptr &&
            // An hour back for clock skew between the nodes.
            X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600) != nullptr &&
            X509_time_adj_ex(X509_getm_notAfter(x.get()), kValidityDays, 0, nullptr) != nullptr &&
            X509_set_pubkey(x.get(), key) == 1;
  X509_NAME* name = X509_get_subject_name(x.get());
  ok = ok &&
       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(node.c_str()), -1, -1,
                                  0) == 1 &&
       X509_set_issuer_name(x.get(), name) == 1 &&
       X509_sign(x.get(), key, nullptr) > 0;  // Ed25519: no separate digest
  if (!ok) return openssl_status(Status::Code::kIo, "create certificate for " + node);
  return x;
}

Result<std::string> key_pem(EVP_PKEY* key) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return openssl_status(Status::Code::kIo, "encode key");
  char* p = nullptr;
  long n = BIO_get_mem_data(b.get(), &p);
  return std::string(p, static_cast<size_t>(n));
}

Result<std::string> cert_pem(X509* cert) {
  BioPtr b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), cert) != 1)
    return openssl_status(Status::Code::kIo, "encode certificate");
  char* p = nullptr;
  long n = BIO_get_mem_data(b.get(), &p);
  return std::string(p, static_cast<size_t>(n));
}

std::string cn_of(X509* cert) {
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

Status write_cert_for(Env* env, const std::string& dir, EVP_PKEY* key, const std::string& node) {
  auto cert = self_signed_cert(key, node);
  if (!cert) return cert.status();
  auto pem = cert_pem(cert->get());
  if (!pem) return pem.status();
  return write_file_durably(env, dir, kCertFileName, *pem, 0644);
}

Result<PkeyPtr> load_key(Env* env, const std::string& path) {
  mode_t mode = 0;
  auto data = read_small(env, path, &mode);
  if (!data) return data.status();
  if (mode & 077) {
    char m[16];
    std::snprintf(m, sizeof m, "%04o", static_cast<unsigned>(mode));
    return Status::refused(path + ": private key is accessible by group/other (mode " + m +
                           "); run: chmod 600 " + path);
  }
  ERR_clear_error();
  BioPtr b(BIO_new_mem_buf(data->data(), static_cast<int>(data->size())));
  EVP_PKEY* k = b ? PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!k) return openssl_status(Status::Code::kCorrupt, path + ": not a PEM private key");
  return PkeyPtr(k);
}

}  // namespace

std::string take_openssl_errors() {
  std::string s;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!s.empty()) s += "; ";
    s += buf;
  }
  return s;
}

Status openssl_status(Status::Code code, const std::string& what) {
  std::string errs = take_openssl_errors();
  std::string m = errs.empty() ? what : what + ": " + errs;
  switch (code) {
    case Status::Code::kCorrupt:
      return Status::corrupt(m);
    case Status::Code::kRefused:
      return Status::refused(m);
    case Status::Code::kInvalid:
      return Status::invalid(m);
    default:
      return Status::io(m);
  }
}

std::string fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!cert || X509_digest(cert, EVP_sha256(), md, &n) != 1) return "";
  return "sha256:" + hex(md, n);
}

Result<Identity> load_identity(Env* env, const std::string& state_dir) {
  const std::string key_path = path_join(state_dir, kKeyFileName);
  const std::string cert_path = path_join(state_dir, kCertFileName);
  auto key = load_key(env, key_path);
  if (!key) return key.status();
  auto data = read_small(env, cert_path, nullptr);
  if (!data) return data.status();
  ERR_clear_error();
  BioPtr b(BIO_new_mem_buf(data->data(), static_cast<int>(data->size())));
  X509* raw = b ? PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!raw) return openssl_status(Status::Code::kCorrupt, cert_path + ": not a PEM certificate");
  X509Ptr cert(raw);
  if (X509_check_private_key(cert.get(), key->get()) != 1)
    return openssl_status(Status::Code::kCorrupt,
                          cert_path + ": certificate does not match " + key_path +
                              " (recreate both with: recsync keygen --force)");
  Identity id;
  id.node = cn_of(cert.get());
  id.fingerprint = fingerprint(cert.get());
  id.key = std::move(key).value();
  id.cert = std::move(cert);
  return id;
}

Status generate_identity(Env* env, const std::string& state_dir, const std::string& node,
                         bool force) {
  if (node.empty() || node.size() > 64)
    return Status::invalid("node name must be 1..64 bytes for the certificate CN");
  RECSYNC_RETURN_IF_ERROR(env->mkdirs(state_dir, 0700));
  const std::string key_path = path_join(state_dir, kKeyFileName);
  const std::string cert_path = path_join(state_dir, kCertFileName);
  auto st = env->lstat(key_path);
  if (st.is_ok() && !force)
    return Status::from_errno(EEXIST, key_path + " exists (use --force to replace it)");
  auto key = new_key();
  if (!key) return key.status();
  auto pem = key_pem(key->get());
  if (!pem) return pem.status();
  if (force) {
    // Old files go first: rename never replaces. A crash in between leaves
    // no key, and the next start makes a new identity, as asked.
    for (const std::string& p : {cert_path, key_path}) {
      Status s = env->unlink(p);
      if (!s.is_ok() && s.code() != Status::Code::kNotFound) return s;
    }
  }
  RECSYNC_RETURN_IF_ERROR(write_file_durably(env, state_dir, kKeyFileName, *pem, 0600));
  RECSYNC_RETURN_IF_ERROR(write_cert_for(env, state_dir, key->get(), node));
  log::get("peer")->info("created TLS identity for node {} in {}", node, state_dir);
  return Status::ok();
}

Result<Identity> load_or_create_identity(Env* env, const std::string& state_dir,
                                         const std::string& node) {
  const std::string key_path = path_join(state_dir, kKeyFileName);
  const std::string cert_path = path_join(state_dir, kCertFileName);
  auto key_st = env->lstat(key_path);
  if (!key_st) {
    if (key_st.status().code() != Status::Code::kNotFound) return key_st.status();
    RECSYNC_RETURN_IF_ERROR(generate_identity(env, state_dir, node, false));
  } else {
    auto cert_st = env->lstat(cert_path);
    if (!cert_st && cert_st.status().code() == Status::Code::kNotFound) {
      auto key = load_key(env, key_path);
      if (!key) return key.status();
      log::get("peer")->warn("{} missing: recreating it from {}", cert_path, key_path);
      RECSYNC_RETURN_IF_ERROR(write_cert_for(env, state_dir, key->get(), node));
    }
  }
  return load_identity(env, state_dir);
}

}  // namespace recsync::peer
