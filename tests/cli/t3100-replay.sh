#!/usr/bin/env bash
# t3100: ledger replay. A recorded run replays bit-identically (every cell, and
# deterministic samples of cells that train only their own seed, for all five
# architectures); a forged results value with a fully consistent chain
# (recorded through 'ledger record --kind run', which recomputes the id and the
# chain) passes plain verify but is caught by replay (exit 1, naming the metric);
# a swapped weights file is caught; a changed or missing data file, another
# backend, a run of another kind are refused (exit 2); nothing is recorded.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 4000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32}, "train": {"steps": 150, "batch": 64, "lr": 0.005, "warmup_steps": 10},
 "grid": {"k": [2, 8]}, "seeds": [1, 2, 3]}
JSON
cat > studies/archs.json <<'JSON'
{"format": 1, "name": "archs",
 "data": {"source": "synthetic", "synthetic": {"d": 12, "n_features": 24, "n_samples": 3000, "active_mean": 2, "seed": 5}},
 "sae": {"d_sae": 24, "k": 3, "prefixes": [6, 12, 24]}, "train": {"steps": 80, "batch": 32, "lr": 0.004, "warmup_steps": 5},
 "grid": {"arch": ["relu", "topk", "batchtopk", "jumprelu", "matryoshka"]}, "seeds": [1, 2, 3],
 "controls": {"random_init": false}}
JSON

expect_ok "run tiny" "$LEDGER" run -q --backend cpu studies/tiny.json
run1=$(awk '{print $2}' "$TMP/.out")
expect_ok "run archs" "$LEDGER" run -q --backend cpu studies/archs.json
run2=$(awk '{print $2}' "$TMP/.out")
nruns=$("$LEDGER" log | wc -l)

# ---- honest runs replay bit for bit ------------------------------------------------
expect_ok "full replay matches" "$LEDGER" replay -q "$run1"
grep_out "^replay of run $run1 on cpu: 12 of 12 cells, 15 artifacts and [0-9]+ metric values compared: all match$" \
  "every artifact (15) and metric compared"
expect_ok "full replay --json" "$LEDGER" replay -q --json "$run1"
"$PYTHON3" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["ok"] and r["mismatches"]==[] and r["cells_replayed"]==12 and r["conditions_full"]==4 and r["values_compared"]>100, r' "$TMP/.out" \
  && ok "JSON: ok, 4 full conditions" || bad "JSON result"
expect_ok "replay --cells 2" "$LEDGER" replay -q --cells 2 "$run1"
grep_out "2 of 12 cells, 2 artifacts and [0-9]+ metric values compared: all match" "sample of 2 trained cells matches"
expect_ok "replay one cell" "$LEDGER" replay --cells 1 --seed 7 "$run1"
grep_err "\[1/1 cells\] k=[28] seed [123] done" "one cell replayed: only its seed trained"
grep_out "1 of 12 cells, 1 artifacts .*all match" "single-seed training is bit-identical to the seed-batched run"
# the sample is a function of (run id, S): the same S gives the same cells, other S others
for s in 0 1 2 3 4; do "$LEDGER" replay -q --json --cells 2 --seed $s "$run1" | "$PYTHON3" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["cells"]))'; done > samples
"$LEDGER" replay -q --json --cells 2 --seed 0 "$run1" | "$PYTHON3" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["cells"]))' > sample0
[ "$(head -1 samples)" = "$(cat sample0)" ] && ok "same S, same sample" || bad "sample not deterministic"
[ "$(sort -u samples | wc -l)" -gt 1 ] && ok "other S, other samples" || bad "S does not change the sample"
expect_ok "all five architectures replay" "$LEDGER" replay -q "$run2"
grep_out "15 of 15 cells, .*all match" "relu/topk/batchtopk/jumprelu/matryoshka bit-identical"
for s in 1 2 3; do
  expect_ok "archs --cells 4 --seed $s" "$LEDGER" replay -q --cells 4 --seed $s "$run2"
  grep_out "4 of 15 cells, [4-9] artifacts .*all match" "sampled cells of every architecture bit-identical (S=$s)"
done
[ "$("$LEDGER" log | wc -l)" = "$nruns" ] && ok "replay records nothing" || bad "replay recorded a run"
ls ../repo/.ledger/tmp 2>/dev/null | grep -q replay- && bad "replay left its staging folder" || ok "staging folder removed"

# ---- a forged number with a consistent chain ---------------------------------------
# forge RUN PYTHON-STATEMENTS: record a copy of RUN (same spec, data digest, outputs)
# whose results (r) and output files (dir "art") the statements may change.
forge() {
  local run=$1 code=$2
  rm -rf art forged.json spec.json && mkdir art
  "$LEDGER" show --json "$run" > m.json || return 1
  "$PYTHON3" - "$code" <<'PY' || return 1
import json, os, shutil, sys
m = json.load(open("m.json"))
for o in m["outputs"]:
    src = ".ledger/store/objects/%s/%s" % (o["sha256"][:2], o["sha256"][2:])
    dst = os.path.join("art", o["name"]); os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    shutil.copyfile(src, dst)
r = m["results"]
exec(sys.argv[1])
json.dump(r, open("forged.json", "w"))
json.dump(m["spec"], open("spec.json", "w"))
open("data_digest", "w").write(m["data_digest"])
PY
  (cd art && "$LEDGER" record --kind run --study "$(cd .. && "$PYTHON3" -c 'import json; print(json.load(open("m.json"))["study"])')" \
     --spec ../spec.json --results ../forged.json --data-digest "$(cat ../data_digest)" --json $(find . -type f | sed 's|^\./||' | sort)) \
    | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)["run_id"])'
}
forged=$(forge "$run1" 'r["conditions"][0]["pairs"][0]["metrics"]["mmcs"] = 0.99')
[ -n "$forged" ] && ok "forged copy recorded ($forged)" || bad "forge failed"
expect_ok "plain verify cannot tell (the chain is consistent)" "$LEDGER" verify --no-claims
expect_code 1 "replay catches the forged value" "$LEDGER" replay -q "$forged"
grep_out "^mismatch: metric: condition k=2: pair 1/2: mmcs: recorded 0.99, replayed 0\.[0-9]+$" "names condition, pair, metric, both values"
grep_out "^mismatch: run: run ${forged:0:12}: no backend recorded" "a 'run' without a backend is not from 'ledger run'"
grep_out "MISMATCH$" "summary says MISMATCH"

# a weights file swapped for another seed's (results left as recorded)
swapped=$(forge "$run1" 'shutil.copyfile("art/cells/k-2/seed-1.safetensors", "art/cells/k-2/seed-2.safetensors")')
expect_code 1 "replay catches a swapped weights file" "$LEDGER" replay -q "$swapped"
grep_out "^mismatch: artifact: cells/k-2/seed-2.safetensors: recorded [0-9a-f]{64}, replayed [0-9a-f]{64}$" "names the artifact and both digests"

# ---- refused (exit 2) ----------------------------------------------------------------
expect_code 2 "another backend is refused" "$LEDGER" replay -q --backend cuda "$run1"
grep_err "recorded on the cpu backend; digests are only comparable on the same backend" "says why"
one_line_err "one-line error"
expect_code 2 "bad --cells" "$LEDGER" replay --cells -1 "$run1"
echo x > note.txt
expect_ok "record a non-run" "$LEDGER" record --study notes --json note.txt
rec=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$TMP/.out")
expect_code 2 "a run of kind record is refused" "$LEDGER" replay "$rec"
grep_err "kind \"record\": only runs made by 'ledger run'" "names the kind"
expect_code 2 "unknown run" "$LEDGER" replay ffffffff

# file data: present and unchanged replays; changed or missing is refused naming file and digests
"$PYTHON3" -c 'import numpy as np; np.save("acts.npy", np.random.default_rng(1).normal(size=(1500, 8)).astype(np.float32))'
cat > studies/file.json <<'JSON'
{"format": 1, "name": "filedata", "data": {"source": "file", "path": "../acts.npy"},
 "sae": {"arch": "topk", "d_sae": 16, "k": 2}, "train": {"steps": 40, "batch": 32}, "seeds": [1, 2]}
JSON
expect_ok "run on a data file" "$LEDGER" run -q --backend cpu studies/file.json
run3=$(awk '{print $2}' "$TMP/.out")
expect_ok "file-data run replays" "$LEDGER" replay -q "$run3"
grep_out "all match" "file data replay matches"
want=$(sha256sum acts.npy | cut -c1-64)
cp acts.npy acts.orig
"$PYTHON3" -c 'import numpy as np; x=np.load("acts.npy"); x[3,3]+=1; np.save("acts.npy", x)'
got=$(sha256sum acts.npy | cut -c1-64)
expect_code 2 "changed data file refused" "$LEDGER" replay -q "$run3"
grep_err "acts.npy: data file hashes to $got, the run recorded $want" "names the file and both digests"
rm acts.npy
expect_code 2 "missing data file refused" "$LEDGER" replay -q "$run3"
grep_err "acts.npy: data file missing \(recorded data digest $want\)" "names the missing file"
mv acts.orig acts.npy
expect_ok "verify still passes" "$LEDGER" verify --no-claims
finish
