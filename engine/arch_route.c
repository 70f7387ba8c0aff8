/*
 * arch_route.c - RouteSAE: model, host trainer and evaluation (formulas in
 * arch_route.h and engine/README.md "RouteSAE").
 *
 * Why a host trainer of its own: the router mixes L layers before the SAE,
 * which none of the backend ops (engine/backend.h) express, and the studies
 * that use it are small. Everything runs here on the host, in float64
 * arithmetic over float32 parameters.
 *
 * Determinism: the per-row forward (router, u, the dense encoder, top-k,
 * decoder) runs on OpenMP threads, but each row's outputs are computed by one
 * thread in a fixed order; every gradient is a sum over rows taken in row
 * order on one thread; Adam and the renormalisation are elementwise or per
 * row. Nothing depends on the thread count.
 *
 * Invariants: P[i], G[i], M[i], V[i] have n[i] elements (parameter order
 * W_enc, b_enc, W_dec, b_dec, W_router, b_router); rows of W_dec are unit
 * norm after every step.
 *
 * RouteSAE is two files that share engine/arch_route_int.h: this one holds
 * the model (configs, initial weights), the per-row forward and the
 * evaluation; arch_route_train.c the host trainer (one seed and a group).
 */
#include "engine/arch_route.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/base.h"
#include "engine/backend_cpu_sparse.h" /* lg_cpu_threads */
#include "engine/arch_route_int.h"

route_shape route_shape_of(const lg_sae_config *c, int n_layers)
{
    route_shape s = {c->d_in, c->d_sae, c->k, n_layers};
    return s;
}

int lg_route_alloc_router(lg_sae_weights *w, int n_layers)
{
    if (n_layers < 1)
        return lg_error_set(LG_EINPUT, "routesae: n_layers must be >= 1 (got %d)", n_layers);
    lg_free(w->W_router);
    lg_free(w->b_router);
    w->n_layers = n_layers;
    w->W_router = lg_calloc((size_t)w->d_in * n_layers, sizeof(float));
    w->b_router = lg_calloc((size_t)n_layers, sizeof(float));
    if (!w->W_router || !w->b_router)
        return lg_error_wrap("allocating the router [%d x %d]", w->d_in, n_layers);
    return 0;
}

int lg_route_check(const lg_sae_config *cfg, const lg_train_config *tc)
{
    int err;
    if (cfg->arch != LG_ARCH_ROUTESAE)
        return lg_error_set(LG_EINPUT, "routesae: config is for arch %s", lg_arch_name(cfg->arch));
    if ((err = lg_sae_config_check(cfg)) < 0)
        return err;
    return 0;
}

int lg_route_check_backend(const lg_backend *be)
{
    if (be && strcmp(be->name, "cpu") != 0)
        return lg_error_set(LG_EINPUT, "sae.arch: the %s backend does not implement \"routesae\" (its trainer "
                            "runs on the host: use --backend cpu)", be->name);
    return 0;
}

int lg_route_cell_config(lg_sae_config *cfg, const lg_train_config *tc, int layers, int b_dec_init, int has_ood,
                         const char *backend)
{
    if (cfg->arch != LG_ARCH_ROUTESAE)
        return lg_error_set(LG_EINPUT, "sae.arch: the data is layered [n, L=%d, d=%d]; only \"routesae\" takes "
                            "layered data (got \"%s\"; set data.layer to train it on one layer)", layers, layers > 0 ? cfg->d_in / layers : 0,
                            lg_arch_name(cfg->arch));
    if (layers < 1)
        return lg_error_set(LG_EINPUT, "sae.arch: \"routesae\" needs layered data, a 3-D [n, L, d] safetensors "
                            "tensor in data.path (the data here is 2-D)");
    if (cfg->d_in % layers != 0)
        return lg_error_set(LG_EINPUT, "routesae: row width %d is not a multiple of %d layers", cfg->d_in, layers);
    if (backend && strcmp(backend, "cpu") != 0)
        return lg_error_set(LG_EINPUT, "sae.arch: the %s backend does not implement \"routesae\" (its trainer "
                            "runs on the host: use --backend cpu)", backend);
    if (b_dec_init == 1)
        return lg_error_set(LG_EINPUT, "train.b_dec_init: \"median\" is not supported with routesae (use \"mean\" "
                            "or \"zero\")");
    if (has_ood)
        return lg_error_set(LG_EINPUT, "data.ood: not supported with routesae");
    cfg->d_in /= layers;
    return lg_route_check(cfg, tc);
}

int lg_route_init_weights(const lg_sae_config *cfg, int n_layers, uint64_t seed, const float *row_mean,
                          lg_sae_weights *out)
{
    float *bdec = NULL;
    int i, l, err;
    memset(out, 0, sizeof(*out));
    if (n_layers < 1)
        return lg_error_set(LG_EINPUT, "routesae: n_layers: must be >= 1 (got %d)", n_layers);
    if (row_mean) {
        if (!(bdec = lg_malloc((size_t)cfg->d_in * sizeof(float))))
            return LG_ENOMEM;
        for (i = 0; i < cfg->d_in; i++) {
            double a = 0.0;
            for (l = 0; l < n_layers; l++)
                a += row_mean[(size_t)l * cfg->d_in + i];
            bdec[i] = (float)(a / n_layers);
        }
    }
    err = lg_sae_init_weights(cfg, seed, bdec, out);
    lg_free(bdec);
    if (err == 0 && (err = lg_route_alloc_router(out, n_layers)) < 0) /* zero: uniform routing */
        lg_sae_weights_release(out);
    return err;
}

int lg_route_eval_json(const lg_sae_config *cfg, const lg_sae_weights *w, const float *rows, long n,
                       double dense_threshold, lg_recon_metrics *out, cJSON *metrics)
{
    double *rm = NULL, ent;
    char key[48];
    int l, err;
    if (!(rm = lg_malloc((size_t)(w->n_layers > 0 ? w->n_layers : 1) * sizeof(double))))
        return LG_ENOMEM;
    if ((err = lg_route_eval(cfg, w, rows, n, dense_threshold, out, rm, &ent)) < 0)
        goto out;
    if (!cJSON_AddNumberToObject(metrics, "route_entropy", ent)) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    for (l = 0; l < w->n_layers; l++) {
        snprintf(key, sizeof key, "route_weight_%d", l);
        if (!cJSON_AddNumberToObject(metrics, key, rm[l])) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    lg_free(rm);
    return err;
}

/* ---- the forward of one row -------------------------------------------------- */

/* The k largest of pre[0..m) (value desc, index asc; scanning j upwards, a
 * later equal value never displaces an earlier one) into idx/val, ReLU'd.
 * With only set, among the j where only[j] is set (AuxK's dead latents); the
 * caller sees that at least k are, or the tail of idx/val stays unwritten. */
void route_topk_row(const double *pre, const unsigned char *only, int m, int k, int *idx, double *val)
{
    int n = 0, j, q;
    for (j = 0; j < m; j++) {
        double v = pre[j];
        if ((only && !only[j]) || (n == k && !(v > val[k - 1])))
            continue;
        q = n < k ? n++ : k - 1;
        while (q > 0 && v > val[q - 1]) {
            val[q] = val[q - 1];
            idx[q] = idx[q - 1];
            q--;
        }
        val[q] = v;
        idx[q] = j;
    }
    for (q = 0; q < k; q++)
        if (!(val[q] > 0.0))
            val[q] = 0.0;
}

static void forward_row(const route_shape *cfg, const route_params *P, const float *x, route_row *s)
{
    const int d = cfg->d_in, m = cfg->d_sae, L = cfg->n_layers, k = cfg->k;
    double zmax = -INFINITY, zsum = 0.0;
    int i, l, j, q;
    for (i = 0; i < d; i++) {
        double a = 0.0;
        for (l = 0; l < L; l++)
            a += x[(size_t)l * d + i];
        s->pool[i] = a / L;
    }
    for (l = 0; l < L; l++) {
        double z = P->b_router[l];
        for (i = 0; i < d; i++)
            z += s->pool[i] * P->W_router[(size_t)i * L + l];
        s->r[l] = z;
        if (z > zmax)
            zmax = z;
    }
    for (l = 0; l < L; l++) {
        s->r[l] = exp(s->r[l] - zmax);
        zsum += s->r[l];
    }
    for (l = 0; l < L; l++)
        s->r[l] /= zsum;
    for (i = 0; i < d; i++) {
        double a = 0.0;
        for (l = 0; l < L; l++)
            a += s->r[l] * x[(size_t)l * d + i];
        s->u[i] = a;
        s->xin[i] = a - P->b_dec[i];
    }
    for (j = 0; j < m; j++)
        s->pre[j] = P->b_enc[j];
    for (i = 0; i < d; i++) {
        const float *wr = P->W_enc + (size_t)i * m;
        double xi = s->xin[i];
        for (j = 0; j < m; j++)
            s->pre[j] += xi * wr[j];
    }
    route_topk_row(s->pre, NULL, m, k, s->idx, s->val);
    for (i = 0; i < d; i++)
        s->uhat[i] = P->b_dec[i];
    for (q = 0; q < k; q++) {
        const float *wd = P->W_dec + (size_t)s->idx[q] * d;
        double a = s->val[q];
        if (a == 0.0)
            continue;
        for (i = 0; i < d; i++)
            s->uhat[i] += a * wd[i];
    }
}

void route_scratch_release(route_scratch *s)
{
    lg_free(s->pool);
    lg_free(s->r);
    lg_free(s->u);
    lg_free(s->xin);
    lg_free(s->pre);
    lg_free(s->uhat);
    lg_free(s->val);
    lg_free(s->idx);
    memset(s, 0, sizeof(*s));
}

int route_scratch_alloc(route_scratch *s, const route_shape *cfg, long n)
{
    size_t N = (size_t)n, d = (size_t)cfg->d_in;
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->pool = lg_malloc(N * d * sizeof(double));
    s->r = lg_malloc(N * cfg->n_layers * sizeof(double));
    s->u = lg_malloc(N * d * sizeof(double));
    s->xin = lg_malloc(N * d * sizeof(double));
    s->pre = lg_malloc(N * cfg->d_sae * sizeof(double));
    s->uhat = lg_malloc(N * d * sizeof(double));
    s->val = lg_malloc(N * cfg->k * sizeof(double));
    s->idx = lg_malloc(N * cfg->k * sizeof(int));
    if (!s->pool || !s->r || !s->u || !s->xin || !s->pre || !s->uhat || !s->val || !s->idx) {
        route_scratch_release(s);
        return lg_error_set(LG_ENOMEM, "routesae: out of memory for %ld rows of scratch", n);
    }
    return 0;
}

route_row route_scratch_row(const route_scratch *s, const route_shape *cfg, long b)
{
    route_row r;
    size_t B = (size_t)b, d = (size_t)cfg->d_in;
    r.pool = s->pool + B * d;
    r.r = s->r + B * cfg->n_layers;
    r.u = s->u + B * d;
    r.xin = s->xin + B * d;
    r.pre = s->pre + B * cfg->d_sae;
    r.uhat = s->uhat + B * d;
    r.val = s->val + B * cfg->k;
    r.idx = s->idx + B * cfg->k;
    return r;
}

/* Forward of rows [n, L*d] into s (rows on threads; each row on one). */
void route_forward_rows(const route_shape *cfg, const route_params *P, const float *rows, long n,
                        const route_scratch *s)
{
    const size_t Ld = (size_t)cfg->n_layers * cfg->d_in;
    long b;
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if (n > 1)
    for (b = 0; b < n; b++) {
        route_row r = route_scratch_row(s, cfg, b);
        forward_row(cfg, P, rows + (size_t)b * Ld, &r);
    }
}

static route_params params_of(const lg_sae_weights *w)
{
    route_params P = {w->W_enc, w->b_enc, w->W_dec, w->b_dec, w->W_router, w->b_router};
    return P;
}

int route_check_weights(const lg_sae_config *cfg, const lg_sae_weights *w)
{
    if (cfg->arch != LG_ARCH_ROUTESAE || w->d_in != cfg->d_in || w->d_sae != cfg->d_sae || !w->W_router ||
        !w->b_router || w->n_layers < 1)
        return lg_error_set(LG_EINPUT, "routesae: weights [%d x %d%s] do not match the config [%d x %d] or have no "
                            "router", w->d_in, w->d_sae, w->W_router ? "" : ", no router", cfg->d_in, cfg->d_sae);
    return 0;
}

/* ---- evaluation ------------------------------------------------------------------ */

#define EVAL_CHUNK 1024

int lg_route_forward(const lg_sae_config *cfg_in, const lg_sae_weights *w, const float *rows, long n, double *u,
                     double *uhat, double *r)
{
    const route_shape sh = route_shape_of(cfg_in, w->n_layers), *cfg = &sh;
    const route_params P = params_of(w);
    const size_t Ld = (size_t)cfg->n_layers * cfg->d_in, d = (size_t)cfg->d_in, L = (size_t)cfg->n_layers;
    route_scratch s;
    long off;
    int err;
    if ((err = lg_route_check(cfg_in, NULL)) < 0 || (err = route_check_weights(cfg_in, w)) < 0)
        return err;
    if ((err = route_scratch_alloc(&s, cfg, n < EVAL_CHUNK ? (n > 0 ? n : 1) : EVAL_CHUNK)) < 0)
        return err;
    for (off = 0; off < n; off += s.n) {
        long c = n - off < s.n ? n - off : s.n;
        route_forward_rows(cfg, &P, rows + (size_t)off * Ld, c, &s);
        if (u)
            memcpy(u + (size_t)off * d, s.u, (size_t)c * d * sizeof(double));
        if (uhat)
            memcpy(uhat + (size_t)off * d, s.uhat, (size_t)c * d * sizeof(double));
        if (r)
            memcpy(r + (size_t)off * L, s.r, (size_t)c * L * sizeof(double));
    }
    route_scratch_release(&s);
    return 0;
}

int lg_route_eval(const lg_sae_config *cfg_in, const lg_sae_weights *w, const float *rows, long n,
                  double dense_threshold, lg_recon_metrics *out, double *route_mean, double *entropy)
{
    const route_shape sh = route_shape_of(cfg_in, w->n_layers), *cfg = &sh;
    const route_params P = params_of(w);
    const int d = cfg->d_in, m = cfg->d_sae, L = cfg->n_layers, k = cfg->k;
    const size_t Ld = (size_t)L * d;
    route_scratch s;
    double *mu = NULL, *rsum = NULL, sse = 0.0, den = 0.0, nnz = 0.0, ent = 0.0;
    long *fired = NULL, off, b;
    int i, l, q, err;

    memset(out, 0, sizeof(*out));
    memset(&s, 0, sizeof s);
    if (n < 1)
        return lg_error_set(LG_EINPUT, "routesae: evaluation needs at least one row");
    if ((err = lg_route_check(cfg_in, NULL)) < 0 || (err = route_check_weights(cfg_in, w)) < 0)
        return err;
    if (dense_threshold < 0)
        dense_threshold = 0.1;
    if (!(mu = lg_calloc((size_t)d, sizeof(double))) || !(rsum = lg_calloc((size_t)L, sizeof(double))) ||
        !(fired = lg_calloc((size_t)m, sizeof(long)))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = route_scratch_alloc(&s, cfg, n < EVAL_CHUNK ? n : EVAL_CHUNK)) < 0)
        goto out;
    /* pass 1: mean of u; pass 2: the error, the centred sum of squares and
     * the sparsity counts (the forward is recomputed: it is deterministic) */
    for (off = 0; off < n; off += s.n) {
        long c = n - off < s.n ? n - off : s.n;
        route_forward_rows(cfg, &P, rows + (size_t)off * Ld, c, &s);
        for (b = 0; b < c; b++)
            for (i = 0; i < d; i++)
                mu[i] += s.u[(size_t)b * d + i];
    }
    for (i = 0; i < d; i++)
        mu[i] /= (double)n;
    for (off = 0; off < n; off += s.n) {
        long c = n - off < s.n ? n - off : s.n;
        route_forward_rows(cfg, &P, rows + (size_t)off * Ld, c, &s);
        for (b = 0; b < c; b++) {
            route_row r = route_scratch_row(&s, cfg, b);
            for (i = 0; i < d; i++) {
                double e = r.uhat[i] - r.u[i], cc = r.u[i] - mu[i];
                sse += e * e;
                den += cc * cc;
            }
            for (q = 0; q < k; q++)
                if (r.val[q] != 0.0) {
                    nnz += 1.0;
                    fired[r.idx[q]]++;
                }
            for (l = 0; l < L; l++) {
                rsum[l] += r.r[l];
                if (r.r[l] > 0.0)
                    ent -= r.r[l] * log(r.r[l]);
            }
        }
    }
    out->n_rows = n;
    out->mse = sse / (double)n;
    out->fvu = den > 0.0 ? sse / den : NAN;
    out->explained_variance = 1.0 - out->fvu;
    out->l0 = nnz / (double)n;
    {
        long dead = 0, dense = 0;
        int j;
        for (j = 0; j < m; j++) {
            dead += fired[j] == 0;
            dense += (double)fired[j] > dense_threshold * (double)n;
        }
        out->dead_frac = (double)dead / m;
        out->dense_frac = (double)dense / m;
    }
    if (route_mean)
        for (l = 0; l < L; l++)
            route_mean[l] = rsum[l] / (double)n;
    if (entropy)
        *entropy = ent / (double)n;
    err = 0;
out:
    route_scratch_release(&s);
    lg_free(mu);
    lg_free(rsum);
    lg_free(fired);
    return err;
}
