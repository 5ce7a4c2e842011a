#!/usr/bin/env bash
# Backfill benchmark (issue 10): planning a backfill over a 500,000-recording
# window (empty node, pair in sync, 1 % missing), then a real-size backfill
# (20 GB of 1-20 MB recordings) against the 50 MB/s cap while live calls are
# replicated; side by side with what the old stack would do on the same trees
# (rsync -a of the window, lsyncd's startup sync). Two real recsyncd, loopback
# only (a network namespace of their own).
#
#   sudo bench/backfill.sh                          # full: 500k + 20 GB, ~30 min (~35 with --big-lsyncd)
#   sudo bench/backfill.sh --files 20000 --gb 2     # a quick check, ~5 min
#   options: --only planning|throughput  --big-lsyncd  --batch-gb N  --time-limit S
#
# Root is needed: ext4 loop mounts, tmpfs, a network namespace, cgroups.
# Builds Release binaries into build-benchbf/ when missing (RECSYNC_BENCH_BIN=DIR
# uses others). Disk: about 2.3 x --gb GB under /var/tmp (sparse images), freed
# at the end. Prints a table and writes bench/results/backfill-latest.md (+ .json).
# Exit status: 0 the run completed (targets met or not), 1 a broken run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

if [[ $(id -u) -ne 0 ]]; then
  echo "bench/backfill.sh: needs root (mounts, network namespace, cgroups): sudo bench/backfill.sh" >&2
  exit 1
fi
for tool in cmake g++ python3 rsync lsyncd ip mkfs.ext4 losetup; do
  command -v "$tool" >/dev/null || { echo "bench/backfill.sh: $tool is missing" >&2; exit 1; }
done
[[ -e /usr/lib/x86_64-linux-gnu/libxxhash.so.0 || -n "$(ldconfig -p | grep libxxhash.so.0)" ]] ||
  { echo "bench/backfill.sh: libxxhash.so.0 is missing (apt install libxxhash0)" >&2; exit 1; }

bindir="${RECSYNC_BENCH_BIN:-$repo/build-benchbf}"
if [[ -z "${RECSYNC_BENCH_BIN:-}" ]]; then
  echo "bench/backfill.sh: building Release binaries in $bindir (-j1)"
  cmake -S "$repo" -B "$bindir" -DCMAKE_BUILD_TYPE=Release -DRECSYNC_TESTS=OFF >/dev/null
  if ! cmake --build "$bindir" --target recsyncd recsync recsync-loadgen -j1 >"$bindir/build.log" 2>&1; then
    tail -30 "$bindir/build.log" >&2
    echo "bench/backfill.sh: build failed (full log: $bindir/build.log)" >&2
    exit 1
  fi
fi
for b in recsyncd recsync recsync-loadgen; do
  [[ -x "$bindir/$b" ]] || { echo "bench/backfill.sh: $bindir/$b is missing" >&2; exit 1; }
done
if [[ ! -x "$bindir/bench-mkfiles" || "$here/mkfiles.cc" -nt "$bindir/bench-mkfiles" ]]; then
  g++ -std=c++20 -O2 -Wall -Wextra -o "$bindir/bench-mkfiles" "$here/mkfiles.cc"
fi
if [[ ! -x "$bindir/bench-repl-arrivals" || "$here/repl/arrivals.cc" -nt "$bindir/bench-repl-arrivals" ]]; then
  g++ -std=c++20 -O2 -Wall -Wextra -o "$bindir/bench-repl-arrivals" "$here/repl/arrivals.cc"
fi

work="$(mktemp -d /var/tmp/recsync-benchbf.XXXXXX)"
py_pid=""

# Fallback cleanup for when backfill.py itself dies (it undoes its own work in
# `finally`): every process it started (all in its cgroups: cgroup.kill),
# mounts, loop devices, the network namespace, the cgroups, the folder.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e +o pipefail
  if [[ -n "$py_pid" ]] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null || true
    for _ in $(seq 300); do kill -0 "$py_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$py_pid" 2>/dev/null || true
  fi
  if [[ -f "$work/cgroup" ]]; then
    cg="$(cat "$work/cgroup")"
    if [[ -d "$cg" ]]; then
      for g in "$cg"/*/; do
        [[ -f "$g/cgroup.kill" ]] && echo 1 >"$g/cgroup.kill" 2>/dev/null
      done
      for g in "$cg"/*/; do
        for _ in $(seq 50); do grep -q '^populated 0' "$g/cgroup.events" 2>/dev/null && break; sleep 0.1; done
        rmdir "$g" 2>/dev/null || true
      done
      rmdir "$cg" 2>/dev/null || true
    fi
  fi
  findmnt -rn -o TARGET | { grep -F "$work/" || true; } | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  find "$work" -name '*.img' 2>/dev/null | while read -r img; do
    losetup -j "$img" | cut -d: -f1 | while read -r dev; do losetup -d "$dev" 2>/dev/null || true; done
  done
  if [[ -f "$work/netns" ]]; then
    while read -r ns; do ip netns del "$ns" 2>/dev/null || true; done <"$work/netns"
  fi
  rm -rf --one-file-system "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$here/results"
cmdline="bench/backfill.sh${*:+ $*}"
python3 "$here/backfill.py" --work "$work" --bindir "$bindir" --out "$here/results/backfill-latest.md" \
  --command "$cmdline" "$@" &
py_pid=$!
rc=0
wait "$py_pid" || rc=$?
[[ $rc -eq 0 ]] || exit 1
