#include "objstore/credentials.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace recsync::objstore {

namespace {

void wipe(std::string& s) {
  s.resize(s.capacity());  // zero-fills the tail, then every byte is cleansed
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

std::string_view trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string mode_string(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", unsigned(m & 07777));
  return buf;
}

// Errors name the origin and the line number, never the line's text: a
// secret mistyped on a "secret_kye" line must not reach a log.
Status line_error(const std::string& origin, size_t line, const char* why) {
  return Status::invalid(origin + ":" + std::to_string(line) + ": " + why);
}

bool printable(std::string_view v) {
  for (unsigned char c : v) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

Credentials::~Credentials() {
  wipe(secret_key);
  wipe(access_key);
}

Result<Credentials> parse_credentials(const std::string& text, const std::string& origin) {
  Credentials c;
  bool have_ak = false, have_sk = false;
  size_t line_no = 0;
  std::string_view rest = text;
  while (!rest.empty()) {
    ++line_no;
    size_t nl = rest.find('\n');
    std::string_view line = trim(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) return line_error(origin, line_no, "expected key = value");
    std::string_view key = trim(line.substr(0, eq));
    std::string_view value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (value.empty()) return line_error(origin, line_no, "empty value");
    if (value.size() > kMaxCredentialValue) return line_error(origin, line_no, "value too long");
    if (!printable(value)) {
      return line_error(origin, line_no, "value has spaces or non-printable characters");
    }
    bool* seen = key == "access_key" ? &have_ak : key == "secret_key" ? &have_sk : nullptr;
    if (!seen) {
      return line_error(origin, line_no, "unknown key (expected access_key or secret_key)");
    }
    if (*seen) return line_error(origin, line_no, "key given twice");
    *seen = true;
    (key == "access_key" ? c.access_key : c.secret_key) = std::string(value);
  }
  if (!have_ak) return Status::invalid(origin + ": access_key missing");
  if (!have_sk) return Status::invalid(origin + ": secret_key missing");
  return c;
}

Result<Credentials> load_credentials_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    if (e == ELOOP) return Status::refused("credentials file " + path + ": is a symlink");
    return Status::from_errno(e, "credentials file " + path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Status::from_errno(e, "credentials file " + path);
  }
  // fstat on the open fd: the file checked is the file read.
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::refused("credentials file " + path + ": not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return Status::refused("credentials file " + path + ": mode " + mode_string(st.st_mode) +
                           " lets group or others in; chmod 600 (or 400) it");
  }
  if (uint64_t(st.st_size) > kMaxCredentialsFile) {
    ::close(fd);
    return Status::invalid("credentials file " + path + ": larger than 64 KiB");
  }
  std::string text(kMaxCredentialsFile + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      wipe(text);
      return Status::from_errno(e, "credentials file " + path);
    }
    if (n == 0) break;
    got += size_t(n);
  }
  ::close(fd);
  if (got > kMaxCredentialsFile) {
    wipe(text);
    return Status::invalid("credentials file " + path + ": larger than 64 KiB");
  }
  text.resize(got);
  auto r = parse_credentials(text, path);
  wipe(text);
  return r;
}

Result<Credentials> load_systemd_credential(const std::string& name) {
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (!dir || !*dir) {
    return Status::not_found(
        "systemd credential " + name +
        ": CREDENTIALS_DIRECTORY is not set (no LoadCredential= in the unit?)");
  }
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return Status::invalid("systemd credential name '" + name + "' is not a single file name");
  }
  return load_credentials_file(std::string(dir) + "/" + name);
}

}  // namespace recsync::objstore
