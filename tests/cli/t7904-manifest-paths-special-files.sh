#!/usr/bin/env bash
# t7904 (red team): a run whose manifest (rewritten by plain git, ids and chain
# recomputed) names /dev/zero or a FIFO as its study file, or whose spec names
# /dev/zero as its data file. `ledger check` and `ledger verify` (claims) hashed
# those paths to judge freshness and hung forever (/dev/zero never ends, a FIFO
# blocks on open): CI stalled instead of failing. Now: STALE / a one-line error.
. "$(dirname "$0")/lib-cli.sh"
IN=$TMP/in; mkdir -p "$IN" claims
T() { timeout 20 "$@"; }  # a hang shows as exit 124
cat > claims/x.claims <<'C'
claims-language 1
claim fvu-high
  says "mean fvu above 0.4"
  study st
  sample a = cell.fvu
  require mean(a) > 0.4
  expect pass
end
C
echo '{"name":"st","data":{"source":"file","path":"data.npy"}}' > spec.json
echo '{"conditions":[{"id":"c","cells":[{"seed":1,"metrics":{"fvu":0.9}}]}]}' > "$IN/r.json"
git init -q . && "$LEDGER" init >/dev/null && "$LEDGER" record --study st --spec spec.json --results "$IN/r.json" >/dev/null &&
  git branch orig ledger && ok "a run with an embedded spec" || bad "setup"
expect_ok "control: check passes" T "$LEDGER" check
mkfifo "$IN/fifo" || bad "mkfifo"
for sp in /dev/zero "$IN/fifo"; do
  for spec in keep none; do
    git update-ref refs/heads/ledger orig
    edit="m['study_path'] = '$sp'"; [ "$spec" = none ] && edit="$edit; m['spec'] = None"
    "$PYTHON3" "$LEDGER_SRC/tests/cli/lib-rewrite.py" 1 "$edit" >/dev/null && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1 ||
      bad "rewrite $sp"
    expect_code 1 "study file $sp (spec $spec): check ends, STALE" T "$LEDGER" check
    grep_out "study file $sp is not a regular file" "names it"
  done
done
expect_code 1 "verify (claims) ends too" T "$LEDGER" verify
# the data file: the spec (embedded, matching the study file) names /dev/zero, a data digest is recorded
git update-ref refs/heads/ledger orig && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1 &&
  echo '{"name":"st","data":{"source":"file","path":"/dev/zero"}}' > spec.json &&
  "$LEDGER" record --study st --spec spec.json --data-digest "$(printf '0%.0s' $(seq 64))" --results "$IN/r.json" >/dev/null &&
  ok "a run whose spec reads /dev/zero" || bad "record /dev/zero spec"
expect_code 2 "check ends with an error" T "$LEDGER" check
grep_err "/dev/zero: not a regular file" "names the data file"
one_line_err "one line"
finish
