#!/usr/bin/env bash
# t4030: stop and resume `ledger run` (CPU). SIGINT stops a run after keeping
# its finished seed groups (exit 130, a message saying what was kept and how
# to resume, nothing recorded); `--resume` continues it, SIGTERM stops that
# again (exit 143), a second `--resume` completes it, and the recorded
# artifacts (weights, npy, results.json) have exactly the digests of an
# uninterrupted run. Progress off a terminal is plain lines, one per finished
# cell at most every 5 s (the last always).
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . && "$LEDGER" init >/dev/null || { bad "init"; finish; }
mkdir -p studies
cat > studies/r.json <<'JSON'
{"format": 1, "name": "resumable",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 64, "n_samples": 4000, "active_mean": 3, "seed": 5}},
 "sae": {"arch": "topk", "d_sae": 64},
 "train": {"steps": 500, "batch": 128, "lr": 0.004},
 "grid": {"k": [2, 3, 4, 6, 8, 16]}, "seeds": [1, 2, 3]}
JSON
outputs() { "$LEDGER" show --json "$1" | "$PYTHON3" -c '
import json, sys
for o in json.load(sys.stdin)["outputs"]: print(o["name"], o["sha256"])'; }
markers() { ls .ledger/tmp/run-*/.resume/*/group-*.json 2>/dev/null | wc -l; }
# start_and_stop SIGNAL N ARGS...: start `ledger run ARGS`, send SIGNAL once N
# seed groups are marked; sets rc
start_and_stop() {
    local sig=$1 n=$2 pid i; shift 2
    "$LEDGER" run --backend cpu "$@" >"$TMP/.out" 2>"$TMP/.err" &
    pid=$!
    for i in $(seq 1 3000); do [ "$(markers)" -ge "$n" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.02; done
    kill -"$sig" $pid 2>/dev/null
    wait $pid; rc=$?
}

t0=$(date +%s)
expect_ok "uninterrupted run" "$LEDGER" run --backend cpu studies/r.json
el=$(( $(date +%s) - t0 + 1 ))
grep_err "^ledger run: \[[0-9]+/36 cells\] k=[0-9]+(,control=random)? seed [1-3] done" "plain progress: a line per finished cell, naming it"
grep_err "^ledger run: \[36/36 cells\]" "plain progress: the last cell's line always prints"
if grep -q $'\r' "$TMP/.err"; then bad "terminal escapes in plain progress"; else ok "no terminal escapes off a terminal"; fi
# the rate limit (ledger/cmd_run.c): a cell line at most every 5 s (36 cells; the last always),
# plus a heartbeat after 60 s without a line: the bound follows the run's own duration, so a
# loaded machine is no reason to fail, and a line per step (hundreds) still is
cap=$(( el / 5 + 2 )); [ "$cap" -gt 36 ] && cap=36; cap=$(( cap + el / 60 + 1 ))
n=$(grep -c "^ledger run: \[" "$TMP/.err"); [ "$n" -ge 1 ] && [ "$n" -le "$cap" ] && ok "$n plain progress lines in ${el} s (rate-limited, at most $cap)" ||
    bad "$n progress lines in ${el} s (at most $cap)"
outputs @1 > full.txt
[ "$(wc -l < full.txt)" -ge 30 ] && ok "reference: $(wc -l < full.txt) outputs" || bad "reference outputs"

start_and_stop INT 1 studies/r.json
[ "$rc" -eq 130 ] && ok "SIGINT: exit 130" || { bad "SIGINT: exit $rc"; cat "$TMP/.err"; finish; }
grep_err "stopped by SIGINT" "says it stopped"
grep_err "Kept [1-9][0-9]* finished seed groups? .* in .*/\.ledger/resume/" "says what was kept and where"
grep_err "continue with: ledger run --resume studies/r.json" "says how to resume"
[ "$("$LEDGER" log | wc -l)" -eq 1 ] && ok "nothing recorded" || bad "a run was recorded"
ls .ledger/resume/*/state.json >/dev/null 2>&1 && ok "resume folder kept with state.json" || bad "no resume folder"
expect_ok "gc keeps the stopped run" "$LEDGER" gc --min-age 0
grep_out "keeping stopped run .*/\.ledger/resume/" "gc lists the stopped run"
grep_out "kept 1 stopped run .*ledger gc --resume" "gc says how to remove it"
expect_ok "gc --resume --dry-run" "$LEDGER" gc --resume --dry-run --min-age 0
grep_out "would remove .*\.ledger/resume/" "dry run names the folder"
ls .ledger/resume/*/state.json >/dev/null 2>&1 && ok "dry run removed nothing" || bad "dry run removed the resume folder"
[ -z "$(ls .ledger/tmp/ 2>/dev/null)" ] && ok "no staging folder left in tmp" || bad "staging left: $(ls .ledger/tmp)"

expect_ok "plain run --help mentions --resume" "$LEDGER" help run
grep_out "--resume" "help run shows run's options"

start_and_stop TERM 3 --resume studies/r.json
[ "$rc" -eq 143 ] && ok "SIGTERM during the resumed run: exit 143" || { bad "SIGTERM: exit $rc"; cat "$TMP/.err"; finish; }
grep_err "resuming" "the run said it resumed"
grep_err "stopped by SIGTERM" "says SIGTERM"
grep_err "taken from the earlier stop" "counts groups taken from the first stop"

kept=$(grep -oE "Kept [0-9]+" "$TMP/.err" | awk '{print $2}')
# a kept weight file that changed since its group finished is not trusted: that group trains again
w=$(ls .ledger/resume/*/cells/k-2/seed-1.safetensors 2>/dev/null | head -1)
[ -n "$w" ] && printf 'X' | dd of="$w" bs=1 seek=200 conv=notrunc 2>/dev/null && ok "tampered a kept weight file" ||
    bad "no kept weight file for k=2"
expect_ok "second --resume completes" "$LEDGER" run --backend cpu --resume --json studies/r.json
grep_err "resumed: $((kept - 1)) seed groups? taken from the stopped run" "reused the $((kept - 1)) intact groups, retrained the tampered one"
"$PYTHON3" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["resumed"] is True and d["seed_groups_resumed"] == int(sys.argv[2]) - 1, d
assert d["seed_groups_resumed"] + d["seed_groups_trained"] == 6, d' "$TMP/.out" "$kept" && ok "--json counts the groups" || bad "run --json groups"
outputs @2 > resumed.txt
if diff full.txt resumed.txt >/dev/null; then ok "all $(wc -l < full.txt) artifact digests equal the uninterrupted run's"
else bad "digests differ"; diff full.txt resumed.txt | head; fi
[ -z "$(ls .ledger/resume/ 2>/dev/null)" ] && ok "resume folder removed after the run" || bad "resume folder left"
expect_ok "verify" "$LEDGER" verify --no-claims

expect_ok "--resume with nothing kept runs from the start" "$LEDGER" run -q --backend cpu --resume studies/r.json
outputs @3 > again.txt
diff full.txt again.txt >/dev/null && ok "same digests again" || bad "digests differ from scratch"
mkdir -p .ledger/resume/0123abcd/cells && echo x > .ledger/resume/0123abcd/cells/w
expect_ok "gc --resume --min-age 3600 keeps a young folder" "$LEDGER" gc --resume --json
[ -d .ledger/resume/0123abcd ] && ok "young folder kept" || bad "young folder removed"
expect_ok "gc --resume --min-age 0" "$LEDGER" gc --resume --min-age 0 --json
"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["resume_removed"] == 1 and d["resume_kept"] == 0, d' \
    "$TMP/.out" && ok "--json counts the removed stopped run" || bad "gc --json: $(cat "$TMP/.out")"
[ ! -e .ledger/resume/0123abcd ] && ok "stopped run removed" || bad "stopped run left"
# a folder gc cannot remove (an immutable file; needs chattr and CAP_LINUX_IMMUTABLE): exit 3 naming
# it, never counted or reported as removed
mkdir -p .ledger/resume/stuck/cells && echo x > .ledger/resume/stuck/cells/w
if chattr +i .ledger/resume/stuck/cells/w 2>/dev/null; then
  expect_code 3 "gc --resume: a folder it cannot remove fails" "$LEDGER" gc --resume --min-age 0 --json
  grep_err "resume/stuck: cannot remove the stopped run's folder" "the error names the folder"
  one_line_err "one line"
  grep -q resume_removed "$TMP/.out" && bad "counts printed after the failure" || ok "no counts printed"
  chattr -i .ledger/resume/stuck/cells/w
else
  skip "gc --resume on a folder it cannot remove (chattr +i not available)"
fi
finish
