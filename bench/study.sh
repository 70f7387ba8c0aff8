#!/usr/bin/env bash
# bench/study.sh - time a whole study on the CPU and check its claims (issue 12: the
# HUSAI-shaped study in <= 8 minutes on 2 cores, with the same claims passing).
#   bash bench/study.sh [STUDY.json [CLAIMS.claims]]
#     default: studies/husai-trained-vs-random.json, claims/gpu/husai-trained-vs-random.claims
# Runs `ledger run --backend cpu` in a scratch repository (removed afterwards), then
# `ledger check` of the claims, and prints one line: wall seconds, user+sys CPU seconds,
# max RSS, the claims' verdicts. Environment:
#   BUILD=build            the build holding `ledger`
#   LEDGER=path            another ledger binary (e.g. an older build, for an A/B run)
#   OMP_NUM_THREADS        threads (default: all cores); the seeds of a condition train
#                          side by side, one per thread (engine/schedule.h);
#                          LEDGER_SEED_WORKERS=1 trains them in order (the earlier schedule)
#   STEPS=N                override train.steps (shorter runs for A/B comparisons; the
#                          claims are only meaningful at the study's own steps)
# The full study takes about 6.5 minutes on a quiet 2-core machine (bench/RESULTS.md, 2026-11-30).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
LEDGER=${LEDGER:-$BUILD/ledger}
STUDY=${1:-$ROOT/studies/husai-trained-vs-random.json}
CLAIMS=${2:-$ROOT/claims/gpu/husai-trained-vs-random.claims}
PY=${PY:-/usr/bin/python3}
[ -x "$LEDGER" ] || { echo "bench/study.sh: $LEDGER missing (cmake --build build)" >&2; exit 2; }
[ -f "$STUDY" ] || { echo "bench/study.sh: $STUDY: no such study" >&2; exit 2; }
case "$STUDY" in /*) ;; *) STUDY=$PWD/$STUDY ;; esac
case "$CLAIMS" in /*|"") ;; *) CLAIMS=$PWD/$CLAIMS ;; esac
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT
cd "$R" && git init -q . && "$LEDGER" init >/dev/null || { echo "bench/study.sh: cannot set up $R" >&2; exit 3; }
mkdir -p studies claims
if [ -n "${STEPS:-}" ]; then
    "$PY" -c 'import json,sys; s=json.load(open(sys.argv[1])); s["train"]["steps"]=int(sys.argv[2]); json.dump(s,open(sys.argv[3],"w"))' \
        "$STUDY" "$STEPS" studies/study.json || exit 2
else
    cp "$STUDY" studies/study.json
fi
echo "# bench/study.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores; $(uptime | sed 's/.*load/load/')"
echo "# $LEDGER ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)), OMP_NUM_THREADS=${OMP_NUM_THREADS:-<all>}, LEDGER_SEED_WORKERS=${LEDGER_SEED_WORKERS:-<threads>}, study $(basename "$STUDY")${STEPS:+, steps $STEPS}"
/usr/bin/time -f "%e %U %S %M" -o "$R/.time" "$LEDGER" run -q --backend cpu studies/study.json >"$R/.out" 2>"$R/.err"
rc=$?
read -r wall user sys rss <"$R/.time" 2>/dev/null || { wall=?; user=0; sys=0; rss=0; }
verdicts="-"
if [ $rc = 0 ] && [ -n "$CLAIMS" ] && [ -f "$CLAIMS" ] && [ -z "${STEPS:-}" ]; then
    cp "$CLAIMS" claims/
    "$LEDGER" check "claims/$(basename "$CLAIMS")" >"$R/.check" 2>&1
    verdicts=$(grep -oE "^(PASS|FAIL|XFAIL|XPASS|MISSING|STALE|ERROR|BLOCKED)[^ ]* +[^ ]+" "$R/.check" | tr -s ' ' | paste -sd ',' -)
    [ -n "$verdicts" ] || verdicts=$(head -3 "$R/.check" | tr '\n' ' ')
fi
[ $rc = 0 ] || { echo "bench/study.sh: ledger run exited $rc:" >&2; tail -3 "$R/.err" >&2; }
awk -v w="$wall" -v u="$user" -v s="$sys" -v m="$rss" -v v="$verdicts" -v rc="$rc" 'BEGIN {
    printf "{\"bench\": \"study\", \"exit\": %d, \"wall_s\": %s, \"cpu_s\": %.2f, \"max_rss_mb\": %.0f, \"minutes\": \"%d:%02d\", \"claims\": \"%s\"}\n",
        rc, w, u + s, m / 1024, int(w / 60), int(w) % 60, v }'
exit $rc
