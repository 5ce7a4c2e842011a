#pragma once
// Moves one finished recording from the spool into the archive, durably.
//
// The protocol (SPEC 4.3, STYLE habit 7), for spool file S:
//   1. open S, check no process has it open for writing (read lease, held
//      through step 7, or /proc), check it has been quiet for `settle`;
//   2. copy S to <final folder>/.recsync-tmp.<name>.<random> while hashing,
//      carry S's mtime over (the recording time), fsync the temp;
//   3. re-check S: same size and mtime, lease not broken (no writer came);
//   4. read the temp back and compare its hash (verify);
//   5. publish the temp through the Placer (placement.h) under the origin
//      path: the layout path, or name.vN.ext when this node already archived
//      other content there (a file written again); never over another file:
//      an identical file there means "already archived" (a crash between
//      rename and unlink); a peer's recording there is settled by the rule;
//   6. fsync the folder, record the recording in the state store (and queue
//      it for the peers) in one transaction;
//   7. only then unlink S.
// A recording erased here (a tombstone, erase/eraser.h) is not published:
// S is removed at step 7 and the outcome is kVanished.
// A crash at any point leaves S, or the final archive copy, or both; never a
// partial file under a final name. Temps left by a crash are removed by the
// startup reconcile scan.
//
// Logs under "archive" (a line per failure at debug; the pipeline reports).
//
// Thread safety: archive_one() may run on several worker threads at once for
// different files; the same spool path must not be given to two at once.
#include <memory>
#include <string>

#include "archive/layout.h"
#include "archive/placer.h"
#include "recsync/env.h"
#include "recsync/page_budget.h"
#include "recsync/units.h"
#include "state/store.h"
#include "watch/writer_check.h"

namespace recsync {

struct ArchiverOptions {
  std::string spool_root;
  std::string archive_root;
  Layout layout = Layout::kDate;
  OpenCheck open_check = OpenCheck::kAuto;
  // Each archived recording is recorded and queued for the peers the state
  // store's replication queue knows, in one transaction. With peers, the
  // archived copy's pages are left in the page cache after the verify while
  // `page_budget` grants them (one share per peer; no budget: always): the
  // peer sender reads the file next (and drops them). Otherwise they are
  // dropped at once.
  PageBudget* page_budget = nullptr;  // not owned; outlives the Archiver
  // Where recordings are published (placement.h), shared with the peer
  // receiver; not owned. Null: the Archiver uses one of its own (a single
  // node whose name sorts as "local").
  Placer* placer = nullptr;
};

struct ArchiveOutcome {
  enum class Kind {
    kArchived,         // copied, verified, spool copy removed
    kAlreadyArchived,  // an identical copy was in place; spool copy removed
    kNotSettled,       // written to within settle: try again at retry_at_ms
    kWriterBusy,       // still open for writing by some process
    kChanged,          // written to while being copied; temp discarded
    kVanished,         // the spool file is gone (nothing to do)
    kSkipped,          // not a regular file
    kFailed,           // status says why; the spool copy is untouched
  } kind = Kind::kFailed;
  Status status;
  RecordingRow row;         // for kArchived / kAlreadyArchived
  int64_t retry_at_ms = 0;  // for kNotSettled: wall time when it will be quiet
  double copy_ms = 0;
};

const char* outcome_name(ArchiveOutcome::Kind k);

class Archiver {
 public:
  // env and store must outlive the Archiver.
  Archiver(Env* env, StateStore* store, ArchiverOptions opt);

  ArchiveOutcome archive_one(const std::string& spool_rel, Millis settle);

 private:
  struct Source;
  // Step 1: the spool file, open, quiet and with no writer; or the outcome
  // that ends the attempt (nullopt in `src` then).
  ArchiveOutcome open_source(const std::string& spool_rel, Millis settle,
                             std::unique_ptr<Source>& src);
  // Steps 2-4 into `tmp`: the verified hash, or the outcome that ends it.
  ArchiveOutcome copy_verified(Source& src, const std::string& tmp, bool keep_pages,
                               std::string& hash);
  Result<std::string> copy_to_temp(File& src, const std::string& tmp, int64_t mtime_ns,
                                   bool leased);
  // Step 7: the spool copy goes only if it is still the file we copied.
  ArchiveOutcome remove_source(Source& src);

  Env* env_;
  StateStore* store_;
  ArchiverOptions opt_;
  std::unique_ptr<Placer> own_placer_;  // when opt_.placer is null
};

}  // namespace recsync
