#!/usr/bin/env bash
# t6500: training curves end to end. A study with train.log_every records one
# curve artifact per trained cell (replay compares them); a report with
# {{plot STUDY curve METRIC}} and {{plot STUDY scatter X Y}} renders valid
# SVGs whose footnotes name the curve artifacts, deterministically; the
# plotted means equal the means of the recorded curves; tampering with a
# curve artifact (a flipped byte, a deleted object) is caught by verify and
# by the report; a study without curves cannot draw one (exit 1, or marked
# with --allow-failing); bad curve syntax exits 2 with the place. Also: with
# stderr not a terminal, `ledger run` prints at most one progress line per cell.
. "$(dirname "$0")/lib-cli.sh"

git init -q repo && cd repo || exit 3
"$LEDGER" init >/dev/null || bad "init"
cat > s.json <<'EOF'
{"format": 1, "name": "curvy",
 "data": {"source": "synthetic", "synthetic": {"d": 8, "n_features": 16, "n_samples": 1500, "active_mean": 2, "seed": 4}},
 "sae": {"d_sae": 16, "k": 2, "l1_coeff": 0.3},
 "train": {"steps": 45, "batch": 32, "lr": 0.004, "warmup_steps": 5, "log_every": 10},
 "grid": {"arch": ["topk", "relu"]}, "seeds": [1, 2, 3]}
EOF
sed 's/"curvy"/"flat"/; s/, "log_every": 10//' s.json > flat.json
expect_ok "run with log_every" "$LEDGER" run s.json
plain=$(grep -c '^ledger run: \[' "$TMP/.err")
[ "$plain" -ge 1 ] && [ "$plain" -le 12 ] && grep -q '^ledger run: \[12/12 cells\]' "$TMP/.err" \
  && ok "plain progress: $plain line(s) for 12 cells, the last cell's included" || { bad "plain progress lines"; cat "$TMP/.err"; }
# a short run: cell lines only (a step line is a heartbeat after a minute without a line)
grep -q '^ledger run: \[.* step [0-9]*/' "$TMP/.err" && { bad "a step line in a short run"; cat "$TMP/.err"; } || ok "no step lines in a short run"
expect_ok "run without curves" "$LEDGER" run flat.json
"$LEDGER" show --json 1 > m1.json && "$LEDGER" show --json 2 > m2.json || bad "show"
"$PYTHON3" - <<'PY' && ok "6 curve artifacts (trained cells only), none without log_every" || bad "curve artifacts"
import json
o1 = [o["name"] for o in json.load(open("m1.json"))["outputs"]]
o2 = [o["name"] for o in json.load(open("m2.json"))["outputs"]]
c = sorted(n for n in o1 if n.endswith(".curve.json"))
assert c == ["cells/arch-%s/seed-%d.curve.json" % (a, s) for a in ("relu", "topk") for s in (1, 2, 3)], c
assert not [n for n in o2 if n.endswith(".curve.json")], o2
PY
expect_ok "replay compares the curves" "$LEDGER" replay 1
grep_out "all match" "replay: all match"

cat > r.md <<'EOF'
# Curves

{{plot curvy curve loss | file=plots/loss.svg}}

{{plot curvy curve dead_frac where arch=relu | file=plots/dead.svg band=sd title="dead latents (ReLU)"}}

{{plot curvy scatter cell.l0 cell.explained_variance where control=trained | file=plots/ev.svg series=arch}}
EOF
expect_ok "report renders" "$LEDGER" report r.md -o out/r.md
for f in loss dead ev; do
  "$PYTHON3" -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "out/plots/$f.svg" 2>/dev/null \
    && ok "$f.svg is valid XML" || bad "$f.svg is not valid XML"
done
[ "$(grep -c '<polyline' out/plots/loss.svg)" -eq 2 ] && [ "$(grep -c '<polygon' out/plots/loss.svg)" -eq 2 ] \
  && ok "loss: one line and one band per condition" || bad "loss.svg lines/bands"
grep -q 'band: min..max over seeds' out/plots/loss.svg && grep -q 'band: mean +- 1 sd' out/plots/dead.svg \
  && ok "the band is named" || bad "band note"
grep -q 'cells/arch-topk/seed-3.curve.json` SHA-256' out/r.md && ok "footnote names the curve artifacts" || bad "footnote"
expect_ok "second render (no record)" "$LEDGER" report --no-record r.md -o out2/r.md
cmp -s out/plots/loss.svg out2/plots/loss.svg && cmp -s out/r.md out2/r.md && ok "rendering is deterministic" || bad "renders differ"

# the plotted line is the mean of the recorded curves: re-draw the mean's y
# pixel from the artifacts and find it in the SVG's relu polyline
"$PYTHON3" - <<'PY' && ok "plotted means equal the recorded curves' means" || bad "plotted means"
import json, re, glob, os, subprocess
m = json.load(open("m1.json"))
store = ".ledger/store/objects/"
def art(name):
    sha = [o["sha256"] for o in m["outputs"] if o["name"] == name][0]
    return json.load(open(store + sha[:2] + "/" + sha[2:]))
cv = [art("cells/arch-relu/seed-%d.curve.json" % s) for s in (1, 2, 3)]
assert all(c["step"] == [10, 20, 30, 40, 45] for c in cv), [c["step"] for c in cv]
mean = [sum(c["loss"][i] for c in cv) / 3 for i in range(5)]
svg = open("out/plots/loss.svg").read()
ys = [float(v) for v in re.findall(r'<text x="[0-9.]+" y="([0-9.]+)" text-anchor="end">', svg)]
labels = [float(v) for v in re.findall(r'text-anchor="end">([-0-9.]+)</text>', svg)]
# y axis: pixel = a + b * value, from the first and last tick (label at y + 4)
a1, a2, v1, v2 = ys[0] - 4, ys[-1] - 4, labels[0], labels[-1]
px = [a1 + (v - v1) * (a2 - a1) / (v2 - v1) for v in mean]
lines = re.findall(r'<polyline fill="none" stroke-width="1.5" points="([^"]+)"', svg)
pts = [[float(p.split(",")[1]) for p in l.split()] for l in lines]
assert any(len(p) == 5 and all(abs(p[i] - px[i]) < 0.02 for i in range(5)) for p in pts), (px, pts)
PY

expect_ok "verify passes" "$LEDGER" verify

# tampering with a curve artifact: a flipped byte
obj=$("$PYTHON3" -c 'import json; m=json.load(open("m1.json")); print([o["sha256"] for o in m["outputs"] if o["name"]=="cells/arch-topk/seed-2.curve.json"][0])')
p=.ledger/store/objects/${obj:0:2}/${obj:2}
cp "$p" "$TMP/curve.bak"
chmod u+w "$p" && "$PYTHON3" -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); i=b.index(b"\"loss\":[")+8; b[i]=ord("9") if b[i]!=ord("9") else ord("8"); open(p,"wb").write(b)' "$p"
expect_code 1 "flipped curve byte: verify fails" "$LEDGER" verify
grep_out "cells/arch-topk/seed-2.curve.json" "verify names the tampered curve"
grep_out "^error: report: run 3-[0-9a-f]{12}: .*cells/arch-topk/seed-2.curve.json of run [0-9a-f]{12} hashes to" "the report is flagged for it"
expect_code 1 "the report refuses to draw from it" "$LEDGER" report --no-record r.md -o out3/r.md
grep_err "^ledger report: r.md:3:1: plots/loss.svg: evidence MISSING: artifact cells/arch-topk/seed-2.curve.json of run [0-9a-f]{12} hashes to" "names the artifact and the place"
one_line_err "one-line error"
[ ! -e out3/r.md ] && ok "nothing written" || bad "a report was written"
cp "$TMP/curve.bak" "$p"
expect_ok "restored: verify passes" "$LEDGER" verify
# a deleted store object: small outputs are also kept in the ledger branch,
# which verify checks and the report reads, so nothing is lost
rm -f "$p"
expect_ok "deleted store object: verify still passes from the ledger's copy" "$LEDGER" verify
expect_ok "and the report renders the same" "$LEDGER" report --no-record r.md -o out3/r.md
cmp -s out3/plots/loss.svg out2/plots/loss.svg && ok "same loss.svg" || bad "loss.svg changed"
cp "$TMP/curve.bak" "$p"

# a study that logged no curves
echo '{{plot flat curve loss | file=flat.svg}}' > flat.md
expect_code 1 "no curves: exit 1" "$LEDGER" report --no-record flat.md -o out4/f.md
grep_err "^ledger report: flat.md:1:1: flat.svg: evidence MISSING: run [0-9a-f]{12} has no artifact cells/arch-relu/seed-1.curve.json" "names the missing curve"
expect_ok "--allow-failing marks it" "$LEDGER" report --no-record --allow-failing flat.md -o out4/f.md
grep -q '^\*\*NOT SUPPORTED\*\* (flat.svg: evidence MISSING' out4/f.md && ok "marked NOT SUPPORTED" || bad "not marked"

# syntax
echo '{{plot curvy curve loss2 | file=x.svg}}' > bad1.md
expect_code 2 "unknown curve metric: exit 2" "$LEDGER" report bad1.md -o x.md
grep_err "^ledger report: bad1.md:1:20: unknown curve metric 'loss2'" "names the metric and the place"
echo '{{plot curvy curve loss | file=x.svg band=iqr}}' > bad2.md
expect_code 2 "bad band: exit 2" "$LEDGER" report bad2.md -o x.md
grep_err "band= must be minmax or sd" "band error"
echo '{{plot curvy curve loss | file=x.svg series=arch}}' > bad3.md
expect_code 2 "series= on a curve: exit 2" "$LEDGER" report bad3.md -o x.md
echo '{{plot curvy scatter cell.l0 | file=x.svg}}' > bad4.md
expect_code 2 "scatter with one metric: exit 2" "$LEDGER" report bad4.md -o x.md
grep_err "expected two metrics after scatter" "scatter error"

# spec errors
sed 's/"log_every": 10/"log_every": -3/' s.json > neg.json
expect_code 2 "negative log_every: exit 2" "$LEDGER" run neg.json
grep_err "neg.json: train.log_every: must be an integer in \[0, 16777216\]" "names the key"
finish
