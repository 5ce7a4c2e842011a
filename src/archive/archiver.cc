#include "archive/archiver.h"

#include <optional>
#include <vector>

#include "recsync/clock.h"
#include "recsync/hash.h"
#include "recsync/log.h"
#include "recsync/names.h"
#include "recsync/publish.h"

namespace recsync {
namespace {

constexpr size_t kCopyBuf = 1 << 20;
constexpr mode_t kFileMode = 0640;
constexpr mode_t kDirMode = 0750;

using K = ArchiveOutcome::Kind;

ArchiveOutcome outcome(K kind, Status s = Status::ok()) {
  ArchiveOutcome o;
  o.kind = kind;
  o.status = std::move(s);
  return o;
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
    case K::kArchived:
      return "archived";
    case K::kAlreadyArchived:
      return "already-archived";
    case K::kNotSettled:
      return "not-settled";
    case K::kWriterBusy:
      return "writer-busy";
    case K::kChanged:
      return "changed";
    case K::kVanished:
      return "vanished";
    case K::kSkipped:
      return "skipped";
    case K::kFailed:
      return "failed";
  }
  return "?";
}

// The spool file being archived: open, with its stat before the copy.
struct Archiver::Source {
  std::string path;
  std::unique_ptr<File> file;
  FileStat before;
  bool leased = false;  // a read lease is held (else the /proc check was used)
};

Archiver::Archiver(Env* env, StateStore* store, ArchiverOptions opt)
    : env_(env), store_(store), opt_(std::move(opt)) {
  if (!opt_.placer) {
    own_placer_ = std::make_unique<Placer>(env_, store_, opt_.archive_root, kLocalOrigin);
    opt_.placer = own_placer_.get();
  }
}

ArchiveOutcome Archiver::open_source(const std::string& spool_rel, Millis settle,
                                     std::unique_ptr<Source>& out) {
  auto src = std::make_unique<Source>();
  src->path = path_join(opt_.spool_root, spool_rel);
  auto st = env_->lstat(src->path);
  if (!st)
    return outcome(st.status().code() == Status::Code::kNotFound ? K::kVanished : K::kFailed,
                   st.status());
  if (!st->is_reg) return outcome(K::kSkipped);
  const int64_t quiet_at_ms = st->mtime_ns / 1'000'000 + settle.count();
  if (quiet_at_ms > to_ms(env_->now())) {
    ArchiveOutcome o = outcome(K::kNotSettled);
    o.retry_at_ms = quiet_at_ms;
    return o;
  }
  auto f = env_->open_read(src->path);
  if (!f)
    return f.status().code() == Status::Code::kNotFound ? outcome(K::kVanished)
                                                        : outcome(K::kFailed, f.status());
  src->file = std::move(f).value();
  auto before = src->file->stat();
  if (!before) return outcome(K::kFailed, before.status());
  if (before->ino != st->ino || !before->is_reg)
    return outcome(K::kChanged);  // replaced between lstat and open
  src->before = *before;
  if (Status w = check_no_writer(*src->file, src->path, opt_.open_check); !w)
    return w.code() == Status::Code::kBusy ? outcome(K::kWriterBusy) : outcome(K::kFailed, w);
  // Whether a lease is held (kLease, or kAuto when we own the file / have
  // CAP_LEASE); with the /proc check there is no lease to watch.
  src->leased = src->file->lease_intact();
  out = std::move(src);
  return outcome(K::kArchived);
}

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

ArchiveOutcome Archiver::copy_verified(Source& src, const std::string& tmp, bool keep_pages,
                                       std::string& hash) {
  auto src_hash = copy_to_temp(*src.file, tmp, src.before.mtime_ns, src.leased);
  if (!src_hash)
    return src_hash.status().code() == Status::Code::kBusy ? outcome(K::kWriterBusy)
                                                           : outcome(K::kFailed, src_hash.status());
  auto after = src.file->stat();
  if (!after) return outcome(K::kFailed, after.status());
  const bool lease_ok = !src.leased || src.file->lease_intact();
  if (after->size != src.before.size || after->mtime_ns != src.before.mtime_ns || !lease_ok)
    return outcome(lease_ok ? K::kChanged : K::kWriterBusy);
  auto tmp_hash = hash_file(env_, tmp, keep_pages);
  if (!tmp_hash) return outcome(K::kFailed, tmp_hash.status());
  if (*tmp_hash != *src_hash)
    return outcome(K::kFailed, Status::corrupt("verify " + tmp + ": archive copy hash " +
                                               *tmp_hash + " != spool hash " + *src_hash));
  hash = *src_hash;
  return outcome(K::kArchived);
}

ArchiveOutcome Archiver::remove_source(Source& src) {
  // Last look before the spool copy goes: a writer that opened it meanwhile
  // breaks the lease (or changes the mtime); then keep the spool copy, it will
  // be taken again as a new version.
  auto last = src.file->stat();
  const bool lease_ok = !src.leased || src.file->lease_intact();
  if (!last || last->size != src.before.size || last->mtime_ns != src.before.mtime_ns || !lease_ok)
    return outcome(K::kChanged);
  // The path must still name the file we copied: a new recording renamed
  // over it meanwhile must not be unlinked unarchived.
  auto at_path = env_->lstat(src.path);
  if (!at_path || at_path->ino != last->ino || at_path->dev != last->dev)
    return outcome(at_path ? K::kChanged : K::kVanished);
  if (Status s = env_->unlink(src.path); !s && s.code() != Status::Code::kNotFound)
    return outcome(K::kFailed, s);
  src.file->release_lease();
  return outcome(K::kArchived);
}

ArchiveOutcome Archiver::archive_one(const std::string& spool_rel, Millis settle) {
  std::unique_ptr<Source> src;
  if (ArchiveOutcome o = open_source(spool_rel, settle, src); !src) return o;
  const FileStat& before = src->before;
  const std::string rel =
      archive_rel_path(opt_.layout, spool_rel, from_ms(before.mtime_ns / 1'000'000));
  const std::string dir = path_dirname(path_join(opt_.archive_root, rel));
  if (Status s = env_->mkdirs(dir, kDirMode); !s) return outcome(K::kFailed, s);

  const auto t0 = std::chrono::steady_clock::now();
  const std::string tmp = temp_path_for(dir, path_basename(rel));
  const size_t peers = store_->queue().peers().size();
  std::optional<BudgetShare> share;
  if (peers > 0) share.emplace(opt_.page_budget, before.size * peers);
  std::string hash;
  ArchiveOutcome copied = copy_verified(*src, tmp, share && share->granted(), hash);
  if (copied.kind != K::kArchived) {
    (void)env_->unlink(tmp);
    return copied;
  }
  // Publish under the origin path, never over a different file.
  auto origin_rel = opt_.placer->own_origin_rel(rel, hash);
  if (!origin_rel) {
    (void)env_->unlink(tmp);
    return outcome(K::kFailed, origin_rel.status());
  }
  ArchiveOutcome out;
  const Identity id{opt_.placer->self(), *origin_rel, hash};
  auto placed = opt_.placer->place(tmp, id, [&](const Placed& p) {
    out.row = make_recording_row(p.rel, path_basename(spool_rel), before.size, hash,
                                 before.mtime_ns / 1'000'000, to_ms(env_->now()), kLocalOrigin);
    out.row.origin_rel = *origin_rel;
    return store_->queue().record(out.row, before.mtime_ns);
  });
  if (!placed && placed.status().code() == Status::Code::kRefused) {
    // Erased (a tombstone): its spool copy goes too, nothing is archived.
    ArchiveOutcome gone = remove_source(*src);
    log::get("archive")->warn("spool copy {} of an erased recording {}", spool_rel,
                              gone.kind == K::kArchived ? "removed" : "left (it changed)");
    return outcome(gone.kind == K::kArchived ? K::kVanished : gone.kind);
  }
  if (!placed) {
    (void)env_->unlink(tmp);
    return outcome(K::kFailed, placed.status());
  }
  if (share) share->queued();  // the senders read it and give the share back

  ArchiveOutcome removed = remove_source(*src);
  if (removed.kind != K::kArchived) {
    removed.row = std::move(out.row);
    return removed;
  }
  out.copy_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  out.kind = placed->already ? K::kAlreadyArchived : K::kArchived;
  return out;
}

}  // namespace recsync
