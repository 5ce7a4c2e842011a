#!/usr/bin/env bash
# The example alert rules (etc/recsync-alerts.yml): `promtool check rules`,
# every alert has a severity label and summary/description annotations, and
# `promtool test rules` on tests/ops/recsync-alerts.test.yml (when alerts
# fire and when they must not).
# Usage: alerts_check.sh SOURCE_DIR
set -uo pipefail
src=${1:?usage: alerts_check.sh SOURCE_DIR}
rules="$src/etc/recsync-alerts.yml"
tests="$src/tests/ops/recsync-alerts.test.yml"
command -v promtool >/dev/null || { echo "SKIP: promtool not installed (Debian package prometheus)"; exit 77; }

fail=0
if ! promtool check rules "$rules"; then
  echo "FAIL: promtool check rules $rules"
  fail=1
fi

# One severity label and both annotations per alert (promtool does not ask).
alerts=$(grep -c '^ *- alert:' "$rules")
for key in 'severity: \(warning\|critical\)$' 'summary:' 'description:'; do
  n=$(grep -c "^ *$key" "$rules")
  if [ "$n" -ne "$alerts" ]; then
    echo "FAIL: $alerts alerts but $n lines matching '$key' in $rules"
    fail=1
  fi
done

if ! promtool test rules "$tests"; then
  echo "FAIL: promtool test rules $tests"
  fail=1
fi
[ $fail -eq 0 ] && echo "PASS: alerts_check ($alerts alerts)"
exit $fail
