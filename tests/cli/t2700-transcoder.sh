#!/bin/bash
# t2700-transcoder.sh - the transcoder control arm (engine/transcoder.h): a tiny study with a
# synthetic target runs an SAE arm and a transcoder arm at equal compute, records the target's
# digest, train_tokens / train_gemm_flops, truth recovery of the output dictionary and the
# cross-seed metrics; a second run gives the same weights; a file target works and makes claims
# STALE when it changes; "arch": "transcoder" is a TopK transcoder; bad targets (wrong rows, wrong width, 1-D, NaN, missing, a transcoder
# without a target, an unknown arch, a synthetic target on a file source, an OOD file without
# its target) exit 2 with one line naming the file and place, and record nothing.
. "$(dirname "$0")/lib-cli.sh"

"$PYTHON3" -c 'import numpy' 2>/dev/null || { echo "skipped: numpy missing"; exit 77; }
expect_ok "init" "$LEDGER" init

cat >tiny.json <<'JSON'
{"format": 1, "name": "tc-tiny",
 "data": {"source": "synthetic",
          "synthetic": {"d": 8, "n_features": 24, "n_samples": 2000, "active_mean": 2, "zipf_exponent": 0.3,
                        "magnitude_mean": 1.0, "magnitude_std": 0.3, "noise_std": 0.01, "seed": 7},
          "target": {"synthetic": {"seed": 11}}, "eval_fraction": 0.1},
 "sae": {"arch": "topk", "d_sae": 24, "k": 2}, "train": {"steps": 80, "batch": 64, "lr": 0.003, "warmup_steps": 10},
 "grid": {"transcoder": [false, true]},
 "seeds": [1, 2, 3], "controls": {"random_init": true}}
JSON
expect_ok "dry run" "$LEDGER" run --dry-run tiny.json
grep_out 'transcoder=true' "the plan lists the transcoder arm"
grep_out 'target: synthetic, output dictionary seed 11' "the plan names the target"
expect_ok "run the tiny transcoder study" "$LEDGER" run -q --json tiny.json
RUN=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$RUN" >run1.json
"$PYTHON3" - <<'PY' && ok "both arms recorded: target digest, equal tokens, flops 10/12, truth, pairs" || bad "results"
import json
m = json.load(open("run1.json"))["results"]
t = m["data"]["target"]
assert t["source"] == "synthetic" and t["seed"] == 11 and len(t["sha256"]) == 64, t
conds = {c["id"]: c for c in m["conditions"]}
assert set(conds) == {"transcoder=false", "transcoder=true", "transcoder=false,control=random",
                      "transcoder=true,control=random"}, set(conds)
assert conds["transcoder=true"]["params"]["transcoder"] is True
assert conds["transcoder=false"]["params"]["transcoder"] is False
sae, tc = conds["transcoder=false"], conds["transcoder=true"]
for cs in (sae, tc):
    assert len(cs["cells"]) == 3 and len(cs["pairs"]) == 3 and len(cs["seeds"]) == 3
    for c in cs["cells"]:
        x = c["metrics"]
        assert x["train_tokens"] == 80 * 64
        for k in ("fvu", "explained_variance", "truth_mmcs", "l0", "final_loss"):
            assert k in x, k
for a, b in zip(sae["cells"], tc["cells"]):
    assert b["metrics"]["train_gemm_flops"] * 12 == a["metrics"]["train_gemm_flops"] * 10
# the arms are different models: different FVU and dictionaries
assert abs(sae["cells"][0]["metrics"]["fvu"] - tc["cells"][0]["metrics"]["fvu"]) > 1e-6
# random controls carry no training counts
for c in conds["transcoder=true,control=random"]["cells"]:
    assert "train_tokens" not in c["metrics"]
PY
expect_ok "run it again" "$LEDGER" run -q --json tiny.json
RUN2=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$RUN2" >run2.json
"$PYTHON3" - <<'PY' && ok "deterministic: same weights files and metrics" || bad "determinism"
import json
a, b = json.load(open("run1.json")), json.load(open("run2.json"))
wa = {o["name"]: o["sha256"] for o in a["outputs"] if o["name"].startswith("cells/")}
wb = {o["name"]: o["sha256"] for o in b["outputs"] if o["name"].startswith("cells/")}
assert len(wa) == 6 and wa == wb, (wa, wb)
assert a["results"]["conditions"] == b["results"]["conditions"]
PY
expect_ok "verify --recompute re-evaluates both arms from the stored weights" "$LEDGER" verify --recompute
grep_err 'recomputed 2 runs: 24 cells, 24 pairs' "every cell and pair recomputed"
expect_ok "replay the run" "$LEDGER" replay "$RUN"
grep_out 'all match' "replay: all match"
cat >tc.claims <<'EOF'
claim tiny-equal-compute
  says "equal tokens, no more flops"
  study tc-tiny
  sample tt = cell.train_tokens where control=trained transcoder=true
  sample st = cell.train_tokens where control=trained transcoder=false
  sample tf = cell.train_gemm_flops where control=trained transcoder=true
  sample sf = cell.train_gemm_flops where control=trained transcoder=false
  require max(tt) - min(st) <= 0
  require min(tt) - max(st) >= 0
  require max(tf) - min(sf) < 0
  require n(tt) >= 3
end
EOF
expect_ok "a claim selecting both arms passes" "$LEDGER" check tc.claims
grep_out 'PASS +tiny-equal-compute' "PASS"

# ---- a file target (MLP input -> output shaped) ----
"$PYTHON3" - <<'PY'
import numpy as np
r = np.random.default_rng(5)
x = r.standard_normal((600, 8)).astype("<f4")
A = r.standard_normal((8, 8)).astype("<f4") / 3
y = np.maximum(x @ A, 0).astype("<f4")
np.save("x.npy", x); np.save("y.npy", y)
np.save("y599.npy", y[:599]); np.save("y4.npy", y[:, :4].copy()); np.save("y1d.npy", y[:, 0].copy())
bad = y.copy(); bad[17, 5] = np.nan; np.save("ynan.npy", bad)
np.save("ood.npy", x[:100] * 2); np.save("oodt.npy", y[:100] * 2); np.save("oodt99.npy", y[:99] * 2)
PY
fspec() { # fspec FILE DATA_EXTRA [SAE_EXTRA] [NAME]; $SAE_ARCH replaces the arch entry
  local arch='"arch": "topk"'
  [ -n "${SAE_ARCH:-}" ] && arch=$SAE_ARCH
  cat >"$1" <<JSON
{"format": 1, "name": "${4:-tc-file}",
 "data": {"source": "file", "path": "x.npy", "eval_fraction": 0.1 ${2:-}},
 "sae": {$arch, "d_sae": 16, "k": 2 ${3:-}}, "train": {"steps": 30, "batch": 32},
 "grid": {"transcoder": [false, true]},
 "seeds": [1, 2], "controls": {"random_init": false}, "metrics": {"hungarian": false}}
JSON
}
fspec file.json ', "target": {"path": "y.npy"}, "ood": {"path": "ood.npy", "target": {"path": "oodt.npy"}}'
expect_ok "a file target with an OOD target" "$LEDGER" run -q --json file.json
FRUN=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$FRUN" >frun.json
"$PYTHON3" - <<'PY' && ok "target and OOD-target digests recorded; ood_fvu on both arms" || bad "file target"
import hashlib, json
m = json.load(open("frun.json"))["results"]
assert m["data"]["target"]["sha256"] == hashlib.sha256(open("y.npy", "rb").read()).hexdigest()
assert m["data"]["ood"]["target_sha256"] == hashlib.sha256(open("oodt.npy", "rb").read()).hexdigest()
for c in m["conditions"]:
    for cell in c["cells"]:
        assert "ood_fvu" in cell["metrics"] and "fvu" in cell["metrics"]
        assert "truth_mmcs" not in cell["metrics"]
PY
cat >f.claims <<'EOF'
claim file-tc-ev
  says "transcoder EV recorded"
  study tc-file
  sample ev = cell.explained_variance where transcoder=true
  require n(ev) >= 2
end
EOF
expect_ok "a claim on the file-target run" "$LEDGER" check f.claims
"$PYTHON3" -c 'import numpy as np; a=np.load("y.npy"); a[0,0]+=1; np.save("y.npy", a)'
expect_code 1 "target file changed: STALE" "$LEDGER" check f.claims
grep_out 'STALE +file-tc-ev' "the claim is STALE"
grep_out 'target file .*y.npy changed since run' "naming the target file"
expect_ok "run it again on the new target" "$LEDGER" run -q file.json
expect_ok "the claim is fresh again" "$LEDGER" check f.claims
"$PYTHON3" -c 'import numpy as np; a=np.load("oodt.npy"); a[1,1]+=1; np.save("oodt.npy", a)'
expect_code 1 "OOD target file changed: STALE" "$LEDGER" check f.claims
grep_out 'target file .*oodt.npy changed since run' "naming the OOD target file"

# ---- SAELens export: transcoder layout for ReLU, refused for TopK ----
expect_code 2 "a TopK transcoder is not exported" "$LEDGER" export "$RUN" --format saelens -o exp-topk
grep_err 'cells/transcoder-true/seed-1.safetensors: a topk transcoder has no SAELens layout' "the error names the cell and why"
one_line_err "TopK export refusal: one line"
[ ! -e exp-topk/transcoder-false ] && ok "nothing exported (not even the SAE arm)" || bad "a partial export was written"
fspec relu.json ', "target": {"path": "y.npy"}' ', "l1_coeff": 0.001' tc-relu
sed -i 's/"arch": "topk"/"arch": "relu"/' relu.json
expect_ok "a ReLU transcoder study" "$LEDGER" run -q --json relu.json
RRUN=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
expect_ok "export it" "$LEDGER" export "$RRUN" --format saelens -o exp-relu --hook-name blocks.0.ln2.hook_normalized \
  --hook-name-out blocks.0.hook_mlp_out
"$PYTHON3" - <<'PY' && ok "SAELens transcoder layout: cfg and tensors (bit-identical to the cell)" || bad "transcoder export"
import json, struct, glob
def st(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: (v["shape"], b[8 + n + v["data_offsets"][0]: 8 + n + v["data_offsets"][1]]) for k, v in h.items() if k != "__metadata__"}, h.get("__metadata__", {})
c = json.load(open("exp-relu/transcoder-true/seed-1/cfg.json"))
assert c["architecture"] == "transcoder" and c["apply_b_dec_to_input"] is False, c
assert c["d_in"] == 8 and c["d_out"] == 8 and c["d_sae"] == 16 and "k" not in c
assert c["hook_name"] == "blocks.0.ln2.hook_normalized" and c["metadata"]["ledger_transcoder"] is True
assert c["hook_name_out"] == "blocks.0.hook_mlp_out"
w, _ = st("exp-relu/transcoder-true/seed-1/sae_weights.safetensors")
assert sorted(w) == ["W_dec", "W_enc", "b_dec", "b_enc"] and w["W_dec"][0] == [16, 8] and w["b_dec"][0] == [8]
src = [p for p in glob.glob(".ledger/store/objects/*/*")]
cell = None
for p in src:
    try:
        t, meta = st(p)
    except Exception:
        continue
    if meta.get("condition") == "transcoder=true" and meta.get("seed") == "1" and meta.get("study") == "tc-relu":
        cell = t; assert meta.get("transcoder") == "true"
assert cell is not None
for k in w:
    assert w[k][1] == cell[k][1], k
s = json.load(open("exp-relu/transcoder-false/seed-1/cfg.json"))
assert s["architecture"] == "standard" and s["apply_b_dec_to_input"] is True and "d_out" not in s and "hook_name_out" not in s
PY

# "arch": "transcoder" (the issue's spelling) is shorthand for "arch": "topk" with "transcoder": true
sed 's/"grid": {"transcoder": \[false, true\]}/"grid": {"arch": ["topk", "transcoder"]}/; s/"name": "tc-tiny"/"name": "tc-alias"/' \
    tiny.json >alias.json
grep -q '"arch": \["topk", "transcoder"\]' alias.json || bad "alias.json not made"
expect_ok "arch transcoder: the shorthand runs" "$LEDGER" run -q --json alias.json
ARUN=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
"$LEDGER" show --json "$ARUN" >arun.json
"$PYTHON3" - <<'PY' && ok "arch transcoder = a TopK transcoder: the same cells as transcoder=true" || bad "arch transcoder"
import json
a = {c["id"]: c for c in json.load(open("arun.json"))["results"]["conditions"]}
r = {c["id"]: c for c in json.load(open("run1.json"))["results"]["conditions"]}
assert a["arch=transcoder"]["params"]["arch"] == "topk" and a["arch=transcoder"]["params"]["transcoder"] is True
assert a["arch=topk"]["params"]["transcoder"] is False
for mine, theirs in (("arch=transcoder", "transcoder=true"), ("arch=topk", "transcoder=false")):
    assert [c["metrics"] for c in a[mine]["cells"]] == [c["metrics"] for c in r[theirs]["cells"]], mine
PY

# the shorthand beside "transcoder": false in one grid cell is refused (which won depended on the keys' order)
sed 's/"grid": {"transcoder": \[false, true\]}/"grid": {"arch": ["transcoder"], "transcoder": [false, true]}/' \
    tiny.json >alias-bad.json
grep -q '"arch": \["transcoder"\], "transcoder"' alias-bad.json || bad "alias-bad.json not made"
expect_code 2 "grid: arch transcoder with transcoder false: exit 2" "$LEDGER" run --dry-run alias-bad.json
grep_err 'alias-bad.json: grid: condition arch=transcoder,transcoder=false: "arch": "transcoder" is a transcoder' \
    "the error names the grid cell"

# ---- bad inputs: exit 2, one line naming the file and place, nothing recorded ----
runs_before=$("$LEDGER" log | wc -l)
bad_case() { # DESC DATA_EXTRA SAE_EXTRA PATTERN
  fspec bad.json "$2" "$3" tc-bad
  expect_code 2 "$1: exit 2" "$LEDGER" run -q bad.json
  grep_err "$4" "$1: the error names it"
  one_line_err "$1: one line"
}
bad_case "target with fewer rows" ', "target": {"path": "y599.npy"}' '' 'bad.json: data.target: .*y599.npy has 599 rows, the data has 600'
bad_case "target of another width" ', "target": {"path": "y4.npy"}' '' 'bad.json: data.target: .*y4.npy has d=4, the data has d=8'
bad_case "1-D target" ', "target": {"path": "y1d.npy"}' '' 'y1d.npy'
bad_case "NaN in the target" ', "target": {"path": "ynan.npy"}' '' 'ynan.npy.*(row 17|NaN)'
bad_case "missing target file" ', "target": {"path": "nope.npy"}' '' 'nope.npy'
bad_case "transcoder without a target" '' '' 'bad.json: condition transcoder=true: sae.transcoder needs data.target'
SAE_ARCH='"arch": "transcoder"' bad_case "arch transcoder without a target" '' '' 'bad.json: condition transcoder=.*needs data.target'
SAE_ARCH='"arch": "transformer"' bad_case "an unknown arch" ', "target": {"path": "y.npy"}' '' 'bad.json: sae.arch: must be one of .*transcoder'
SAE_ARCH='"arch": "transcoder", "transcoder": false' bad_case "arch transcoder beside transcoder false" ', "target": {"path": "y.npy"}' '' 'bad.json: sae.transcoder: "arch": "transcoder" is a transcoder, "transcoder": false says'
SAE_ARCH='"transcoder": false, "arch": "transcoder"' bad_case "the same pair, keys the other way round" ', "target": {"path": "y.npy"}' '' 'bad.json: sae.transcoder: "arch": "transcoder" is a transcoder'
bad_case "transcoder not a bool" ', "target": {"path": "y.npy"}' ', "transcoder": 1' 'bad.json: sae.transcoder: must be true or false'
bad_case "synthetic target on a file source" ', "target": {"synthetic": {"seed": 3}}' '' 'bad.json: data.target.synthetic: only data.target of a synthetic source'
bad_case "unknown target key" ', "target": {"path": "y.npy", "tensr": "y"}' '' 'bad.json: data.target.tensr: unknown key'
bad_case "OOD without its target" ', "target": {"path": "y.npy"}, "ood": {"path": "ood.npy"}' '' 'bad.json: data.ood.target: required when a condition is a transcoder'
bad_case "OOD target with other rows" ', "target": {"path": "y.npy"}, "ood": {"path": "ood.npy", "target": {"path": "oodt99.npy"}}' '' 'bad.json: data.ood.target: .*oodt99.npy is \[99, 8\]'
runs_after=$("$LEDGER" log | wc -l)
[ "$runs_before" -eq "$runs_after" ] && ok "nothing recorded by the bad specs" || bad "a bad spec recorded a run"
finish
