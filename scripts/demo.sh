#!/usr/bin/env bash
# A self-contained recsync demo on this machine, nothing outside it touched:
# builds recsync, starts two nodes (fs1 and fs2, each with its own spool, a
# real tmpfs when run as root like production, and its own archive) that
# replicate to each other over TLS on 127.0.0.1, lets a simulated FreeSWITCH
# record calls into both spools at once, and shows what an operator sees:
# `recsync status` while calls record and after, `locate`, `hold`,
# `prune --dry-run`, `status --check`. Then it checks that both archives
# hold every recording of both nodes, byte for byte. Everything is removed
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target recsyncd recsync recsync-loadgen >/dev/null
B=$PWD/build

work=$(mktemp -d /tmp/recsync-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  for n in fs1 fs2; do
    mountpoint -q "$work/$n/spool" 2>/dev/null && umount "$work/$n/spool"
  done
  rm -rf "$work"
}
trap cleanup EXIT

# Two free ports on 127.0.0.1 for the peer links.
read -r port1 port2 < <(python3 -c '
import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')

conf() {  # conf NAME PORT [PEER PEER_PORT PEER_FINGERPRINT]
  local d="$work/$1"
  cat >"$d/recsyncd.conf" <<CONF
node = "$1"
state_dir = "$d/state"
[control]
socket = "$d/recsyncd.sock"
group = ""
[spool]
path = "$d/spool"
settle = "500ms"
[archive]
path = "$d/archive"
layout = "date"
[retention]
keep = "15d"
[metrics]
listen = "127.0.0.1:0"
[replication]
listen = "127.0.0.1:$2"
bandwidth = "50MB/s"
CONF
  if [ $# -gt 2 ]; then
    printf '[[peer]]\nname = "%s"\naddress = "127.0.0.1:%s"\nfingerprint = "%s"\n' "$3" "$4" "$5" \
      >>"$d/recsyncd.conf"
  fi
}
for n in fs1 fs2; do
  mkdir -p "$work/$n/spool" "$work/$n/archive" "$work/$n/state"
  if [ "$(id -u)" -eq 0 ]; then mount -t tmpfs -o size=256m,mode=0750 tmpfs "$work/$n/spool"; fi
done
[ "$(id -u)" -eq 0 ] && echo "spools: real 256 MiB tmpfs mounts under $work"
conf fs1 "$port1"; conf fs2 "$port2"
rs() { local n=$1; shift; "$B/recsync" -c "$work/$n/recsyncd.conf" "$@"; }

echo; echo "== each node gets a TLS identity; each pins the other's fingerprint"
for n in fs1 fs2; do echo "\$ recsync keygen   # on $n"; rs $n keygen; done
fp1=$(rs fs1 id); fp2=$(rs fs2 id)
echo "fs1: $fp1"; echo "fs2: $fp2"
conf fs1 "$port1" fs2 "$port2" "$fp2"
conf fs2 "$port2" fs1 "$port1" "$fp1"
echo; echo "\$ recsyncd --check-config   # fs1"
"$B/recsyncd" --check-config -c "$work/fs1/recsyncd.conf"
for n in fs1 fs2; do
  "$B/recsyncd" -c "$work/$n/recsyncd.conf" 2>"$work/$n/recsyncd.log" &
  pids+=($!)
done
for n in fs1 fs2; do
  for _ in $(seq 50); do rs $n status >/dev/null 2>&1 && break; sleep 0.1; done
done
for _ in $(seq 100); do
  rs fs1 status --json | grep -q '"state": *"connected"' && rs fs2 status --json | grep -q '"state": *"connected"' && break
  sleep 0.1
done

echo; echo "== 60 simulated calls on each node, 30 at a time, at 10x real time (3-20 s of stereo audio each)"
for n in fs1 fs2; do
  "$B/recsync-loadgen" --dir "$work/$n/spool" --calls 60 --concurrency 30 --speed 10 \
    --min-duration 3 --max-duration 20 --subdirs --seed "${n#fs}" --manifest "$work/$n/manifest.jsonl" &
  pids+=($!)
done
sleep 1.5
echo; echo "\$ recsync status        # fs1, while calls are recording: open files stay in the spool"
rs fs1 status
wait "${pids[2]}" "${pids[3]}"
pids=("${pids[0]}" "${pids[1]}")
drained() {  # spool empty and replication queue empty on node $1
  local j; j=$(rs "$1" status --json | tr -d ' \n')
  echo "$j" | grep -q '"spool":{[^}]*"files":0' && echo "$j" | grep -q '"replication":{[^}]*"queue":{"bytes":0,"files":0'
}
for _ in $(seq 300); do drained fs1 && drained fs2 && break; sleep 0.1; done
for n in fs1 fs2; do echo; echo "\$ recsync status        # $n: all calls ended, archived and replicated"; rs $n status; done
id=$(head -1 "$work/fs1/manifest.jsonl" | sed 's/.*"path":"\([^"]*\)".*/\1/' | xargs basename | sed 's/\.wav$//')
echo; echo "\$ recsync locate $id     # on fs2: a call recorded on fs1"
rs fs2 locate "$id"
echo; echo "\$ recsync hold add $id --reason 'customer complaint 1234'"
rs fs1 hold add "$id" --reason "customer complaint 1234"
echo; echo "\$ recsync hold list"
rs fs1 hold list
echo; echo "\$ recsync prune --dry-run      # nothing is older than 15 days yet"
rs fs1 prune --dry-run
echo; echo "\$ recsync status --check       # Nagios plugin convention"
rs fs1 status --check || true
echo; echo "== the daemons' logs (last lines)"
tail -3 "$work/fs1/recsyncd.log"; tail -3 "$work/fs2/recsyncd.log"

echo; echo "== verifying: both archives hold all 120 recordings, identical to what was recorded"
ok=0; bad=0
for src in fs1 fs2; do
  while IFS= read -r line; do
    n=$(basename "$(echo "$line" | sed 's/.*"path":"\([^"]*\)".*/\1/')")
    size=$(echo "$line" | sed 's/.*"size":\([0-9]*\).*/\1/')
    f1=$(find "$work/fs1/archive" -name "$n" -type f | head -1)
    f2=$(find "$work/fs2/archive" -name "$n" -type f | head -1)
    if [ -n "$f1" ] && [ -n "$f2" ] && [ "$(wc -c <"$f1")" = "$size" ] && cmp -s "$f1" "$f2"; then
      ok=$((ok+1))
    else
      bad=$((bad+1)); echo "missing or different: $n"
    fi
  done <"$work/$src/manifest.jsonl"
done
echo "$ok recordings on both nodes with the recorded size and identical copies, $bad missing or different"
for p in "${pids[@]}"; do kill -TERM "$p"; wait "$p"; done
pids=()
echo "both recsyncd stopped cleanly (SIGTERM)"
[ "$bad" -eq 0 ]
