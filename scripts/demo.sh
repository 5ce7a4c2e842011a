#!/usr/bin/env bash
# A self-contained recsync demo on this machine, nothing outside it touched:
# builds recsync, starts recsyncd on a temporary spool (a real tmpfs when run
# as root, like production) and archive, lets a simulated FreeSWITCH record
# calls into the spool, and shows what an operator sees: `recsync status`
# while calls record and after, `locate`, `hold`, `prune --dry-run`,
# `status --check`. Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target recsyncd recsync recsync-loadgen >/dev/null
B=$PWD/build

work=$(mktemp -d /tmp/recsync-demo.XXXXXX)
daemon_pid=""
cleanup() {
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  mountpoint -q "$work/spool" 2>/dev/null && umount "$work/spool"
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/spool" "$work/archive" "$work/state"
if [ "$(id -u)" -eq 0 ]; then
  mount -t tmpfs -o size=512m,mode=0750 tmpfs "$work/spool"
  echo "spool: a real 512 MiB tmpfs at $work/spool"
fi

cat >"$work/recsyncd.conf" <<CONF
node = "demo1"
state_dir = "$work/state"
[control]
socket = "$work/recsyncd.sock"
group = ""
[spool]
path = "$work/spool"
settle = "500ms"
[archive]
path = "$work/archive"
layout = "date"
[retention]
keep = "15d"
CONF
rs() { "$B/recsync" -c "$work/recsyncd.conf" "$@"; }

echo; echo "\$ recsyncd --check-config"
"$B/recsyncd" --check-config -c "$work/recsyncd.conf"
"$B/recsyncd" -c "$work/recsyncd.conf" 2>"$work/recsyncd.log" &
daemon_pid=$!
for _ in $(seq 50); do rs status >/dev/null 2>&1 && break; sleep 0.1; done

echo; echo "== 60 simulated calls, 30 at a time, at 10x real time (3-20 s of stereo audio each)"
"$B/recsync-loadgen" --dir "$work/spool" --calls 60 --concurrency 30 --speed 10 \
  --min-duration 3 --max-duration 20 --subdirs --manifest "$work/manifest.jsonl" &
lg=$!
sleep 1
echo; echo "\$ recsync status        # while calls are recording: open files stay in the spool"
rs status
wait $lg
for _ in $(seq 100); do
  [ "$(rs status --json | tr -d ' \n' | grep -o '"spool":{[^}]*' | grep -o '"files":[0-9]*')" = '"files":0' ] && break
  sleep 0.1
done
echo; echo "\$ recsync status        # all calls ended and archived"
rs status
id=$(head -1 "$work/manifest.jsonl" | sed 's/.*"path":"\([^"]*\)".*/\1/' | xargs basename | sed 's/\.wav$//')
echo; echo "\$ recsync locate $id"
rs locate "$id"
echo; echo "\$ recsync hold add $id --reason 'customer complaint 1234'"
rs hold add "$id" --reason "customer complaint 1234"
echo; echo "\$ recsync hold list"
rs hold list
echo; echo "\$ recsync prune --dry-run      # nothing is older than 15 days yet"
rs prune --dry-run
echo; echo "\$ recsync status --check       # Nagios plugin convention"
rs status --check || true
echo; echo "== archive tree (first entries) and the daemon's log (last lines)"
(cd "$work/archive" && find . -type f | sort | head -5)
tail -4 "$work/recsyncd.log"
echo; echo "== verifying every archived recording against what the simulated FreeSWITCH wrote"
ok=0; bad=0
while IFS= read -r line; do
  p=$(echo "$line" | sed 's/.*"path":"\([^"]*\)".*/\1/'); n=$(basename "$p")
  h=$(echo "$line" | sed 's/.*"hash":"\([^"]*\)".*/\1/')
  f=$(find "$work/archive" -name "$n" -type f | head -1)
  if [ -n "$f" ] && [ "$(wc -c <"$f")" = "$(echo "$line" | sed 's/.*"size":\([0-9]*\).*/\1/')" ]; then ok=$((ok+1)); else bad=$((bad+1)); fi
done <"$work/manifest.jsonl"
echo "$ok recordings archived with the right size, $bad missing or wrong"
kill -TERM "$daemon_pid"; wait "$daemon_pid"; daemon_pid=""
echo "recsyncd stopped cleanly (SIGTERM)"
[ "$bad" -eq 0 ]
