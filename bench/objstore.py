#!/usr/bin/env python3
"""Object-store tier benchmark (issue 12), run by bench/objstore.sh.

1. Upload throughput and client CPU per GB to one local Ceph RGW (the tests'
   cluster, started by recsync-bench-rgw on 127.0.0.1), the same files in
   the same run, for: recsyncd's uploader (verification always on: Content-MD5,
   the XXH3 checked before, HEAD after), `s3cmd put --recursive` (its default
   MD5 check of the ETag) and `rclone copy` (its default MD5 check). Each
   tool reads the same archive folder with the page cache dropped first, and
   writes to its own empty bucket.
   recsyncd: timed from its start (with the recordings already archived and
   queued by a first run whose credentials the store refused) until status
   shows the upload queue empty and every object verified; CPU is the whole
   daemon's over that run (its start, the status polls and all uploading
   threads). s3cmd and rclone: wall time and the child's rusage (user +
   system).
2. A 50 MB/s cap shared with peer replication: node A (its spool filled with
   a backlog) replicates to node B and uploads to the store under its one
   governor. The bytes A sends to B's replication port and to the RGW port
   are counted by iptables rules on lo (independent of recsync's own
   counters); the rates of 1-second windows over the backlog are compared
   with the cap.

Loopback only; everything lives in one work folder given by the caller and
every process started here is stopped in `finally`. Every wait is bounded.
"""
import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

MB = 1000 * 1000
MiB = 1 << 20


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Bench:
    def __init__(self, args):
        self.a = args
        self.work = args.work
        self.bin = args.bin
        self.procs = []
        self.rules = []
        self.rgw = None
        self.results = {"files": 0, "bytes": 0, "runs": [], "cap": None}

    # ---------------------------------------------------------------- helpers
    def run(self, argv, env=None, timeout=600, check=True):
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr[-2000:]}")
        return r

    def drop_caches(self):
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")

    def start_rgw(self):
        p = subprocess.Popen([os.path.join(self.a.rgw_bin, "recsync-bench-rgw"), "8"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("recsync-bench-rgw did not start the cluster")
        self.rgw = json.loads(line)
        self.rgw_proc = p
        log(f"RGW up at {self.rgw['endpoint']} in {self.rgw['startup_s']:.1f} s")

    def s3cmd_cfg(self):
        host = self.rgw["endpoint"].replace("http://", "")
        path = os.path.join(self.work, "s3cfg")
        with open(path, "w") as f:
            f.write(f"[default]\naccess_key = {self.rgw['access_key']}\n"
                    f"secret_key = {self.rgw['secret_key']}\nhost_base = {host}\n"
                    f"host_bucket = {host}\nuse_https = False\nsignature_v2 = False\n")
        os.chmod(path, 0o600)
        return path

    def rclone_env(self):
        # The caller's AWS_* variables (AWS_CA_BUNDLE) would reach rclone's S3 backend.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Ceph",
                   RCLONE_CONFIG_BENCH_ENDPOINT=self.rgw["endpoint"],
                   RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=self.rgw["access_key"],
                   RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=self.rgw["secret_key"],
                   RCLONE_CONFIG="/dev/null")
        return env

    def bucket_size(self, bucket):
        r = self.run(["rclone", "size", "--json", f"bench:{bucket}"], env=self.rclone_env())
        j = json.loads(r.stdout)
        return j["count"], j["bytes"]

    def purge(self, bucket):
        # Frees the memstore OSD's memory for the next run.
        self.run(["rclone", "purge", f"bench:{bucket}"], env=self.rclone_env(), check=False)

    def make_data(self):
        d = os.path.join(self.work, "data")
        os.makedirs(d)
        rng = random.Random(12)
        total = 0
        for i in range(self.a.files):
            size = rng.randint(self.a.min_mb * MB, self.a.max_mb * MB)
            path = os.path.join(d, f"{i:04d}-{rng.getrandbits(64):016x}.wav")
            with open(path, "wb") as f:
                f.write(os.urandom(size))
            t = time.time() - 600 - i  # recorded ten minutes ago
            os.utime(path, (t, t))
            total += size
        self.results["files"] = self.a.files
        self.results["bytes"] = total
        log(f"{self.a.files} recordings, {total / MB:.0f} MB")
        return d

    # ---------------------------------------------------------------- recsyncd
    def node_conf(self, name, creds, bucket, bandwidth, listen="", peer=None, fp=None):
        base = os.path.join(self.work, name)
        for sub in ("spool", "archive", "state"):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        conf = (f'node = "{name}"\nstate_dir = "{base}/state"\n[log]\nlevel = "info"\n'
                f'[control]\nsocket = "{base}/ctl.sock"\ngroup = ""\n'
                f'[spool]\npath = "{base}/spool"\nsettle = "200ms"\nopen_check = "none"\n'
                f'[archive]\npath = "{base}/archive"\nlayout = "flat"\n'
                f'[retention]\nkeep = "15d"\n[metrics]\nlisten = ""\n'
                f'[replication]\nbandwidth = "{bandwidth}"\n')
        if listen:
            conf += f'listen = "{listen}"\n'
        if peer:
            conf += f'[[peer]]\nname = "{peer[0]}"\naddress = "{peer[1]}"\nfingerprint = "{fp}"\n'
        conf += (f'[object_store]\nendpoint = "{self.rgw["endpoint"]}"\nbucket = "{bucket}"\n'
                 f'credentials = "{creds}"\n')
        if self.a.uploads:
            conf += f'uploads = {self.a.uploads}\n'

        path = os.path.join(base, "recsyncd.conf")
        with open(path, "w") as f:
            f.write(conf)
        return base, path

    def creds(self, name, secret):
        path = os.path.join(self.work, f"creds-{name}")
        with open(path, "w") as f:
            f.write(f"access_key = {self.rgw['access_key']}\nsecret_key = {secret}\n")
        os.chmod(path, 0o600)
        return path

    def start_daemon(self, conf, logname):
        logf = open(os.path.join(self.work, logname), "a")
        p = subprocess.Popen([os.path.join(self.bin, "recsyncd"), "-c", conf],
                             stdout=logf, stderr=logf)
        self.procs.append(p)
        with open(os.path.join(self.work, "pids"), "a") as f:
            f.write(f"{p.pid}\n")
        return p

    def status(self, base):
        r = subprocess.run([os.path.join(self.bin, "recsync"), "--socket",
                            os.path.join(base, "ctl.sock"), "status", "--json"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def wait(self, cond, timeout, what, poll=0.1):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return
            time.sleep(poll)
        raise RuntimeError(f"timed out after {timeout} s waiting for {what}")

    def stop_daemon(self, p):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise RuntimeError("recsyncd did not stop on SIGTERM")

    @staticmethod
    def process_cpu(pid):
        """CPU seconds (user + system) of the whole process so far, every thread
        included, those that ended too (/proc/PID/stat)."""
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        fields = st[st.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run_recsyncd(self, data, rep):
        bucket = f"recsyncd-{rep}"
        self.run(["rclone", "mkdir", f"bench:{bucket}"], env=self.rclone_env())
        base, conf = self.node_conf(f"up{rep}", self.creds("bad", "wrong-secret"), bucket, "0")
        for name in os.listdir(data):
            shutil.copy2(os.path.join(data, name), os.path.join(base, "spool", name))
        # First run: archives and queues everything; the store refuses us.
        p = self.start_daemon(conf, f"up{rep}.log")
        n = self.a.files
        self.wait(lambda: (s := self.status(base)) and s["archive"]["files"] == n
                  and s["object_store"]["queue"]["files"] == n, 300, "the archive")
        self.stop_daemon(p)
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(text.replace(self.creds("bad", "wrong-secret"),
                                 self.creds("good", self.rgw["secret_key"])))
        self.drop_caches()
        t0 = time.monotonic()
        p = self.start_daemon(conf, f"up{rep}.log")
        self.wait(lambda: (s := self.status(base)) and s["object_store"]["queue"]["files"] == 0
                  and s["object_store"]["objects"]["files"] == n, 900, "the uploads", poll=0.05)
        secs = time.monotonic() - t0
        cpu = self.process_cpu(p.pid)
        st = self.status(base)
        self.stop_daemon(p)
        count, size = self.bucket_size(bucket)
        if count != n or size != self.results["bytes"]:
            raise RuntimeError(f"recsyncd bucket holds {count} objects, {size} bytes")
        self.purge(bucket)
        shutil.rmtree(base)
        return {"tool": "recsyncd", "seconds": secs, "cpu_s": cpu,
                "sent_bytes": st["object_store"]["sent_bytes"]}

    def run_child(self, argv, env, tool):
        self.drop_caches()
        err = open(os.path.join(self.work, "child.err"), "w+")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        self.procs.append(p)
        try:
            p.wait(timeout=900)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{tool} did not finish in 900 s")
        secs = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # only p was reaped meanwhile
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{tool} exited {p.returncode}: {err.read()[-2000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return {"tool": tool, "seconds": secs, "cpu_s": cpu}

    def run_s3cmd(self, data, rep):
        bucket = f"s3cmd-{rep}"
        cfg = self.s3cmd_cfg()
        self.run(["s3cmd", "-c", cfg, "mb", f"s3://{bucket}"])
        r = self.run_child(["s3cmd", "-c", cfg, "put", "--recursive", "--no-progress",
                            data + "/", f"s3://{bucket}/"], None, "s3cmd put")
        self.check_bucket(bucket)
        return r

    def run_rclone(self, data, rep):
        bucket = f"rclone-{rep}"
        env = self.rclone_env()
        self.run(["rclone", "mkdir", f"bench:{bucket}"], env=env)
        r = self.run_child(["rclone", "copy", data, f"bench:{bucket}"], env, "rclone copy")
        self.check_bucket(bucket)
        return r

    def check_bucket(self, bucket):
        count, size = self.bucket_size(bucket)
        if count != self.a.files or size != self.results["bytes"]:
            raise RuntimeError(f"{bucket} holds {count} objects, {size} bytes")
        self.purge(bucket)

    # ---------------------------------------------------------------- the cap
    def fingerprint(self, conf):
        self.run([os.path.join(self.bin, "recsync"), "-c", conf, "keygen"])
        r = self.run([os.path.join(self.bin, "recsync"), "-c", conf, "id"])
        return r.stdout.strip()

    def add_rule(self, port, tag):
        rule = ["OUTPUT", "-o", "lo", "-p", "tcp", "--dport", str(port), "-m", "comment",
                "--comment", tag]
        self.run(["iptables", "-w", "-I"] + rule)
        self.rules.append(rule)

    def counters(self):
        r = self.run(["iptables", "-w", "-L", "OUTPUT", "-v", "-x", "-n"])
        out = {}
        for line in r.stdout.splitlines():
            m = re.search(r"/\* (recsync-bench-\w+) \*/", line)
            if m:
                out[m.group(1)] = int(line.split()[1])
        return out

    def run_cap(self, data):
        cap = self.a.cap_mb * MB
        port_a, port_b = self.a.port_base, self.a.port_base + 1
        rgw_port = int(self.rgw["endpoint"].rsplit(":", 1)[1])
        good = self.creds("good", self.rgw["secret_key"])
        self.run(["rclone", "mkdir", "bench:cap"], env=self.rclone_env())
        base_a, conf_a = self.node_conf("capA", good, "cap", f"{self.a.cap_mb}MB/s",
                                        f"127.0.0.1:{port_a}")
        base_b, conf_b = self.node_conf("capB", good, "cap", f"{self.a.cap_mb}MB/s",
                                        f"127.0.0.1:{port_b}")
        fp_a, fp_b = self.fingerprint(conf_a), self.fingerprint(conf_b)
        base_a, conf_a = self.node_conf("capA", good, "cap", f"{self.a.cap_mb}MB/s",
                                        f"127.0.0.1:{port_a}", ("capB", f"127.0.0.1:{port_b}"), fp_b)
        base_b, conf_b = self.node_conf("capB", good, "cap", f"{self.a.cap_mb}MB/s",
                                        f"127.0.0.1:{port_b}", ("capA", f"127.0.0.1:{port_a}"), fp_a)
        for name in os.listdir(data):
            shutil.copy2(os.path.join(data, name), os.path.join(base_a, "spool", name))
        self.add_rule(port_b, "recsync-bench-peer")
        self.add_rule(rgw_port, "recsync-bench-rgw")
        pb = self.start_daemon(conf_b, "capB.log")
        self.wait(lambda: self.status(base_b) is not None, 30, "node B")
        pa = self.start_daemon(conf_a, "capA.log")
        samples = []  # (monotonic, peer bytes, rgw bytes, A's queues empty)
        end = time.monotonic() + 900
        nxt = time.monotonic()
        done_at = None
        while time.monotonic() < end:
            c = self.counters()
            s = self.status(base_a)
            empty = bool(s) and s["replication"]["queue"]["files"] == 0 and \
                s["object_store"]["queue"]["files"] == 0 and s["archive"]["files"] == self.a.files
            samples.append((time.monotonic(), c.get("recsync-bench-peer", 0),
                            c.get("recsync-bench-rgw", 0), empty))
            if empty and done_at is None:
                done_at = time.monotonic()
            if done_at is not None and time.monotonic() - done_at > 2:
                break
            nxt += 1.0
            time.sleep(max(0.0, nxt - time.monotonic()))
        else:
            raise RuntimeError("the capped backlog did not drain in 900 s")
        self.stop_daemon(pa)
        self.stop_daemon(pb)
        count, size = self.bucket_size("cap")
        if count != self.a.files or size != self.results["bytes"]:
            raise RuntimeError(f"cap bucket holds {count} objects, {size} bytes")
        b_files = len(os.listdir(os.path.join(base_b, "archive")))
        if b_files != self.a.files:
            raise RuntimeError(f"node B holds {b_files} recordings")
        self.purge("cap")
        return self.cap_windows(samples, cap)

    @staticmethod
    def cap_windows(samples, cap):
        # Windows over the backlog: from the first second both moved bytes
        # to the last full second before the queues emptied, the first and
        # last second left out (start-up, tail).
        moving = [i for i in range(1, len(samples))
                  if samples[i][1] > samples[i - 1][1] and samples[i][2] > samples[i - 1][2]]
        last = max(i for i in range(len(samples)) if not samples[i][3])
        if not moving:
            raise RuntimeError("no second in which both destinations moved")
        first = moving[0] + 1
        rates, peer, rgw = [], 0, 0
        for i in range(first + 1, last):
            dt = samples[i][0] - samples[i - 1][0]
            dp = samples[i][1] - samples[i - 1][1]
            dr = samples[i][2] - samples[i - 1][2]
            rates.append((dp + dr) / dt)
            peer += dp
            rgw += dr
        pct = [100.0 * r / cap for r in rates]
        within = sum(1 for p in pct if abs(p - 100.0) <= 5.0)
        return {"windows": len(pct), "min_pct": min(pct), "max_pct": max(pct),
                "mean_pct": statistics.mean(pct), "within_5pct": within,
                "peer_share": peer / max(1, peer + rgw), "pct": [round(p, 1) for p in pct]}

    # ---------------------------------------------------------------- main
    def main(self):
        try:
            self.start_rgw()
            data = self.make_data()
            if not self.a.cap_only:
                for rep in range(self.a.repeat):
                    for fn in (self.run_recsyncd, self.run_s3cmd, self.run_rclone):
                        r = fn(data, rep)
                        gb = self.results["bytes"] / 1e9
                        r["mb_per_s"] = self.results["bytes"] / MB / r["seconds"]
                        r["cpu_s_per_gb"] = r["cpu_s"] / gb
                        r["rep"] = rep
                        self.results["runs"].append(r)
                        log(f"{r['tool']}: {r['seconds']:.2f} s, {r['mb_per_s']:.0f} MB/s, "
                            f"CPU {r['cpu_s']:.2f} s ({r['cpu_s_per_gb']:.2f} s/GB)")
            if not self.a.throughput_only:
                c = self.run_cap(data)
                self.results["cap"] = c
                log(f"cap {self.a.cap_mb} MB/s shared: {c['windows']} 1-s windows "
                    f"{c['min_pct']:.1f}..{c['max_pct']:.1f} % of the cap, mean "
                    f"{c['mean_pct']:.1f} %, {c['within_5pct']} within +-5 %, peer share "
                    f"{100 * c['peer_share']:.0f} %")
            self.results["load"] = os.getloadavg()
            with open(self.a.out, "w") as f:
                json.dump(self.results, f, indent=1)
            return 0
        finally:
            for rule in self.rules:
                subprocess.run(["iptables", "-w", "-D"] + rule, capture_output=True)
            for p in reversed(self.procs):
                if p.poll() is None:
                    if p is getattr(self, "rgw_proc", None):
                        p.stdin.close()
                        try:
                            p.wait(timeout=30)
                            continue
                        except subprocess.TimeoutExpired:
                            pass
                    p.kill()
                    p.wait()


def parse():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--bin", required=True, help="folder with recsyncd and recsync")
    ap.add_argument("--rgw-bin", required=True, help="folder with recsync-bench-rgw")
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--min-mb", type=int, default=1)
    ap.add_argument("--max-mb", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cap-mb", type=int, default=50)
    ap.add_argument("--uploads", type=int, default=0, help="[object_store] uploads; 0 = default")
    ap.add_argument("--port-base", type=int, default=17473)
    ap.add_argument("--throughput-only", action="store_true")
    ap.add_argument("--cap-only", action="store_true")
    ap.add_argument("--out", required=True)
    return ap.parse_args()


if __name__ == "__main__":
    # SIGTERM (objstore.sh's cleanup, timeout) ends the run through `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    sys.exit(Bench(parse()).main())
