#!/usr/bin/env bash
# Checks etc/recsyncd.service:
#   1. `systemd-analyze verify` prints nothing and succeeds. The unit is
#      verified as a copy whose ExecStart/ExecReload point at the built
#      recsyncd (verify insists the command exists), with MANPATH set to a
#      tree built from man/ so the Documentation=man:... entries must resolve
#      to this repository's pages.
#   2. `systemd-analyze security --offline=yes` rates it <= MAX_EXPOSURE
#      (default 2.0).
#   3. The settings the packaging and the docs rely on are present.
# Usage: unit_check.sh RECSYNCD_BINARY SOURCE_DIR [MAX_EXPOSURE]
set -uo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 RECSYNCD_BINARY SOURCE_DIR [MAX_EXPOSURE]" >&2
  exit 64
fi
bin=$1
src=$2
max=${3:-2.0}
unit="$src/etc/recsyncd.service"
fail=0

command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed"; exit 77; }
[ -f "$unit" ] || { echo "FAIL: $unit missing"; exit 1; }
[ -x "$bin" ] || { echo "FAIL: $bin is not an executable"; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. verify
mkdir -p "$tmp/man/man1" "$tmp/man/man5" "$tmp/man/man8"
cp "$src/man/recsync.1" "$tmp/man/man1/"
cp "$src/man/recsyncd.conf.5" "$tmp/man/man5/"
cp "$src/man/recsyncd.8" "$tmp/man/man8/"
sed "s#/usr/sbin/recsyncd#$bin#g" "$unit" >"$tmp/recsyncd.service"
out=$(MANPATH="$tmp/man" systemd-analyze verify "$tmp/recsyncd.service" 2>&1)
rc=$?
if [ $rc -ne 0 ] || [ -n "$out" ]; then
  echo "FAIL: systemd-analyze verify (exit $rc) printed:"
  echo "$out"
  fail=1
else
  echo "ok: systemd-analyze verify is silent"
fi

# 2. exposure
sec=$(systemd-analyze security --offline=yes "$unit" 2>&1)
line=$(printf '%s\n' "$sec" | grep 'Overall exposure level' | tail -n 1)
score=$(printf '%s\n' "$line" | sed -n 's/.*Overall exposure level for [^:]*: *\([0-9][0-9]*\.[0-9]*\).*/\1/p')
if [ -z "$score" ]; then
  echo "FAIL: no exposure score in systemd-analyze security output:"
  printf '%s\n' "$sec" | tail -n 5
  fail=1
elif awk -v s="$score" -v m="$max" 'BEGIN { exit !(s + 0 <= m + 0) }'; then
  echo "ok: exposure $score <= $max"
else
  echo "FAIL: exposure $score > $max; findings:"
  printf '%s\n' "$sec" | grep '✗'
  fail=1
fi

# 3. settings other files depend on (package paths, docs, exit codes).
need=(
  "Type=notify"
  "ExecStart=/usr/sbin/recsyncd -c /etc/recsync/recsyncd.conf"
  "WatchdogSec=30s"
  "Restart=on-failure"
  "RestartPreventExitStatus=64 78"
  "User=recsync"
  "Group=recsync"
  "SupplementaryGroups=freeswitch"
  "RuntimeDirectory=recsync"
  "StateDirectory=recsync"
  "AmbientCapabilities=CAP_LEASE"
  "CapabilityBoundingSet=CAP_LEASE"
  "ProtectSystem=strict"
  "NoNewPrivileges=yes"
)
for n in "${need[@]}"; do
  if ! grep -qxF -- "$n" "$unit"; then
    echo "FAIL: unit lacks the line '$n'"
    fail=1
  fi
done
for p in /var/lib/freeswitch/recordings /storage/recordings; do
  grep -q "^ReadWritePaths=.*$p" "$unit" || { echo "FAIL: $p not in ReadWritePaths="; fail=1; }
done

[ $fail -eq 0 ] && echo "PASS: unit_check"
exit $fail
