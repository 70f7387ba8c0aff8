#!/usr/bin/env bash
# t2010: seed-batched training in `ledger run` (engine/run.c trains all seeds of
# a condition in one multi-seed trainer) gives per seed exactly what a run of
# that seed alone gives: the same weight digests for every architecture, and,
# when seeds diverge, the failure of one-after-another training: the first
# seed in study order that diverges (even when a later seed diverged at an
# earlier step), at its step, with the weights of the seeds before it recorded
# and nothing of the seeds after it.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies

last_run() { "$LEDGER" log --json | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)[-1]["run_id"])'; }
# digest NAME: sha256 of output NAME of the last run ("-" when absent)
digest() { "$LEDGER" show "$(last_run)" --json | "$PYTHON3" -c '
import json, sys
o = {x["name"]: x["sha256"] for x in json.load(sys.stdin)["outputs"]}
print(o.get(sys.argv[1], "-"))' "$1"; }

# ---- every architecture: seeds [1, 2, 3] together vs seed 2 alone -----------
# one study name (it is in the weights' metadata), so one study file (one
# study, one name): each step rewrites it before running it
spec() { # spec LABEL SEEDS
cat > "studies/arch5.json" <<JSON
{"format": 1, "name": "arch5",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 48, "n_samples": 3000, "active_mean": 2, "seed": 4}},
 "sae": {"d_sae": 48, "k": 3, "l1_coeff": 1.0, "l0_coeff": 0.3, "jumprelu_threshold": 0.3, "jumprelu_bandwidth": 0.05},
 "train": {"steps": 60, "batch": 64, "lr": 0.004, "warmup_steps": 5, "dead_after": 500},
 "grid": {"arch": ["relu", "topk", "batchtopk", "jumprelu", "matryoshka"]}, "seeds": $2}
JSON
}
spec three "[1, 2, 3]"
expect_ok "3 seeds together" "$LEDGER" run -q --backend cpu studies/arch5.json
for a in relu topk batchtopk jumprelu matryoshka; do eval "d3_$a=$(digest cells/arch-$a/seed-2.safetensors)"; done
spec two "[2]"
expect_ok "seed 2 alone" "$LEDGER" run -q --backend cpu studies/arch5.json
for a in relu topk batchtopk jumprelu matryoshka; do
    d1=$(digest cells/arch-$a/seed-2.safetensors)
    eval "d3=\$d3_$a"
    [ "$d1" != "-" ] && [ "$d1" = "$d3" ] && ok "$a: seed 2 weights identical together and alone" ||
        bad "$a: seed 2 weights differ ($d3 together, $d1 alone)"
done

# ---- divergence: one overflowing row, met by each seed at its own step --------
"$PYTHON3" -c '
import numpy as np
x = np.random.default_rng(0).normal(size=(3000, 8)).astype(np.float32)
x[2542, :] = 3e38
np.save("onebad.npy", x)' || { bad "data"; finish; }
bad_spec() { # bad_spec LABEL SEEDS (one study name, one file: see spec)
cat > "studies/onebad.json" <<JSON
{"name": "onebad", "data": {"source": "file", "path": "../onebad.npy"}, "sae": {"arch": "topk", "d_sae": 16, "k": 2},
 "train": {"steps": 20, "batch": 32, "b_dec_init": "zero"}, "seeds": $2}
JSON
}
# each seed alone: its divergence step ("-" = trains to the end) and weights
first=""; first_step=""; earlier_later=0
for s in 1 2 3 4 5 6 7 8; do
    bad_spec "alone$s" "[$s]"
    "$LEDGER" run -q --backend cpu studies/onebad.json >"$TMP/.out" 2>"$TMP/.err"
    st=$(grep -oE "training diverged at step [0-9]+" "$TMP/.err" | awk '{print $5}')
    eval "step_$s=${st:--}"
    eval "w_$s=$(digest cells/default/seed-$s.safetensors)"
    if [ -n "$st" ] && [ -z "$first" ]; then first=$s; first_step=$st;
    elif [ -n "$st" ] && [ "$st" -lt "${first_step:-0}" ]; then earlier_later=1; fi
done
[ -n "$first" ] && ok "seed $first diverges alone at step $first_step" || { bad "no seed diverges alone"; finish; }
[ $earlier_later = 1 ] && ok "a later seed diverges at an earlier step (the redo path is exercised)" ||
    bad "no later seed diverges earlier: the test no longer exercises the redo path"
bad_spec together "[1, 2, 3, 4, 5, 6, 7, 8]"
expect_code 1 "8 seeds together: the run diverges" "$LEDGER" run -q --backend cpu studies/onebad.json
grep_err "condition default seed $first: training diverged at step $first_step: loss is" \
    "the failure names seed $first at step $first_step, as one after another"
for s in 1 2 3 4 5 6 7 8; do
    got=$(digest cells/default/seed-$s.safetensors)
    if [ "$s" -lt "$first" ]; then
        eval "want=\$w_$s"
        [ "$got" != "-" ] && [ "$got" = "$want" ] && ok "seed $s (before the failure): recorded, as alone" ||
            bad "seed $s: $got together, $want alone"
    else
        [ "$got" = "-" ] && ok "seed $s (from the failure on): no weights" || bad "seed $s: weights recorded ($got)"
    fi
done
finish
