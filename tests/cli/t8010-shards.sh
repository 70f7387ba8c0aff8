#!/usr/bin/env bash
# t8010: `ledger run --shard I/N` + `ledger gather` (CPU). Two shards and a
# gather record a run whose artifacts have exactly the digests of a
# one-process `ledger run` of the same study (in another repository); a
# gather of an incomplete plan exits 1, names the missing groups and leaves
# the ledger unchanged; a shard killed with SIGKILL mid-group re-runs
# cleanly; a tampered staged weight file is not taken; `ledger status` shows
# staged / running / missing groups; bad --shard values exit 2.
. "$(dirname "$0")/lib-cli.sh"

cat > "$TMP/s.json" <<'JSON'
{"format": 1, "name": "sharded",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 64, "n_samples": 4000, "active_mean": 3, "seed": 5}},
 "sae": {"arch": "topk", "d_sae": 64},
 "train": {"steps": 3000, "batch": 128, "lr": 0.004},
 "grid": {"k": [2, 3, 4, 6, 8, 16]}, "seeds": [1, 2, 3],
 "controls": {"random_init": true}}
JSON
outputs() { "$LEDGER" show --json "$1" | "$PYTHON3" -c '
import json, sys
for o in json.load(sys.stdin)["outputs"]: print(o["name"], o["sha256"])'; }
ledger_tip() { git rev-parse -q --verify refs/heads/ledger 2>/dev/null || echo none; }
staged() { ls .ledger/shards/*/.resume/*/group-*.json 2>/dev/null | wc -l; }

# the reference: one process, another repository
mkdir ref && cd ref && git init -q . && "$LEDGER" init >/dev/null && mkdir studies && cp "$TMP/s.json" studies/ ||
    { bad "init ref"; finish; }
expect_ok "one-process run" "$LEDGER" run -q --backend cpu studies/s.json
outputs @1 > "$TMP/ref.txt"
[ "$(wc -l < "$TMP/ref.txt")" -ge 30 ] && ok "reference: $(wc -l < "$TMP/ref.txt") outputs" || bad "reference outputs"
cd "$TMP"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null && mkdir studies && cp "$TMP/s.json" studies/ ||
    { bad "init repo"; finish; }
tip0=$(ledger_tip)

for v in 0/2 3/2 1/0 2 abc 1/2/3 -1/2 1/ /2 "" " 1/2" "1/ 2" +1/2 1/+2 1/100001 1/2x 99999999999/2; do
    expect_code 2 "--shard '$v' exits 2" "$LEDGER" run --backend cpu --shard "$v" studies/s.json
done
grep_err "expected I/N" "the message says what --shard expects"
one_line_err "one line"
expect_code 2 "--shard with --resume exits 2" "$LEDGER" run --backend cpu --shard 1/2 --resume studies/s.json
[ ! -e .ledger/shards ] && ok "bad --shard staged nothing" || bad "bad --shard created .ledger/shards"

expect_code 1 "gather with nothing staged exits 1" "$LEDGER" gather --backend cpu studies/s.json
grep_err "6 of 6 seed groups are not staged" "names the count"
[ -z "$(ls .ledger/shards 2>/dev/null)" ] && ok "a failed gather leaves no folder behind" || bad "left: $(ls -R .ledger/shards)"

expect_ok "shard 1/2" "$LEDGER" run --backend cpu --shard 1/2 studies/s.json
grep_out "shard 1/2 of sharded: 3 of 6 seed groups are this shard's: 3 trained" "shard 1/2 trained groups 1, 3, 5"
[ "$(staged)" -eq 3 ] && ok "3 groups staged" || bad "$(staged) groups staged"
expect_ok "shard 1/2 again is a no-op" "$LEDGER" run --backend cpu --json --shard 1/2 studies/s.json
grep_out '"groups_trained":[[:space:]]+0' "re-run trains nothing"
grep_out '"groups_already_staged":[[:space:]]+3' "re-run finds its 3 groups staged"

expect_code 1 "gather of an incomplete plan exits 1" "$LEDGER" gather --backend cpu studies/s.json
grep_err "3 of 6 seed groups are not staged" "says how many are missing"
grep_err "group 2 \(condition k=3, seeds 1..3\), group 4 \(condition k=6, seeds 1..3\), group 6 \(condition k=16, seeds 1..3\)" \
    "names the missing groups"
expect_code 1 "gather --json of an incomplete plan" "$LEDGER" run --backend cpu --gather --json studies/s.json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["status"]=="incomplete" and [g["group"] for g in d["missing"]]==[2,4,6]' \
    "$TMP/.out" && ok "--json lists missing groups 2, 4, 6" || bad "json missing groups"
[ "$(ledger_tip)" = "$tip0" ] && [ -z "$("$LEDGER" log)" ] && ok "ledger unchanged" || bad "ledger changed"
[ "$(staged)" -eq 3 ] && ok "staged groups kept" || bad "staged groups lost"

expect_ok "status" "$LEDGER" status --backend cpu studies/s.json
grep_out "6 total, 3 staged, 0 running, 3 missing" "status counts"
grep_out "group 2 \(condition k=3, seeds 1..3\): missing" "status names a missing group"
g=$(ls -d .ledger/shards/*/ | head -1)
mkdir -p "$g/running"
printf '{"format":1,"pid":%d,"host":"%s","slurm_job_id":""}' $$ "$(hostname)" > "$g/running/gather.json"
expect_code 3 "a gather is refused while another gather (a live pid) holds the plan" "$LEDGER" gather --backend cpu studies/s.json
grep_err "a gather of this plan is already running \(pid $$" "names the other gather"
rm -f "$g/running/gather.json"

# shard 2/2 killed with SIGKILL while it trains
"$LEDGER" run --backend cpu --shard 2/2 studies/s.json >"$TMP/.out" 2>"$TMP/.err" &
pid=$!
for i in $(seq 1 1500); do ls .ledger/shards/*/running/shard-2-of-2.json >/dev/null 2>&1 && break; sleep 0.02; done
expect_ok "status while shard 2/2 runs" "$LEDGER" status --backend cpu --json studies/s.json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["running"]>=1 and d["shards"][0]["state"]=="running", d' \
    "$TMP/.out" && ok "status: groups of shard 2/2 running" || { bad "status running"; cat "$TMP/.out"; }
expect_code 3 "a second shard 2/2 is refused while the first runs" "$LEDGER" run --backend cpu --shard 2/2 studies/s.json
grep_err "shard 2/2 is already running \(pid $pid" "names the running pid"
sleep 0.3
n_before=$(staged)
kill -9 $pid; wait $pid 2>/dev/null
[ "$n_before" -lt 6 ] && ok "killed shard 2/2 mid-shard ($((n_before - 3)) of its groups staged)" || bad "shard finished before the kill"
ls .ledger/shards/*/cells/*/seed-*.safetensors.tmp.* >/dev/null 2>&1 || ls .ledger/shards/*/cells/ >/dev/null 2>&1
expect_code 1 "gather after the kill exits 1" "$LEDGER" gather --backend cpu studies/s.json
grep_err "not staged" "the killed group is not taken as complete"
expect_ok "status after the kill" "$LEDGER" status --backend cpu studies/s.json
grep_out "stale marker, process gone" "status: the killed shard's marker is stale"
[ "$(ledger_tip)" = "$tip0" ] && ok "ledger unchanged after the kill" || bad "ledger changed"

# a staged weight file that changed is not taken: its group is missing again
w=$(ls .ledger/shards/*/cells/k-2/seed-2.safetensors | head -1)
printf 'X' | dd of="$w" bs=1 seek=300 conv=notrunc 2>/dev/null
expect_code 1 "gather with a tampered staged file exits 1" "$LEDGER" gather --backend cpu studies/s.json
grep_err "group 1 \(condition k=2, seeds 1..3\)" "names the tampered group"

expect_ok "shard 2/2 re-run after SIGKILL" "$LEDGER" run --backend cpu --shard 2/2 studies/s.json
expect_ok "shard 1/2 re-run retrains the tampered group" "$LEDGER" run --backend cpu --shard 1/2 studies/s.json
grep_out "1 trained, 2 already staged" "only the tampered group trained"
expect_ok "gather" "$LEDGER" gather --backend cpu studies/s.json
grep_out "run [0-9a-f]{12} recorded: study sharded, 36 cells from 6 staged seed groups" "gather recorded one run"
outputs @1 > "$TMP/sharded.txt"
if diff "$TMP/ref.txt" "$TMP/sharded.txt" >/dev/null; then
    ok "all $(wc -l < "$TMP/ref.txt") artifact digests equal the one-process run's"
else bad "digests differ"; diff "$TMP/ref.txt" "$TMP/sharded.txt" | head; fi
[ "$("$LEDGER" log | wc -l)" -eq 1 ] && ok "exactly one run recorded" || bad "runs: $("$LEDGER" log | wc -l)"
[ -z "$(ls .ledger/shards/ 2>/dev/null)" ] && ok "staging removed after the gather" || bad "staging left"
expect_ok "verify" "$LEDGER" verify --no-claims

# three shards, run --gather: the same digests again
# N may change between attempts: groups 2, 4, 6 staged by shard 2/2, the rest by shards of 3
expect_ok "shard 2/2 first" "$LEDGER" run -q --backend cpu --shard 2/2 studies/s.json
for i in 1 2 3; do
    expect_ok "shard $i/3" "$LEDGER" run -q --backend cpu --shard $i/3 studies/s.json
    grep_out "shard $i/3 of sharded: 2 of 6 seed groups are this shard's: 1 trained, 1 already staged" \
        "shard $i/3 trains 1 group and finds 1 staged by shard 2/2"
done
expect_ok "run --gather" "$LEDGER" run --backend cpu --gather studies/s.json
outputs @2 > "$TMP/three.txt"
diff "$TMP/ref.txt" "$TMP/three.txt" >/dev/null && ok "3 shards: same digests" || bad "3 shards: digests differ"

# SIGTERM (what Slurm sends on preemption or at the time limit) with a staging
# root outside the repository (--stage-dir): the shard keeps its finished
# groups and exits 143; run again it trains only the rest
shared=$TMP/shared
"$LEDGER" run --backend cpu --stage-dir "$shared" --shard 1/1 studies/s.json >"$TMP/.out" 2>"$TMP/.err" &
pid=$!
for i in $(seq 1 3000); do [ "$(ls "$shared"/*/.resume/*/group-*.json 2>/dev/null | wc -l)" -ge 1 ] && break; sleep 0.02; done
kill -TERM $pid; wait $pid; rc=$?
[ "$rc" -eq 143 ] && ok "SIGTERM: shard exits 143" || { bad "SIGTERM: exit $rc"; cat "$TMP/.err"; }
grep_err "shard 1/1 stopped by SIGTERM" "says it stopped"
[ -z "$(ls "$shared"/*/running/ 2>/dev/null)" ] && ok "running marker removed on SIGTERM" || bad "running marker left"
[ ! -e .ledger/shards ] || [ -z "$(ls .ledger/shards)" ] && ok "--stage-dir: nothing under .ledger/shards" || bad "staged in .ledger"
kept=$(ls "$shared"/*/.resume/*/group-*.json | wc -l)
expect_ok "shard 1/1 again" "$LEDGER" run --backend cpu --stage-dir "$shared" --shard 1/1 studies/s.json
grep_out "$((6 - kept)) trained, $kept already staged" "trained only the $((6 - kept)) groups not staged"
expect_code 1 "gather without --stage-dir finds nothing" "$LEDGER" gather --backend cpu studies/s.json
expect_ok "gather --stage-dir" "$LEDGER" gather --backend cpu --stage-dir "$shared" studies/s.json
outputs @3 > "$TMP/term.txt"
diff "$TMP/ref.txt" "$TMP/term.txt" >/dev/null && ok "after SIGTERM and re-run: same digests" || bad "digests differ after SIGTERM"

# a running marker from another node with a Slurm job id: status counts its
# groups as running, another process is refused, the same (requeued) job takes over
expect_ok "status --json" "$LEDGER" status --backend cpu --stage-dir "$shared" --json studies/s.json
stage=$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["staging"])' "$TMP/.out")
mkdir -p "$stage/running" && printf '{"format":1,"shard":1,"shards":2,"pid":1,"host":"node-elsewhere","slurm_job_id":"999"}' \
    > "$stage/running/shard-1-of-2.json"
printf '{"format":1,"shard":2,"shards":2,"pid":1,"host":"node-other","slurm_job_id":"1000"}' > "$stage/running/shard-2-of-2.json"
expect_ok "status with two remote markers" "$LEDGER" status --backend cpu --stage-dir "$shared" --json studies/s.json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["running"]==6 and sorted(r["slurm_job_id"] for r in d["shards"])==["1000","999"], d' \
    "$TMP/.out" && ok "status reads both markers: all 6 groups running" || { bad "status two markers"; cat "$TMP/.out"; }
rm "$stage/running/shard-2-of-2.json"
expect_ok "status with a remote marker" "$LEDGER" status --backend cpu --stage-dir "$shared" --json studies/s.json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["running"]==3 and d["missing"]==3 and d["shards"][0]["slurm_job_id"]=="999", d' \
    "$TMP/.out" && ok "status: shard 1/2's 3 groups running on node-elsewhere (Slurm job 999)" || { bad "status remote"; cat "$TMP/.out"; }
( unset SLURM_JOB_ID; "$LEDGER" run --backend cpu --stage-dir "$shared" --shard 1/2 studies/s.json >"$TMP/.out" 2>"$TMP/.err" )
[ $? -eq 3 ] && ok "another process is refused (exit 3)" || bad "not refused"
grep_err "already running \(pid 1 on node-elsewhere, Slurm job 999\)" "names the holder"
SLURM_JOB_ID=999 expect_ok "the requeued job 999 takes its marker over" "$LEDGER" run --backend cpu --stage-dir "$shared" \
    --shard 1/2 studies/s.json
[ ! -e "$stage/running/shard-1-of-2.json" ] && ok "marker removed when the shard ends" || bad "marker left"

# a group whose training diverges: its shard exits 1 and the group stays missing
"$PYTHON3" -c 'import numpy as np; x=np.random.default_rng(0).normal(size=(2000,8)).astype(np.float32)*1e19; np.save("huge.npy", x)'
cat > studies/huge.json <<'JSON'
{"name": "huge", "data": {"source": "file", "path": "../huge.npy"}, "sae": {"d_sae": 16, "k": 2},
 "train": {"steps": 20, "batch": 32}, "seeds": [1, 2]}
JSON
expect_code 1 "a diverging shard exits 1" "$LEDGER" run -q --backend cpu --shard 1/1 studies/huge.json
grep_err "training diverged.*the group is not staged" "says the group diverged and is not staged"
expect_code 1 "its gather exits 1" "$LEDGER" gather -q --backend cpu studies/huge.json
grep_err "1 of 1 seed groups are not staged" "the diverged group is missing"
finish
