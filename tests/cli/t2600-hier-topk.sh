#!/usr/bin/env bash
# t2600: sae.arch "hierarchical_topk" end to end. A tiny synthetic study with
# budgets ks = [2, 4, 8] beside a TopK k=8 arm runs; every hierarchical cell
# carries the per-budget metrics (mse_k2 ... dense_frac_k8, equal at k8 to the
# usual metrics), its weights file names the budgets, consistency metrics
# (mmcs) exist, a claim over the per-budget metrics is checked, the run is
# deterministic (same digests twice; replay matches), verify --recompute
# re-derives every value, and the SAELens export is a "topk" SAE with k = 8 and the budgets in
# metadata.ledger_ks. Bad specs (ks missing, k disagreeing, ks not increasing,
# ks beyond d_sae) are one-line exit-2 errors that leave the ledger unchanged.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies claims
cat > studies/hier.json <<'JSON'
{"format": 1, "name": "hier",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 3000, "active_mean": 3, "seed": 4}},
 "sae": {"d_sae": 32, "ks": [2, 4, 8]}, "train": {"steps": 120, "batch": 64, "lr": 0.005, "warmup_steps": 10},
 "grid": {"arch": ["hierarchical_topk", "topk"]}, "sae_note": null,
 "seeds": [1, 2, 3]}
JSON
# (no such key as sae_note: the first run must refuse it; then it is removed)
expect_code 2 "unknown key refused" "$LEDGER" run -q --backend cpu studies/hier.json
"$PYTHON3" - <<'PY'
import json; p = "studies/hier.json"; s = json.load(open(p)); del s["sae_note"]; s["sae"]["k"] = 8
json.dump(s, open(p, "w"))
PY

expect_ok "dry run" "$LEDGER" run --dry-run studies/hier.json
grep_out "arch=hierarchical_topk +hierarchical_topk d_sae=32 k=8" "plan: hierarchical_topk with k = the largest budget"
expect_ok "run" "$LEDGER" run -q --backend cpu studies/hier.json
grep_out "^run [0-9a-f]{12} recorded: study hier" "run recorded"
run1=$(awk '{print $2}' "$TMP/.out")
"$LEDGER" show --json "$run1" > m1.json

"$PYTHON3" - <<'PY' > py.out 2>&1 && ok "per-budget metrics in every hierarchical cell, none in TopK's" || { bad "per-budget metrics"; cat py.out; }
import json
m = json.load(open("m1.json"))
conds = {c["id"]: c for c in m["results"]["conditions"]}
h, t = conds["arch=hierarchical_topk"], conds["arch=topk"]
assert h["params"]["ks"] == [2, 4, 8] and h["params"]["k"] == 8, h["params"]
assert "ks" not in t["params"], t["params"]
names = ["mse", "fvu", "explained_variance", "l0", "dead_frac", "dense_frac"]
for c in h["cells"]:
    mt = c["metrics"]
    for k in (2, 4, 8):
        for n in names:
            assert isinstance(mt.get("%s_k%d" % (n, k)), (int, float)), (c["seed"], n, k)
        assert mt["l0_k%d" % k] <= k and mt["l0_k%d" % k] > k - 1, (k, mt["l0_k%d" % k])
    for n in names:  # the largest budget is the SAE itself
        assert mt[n + "_k8"] == mt[n], (n, mt[n + "_k8"], mt[n])
    assert mt["fvu_k2"] > mt["fvu_k4"] > mt["fvu_k8"], mt
for c in t["cells"]:
    assert not any(k.endswith("_k8") for k in c["metrics"]), c["metrics"]
assert len(h["pairs"]) == 3 and all("mmcs" in p["metrics"] for p in h["pairs"]), h["pairs"]
outs = {o["name"] for o in m["outputs"]}
assert "cells/arch-hierarchical_topk/seed-1.safetensors" in outs, sorted(outs)
PY

# the weights file names its budgets (metadata "ks"); TopK's has none
"$PYTHON3" - "$run1" <<'PY' > py.out 2>&1 && ok "weights metadata: ks = 2,4,8 (hierarchical only)" || { bad "weights metadata"; cat py.out; }
import json, struct, subprocess, sys
m = json.load(open("m1.json"))
dig = {o["name"]: o["sha256"] for o in m["outputs"]}
def meta(name):
    raw = open(".ledger/store/objects/%s/%s" % (dig[name][:2], dig[name][2:]), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]).get("__metadata__", {})
a = meta("cells/arch-hierarchical_topk/seed-2.safetensors")
assert a["architecture"] == "hierarchical_topk" and a["ks"] == "2,4,8" and a["k"] == "8", a
b = meta("cells/arch-topk/seed-2.safetensors")
assert "ks" not in b and b["architecture"] == "topk", b
PY

expect_ok "index: per-budget samples" "$LEDGER" query "SELECT count(*) FROM samples WHERE unit='cell' AND metric='fvu_k2'"
grep_out "^6$" "6 cells with fvu_k2 (3 trained, 3 random-init twins)"

cat > claims/hier.claims <<'CLAIMS'
claim budget-helps
  says "the k=8 budget of the nested SAE explains more variance than its k=2 budget"
  study hier
  sample big = cell.explained_variance_k8 where arch=hierarchical_topk
  sample small = cell.explained_variance_k2 where arch=hierarchical_topk
  require mean(big) - mean(small) > 0
end
CLAIMS
expect_ok "claim over per-budget metrics" "$LEDGER" check claims/hier.claims
grep_out "PASS +budget-helps" "per-budget claim passes"

expect_ok "run again" "$LEDGER" run -q --backend cpu studies/hier.json
run2=$(awk '{print $2}' "$TMP/.out")
"$LEDGER" show --json "$run1" | "$PYTHON3" -c 'import json,sys; print("\n".join(o["name"]+" "+o["sha256"] for o in json.load(sys.stdin)["outputs"]))' > d1
"$LEDGER" show --json "$run2" | "$PYTHON3" -c 'import json,sys; print("\n".join(o["name"]+" "+o["sha256"] for o in json.load(sys.stdin)["outputs"]))' > d2
[ -s d1 ] && cmp -s d1 d2 && ok "bit-identical artifact digests across runs ($(wc -l < d1) outputs)" || { bad "digests differ"; diff d1 d2 | head; }

expect_ok "replay re-derives every cell bit for bit" "$LEDGER" replay "$run1"
grep_out "all match" "replay: all match"
expect_ok "verify --recompute re-derives every value" "$LEDGER" verify --no-claims --recompute
grep_err "0 not recomputed" "nothing left unrecomputed"

# SAELens export: a TopK SAE at the largest budget, budgets in metadata
expect_ok "export" "$LEDGER" export "$run1" --format saelens -o out --cell arch=hierarchical_topk/1
"$PYTHON3" - <<'PY' > py.out 2>&1 && ok "export: topk k=8, ledger_architecture and ledger_ks" || { bad "export cfg"; find out -type f; cat py.out; }
import glob, json
cfgs = glob.glob("out/*/seed-1/cfg.json")
assert len(cfgs) == 1, cfgs
c = json.load(open(cfgs[0]))
assert c["architecture"] == "topk" and c["k"] == 8, c
md = c["metadata"]
assert md["ledger_architecture"] == "hierarchical_topk" and md["ledger_ks"] == [2, 4, 8] and md["ledger_k"] == 8, md
PY

# bad specs: exit 2, one line naming the file and place, ledger unchanged
tip=$(git rev-parse ledger)
bad_spec() { # DESC PYTHON-EDIT PATTERN
  "$PYTHON3" - "$2" <<'PY'
import json, sys
s = json.load(open("studies/hier.json")); s["name"] = "hier-bad"
exec(sys.argv[1])
json.dump(s, open("studies/bad.json", "w"))
PY
  expect_code 2 "$1: exit 2" "$LEDGER" run -q --backend cpu studies/bad.json
  one_line_err "$1: one line"
  grep_err "$3" "$1: named"
}
bad_spec "ks missing" 'del s["sae"]["ks"]' "bad.json: condition arch=hierarchical_topk: sae.ks: required for hierarchical_topk"
bad_spec "k disagrees" 's["sae"]["k"] = 4' "bad.json: condition arch=hierarchical_topk: k = 4 differs from the largest of sae.ks \(8\)"
bad_spec "ks not increasing" 's["sae"]["ks"] = [4, 4, 8]' "bad.json: sae.ks\[1\]: budgets must be increasing"
bad_spec "ks beyond d_sae" 's["sae"]["ks"] = [2, 64]; del s["sae"]["k"]' "bad.json: condition arch=hierarchical_topk: k = 64 exceeds d_sae = 32"
bad_spec "too many budgets" 's["sae"]["ks"] = list(range(1, 10)); del s["sae"]["k"]' "bad.json: sae.ks: must be an array of 1 to 8"
[ "$(git rev-parse ledger)" = "$tip" ] && ok "ledger unchanged by the refused specs" || bad "ledger changed"

finish
