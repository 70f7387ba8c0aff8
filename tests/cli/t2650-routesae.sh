#!/usr/bin/env bash
# t2650: sae.arch "routesae" end to end. A small layered activation file
# [n, L=3, d=8] (a 3-D safetensors tensor, written here with Python's standard
# library) is run as a study with three seeds and random-init controls: the run
# records cell metrics (fvu against the routed target, the router's per-layer
# weights and entropy), the cross-seed pair metrics (mmcs, unchanged code), and
# weight files with the router; data.d is one layer's width and data.layers 3.
# The run is deterministic (a second run gives the same weight digests),
# verify --recompute re-derives every metric from the stored weights, and a
# claim over the metrics evaluates; a replay and a shard + gather give the same
# digests. Refusals, each exit 2 with one line and the ledger unchanged:
# another arch on layered data, routesae on 2-D data, b_dec_init "median",
# data.ood; `ledger export` of a routesae run.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies

# layered data: 12 sparse features; layer l sees feature j along its own
# direction D_l[j] with a layer-specific gain, plus noise. flat: [n, d].
"$PYTHON3" - <<'PY' || { bad "write data"; finish; }
import json, math, random, struct
def st_write(path, name, shape, vals):
    data = struct.pack("<%df" % len(vals), *vals)
    hdr = json.dumps({name: {"dtype": "F32", "shape": shape, "data_offsets": [0, len(data)]}}).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)) + hdr + data)
r = random.Random(7)
n, L, d, F = 600, 3, 8, 12
def unit():
    v = [r.gauss(0, 1) for _ in range(d)]
    s = math.sqrt(sum(x * x for x in v))
    return [x / s for x in v]
D = [[unit() for _ in range(F)] for _ in range(L)]
gain = [0.5, 1.0, 2.0]
vals, flat = [], []
for i in range(n):
    act = r.sample(range(F), 2)
    c = {j: abs(1 + 0.3 * r.gauss(0, 1)) for j in act}
    for l in range(L):
        row = [0.05 * r.gauss(0, 1) for _ in range(d)]
        for j in act:
            for t in range(d):
                row[t] += gain[l] * c[j] * D[l][j][t]
        vals += row
    flat += vals[-d:]
st_write("layers.safetensors", "acts", [n, L, d], vals)
# the same array as a .npy (format 1.0, written by hand)
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }" % (n, L, d)
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
with open("layers.npy", "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + struct.pack("<%df" % len(vals), *vals))
st_write("flat.safetensors", "acts", [n, d], flat)
PY

spec() { # spec FILE DATA_EXTRA SAE_EXTRA TRAIN_EXTRA [DATAFILE] [NAME]
cat > "$1" <<JSON
{"format": 1, "name": "${6:-route-tiny}",
 "data": {"source": "file", "path": "../${5:-layers.safetensors}", "tensor": "acts", "eval_fraction": 0.2$2},
 "sae": {"arch": "routesae", "d_sae": 24, "k": 2$3},
 "train": {"steps": 80, "batch": 32, "lr": 0.01, "warmup_steps": 5$4},
 "seeds": [1, 2, 3], "controls": {"random_init": true}}
JSON
}
spec studies/route.json "" "" ""
expect_ok "run a routesae study" "$LEDGER" run -q --backend cpu --json studies/route.json
RUN=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$RUN" >run1.json
"$PYTHON3" - <<'PY' && ok "results: data layers, router metrics, pairs, fvu against the routed target" || bad "results"
import json, math
m = json.load(open("run1.json"))
res = m["results"]
assert res["data"]["d"] == 8 and res["data"]["layers"] == 3, res["data"]
conds = {c["id"]: c for c in res["conditions"]}
assert len(conds) == 2, list(conds)
trained = [c for c in res["conditions"] if "random" not in c["id"]][0]
random_ = [c for c in res["conditions"] if "random" in c["id"]][0]
for c in trained["cells"] + random_["cells"]:
    x = c["metrics"]
    assert c["status"] == "ok"
    w = [x["route_weight_%d" % l] for l in range(3)]
    assert abs(sum(w) - 1) < 1e-9, w
    assert 0 <= x["route_entropy"] <= math.log(3) + 1e-12
    assert abs(x["fvu"] + x["explained_variance"] - 1) < 1e-12
    assert 0 < x["l0"] <= 2
# random-init: zero router, uniform weights, entropy ln 3
for c in random_["cells"]:
    assert all(abs(c["metrics"]["route_weight_%d" % l] - 1 / 3) < 1e-12 for l in range(3))
# trained: reconstructs clearly better than random, and the router moved
ev_t = min(c["metrics"]["explained_variance"] for c in trained["cells"])
ev_r = max(c["metrics"]["explained_variance"] for c in random_["cells"])
assert ev_t > 0.6 and ev_t > ev_r + 0.15, (ev_t, ev_r)
assert max(abs(c["metrics"]["route_weight_2"] - 1 / 3) for c in trained["cells"]) > 1e-3
assert len(trained["pairs"]) == 3 and all(0 < p["metrics"]["mmcs"] <= 1 for p in trained["pairs"])
assert len(trained["seeds"]) == 3
names = [o["name"] for o in m["outputs"]]
assert sum(1 for n in names if n.startswith("cells/") and n.endswith(".safetensors")) == 3, names
PY

# the weight file holds the router beside the SAELens-shaped tensors
"$PYTHON3" - "$RUN" <<'PY' && ok "weight file: W_router [8, 3], b_router [3], W_dec [24, 8]" || bad "weight file tensors"
import json, struct, subprocess, sys, glob, os
out = json.loads(subprocess.check_output([os.environ.get("LEDGER", "ledger"), "show", "--json", sys.argv[1]]))
sha = [o["sha256"] for o in out["outputs"] if o["name"].startswith("cells/")][0]
path = [p for p in glob.glob(".ledger/**/objects/**/*", recursive=True) if os.path.isfile(p) and sha[2:] in p]
if not path:
    path = [p for p in glob.glob(".git/**/%s*" % sha[2:], recursive=True)]
assert path, "object not found"
b = open(path[0], "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
assert h["W_router"]["shape"] == [8, 3] and h["b_router"]["shape"] == [3], h
assert h["W_dec"]["shape"] == [24, 8]
assert h["__metadata__"]["architecture"] == "routesae"
PY

expect_ok "run again" "$LEDGER" run -q --backend cpu --json studies/route.json
RUN2=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$RUN2" >run2.json
"$PYTHON3" - <<'PY' && ok "deterministic: same weight digests and metrics twice" || bad "determinism"
import json
a, b = json.load(open("run1.json")), json.load(open("run2.json"))
da = {o["name"]: o["sha256"] for o in a["outputs"] if o["name"] != "results.json"}
db = {o["name"]: o["sha256"] for o in b["outputs"] if o["name"] != "results.json"}
assert da == db and len(da) >= 3
assert a["results"]["conditions"] == b["results"]["conditions"]
PY

expect_ok "verify --recompute re-derives every metric" "$LEDGER" verify --no-claims --recompute
grep_err "recomputed 2 runs: 12 cells, 12 pairs, [0-9]+ values compared, 0 not recomputed" "every cell and pair recomputed"

expect_ok "replay of the routesae run" "$LEDGER" replay -q "$RUN"
grep_out "^replay of run ${RUN:0:12} on cpu: 6 of 6 cells, [0-9]+ artifacts and [0-9]+ metric values compared: all match$" \
    "replay: every cell and artifact matches"

# a shard and a gather (weights written by the shard, read back with the router by the gather)
expect_ok "shard 1/1" "$LEDGER" run -q --backend cpu --shard 1/1 studies/route.json
expect_ok "gather" "$LEDGER" gather -q --backend cpu --json studies/route.json
RUNG=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$RUNG" >rung.json
"$PYTHON3" - <<'PY' && ok "gathered run: the digests of the plain run (weights, maxcos, results.json)" || bad "gather differs"
import json
a, b = json.load(open("run1.json")), json.load(open("rung.json"))
da = {o["name"]: o["sha256"] for o in a["outputs"]}
db = {o["name"]: o["sha256"] for o in b["outputs"]}
assert da == db and len(da) >= 6, (da, db)
PY

# the same data as a 3-D .npy: the same metrics (only the data digest differs)
spec studies/npy.json "" "" "" layers.npy route-npy
sed -i 's/, "tensor": "acts"//' studies/npy.json
expect_ok "run on a 3-D .npy" "$LEDGER" run -q --backend cpu --json studies/npy.json
RUN3=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$RUN3" >run3.json
"$PYTHON3" - <<'PY' && ok ".npy [n, L, d] gives the metrics of the safetensors file" || bad ".npy metrics"
import json
a, b = json.load(open("run1.json"))["results"], json.load(open("run3.json"))["results"]
assert a["conditions"] == b["conditions"]
assert b["data"]["layers"] == 3 and b["data"]["d"] == 8 and a["data"]["sha256"] != b["data"]["sha256"]
PY

cat > route.claims <<'EOF'
claim route-ev
  says "trained RouteSAE cells explain most of the routed variance"
  study route-tiny
  sample e = cell.explained_variance where control=trained
  require n(e) >= 3
  require mean(e) > 0.5
end
EOF
expect_ok "a claim over routesae metrics" "$LEDGER" check route.claims
grep_out "PASS +route-ev" "the claim passes"

# ---- refusals: exit 2, one line, nothing recorded -----------------------------
NRUNS=$("$LEDGER" log --json | "$PYTHON3" -c 'import json,sys; print(len(json.load(sys.stdin)))')
refuse() { # refuse LABEL PATTERN SPECFILE
    expect_code 2 "$1" "$LEDGER" run -q --backend cpu "$3"
    grep_err "$2" "$1: names the problem"
    one_line_err "$1: one line"
}
sed 's/"arch": "routesae"/"arch": "topk"/; s/"route-tiny"/"topk3d"/' studies/route.json >studies/topk3d.json
refuse "topk on layered data" 'studies/topk3d.json: condition .*sae.arch: the data is layered \[n, L=3, d=8\]; only "routesae"' studies/topk3d.json
spec studies/flat.json "" "" "" flat.safetensors flat
refuse "routesae on 2-D data" 'studies/flat.json: condition .*"routesae" needs layered data' studies/flat.json
spec studies/median.json "" "" ', "b_dec_init": "median"' "" median
refuse "b_dec_init median" 'train.b_dec_init: "median" is not supported with routesae' studies/median.json
spec studies/ood.json ', "ood": {"path": "../layers.safetensors", "tensor": "acts"}' "" "" "" ood
refuse "data.ood" 'data.ood: not supported with routesae' studies/ood.json
N2=$("$LEDGER" log --json | "$PYTHON3" -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$N2" = "$NRUNS" ] && ok "no refused run was recorded" || bad "runs recorded: $NRUNS -> $N2"

expect_code 2 "export of a routesae run is refused" "$LEDGER" export "$RUN" --format saelens -o out
grep_err 'routesae cannot be exported in SAELens format: a SAELens SAE reads one hook' "export: says why"
one_line_err "export: one line"
[ ! -e out ] && ok "export wrote nothing" || bad "export left out/"

finish
