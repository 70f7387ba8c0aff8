/*
 * recon.c - reconstruction and sparsity metrics (formulas in recon.h).
 *
 * The forward pass runs on the backend; the host keeps, per dimension, the
 * running (count, mean, M2) of the evaluated rows for the FVU denominator
 * (Chan, Golub & LeVeque's pairwise combination, in double: no cancellation
 * from "E[x^2] - E[x]^2"), the running squared error, the number of non-zero
 * activations and, per latent, how many rows it fired on (double counts, so
 * they are exact for any N).
 */
#include "engine/recon.h"

#include <math.h>
#include <string.h>

#include "base/base.h"

struct lg_recon {
    const lg_backend *be;
    lg_sae_config cfg;
    int max_rows;
    float thr;                          /* BatchTopK / Matryoshka inference threshold */
    float *W_enc, *b_enc, *W_dec, *b_dec, *lthr; /* device weights; lthr [m] JumpReLU */
    float *x, *xc, *xhat;               /* [max_rows, d] */
    float *pre, *acts;                  /* [max_rows, m] */
    float *counts;                      /* [m] device, per chunk */
    float *host_counts;                 /* host [m] */
    double *fired;                      /* host [m] rows fired on, all chunks */
    double *mean, *m2, *cmean;          /* host [d] running mean / M2; chunk mean */
    long n;                             /* rows so far */
    double sse;                         /* sum ||x - xhat||^2 */
    double nnz;                         /* non-zero activations */
    int transcoder;                     /* lg_recon_new_transcoder: rows are read without b_dec, targets scored */
};

void lg_recon_free(lg_recon *r)
{
    const lg_backend *be;
    if (!r)
        return;
    be = r->be;
    be->free(be, r->W_enc);
    be->free(be, r->b_enc);
    be->free(be, r->W_dec);
    be->free(be, r->b_dec);
    be->free(be, r->lthr);
    be->free(be, r->x);
    be->free(be, r->xc);
    be->free(be, r->xhat);
    be->free(be, r->pre);
    be->free(be, r->acts);
    be->free(be, r->counts);
    lg_free(r->host_counts);
    lg_free(r->fired);
    lg_free(r->mean);
    lg_free(r->m2);
    lg_free(r->cmean);
    lg_free(r);
}

int lg_recon_new(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w,
                 int max_rows, lg_recon **out)
{
    lg_recon *r = NULL;
    float *lthr = NULL;
    size_t d = (size_t)cfg->d_in, m = (size_t)cfg->d_sae, R = (size_t)max_rows, j;
    int err;
    *out = NULL;
    if ((err = lg_sae_config_check(cfg)) < 0)
        return err;
    if (cfg->arch == LG_ARCH_ROUTESAE) /* its input is [L, d]: engine/arch_route.h lg_route_eval */
        return lg_error_set(LG_EINPUT, "recon: arch routesae is evaluated by lg_route_eval, not on a backend");
    if (w->d_in != cfg->d_in || w->d_sae != cfg->d_sae)
        return lg_error_set(LG_EINPUT, "recon: weights are [%d x %d], config wants [%d x %d]",
                            w->d_in, w->d_sae, cfg->d_in, cfg->d_sae);
    if (max_rows < 1)
        return lg_error_set(LG_EINPUT, "recon: max_rows must be >= 1 (got %d)", max_rows);
    if (!(r = lg_calloc(1, sizeof(*r))))
        return lg_error_wrap("recon");
    r->be = be;
    r->cfg = *cfg;
    r->max_rows = max_rows;
    r->thr = w->threshold[0] > 0.0f ? w->threshold[0] : 0.0f;
    if ((err = lg_backend_alloc_upload(be, w->W_enc, d * m, &r->W_enc)) < 0 ||
        (err = lg_backend_alloc_upload(be, w->b_enc, m, &r->b_enc)) < 0 ||
        (err = lg_backend_alloc_upload(be, w->W_dec, m * d, &r->W_dec)) < 0 ||
        (err = lg_backend_alloc_upload(be, w->b_dec, d, &r->b_dec)) < 0 ||
        (err = be->alloc(be, R * d, &r->x)) < 0 || (err = be->alloc(be, R * d, &r->xc)) < 0 ||
        (err = be->alloc(be, R * d, &r->xhat)) < 0 || (err = be->alloc(be, R * m, &r->pre)) < 0 ||
        (err = be->alloc(be, R * m, &r->acts)) < 0 || (err = be->alloc(be, m, &r->counts)) < 0)
        goto out;
    if (cfg->arch == LG_ARCH_JUMPRELU) {
        if (!(lthr = lg_malloc(m * sizeof(float)))) {
            err = lg_error_wrap("recon");
            goto out;
        }
        for (j = 0; j < m; j++) {
            if (!(w->threshold[j] > 0.0f)) {
                err = lg_error_set(LG_EINPUT, "recon: jumprelu threshold[%zu] = %g must be > 0",
                                   j, (double)w->threshold[j]);
                goto out;
            }
            lthr[j] = logf(w->threshold[j]);
        }
        if ((err = lg_backend_alloc_upload(be, lthr, m, &r->lthr)) < 0)
            goto out;
    }
    r->host_counts = lg_malloc(m * sizeof(float));
    r->fired = lg_calloc(m, sizeof(double));
    r->mean = lg_calloc(d, sizeof(double));
    r->m2 = lg_calloc(d, sizeof(double));
    r->cmean = lg_calloc(d, sizeof(double));
    if (!r->host_counts || !r->fired || !r->mean || !r->m2 || !r->cmean) {
        err = lg_error_wrap("recon");
        goto out;
    }
    *out = r;
    r = NULL;
    err = 0;
out:
    lg_free(lthr);
    lg_recon_free(r);
    return err;
}

#define TRY(call)               \
    do {                        \
        if ((err = (call)) < 0) \
            return err;         \
    } while (0)

/* targets [n, d_in] (transcoder) or NULL (rows are their own target). */
static int recon_add(lg_recon *r, const float *rows, const float *targets, int n)
{
    const lg_backend *be = r->be;
    const int d = r->cfg.d_in, m = r->cfg.d_sae;
    const size_t nd = (size_t)n * d, nm = (size_t)n * m;
    double sse, nnz;
    int err, i, c;
    if (n < 1 || n > r->max_rows)
        return lg_error_set(LG_EINPUT, "recon: chunk of %d rows (expected 1..%d)", n, r->max_rows);

    if (!r->transcoder != !targets)
        return lg_error_set(LG_EINPUT, r->transcoder ? "recon: a transcoder needs targets"
                                                     : "recon: targets given for an SAE");
    TRY(be->upload(be, r->x, rows, nd));
    if (r->transcoder) /* the encoder reads x itself; x is then replaced by the target */
        TRY(be->copy(be, r->xc, r->x, nd));
    else
        TRY(be->add_bias_rows(be, r->x, r->b_dec, -1.0f, r->xc, n, d));
    TRY(be->gemm(be, 0, 0, n, m, d, 1.0f, r->xc, d, r->W_enc, m, 0.0f, r->pre, m));
    TRY(be->add_bias_rows(be, r->pre, r->b_enc, 1.0f, r->pre, n, m)); /* [n, m] */
    switch (r->cfg.arch) {
    case LG_ARCH_RELU:
        TRY(be->relu(be, r->pre, r->acts, nm));
        break;
    case LG_ARCH_TOPK:
    case LG_ARCH_HIER_TOPK: /* inference at the largest budget k (arch_hier.h) */
        TRY(be->topk_rows(be, r->pre, NULL, r->acts, n, m, r->cfg.k));
        break;
    case LG_ARCH_BATCHTOPK:
    case LG_ARCH_MATRYOSHKA:
        TRY(be->threshold_scalar(be, r->pre, r->thr, r->acts, nm));
        break;
    case LG_ARCH_JUMPRELU:
        TRY(be->jumprelu_fwd(be, r->pre, r->lthr, r->acts, n, m));
        break;
    case LG_ARCH_ROUTESAE: /* refused by lg_recon_new */
        break;
    }
    TRY(be->gemm(be, 0, 0, n, d, m, 1.0f, r->acts, m, r->W_dec, d, 0.0f, r->xhat, d));
    TRY(be->add_bias_rows(be, r->xhat, r->b_dec, 1.0f, r->xhat, n, d));
    if (targets) {
        TRY(be->upload(be, r->x, targets, nd));
        rows = targets; /* the variance below is the target's */
    }
    TRY(be->axpby(be, nd, 1.0f, r->xhat, -1.0f, r->x, r->xhat)); /* xhat - x */
    TRY(be->sumsq(be, r->xhat, nd, &sse));
    TRY(be->count_nonzero(be, r->acts, nm, &nnz));
    TRY(be->fill(be, r->counts, 0.0f, (size_t)m));
    TRY(be->col_count_nonzero(be, r->acts, n, m, r->counts));
    TRY(be->download(be, r->host_counts, r->counts, (size_t)m));
    for (c = 0; c < m; c++)
        r->fired[c] += r->host_counts[c];
    r->sse += sse;
    r->nnz += nnz;

    /* per-dimension (count, mean, M2) of this chunk, merged into the running one */
    for (c = 0; c < d; c++)
        r->cmean[c] = 0.0;
    for (i = 0; i < n; i++)
        for (c = 0; c < d; c++)
            r->cmean[c] += rows[(size_t)i * d + c];
    for (c = 0; c < d; c++) {
        double cm = r->cmean[c] / n, cm2 = 0.0, delta, tot = (double)(r->n + n);
        for (i = 0; i < n; i++) {
            double dv = rows[(size_t)i * d + c] - cm;
            cm2 += dv * dv;
        }
        delta = cm - r->mean[c];
        r->mean[c] += delta * n / tot;
        r->m2[c] += cm2 + delta * delta * (double)r->n * n / tot;
    }
    r->n += n;
    return 0;
}

int lg_recon_add(lg_recon *r, const float *rows, int n)
{
    return recon_add(r, rows, NULL, n);
}

int lg_recon_add_target(lg_recon *r, const float *rows, const float *targets, int n)
{
    if (!targets)
        return lg_error_set(LG_EINPUT, "recon: a transcoder needs targets");
    return recon_add(r, rows, targets, n);
}

int lg_recon_new_transcoder(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w, int max_rows,
                            lg_recon **out)
{
    int err;
    if ((err = lg_recon_new(be, cfg, w, max_rows, out)) < 0)
        return err;
    (*out)->transcoder = 1;
    return 0;
}

int lg_recon_finish(lg_recon *r, double dense_threshold, lg_recon_metrics *out)
{
    double var = 0.0, dead = 0.0, dense = 0.0;
    int c;
    memset(out, 0, sizeof(*out));
    if (r->n == 0)
        return lg_error_set(LG_EINPUT, "recon: no rows evaluated");
    if (dense_threshold < 0)
        dense_threshold = 0.1;
    for (c = 0; c < r->cfg.d_in; c++)
        var += r->m2[c];
    for (c = 0; c < r->cfg.d_sae; c++) {
        dead += r->fired[c] == 0.0;
        dense += r->fired[c] > dense_threshold * (double)r->n;
    }
    out->n_rows = r->n;
    out->mse = r->sse / r->n;
    out->fvu = var > 0.0 ? r->sse / var : NAN;
    out->explained_variance = 1.0 - out->fvu;
    out->l0 = r->nnz / r->n;
    out->dead_frac = dead / r->cfg.d_sae;
    out->dense_frac = dense / r->cfg.d_sae;
    return 0;
}

int lg_recon_eval_targets(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w, const float *rows,
                          const float *targets, long n, double dense_threshold, lg_recon_metrics *out)
{
    lg_recon *r = NULL;
    long i;
    int err, chunk = n < 4096 ? (int)(n > 0 ? n : 1) : 4096;
    if ((err = targets ? lg_recon_new_transcoder(be, cfg, w, chunk, &r) : lg_recon_new(be, cfg, w, chunk, &r)) < 0)
        return err;
    for (i = 0; i < n; i += chunk) {
        int rows_now = (int)(n - i < chunk ? n - i : chunk);
        const float *x = rows + (size_t)i * cfg->d_in;
        if ((err = targets ? lg_recon_add_target(r, x, targets + (size_t)i * cfg->d_in, rows_now)
                           : lg_recon_add(r, x, rows_now)) < 0)
            goto out;
    }
    err = lg_recon_finish(r, dense_threshold, out);
out:
    lg_recon_free(r);
    return err;
}

int lg_recon_eval(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w,
                  const float *rows, long n, double dense_threshold, lg_recon_metrics *out)
{
    return lg_recon_eval_targets(be, cfg, w, rows, NULL, n, dense_threshold, out);
}
