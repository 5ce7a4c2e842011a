#include "recsync/publish.h"

#include <random>
#include <vector>

#include "recsync/hash.h"
#include "recsync/names.h"

namespace recsync {
namespace {
constexpr size_t kReadBuf = 1 << 20;
}  // namespace

std::string random_suffix() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

std::string temp_path_for(const std::string& dir, const std::string& name) {
  return path_join(dir, std::string(kTempPrefix) + name.substr(0, 200) + "." + random_suffix());
}

Result<std::string> hash_file(Env* env, const std::string& path, bool keep_pages) {
  auto f = env->open_read(path);
  if (!f) return f.status();
  std::vector<char> buf(kReadBuf);
  Hasher h;
  for (;;) {
    auto n = (*f)->read(buf.data(), buf.size());
    if (!n) return n.status();
    if (*n == 0) break;
    h.update(buf.data(), *n);
  }
  if (!keep_pages) (*f)->drop_cache();
  return h.hex();
}

Status write_file_durably(Env* env, const std::string& dir, const std::string& name,
                          const std::string& data, mode_t mode) {
  const std::string tmp = temp_path_for(dir, name);
  Status s = [&]() -> Status {
    auto f = env->create_excl(tmp, mode);
    if (!f) return f.status();
    RECSYNC_RETURN_IF_ERROR((*f)->write_all(data.data(), data.size()));
    return (*f)->sync();
  }();
  if (s.is_ok()) s = env->rename_noreplace(tmp, path_join(dir, name));
  if (!s.is_ok()) {
    (void)env->unlink(tmp);
    return s;
  }
  return env->sync_dir(dir);
}

Result<Published> publish_noreplace(Env* env, const std::string& tmp, const std::string& root,
                                    const std::string& rel, uint64_t size,
                                    const std::string& hash) {
  Published out;
  out.rel = rel;
  for (int n = 2;; ++n) {
    const std::string target = path_join(root, out.rel);
    Status r = env->rename_noreplace(tmp, target);
    if (r) break;
    if (r.code() != Status::Code::kExists || n > kMaxVersions) return r;
    auto st = env->lstat(target);
    if (st && st->is_reg && st->size == size) {
      auto existing = hash_file(env, target);
      if (existing && *existing == hash) {
        out.already = true;  // a crash after publishing, or an ack that was lost
        (void)env->unlink(tmp);
        break;
      }
    }
    out.rel = versioned_rel_path(rel, n);
  }
  RECSYNC_RETURN_IF_ERROR(env->sync_dir(path_dirname(path_join(root, out.rel))));
  return out;
}

}  // namespace recsync
