/*
 * arch_hier.c - HierarchicalTopK: its config rule, the per-seed forward and
 * backward of the nested-budget reconstruction loss (dense and sparse), the
 * trainer's extra buffers and the per-budget evaluation. Formulas in
 * arch_hier.h.
 *
 * Why this way: the budgets are nested in RANK, not in latent index (as
 * Matryoshka's prefixes are), so the column-range ops that serve Matryoshka
 * cannot select budget j's entries. Each budget gets its own activation set
 * instead, made by the backend's own per-row top-k at k_j: under the strict
 * (value, index) order that IS the first k_j of budget J's ranking, so no new
 * backend op is needed and the sets are nested by construction. Every op is
 * one of backend.h's, each computing its outputs in a fixed order, so the
 * results are deterministic and thread-count independent wherever the
 * backend's are.
 *
 * The config rule and the ks text live in arch_hier_cfg.c (base/ only).
 *
 * Invariant: budget J-1 (the largest) is the trainer's own activation set
 * (acts / its CSR), which also drives the dead-latent clocks, L0 and AuxK;
 * this file only adds the budgets below it.
 */
#include "engine/arch_hier.h"

#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "engine/recon.h"

int lg_hier_check_backend(const lg_backend *be)
{
    if (be && strcmp(be->name, "cpu") != 0)
        return lg_error_set(LG_EINPUT,
                            "architecture hierarchical_topk: not implemented on the %s backend (use --backend cpu)",
                            be->name);
    return 0;
}

/* ---- buffers ------------------------------------------------------------------ */

struct lg_hier_bufs {
    const lg_backend *be;
    int J, S, B, m, sparse;
    size_t off[LG_SAE_MAX_KS]; /* sparse: entry offset of budget j's [S, B*k_j] block */
    size_t total;              /* sparse: sum_j S*B*k_j over j < J-1 */
    float *A;                  /* dense: [J-1, S, B, m] */
    int32_t *ptr, *tptr, *idx, *trow, *tent; /* [J-1, S, B+1], [J-1, S, m+1], [total] x3 */
    float *val, *gval;                       /* [total] */
    lg_hier_csr *views;                      /* host [S, J-1] */
};

void lg_hier_bufs_free(lg_hier_bufs *h)
{
    const lg_backend *be;
    if (!h)
        return;
    be = h->be;
    be->free(be, h->A);
    be->free(be, (float *)h->ptr);
    be->free(be, (float *)h->tptr);
    be->free(be, (float *)h->idx);
    be->free(be, (float *)h->trow);
    be->free(be, (float *)h->tent);
    be->free(be, h->val);
    be->free(be, h->gval);
    lg_free(h->views);
    lg_free(h);
}

double lg_hier_bytes_per_seed(const lg_sae_config *cfg, int B)
{
    double J = cfg->n_ks > 0 ? cfg->n_ks : 1;
    return 4.0 * (J - 1.0) * (double)B * cfg->d_sae; /* the dense A_j; the CSRs take less */
}

int lg_hier_bufs_new(const lg_backend *be, const lg_sae_config *cfg, int S, int B, int sparse,
                     lg_hier_bufs **out)
{
    lg_hier_bufs *h = NULL;
    const int J = cfg->n_ks, m = cfg->d_sae;
    const size_t Sz = (size_t)S;
    int err = 0, j, s;
    *out = NULL;
    if ((err = lg_hier_config_check(cfg)) < 0)
        return err;
    if (!(h = lg_calloc(1, sizeof(*h))))
        return lg_error_wrap("hierarchical_topk buffers");
    h->be = be;
    h->J = J;
    h->S = S;
    h->B = B;
    h->m = m;
    h->sparse = sparse;
    if (J > 1 && !sparse) {
        if ((err = be->alloc(be, (size_t)(J - 1) * Sz * B * m, &h->A)) < 0)
            goto out;
    } else if (J > 1) {
        for (j = 0; j < J - 1; j++) {
            h->off[j] = h->total;
            h->total += Sz * (size_t)B * (size_t)cfg->ks[j];
        }
        if (!(h->views = lg_calloc(Sz * (size_t)(J - 1), sizeof(*h->views)))) {
            err = lg_error_wrap("hierarchical_topk buffers");
            goto out;
        }
        if ((err = be->alloc(be, (size_t)(J - 1) * Sz * (B + 1), (float **)&h->ptr)) < 0 ||
            (err = be->alloc(be, (size_t)(J - 1) * Sz * (m + 1), (float **)&h->tptr)) < 0 ||
            (err = be->alloc(be, h->total, (float **)&h->idx)) < 0 ||
            (err = be->alloc(be, h->total, (float **)&h->trow)) < 0 ||
            (err = be->alloc(be, h->total, (float **)&h->tent)) < 0 ||
            (err = be->alloc(be, h->total, &h->val)) < 0 || (err = be->alloc(be, h->total, &h->gval)) < 0)
            goto out;
        for (s = 0; s < S; s++)
            for (j = 0; j < J - 1; j++) {
                lg_hier_csr *c = &h->views[(size_t)s * (J - 1) + j];
                size_t e = h->off[j] + (size_t)s * B * cfg->ks[j]; /* first entry */
                size_t js = (size_t)j * Sz + s;
                c->ptr = h->ptr + js * (B + 1);
                c->tptr = h->tptr + js * (m + 1);
                c->idx = h->idx + e;
                c->trow = h->trow + e;
                c->tent = h->tent + e;
                c->val = h->val + e;
                c->gval = h->gval + e;
            }
    }
    *out = h;
    h = NULL;
out:
    lg_hier_bufs_free(h);
    return err;
}

void lg_hier_dense_views(lg_hier_bufs *h, int s, float **A)
{
    const size_t Bm = (size_t)h->B * h->m;
    int j;
    for (j = 0; j < h->J - 1; j++)
        A[j] = h->A + ((size_t)j * h->S + s) * Bm;
}

lg_hier_csr *lg_hier_sparse_views(lg_hier_bufs *h, int s)
{
    return h->views ? h->views + (size_t)s * (h->J - 1) : NULL;
}

/* ---- one seed's forward and backward ------------------------------------------ */

#define TRY(call)               \
    do {                        \
        if ((err = (call)) < 0) \
            goto out;           \
    } while (0)

/* xhat = b_dec; resid = xhat - x after the caller's decoder term. */
static int start_xhat(const lg_backend *be, int B, int d, const float *b_dec, float *xhat)
{
    int err;
    if ((err = be->fill(be, xhat, 0.0f, (size_t)B * d)) < 0)
        return err;
    return be->add_bias_rows(be, xhat, b_dec, 1.0f, xhat, B, d);
}

int lg_hier_dense_forward(const lg_backend *be, const lg_sae_config *cfg, int B, const float *pre,
                          float *const *A, const float *W_dec, const float *b_dec, const float *x,
                          float *xhat, float *const *resid)
{
    const int J = cfg->n_ks, d = cfg->d_in, m = cfg->d_sae;
    const size_t Bd = (size_t)B * d;
    int err = 0, j;
    for (j = 0; j < J - 1; j++)
        TRY(be->topk_rows(be, pre, NULL, A[j], B, m, cfg->ks[j]));
    for (j = 0; j < J; j++) {
        TRY(start_xhat(be, B, d, b_dec, xhat));
        /* xhat [B, d] += A_j [B, m] @ W_dec [m, d] */
        TRY(be->gemm(be, 0, 0, B, d, m, 1.0f, A[j], m, W_dec, d, 1.0f, xhat, d));
        TRY(be->axpby(be, Bd, 1.0f, xhat, -1.0f, x, resid[j]));
    }
out:
    return err;
}

int lg_hier_dense_backward(const lg_backend *be, const lg_sae_config *cfg, int B, float sc,
                           float *const *A, const float *const *resid, const float *W_dec,
                           float *gacts, float *gpre, float *gW_dec, float *gb_dec)
{
    const int J = cfg->n_ks, d = cfg->d_in, m = cfg->d_sae;
    int err = 0, j;
    TRY(be->fill(be, gpre, 0.0f, (size_t)B * m));
    for (j = 0; j < J; j++) {
        const float beta = j ? 1.0f : 0.0f;
        /* gW_dec [m, d] (+)= sc A_j^T @ r_j */
        TRY(be->gemm(be, 1, 0, m, d, B, sc, A[j], m, resid[j], d, beta, gW_dec, d));
        TRY(be->col_sum(be, resid[j], B, d, sc, beta, gb_dec));
        /* gacts [B, m] = sc r_j @ W_dec^T; gpre += it where A_j is active */
        TRY(be->gemm(be, 0, 1, B, m, d, sc, resid[j], d, W_dec, d, 0.0f, gacts, m));
        TRY(be->active_grad(be, A[j], gacts, 1.0f, gpre, (size_t)B * m));
    }
out:
    return err;
}

int lg_hier_sparse_forward(const lg_backend *be, const lg_sae_config *cfg, int B, const float *pre,
                           lg_hier_csr *C, const float *W_dec, const float *b_dec, const float *x,
                           float *xhat, float *const *resid)
{
    const int J = cfg->n_ks, d = cfg->d_in, m = cfg->d_sae;
    const size_t Bd = (size_t)B * d;
    int err = 0, j;
    for (j = 0; j < J - 1; j++) {
        TRY(be->topk_rows_csr(be, pre, NULL, B, m, cfg->ks[j], C[j].ptr, C[j].idx, C[j].val, &C[j].nnz));
        TRY(be->csr_transpose(be, C[j].ptr, C[j].idx, B, m, C[j].tptr, C[j].trow, C[j].tent));
    }
    for (j = 0; j < J; j++) {
        TRY(start_xhat(be, B, d, b_dec, xhat));
        TRY(be->csr_gather_rows(be, C[j].ptr, C[j].idx, C[j].val, B, 0, m, W_dec, d, xhat));
        TRY(be->axpby(be, Bd, 1.0f, xhat, -1.0f, x, resid[j]));
    }
out:
    return err;
}

int lg_hier_sparse_backward(const lg_backend *be, const lg_sae_config *cfg, int B, float sc,
                            lg_hier_csr *C, const float *const *resid, const float *W_dec,
                            float *gW_dec, float *gb_dec)
{
    const int J = cfg->n_ks, d = cfg->d_in, m = cfg->d_sae;
    int err = 0, j;
    for (j = 0; j < J; j++) {
        const float beta = j ? 1.0f : 0.0f;
        /* gW_dec rows of budget j's active latents (+)= sc sum of their rows' r_j;
         * with beta 0 the scatter overwrites every row, inactive ones with 0 */
        TRY(be->csc_scatter_rows(be, C[j].tptr, C[j].trow, C[j].tent, C[j].val, 0, m, resid[j], d, sc, beta,
                                 gW_dec, d, 1));
        TRY(be->csr_row_dots(be, C[j].ptr, C[j].idx, B, 0, m, resid[j], W_dec, d, sc, 0.0f, C[j].gval));
        TRY(be->col_sum(be, resid[j], B, d, sc, beta, gb_dec));
    }
out:
    return err;
}

int lg_hier_sparse_encoder(const lg_backend *be, const lg_sae_config *cfg, lg_hier_csr *C,
                           const float *xc, float *gb_enc, float *gW_enc)
{
    const int J = cfg->n_ks, d = cfg->d_in, m = cfg->d_sae;
    int err = 0, j;
    for (j = 0; j < J; j++) {
        const float beta = j ? 1.0f : 0.0f;
        TRY(be->csc_val_sum(be, C[j].tptr, C[j].tent, C[j].gval, m, 1.0f, beta, gb_enc));
        /* W_enc [d, m] columns: ld_row = 1, ld_col = m */
        TRY(be->csc_scatter_rows(be, C[j].tptr, C[j].trow, C[j].tent, C[j].gval, 0, m, xc, d, 1.0f, beta,
                                 gW_enc, 1, m));
    }
out:
    return err;
}

/* ---- evaluation ------------------------------------------------------------------ */

static int put(cJSON *obj, const char *name, int k, double v)
{
    char key[64];
    snprintf(key, sizeof key, "%s_k%d", name, k);
    /* cJSON writes NaN as null: "not computed", as run.c's metrics */
    return cJSON_AddNumberToObject(obj, key, v) ? 0 : lg_error_set(LG_ENOMEM, "out of memory");
}

int lg_hier_eval_budgets(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w,
                         const float *rows, long n, double dense_threshold, cJSON *metrics)
{
    lg_sae_config at;
    lg_recon_metrics rm;
    int err = 0, j;
    if (cfg->arch != LG_ARCH_HIER_TOPK)
        return 0;
    for (j = 0; j < cfg->n_ks; j++) {
        const int k = cfg->ks[j];
        at = *cfg; /* budget j: the same weights, TopK inference at k_j */
        at.arch = LG_ARCH_TOPK;
        at.k = k;
        at.n_ks = 0;
        if ((err = lg_recon_eval(be, &at, w, rows, n, dense_threshold, &rm)) < 0)
            return lg_error_wrap("hierarchical_topk: evaluating budget k=%d", k);
        if ((err = put(metrics, "mse", k, rm.mse)) < 0 || (err = put(metrics, "fvu", k, rm.fvu)) < 0 ||
            (err = put(metrics, "explained_variance", k, rm.explained_variance)) < 0 ||
            (err = put(metrics, "l0", k, rm.l0)) < 0 || (err = put(metrics, "dead_frac", k, rm.dead_frac)) < 0 ||
            (err = put(metrics, "dense_frac", k, rm.dense_frac)) < 0)
            return err;
    }
    return 0;
}
