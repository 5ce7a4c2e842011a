#pragma once
// Is a spool file still open for writing by some process? A recording that
// is (a call in progress, even during the startup scan) must never be taken
// up as finished (SPEC 4.1). [spool] open_check chooses the check:
//
// - "lease": fcntl(F_SETLEASE, F_RDLCK) on our read-only descriptor. The
//   kernel refuses it (EAGAIN) while any descriptor is open for writing, and
//   once held, a later open for writing breaks it (File::lease_intact()
//   turns false), so the copy can notice a writer that came back. Needs: the
//   daemon owns the file or has CAP_LEASE (root has it), and
//   fs.leases-enable = 1 (the default). Works on tmpfs and ext4/xfs; not on
//   NFS and some FUSE file systems (EINVAL).
// - "proc": scans /proc/[pid]/fd/* for a descriptor of the same (dev, ino)
//   whose /proc/[pid]/fdinfo/[fd] "flags:" has O_WRONLY or O_RDWR. Needs: the
//   same uid as the writer (FreeSWITCH's user) or CAP_SYS_PTRACE (reading
//   another user's fd links) plus CAP_DAC_READ_SEARCH; /proc mounted without
//   hidepid. Processes it cannot inspect are skipped silently, so running it
//   without those rights misses writers. Cost: one fstatat per descriptor in
//   the system per check (a few ms for ~10k descriptors). Snapshot only: it
//   cannot see a writer that opens the file after the check. Sees only
//   processes in the daemon's pid namespace (a writer in another container
//   is invisible to it; use lease there).
// - "auto" (default): lease; when the lease is refused for lack of rights
//   (EACCES/EPERM) or unsupported by the file system (EINVAL), proc.
// - "none": no check; only the settle time protects open files. For spools
//   whose writers never pause longer than settle.
//
// A lease break makes the kernel send SIGIO, whose default action kills the
// process: the first lease check sets SIGIO to SIG_IGN if its disposition is
// still SIG_DFL (a handler installed by the program is left alone).
//
// The daemon runs as root (CAP_LEASE, CAP_SYS_PTRACE): then both checks work
// for any writer. Thread safety: free functions; check_no_writer may run on
// any thread, for a File owned by that thread.
#include <string>
#include <string_view>

#include "recsync/env.h"
#include "recsync/status.h"

namespace recsync {

enum class OpenCheck { kAuto, kLease, kProc, kNone };

// "auto", "lease", "proc", "none" (exact, lower case); else kInvalid.
Result<OpenCheck> parse_open_check(std::string_view s);
const char* open_check_name(OpenCheck c);

// f: the spool file opened read-only (Env::open_read); path: its path, for
// messages. Returns OK when no process has it open for writing, kBusy when
// one does, another error when the check itself failed (then the caller must
// treat the file as not finished yet).
//
// With kLease, and with kAuto when the lease was granted, OK leaves the read
// lease HELD on f: keep holding it while copying and check
// f.lease_intact() before publishing; release with f.release_lease() (the
// File destructor releases it too). While held, a writer's open() blocks
// until the lease is released or fs.lease-break-time (default 45 s) passes,
// so a holder must poll lease_intact() often (e.g. per copied chunk) and
// release at once when it turns false. With kProc / kNone nothing is held.
Status check_no_writer(File& f, const std::string& path, OpenCheck mode);

// The /proc scan alone, for a file identified by (dev, ino); exposed for
// tests and for `recsync` diagnostics. kBusy names the writer's pid.
Status proc_check_no_writer(uint64_t dev, uint64_t ino, const std::string& path);

}  // namespace recsync
