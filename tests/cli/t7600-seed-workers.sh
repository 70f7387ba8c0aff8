#!/usr/bin/env bash
# t7600: seeds trained side by side (engine/schedule.c: one worker thread per
# OpenMP thread, each seed alone at one thread, idle cores handed to the last
# seeds) record exactly what the in-order trainer records: every output of
# the run (weights, condition files, results.json) has the same digest with
# 2 and 3 workers as with LEDGER_SEED_WORKERS=1 at one thread, for the
# sparse (topk, batchtopk, matryoshka) and dense (relu, jumprelu) paths, with
# more seeds than workers; the run's progress still reaches stderr; and a
# divergence reports the first seed in study order, as one after another.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies
cat > studies/workers.json <<JSON
{"format": 1, "name": "workers",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 48, "n_samples": 4000, "active_mean": 3, "seed": 5}},
 "sae": {"d_sae": 64, "k": 4, "l1_coeff": 1.0, "l0_coeff": 0.3, "jumprelu_threshold": 0.3, "jumprelu_bandwidth": 0.05},
 "train": {"steps": 50, "batch": 128, "lr": 0.004, "warmup_steps": 5, "dead_after": 640},
 "grid": {"arch": ["relu", "topk", "batchtopk", "jumprelu", "matryoshka"]}, "seeds": [3, 1, 4, 1592, 65]}
JSON

last_run() { "$LEDGER" log --json | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)[-1]["run_id"])'; }
# every output of the last run as "name sha256", sorted
outputs() { "$LEDGER" show "$(last_run)" --json | "$PYTHON3" -c '
import json, sys
for x in sorted(json.load(sys.stdin)["outputs"], key=lambda o: o["name"]):
    print(x["name"], x["sha256"])'; }

expect_ok "in order, one thread" env OMP_NUM_THREADS=1 LEDGER_SEED_WORKERS=1 "$LEDGER" run -q --backend cpu studies/workers.json
outputs > "$TMP/one.txt"
n=$(grep -c "safetensors" "$TMP/one.txt")
[ "$n" = 25 ] && ok "25 weight files (5 archs x 5 seeds)" || bad "$n weight files"
for w in 2 3; do
    expect_ok "$w workers" env OMP_NUM_THREADS=$w "$LEDGER" run --backend cpu studies/workers.json
    grep_err "^ledger run: \[50/50 cells\]" "$w workers: progress on stderr (a line per finished cell, the last always)"
    outputs > "$TMP/w$w.txt"
    if cmp -s "$TMP/one.txt" "$TMP/w$w.txt"; then ok "$w workers: every output identical to in-order training"
    else bad "$w workers: outputs differ"; diff "$TMP/one.txt" "$TMP/w$w.txt" | head; fi
done
# in-order at two OpenMP threads (the multi-seed trainer): the same again
expect_ok "in order, two threads" env OMP_NUM_THREADS=2 LEDGER_SEED_WORKERS=1 "$LEDGER" run -q --backend cpu studies/workers.json
outputs > "$TMP/seq2.txt"
cmp -s "$TMP/one.txt" "$TMP/seq2.txt" && ok "in-order at 2 threads identical" || bad "in-order at 2 threads differs"

# ---- divergence: the first seed in order that diverges is reported ----------
"$PYTHON3" -c '
import numpy as np
x = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
x[2542, :] = 3e38
np.save("onebad.npy", x)' || { bad "data"; finish; }
cat > studies/onebad.json <<JSON
{"name": "onebad", "data": {"source": "file", "path": "../onebad.npy"}, "sae": {"arch": "topk", "d_sae": 16, "k": 2},
 "train": {"steps": 20, "batch": 32, "b_dec_init": "zero"}, "seeds": [1, 2, 3, 4, 5, 6, 7, 8]}
JSON
expect_code 1 "in order: the run diverges" env OMP_NUM_THREADS=1 LEDGER_SEED_WORKERS=1 "$LEDGER" run -q --backend cpu studies/onebad.json
want=$(grep -oE "seed [0-9]+: training diverged at step [0-9]+" "$TMP/.err")
outputs > "$TMP/bad1.txt"
[ -n "$want" ] && ok "in order: $want" || { bad "no divergence message"; cat "$TMP/.err"; }
expect_code 1 "2 workers: the run diverges" env OMP_NUM_THREADS=2 "$LEDGER" run -q --backend cpu studies/onebad.json
grep_err "$want" "2 workers: the same seed and step ($want)"
outputs > "$TMP/bad2.txt"
cmp -s "$TMP/bad1.txt" "$TMP/bad2.txt" && ok "2 workers: the same outputs recorded for the failed run" ||
    { bad "2 workers: failed-run outputs differ"; diff "$TMP/bad1.txt" "$TMP/bad2.txt" | head; }
finish
