#pragma once
// Small encoders the S3 client needs: base64 (Content-MD5), hex, MD5 and
// SHA-256 through OpenSSL EVP, and the URI encoding and canonical query
// string of AWS Signature V4.
//
// Why the query is canonical here: libcurl 7.88 (Debian 12) signs the query
// string exactly as it appears in the URL, so the URL must already carry the
// SigV4 canonical form (names sorted, every name followed by '=', values
// URI-encoded) or RGW answers SignatureDoesNotMatch.
//
// Thread safety: free functions are pure; an Md5 belongs to one thread.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace recsync::objstore {

std::string base64_encode(std::span<const uint8_t> bytes);
// Standard alphabet with padding; nullopt on any other character or a bad
// length (whitespace is not skipped).
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);

std::string hex_lower(std::span<const uint8_t> bytes);

// Incremental MD5 (Content-MD5, S3 ETags). Aborts only if OpenSSL cannot
// give MD5 at all (a FIPS-only provider): nothing here can work then.
class Md5 {
 public:
  static constexpr size_t kLen = 16;
  Md5();
  ~Md5();
  Md5(const Md5&) = delete;
  Md5& operator=(const Md5&) = delete;
  void update(const void* data, size_t n);
  // The digest; the object is reset for a new message.
  std::array<uint8_t, kLen> finish();

 private:
  EVP_MD_CTX* ctx_;
};
std::array<uint8_t, Md5::kLen> md5(std::string_view data);
// Lower-case hex SHA-256 (x-amz-content-sha256 of in-memory bodies).
std::string sha256_hex(std::string_view data);

// AWS URI encoding: every byte except A-Z a-z 0-9 - _ . ~ becomes %XX
// (upper-case hex); '/' is kept when keep_slash (object keys in the path).
std::string uri_encode(std::string_view s, bool keep_slash);

using QueryParams = std::vector<std::pair<std::string, std::string>>;
// "a=1&b=&c=x%20y": sorted by encoded name then value, each name=value
// encoded with uri_encode(.., false). Empty string for no parameters.
std::string canonical_query(const QueryParams& params);

// A non-negative decimal integer (at most 19 digits); nullopt otherwise.
std::optional<uint64_t> parse_u64(std::string_view s);

// The MD5 of an S3 multipart object as S3 reports it in the ETag:
// hex(MD5(md5(part 1) || ... || md5(part n))) + "-" + n.
std::string multipart_etag(const std::vector<std::array<uint8_t, Md5::kLen>>& part_md5s);

}  // namespace recsync::objstore
