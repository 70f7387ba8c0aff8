/*
 * cuda_module.h - the ABI between the engine and the separately built CUDA
 * module (build/libledger_cuda.so; installed in <libdir>/ledger/).
 *
 * Why a module: cuBLAS and the CUDA runtime cost ~0.15 s and ~200 MB resident
 * to load. Linked into the executable, every `ledger --version`, `log` or
 * `query` paid that. The engine's loader (engine/backend_cuda_load.c)
 * dlopen()s the module only when a run asks for the CUDA backend (`--backend
 * cuda`, or `auto` when a backend is needed), so commands that do not train
 * never map it.
 *
 * The contract: the module exports one C symbol, LG_CUDA_MODULE_ENTRY, of
 * type lg_cuda_module_entry_fn. The loader calls it once with the host's
 * services and gets back a static table (never freed; the module is never
 * unloaded). Both sides check abi and the struct sizes, so a module built
 * from other sources is refused with a clear error instead of crashing.
 * Everything else in the module has hidden visibility: it reports errors
 * through host->error_set (the engine's thread-local lg_error_set), so an
 * error raised inside a CUDA op reaches the CLI like any other.
 * C never includes .cuh (STYLE.md 13); this header is plain C.
 */
#ifndef LG_KERNELS_CUDA_MODULE_H
#define LG_KERNELS_CUDA_MODULE_H

#include <stddef.h>

#include "engine/backend.h"

#define LG_CUDA_MODULE_ABI 1
#define LG_CUDA_MODULE_ENTRY "lg_cuda_module_open_v1"
#define LG_CUDA_MODULE_FILE "libledger_cuda.so"

/* Services the engine lends the module. */
typedef struct {
    int abi;             /* LG_CUDA_MODULE_ABI */
    size_t size;         /* sizeof(lg_cuda_host) */
    size_t backend_size; /* sizeof(lg_backend) as the engine was built */
    /* lg_error_set of the engine (base/base.h) */
    int (*error_set)(int code, const char *fmt, ...);
    /* theta[c] = expf(lthr[c]) computed by the engine (engine/backend.c,
     * lg_backend_jumprelu_theta), so that both backends use bit-identical
     * JumpReLU thresholds. */
    void (*jumprelu_theta)(const float *lthr, float *theta, size_t cols);
} lg_cuda_host;

/* What the module gives back (a static table). */
typedef struct {
    int abi;             /* LG_CUDA_MODULE_ABI */
    size_t size;         /* sizeof(lg_cuda_module) */
    size_t backend_size; /* sizeof(lg_backend) as the module was built */
    /* The backend, initialised on first call; NULL when no device is usable. */
    const lg_backend *(*backend)(void);
    /* Why backend() is NULL; "" when usable. Static string. */
    const char *(*unavailable_reason)(void);
    /* kernels/cuda.h's lg_cuda_dict_mmcs. */
    int (*dict_mmcs)(const float *A, int m1, const float *B, int m2, int d, int abs_cos,
                     double *mmcs_ab, double *mmcs_ba, float *maxcos_a, float *maxcos_b);
} lg_cuda_module;

/* The exported entry: NULL when host is incompatible (abi or sizes). */
typedef const lg_cuda_module *(*lg_cuda_module_entry_fn)(const lg_cuda_host *host);

#endif
