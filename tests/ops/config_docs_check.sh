#!/usr/bin/env bash
# Keeps the config parser, the man page and the example config in step:
#   A = `recsyncd --list-config-keys`            (what the parser accepts)
#   B = ".It Ic table.key" items in man/recsyncd.conf.5
#   C = keys in etc/recsyncd.conf, commented out ("#key = ...") or set
# Any key missing from one of the three fails, listed by name. Then
# `recsyncd --check-config -c etc/recsyncd.conf` must parse it (the example
# as shipped; its paths need not exist, so the preflight's verdict on this
# machine is not counted).
# Usage: config_docs_check.sh RECSYNCD_BINARY SOURCE_DIR
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 RECSYNCD_BINARY SOURCE_DIR" >&2
  exit 64
fi
bin=$1
src=$2
page="$src/man/recsyncd.conf.5"
example="$src/etc/recsyncd.conf"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# A: the parser. One key per line; blank lines ignored.
if ! "$bin" --list-config-keys >"$tmp/parser.raw" 2>"$tmp/parser.err"; then
  echo "FAIL: $bin --list-config-keys failed:"
  cat "$tmp/parser.err"
  exit 1
fi
grep -v '^[[:space:]]*$' "$tmp/parser.raw" | sed 's/[[:space:]]*$//' | sort -u >"$tmp/parser"

# B: the man page. Keys are the ".It Ic name" items of the KEYS section.
awk '/^\.Sh /{ in_keys = ($2 == "KEYS") } in_keys && /^\.It Ic / { print $3 }' "$page" |
  sort -u >"$tmp/man"

# C: the example. Track the current table ("[spool]", "[[peer]]", commented
# or not); a key line is "key =" or "#key =" at the start of a line.
awk '
  {
    line = $0
    sub(/^#[ \t]?/, "", line)
    if (line ~ /^\[\[?[a-z_.]+\]\]?[ \t]*(#.*)?$/) {
      t = line; gsub(/[\[\] \t]/, "", t); sub(/#.*/, "", t); table = t
      next
    }
    if (line ~ /^[a-z_]+[ \t]*=/) {
      k = line; sub(/[ \t]*=.*/, "", k)
      print (table == "" ? k : table "." k)
    }
  }' "$example" | sort -u >"$tmp/example"

for f in parser man example; do
  [ -s "$tmp/$f" ] || { echo "FAIL: no keys found in the $f list"; fail=1; }
done

report() {  # report WHAT LIST_A NAME_A LIST_B NAME_B
  local missing
  missing=$(comm -23 "$tmp/$2" "$tmp/$4")
  if [ -n "$missing" ]; then
    echo "FAIL: keys in $3 but not in $5:"
    printf '  %s\n' $missing
    fail=1
  fi
}
report x parser "the parser" man "recsyncd.conf(5)"
report x man "recsyncd.conf(5)" parser "the parser"
report x parser "the parser" example "etc/recsyncd.conf"
report x example "etc/recsyncd.conf" parser "the parser"

[ $fail -eq 0 ] && echo "ok: $(wc -l <"$tmp/parser") keys agree across parser, man page and example"

# --check-config parses, then runs the preflight (folders, group, addresses
# of this machine), whose verdict ends in "would stop recsyncd at start" and
# comes only after a clean parse: here only the parse counts.
parsed() { [ "$1" -eq 0 ] || { [ "$1" -eq 78 ] && grep -q 'would stop recsyncd at start' <<<"$2"; }; }

# The example must parse as shipped.
out=$("$bin" --check-config -c "$example" 2>&1)
rc=$?
if ! parsed $rc "$out"; then
  echo "FAIL: recsyncd --check-config -c etc/recsyncd.conf exited $rc:"
  echo "$out"
  fail=1
else
  echo "ok: example config parses ($(tail -n 1 <<<"$out"))"
fi

# Every documented default must be a value the parser takes: uncomment all
# "#key = value" lines and commented table headers, and check again.
sed -E -e 's/^#[ ]?([a-z_]+[ \t]*=)/\1/' -e 's/^#[ ]?(\[\[?[a-z_.]+\]\]?[ \t]*)$/\1/' \
  "$example" >"$tmp/defaults.conf"
out=$("$bin" --check-config -c "$tmp/defaults.conf" 2>&1)
rc=$?
if ! parsed $rc "$out"; then
  echo "FAIL: etc/recsyncd.conf with every default uncommented does not parse (exit $rc):"
  echo "$out"
  fail=1
else
  echo "ok: every documented default parses"
fi

[ $fail -eq 0 ] && echo "PASS: config_docs_check"
exit $fail
