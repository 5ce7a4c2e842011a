#!/usr/bin/env python3
"""Replication benchmark: recsync (two recsyncd nodes, TLS 1.3) against the stack
it replaces (lsyncd 2.2.3 `default.rsync` pushing to an rsync daemon), on one
machine, in one run. Run through bench/repl.sh (builds, owns the work folder,
cleans up after a crash of this script).

Each stack lives in its own network namespace (loopback only; its `lo` byte
counters see that stack's traffic and nothing else) and its own cgroup v2
groups, one per node (CPU time from cpu.stat, short-lived rsync children
included; cgroup.kill ends everything a stack started). Spools are tmpfs, archives
fresh ext4 loop images.

1. latency / burst: recsync-loadgen records 800 concurrent calls into A's spool
   (speed 1; 20-60 s calls, or 5-25 s ones for the burst); an inotify recorder on
   B's archive stamps every arrival; close time (loadgen manifest) -> first
   complete copy under its final name on B.
2. governor: ~1.5 GB of recordings renamed into A's spool at once, link capped
   (recsync 50MB/s, rsync --bwlimit=50000); bytes sampled every 100 ms.
3. cpu: the same backlog with no cap; cgroup CPU seconds per GB, per node.
4. resume: one 100 MB recording, the receiver killed (-9) at ~80 %, restarted;
   bytes sent after the kill to finish it.

Every wait is bounded; exit 0 the run completed (targets met or not), 1 broken.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import BenchError, Cleanup, Env, loadavg, log, sh, wait_for  # noqa: E402

MB = 1_000_000
BYTES_PER_AUDIO_S = 32_000  # loadgen: stereo 16-bit 8 kHz
RECSYNC_CAP = 50_000_000  # bandwidth = "50MB/s" (powers of 1000)
RSYNC_CAP = 50_000 * 1024  # --bwlimit=50000: KiB/s (rsync(1)) = 51.2 MB/s
HERE = os.path.dirname(os.path.abspath(__file__))


# ------------------------------------------------------------ plumbing

def cgroup2_root():
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype = line.split()[:3]
            if fstype == "cgroup2":
                return mnt
    raise BenchError("no cgroup2 hierarchy mounted (needed for per-stack CPU time)")


class Cgroups:
    """One parent cgroup for the run, one child per node/tool."""

    def __init__(self, root, name, cleanup):
        self.base = os.path.join(root, name)
        os.makedirs(self.base)
        cleanup.push(f"cgroup {self.base}", self.destroy)

    def make(self, name):
        path = os.path.join(self.base, name)
        os.makedirs(path, exist_ok=True)
        return path

    @staticmethod
    def cpu_s(path):
        with open(os.path.join(path, "cpu.stat")) as f:
            for line in f:
                k, v = line.split()
                if k == "usage_usec":
                    return int(v) / 1e6
        raise BenchError(f"{path}/cpu.stat has no usage_usec")

    @staticmethod
    def kill(path):
        """Every process in the group (cgroup.kill), then wait until empty."""
        if not os.path.isdir(path):
            return
        if os.path.exists(os.path.join(path, "cgroup.kill")):
            with open(os.path.join(path, "cgroup.kill"), "w") as f:
                f.write("1\n")
        else:  # older kernels: by pid, the group's own members only
            with open(os.path.join(path, "cgroup.procs")) as f:
                for pid in f.read().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(os.path.join(path, "cgroup.procs")) as f:
                if not f.read().strip():
                    return
            time.sleep(0.05)

    def destroy(self):
        if not os.path.isdir(self.base):
            return
        for name in os.listdir(self.base):
            p = os.path.join(self.base, name)
            if os.path.isdir(p):
                self.kill(p)
                for _ in range(50):  # exited processes leave the group once reaped
                    with open(os.path.join(p, "cgroup.events")) as f:
                        if "populated 0" in f.read():
                            break
                    time.sleep(0.1)
                os.rmdir(p)
        os.rmdir(self.base)


class Netns:
    """A named network namespace with lo up; a sleeper process in it lets us
    read its lo counters from /proc/PID/net/dev without spawning anything."""

    def __init__(self, name, ctx):
        self.name = name
        sh(["ip", "netns", "add", name], timeout=30)
        ctx.cleanup.push(f"netns {name}", self.destroy)
        with open(os.path.join(ctx.work, "netns"), "a") as f:
            f.write(name + "\n")  # for repl.sh's trap
        sh(["ip", "-n", name, "link", "set", "lo", "up"], timeout=30)
        self.sleeper = ctx.spawn(self.argv(["sleep", "86400"]), ctx.cg_tools, os.devnull)

    def destroy(self):
        sleeper = getattr(self, "sleeper", None)
        if sleeper is not None and sleeper.poll() is None:
            sleeper.kill()  # by pid; waited for, so no zombie keeps its cgroup busy
            sleeper.wait(10)
        sh(["ip", "netns", "del", self.name], check=False, timeout=30)

    def argv(self, argv):
        return ["ip", "netns", "exec", self.name, *argv]

    def lo_bytes(self):
        """lo tx bytes (= rx on loopback): every packet of both directions,
        TCP/IP headers included."""
        with open(f"/proc/{self.sleeper.pid}/net/dev") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name.strip() == "lo":
                    return int(rest.split()[8])
        raise BenchError(f"netns {self.name}: no lo in /proc/{self.sleeper.pid}/net/dev")


class Ctx:
    def __init__(self, args, cleanup):
        self.args = args
        self.work = args.work
        self.bindir = args.bindir
        self.cleanup = cleanup
        self.env = Env(args.work, args.bindir, cleanup)
        self.cg = Cgroups(cgroup2_root(), f"recsync-benchrepl.{os.getpid()}", cleanup)
        with open(os.path.join(self.work, "cgroup"), "w") as f:
            f.write(self.cg.base + "\n")  # for repl.sh's trap
        self.cg_tools = self.cg.make("tools")

    def bin(self, name):
        return os.path.join(self.bindir, name)

    def spawn(self, argv, cgroup, out_path, env=None):
        """Starts argv inside cgroup (set before exec, so every child is in it)."""
        def enter():
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(f"{os.getpid()}\n")
        out = open(out_path, "ab")
        try:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    preexec_fn=enter, env=env, start_new_session=True)
        finally:
            out.close()


def stop_proc(p, timeout=20, sig=signal.SIGTERM):
    if p is None or p.poll() is not None:
        return p.returncode if p else None
    p.send_signal(sig)
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(10)
        raise BenchError(f"pid {p.pid} ({p.args[-3:]}) ignored signal {sig} for {timeout} s")


def wipe(path):
    """Removes everything below path (not path itself, not lost+found)."""
    if not os.path.isdir(path):
        return
    for name in os.listdir(path):
        if name == "lost+found":
            continue
        p = os.path.join(path, name)
        if os.path.isdir(p) and not os.path.islink(p):
            sh(["rm", "-rf", "--one-file-system", p], timeout=300)
        else:
            os.unlink(p)


def find_complete(root, size):
    """{basename: relpath} of non-hidden files under root of exactly `size`
    bytes whose WAV header is final (RIFF size = size - 8)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "lost+found" and not d.startswith(".")]
        for n in filenames:
            if n.startswith("."):
                continue
            p = os.path.join(dirpath, n)
            try:
                if os.path.getsize(p) != size:
                    continue
                with open(p, "rb") as f:
                    f.seek(4)
                    riff = int.from_bytes(f.read(4), "little")
            except OSError:
                continue
            if riff == size - 8:
                out[n] = os.path.relpath(p, root)
    return out


def loadgen(ctx, dirpath, calls, concurrency, dmin, dmax, speed, seed, manifest=None, max_s=600):
    argv = [ctx.bin("recsync-loadgen"), "--dir", dirpath, "--calls", str(calls), "--concurrency",
            str(concurrency), "--min-duration", str(dmin), "--max-duration", str(dmax), "--speed",
            str(speed), "--seed", str(seed), "--max-seconds", str(max_s)]
    if manifest:
        argv += ["--manifest", manifest]
    return argv


def run_loadgen(ctx, argv, max_s):
    log_path = os.path.join(ctx.work, "loadgen.log")
    p = ctx.spawn(argv, ctx.cg_tools, log_path)
    try:
        rc = p.wait(max_s + 60)
    except subprocess.TimeoutExpired:
        p.kill()
        raise BenchError("recsync-loadgen did not finish")
    if rc != 0:
        with open(log_path) as f:
            raise BenchError(f"recsync-loadgen exited {rc}: {f.read()[-800:]}")


class Arrivals:
    """bench-repl-arrivals on a tree; parses its output incrementally."""

    def __init__(self, ctx, root, name):
        self.path = os.path.join(ctx.work, f"arrivals-{name}.tsv")
        self.stdout = self.path + ".out"
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.proc = ctx.spawn([ctx.bin("bench-repl-arrivals"), root, self.path, "1800"], ctx.cg_tools,
                              self.stdout)
        wait_for(lambda: self._ready(), 30, "the arrivals recorder", 0.02)
        self.events = []
        self._off = 0
        self.overflows = 0

    def _ready(self):
        if self.proc.poll() is not None:
            raise BenchError(f"bench-repl-arrivals exited {self.proc.returncode}")
        with open(self.stdout) as f:
            return "ready" in f.read()

    def poll(self):
        if not os.path.exists(self.path):
            return self.events
        with open(self.path, "rb") as f:
            f.seek(self._off)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self._off += end
        for line in data[:end].decode().splitlines():
            t, kind, rel, size, riff = line.split("\t")
            if kind == "overflow":
                self.overflows += 1
                continue
            self.events.append((float(t), kind, rel, int(size), int(riff)))
        return self.events

    def stop(self):
        stop_proc(self.proc)
        return self.poll()


def read_manifest(path):
    out = {}
    with open(path) as f:
        for line in f:
            j = json.loads(line)
            out[os.path.basename(j["path"])] = j
    return out


def pct(vals, q):
    if not vals:
        return None
    s = sorted(vals)
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def control(sock_path, req, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(1 << 20)
            if not chunk:
                raise OSError("control socket closed")
            buf += chunk
    finally:
        s.close()
    return json.loads(buf.split(b"\n", 1)[0])


# -------------------------------------------------------------- stacks

class Stack:
    """Two nodes, A (sender) and B (receiver), in one netns."""
    key = ""
    label = ""
    cap = 0

    def __init__(self, ctx):
        self.ctx = ctx
        self.dir = os.path.join(ctx.work, self.key)
        os.makedirs(self.dir)
        self.ns = Netns(f"rbr{os.getpid()}{self.key[:2]}", ctx)
        self.cg_a = ctx.cg.make(f"{self.key}-A")
        self.cg_b = ctx.cg.make(f"{self.key}-B")
        big = "8G" if not ctx.args.quick else "3G"
        a_tmp, _ = ctx.env.mount_tmpfs(f"{self.key}/a-tmpfs", big)
        self.spool = os.path.join(a_tmp, "spool")
        self.staging = os.path.join(a_tmp, "staging")  # same fs: a rename into the spool is atomic
        img = (6 if not ctx.args.quick else 3) << 30
        self.a_archive, _ = ctx.env.mount_ext4(f"{self.key}/a-archive", img)
        self.b_archive, _ = ctx.env.mount_ext4(f"{self.key}/b-archive", img)
        for d in (self.spool, self.staging):
            os.makedirs(d)
        # On a broken run: end this stack's processes before its mounts go.
        ctx.cleanup.push(f"{self.key} processes", lambda: (Cgroups.kill(self.cg_a), Cgroups.kill(self.cg_b)))

    def cpu(self):
        return {"A": Cgroups.cpu_s(self.cg_a), "B": Cgroups.cpu_s(self.cg_b)}

    def reset(self):
        self.stop()
        for d in (self.spool, self.staging, self.a_archive, self.b_archive):
            wipe(d)

    def sent_bytes(self):
        """The sender's own count of bytes sent (None where there is none)."""
        return None

    def thread_cpu(self):
        """CPU seconds per thread group of each node's daemon (None where the
        stack's processes do not name their threads)."""
        return None

    def kill_receiver(self):
        raise NotImplementedError

    def restart_receiver(self):
        raise NotImplementedError

    def in_flight_fraction(self, name, size):
        raise NotImplementedError


class LsyncdStack(Stack):
    key = "lsyncd"
    label = "lsyncd + rsync"
    cap = RSYNC_CAP

    def __init__(self, ctx):
        super().__init__(ctx)
        self.rsyncd = self.lsyncd = None

    def write_configs(self, bwlimit):
        d = self.dir
        # /etc/rsyncd.conf from the seed (section 4.6): uid/gid root (no
        # freeswitch user here), files under the work folder, 127.0.0.1 only.
        with open(os.path.join(d, "rsyncd.conf"), "w") as f:
            f.write(f"""uid = root
gid = root
use chroot = no
max connections = 10
log file = {d}/rsyncd.log
pid file = {d}/rsyncd.pid
lock file = {d}/rsync.lock
address = 127.0.0.1

[recordings]
    path = {self.b_archive}
    comment = FreeSWITCH recordings
    read only = no
    list = yes
    hosts allow = 127.0.0.1
    hosts deny = *
""")
        extra = '"--bwlimit=50000"' if bwlimit else ""
        # The seed's node-1 lsyncd.conf.lua; changed: paths, target address,
        # nodaemon = true (the bench owns the process), the cap for bench 3.
        with open(os.path.join(d, "lsyncd.conf.lua"), "w") as f:
            f.write(f"""settings {{
    logfile = "{d}/lsyncd.log",
    statusFile = "{d}/lsyncd.status",
    statusInterval = 10,
    nodaemon = true,
    insist = true,
    inotifyMode = "CloseWrite",
}}

sync {{
    default.rsync,
    source = "{self.spool}/",
    target = "127.0.0.1::recordings",
    delay = 5,
    rsync = {{
        archive = true,
        compress = false,
        _extra = {{{extra}}}
    }}
}}
""")

    def start_rsyncd(self):
        logf = os.path.join(self.dir, "rsyncd.log")
        mark = os.path.getsize(logf) if os.path.exists(logf) else 0
        pidf = os.path.join(self.dir, "rsyncd.pid")
        if os.path.exists(pidf):
            os.unlink(pidf)
        self.rsyncd = self.ctx.spawn(self.ns.argv(["rsync", "--daemon", "--no-detach",
                                                   f"--config={self.dir}/rsyncd.conf"]),
                                     self.cg_b, os.path.join(self.dir, "rsyncd.out"))

        def listening():
            if self.rsyncd.poll() is not None:
                raise BenchError(f"rsync --daemon exited {self.rsyncd.returncode}; see {logf}")
            if not os.path.exists(logf):
                return False
            with open(logf) as f:
                f.seek(mark)
                return "listening on" in f.read() or os.path.exists(pidf)
        wait_for(listening, 30, "rsync --daemon listening")
        time.sleep(0.2)

    def start(self, capped=True):
        self.write_configs(capped)
        self.start_rsyncd()
        logf = os.path.join(self.dir, "lsyncd.log")
        mark = os.path.getsize(logf) if os.path.exists(logf) else 0
        self.lsyncd = self.ctx.spawn(self.ns.argv(["lsyncd", f"{self.dir}/lsyncd.conf.lua"]), self.cg_a,
                                     os.path.join(self.dir, "lsyncd.out"))

        def started():
            if self.lsyncd.poll() is not None:
                raise BenchError(f"lsyncd exited {self.lsyncd.returncode}; see {logf}")
            if not os.path.exists(logf):
                return False
            with open(logf) as f:
                f.seek(mark)
                return "finished" in f.read()  # "Startup of '<src>' finished."
        wait_for(started, 60, "lsyncd's startup sync")

    def stop(self):
        stop_proc(self.lsyncd)
        self.lsyncd = None
        stop_proc(self.rsyncd)
        self.rsyncd = None
        # rsync children of either (none expected once both exited)
        Cgroups.kill(self.cg_a)
        Cgroups.kill(self.cg_b)

    def kill_receiver(self):
        # kill -9 of the daemon and its per-connection children: the whole
        # cgroup of node B holds nothing else.
        Cgroups.kill(self.cg_b)
        self.rsyncd.wait(10)

    def restart_receiver(self):
        self.start_rsyncd()

    def in_flight_fraction(self, name, size):
        # rsync receives into B's "<dir>/.<name>.XXXXXX" then renames
        best = 0
        with os.scandir(self.b_archive) as it:
            for e in it:
                if e.name.startswith("." + name + "."):
                    try:
                        best = max(best, e.stat().st_size)
                    except OSError:
                        pass
        return best / size

    def cron_archive(self):
        """The seed's cron job (spool -> A's archive, --remove-source-files),
        once, in its own cgroup: the old stack's archiving work."""
        cg = self.ctx.cg.make(f"{self.key}-A-cron")  # reused by later rounds: deltas
        sh(["sync"], timeout=300)
        cpu0, m0, t0 = Cgroups.cpu_s(cg), machine_busy_s(), time.monotonic()
        p = self.ctx.spawn(["rsync", "-av", "--remove-source-files", self.spool + "/", self.a_archive + "/"],
                           cg, os.path.join(self.dir, "cron.log"))
        rc = p.wait(600)
        if rc != 0:
            raise BenchError(f"cron rsync exited {rc}")
        t1 = time.monotonic()
        sh(["sync"], timeout=300)  # written out, as for the machine figure of the run itself
        return Cgroups.cpu_s(cg) - cpu0, t1 - t0, machine_busy_s() - m0


class RecsyncStack(Stack):
    key = "recsync"
    label = "recsync"
    cap = RECSYNC_CAP
    ports = {"A": 17373, "B": 17374}
    names = {"A": "fs1", "B": "fs2"}

    def __init__(self, ctx):
        super().__init__(ctx)
        b_tmp, _ = ctx.env.mount_tmpfs(f"{self.key}/b-tmpfs", "256M")
        self.b_spool = os.path.join(b_tmp, "spool")
        os.makedirs(self.b_spool)
        self.procs = {"A": None, "B": None}
        self.fpr = {}
        self.bandwidth = "50MB/s"
        for n in ("A", "B"):
            os.makedirs(self.node_dir(n, "state"), exist_ok=True)
            self.write_config(n, with_peer=False)
            sh([ctx.bin("recsync"), "-c", self.conf(n), "keygen"], timeout=60)
            out = sh([ctx.bin("recsync"), "-c", self.conf(n), "id"], timeout=60).stdout
            fpr = [w for w in out.split() if w.startswith("sha256:")]
            if not fpr:
                raise BenchError(f"recsync id printed no sha256: fingerprint: {out!r}")
            self.fpr[n] = fpr[0]

    def node_dir(self, n, *sub):
        return os.path.join(self.dir, n, *sub)

    def conf(self, n):
        return self.node_dir(n, "recsyncd.conf")

    def sock(self, n):
        return self.node_dir(n, "ctl.sock")

    def write_config(self, n, with_peer=True):
        other = "B" if n == "A" else "A"
        spool = self.spool if n == "A" else self.b_spool
        archive = self.a_archive if n == "A" else self.b_archive
        text = (f'node = "{self.names[n]}"\nstate_dir = "{self.node_dir(n, "state")}"\n'
                f'[log]\nlevel = "info"\n'
                f'[control]\nsocket = "{self.sock(n)}"\ngroup = ""\n'
                f'[spool]\npath = "{spool}"\nsettle = "{self.ctx.args.settle}"\n'
                f'[archive]\npath = "{archive}"\nlayout = "date"\n'
                f'[retention]\nkeep = "0"\n'
                f'[replication]\nlisten = "127.0.0.1:{self.ports[n]}"\nbandwidth = "{self.bandwidth}"\n'
                f'[metrics]\nlisten = ""\n')
        if with_peer:
            text += (f'[[peer]]\nname = "{self.names[other]}"\naddress = "127.0.0.1:{self.ports[other]}"\n'
                     f'fingerprint = "{self.fpr[other]}"\n')
        with open(self.conf(n), "w") as f:
            f.write(text)

    def start_node(self, n):
        self.write_config(n)
        if os.path.exists(self.sock(n)):
            os.unlink(self.sock(n))
        cg = self.cg_a if n == "A" else self.cg_b
        self.procs[n] = self.ctx.spawn(self.ns.argv([self.ctx.bin("recsyncd"), "-c", self.conf(n)]), cg,
                                       self.node_dir(n, "recsyncd.log"))

    def status(self, n):
        p = self.procs[n]
        if p is None or p.poll() is not None:
            raise BenchError(f"recsyncd {n} exited {p.returncode if p else '-'}; see {self.node_dir(n, 'recsyncd.log')}")
        try:
            return control(self.sock(n), {"cmd": "status"})
        except (OSError, ValueError):
            return None

    def start(self, capped=True):
        self.bandwidth = "50MB/s" if capped else "0"
        self.start_node("B")
        self.start_node("A")

        def connected():
            s = self.status("A")
            sb = self.status("B")
            if not s or not sb:
                return False
            if not s.get("replication", {}).get("enabled"):
                raise BenchError("recsyncd reports replication.enabled = false: this build has no "
                                 "replication engine")
            return s["peers"] and s["peers"][0]["state"] == "connected"
        wait_for(connected, 60, "recsyncd A connected to B")

    def stop(self):
        for n in ("A", "B"):
            p = self.procs[n]
            if p is not None and p.poll() is None:
                rc = stop_proc(p, timeout=30)
                if rc != 0:
                    log(f"recsyncd {n} exited {rc} on SIGTERM")
            self.procs[n] = None
        Cgroups.kill(self.cg_a)
        Cgroups.kill(self.cg_b)

    def reset(self):
        super().reset()
        wipe(self.b_spool)
        for n in ("A", "B"):  # fresh state, same identity
            st = self.node_dir(n, "state")
            for name in os.listdir(st):
                if name not in ("node.key", "node.crt"):
                    p = os.path.join(st, name)
                    sh(["rm", "-rf", p], timeout=60)

    def sent_bytes(self):
        s = self.status("A")
        return s["peers"][0]["sent_bytes"] if s else None

    def thread_cpu(self):
        return {n: thread_cpu_s(self.procs[n].pid) for n in ("A", "B")}

    def kill_receiver(self):
        self.procs["B"].kill()  # SIGKILL, by pid
        self.procs["B"].wait(10)

    def restart_receiver(self):
        self.start_node("B")
        wait_for(lambda: self.status("B") is not None, 60, "recsyncd B restarted")

    def in_flight_fraction(self, name, size):
        s = self.status("A")
        if s:
            f = s["peers"][0].get("in_flight")
            if f and os.path.basename(f.get("path", "")) == name:
                return f["sent_bytes"] / size
        return 0.0


# ------------------------------------------------------------ benches

def params(q):
    """latency: 800 calls at once, long enough (20-60 s) that calls end at a
    steady ~20 files/s; burst: short calls (5-25 s), ~53 files/s, the same
    800 concurrent: what a per-file cost does to the queue."""
    p = {"latency": {"calls": 1200, "conc": 800, "min": 20, "max": 60},
         "burst": {"calls": 2400, "conc": 800, "min": 5, "max": 25},
         "backlog_calls": 100, "backlog_dur": 468.75}  # 100 x 15 MB = 1.5 GB
    if q:
        p["latency"]["calls"] = 800
        p["burst"] = {"calls": 1600, "conc": 800, "min": 3, "max": 12}
        p["backlog_calls"] = 40
    return p


def bench_burst(ctx, st, p):
    return bench_latency(ctx, st, p, "burst")


def bench_latency(ctx, st, p, kind="latency"):
    lp = p[kind]
    st.start(capped=True)
    man = os.path.join(ctx.work, f"manifest-{st.key}-{kind}.jsonl")
    if os.path.exists(man):
        os.unlink(man)
    arr = Arrivals(ctx, st.b_archive, f"{st.key}-{kind}")
    # recsync: also when each recording is archived on A (close -> A -> B split)
    arr_a = Arrivals(ctx, st.a_archive, f"{st.key}-{kind}-A") if st.key == "recsync" else None
    cpu0, wire0, t0 = st.cpu(), st.ns.lo_bytes(), time.monotonic()
    la = loadavg()
    log(f"{st.label}: {kind}: {lp['calls']} calls, {lp['conc']} concurrent, speed 1, "
        f"{lp['min']}-{lp['max']} s; load {la}")
    max_s = 600
    run_loadgen(ctx, loadgen(ctx, st.spool, lp["calls"], lp["conc"], lp["min"], lp["max"], 1,
                             7, man, max_s), max_s)
    t_gen = time.monotonic() - t0
    manifest = read_manifest(man)
    if len(manifest) != lp["calls"]:
        raise BenchError(f"loadgen manifest has {len(manifest)} calls, wanted {lp['calls']}")

    def done():
        got = set()
        for t, _kind, rel, size, riff in arr.poll():
            m = manifest.get(os.path.basename(rel))
            if m and size == m["size"] and riff == size - 8:
                got.add(os.path.basename(rel))
        return len(got) == len(manifest)
    try:
        wait_for(done, 300, "every recording complete on B", interval=0.5)
    finally:
        events = arr.stop()
        events_a = arr_a.stop() if arr_a else []
    cpu1, wire1, t1 = st.cpu(), st.ns.lo_bytes(), time.monotonic()
    first = {}
    partial = {}
    for t, _kind, rel, size, riff in events:
        name = os.path.basename(rel)
        m = manifest.get(name)
        if not m:
            continue
        if size == m["size"] and riff == size - 8:
            first.setdefault(name, t)
        elif name not in first:
            partial[name] = partial.get(name, 0) + 1
    lat = [(first[n] - m["closed_at_ms"]) / 1000 for n, m in manifest.items()]
    excess = [(first[n] - m["closed_at_ms"]) / 1000 - m["size"] / st.cap for n, m in manifest.items()]
    settle = parse_duration(ctx.args.settle) if st.key == "recsync" else 0.0
    engine = [x - settle for x in excess]
    total = sum(m["size"] for m in manifest.values())
    on_a = {}
    for t, _kind, rel, size, riff in events_a:
        m = manifest.get(os.path.basename(rel))
        if m and size == m["size"] and riff == size - 8:
            on_a.setdefault(os.path.basename(rel), t)
    split = {}
    if on_a:
        to_a = [(on_a[n] - m["closed_at_ms"]) / 1000 for n, m in manifest.items() if n in on_a]
        a_to_b = [(first[n] - on_a[n]) / 1000 for n in manifest if n in on_a]
        split = {"to_a_p50": pct(to_a, 50), "to_a_p99": pct(to_a, 99),
                 "a_to_b_p50": pct(a_to_b, 50), "a_to_b_p99": pct(a_to_b, 99), "a_n": len(on_a)}
        log(f"{st.label}: close -> archived on A p50 {split['to_a_p50']:.2f} s, p99 {split['to_a_p99']:.2f} s; "
            f"A archive -> B p50 {split['a_to_b_p50']:.2f} s, p99 {split['a_to_b_p99']:.2f} s")
    r = {**split, "calls": lp, "files": len(manifest), "bytes": total, "gen_s": t_gen,
         "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat), "min": min(lat),
         "excess_p99": pct(excess, 99), "engine_p50": pct(engine, 50), "engine_p99": pct(engine, 99),
         "settle_s": settle, "partial_files": len(partial), "partial_copies": sum(partial.values()),
         "overflows": arr.overflows, "load": la, "wire": wire1 - wire0, "cpu_A": cpu1["A"] - cpu0["A"],
         "cpu_B": cpu1["B"] - cpu0["B"], "s": t1 - t0}
    log(f"{st.label}: {kind} p50 {r['p50']:.2f} s, p99 {r['p99']:.2f} s, max {r['max']:.2f} s over "
        f"{r['files']} files ({total / MB:.0f} MB); {len(partial)} files had a half-written copy on B first")
    st.reset()
    return r


def parse_duration(text):
    """recsync durations as used here: "0", "1s", "200ms", "1m", "1s500ms"."""
    total = 0.0
    for num, unit in re.findall(r"([0-9.]+)(ms|s|m|h|d)?", text):
        total += float(num) * {"ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "": 1}[unit]
    return total


def machine_busy_s():
    """Busy CPU seconds of the whole machine so far (/proc/stat: user, nice,
    system, irq, softirq; not idle, iowait or steal): every process and
    kernel thread, the loop devices' and writeback's workers included."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


THREAD_GROUPS = (("archive", ("rs-archive",)), ("send", ("rs-send",)),
                 ("receive", ("rs-recv", "rs-finish")))


def thread_cpu_s(pid):
    """CPU seconds per thread group of a recsyncd (by the names its threads
    give themselves: rs-archive, rs-send:<peer>, rs-recv, rs-finish, ...).
    A thread that ends between two samples drops out of the later one; none
    does during the cpu benchmark (the link stays up, workers persist)."""
    out = {g: 0.0 for g, _ in THREAD_GROUPS}
    out["other"] = 0.0
    tck = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        sec = (int(fields[11]) + int(fields[12])) / tck  # utime, stime
        group = next((g for g, prefixes in THREAD_GROUPS if name.startswith(prefixes)), "other")
        out[group] += sec
    return out


def fill_staging(ctx, st, p, seed=11):
    argv = loadgen(ctx, st.staging, p["backlog_calls"], 16, p["backlog_dur"], p["backlog_dur"], 0, seed)
    run_loadgen(ctx, argv, 600)
    names = sorted(os.listdir(st.staging))
    size = os.path.getsize(os.path.join(st.staging, names[0]))
    return names, size


def move_in(st, names):
    for n in names:
        os.rename(os.path.join(st.staging, n), os.path.join(st.spool, n))


def windows(samples, t_a, t_b, width):
    """Rates (B/s) over consecutive windows of `width` s in [t_a, t_b], from
    cumulative (t, bytes) samples, linearly interpolated at the edges."""
    def at(t):
        for i in range(1, len(samples)):
            if samples[i][0] >= t:
                (ta, ba), (tb, bb) = samples[i - 1], samples[i]
                return ba + (bb - ba) * (t - ta) / (tb - ta) if tb > ta else bb
        return samples[-1][1]
    out = []
    t = t_a
    while t + width <= t_b + 1e-9:
        out.append((at(t + width) - at(t)) / width)
        t += width
    return out


def rate_stats(rates, cap):
    pc = [100 * r / cap for r in rates]
    return {"n": len(pc), "min_pct": min(pc), "max_pct": max(pc), "mean_pct": statistics.fmean(pc),
            "p5_pct": pct(pc, 5), "p95_pct": pct(pc, 95),
            "within5": 100 * sum(1 for x in pc if 95 <= x <= 105) / len(pc),
            "cov": statistics.pstdev(pc) / statistics.fmean(pc) if statistics.fmean(pc) else None}


def bench_governor(ctx, st, p):
    names, size = fill_staging(ctx, st, p)
    total = size * len(names)
    st.start(capped=True)
    la = loadavg()
    log(f"{st.label}: governor: {len(names)} x {size / MB:.1f} MB = {total / MB:.0f} MB renamed into the "
        f"spool, cap {st.cap / MB:.1f} MB/s; load {la}")
    wire, sent, calls = [], [], []
    w0 = st.ns.lo_bytes()
    s0 = st.sent_bytes()
    move_in(st, names)
    t_start = time.monotonic()
    deadline = t_start + max(120, 4 * total / st.cap)
    next_t = t_start
    last_change = t_start
    complete_n = 0
    while True:
        now = time.monotonic()
        if now > deadline:
            raise BenchError(f"{st.label}: governor backlog not replicated in {deadline - t_start:.0f} s")
        # lo first (an instant read), then the status call; its answer is
        # stamped at the call's midpoint (how long calls take is kept too).
        t = time.monotonic()
        wb = st.ns.lo_bytes() - w0
        sb = st.sent_bytes()
        t_after = time.monotonic()
        if wire and wb != wire[-1][1]:
            last_change = t
        wire.append((t, wb))
        if sb is not None:
            sent.append(((t + t_after) / 2, sb - s0))
            calls.append(t_after - t)
        if len(wire) % 10 == 0:
            complete_n = len(find_complete(st.b_archive, size))
            if complete_n == len(names) and t - last_change > 1.0:
                break
        next_t += 0.1
        time.sleep(max(0.0, next_t - time.monotonic()))
    res = {"files": len(names), "bytes": total, "cap": st.cap, "load": la, "s": wire[-1][0] - t_start}

    def analyse(samples, label):
        if len(samples) < 20:
            raise BenchError(f"{st.label}: only {len(samples)} {label} samples")
        end = samples[-1][1]
        a = next(i for i, (_, b) in enumerate(samples) if b > 1 * MB)
        z = max(i for i, (_, b) in enumerate(samples) if b < end - 1 * MB)
        t_a, t_b = samples[a][0], samples[z][0]  # the transfer running, ends trimmed
        sec = windows(samples, t_a, t_b, 1.0)
        ms100 = [(samples[i][1] - samples[i - 1][1]) / (samples[i][0] - samples[i - 1][0])
                 for i in range(max(1, a), z + 1) if samples[i][0] > samples[i - 1][0]]
        dts = [samples[i][0] - samples[i - 1][0] for i in range(1, len(samples))]
        return {"active_s": t_b - t_a, "start_s": t_a - t_start, "bytes": end,
                "sec": rate_stats(sec, st.cap), "sec_rates": sec, "ms100": rate_stats(ms100, st.cap),
                "sample_dt_p50": pct(dts, 50), "sample_dt_max": max(dts)}
    res["wire"] = analyse(wire, "lo")
    if sent:
        res["sent"] = analyse(sent, "sent_bytes")
        res["status_call_p50"], res["status_call_max"] = pct(calls, 50), max(calls)
    g = res.get("sent", res["wire"])
    log(f"{st.label}: governor: {g['sec']['n']} one-second windows {g['sec']['min_pct']:.1f}..."
        f"{g['sec']['max_pct']:.1f} % of the cap, {g['sec']['within5']:.0f} % within +-5 %; "
        f"100 ms p5..p95 {g['ms100']['p5_pct']:.0f}..{g['ms100']['p95_pct']:.0f} %")
    st.reset()
    return res


def cpu_round(ctx, st, p, seed):
    names, size = fill_staging(ctx, st, p, seed=seed)
    total = size * len(names)
    st.start(capped=False)
    la = loadavg()
    time.sleep(1.0)
    sh(["sync"], timeout=300)  # the set-up's own writeback is not the run's
    cpu0, w0, t0 = st.cpu(), st.ns.lo_bytes(), time.monotonic()
    thr0, m0 = st.thread_cpu(), machine_busy_s()
    move_in(st, names)

    def done():
        return len(find_complete(st.b_archive, size)) == len(names)
    wait_for(done, 600, f"{st.label}: {len(names)} recordings on B (cpu)", interval=0.25)
    t_done = time.monotonic() - t0
    if st.key == "recsync":  # until A has the acks (its queue empty)
        def acked():
            s = st.status("A")
            return s and s["replication"]["queue"]["files"] == 0
        wait_for(acked, 60, "recsync A queue empty", interval=0.1)
    cpu1, w1, thr1 = st.cpu(), st.ns.lo_bytes(), st.thread_cpu()
    # Machine-wide: until the data is written out (rsync leaves it dirty in
    # the page cache; recsync has fsynced it), the same for both stacks.
    sh(["sync"], timeout=300)
    m1 = machine_busy_s()
    gb = total / 1e9
    res = {"files": len(names), "bytes": total, "s": t_done, "load": la, "wire": w1 - w0,
           "A": cpu1["A"] - cpu0["A"], "B": cpu1["B"] - cpu0["B"], "machine": m1 - m0}
    res["A_per_gb"], res["B_per_gb"] = res["A"] / gb, res["B"] / gb
    res["per_gb"] = res["A_per_gb"] + res["B_per_gb"]
    res["machine_per_gb"] = res["machine"] / gb
    if thr0 is not None:
        for n in ("A", "B"):
            for g in thr1[n]:
                res[f"{n}_{g}_per_gb"] = (thr1[n][g] - thr0[n][g]) / gb
        # Replication alone: A's sender and B's receiving threads.
        res["repl_per_gb"] = res["A_send_per_gb"] + res["B_receive_per_gb"]
    if st.key == "lsyncd":
        stop_proc(st.lsyncd)  # before the cron job: lsyncd would propagate its deletions
        st.lsyncd = None
        res["cron_cpu"], res["cron_s"], cron_machine = st.cron_archive()
        res["cron_per_gb"] = res["cron_cpu"] / gb
        res["cron_machine_per_gb"] = cron_machine / gb
    log(f"{st.label}: cpu: {total / MB:.0f} MB on B in {t_done:.1f} s; A {res['A']:.2f} s, B {res['B']:.2f} s "
        f"= {res['per_gb']:.2f} CPU s/GB; machine {res['machine_per_gb']:.2f} s/GB"
        + (f"; cron archive {res['cron_cpu']:.2f} s" if "cron_cpu" in res else "")
        + (f"; replication threads {res['repl_per_gb']:.2f} s/GB" if "repl_per_gb" in res else ""))
    st.reset()
    return res


def bench_cpu(ctx, st, p):
    """ctx.args.cpu_rounds rounds; every figure is the median over them, and
    each round's figures are kept (`rounds`)."""
    rounds = [cpu_round(ctx, st, p, seed=12 + i) for i in range(ctx.args.cpu_rounds)]
    res = {}
    for k, v in rounds[0].items():
        if isinstance(v, (int, float)):
            vals = [r[k] for r in rounds if k in r]
            res[k] = statistics.median(vals)
            if k.endswith("per_gb") or k == "machine_per_gb":
                res[k + "_range"] = [min(vals), max(vals)]
    res["rounds"] = rounds
    return res


def bench_resume(ctx, st, p):
    argv = loadgen(ctx, st.staging, 1, 1, 3125, 3125, 0, 13)  # 3125 s of audio = 100 MB
    run_loadgen(ctx, argv, 300)
    names = os.listdir(st.staging)
    name = names[0]
    size = os.path.getsize(os.path.join(st.staging, name))
    st.start(capped=True)
    move_in(st, names)
    deadline = time.monotonic() + 120
    frac = 0.0
    while frac < 0.8:
        if time.monotonic() > deadline:
            raise BenchError(f"{st.label}: resume: the transfer never reached 80 %")
        if find_complete(st.b_archive, size):
            raise BenchError(f"{st.label}: resume: the file arrived before it could be interrupted")
        frac = st.in_flight_fraction(name, size)
        time.sleep(0.01)
    s_kill = st.sent_bytes()
    w_kill = st.ns.lo_bytes()
    st.kill_receiver()
    t_kill = time.monotonic()
    log(f"{st.label}: resume: receiver killed at {100 * frac:.0f} % of {size / MB:.0f} MB")
    time.sleep(1.0)
    st.restart_receiver()
    wait_for(lambda: find_complete(st.b_archive, size), 120, f"{st.label}: the 100 MB file complete on B", 0.05)
    t_done = time.monotonic()
    if st.key == "recsync":
        def acked():
            s = st.status("A")
            return s and s["replication"]["queue"]["files"] == 0
        wait_for(acked, 60, "recsync A queue empty after resume", interval=0.05)
    res = {"size": size, "killed_at": frac, "wire": st.ns.lo_bytes() - w_kill, "s": t_done - t_kill}
    if s_kill is not None:
        res["sent"] = st.sent_bytes() - s_kill
    leftovers = []
    for dirpath, _, files in os.walk(st.b_archive):
        leftovers += [f for f in files if f.startswith(".")]
    res["leftover_temps"] = len(leftovers)
    b = res.get("sent", res["wire"])
    log(f"{st.label}: resume: {b / MB:.1f} MB sent after the kill ({100 * b / size:.0f} % of the file), "
        f"lo {res['wire'] / MB:.1f} MB, done {res['s']:.1f} s after the kill")
    st.reset()
    return res


# ------------------------------------------------------------- report

def mark(ok):
    return "yes" if ok else "**NO**"


def report(args, machine, res):
    L = []
    q = " --quick" if args.quick else ""
    L.append(f"# Replication benchmark: recsync vs lsyncd + rsync ({'quick' if args.quick else 'full'})\n")
    L.append(f"- command: `sudo bench/repl.sh{q}`")
    L.append(f"- date: {machine['date']}; {machine['cpus']} CPUs ({machine['cpu']}), Linux {machine['kernel']}")
    L.append(f"- load average at start {machine['load_start']}, at end {machine.get('load_end', '-')} "
             "(shared machine)")
    L.append(f"- binaries: {args.bindir} (Release); lsyncd {machine.get('lsyncd', '?')}, "
             f"{machine.get('rsync', '?')}")
    L.append(f"- recsync: TLS 1.3, settle = \"{args.settle}\", layout = \"date\"; lsyncd: the seed's "
             "config (CloseWrite, delay = 5, archive, --bwlimit=50000), rsync daemon without TLS\n")
    stacks = [k for k in ("recsync", "lsyncd") if k in res]
    head = "| | " + " | ".join({"recsync": "recsync", "lsyncd": "lsyncd + rsync"}[k] for k in stacks)
    L.append(head + " | target | met |")
    L.append("|---" * (len(stacks) + 3) + "|")

    def row(label, fn, target="", met=""):
        cells = []
        for k in stacks:
            try:
                cells.append(fn(res[k]))
            except (KeyError, TypeError, ValueError):
                cells.append("-")
        L.append(f"| {label} | " + " | ".join(cells) + f" | {target} | {met} |")

    R, Ls = res.get("recsync", {}), res.get("lsyncd", {})
    for kind in ("latency", "burst"):
        lat = lambda r, kind=kind: r[kind]  # noqa: E731
        try:
            met = mark(lat(R)["excess_p99"] < 1.0)
        except (KeyError, TypeError):
            met = ""
        try:
            c = next(res[k][kind]["calls"] for k in stacks if kind in res[k])
        except StopIteration:
            continue
        what = "steady" if kind == "latency" else "short calls"
        row(f"latency ({what}: {c['calls']} calls of {c['min']}-{c['max']} s, {c['conc']} at once), "
            "close on A -> complete on B, p50 / p99 / max",
            lambda r: f"{lat(r)['p50']:.2f} / **{lat(r)['p99']:.2f}** / {lat(r)['max']:.2f} s",
            "recsync p99 < 1 s + transfer (lsyncd: >= 5 s)", met)
        row("  p99 minus the file's transfer time at the cap", lambda r: f"{lat(r)['excess_p99']:.2f} s")
        row("  p50 / p99 minus settle and transfer time (the engine's own delay)",
            lambda r: f"{lat(r)['engine_p50']:.2f} / {lat(r)['engine_p99']:.2f} s")
        row("  recsync split: close -> archived on A / A archive -> B, p50 (p99)",
            lambda r: f"{lat(r)['to_a_p50']:.2f} ({lat(r)['to_a_p99']:.2f}) / "
                      f"{lat(r)['a_to_b_p50']:.2f} ({lat(r)['a_to_b_p99']:.2f}) s")
        row("  files (MB), files/s closed; half-written copies on B first",
            lambda r: f"{lat(r)['files']} ({lat(r)['bytes'] / MB:.0f} MB), "
                      f"{lat(r)['files'] / lat(r)['gen_s']:.0f}/s; {lat(r)['partial_files']}")
    gov = lambda r: r["governor"].get("sent", r["governor"]["wire"])  # noqa: E731
    try:
        met = mark(gov(R)["sec"]["within5"] == 100)
    except (KeyError, TypeError):
        met = ""
    row("governor, backlog: 1-s windows (recsync: sent_bytes; rsync: lo bytes), min..max % of cap (% within +-5 %)",
        lambda r: f"{gov(r)['sec']['min_pct']:.1f}..{gov(r)['sec']['max_pct']:.1f} % "
                  f"({gov(r)['sec']['within5']:.0f} % of {gov(r)['sec']['n']})",
        "every window within +-5 %", met)
    wg = lambda r: r["governor"]["wire"]  # noqa: E731
    row("  1-s windows by lo bytes (both stacks alike): min..max % (% within +-5 %)",
        lambda r: f"{wg(r)['sec']['min_pct']:.1f}..{wg(r)['sec']['max_pct']:.1f} % "
                  f"({wg(r)['sec']['within5']:.0f} %)")
    row("  100-ms intervals by lo bytes: p5..p95 (max) % of cap, CoV",
        lambda r: f"{wg(r)['ms100']['p5_pct']:.0f}..{wg(r)['ms100']['p95_pct']:.0f} "
                  f"({wg(r)['ms100']['max_pct']:.0f}) %, {wg(r)['ms100']['cov']:.2f}")
    row("  mean rate over the transfer, % of cap", lambda r: f"{wg(r)['sec']['mean_pct']:.1f} %")
    row("  sample spacing p50 / max", lambda r: f"{1000 * wg(r)['sample_dt_p50']:.0f} / "
                                              f"{1000 * wg(r)['sample_dt_max']:.0f} ms")
    cpu = lambda r: r["cpu"]  # noqa: E731
    rng = lambda r, k: "{:.2f}..{:.2f}".format(*cpu(r)[k + "_range"])  # noqa: E731
    try:
        met = mark(cpu(R)["per_gb"] <= 0.5 * cpu(Ls)["per_gb"])
    except (KeyError, TypeError):
        met = ""
    n_rounds = args.cpu_rounds
    row(f"CPU s per GB replicated, A + B (no cap; cgroups, median of {n_rounds} rounds, range)",
        lambda r: f"**{cpu(r)['per_gb']:.2f}** = {cpu(r)['A_per_gb']:.2f} + {cpu(r)['B_per_gb']:.2f} "
                  f"({rng(r, 'per_gb')})",
        "recsync <= half of lsyncd + rsync", met)
    row("  + archiving on A (recsync: included above; old stack: the cron rsync)",
        lambda r: f"{cpu(r)['per_gb'] + cpu(r).get('cron_per_gb', 0):.2f}")
    row("  replication alone (recsync: A's sender thread + B's receiving threads)",
        lambda r: f"{cpu(r)['repl_per_gb']:.2f} ({rng(r, 'repl_per_gb')})" if "repl_per_gb" in cpu(r)
        else f"{cpu(r)['per_gb']:.2f} (all of it)")
    row("  recsync A by threads: archiving / sending / other",
        lambda r: f"{cpu(r)['A_archive_per_gb']:.2f} / {cpu(r)['A_send_per_gb']:.2f} / "
                  f"{cpu(r)['A_other_per_gb']:.2f}" if "repl_per_gb" in cpu(r) else "-")
    row("  whole machine, until written out (/proc/stat: all processes and kernel threads)",
        lambda r: f"{cpu(r)['machine_per_gb']:.2f} ({rng(r, 'machine_per_gb')})")
    row("  whole machine with archiving on A (old stack: + the cron rsync, measured the same way)",
        lambda r: f"{cpu(r)['machine_per_gb'] + cpu(r).get('cron_machine_per_gb', 0):.2f}")
    row("  time to replicate the backlog uncapped", lambda r: f"{cpu(r)['s']:.1f} s "
                                                           f"({cpu(r)['bytes'] / MB / cpu(r)['s']:.0f} MB/s)")
    rs = lambda r: r["resume"]  # noqa: E731
    rb = lambda r: rs(r).get("sent", rs(r)["wire"])  # noqa: E731
    try:
        met = mark(rb(R) < 0.25 * rs(R)["size"])
    except (KeyError, TypeError):
        met = ""
    row("resume: bytes sent after the kill at ~80 % (% of 100 MB)",
        lambda r: f"{rb(r) / MB:.1f} MB (**{100 * rb(r) / rs(r)['size']:.0f} %**)", "< 25 %", met)
    row("  lo bytes after the kill, both directions", lambda r: f"{rs(r)['wire'] / MB:.1f} MB")
    L.append("")
    L.append("How each number is taken: see bench/README.md, section \"Replication benchmark\".\n")
    return "\n".join(L) + "\n"


def keep_logs(work, dest):
    """Files (not folders, not mount points) of each stack's folder and its
    node folders: logs, configs, arrival records, manifests."""
    for dirpath, dirnames, filenames in os.walk(work):
        dirnames[:] = [d for d in dirnames if not os.path.ismount(os.path.join(dirpath, d))
                       and d not in ("state",)]
        rel = os.path.relpath(dirpath, work)
        for n in filenames:
            if n.endswith((".img", ".sock", ".key")):
                continue
            os.makedirs(os.path.join(dest, rel), exist_ok=True)
            try:
                shutil.copy(os.path.join(dirpath, n), os.path.join(dest, rel, n))
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--bindir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--stacks", default="recsync,lsyncd", help="comma list: recsync, lsyncd")
    ap.add_argument("--only", default="latency,burst,governor,cpu,resume", help="comma list of benchmarks")
    ap.add_argument("--settle", default="500ms", help="recsync spool.settle (default: recsync's default)")
    ap.add_argument("--cpu-rounds", type=int, default=3, help="rounds of the cpu benchmark (median)")
    ap.add_argument("--time-limit", type=int, default=1800)
    ap.add_argument("--logs", help="copy the daemons' logs and configs into this folder")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("repl: needs root", file=sys.stderr)
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
               "kernel": platform.release(), "load_start": loadavg()}
    for tool, argv in (("lsyncd", ["lsyncd", "--version"]), ("rsync", ["rsync", "--version"])):
        r = subprocess.run(argv, capture_output=True, text=True)
        machine[tool] = (r.stdout.splitlines() or ["?"])[0].strip()
    cleanup = Cleanup()
    res = {}
    rc = 0
    benches = [b.strip() for b in args.only.split(",") if b.strip()]
    try:
        ctx = Ctx(args, cleanup)
        p = params(args.quick)
        for key in [s.strip() for s in args.stacks.split(",") if s.strip()]:
            st = {"recsync": RecsyncStack, "lsyncd": LsyncdStack}[key](ctx)
            res[key] = {}
            for b in benches:
                fn = {"latency": bench_latency, "burst": bench_burst, "governor": bench_governor, "cpu": bench_cpu,
                      "resume": bench_resume}[b]
                res[key][b] = fn(ctx, st, p)
            st.stop()
    except (BenchError, subprocess.TimeoutExpired, OSError, KeyboardInterrupt) as e:
        log(f"BROKEN RUN: {e}")
        rc = 1
    finally:
        signal.alarm(0)
        if args.logs:
            keep_logs(args.work, args.logs)
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
