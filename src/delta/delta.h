#pragma once
// Streaming wrappers around librsync 2.3.2 jobs (signature, load signature,
// delta, patch). librsync never does I/O: a job is cranked with caller-owned
// buffers through rs_job_iter (librsync doc/streaming.md), and so are these
// wrappers, so they can sit behind a non-blocking socket.
//
// Every job offers two equivalent ways to drive it:
//   - step(in, eof, out): exactly one rs_job_iter call. Consumes a prefix of
//     `in` and fills a prefix of `out`, advancing both spans. Any sizes are
//     allowed, including empty spans (then it may make no progress, but never
//     loops or fails). The caller keeps unconsumed input and calls again.
//   - feed(in, eof, out): consumes ALL of `in`, appending every byte of output
//     it can produce to `out`, through a fixed internal buffer (kStepBuffer).
// `eof` says that `in` holds the last bytes of the input; once given, it must
// stay true on later calls, and `in` must then always be the whole unconsumed
// rest of the input. A job is done() when librsync finished; input
// after that is an error (kCorrupt), as is input that ends too early.
//
// Errors are sticky: after a non-OK Status every later call returns it again.
// Ownership: each object owns its rs_job_t (and LoadedSignature its
// rs_signature_t) and frees it in its destructor. Objects are movable, not
// copyable. Thread safety: none; one thread at a time per object.
#include <librsync.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "recsync/status.h"

namespace recsync::delta {

// Output buffer feed() hands to rs_job_iter at a time.
inline constexpr size_t kStepBuffer = 64 * 1024;
// Largest signature block length accepted from a peer (librsync picks about
// sqrt(file size), so 1 MiB covers files up to ~1 TiB).
inline constexpr uint32_t kMaxBlockLen = 1 << 20;
// Default cap on a loaded signature (a 4 GiB basis gives ~2.6 MB).
inline constexpr uint64_t kDefaultMaxSignatureBytes = 64ull << 20;

struct JobDeleter {
  void operator()(rs_job_t* j) const { rs_job_free(j); }
};
struct SignatureDeleter {
  void operator()(rs_signature_t* s) const { rs_free_sumset(s); }
};
using JobPtr = std::unique_ptr<rs_job_t, JobDeleter>;
using SignaturePtr = std::unique_ptr<rs_signature_t, SignatureDeleter>;

// Maps an rs_result to a Status ("what: librsync message").
Status from_rs(rs_result r, const std::string& what);

// Shared cranking logic. Not used directly.
class StreamJob {
 public:
  StreamJob(StreamJob&&) = default;
  StreamJob& operator=(StreamJob&&) = default;

  Status step(std::span<const uint8_t>& in, bool eof, std::span<uint8_t>& out);
  Status feed(std::span<const uint8_t> in, bool eof, std::vector<uint8_t>& out);
  bool done() const { return done_; }
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }

 protected:
  StreamJob(JobPtr job, std::string what);
  // Called once when the job reports RS_DONE; may fail (e.g. hash table).
  virtual Status on_done() { return Status::ok(); }
  // Error recorded by a callback (patch basis reader), preferred over the
  // generic librsync code.
  Status callback_error_;
  Status error_;
  std::string what_;
  uint64_t max_out_ = UINT64_MAX;  // kCorrupt once more output than this

 public:
  virtual ~StreamJob() = default;

 private:
  JobPtr job_;
  bool done_ = false;
  bool eof_seen_ = false;
  uint64_t bytes_in_ = 0;
  uint64_t bytes_out_ = 0;
  std::vector<uint8_t> scratch_;
};

// Basis bytes in, signature bytes out. Uses RS_BLAKE2_SIG_MAGIC; block length
// chosen from `basis_size` as rs_sig_args does (-1 = unknown size: librsync's
// default 2048); strong sum length: librsync's maximum for BLAKE2 (32).
class SignatureJob : public StreamJob {
 public:
  static Result<SignatureJob> create(int64_t basis_size);
  size_t block_len() const { return block_len_; }

 private:
  SignatureJob(JobPtr j, size_t block_len)
      : StreamJob(std::move(j), "signature"), block_len_(block_len) {}
  size_t block_len_;
};

// A signature read from bytes (the peer's), indexed for delta computation
// once complete. Only BLAKE2 signatures with block length <= kMaxBlockLen and
// at most `max_bytes` long are accepted (kCorrupt otherwise). Must outlive
// every DeltaJob made from it; one DeltaJob at a time (librsync updates
// counters in the signature while searching).
class LoadedSignature {
 public:
  explicit LoadedSignature(uint64_t max_bytes = kDefaultMaxSignatureBytes);
  LoadedSignature(LoadedSignature&&) = default;
  LoadedSignature& operator=(LoadedSignature&&) = default;

  // Consumes all of `in`. When eof is true and the signature is complete the
  // hash table is built and ready() becomes true.
  Status feed(std::span<const uint8_t> in, bool eof);
  bool ready() const { return ready_; }
  // Block length declared in the signature header (0 until known).
  uint32_t block_len() const { return block_len_; }
  rs_signature_t* get() const { return sig_.get(); }

 private:
  Status check_header();
  Status feed_job(std::span<const uint8_t> in, bool eof);
  uint64_t max_bytes_;
  uint64_t total_ = 0;
  std::vector<uint8_t> header_;  // first 12 bytes, checked before librsync sees them
  uint32_t block_len_ = 0;
  uint32_t strong_len_ = 0;
  std::unique_ptr<rs_signature_t*> holder_;  // stable address for rs_loadsig_begin
  SignaturePtr sig_;
  JobPtr job_;
  bool ready_ = false;
  Status error_;
};

// New-file bytes in, delta bytes out, against a ready LoadedSignature
// (borrowed: must outlive this job).
class DeltaJob : public StreamJob {
 public:
  static Result<DeltaJob> create(const LoadedSignature& sig);

 private:
  explicit DeltaJob(JobPtr j) : StreamJob(std::move(j), "delta") {}
};

// Reads basis bytes at `offset` into `buf`; returns how many were read. Fewer
// than buf.size() only at end of the basis (0 past the end). The caller
// implements it with pread on the basis file (see pread_basis).
using BasisReader = std::function<Result<size_t>(uint64_t offset, std::span<uint8_t> buf)>;

// A BasisReader over an open fd (pread, retried on EINTR). The fd is borrowed.
BasisReader pread_basis(int fd);

// Delta bytes in, new-file bytes out; basis read through `read_basis`.
// A delta that copies past the end of the basis is kCorrupt. `max_output`
// bounds the produced file (kCorrupt beyond it); default: unlimited.
class PatchJob : public StreamJob {
 public:
  static Result<std::unique_ptr<PatchJob>> create(BasisReader read_basis,
                                                  uint64_t max_output = UINT64_MAX);
  // librsync holds a pointer to this object: it never moves.
  PatchJob(PatchJob&&) = delete;
  PatchJob& operator=(PatchJob&&) = delete;

 private:
  PatchJob(BasisReader r, uint64_t max_output);
  static rs_result copy_cb(void* opaque, rs_long_t pos, size_t* len, void** buf);
  BasisReader read_basis_;
};

// One-shot helpers (tests, small files).
Result<std::vector<uint8_t>> signature_of(std::span<const uint8_t> basis);
Result<std::vector<uint8_t>> delta_of(std::span<const uint8_t> signature,
                                      std::span<const uint8_t> new_file);
Result<std::vector<uint8_t>> patch(std::span<const uint8_t> basis, std::span<const uint8_t> delta);

}  // namespace recsync::delta
