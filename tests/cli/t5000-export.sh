#!/bin/bash
# t5000-export.sh - `ledger export RUN --format saelens -o DIR`: a tiny synthetic study is
# run, exported, and the export checked: folder layout, cfg.json keys and metadata (run id,
# source digest), tensors present with SAELens shapes and bit-identical to the run's cell
# files, the export recorded as a run of kind "export", --cell selection, refusals
# (existing export, unknown cell, unknown format, failed digest) with one-line errors.
. "$(dirname "$0")/lib-cli.sh"

cat >study.json <<'JSON'
{"format": 1, "name": "tiny-export",
 "data": {"source": "synthetic",
          "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 3, "seed": 7}},
 "sae": {"arch": "topk", "d_sae": 32, "k": 4},
 "train": {"steps": 50, "batch": 64},
 "seeds": [1, 2],
 "controls": {"random_init": false}}
JSON

jget() { "$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[int(k)] if isinstance(d,list) else d[k]
print(d)' "$@"; }

expect_ok "init" "$LEDGER" init
expect_ok "run the tiny study" "$LEDGER" run -q --json study.json
RUN=$(jget "$TMP/.out" run_id)
[ ${#RUN} -eq 64 ] && ok "run id" || bad "run id '$RUN'"
"$LEDGER" show --json "$RUN" >run.json

expect_ok "export all cells" "$LEDGER" export "$RUN" --format saelens -o out --json
cp "$TMP/.out" export.json
EXP=$(jget export.json run_id)
[ "$(jget export.json source_run)" = "$RUN" ] && ok "export names its source run" || bad "source_run"
for s in 1 2; do
  for f in cfg.json sae_weights.safetensors; do
    [ -s "out/default/seed-$s/$f" ] && ok "out/default/seed-$s/$f written" || bad "out/default/seed-$s/$f missing"
  done
done
[ "$(find out -type f | wc -l)" -eq 4 ] && ok "exactly 4 files exported" || bad "file count $(find out -type f | wc -l)"

# cfg.json: SAELens keys and our provenance
"$PYTHON3" - "$RUN" run.json <<'PY' >check.out 2>&1 && ok "cfg.json keys, metadata and tensors" || { bad "cfg.json / tensors"; cat check.out; }
import json, struct, sys
run_id, manifest = sys.argv[1], json.load(open(sys.argv[2]))
digests = {o["name"]: o["sha256"] for o in manifest["outputs"]}

def read_st(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", {})
    out = {}
    for name, t in head.items():
        a, b = t["data_offsets"]
        assert t["dtype"] == "F32", (path, name, t["dtype"])
        out[name] = (tuple(t["shape"]), raw[8 + n + a:8 + n + b])
    return out, meta

for seed in (1, 2):
    cfg = json.load(open(f"out/default/seed-{seed}/cfg.json"))
    assert cfg["architecture"] == "topk" and cfg["k"] == 4, cfg
    assert cfg["d_in"] == 16 and cfg["d_sae"] == 32, cfg
    assert cfg["dtype"] == "float32" and cfg["device"] == "cpu", cfg
    assert cfg["apply_b_dec_to_input"] is True and cfg["normalize_activations"] == "none", cfg
    md = cfg["metadata"]
    src = f"cells/default/seed-{seed}.safetensors"
    assert md["ledger_source_run"] == run_id, md
    assert md["study"] == "tiny-export" and md["condition"] == "default" and md["seed"] == seed, md
    assert md["source_artifact"] == src and md["source_sha256"] == digests[src], md
    assert md["data_sha256"] == manifest["data_digest"], md
    exp, _ = read_st(f"out/default/seed-{seed}/sae_weights.safetensors")
    assert set(exp) == {"W_enc", "b_enc", "W_dec", "b_dec"}, sorted(exp)  # topk: no threshold
    assert exp["W_enc"][0] == (16, 32) and exp["W_dec"][0] == (32, 16), exp["W_enc"][0]
    assert exp["b_enc"][0] == (32,) and exp["b_dec"][0] == (16,)
    # bit-identical to the run's own cell file (kept in the ledger tree: small output)
    import subprocess
    tree = subprocess.run(["git", "ls-tree", "-r", "--name-only", "ledger"], capture_output=True, text=True).stdout
    path = [p for p in tree.split() if p.endswith("files/" + src) and run_id[:12] in p][0]
    blob = subprocess.run(["git", "show", "ledger:" + path], capture_output=True).stdout
    open("cell.st", "wb").write(blob)
    cell, cmeta = read_st("cell.st")
    assert cmeta["architecture"] == "topk" and cmeta["seed"] == str(seed), cmeta
    for name in exp:
        assert exp[name] == cell[name], name
print("ok")
PY

# the export is a run of kind "export" whose outputs are the exported files
"$LEDGER" show --json "$EXP" >exp-manifest.json
[ "$(jget exp-manifest.json kind)" = "export" ] && ok "recorded with kind export" || bad "kind $(jget exp-manifest.json kind)"
[ "$(jget exp-manifest.json extra.export.source_run)" = "$RUN" ] && ok "extra.export.source_run" || bad "extra.export"
"$PYTHON3" - exp-manifest.json <<'PY' && ok "export outputs = the exported files, digests match" || bad "export outputs"
import hashlib, json, sys
m = json.load(open(sys.argv[1]))
names = sorted(o["name"] for o in m["outputs"])
want = sorted(f"default/seed-{s}/{f}" for s in (1, 2) for f in ("cfg.json", "sae_weights.safetensors"))
assert names == want, names
for o in m["outputs"]:
    assert hashlib.sha256(open("out/" + o["name"], "rb").read()).hexdigest() == o["sha256"], o
PY
expect_ok "verify after export" "$LEDGER" verify

# refusals leave the ledger unchanged
TIP=$(git rev-parse ledger)
expect_code 2 "existing export is not overwritten" "$LEDGER" export "$RUN" -o out
one_line_err "one-line error for an existing export"
grep_err "out/default/seed-1/cfg.json: exists already" "error names the file"
expect_code 2 "unknown cell" "$LEDGER" export "$RUN" -o out2 --cell nope/1
one_line_err "one-line error for an unknown cell"
expect_code 2 "unknown seed" "$LEDGER" export "$RUN" -o out2 --cell default/9
expect_code 2 "unknown format" "$LEDGER" export "$RUN" -o out2 --format hdf5
expect_code 2 "missing -o" "$LEDGER" export "$RUN"
expect_code 2 "unknown run" "$LEDGER" export 0123456789ab -o out2
[ "$(git rev-parse ledger)" = "$TIP" ] && ok "ledger unchanged by refusals" || bad "ledger moved"
[ ! -e out2 ] && ok "nothing written by refusals" || bad "out2 exists"

# --cell selects, --force overwrites
expect_ok "export one cell" "$LEDGER" export "$RUN" -o out3 --cell default/2
[ -f out3/default/seed-2/cfg.json ] && [ ! -e out3/default/seed-1 ] && ok "only seed 2 exported" || bad "--cell selection"
expect_ok "--cell repeated" "$LEDGER" export "$RUN" -o out4 -c default/1 --cell=default/2
[ "$(find out4 -name cfg.json | wc -l)" -eq 2 ] && ok "both cells exported" || bad "repeated --cell"
expect_ok "--force overwrites" "$LEDGER" export "$RUN" -o out --force
cmp -s out/default/seed-1/sae_weights.safetensors out4/default/seed-1/sae_weights.safetensors && ok "exports are deterministic" || bad "exports differ"

# a corrupted SECOND cell: every source is checked before the first file is written, so
# not even seed 1 (which comes first and is intact) is exported
OBJ2=$("$PYTHON3" -c 'import json,sys; m=json.load(open("run.json")); print([o["sha256"] for o in m["outputs"] if o["name"]=="cells/default/seed-2.safetensors"][0])')
P2=.ledger/store/objects/${OBJ2:0:2}/${OBJ2:2}
if [ -f "$P2" ]; then
  cp "$P2" seed2.bak
  chmod u+w "$P2" && printf 'X' | dd of="$P2" bs=1 seek=200 conv=notrunc 2>/dev/null
  TIP=$(git rev-parse ledger)
  expect_code 1 "corrupted second source object: exit 1" "$LEDGER" export "$RUN" -o out6
  grep_err "seed-2.safetensors: stored object .* does not match its digest" "error names the corrupted cell"
  [ "$(git rev-parse ledger)" = "$TIP" ] && [ ! -e out6 ] && ok "nothing exported, not even the intact first cell" || bad "partial export: $(find out6 -type f 2>/dev/null | tr '\n' ' ')"
  cp seed2.bak "$P2" && chmod a-w "$P2"
else
  bad "store object $P2 not found"
fi

# a corrupted store object is detected before anything is exported
OBJ=$("$PYTHON3" -c 'import json,sys; m=json.load(open("run.json")); print([o["sha256"] for o in m["outputs"] if o["name"]=="cells/default/seed-1.safetensors"][0])')
P=.ledger/store/objects/${OBJ:0:2}/${OBJ:2}
if [ -f "$P" ]; then
  chmod u+w "$P" && printf 'X' | dd of="$P" bs=1 seek=200 conv=notrunc 2>/dev/null
  TIP=$(git rev-parse ledger)
  expect_code 1 "corrupted source object: exit 1" "$LEDGER" export "$RUN" -o out5 --cell default/1
  one_line_err "one-line error for a corrupted object"
  grep_err "does not match its digest" "error says the digest does not match"
  [ "$(git rev-parse ledger)" = "$TIP" ] && [ ! -e out5/default/seed-1/cfg.json ] && ok "nothing exported or recorded" || bad "export went ahead"
else
  bad "store object $P not found"
fi
finish
