#!/usr/bin/env bash
# bench/run.sh - every CPU-side ratio of issue 12 in one command (no GPU needed):
#   1. TopK training throughput, engine vs PyTorch CPU, configs A and B, 1 and 2 threads
#   2. CLI start time and peak RSS: ledger --version / log / query vs git --version
#   3. `ledger record` latency of one small file
#   4. MMCS vs NumPy at m=16384 (d=768) and m=65536 (d=2304)
#   5. Hungarian matching at n=4096 vs scipy.optimize.linear_sum_assignment
# Each part interleaves ours and the reference; lines are JSON (bench/*.py, build/bench_*),
# plus a summary table at the end. Uses the build in $BUILD (default build/; needs
# bench_train_cpu, bench_metrics and ledger: `cmake --build build`).
#
# Bounded for a 2-core machine: about 5-8 minutes with the defaults. Sizes and repetitions:
#   REPS=2                 repetitions of the short benchmarks (CLI: 30 x REPS spawns)
#   TRAIN_CONFIGS=small,large   (bench_train_cpu.py: small d128/m1024/k32/B4096,
#                                large d768/m16384/k64/B1024; d:m:k:B for others)
#   TRAIN_THREADS=1,2
#   MMCS_SMALL="16384 16384 768"
#   MMCS_BIG="2048 65536 2304"  (rows of A x rows of B x d; MMCS_FULL=1 runs 65536 x 65536,
#                                32x the work: about an hour per side on 2 cores)
#   LSA_N=4096
#   SKIP="train cli record mmcs lsa"   (any subset to skip)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PY=${PY:-/usr/bin/python3}
REPS=${REPS:-2}
TRAIN_CONFIGS=${TRAIN_CONFIGS:-small,large}
TRAIN_THREADS=${TRAIN_THREADS:-1,2}
MMCS_SMALL=${MMCS_SMALL:-"16384 16384 768"}
MMCS_BIG=${MMCS_BIG:-"2048 65536 2304"}
[ "${MMCS_FULL:-0}" = 1 ] && MMCS_BIG="65536 65536 2304"
LSA_N=${LSA_N:-4096}
SKIP=${SKIP:-}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
skip() { case " $SKIP " in *" $1 "*) return 0;; esac; return 1; }
for b in ledger bench_train_cpu bench_metrics; do
    [ -x "$BUILD/$b" ] || { echo "bench/run.sh: $BUILD/$b missing (cmake --build $BUILD)" >&2; exit 2; }
done
# The same OpenBLAS kernels for ours and the references (NumPy, and PyTorch when it uses
# OpenBLAS): the engine sets OPENBLAS_CORETYPE on CPUs OpenBLAS 0.3.21 misdetects.
CORE=$("$BUILD/bench_metrics" coretype)
[ -n "$CORE" ] && export OPENBLAS_CORETYPE=$CORE
echo "# bench/run.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores; $(uptime | sed 's/.*load/load/')"
echo "# OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-<OpenBLAS detects>} for ours and the references"
echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"
T0=$(date +%s)
say() { echo "# [+$(( $(date +%s) - T0 ))s] $*"; }

# ---- 1. training ----------------------------------------------------------------------
# bench/bench_train_cpu.py runs build/bench_train_cpu (the engine's trainer) interleaved with
# two PyTorch references (dense decoder; sparse decode with embedding_bag, as sparsify does),
# rotating the order each repetition, at the small (d=128, m=1024, k=32, B=4096) and large
# (d=768, m=16384, k=64, B=1024) configs and 1 and 2 threads, and prints each ratio against
# the FASTER PyTorch variant plus the engine's 1->2 thread speedup.
if ! skip train; then
    say "train: engine vs PyTorch (dense and embedding_bag), threads $TRAIN_THREADS"
    "$PY" "$ROOT/bench/bench_train_cpu.py" --engine "$BUILD/bench_train_cpu" --configs "$TRAIN_CONFIGS" \
        --threads "$TRAIN_THREADS" --reps "$REPS" | tee "$OUT/train.txt"
fi

# ---- 2. CLI start ----------------------------------------------------------------------
if ! skip cli; then
    say "CLI start vs git --version"
    R=$(mktemp -d)
    (cd "$R" && git init -q . && "$BUILD/ledger" init >/dev/null && echo x >x.txt &&
        GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@e GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@e \
        "$BUILD/ledger" record -s s x.txt >/dev/null)
    "$PY" "$ROOT/bench/bench_cli.py" --reps $((30 * REPS)) --cwd "$R" "$BUILD/ledger" | tee "$OUT/cli.jsonl"
    rm -rf "$R"
fi

# ---- 3. record -------------------------------------------------------------------------
if ! skip record; then
    say "ledger record latency"
    "$PY" "$ROOT/bench/bench_record.py" --reps $((10 * REPS)) "$BUILD/ledger" | tee "$OUT/record.jsonl"
fi

# ---- 4. MMCS ---------------------------------------------------------------------------
if ! skip mmcs; then
    # shellcheck disable=SC2086
    { say "MMCS $MMCS_SMALL vs NumPy"
      "$PY" "$ROOT/bench/bench_metrics.py" --build "$BUILD" --reps "$REPS" mmcs $MMCS_SMALL
      say "MMCS $MMCS_BIG vs NumPy"
      "$PY" "$ROOT/bench/bench_metrics.py" --build "$BUILD" --reps 1 mmcs $MMCS_BIG; } | tee "$OUT/mmcs.jsonl"
fi

# ---- 5. Hungarian ----------------------------------------------------------------------
if ! skip lsa; then
    say "Hungarian n=$LSA_N vs SciPy"
    "$PY" "$ROOT/bench/bench_metrics.py" --build "$BUILD" --reps 1 lsa "$LSA_N" | tee "$OUT/lsa.jsonl"
fi

# ---- summary ---------------------------------------------------------------------------
say "done"
echo
echo "| benchmark | ours | reference | ratio ours/ref |"
echo "| --- | ---: | ---: | ---: |"
[ -s "$OUT/cli.jsonl" ] && "$PY" - "$OUT/cli.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
git = rows[0]
for r in rows[1:]:
    print("| %s: median ms / max RSS MB | %.1f / %.1f | %.1f / %.1f (git --version) | %.2f / %.2f |"
          % (r["cmd"], r["median_ms"], r["max_rss_mb"], git["median_ms"], git["max_rss_mb"],
             r["median_ms"] / git["median_ms"], r["max_rss_mb"] / git["max_rss_mb"]))
PYEOF
[ -s "$OUT/record.jsonl" ] && "$PY" -c '
import json, sys
r = json.loads(open(sys.argv[1]).readline())
print("| ledger record, one small file: median ms (min) | %.1f (%.1f) | 50 (target) | %.2f |" % (r["median_ms"], r["min_ms"], r["median_ms"] / 50.0))' "$OUT/record.jsonl"
for f in "$OUT/mmcs.jsonl" "$OUT/lsa.jsonl"; do
    [ -s "$f" ] && grep '_summary' "$f" | "$PY" -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    what = ("MMCS %dx%d d=%d" % (r["m1"], r["m2"], r["d"])) if r["bench"] == "mmcs_summary" else ("Hungarian n=%d" % r["n"])
    ref = "NumPy" if r["bench"] == "mmcs_summary" else "SciPy"
    print("| %s, s (median of %d; values agree: %s) | %.2f | %.2f (%s) | %.2f |" % (what, r["reps"], r["values_agree"], r["ours_median_s"], r["ref_median_s"], ref, r["ratio_ours_to_ref"]))
    if "cpu_ratio_ours_to_ref" in r:
        print("| %s, CPU s (process time; load-robust) | %.2f | %.2f (%s) | %.2f |" % (what, r["ours_cpu_median_s"], r["ref_cpu_median_s"], ref, r["cpu_ratio_ours_to_ref"]))'
done
echo
echo "load after: $(uptime | sed 's/.*load/load/')"
