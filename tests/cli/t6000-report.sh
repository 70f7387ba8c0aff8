#!/usr/bin/env bash
# t6000: ledger report renders a template against hand-written evidence
# (golden Markdown and SVG, ids and times normalised), the SVGs are valid XML,
# a failing claim blocks the strict render (exit 1, TEMPLATE:LINE:COL) and is
# marked with --allow-failing, syntax errors exit 2 with their place, stale
# evidence blocks the render, and 'ledger verify' flags a recorded report
# when its evidence changes, an artifact is tampered with or deleted.
. "$(dirname "$0")/lib-cli.sh"

GOLDEN=$LEDGER_SRC/tests/cli/golden
IN=$TMP/in; mkdir -p "$IN"
# normalise: run ids, digests and times differ between runs of the test
norm() { sed -E 's/[0-9a-f]{64}/<SHA256>/g; s/[0-9a-f]{12}/<ID12>/g; s/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z/<TIME>/g; s/\| [0-9]+\.[0-9]+\.[0-9]+ \|/| <VERSION> |/g' "$1"; }

cat > "$IN/results.json" <<'JSON'
{"format": 1, "study": "toy", "conditions": [
 {"id": "k=4", "params": {"k": 4, "control": "trained"},
  "cells": [{"seed": 1, "metrics": {"explained_variance": 0.81}}, {"seed": 2, "metrics": {"explained_variance": 0.79}},
            {"seed": 3, "metrics": {"explained_variance": 0.80}}],
  "pairs": [{"seed_a": 1, "seed_b": 2, "metrics": {"mmcs": 0.90}}, {"seed_a": 1, "seed_b": 3, "metrics": {"mmcs": 0.875}},
            {"seed_a": 2, "seed_b": 3, "metrics": {"mmcs": 0.925}}]},
 {"id": "k=4,control=random", "params": {"k": 4, "control": "random"},
  "pairs": [{"seed_a": 1, "seed_b": 2, "metrics": {"mmcs": 0.30}}, {"seed_a": 1, "seed_b": 3, "metrics": {"mmcs": 0.3125}},
            {"seed_a": 2, "seed_b": 3, "metrics": {"mmcs": 0.2875}}]},
 {"id": "k=32", "params": {"k": 32, "control": "trained"},
  "cells": [{"seed": 1, "metrics": {"explained_variance": 0.93}}, {"seed": 2, "metrics": {"explained_variance": 0.95}},
            {"seed": 3, "metrics": {"explained_variance": 0.94}}],
  "pairs": [{"seed_a": 1, "seed_b": 2, "metrics": {"mmcs": 0.50}}, {"seed_a": 1, "seed_b": 3, "metrics": {"mmcs": 0.5625}},
            {"seed_a": 2, "seed_b": 3, "metrics": {"mmcs": 0.5375}}]},
 {"id": "k=32,control=random", "params": {"k": 32, "control": "random"},
  "pairs": [{"seed_a": 1, "seed_b": 2, "metrics": {"mmcs": 0.25}}, {"seed_a": 1, "seed_b": 3, "metrics": {"mmcs": 0.3}},
            {"seed_a": 2, "seed_b": 3, "metrics": {"mmcs": 0.275}}]}]}
JSON
# per-latent max cosines [n_pairs=3, d_sae=8], exact in float32
"$PYTHON3" - "$IN" <<'PY' || bad "numpy setup"
import sys, numpy as np
d = sys.argv[1]
np.save(d + "/maxcos_trained.npy", (np.arange(24, dtype=np.float32) % 8) / np.float32(16) + np.float32(0.5))
np.save(d + "/maxcos_random.npy", (np.arange(24, dtype=np.float32) % 4) / np.float32(16) + np.float32(0.25))
PY
echo '{"name": "toy"}' > "$IN/toy.json"

cat > "$IN/t.claims" <<'EOF2'
claim k4-beats-random
  says "k=4 SAEs agree across seeds more than random-init ones"
  study toy
  sample trained = pair.mmcs where control=trained k=4
  sample random  = pair.mmcs where control=random k=4
  require mean(trained) - mean(random) > 0.5
  expect pass
end
claim k32-negative
  says "k=32 SAEs agree as much as k=4 ones"
  study toy
  sample a = pair.mmcs where control=trained k=32
  sample b = pair.mmcs where control=trained k=4
  require mean(a) - mean(b) > 0
  expect fail
end
EOF2
# a claim that does not hold, kept out of claims/ (verify would fail on it)
cat > "$IN/wrong.claims" <<'EOF2'
claim wrong
  says "k=32 SAEs agree across seeds more than k=4 ones"
  study toy
  sample a = pair.mmcs where control=trained k=32
  sample b = pair.mmcs where control=trained k=4
  require mean(a) - mean(b) > 0
  expect pass
end
EOF2

cat > "$IN/t.md" <<'EOF2'
# Toy report

- {{claim k4-beats-random}}
- {{claim k32-negative}}

Mean MMCS at k=4: {{value toy pair.mmcs where control=trained k=4 | mean | %.4f}}
(sd {{value toy pair.mmcs where control=trained and k=4 | sd}}, n = {{value toy pair.mmcs where control=trained k=4 | n}},
min {{value toy pair.mmcs where control=trained k=4 | min | %.2f}}, 95% CI {{value toy pair.mmcs where control=trained k=4 | ci95 | %.3f}}).
Not a directive: \{{value}}; nor in code:

```
{{claim wrong}}
```

{{table toy pair.mmcs by k, control | mean sd n | %.3f}}

{{table toy cell.explained_variance where control=trained by k | mean min max}}

{{plot toy mmcs-vs-param k | file=mmcs.svg title="MMCS vs k"}}

{{plot toy maxcos-hist where k=4 | file=fig/hist.svg bins=10}}

## Where the numbers come from

{{provenance}}
EOF2
printf '# Failing\n\n- {{claim wrong}}\n' > "$IN/fail.md"
printf '# Bad\n\nx {{value toy pair.mmcs where k=4 | mode}}\n' > "$IN/bad.md"
printf '# Bad\n{{value toy pair.mmcs where k | mean}}\n' > "$IN/bad2.md"
printf '{{claim no-such-claim}}\n' > "$IN/unknown.md"

setup() { # setup DIR: a ledger holding one 'toy' run
  rm -rf "$TMP/$1" && mkdir "$TMP/$1" && cd "$TMP/$1" && git init -q . && "$LEDGER" init --small-output-max 100 >/dev/null || return 1
  mkdir -p claims && cp "$IN/t.claims" claims/ && cp "$IN/wrong.claims" . && cp "$IN/t.md" "$IN/fail.md" "$IN/bad.md" "$IN/bad2.md" "$IN/unknown.md" . && cp "$IN/toy.json" . || return 1
  "$LEDGER" record --study toy --results "$IN/results.json" --spec toy.json \
    "conditions/k-4/maxcos.npy=$IN/maxcos_trained.npy" "conditions/k-4_control-random/maxcos.npy=$IN/maxcos_random.npy" \
    "results.json=$IN/results.json" >/dev/null
}

setup a || bad "setup"
expect_ok "report renders" "$LEDGER" report t.md -o out/report.md
grep_out "^rendered out/report.md: 2 plots, 1 run, 2 claims; recorded report run 2 " "summary line"
[ -f out/mmcs.svg ] && [ -f out/fig/hist.svg ] && ok "plots written beside the report" || bad "plots missing"
norm out/report.md > "$TMP/report.norm"
norm out/mmcs.svg > "$TMP/mmcs.norm"
if [ -n "${UPDATE_GOLDEN:-}" ]; then cp "$TMP/report.norm" "$GOLDEN/t6000-report.md"; cp "$TMP/mmcs.norm" "$GOLDEN/t6000-mmcs.svg"; fi
if diff -u "$GOLDEN/t6000-report.md" "$TMP/report.norm"; then ok "report matches golden"; else bad "report differs from golden"; fi
if diff -u "$GOLDEN/t6000-mmcs.svg" "$TMP/mmcs.norm" >/dev/null; then ok "svg matches golden"; else bad "svg differs from golden"; diff -u "$GOLDEN/t6000-mmcs.svg" "$TMP/mmcs.norm" | head -20; fi
"$PYTHON3" - out/mmcs.svg out/fig/hist.svg <<'PY' && ok "SVGs are well-formed SVG 1.1" || bad "SVG not well-formed"
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
for p in sys.argv[1:]:
    root = ET.parse(p).getroot()
    assert root.tag == ns + "svg" and root.get("version") == "1.1", root.tag
    texts = [t.text for t in root.iter(ns + "text")]
    assert any(t in ("trained",) for t in texts) and "random" in texts, texts
circles = list(ET.parse(sys.argv[1]).getroot().iter("{http://www.w3.org/2000/svg}circle"))
assert len(circles) == 2 * 2 + 2, len(circles)   # 2 series x 2 k values + 2 legend markers
rects = list(ET.parse(sys.argv[2]).getroot().iter("{http://www.w3.org/2000/svg}rect"))
assert len(rects) > 6, len(rects)
PY
# the numbers are the reference values of the hand-written evidence
grep -q 'Mean MMCS at k=4: 0.9000\[\^run-1\]' out/report.md && grep -q '| 32 | random | 0.275 | 0.025 | 3 |' out/report.md \
  && ok "values and table cells" || bad "values wrong"
grep -q 'Not a directive: {{value}}; nor in code:' out/report.md && grep -q '^{{claim wrong}}$' out/report.md \
  && ok "escape and fenced code kept literal" || bad "escape/fence"
expect_ok "report --json --no-record" "$LEDGER" report --json --no-record t.md -o out2/r.md
"$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["report"]=="out2/r.md" and r["run_id"] is None and len(r["files"])==3 and r["runs"][0]["seq"]==1 and [c["verdict"] for c in r["claims"]]==["PASS","XFAIL"], r' "$TMP/a/.out" 2>/dev/null \
  || "$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["report"]=="out2/r.md" and r["run_id"] is None and len(r["files"])==3 and r["runs"][0]["seq"]==1 and [c["verdict"] for c in r["claims"]]==["PASS","XFAIL"], r' "$TMP/.out" \
  && ok "json fields" || bad "json fields"
cmp -s out/report.md out2/r.md && ok "rendering is deterministic" || bad "two renders differ"
expect_ok "verify passes with the report" "$LEDGER" verify
"$LEDGER" query "SELECT name FROM artifacts JOIN runs USING (run_id) WHERE kind = 'report' ORDER BY name" > "$TMP/arts.txt"
[ "$(tr '\n' ' ' < "$TMP/arts.txt")" = "name fig/hist.svg mmcs.svg report.md template/t.md " ] && ok "report run holds report, plots and template" || { bad "report run outputs"; cat "$TMP/arts.txt"; }

# strict: a failing claim blocks the render; --allow-failing marks it
expect_code 1 "failing claim: exit 1" "$LEDGER" report --claims claims/t.claims,wrong.claims fail.md -o out3/f.md
grep_err "^ledger report: fail.md:3:3: claim wrong is FAIL: " "names template, line, column"
one_line_err "one-line error"
[ ! -e out3/f.md ] && ok "nothing written" || bad "strict failure wrote the report"
expect_ok "--allow-failing renders" "$LEDGER" report --claims wrong.claims --allow-failing --no-record fail.md -o out3/f.md
grep -q '\*\*NOT SUPPORTED\*\* (claim wrong is FAIL: ' out3/f.md && ok "marked NOT SUPPORTED" || bad "not marked"
grep_err "1 directive rendered NOT SUPPORTED" "warns on stderr"

# syntax errors: exit 2 with the place
expect_code 2 "unknown statistic: exit 2" "$LEDGER" report bad.md -o x.md
grep_err "^ledger report: bad.md:3:37: unknown statistic 'mode'" "statistic error position"
expect_code 2 "bad filter: exit 2" "$LEDGER" report bad2.md -o x.md
grep_err "^ledger report: bad2.md:2:[0-9]+: " "filter error position (from the claim parser)"
expect_code 2 "unknown claim: exit 2" "$LEDGER" report unknown.md -o x.md
grep_err "^ledger report: unknown.md:1:1: no claim 'no-such-claim'" "unknown claim named"

# new evidence: the recorded report no longer matches; re-rendering fixes it
sed 's/"mmcs": 0.90}/"mmcs": 0.95}/' "$IN/results.json" > "$IN/results2.json"
"$LEDGER" record --study toy --results "$IN/results2.json" --spec toy.json \
  "conditions/k-4/maxcos.npy=$IN/maxcos_trained.npy" "conditions/k-4_control-random/maxcos.npy=$IN/maxcos_random.npy" >/dev/null
expect_code 1 "verify flags a report whose evidence changed" "$LEDGER" verify
grep_out "^error: report: run 2-[0-9a-f]{12}: report.md no longer matches the evidence: .*first difference at line 3" "names the report run and the line"
expect_ok "re-render" "$LEDGER" report t.md -o out/report.md
expect_ok "verify passes again" "$LEDGER" verify

# stale evidence (the study file changed) blocks the render
echo '{"name": "toy", "changed": true}' > toy.json
expect_code 1 "stale evidence: exit 1" "$LEDGER" report --no-record t.md -o out4/r.md
grep_err "^ledger report: t.md:3:3: claim k4-beats-random is STALE: .*study file toy.json changed" "stale evidence named"

# tampering: a deleted artifact object, a flipped byte
setup b || bad "setup"
"$LEDGER" report t.md -o out/report.md >/dev/null || bad "render b"
obj=$(sha256sum "$IN/maxcos_trained.npy" | cut -c1-64)
rm -f ".ledger/store/objects/${obj:0:2}/${obj:2}"
expect_code 1 "deleted artifact: verify fails" "$LEDGER" verify
grep_out "^error: report: run 2-[0-9a-f]{12}: report.md no longer renders from the current evidence: t.md:[0-9]+:[0-9]+: .*MISSING" "report flagged as missing evidence"
setup c || bad "setup"
"$LEDGER" report t.md -o out/report.md >/dev/null || bad "render c"
obj=$(sha256sum "$IN/maxcos_trained.npy" | cut -c1-64); p=.ledger/store/objects/${obj:0:2}/${obj:2}
chmod u+w "$p" && "$PYTHON3" -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[-1]^=1; open(p,"wb").write(b)' "$p"
expect_code 1 "flipped artifact byte: verify fails" "$LEDGER" verify
grep_out "^error: report: run 2-[0-9a-f]{12}: .*conditions/k-4/maxcos.npy of run [0-9a-f]{12} hashes to" "report flagged for the tampered artifact"
finish
