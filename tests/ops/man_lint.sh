#!/usr/bin/env bash
# mandoc -Tlint -W warning on every page in man/: any warning or error fails.
# Also checks the expected pages exist.
# Usage: man_lint.sh SOURCE_DIR
set -uo pipefail
src=${1:?usage: man_lint.sh SOURCE_DIR}
command -v mandoc >/dev/null || { echo "SKIP: mandoc not installed"; exit 77; }

fail=0
for want in recsync.1 recsyncd.8 recsyncd.conf.5; do
  [ -f "$src/man/$want" ] || { echo "FAIL: man/$want missing"; fail=1; }
done
shopt -s nullglob
pages=("$src"/man/*.[1-9])
[ ${#pages[@]} -gt 0 ] || { echo "FAIL: no pages in $src/man"; exit 1; }
for page in "${pages[@]}"; do
  out=$(mandoc -Tlint -W warning "$page" 2>&1)
  rc=$?
  if [ $rc -ne 0 ] || [ -n "$out" ]; then
    echo "FAIL: $page (mandoc exit $rc)"
    echo "$out"
    fail=1
  else
    echo "ok: $(basename "$page")"
  fi
done
[ $fail -eq 0 ] && echo "PASS: man_lint (${#pages[@]} pages)"
exit $fail
