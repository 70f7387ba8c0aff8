#!/usr/bin/env bash
# t1150-lean-start: commands that do not compute load neither OpenBLAS nor the
# CUDA module (both are dlopen()ed on first use: engine/blas_lazy.c,
# engine/backend_cuda_load.c); `--backend cuda` without a usable module or
# device is a one-line error, exit 2, naming the reason; the ledger is unchanged.
. "$(dirname "$0")/lib-cli.sh"
LD_DEBUG_OK=1
LD_DEBUG=files "$LEDGER" --version >/dev/null 2>"$TMP/ld.txt" || true
grep -q 'file=' "$TMP/ld.txt" || LD_DEBUG_OK=0   # (a static or secure-exec build prints nothing)

loaded() { # loaded PATTERN CMD...: does CMD map a library matching PATTERN?
    local pat=$1; shift
    LD_DEBUG=files "$@" >/dev/null 2>"$TMP/ld.txt"
    grep -E 'file=[^ ]*('"$pat"')' "$TMP/ld.txt" | grep -q 'needed by\|dynamically loaded'
}

expect_ok "init" "$LEDGER" init
echo a >a.txt
expect_ok "record a small file" "$LEDGER" record -s s a.txt
if [ $LD_DEBUG_OK = 1 ]; then
    for cmd in "--version" "log" "query select\ 1" "show 1" "verify"; do
        # shellcheck disable=SC2086
        if loaded 'openblas|cublas|cudart|libledger_cuda' "$LEDGER" $cmd; then
            bad "ledger $cmd maps BLAS/CUDA: $(grep -oE 'file=[^ ]*(openblas|cublas|cudart|ledger_cuda)[^ ]*' "$TMP/ld.txt" | head -1)"
        else
            ok "ledger $cmd maps neither OpenBLAS nor CUDA"
        fi
    done
else
    ok "LD_DEBUG unavailable: library checks skipped"
fi

head_before=$(git rev-parse refs/heads/ledger)
LEDGER_CUDA_MODULE="$TMP/no-such-module.so" expect_code 2 "--backend cuda with a missing module" \
    "$LEDGER" run --backend cuda "$LEDGER_SRC/studies/small-topk.json"
one_line_err "one-line error"
if [ -e "$LEDGER_BUILD/libledger_cuda.so" ]; then
    grep_err 'backend cuda: LEDGER_CUDA_MODULE=.*no-such-module.so: no such file' "names the module path"
    echo "not a module" >"$TMP/bad.so"
    LEDGER_CUDA_MODULE="$TMP/bad.so" expect_code 2 "--backend cuda with a broken module" \
        "$LEDGER" run --backend cuda "$LEDGER_SRC/studies/small-topk.json"
    grep_err "cannot load the CUDA module .*bad.so" "names the broken module"
else
    grep_err 'backend cuda: this build has no CUDA backend' "says the build has no CUDA"
fi
[ "$(git rev-parse refs/heads/ledger)" = "$head_before" ] && ok "ledger unchanged" || bad "ledger moved"
# last: on a machine with a GPU this run succeeds and records (so it comes after
# the ledger-unchanged check); without one it fails after loading the module
if [ -e "$LEDGER_BUILD/libledger_cuda.so" ] && [ $LD_DEBUG_OK = 1 ]; then
    loaded 'libledger_cuda' "$LEDGER" run --backend cuda "$LEDGER_SRC/studies/small-topk.json" &&
        ok "--backend cuda loads the module" || bad "--backend cuda did not load the module"
fi
expect_code 2 "unknown backend" "$LEDGER" run --backend tpu "$LEDGER_SRC/studies/small-topk.json"
grep_err "backend 'tpu': unknown" "names the unknown backend"
finish
