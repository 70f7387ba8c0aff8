// cuda_module.cu - the entry point of the CUDA module (kernels/cuda_module.h):
// the one exported symbol, plus the module's side of the engine's services.
//
// The module is built with hidden visibility; the engine's loader
// (engine/backend_cuda_load.c) dlopen()s it with RTLD_LOCAL and calls the
// entry once. The module does not link the engine: lg_error_set below is
// the module's own (hidden) definition, which formats the message and hands
// it to the engine's lg_error_set through the host table, so errors raised
// in CUDA ops land in the engine's thread-local error like any other.
#include <stdarg.h>
#include <stdio.h>

#include "kernels/cuda_common.cuh"

extern "C" {
#include "kernels/cuda_module.h"
}

static const lg_cuda_host *host; // set once by the entry, before any op runs

extern "C" int lg_error_set(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return host ? host->error_set(code, "%s", msg) : code;
}

extern "C" void lg_cuda_host_theta(const float *lthr, float *theta, size_t cols)
{
    host->jumprelu_theta(lthr, theta, cols);
}

static const lg_cuda_module module_table = {
    LG_CUDA_MODULE_ABI, sizeof(lg_cuda_module), sizeof(lg_backend),
    lg_cudam_backend, lg_cudam_unavailable_reason, lg_cudam_dict_mmcs,
};

extern "C" __attribute__((visibility("default"))) const lg_cuda_module *
lg_cuda_module_open_v1(const lg_cuda_host *h)
{
    if (!h || h->abi != LG_CUDA_MODULE_ABI || h->size != sizeof(lg_cuda_host) ||
        h->backend_size != sizeof(lg_backend) || !h->error_set || !h->jumprelu_theta)
        return NULL;
    host = h;
    return &module_table;
}
