#!/usr/bin/env python3
"""Scrub benchmark (issue 11): scrub throughput at several [scrub] rate
settings, and archive latency (call end -> archived, p50/p99) with and
without a scrub pass running.

One recsyncd (no peer) with its spool and archive in a scratch folder
(--dir, default a new folder under /var/tmp: a real disk, not tmpfs). The
archive is filled through the daemon (N recordings of random bytes), then:

  throughput: for each rate, SIGHUP with [scrub] rate = R, drop the page
      cache (root only; else noted), `recsync verify` (a whole pass), and
      bytes / wall time.
  latency:    M calls at a fixed rate (written under a hidden name, renamed
      into the spool), each timed from the rename to the file's appearance in
      the archive (rename there = archived), first with no scrub, then with
      passes running back to back at each rate.

Prints a table and writes bench/results/scrub-latest.md (+ .json).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def parse_rate(s):
    s = s.strip()
    if s in ("0", "unpaced"):
        return 0
    units = {"KB/s": 1e3, "MB/s": 1e6, "GB/s": 1e9}
    for u, m in units.items():
        if s.endswith(u):
            return int(float(s[: -len(u)]) * m)
    raise ValueError(s)


class Daemon:
    def __init__(self, bindir, work, rate):
        self.bindir = bindir
        self.work = work
        self.spool = os.path.join(work, "spool")
        self.archive = os.path.join(work, "archive")
        self.state = os.path.join(work, "state")
        self.socket = os.path.join(work, "ctl.sock")
        self.config = os.path.join(work, "recsyncd.conf")
        for d in (self.spool, self.archive, self.state):
            os.makedirs(d, exist_ok=True)
        self.write_config(rate)
        self.proc = None

    def write_config(self, rate):
        with open(self.config, "w") as f:
            f.write(f'node = "bench"\nstate_dir = "{self.state}"\n'
                    f'[log]\nlevel = "warn"\n'
                    f'[control]\nsocket = "{self.socket}"\ngroup = ""\n'
                    f'[spool]\npath = "{self.spool}"\nsettle = "200ms"\n'
                    f'[archive]\npath = "{self.archive}"\nlayout = "flat"\n'
                    f'[retention]\nkeep = "0"\ninterval = "1h"\npace = 0\n'
                    f'[metrics]\nlisten = ""\n'
                    f'[scrub]\ninterval = "0"\nrate = "{rate}"\n')

    def start(self):
        self.log = open(os.path.join(self.work, "recsyncd.log"), "ab")
        self.proc = subprocess.Popen([os.path.join(self.bindir, "recsyncd"), "--config",
                                      self.config], stdout=self.log, stderr=self.log)
        for _ in range(300):
            if self.cli(["status", "--json"], check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("recsyncd did not answer within 30 s")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
            self.proc = None

    def reload(self, rate):
        self.write_config(rate)
        self.proc.send_signal(signal.SIGHUP)
        for _ in range(100):
            if self.status()["scrub"]["rate_bps"] == parse_rate(rate):
                return
            time.sleep(0.05)
        raise RuntimeError("SIGHUP did not apply the rate")

    def cli(self, args, check=True, timeout=3600):
        r = subprocess.run([os.path.join(self.bindir, "recsync"), "--socket", self.socket, *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode not in (0, 1):
            raise RuntimeError(f"recsync {' '.join(args)}: {r.returncode} {r.stderr}")
        return r

    def status(self):
        return json.loads(self.cli(["status", "--json"]).stdout)


def drop_caches(d):
    """Drops the archive files' pages (POSIX_FADV_DONTNEED on each: only
    ours, not the whole machine's cache)."""
    subprocess.run(["sync"])
    for name in os.listdir(d.archive):
        p = os.path.join(d.archive, name)
        if os.path.isfile(p):
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    return True


def fill(d, files, size):
    t0 = time.monotonic()
    for i in range(files):
        tmp = os.path.join(d.spool, f".w{i}")
        with open(tmp, "wb") as f:
            f.write(os.urandom(size))
        os.rename(tmp, os.path.join(d.spool, f"fill-{i:05d}.wav"))
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        if d.status()["archive"]["files"] >= files:
            return time.monotonic() - t0
        time.sleep(0.5)
    raise RuntimeError("the archive was not filled in time")


def scrub_pass(d, rate):
    d.reload(rate)
    cold = drop_caches(d)
    t0 = time.monotonic()
    r = d.cli(["verify", "--json"])
    secs = time.monotonic() - t0
    sc = json.loads(r.stdout)
    return {"rate": rate, "files": sc["files"], "bytes": sc["bytes"], "seconds": secs,
            "mb_s": sc["bytes"] / secs / 1e6, "cold_cache": cold,
            "errors": sum(sc["errors"].values())}


def calls(d, count, per_s, size, tag):
    """count calls at per_s; latency rename -> appears in the archive."""
    lat = []
    pending = {}
    lock = threading.Lock()
    done = threading.Event()

    def watch():
        while not done.is_set() or pending:
            with lock:
                items = list(pending.items())
            for name, t0 in items:
                if os.path.exists(os.path.join(d.archive, name)):
                    with lock:
                        lat.append(time.monotonic() - t0)
                        del pending[name]
            time.sleep(0.002)
            if done.is_set() and time.monotonic() > give_up[0]:
                break

    give_up = [float("inf")]
    th = threading.Thread(target=watch)
    th.start()
    payload = os.urandom(size)
    start = time.monotonic()
    for i in range(count):
        due = start + i / per_s
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        name = f"call-{tag}-{i:04d}.wav"
        tmp = os.path.join(d.spool, "." + name)
        with open(tmp, "wb") as f:
            f.write(payload[:-8] + i.to_bytes(8, "little"))
        with lock:
            pending[name] = time.monotonic()
            os.rename(tmp, os.path.join(d.spool, name))
    give_up[0] = time.monotonic() + 60
    done.set()
    th.join()
    lat.sort()
    if not lat:
        return {"calls": 0}
    q = lambda p: lat[min(len(lat) - 1, int(round(p * (len(lat) - 1))))]
    return {"calls": len(lat), "lost": count - len(lat), "p50_ms": q(0.5) * 1000,
            "p99_ms": q(0.99) * 1000, "max_ms": lat[-1] * 1000}


def latency_under(d, rate, count, per_s, size):
    """Calls while scrub passes run back to back at `rate` (None: no scrub)."""
    stop = threading.Event()
    passes = [0]

    def scrubber():
        while not stop.is_set():
            d.cli(["verify", "--json"])
            passes[0] += 1

    th = None
    if rate is not None:
        d.reload(rate)
        drop_caches(d)
        th = threading.Thread(target=scrubber)
        th.start()
        time.sleep(1)  # the pass is reading
    r = calls(d, count, per_s, size, "none" if rate is None else rate.replace("/", ""))
    stop.set()
    if th:
        th.join()
    r["scrub"] = "none" if rate is None else rate
    r["scrub_passes"] = passes[0]
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bindir", default=os.environ.get("RECSYNC_BENCH_BIN",
                                                        os.path.join(REPO, "build")))
    ap.add_argument("--dir", default="")
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--size-mb", type=float, default=5)
    ap.add_argument("--rates", default="10MB/s,20MB/s,50MB/s,0")
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--calls-per-s", type=float, default=10)
    ap.add_argument("--call-kb", type=int, default=960)  # a 1-minute call, 16 kHz 16-bit mono
    ap.add_argument("--out", default=os.path.join(HERE, "results", "scrub-latest"))
    a = ap.parse_args()
    work = a.dir or tempfile.mkdtemp(prefix="recsync-bench-scrub-", dir="/var/tmp")
    rates = [r.strip() for r in a.rates.split(",") if r.strip()]
    d = Daemon(a.bindir, work, rates[0])
    res = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "load_before": os.getloadavg()[0], "files": a.files, "size_mb": a.size_mb,
           "root": os.geteuid() == 0}
    try:
        d.start()
        res["fill_s"] = fill(d, a.files, int(a.size_mb * 1e6))
        res["throughput"] = []
        for r in rates:
            t = scrub_pass(d, r)
            res["throughput"].append(t)
            print(f"scrub rate {r:>8}: {t['files']} files, {t['bytes']/1e6:.0f} MB in "
                  f"{t['seconds']:.1f} s = {t['mb_s']:.1f} MB/s", flush=True)
        res["latency"] = []
        for r in [None] + rates:
            l = latency_under(d, r, a.calls, a.calls_per_s, a.call_kb * 1000)
            res["latency"].append(l)
            print(f"archive latency, scrub {l['scrub']:>8}: p50 {l.get('p50_ms', 0):.0f} ms, "
                  f"p99 {l.get('p99_ms', 0):.0f} ms, max {l.get('max_ms', 0):.0f} ms "
                  f"({l['calls']} calls, {l['scrub_passes']} passes)", flush=True)
        res["load_after"] = os.getloadavg()[0]
    finally:
        d.stop()
        if not a.dir:
            shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out + ".json", "w") as f:
        json.dump(res, f, indent=2)
    lines = [f"# Scrub benchmark, {res['when']}", "",
             f"`bench/scrub.sh` with {a.files} recordings of {a.size_mb} MB in the archive "
             f"(a folder on the machine's disk, layout flat); load {res['load_before']:.1f} "
             f"before, {res['load_after']:.1f} after; page cache "
             "of the archive files dropped (fadvise) before each pass.", "",
             "| `[scrub] rate` | files | MB | seconds | MB/s |", "| --- | --- | --- | --- | --- |"]
    for t in res["throughput"]:
        lines.append(f"| {t['rate']} | {t['files']} | {t['bytes']/1e6:.0f} | {t['seconds']:.1f} | "
                     f"**{t['mb_s']:.1f}** |")
    lines += ["", f"Archive latency (rename into the spool -> in the archive), {a.calls} calls of "
              f"{a.call_kb} kB at {a.calls_per_s}/s, with scrub passes running back to back:", "",
              "| scrub running | p50 ms | p99 ms | max ms | passes |", "| --- | --- | --- | --- | --- |"]
    for l in res["latency"]:
        lines.append(f"| {l['scrub']} | {l.get('p50_ms', 0):.0f} | {l.get('p99_ms', 0):.0f} | "
                     f"{l.get('max_ms', 0):.0f} | {l['scrub_passes']} |")
    with open(a.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
