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
 *
 * The trainer is three files that share engine/train_int.h (struct
 * lg_trainer): this one holds the configs, the set-up and release of a
 * trainer, the accessors and the weight and gradient downloads;
 * train_step.c one step (forward_backward, sparse_backward, apply_update);
 * train_state.c the saved state.
 */
#include "engine/train.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "engine/arch_hier.h"
#include "engine/train_int.h"

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

int train_is_batch_topk(lg_arch a) { return a == LG_ARCH_BATCHTOPK || a == LG_ARCH_MATRYOSHKA; }
int train_has_auxk(const lg_trainer *t)
{
    return (t->cfg.arch == LG_ARCH_TOPK || t->cfg.arch == LG_ARCH_HIER_TOPK || train_is_batch_topk(t->cfg.arch)) &&
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

int lg_train_sparse_path(const lg_backend *be, lg_arch arch, int batch, int d_sae, int d_in)
{
    return be->topk_rows_csr != NULL && arch != LG_ARCH_RELU && arch != LG_ARCH_JUMPRELU &&
           (double)batch * d_sae * d_in >= be->sparse_min_work;
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
    t->sparse = lg_train_sparse_path(be, cfg->arch, (int)B, (int)m, (int)d);
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
    if (train_has_auxk(t) && ((!t->sparse && (err = be->alloc(be, Sz * B * m, &t->aux_acts)) < 0) ||
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
        if (train_has_auxk(t)) {
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

int train_check_seed(const lg_trainer *t, int s)
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
    if ((err = train_check_seed(t, s)) < 0)
        return err;
    t->active[s] = on ? 1 : 0;
    t->has_grads = 0;
    return 0;
}

int lg_trainer_diverged_seed(const lg_trainer *t) { return t->diverged; }

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
    return train_step_or_grads(t, batches, targets, out, 1);
}

int lg_trainer_compute_grads_target_multi(lg_trainer *t, const float *batches, const float *targets,
                                          lg_step_stats *out)
{
    if (!targets)
        return lg_error_set(LG_EINPUT, "trainer: a transcoder step needs targets");
    return train_step_or_grads(t, batches, targets, out, 0);
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
    if ((err = train_check_seed(t, s)) < 0)
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
    } else if (train_is_batch_topk(t->cfg.arch)) {
        for (j = 0; j < m; j++)
            out->threshold[j] = t->threshold[s] > 0.0f ? t->threshold[s] : 0.0f;
    }
    return 0;
}

int lg_trainer_get_weights(lg_trainer *t, lg_sae_weights *out)
{
    return lg_trainer_get_weights_multi(t, 0, out);
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
    if ((err = train_check_seed(t, s)) < 0)
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
