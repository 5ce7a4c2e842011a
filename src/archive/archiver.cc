#include "archive/archiver.h"

#include <optional>
#include <random>
#include <vector>

#include "recsync/hash.h"
#include "recsync/log.h"
#include "recsync/names.h"

namespace recsync {
namespace {

constexpr size_t kCopyBuf = 1 << 20;
constexpr mode_t kFileMode = 0640;
constexpr mode_t kDirMode = 0750;

std::string random_suffix() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

int64_t to_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// The page-budget share of a recording whose pages are left cached for the
// peer senders: given back unless the recording was queued for them.
class BudgetShare {
 public:
  BudgetShare(PageBudget* b, uint64_t n) : b_(b), n_(n) { granted_ = !b_ || b_->take(n_); }
  ~BudgetShare() {
    if (b_ && granted_ && !queued_) b_->give_back(n_);
  }
  BudgetShare(const BudgetShare&) = delete;
  BudgetShare& operator=(const BudgetShare&) = delete;
  bool granted() const { return granted_; }
  void queued() { queued_ = true; }

 private:
  PageBudget* b_;
  uint64_t n_;
  bool granted_ = false, queued_ = false;
};

}  // namespace

const char* outcome_name(ArchiveOutcome::Kind k) {
  switch (k) {
    case ArchiveOutcome::Kind::kArchived:
      return "archived";
    case ArchiveOutcome::Kind::kAlreadyArchived:
      return "already-archived";
    case ArchiveOutcome::Kind::kNotSettled:
      return "not-settled";
    case ArchiveOutcome::Kind::kWriterBusy:
      return "writer-busy";
    case ArchiveOutcome::Kind::kChanged:
      return "changed";
    case ArchiveOutcome::Kind::kVanished:
      return "vanished";
    case ArchiveOutcome::Kind::kSkipped:
      return "skipped";
    case ArchiveOutcome::Kind::kFailed:
      return "failed";
  }
  return "?";
}

Archiver::Archiver(Env* env, StateStore* store, ArchiverOptions opt)
    : env_(env), store_(store), opt_(std::move(opt)) {}

Result<std::string> Archiver::copy_to_temp(File& src, const std::string& tmp, int64_t mtime_ns,
                                           bool leased) {
  // The folder may have been removed by the pruner as empty since mkdirs.
  auto dst = env_->create_excl(tmp, kFileMode);
  for (int i = 0; i < 3 && !dst && dst.status().code() == Status::Code::kNotFound; ++i) {
    RECSYNC_RETURN_IF_ERROR(env_->mkdirs(path_dirname(tmp), kDirMode));
    dst = env_->create_excl(tmp, kFileMode);
  }
  if (!dst) return dst.status();
  std::vector<char> buf(kCopyBuf);
  Hasher h;
  for (;;) {
    auto n = src.read(buf.data(), buf.size());
    if (!n) return n.status();
    if (*n == 0) break;
    // A writer opening the file breaks our lease and waits for us: stop now.
    if (leased && !src.lease_intact()) return Status::busy("writer appeared during the copy");
    h.update(buf.data(), *n);
    RECSYNC_RETURN_IF_ERROR((*dst)->write_all(buf.data(), *n));
  }
  RECSYNC_RETURN_IF_ERROR((*dst)->set_mtime_ns(mtime_ns));
  RECSYNC_RETURN_IF_ERROR((*dst)->sync());
  return h.hex();
}

Result<std::string> Archiver::hash_file(const std::string& path, bool keep_pages) {
  auto f = env_->open_read(path);
  if (!f) return f.status();
  std::vector<char> buf(kCopyBuf);
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

ArchiveOutcome Archiver::archive_one(const std::string& spool_rel, Millis settle) {
  using K = ArchiveOutcome::Kind;
  ArchiveOutcome out;
  auto fail = [&](Status s) {
    out.kind = K::kFailed;
    out.status = std::move(s);
    return out;
  };
  const std::string src_path = path_join(opt_.spool_root, spool_rel);

  auto st = env_->lstat(src_path);
  if (!st) {
    out.kind = st.status().code() == Status::Code::kNotFound ? K::kVanished : K::kFailed;
    out.status = st.status();
    return out;
  }
  if (!st->is_reg) {
    out.kind = K::kSkipped;
    return out;
  }
  const int64_t now_ms = to_ms(env_->now());
  const int64_t quiet_at_ms = st->mtime_ns / 1'000'000 + settle.count();
  if (quiet_at_ms > now_ms) {
    out.kind = K::kNotSettled;
    out.retry_at_ms = quiet_at_ms;
    return out;
  }

  auto src = env_->open_read(src_path);
  if (!src) {
    if (src.status().code() == Status::Code::kNotFound) {
      out.kind = K::kVanished;
      return out;
    }
    return fail(src.status());
  }
  auto before = (*src)->stat();
  if (!before) return fail(before.status());
  if (before->ino != st->ino || !before->is_reg) {
    out.kind = K::kChanged;  // replaced between lstat and open
    return out;
  }
  if (Status w = check_no_writer(**src, src_path, opt_.open_check); !w) {
    if (w.code() == Status::Code::kBusy) {
      out.kind = K::kWriterBusy;
      return out;
    }
    return fail(w);
  }
  // Whether a lease is held (kLease, or kAuto when we own the file / have
  // CAP_LEASE); with the /proc check there is no lease to watch.
  const bool leased = (*src)->lease_intact();

  const WallTime rec_time{
      std::chrono::duration_cast<WallTime::duration>(std::chrono::nanoseconds(before->mtime_ns))};
  const std::string rel = archive_rel_path(opt_.layout, spool_rel, rec_time);
  const std::string final_path = path_join(opt_.archive_root, rel);
  const std::string dir = path_dirname(final_path);
  if (Status s = env_->mkdirs(dir, kDirMode); !s) return fail(s);

  // Name part capped so prefix + name + suffix stays within NAME_MAX (255).
  const std::string tmp = path_join(
      dir, std::string(kTempPrefix) + path_basename(rel).substr(0, 200) + "." + random_suffix());
  auto t0 = std::chrono::steady_clock::now();
  auto src_hash = copy_to_temp(**src, tmp, before->mtime_ns, leased);
  auto discard = [&] { (void)env_->unlink(tmp); };
  if (!src_hash) {
    discard();
    if (src_hash.status().code() == Status::Code::kBusy) {
      out.kind = K::kWriterBusy;
      return out;
    }
    return fail(src_hash.status());
  }
  auto after = (*src)->stat();
  if (!after) {
    discard();
    return fail(after.status());
  }
  const bool lease_ok = !leased || (*src)->lease_intact();
  if (after->size != before->size || after->mtime_ns != before->mtime_ns || !lease_ok) {
    discard();
    out.kind = lease_ok ? K::kChanged : K::kWriterBusy;
    return out;
  }
  std::optional<BudgetShare> share;
  if (!opt_.replicate_to.empty())
    share.emplace(opt_.page_budget, before->size * opt_.replicate_to.size());
  auto tmp_hash = hash_file(tmp, share && share->granted());
  if (!tmp_hash) {
    discard();
    return fail(tmp_hash.status());
  }
  if (*tmp_hash != *src_hash) {
    discard();
    return fail(Status::corrupt("verify " + tmp + ": archive copy hash " + *tmp_hash +
                                " != spool hash " + *src_hash));
  }

  // Publish under the final name, never over a different file.
  std::string publish_rel = rel;
  bool already = false;
  for (int n = 2;; ++n) {
    Status r = env_->rename_noreplace(tmp, path_join(opt_.archive_root, publish_rel));
    if (r) break;
    if (r.code() != Status::Code::kExists || n > 1000) {
      discard();
      return fail(r);
    }
    auto existing = hash_file(path_join(opt_.archive_root, publish_rel));
    if (existing && *existing == *src_hash) {
      already = true;  // a crash after publish and before the spool unlink
      discard();
      break;
    }
    publish_rel = versioned_rel_path(rel, n);
  }
  if (Status s = env_->sync_dir(dir); !s) return fail(s);

  out.row.rel = publish_rel;
  out.row.name = recording_id(path_basename(spool_rel));
  out.row.size = before->size;
  out.row.hash = *src_hash;
  out.row.rec_time_ms = before->mtime_ns / 1'000'000;
  out.row.archived_at_ms = to_ms(env_->now());
  out.row.origin = "local";
  if (Status s = store_->upsert_recording(out.row, opt_.replicate_to, before->mtime_ns); !s)
    return fail(s);
  if (share) share->queued();  // the senders read it and give the share back

  // Last look before the spool copy goes: a writer that opened it meanwhile
  // breaks the lease (or changes the mtime); then keep the spool copy, it will
  // be taken again as a new version.
  auto last = (*src)->stat();
  const bool still_lease_ok = !leased || (*src)->lease_intact();
  if (!last || last->size != before->size || last->mtime_ns != before->mtime_ns ||
      !still_lease_ok) {
    out.kind = K::kChanged;
    return out;
  }
  // The path must still name the file we copied: a new recording renamed
  // over it meanwhile must not be unlinked unarchived.
  auto at_path = env_->lstat(src_path);
  if (!at_path || at_path->ino != last->ino || at_path->dev != last->dev) {
    out.kind = at_path ? K::kChanged : K::kVanished;
    return out;
  }
  if (Status s = env_->unlink(src_path); !s && s.code() != Status::Code::kNotFound) return fail(s);
  (*src)->release_lease();
  out.copy_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  out.kind = already ? K::kAlreadyArchived : K::kArchived;
  return out;
}

}  // namespace recsync
