/*
 * backend_cuda_load.c - lg_backend_cuda() and the rest of kernels/cuda.h on
 * the engine side: the CUDA backend lives in a separately built module
 * (libledger_cuda.so, kernels/cuda_module.h) that is dlopen()ed on the first
 * call, i.e. only when a run asks for the CUDA backend. Commands that do not
 * train never load cuBLAS or the CUDA runtime.
 *
 * Where the module is looked for, in order (the first that exists is used):
 *   1. $LEDGER_CUDA_MODULE (a path; when set, nothing else is tried)
 *   2. <dir of /proc/self/exe>/libledger_cuda.so          (the build tree)
 *   3. <dir of /proc/self/exe>/LG_CUDA_MODULE_RELDIR/...  (installed: ../lib/ledger)
 * A module that is found but fails to load (missing libcublas, wrong ABI)
 * is an error naming the file and the reason; no other candidate is tried
 * after it, so a broken install is not silently replaced by another copy.
 *
 * Builds without CUDA (LEDGER_HAVE_CUDA undefined) load nothing: there is
 * no CUDA backend and lg_backend_get("auto") picks the CPU.
 * Thread safety: the load happens once (pthread_once); afterwards the
 * module's table is read-only.
 */
#include "engine/backend.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "kernels/cuda.h"

#ifdef LEDGER_HAVE_CUDA
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "kernels/cuda_module.h"

#ifndef LG_CUDA_MODULE_RELDIR
#define LG_CUDA_MODULE_RELDIR "../lib/ledger"
#endif

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const lg_cuda_module *module;   /* NULL until loaded successfully */
static char load_reason[2 * PATH_MAX + 512] = "CUDA module not loaded";

static const lg_cuda_host host_api = {
    LG_CUDA_MODULE_ABI, sizeof(lg_cuda_host), sizeof(lg_backend), lg_error_set,
    lg_backend_jumprelu_theta,
};

/* dir of the running executable into buf (no trailing slash); 0 or -1. */
static int exe_dir(char *buf, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", buf, len - 1);
    char *slash;
    if (n <= 0 || (size_t)n >= len - 1)
        return -1;
    buf[n] = '\0';
    if (!(slash = strrchr(buf, '/')))
        return -1;
    *slash = '\0';
    return 0;
}

static void load_from(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    lg_cuda_module_entry_fn entry;
    const lg_cuda_module *m;
    if (!h) {
        const char *why = dlerror();
        snprintf(load_reason, sizeof(load_reason), "cannot load the CUDA module %.*s: %.1024s",
                 PATH_MAX, path, why ? why : "unknown dlopen error");
        return;
    }
    *(void **)(&entry) = dlsym(h, LG_CUDA_MODULE_ENTRY);
    if (!entry) {
        snprintf(load_reason, sizeof(load_reason), "%s: not a ledger CUDA module (no %s)", path,
                 LG_CUDA_MODULE_ENTRY);
        return;  /* left mapped: dlclose of a CUDA library at run time is not worth the risk */
    }
    m = entry(&host_api);
    if (!m || m->abi != LG_CUDA_MODULE_ABI || m->size != sizeof(lg_cuda_module) ||
        m->backend_size != sizeof(lg_backend)) {
        snprintf(load_reason, sizeof(load_reason),
                 "%s: built from other sources (module ABI mismatch); rebuild it with this ledger",
                 path);
        return;
    }
    module = m;
    load_reason[0] = '\0';
}

static void load_module(void)
{
    const char *env = getenv("LEDGER_CUDA_MODULE");
    char dir[PATH_MAX], path[PATH_MAX];
    if (env && *env) {
        if (access(env, F_OK) != 0) {
            snprintf(load_reason, sizeof(load_reason), "LEDGER_CUDA_MODULE=%.*s: no such file",
                     PATH_MAX, env);
            return;
        }
        load_from(env);
        return;
    }
    if (exe_dir(dir, sizeof(dir)) < 0) {
        snprintf(load_reason, sizeof(load_reason),
                 "CUDA module: cannot resolve /proc/self/exe; set LEDGER_CUDA_MODULE");
        return;
    }
    if (snprintf(path, sizeof(path), "%s/%s", dir, LG_CUDA_MODULE_FILE) < (int)sizeof(path) &&
        access(path, F_OK) == 0) {
        load_from(path);
        return;
    }
    if (snprintf(path, sizeof(path), "%s/%s/%s", dir, LG_CUDA_MODULE_RELDIR,
                 LG_CUDA_MODULE_FILE) < (int)sizeof(path) &&
        access(path, F_OK) == 0) {
        load_from(path);
        return;
    }
    snprintf(load_reason, sizeof(load_reason),
             "CUDA module %s not found (looked in %.*s and %.*s/%s; set LEDGER_CUDA_MODULE)",
             LG_CUDA_MODULE_FILE, 1024, dir, 1024, dir, LG_CUDA_MODULE_RELDIR);
}

const lg_backend *lg_backend_cuda(void)
{
    pthread_once(&load_once, load_module);
    return module ? module->backend() : NULL;
}

const char *lg_cuda_unavailable_reason(void)
{
    pthread_once(&load_once, load_module);
    return module ? module->unavailable_reason() : load_reason;
}

int lg_cuda_dict_mmcs(const float *A, int m1, const float *B, int m2, int d, int abs_cos,
                      double *mmcs_ab, double *mmcs_ba, float *maxcos_a, float *maxcos_b)
{
    pthread_once(&load_once, load_module);
    if (!module)
        return lg_error_set(LG_EINPUT, "dict_mmcs: no CUDA backend: %s", load_reason);
    return module->dict_mmcs(A, m1, B, m2, d, abs_cos, mmcs_ab, mmcs_ba, maxcos_a, maxcos_b);
}

#else /* !LEDGER_HAVE_CUDA */

const lg_backend *lg_backend_cuda(void) { return NULL; }

const char *lg_cuda_unavailable_reason(void) { return "this build has no CUDA backend"; }

int lg_cuda_dict_mmcs(const float *A, int m1, const float *B, int m2, int d, int abs_cos,
                      double *mmcs_ab, double *mmcs_ba, float *maxcos_a, float *maxcos_b)
{
    return lg_error_set(LG_EINPUT, "dict_mmcs: this build has no CUDA backend");
}

#endif
