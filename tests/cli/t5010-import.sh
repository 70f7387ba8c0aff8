#!/bin/bash
# t5010-import.sh - `ledger import DIR... --study NAME`: the export of a tiny study imported
# back gives pairwise MMCS / matched MCC / shared fraction equal (bit for bit) to the
# original run's pairs; SAEs without seeds in their metadata get seeds by position; SAEs of
# different shapes are not paired; bad folders (missing cfg.json, shape mismatch, truncated
# safetensors, NaN, unsupported architecture, missing JumpReLU threshold) exit 2 with a
# one-line error naming the file and leave the ledger unchanged.
. "$(dirname "$0")/lib-cli.sh"

cat >study.json <<'JSON'
{"format": 1, "name": "tiny-import",
 "data": {"source": "synthetic",
          "synthetic": {"d": 16, "n_features": 32, "n_samples": 2000, "active_mean": 3, "seed": 7}},
 "sae": {"arch": "topk", "d_sae": 32, "k": 4},
 "train": {"steps": 50, "batch": 64},
 "seeds": [1, 2, 3],
 "controls": {"random_init": false}}
JSON
jget() { "$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[int(k)] if isinstance(d,list) else d[k]
print(d)' "$@"; }

expect_ok "init" "$LEDGER" init
expect_ok "run the tiny study" "$LEDGER" run -q --json study.json
RUN=$(jget "$TMP/.out" run_id)
expect_ok "export" "$LEDGER" export "$RUN" -o sae
expect_ok "import the export" "$LEDGER" import --study tiny-reimport --json sae/default/seed-1 sae/default/seed-2 sae/default/seed-3
IMP=$(jget "$TMP/.out" run_id)
"$LEDGER" show --json "$IMP" >imp.json
[ "$(jget imp.json kind)" = "import" ] && ok "recorded with kind import" || bad "kind"
[ "$(jget imp.json results.conditions.0.id)" = "imported" ] && ok "condition 'imported'" || bad "condition id"

# pairs equal to the original run's (same seeds, same metrics, same values)
expect_ok "query original pairs" "$LEDGER" query "SELECT seed, seed_b, metric, value FROM samples WHERE run_id='$RUN' AND unit='pair' ORDER BY seed, seed_b, metric"
cp "$TMP/.out" orig.tsv
expect_ok "query imported pairs" "$LEDGER" query "SELECT seed, seed_b, metric, value FROM samples WHERE run_id='$IMP' AND unit='pair' ORDER BY seed, seed_b, metric"
cp "$TMP/.out" imp.tsv
[ "$(grep -c mmcs orig.tsv)" -ge 9 ] && ok "original run has 3 pairs with MMCS metrics" || bad "original pairs: $(cat orig.tsv)"
diff orig.tsv imp.tsv >/dev/null && ok "imported pair metrics equal the original run's" || { bad "pair metrics differ"; diff orig.tsv imp.tsv | head; }
grep -qE "mcc.*0\.[0-9]" imp.tsv && grep -q shared_frac imp.tsv && ok "matched MCC and shared fraction recorded" || bad "mcc/shared_frac"
"$PYTHON3" - imp.json <<'PY' && ok "outputs are the imported files; seeds from metadata" || bad "import outputs"
import json, sys
m = json.load(open(sys.argv[1]))
names = sorted(o["name"] for o in m["outputs"])
assert names == sorted(f"saes/seed-{s}/{f}" for s in (1, 2, 3) for f in ("cfg.json", "sae_weights.safetensors")), names
assert m["extra"]["import"]["seeds_from"] == "metadata"
c = m["results"]["conditions"][0]
assert [x["seed"] for x in c["cells"]] == [1, 2, 3]
assert len(c["pairs"]) == 3 and len(c["seeds"]) == 3
assert c["params"]["d_in"] == 16 and c["params"]["d_sae"] == 32 and c["params"]["architecture"] == "topk"
PY
expect_ok "verify after import" "$LEDGER" verify

# SAEs from elsewhere: no seed in metadata -> seeds by position; other shapes are not paired
mkdir -p ext/a ext/b ext/c
cp sae/default/seed-1/sae_weights.safetensors ext/a/
cp sae/default/seed-2/sae_weights.safetensors ext/b/
printf '{"architecture": "topk", "d_in": 16, "d_sae": 32, "k": 4, "dtype": "float32"}\n' >ext/a/cfg.json
printf '{"architecture": "topk", "d_in": 16, "d_sae": 32, "k": 4}\n' >ext/b/cfg.json
"$PYTHON3" - <<'PY'
# a JumpReLU SAE of another width (d_sae 8), written by hand in float16
import json, struct
import numpy as np
rng = np.random.default_rng(0)
t = {"W_enc": rng.standard_normal((16, 8)), "b_enc": np.zeros(8), "W_dec": rng.standard_normal((8, 16)),
     "b_dec": np.zeros(16), "threshold": np.full(8, 0.1)}
head, blobs, off = {}, [], 0
for k in sorted(t):
    b = t[k].astype("<f2").tobytes()
    head[k] = {"dtype": "F16", "shape": list(t[k].shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(head).encode()
open("ext/c/sae_weights.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
json.dump({"architecture": "jumprelu", "d_in": 16, "d_sae": 8, "dtype": "float16"}, open("ext/c/cfg.json", "w"))
PY
expect_ok "import external SAEs" "$LEDGER" import --study ext --condition pub --json ext/a ext/b ext/c
cp "$TMP/.out" ext.json
"$PYTHON3" - ext.json <<'PY' && ok "seeds by position, only the same-shape pair" || bad "external import"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["condition"] == "pub" and r["saes"] == 3, r
assert [(p["seed_a"], p["seed_b"]) for p in r["pairs"]] == [(0, 1)], r["pairs"]
PY
expect_ok "pair 0/1 equals seeds 1/2 of the run" "$LEDGER" query "SELECT a.value FROM samples a JOIN samples b ON a.metric=b.metric WHERE a.run_id LIKE '$(jget ext.json run_id)' AND a.unit='pair' AND a.metric='mmcs' AND b.run_id='$RUN' AND b.unit='pair' AND b.seed=1 AND b.seed_b=2 AND a.value=b.value"
[ "$(wc -l <"$TMP/.out")" -eq 2 ] && ok "same MMCS value" || { bad "MMCS differs"; cat "$TMP/.out"; }

# bad folders: exit 2, one line naming the file, ledger unchanged
mk() { mkdir -p "bad/$1"; cp sae/default/seed-1/* "bad/$1/"; }
mk nocfg; rm bad/nocfg/cfg.json
mk noweights; rm bad/noweights/sae_weights.safetensors
mk shape; sed -i 's/"d_sae":[[:space:]]*32/"d_sae": 33/' bad/shape/cfg.json
mk trunc; head -c 3000 sae/default/seed-1/sae_weights.safetensors >bad/trunc/sae_weights.safetensors
mk arch; sed -i 's/"architecture":[[:space:]]*"topk"/"architecture": "gated"/' bad/arch/cfg.json
mk json; printf '{"d_in": 16,' >bad/json/cfg.json
mk big; sed -i 's/"d_in":[[:space:]]*16/"d_in": 100000000/' bad/big/cfg.json
mk nothr; sed -i 's/"architecture":[[:space:]]*"topk"/"architecture": "jumprelu"/' bad/nothr/cfg.json
mk nan; "$PYTHON3" - <<'PY'
import json, struct
p = "bad/nan/sae_weights.safetensors"
b = bytearray(open(p, "rb").read()); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
o = 8 + n + h["W_dec"]["data_offsets"][0] + 4 * 21
b[o:o + 4] = struct.pack("<f", float("inf")); open(p, "wb").write(bytes(b))
PY
TIP=$(git rev-parse ledger)
NRUNS=$("$LEDGER" log | wc -l)
check_bad() { # NAME PATTERN
  expect_code 2 "bad input $1: exit 2" "$LEDGER" import --study bad sae/default/seed-2 "bad/$1"
  one_line_err "bad input $1: one-line error"
  grep_err "$2" "bad input $1: error names the problem"
}
check_bad nocfg "bad/nocfg/cfg.json: missing"
check_bad noweights "bad/noweights/sae_weights.safetensors: missing"
check_bad shape "bad/shape/sae_weights.safetensors: tensor W_enc: shape \[16, 32\] does not match the expected \[16, 33\]"
check_bad trunc "bad/trunc/sae_weights.safetensors"
check_bad arch "bad/arch/cfg.json: architecture: \"gated\" is not supported"
check_bad json "bad/json/cfg.json:1:[0-9]+: malformed JSON"
check_bad big "bad/big/cfg.json: d_in"
check_bad nothr "bad/nothr/sae_weights.safetensors: tensor threshold is missing"
check_bad nan "bad/nan/sae_weights.safetensors: tensor W_dec\[1, 5\] is not finite"
expect_code 2 "missing folder" "$LEDGER" import --study bad bad/none
expect_code 2 "missing --study" "$LEDGER" import sae/default/seed-1
expect_code 2 "--max-elements out of range (was an out-of-range float-to-integer cast)" \
  "$LEDGER" import --study bad --max-elements 1e30 sae/default/seed-1
grep_err "max-elements in \[1, 2\^40\]" "--max-elements range named"
[ "$(git rev-parse ledger)" = "$TIP" ] && [ "$("$LEDGER" log | wc -l)" -eq "$NRUNS" ] && ok "ledger unchanged by bad input" || bad "ledger moved"
expect_ok "verify at the end" "$LEDGER" verify
finish
