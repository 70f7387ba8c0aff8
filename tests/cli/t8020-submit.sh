#!/usr/bin/env bash
# t8020: `ledger submit --slurm` without a cluster: a stand-in `sbatch` on
# PATH records its arguments and prints job ids as `sbatch --parsable` does.
# Checks the two scripts (array 0..N-1, the shard expression, the #SBATCH
# pass-through lines, afterok on the array's id), --dry-run, --json, bad
# options (exit 2, nothing written) and a failing sbatch (exit 3). Then runs
# the written scripts by hand as Slurm would (SLURM_ARRAY_TASK_ID=0..N-1,
# then the gather) and checks the run is recorded.
. "$(dirname "$0")/lib-cli.sh"

mkdir bin
cat > bin/sbatch <<'SH'
#!/bin/bash
echo "$*" >> "$SBATCH_LOG"
[ -n "${SBATCH_FAIL:-}" ] && { echo "sbatch: error: Batch job submission failed" >&2; exit 1; }
n=$(wc -l < "$SBATCH_LOG")
echo "$((4000 + n));cluster"
SH
chmod +x bin/sbatch
export PATH=$TMP/bin:$PATH SBATCH_LOG=$TMP/sbatch.log

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null && mkdir studies || { bad "init"; finish; }
cat > studies/s.json <<'JSON'
{"format": 1, "name": "submitted",
 "data": {"source": "synthetic", "synthetic": {"d": 8, "n_features": 16, "n_samples": 1500, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 16},
 "train": {"steps": 60, "batch": 32, "lr": 0.004},
 "grid": {"k": [1, 2, 3, 4]}, "seeds": [1, 2]}
JSON

expect_code 2 "no --slurm exits 2" "$LEDGER" submit studies/s.json
grep_err "--slurm" "says --slurm is needed"
expect_code 2 "--shards 0 exits 2" "$LEDGER" submit --slurm --shards 0 studies/s.json
expect_code 2 "a line break in --partition exits 2" "$LEDGER" submit --slurm -p $'debug\n#SBATCH --uid=0' studies/s.json
grep_err "line break" "names the problem"
expect_code 2 "a line break in --sbatch exits 2" "$LEDGER" submit --slurm --sbatch $'--qos=a\necho x' studies/s.json
expect_code 2 "--backend tpu exits 2" "$LEDGER" submit --slurm --backend tpu studies/s.json
[ ! -e "$SBATCH_LOG" ] && [ ! -e .ledger/slurm ] && ok "nothing submitted or written" || bad "something was submitted"

expect_ok "--dry-run" "$LEDGER" submit --slurm --dry-run --shards 3 -p gpu --time 01:00:00 --gres gpu:1 \
    --cpus-per-task 4 --mem 8G -A proj --sbatch=--qos=long --sbatch "--constraint=h100" studies/s.json
for l in "#SBATCH --array=0-2" "#SBATCH --partition=gpu" "#SBATCH --time=01:00:00" "#SBATCH --gres=gpu:1" \
         "#SBATCH --cpus-per-task=4" "#SBATCH --mem=8G" "#SBATCH --account=proj" "#SBATCH --qos=long" \
         "#SBATCH --constraint=h100" "#SBATCH --kill-on-invalid-dep=yes" "afterok:<array job id>"; do
    grep -qF -- "$l" "$TMP/.out" && ok "dry-run: $l" || bad "dry-run lacks $l"
done
grep -qF -- '--shard "$((SLURM_ARRAY_TASK_ID+1))/3"' "$TMP/.out" && ok "dry-run: shard expression" || bad "no shard expression"
grep -qE -- "gather -q --backend 'auto' '.*/studies/s.json'" "$TMP/.out" && ok "dry-run: gather command" || bad "no gather"
[ ! -e "$SBATCH_LOG" ] && [ ! -e .ledger/slurm ] && ok "dry-run submitted nothing" || bad "dry-run submitted"

SBATCH_FAIL=1 expect_code 3 "a failing sbatch exits 3" "$LEDGER" submit --slurm --backend cpu studies/s.json
grep_err "sbatch --parsable failed" "says sbatch failed"
rm -f "$SBATCH_LOG"

[ -z "$(ls .ledger/slurm 2>/dev/null)" ] && ok "a failed submission leaves no scripts" || bad "scripts left: $(ls .ledger/slurm)"
expect_ok "submit --json" "$LEDGER" submit --slurm --shards 2 --backend cpu --json studies/s.json
dir=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["scripts"])' "$TMP/.out")
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["array_job_id"]=="4001" and d["gather_job_id"]=="4002", d' \
    "$TMP/.out" && ok "prints both job ids" || { bad "job ids"; cat "$TMP/.out"; }
[ "$(wc -l < "$SBATCH_LOG")" -eq 2 ] && ok "two sbatch calls" || bad "sbatch calls: $(cat "$SBATCH_LOG")"
sed -n 1p "$SBATCH_LOG" | grep -qE -- "^--parsable .*/shards.sbatch$" && ok "array submitted with --parsable" || bad "first call"
sed -n 2p "$SBATCH_LOG" | grep -qE -- "^--parsable --dependency=afterok:4001 .*/gather.sbatch$" &&
    ok "gather submitted with --dependency=afterok:4001" || bad "second call: $(sed -n 2p "$SBATCH_LOG")"
expect_ok "plain output" "$LEDGER" submit --slurm --shards 2 --backend cpu studies/s.json
grep_out "shards as array job 4003 \(2 tasks\), gather as job 4004 \(afterok:4003\)" "plain output names both jobs"

# run the written scripts as Slurm would
for t in 0 1; do
    SLURM_ARRAY_TASK_ID=$t SLURM_JOB_ID=77$t bash "$dir/shards.sbatch" >"$TMP/.out" 2>"$TMP/.err" &&
        ok "array task $t ran" || { bad "array task $t"; cat "$TMP/.err"; }
done
expect_ok "status: all staged" "$LEDGER" status --backend cpu studies/s.json
grep_out "4 total, 4 staged, 0 running, 0 missing" "status counts"
bash "$dir/gather.sbatch" >"$TMP/.out" 2>"$TMP/.err" && ok "gather script ran" || { bad "gather script"; cat "$TMP/.err"; }
[ "$("$LEDGER" log | wc -l)" -eq 1 ] && ok "one run recorded" || bad "runs: $("$LEDGER" log | wc -l)"
finish
