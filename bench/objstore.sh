#!/usr/bin/env bash
# Object-store tier benchmark (issue 12): upload throughput and client CPU
# per GB against s3cmd and rclone to one local Ceph RGW, and a 50 MB/s cap
# shared with peer replication (see bench/objstore.py for what is measured).
#
#   sudo bench/objstore.sh [--quick] [--repeat N] [--throughput-only|--cap-only]
#
# Root: drops the page cache before each run and counts bytes with iptables
# rules on lo (removed at the end). Needs the Ceph packages, s3cmd, rclone,
# iptables. Builds Release binaries into build-bench-obj/ when missing
# (RECSYNC_BENCH_BIN=DIR uses a folder holding recsyncd, recsync and
# recsync-bench-rgw). Loopback only; at most one hour. Writes
# bench/results/objstore-latest.json and prints a summary.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
if [[ $(id -u) -ne 0 ]]; then
  echo "bench/objstore.sh: needs root (drop_caches, iptables): sudo bench/objstore.sh" >&2
  exit 1
fi
for tool in cmake g++ python3 s3cmd rclone iptables radosgw ceph-mon ceph-osd; do
  command -v "$tool" >/dev/null || { echo "bench/objstore.sh: $tool is missing" >&2; exit 1; }
done

args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) args+=(--files 30 --repeat 1); shift ;;
    --repeat) args+=(--repeat "$2"); shift 2 ;;
    --throughput-only|--cap-only) args+=("$1"); shift ;;
    *) echo "bench/objstore.sh: unknown option $1" >&2; exit 64 ;;
  esac
done

bindir="${RECSYNC_BENCH_BIN:-$repo/build-bench-obj}"
if [[ -z "${RECSYNC_BENCH_BIN:-}" ]]; then
  if [[ ! -x "$bindir/recsyncd" || ! -x "$bindir/recsync" || ! -x "$bindir/tests/recsync-bench-rgw" ]]; then
    echo "bench/objstore.sh: building Release binaries in $bindir"
    cmake -S "$repo" -B "$bindir" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$bindir" --target recsyncd recsync recsync-bench-rgw -j2 >/dev/null
  fi
fi
rgwbin="$bindir/tests"
[[ -x "$rgwbin/recsync-bench-rgw" ]] || rgwbin="$bindir"

work="$(mktemp -d /var/tmp/recsync-objbench.XXXXXX)"
py_pid=""
cleanup() {
  trap - EXIT INT TERM
  set +e
  if [[ -n "$py_pid" ]] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$py_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$py_pid" 2>/dev/null
  fi
  if [[ -f "$work/pids" ]]; then  # daemons the script started, by pid
    while read -r pid; do
      [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$bindir/recsyncd" ]] && kill -KILL "$pid"
    done <"$work/pids"
  fi
  while iptables -w -L OUTPUT -n --line-numbers 2>/dev/null | grep -q recsync-bench-; do
    n=$(iptables -w -L OUTPUT -n --line-numbers | grep recsync-bench- | head -1 | cut -d' ' -f1)
    iptables -w -D OUTPUT "$n" || break
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkdir -p "$here/results"
out="$here/results/objstore-latest.json"
timeout 3600 python3 "$here/objstore.py" --work "$work" --bin "$bindir" --rgw-bin "$rgwbin" \
  --out "$out" "${args[@]}" &
py_pid=$!
wait "$py_pid"
rc=$?
py_pid=""
[[ $rc -eq 0 ]] || { echo "bench/objstore.sh: the run failed (exit $rc)" >&2; exit 1; }
python3 - "$out" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
print(f"\n{r['files']} recordings, {r['bytes'] / 1e6:.0f} MB; load {r.get('load')}")
tools = {}
for run in r["runs"]:
    tools.setdefault(run["tool"], []).append(run)
if tools:
    print("| tool | MB/s (median) | client CPU s/GB (median) | runs |")
    print("| --- | --- | --- | --- |")
    for t, runs in tools.items():
        print(f"| {t} | {statistics.median(x['mb_per_s'] for x in runs):.0f} | "
              f"{statistics.median(x['cpu_s_per_gb'] for x in runs):.2f} | {len(runs)} |")
c = r.get("cap")
if c:
    print(f"\ncap shared with replication: {c['windows']} one-second windows, "
          f"{c['min_pct']:.1f}..{c['max_pct']:.1f} % of the cap (mean {c['mean_pct']:.1f} %), "
          f"{c['within_5pct']} of {c['windows']} within +-5 %; replication's share "
          f"{100 * c['peer_share']:.0f} %")
PY
