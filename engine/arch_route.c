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
 */
#include "engine/arch_route.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/base.h"
#include "engine/backend_cpu_sparse.h" /* lg_cpu_threads */

enum { R_WENC, R_BENC, R_WDEC, R_BDEC, R_WROUT, R_BROUT, R_NPARAM };

/* The shape the code below works with: lg_sae_config's plus the layer count,
 * which the weights carry (lg_sae_weights.n_layers). */
typedef struct {
    int d_in, d_sae, k, n_layers;
} route_shape;

static route_shape shape_of(const lg_sae_config *c, int n_layers)
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

int lg_route_cell_config(lg_sae_config *cfg, const lg_train_config *tc, int layers, int b_dec_init, int has_ood,
                         const char *backend)
{
    if (cfg->arch != LG_ARCH_ROUTESAE)
        return lg_error_set(LG_EINPUT, "sae.arch: the data is layered [n, L=%d, d=%d]; only \"routesae\" takes "
                            "layered data (got \"%s\")", layers, layers > 0 ? cfg->d_in / layers : 0,
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

/* Views of the parameters, float32. */
typedef struct {
    const float *W_enc, *b_enc, *W_dec, *b_dec, *W_router, *b_router;
} route_params;

/* Scratch of one row: pool [d], r [L], u [d], xin [d], pre [m], uhat [d],
 * idx [k], val [k] (the kept entries in selection order: value descending,
 * index ascending; val = max(pre, 0)). */
typedef struct {
    double *pool, *r, *u, *xin, *pre, *uhat, *val;
    int *idx;
} route_row;

/* The k largest of pre[0..m) (value desc, index asc; scanning j upwards, a
 * later equal value never displaces an earlier one) into idx/val, ReLU'd. */
static void topk_row(const double *pre, int m, int k, int *idx, double *val)
{
    int n = 0, j, q;
    for (j = 0; j < m; j++) {
        double v = pre[j];
        if (n == k && !(v > val[k - 1]))
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
    topk_row(s->pre, m, k, s->idx, s->val);
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

/* Scratch for n rows: one route_row per row, in one allocation each. */
typedef struct {
    double *pool, *r, *u, *xin, *pre, *uhat, *val;
    int *idx;
    long n;
} route_scratch;

static void scratch_release(route_scratch *s)
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

static int scratch_alloc(route_scratch *s, const route_shape *cfg, long n)
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
        scratch_release(s);
        return lg_error_set(LG_ENOMEM, "routesae: out of memory for %ld rows of scratch", n);
    }
    return 0;
}

static route_row scratch_row(const route_scratch *s, const route_shape *cfg, long b)
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
static void forward_rows(const route_shape *cfg, const route_params *P, const float *rows, long n,
                         const route_scratch *s)
{
    const size_t Ld = (size_t)cfg->n_layers * cfg->d_in;
    long b;
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if (n > 1)
    for (b = 0; b < n; b++) {
        route_row r = scratch_row(s, cfg, b);
        forward_row(cfg, P, rows + (size_t)b * Ld, &r);
    }
}

static route_params params_of(const lg_sae_weights *w)
{
    route_params P = {w->W_enc, w->b_enc, w->W_dec, w->b_dec, w->W_router, w->b_router};
    return P;
}

static int check_weights(const lg_sae_config *cfg, const lg_sae_weights *w)
{
    if (cfg->arch != LG_ARCH_ROUTESAE || w->d_in != cfg->d_in || w->d_sae != cfg->d_sae || !w->W_router ||
        !w->b_router || w->n_layers < 1)
        return lg_error_set(LG_EINPUT, "routesae: weights [%d x %d%s] do not match the config [%d x %d] or have no "
                            "router", w->d_in, w->d_sae, w->W_router ? "" : ", no router", cfg->d_in, cfg->d_sae);
    return 0;
}

/* ---- trainer ------------------------------------------------------------------ */

struct lg_route_trainer {
    route_shape cfg;
    lg_train_config tc;
    size_t n[R_NPARAM];
    float *P[R_NPARAM], *M[R_NPARAM], *V[R_NPARAM];
    double *G[R_NPARAM];
    route_scratch s;   /* [B, ...] */
    double *gu;        /* [B, d] dloss/du */
    double *dr;        /* [L] dloss/dr of one row */
    double *dpre;      /* [k + kaux_max] dloss/dpre of one row's kept and AuxK latents */
    double *since;     /* [d_sae] steps since each latent last fired (AuxK clocks) */
    unsigned char *dead; /* [d_sae] dead before this step */
    int kaux_max;      /* room in aidx/aval: min(aux_k or d/2, d_sae) */
    int *aidx;         /* [B, kaux_max] AuxK latents of each row */
    double *aval;      /* [B, kaux_max] their activations */
    double *ar;        /* [B, d] ehat - e */
    long step;
};

void lg_route_trainer_free(lg_route_trainer *t)
{
    int i;
    if (!t)
        return;
    for (i = 0; i < R_NPARAM; i++) {
        lg_free(t->P[i]);
        lg_free(t->M[i]);
        lg_free(t->V[i]);
        lg_free(t->G[i]);
    }
    scratch_release(&t->s);
    lg_free(t->gu);
    lg_free(t->dr);
    lg_free(t->dpre);
    lg_free(t->since);
    lg_free(t->dead);
    lg_free(t->aidx);
    lg_free(t->aval);
    lg_free(t->ar);
    lg_free(t);
}

int lg_route_trainer_new(const lg_sae_config *cfg, const lg_train_config *tc, const lg_sae_weights *init,
                         lg_route_trainer **out)
{
    lg_route_trainer *t = NULL;
    const float *src[R_NPARAM];
    size_t d, m, L;
    int i, err;
    *out = NULL;
    if ((err = lg_route_check(cfg, tc)) < 0 || (err = lg_train_config_check(tc, cfg)) < 0 ||
        (err = check_weights(cfg, init)) < 0)
        return err;
    if (!(t = lg_calloc(1, sizeof(*t))))
        return LG_ENOMEM;
    t->cfg = shape_of(cfg, init->n_layers);
    t->tc = *tc;
    d = (size_t)cfg->d_in;
    m = (size_t)cfg->d_sae;
    L = (size_t)init->n_layers;
    t->n[R_WENC] = d * m;
    t->n[R_BENC] = m;
    t->n[R_WDEC] = m * d;
    t->n[R_BDEC] = d;
    t->n[R_WROUT] = d * L;
    t->n[R_BROUT] = L;
    src[R_WENC] = init->W_enc;
    src[R_BENC] = init->b_enc;
    src[R_WDEC] = init->W_dec;
    src[R_BDEC] = init->b_dec;
    src[R_WROUT] = init->W_router;
    src[R_BROUT] = init->b_router;
    for (i = 0; i < R_NPARAM; i++) {
        if (!(t->P[i] = lg_malloc(t->n[i] * sizeof(float))) || !(t->M[i] = lg_calloc(t->n[i], sizeof(float))) ||
            !(t->V[i] = lg_calloc(t->n[i], sizeof(float))) || !(t->G[i] = lg_calloc(t->n[i], sizeof(double)))) {
            err = lg_error_set(LG_ENOMEM, "routesae: out of memory for the trainer");
            goto out;
        }
        memcpy(t->P[i], src[i], t->n[i] * sizeof(float));
    }
    if ((err = scratch_alloc(&t->s, &t->cfg, tc->batch)) < 0)
        goto out;
    t->kaux_max = tc->aux_k > 0 ? tc->aux_k : ((int)d / 2 > 0 ? (int)d / 2 : 1);
    if (t->kaux_max > (int)m)
        t->kaux_max = (int)m;
    if (!(t->gu = lg_malloc((size_t)tc->batch * d * sizeof(double))) || !(t->dr = lg_malloc(L * sizeof(double))) ||
        !(t->dpre = lg_malloc((size_t)(cfg->k + t->kaux_max) * sizeof(double))) ||
        !(t->since = lg_calloc(m, sizeof(double))) || !(t->dead = lg_calloc(m, 1)) ||
        !(t->aidx = lg_malloc((size_t)tc->batch * t->kaux_max * sizeof(int))) ||
        !(t->aval = lg_malloc((size_t)tc->batch * t->kaux_max * sizeof(double))) ||
        !(t->ar = lg_malloc((size_t)tc->batch * d * sizeof(double)))) {
        err = LG_ENOMEM;
        goto out;
    }
    *out = t;
    t = NULL;
    err = 0;
out:
    lg_route_trainer_free(t);
    return err;
}

long lg_route_trainer_steps_done(const lg_route_trainer *t) { return t->step; }

void lg_route_trainer_set_clocks(lg_route_trainer *t, const double *since)
{
    memcpy(t->since, since, (size_t)t->cfg.d_sae * sizeof(double));
}

static route_params trainer_params(const lg_route_trainer *t)
{
    route_params P = {t->P[R_WENC], t->P[R_BENC], t->P[R_WDEC], t->P[R_BDEC], t->P[R_WROUT], t->P[R_BROUT]};
    return P;
}

/* AuxK (train.h) on the latents dead before this step: per row, the top
 * kaux pre-activations among the dead latents (ReLU'd; ties to the lower
 * index) into aidx/aval [B, kaux], and ar [B, d] = ehat - e with e = u - uhat
 * held constant. Returns the aux term (0 when nothing is dead or e has no
 * variance); *den its denominator sum_b ||e_b - mean(e)||^2. */
static double auxk_forward(lg_route_trainer *t, int kaux, double *den)
{
    const route_shape *cfg = &t->cfg;
    const int d = cfg->d_in, m = cfg->d_sae, B = t->tc.batch;
    const float *W_dec = t->P[R_WDEC];
    double sum = 0.0;
    int b, i, j, q;
    *den = 0.0;
    for (i = 0; i < d; i++) {
        double mu = 0.0;
        for (b = 0; b < B; b++)
            mu += t->s.u[(size_t)b * d + i] - t->s.uhat[(size_t)b * d + i];
        mu /= B;
        for (b = 0; b < B; b++) {
            double c = t->s.u[(size_t)b * d + i] - t->s.uhat[(size_t)b * d + i] - mu;
            *den += c * c;
        }
    }
    if (!(*den > 0.0))
        return 0.0;
    for (b = 0; b < B; b++) {
        const double *pre = t->s.pre + (size_t)b * m;
        int *idx = t->aidx + (size_t)b * kaux, n = 0;
        double *val = t->aval + (size_t)b * kaux, *ar = t->ar + (size_t)b * d;
        for (j = 0; j < m; j++) { /* top kaux among the dead, as topk_row */
            double v = pre[j];
            if (!t->dead[j] || (n == kaux && !(v > val[kaux - 1])))
                continue;
            q = n < kaux ? n++ : kaux - 1;
            while (q > 0 && v > val[q - 1]) {
                val[q] = val[q - 1];
                idx[q] = idx[q - 1];
                q--;
            }
            val[q] = v;
            idx[q] = j;
        }
        for (q = 0; q < kaux; q++)
            if (!(val[q] > 0.0))
                val[q] = 0.0;
        for (i = 0; i < d; i++) /* ehat - e = aux_acts W_dec + (uhat - u) */
            ar[i] = t->s.uhat[(size_t)b * d + i] - t->s.u[(size_t)b * d + i];
        for (q = 0; q < kaux; q++)
            if (val[q] != 0.0)
                for (i = 0; i < d; i++)
                    ar[i] += val[q] * W_dec[(size_t)idx[q] * d + i];
        for (i = 0; i < d; i++)
            sum += ar[i] * ar[i];
    }
    return t->tc.aux_coeff * sum / *den;
}

/* Forward and backward of one batch: t->G = the raw gradients; st = the
 * batch statistics (loss, mse, aux, n_dead, fvu, l0). */
static void forward_backward(lg_route_trainer *t, const float *batch, lg_step_stats *st)
{
    const route_shape *cfg = &t->cfg;
    const int d = cfg->d_in, m = cfg->d_sae, L = cfg->n_layers, k = cfg->k, B = t->tc.batch;
    const size_t Ld = (size_t)L * d;
    const route_params P = trainer_params(t);
    double sse = 0.0, nnz = 0.0, den = 0.0, aux = 0.0, aden = 0.0, n_dead = 0.0, caux = 0.0;
    double *gWe = t->G[R_WENC], *gbe = t->G[R_BENC], *gWd = t->G[R_WDEC], *gbd = t->G[R_BDEC];
    double *gWr = t->G[R_WROUT], *gbr = t->G[R_BROUT];
    int b, i, l, q, j, kaux = 0;

    for (i = 0; i < R_NPARAM; i++)
        memset(t->G[i], 0, t->n[i] * sizeof(double));
    forward_rows(cfg, &P, batch, B, &t->s);

    /* AuxK: dead = not fired for ceil(dead_after / B) (at least 1) steps */
    if (t->tc.aux_coeff > 0) {
        double need = ceil(t->tc.dead_after / B);
        if (need < 1.0)
            need = 1.0;
        for (j = 0; j < m; j++) {
            t->dead[j] = t->since[j] >= need;
            n_dead += t->dead[j];
        }
        if (n_dead > 0) {
            kaux = t->tc.aux_k > 0 ? t->tc.aux_k : (d / 2 > 0 ? d / 2 : 1);
            if (kaux > (int)n_dead)
                kaux = (int)n_dead;
            aux = auxk_forward(t, kaux, &aden);
            if (aden > 0.0)
                caux = 2.0 * t->tc.aux_coeff / aden;
            else
                kaux = 0;
        }
    }

    /* gradients: a sum over rows, in row order */
    for (b = 0; b < B; b++) {
        route_row s = scratch_row(&t->s, cfg, b);
        const float *x = batch + (size_t)b * Ld;
        double *gu = t->gu + (size_t)b * d;
        double rg = 0.0;
        /* ge = dloss/duhat = (2/B)(uhat - u), held in gu for now */
        for (i = 0; i < d; i++) {
            double e = s.uhat[i] - s.u[i];
            sse += e * e;
            gu[i] = 2.0 * e / B;
            gbd[i] += gu[i];
        }
        /* decoder rows and dpre of the kept latents (pre <= 0: ReLU, zero
         * gradient) into dpre [k] */
        for (q = 0; q < k; q++) {
            const float *wd = P.W_dec + (size_t)s.idx[q] * d;
            double ga = 0.0, a = s.val[q];
            t->dpre[q] = 0.0;
            if (a == 0.0)
                continue;
            j = s.idx[q];
            nnz += 1.0;
            for (i = 0; i < d; i++) {
                ga += gu[i] * wd[i];
                gWd[(size_t)j * d + i] += a * gu[i];
            }
            gbe[j] += ga;
            for (i = 0; i < d; i++)
                gWe[(size_t)i * m + j] += s.xin[i] * ga;
            t->dpre[q] = ga;
        }
        /* AuxK: dloss/d(ehat) = caux * ar (e constant); its latents' dpre
         * into dpre [k, k + kaux) */
        for (q = 0; q < kaux; q++) {
            const double *ar = t->ar + (size_t)b * d, a = t->aval[(size_t)b * kaux + q];
            const float *wd;
            double ga = 0.0;
            t->dpre[k + q] = 0.0;
            if (a == 0.0)
                continue;
            j = t->aidx[(size_t)b * kaux + q];
            wd = P.W_dec + (size_t)j * d;
            for (i = 0; i < d; i++) {
                ga += caux * ar[i] * wd[i];
                gWd[(size_t)j * d + i] += a * caux * ar[i];
            }
            gbe[j] += ga;
            for (i = 0; i < d; i++)
                gWe[(size_t)i * m + j] += s.xin[i] * ga;
            t->dpre[k + q] = ga;
        }
        /* gxin = sum of dpre W_enc[:, j]; b_dec gets -gxin (encoder input
         * u - b_dec); du = gxin - ge (encoder input and target) */
        for (i = 0; i < d; i++) {
            const float *we = P.W_enc + (size_t)i * m;
            double gx = 0.0;
            for (q = 0; q < k; q++)
                if (t->dpre[q] != 0.0)
                    gx += t->dpre[q] * we[s.idx[q]];
            for (q = 0; q < kaux; q++)
                if (t->dpre[k + q] != 0.0)
                    gx += t->dpre[k + q] * we[t->aidx[(size_t)b * kaux + q]];
            gbd[i] -= gx;
            gu[i] = gx - gu[i];
        }
        /* router: dr_l = du . x_l; dz_l = r_l (dr_l - sum_j r_j dr_j) (softmax) */
        for (l = 0; l < L; l++) {
            double a = 0.0;
            for (i = 0; i < d; i++)
                a += gu[i] * x[(size_t)l * d + i];
            t->dr[l] = a;
            rg += s.r[l] * a;
        }
        for (l = 0; l < L; l++) {
            double gz = s.r[l] * (t->dr[l] - rg);
            gbr[l] += gz;
            for (i = 0; i < d; i++)
                gWr[(size_t)i * L + l] += s.pool[i] * gz;
        }
    }
    /* batch FVU denominator: sum_b ||u_b - mean(u)||^2 */
    for (i = 0; i < d; i++) {
        double mu = 0.0;
        for (b = 0; b < B; b++)
            mu += t->s.u[(size_t)b * d + i];
        mu /= B;
        for (b = 0; b < B; b++) {
            double c = t->s.u[(size_t)b * d + i] - mu;
            den += c * c;
        }
    }
    memset(st, 0, sizeof(*st));
    st->step = t->step;
    st->mse = sse / B;
    st->recon = st->mse;
    st->aux = aux;
    st->n_dead = n_dead;
    st->loss = st->recon + st->aux;
    st->fvu = den > 0 ? sse / den : NAN;
    st->l0 = nnz / B;
    st->threshold = -1;
}

int lg_route_trainer_compute_grads(lg_route_trainer *t, const float *batch, lg_step_stats *out)
{
    lg_step_stats st;
    forward_backward(t, batch, &st);
    if (out)
        *out = st;
    return 0;
}

/* Learning rate of 0-based step `step` (train.h's schedule). */
static double route_lr(const lg_train_config *tc, long step)
{
    double lr = tc->lr;
    long s0 = tc->steps - (long)floor(tc->decay_frac * (double)tc->steps);
    if (tc->warmup_steps > 0 && step + 1 < tc->warmup_steps)
        lr *= (double)(step + 1) / (double)tc->warmup_steps;
    if (step >= s0 && tc->steps > s0)
        lr *= (double)(tc->steps - step) / (double)(tc->steps - s0);
    return lr;
}

/* Steps 2-5 of train.h on the gradients in t->G (loss already checked). */
static void apply_update(lg_route_trainer *t, lg_step_stats *st)
{
    const int d = t->cfg.d_in, m = t->cfg.d_sae;
    double total = 0.0, norm, scale = 1.0, lr, bc1, bc2;
    long tt;
    int i, j;
    /* 2. remove from each decoder-row gradient its component along the row */
    for (j = 0; j < m; j++) {
        const float *w = t->P[R_WDEC] + (size_t)j * d;
        double *g = t->G[R_WDEC] + (size_t)j * d, dot = 0.0;
        for (i = 0; i < d; i++)
            dot += g[i] * w[i];
        for (i = 0; i < d; i++)
            g[i] -= dot * w[i];
    }
    /* 3. global norm clipping over all six parameters (in parameter order) */
    for (i = 0; i < R_NPARAM; i++) {
        size_t e;
        for (e = 0; e < t->n[i]; e++)
            total += t->G[i][e] * t->G[i][e];
    }
    norm = sqrt(total);
    if (t->tc.grad_clip > 0 && norm > t->tc.grad_clip)
        scale = t->tc.grad_clip / norm;
    /* 4. Adam with bias correction */
    lr = route_lr(&t->tc, t->step);
    tt = t->step + 1;
    bc1 = 1.0 - pow(t->tc.adam_beta1, (double)tt);
    bc2 = 1.0 - pow(t->tc.adam_beta2, (double)tt);
    for (i = 0; i < R_NPARAM; i++) {
        float *p = t->P[i], *mm = t->M[i], *vv = t->V[i];
        const double *g = t->G[i];
        const double b1 = t->tc.adam_beta1, b2 = t->tc.adam_beta2, eps = t->tc.adam_eps;
        long e, n = (long)t->n[i];
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if (n > 32768)
        for (e = 0; e < n; e++) {
            double gg = g[e] * scale;
            double m1 = b1 * mm[e] + (1.0 - b1) * gg;
            double v1 = b2 * vv[e] + (1.0 - b2) * gg * gg;
            mm[e] = (float)m1;
            vv[e] = (float)v1;
            p[e] = (float)(p[e] - lr * (m1 / bc1) / (sqrt(v1 / bc2) + eps));
        }
    }
    /* 5. unit-norm decoder rows */
    for (j = 0; j < m; j++) {
        float *w = t->P[R_WDEC] + (size_t)j * d;
        double ss = 0.0;
        for (i = 0; i < d; i++)
            ss += (double)w[i] * w[i];
        if (ss > 0.0) {
            double inv = 1.0 / sqrt(ss);
            for (i = 0; i < d; i++)
                w[i] = (float)(w[i] * inv);
        }
    }
    /* 6. dead-latent clocks: fired in this batch -> 0, else one more step */
    for (j = 0; j < m; j++)
        t->since[j] += 1.0;
    for (i = 0; i < t->tc.batch * t->cfg.k; i++)
        if (t->s.val[i] != 0.0)
            t->since[t->s.idx[i]] = 0.0;
    t->step++;
    st->step = t->step;
    st->lr = lr;
    st->grad_norm = norm;
}

static int step_check(const lg_route_trainer *t)
{
    if (t->step >= t->tc.steps)
        return lg_error_set(LG_EINPUT, "routesae: step %ld beyond the %ld configured", t->step + 1, t->tc.steps);
    return 0;
}

static int diverged(const lg_route_trainer *t, const lg_step_stats *st)
{
    return lg_error_set(LG_EDIVERGED, "training diverged at step %ld: loss is %s", t->step + 1,
                        isnan(st->loss) ? "NaN" : "Inf");
}

int lg_route_trainer_step(lg_route_trainer *t, const float *batch, lg_step_stats *out)
{
    lg_step_stats st;
    int err;
    if ((err = step_check(t)) < 0)
        return err;
    forward_backward(t, batch, &st);
    if (!isfinite(st.loss))
        err = diverged(t, &st);
    else
        apply_update(t, &st);
    if (out)
        *out = st;
    return err;
}

/* ---- several seeds ------------------------------------------------------------- */

struct lg_route_multi {
    lg_route_trainer **t; /* [S] */
    unsigned char *active;
    int S, diverged;
};

void lg_route_multi_free(lg_route_multi *mt)
{
    int s;
    if (!mt)
        return;
    for (s = 0; mt->t && s < mt->S; s++)
        lg_route_trainer_free(mt->t[s]);
    lg_free(mt->t);
    lg_free(mt->active);
    lg_free(mt);
}

int lg_route_multi_new(const lg_sae_config *cfg, const lg_train_config *tc, const lg_sae_weights *init, int S,
                       lg_route_multi **out)
{
    lg_route_multi *mt;
    int s, err;
    *out = NULL;
    if (S < 1)
        return lg_error_set(LG_EINPUT, "routesae: %d seeds (need at least 1)", S);
    if (!(mt = lg_calloc(1, sizeof(*mt))) || !(mt->t = lg_calloc((size_t)S, sizeof(*mt->t))) ||
        !(mt->active = lg_malloc((size_t)S))) {
        lg_route_multi_free(mt);
        return LG_ENOMEM;
    }
    mt->S = S;
    mt->diverged = -1;
    memset(mt->active, 1, (size_t)S);
    for (s = 0; s < S; s++)
        if ((err = lg_route_trainer_new(cfg, tc, &init[s], &mt->t[s])) < 0) {
            lg_route_multi_free(mt);
            return err;
        }
    *out = mt;
    return 0;
}

int lg_route_multi_step(lg_route_multi *mt, const float *batches, lg_step_stats *out)
{
    const size_t Bx = (size_t)mt->t[0]->tc.batch * mt->t[0]->cfg.n_layers * mt->t[0]->cfg.d_in;
    lg_step_stats st;
    int s, err;
    mt->diverged = -1;
    for (s = 0; s < mt->S; s++) {
        if (!mt->active[s]) {
            if (out) {
                memset(&out[s], 0, sizeof out[s]);
                out[s].step = mt->t[s]->step;
            }
            continue;
        }
        if ((err = step_check(mt->t[s])) < 0)
            return err;
        forward_backward(mt->t[s], batches + (size_t)s * Bx, &st);
        if (out)
            out[s] = st;
        if (!isfinite(st.loss) && mt->diverged < 0)
            mt->diverged = s;
    }
    if (mt->diverged >= 0) { /* all or nothing: no seed is updated */
        s = mt->diverged;
        err = diverged(mt->t[s], out ? &out[s] : &st);
        return mt->S == 1 ? err : lg_error_set(LG_EDIVERGED, "seed %d: %s", s, lg_error_msg());
    }
    /* the gradients of every active seed are still in its trainer */
    for (s = 0; s < mt->S; s++)
        if (mt->active[s]) {
            lg_step_stats *o = out ? &out[s] : &st;
            apply_update(mt->t[s], o);
        }
    return 0;
}

int lg_route_multi_diverged_seed(const lg_route_multi *mt) { return mt->diverged; }

int lg_route_multi_set_active(lg_route_multi *mt, int s, int on)
{
    if (s < 0 || s >= mt->S)
        return lg_error_set(LG_EINPUT, "routesae: seed %d out of range [0, %d)", s, mt->S);
    mt->active[s] = on != 0;
    return 0;
}

int lg_route_multi_get_weights(const lg_route_multi *mt, int s, lg_sae_weights *out)
{
    if (s < 0 || s >= mt->S)
        return lg_error_set(LG_EINPUT, "routesae: seed %d out of range [0, %d)", s, mt->S);
    return lg_route_trainer_get_weights(mt->t[s], out);
}

static int export_arrays(const lg_route_trainer *t, int grads, lg_sae_weights *out)
{
    float *dst[R_NPARAM];
    int i, err;
    size_t e;
    if ((err = lg_sae_weights_alloc(out, t->cfg.d_in, t->cfg.d_sae)) < 0)
        return err;
    if ((err = lg_route_alloc_router(out, t->cfg.n_layers)) < 0) {
        lg_sae_weights_release(out);
        return err;
    }
    dst[R_WENC] = out->W_enc;
    dst[R_BENC] = out->b_enc;
    dst[R_WDEC] = out->W_dec;
    dst[R_BDEC] = out->b_dec;
    dst[R_WROUT] = out->W_router;
    dst[R_BROUT] = out->b_router;
    for (i = 0; i < R_NPARAM; i++)
        for (e = 0; e < t->n[i]; e++)
            dst[i][e] = grads ? (float)t->G[i][e] : t->P[i][e];
    return 0;
}

int lg_route_trainer_get_grads(const lg_route_trainer *t, lg_sae_weights *out) { return export_arrays(t, 1, out); }
int lg_route_trainer_get_weights(const lg_route_trainer *t, lg_sae_weights *out) { return export_arrays(t, 0, out); }

/* ---- evaluation ------------------------------------------------------------------ */

#define EVAL_CHUNK 1024

int lg_route_forward(const lg_sae_config *cfg_in, const lg_sae_weights *w, const float *rows, long n, double *u,
                     double *uhat, double *r)
{
    const route_shape sh = shape_of(cfg_in, w->n_layers), *cfg = &sh;
    const route_params P = params_of(w);
    const size_t Ld = (size_t)cfg->n_layers * cfg->d_in, d = (size_t)cfg->d_in, L = (size_t)cfg->n_layers;
    route_scratch s;
    long off;
    int err;
    if ((err = lg_route_check(cfg_in, NULL)) < 0 || (err = check_weights(cfg_in, w)) < 0)
        return err;
    if ((err = scratch_alloc(&s, cfg, n < EVAL_CHUNK ? (n > 0 ? n : 1) : EVAL_CHUNK)) < 0)
        return err;
    for (off = 0; off < n; off += s.n) {
        long c = n - off < s.n ? n - off : s.n;
        forward_rows(cfg, &P, rows + (size_t)off * Ld, c, &s);
        if (u)
            memcpy(u + (size_t)off * d, s.u, (size_t)c * d * sizeof(double));
        if (uhat)
            memcpy(uhat + (size_t)off * d, s.uhat, (size_t)c * d * sizeof(double));
        if (r)
            memcpy(r + (size_t)off * L, s.r, (size_t)c * L * sizeof(double));
    }
    scratch_release(&s);
    return 0;
}

int lg_route_eval(const lg_sae_config *cfg_in, const lg_sae_weights *w, const float *rows, long n,
                  double dense_threshold, lg_recon_metrics *out, double *route_mean, double *entropy)
{
    const route_shape sh = shape_of(cfg_in, w->n_layers), *cfg = &sh;
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
    if ((err = lg_route_check(cfg_in, NULL)) < 0 || (err = check_weights(cfg_in, w)) < 0)
        return err;
    if (dense_threshold < 0)
        dense_threshold = 0.1;
    if (!(mu = lg_calloc((size_t)d, sizeof(double))) || !(rsum = lg_calloc((size_t)L, sizeof(double))) ||
        !(fired = lg_calloc((size_t)m, sizeof(long)))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = scratch_alloc(&s, cfg, n < EVAL_CHUNK ? n : EVAL_CHUNK)) < 0)
        goto out;
    /* pass 1: mean of u; pass 2: the error, the centred sum of squares and
     * the sparsity counts (the forward is recomputed: it is deterministic) */
    for (off = 0; off < n; off += s.n) {
        long c = n - off < s.n ? n - off : s.n;
        forward_rows(cfg, &P, rows + (size_t)off * Ld, c, &s);
        for (b = 0; b < c; b++)
            for (i = 0; i < d; i++)
                mu[i] += s.u[(size_t)b * d + i];
    }
    for (i = 0; i < d; i++)
        mu[i] /= (double)n;
    for (off = 0; off < n; off += s.n) {
        long c = n - off < s.n ? n - off : s.n;
        forward_rows(cfg, &P, rows + (size_t)off * Ld, c, &s);
        for (b = 0; b < c; b++) {
            route_row r = scratch_row(&s, cfg, b);
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
    scratch_release(&s);
    lg_free(mu);
    lg_free(rsum);
    lg_free(fired);
    return err;
}
