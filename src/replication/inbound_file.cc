#include "replication/inbound_file.h"

#include "peer/path_policy.h"
#include "recsync/names.h"
#include "recsync/publish.h"

namespace recsync::replication {
namespace {

constexpr size_t kReadBuf = 1 << 20;
constexpr size_t kWriteBatch = 256 * 1024;
// File::write_behind() after every this many bytes written.
constexpr uint64_t kWriteBehind = 1 << 20;

bool is_hex16(std::string_view s) {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A partial of the file whose committed partial is named `committed`: that
// name itself or a crash-left output (committed + "." + 16 hex digits).
bool is_partial_of(const std::string& name, const std::string& committed) {
  if (name == committed) return true;
  return name.size() == committed.size() + 17 && !name.compare(0, committed.size(), committed) &&
         name[committed.size()] == '.' &&
         is_hex16(std::string_view(name).substr(committed.size() + 1));
}

}  // namespace

Status remove_inbound_partials(Env* env, const std::string& archive_root, const std::string& rel) {
  RECSYNC_RETURN_IF_ERROR(peer::validate_peer_path(rel).with_context("inbound"));
  const std::string dir = rel.find('/') == std::string::npos
                              ? archive_root
                              : path_join(archive_root, path_dirname(rel));
  auto entries = env->list_dir(dir);
  if (!entries)
    return entries.status().code() == Status::Code::kNotFound ? Status::ok() : entries.status();
  const std::string committed = std::string(kPartPrefix) + path_basename(rel);
  bool removed = false;
  for (const DirEntry& e : *entries) {
    if (!is_partial_of(e.name, committed)) continue;
    const std::string path = path_join(dir, e.name);
    auto st = env->lstat(path);
    if (!st || !st->is_reg) continue;  // never follow or delete a non-file
    RECSYNC_RETURN_IF_ERROR(env->unlink(path));
    removed = true;
  }
  return removed ? env->sync_dir(dir) : Status::ok();
}

const char* basis_kind_name(BasisKind k) {
  switch (k) {
    case BasisKind::kNone:
      return "none";
    case BasisKind::kPartial:
      return "partial";
    case BasisKind::kFinal:
      return "final";
  }
  return "?";
}

Result<std::unique_ptr<InboundFile>> InboundFile::begin(
    Env* env, const std::string& archive_root, const std::string& rel, uint64_t expected_size,
    const std::string& expected_hash, int64_t mtime_ns, const InboundOptions& opt) {
  std::unique_ptr<InboundFile> f(new InboundFile());
  RECSYNC_RETURN_IF_ERROR(
      f->init(env, archive_root, rel, expected_size, expected_hash, mtime_ns, opt));
  return f;
}

InboundFile::~InboundFile() {
  // Not a commit: just do not throw away produced bytes (a crash would lose
  // at most kWriteBatch of them; the next begin() resumes from the rest).
  if (!closed_ && out_ && error_.is_ok()) (void)flush_out();
}

Status InboundFile::init(Env* env, const std::string& archive_root, const std::string& rel,
                         uint64_t expected_size, const std::string& expected_hash, int64_t mtime_ns,
                         const InboundOptions& opt) {
  env_ = env;
  opt_ = opt;
  root_ = archive_root;
  rel_ = rel;
  expected_size_ = expected_size;
  expected_hash_ = expected_hash;
  mtime_ns_ = mtime_ns;

  RECSYNC_RETURN_IF_ERROR(peer::validate_peer_path(rel).with_context("inbound"));
  name_ = path_basename(rel);
  if (name_.size() > kMaxInboundNameLen)
    return Status::refused("inbound " + rel + ": file name longer than " +
                           std::to_string(kMaxInboundNameLen) + " bytes");
  if (expected_size > opt_.max_file_size)
    return Status::refused("inbound " + rel + ": size " + std::to_string(expected_size) +
                           " above the limit " + std::to_string(opt_.max_file_size));
  dir_ = rel.find('/') == std::string::npos ? root_ : path_join(root_, path_dirname(rel));
  final_path_ = path_join(root_, rel);
  part_path_ = path_join(dir_, std::string(kPartPrefix) + name_);

  RECSYNC_RETURN_IF_ERROR(check_folders());
  if (dir_ != root_) {
    RECSYNC_RETURN_IF_ERROR(env_->mkdirs(dir_, opt_.dir_mode));
    // Again: a folder swapped for a symlink between the check and mkdirs.
    RECSYNC_RETURN_IF_ERROR(check_folders());
  }
  RECSYNC_RETURN_IF_ERROR(choose_basis());
  RECSYNC_RETURN_IF_ERROR(make_signature());

  out_path_ = part_path_ + "." + random_suffix();
  auto out = env_->create_excl(out_path_, opt_.file_mode);
  if (!out) return out.status();
  out_ = std::move(*out);

  delta::BasisReader reader;
  if (basis_) {
    reader = delta::pread_basis(basis_->fd());
  } else {
    reader = [](uint64_t, std::span<uint8_t>) -> Result<size_t> { return size_t{0}; };
  }
  auto patch = delta::PatchJob::create(std::move(reader), expected_size_);
  if (!patch) {
    discard();
    return patch.status();
  }
  patch_ = std::move(*patch);
  return Status::ok();
}

Status InboundFile::check_folders() const {
  std::string cur = root_;
  const std::string sub = rel_.find('/') == std::string::npos ? "" : path_dirname(rel_);
  size_t pos = 0;
  while (pos < sub.size()) {
    size_t slash = sub.find('/', pos);
    if (slash == std::string::npos) slash = sub.size();
    cur = path_join(cur, sub.substr(pos, slash - pos));
    pos = slash + 1;
    auto st = env_->lstat(cur);
    if (!st) {
      if (st.status().code() == Status::Code::kNotFound) return Status::ok();
      return st.status();
    }
    if (st->is_link) return Status::refused("inbound " + rel_ + ": " + cur + " is a symlink");
    if (!st->is_dir) return Status::refused("inbound " + rel_ + ": " + cur + " is not a folder");
  }
  return Status::ok();
}

Status InboundFile::choose_basis() {
  auto entries = env_->list_dir(dir_);
  if (!entries) return entries.status();
  const std::string committed = std::string(kPartPrefix) + name_;
  std::string best;
  uint64_t best_size = 0;
  for (const DirEntry& e : *entries) {
    if (!is_partial_of(e.name, committed)) continue;
    const std::string path = path_join(dir_, e.name);
    auto st = env_->lstat(path);
    if (!st || !st->is_reg) continue;  // never follow or delete a non-file
    partials_.push_back(path);
    if (st->size > best_size && st->size <= opt_.max_file_size) {
      best = path;
      best_size = st->size;
    }
  }
  if (!best.empty()) {
    basis_kind_ = BasisKind::kPartial;
    basis_path_ = best;
  } else if (auto st = env_->lstat(final_path_);
             st && st->is_reg && st->size <= opt_.max_file_size) {
    basis_kind_ = BasisKind::kFinal;
    basis_path_ = final_path_;
  }
  if (basis_kind_ == BasisKind::kNone) return Status::ok();
  auto f = env_->open_read(basis_path_);  // O_NOFOLLOW
  if (!f) return f.status();
  auto st = (*f)->stat();
  if (!st) return st.status();
  if (!st->is_reg)
    return Status::refused("inbound " + rel_ + ": basis " + basis_path_ + " is not a file");
  basis_ = std::move(*f);
  basis_size_ = st->size;
  return Status::ok();
}

Status InboundFile::make_signature() {
  auto job = delta::SignatureJob::create(basis_ ? static_cast<int64_t>(basis_size_) : 0);
  if (!job) return job.status();
  signature_.clear();
  if (basis_) {
    const bool check_same = basis_kind_ == BasisKind::kFinal && basis_size_ == expected_size_;
    Hasher h;
    std::vector<uint8_t> buf(kReadBuf);
    uint64_t total = 0;
    for (;;) {
      auto n = basis_->read(buf.data(), buf.size());
      if (!n) return n.status().with_context("signature of " + basis_path_);
      if (*n == 0) break;
      total += *n;
      if (check_same) h.update(buf.data(), *n);
      RECSYNC_RETURN_IF_ERROR(
          job->feed(std::span<const uint8_t>(buf.data(), *n), false, signature_));
    }
    already_present_ = check_same && total == expected_size_ && h.hex() == expected_hash_;
  }
  return job->feed({}, true, signature_);
}

Status InboundFile::fail(Status s) {
  if (error_.is_ok()) error_ = s;
  return error_;
}

// Output is batched: a delta fed a few bytes at a time (TLS records, the
// buffer-size tests) must not become one write() per byte.
Status InboundFile::flush_out() {
  if (buf_.empty()) return Status::ok();
  Status s = write_out(buf_);
  buf_.clear();
  return s;
}

Status InboundFile::write_out(std::span<const uint8_t> bytes) {
  RECSYNC_RETURN_IF_ERROR(out_->write_all(bytes.data(), bytes.size()));
  hasher_.update(bytes.data(), bytes.size());
  written_ += bytes.size();
  if (written_ - written_behind_ >= kWriteBehind) {
    out_->write_behind();
    written_behind_ = written_;
  }
  return Status::ok();
}

Status InboundFile::feed_literal(std::span<const uint8_t> bytes) {
  if (!error_.is_ok()) return error_;
  if (closed_) return Status::invalid("inbound " + rel_ + ": already closed");
  if (basis_size_ != 0 || (mode_ == Mode::kDelta))
    return fail(
        Status::invalid("inbound " + rel_ + ": literal data needs an empty basis and no delta"));
  mode_ = Mode::kLiteral;
  if (bytes_written() + bytes.size() > expected_size_)
    return fail(Status::corrupt("inbound " + rel_ + ": more than the " +
                                std::to_string(expected_size_) + " bytes offered"));
  if (buf_.empty() && bytes.size() >= kWriteBatch) {  // large enough: no batching copy
    if (Status s = write_out(bytes); !s) return fail(s);
    return Status::ok();
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  if (buf_.size() >= kWriteBatch) {
    if (Status w = flush_out(); !w) return fail(w);
  }
  return Status::ok();
}

Status InboundFile::feed_delta(std::span<const uint8_t> delta) {
  if (!error_.is_ok()) return error_;
  if (closed_) return Status::invalid("inbound " + rel_ + ": already closed");
  if (mode_ == Mode::kLiteral)
    return fail(Status::invalid("inbound " + rel_ + ": delta after literal data"));
  mode_ = Mode::kDelta;
  Status s = patch_->feed(delta, false, buf_);
  // Whatever was produced before an error is still a valid prefix.
  Status w = buf_.size() >= kWriteBatch || !s ? flush_out() : Status::ok();
  if (!s) return fail(s.with_context("inbound " + rel_));
  if (!w) return fail(w);
  return Status::ok();
}

void InboundFile::remove_partials() {
  for (const std::string& p : partials_)
    if (p != out_path_) (void)env_->unlink(p);
  partials_.clear();
}

void InboundFile::discard() {
  if (closed_) return;
  closed_ = true;
  out_.reset();
  if (!out_path_.empty()) (void)env_->unlink(out_path_);
}

Result<InboundResult> InboundFile::finish(const Publish& publish) {
  if (closed_) return Status::invalid("inbound " + rel_ + ": already closed");
  if (!error_.is_ok()) return error_;
  Status s = mode_ == Mode::kLiteral ? Status::ok() : patch_->feed({}, true, buf_);
  if (Status w = flush_out(); s) s = w;
  if (s && mode_ != Mode::kLiteral && !patch_->done()) s = Status::corrupt("delta ended early");
  if (!s) {
    (void)fail(s.with_context("inbound " + rel_));
    if (s.code() == Status::Code::kCorrupt) {
      discard();
      remove_partials();
    }
    return error_;
  }
  std::string why;
  if (written_ != expected_size_) {
    why = "size " + std::to_string(written_) + " != expected " + std::to_string(expected_size_);
  } else if (std::string got = hasher_.hex(); got != expected_hash_) {
    why = "hash " + got + " != expected " + expected_hash_;
  }
  if (!why.empty()) {
    // The basis may be what is wrong (a stale or damaged partial): drop it
    // too, so the retry starts from the final file or from nothing.
    discard();
    remove_partials();
    return fail(Status::corrupt("inbound " + rel_ + " (basis " + basis_kind_name(basis_kind_) +
                                "): " + why));
  }
  if (Status m = out_->set_mtime_ns(mtime_ns_); !m) return fail(m);
  if (Status y = out_->sync(); !y) return fail(y);
  // Durable now; nothing here reads it again soon. Dropping its pages keeps
  // the page cache (FreeSWITCH's tmpfs, playback, the state DB) from filling
  // with write-once recordings, and lets the next file reuse warm pages.
  out_->drop_cache();
  out_.reset();
  basis_.reset();

  auto pub = publish ? publish(out_path_)
                     : publish_noreplace(env_, out_path_, root_, rel_, written_, expected_hash_);
  if (!pub) {
    (void)env_->unlink(out_path_);
    closed_ = true;
    return fail(pub.status());
  }
  closed_ = true;
  InboundResult res;
  res.size = written_;
  res.rel = pub->rel;
  res.already = pub->already;  // e.g. acked but the ack was lost
  remove_partials();
  return res;
}

Result<InboundResult> InboundFile::accept_existing() {
  if (closed_ || !already_present_ || !error_.is_ok())
    return Status::invalid("inbound " + rel_ + ": no identical file to accept");
  discard();
  basis_.reset();
  remove_partials();
  InboundResult res;
  res.rel = rel_;
  res.already = true;
  res.size = expected_size_;
  return res;
}

Status InboundFile::abort_keep_partial() {
  if (closed_) return Status::invalid("inbound " + rel_ + ": already closed");
  if (!error_.is_ok()) {
    discard();
    return error_;
  }
  if (Status w = flush_out(); !w) {
    discard();
    return w;
  }
  const uint64_t have = basis_kind_ == BasisKind::kPartial ? basis_size_ : 0;
  if (written_ <= have) {
    discard();  // the partial we started from already holds more
    return Status::ok();
  }
  Status s = out_->sync();
  if (s) out_->drop_cache();
  out_.reset();
  basis_.reset();
  closed_ = true;
  if (!s) {
    (void)env_->unlink(out_path_);
    return s;
  }
  // Only the longer prefix is worth keeping. A crash between these unlinks
  // and the rename still leaves the output under a part name (a basis).
  remove_partials();
  (void)env_->unlink(part_path_);
  RECSYNC_RETURN_IF_ERROR(env_->rename_noreplace(out_path_, part_path_));
  return env_->sync_dir(dir_);
}

}  // namespace recsync::replication
