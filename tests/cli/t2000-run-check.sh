#!/usr/bin/env bash
# t2000: ledger run end to end on a tiny synthetic study: plan, run, evidence
# in the index, determinism (same digests twice), claims PASS / FAIL / XFAIL /
# MISSING / STALE, divergence recorded as a failed run, bad specs and bad
# data files rejected with exit 2 and the ledger unchanged.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies claims
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 4000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32}, "train": {"steps": 150, "batch": 64, "lr": 0.005, "warmup_steps": 10},
 "grid": {"k": [2, 8]}, "seeds": [1, 2, 3]}
JSON

expect_ok "dry run" "$LEDGER" run --dry-run studies/tiny.json
grep_out "^cells: 12 \(4 conditions x 3 seeds\)" "plan counts cells"
grep_out "k=2,control=random +topk" "plan lists the random twin"
expect_ok "dry run --json" "$LEDGER" run --dry-run --json studies/tiny.json
"$PYTHON3" -c 'import json,sys; p=json.load(open(sys.argv[1])); assert len(p["cells"])==12 and p["conditions"][0]["id"]=="k=2"' "$TMP/.out" \
  && ok "plan JSON" || bad "plan JSON"
[ "$(git rev-list --count ledger)" = 1 ] && ok "dry run records nothing" || bad "dry run recorded"

expect_ok "run" "$LEDGER" run -q --backend cpu studies/tiny.json
grep_out "^run [0-9a-f]{12} recorded: study tiny, 12 cells" "run prints its id"
run1=$(awk '{print $2}' "$TMP/.out")
expect_ok "query pair samples" "$LEDGER" query "SELECT count(*) FROM samples WHERE unit='pair' AND metric='mmcs'"
grep_out "^12$" "3 pairs x 4 conditions of mmcs"
expect_ok "query cells" "$LEDGER" query "SELECT count(*) FROM samples WHERE unit='cell' AND metric='fvu'"
grep_out "^12$" "12 cells with fvu"
expect_ok "query truth" "$LEDGER" query "SELECT count(*) FROM samples WHERE metric='truth_mmcs'"
grep_out "^12$" "truth recovery on synthetic data"
expect_ok "trained k=2 beats random" "$LEDGER" query \
  "SELECT (SELECT avg(s.value) FROM samples s JOIN params p USING(run_id, condition) WHERE s.metric='mmcs' AND p.key='control' AND p.value='trained' AND s.condition='k=2') > (SELECT avg(value) FROM samples WHERE metric='mmcs' AND condition='k=2,control=random')"
grep_out "^1$" "trained MMCS above random"

# determinism: same spec, same seeds, same backend -> the same artifact digests
expect_ok "run again" "$LEDGER" run -q --backend cpu studies/tiny.json
run2=$(awk '{print $2}' "$TMP/.out")
"$LEDGER" show --json "$run1" | "$PYTHON3" -c 'import json,sys; print("\n".join(o["name"]+" "+o["sha256"] for o in json.load(sys.stdin)["outputs"]))' > d1
"$LEDGER" show --json "$run2" | "$PYTHON3" -c 'import json,sys; print("\n".join(o["name"]+" "+o["sha256"] for o in json.load(sys.stdin)["outputs"]))' > d2
[ -s d1 ] && cmp -s d1 d2 && ok "bit-identical artifact digests across runs ($(wc -l < d1) outputs)" || { bad "digests differ"; diff d1 d2 | head; }

cat > claims/tiny.claims <<'CLAIMS'
claim k2-beats-random
  says "k=2 SAEs agree across seeds more than random-init SAEs"
  study tiny
  sample trained = pair.mmcs where control=trained k=2
  sample random = pair.mmcs where control=random k=2
  require mean(trained) - mean(random) > 0.05
  require welch(trained, random, alternative=greater).p < 0.05
end
claim impossible
  says "k=8 explains all variance"
  study tiny
  sample ev = cell.explained_variance where control=trained k=8
  require min(ev) > 0.9999
end
claim impossible-expected
  says "k=8 explains all variance (documented as false)"
  study tiny
  sample ev = cell.explained_variance where control=trained k=8
  require min(ev) > 0.9999
  expect fail
end
CLAIMS
cat > claims/other.claims <<'CLAIMS'
claim no-such-study
  says "a study never run"
  study nothing
  sample x = cell.fvu
  require mean(x) < 1
end
claim no-such-metric
  says "a metric never recorded"
  study tiny
  sample x = cell.no_such_metric
  require mean(x) < 1
end
CLAIMS
expect_code 1 "check with a failing claim exits 1" "$LEDGER" check claims/tiny.claims
grep_out "^PASS +k2-beats-random" "PASS verdict"
grep_out "^FAIL +impossible " "FAIL verdict"
grep_out "^XFAIL +impossible-expected" "XFAIL verdict"
grep_out "run ${run2}" "names the latest run"
expect_code 1 "missing evidence exits 1" "$LEDGER" check claims/other.claims
grep_out "^MISSING +no-such-study.*" "MISSING for a study never run"
grep_out "MISSING +no-such-metric" "MISSING for an unknown metric"
grep_out "no_such_metric" "names the metric"
expect_code 1 "check --json" "$LEDGER" check --json --junit junit.xml claims/tiny.claims claims/other.claims
"$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); v=[c["verdict"] for f in r["files"] for c in f["claims"]]; assert v==["PASS","FAIL","XFAIL","MISSING","MISSING"], v' "$TMP/.out" 2>/dev/null \
  && ok "JSON verdicts" || bad "JSON verdicts: $(head -c 300 "$TMP/.out")"
"$PYTHON3" -c 'import xml.etree.ElementTree as E,sys; r=E.parse(sys.argv[1]).getroot(); assert len(r.findall(".//testcase"))==5' junit.xml \
  && ok "JUnit XML" || bad "JUnit XML"

# pin the passing claim to the first run, keep only it, then change the study: STALE
"$PYTHON3" - <<'PY'
import re
t = open("claims/tiny.claims").read()
first = t.split("end\n")[0] + "end\n"
open("claims/tiny.claims", "w").write(first)
PY
rm claims/other.claims
expect_ok "check passes" "$LEDGER" check
sed -i 's/"lr": 0.005/"lr": 0.004/' studies/tiny.json
expect_code 1 "a changed study makes its claims STALE" "$LEDGER" check
grep_out "^STALE +k2-beats-random" "STALE verdict"
grep_out "studies/tiny.json changed" "says the study file changed"
expect_ok "re-run" "$LEDGER" run -q studies/tiny.json
expect_ok "fresh again after the re-run" "$LEDGER" check

# divergence: finite but huge activations overflow the loss -> failed run, exit 1, not evidence
"$PYTHON3" -c 'import numpy as np; x=np.random.default_rng(0).normal(size=(2000,8)).astype(np.float32)*1e19; np.save("huge.npy", x)'
cat > studies/huge.json <<'JSON'
{"name": "huge", "data": {"source": "file", "path": "../huge.npy"}, "sae": {"d_sae": 16, "k": 2},
 "train": {"steps": 20, "batch": 32}, "seeds": [1, 2]}
JSON
n_before=$(git rev-list --count ledger)
expect_code 1 "diverged run exits 1" "$LEDGER" run -q studies/huge.json
grep_err "diverged" "says it diverged"
grep_err "recorded as failed" "says it was recorded as failed"
[ "$(git rev-list --count ledger)" = $((n_before+1)) ] && ok "the failed run is recorded" || bad "failed run not recorded"
expect_ok "its status is failed" "$LEDGER" query "SELECT status FROM runs WHERE study='huge'"
grep_out "^failed$" "status failed"
cat > claims/huge.claims <<'CLAIMS'
claim huge-anything
  says "evidence from a failed run"
  study huge
  sample x = cell.fvu
  require n(x) > 0
end
CLAIMS
expect_code 1 "a failed run is never evidence" "$LEDGER" check claims/huge.claims
grep_out "^MISSING +huge-anything" "MISSING, not PASS"
rm claims/huge.claims

# bad input: clear one-line error, exit 2, ledger unchanged
n_before=$(git rev-list --count ledger)
printf '{"name": "x", "data": ' > studies/bad1.json
expect_code 2 "malformed JSON" "$LEDGER" run studies/bad1.json
grep_err "studies/bad1.json:1:[0-9]+: malformed JSON" "names file, line and column"
one_line_err "one line"
cat > studies/bad2.json <<'JSON'
{"name": "x", "data": {"source": "synthetic", "synthetic": {}}, "sae": {"d_sae": 8, "kk": 2}, "seeds": [1]}
JSON
expect_code 2 "unknown key" "$LEDGER" run studies/bad2.json
grep_err "sae.kk: unknown key" "names the key"
"$PYTHON3" -c 'import numpy as np; x=np.ones((100,4),np.float32); x[7,2]=np.nan; np.save("nan.npy", x)'
cat > studies/nan.json <<'JSON'
{"name": "nan", "data": {"source": "file", "path": "../nan.npy"}, "sae": {"d_sae": 8, "k": 2}, "seeds": [1]}
JSON
expect_code 2 "NaN in the data" "$LEDGER" run -q studies/nan.json
grep_err "nan.npy.*row 7" "names file and row"
one_line_err "one line"
head -c 150 huge.npy > trunc.npy
sed 's/huge.npy/trunc.npy/; s/"name": "huge"/"name": "trunc"/' studies/huge.json > studies/trunc.json
expect_code 2 "truncated data file" "$LEDGER" run -q studies/trunc.json
grep_err "trunc.npy" "names the file"
cat > studies/wide.json <<'JSON'
{"name": "wide", "data": {"source": "synthetic", "synthetic": {"d": 8, "n_samples": 100}}, "sae": {"d_sae": 8, "k": 2},
 "train": {"batch": 500}, "seeds": [1]}
JSON
expect_code 2 "batch larger than the data" "$LEDGER" run -q studies/wide.json
grep_err "batch 500 exceeds" "says why"
[ "$(git rev-list --count ledger)" = "$n_before" ] && ok "ledger unchanged by bad input" || bad "ledger changed"
expect_ok "verify after all that" "$LEDGER" verify
finish
