#!/usr/bin/env bash
# t1003: 'ledger record --spec FILE' from a subdirectory records study_path
# relative to the repository root (as 'ledger run' does), so the evidence of
# the run is fresh and a later change of the study file makes it STALE.
# Regression: study_path was the path as typed (relative to the current
# directory), so evidence.c, which resolves it against the root, found no
# such file and called every claim on that run STALE.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . || { bad "git init"; finish; }
expect_ok "init" "$LEDGER" init
mkdir -p studies/sub claims
echo '{"format": 1, "name": "s"}' > studies/sub/s.json
cat > studies/sub/r.json <<'JSON'
{"conditions":[{"id":"c","params":{"control":"trained"},
 "cells":[{"seed":1,"status":"ok","metrics":{"fvu":0.1}}],
 "seeds":[{"seed":1,"metrics":{"score":0.5}},{"seed":2,"metrics":{"score":0.6}}]}]}
JSON
cat > claims/s.claims <<'CLAIMS'
claim score-positive
  says "the score is positive"
  study s
  sample x = seed.score
  require min(x) > 0
end
CLAIMS
cd studies/sub || { bad "cd"; finish; }
expect_ok "record --spec from a subdirectory" "$LEDGER" record --study s --spec s.json --results r.json
id=$("$LEDGER" log --json | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)[-1]["run_id"])')
expect_ok "show --json" "$LEDGER" show --json "$id"
"$PYTHON3" -c 'import json,sys; m=json.load(open(sys.argv[1])); m=m.get("manifest", m); assert m["study_path"]=="studies/sub/s.json", m["study_path"]' "$TMP/.out" \
  && ok "study_path is relative to the repository root" || { bad "study_path"; head -c 600 "$TMP/.out"; }
expect_ok "check from the subdirectory: fresh, PASS" "$LEDGER" check
cd ../.. || { bad "cd"; finish; }
expect_ok "check from the root: fresh, PASS" "$LEDGER" check
grep_out "PASS" "the claim passes"
echo '{"format": 1, "name": "s", "x": 1}' > studies/sub/s.json
expect_code 1 "a changed study file makes the evidence STALE" "$LEDGER" check
grep_out "STALE" "says STALE"
finish
