/*
 * arch_route_train.c - RouteSAE's host trainer, for one seed and for the
 * seeds of a group (part of arch_route.c; formulas in arch_route.h and
 * engine/README.md "RouteSAE"; shared views in arch_route_int.h).
 *
 * Holds the trainer's state (parameters, gradients, Adam moments, the
 * dead-latent clocks), the forward and backward of a batch with AuxK, the
 * update (train.h's schedule, clipping, Adam, decoder renormalisation), the
 * multi-seed wrapper run.c drives and the export of weights and gradients.
 * The per-row forward it builds on stays in arch_route.c, with the model and
 * its evaluation, so that training and evaluation share one forward.
 */
#include "engine/arch_route.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/base.h"
#include "engine/backend_cpu_sparse.h" /* lg_cpu_threads */
#include "engine/arch_route_int.h"

enum { R_WENC, R_BENC, R_WDEC, R_BDEC, R_WROUT, R_BROUT, R_NPARAM };

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
    route_scratch_release(&t->s);
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

/* The six parameters of w in the trainer's order (R_WENC ... R_BROUT). */
static void weight_slots(const lg_sae_weights *w, float *slot[R_NPARAM])
{
    slot[R_WENC] = w->W_enc;
    slot[R_BENC] = w->b_enc;
    slot[R_WDEC] = w->W_dec;
    slot[R_BDEC] = w->b_dec;
    slot[R_WROUT] = w->W_router;
    slot[R_BROUT] = w->b_router;
}

int lg_route_trainer_new(const lg_sae_config *cfg, const lg_train_config *tc, const lg_sae_weights *init,
                         lg_route_trainer **out)
{
    lg_route_trainer *t = NULL;
    float *src[R_NPARAM]; /* read only */
    size_t d, m, L;
    int i, err;
    *out = NULL;
    if ((err = lg_route_check(cfg, tc)) < 0 || (err = lg_train_config_check(tc, cfg)) < 0 ||
        (err = route_check_weights(cfg, init)) < 0)
        return err;
    if (!(t = lg_calloc(1, sizeof(*t))))
        return LG_ENOMEM;
    t->cfg = route_shape_of(cfg, init->n_layers);
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
    weight_slots(init, src);
    for (i = 0; i < R_NPARAM; i++) {
        if (!(t->P[i] = lg_malloc(t->n[i] * sizeof(float))) || !(t->M[i] = lg_calloc(t->n[i], sizeof(float))) ||
            !(t->V[i] = lg_calloc(t->n[i], sizeof(float))) || !(t->G[i] = lg_calloc(t->n[i], sizeof(double)))) {
            err = lg_error_set(LG_ENOMEM, "routesae: out of memory for the trainer");
            goto out;
        }
        memcpy(t->P[i], src[i], t->n[i] * sizeof(float));
    }
    if ((err = route_scratch_alloc(&t->s, &t->cfg, tc->batch)) < 0)
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
    int b, i, q;
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
        int *idx = t->aidx + (size_t)b * kaux;
        double *val = t->aval + (size_t)b * kaux, *ar = t->ar + (size_t)b * d;
        route_topk_row(pre, t->dead, m, kaux, idx, val); /* kaux <= the number dead */
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
    route_forward_rows(cfg, &P, batch, B, &t->s);

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
        route_row s = route_scratch_row(&t->s, cfg, b);
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
    lr = lg_train_lr(&t->tc, t->step);
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
    weight_slots(out, dst);
    for (i = 0; i < R_NPARAM; i++)
        for (e = 0; e < t->n[i]; e++)
            dst[i][e] = grads ? (float)t->G[i][e] : t->P[i][e];
    return 0;
}

int lg_route_trainer_get_grads(const lg_route_trainer *t, lg_sae_weights *out) { return export_arrays(t, 1, out); }
int lg_route_trainer_get_weights(const lg_route_trainer *t, lg_sae_weights *out) { return export_arrays(t, 0, out); }

int lg_route_multi_dead_frac(const lg_route_multi *mt, int s, double dead_after, int batch, double *out)
{
    const lg_route_trainer *t;
    double need = batch > 0 ? ceil(dead_after / batch) : 1.0;
    int j, dead = 0;
    *out = NAN;
    if (s < 0 || s >= mt->S)
        return lg_error_set(LG_EINPUT, "routesae: seed %d of %d", s, mt->S);
    t = mt->t[s];
    if (need < 1.0)
        need = 1.0;
    for (j = 0; j < t->cfg.d_sae; j++)
        dead += t->since[j] >= need;
    *out = (double)dead / (double)t->cfg.d_sae;
    return 0;
}
