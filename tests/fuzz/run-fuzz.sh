#!/usr/bin/env bash
# run-fuzz.sh - build every libFuzzer target of tests/fuzz/ with clang
# (-fsanitize=fuzzer,address,undefined) and run each for a bounded time.
#
#   tests/fuzz/run-fuzz.sh [SECONDS] [TARGET...]     (default: 30 s, all targets)
#
# Targets: tests/fuzz/fuzz_<name>.c (claims, manifest, npy, safetensors, spec),
# seed corpus tests/fuzz/corpus/<name>/ plus the crash regressions
# tests/fuzz/regress/<name>/ (both copied, never modified: new inputs go to a
# scratch corpus). A crash leaves crash-* / leak-* / timeout-* files in
# $FUZZ_OUT (default build-fuzz/) and exits 1; move such an input to
# tests/fuzz/regress/<name>/ once fixed (test_fuzz_regress replays them).
# Library sources are compiled straight from the tree: a target names them on a
# "fuzz-sources:" line of its header comment (default: base/base.c
# base/rng.c gates/*.c). Each target's executions count is printed as
# "run-fuzz: <name>: <execs> execs in <s> s" and appended to $FUZZ_OUT/stats.txt.
# Environment: CLANG (default clang), FUZZ_OUT, FUZZ_JOBS (parallel targets, default 1).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-30}
shift || true
OUT=${FUZZ_OUT:-$ROOT/build-fuzz}
CC=${CLANG:-clang}
command -v "$CC" >/dev/null || { echo "run-fuzz: $CC not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 77; }
mkdir -p "$OUT"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$ROOT"/tests/fuzz/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
fi
DEFAULT_SRC="base/base.c base/rng.c $(cd "$ROOT" && ls gates/*.c | tr '\n' ' ')"

build() { # build NAME: compile tests/fuzz/fuzz_NAME.c into $OUT/fuzz_NAME
  local t=$1 src line srcs=() s
  src="$ROOT/tests/fuzz/fuzz_$t.c"
  [ -f "$src" ] || { echo "run-fuzz: no target $src" >&2; return 2; }
  line=$(sed -n 's/^.*fuzz-sources:[[:space:]]*//p' "$src" | head -1)
  for s in ${line:-$DEFAULT_SRC}; do srcs+=("$ROOT/$s"); done
  # base.c calls the fault-injection hooks (base/fault.c) when the tree has them
  [ -f "$ROOT/base/fault.c" ] && srcs+=("$ROOT/base/fault.c")
  "$CC" -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$ROOT" -I"$OUT" \
    "$src" "${srcs[@]}" -lcjson -lcrypto -lm -o "$OUT/fuzz_$t"
}

run() { # run NAME: fuzz for $SECS seconds; prints the executions count
  local t=$1 bin="$OUT/fuzz_$t" work="$OUT/corpus-$t" log="$OUT/fuzz_$t.log" dirs=() rc=0 execs secs
  mkdir -p "$work"
  [ -d "$ROOT/tests/fuzz/corpus/$t" ] && dirs+=("$ROOT/tests/fuzz/corpus/$t")
  [ -d "$ROOT/tests/fuzz/regress/$t" ] && dirs+=("$ROOT/tests/fuzz/regress/$t")
  (cd "$OUT" && ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$SECS" -max_len=8192 -timeout=10 \
     -rss_limit_mb=1024 -print_final_stats=1 "$work" "${dirs[@]}") >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -1)
  secs=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -1)
  echo "run-fuzz: $t: ${execs:-0} execs in ${SECS} s (${secs:-0}/s), corpus $(ls "$work" | wc -l) inputs, exit $rc" |
    tee -a "$OUT/stats.txt" >&2
  if [ "$rc" -ne 0 ]; then
    echo "run-fuzz: fuzz_$t FAILED (see $log and $OUT/crash-*)" >&2
    grep -m5 -E "ERROR|SUMMARY|runtime error" "$log" >&2 || true
    return 1
  fi
}

status=0
for t in "${targets[@]}"; do
  echo "run-fuzz: building fuzz_$t" >&2
  build "$t" || { echo "run-fuzz: building fuzz_$t failed" >&2; exit 3; }
done
jobs=${FUZZ_JOBS:-1}
pids=()
for t in "${targets[@]}"; do
  echo "run-fuzz: fuzz_$t for ${SECS}s" >&2
  if [ "$jobs" -gt 1 ]; then
    run "$t" & pids+=($!)
    if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}" || status=1; pids=("${pids[@]:1}"); fi
  else
    run "$t" || status=1
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
