#!/bin/sh
# Builds the libFuzzer targets with clang-14 in their own build folder and runs
# each for a bounded time. Exit status is non-zero if a target crashes (or the
# build fails).
#   tests/fuzz/run.sh [SECONDS]   (default 30 per target; two targets)
set -eu
secs=${1:-30}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${RECSYNC_FUZZ_BUILD:-$src/build-fuzz}
jobs=${RECSYNC_FUZZ_JOBS:-2}

mkdir -p "$build"
CC=clang-14 CXX=clang++-14 cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRECSYNC_FUZZ=ON -DRECSYNC_TESTS=OFF >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
cmake --build "$build" --target frame_fuzz manifest_fuzz manifest_fuzz_seeds -j"$jobs"

status=0
for target in frame_fuzz manifest_fuzz; do
  corpus="$build/corpus/$target"
  artifacts="$build/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  # A target with a seed writer starts from its seeds too (read, not written).
  seeds=
  if [ -x "$build/tests/fuzz/${target}_seeds" ]; then
    seeds="$build/seeds/$target"
    mkdir -p "$seeds"
    "$build/tests/fuzz/${target}_seeds" "$seeds"
  fi
  echo "== $target for ${secs}s"
  if ! "$build/tests/fuzz/$target" -max_total_time="$secs" -max_len=4096 -timeout=10 \
      -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$artifacts" "$corpus" $seeds; then
    echo "== $target FAILED; crashing inputs in $artifacts" >&2
    status=1
  fi
done
exit $status
