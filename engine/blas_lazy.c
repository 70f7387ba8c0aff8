/*
 * blas_lazy.c - the few OpenBLAS entry points the engine calls
 * (cblas_sgemm, cblas_dgemm, openblas_get_config, openblas_get_num_threads,
 * openblas_set_num_threads),
 * defined here as forwarders to an OpenBLAS that is dlopen()ed on first use.
 *
 * Why: linked normally, libopenblas is mapped by every process. Its ~14,000
 * symbolic relocations were most of the dynamic linker's work at start-up
 * (perf: 60% of `ledger --version` in ld.so, most of it OpenBLAS symbol
 * lookups), and its constructor starts the BLAS thread pool (one thread per
 * core, idling in sched_yield) even for `ledger log`. Now only a process
 * that computes (training, similarity, the tests and benchmarks) loads it.
 *
 * Which library: LG_OPENBLAS_PATH (the file pkg-config found at configure
 * time), else the soname libopenblas.so.0 through the normal search path;
 * $LEDGER_OPENBLAS overrides both. OPENBLAS_NUM_THREADS etc. work as before
 * (OpenBLAS reads them when it is loaded, i.e. at the first call).
 *
 * Kernel choice: OpenBLAS 0.3.21 (Debian 12) does not recognise recent Intel
 * CPUs (e.g. this project's Xeon with AVX-512 and AVX512-BF16) and falls back
 * to its "Prescott" SSE3 kernels, 2.5x slower here than its Cooperlake ones
 * (bench_train_cpu: 2,040 vs 5,120 samples/s). So when OPENBLAS_CORETYPE is
 * not set and the CPU is an Intel with AVX-512 F/BW/DQ/VL, the loader sets it
 * before loading: "Cooperlake" with AVX512-BF16, else "SkylakeX" (what
 * OpenBLAS itself picks on the CPUs it knows with these features). Other CPUs
 * are left to OpenBLAS's own detection. OPENBLAS_CORETYPE set by the user is
 * never touched. The kernel in use is part of the CPU backend's device string
 * (openblas_get_config), which run manifests record.
 *
 * lg_blas_load() reports a failure as an error; the forwarders themselves
 * have no error channel (BLAS returns void), so if loading fails there they
 * print the reason and abort, as the dynamic linker would have at start-up.
 */
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "engine/blas_lazy.h"

#ifndef LG_OPENBLAS_PATH
#define LG_OPENBLAS_PATH "libopenblas.so.0"
#endif

/* The two GEMMs differ only in their element type T (float, double). */
#define GEMM_FN(name, T)                                                                                 \
    typedef void (*name)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint, blasint, \
                         blasint, T, const T *, blasint, const T *, blasint, T, T *, blasint)
GEMM_FN(sgemm_fn, float);
GEMM_FN(dgemm_fn, double);

static struct {
    sgemm_fn sgemm;
    dgemm_fn dgemm;
    char *(*get_config)(void);
    int (*get_num_threads)(void);
    void (*set_num_threads)(int);
} blas;
static char blas_reason[1024];
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void *sym(void *h, const char *name)
{
    void *p = dlsym(h, name);
    if (!p && !blas_reason[0])
        snprintf(blas_reason, sizeof(blas_reason), "OpenBLAS: symbol %s missing", name);
    return p;
}

const char *lg_blas_coretype(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_is("intel") && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
        return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
#endif
    return NULL;
}

static void blas_open(void)
{
    const char *env = getenv("LEDGER_OPENBLAS"), *core;
    const char *path = env && *env ? env : LG_OPENBLAS_PATH;
    void *h;
    if (!getenv("OPENBLAS_CORETYPE") && (core = lg_blas_coretype()))
        setenv("OPENBLAS_CORETYPE", core, 0); /* read by OpenBLAS's constructor */
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h && !(env && *env))
        h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(blas_reason, sizeof(blas_reason), "cannot load OpenBLAS (%s): %s", path,
                 why ? why : "unknown dlopen error");
        return;
    }
    *(void **)&blas.sgemm = sym(h, "cblas_sgemm");
    *(void **)&blas.dgemm = sym(h, "cblas_dgemm");
    *(void **)&blas.get_config = sym(h, "openblas_get_config");
    *(void **)&blas.get_num_threads = sym(h, "openblas_get_num_threads");
    *(void **)&blas.set_num_threads = sym(h, "openblas_set_num_threads");
}

int lg_blas_load(void)
{
    pthread_once(&blas_once, blas_open);
    if (blas_reason[0])
        return lg_error_set(LG_EINTERNAL, "%s", blas_reason);
    return 0;
}

static void need(void)
{
    pthread_once(&blas_once, blas_open);
    if (blas_reason[0]) {
        fprintf(stderr, "ledger: %s\n", blas_reason);
        abort();
    }
}

/* cblas_<x>gemm with element type T, forwarded to blas.<x>gemm. */
#define LAZY_GEMM(name, field, T)                                                                                \
    void name(OPENBLAS_CONST enum CBLAS_ORDER Order, OPENBLAS_CONST enum CBLAS_TRANSPOSE TransA,                 \
              OPENBLAS_CONST enum CBLAS_TRANSPOSE TransB, OPENBLAS_CONST blasint M, OPENBLAS_CONST blasint N,    \
              OPENBLAS_CONST blasint K, OPENBLAS_CONST T alpha, OPENBLAS_CONST T *A, OPENBLAS_CONST blasint lda, \
              OPENBLAS_CONST T *B, OPENBLAS_CONST blasint ldb, OPENBLAS_CONST T beta, T *C,                      \
              OPENBLAS_CONST blasint ldc)                                                                        \
    {                                                                                                            \
        need();                                                                                                  \
        blas.field(Order, TransA, TransB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);                          \
    }

LAZY_GEMM(cblas_sgemm, sgemm, float)
LAZY_GEMM(cblas_dgemm, dgemm, double)

char *openblas_get_config(void)
{
    need();
    return blas.get_config();
}

int openblas_get_num_threads(void)
{
    need();
    return blas.get_num_threads();
}

void openblas_set_num_threads(int n)
{
    need();
    blas.set_num_threads(n);
}
