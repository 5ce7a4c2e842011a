#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine:
#   1. installs every dependency (apt-get; needs root or sudo),
#   2. builds with -Wall -Wextra and runs every test: unit, integration (real
#      recsyncd processes; as root on real tmpfs + loop ext4, skipped with a
#      reason otherwise), ops (unit, man pages, docs agreement, Debian package)
#      and a bounded libFuzzer run of the frame parser,
#   3. rebuilds with AddressSanitizer + UBSan and runs unit and integration
#      tests again.
# Exit status is non-zero if anything fails.
#
#   scripts/test.sh          the above
#   scripts/test.sh --tsan   instead: a ThreadSanitizer build (build-tsan) and
#                            its unit and integration tests
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

if [ "${1:-}" = "--tsan" ]; then
  echo "== build (ThreadSanitizer)"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DRECSYNC_TSAN=ON >/dev/null
  cmake --build build-tsan -j"$jobs"
  echo "== tests under ThreadSanitizer"
  (cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest --output-on-failure -j2 -L 'unit|integration' --timeout 1800)
  exit 0
fi

# Debug info is nearly half of the compile time; line tables (-g1) are all
# that backtraces and sanitizer reports need, so both builds use them.
echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
(cd build && ctest --output-on-failure -j2 --timeout 1800)

echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1" \
  -DRECSYNC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure -j2 -L 'unit|integration' --timeout 1800)
