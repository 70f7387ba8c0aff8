/*
 * train_step.c - one training step of the SAE trainer (part of train.c; the
 * formulas, the seed layout and the spans are in train.c's essay and
 * train.h, the shared state in train_int.h).
 *
 * Holds the forward and backward pass of every active seed
 * (forward_backward: loss, raw gradients, AuxK, the step statistics, with
 * the sparse path's backward in sparse_backward and Hierarchical TopK's in
 * hier_pass), the update (apply_update: projection, clipping, Adam,
 * renormalisation, dead-latent clocks), the learning-rate schedule and the
 * step entry points that run the two in order. It is the hot loop, kept
 * apart from the trainer's set-up (train.c) and its saved state
 * (train_state.c) so that it reads top to bottom as one step.
 */
#include "engine/train.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "engine/arch_hier.h"
#include "engine/train_int.h"

double lg_train_lr(const lg_train_config *tc, long step)
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
    const int fused = t->sparse && be->encode_topk_csr &&
                      (t->cfg.arch == LG_ARCH_TOPK || t->cfg.arch == LG_ARCH_HIER_TOPK);
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
    if (train_has_auxk(t)) { /* dead before this step: depends on `since` only */
        double steps_needed = ceil(t->tc.dead_after / B);
        if (steps_needed < 1.0)
            steps_needed = 1.0;
        FOR_SPANS(k, s0, ns)
        TRY(be->mask_ge(be, t->since + s0 * (size_t)m, (float)steps_needed, t->dead + s0 * (size_t)m,
                        ns * (size_t)m));
    }
    if (fused) { /* pre = xc @ W_enc + b_enc and its top-k in one op (backend.h) */
        /* pre is needed afterwards by AuxK (when a latent is dead) and by
         * Hierarchical TopK's smaller budgets */
        nreq = 0;
        if (train_has_auxk(t))
            FOR_SEEDS(s)
            reqs[nreq++] = (lg_reduce_req){LG_RED_SUM, t->dead + (size_t)s * m, (size_t)m};
        TRY(lg_backend_reduce_many(be, reqs, nreq, red));
        nreq = 0;
        FOR_SEEDS(s) {
            int keep = t->cfg.arch == LG_ARCH_HIER_TOPK;
            if (train_has_auxk(t) && red[nreq++] > 0.0)
                keep = 1;
            TRY(be->encode_topk_csr(be, t->xc + s * Bd, W_enc + s * md, b_enc + (size_t)s * m, B, d, m,
                                    t->cfg.k, t->pre + s * Bm, keep, SP_PTR(s), SP_IDX(s), SP_VAL(s),
                                    &t->nnz[s]));
        }
    } else {
        FOR_SPANS(k, s0, ns) /* pre = xc @ W_enc */
        TRY(be->gemm_batched(be, 0, 0, B, m, d, 1.0f, t->xc + s0 * Bd, d, (long long)Bd,
                             W_enc + s0 * md, m, (long long)md, 0.0f, t->pre + s0 * Bm, m,
                             (long long)Bm, ns));
        FOR_SEEDS(s) /* pre [B, m] += b_enc */
        TRY(be->add_bias_rows(be, t->pre + s * Bm, b_enc + (size_t)s * m, 1.0f, t->pre + s * Bm, B, m));
    }
    for (s = 0; s < S; s++)
        t->min_kept[s] = -1.0f;
    if (t->sparse) { /* acts as CSR per seed, and its CSC (backward, dead-latent clocks) */
        FOR_SEEDS(s) {
            if (fused) {
                /* encode_topk_csr selected them above */
            } else if (t->cfg.arch == LG_ARCH_TOPK || t->cfg.arch == LG_ARCH_HIER_TOPK)
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
        if (train_has_auxk(t))
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
        if (train_has_auxk(t))
            st[s].n_dead = red[nreq++];
    }

    /* AuxK on the latents dead before this step */
    if (train_has_auxk(t)) {
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
    lr = lg_train_lr(&t->tc, step);
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
        if (train_is_batch_topk(t->cfg.arch) && t->min_kept[s] >= 0.0f) {
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
int train_step_or_grads(lg_trainer *t, const float *batches, const float *targets, lg_step_stats *out,
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
    return train_step_or_grads(t, batches, NULL, out, 1);
}

int lg_trainer_compute_grads_multi(lg_trainer *t, const float *batches, lg_step_stats *out)
{
    return train_step_or_grads(t, batches, NULL, out, 0);
}

