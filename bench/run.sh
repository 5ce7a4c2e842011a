#!/usr/bin/env bash
# recsync benchmarks (issue 2): archive throughput vs rsync, startup with
# 50k spool + 500k archive recordings, a retention pass over 500k.
#
#   sudo bench/run.sh [--quick] [--repeat N] [--only archive|startup]
#
# Root is needed for the real tmpfs spool and the ext4 loop-image archive.
# Builds Release binaries into build-bench/ when missing (RECSYNC_BENCH_BIN
# points at another folder holding recsyncd, recsync, recsync-loadgen).
# Prints a table at the end and writes bench/results/latest.md (+ .json).
# Exit status: 0 the run completed (targets met or not), 1 a broken run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

if [[ $(id -u) -ne 0 ]]; then
  echo "bench/run.sh: needs root (tmpfs and loop mounts): sudo bench/run.sh" >&2
  exit 1
fi
for tool in cmake g++ python3 rsync mkfs.ext4 losetup; do
  command -v "$tool" >/dev/null || { echo "bench/run.sh: $tool is missing" >&2; exit 1; }
done

bindir="${RECSYNC_BENCH_BIN:-$repo/build-bench}"
if [[ -z "${RECSYNC_BENCH_BIN:-}" ]]; then
  if [[ ! -x "$bindir/recsyncd" || ! -x "$bindir/recsync" || ! -x "$bindir/recsync-loadgen" ]]; then
    echo "bench/run.sh: building Release binaries in $bindir"
    cmake -S "$repo" -B "$bindir" -DCMAKE_BUILD_TYPE=Release -DRECSYNC_TESTS=OFF >/dev/null
    cmake --build "$bindir" --target recsyncd recsync recsync-loadgen -j2 >/dev/null
  fi
fi
if [[ ! -x "$bindir/bench-mkfiles" || "$here/mkfiles.cc" -nt "$bindir/bench-mkfiles" ]]; then
  mkdir -p "$bindir"
  g++ -std=c++20 -O2 -Wall -Wextra -o "$bindir/bench-mkfiles" "$here/mkfiles.cc"
fi

work="$(mktemp -d /var/tmp/recsync-bench.XXXXXX)"
py_pid=""

# Fallback cleanup for when bench.py itself dies (it undoes its own work in
# `finally`): its daemons by pid, then mounts, loop devices, the folder.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e +o pipefail  # best effort: one failed step must not skip the rest
  if [[ -n "$py_pid" ]] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$py_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$py_pid" 2>/dev/null || true
  fi
  if [[ -f "$work/pids" ]]; then
    while read -r pid; do
      if [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$bindir/recsyncd" ]]; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done <"$work/pids"
  fi
  findmnt -rn -o TARGET | { grep -F "$work/" || true; } | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  for img in "$work"/*.img; do
    [[ -e "$img" ]] || continue
    losetup -j "$img" | cut -d: -f1 | while read -r dev; do losetup -d "$dev" 2>/dev/null || true; done
  done
  rm -rf --one-file-system "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$here/results"
python3 "$here/bench.py" --work "$work" --bindir "$bindir" --out "$here/results/latest.md" "$@" &
py_pid=$!
wait "$py_pid"
