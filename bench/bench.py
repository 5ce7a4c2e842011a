#!/usr/bin/env python3
"""recsync benchmarks (issue 2). Run through bench/run.sh, which builds the
binaries, makes the work folder and cleans up after a crash of this script.

1. archive: archive throughput tmpfs -> ext4, recsyncd vs rsync -a
   --remove-source-files (and rsync + sync) on identical input.
2. startup: 50,000 recordings in the spool and 500,000 in the archive; time
   to READY=1, peak RSS, time to drain the spool and to reconcile the
   archive; first start (fresh state) and restart (state DB built).
3. retention: one pass over the 500,000 archived recordings, mtimes spread
   over 30 days (--expire daily: 16 days), keep = 15d, pace = 0.

Every wait is bounded; every mount, loop device, daemon and temp folder is
undone in `finally` (and by run.sh's trap if this process dies). Exit codes:
0 the run completed (targets met or not); 1 a broken run.
"""
import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

MB = 1_000_000
MiB = 1 << 20
GiB = 1 << 30


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(argv, timeout=600, check=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise BenchError(f"{' '.join(map(str, argv))} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
    return r


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def quiet_disk(timeout=120):
    """sync, then wait (bounded) until the kernel has no dirty or writeback
    pages left to speak of (< 8 MiB)."""
    os.sync()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/meminfo") as f:
            kib = sum(int(l.split()[1]) for l in f if l.startswith(("Dirty:", "Writeback:")))
        if kib < 8 * 1024:
            return
        time.sleep(0.2)


def count_tree(root, skip_top=("lost+found",)):
    """(regular files, bytes, temp names) below root; hidden files count as temps."""
    files = size = temps = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if d not in skip_top]
        for n in filenames:
            if n.startswith("."):
                temps += 1
                continue
            files += 1
            size += os.lstat(os.path.join(dirpath, n)).st_size
    return files, size, temps


def spool_entries(root):
    with os.scandir(root) as it:
        return sum(1 for e in it if not e.name.startswith("."))


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_hwm(pid):
    # "5" resets the peak RSS (VmHWM) to the current RSS (proc(5), clear_refs).
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5\n")


def wait_for(pred, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Cleanup:
    """LIFO of undo actions; each failure is reported, none stops the rest."""

    def __init__(self):
        self.actions = []

    def push(self, what, fn):
        self.actions.append((what, fn))
        return len(self.actions) - 1

    def run_one(self, idx):
        what, fn = self.actions[idx]
        self.actions[idx] = (what, None)
        if fn:
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - keep undoing the rest
                log(f"cleanup {what}: {e}")

    def run_all(self):
        for i in range(len(self.actions) - 1, -1, -1):
            self.run_one(i)
        self.actions.clear()


class Env:
    def __init__(self, work, bindir, cleanup, logs=None):
        self.logs = logs
        self.work = work
        self.bindir = bindir
        self.cleanup = cleanup

    def bin(self, name):
        return os.path.join(self.bindir, name)

    def mount_tmpfs(self, name, size):
        path = os.path.join(self.work, name)
        os.makedirs(path, exist_ok=True)
        sh(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755,nosuid,nodev", "tmpfs", path])
        idx = self.cleanup.push(f"umount {path}", lambda: umount(path))
        return path, idx

    def mount_ext4(self, name, size, mkfs_extra=()):
        """A fresh ext4 on a loop device over a sparse image in the work folder."""
        path = os.path.join(self.work, name)
        image = os.path.join(self.work, name + ".img")
        os.makedirs(path, exist_ok=True)
        with open(image, "wb") as f:
            f.truncate(size)
        dev = sh(["losetup", "--find", "--show", image], timeout=30).stdout.strip()
        try:
            # No lazy init: the kernel's background inode-table zeroing would
            # otherwise write to the disk during the measurement.
            sh(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                *mkfs_extra, dev], timeout=300)
            sh(["mount", "-t", "ext4", dev, path], timeout=60)
        except Exception:
            sh(["losetup", "-d", dev], check=False, timeout=30)
            raise

        def undo():
            umount(path)
            sh(["losetup", "-d", dev], check=False, timeout=30)
            os.unlink(image)

        idx = self.cleanup.push(f"ext4 {path} on {dev}", undo)
        return path, idx


def umount(path):
    r = sh(["umount", path], check=False, timeout=120)
    if r.returncode != 0:
        sh(["umount", "-l", path], check=False, timeout=60)


class Daemon:
    """One recsyncd run: config, NOTIFY_SOCKET listener, status polling."""

    def __init__(self, env, name, spool, archive, state_dir, layout, keep, workers=2):
        self.env = env
        self.dir = os.path.join(env.work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "ctl.sock")
        self.config = os.path.join(self.dir, "recsyncd.conf")
        self.log_path = os.path.join(self.dir, "recsyncd.log")
        self.notify_path = os.path.join(self.dir, "notify.sock")
        with open(self.config, "w") as f:
            f.write(
                f'node = "bench"\nstate_dir = "{state_dir}"\n'
                f'[log]\nlevel = "info"\n'
                f'[control]\nsocket = "{self.socket}"\ngroup = ""\n'
                f'[spool]\npath = "{spool}"\nsettle = "200ms"\n'
                f'[archive]\npath = "{archive}"\nlayout = "{layout}"\nworkers = {workers}\n'
                f'[retention]\nkeep = "{keep}"\ninterval = "1h"\npace = 0\n')
        self.proc = None
        self.t_exec = None
        self.t_ready = None
        self.notes = []

    def _listen(self):
        while not self._stop_listen:
            try:
                data = self._sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            for line in data.decode(errors="replace").splitlines():
                if line == "READY=1" and self.t_ready is None:
                    self.t_ready = now

    def start(self):
        for p in (self.notify_path, self.socket):
            if os.path.exists(p):
                os.unlink(p)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.notify_path)
        self._sock.settimeout(0.2)
        self._stop_listen = False
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        self._logf = open(self.log_path, "a")
        self.t_exec = time.monotonic()
        self.proc = subprocess.Popen([self.env.bin("recsyncd"), "-c", self.config], env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._logf,
                                     stderr=subprocess.STDOUT)
        with open(os.path.join(self.env.work, "pids"), "a") as f:
            f.write(f"{self.proc.pid}\n")
        self._cleanup_idx = self.env.cleanup.push(f"recsyncd {self.proc.pid}", self.kill)

    def wait_ready(self, timeout=120):
        def ready():
            if self.proc.poll() is not None:
                raise BenchError(f"recsyncd exited {self.proc.returncode} before READY; see {self.log_path}")
            return self.t_ready is not None
        wait_for(ready, timeout, "READY=1", interval=0.01)
        return self.t_ready - self.t_exec

    def status(self):
        if self.proc.poll() is not None:
            raise BenchError(f"recsyncd exited {self.proc.returncode}; see {self.log_path}")
        r = subprocess.run([self.env.bin("recsync"), "--socket", self.socket, "status", "--json"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def cli(self, *args):
        return sh([self.env.bin("recsync"), "--socket", self.socket, *args], timeout=60)

    def hwm_kib(self):
        return vm_hwm_kib(self.proc.pid)

    def stop(self, timeout=60):
        """SIGTERM; seconds to exit. A non-zero exit is a broken run."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(f"recsyncd did not stop within {timeout} s of SIGTERM")
        dt = time.monotonic() - t0
        self._finish()
        if rc != 0:
            raise BenchError(f"recsyncd exited {rc} on SIGTERM; see {self.log_path}")
        return dt

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()  # by pid: this run's own daemon only
            self.proc.wait(10)
        self._finish()

    def _finish(self):
        self._stop_listen = True
        if getattr(self, "_sock", None):
            self._sock.close()
            self._sock = None
        if getattr(self, "_logf", None):
            self._logf.close()
            self._logf = None
            if self.env.logs:
                os.makedirs(self.env.logs, exist_ok=True)
                shutil.copy(self.log_path, os.path.join(self.env.logs, os.path.basename(self.dir) + ".log"))
        if getattr(self, "_cleanup_idx", None) is not None:
            self.env.cleanup.actions[self._cleanup_idx] = ("done", None)
            self._cleanup_idx = None


# ------------------------------------------------------------------ bench 1

def bench_archive(env, q, repeat):
    calls = 40 if q else 300
    min_d, max_d = 31.25, (312.5 if q else 625.0)  # 32,000 B/s of audio: 1-10 / 1-20 MB
    tmpfs_size = f"{1 if q else 4}G"
    res = {"calls": calls, "runs": {"recsyncd": [], "rsync": [], "rsync+sync": []}}
    log(f"archive: generating {calls} recordings with recsync-loadgen --speed 0")
    staging, _ = env.mount_tmpfs("staging", tmpfs_size)
    spool, _ = env.mount_tmpfs("spool1", tmpfs_size)
    sh([env.bin("recsync-loadgen"), "--dir", staging, "--calls", str(calls), "--concurrency", "16",
        "--speed", "0", "--min-duration", str(min_d), "--max-duration", str(max_d), "--seed", "42",
        "--max-seconds", "600"], timeout=700)
    n, total, _ = count_tree(staging)
    if n != calls:
        raise BenchError(f"loadgen made {n} files, wanted {calls}")
    res["files"], res["bytes"] = n, total
    log(f"archive: {n} files, {total / MB:.0f} MB; load {loadavg()}")
    image_size = max((1 if q else 4) * GiB, 2 * total)

    def fresh_run(name):
        archive, idx = env.mount_ext4("archive1", image_size)
        sh(["cp", "-a", staging + "/.", spool + "/"], timeout=600)
        drop_caches()
        return archive, idx

    def verify(archive, label):
        left = spool_entries(spool)
        files, size, temps = count_tree(archive)
        if left or files != n or size != total or temps:
            raise BenchError(f"{label}: spool left {left}, archive {files} files / {size} bytes "
                             f"/ {temps} temps; wanted {n} / {total} / 0")

    for rnd in range(repeat):
        # recsyncd: started with the recordings already in the spool (startup
        # scan); timed from exec until the spool is empty and the state DB
        # counts every recording.
        archive, idx = fresh_run("recsyncd")
        state = os.path.join(env.work, f"state1-{rnd}")
        d = Daemon(env, f"d1-{rnd}", spool, archive, state, "flat", "3650d")
        la = loadavg()
        d.start()
        d.wait_ready()

        def done():
            if spool_entries(spool):
                return False
            s = d.status()
            return s is not None and s["archive"]["files"] == n
        wait_for(done, 900, "recsyncd to archive everything", interval=0.05)
        dt = time.monotonic() - d.t_exec
        hwm = d.hwm_kib()
        d.stop()
        verify(archive, "recsyncd")
        res["runs"]["recsyncd"].append({"s": dt, "rss_kib": hwm, "load": la})
        log(f"archive: recsyncd {dt:.2f} s = {total / MB / dt:.0f} MB/s (peak RSS {hwm} KiB)")
        env.cleanup.run_one(idx)

        for label, extra in (("rsync", False), ("rsync+sync", True)):
            archive, idx = fresh_run(label)
            la = loadavg()
            t0 = time.monotonic()
            sh(["rsync", "-a", "--remove-source-files", spool + "/", archive + "/"], timeout=900)
            if extra:
                sh(["sync"], timeout=900)
            dt = time.monotonic() - t0
            verify(archive, label)
            res["runs"][label].append({"s": dt, "load": la})
            log(f"archive: {label} {dt:.2f} s = {total / MB / dt:.0f} MB/s")
            env.cleanup.run_one(idx)
    for k, runs in res["runs"].items():
        res[k] = statistics.median(r["s"] for r in runs)
    return res


# ------------------------------------------------------------- bench 2 + 3

def run_startup(env, label, spool, archive, state, n_spool, want_archive):
    d = Daemon(env, label, spool, archive, state, "date", "3650d")
    la = loadavg()
    d.start()
    ready = d.wait_ready(timeout=300)
    hwm_ready = d.hwm_kib()
    t_drained = t_reconciled = None
    deadline = time.monotonic() + 1200
    while t_drained is None or t_reconciled is None:
        if time.monotonic() > deadline:
            raise BenchError(f"{label}: timed out waiting for drain/reconcile")
        s = d.status()
        now = time.monotonic()
        if s is not None:
            if t_drained is None and s["spool"]["files"] == 0 and \
                    s["archive"]["archived_since_start"] >= n_spool:
                t_drained = now - d.t_exec
            if t_reconciled is None and s["archive"]["reconciled"]:
                t_reconciled = now - d.t_exec
        time.sleep(0.25)
    hwm = d.hwm_kib()
    s = d.status()
    stop_s = d.stop()
    left = spool_entries(spool)
    if left:
        raise BenchError(f"{label}: {left} files still in the spool")
    if s["archive"]["files"] != want_archive:
        raise BenchError(f"{label}: status archive.files {s['archive']['files']}, wanted {want_archive}")
    r = {"ready_s": ready, "drained_s": t_drained, "reconciled_s": t_reconciled,
         "rss_ready_kib": hwm_ready, "rss_kib": hwm, "stop_s": stop_s, "archive_files": s["archive"]["files"],
         "load": la}
    log(f"startup {label}: READY {ready:.2f} s, drained {t_drained:.1f} s, reconciled "
        f"{t_reconciled:.1f} s, peak RSS {hwm} KiB, stop {stop_s:.2f} s")
    return r


def bench_startup_and_retention(env, q, res, startup=True, retime="folders", expire="half"):
    """Fills res as it goes, so a broken run still reports what it measured.
    Without startup, the retention daemon adopts the archive itself first."""
    n_arch = 50_000 if q else 500_000
    n_spool = 5_000 if q else 50_000
    days = 15
    res.update({"archive_files": n_arch, "spool_files": n_spool})
    # 4 KiB per tiny file plus the spool's 2 x 50k x 4 KiB landing here.
    # The journal a 3 TB archive disk gets from mkfs.ext4 (1 GiB) unless
    # --journal-mb says otherwise; the 4 GiB image alone would get 64 MiB.
    journal_mb = res["journal_mb"]
    image = (1 if q else 4) * GiB + journal_mb * 1024 * 1024
    inodes = int((n_arch + 2 * n_spool) * 1.3) + 10_000
    archive, _ = env.mount_ext4("archive2", image,
                                ("-N", str(inodes), "-J", f"size={journal_mb}"))
    spool, _ = env.mount_tmpfs("spool2", f"{max(256, n_spool * 4 * 3 // 1024)}M")
    state = os.path.join(env.work, "state2")
    mk = env.bin("bench-mkfiles")
    t0 = time.monotonic()
    sh([mk, "create", archive, str(n_arch), "64", "arc", str(days)], timeout=1800)
    log(f"startup: {n_arch} archive files in {time.monotonic() - t0:.1f} s")
    day_dirs = set()  # the generated YYYY/MM/DD folders
    for y in os.listdir(archive):
        if y == "lost+found":
            continue
        for m in os.listdir(os.path.join(archive, y)):
            for dd in os.listdir(os.path.join(archive, y, m)):
                day_dirs.add(f"{y}/{m}/{dd}")

    for rnd, label in ((1, "first start"), (2, "restart")) if startup else ():
        sh([mk, "create", spool, str(n_spool), "4096", f"spool{rnd}"], timeout=600)
        drop_caches()
        want = n_arch + rnd * n_spool
        res[label] = run_startup(env, f"d2-{rnd}", spool, archive, state, n_spool, want)

    # --- bench 3: retention over the same archive, re-dated over 30 days.
    # Drop the folders the spool runs filled (today's), so exactly n_arch
    # recordings remain, then spread their mtimes over 30 days.
    for y in os.listdir(archive):
        if y == "lost+found":
            continue
        for m in os.listdir(os.path.join(archive, y)):
            for dd in os.listdir(os.path.join(archive, y, m)):
                if f"{y}/{m}/{dd}" not in day_dirs:
                    shutil.rmtree(os.path.join(archive, y, m, dd))
    # half: a 30-day spread, half expires (a first pass, or one after a long
    # stop); daily: a 16-day spread, about 1/16 expires (the steady-state
    # daily pass over a full 15-day archive).
    span = "16" if expire == "daily" else "30"
    out = sh([mk, "retime", archive, span, "15", retime], timeout=1800).stdout.split()
    files, older = int(out[1]), int(out[3])
    if files != n_arch:
        raise BenchError(f"retention: {files} files to re-date, wanted {n_arch}")
    drop_caches()
    d = Daemon(env, "d3", spool, archive, state, "date", "15d")
    la = loadavg()
    d.start()
    d.wait_ready(timeout=300)

    def reconciled():
        s = d.status()
        return s if s and s["archive"]["reconciled"] else None
    s = wait_for(reconciled, 1200, "reconcile before the retention pass", interval=0.1)
    t_rec = time.monotonic() - d.t_exec
    # Let the set-up's writes (500k files created, re-dated, re-indexed)
    # reach the disk first, so the pass is not timed against their writeback.
    quiet_disk()
    hwm_before = d.hwm_kib()
    auto_first = s["retention"]["running"] or s["retention"]["last_prune"] != ""
    reset_hwm(d.proc.pid)
    t0 = time.monotonic()
    d.cli("prune")

    def pass_done():
        s = d.status()
        if s and not s["retention"]["running"] and s["retention"]["last_prune"] != "":
            return s
        return None
    s = wait_for(pass_done, 1200, "the retention pass", interval=0.05)
    dt = time.monotonic() - t0
    hwm = d.hwm_kib()
    stop_s = d.stop()
    left, _, _ = count_tree(archive)
    audit = os.path.join(state, "audit.log")
    audit_lines = sum(1 for _ in open(audit)) if os.path.exists(audit) else 0
    res["retention"] = {
        "files": files, "expected": older, "pruned": s["retention"]["last_pruned"],
        "pruned_total": s["retention"]["pruned_total"], "left": left, "audit_lines": audit_lines,
        "s": dt, "rss_kib": hwm, "rss_lifetime_kib": max(hwm_before or 0, hwm or 0),
        "reconcile_s": t_rec, "auto_pass_first": auto_first, "stop_s": stop_s, "load": la,
        "retime": retime, "expire": expire, "state": "built" if startup else "fresh"}
    log(f"retention: {s['retention']['last_pruned']} of {files} pruned (expected {older}) in "
        f"{dt:.2f} s, peak RSS {hwm} KiB; {left} left; restart reconcile took {t_rec:.1f} s")
    if s["retention"]["last_pruned"] != older or left != files - older:
        raise BenchError(f"retention pruned {s['retention']['last_pruned']}, left {left}; "
                         f"expected {older} pruned, {files - older} left")
    return res


# ------------------------------------------------------------------ report

def fmt_rate(total, s):
    return f"{total / MB / s:.0f} MB/s" if s else "-"


def mark(ok):
    return "yes" if ok else "**NO**"


def report(args, machine, res):
    lines = []
    cmd = "sudo bench/run.sh" + (" --quick" if args.quick else "") + \
          (f" --repeat {args.repeat}" if args.repeat != 1 else "") + \
          (f" --only {args.only}" if args.only else "") + \
          (f" --retime {args.retime}" if args.retime != "folders" else "") + \
          (f" --expire {args.expire}" if args.expire != "half" else "") + \
          (f" --journal-mb {args.journal_mb}" if args.journal_mb != 1024 else "")
    lines.append(f"# recsync benchmark results ({'quick' if args.quick else 'full'})\n")
    lines.append(f"- command: `{cmd}`")
    lines.append(f"- date: {machine['date']}")
    lines.append(f"- machine: {machine['cpus']} CPUs ({machine['cpu']}), {machine['mem_gib']:.0f} GiB RAM, "
                 f"Linux {machine['kernel']}")
    lines.append(f"- load average (1/5/15 min) at start: {machine['load_start']}; at end: "
                 f"{machine.get('load_end', '-')} (the machine is shared)")
    lines.append(f"- binaries: {args.bindir} (Release)\n")
    a = res.get("archive")
    if a:
        t = a["bytes"]
        lines.append(f"## 1. Archive throughput, tmpfs spool -> ext4 (loop image)\n")
        lines.append(f"{a['files']} recordings from recsync-loadgen, {t / MB:.0f} MB; caches dropped and a "
                     f"fresh ext4 before each run; median of {args.repeat} run(s).\n")
        lines.append("| tool | time | throughput | recsyncd / tool |")
        lines.append("|---|---|---|---|")
        for k in ("recsyncd", "rsync", "rsync+sync"):
            ratio = a[k] / a["recsyncd"]  # time ratio = throughput ratio recsync/tool
            lines.append(f"| {k} | {a[k]:.2f} s | {fmt_rate(t, a[k])} | "
                         f"{'-' if k == 'recsyncd' else f'{ratio:.2f}'} |")
        rss = max(r["rss_kib"] or 0 for r in a["runs"]["recsyncd"])
        lines.append(f"\nrecsyncd: fsync + read-back verify of every file, then the spool unlink; "
                     f"peak RSS {rss / 1024:.1f} MiB. rsync: neither fsync nor verify; "
                     f"`rsync+sync` adds a final `sync` for the same durability.\n")
    s = res.get("startup")
    if s and "first start" in s and "restart" in s:
        lines.append(f"## 2. Startup: {s['spool_files']} recordings in the spool (4 KB), "
                     f"{s['archive_files']} in the archive (64 B, date folders over 15 days)\n")
        lines.append("Caches dropped before each start. Times from exec.\n")
        lines.append("| start | READY=1 | spool drained | archive reconciled | peak RSS at READY | peak RSS | SIGTERM exit |")
        lines.append("|---|---|---|---|---|---|---|")
        for k in ("first start", "restart"):
            r = s[k]
            lines.append(f"| {k} | {r['ready_s']:.2f} s | {r['drained_s']:.1f} s | {r['reconciled_s']:.1f} s | "
                         f"{r['rss_ready_kib'] / 1024:.1f} MiB | {r['rss_kib'] / 1024:.1f} MiB | {r['stop_s']:.2f} s |")
        lines.append("\nfirst start: empty state_dir (adopts the whole archive); restart: the state DB "
                     "already holds it (a new 50k batch waits in the spool).\n")
    if s and "retention" in s:
        r = s["retention"]
        lines.append(f"## 3. Retention pass over {r['files']} archived recordings\n")
        how = ("each date folder k days old re-dated to [2(k-1), 2k) days, so folders stay in "
               "time order as the date layout keeps them" if r["retime"] == "folders" else
               "ages scrambled across folders (an adopted tree whose folders say nothing about "
               "the recording time: each batch of deletions touches many folders)")
        span = ("16 days (a steady-state daily pass: about 1/16 expired)"
                if r.get("expire") == "daily" else "30 days (half expired)")
        jmb = s.get("journal_mb", 64)
        lines.append(f"mtimes spread over {span} ({how}); keep = 15d, pace = 0; `recsync prune`, then "
                     "`status --json` polled until the pass ends, after a `sync` that lets the set-up's "
                     "writes reach the disk first. Peak RSS reset just before the pass. Archive: ext4 "
                     f"with a {jmb} MiB journal" + (" (what mkfs.ext4 gives a 3 TB disk)" if jmb == 1024
                                                   else "") + ".\n")
        lines.append("| pass time | pruned (expected) | left | audit lines | peak RSS during pass | peak RSS of the run |")
        lines.append("|---|---|---|---|---|---|")
        lines.append(f"| {r['s']:.2f} s | {r['pruned']} ({r['expected']}) | {r['left']} | {r['audit_lines']} | "
                     f"{r['rss_kib'] / 1024:.1f} MiB | {r['rss_lifetime_kib'] / 1024:.1f} MiB |")
        lines.append(f"\nThe start before the pass (state {r['state']}, every mtime changed) reconciled in "
                     f"{r['reconcile_s']:.1f} s." + (" The automatic first pass started before "
                                                     "`recsync prune`; the time is from the trigger."
                                                     if r["auto_pass_first"] else "") + "\n")
    lines.append("## Targets\n")
    lines.append("| target | measured | met |")
    lines.append("|---|---|---|")
    if a:
        lines.append(f"| archive at least as fast as rsync | {fmt_rate(a['bytes'], a['recsyncd'])} vs "
                     f"{fmt_rate(a['bytes'], a['rsync'])} (ratio {a['rsync'] / a['recsyncd']:.2f}) | "
                     f"{mark(a['recsyncd'] <= a['rsync'])} |")
        lines.append(f"| (same, against rsync + sync) | ratio {a['rsync+sync'] / a['recsyncd']:.2f} | "
                     f"{mark(a['recsyncd'] <= a['rsync+sync'])} |")
    for k in ("first start", "restart"):
        if s and k in s:
            r = s[k]
            lines.append(f"| READY < 5 s ({k}) | {r['ready_s']:.2f} s | {mark(r['ready_s'] < 5)} |")
            lines.append(f"| RSS < 64 MB ({k}) | {r['rss_kib'] * 1024 / MB:.1f} MB | "
                         f"{mark(r['rss_kib'] * 1024 < 64 * MB)} |")
    if s and "retention" in s:
        r = s["retention"]
        lines.append(f"| retention pass < 10 s{' (daily)' if r.get('expire') == 'daily' else ''} | "
                     f"{r['s']:.2f} s | {mark(r['s'] < 10)} |")
        lines.append(f"| RSS < 64 MB (retention) | {r['rss_lifetime_kib'] * 1024 / MB:.1f} MB | "
                     f"{mark(r['rss_lifetime_kib'] * 1024 < 64 * MB)} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", choices=["archive", "startup", "retention"], default=None,
                    help="one benchmark; startup includes the retention pass")
    ap.add_argument("--retime", choices=["folders", "scrambled"], default="folders",
                    help="retention: mtimes follow the date folders (default) or ignore them")
    ap.add_argument("--expire", choices=["half", "daily"], default="half",
                    help="retention: half of the archive expired (default) or a daily pass (~1/16)")
    ap.add_argument("--journal-mb", type=int, default=1024,
                    help="ext4 journal of the startup/retention archive image (MiB; default "
                         "1024, what mkfs.ext4 gives a 3 TB disk; the image alone would get 64)")
    ap.add_argument("--time-limit", type=int, default=3600)
    ap.add_argument("--logs", help="copy every recsyncd log into this folder")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench: needs root (tmpfs and loop mounts)", file=sys.stderr)
        return 1

    def on_signal(sig, _frame):
        raise BenchError(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(BenchError("time limit reached")))
    signal.alarm(args.time_limit)

    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) * 1024
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    machine = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpus": os.cpu_count(), "cpu": cpu,
               "mem_gib": mem / GiB, "kernel": platform.release(), "load_start": loadavg()}
    cleanup = Cleanup()
    env = Env(args.work, args.bindir, cleanup, args.logs)
    res = {}
    rc = 0
    try:
        if args.only in (None, "archive"):
            res["archive"] = bench_archive(env, args.quick, args.repeat)
            cleanup.run_all()
        if args.only in (None, "startup", "retention"):
            res["startup"] = {"journal_mb": args.journal_mb}
            bench_startup_and_retention(env, args.quick, res["startup"],
                                        startup=args.only != "retention", retime=args.retime,
                                        expire=args.expire)
            cleanup.run_all()
    except (BenchError, subprocess.TimeoutExpired, OSError, KeyboardInterrupt) as e:
        log(f"BROKEN RUN: {e}")
        rc = 1
    finally:
        signal.alarm(0)
        cleanup.run_all()
    machine["load_end"] = loadavg()
    text = report(args, machine, res)
    if rc:
        text += "\n**The run broke before finishing; numbers above are partial.**\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"machine": machine, "results": res}, f, indent=1)
    print("\n" + text)
    return rc


if __name__ == "__main__":
    sys.exit(main())
