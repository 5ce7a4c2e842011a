#pragma once
// Receiver-side assembly of one replicated file into the archive (SPEC 4.2),
// with resume. The network session drives it:
//
//   auto in = InboundFile::begin(env, archive_root, rel, size, hash, mtime);
//   send in->signature() to the sender            // basis: partial or older file
//   in->feed_delta(bytes) ... for each delta chunk
//   in->finish()                                  // verify, publish, then ack
//   or, when the link drops: in->abort_keep_partial()
//
// Names it creates in the folder of `rel` (all hidden, so the watcher,
// scanner and archiver ignore them):
//   .recsync-part.<name>          the committed partial: bytes received by an
//                                 interrupted transfer; the next attempt's basis.
//   .recsync-part.<name>.<16hex>  the output being written now. It uses the part
//                                 prefix, not kTempPrefix, so a receiver killed
//                                 with -9 keeps it (startup reconcile removes
//                                 old ".recsync-tmp." files) and the next begin()
//                                 takes it as the basis: the resume survives a
//                                 crash, not only a cut link.
// Neither name is ever published or acked; the whole-file hash check before
// the rename is what makes using an unsynced or stale partial as a basis safe.
// A partial whose transfer never resumes is removed by the retention pass's
// temp sweep after retention.tmp_grace; one of a recording that arrived
// whole meanwhile by remove_inbound_partials().
//
// Basis choice: the largest regular partial (committed or left by a crash)
// no bigger than the size limit; otherwise the existing final file at `rel`
// (an older version); otherwise none (the signature of an empty basis).
//
// Path safety: `rel` must pass peer::validate_peer_path; every existing
// folder between archive_root and the file must be a real folder (lstat, not
// a symlink); the name must leave room for the engine's prefixes
// (kMaxInboundNameLen). archive_root itself is trusted (operator config).
// Files above max_file_size are refused. Refusals are kRefused.
//
// Ownership and threads: an InboundFile owns its open files; one thread at a
// time. At most one InboundFile per (archive_root, rel) at a time: the
// session must not receive the same path twice concurrently. Destroying an
// InboundFile without finish()/abort_keep_partial()/discard() writes out the
// bytes it produced and leaves its files as a crash would (the next begin()
// resumes from them).
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "delta/delta.h"
#include "recsync/env.h"
#include "recsync/hash.h"
#include "recsync/names.h"
#include "recsync/publish.h"
#include "recsync/status.h"

namespace recsync::replication {

// Receive partials use names.h kPartPrefix, distinct from kTempPrefix so
// that the startup reconcile's removal of old temps leaves them alone.
using recsync::is_part_name;
using recsync::kPartPrefix;

// Longest file name accepted: NAME_MAX minus the in-progress name's overhead
// (".recsync-part." + "." + 16 hex digits = 31 bytes).
inline constexpr size_t kMaxInboundNameLen = 255 - 31;

struct InboundOptions {
  // Largest file a peer may send. Default: 4 GiB.
  uint64_t max_file_size = 4ull << 30;
  mode_t file_mode = 0640;
  mode_t dir_mode = 0750;
};

// Which basis begin() chose.
enum class BasisKind { kNone, kPartial, kFinal };
const char* basis_kind_name(BasisKind k);

struct InboundResult {
  std::string rel;       // where it was published (rel, or rel.vN)
  bool already = false;  // an identical file already held that name
  uint64_t size = 0;
};

// Removes every partial of rel (the committed one and crash-left outputs),
// for when the recording is already in the archive and no transfer will use
// them (a receiver killed between publishing and removing its partials, then
// offered the same recording again). Same path checks as begin(); never
// touches a non-file. The caller must hold rel: no InboundFile for it meanwhile.
Status remove_inbound_partials(Env* env, const std::string& archive_root, const std::string& rel);

class InboundFile {
 public:
  // Validates, picks the basis, computes its signature (reads the whole
  // basis: call off the event loop), and opens the output file (creating the
  // folders of rel as needed). expected_hash is "xxh128:<32 hex>" (hash.h).
  static Result<std::unique_ptr<InboundFile>> begin(Env* env, const std::string& archive_root,
                                                    const std::string& rel, uint64_t expected_size,
                                                    const std::string& expected_hash,
                                                    int64_t mtime_ns,
                                                    const InboundOptions& opt = {});
  ~InboundFile();
  InboundFile(const InboundFile&) = delete;
  InboundFile& operator=(const InboundFile&) = delete;

  // The librsync signature of the basis, for the sender (never empty: with no
  // basis it is the signature of an empty file).
  const std::vector<uint8_t>& signature() const { return signature_; }
  BasisKind basis_kind() const { return basis_kind_; }
  uint64_t basis_size() const { return basis_size_; }
  // True when the final file at rel already has the expected size and hash:
  // the session may skip the transfer and call accept_existing() (finish()
  // after a full delta works too and reports already=true).
  bool already_present() const { return already_present_; }
  // Only when already_present(): closes without a transfer, removes the
  // output and any partials, returns {rel, already=true}. kInvalid otherwise.
  Result<InboundResult> accept_existing();

  // Patches the next delta chunk into the output file. Any chunk sizes.
  // kCorrupt when the delta is malformed or produces more than
  // expected_size bytes; then the InboundFile is failed (call discard()).
  Status feed_delta(std::span<const uint8_t> delta);
  // Only when basis_size() == 0 (the signature has no blocks): the file's
  // bytes as they are, instead of a delta (a delta against nothing is all
  // literal; this skips librsync's framing and its CPU on both sides). Any
  // chunk sizes; more than expected_size bytes in total is kCorrupt. Not
  // mixable with feed_delta (kInvalid).
  Status feed_literal(std::span<const uint8_t> bytes);
  // Bytes of the new file produced so far (written or batched).
  uint64_t bytes_written() const { return written_ + buf_.size(); }

  // Publishes the verified, fsynced output (its path given) and says where
  // it went; the receiver passes one that applies the placement rule
  // (archive/placer.h). Without one: publish_noreplace at rel (identical
  // file there -> already; a different one -> rel.v2, .v3, ...).
  using Publish = std::function<Result<Published>(const std::string& out_path)>;
  // Ends the delta, verifies size and hash, fsyncs, sets the mtime,
  // publishes, fsyncs the folder and removes the partials. On a size or hash
  // mismatch: kCorrupt, the output AND the partials are deleted (a bad basis
  // must not poison the retry), nothing is published. A publish error
  // (kConflict, say) removes the output and keeps the partials.
  Result<InboundResult> finish(const Publish& publish = nullptr);

  // The link dropped: keeps the bytes patched so far as the committed partial
  // (fsynced), unless an existing partial is longer, so the next begin()
  // offers a signature covering them.
  Status abort_keep_partial();

  // Gives up: removes the output file (partials stay). Best effort.
  void discard();

 private:
  InboundFile() = default;
  Status init(Env* env, const std::string& archive_root, const std::string& rel,
              uint64_t expected_size, const std::string& expected_hash, int64_t mtime_ns,
              const InboundOptions& opt);
  Status choose_basis();
  Status make_signature();
  Status check_folders() const;
  Status flush_out();
  // Writes bytes to out_, hashes and counts them; every kWriteBehind bytes,
  // out_->write_behind().
  Status write_out(std::span<const uint8_t> bytes);
  Status fail(Status s);
  void remove_partials();

  Env* env_ = nullptr;
  InboundOptions opt_;
  std::string root_;
  std::string rel_;
  std::string name_;
  std::string dir_;  // absolute folder of the final file
  std::string final_path_;
  std::string part_path_;  // committed partial
  std::string out_path_;   // in-progress output
  uint64_t expected_size_ = 0;
  std::string expected_hash_;
  int64_t mtime_ns_ = 0;

  BasisKind basis_kind_ = BasisKind::kNone;
  std::string basis_path_;
  uint64_t basis_size_ = 0;
  std::unique_ptr<File> basis_;
  std::vector<std::string> partials_;  // every partial of this name seen by begin()
  std::vector<uint8_t> signature_;
  bool already_present_ = false;

  std::unique_ptr<File> out_;
  std::unique_ptr<delta::PatchJob> patch_;
  Hasher hasher_;
  uint64_t written_ = 0;         // bytes written to out_ (and hashed)
  uint64_t written_behind_ = 0;  // written_ at the last write_behind()
  std::vector<uint8_t> buf_;     // produced, not yet written
  Status error_;
  bool closed_ = false;  // finished, aborted or discarded
  enum class Mode { kUnset, kDelta, kLiteral } mode_ = Mode::kUnset;
};

}  // namespace recsync::replication
