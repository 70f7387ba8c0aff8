#!/usr/bin/env bash
# t3110: ledger verify --recompute. On honest runs every pair, per-seed and cell
# metric recomputed from the stored weights and the data equals the recorded
# value exactly. A forged copy of a run recorded with 'ledger record --kind run
# --results' (fully consistent chain, no key involved) passes plain verify but
# fails --recompute naming the run, condition, pair/seed and metric; so do a
# forged cell metric, an invented metric, a dropped pair and a wrong data digest.
# A store object or data file absent locally is a warning ("not recomputed"),
# an error under --require-artifacts.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init --small-output-max 4096 >/dev/null  # cell files live only in the store || { bad "init"; finish; }
mkdir -p studies
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 4000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32}, "train": {"steps": 100, "batch": 64, "lr": 0.005, "warmup_steps": 10},
 "grid": {"k": [2, 8]}, "seeds": [1, 2, 3]}
JSON
cat > studies/archs.json <<'JSON'
{"format": 1, "name": "archs",
 "data": {"source": "synthetic", "synthetic": {"d": 12, "n_features": 24, "n_samples": 3000, "active_mean": 2, "seed": 5}},
 "sae": {"d_sae": 24, "k": 3, "prefixes": [6, 12, 24]}, "train": {"steps": 60, "batch": 32, "b_dec_init": "median"},
 "grid": {"arch": ["relu", "batchtopk", "jumprelu", "matryoshka"]}, "seeds": [4, 9]}
JSON
expect_ok "run tiny" "$LEDGER" run -q --backend cpu studies/tiny.json
run1=$(awk '{print $2}' "$TMP/.out")
expect_ok "run archs" "$LEDGER" run -q --backend cpu studies/archs.json
expect_ok "honest ledger: --recompute passes" "$LEDGER" verify --no-claims --recompute
grep_err "recomputed 2 runs: 28 cells, 20 pairs, [0-9]+ values compared, 0 not recomputed" "every cell and pair recomputed"

forge() { # RUN PYTHON-STATEMENTS (on the results r): records a forged copy, prints its id
  local run=$1 code=$2
  rm -rf art && mkdir art
  "$LEDGER" show --json "$run" > m.json || return 1
  "$PYTHON3" - "$code" ${3:+"$3"} <<'PY' || return 1
import json, os, shutil, sys
m = json.load(open("m.json"))
for o in m["outputs"]:
    dst = os.path.join("art", o["name"]); os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(".ledger/store/objects/%s/%s" % (o["sha256"][:2], o["sha256"][2:]), dst)
r = m["results"]
exec(sys.argv[1])
json.dump(r, open("forged.json", "w")); json.dump(m["spec"], open("spec.json", "w"))
open("data_digest", "w").write(sys.argv[2] if len(sys.argv) > 2 else m["data_digest"])
PY
  (cd art && "$LEDGER" record --kind run --study "${FORGE_STUDY:-tiny}" --spec ../spec.json --results ../forged.json \
     --data-digest "$(cat ../data_digest)" --json $(find . -type f | sed 's|^\./||' | sort)) \
    | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)["run_id"])'
}
cond() { echo "r['conditions'][$1]"; }

# each forgery in its own ledger state: record it, check, then drop it by resetting the branch
tip=$(git rev-parse ledger)
check_forgery() { # DESC PYTHON PATTERN
  local f; f=$(forge "$run1" "$2")
  [ -n "$f" ] || { bad "$1: forge failed"; return; }
  expect_ok "$1: plain verify passes" "$LEDGER" verify --no-claims
  expect_code 1 "$1: --recompute fails" "$LEDGER" verify --no-claims --recompute
  grep_out "^error: recompute: run [0-9]+-${f:0:12}: $3" "$1: named"
  git update-ref refs/heads/ledger "$tip" && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1
}
check_forgery "pair mmcs" "$(cond 0)['pairs'][0]['metrics']['mmcs'] = 0.99" \
  "condition k=2 pair 1/2: mmcs: recorded 0.99, recomputed 0\.[0-9]+$"
check_forgery "random-control pair" "$(cond 2)['pairs'][2]['metrics']['mcc'] += 1e-12" \
  "condition k=2,control=random pair 2/3: mcc: recorded [0-9.]+, recomputed [0-9.]+$"
check_forgery "seed mean" "$(cond 1)['seeds'][1]['metrics']['mmcs_mean'] = 0.5" \
  "condition k=8 seed mean of 2: mmcs_mean: recorded 0.5, recomputed"
check_forgery "cell fvu" "$(cond 1)['cells'][0]['metrics']['fvu'] = 0.01" \
  "condition k=8 seed 1: fvu: recorded 0.01, recomputed"
check_forgery "invented metric" "$(cond 0)['pairs'][1]['metrics']['pwmcc_adj'] = 0.9" \
  "condition k=2 pair 1/3: pwmcc_adj: recorded, but the engine computes no such metric"
check_forgery "dropped pair" "del $(cond 0)['pairs'][2]" \
  "condition k=2: 2 pairs recorded, the spec gives 3"

# the evidence of one study filed under another study's name (claims select by study)
f=$(FORGE_STUDY=tiny-k4 forge "$run1" "r['study'] = 'tiny-k4'")
expect_code 1 "renamed study: --recompute fails" "$LEDGER" verify --no-claims --recompute
grep_out "run [0-9]+-${f:0:12}: recorded as study \"tiny-k4\" \(results: \"tiny-k4\"\), but the embedded spec is \"tiny\"" "names both names"
expect_code 1 "renamed study: replay fails" "$LEDGER" replay -q --cells 1 "$f"
grep_out "^mismatch: spec: run ${f:0:12}: recorded as study" "replay names it too"
git update-ref refs/heads/ledger "$tip" && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1

f=$(forge "$run1" "" 0000000000000000000000000000000000000000000000000000000000000000)
expect_code 1 "wrong data digest: --recompute fails" "$LEDGER" verify --no-claims --recompute
grep_out "data digest: recorded 0{64}, the spec's data has [0-9a-f]{64}" "names both digests"
git update-ref refs/heads/ledger "$tip" && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1

# a missing store object: warning, error with --require-artifacts
obj=$("$LEDGER" show --json "$run1" | "$PYTHON3" -c 'import json,sys; print([o["sha256"] for o in json.load(sys.stdin)["outputs"] if o["name"]=="cells/k-2/seed-1.safetensors"][0])')
mv ".ledger/store/objects/${obj:0:2}/${obj:2}" obj.saved
"$LEDGER" verify --no-claims --no-objects --recompute >"$TMP/.out" 2>"$TMP/.err"; rc=$?
[ $rc = 0 ] && ok "missing object: a warning only" || bad "missing object: exit $rc"
grep_out "^warning: recompute: run 1-[0-9a-f]{12}: cells/k-2/seed-1.safetensors: not recomputed: missing from the local store" "names the object"
grep_err "[1-9][0-9]* not recomputed" "counted as not recomputed"
expect_code 1 "missing object with --require-artifacts" "$LEDGER" verify --no-claims --no-objects --recompute --require-artifacts
mv obj.saved ".ledger/store/objects/${obj:0:2}/${obj:2}"

# file data: recomputed when present with the recorded digest, else not recomputed (warning)
"$PYTHON3" -c 'import numpy as np; np.save("acts.npy", np.random.default_rng(2).normal(size=(1200, 8)).astype(np.float32))'
cat > studies/file.json <<'JSON'
{"format": 1, "name": "filedata", "data": {"source": "file", "path": "../acts.npy"},
 "sae": {"arch": "topk", "d_sae": 16, "k": 2}, "train": {"steps": 30, "batch": 32}, "seeds": [1, 2]}
JSON
expect_ok "run on a data file" "$LEDGER" run -q --backend cpu studies/file.json
expect_ok "file data: recomputed" "$LEDGER" verify --no-claims --recompute
grep_err "recomputed 3 runs: 32 cells, 22 pairs, [0-9]+ values compared, 0 not recomputed" "file-data cells recomputed too"
mv acts.npy acts.saved
expect_ok "file data missing: warning" "$LEDGER" verify --no-claims --recompute
grep_out "^warning: recompute: run 3-[0-9a-f]{12}: cell metrics: not recomputed: .*acts.npy: data file missing" "names the data file"
mv acts.saved acts.npy
# imports: pairs recomputed from the stored SAELens weights with the recorded matching options
expect_ok "export" "$LEDGER" export "$run1" -o sae --cell k=2
expect_ok "import with a non-default threshold" "$LEDGER" import --study imp --shared-threshold 0.3 --json sae/k-2/seed-1 sae/k-2/seed-2 sae/k-2/seed-3
imp=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
expect_ok "honest import: --recompute passes" "$LEDGER" verify --no-claims --recompute
grep_err "recomputed 4 runs: 32 cells, 25 pairs" "the import's 3 pairs recomputed"
tip=$(git rev-parse ledger)
"$LEDGER" show --json "$imp" > mi.json
rm -rf iart && mkdir iart && "$PYTHON3" - <<'PY'
import json, os, shutil
m = json.load(open("mi.json"))
for o in m["outputs"]:
    dst = os.path.join("iart", o["name"]); os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(".ledger/store/objects/%s/%s" % (o["sha256"][:2], o["sha256"][2:]), dst)
r = m["results"]; r["conditions"][0]["pairs"][0]["metrics"]["shared_frac"] = 1.0
json.dump(r, open("iforged.json", "w"))
PY
expect_ok "forged import recorded" sh -c 'cd iart && "$LEDGER" record --kind import --study imp --results ../iforged.json --json $(find . -type f | sed "s|^\./||" | sort)'
fi=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
expect_code 1 "forged import: --recompute fails" "$LEDGER" verify --no-claims --recompute
grep_out "^error: recompute: run [0-9]+-${fi:0:12}: import: extra.import.saes or the results' condition is missing" "an import without its import record is named"
git update-ref refs/heads/ledger "$tip" && "$LEDGER" reindex --accept-rewrite >/dev/null 2>&1

expect_ok "verify --recompute --json" "$LEDGER" verify --no-claims --recompute --json
"$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] and not r["problems"], r' "$TMP/.out" \
  && ok "JSON ok" || bad "JSON"
finish
