#!/usr/bin/env bash
# t2660: RouteSAE beside the single-layer architectures on layered data.
# A tiny study on layered synthetic data (data.synthetic.layers: 2) with
# data.layer: 1 runs TopK, ReLU and RouteSAE at the same width and budget:
# RouteSAE reads both layers (router metrics over 2 layers), TopK and ReLU
# layer 1 (their metrics equal those of the same conditions on a 3-D file of
# the same rows with data.layer: 1, and differ from layer 0's); truth recovery
# is recorded for all three; training curves exist for every trained cell,
# RouteSAE's included, and a report draws them. The run is deterministic,
# verify --recompute and replay re-derive it, and a claim over two of its
# architectures evaluates. Refusals, each exit 2 with one line naming the
# place and the ledger unchanged: data.layer out of range (synthetic, at
# parse; a 3-D file, at run), data.layer on 2-D data (synthetic and file), a
# single-layer arch on layered data without data.layer, data.synthetic.layers
# 1, layer_leak without layers, data.layer with data.target; --backend cuda
# on a routesae study. train.consistency on a single-layer arch of layered
# data runs and recomputes.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies

spec() { # spec FILE NAME DATA_EXTRA SYNTH_EXTRA ARCHS
cat > "$1" <<JSON
{"format": 1, "name": "$2",
 "data": {"source": "synthetic"$3, "eval_fraction": 0.2,
          "synthetic": {"d": 8, "n_features": 16, "n_samples": 800, "active_mean": 2, "noise_std": 0.02, "seed": 3$4}},
 "sae": {"d_sae": 16, "k": 2, "l1_coeff": 0.3},
 "train": {"steps": 60, "batch": 32, "lr": 0.01, "warmup_steps": 5, "log_every": 20},
 "grid": {"arch": [$5]},
 "seeds": [1, 2, 3], "controls": {"random_init": true}}
JSON
}
spec studies/lay.json lay ', "layer": 1' ', "layers": 2, "layer_leak": 0.5' '"topk", "relu", "routesae"'
expect_ok "run a layered study: topk, relu (layer 1) and routesae (both layers)" "$LEDGER" run -q --backend cpu --json studies/lay.json
RUN=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$RUN" >run1.json
"$PYTHON3" - <<'PY' && ok "results: layers 2, router metrics for routesae only, truth for all, curves for all" || bad "results"
import json, math
m = json.load(open("run1.json"))
res = m["results"]
assert res["data"]["d"] == 8 and res["data"]["layers"] == 2, res["data"]
c = {x["id"]: x for x in res["conditions"]}
assert sorted(c) == sorted(["arch=%s%s" % (a, s) for a in ("topk", "relu", "routesae") for s in ("", ",control=random")]), list(c)
for cid, cond in c.items():
    assert len(cond["cells"]) == 3 and all(x["status"] == "ok" for x in cond["cells"])
    for x in cond["cells"]:
        mt = x["metrics"]
        assert 0 < mt["truth_mmcs"] <= 1, (cid, mt)
        if "routesae" in cid:
            assert abs(mt["route_weight_0"] + mt["route_weight_1"] - 1) < 1e-9 and "route_weight_2" not in mt
        else:
            assert not [k for k in mt if k.startswith("route_")], (cid, mt)
for a in ("topk", "relu", "routesae"):
    t = min(x["metrics"]["truth_mmcs"] for x in c["arch=" + a]["cells"])
    r = max(x["metrics"]["truth_mmcs"] for x in c["arch=%s,control=random" % a]["cells"])
    assert t > r, (a, t, r)
names = [o["name"] for o in m["outputs"]]
curves = sorted(n for n in names if n.endswith(".curve.json"))
assert curves == ["cells/arch-%s/seed-%d.curve.json" % (a, s) for a in ("relu", "routesae", "topk") for s in (1, 2, 3)], curves
PY

expect_ok "run again" "$LEDGER" run -q --backend cpu --json studies/lay.json
RUN2=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$RUN2" >run2.json
"$PYTHON3" - <<'PY' && ok "deterministic: the same artifacts and metrics twice" || bad "determinism"
import json
a, b = json.load(open("run1.json")), json.load(open("run2.json"))
da = {o["name"]: o["sha256"] for o in a["outputs"]}
db = {o["name"]: o["sha256"] for o in b["outputs"]}
assert da == db and len(da) > 20
PY
expect_ok "verify --recompute re-derives every metric" "$LEDGER" verify --no-claims --recompute
grep_err "recomputed 2 runs: 36 cells, 36 pairs, [0-9]+ values compared, 0 not recomputed" "every cell and pair recomputed"
expect_ok "replay" "$LEDGER" replay -q "$RUN"
grep_out "18 of 18 cells, [0-9]+ artifacts and [0-9]+ metric values compared: all match" "replay: all match"

cat > lay.claims <<'CLAIMS'
claim route-truth
  says "RouteSAE and TopK both recover the truth better than chance"
  study lay
  sample r = cell.truth_mmcs where control=trained arch=routesae
  sample t = cell.truth_mmcs where control=trained arch=topk
  sample z = cell.truth_mmcs where control=random arch=topk
  require min(r) - max(z) > 0
  require min(t) - max(z) > 0
end
CLAIMS
expect_ok "a claim over two architectures" "$LEDGER" check lay.claims
grep_out "PASS +route-truth" "the claim passes"
cat > r.md <<'TPL'
# Layered

{{plot lay curve dead_frac | file=plots/dead.svg}}

{{plot lay scatter cell.l0 cell.truth_mmcs where control=trained | file=plots/truth.svg series=arch}}
TPL
expect_ok "a report draws the curves, RouteSAE's included" "$LEDGER" report --no-record r.md -o out/r.md
[ "$(grep -c '<polyline' out/plots/dead.svg 2>/dev/null)" = 3 ] && ok "dead_frac: one line per trained architecture" \
  || bad "dead.svg lines: $(grep -c '<polyline' out/plots/dead.svg 2>/dev/null)"

# a 3-D file [n, 2, 8] and its layer 1 as a 2-D file: topk with data.layer 1
# on the first gives exactly the metrics of topk on the second
"$PYTHON3" - <<'PY' || bad "write data"
import json, random, struct
def st_write(path, name, shape, vals):
    data = struct.pack("<%df" % len(vals), *vals)
    hdr = json.dumps({name: {"dtype": "F32", "shape": shape, "data_offsets": [0, len(data)]}}).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + data)
r = random.Random(5)
n, L, d = 400, 2, 8
vals, one = [], []
for i in range(n):
    for l in range(L):
        row = [r.gauss(0, 1) * (1 + l) for _ in range(d)]
        vals += row
        if l == 1:
            one += row
st_write("layers.safetensors", "acts", [n, L, d], vals)
st_write("one.safetensors", "acts", [n, d], one)
PY
filespec() { # filespec FILE NAME DATAFILE DATA_EXTRA ARCHS
cat > "$1" <<JSON
{"format": 1, "name": "$2",
 "data": {"source": "file", "path": "../$3", "tensor": "acts", "eval_fraction": 0.2$4},
 "sae": {"d_sae": 16, "k": 2}, "train": {"steps": 40, "batch": 32, "lr": 0.01, "warmup_steps": 5},
 "grid": {"arch": [$5]}, "seeds": [1, 2]}
JSON
}
filespec studies/f3.json f3 layers.safetensors ', "layer": 1' '"topk", "routesae"'
filespec studies/f2.json f2 one.safetensors '' '"topk"'
expect_ok "run topk + routesae on a 3-D file, data.layer 1" "$LEDGER" run -q --backend cpu --json studies/f3.json
"$LEDGER" show --json "$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")" >f3.json
expect_ok "run topk on layer 1 as a 2-D file" "$LEDGER" run -q --backend cpu --json studies/f2.json
"$LEDGER" show --json "$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")" >f2.json
"$PYTHON3" - <<'PY' && ok "topk on layer 1 of the 3-D file = topk on the 2-D file of layer 1 (cells and pairs)" || bad "layer rule on a file"
import json
a = {c["id"]: c for c in json.load(open("f3.json"))["results"]["conditions"]}
b = {c["id"]: c for c in json.load(open("f2.json"))["results"]["conditions"]}
assert a["arch=topk"]["cells"] == b["arch=topk"]["cells"] and a["arch=topk"]["pairs"] == b["arch=topk"]["pairs"]
assert "route_weight_1" in a["arch=routesae"]["cells"][0]["metrics"]
PY

# train.consistency on a single-layer arch of layered data: its held-out-seed
# evidence reads the decoders at one layer's width
cat > studies/cons.json <<'JSON'
{"format": 1, "name": "lay-cons",
 "data": {"source": "synthetic", "layer": 1, "synthetic": {"d": 8, "n_features": 16, "n_samples": 800, "active_mean": 2, "noise_std": 0.01, "seed": 3, "layers": 2}},
 "sae": {"d_sae": 16, "k": 2, "arch": "topk"}, "train": {"steps": 30, "batch": 32, "lr": 0.01, "warmup_steps": 5},
 "grid": {"consistency": [{"weight": 0}, {"weight": 0.3, "every": 5, "mode": "consensus"}]}, "seeds": [1, 2, 3]}
JSON
expect_ok "train.consistency with data.layer" "$LEDGER" run -q --backend cpu studies/cons.json
expect_ok "and its recompute" "$LEDGER" verify --no-claims --recompute
grep_err ", 0 not recomputed" "every value recomputed"

# ---- refusals: exit 2, one line, nothing recorded -----------------------------
NRUNS=$("$LEDGER" log --json | "$PYTHON3" -c 'import json,sys; print(len(json.load(sys.stdin)))')
refuse() { # refuse LABEL PATTERN SPECFILE [BACKEND]
    expect_code 2 "$1" "$LEDGER" run -q --backend "${4:-cpu}" "$3"
    grep_err "$2" "$1: names the problem"
    one_line_err "$1: one line"
}
spec studies/b1.json b1 ', "layer": 2' ', "layers": 2' '"topk", "routesae"'
refuse "data.layer out of range (synthetic)" 'studies/b1.json: data.layer: 2 out of range: data.synthetic.layers is 2 \(0\.\.1\)$' studies/b1.json
filespec studies/b2.json b2 layers.safetensors ', "layer": 2' '"topk"'
refuse "data.layer out of range (3-D file)" 'studies/b2.json: data.layer: 2 out of range: the data has 2 layers \(0\.\.1\)$' studies/b2.json
spec studies/b3.json b3 ', "layer": 0' '' '"topk"'
refuse "data.layer on 2-D synthetic data" 'studies/b3.json: data.layer: the data is not layered \(set data.synthetic.layers\)$' studies/b3.json
filespec studies/b4.json b4 one.safetensors ', "layer": 0' '"topk"'
refuse "data.layer on a 2-D file" 'studies/b4.json: data.layer: the data is not layered' studies/b4.json
spec studies/b5.json b5 '' ', "layers": 2' '"topk", "routesae"'
refuse "a single-layer arch on layered data without data.layer" \
    'studies/b5.json: condition arch=topk: sae.arch: the data is layered \[n, L=2, d=8\]; only "routesae" takes layered data \(got "topk"; set data.layer to train it on one layer\)$' studies/b5.json
spec studies/b6.json b6 '' ', "layers": 1' '"routesae"'
refuse "data.synthetic.layers 1" 'studies/b6.json: data.synthetic.layers: must be an integer in \[2, 64\]$' studies/b6.json
spec studies/b7.json b7 '' ', "layer_leak": 0.5' '"topk"'
refuse "layer_leak without layers" 'studies/b7.json: data.synthetic.layer_leak: needs data.synthetic.layers$' studies/b7.json
spec studies/b8.json b8 ', "layer": 0, "target": {"synthetic": {"seed": 4}}' ', "layers": 2' '"topk"'
refuse "data.layer with data.target" 'studies/b8.json: data.layer: not supported with data.target' studies/b8.json
spec studies/b9.json b9 ', "layer": 0' ', "layers": 2, "layer_leak": 2' '"topk"'
refuse "layer_leak out of [0, 1]" 'studies/b9.json: data.synthetic.layer_leak: must be a number in \[0, 1\]$' studies/b9.json
# --backend cuda: a build without CUDA says so; one with CUDA refuses routesae by name
refuse "--backend cuda on a routesae study" \
    '(backend cuda: this build has no CUDA backend|condition arch=routesae: sae.arch: the cuda backend does not implement "routesae"|backend cuda: )' \
    studies/lay.json cuda
N2=$("$LEDGER" log --json | "$PYTHON3" -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$N2" = "$NRUNS" ] && ok "no refused run was recorded" || bad "runs recorded: $NRUNS -> $N2"

finish
