#!/usr/bin/env bash
# Builds the Debian package from SOURCE_DIR (packaging/build-deb.sh), then:
#   - lintian reports no errors and no warnings (overrides need a reason in
#     packaging/debian/*.lintian-overrides);
#   - `dpkg -i` installs it: programs, unit, conffile, man pages, completion,
#     sysctl/sysusers/tmpfiles snippets in place, user recsync created,
#     /var/lib/recsync owned by it;
#   - `recsyncd --check-config` finds nothing in the installed config but
#     the spool and archive folders left to the admin, and accepts it with
#     those set; the example alert rules are in the package's examples;
#   - `dpkg -r` removes every file but the conffile, `dpkg -P` the rest,
#     including /etc/recsync and /var/lib/recsync.
# Needs root (installs a package). Skips (exit 77) when not root, when the
# packaging tools are missing, or when a recsync package is already installed
# (it is never replaced by a test).
# Usage: package_check.sh SOURCE_DIR
set -uo pipefail
src=${1:?usage: package_check.sh SOURCE_DIR}
src=$(cd "$src" && pwd)

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (installs and removes a package)"; exit 77; }
for t in dpkg-buildpackage dh lintian fakeroot systemd-sysusers; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done
if dpkg-query -W -f='${Status}' recsync 2>/dev/null | grep -q 'installed'; then
  echo "SKIP: a recsync package is already installed on this machine; not touching it"
  exit 77
fi
missing=$(dpkg-checkbuilddeps "$src/packaging/debian/control" 2>&1) || {
  echo "SKIP: ${missing#dpkg-checkbuilddeps: error: }"
  exit 77
}

tmp=$(mktemp -d)
installed=0
# The postinst applies the package's inotify limits; put the machine's own
# values back afterwards so other tests see the host as it was.
sysctl_saved=()
for k in max_user_watches max_queued_events; do
  v=$(cat /proc/sys/fs/inotify/$k 2>/dev/null) && sysctl_saved+=("fs.inotify.$k=$v")
done
cleanup() {
  if [ $installed -eq 1 ]; then dpkg -P recsync >/dev/null 2>&1 || true; fi
  for kv in "${sysctl_saved[@]}"; do sysctl -q -w "$kv" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
failed() { echo "FAIL: $*"; fail=1; }

echo "building the package (compiles the project once)..."
if ! "$src/packaging/build-deb.sh" "$tmp/out" "$src"; then
  echo "FAIL: package build failed"
  exit 1
fi
deb=$(ls "$tmp"/out/recsync_*.deb | head -n 1)

# lintian: only E: and W: lines count (I:/N: are information).
findings=$(grep -E '^[EW]: ' "$tmp/out/lintian.txt" || true)
if [ -n "$findings" ]; then
  failed "lintian errors/warnings:"
  echo "$findings"
else
  echo "ok: lintian reports no errors or warnings"
fi

# The file list of the package, for the removal checks.
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's#^\./#/#' | grep -v '/$' >"$tmp/files"

if ! dpkg -i "$deb" >"$tmp/install.log" 2>&1; then
  failed "dpkg -i:"
  cat "$tmp/install.log"
  exit 1
fi
installed=1
echo "ok: dpkg -i"

for f in /usr/sbin/recsyncd /usr/bin/recsync /lib/systemd/system/recsyncd.service \
  /etc/recsync/recsyncd.conf /usr/share/man/man8/recsyncd.8.gz /usr/share/man/man1/recsync.1.gz \
  /usr/share/man/man5/recsyncd.conf.5.gz /usr/share/bash-completion/completions/recsync \
  /usr/lib/sysctl.d/60-recsync-inotify.conf /usr/lib/sysusers.d/recsync.conf \
  /usr/lib/tmpfiles.d/recsync.conf /usr/share/doc/recsync/examples/recsync-alerts.yml; do
  [ -e "$f" ] || failed "$f not installed"
done
grep -qx '/etc/recsync/recsyncd.conf' /var/lib/dpkg/info/recsync.conffiles 2>/dev/null ||
  failed "/etc/recsync/recsyncd.conf is not a conffile"
getent passwd recsync >/dev/null || failed "user recsync not created"
getent group recsync >/dev/null || failed "group recsync not created"
st=$(stat -c '%U:%G %a' /var/lib/recsync 2>/dev/null)
[ "$st" = "recsync:recsync 750" ] || failed "/var/lib/recsync is '$st', want 'recsync:recsync 750'"

# The installed config is complete but for the two folders the admin sets:
# --check-config names exactly those (they do not exist on a build machine)
# and passes once they point at real folders.
conf=/etc/recsync/recsyncd.conf
out=$(/usr/sbin/recsyncd --check-config -c $conf 2>&1)
rc=$?
errs=$(printf '%s\n' "$out" | grep -E "^$conf:[0-9]+: " | grep -vE ": (spool|archive)\.path: ")
if [ $rc -eq 0 ] || { [ $rc -eq 78 ] && [ -z "$errs" ]; }; then
  echo "ok: installed config: --check-config names only the folders to set ($rc)"
else
  failed "recsyncd --check-config on the installed config exited $rc: $out"
fi
mkdir -p "$tmp/spool" "$tmp/archive"
sed -e "s#^path = \"/var/lib/freeswitch/recordings\"#path = \"$tmp/spool\"#" \
  -e "s#^path = \"/storage/recordings\"#path = \"$tmp/archive\"#" $conf >"$tmp/set.conf"
if out=$(/usr/sbin/recsyncd --check-config -c "$tmp/set.conf" 2>&1); then
  echo "ok: installed config with its folders set passes --check-config: $out"
else
  failed "recsyncd --check-config on the installed config with folders set: $out"
fi

if ! dpkg -r recsync >"$tmp/remove.log" 2>&1; then
  failed "dpkg -r:"
  cat "$tmp/remove.log"
fi
while read -r f; do
  [ "$f" = /etc/recsync/recsyncd.conf ] && continue
  [ -e "$f" ] && failed "$f left after dpkg -r"
done <"$tmp/files"
[ -e /etc/recsync/recsyncd.conf ] || failed "conffile removed by dpkg -r (only purge may)"
echo "ok: dpkg -r"

if ! dpkg -P recsync >"$tmp/purge.log" 2>&1; then
  failed "dpkg -P:"
  cat "$tmp/purge.log"
fi
installed=0
for f in /etc/recsync /var/lib/recsync; do
  [ -e "$f" ] && failed "$f left after dpkg -P"
done
dpkg-query -W recsync >/dev/null 2>&1 && failed "dpkg still knows the package after purge"
echo "ok: dpkg -P"

[ $fail -eq 0 ] && echo "PASS: package_check"
exit $fail
