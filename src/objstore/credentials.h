#pragma once
// S3 access key and secret, loaded from a file only the daemon can read, or
// from a systemd credential (LoadCredential= / SetCredential=). Never from
// the config file.
//
// File format (the same for both sources), one setting a line:
//   # comments start with '#' or ';'; blank lines are ignored
//   access_key = AKIAEXAMPLE
//   secret_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
// Keys are case-sensitive; spaces around '=' and at both ends are trimmed;
// a value may be wrapped in double quotes. Both keys are required, each once.
// Unknown keys are refused. Limits: 64 KiB file, 1024-byte values.
//
// Safety: the file must be a regular file (a symlink is not followed) with
// no permission bits for group or others (mode & 077 == 0), else it is
// refused with an error naming the file and its mode. No error message or
// log line ever contains a value from the file: a bad line is reported by
// its number only. The secret is wiped from memory (OPENSSL_cleanse) when a
// Credentials object is destroyed.
//
// Thread safety: free functions; safe from any thread.
#include <string>

#include "recsync/status.h"

namespace recsync::objstore {

struct Credentials {
  std::string access_key;
  std::string secret_key;

  Credentials() = default;
  Credentials(std::string ak, std::string sk)
      : access_key(std::move(ak)), secret_key(std::move(sk)) {}
  Credentials(const Credentials&) = default;
  Credentials& operator=(const Credentials&) = default;
  Credentials(Credentials&&) = default;
  Credentials& operator=(Credentials&&) = default;
  ~Credentials();
};

inline constexpr size_t kMaxCredentialsFile = 64 * 1024;
inline constexpr size_t kMaxCredentialValue = 1024;

// Loads path. Errors: kNotFound (missing), kRefused (mode lets group or
// others in, or not a regular file), kInvalid (format: "<path>:<line>:
// <reason>"), kIo.
Result<Credentials> load_credentials_file(const std::string& path);

// Loads $CREDENTIALS_DIRECTORY/<name> (systemd credentials). kNotFound when
// CREDENTIALS_DIRECTORY is unset or the credential is missing; name must be
// a single file name.
Result<Credentials> load_systemd_credential(const std::string& name);

// Parses the text of a credentials file; `origin` names it in errors.
Result<Credentials> parse_credentials(const std::string& text, const std::string& origin);

}  // namespace recsync::objstore
