/*
 * train.c - the SAE trainer (formulas and update order in train.h), for S >= 1
 * seeds trained in lockstep (the single-seed API is the S = 1 case: one
 * implementation, no second copy).
 *
 * Everything lives in backend buffers; the host sees only scalars (losses,
 * counts, the BatchTopK minimum) and, on request, the weights or the state.
 * One step is forward_backward() (loss and raw gradients, nothing updated)
 * followed by apply_update() (projection, clipping, Adam, renormalisation,
 * counters), so gradient checks can test exactly the gradient the optimiser
 * sees.
 *
 * Seed layout: every tensor is one allocation [S, ...] with seed s at offset
 * s * (per-seed size): parameters p/g/m/v [S, numel], the dead-latent clocks
 * [S, m], scratch [S, B, .] (Matryoshka residuals [n_pref, S, B, d]). Work is
 * issued over SPANS, maximal runs of consecutive active seeds (all seeds in
 * one span unless some are frozen, cut so that no op sees more than 2^31-1
 * entries in an int dimension):
 *   - GEMMs: one gemm_batched per span (strides = per-seed sizes), except the
 *     two AuxK backward GEMMs whose alpha = 2 aux_coeff / denom differs per
 *     seed (one gemm per seed: changing the arithmetic would change results);
 *   - elementwise and per-row ops (relu, top-k per row without a mask, fill,
 *     axpby, scale_shift, active_grad, mask_ge, projection, Adam, renorm):
 *     one call per span over all its rows/entries;
 *   - everything with per-seed operands or results (bias broadcasts,
 *     column sums, host reductions, batch top-k, JumpReLU, AuxK's masked
 *     top-k, clipping, dead-latent clocks): one call per seed, in seed order.
 * Each seed therefore sees the same op sequence, with the same sizes and
 * scalars, as a single-seed trainer; on the CPU backend (gemm_batched = a
 * loop of the same sgemm; row/elementwise ops independent per entry) seed s
 * is bit-identical to a single-seed run. All seeds share the step number, so
 * one set of Adam scalars serves the span.
 *
 * Divergence is all-or-nothing: every active seed's loss is checked before
 * any backward work, and the lowest diverged seed is reported with no update
 * anywhere, so the caller decides (run.c freezes it and redoes the step).
 *
 * Invariants: the whole state that influences a seed's future is {params,
 * Adam moments, step, steps_since_fired, BatchTopK threshold}; every one of
 * them is in the seed's saved state, so save + load + continue is
 * bit-identical to training straight through. Scratch carries nothing
 * between steps.
 *
 * Backward, with r = xhat - x [B, d] and s = 2/B (Matryoshka: one r_i per
 * prefix and s = 2/(B P)):
 *   dL/dxhat = s r;  gW_dec = acts^T (s r);  gb_dec = s colsum(r)
 *   gacts = (s r) W_dec^T  (+ l1/B for ReLU)
 *   gpre = gacts masked to active entries (JumpReLU: STE, backend.h)
 *   AuxK: ra = ehat - e, c = 2 aux_coeff / denom:
 *     gW_dec += aux_acts^T (c ra);  gpre += mask(aux_acts, (c ra) W_dec^T)
 *   gb_enc = colsum(gpre);  gW_enc = xc^T gpre;  gb_dec -= colsum(gpre W_enc^T)
 *
 * Sparse path (TopK, BatchTopK, Matryoshka on a backend with the optional
 * sparse ops of backend.h, e.g. the CPU one): the same formulas with acts,
 * gpre and AuxK's acts as CSR matrices (one per seed, all ops per seed, so
 * multi-seed stays equal to single-seed): xhat by a gather-sum of the active
 * decoder rows, gW_dec / gW_enc by scatters over the active latents (a
 * counting-sort CSC, no atomics), gacts only at the entries (row dots), and
 * gb_dec's encoder term as W_enc gb_enc. The dense [B, d_sae] buffers are not
 * allocated then; the encoder forward GEMM is the same. See sparse_backward.
 */
#include "engine/train.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "engine/arch_hier.h"

enum { P_WENC, P_BENC, P_WDEC, P_BDEC, P_LTHR, P_COUNT };
static const char *const param_names[P_COUNT] = {"W_enc", "b_enc", "W_dec", "b_dec",
                                                 "log_threshold"};

struct lg_trainer {
    const lg_backend *be;
    lg_sae_config cfg;
    lg_train_config tc;
    int S;                           /* seeds */
    int chunk;                       /* most seeds in one span (int sizes of the ops) */
    int n_pref;                      /* Matryoshka prefixes incl. d_sae; 1 otherwise */
    int pref[LG_MAX_PREFIXES + 1];   /* prefix sizes; pref[n_pref-1] = d_sae */
    int n_params;                    /* 4, or 5 with log_threshold */
    size_t numel[P_COUNT];           /* per seed */
    float *p[P_COUNT], *g[P_COUNT], *m[P_COUNT], *v[P_COUNT]; /* [S, numel] */
    float *since;     /* [S, m] steps since each latent last fired */
    /* per seed, host [S] */
    float *threshold; /* BatchTopK inference threshold, -1 = unset */
    long *step;       /* steps done */
    float *min_kept;  /* BatchTopK: smallest kept activation of the last forward */
    unsigned char *active;  /* 1 = trained by the next step */
    unsigned char *aux_on;  /* AuxK contributes in the current step */
    double *aux_denom;      /* AuxK denominator of the current step */
    int *span_lo, *span_hi; /* [S] spans of the current step */
    int n_spans;
    int *aux_lo, *aux_hi;   /* [S] spans of seeds with aux_on */
    int n_aux_spans;
    int diverged;     /* seed named by the last LG_EDIVERGED, or -1 */
    /* scratch, shapes with B = batch, d = d_in, m = d_sae */
    float *x;         /* [S, B, d] */
    float *xc;        /* [S, B, d] x - b_dec */
    float *pre;       /* [S, B, m] */
    float *acts;      /* [S, B, m] */
    float *xhat;      /* [S, B, d] */
    float *resid;     /* [n_pref, S, B, d] xhat_p - x per prefix; the last is the full one */
    float *gacts;     /* [S, B, m] */
    float *gpre;      /* [S, B, m] */
    float *gxc;       /* [S, B, d] */
    float *aux_acts;  /* [S, B, m] */
    float *aux_resid; /* [S, B, d] */
    float *dead;      /* [S, m] 1 = dead */
    float *mean_d;    /* [S, d] */
    double *host_mean;/* host [d] */
    int has_grads;    /* forward_backward ran since the last update */
    /* Sparse path (be->topk_rows_csr set, TopK/BatchTopK/Matryoshka): acts
     * as CSR per seed instead of the dense acts/gacts/gpre/aux_acts (which
     * are then not allocated). Index buffers are int32 in backend memory.
     * cap = B*k entries per seed, acap = B*aux_k_max; per seed s the CSR is
     * ptr + s*(B+1), idx/val/gval + s*cap, its CSC tptr + s*(m+1),
     * trow/tent + s*cap; the AuxK set likewise with the a-prefixed ones. */
    int sparse;
    size_t cap, acap;
    int32_t *ptr, *idx, *tptr, *trow, *tent;
    float *val, *gval;   /* acts and d loss / d pre at the entries */
    int32_t *aptr, *aidx, *atptr, *atrow, *atent;
    float *aval, *agval;
    long long *nnz;      /* host [S] entries of the last forward */
    /* Transcoder (lg_trainer_new_transcoder_multi): the encoder reads x
     * without b_dec, the reconstruction target is y [S, B, d] (the targets
     * the caller passes with each step) instead of x. */
    int transcoder;
    float *y;                   /* [S, B, d] */
    const float *host_targets;  /* the current step's targets, host [S, B, d] */
    lg_hier_bufs *hier;  /* HIER_TOPK: the budgets below k (engine/arch_hier.c); n_pref = n_ks */
    lg_trainer_extra_fn extra; /* lg_trainer_set_extra, or NULL */
    void *extra_ctx;
};

void lg_train_config_default(lg_train_config *tc)
{
    memset(tc, 0, sizeof(*tc));
    tc->lr = LG_TRAIN_DEFAULT_LR;
    tc->steps = LG_TRAIN_DEFAULT_STEPS;
    tc->batch = LG_TRAIN_DEFAULT_BATCH;
    tc->warmup_steps = LG_TRAIN_DEFAULT_WARMUP_STEPS;
    tc->decay_frac = LG_TRAIN_DEFAULT_DECAY_FRAC;
    tc->grad_clip = LG_TRAIN_DEFAULT_GRAD_CLIP;
    tc->adam_beta1 = LG_TRAIN_DEFAULT_BETA1;
    tc->adam_beta2 = LG_TRAIN_DEFAULT_BETA2;
    tc->adam_eps = LG_TRAIN_DEFAULT_EPS;
    tc->l1_coeff = LG_TRAIN_DEFAULT_L1_COEFF;
    tc->l0_coeff = LG_TRAIN_DEFAULT_L0_COEFF;
    tc->jumprelu_bandwidth = LG_TRAIN_DEFAULT_JUMPRELU_BANDWIDTH;
    tc->jumprelu_init_threshold = LG_TRAIN_DEFAULT_JUMPRELU_THRESHOLD;
    tc->aux_k = 0;
    tc->aux_coeff = LG_TRAIN_DEFAULT_AUX_COEFF;
    tc->dead_after = LG_TRAIN_DEFAULT_DEAD_AFTER;
    tc->threshold_beta = LG_TRAIN_DEFAULT_THRESHOLD_BETA;
    tc->n_prefixes = 0;
}

int lg_train_config_check(const lg_train_config *tc, const lg_sae_config *cfg)
{
    int i;
#define BAD(field, ...) lg_error_set(LG_EINPUT, "train config: " field ": " __VA_ARGS__)
    if (!(tc->lr > 0 && isfinite(tc->lr)))
        return BAD("lr", "must be a positive number (got %g)", tc->lr);
    if (tc->steps < 1 || tc->steps > (1L << 24))
        return BAD("steps", "must be in [1, 2^24] (got %ld)", tc->steps);
    if (tc->batch < 1)
        return BAD("batch", "must be >= 1 (got %d)", tc->batch);
    if ((double)tc->batch * cfg->d_sae > 2147483647.0 || (double)tc->batch * cfg->d_in > 2147483647.0)
        return BAD("batch", "batch x width exceeds 2^31 entries");
    if (tc->warmup_steps < 0)
        return BAD("warmup_steps", "must be >= 0 (got %ld)", tc->warmup_steps);
    if (!(tc->decay_frac >= 0 && tc->decay_frac <= 1))
        return BAD("decay_frac", "must be in [0, 1] (got %g)", tc->decay_frac);
    if (!(tc->grad_clip >= 0))
        return BAD("grad_clip", "must be >= 0 (got %g)", tc->grad_clip);
    if (!(tc->adam_beta1 >= 0 && tc->adam_beta1 < 1))
        return BAD("adam_beta1", "must be in [0, 1) (got %g)", tc->adam_beta1);
    if (!(tc->adam_beta2 >= 0 && tc->adam_beta2 < 1))
        return BAD("adam_beta2", "must be in [0, 1) (got %g)", tc->adam_beta2);
    if (!(tc->adam_eps > 0))
        return BAD("adam_eps", "must be > 0 (got %g)", tc->adam_eps);
    if (!(tc->l1_coeff >= 0))
        return BAD("l1_coeff", "must be >= 0 (got %g)", tc->l1_coeff);
    if (!(tc->l0_coeff >= 0))
        return BAD("l0_coeff", "must be >= 0 (got %g)", tc->l0_coeff);
    if (!(tc->jumprelu_bandwidth > 0))
        return BAD("jumprelu_bandwidth", "must be > 0 (got %g)", tc->jumprelu_bandwidth);
    if (!(tc->jumprelu_init_threshold > 0))
        return BAD("jumprelu_init_threshold", "must be > 0 (got %g)", tc->jumprelu_init_threshold);
    if (tc->aux_k < 0)
        return BAD("aux_k", "must be >= 0 (got %d)", tc->aux_k);
    if (!(tc->aux_coeff >= 0))
        return BAD("aux_coeff", "must be >= 0 (got %g)", tc->aux_coeff);
    if (!(tc->dead_after >= 0))
        return BAD("dead_after", "must be >= 0 (got %g)", tc->dead_after);
    if (!(tc->threshold_beta >= 0 && tc->threshold_beta < 1))
        return BAD("threshold_beta", "must be in [0, 1) (got %g)", tc->threshold_beta);
    if (tc->n_prefixes < 0 || tc->n_prefixes > LG_MAX_PREFIXES)
        return BAD("prefixes", "at most %d prefixes (got %d)", LG_MAX_PREFIXES, tc->n_prefixes);
    for (i = 0; i < tc->n_prefixes; i++)
        if (tc->prefixes[i] < 1 || tc->prefixes[i] > cfg->d_sae ||
            (i > 0 && tc->prefixes[i] <= tc->prefixes[i - 1]))
            return BAD("prefixes", "[%d] = %d: must increase strictly within [1, d_sae=%d]", i,
                       tc->prefixes[i], cfg->d_sae);
#undef BAD
    return 0;
}

static int is_batch_topk(lg_arch a) { return a == LG_ARCH_BATCHTOPK || a == LG_ARCH_MATRYOSHKA; }
static int has_auxk(const lg_trainer *t)
{
    return (t->cfg.arch == LG_ARCH_TOPK || t->cfg.arch == LG_ARCH_HIER_TOPK || is_batch_topk(t->cfg.arch)) &&
           t->tc.aux_coeff > 0;
}

void lg_trainer_free(lg_trainer *t)
{
    const lg_backend *be;
    int i;
    if (!t)
        return;
    be = t->be;
    for (i = 0; i < P_COUNT; i++) {
        be->free(be, t->p[i]);
        be->free(be, t->g[i]);
        be->free(be, t->m[i]);
        be->free(be, t->v[i]);
    }
    be->free(be, t->since);
    be->free(be, t->x);
    be->free(be, t->xc);
    be->free(be, t->pre);
    be->free(be, t->acts);
    be->free(be, t->xhat);
    be->free(be, t->resid);
    be->free(be, t->gacts);
    be->free(be, t->gpre);
    be->free(be, t->gxc);
    be->free(be, t->aux_acts);
    be->free(be, t->aux_resid);
    be->free(be, t->dead);
    be->free(be, t->mean_d);
    be->free(be, t->y);
    be->free(be, (float *)t->ptr);
    be->free(be, (float *)t->idx);
    be->free(be, (float *)t->tptr);
    be->free(be, (float *)t->trow);
    be->free(be, (float *)t->tent);
    be->free(be, t->val);
    be->free(be, t->gval);
    be->free(be, (float *)t->aptr);
    be->free(be, (float *)t->aidx);
    be->free(be, (float *)t->atptr);
    be->free(be, (float *)t->atrow);
    be->free(be, (float *)t->atent);
    be->free(be, t->aval);
    be->free(be, t->agval);
    lg_free(t->nnz);
    lg_hier_bufs_free(t->hier);
    lg_free(t->host_mean);
    lg_free(t->threshold);
    lg_free(t->step);
    lg_free(t->min_kept);
    lg_free(t->active);
    lg_free(t->aux_on);
    lg_free(t->aux_denom);
    lg_free(t->span_lo);
    lg_free(t->span_hi);
    lg_free(t->aux_lo);
    lg_free(t->aux_hi);
    lg_free(t);
}

/* The dense path's need; the sparse path (no dense acts, gacts, gpre,
 * aux_acts) needs less, so this is an upper bound there. */
double lg_trainer_bytes_per_seed(const lg_sae_config *cfg, const lg_train_config *tc)
{
    double B = tc->batch, d = cfg->d_in, m = cfg->d_sae;
    double n_pref = cfg->arch == LG_ARCH_MATRYOSHKA ? tc->n_prefixes + 1
                    : cfg->arch == LG_ARCH_HIER_TOPK ? cfg->n_ks : 1;
    double params = 4.0 * (2.0 * d * m + 2.0 * m + d);            /* p, g, m, v */
    double scratch = 5.0 * B * m + (4.0 + n_pref) * B * d + 3.0 * m + d;
    return 4.0 * (params + scratch) + (cfg->arch == LG_ARCH_HIER_TOPK ? lg_hier_bytes_per_seed(cfg, tc->batch) : 0);
}

/* Uploads seed s's initial weights. JumpReLU: log of init's thresholds when
 * all are > 0, else log(jumprelu_init_threshold). */
static int upload_init(lg_trainer *t, int s, const lg_sae_weights *w)
{
    const lg_backend *be = t->be;
    const size_t m = (size_t)t->cfg.d_sae;
    float *lthr = NULL; /* host [m] */
    int err, use_init_thr = 1;
    size_t j;
    if (w->d_in != t->cfg.d_in || w->d_sae != t->cfg.d_sae)
        return lg_error_set(LG_EINPUT, "trainer: init weights%s are [%d x %d], config wants [%d x %d]",
                            t->S > 1 ? " of a seed" : "", w->d_in, w->d_sae, t->cfg.d_in,
                            t->cfg.d_sae);
    if ((err = be->upload(be, t->p[P_WENC] + s * t->numel[P_WENC], w->W_enc, t->numel[P_WENC])) < 0 ||
        (err = be->upload(be, t->p[P_BENC] + s * t->numel[P_BENC], w->b_enc, t->numel[P_BENC])) < 0 ||
        (err = be->upload(be, t->p[P_WDEC] + s * t->numel[P_WDEC], w->W_dec, t->numel[P_WDEC])) < 0 ||
        (err = be->upload(be, t->p[P_BDEC] + s * t->numel[P_BDEC], w->b_dec, t->numel[P_BDEC])) < 0)
        return err;
    if (t->cfg.arch != LG_ARCH_JUMPRELU)
        return 0;
    if (!(lthr = lg_malloc(m * sizeof(float))))
        return lg_error_wrap("creating trainer");
    for (j = 0; j < m; j++)
        use_init_thr &= w->threshold[j] > 0.0f;
    for (j = 0; j < m; j++)
        lthr[j] = use_init_thr ? logf(w->threshold[j]) : (float)log(t->tc.jumprelu_init_threshold);
    err = be->upload(be, t->p[P_LTHR] + s * t->numel[P_LTHR], lthr, m);
    lg_free(lthr);
    return err;
}

int lg_trainer_new_multi(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc,
                         const lg_sae_weights *init, int S, lg_trainer **out)
{
    lg_trainer *t = NULL;
    size_t B, d, m, Sz, widest;
    int err, i;

    *out = NULL;
    if (S < 1)
        return lg_error_set(LG_EINPUT, "trainer: %d seeds (need at least 1)", S);
    if ((err = lg_sae_config_check(cfg)) < 0 || (err = lg_train_config_check(tc, cfg)) < 0)
        return err;
    if (cfg->arch == LG_ARCH_HIER_TOPK && (err = lg_hier_check_backend(be)) < 0)
        return err;
    if (cfg->arch == LG_ARCH_ROUTESAE) /* a host trainer of its own: engine/arch_route.h */
        return lg_error_set(LG_EINPUT, "trainer: arch routesae is trained by lg_route_trainer, not on a backend");
    if (!(t = lg_calloc(1, sizeof(*t))))
        return lg_error_wrap("creating trainer");
    t->be = be;
    t->cfg = *cfg;
    t->tc = *tc;
    t->S = S;
    t->diverged = -1;
    B = (size_t)tc->batch;
    d = (size_t)cfg->d_in;
    m = (size_t)cfg->d_sae;
    Sz = (size_t)S;
    widest = B * m > B * d ? B * m : B * d;
    if (m * d > widest)
        widest = m * d;
    t->chunk = widest > (size_t)INT_MAX ? 1 : (int)((size_t)INT_MAX / widest);
    if (t->chunk < 1)
        t->chunk = 1;

    t->n_pref = 1;
    t->pref[0] = cfg->d_sae;
    if (cfg->arch == LG_ARCH_MATRYOSHKA && tc->n_prefixes > 0) {
        for (i = 0; i < tc->n_prefixes; i++)
            t->pref[i] = tc->prefixes[i];
        t->n_pref = tc->n_prefixes;
        if (t->pref[t->n_pref - 1] < cfg->d_sae)
            t->pref[t->n_pref++] = cfg->d_sae;
    }
    if (cfg->arch == LG_ARCH_HIER_TOPK) { /* one reconstruction per budget */
        for (i = 0; i < cfg->n_ks; i++)
            t->pref[i] = cfg->ks[i];
        t->n_pref = cfg->n_ks;
    }

    t->n_params = cfg->arch == LG_ARCH_JUMPRELU ? 5 : 4;
    t->numel[P_WENC] = d * m;
    t->numel[P_BENC] = m;
    t->numel[P_WDEC] = m * d;
    t->numel[P_BDEC] = d;
    t->numel[P_LTHR] = m;
    if (!(t->threshold = lg_malloc(Sz * sizeof(float))) || !(t->step = lg_calloc(Sz, sizeof(long))) ||
        !(t->min_kept = lg_malloc(Sz * sizeof(float))) || !(t->active = lg_malloc(Sz)) ||
        !(t->aux_on = lg_calloc(Sz, 1)) || !(t->aux_denom = lg_calloc(Sz, sizeof(double))) ||
        !(t->span_lo = lg_malloc(Sz * sizeof(int))) || !(t->span_hi = lg_malloc(Sz * sizeof(int))) ||
        !(t->aux_lo = lg_malloc(Sz * sizeof(int))) || !(t->aux_hi = lg_malloc(Sz * sizeof(int))) ||
        !(t->host_mean = lg_malloc(d * sizeof(double)))) {
        err = lg_error_wrap("creating trainer");
        goto out;
    }
    for (i = 0; i < S; i++) {
        t->threshold[i] = -1.0f;
        t->min_kept[i] = -1.0f;
        t->active[i] = 1;
    }
    for (i = 0; i < t->n_params; i++)
        if ((err = be->alloc(be, Sz * t->numel[i], &t->p[i])) < 0 ||
            (err = be->alloc(be, Sz * t->numel[i], &t->g[i])) < 0 ||
            (err = be->alloc(be, Sz * t->numel[i], &t->m[i])) < 0 ||
            (err = be->alloc(be, Sz * t->numel[i], &t->v[i])) < 0)
            goto out;
    t->sparse = be->topk_rows_csr != NULL && cfg->arch != LG_ARCH_RELU &&
                cfg->arch != LG_ARCH_JUMPRELU;
    if ((err = be->alloc(be, Sz * m, &t->since)) < 0 || (err = be->alloc(be, Sz * B * d, &t->x)) < 0 ||
        (err = be->alloc(be, Sz * B * d, &t->xc)) < 0 || (err = be->alloc(be, Sz * B * m, &t->pre)) < 0 ||
        (err = be->alloc(be, Sz * B * d, &t->xhat)) < 0 ||
        (err = be->alloc(be, (size_t)t->n_pref * Sz * B * d, &t->resid)) < 0 ||
        (err = be->alloc(be, Sz * B * d, &t->gxc)) < 0 || (err = be->alloc(be, Sz * m, &t->dead)) < 0 ||
        (err = be->alloc(be, Sz * d, &t->mean_d)) < 0)
        goto out;
    if (!t->sparse && ((err = be->alloc(be, Sz * B * m, &t->acts)) < 0 ||
                       (err = be->alloc(be, Sz * B * m, &t->gacts)) < 0 ||
                       (err = be->alloc(be, Sz * B * m, &t->gpre)) < 0))
        goto out;
    if (has_auxk(t) && ((!t->sparse && (err = be->alloc(be, Sz * B * m, &t->aux_acts)) < 0) ||
                        (err = be->alloc(be, Sz * B * d, &t->aux_resid)) < 0))
        goto out;
    if (t->sparse) {
        size_t kk = (size_t)(cfg->k < cfg->d_sae ? cfg->k : cfg->d_sae);
        t->cap = B * kk;
        if (!(t->nnz = lg_calloc(Sz, sizeof(long long)))) {
            err = lg_error_wrap("creating trainer");
            goto out;
        }
        if ((err = be->alloc(be, Sz * (B + 1), (float **)&t->ptr)) < 0 ||
            (err = be->alloc(be, Sz * t->cap, (float **)&t->idx)) < 0 ||
            (err = be->alloc(be, Sz * t->cap, &t->val)) < 0 ||
            (err = be->alloc(be, Sz * t->cap, &t->gval)) < 0 ||
            (err = be->alloc(be, Sz * (m + 1), (float **)&t->tptr)) < 0 ||
            (err = be->alloc(be, Sz * t->cap, (float **)&t->trow)) < 0 ||
            (err = be->alloc(be, Sz * t->cap, (float **)&t->tent)) < 0)
            goto out;
        if (has_auxk(t)) {
            size_t ka = (size_t)(tc->aux_k > 0 ? tc->aux_k : (d / 2 > 0 ? d / 2 : 1));
            if (ka > m)
                ka = m;
            t->acap = B * ka;
            if ((err = be->alloc(be, Sz * (B + 1), (float **)&t->aptr)) < 0 ||
                (err = be->alloc(be, Sz * t->acap, (float **)&t->aidx)) < 0 ||
                (err = be->alloc(be, Sz * t->acap, &t->aval)) < 0 ||
                (err = be->alloc(be, Sz * t->acap, &t->agval)) < 0 ||
                (err = be->alloc(be, Sz * (m + 1), (float **)&t->atptr)) < 0 ||
                (err = be->alloc(be, Sz * t->acap, (float **)&t->atrow)) < 0 ||
                (err = be->alloc(be, Sz * t->acap, (float **)&t->atent)) < 0)
                goto out;
        }
    }
    if (cfg->arch == LG_ARCH_HIER_TOPK && (err = lg_hier_bufs_new(be, cfg, S, tc->batch, t->sparse, &t->hier)) < 0)
        goto out;
    for (i = 0; i < S; i++)
        if ((err = upload_init(t, i, &init[i])) < 0)
            goto out;
    *out = t;
    t = NULL;
    err = 0;
out:
    lg_trainer_free(t);
    return err;
}

int lg_trainer_new(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc,
                   const lg_sae_weights *init, lg_trainer **out)
{
    return lg_trainer_new_multi(be, cfg, tc, init, 1, out);
}

int lg_trainer_n_seeds(const lg_trainer *t) { return t->S; }

static int check_seed(const lg_trainer *t, int s)
{
    if (s < 0 || s >= t->S)
        return lg_error_set(LG_EINPUT, "trainer: seed index %d out of range [0, %d)", s, t->S);
    return 0;
}

long lg_trainer_steps_done(const lg_trainer *t) { return t->step[0]; }
long lg_trainer_steps_done_multi(const lg_trainer *t, int s)
{
    return s >= 0 && s < t->S ? t->step[s] : -1;
}

int lg_trainer_set_active(lg_trainer *t, int s, int on)
{
    int err;
    if ((err = check_seed(t, s)) < 0)
        return err;
    t->active[s] = on ? 1 : 0;
    t->has_grads = 0;
    return 0;
}

int lg_trainer_diverged_seed(const lg_trainer *t) { return t->diverged; }

/* Learning rate of 0-based step `step` (train.h). */
static double schedule_lr(const lg_train_config *tc, long step)
{
    double lr = tc->lr;
    long s0 = tc->steps - (long)floor(tc->decay_frac * (double)tc->steps);
    if (tc->warmup_steps > 0 && step + 1 < tc->warmup_steps)
        lr *= (double)(step + 1) / (double)tc->warmup_steps;
    if (step >= s0 && tc->steps > s0)
        lr *= (double)(tc->steps - step) / (double)(tc->steps - s0);
    return lr;
}

/* Host: sum over rows of ||x_b - mean(x)||^2 in double (batch FVU denominator). */
static double host_centered_ss(const float *x, int rows, int cols, double *mean)
{
    double ss = 0.0;
    int r, c;
    for (c = 0; c < cols; c++)
        mean[c] = 0.0;
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++)
            mean[c] += x[(size_t)r * cols + c];
    for (c = 0; c < cols; c++)
        mean[c] /= rows;
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++) {
            double dv = x[(size_t)r * cols + c] - mean[c];
            ss += dv * dv;
        }
    return ss;
}

/* Spans (lo[i], hi[i]) of consecutive seeds with on[s] != 0, each at most
 * `chunk` seeds long; returns their number. */
static int make_spans(const unsigned char *on, int S, int chunk, int *lo, int *hi)
{
    int n = 0, s = 0;
    while (s < S) {
        if (!on[s]) {
            s++;
            continue;
        }
        lo[n] = s;
        while (s < S && on[s] && s - lo[n] < chunk)
            s++;
        hi[n++] = s;
    }
    return n;
}

#define TRY(call)                 \
    do {                          \
        if ((err = (call)) < 0)   \
            goto out;             \
    } while (0)

/* Loops: over the spans of the step (SPAN: s0 first seed, ns seeds), over
 * the active seeds one by one (SEED: s), over the AuxK spans. */
#define FOR_SPANS(k, s0, ns)                                                         \
    for (k = 0; k < t->n_spans && ((s0) = t->span_lo[k], (ns) = t->span_hi[k] - (s0), 1); k++)
#define FOR_AUX_SPANS(k, s0, ns)                                                     \
    for (k = 0; k < t->n_aux_spans && ((s0) = t->aux_lo[k], (ns) = t->aux_hi[k] - (s0), 1); k++)
#define FOR_SEEDS(s)                                                                 \
    for (s = 0; s < t->S; s++)                                                       \
        if (t->active[s])

/* Seed s's sparse buffers (sparse path). */
#define SP_PTR(s) (t->ptr + (size_t)(s) * ((size_t)t->tc.batch + 1))
#define SP_IDX(s) (t->idx + (size_t)(s) * t->cap)
#define SP_VAL(s) (t->val + (size_t)(s) * t->cap)
#define SP_GVAL(s) (t->gval + (size_t)(s) * t->cap)
#define SP_TPTR(s) (t->tptr + (size_t)(s) * ((size_t)t->cfg.d_sae + 1))
#define SP_TROW(s) (t->trow + (size_t)(s) * t->cap)
#define SP_TENT(s) (t->tent + (size_t)(s) * t->cap)
#define AX_PTR(s) (t->aptr + (size_t)(s) * ((size_t)t->tc.batch + 1))
#define AX_IDX(s) (t->aidx + (size_t)(s) * t->acap)
#define AX_VAL(s) (t->aval + (size_t)(s) * t->acap)
#define AX_GVAL(s) (t->agval + (size_t)(s) * t->acap)
#define AX_TPTR(s) (t->atptr + (size_t)(s) * ((size_t)t->cfg.d_sae + 1))
#define AX_TROW(s) (t->atrow + (size_t)(s) * t->acap)
#define AX_TENT(s) (t->atent + (size_t)(s) * t->acap)

/* HIER_TOPK, seed s (engine/arch_hier.h): backward == 0 runs the forward
 * of every budget (A_j or C_j, xhat, resid_j); backward == 1 the gradients
 * of the reconstruction term (dense: gW_dec, gb_dec, gpre; sparse: gW_dec,
 * gb_dec and the encoder's gb_enc, gW_enc). The largest budget is the
 * trainer's own acts / CSR. */
static int hier_pass(lg_trainer *t, int s, int backward)
{
    const lg_backend *be = t->be;
    const int B = t->tc.batch, d = t->cfg.d_in, m = t->cfg.d_sae, J = t->n_pref;
    const size_t Bd = (size_t)B * d, Bm = (size_t)B * m, md = (size_t)m * d, SBd = (size_t)t->S * Bd;
    const float sc = 2.0f / ((float)B * (float)J);
    float *A[LG_SAE_MAX_KS], *resid[LG_SAE_MAX_KS];
    lg_hier_csr C[LG_SAE_MAX_KS];
    const float *W_dec = t->p[P_WDEC] + s * md;
    int j;
    for (j = 0; j < J; j++)
        resid[j] = t->resid + (size_t)j * SBd + s * Bd;
    if (!t->sparse) {
        lg_hier_dense_views(t->hier, s, A);
        A[J - 1] = t->acts + s * Bm;
        if (!backward)
            return lg_hier_dense_forward(be, &t->cfg, B, t->pre + s * Bm, A, W_dec, t->p[P_BDEC] + (size_t)s * d,
                                         t->x + s * Bd, t->xhat + s * Bd, resid);
        return lg_hier_dense_backward(be, &t->cfg, B, sc, A, (const float *const *)resid, W_dec,
                                      t->gacts + s * Bm, t->gpre + s * Bm, t->g[P_WDEC] + s * md,
                                      t->g[P_BDEC] + (size_t)s * d);
    }
    for (j = 0; j < J - 1; j++)
        C[j] = lg_hier_sparse_views(t->hier, s)[j];
    C[J - 1] = (lg_hier_csr){SP_PTR(s), SP_IDX(s), SP_TPTR(s), SP_TROW(s), SP_TENT(s), SP_VAL(s), SP_GVAL(s),
                             t->nnz[s]};
    if (!backward)
        return lg_hier_sparse_forward(be, &t->cfg, B, t->pre + s * Bm, C, W_dec, t->p[P_BDEC] + (size_t)s * d,
                                      t->x + s * Bd, t->xhat + s * Bd, resid);
    {
        int err = lg_hier_sparse_backward(be, &t->cfg, B, sc, C, (const float *const *)resid, W_dec,
                                          t->g[P_WDEC] + s * md, t->g[P_BDEC] + (size_t)s * d);
        if (err < 0)
            return err;
        return lg_hier_sparse_encoder(be, &t->cfg, C, t->xc + s * Bd, t->g[P_BENC] + (size_t)s * m,
                                      t->g[P_WENC] + s * md);
    }
}

/* Backward of the sparse path, per seed (same formulas as the dense one in
 * forward_backward, over the CSR entries only):
 *   gval = d loss / d pre at the entries = sum_i s (r_i W_dec[:p_i]^T) there;
 *   gW_dec rows of the active latents = scatter of s r_i over their rows;
 *   AuxK: agval = c (ra W_dec^T) at its entries, gW_dec += scatter of c ra;
 *   gb_enc = column sums of gval (+ agval); gW_enc columns = scatter of xc;
 *   gb_dec += s colsum(r_i) - W_enc gb_enc (= -colsum(gpre W_enc^T)).
 * Latents without an entry get zero rows/columns. */
static int sparse_backward(lg_trainer *t)
{
    const lg_backend *be = t->be;
    const int B = t->tc.batch, d = t->cfg.d_in, m = t->cfg.d_sae, S = t->S;
    const size_t Bd = (size_t)B * d, md = (size_t)m * d, SBd = (size_t)S * Bd;
    const float sc = 2.0f / ((float)B * (float)t->n_pref);
    float *const W_enc = t->p[P_WENC], *const W_dec = t->p[P_WDEC];
    int err = 0, i, k, s, s0, ns;

    if (t->cfg.arch == LG_ARCH_HIER_TOPK) { /* the reconstruction term, encoder included */
        FOR_SEEDS(s)
        TRY(hier_pass(t, s, 1));
    } else {
        FOR_SPANS(k, s0, ns) {
            TRY(be->fill(be, t->g[P_WDEC] + s0 * md, 0.0f, ns * md));
            TRY(be->fill(be, t->g[P_BDEC] + s0 * (size_t)d, 0.0f, ns * (size_t)d));
        }
        FOR_SEEDS(s)
        TRY(be->fill(be, SP_GVAL(s), 0.0f, (size_t)t->nnz[s]));
    }
    for (i = 0; i < t->n_pref && t->cfg.arch != LG_ARCH_HIER_TOPK; i++) {
        const int p = t->pref[i];
        const float *r = t->resid + (size_t)i * SBd;
        FOR_SEEDS(s) {
            TRY(be->csc_scatter_rows(be, SP_TPTR(s), SP_TROW(s), SP_TENT(s), SP_VAL(s), 0, p, r + s * Bd,
                                     d, sc, 1.0f, t->g[P_WDEC] + s * md, d, 1));
            TRY(be->csr_row_dots(be, SP_PTR(s), SP_IDX(s), B, 0, p, r + s * Bd, W_dec + s * md, d, sc,
                                 1.0f, SP_GVAL(s)));
            TRY(be->col_sum(be, r + s * Bd, B, d, sc, 1.0f, t->g[P_BDEC] + (size_t)s * d));
        }
    }
    for (s = 0; s < S; s++)
        if (t->aux_on[s]) {
            const float c = (float)(2.0 * t->tc.aux_coeff / t->aux_denom[s]);
            TRY(be->csc_scatter_rows(be, AX_TPTR(s), AX_TROW(s), AX_TENT(s), AX_VAL(s), 0, m,
                                     t->aux_resid + s * Bd, d, c, 1.0f, t->g[P_WDEC] + s * md, d, 1));
            TRY(be->csr_row_dots(be, AX_PTR(s), AX_IDX(s), B, 0, m, t->aux_resid + s * Bd,
                                 W_dec + s * md, d, c, 0.0f, AX_GVAL(s)));
        }
    FOR_SEEDS(s) {
        float *gbe = t->g[P_BENC] + (size_t)s * m, *gwe = t->g[P_WENC] + s * md;
        const float *xc = t->xc + s * Bd;
        if (t->cfg.arch != LG_ARCH_HIER_TOPK) { /* hier_pass did these */
            TRY(be->csc_val_sum(be, SP_TPTR(s), SP_TENT(s), SP_GVAL(s), m, 1.0f, 0.0f, gbe));
            TRY(be->csc_scatter_rows(be, SP_TPTR(s), SP_TROW(s), SP_TENT(s), SP_GVAL(s), 0, m, xc, d,
                                     1.0f, 0.0f, gwe, 1, m));
        }
        if (t->aux_on[s]) {
            TRY(be->csc_val_sum(be, AX_TPTR(s), AX_TENT(s), AX_GVAL(s), m, 1.0f, 1.0f, gbe));
            TRY(be->csc_scatter_rows(be, AX_TPTR(s), AX_TROW(s), AX_TENT(s), AX_GVAL(s), 0, m, xc, d,
                                     1.0f, 1.0f, gwe, 1, m));
        }
        /* through xc = x - b_dec: gb_dec -= colsum(gpre W_enc^T) = W_enc gb_enc
         * (a transcoder's encoder does not read b_dec) */
        if (!t->transcoder)
            TRY(be->gemm(be, 0, 1, 1, d, m, -1.0f, gbe, m, W_enc + s * md, m, 1.0f,
                     t->g[P_BDEC] + (size_t)s * d, d));
    }
out:
    return err;
}

/* Loss and raw gradients of every active seed on batches [S, B, d] (nothing
 * else changes but scratch and g[]); st [S]. */
static int forward_backward(lg_trainer *t, const float *batches, lg_step_stats *st)
{
    const lg_backend *be = t->be;
    const int B = t->tc.batch, d = t->cfg.d_in, m = t->cfg.d_sae, S = t->S;
    const size_t Bd = (size_t)B * d, Bm = (size_t)B * m, md = (size_t)m * d;
    const size_t SBd = (size_t)S * Bd;
    float *const W_enc = t->p[P_WENC], *const b_enc = t->p[P_BENC], *const W_dec = t->p[P_WDEC],
                 *const b_dec = t->p[P_BDEC];
    float *const resid_full = t->resid + (size_t)(t->n_pref - 1) * SBd; /* [S, B, d] */
    double ss, *red = NULL;     /* [nreq] results of reqs */
    lg_reduce_req *reqs = NULL; /* [S * (n_pref + 3)] the step's host read-backs */
    int err = 0, i, k, s, s0, ns, nreq;

    t->has_grads = 0;
    reqs = lg_malloc((size_t)S * (size_t)(t->n_pref + 3) * sizeof(*reqs));
    red = lg_malloc((size_t)S * (size_t)(t->n_pref + 3) * sizeof(*red));
    if (!reqs || !red) {
        err = LG_ENOMEM;
        goto out;
    }
    t->diverged = -1;
    t->n_aux_spans = 0;
    t->n_spans = make_spans(t->active, S, t->chunk, t->span_lo, t->span_hi);
    for (s = 0; s < S; s++) {
        memset(&st[s], 0, sizeof(st[s]));
        st[s].step = t->step[s];
        t->aux_on[s] = 0;
    }
    FOR_SPANS(k, s0, ns)
    TRY(be->upload(be, t->x + s0 * Bd, batches + s0 * Bd, ns * Bd));
    if (t->transcoder) {
        if (!t->host_targets) {
            err = lg_error_set(LG_EINPUT, "trainer: a transcoder step needs targets");
            goto out;
        }
        FOR_SPANS(k, s0, ns)
        TRY(be->upload(be, t->y + s0 * Bd, t->host_targets + s0 * Bd, ns * Bd));
    }

    /* ---- forward ---- */
    FOR_SEEDS(s) /* xc = x - b_dec (transcoder: xc = x, b_dec lives in the target's space) */
    TRY(t->transcoder ? be->copy(be, t->xc + s * Bd, t->x + s * Bd, Bd)
                      : be->add_bias_rows(be, t->x + s * Bd, b_dec + (size_t)s * d, -1.0f, t->xc + s * Bd, B, d));
    FOR_SPANS(k, s0, ns) /* pre = xc @ W_enc */
    TRY(be->gemm_batched(be, 0, 0, B, m, d, 1.0f, t->xc + s0 * Bd, d, (long long)Bd,
                         W_enc + s0 * md, m, (long long)md, 0.0f, t->pre + s0 * Bm, m,
                         (long long)Bm, ns));
    FOR_SEEDS(s) /* pre [B, m] += b_enc */
    TRY(be->add_bias_rows(be, t->pre + s * Bm, b_enc + (size_t)s * m, 1.0f, t->pre + s * Bm, B, m));
    for (s = 0; s < S; s++)
        t->min_kept[s] = -1.0f;
    if (t->sparse) { /* acts as CSR per seed, and its CSC (backward, dead-latent clocks) */
        FOR_SEEDS(s) {
            if (t->cfg.arch == LG_ARCH_TOPK || t->cfg.arch == LG_ARCH_HIER_TOPK)
                TRY(be->topk_rows_csr(be, t->pre + s * Bm, NULL, B, m, t->cfg.k, SP_PTR(s), SP_IDX(s),
                                      SP_VAL(s), &t->nnz[s]));
            else
                TRY(be->topk_batch_csr(be, t->pre + s * Bm, B, m, (size_t)t->cfg.k * B, SP_PTR(s),
                                       SP_IDX(s), SP_VAL(s), &t->nnz[s], &t->min_kept[s]));
            TRY(be->csr_transpose(be, SP_PTR(s), SP_IDX(s), B, m, SP_TPTR(s), SP_TROW(s), SP_TENT(s)));
            st[s].l0 = (double)t->nnz[s];
        }
    } else switch (t->cfg.arch) {
    case LG_ARCH_RELU:
        FOR_SPANS(k, s0, ns)
        TRY(be->relu(be, t->pre + s0 * Bm, t->acts + s0 * Bm, ns * Bm));
        break;
    case LG_ARCH_TOPK:
    case LG_ARCH_HIER_TOPK: /* the largest budget; the others in hier_pass */
        FOR_SPANS(k, s0, ns)
        TRY(be->topk_rows(be, t->pre + s0 * Bm, NULL, t->acts + s0 * Bm, ns * B, m, t->cfg.k));
        break;
    case LG_ARCH_BATCHTOPK:
    case LG_ARCH_MATRYOSHKA:
        FOR_SEEDS(s)
        TRY(be->topk_batch(be, t->pre + s * Bm, t->acts + s * Bm, Bm, (size_t)t->cfg.k * B,
                           &t->min_kept[s]));
        break;
    case LG_ARCH_JUMPRELU:
        FOR_SEEDS(s)
        TRY(be->jumprelu_fwd(be, t->pre + s * Bm, t->p[P_LTHR] + (size_t)s * m, t->acts + s * Bm,
                             B, m));
        break;
    case LG_ARCH_ROUTESAE: /* refused by lg_trainer_new_multi */
        break;
    }
    /* Host: the FVU denominators (of the host's copy of the batch), computed
     * while a device backend is still busy with the forward pass; held in
     * st[s].fvu until the MSE is known. */
    FOR_SEEDS(s)
    st[s].fvu = host_centered_ss((t->transcoder ? t->host_targets : batches) + s * Bd, B, d, t->host_mean);

    /* xhat by prefixes: xhat = b_dec + sum over blocks [p_{i-1}, p_i) of
     * acts[:, block] @ W_dec[block]; resid_i = xhat - x after block i. */
    FOR_SPANS(k, s0, ns)
    TRY(be->fill(be, t->xhat + s0 * Bd, 0.0f, ns * Bd));
    FOR_SEEDS(s)
    TRY(be->add_bias_rows(be, t->xhat + s * Bd, b_dec + (size_t)s * d, 1.0f, t->xhat + s * Bd, B, d));
    for (i = 0; i < t->n_pref && t->cfg.arch != LG_ARCH_HIER_TOPK; i++) {
        int lo = i ? t->pref[i - 1] : 0, hi = t->pref[i];
        float *r = t->resid + (size_t)i * SBd; /* [S, B, d] */
        if (t->sparse) /* gather-sum of the active decoder rows */
            FOR_SEEDS(s)
            TRY(be->csr_gather_rows(be, SP_PTR(s), SP_IDX(s), SP_VAL(s), B, lo, hi, W_dec + s * md, d,
                                    t->xhat + s * Bd));
        FOR_SPANS(k, s0, ns) {
            if (!t->sparse)
                TRY(be->gemm_batched(be, 0, 0, B, d, hi - lo, 1.0f, t->acts + s0 * Bm + lo, m,
                                     (long long)Bm, W_dec + s0 * md + (size_t)lo * d, d,
                                     (long long)md, 1.0f, t->xhat + s0 * Bd, d, (long long)Bd, ns));
            TRY(be->axpby(be, ns * Bd, 1.0f, t->xhat + s0 * Bd, -1.0f, (t->transcoder ? t->y : t->x) + s0 * Bd,
                          r + s0 * Bd));
        }
    }
    if (t->cfg.arch == LG_ARCH_HIER_TOPK) { /* xhat and resid of every budget */
        FOR_SEEDS(s)
        TRY(hier_pass(t, s, 0));
    }
    if (has_auxk(t)) { /* dead before this step: depends on `since` only */
        double steps_needed = ceil(t->tc.dead_after / B);
        if (steps_needed < 1.0)
            steps_needed = 1.0;
        FOR_SPANS(k, s0, ns)
        TRY(be->mask_ge(be, t->since + s0 * (size_t)m, (float)steps_needed, t->dead + s0 * (size_t)m,
                        ns * (size_t)m));
    }

    /* The step's statistics in ONE host read-back (lg_backend_reduce_many;
     * each value is the single op's, so results are unchanged): per active
     * seed, the L0 count, the residual sumsq of every prefix, the L1 sum
     * (ReLU) and the dead count (AuxK). Consumed below in the order the
     * single ops used to run. */
    nreq = 0;
    FOR_SEEDS(s) {
        if (!t->sparse) /* sparse: the CSR's entry count */
            reqs[nreq++] = (lg_reduce_req){LG_RED_NNZ, t->acts + s * Bm, Bm};
        for (i = 0; i < t->n_pref; i++)
            reqs[nreq++] = (lg_reduce_req){LG_RED_SUMSQ, t->resid + (size_t)i * SBd + s * Bd, Bd};
        if (t->cfg.arch == LG_ARCH_RELU && t->tc.l1_coeff > 0)
            reqs[nreq++] = (lg_reduce_req){LG_RED_SUM, t->acts + s * Bm, Bm};
        if (has_auxk(t))
            reqs[nreq++] = (lg_reduce_req){LG_RED_SUM, t->dead + (size_t)s * m, (size_t)m};
    }
    TRY(lg_backend_reduce_many(be, reqs, nreq, red));
    nreq = 0;
    FOR_SEEDS(s) {
        st[s].l0 = t->sparse ? (double)t->nnz[s] : red[nreq++]; /* the count, divided by B below */
        for (i = 0; i < t->n_pref; i++) {
            ss = red[nreq++];
            st[s].recon += ss / B;
            if (i == t->n_pref - 1)
                st[s].mse = ss / B;
        }
        st[s].recon /= t->n_pref;
        if (t->cfg.arch == LG_ARCH_RELU && t->tc.l1_coeff > 0)
            st[s].sparsity = t->tc.l1_coeff * red[nreq++] / B;
        else if (t->cfg.arch == LG_ARCH_JUMPRELU)
            st[s].sparsity = t->tc.l0_coeff * st[s].l0 / B;
        if (has_auxk(t))
            st[s].n_dead = red[nreq++];
    }

    /* AuxK on the latents dead before this step */
    if (has_auxk(t)) {
        nreq = 0;
        FOR_SEEDS(s) {
            float *rf = resid_full + s * Bd, *ar = t->aux_resid + s * Bd;
            if (!(st[s].n_dead > 0))
                continue;
            /* denominator: sum ||e - mean_b e||^2 with e = -resid_full */
            TRY(be->col_sum(be, rf, B, d, 1.0f / B, 0.0f, t->mean_d + (size_t)s * d));
            TRY(be->add_bias_rows(be, rf, t->mean_d + (size_t)s * d, -1.0f, ar, B, d));
            reqs[nreq++] = (lg_reduce_req){LG_RED_SUMSQ, ar, Bd};
        }
        TRY(lg_backend_reduce_many(be, reqs, nreq, red));
        nreq = 0;
        FOR_SEEDS(s) {
            float *rf = resid_full + s * Bd, *ar = t->aux_resid + s * Bd;
            float *dead = t->dead + (size_t)s * m;
            int kaux;
            if (!(st[s].n_dead > 0))
                continue;
            kaux = t->tc.aux_k > 0 ? t->tc.aux_k : (d / 2 > 0 ? d / 2 : 1);
            if ((double)kaux > st[s].n_dead)
                kaux = (int)st[s].n_dead;
            t->aux_denom[s] = red[nreq++];
            if (t->aux_denom[s] > 0.0) {
                t->aux_on[s] = 1;
                if (t->sparse) {
                    long long an;
                    TRY(be->topk_rows_csr(be, t->pre + s * Bm, dead, B, m, kaux, AX_PTR(s), AX_IDX(s),
                                          AX_VAL(s), &an));
                    TRY(be->csr_transpose(be, AX_PTR(s), AX_IDX(s), B, m, AX_TPTR(s), AX_TROW(s),
                                          AX_TENT(s)));
                    TRY(be->copy(be, ar, rf, Bd));
                    TRY(be->csr_gather_rows(be, AX_PTR(s), AX_IDX(s), AX_VAL(s), B, 0, m,
                                            W_dec + s * md, d, ar));
                } else {
                    TRY(be->topk_rows(be, t->pre + s * Bm, dead, t->aux_acts + s * Bm, B, m, kaux));
                    TRY(be->copy(be, ar, rf, Bd)); /* aux_resid = ehat - e = aux_acts @ W_dec + resid_full */
                }
            }
        }
        t->n_aux_spans = make_spans(t->aux_on, S, t->chunk, t->aux_lo, t->aux_hi);
        if (!t->sparse)
            FOR_AUX_SPANS(k, s0, ns)
            TRY(be->gemm_batched(be, 0, 0, B, d, m, 1.0f, t->aux_acts + s0 * Bm, m, (long long)Bm,
                                 W_dec + s0 * md, d, (long long)md, 1.0f, t->aux_resid + s0 * Bd, d,
                                 (long long)Bd, ns));
        nreq = 0;
        for (s = 0; s < S; s++)
            if (t->aux_on[s])
                reqs[nreq++] = (lg_reduce_req){LG_RED_SUMSQ, t->aux_resid + s * Bd, Bd};
        TRY(lg_backend_reduce_many(be, reqs, nreq, red));
        nreq = 0;
        for (s = 0; s < S; s++)
            if (t->aux_on[s])
                st[s].aux = t->tc.aux_coeff * red[nreq++] / t->aux_denom[s];
    }

    FOR_SEEDS(s) {
        st[s].loss = st[s].recon + st[s].sparsity + st[s].aux;
        st[s].l0 /= B;
        st[s].threshold = t->threshold[s];
        ss = st[s].fvu; /* the host's centred sum of squares, from above */
        st[s].fvu = ss > 0.0 ? st[s].mse * B / ss : NAN;
    }
    FOR_SEEDS(s)
    if (!isfinite(st[s].loss)) {
        t->diverged = s;
        if (S == 1)
            err = lg_error_set(LG_EDIVERGED, "training diverged at step %ld: loss is %s",
                               t->step[s] + 1, isnan(st[s].loss) ? "NaN" : "Inf");
        else
            err = lg_error_set(LG_EDIVERGED, "seed %d: training diverged at step %ld: loss is %s",
                               s, t->step[s] + 1, isnan(st[s].loss) ? "NaN" : "Inf");
        goto out;
    }

    /* ---- backward ---- */
    if (t->sparse) {
        TRY(sparse_backward(t));
        t->has_grads = 1;
        goto out;
    }
    if (t->cfg.arch == LG_ARCH_HIER_TOPK) { /* gW_dec, gb_dec, gpre of the reconstruction */
        FOR_SEEDS(s)
        TRY(hier_pass(t, s, 1));
    } else {
        const float sc = 2.0f / ((float)B * (float)t->n_pref);
        FOR_SPANS(k, s0, ns) {
            TRY(be->fill(be, t->g[P_WDEC] + s0 * md, 0.0f, ns * md));
            TRY(be->fill(be, t->gacts + s0 * Bm, 0.0f, ns * Bm));
            TRY(be->fill(be, t->g[P_BDEC] + s0 * (size_t)d, 0.0f, ns * (size_t)d));
        }
        for (i = 0; i < t->n_pref; i++) {
            int p = t->pref[i];
            const float *r = t->resid + (size_t)i * SBd;
            FOR_SPANS(k, s0, ns) {
                /* gW_dec[:p] += s * acts[:, :p]^T @ r */
                TRY(be->gemm_batched(be, 1, 0, p, d, B, sc, t->acts + s0 * Bm, m, (long long)Bm,
                                     r + s0 * Bd, d, (long long)Bd, 1.0f, t->g[P_WDEC] + s0 * md, d,
                                     (long long)md, ns));
                /* gacts[:, :p] += s * r @ W_dec[:p]^T */
                TRY(be->gemm_batched(be, 0, 1, B, p, d, sc, r + s0 * Bd, d, (long long)Bd,
                                     W_dec + s0 * md, d, (long long)md, 1.0f, t->gacts + s0 * Bm, m,
                                     (long long)Bm, ns));
            }
            FOR_SEEDS(s)
            TRY(be->col_sum(be, r + s * Bd, B, d, sc, 1.0f, t->g[P_BDEC] + (size_t)s * d));
        }
    }
    if (t->cfg.arch == LG_ARCH_RELU && t->tc.l1_coeff > 0)
        FOR_SPANS(k, s0, ns)
        TRY(be->scale_shift(be, t->gacts + s0 * Bm, 1.0f, (float)(t->tc.l1_coeff / B), ns * Bm));
    if (t->cfg.arch == LG_ARCH_JUMPRELU) {
        FOR_SEEDS(s)
        TRY(be->jumprelu_bwd(be, t->pre + s * Bm, t->p[P_LTHR] + (size_t)s * m, t->gacts + s * Bm,
                             (float)(t->tc.l0_coeff / B), (float)t->tc.jumprelu_bandwidth,
                             t->gpre + s * Bm, t->g[P_LTHR] + (size_t)s * m, B, m));
    } else if (t->cfg.arch != LG_ARCH_HIER_TOPK) { /* hier_pass masked per budget */
        FOR_SPANS(k, s0, ns)
        TRY(be->active_grad(be, t->acts + s0 * Bm, t->gacts + s0 * Bm, 0.0f, t->gpre + s0 * Bm,
                            ns * Bm));
    }
    for (s = 0; s < S; s++)
        if (t->aux_on[s]) { /* alpha differs per seed: one GEMM per seed */
            const float c = (float)(2.0 * t->tc.aux_coeff / t->aux_denom[s]);
            TRY(be->gemm(be, 1, 0, m, d, B, c, t->aux_acts + s * Bm, m, t->aux_resid + s * Bd, d,
                         1.0f, t->g[P_WDEC] + s * md, d));
            TRY(be->gemm(be, 0, 1, B, m, d, c, t->aux_resid + s * Bd, d, W_dec + s * md, d, 0.0f,
                         t->gacts + s * Bm, m));
        }
    FOR_AUX_SPANS(k, s0, ns)
    TRY(be->active_grad(be, t->aux_acts + s0 * Bm, t->gacts + s0 * Bm, 1.0f, t->gpre + s0 * Bm,
                        ns * Bm));
    FOR_SEEDS(s)
    TRY(be->col_sum(be, t->gpre + s * Bm, B, m, 1.0f, 0.0f, t->g[P_BENC] + (size_t)s * m));
    FOR_SPANS(k, s0, ns) {
        TRY(be->gemm_batched(be, 1, 0, d, m, B, 1.0f, t->xc + s0 * Bd, d, (long long)Bd,
                             t->gpre + s0 * Bm, m, (long long)Bm, 0.0f, t->g[P_WENC] + s0 * md, m,
                             (long long)md, ns));
        if (!t->transcoder) /* a transcoder's encoder does not read b_dec */
            TRY(be->gemm_batched(be, 0, 1, B, d, m, 1.0f, t->gpre + s0 * Bm, m, (long long)Bm,
                                 W_enc + s0 * md, m, (long long)md, 0.0f, t->gxc + s0 * Bd, d,
                                 (long long)Bd, ns));
    }
    if (!t->transcoder)
        FOR_SEEDS(s) /* through xc = x - b_dec */
        TRY(be->col_sum(be, t->gxc + s * Bd, B, d, -1.0f, 1.0f, t->g[P_BDEC] + (size_t)s * d));
    t->has_grads = 1;
out:
    lg_free(reqs);
    lg_free(red);
    return err;
}

/* Steps 2-7 of train.h on the gradients of forward_backward, for every
 * active seed (they share the step number: step_checked). */
static int apply_update(lg_trainer *t, lg_step_stats *st)
{
    const lg_backend *be = t->be;
    const int B = t->tc.batch, d = t->cfg.d_in, m = t->cfg.d_sae;
    const size_t Bm = (size_t)B * m;
    lg_adam_args a;
    double lr, tt, *red = NULL;  /* [S * P_COUNT] */
    lg_reduce_req *reqs = NULL; /* [S * P_COUNT] */
    long step = -1;
    int err = 0, i, k, s, s0, ns, nreq;

    FOR_SEEDS(s) {
        step = t->step[s];
        break;
    }
    if (step < 0) /* no active seed */
        return 0;
    FOR_SPANS(k, s0, ns)
    TRY(be->project_out_parallel(be, t->p[P_WDEC] + s0 * t->numel[P_WDEC],
                                 t->g[P_WDEC] + s0 * t->numel[P_WDEC], ns * m, d));
    /* Gradient clipping per seed (lg_backend_clip_grad_norm's arithmetic),
     * with the sumsq of every seed's parameters read back in one call. */
    if (!(reqs = lg_malloc((size_t)t->S * P_COUNT * sizeof(*reqs))) ||
        !(red = lg_malloc((size_t)t->S * P_COUNT * sizeof(*red)))) {
        err = LG_ENOMEM;
        goto out;
    }
    nreq = 0;
    FOR_SEEDS(s)
    for (i = 0; i < t->n_params; i++)
        reqs[nreq++] = (lg_reduce_req){LG_RED_SUMSQ, t->g[i] + s * t->numel[i], t->numel[i]};
    TRY(lg_backend_reduce_many(be, reqs, nreq, red));
    nreq = 0;
    FOR_SEEDS(s) {
        float *g[P_COUNT];
        double gnorm, total = 0.0;
        for (i = 0; i < t->n_params; i++) {
            g[i] = t->g[i] + s * t->numel[i];
            total += red[nreq++];
        }
        TRY(lg_backend_clip_apply(be, g, t->numel, t->n_params, total, t->tc.grad_clip, &gnorm));
        st[s].grad_norm = gnorm;
    }
    lr = schedule_lr(&t->tc, step);
    tt = (double)(step + 1);
    a.lr = (float)lr;
    a.beta1 = (float)t->tc.adam_beta1;
    a.beta2 = (float)t->tc.adam_beta2;
    a.eps = (float)t->tc.adam_eps;
    a.bc1 = (float)(1.0 - pow(t->tc.adam_beta1, tt));
    a.bc2 = (float)(1.0 - pow(t->tc.adam_beta2, tt));
    for (i = 0; i < t->n_params; i++)
        FOR_SPANS(k, s0, ns) {
            size_t off = s0 * t->numel[i];
            TRY(be->adam_step(be, t->p[i] + off, t->g[i] + off, t->m[i] + off, t->v[i] + off,
                              ns * t->numel[i], &a));
        }
    FOR_SPANS(k, s0, ns)
    TRY(be->renorm_rows(be, t->p[P_WDEC] + s0 * t->numel[P_WDEC], ns * m, d));
    FOR_SEEDS(s) {
        if (t->sparse)
            TRY(be->csc_fired_update(be, SP_TPTR(s), m, t->since + (size_t)s * m));
        else
            TRY(be->fired_update(be, t->acts + s * Bm, B, m, t->since + (size_t)s * m));
        if (is_batch_topk(t->cfg.arch) && t->min_kept[s] >= 0.0f) {
            if (t->threshold[s] < 0.0f)
                t->threshold[s] = t->min_kept[s];
            else
                t->threshold[s] = (float)(t->tc.threshold_beta * t->threshold[s] +
                                          (1.0 - t->tc.threshold_beta) * t->min_kept[s]);
        }
        t->step[s]++;
        st[s].step = t->step[s];
        st[s].lr = lr;
        st[s].threshold = t->threshold[s];
    }
    t->has_grads = 0;
out:
    lg_free(reqs);
    lg_free(red);
    return err;
}

/* Active seeds must share their step number, below the configured steps. */
static int step_checked(const lg_trainer *t, int for_update)
{
    long step = -1;
    int s;
    FOR_SEEDS(s) {
        if (step < 0)
            step = t->step[s];
        else if (t->step[s] != step)
            return lg_error_set(LG_EINPUT, "trainer: active seeds are at different steps (%ld and %ld)",
                                step, t->step[s]);
    }
    if (for_update && step >= t->tc.steps)
        return lg_error_set(LG_EINPUT, "trainer: step %ld beyond the configured %ld steps", step + 1,
                            t->tc.steps);
    return 0;
}

/* out [S] or NULL: the stats go through a scratch array either way */
static int step_or_grads(lg_trainer *t, const float *batches, const float *targets, lg_step_stats *out,
                         int update)
{
    lg_step_stats one, *st = t->S == 1 ? &one : NULL;
    int err;
    if (!t->transcoder != !targets)
        return lg_error_set(LG_EINPUT, t->transcoder ? "trainer: a transcoder step needs targets"
                                                     : "trainer: targets given to a trainer that is not a transcoder");
    t->host_targets = targets;
    if ((err = step_checked(t, update)) < 0)
        return err;
    if (!st && !(st = lg_calloc((size_t)t->S, sizeof(*st))))
        return lg_error_wrap("trainer step");
    if ((err = forward_backward(t, batches, st)) >= 0 && t->extra && (err = t->extra(t->extra_ctx, t, st)) < 0)
        t->has_grads = 0;
    if (err >= 0 && update)
        err = apply_update(t, st);
    if (out && (err >= 0 || err == LG_EDIVERGED))
        memcpy(out, st, (size_t)t->S * sizeof(*st));
    if (st != &one)
        lg_free(st);
    t->host_targets = NULL;
    return err;
}

int lg_trainer_step_multi(lg_trainer *t, const float *batches, lg_step_stats *out)
{
    return step_or_grads(t, batches, NULL, out, 1);
}

int lg_trainer_compute_grads_multi(lg_trainer *t, const float *batches, lg_step_stats *out)
{
    return step_or_grads(t, batches, NULL, out, 0);
}

/* ---- transcoder (train.h) ------------------------------------------------------ */

int lg_trainer_new_transcoder_multi(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc,
                                    const lg_sae_weights *init, int S, lg_trainer **out)
{
    lg_trainer *t = NULL;
    int err;
    *out = NULL;
    if (cfg->arch != LG_ARCH_RELU && cfg->arch != LG_ARCH_TOPK && cfg->arch != LG_ARCH_BATCHTOPK &&
        cfg->arch != LG_ARCH_JUMPRELU && cfg->arch != LG_ARCH_MATRYOSHKA)
        return lg_error_set(LG_EINPUT, "trainer: a %s transcoder is not supported (relu, topk, batchtopk, jumprelu, "
                            "matryoshka are)", lg_arch_name(cfg->arch));
    if ((err = lg_trainer_new_multi(be, cfg, tc, init, S, &t)) < 0)
        return err;
    if ((err = be->alloc(be, (size_t)S * (size_t)tc->batch * (size_t)cfg->d_in, &t->y)) < 0) {
        lg_trainer_free(t);
        return err;
    }
    t->transcoder = 1;
    *out = t;
    return 0;
}

int lg_trainer_is_transcoder(const lg_trainer *t) { return t->transcoder; }

int lg_trainer_step_target_multi(lg_trainer *t, const float *batches, const float *targets, lg_step_stats *out)
{
    if (!targets)
        return lg_error_set(LG_EINPUT, "trainer: a transcoder step needs targets");
    return step_or_grads(t, batches, targets, out, 1);
}

int lg_trainer_compute_grads_target_multi(lg_trainer *t, const float *batches, const float *targets,
                                          lg_step_stats *out)
{
    if (!targets)
        return lg_error_set(LG_EINPUT, "trainer: a transcoder step needs targets");
    return step_or_grads(t, batches, targets, out, 0);
}

static int need_one_seed(const lg_trainer *t, const char *fn)
{
    if (t->S != 1)
        return lg_error_set(LG_EINPUT, "trainer: %s on a trainer of %d seeds (use %s_multi)", fn, t->S,
                            fn);
    return 0;
}

int lg_trainer_step(lg_trainer *t, const float *batch, lg_step_stats *out)
{
    lg_step_stats st;
    int err;
    if ((err = need_one_seed(t, "lg_trainer_step")) < 0)
        return err;
    if ((err = lg_trainer_step_multi(t, batch, &st)) < 0)
        return err;
    if (out)
        *out = st;
    return 0;
}

int lg_trainer_compute_grads(lg_trainer *t, const float *batch, lg_step_stats *out)
{
    int err;
    if ((err = need_one_seed(t, "lg_trainer_compute_grads")) < 0)
        return err;
    return lg_trainer_compute_grads_multi(t, batch, out);
}

/* Downloads seed s's slice of bufs[P] into a weights-shaped struct. */
static int download_params(lg_trainer *t, int s, float *const *bufs, lg_sae_weights *out)
{
    const lg_backend *be = t->be;
    int err;
    memset(out, 0, sizeof(*out));
    if ((err = check_seed(t, s)) < 0)
        return err;
    if ((err = lg_sae_weights_alloc(out, t->cfg.d_in, t->cfg.d_sae)) < 0)
        return err;
    if ((err = be->download(be, out->W_enc, bufs[P_WENC] + s * t->numel[P_WENC], t->numel[P_WENC])) < 0 ||
        (err = be->download(be, out->b_enc, bufs[P_BENC] + s * t->numel[P_BENC], t->numel[P_BENC])) < 0 ||
        (err = be->download(be, out->W_dec, bufs[P_WDEC] + s * t->numel[P_WDEC], t->numel[P_WDEC])) < 0 ||
        (err = be->download(be, out->b_dec, bufs[P_BDEC] + s * t->numel[P_BDEC], t->numel[P_BDEC])) < 0 ||
        (t->n_params > P_LTHR &&
         (err = be->download(be, out->threshold, bufs[P_LTHR] + s * t->numel[P_LTHR],
                             t->numel[P_LTHR])) < 0))
        lg_sae_weights_release(out);
    return err;
}

int lg_trainer_get_grads_multi(lg_trainer *t, int s, lg_sae_weights *out)
{
    memset(out, 0, sizeof(*out));
    if (!t->has_grads || (s >= 0 && s < t->S && !t->active[s]))
        return lg_error_set(LG_EINTERNAL, "trainer: no gradients computed");
    return download_params(t, s, t->g, out);
}

int lg_trainer_get_grads(lg_trainer *t, lg_sae_weights *out)
{
    return lg_trainer_get_grads_multi(t, 0, out);
}

int lg_trainer_get_weights_multi(lg_trainer *t, int s, lg_sae_weights *out)
{
    int err, j, m = t->cfg.d_sae;
    if ((err = download_params(t, s, t->p, out)) < 0)
        return err;
    if (t->cfg.arch == LG_ARCH_JUMPRELU) {
        for (j = 0; j < m; j++)
            out->threshold[j] = expf(out->threshold[j]);
    } else if (is_batch_topk(t->cfg.arch)) {
        for (j = 0; j < m; j++)
            out->threshold[j] = t->threshold[s] > 0.0f ? t->threshold[s] : 0.0f;
    }
    return 0;
}

int lg_trainer_get_weights(lg_trainer *t, lg_sae_weights *out)
{
    return lg_trainer_get_weights_multi(t, 0, out);
}

/* ---- state ------------------------------------------------------------------ */

int64_t lg_named_array_numel(const lg_named_array *a)
{
    int64_t n = 1;
    int i;
    for (i = 0; i < a->ndim; i++)
        n *= a->shape[i];
    return n;
}

void lg_train_state_release(lg_train_state *st)
{
    int i;
    if (!st)
        return;
    for (i = 0; i < st->count; i++)
        lg_free(st->arrays[i].data);
    lg_free(st->arrays);
    st->arrays = NULL;
    st->count = 0;
}

/* The state layout of seed s: fills names and shapes of up to 20 arrays and,
 * per entry, where it lives: a device buffer (dev) or a host scalar
 * (host_scalar). */
typedef struct {
    char name[40];
    int ndim;
    int64_t shape[2];
    float *dev;          /* device buffer, or NULL */
    int host_scalar;     /* 1 step, 2 batchtopk_threshold, 3 state_version */
} state_entry;

static int state_layout(lg_trainer *t, int s, state_entry *e)
{
    const int64_t d = t->cfg.d_in, m = t->cfg.d_sae;
    const int64_t shapes[P_COUNT][2] = {{d, m}, {m, 0}, {m, d}, {d, 0}, {m, 0}};
    const int ndims[P_COUNT] = {2, 1, 2, 1, 1};
    int n = 0, i, kind;
    for (kind = 0; kind < 3; kind++)
        for (i = 0; i < t->n_params; i++) {
            const char *prefix = kind == 0 ? "" : kind == 1 ? "adam_m." : "adam_v.";
            float *buf = kind == 0 ? t->p[i] : kind == 1 ? t->m[i] : t->v[i];
            memset(&e[n], 0, sizeof(e[n]));
            snprintf(e[n].name, sizeof(e[n].name), "%s%s", prefix, param_names[i]);
            e[n].ndim = ndims[i];
            e[n].shape[0] = shapes[i][0];
            e[n].shape[1] = shapes[i][1];
            e[n].dev = buf + s * t->numel[i];
            n++;
        }
    memset(&e[n], 0, sizeof(e[n]));
    snprintf(e[n].name, sizeof(e[n].name), "steps_since_fired");
    e[n].ndim = 1;
    e[n].shape[0] = m;
    e[n].dev = t->since + (size_t)s * m;
    n++;
    {
        static const char *const scalars[3] = {"step", "batchtopk_threshold", "state_version"};
        for (i = 0; i < 3; i++) {
            memset(&e[n], 0, sizeof(e[n]));
            snprintf(e[n].name, sizeof(e[n].name), "%s", scalars[i]);
            e[n].ndim = 1;
            e[n].shape[0] = 1;
            e[n].host_scalar = i + 1;
            n++;
        }
    }
    return n;
}

#define STATE_MAX 24
#define STATE_VERSION 1.0f

int lg_trainer_save_state_multi(lg_trainer *t, int s, lg_train_state *out)
{
    state_entry e[STATE_MAX];
    int n, i, err = 0;
    out->count = 0;
    out->arrays = NULL;
    if ((err = check_seed(t, s)) < 0)
        return err;
    n = state_layout(t, s, e);
    if (!(out->arrays = lg_calloc((size_t)n, sizeof(lg_named_array))))
        return lg_error_wrap("saving trainer state");
    for (i = 0; i < n; i++) {
        lg_named_array *a = &out->arrays[i];
        int64_t numel;
        memcpy(a->name, e[i].name, sizeof(a->name));
        a->ndim = e[i].ndim;
        a->shape[0] = e[i].shape[0];
        a->shape[1] = e[i].shape[1];
        numel = lg_named_array_numel(a);
        if (!(a->data = lg_malloc((size_t)numel * sizeof(float)))) {
            err = lg_error_wrap("saving trainer state");
            goto out;
        }
        out->count = i + 1;
        if (e[i].dev)
            TRY(t->be->download(t->be, a->data, e[i].dev, (size_t)numel));
        else if (e[i].host_scalar == 1)
            a->data[0] = (float)t->step[s]; /* exact: steps <= 2^24 (config check) */
        else if (e[i].host_scalar == 2)
            a->data[0] = t->threshold[s];
        else
            a->data[0] = STATE_VERSION;
    }
out:
    if (err < 0)
        lg_train_state_release(out);
    return err;
}

int lg_trainer_save_state(lg_trainer *t, lg_train_state *out)
{
    return lg_trainer_save_state_multi(t, 0, out);
}

int lg_trainer_load_state_multi(lg_trainer *t, int s, const lg_train_state *st)
{
    state_entry e[STATE_MAX];
    int n, i, j, err = 0;
    long step = 0;
    float threshold = -1.0f;
    if ((err = check_seed(t, s)) < 0)
        return err;
    n = state_layout(t, s, e);
    /* validate everything first, so a bad state leaves the trainer as it was */
    for (i = 0; i < n; i++) {
        const lg_named_array *a = NULL;
        for (j = 0; j < st->count; j++)
            if (strcmp(st->arrays[j].name, e[i].name) == 0) {
                a = &st->arrays[j];
                break;
            }
        if (!a)
            return lg_error_set(LG_EINPUT, "trainer state: missing array '%s'", e[i].name);
        if (a->ndim != e[i].ndim || a->shape[0] != e[i].shape[0] ||
            (e[i].ndim == 2 && a->shape[1] != e[i].shape[1]))
            return lg_error_set(LG_EINPUT,
                                "trainer state: '%s' has shape [%lld, %lld] (ndim %d), expected "
                                "[%lld, %lld] (ndim %d)",
                                e[i].name, (long long)a->shape[0],
                                (long long)(a->ndim > 1 ? a->shape[1] : 0), a->ndim,
                                (long long)e[i].shape[0],
                                (long long)(e[i].ndim > 1 ? e[i].shape[1] : 0), e[i].ndim);
        if (e[i].host_scalar == 1) {
            float v = a->data[0];
            if (!(v >= 0 && v <= (float)t->tc.steps && v == floorf(v)))
                return lg_error_set(LG_EINPUT, "trainer state: step = %g is not in [0, %ld]",
                                    (double)v, t->tc.steps);
            step = (long)v;
        } else if (e[i].host_scalar == 2) {
            threshold = a->data[0];
            if (!isfinite(threshold))
                return lg_error_set(LG_EINPUT, "trainer state: batchtopk_threshold is not finite");
        } else if (e[i].host_scalar == 3 && a->data[0] != STATE_VERSION) {
            return lg_error_set(LG_EINPUT, "trainer state: state_version %g, expected %g",
                                (double)a->data[0], (double)STATE_VERSION);
        } else if (e[i].dev) {
            /* values: finite everywhere; Adam's second moments and the dead-latent clocks are >= 0 */
            int64_t k, nel = lg_named_array_numel(a);
            int nonneg = strncmp(e[i].name, "adam_v.", 7) == 0 || strcmp(e[i].name, "steps_since_fired") == 0;
            for (k = 0; k < nel; k++)
                if (!isfinite(a->data[k]) || (nonneg && a->data[k] < 0))
                    return lg_error_set(LG_EINPUT, "trainer state: '%s'[%lld] = %g is not %s", e[i].name,
                                        (long long)k, (double)a->data[k], nonneg ? "finite and >= 0" : "finite");
        }
    }
    for (i = 0; i < n; i++) {
        if (!e[i].dev)
            continue;
        for (j = 0; j < st->count; j++)
            if (strcmp(st->arrays[j].name, e[i].name) == 0)
                break;
        TRY(t->be->upload(t->be, e[i].dev, st->arrays[j].data,
                          (size_t)lg_named_array_numel(&st->arrays[j])));
    }
    t->step[s] = step;
    t->threshold[s] = threshold;
    t->has_grads = 0;
out:
    return err;
}

int lg_trainer_load_state(lg_trainer *t, const lg_train_state *st)
{
    return lg_trainer_load_state_multi(t, 0, st);
}

/* ---- extra loss terms (train.h) ------------------------------------------------ */

void lg_trainer_set_extra(lg_trainer *t, lg_trainer_extra_fn fn, void *ctx)
{
    t->extra = fn;
    t->extra_ctx = fn ? ctx : NULL;
}

int lg_trainer_decoder(lg_trainer *t, int s, float **W_dec, float **grad_W_dec)
{
    int err;
    if ((err = check_seed(t, s)) < 0)
        return err;
    if (W_dec)
        *W_dec = t->p[P_WDEC] + (size_t)s * t->numel[P_WDEC];
    if (grad_W_dec)
        *grad_W_dec = t->g[P_WDEC] + (size_t)s * t->numel[P_WDEC];
    return 0;
}

int lg_trainer_seed_active(const lg_trainer *t, int s) { return s >= 0 && s < t->S && t->active[s]; }

const lg_backend *lg_trainer_backend(const lg_trainer *t) { return t->be; }

int lg_trainer_config(const lg_trainer *t, lg_sae_config *cfg, lg_train_config *tc)
{
    if (cfg)
        *cfg = t->cfg;
    if (tc)
        *tc = t->tc;
    return 0;
}
