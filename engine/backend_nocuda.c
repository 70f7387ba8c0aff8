/*
 * backend_nocuda.c - lg_backend_cuda() for builds without CUDA: there is no
 * CUDA backend, so it returns NULL and lg_backend_get("auto") picks the CPU.
 * When CUDA is built (LEDGER_HAVE_CUDA), kernels/ defines the real one and
 * this file compiles to nothing.
 */
#include "engine/backend.h"

#ifndef LEDGER_HAVE_CUDA
const lg_backend *lg_backend_cuda(void) { return NULL; }
#else
typedef int lg_backend_nocuda_empty; /* ISO C forbids an empty translation unit */
#endif
