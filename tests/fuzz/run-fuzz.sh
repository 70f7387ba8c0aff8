#!/usr/bin/env bash
# run-fuzz.sh - build every libFuzzer target of tests/fuzz/ with clang
# (-fsanitize=fuzzer,address,undefined) and run each for a bounded time.
#
#   tests/fuzz/run-fuzz.sh [SECONDS] [TARGET...]     (default: 30 s, all targets)
#
# Targets: tests/fuzz/fuzz_<name>.c, seed corpus tests/fuzz/corpus/<name>/ (copied,
# never modified: new inputs go to a scratch corpus). A crash leaves
# crash-* / leak-* / timeout-* files in $FUZZ_OUT (default build-fuzz/) and exits 1.
# Library sources are compiled straight from the tree (artifacts/base.c,
# engine/rng.c, gates/*.c); nothing else of the project is needed.
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
LIBSRC="$ROOT/artifacts/base.c $ROOT/engine/rng.c $(ls "$ROOT"/gates/*.c | tr '\n' ' ')"
status=0
for t in "${targets[@]}"; do
  bin="$OUT/fuzz_$t"
  echo "run-fuzz: building fuzz_$t" >&2
  # shellcheck disable=SC2086
  "$CC" -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$ROOT" -I"$OUT" \
    "$ROOT/tests/fuzz/fuzz_$t.c" $LIBSRC -lcjson -lm -o "$bin"
  work="$OUT/corpus-$t"
  mkdir -p "$work"
  seeds="$ROOT/tests/fuzz/corpus/$t"
  echo "run-fuzz: fuzz_$t for ${SECS}s" >&2
  if ! (cd "$OUT" && ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$SECS" -max_len=8192 -timeout=10 \
          -rss_limit_mb=1024 -print_final_stats=1 "$work" ${seeds:+$([ -d "$seeds" ] && echo "$seeds")} ); then
    echo "run-fuzz: fuzz_$t FAILED (see $OUT)" >&2
    status=1
  fi
done
exit $status
