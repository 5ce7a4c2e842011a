#!/usr/bin/env bash
# Scrub benchmark (issue 11): scrub throughput at several [scrub] rate
# settings and archive latency (p50/p99) with and without a scrub running.
#
#   bench/scrub.sh [--files N] [--size-mb MB] [--rates 10MB/s,20MB/s,50MB/s,0]
#                  [--calls N] [--calls-per-s R] [--bindir DIR]
#
# Uses the binaries in build/ (or --bindir / RECSYNC_BENCH_BIN). No root
# needed: one recsyncd on a scratch folder under /var/tmp (removed after); the
# archive files' cached pages are dropped (fadvise) before each pass.
# Prints a table and writes bench/results/scrub-latest.md (+ .json).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/scrub.py" "$@"
