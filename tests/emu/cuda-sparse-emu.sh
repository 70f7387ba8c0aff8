#!/usr/bin/env bash
# tests/emu/cuda-sparse-emu.sh BUILD_DIR [TEST...] - run the CUDA sparse kernels
# (kernels/cuda_sparse.cu) on the CPU, without a GPU, through the unit test
# tests/unit/test_cuda_sparse.c at reduced sizes.
#
# How: emu_cuda.h emulates the CUDA features the file uses (every thread of a
# block is a host thread, blocks run one after another, __syncthreads and the
# warp intrinsics are barriers around a shared buffer, CUB's radix sort is
# std::stable_sort). The .cu is copied with its launches rewritten
# (k<<<g, b, 0, s>>>(...) -> EMU_LAUNCH(k, g, b, 0, s)(...)) and compiled with
# g++; the "cuda" backend of the test is then the CPU backend's table with
# the emulated sparse group (lg_cuda_sparse_install). The test's large cases
# (256 x 65536, 2^23 entries) are cut down: host threads make every barrier
# cost about a millisecond. It checks the kernels' logic (indices, ranks,
# scans, tie rules, layouts, ordering), not what only a device shows (launch
# limits beyond those asserted here, timing, memory model). Not a ctest: it
# takes about 10 minutes on two cores for the op tests, longer with training.
#   BUILD_DIR: a configured and built tree (its liblgengine.a etc.; a CUDA ON
#   or OFF build); TEST: test function names (default: the op tests).
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
B=$(cd "${1:?usage: cuda-sparse-emu.sh BUILD_DIR [TEST...]}" && pwd)
shift
TESTS=${*:-test_topk_rows_csr test_topk_batch_csr test_transpose test_gather_dots test_scatter_sums test_ops_deterministic}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
python3 - "$SRC" "$W" <<'PY'
import re, sys
src, w = sys.argv[1], sys.argv[2]
s = open(src + "/kernels/cuda_sparse.cu").read()
s = s.replace("#include <cub/device/device_radix_sort.cuh>\n", "")
s = s.replace('#include "kernels/cuda_common.cuh"', '#include "emu_cuda.h"')
s, n = re.subn(r"(\w+)<<<(.+?)>>>\(", r"EMU_LAUNCH(\1, \2)(", s)
if n == 0 or "<<<" in s:
    sys.exit("cuda-sparse-emu: could not rewrite the launches")
s += '''
static lg_cuda_ctx emu_ctx;
extern "C" const lg_backend *lg_emu_backend_cuda(void)
{
    static lg_backend t;
    static int init;
    if (!init) {
        t = *lg_backend_cpu();
        t.name = "cuda";
        t.device = "cuda (emulated on the host: tests/emu)";
        t.ctx = &emu_ctx;
        if (!lg_cuda_sparse_install(&t))
            return NULL;
        init = 1;
    }
    return &t;
}
'''
open(w + "/cuda_sparse_emu.cpp", "w").write(s)
t = open(src + "/tests/unit/test_cuda_sparse.c").read()
reps = [("{4, 70000, 64}", "{4, 7000, 64}"), ("{256, 65536, 64}};", "{16, 6553, 64}};"),
        ("{1, ((size_t)1 << 23) + 12345, 64 * 128}", "{1, 30000, 64}"),
        ("{128, 65536, 64 * 128}", "{16, 6000, 700}"),
        ("{256, 65536, ((size_t)1 << 23) + 5}", "{16, 5000, 40000}"),
        ("{256, 65536, 64},  {4096, 65536, 64}", "{256, 6553, 64},  {409, 6553, 64}"),
        ("{3, 100000, 90000}", "{3, 10000, 9000}"),
        ("{128, 4096, 32, 2304}", "{16, 4096, 32, 2304}"), ("{256, 65536, 64, 64}", "{64, 6553, 64, 64}"),
        ("const int rows = 256, cols = 65536, k = 64, d = 128;", "const int rows = 32, cols = 4096, k = 64, d = 64;"),
        ("    tc->steps = 30;\n    tc->batch = 256;", "    tc->steps = 8;\n    tc->batch = 64;"),
        ("        cfg.d_sae = 4096;\n        cfg.k = 16;\n        tc.batch = 512;\n        tc.steps = 20;",
         "        cfg.d_sae = 512;\n        cfg.k = 16;\n        tc.batch = 64;\n        tc.steps = 4;"),
        ("            tc.prefixes[0] = 256;\n            tc.prefixes[1] = 1024;",
         "            tc.prefixes[0] = 64;\n            tc.prefixes[1] = 128;"),
        ("    gpu = lg_backend_cuda();", "    gpu = lg_emu_backend_cuda();"),
        ("static const lg_backend *cpu, *gpu;", "const lg_backend *lg_emu_backend_cuda(void);\nstatic const lg_backend *cpu, *gpu;")]
for a, b in reps:
    if t.count(a) != 1:
        sys.exit("cuda-sparse-emu: tests/unit/test_cuda_sparse.c changed; update the size cuts (%r)" % a)
    t = t.replace(a, b)
open(w + "/test_emu.c", "w").write(t)
PY
INC=""
for m in tests engine kernels artifacts base; do INC="$INC -I$B/lg-include/$m"; done
BLAS_INC=$(pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
cp "$SRC/tests/emu/emu_cuda.h" "$W/"
g++ -std=c++20 -O1 -g -ffp-contract=off -w $INC $BLAS_INC -I"$W" -c "$W/cuda_sparse_emu.cpp" -o "$W/k.o"
gcc -std=c11 -O2 -g -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -DLEDGER_HAVE_CUDA=1 $INC $BLAS_INC \
    -isystem /usr/include/cjson -c "$W/test_emu.c" -o "$W/t.o"
g++ -o "$W/emu" "$W/t.o" "$W/k.o" "$B/liblgengine.a" "$B/liblgbase.a" "$B/liblgartifacts.a" \
    "$B/liblgbase.a" -lcrypto -lcjson -lm -ldl -fopenmp -lpthread
OMP_NUM_THREADS=1 "$W/emu" $TESTS
