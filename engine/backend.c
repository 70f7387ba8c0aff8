/*
 * backend.c - backend selection and the generic helpers of backend.h that are
 * written once on top of the vtable (so a new backend implements only the
 * table). Gradient clipping sums the squared norms of the buffers in their
 * given order on the host, in double: deterministic for a backend.
 */
#include "engine/backend.h"

#include <math.h>
#include <string.h>

#include "base/base.h"
#include "engine/blas_lazy.h"
#include "kernels/cuda.h"

int lg_backend_get(const char *name, const lg_backend **out)
{
    const lg_backend *cuda;
    int err;
    *out = NULL;
    if (!name || strcmp(name, "cpu") == 0 || strcmp(name, "auto") == 0) {
        cuda = name && strcmp(name, "auto") == 0 ? lg_backend_cuda() : NULL;
        if (cuda) {
            *out = cuda;
            return 0;
        }
        if ((err = lg_blas_load()) < 0) /* a clean error instead of abort() later */
            return lg_error_wrap("backend cpu");
        *out = lg_backend_cpu();
        return 0;
    }
    if (strcmp(name, "cuda") == 0) {
        if (!(cuda = lg_backend_cuda()))
            return lg_error_set(LG_EINPUT, "backend cuda: %s", lg_cuda_unavailable_reason());
        *out = cuda;
        return 0;
    }
    return lg_error_set(LG_EINPUT, "backend '%s': unknown (expected cpu, cuda or auto)", name);
}

int lg_backend_reduce_many(const lg_backend *be, const lg_reduce_req *reqs, int n, double *out)
{
    int i, err;
    if (be->reduce_many)
        return be->reduce_many(be, reqs, n, out);
    for (i = 0; i < n; i++) {
        switch (reqs[i].kind) {
        case LG_RED_SUM:
            err = be->sum(be, reqs[i].x, reqs[i].n, &out[i]);
            break;
        case LG_RED_SUMSQ:
            err = be->sumsq(be, reqs[i].x, reqs[i].n, &out[i]);
            break;
        case LG_RED_NNZ:
            err = be->count_nonzero(be, reqs[i].x, reqs[i].n, &out[i]);
            break;
        default:
            err = lg_error_set(LG_EINTERNAL, "reduce_many: request %d: unknown kind %d", i,
                               reqs[i].kind);
        }
        if (err < 0)
            return err;
    }
    return 0;
}

int lg_backend_clip_apply(const lg_backend *be, float *const *grads, const size_t *ns, int count,
                          double total, double max_norm, double *norm_out)
{
    double norm = sqrt(total);
    int i, err;
    if (norm_out)
        *norm_out = norm;
    if (max_norm > 0.0 && norm > max_norm) {
        float f = (float)(max_norm / norm);
        for (i = 0; i < count; i++)
            if ((err = be->scale_shift(be, grads[i], f, 0.0f, ns[i])) < 0)
                return err;
    }
    return 0;
}

int lg_backend_clip_grad_norm(const lg_backend *be, float *const *grads, const size_t *ns,
                              int count, double max_norm, double *norm_out)
{
    double total = 0.0;
    int i, err;
    for (i = 0; i < count; i++) {
        double s;
        if ((err = be->sumsq(be, grads[i], ns[i], &s)) < 0)
            return err;
        total += s;
    }
    return lg_backend_clip_apply(be, grads, ns, count, total, max_norm, norm_out);
}

void lg_backend_jumprelu_theta(const float *lthr, float *theta, size_t cols)
{
    size_t c;
    for (c = 0; c < cols; c++)
        theta[c] = expf(lthr[c]);
}

int lg_backend_alloc_upload(const lg_backend *be, const float *host, size_t n, float **out)
{
    int err;
    if ((err = be->alloc(be, n, out)) < 0)
        return err;
    if (n && (err = be->upload(be, *out, host, n)) < 0) {
        be->free(be, *out);
        *out = NULL;
        return err;
    }
    return 0;
}
