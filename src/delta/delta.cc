#include "delta/delta.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "recsync/log.h"

namespace recsync::delta {
namespace {

// librsync prints to stderr by default; its messages are only detail for the
// Status we return, so route them to the delta logger at debug level.
void trace_to_log(rs_loglevel level, const char* msg) {
  auto lg = log::get("delta");
  if (level <= RS_LOG_ERR)
    lg->debug("librsync: {}", msg);
  else
    lg->trace("librsync: {}", msg);
}

void init_librsync_logging() {
  static std::once_flag once;
  std::call_once(once, [] {
    rs_trace_to(trace_to_log);
    rs_trace_set_level(RS_LOG_ERR);
  });
}

uint32_t get_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

constexpr size_t kSigHeaderLen = 12;  // magic, block_len, strong_len

}  // namespace

Status from_rs(rs_result r, const std::string& what) {
  std::string m = what + ": " + rs_strerror(r);
  switch (r) {
    case RS_DONE:
    case RS_BLOCKED:
    case RS_RUNNING:
      return Status::ok();
    case RS_INPUT_ENDED:
      return Status::corrupt(what + ": input truncated (" + rs_strerror(r) + ")");
    case RS_BAD_MAGIC:
    case RS_CORRUPT:
      return Status::corrupt(std::move(m));
    case RS_MEM_ERROR:
      return Status::io(std::move(m), ENOMEM);
    case RS_IO_ERROR:
      return Status::io(std::move(m));
    default:
      return Status::invalid(std::move(m));
  }
}

// ---------------------------------------------------------------- StreamJob

StreamJob::StreamJob(JobPtr job, std::string what) : what_(std::move(what)), job_(std::move(job)) {
  if (!job_) error_ = Status::io(what_ + ": cannot create librsync job", ENOMEM);
}

Status StreamJob::step(std::span<const uint8_t>& in, bool eof, std::span<uint8_t>& out) {
  if (!error_.is_ok()) return error_;
  if (eof_seen_ && !eof) return error_ = Status::invalid(what_ + ": eof withdrawn");
  eof_seen_ = eof;
  if (done_) {
    if (!in.empty())
      return error_ = Status::corrupt(what_ + ": trailing bytes after end of stream");
    return Status::ok();
  }
  rs_buffers_t b{};
  b.next_in = const_cast<char*>(reinterpret_cast<const char*>(in.data()));
  b.avail_in = in.size();
  b.eof_in = eof ? 1 : 0;
  b.next_out = reinterpret_cast<char*>(out.data());
  b.avail_out = out.size();
  rs_result r = rs_job_iter(job_.get(), &b);
  size_t used_in = in.size() - b.avail_in;
  size_t used_out = out.size() - b.avail_out;
  in = in.subspan(used_in);
  out = out.subspan(used_out);
  bytes_in_ += used_in;
  bytes_out_ += used_out;
  if (bytes_out_ > max_out_)
    return error_ = Status::corrupt(what_ + ": output larger than " + std::to_string(max_out_) +
                                    " bytes");
  if (r == RS_DONE) {
    done_ = true;
    if (Status s = on_done(); !s.is_ok()) return error_ = s;
    if (!in.empty())
      return error_ = Status::corrupt(what_ + ": trailing bytes after end of stream");
    return Status::ok();
  }
  if (r == RS_BLOCKED) {
    if (!callback_error_.is_ok()) return error_ = callback_error_;
    return Status::ok();
  }
  if (!callback_error_.is_ok()) return error_ = callback_error_;
  return error_ = from_rs(r, what_);
}

Status StreamJob::feed(std::span<const uint8_t> in, bool eof, std::vector<uint8_t>& out) {
  if (scratch_.empty()) scratch_.resize(kStepBuffer);
  // Each round either consumes input or produces output, so this ends; the
  // bound is a backstop against a library that stops making progress.
  for (;;) {
    std::span<uint8_t> space(scratch_);
    size_t in_before = in.size();
    Status s = step(in, eof, space);
    size_t produced = scratch_.size() - space.size();
    out.insert(out.end(), scratch_.begin(), scratch_.begin() + produced);
    RECSYNC_RETURN_IF_ERROR(s);
    if (done_) return Status::ok();
    if (produced == 0 && in.size() == in_before) break;
  }
  if (!in.empty()) return error_ = Status::invalid(what_ + ": librsync stalled with input pending");
  if (eof) return error_ = Status::corrupt(what_ + ": input truncated");
  return Status::ok();
}

// ------------------------------------------------------------- SignatureJob

Result<SignatureJob> SignatureJob::create(int64_t basis_size) {
  init_librsync_logging();
  rs_magic_number magic = RS_BLAKE2_SIG_MAGIC;
  size_t block_len = 0;
  size_t strong_len = 0;
  rs_result r = rs_sig_args(basis_size < 0 ? -1 : basis_size, &magic, &block_len, &strong_len);
  if (r != RS_DONE) return from_rs(r, "signature args");
  JobPtr j(rs_sig_begin(block_len, strong_len, magic));
  if (!j) return Status::io("signature: cannot create librsync job", ENOMEM);
  return SignatureJob(std::move(j), block_len);
}

// ---------------------------------------------------------- LoadedSignature

LoadedSignature::LoadedSignature(uint64_t max_bytes)
    : max_bytes_(max_bytes), holder_(std::make_unique<rs_signature_t*>(nullptr)) {
  init_librsync_logging();
  job_.reset(rs_loadsig_begin(holder_.get()));
  // The loadsig job allocates the signature at once and leaves it to us.
  sig_.reset(*holder_);
  if (!job_ || !sig_) error_ = Status::io("load signature: cannot create librsync job", ENOMEM);
}

Status LoadedSignature::check_header() {
  const uint8_t* h = header_.data();
  uint32_t magic = get_be32(h);
  uint32_t block_len = get_be32(h + 4);
  uint32_t strong_len = get_be32(h + 8);
  if (magic != static_cast<uint32_t>(RS_BLAKE2_SIG_MAGIC))
    return Status::corrupt("load signature: not a BLAKE2 librsync signature");
  if (block_len < 1 || block_len > kMaxBlockLen)
    return Status::corrupt("load signature: implausible block length " + std::to_string(block_len));
  if (strong_len < 16 || strong_len > RS_MAX_STRONG_SUM_LENGTH)
    return Status::corrupt("load signature: implausible strong sum length " +
                           std::to_string(strong_len));
  block_len_ = block_len;
  strong_len_ = strong_len;
  return Status::ok();
}

Status LoadedSignature::feed(std::span<const uint8_t> in, bool eof) {
  if (!error_.is_ok()) return error_;
  if (ready_) {
    if (!in.empty()) return error_ = Status::corrupt("load signature: bytes after end");
    return Status::ok();
  }
  total_ += in.size();
  if (total_ > max_bytes_)
    return error_ = Status::corrupt("load signature: larger than " + std::to_string(max_bytes_) +
                                    " bytes");
  // Hold back the header until it can be checked, so librsync never sees an
  // absurd block length.
  if (header_.size() < kSigHeaderLen) {
    size_t take = std::min(kSigHeaderLen - header_.size(), in.size());
    header_.insert(header_.end(), in.begin(), in.begin() + take);
    in = in.subspan(take);
    if (header_.size() < kSigHeaderLen) {
      if (eof) return error_ = Status::corrupt("load signature: input truncated (no header)");
      return Status::ok();
    }
    if (Status s = check_header(); !s.is_ok()) return error_ = s;
    RECSYNC_RETURN_IF_ERROR(feed_job(header_, false));
  }
  if (eof && (total_ - kSigHeaderLen) % (4 + strong_len_) != 0)
    return error_ = Status::corrupt("load signature: truncated block entry");
  RECSYNC_RETURN_IF_ERROR(feed_job(in, eof));
  if (eof && !ready_) return error_ = Status::corrupt("load signature: input truncated");
  return Status::ok();
}

Status LoadedSignature::feed_job(std::span<const uint8_t> in, bool eof) {
  // loadsig produces no output; keep cranking until the input is taken.
  for (int guard = 0;; ++guard) {
    rs_buffers_t b{};
    b.next_in = const_cast<char*>(reinterpret_cast<const char*>(in.data()));
    b.avail_in = in.size();
    b.eof_in = eof ? 1 : 0;
    char dummy;
    b.next_out = &dummy;
    b.avail_out = 0;
    rs_result r = rs_job_iter(job_.get(), &b);
    size_t used = in.size() - b.avail_in;
    in = in.subspan(used);
    if (r == RS_DONE) {
      if (!in.empty()) return error_ = Status::corrupt("load signature: bytes after end");
      rs_result h = rs_build_hash_table(sig_.get());
      if (h != RS_DONE) return error_ = from_rs(h, "load signature: build hash table");
      ready_ = true;
      job_.reset();
      return Status::ok();
    }
    if (r != RS_BLOCKED) return error_ = from_rs(r, "load signature");
    if (in.empty()) return Status::ok();
    if (used == 0)
      return error_ = Status::invalid("load signature: librsync stalled with input pending");
  }
}

// ------------------------------------------------------------------ DeltaJob

Result<DeltaJob> DeltaJob::create(const LoadedSignature& sig) {
  init_librsync_logging();
  if (!sig.ready()) return Status::invalid("delta: signature not completely loaded");
  JobPtr j(rs_delta_begin(sig.get()));
  if (!j) return Status::io("delta: cannot create librsync job", ENOMEM);
  return DeltaJob(std::move(j));
}

// ------------------------------------------------------------------ PatchJob

BasisReader pread_basis(int fd) {
  return [fd](uint64_t offset, std::span<uint8_t> buf) -> Result<size_t> {
    for (;;) {
      ssize_t r = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(offset));
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR) return Status::from_errno(errno, "read basis");
    }
  };
}

PatchJob::PatchJob(BasisReader r, uint64_t max_output)
    : StreamJob(JobPtr(rs_patch_begin(&PatchJob::copy_cb, this)), "patch"),
      read_basis_(std::move(r)) {
  max_out_ = max_output;
}

Result<std::unique_ptr<PatchJob>> PatchJob::create(BasisReader read_basis, uint64_t max_output) {
  init_librsync_logging();
  if (!read_basis) return Status::invalid("patch: no basis reader");
  std::unique_ptr<PatchJob> j(new PatchJob(std::move(read_basis), max_output));
  if (!j->error_.is_ok()) return j->error_;
  return j;
}

rs_result PatchJob::copy_cb(void* opaque, rs_long_t pos, size_t* len, void** buf) {
  auto* self = static_cast<PatchJob*>(opaque);
  if (pos < 0) {
    self->callback_error_ = Status::corrupt("patch: negative basis offset");
    return RS_CORRUPT;
  }
  if (self->bytes_out() + *len > self->max_out_) {
    self->callback_error_ =
        Status::corrupt("patch: output larger than " + std::to_string(self->max_out_) + " bytes");
    return RS_CORRUPT;
  }
  // librsync loops forever on a short copy, so fill all of it or fail.
  std::span<uint8_t> dst(static_cast<uint8_t*>(*buf), *len);
  size_t got = 0;
  while (got < dst.size()) {
    Result<size_t> r = self->read_basis_(static_cast<uint64_t>(pos) + got, dst.subspan(got));
    if (!r) {
      self->callback_error_ = r.status().with_context("patch");
      return RS_IO_ERROR;
    }
    if (*r == 0) {
      self->callback_error_ = Status::corrupt("patch: delta copies past end of basis (offset " +
                                              std::to_string(pos + got) + ")");
      return RS_CORRUPT;
    }
    got += *r;
  }
  return RS_DONE;
}

// ------------------------------------------------------------------- one-shot

Result<std::vector<uint8_t>> signature_of(std::span<const uint8_t> basis) {
  auto job = SignatureJob::create(static_cast<int64_t>(basis.size()));
  if (!job) return job.status();
  std::vector<uint8_t> out;
  RECSYNC_RETURN_IF_ERROR(job->feed(basis, true, out));
  return out;
}

Result<std::vector<uint8_t>> delta_of(std::span<const uint8_t> signature,
                                      std::span<const uint8_t> new_file) {
  LoadedSignature sig;
  RECSYNC_RETURN_IF_ERROR(sig.feed(signature, true));
  auto job = DeltaJob::create(sig);
  if (!job) return job.status();
  std::vector<uint8_t> out;
  RECSYNC_RETURN_IF_ERROR(job->feed(new_file, true, out));
  return out;
}

Result<std::vector<uint8_t>> patch(std::span<const uint8_t> basis, std::span<const uint8_t> delta) {
  auto job = PatchJob::create([basis](uint64_t off, std::span<uint8_t> buf) -> Result<size_t> {
    if (off >= basis.size()) return size_t{0};
    size_t n = std::min<uint64_t>(buf.size(), basis.size() - off);
    std::copy_n(basis.begin() + off, n, buf.begin());
    return n;
  });
  if (!job) return job.status();
  std::vector<uint8_t> out;
  RECSYNC_RETURN_IF_ERROR((*job)->feed(delta, true, out));
  return out;
}

}  // namespace recsync::delta
