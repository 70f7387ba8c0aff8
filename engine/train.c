/*
 * train.c - the SAE trainer (formulas and update order in train.h).
 *
 * Everything lives in backend buffers; the host sees only scalars (losses,
 * counts, the BatchTopK minimum) and, on request, the weights or the state.
 * One step is forward_backward() (loss and raw gradients, nothing updated)
 * followed by apply_update() (projection, clipping, Adam, renormalisation,
 * counters), so gradient checks can test exactly the gradient the optimiser
 * sees.
 *
 * Invariants: the whole state that influences the future is {params, Adam
 * moments, step, steps_since_fired, BatchTopK threshold}; every one of them
 * is in the saved state, so save + load + continue is bit-identical to
 * training straight through. Scratch buffers carry nothing between steps.
 *
 * Backward, with r = xhat - x [B, d] and s = 2/B (Matryoshka: one r_i per
 * prefix and s = 2/(B P)):
 *   dL/dxhat = s r;  gW_dec = acts^T (s r);  gb_dec = s colsum(r)
 *   gacts = (s r) W_dec^T  (+ l1/B for ReLU)
 *   gpre = gacts masked to active entries (JumpReLU: STE, backend.h)
 *   AuxK: ra = ehat - e, c = 2 aux_coeff / denom:
 *     gW_dec += aux_acts^T (c ra);  gpre += mask(aux_acts, (c ra) W_dec^T)
 *   gb_enc = colsum(gpre);  gW_enc = xc^T gpre;  gb_dec -= colsum(gpre W_enc^T)
 */
#include "engine/train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "artifacts/base.h"

enum { P_WENC, P_BENC, P_WDEC, P_BDEC, P_LTHR, P_COUNT };
static const char *const param_names[P_COUNT] = {"W_enc", "b_enc", "W_dec", "b_dec",
                                                 "log_threshold"};

struct lg_trainer {
    const lg_backend *be;
    lg_sae_config cfg;
    lg_train_config tc;
    int n_pref;                      /* Matryoshka prefixes incl. d_sae; 1 otherwise */
    int pref[LG_MAX_PREFIXES + 1];   /* prefix sizes; pref[n_pref-1] = d_sae */
    int n_params;                    /* 4, or 5 with log_threshold */
    size_t numel[P_COUNT];
    float *p[P_COUNT], *g[P_COUNT], *m[P_COUNT], *v[P_COUNT];
    float *since;     /* [m] steps since each latent last fired */
    float threshold;  /* BatchTopK inference threshold, -1 = unset */
    long step;        /* steps done */
    /* scratch, shapes with B = batch, d = d_in, m = d_sae */
    float *x;         /* [B, d] */
    float *xc;        /* [B, d] x - b_dec */
    float *pre;       /* [B, m] */
    float *acts;      /* [B, m] */
    float *xhat;      /* [B, d] */
    float *resid;     /* [n_pref, B, d] xhat_p - x per prefix; the last is the full one */
    float *gacts;     /* [B, m] */
    float *gpre;      /* [B, m] */
    float *gxc;       /* [B, d] */
    float *aux_acts;  /* [B, m] */
    float *aux_resid; /* [B, d] */
    float *dead;      /* [m] 1 = dead */
    float *mean_d;    /* [d] */
    double *host_mean;/* host [d] */
    float min_kept;   /* BatchTopK: smallest kept activation of the last forward */
    int has_grads;    /* forward_backward ran since the last update */
};

void lg_train_config_default(lg_train_config *tc)
{
    memset(tc, 0, sizeof(*tc));
    tc->lr = 3e-4;
    tc->steps = 1000;
    tc->batch = 4096;
    tc->warmup_steps = 100;
    tc->decay_frac = 0.2;
    tc->grad_clip = 1.0;
    tc->adam_beta1 = 0.9;
    tc->adam_beta2 = 0.999;
    tc->adam_eps = 1e-8;
    tc->l1_coeff = 5.0;
    tc->l0_coeff = 1e-3;
    tc->jumprelu_bandwidth = 1e-3;
    tc->jumprelu_init_threshold = 1e-3;
    tc->aux_k = 0;
    tc->aux_coeff = 1.0 / 32.0;
    tc->dead_after = 1e7;
    tc->threshold_beta = 0.999;
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
    return (t->cfg.arch == LG_ARCH_TOPK || is_batch_topk(t->cfg.arch)) && t->tc.aux_coeff > 0;
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
    lg_free(t->host_mean);
    lg_free(t);
}

int lg_trainer_new(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc,
                   const lg_sae_weights *init, lg_trainer **out)
{
    lg_trainer *t = NULL;
    float *lthr = NULL; /* host [m] */
    size_t B, d, m;
    int err, i, use_init_thr = 1;

    *out = NULL;
    if ((err = lg_sae_config_check(cfg)) < 0 || (err = lg_train_config_check(tc, cfg)) < 0)
        return err;
    if (init->d_in != cfg->d_in || init->d_sae != cfg->d_sae)
        return lg_error_set(LG_EINPUT, "trainer: init weights are [%d x %d], config wants [%d x %d]",
                            init->d_in, init->d_sae, cfg->d_in, cfg->d_sae);
    if (!(t = lg_calloc(1, sizeof(*t))))
        return lg_error_wrap("creating trainer");
    t->be = be;
    t->cfg = *cfg;
    t->tc = *tc;
    t->threshold = -1.0f;
    B = (size_t)tc->batch;
    d = (size_t)cfg->d_in;
    m = (size_t)cfg->d_sae;

    t->n_pref = 1;
    t->pref[0] = cfg->d_sae;
    if (cfg->arch == LG_ARCH_MATRYOSHKA && tc->n_prefixes > 0) {
        for (i = 0; i < tc->n_prefixes; i++)
            t->pref[i] = tc->prefixes[i];
        t->n_pref = tc->n_prefixes;
        if (t->pref[t->n_pref - 1] < cfg->d_sae)
            t->pref[t->n_pref++] = cfg->d_sae;
    }

    t->n_params = cfg->arch == LG_ARCH_JUMPRELU ? 5 : 4;
    t->numel[P_WENC] = d * m;
    t->numel[P_BENC] = m;
    t->numel[P_WDEC] = m * d;
    t->numel[P_BDEC] = d;
    t->numel[P_LTHR] = m;
    for (i = 0; i < t->n_params; i++)
        if ((err = be->alloc(be, t->numel[i], &t->p[i])) < 0 ||
            (err = be->alloc(be, t->numel[i], &t->g[i])) < 0 ||
            (err = be->alloc(be, t->numel[i], &t->m[i])) < 0 ||
            (err = be->alloc(be, t->numel[i], &t->v[i])) < 0)
            goto out;
    if ((err = be->alloc(be, m, &t->since)) < 0 || (err = be->alloc(be, B * d, &t->x)) < 0 ||
        (err = be->alloc(be, B * d, &t->xc)) < 0 || (err = be->alloc(be, B * m, &t->pre)) < 0 ||
        (err = be->alloc(be, B * m, &t->acts)) < 0 || (err = be->alloc(be, B * d, &t->xhat)) < 0 ||
        (err = be->alloc(be, (size_t)t->n_pref * B * d, &t->resid)) < 0 ||
        (err = be->alloc(be, B * m, &t->gacts)) < 0 || (err = be->alloc(be, B * m, &t->gpre)) < 0 ||
        (err = be->alloc(be, B * d, &t->gxc)) < 0 || (err = be->alloc(be, m, &t->dead)) < 0 ||
        (err = be->alloc(be, d, &t->mean_d)) < 0)
        goto out;
    if (has_auxk(t) && ((err = be->alloc(be, B * m, &t->aux_acts)) < 0 ||
                        (err = be->alloc(be, B * d, &t->aux_resid)) < 0))
        goto out;
    if (!(t->host_mean = lg_malloc(d * sizeof(double)))) {
        err = lg_error_wrap("creating trainer");
        goto out;
    }
    if ((err = be->upload(be, t->p[P_WENC], init->W_enc, d * m)) < 0 ||
        (err = be->upload(be, t->p[P_BENC], init->b_enc, m)) < 0 ||
        (err = be->upload(be, t->p[P_WDEC], init->W_dec, m * d)) < 0 ||
        (err = be->upload(be, t->p[P_BDEC], init->b_dec, d)) < 0)
        goto out;
    if (cfg->arch == LG_ARCH_JUMPRELU) {
        if (!(lthr = lg_malloc(m * sizeof(float)))) {
            err = lg_error_wrap("creating trainer");
            goto out;
        }
        for (i = 0; i < (int)m; i++)
            use_init_thr &= init->threshold[i] > 0.0f;
        for (i = 0; i < (int)m; i++)
            lthr[i] = use_init_thr ? logf(init->threshold[i])
                                   : (float)log(tc->jumprelu_init_threshold);
        if ((err = be->upload(be, t->p[P_LTHR], lthr, m)) < 0)
            goto out;
    }
    *out = t;
    t = NULL;
    err = 0;
out:
    lg_free(lthr);
    lg_trainer_free(t);
    return err;
}

long lg_trainer_steps_done(const lg_trainer *t) { return t->step; }

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

#define TRY(call)                 \
    do {                          \
        if ((err = (call)) < 0)   \
            goto out;             \
    } while (0)

/* Loss and raw gradients on `batch` (nothing else changes but scratch and g[]). */
static int forward_backward(lg_trainer *t, const float *batch, lg_step_stats *st)
{
    const lg_backend *be = t->be;
    const int B = t->tc.batch, d = t->cfg.d_in, m = t->cfg.d_sae;
    const size_t Bd = (size_t)B * d, Bm = (size_t)B * m;
    float *W_enc = t->p[P_WENC], *b_enc = t->p[P_BENC], *W_dec = t->p[P_WDEC],
          *b_dec = t->p[P_BDEC];
    float *resid_full = t->resid + (size_t)(t->n_pref - 1) * Bd; /* [B, d] */
    double recon = 0.0, mse = 0.0, sparsity = 0.0, aux = 0.0, nnz = 0.0, n_dead = 0.0,
           aux_denom = 0.0, ss;
    int err = 0, i, aux_on = 0;

    memset(st, 0, sizeof(*st));
    t->has_grads = 0;
    TRY(be->upload(be, t->x, batch, Bd));

    /* ---- forward ---- */
    TRY(be->add_bias_rows(be, t->x, b_dec, -1.0f, t->xc, B, d)); /* xc = x - b_dec */
    TRY(be->gemm(be, 0, 0, B, m, d, 1.0f, t->xc, d, W_enc, m, 0.0f, t->pre, m));
    TRY(be->add_bias_rows(be, t->pre, b_enc, 1.0f, t->pre, B, m)); /* pre [B, m] */
    t->min_kept = -1.0f;
    switch (t->cfg.arch) {
    case LG_ARCH_RELU:
        TRY(be->relu(be, t->pre, t->acts, Bm));
        break;
    case LG_ARCH_TOPK:
        TRY(be->topk_rows(be, t->pre, NULL, t->acts, B, m, t->cfg.k));
        break;
    case LG_ARCH_BATCHTOPK:
    case LG_ARCH_MATRYOSHKA:
        TRY(be->topk_batch(be, t->pre, t->acts, Bm, (size_t)t->cfg.k * B, &t->min_kept));
        break;
    case LG_ARCH_JUMPRELU:
        TRY(be->jumprelu_fwd(be, t->pre, t->p[P_LTHR], t->acts, B, m));
        break;
    }
    TRY(be->count_nonzero(be, t->acts, Bm, &nnz));

    /* xhat by prefixes: xhat = b_dec + sum over blocks [p_{i-1}, p_i) of
     * acts[:, block] @ W_dec[block]; resid_i = xhat - x after block i. */
    TRY(be->fill(be, t->xhat, 0.0f, Bd));
    TRY(be->add_bias_rows(be, t->xhat, b_dec, 1.0f, t->xhat, B, d));
    for (i = 0; i < t->n_pref; i++) {
        int lo = i ? t->pref[i - 1] : 0, hi = t->pref[i];
        float *r = t->resid + (size_t)i * Bd;
        TRY(be->gemm(be, 0, 0, B, d, hi - lo, 1.0f, t->acts + lo, m, W_dec + (size_t)lo * d, d,
                     1.0f, t->xhat, d));
        TRY(be->axpby(be, Bd, 1.0f, t->xhat, -1.0f, t->x, r));
        TRY(be->sumsq(be, r, Bd, &ss));
        recon += ss / B;
        if (i == t->n_pref - 1)
            mse = ss / B;
    }
    recon /= t->n_pref;

    if (t->cfg.arch == LG_ARCH_RELU && t->tc.l1_coeff > 0) {
        double s;
        TRY(be->sum(be, t->acts, Bm, &s));
        sparsity = t->tc.l1_coeff * s / B;
    } else if (t->cfg.arch == LG_ARCH_JUMPRELU) {
        sparsity = t->tc.l0_coeff * nnz / B;
    }

    /* AuxK on the latents dead before this step */
    if (has_auxk(t)) {
        double steps_needed = ceil(t->tc.dead_after / B);
        if (steps_needed < 1.0)
            steps_needed = 1.0;
        TRY(be->mask_ge(be, t->since, (float)steps_needed, t->dead, (size_t)m));
        TRY(be->sum(be, t->dead, (size_t)m, &n_dead));
        if (n_dead > 0) {
            int kaux = t->tc.aux_k > 0 ? t->tc.aux_k : (d / 2 > 0 ? d / 2 : 1);
            if ((double)kaux > n_dead)
                kaux = (int)n_dead;
            /* denominator: sum ||e - mean_b e||^2 with e = -resid_full */
            TRY(be->col_sum(be, resid_full, B, d, 1.0f / B, 0.0f, t->mean_d));
            TRY(be->add_bias_rows(be, resid_full, t->mean_d, -1.0f, t->aux_resid, B, d));
            TRY(be->sumsq(be, t->aux_resid, Bd, &aux_denom));
            if (aux_denom > 0.0) {
                aux_on = 1;
                TRY(be->topk_rows(be, t->pre, t->dead, t->aux_acts, B, m, kaux));
                /* aux_resid = ehat - e = aux_acts @ W_dec + resid_full */
                TRY(be->copy(be, t->aux_resid, resid_full, Bd));
                TRY(be->gemm(be, 0, 0, B, d, m, 1.0f, t->aux_acts, m, W_dec, d, 1.0f,
                             t->aux_resid, d));
                TRY(be->sumsq(be, t->aux_resid, Bd, &ss));
                aux = t->tc.aux_coeff * ss / aux_denom;
            }
        }
    }

    st->step = t->step;
    st->recon = recon;
    st->mse = mse;
    st->sparsity = sparsity;
    st->aux = aux;
    st->loss = recon + sparsity + aux;
    st->l0 = nnz / B;
    st->n_dead = n_dead;
    st->threshold = t->threshold;
    ss = host_centered_ss(batch, B, d, t->host_mean);
    st->fvu = ss > 0.0 ? mse * B / ss : NAN;
    if (!isfinite(st->loss)) {
        err = lg_error_set(LG_EDIVERGED, "training diverged at step %ld: loss is %s", t->step + 1,
                           isnan(st->loss) ? "NaN" : "Inf");
        goto out;
    }

    /* ---- backward ---- */
    {
        const float s = 2.0f / ((float)B * (float)t->n_pref);
        TRY(be->fill(be, t->g[P_WDEC], 0.0f, t->numel[P_WDEC]));
        TRY(be->fill(be, t->gacts, 0.0f, Bm));
        TRY(be->fill(be, t->g[P_BDEC], 0.0f, (size_t)d));
        for (i = 0; i < t->n_pref; i++) {
            int p = t->pref[i];
            const float *r = t->resid + (size_t)i * Bd;
            /* gW_dec[:p] += s * acts[:, :p]^T @ r */
            TRY(be->gemm(be, 1, 0, p, d, B, s, t->acts, m, r, d, 1.0f, t->g[P_WDEC], d));
            /* gacts[:, :p] += s * r @ W_dec[:p]^T */
            TRY(be->gemm(be, 0, 1, B, p, d, s, r, d, W_dec, d, 1.0f, t->gacts, m));
            TRY(be->col_sum(be, r, B, d, s, 1.0f, t->g[P_BDEC]));
        }
    }
    if (t->cfg.arch == LG_ARCH_RELU && t->tc.l1_coeff > 0)
        TRY(be->scale_shift(be, t->gacts, 1.0f, (float)(t->tc.l1_coeff / B), Bm));
    if (t->cfg.arch == LG_ARCH_JUMPRELU)
        TRY(be->jumprelu_bwd(be, t->pre, t->p[P_LTHR], t->gacts, (float)(t->tc.l0_coeff / B),
                             (float)t->tc.jumprelu_bandwidth, t->gpre, t->g[P_LTHR], B, m));
    else
        TRY(be->active_grad(be, t->acts, t->gacts, 0.0f, t->gpre, Bm));
    if (aux_on) {
        const float c = (float)(2.0 * t->tc.aux_coeff / aux_denom);
        TRY(be->gemm(be, 1, 0, m, d, B, c, t->aux_acts, m, t->aux_resid, d, 1.0f, t->g[P_WDEC], d));
        TRY(be->gemm(be, 0, 1, B, m, d, c, t->aux_resid, d, W_dec, d, 0.0f, t->gacts, m));
        TRY(be->active_grad(be, t->aux_acts, t->gacts, 1.0f, t->gpre, Bm));
    }
    TRY(be->col_sum(be, t->gpre, B, m, 1.0f, 0.0f, t->g[P_BENC]));
    TRY(be->gemm(be, 1, 0, d, m, B, 1.0f, t->xc, d, t->gpre, m, 0.0f, t->g[P_WENC], m));
    TRY(be->gemm(be, 0, 1, B, d, m, 1.0f, t->gpre, m, W_enc, m, 0.0f, t->gxc, d));
    TRY(be->col_sum(be, t->gxc, B, d, -1.0f, 1.0f, t->g[P_BDEC])); /* through xc = x - b_dec */
    t->has_grads = 1;
out:
    return err;
}

/* Steps 2-7 of train.h on the gradients of forward_backward. */
static int apply_update(lg_trainer *t, lg_step_stats *st)
{
    const lg_backend *be = t->be;
    const int B = t->tc.batch, d = t->cfg.d_in, m = t->cfg.d_sae;
    lg_adam_args a;
    double lr, gnorm, tt;
    int err = 0, i;

    TRY(be->project_out_parallel(be, t->p[P_WDEC], t->g[P_WDEC], m, d));
    TRY(lg_backend_clip_grad_norm(be, t->g, t->numel, t->n_params, t->tc.grad_clip, &gnorm));
    lr = schedule_lr(&t->tc, t->step);
    tt = (double)(t->step + 1);
    a.lr = (float)lr;
    a.beta1 = (float)t->tc.adam_beta1;
    a.beta2 = (float)t->tc.adam_beta2;
    a.eps = (float)t->tc.adam_eps;
    a.bc1 = (float)(1.0 - pow(t->tc.adam_beta1, tt));
    a.bc2 = (float)(1.0 - pow(t->tc.adam_beta2, tt));
    for (i = 0; i < t->n_params; i++)
        TRY(be->adam_step(be, t->p[i], t->g[i], t->m[i], t->v[i], t->numel[i], &a));
    TRY(be->renorm_rows(be, t->p[P_WDEC], m, d));
    TRY(be->fired_update(be, t->acts, B, m, t->since));
    if (is_batch_topk(t->cfg.arch) && t->min_kept >= 0.0f) {
        if (t->threshold < 0.0f)
            t->threshold = t->min_kept;
        else
            t->threshold = (float)(t->tc.threshold_beta * t->threshold +
                                   (1.0 - t->tc.threshold_beta) * t->min_kept);
    }
    t->step++;
    t->has_grads = 0;
    st->step = t->step;
    st->lr = lr;
    st->grad_norm = gnorm;
    st->threshold = t->threshold;
out:
    return err;
}

int lg_trainer_step(lg_trainer *t, const float *batch, lg_step_stats *out)
{
    lg_step_stats st;
    int err;
    if (t->step >= t->tc.steps)
        return lg_error_set(LG_EINPUT, "trainer: step %ld beyond the configured %ld steps",
                            t->step + 1, t->tc.steps);
    if ((err = forward_backward(t, batch, &st)) < 0)
        return err;
    if ((err = apply_update(t, &st)) < 0)
        return err;
    if (out)
        *out = st;
    return 0;
}

int lg_trainer_compute_grads(lg_trainer *t, const float *batch, lg_step_stats *out)
{
    lg_step_stats st;
    int err = forward_backward(t, batch, &st);
    if (out)
        *out = st;
    return err;
}

int lg_trainer_get_grads(lg_trainer *t, lg_sae_weights *out)
{
    const lg_backend *be = t->be;
    int err;
    memset(out, 0, sizeof(*out));
    if (!t->has_grads)
        return lg_error_set(LG_EINTERNAL, "trainer: no gradients computed");
    if ((err = lg_sae_weights_alloc(out, t->cfg.d_in, t->cfg.d_sae)) < 0)
        return err;
    if ((err = be->download(be, out->W_enc, t->g[P_WENC], t->numel[P_WENC])) < 0 ||
        (err = be->download(be, out->b_enc, t->g[P_BENC], t->numel[P_BENC])) < 0 ||
        (err = be->download(be, out->W_dec, t->g[P_WDEC], t->numel[P_WDEC])) < 0 ||
        (err = be->download(be, out->b_dec, t->g[P_BDEC], t->numel[P_BDEC])) < 0 ||
        (t->n_params > P_LTHR &&
         (err = be->download(be, out->threshold, t->g[P_LTHR], t->numel[P_LTHR])) < 0))
        lg_sae_weights_release(out);
    return err;
}

int lg_trainer_get_weights(lg_trainer *t, lg_sae_weights *out)
{
    const lg_backend *be = t->be;
    int err, j, m = t->cfg.d_sae;
    memset(out, 0, sizeof(*out));
    if ((err = lg_sae_weights_alloc(out, t->cfg.d_in, m)) < 0)
        return err;
    if ((err = be->download(be, out->W_enc, t->p[P_WENC], t->numel[P_WENC])) < 0 ||
        (err = be->download(be, out->b_enc, t->p[P_BENC], t->numel[P_BENC])) < 0 ||
        (err = be->download(be, out->W_dec, t->p[P_WDEC], t->numel[P_WDEC])) < 0 ||
        (err = be->download(be, out->b_dec, t->p[P_BDEC], t->numel[P_BDEC])) < 0)
        goto out;
    if (t->cfg.arch == LG_ARCH_JUMPRELU) {
        if ((err = be->download(be, out->threshold, t->p[P_LTHR], t->numel[P_LTHR])) < 0)
            goto out;
        for (j = 0; j < m; j++)
            out->threshold[j] = expf(out->threshold[j]);
    } else if (is_batch_topk(t->cfg.arch)) {
        for (j = 0; j < m; j++)
            out->threshold[j] = t->threshold > 0.0f ? t->threshold : 0.0f;
    }
out:
    if (err < 0)
        lg_sae_weights_release(out);
    return err;
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

/* The state layout: fills names and shapes of up to 20 arrays and, per entry,
 * where it lives: a device buffer (dev) or a host scalar (host_scalar). */
typedef struct {
    char name[40];
    int ndim;
    int64_t shape[2];
    float *dev;          /* device buffer, or NULL */
    int host_scalar;     /* 1 step, 2 batchtopk_threshold, 3 state_version */
} state_entry;

static int state_layout(lg_trainer *t, state_entry *e)
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
            e[n].dev = buf;
            n++;
        }
    memset(&e[n], 0, sizeof(e[n]));
    snprintf(e[n].name, sizeof(e[n].name), "steps_since_fired");
    e[n].ndim = 1;
    e[n].shape[0] = m;
    e[n].dev = t->since;
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

int lg_trainer_save_state(lg_trainer *t, lg_train_state *out)
{
    state_entry e[STATE_MAX];
    int n = state_layout(t, e), i, err = 0;
    out->count = 0;
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
            a->data[0] = (float)t->step; /* exact: steps <= 2^24 (config check) */
        else if (e[i].host_scalar == 2)
            a->data[0] = t->threshold;
        else
            a->data[0] = STATE_VERSION;
    }
out:
    if (err < 0)
        lg_train_state_release(out);
    return err;
}

int lg_trainer_load_state(lg_trainer *t, const lg_train_state *st)
{
    state_entry e[STATE_MAX];
    int n = state_layout(t, e), i, j, err = 0;
    long step = 0;
    float threshold = -1.0f;
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
            float s = a->data[0];
            if (!(s >= 0 && s <= (float)t->tc.steps && s == floorf(s)))
                return lg_error_set(LG_EINPUT, "trainer state: step = %g is not in [0, %ld]",
                                    (double)s, t->tc.steps);
            step = (long)s;
        } else if (e[i].host_scalar == 2) {
            threshold = a->data[0];
            if (!isfinite(threshold))
                return lg_error_set(LG_EINPUT, "trainer state: batchtopk_threshold is not finite");
        } else if (e[i].host_scalar == 3 && a->data[0] != STATE_VERSION) {
            return lg_error_set(LG_EINPUT, "trainer state: state_version %g, expected %g",
                                (double)a->data[0], (double)STATE_VERSION);
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
    t->step = step;
    t->threshold = threshold;
    t->has_grads = 0;
out:
    return err;
}
