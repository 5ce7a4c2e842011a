#!/usr/bin/env bash
# Replication benchmark: recsync (two recsyncd nodes over TLS 1.3) against the
# stack it replaces (lsyncd 2.2.3 default.rsync -> rsync daemon), same machine,
# same run: latency close -> peer with 800 concurrent calls, bandwidth governor
# accuracy, CPU seconds per GB, resume of an interrupted 100 MB transfer.
#
#   sudo bench/repl.sh [--quick] [--stacks recsync,lsyncd] [--only latency,burst,governor,cpu,resume]
#                      [--settle 500ms]
#
# Root is needed: tmpfs and ext4 loop mounts, network namespaces (each stack
# talks over the loopback of its own namespace), cgroup v2 groups (CPU time).
# Builds Release binaries into build-benchrepl/ when missing or older than the
# sources (RECSYNC_BENCH_BIN=DIR uses others; make -j1: a shared machine).
# Prints a table and writes bench/results/repl-latest.md (+ .json).
# Exit status: 0 the run completed (targets met or not), 1 a broken run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

if [[ $(id -u) -ne 0 ]]; then
  echo "bench/repl.sh: needs root (mounts, network namespaces, cgroups): sudo bench/repl.sh" >&2
  exit 1
fi
for tool in cmake g++ python3 rsync lsyncd ip mkfs.ext4 losetup; do
  command -v "$tool" >/dev/null || { echo "bench/repl.sh: $tool is missing" >&2; exit 1; }
done

bindir="${RECSYNC_BENCH_BIN:-$repo/build-benchrepl}"
if [[ -z "${RECSYNC_BENCH_BIN:-}" ]]; then
  echo "bench/repl.sh: building Release binaries in $bindir (-j1)"
  cmake -S "$repo" -B "$bindir" -DCMAKE_BUILD_TYPE=Release -DRECSYNC_TESTS=OFF >/dev/null
  if ! cmake --build "$bindir" --target recsyncd recsync recsync-loadgen -j1 >"$bindir/build.log" 2>&1; then
    tail -30 "$bindir/build.log" >&2
    echo "bench/repl.sh: build failed (full log: $bindir/build.log)" >&2
    exit 1
  fi
fi
if [[ ! -x "$bindir/bench-repl-arrivals" || "$here/repl/arrivals.cc" -nt "$bindir/bench-repl-arrivals" ]]; then
  mkdir -p "$bindir"
  g++ -std=c++20 -O2 -Wall -Wextra -o "$bindir/bench-repl-arrivals" "$here/repl/arrivals.cc"
fi

work="$(mktemp -d /var/tmp/recsync-benchrepl.XXXXXX)"
py_pid=""

# Fallback cleanup for when repl.py itself dies (it undoes its own work in
# `finally`): every process it started (all live in its cgroups: cgroup.kill),
# mounts, loop devices, network namespaces, the cgroups, the folder.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e +o pipefail  # best effort: one failed step must not skip the rest
  if [[ -n "$py_pid" ]] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$py_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$py_pid" 2>/dev/null || true
  fi
  if [[ -f "$work/cgroup" ]]; then
    cg="$(cat "$work/cgroup")"
    if [[ -d "$cg" ]]; then
      for g in "$cg"/*/; do
        [[ -f "$g/cgroup.kill" ]] && echo 1 >"$g/cgroup.kill" 2>/dev/null
      done
      for g in "$cg"/*/; do  # exited processes leave the group once reaped
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
python3 "$here/repl.py" --work "$work" --bindir "$bindir" --out "$here/results/repl-latest.md" "$@" &
py_pid=$!
rc=0
wait "$py_pid" || rc=$?
[[ $rc -eq 0 ]] || exit 1  # repl.py: 1 = broken run; anything else (killed) is one too
