#!/usr/bin/env python3
"""Backfill benchmark (issue 10): two real recsyncd on 127.0.0.1 (a network
namespace of their own, so its `lo` counters see their traffic only), node A
("fs1", the full peer) and node B ("fs2", the node rebuilt), against what the
old stack would do on the same trees in the same run (`rsync -a` of the window
from A's archive to an rsync daemon, and lsyncd's startup sync, with the seed's
options). Run through bench/backfill.sh (owns the work folder, cleans up after
a crash of this script).

1. planning, N small recordings (bench-mkfiles, 64 B, 14 day folders) adopted
   by A, their hashes filled in A's state (XXH3-128 of each file, what
   archiving would have recorded); B plans a dry-run backfill against A:
     empty    B's archive and state empty
     in sync  B holds every recording as a replica does (files hardlinked from
              A's archive on the same ext4; B's rows = A's rows with origin fs1)
     1 %      1 % of B's recordings (rows and files) removed at random
   Per case: wall time from backfill_start to B's plan, CPU (utime + stime
   from /proc/PID/stat) and peak RSS (VmHWM, reset with clear_refs 5 just
   before) of both daemons, bytes on lo (both directions, TCP/TLS included),
   the plan's own count of manifest bytes. Old stack per case: rsync -a
   --bwlimit=50000 A/ -> rsync daemon module holding the same tree as B, and
   lsyncd's startup sync (the seed's lsyncd.conf.lua, source = A's archive).
2. throughput: GB of 1-20 MB recordings archived by A itself (through its
   spool, without a peer: hashed as in production), B empty; B runs a real
   backfill at replication.bandwidth = 50MB/s while recsync-loadgen records
   live calls into A's spool. A's sent_bytes sampled every 100 ms -> 1-s
   windows against the cap; live latency close -> complete on B (inotify on
   B's archive). Then B's archive is emptied and rsync -a --bwlimit=50000
   copies the same tree (lsyncd's startup sync too with --big-lsyncd).

Every wait is bounded; exit 0 the run completed (targets met or not), 1 broken.
"""
import argparse
import ctypes
import json
import os
import platform
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import GiB, BenchError, Cleanup, loadavg, log, quiet_disk, sh, wait_for  # noqa: E402
from repl import (Arrivals, Cgroups, Ctx, Netns, control, loadgen, parse_duration, pct,  # noqa: E402
                  rate_stats, read_manifest, stop_proc, wipe, windows)

MB = 1_000_000
CAP = 50_000_000  # replication.bandwidth = "50MB/s"
RSYNC_BWLIMIT = "--bwlimit=50000"  # the seed's lsyncd option: KiB/s = 51.2 MB/s
SETTLE = "500ms"
DAYS = 14  # inside keep = 15d


# ------------------------------------------------------------ helpers

def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        st = f.read()
    fields = st[st.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class _XXH128(ctypes.Structure):
    _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]


_xxh = None


def xxh128_text(data):
    """recsync's hash text ("xxh128:" + high64 + low64 in hex) via libxxhash."""
    global _xxh
    if _xxh is None:
        _xxh = ctypes.CDLL("libxxhash.so.0")
        _xxh.XXH3_128bits.restype = _XXH128
        _xxh.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    h = _xxh.XXH3_128bits(data, len(data))
    return f"xxh128:{h.high64:016x}{h.low64:016x}"


class PeakPoller:
    """Samples VmHWM of every process in some cgroups every 0.1 s (the old
    stack's rsync/lsyncd processes come and go): the largest single process
    and the sum of the per-process peaks, per group."""

    def __init__(self, groups):
        self.groups = groups  # {label: cgroup path}
        self.peak = {g: {} for g in groups}  # label -> {pid: (comm, kib)}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.1)

    def sample(self):
        for label, cg in self.groups.items():
            try:
                with open(os.path.join(cg, "cgroup.procs")) as f:
                    pids = f.read().split()
            except OSError:
                continue
            for pid in pids:
                try:
                    kib = proc_kib(pid, "VmHWM")
                    with open(f"/proc/{pid}/comm") as f:
                        comm = f.read().strip()
                except (OSError, ValueError):
                    continue
                old = self.peak[label].get(pid, ("", 0))[1]
                if kib > old:
                    self.peak[label][pid] = (comm, kib)

    def stop(self):
        self._stop.set()
        self._t.join(5)
        self.sample()
        out = {}
        for label, d in self.peak.items():
            out[label] = {"max_kib": max((k for _, k in d.values()), default=0),
                          "sum_kib": sum(k for _, k in d.values()),
                          "procs": sorted({c for c, _ in d.values()})}
        return out


# -------------------------------------------------------------- nodes

class Node:
    """One recsyncd in the run's namespace."""

    def __init__(self, ctx, ns, key, name, port, cg):
        self.ctx, self.ns, self.key, self.name, self.port, self.cg = ctx, ns, key, name, port, cg
        self.dir = os.path.join(ctx.work, key)
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        self.proc = None
        self.archive = self.spool = None
        self.peer = None  # (name, port, fingerprint) or None
        self.keep = "15d"
        self.write_config()
        sh([ctx.bin("recsync"), "-c", self.conf, "keygen"], timeout=60)
        out = sh([ctx.bin("recsync"), "-c", self.conf, "id"], timeout=60).stdout
        fpr = [w for w in out.split() if w.startswith("sha256:")]
        if not fpr:
            raise BenchError(f"recsync id printed no sha256: fingerprint: {out!r}")
        self.fpr = fpr[0]

    @property
    def conf(self):
        return os.path.join(self.dir, "recsyncd.conf")

    @property
    def sock(self):
        return os.path.join(self.dir, "ctl.sock")

    @property
    def state(self):
        return os.path.join(self.dir, "state")

    @property
    def db(self):
        return os.path.join(self.state, "state.db")

    @property
    def logfile(self):
        return os.path.join(self.dir, "recsyncd.log")

    def write_config(self):
        spool = self.spool or os.path.join(self.dir, "nospool")
        archive = self.archive or os.path.join(self.dir, "noarchive")
        for d in (spool, archive):
            os.makedirs(d, exist_ok=True)
        text = (f'node = "{self.name}"\nstate_dir = "{self.state}"\n'
                f'[log]\nlevel = "info"\n'
                f'[control]\nsocket = "{self.sock}"\ngroup = ""\n'
                f'[spool]\npath = "{spool}"\nsettle = "{SETTLE}"\n'
                f'[archive]\npath = "{archive}"\nlayout = "date"\n'
                f'[retention]\nkeep = "{self.keep}"\n'
                f'[replication]\nlisten = "127.0.0.1:{self.port}"\nbandwidth = "50MB/s"\n'
                f'[metrics]\nlisten = ""\n')
        if self.peer:
            pname, pport, pfpr = self.peer
            text += f'[[peer]]\nname = "{pname}"\naddress = "127.0.0.1:{pport}"\nfingerprint = "{pfpr}"\n'
        with open(self.conf, "w") as f:
            f.write(text)

    def fresh_state(self):
        """Empty state, same identity (node.key / node.crt kept)."""
        for n in os.listdir(self.state):
            if n not in ("node.key", "node.crt"):
                sh(["rm", "-rf", os.path.join(self.state, n)], timeout=120)

    def start(self):
        self.write_config()
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        with open(self.logfile, "a") as f:
            f.write(f"----- start {time.strftime('%H:%M:%S')}\n")
        self.proc = self.ctx.spawn(self.ns.argv([self.ctx.bin("recsyncd"), "-c", self.conf]), self.cg,
                                   self.logfile)
        wait_for(lambda: self.status() is not None, 120, f"recsyncd {self.name} answering")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            rc = stop_proc(self.proc, timeout=120)
            if rc != 0:
                log(f"recsyncd {self.name} exited {rc} on SIGTERM")
        self.proc = None

    def call(self, req, timeout=10.0):
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"recsyncd {self.name} exited {self.proc.returncode if self.proc else '-'}; "
                             f"see {self.logfile}")
        try:
            return control(self.sock, req, timeout)
        except (OSError, ValueError):
            return None

    def status(self):
        return self.call({"cmd": "status"})

    def wait_reconciled(self, want_files, timeout):
        t0 = time.monotonic()

        def ok():
            s = self.status()
            return s if s and s["archive"]["reconciled"] else None
        s = wait_for(ok, timeout, f"{self.name}: archive reconciled", 0.5)
        if want_files is not None and s["archive"]["files"] != want_files:
            raise BenchError(f"{self.name}: archive.files {s['archive']['files']}, wanted {want_files}")
        return time.monotonic() - t0

    def wait_connected(self, timeout=60):
        def ok():
            s = self.status()
            return s and s["peers"] and s["peers"][0]["state"] == "connected"
        wait_for(ok, timeout, f"{self.name} connected to its peer", 0.2)

    def peer_bytes(self):
        s = self.status()
        p = s["peers"][0] if s and s.get("peers") else {}
        return p.get("sent_bytes", 0), p.get("received_bytes", 0)

    def pid(self):
        return self.proc.pid

    def cpu(self):
        return proc_cpu_s(self.proc.pid)

    def reset_hwm(self):
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5\n")


def connect(a, b):
    a.peer = (b.name, b.port, b.fpr)
    b.peer = (a.name, a.port, a.fpr)


# -------------------------------------------------------- old stack

class OldStack:
    """rsync daemon (node B's side) with the seed's rsyncd.conf; rsync -a and
    lsyncd (the seed's node-1 lsyncd.conf.lua) on node A's side."""

    def __init__(self, ctx, ns):
        self.ctx, self.ns = ctx, ns
        self.dir = os.path.join(ctx.work, "old")
        os.makedirs(self.dir, exist_ok=True)
        self.cg_a = ctx.cg.make("old-A")
        self.cg_b = ctx.cg.make("old-B")
        self.rsyncd = None
        ctx.cleanup.push("old stack processes", lambda: (Cgroups.kill(self.cg_a), Cgroups.kill(self.cg_b)))

    def start_rsyncd(self, target):
        d = self.dir
        with open(os.path.join(d, "rsyncd.conf"), "w") as f:
            f.write(f"""uid = root
gid = root
use chroot = no
max connections = 10
log file = {d}/rsyncd.log
pid file = {d}/rsyncd.pid
lock file = {d}/rsync.lock
address = 127.0.0.1
port = 8730

[recordings]
    path = {target}
    comment = FreeSWITCH recordings
    read only = no
    list = yes
    hosts allow = 127.0.0.1
    hosts deny = *
""")
        pidf = os.path.join(d, "rsyncd.pid")
        if os.path.exists(pidf):
            os.unlink(pidf)
        self.rsyncd = self.ctx.spawn(self.ns.argv(["rsync", "--daemon", "--no-detach",
                                                   f"--config={d}/rsyncd.conf"]), self.cg_b,
                                     os.path.join(d, "rsyncd.out"))

        def up():
            if self.rsyncd.poll() is not None:
                raise BenchError(f"rsync --daemon exited {self.rsyncd.returncode}")
            return os.path.exists(pidf)
        wait_for(up, 30, "rsync --daemon listening")
        time.sleep(0.3)

    def stop_rsyncd(self):
        stop_proc(self.rsyncd)
        self.rsyncd = None
        Cgroups.kill(self.cg_b)

    def _measure(self, label, fn):
        cpu0 = {k: Cgroups.cpu_s(c) for k, c in (("A", self.cg_a), ("B", self.cg_b))}
        w0 = self.ns.lo_bytes()
        poll = PeakPoller({"A": self.cg_a, "B": self.cg_b})
        t0 = time.monotonic()
        try:
            extra = fn()
        finally:
            peaks = poll.stop()
        s = time.monotonic() - t0
        res = {"s": s, "lo_bytes": self.ns.lo_bytes() - w0,
               "cpu_A": Cgroups.cpu_s(self.cg_a) - cpu0["A"], "cpu_B": Cgroups.cpu_s(self.cg_b) - cpu0["B"],
               "rss_A_max_kib": peaks["A"]["max_kib"], "rss_B_max_kib": peaks["B"]["max_kib"],
               "rss_A_sum_kib": peaks["A"]["sum_kib"], "rss_B_sum_kib": peaks["B"]["sum_kib"], **extra}
        log(f"old stack {label}: {s:.1f} s, lo {res['lo_bytes'] / MB:.1f} MB"
            + (f", rsync sent {res['sent'] / MB:.1f} MB" if "sent" in res else "")
            + f", peak RSS A {res['rss_A_max_kib'] / 1024:.1f} MiB, B {res['rss_B_max_kib'] / 1024:.1f} MiB")
        return res

    def rsync_a(self, source, target, timeout):
        self.start_rsyncd(target)
        out = os.path.join(self.dir, "rsync-a.log")

        def run():
            p = self.ctx.spawn(self.ns.argv(["rsync", "-a", "--stats", RSYNC_BWLIMIT, source + "/",
                                             "rsync://127.0.0.1:8730/recordings/"]), self.cg_a, out)
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                raise BenchError(f"rsync -a did not finish in {timeout} s")
            with open(out) as f:
                text = f.read()
            if rc != 0:
                raise BenchError(f"rsync -a exited {rc}: {text[-800:]}")
            stats = text[text.rfind("Number of files:"):]
            get = lambda k: int(re.search(k + r": ([\d,]+)", stats).group(1).replace(",", ""))  # noqa: E731
            return {"sent": get("Total bytes sent"), "received": get("Total bytes received"),
                    "files_sent": get("Number of regular files transferred")}
        try:
            return self._measure("rsync -a", run)
        finally:
            self.stop_rsyncd()

    def lsyncd_startup(self, source, target, timeout):
        self.start_rsyncd(target)
        d = self.dir
        logf = os.path.join(d, "lsyncd.log")
        if os.path.exists(logf):
            os.unlink(logf)
        # The seed's node-1 config; changed: paths, target address/port,
        # nodaemon = true (the bench owns the process), source = A's archive
        # (the seed's source is the spool: its startup sync cannot refill an
        # archive at all).
        with open(os.path.join(d, "lsyncd.conf.lua"), "w") as f:
            f.write(f"""settings {{
    logfile = "{logf}",
    statusFile = "{d}/lsyncd.status",
    statusInterval = 10,
    nodaemon = true,
    insist = true,
    inotifyMode = "CloseWrite",
}}

sync {{
    default.rsync,
    source = "{source}/",
    target = "rsync://127.0.0.1:8730/recordings/",
    delay = 5,
    rsync = {{
        archive = true,
        compress = false,
        _extra = {{"{RSYNC_BWLIMIT}"}}
    }}
}}
""")
        holder = {}

        def run():
            p = self.ctx.spawn(self.ns.argv(["lsyncd", f"{d}/lsyncd.conf.lua"]), self.cg_a,
                               os.path.join(d, "lsyncd.out"))
            holder["p"] = p

            def started():
                if p.poll() is not None:
                    raise BenchError(f"lsyncd exited {p.returncode}; see {logf}")
                if not os.path.exists(logf):
                    return False
                with open(logf) as f:
                    return "finished" in f.read()  # "Startup of '<src>' finished."
            wait_for(started, timeout, "lsyncd's startup sync", 0.05)
            return {}
        try:
            return self._measure("lsyncd startup sync", run)
        finally:
            if "p" in holder:
                stop_proc(holder["p"])
            Cgroups.kill(self.cg_a)
            self.stop_rsyncd()


# ------------------------------------------------------------ phase 1

def count_files(root):
    n = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [x for x in dirnames if x != "lost+found"]
        n += sum(1 for x in filenames if not x.startswith("."))
    return n


def fill_hashes(db, archive):
    """XXH3-128 of every adopted recording into A's stopped state (what A
    would have recorded had it archived them itself)."""
    con = sqlite3.connect(db, timeout=60)
    try:
        rows = con.execute("SELECT id, rel FROM recordings WHERE hash = ''").fetchall()
        upd = []
        for rid, rel in rows:
            with open(os.path.join(archive, rel), "rb") as f:
                upd.append((xxh128_text(f.read()), rid))
        con.executemany("UPDATE recordings SET hash = ? WHERE id = ?", upd)
        con.commit()
        return len(upd)
    finally:
        con.close()


def seed_replica(b_db, a_db):
    """B's rows as a replica of A holds them: A's own recordings with origin
    fs1 (origin_rel '' = the same path)."""
    con = sqlite3.connect(b_db, timeout=60)
    try:
        con.execute("ATTACH DATABASE ? AS a", (a_db,))
        con.execute("DELETE FROM recordings")
        cur = con.execute(
            "INSERT INTO recordings(rel, name, size, hash, rec_time_ms, archived_at_ms, origin, gen, name_key, "
            "origin_rel) SELECT rel, name, size, hash, rec_time_ms, archived_at_ms, 'fs1', gen, name_key, '' "
            "FROM a.recordings WHERE origin = 'local'")
        n = cur.rowcount
        con.commit()
        con.execute("DETACH DATABASE a")
        return n
    finally:
        con.close()


def remove_share(b_db, archive, share, seed):
    con = sqlite3.connect(b_db, timeout=60)
    try:
        rows = con.execute("SELECT id, rel FROM recordings ORDER BY id").fetchall()
        k = int(len(rows) * share)
        pick = random.Random(seed).sample(rows, k)
        for _, rel in pick:
            os.unlink(os.path.join(archive, rel))
        con.executemany("DELETE FROM recordings WHERE id = ?", [(i,) for i, _ in pick])
        con.commit()
        return [rel for _, rel in pick]
    finally:
        con.close()


def plan_once(a, b, ns, label, timeout):
    """B plans a dry-run backfill against A; both daemons measured."""
    for n in (a, b):
        n.wait_connected()
    quiet_disk()
    time.sleep(1.0)
    rss0 = {n.name: proc_kib(n.pid(), "VmRSS") for n in (a, b)}
    for n in (a, b):
        n.reset_hwm()
    cpu0 = {n.name: n.cpu() for n in (a, b)}
    pb0 = {n.name: n.peer_bytes() for n in (a, b)}
    w0 = ns.lo_bytes()
    t0 = time.monotonic()
    r = b.call({"cmd": "backfill_start", "dry_run": True})
    if not r or not r.get("ok"):
        raise BenchError(f"backfill_start refused: {r}")
    job = r["job"]
    peer = None
    deadline = t0 + timeout
    while True:
        s = b.call({"cmd": "backfill_status"})
        bf = (s or {}).get("backfill") or {}
        if bf.get("job") == job and bf.get("peers"):
            peer = bf["peers"][0]
            if peer["state"] != "pending":
                break
        if time.monotonic() > deadline:
            raise BenchError(f"{label}: plan not done in {timeout} s")
        time.sleep(0.02)
    wall = time.monotonic() - t0
    res = {"wall_s": wall, "lo_bytes": ns.lo_bytes() - w0, "state": peer["state"], "error": peer.get("error")}
    for n in (a, b):
        k = n.key
        res[f"cpu_{k}"] = n.cpu() - cpu0[n.name]
        res[f"rss_before_{k}_kib"] = rss0[n.name]
        res[f"hwm_{k}_kib"] = proc_kib(n.pid(), "VmHWM")
        res[f"rss_growth_{k}_kib"] = res[f"hwm_{k}_kib"] - rss0[n.name]
        sb, rb = n.peer_bytes()
        res[f"peer_sent_{k}"] = sb - pb0[n.name][0]
        res[f"peer_received_{k}"] = rb - pb0[n.name][1]
    plan = peer.get("plan")
    if isinstance(plan, str) and plan:
        plan = json.loads(plan)
    res["plan"] = plan or {}
    if peer["state"] != "planned":
        raise BenchError(f"{label}: plan {peer['state']}: {peer.get('error')}")
    p = res["plan"]
    res["pull"] = p.get("pull", {}).get("files")
    res["push"] = p.get("push", {}).get("files")
    res["manifest_bytes"] = p.get("bytes_exchanged")
    log(f"plan {label}: {wall:.2f} s; CPU B {res['cpu_B']:.2f} s, A {res['cpu_A']:.2f} s; RSS growth "
        f"B {res['rss_growth_B_kib'] / 1024:.1f} MiB, A {res['rss_growth_A_kib'] / 1024:.1f} MiB; lo "
        f"{res['lo_bytes'] / MB:.3f} MB; pull {res['pull']}, push {res['push']}, manifests "
        f"{res['manifest_bytes']} B; load {loadavg()}")
    # wait until the job itself is over (dry run: done at the next tick)
    def over():
        s = b.call({"cmd": "backfill_status"})
        return s and s["backfill"] and s["backfill"]["state"] != "running"
    wait_for(over, 60, "the dry-run job to end", 0.2)
    return res


def phase_planning(ctx, args, ns, a, b, old, res):
    n = args.files
    # 4 KiB a file (64 B data) in A's and B's folders (hardlinks), the old
    # stack's copy, + slack; inodes for all three trees.
    inodes = int(n * 3 * 1.2) + 20_000
    image = n * 4096 * 2 + 2 * GiB
    root, _ = ctx.env.mount_ext4("small", image, ("-N", str(inodes), "-J", "size=256"))
    a.archive, b.archive = os.path.join(root, "a"), os.path.join(root, "b")
    x = os.path.join(root, "old")  # the old stack's target, the same tree as B's
    for d in (a.archive, b.archive, x):
        os.makedirs(d)
    t0 = time.monotonic()
    sh([ctx.bin("bench-mkfiles"), "create", a.archive, str(n), "64", "arc", str(DAYS)], timeout=3600)
    log(f"planning: {n} recordings in {time.monotonic() - t0:.1f} s")
    res["files"] = n
    # A adopts them, then (stopped) gets their hashes.
    a.peer = None
    a.start()
    res["adopt_s"] = a.wait_reconciled(n, 3600)
    a.stop()
    t0 = time.monotonic()
    res["hashed"] = fill_hashes(a.db, a.archive)
    log(f"planning: A adopted {n} in {res['adopt_s']:.1f} s; {res['hashed']} hashes filled in "
        f"{time.monotonic() - t0:.1f} s")
    connect(a, b)
    a.start()
    b.fresh_state()
    b.start()
    a.wait_reconciled(n, 3600)
    b.wait_reconciled(0, 600)
    st = a.status()
    if st["replication"]["queue"]["files"]:
        raise BenchError(f"A queued {st['replication']['queue']['files']} adopted recordings for B")

    # --- empty
    res["empty"] = plan_once(a, b, ns, "empty node", args.plan_timeout)
    res["empty"]["old_rsync"] = old.rsync_a(a.archive, x, args.plan_timeout * 4)
    wipe(x)
    res["empty"]["old_lsyncd"] = old.lsyncd_startup(a.archive, x, args.plan_timeout * 4)
    if count_files(x) != n:
        raise BenchError(f"old stack copy has {count_files(x)} files, wanted {n}")

    # --- in sync: B a replica of A
    b.stop()
    for top in os.listdir(a.archive):  # the recordings, not A's own hidden files
        if not top.startswith("."):
            sh(["cp", "-al", os.path.join(a.archive, top), b.archive], timeout=3600)
    res["seeded"] = seed_replica(b.db, a.db)
    b.start()
    res["replica_reconcile_s"] = b.wait_reconciled(n, 3600)
    res["sync"] = plan_once(a, b, ns, "pair in sync", args.plan_timeout)
    res["sync"]["old_rsync"] = old.rsync_a(a.archive, x, args.plan_timeout * 4)
    res["sync"]["old_lsyncd"] = old.lsyncd_startup(a.archive, x, args.plan_timeout * 4)

    # --- 1 % missing on B (and on the old stack's copy)
    b.stop()
    gone = remove_share(b.db, b.archive, 0.01, 7)
    res["missing"] = len(gone)
    b.start()
    b.wait_reconciled(n - len(gone), 3600)
    res["one_pct"] = plan_once(a, b, ns, "1 % missing", args.plan_timeout)
    for rel in gone:
        os.unlink(os.path.join(x, rel))
    res["one_pct"]["old_rsync"] = old.rsync_a(a.archive, x, args.plan_timeout * 4)
    for rel in gone:
        os.unlink(os.path.join(x, rel))
    res["one_pct"]["old_lsyncd"] = old.lsyncd_startup(a.archive, x, args.plan_timeout * 4)
    a.stop()
    b.stop()


# ------------------------------------------------------------ phase 2

def write_recording(path, size, seed, block):
    """A WAV of `size` bytes: a valid header (final RIFF size), then bytes
    from a random block at a per-file offset (distinct files, cheap to make)."""
    hdr = bytearray(44)
    hdr[0:4] = b"RIFF"
    hdr[4:8] = (size - 8).to_bytes(4, "little")
    hdr[8:16] = b"WAVEfmt "
    hdr[16:20] = (16).to_bytes(4, "little")
    hdr[20:22] = (1).to_bytes(2, "little")
    hdr[22:24] = (2).to_bytes(2, "little")
    hdr[24:28] = (8000).to_bytes(4, "little")
    hdr[28:32] = (32000).to_bytes(4, "little")
    hdr[32:34] = (4).to_bytes(2, "little")
    hdr[34:36] = (16).to_bytes(2, "little")
    hdr[36:40] = b"data"
    hdr[40:44] = (size - 44).to_bytes(4, "little")
    off = (seed * 7919) % (len(block) // 2)
    with open(path, "wb") as f:
        f.write(hdr)
        f.write(seed.to_bytes(8, "little") * 64)
        left = size - 44 - 512
        while left > 0:
            chunk = block[off:off + min(left, len(block) - off)]
            f.write(chunk)
            left -= len(chunk)
            off = 0


def fill_big(ctx, args, a, staging, res):
    """A archives ~args.gb GB of 1-20 MB recordings itself, in batches
    through its spool, with no peer (nothing queued)."""
    rnd = random.Random(5)
    block = rnd.randbytes(24 << 20)
    target = int(args.gb * 1e9)
    a.peer = None
    a.start()
    total = files = 0
    batch_bytes = min(args.batch_gb, args.gb) * 1e9
    t0 = time.monotonic()
    while total < target:
        names, bb = [], 0
        while bb < batch_bytes and total + bb < target:
            size = rnd.randint(1 * MB, 20 * MB)
            name = f"2026-12-06-{files // 3600 % 24:02d}-{files // 60 % 60:02d}-{files % 60:02d}_" \
                   f"{rnd.getrandbits(64):016x}.wav"
            write_recording(os.path.join(staging, name), size, files + 1, block)
            names.append(name)
            bb += size
            files += 1
        for nm in names:
            os.rename(os.path.join(staging, nm), os.path.join(a.spool, nm))
        total += bb

        def drained():
            s = a.status()
            return s and s["spool"]["files"] == 0 and s["archive"]["files"] == files
        wait_for(drained, 1800, "A archiving the fill batch", 0.5)
        log(f"throughput: A archived {files} recordings, {total / 1e9:.1f} GB "
            f"({time.monotonic() - t0:.0f} s; load {loadavg()})")
    a.stop()
    res.update({"files": files, "bytes": total, "fill_s": time.monotonic() - t0})
    return files, total


def phase_throughput(ctx, args, ns, a, b, old, res):
    img = int(args.gb * 1e9 * 1.15) + 3 * GiB
    a_root, _ = ctx.env.mount_ext4("big-a", img)
    b_root, _ = ctx.env.mount_ext4("big-b", img)
    tmp, _ = ctx.env.mount_tmpfs("a-tmpfs", f"{int(args.batch_gb * 1000 * 1.3) + 1024}M")
    a.archive, b.archive = a_root, b_root
    a.spool = os.path.join(tmp, "spool")
    staging = os.path.join(tmp, "staging")
    live_staging = os.path.join(tmp, "live")
    for d in (a.spool, staging, live_staging):
        os.makedirs(d)
    a.fresh_state()
    b.fresh_state()
    files, total = fill_big(ctx, args, a, staging, res)
    connect(a, b)
    a.start()
    b.start()
    a.wait_reconciled(files, 1800)
    b.wait_reconciled(0, 600)
    a.wait_connected()
    b.wait_connected()
    quiet_disk(300)
    la = loadavg()
    res["load_start"] = la
    expect_s = total / CAP
    # Live calls for about 70 % of the backfill: 20 at once, 10-30 s each.
    live_s = max(30, min(600, 0.7 * expect_s))
    calls = max(10, min(2000, int(20 * live_s / 20)))
    man = os.path.join(ctx.work, "live-manifest.jsonl")
    arr = Arrivals(ctx, b.archive, "live")
    cpu0 = {n.key: n.cpu() for n in (a, b)}
    rss0 = {n.key: proc_kib(n.pid(), "VmRSS") for n in (a, b)}
    for n in (a, b):
        n.reset_hwm()
    s0 = a.peer_bytes()[0]
    w0 = ns.lo_bytes()
    r = b.call({"cmd": "backfill_start", "dry_run": False})
    if not r or not r.get("ok"):
        raise BenchError(f"backfill_start refused: {r}")
    job = r["job"]
    t_start = time.monotonic()
    lg = ctx.spawn(loadgen(ctx, a.spool, calls, 20, 10, 30, 1, 7, man, int(live_s) + 120), ctx.cg_tools,
                   os.path.join(ctx.work, "loadgen.log"))
    log(f"throughput: backfill {job} of {files} recordings ({total / 1e9:.1f} GB) at 50 MB/s (~{expect_s:.0f} s); "
        f"{calls} live calls, 20 at once, 10-30 s; load {la}")
    sent, wire, prog = [], [], []
    deadline = t_start + max(300, 2.5 * expect_s + 120)
    next_t = t_start
    done_at = None
    while True:
        now = time.monotonic()
        if now > deadline:
            raise BenchError(f"backfill not complete in {deadline - t_start:.0f} s")
        t = time.monotonic()
        wb = ns.lo_bytes() - w0
        sb = a.peer_bytes()[0] - s0
        t2 = time.monotonic()
        wire.append((t, wb))
        sent.append(((t + t2) / 2, sb))
        if len(sent) % 10 == 0:
            s = b.call({"cmd": "backfill_status"})
            bf = (s or {}).get("backfill") or {}
            prog.append((t, bf.get("bytes_done", 0), bf.get("state")))
            if bf.get("state") not in (None, "running") and done_at is None:
                done_at = t
                res["state"] = bf["state"]
                res["bf"] = {k: bf.get(k) for k in ("files_total", "files_done", "bytes_total", "bytes_done")}
            if done_at is not None and lg.poll() is not None and t - done_at > 1.0:
                break
        next_t += 0.1
        time.sleep(max(0.0, next_t - time.monotonic()))
    if lg.returncode != 0:
        raise BenchError(f"recsync-loadgen exited {lg.returncode}")
    manifest = read_manifest(man)

    def live_done():
        got = set()
        for _t, _k, rel, size, riff in arr.poll():
            m = manifest.get(os.path.basename(rel))
            if m and size == m["size"] and riff == size - 8:
                got.add(os.path.basename(rel))
        return len(got) == len(manifest)
    try:
        wait_for(live_done, 120, "every live recording complete on B", 0.5)
    finally:
        events = arr.stop()
    res.update({"backfill_s": done_at - t_start, "lo_bytes": ns.lo_bytes() - w0,
                "sent_bytes": a.peer_bytes()[0] - s0, "load_end": loadavg()})
    for n in (a, b):
        res[f"cpu_{n.key}"] = n.cpu() - cpu0[n.key]
        res[f"hwm_{n.key}_kib"] = proc_kib(n.pid(), "VmHWM")
        res[f"rss_growth_{n.key}_kib"] = res[f"hwm_{n.key}_kib"] - rss0[n.key]
    # 1-s windows of A's sent bytes (backfill + live share the cap) while the
    # backlog lasts: from the first MB until A has sent all but the last half
    # second of the backfill's bytes (live bytes count too, so this cuts a
    # little early: the tail where only live calls trickle is not the cap's).
    bf_total = (res.get("bf") or {}).get("bytes_total") or total
    ia = next(i for i, (_, v) in enumerate(sent) if v > 1 * MB)
    iz = next((i for i, (_, v) in enumerate(sent) if v >= bf_total - CAP // 2), len(sent) - 1)
    sec = windows(sent, sent[ia][0], sent[iz][0], 1.0)
    res["windows"] = rate_stats(sec, CAP)
    res["window_rates"] = sec
    wsec = windows(wire, wire[ia][0], wire[iz][0], 1.0)
    res["windows_lo"] = rate_stats(wsec, CAP)
    # live latency: close -> complete on B
    first = {}
    for t, _k, rel, size, riff in events:
        nm = os.path.basename(rel)
        m = manifest.get(nm)
        if m and size == m["size"] and riff == size - 8:
            first.setdefault(nm, t)
    lat = [(first[k] - m["closed_at_ms"]) / 1000 for k, m in manifest.items()]
    settle = parse_duration(SETTLE)
    excess = [(first[k] - m["closed_at_ms"]) / 1000 - settle - m["size"] / CAP for k, m in manifest.items()]
    res["live"] = {"calls": len(manifest), "bytes": sum(m["size"] for m in manifest.values()),
                   "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat),
                   "excess_p50": pct(excess, 50), "excess_p99": pct(excess, 99), "settle_s": settle}
    got = count_files(b.archive)
    res["b_files"] = got
    if got != files + len(manifest):
        raise BenchError(f"B holds {got} recordings, wanted {files} backfilled + {len(manifest)} live")
    w = res["windows"]
    log(f"throughput: {total / 1e9:.1f} GB in {res['backfill_s']:.1f} s ({total / MB / res['backfill_s']:.1f} MB/s); "
        f"{w['n']} 1-s windows {w['min_pct']:.1f}..{w['max_pct']:.1f} % of the cap ({w['within5']:.0f} % within "
        f"+-5 %); live p50 {res['live']['p50']:.2f} s, p99 {res['live']['p99']:.2f} s (minus settle and "
        f"transfer: p99 {res['live']['excess_p99']:.2f} s); RSS growth A "
        f"{res['rss_growth_A_kib'] / 1024:.1f} MiB, B {res['rss_growth_B_kib'] / 1024:.1f} MiB")
    a.stop()
    b.stop()
    if args.skip_old_big:
        return
    # the old stack: the same tree (A's archive) into an empty B
    wipe(b.archive)
    quiet_disk(300)
    res["old_rsync"] = old.rsync_a(a.archive, b.archive, int(3 * expect_s) + 600)
    if args.big_lsyncd:
        wipe(b.archive)
        quiet_disk(300)
        res["old_lsyncd"] = old.lsyncd_startup(a.archive, b.archive, int(3 * expect_s) + 600)
    wipe(b.archive)


# ------------------------------------------------------------- report

def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def report(args, machine, res):
    parts = []
    if "planning" in res:
        parts.append(f"{args.files:,} small recordings")
    if "throughput" in res:
        parts.append(f"{args.gb:g} GB of 1-20 MB")
    L = [f"# Backfill benchmark ({'; '.join(parts)})\n",
         f"- command: `{machine['command']}`",
         f"- date: {machine['date']}; {machine['cpus']} CPUs ({machine['cpu']}), Linux {machine['kernel']}",
         f"- load average at start {machine['load_start']}, at end {machine.get('load_end', '-')} "
         "(a shared machine: other builds and tests ran meanwhile)",
         f"- binaries: {args.bindir}; {machine.get('rsync', '?')}; {machine.get('lsyncd', '?')}",
         "- recsync: two recsyncd on 127.0.0.1 (own network namespace), TLS 1.3, layout date, keep 15d, "
         "bandwidth 50MB/s; old stack: the seed's rsyncd.conf and lsyncd.conf.lua (archive, --bwlimit=50000)\n"]
    P = res.get("planning", {})
    if any(k in P for k in ("empty", "sync", "one_pct")):
        L.append(f"## Planning, {P.get('files', 0):,} recordings in the window (B plans a dry run against A)\n")
        L.append("| | empty node | pair in sync | 1 % missing | target |")
        L.append("|---|---|---|---|---|")
        cases = [P.get(k) for k in ("empty", "sync", "one_pct")]

        def row(label, fn, target=""):
            cells = []
            for c in cases:
                try:
                    cells.append(fn(c))
                except (KeyError, TypeError, ValueError, ZeroDivisionError):
                    cells.append("-")
            L.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")
        row("plan: pull / push (files)", lambda c: f"{c['pull']:,} / {c['push']:,}")
        row("wall time", lambda c: f"{c['wall_s']:.2f} s")
        row("CPU, B (planning) / A (peer)", lambda c: f"**{c['cpu_B']:.2f}** / {c['cpu_A']:.2f} s",
            "diff < 2 s CPU")
        row("peak RSS growth, B / A", lambda c: f"**{mib(c['rss_growth_B_kib'])}** / "
                                                f"**{mib(c['rss_growth_A_kib'])}**", "< 32 MB")
        row("peak RSS, B / A", lambda c: f"{mib(c['hwm_B_kib'])} / {mib(c['hwm_A_kib'])}")
        row("bytes exchanged (lo, both ways, TCP+TLS)", lambda c: f"**{c['lo_bytes'] / MB:.3f} MB**",
            "in sync < 1 MB")
        row("  manifest/digest payload received by B", lambda c: f"{c['manifest_bytes'] / MB:.3f} MB")
        for key, name in (("old_rsync", "`rsync -a`"), ("old_lsyncd", "lsyncd startup sync")):
            row(f"old stack: {name}: time", lambda c, key=key: f"{c[key]['s']:.2f} s")
            if key == "old_rsync":
                row("  rsync bytes sent / received",
                    lambda c: f"{c['old_rsync']['sent'] / MB:.2f} / {c['old_rsync']['received'] / MB:.2f} MB")
            row("  bytes on lo (both ways)", lambda c, key=key: f"{c[key]['lo_bytes'] / MB:.2f} MB")
            row("  CPU, A side / B side", lambda c, key=key: f"{c[key]['cpu_A']:.2f} / {c[key]['cpu_B']:.2f} s")
            row("  peak RSS, largest process A / B side",
                lambda c, key=key: f"{mib(c[key]['rss_A_max_kib'])} / {mib(c[key]['rss_B_max_kib'])}")
        L.append("")
    T = res.get("throughput", {})
    if "windows" in T:
        w, lv = T["windows"], T["live"]
        L.append(f"## Throughput: {T['files']:,} recordings, {T['bytes'] / 1e9:.2f} GB, into an empty B at 50 MB/s\n")
        L.append("| | recsync backfill | target |")
        L.append("|---|---|---|")
        L.append(f"| time / mean rate | {T['backfill_s']:.1f} s / {T['bytes'] / MB / T['backfill_s']:.1f} MB/s | |")
        L.append(f"| 1-s windows of A's sent bytes (backfill + live), min..max % of cap (share within +-5 %) | "
                 f"**{w['min_pct']:.1f}..{w['max_pct']:.1f} %** ({w['within5']:.0f} % of {w['n']}) | "
                 "every window within +-5 % |")
        wl = T["windows_lo"]
        L.append(f"| same by lo bytes (both ways, headers) | {wl['min_pct']:.1f}..{wl['max_pct']:.1f} % "
                 f"({wl['within5']:.0f} %) | |")
        L.append(f"| live calls during it: close on A -> complete on B, p50 / p99 / max | "
                 f"{lv['p50']:.2f} / **{lv['p99']:.2f}** / {lv['max']:.2f} s ({lv['calls']} calls) | "
                 "p99 < 1 s + transfer |")
        L.append(f"| same minus settle ({lv['settle_s']:.1f} s) and transfer at the cap, p50 / p99 | "
                 f"{lv['excess_p50']:.2f} / **{lv['excess_p99']:.2f}** s | < 1 s |")
        L.append(f"| CPU A / B | {T['cpu_A']:.1f} / {T['cpu_B']:.1f} s | |")
        L.append(f"| peak RSS A / B (growth) | {mib(T['hwm_A_kib'])} ({mib(T['rss_growth_A_kib'])}) / "
                 f"{mib(T['hwm_B_kib'])} ({mib(T['rss_growth_B_kib'])}) | |")
        L.append(f"| bytes on lo / A's sent_bytes | {T['lo_bytes'] / 1e9:.2f} / {T['sent_bytes'] / 1e9:.2f} GB | |")
        for key, name in (("old_rsync", "`rsync -a --bwlimit=50000`"), ("old_lsyncd", "lsyncd startup sync")):
            o = T.get(key)
            if not o:
                continue
            extra = f", rsync sent {o['sent'] / 1e9:.2f} GB" if "sent" in o else ""
            L.append(f"| old stack, same tree: {name} | {o['s']:.1f} s ({T['bytes'] / MB / o['s']:.1f} MB/s), "
                     f"lo {o['lo_bytes'] / 1e9:.2f} GB{extra}; CPU {o['cpu_A']:.1f} + {o['cpu_B']:.1f} s; "
                     f"peak RSS {mib(o['rss_A_max_kib'])} / {mib(o['rss_B_max_kib'])} | |")
        L.append("")
    L.append("How each number is taken: bench/README.md, \"Backfill benchmark\".\n")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--files", type=int, default=500_000, help="small recordings for the planning cases")
    ap.add_argument("--gb", type=float, default=20.0, help="GB of 1-20 MB recordings for the throughput run")
    ap.add_argument("--batch-gb", type=float, default=2.0, help="A's spool batch while filling")
    ap.add_argument("--only", default="planning,throughput")
    ap.add_argument("--big-lsyncd", action="store_true", help="lsyncd's startup sync of the big tree too")
    ap.add_argument("--skip-old-big", action="store_true", help="no rsync/lsyncd run on the big tree")
    ap.add_argument("--plan-timeout", type=int, default=600)
    ap.add_argument("--time-limit", type=int, default=7200)
    ap.add_argument("--command", default="bench/backfill.sh")
    ap.add_argument("--logs", help="copy the daemons' logs (last 2 MB) into this folder")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("backfill: needs root", file=sys.stderr)
        return 1

    def on_signal(sig, _frame):
        raise BenchError(f"signal {sig}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(BenchError("time limit reached")))
    signal.alarm(args.time_limit)
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    machine = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpus": os.cpu_count(), "cpu": cpu,
               "kernel": platform.release(), "load_start": loadavg(), "command": args.command}
    for tool, argv in (("lsyncd", ["lsyncd", "--version"]), ("rsync", ["rsync", "--version"])):
        r = subprocess.run(argv, capture_output=True, text=True)
        machine[tool] = (r.stdout.splitlines() or ["?"])[0].strip()
    cleanup = Cleanup()
    res = {}
    rc = 0
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    try:
        ctx = Ctx(args, cleanup)
        ns = Netns(f"rbf{os.getpid()}", ctx)
        a = Node(ctx, ns, "A", "fs1", 17383, ctx.cg.make("A"))
        b = Node(ctx, ns, "B", "fs2", 17384, ctx.cg.make("B"))
        cleanup.push("recsyncd A and B", lambda: (Cgroups.kill(a.cg), Cgroups.kill(b.cg)))
        old = OldStack(ctx, ns)
        if "planning" in only:
            res["planning"] = {}
            phase_planning(ctx, args, ns, a, b, old, res["planning"])
        if "throughput" in only:
            res["throughput"] = {}
            phase_throughput(ctx, args, ns, a, b, old, res["throughput"])
        a.stop()
        b.stop()
    except (BenchError, subprocess.TimeoutExpired, OSError, sqlite3.Error, KeyboardInterrupt) as e:
        log(f"BROKEN RUN: {e}")
        rc = 1
    finally:
        signal.alarm(0)
        if args.logs:
            try:
                os.makedirs(args.logs, exist_ok=True)
                for k in ("A", "B", "old"):
                    for n in ("recsyncd.log", "lsyncd.log", "rsyncd.log", "rsync-a.log"):
                        lf = os.path.join(args.work, k, n)
                        if os.path.exists(lf):
                            sh(["sh", "-c", f"tail -c 2000000 '{lf}' > '{args.logs}/{k}-{n}'"], check=False)
            except OSError:
                pass
        cleanup.run_all()
    machine["load_end"] = loadavg()
    text = report(args, machine, res)
    if rc:
        text += "\n**The run broke before finishing; numbers above are partial.**\n"
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"machine": machine, "args": vars(args), "results": res}, f, indent=1)
    print("\n" + text)
    return rc


if __name__ == "__main__":
    sys.exit(main())
