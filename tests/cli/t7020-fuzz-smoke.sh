#!/usr/bin/env bash
# t7020: the libFuzzer targets build and run briefly (ASan + UBSan) with no
# finding: tests/fuzz/run-fuzz.sh for FUZZ_SMOKE_SECS (default 3) seconds per
# target, from the seed corpora and the kept regressions. Skipped (77) when
# clang cannot link -fsanitize=fuzzer (Debian: clang libclang-rt-14-dev).
# The long runs (60 s and more per target) are run by hand; see ledger/SECURITY.md, "Fuzzing".
. "$(dirname "$0")/lib-cli.sh"
CC=${CLANG:-clang}
command -v "$CC" >/dev/null 2>&1 || { echo "skip: $CC not found"; exit 77; }
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > probe.c
"$CC" -fsanitize=fuzzer,address,undefined probe.c -o probe >/dev/null 2>&1 || { echo "skip: $CC cannot link libFuzzer"; exit 77; }
./probe -runs=1 >/dev/null 2>&1 || { echo "skip: a libFuzzer binary does not run here"; exit 77; }
ok "clang links and runs a libFuzzer target"

export FUZZ_OUT="$TMP/fuzz"
start=$(date +%s)
if bash "$LEDGER_SRC/tests/fuzz/run-fuzz.sh" "${FUZZ_SMOKE_SECS:-3}" 2>"$TMP/fuzz.err"; then
  ok "every target built and ran without a finding"
else
  bad "run-fuzz.sh failed"; tail -30 "$TMP/fuzz.err"
fi
n_targets=$(ls "$LEDGER_SRC"/tests/fuzz/fuzz_*.c | wc -l)
n_ran=$(grep -c "execs in" "$FUZZ_OUT/stats.txt" 2>/dev/null || echo 0)
[ "$n_ran" -eq "$n_targets" ] && ok "all $n_targets targets ran" || bad "$n_ran of $n_targets targets ran"
if awk '/execs in/ { if ($3 + 0 < 10) bad = 1 } END { exit bad }' "$FUZZ_OUT/stats.txt"; then
  ok "each target executed inputs"
else
  bad "a target executed almost nothing"; cat "$FUZZ_OUT/stats.txt"
fi
echo "# $(cat "$FUZZ_OUT/stats.txt" | tr '\n' ';') in $(( $(date +%s) - start )) s"
finish
