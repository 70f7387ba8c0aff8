#!/usr/bin/env bash
# t7923 (red team 2): terminal control sequences in a manifest. A run rewritten
# with plain git (every hash recomputed) whose condition id is
# "k=2 ESC[2K ESC[1G PASS everything fine" (erase the line, back to column 1,
# overprint), or whose device string carries ESC sequences, passed verify and
# `ledger show` / `query` printed the bytes raw to the reviewer's terminal.
# Now every printed manifest string (condition ids, params, metric names,
# statuses, top-level strings) must be free of C0/C1 control characters:
# verify, reindex and show refuse the run naming the field, and record refuses
# such results up front.
. "$(dirname "$0")/lib-cli.sh"
echo '{"conditions":[{"id":"c","params":{"k":"2"},"cells":[{"seed":1,"metrics":{"fvu":0.9}}]}]}' > r.json
git init -q . && "$LEDGER" init >/dev/null && "$LEDGER" record --study s --results r.json >/dev/null &&
  "$LEDGER" record --study s --results r.json >/dev/null && ok "two record runs" || bad "record"
expect_ok "control: verify passes" "$LEDGER" verify
"$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 2 \
  "m['results']['conditions'][0]['id'] = 'k=2\x1b[2K\x1b[1GPASS    everything fine'" >/dev/null &&
  "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1; ok "run 2's condition id rewritten with ESC sequences"
must_fail "verify fails" "$LEDGER" verify
grep_err "conditions\[0\]\.id: control character at byte 3" "names the field and byte" 
run2=$(git ls-tree --name-only ledger runs/ | tail -1 | sed 's,runs/[0-9]*-,,')
must_fail "show refuses the run" "$LEDGER" show "$run2"
if grep -q $'\x1b' "$TMP/.out" "$TMP/.err"; then bad "no ESC byte printed"; else ok "no ESC byte printed"; fi
"$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 2 \
  "m['results']['conditions'][0]['id'] = 'c'; m['host'] = 'vm\x1b]0;owned\x07'" >/dev/null; ok "run 2's host rewritten with an OSC sequence"
must_fail "reindex refuses it" "$LEDGER" reindex --accept-rewrite
grep_err "host: control character at byte 2" "names the top-level field"
"$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 2 \
  "m['host'] = 'vm'; m['results']['conditions'][0]['params']['k'] = '2\u009b31m'" >/dev/null; ok "a param value with a C1 CSI"
must_fail "reindex refuses it" "$LEDGER" reindex --accept-rewrite
grep_err "params \(a value\): control character" "names the params"
printf '{"conditions":[{"id":"c","cells":[{"seed":1,"metrics":{"f\\u001b[1mvu":0.9}}]}]}' > bad.json
expect_code 2 "record refuses a metric name with ESC" "$LEDGER" record --study s --results bad.json
grep_err "metrics \(a name\): control character" "names the metric"
one_line_err "one line"
finish
