/*
 * test_route.c - RouteSAE (engine/arch_route.h):
 *  - every parameter's gradient, the router's included, against central
 *    finite differences of an independent float64 reference loss written
 *    here from the formulas of arch_route.h (sharing no code with it); the
 *    inputs are chosen (seed search) so that no top-k selection lies within
 *    a margin of its boundary;
 *  - two update steps reconstructed in float64 from the raw gradients
 *    (projection, clipping, Adam with bias correction, renormalisation);
 *  - L = 1 reduces to a TopK SAE: its gradients equal the backend trainer's;
 *  - determinism: the same bits twice, at 1 and 2 threads, and seed-batched
 *    (lg_route_multi) equal to alone;
 *  - evaluation: fvu / mse / l0 from lg_route_eval against a reference from
 *    lg_route_forward.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/rng.h"
#include "engine/arch_route.h"
#include "engine/backend.h"
#include "engine/sae.h"
#include "engine/train.h"
#include "tests/unit/check.h"

enum { B_ = 6, L_ = 3, D_ = 5, M_ = 12, K_ = 3 };

/* layout of the flat parameter vector */
#define OFF_WE 0
#define OFF_BE (OFF_WE + D_ * M_)
#define OFF_WD (OFF_BE + M_)
#define OFF_BD (OFF_WD + M_ * D_)
#define OFF_WR (OFF_BD + D_)
#define OFF_BR (OFF_WR + D_ * L_)
#define N_PAR (OFF_BR + L_)

/* AuxK of the reference: the dead latents, and e = u - uhat and its
 * denominator frozen at the base point (stop-gradient, as train.h says). */
typedef struct {
    int on, kaux;
    int dead[M_];
    double coeff, den;
    double e[B_ * D_];
} ref_aux;

/* top-n of v over the candidates cand (value desc, index asc) into keep;
 * the selection margin (gap to the next candidate, kept values to 0) into *mg */
static void ref_top(const double *v, const int *cand, int n, int *keep, double *mg)
{
    double kth = INFINITY, next = -INFINITY;
    int q, j;
    for (j = 0; j < M_; j++)
        keep[j] = 0;
    for (q = 0; q < n; q++) {
        int best = -1;
        for (j = 0; j < M_; j++)
            if (cand[j] && !keep[j] && (best < 0 || v[j] > v[best]))
                best = j;
        keep[best] = 1;
    }
    for (j = 0; j < M_; j++) {
        if (!cand[j])
            continue;
        if (keep[j] && v[j] < kth)
            kth = v[j];
        if (!keep[j] && v[j] > next)
            next = v[j];
        if (keep[j] && fabs(v[j]) < *mg)
            *mg = fabs(v[j]);
    }
    if (kth - next < *mg)
        *mg = kth - next;
}

/* The reference loss (1/B) sum_b ||uhat_b - u_b||^2 (+ AuxK when aux->on)
 * in float64; *margin = the smallest gap, over rows, between the k-th and
 * (k+1)-th candidate pre-activation and between a kept one and 0, for the
 * top-k and AuxK's selection; e_out [B, D] (may be NULL) gets u - uhat. */
static double ref_loss_aux(const double *P, const float *x, double *margin, const ref_aux *aux, double *e_out)
{
    double loss = 0.0, mg = INFINITY, asum = 0.0;
    int all[M_];
    int b, i, l, j;
    for (b = 0; b < B_; b++) {
        const float *xb = x + (size_t)b * L_ * D_;
        double pool[D_], z[L_], r[L_], u[D_], pre[M_], uhat[D_], zmax = -INFINITY, zs = 0.0;
        int keep[M_];
        for (i = 0; i < D_; i++) {
            pool[i] = 0.0;
            for (l = 0; l < L_; l++)
                pool[i] += xb[l * D_ + i];
            pool[i] /= L_;
        }
        for (l = 0; l < L_; l++) {
            z[l] = P[OFF_BR + l];
            for (i = 0; i < D_; i++)
                z[l] += pool[i] * P[OFF_WR + i * L_ + l];
            zmax = z[l] > zmax ? z[l] : zmax;
        }
        for (l = 0; l < L_; l++)
            zs += r[l] = exp(z[l] - zmax);
        for (l = 0; l < L_; l++)
            r[l] /= zs;
        for (i = 0; i < D_; i++) {
            u[i] = 0.0;
            for (l = 0; l < L_; l++)
                u[i] += r[l] * xb[l * D_ + i];
        }
        for (j = 0; j < M_; j++) {
            pre[j] = P[OFF_BE + j];
            for (i = 0; i < D_; i++)
                pre[j] += (u[i] - P[OFF_BD + i]) * P[OFF_WE + i * M_ + j];
            all[j] = 1;
        }
        ref_top(pre, all, K_, keep, &mg); /* top-k by repeated arg-max (ties: lower index) */
        for (i = 0; i < D_; i++)
            uhat[i] = P[OFF_BD + i];
        for (j = 0; j < M_; j++)
            if (keep[j] && pre[j] > 0)
                for (i = 0; i < D_; i++)
                    uhat[i] += pre[j] * P[OFF_WD + j * D_ + i];
        for (i = 0; i < D_; i++) {
            loss += (uhat[i] - u[i]) * (uhat[i] - u[i]);
            if (e_out)
                e_out[b * D_ + i] = u[i] - uhat[i];
        }
        if (aux && aux->on) { /* ehat - e over the top kaux dead latents */
            int akeep[M_];
            double r2[D_];
            ref_top(pre, aux->dead, aux->kaux, akeep, &mg);
            for (i = 0; i < D_; i++)
                r2[i] = -aux->e[b * D_ + i];
            for (j = 0; j < M_; j++)
                if (akeep[j] && pre[j] > 0)
                    for (i = 0; i < D_; i++)
                        r2[i] += pre[j] * P[OFF_WD + j * D_ + i];
            for (i = 0; i < D_; i++)
                asum += r2[i] * r2[i];
        }
    }
    if (margin)
        *margin = mg;
    return loss / B_ + (aux && aux->on ? aux->coeff * asum / aux->den : 0.0);
}

static double ref_loss(const double *P, const float *x, double *margin)
{
    return ref_loss_aux(P, x, margin, NULL, NULL);
}

static void params_from(const lg_sae_weights *w, double *P)
{
    int i;
    for (i = 0; i < D_ * M_; i++)
        P[OFF_WE + i] = w->W_enc[i];
    for (i = 0; i < M_; i++)
        P[OFF_BE + i] = w->b_enc[i];
    for (i = 0; i < M_ * D_; i++)
        P[OFF_WD + i] = w->W_dec[i];
    for (i = 0; i < D_; i++)
        P[OFF_BD + i] = w->b_dec[i];
    for (i = 0; i < D_ * L_; i++)
        P[OFF_WR + i] = w->W_router[i];
    for (i = 0; i < L_; i++)
        P[OFF_BR + i] = w->b_router[i];
}

static int case_layers; /* L of the next make_case (set by route_cfg) */

static void route_cfg(lg_sae_config *cfg, lg_train_config *tc, int L, int d, int m, int k, int B, long steps)
{
    memset(cfg, 0, sizeof *cfg);
    case_layers = L;
    cfg->arch = LG_ARCH_ROUTESAE;
    cfg->d_in = d;
    cfg->d_sae = m;
    cfg->k = k;
    lg_train_config_default(tc);
    tc->batch = B;
    tc->steps = steps;
    tc->aux_k = 0;
    tc->aux_coeff = 0;
}

/* Random case from seed: x [B, L, d] with layers of different scales and
 * means, weights from lg_sae_init_weights plus a random router, b_enc and
 * b_dec. */
static void make_case(const lg_sae_config *cfg, uint64_t seed, int B, float *x, lg_sae_weights *w)
{
    lg_rng r;
    const int L = case_layers, d = cfg->d_in, m = cfg->d_sae;
    int b, l, i;
    lg_rng_init(&r, seed, 77);
    for (b = 0; b < B; b++)
        for (l = 0; l < L; l++)
            for (i = 0; i < d; i++)
                x[((size_t)b * L + l) * d + i] = (float)((0.5 + l) * lg_rng_normal(&r) + 0.3 * l);
    CHECK_OK(lg_route_init_weights(cfg, L, seed, NULL, w));
    for (i = 0; i < m; i++)
        w->b_enc[i] = (float)(0.2 * lg_rng_normal(&r));
    for (i = 0; i < d; i++)
        w->b_dec[i] = (float)(0.2 * lg_rng_normal(&r));
    for (i = 0; i < d * L; i++)
        w->W_router[i] = (float)(0.7 * lg_rng_normal(&r));
    for (i = 0; i < L; i++)
        w->b_router[i] = (float)(0.3 * lg_rng_normal(&r));
}

static double max_abs_diff(const float *a, const double *b, int n, double *scale)
{
    double m = 0.0, s = 0.0;
    int i;
    for (i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > m)
            m = fabs(a[i] - b[i]);
        if (fabs(b[i]) > s)
            s = fabs(b[i]);
    }
    *scale = s;
    return m;
}

static void test_grad_finite_differences(void)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights w, g;
    lg_route_trainer *t = NULL;
    lg_step_stats st;
    float x[B_ * L_ * D_];
    double P[N_PAR], fd[N_PAR], margin = 0, loss;
    uint64_t seed;
    const double h = 1e-6;
    static const struct {
        const char *name;
        int off, n;
    } parts[] = {{"W_enc", OFF_WE, D_ * M_}, {"b_enc", OFF_BE, M_},     {"W_dec", OFF_WD, M_ * D_},
                 {"b_dec", OFF_BD, D_},      {"W_router", OFF_WR, D_ * L_}, {"b_router", OFF_BR, L_}};
    int p, i;

    memset(&w, 0, sizeof w);
    memset(&g, 0, sizeof g);
    route_cfg(&cfg, &tc, L_, D_, M_, K_, B_, 10);
    for (seed = 1; seed < 200; seed++) {
        lg_sae_weights_release(&w);
        make_case(&cfg, seed, B_, x, &w);
        params_from(&w, P);
        ref_loss(P, x, &margin);
        if (margin > 1e-3)
            break;
    }
    CHECK_MSG(margin > 1e-3, "no case with a top-k margin found");
    CHECK_OK(lg_route_trainer_new(&cfg, &tc, &w, &t));
    if (!t)
        goto out;
    CHECK_OK(lg_route_trainer_compute_grads(t, x, &st));
    CHECK_OK(lg_route_trainer_get_grads(t, &g));
    loss = ref_loss(P, x, NULL);
    CHECK_MSG(fabs(st.loss - loss) <= 1e-9 * (1 + loss), "loss %.12g vs reference %.12g", st.loss, loss);
    for (i = 0; i < N_PAR; i++) {
        double keep = P[i], lp, lm;
        P[i] = keep + h;
        lp = ref_loss(P, x, NULL);
        P[i] = keep - h;
        lm = ref_loss(P, x, NULL);
        P[i] = keep;
        fd[i] = (lp - lm) / (2 * h);
    }
    {
        const float *got[6] = {g.W_enc, g.b_enc, g.W_dec, g.b_dec, g.W_router, g.b_router};
        for (p = 0; p < 6; p++) {
            double scale, diff = max_abs_diff(got[p], fd + parts[p].off, parts[p].n, &scale);
            CHECK_MSG(scale > 1e-3, "%s: finite differences are all ~0 (scale %g): nothing checked", parts[p].name,
                      scale);
            CHECK_MSG(diff <= 1e-5 * scale + 1e-7, "%s: |analytic - fd| = %g (scale %g)", parts[p].name, diff, scale);
        }
    }
out:
    lg_route_trainer_free(t);
    lg_sae_weights_release(&w);
    lg_sae_weights_release(&g);
}

/* The AuxK path: latents 0, 3, 5, 7, 8, 10 made dead through the clocks;
 * every gradient against finite differences of the reference with AuxK. */
static void test_grad_auxk(void)
{
    static const int dead_list[] = {0, 3, 5, 7, 8, 10};
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights w, g;
    lg_route_trainer *t = NULL;
    lg_step_stats st;
    float x[B_ * L_ * D_];
    double P[N_PAR], fd[N_PAR], margin = 0, loss, since[M_], aux_only;
    ref_aux ra;
    uint64_t seed;
    const double h = 1e-6;
    static const char *const names[] = {"W_enc", "b_enc", "W_dec", "b_dec", "W_router", "b_router"};
    const int offs[] = {OFF_WE, OFF_BE, OFF_WD, OFF_BD, OFF_WR, OFF_BR};
    const int ns[] = {D_ * M_, M_, M_ * D_, D_, D_ * L_, L_};
    int p, i, b;

    memset(&w, 0, sizeof w);
    memset(&g, 0, sizeof g);
    memset(&ra, 0, sizeof ra);
    route_cfg(&cfg, &tc, L_, D_, M_, K_, B_, 10);
    tc.aux_k = 2;
    tc.aux_coeff = 0.5; /* large, so the aux term shows in every gradient */
    tc.dead_after = 3 * B_; /* dead after 3 steps without firing */
    for (i = 0; i < M_; i++)
        since[i] = 0;
    for (i = 0; i < (int)(sizeof dead_list / sizeof dead_list[0]); i++) {
        since[dead_list[i]] = 3 + i;
        ra.dead[dead_list[i]] = 1;
    }
    since[1] = 2; /* one step short: alive */
    ra.on = 1;
    ra.kaux = 2;
    ra.coeff = tc.aux_coeff;
    for (seed = 1; seed < 400; seed++) {
        double mu[D_] = {0};
        lg_sae_weights_release(&w);
        make_case(&cfg, seed, B_, x, &w);
        params_from(&w, P);
        ref_loss_aux(P, x, NULL, NULL, ra.e); /* e at the base point */
        ra.den = 0;
        for (b = 0; b < B_; b++)
            for (i = 0; i < D_; i++)
                mu[i] += ra.e[b * D_ + i] / B_;
        for (b = 0; b < B_; b++)
            for (i = 0; i < D_; i++)
                ra.den += (ra.e[b * D_ + i] - mu[i]) * (ra.e[b * D_ + i] - mu[i]);
        ref_loss_aux(P, x, &margin, &ra, NULL);
        if (margin > 1e-3)
            break;
    }
    CHECK_MSG(margin > 1e-3, "no case with a top-k margin found");
    CHECK_OK(lg_route_trainer_new(&cfg, &tc, &w, &t));
    if (!t)
        goto out;
    lg_route_trainer_set_clocks(t, since);
    CHECK_OK(lg_route_trainer_compute_grads(t, x, &st));
    CHECK_OK(lg_route_trainer_get_grads(t, &g));
    loss = ref_loss_aux(P, x, NULL, &ra, NULL);
    aux_only = loss - ref_loss(P, x, NULL);
    CHECK_MSG(st.n_dead == 6, "n_dead %g, want 6", st.n_dead);
    CHECK_MSG(aux_only > 1e-3, "the reference's aux term is %g: nothing to check", aux_only);
    CHECK_MSG(fabs(st.aux - aux_only) <= 1e-9 * (1 + aux_only), "aux %.12g vs reference %.12g", st.aux, aux_only);
    CHECK_MSG(fabs(st.loss - loss) <= 1e-9 * (1 + loss), "loss %.12g vs reference %.12g", st.loss, loss);
    for (i = 0; i < N_PAR; i++) {
        double keep = P[i], lp, lm;
        P[i] = keep + h;
        lp = ref_loss_aux(P, x, NULL, &ra, NULL);
        P[i] = keep - h;
        lm = ref_loss_aux(P, x, NULL, &ra, NULL);
        P[i] = keep;
        fd[i] = (lp - lm) / (2 * h);
    }
    {
        const float *got[6] = {g.W_enc, g.b_enc, g.W_dec, g.b_dec, g.W_router, g.b_router};
        for (p = 0; p < 6; p++) {
            double scale, diff = max_abs_diff(got[p], fd + offs[p], ns[p], &scale);
            CHECK_MSG(scale > 1e-3, "%s: finite differences are all ~0 (scale %g)", names[p], scale);
            CHECK_MSG(diff <= 1e-5 * scale + 1e-7, "%s: |analytic - fd| = %g (scale %g)", names[p], diff, scale);
        }
    }
    /* a dead latent's encoder column gets gradient only through AuxK */
    {
        double col = 0;
        for (i = 0; i < D_; i++)
            col += fabs(g.W_enc[i * M_ + dead_list[0]]) + fabs(g.W_enc[i * M_ + dead_list[1]]);
        CHECK_MSG(col > 0, "no AuxK gradient reached the dead latents' encoder columns");
    }
out:
    lg_route_trainer_free(t);
    lg_sae_weights_release(&w);
    lg_sae_weights_release(&g);
}

/* Reference update of one step from the raw gradients g (float64 Adam state
 * m, v [N_PAR]; step t 1-based), train.h's steps 2-5, onto P. */
static void ref_update(double *P, const double *graw, double *m, double *v, long t, const lg_train_config *tc,
                       double lr)
{
    double g[N_PAR], total = 0.0, scale = 1.0, bc1, bc2;
    int i, j;
    memcpy(g, graw, sizeof g);
    for (j = 0; j < M_; j++) {
        double dot = 0.0;
        for (i = 0; i < D_; i++)
            dot += g[OFF_WD + j * D_ + i] * P[OFF_WD + j * D_ + i];
        for (i = 0; i < D_; i++)
            g[OFF_WD + j * D_ + i] -= dot * P[OFF_WD + j * D_ + i];
    }
    for (i = 0; i < N_PAR; i++)
        total += g[i] * g[i];
    if (sqrt(total) > tc->grad_clip)
        scale = tc->grad_clip / sqrt(total);
    bc1 = 1.0 - pow(tc->adam_beta1, (double)t);
    bc2 = 1.0 - pow(tc->adam_beta2, (double)t);
    for (i = 0; i < N_PAR; i++) {
        double gg = g[i] * scale;
        m[i] = tc->adam_beta1 * m[i] + (1 - tc->adam_beta1) * gg;
        v[i] = tc->adam_beta2 * v[i] + (1 - tc->adam_beta2) * gg * gg;
        P[i] -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + tc->adam_eps);
    }
    for (j = 0; j < M_; j++) {
        double ss = 0.0;
        for (i = 0; i < D_; i++)
            ss += P[OFF_WD + j * D_ + i] * P[OFF_WD + j * D_ + i];
        for (i = 0; i < D_; i++)
            P[OFF_WD + j * D_ + i] /= sqrt(ss);
    }
}

static void test_update_steps_float64(void)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights w, g, now;
    lg_route_trainer *t = NULL, *probe = NULL;
    lg_step_stats st;
    float x[2][B_ * L_ * D_];
    double P[N_PAR], G[N_PAR], m[N_PAR], v[N_PAR], Pt[N_PAR];
    int s, i, bad = 0;

    memset(&w, 0, sizeof w);
    memset(&g, 0, sizeof g);
    memset(&now, 0, sizeof now);
    memset(m, 0, sizeof m);
    memset(v, 0, sizeof v);
    route_cfg(&cfg, &tc, L_, D_, M_, K_, B_, 4);
    tc.lr = 1e-2;
    tc.warmup_steps = 0;
    tc.decay_frac = 0.5; /* steps 3 and 4 of 4 decay; steps 1 and 2 use lr */
    tc.grad_clip = 0.05;  /* active: the raw norm is larger */
    make_case(&cfg, 5, B_, x[0], &w);
    make_case(&cfg, 6, B_, x[1], &now); /* only its x */
    lg_sae_weights_release(&now);
    CHECK_OK(lg_route_trainer_new(&cfg, &tc, &w, &t));
    if (!t)
        goto out;
    params_from(&w, P);
    for (s = 0; s < 2; s++) {
        /* raw gradients at the trainer's current weights, from a probe trainer */
        CHECK_OK(lg_route_trainer_get_weights(t, &now));
        CHECK_OK(lg_route_trainer_new(&cfg, &tc, &now, &probe));
        CHECK_OK(lg_route_trainer_compute_grads(probe, x[s], NULL));
        CHECK_OK(lg_route_trainer_get_grads(probe, &g));
        params_from(&g, G);
        CHECK_OK(lg_route_trainer_step(t, x[s], &st));
        CHECK_MSG(st.grad_norm > tc.grad_clip, "step %d: clipping inactive (norm %g)", s + 1, st.grad_norm);
        {
            long s0 = tc.steps - (long)floor(tc.decay_frac * tc.steps);
            double lr = tc.lr * (s >= s0 ? (double)(tc.steps - s) / (tc.steps - s0) : 1.0);
            CHECK_MSG(fabs(st.lr - lr) < 1e-15, "step %d: lr %g, want %g", s + 1, st.lr, lr);
            ref_update(P, G, m, v, s + 1, &tc, lr);
        }
        lg_sae_weights_release(&now);
        lg_sae_weights_release(&g);
        lg_route_trainer_free(probe);
        probe = NULL;
        CHECK_OK(lg_route_trainer_get_weights(t, &now));
        params_from(&now, Pt);
        for (i = 0; i < N_PAR; i++)
            if (!(fabs(Pt[i] - P[i]) <= 2e-6 + 2e-6 * fabs(P[i]))) {
                if (bad++ < 5)
                    fprintf(stderr, "step %d param %d: trainer %.9g, float64 reference %.9g\n", s + 1, i, Pt[i], P[i]);
            }
        CHECK_MSG(bad == 0, "step %d: %d parameters differ from the float64 reconstruction", s + 1, bad);
        lg_sae_weights_release(&now);
    }
    /* the update moved the router (it is trained) */
    CHECK(fabs(P[OFF_WR] - w.W_router[0]) > 1e-4);
out:
    lg_route_trainer_free(t);
    lg_route_trainer_free(probe);
    lg_sae_weights_release(&w);
    lg_sae_weights_release(&g);
    lg_sae_weights_release(&now);
}

/* L = 1: r = 1 and u = x, so the gradients of W_enc, b_enc, W_dec, b_dec are
 * a TopK SAE's: compared with the backend trainer (AuxK off). */
static void test_one_layer_is_topk(void)
{
    enum { B = 32, D = 8, M = 24, K = 4 };
    lg_sae_config cfg, tk;
    lg_train_config tc;
    lg_sae_weights w, gr, gt;
    lg_route_trainer *rt = NULL;
    lg_trainer *tt = NULL;
    lg_step_stats a, b;
    float x[B * D];
    double sc;
    int i;

    memset(&w, 0, sizeof w);
    memset(&gr, 0, sizeof gr);
    memset(&gt, 0, sizeof gt);
    route_cfg(&cfg, &tc, 1, D, M, K, B, 10);
    make_case(&cfg, 11, B, x, &w);
    tk = cfg;
    tk.arch = LG_ARCH_TOPK;
    CHECK_OK(lg_route_trainer_new(&cfg, &tc, &w, &rt));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &tk, &tc, &w, &tt));
    if (!rt || !tt)
        goto out;
    CHECK_OK(lg_route_trainer_compute_grads(rt, x, &a));
    CHECK_OK(lg_trainer_compute_grads(tt, x, &b));
    CHECK_OK(lg_route_trainer_get_grads(rt, &gr));
    CHECK_OK(lg_trainer_get_grads(tt, &gt));
    CHECK_MSG(fabs(a.mse - b.mse) <= 1e-5 * b.mse, "mse %g vs topk %g", a.mse, b.mse);
    CHECK_MSG(a.l0 == b.l0, "l0 %g vs topk %g", a.l0, b.l0);
    {
        const float *p[4] = {gr.W_enc, gr.b_enc, gr.W_dec, gr.b_dec}, *q[4] = {gt.W_enc, gt.b_enc, gt.W_dec, gt.b_dec};
        const int n[4] = {D * M, M, M * D, D};
        int k;
        for (k = 0; k < 4; k++) {
            double mx = 0, df = 0;
            for (i = 0; i < n[k]; i++) {
                mx = fabs(q[k][i]) > mx ? fabs(q[k][i]) : mx;
                df = fabs(p[k][i] - q[k][i]) > df ? fabs(p[k][i] - q[k][i]) : df;
            }
            sc = mx;
            CHECK_MSG(sc > 0 && df <= 1e-5 * sc, "gradient %d: routesae vs topk differ by %g (scale %g)", k, df, sc);
        }
    }
    /* and the router gets no gradient (softmax over one layer is constant) */
    for (i = 0; i < D; i++)
        CHECK(gr.W_router[i] == 0.0f);
out:
    lg_route_trainer_free(rt);
    lg_trainer_free(tt);
    lg_sae_weights_release(&w);
    lg_sae_weights_release(&gr);
    lg_sae_weights_release(&gt);
}

/* L = 1 over 12 steps with AuxK on: the dead-latent clocks (n_dead per step,
 * exactly), the AuxK term and the loss follow the backend TopK trainer's
 * (which computes in float32: agreement to 1e-3 relative). */
static void test_one_layer_auxk_steps(void)
{
    enum { B = 32, D = 8, M = 48, K = 2, STEPS = 12 };
    lg_sae_config cfg, tk;
    lg_train_config tc;
    lg_sae_weights w;
    lg_route_trainer *rt = NULL;
    lg_trainer *tt = NULL;
    lg_step_stats a, b;
    float x[2][B * D];
    int s, saw_aux = 0;
    memset(&w, 0, sizeof w);
    route_cfg(&cfg, &tc, 1, D, M, K, B, STEPS);
    tc.aux_k = 4;
    tc.aux_coeff = 1.0 / 32;
    tc.dead_after = 2 * B;
    tc.lr = 1e-3;
    tc.warmup_steps = 0;
    make_case(&cfg, 51, B, x[1], &w);
    lg_sae_weights_release(&w);
    make_case(&cfg, 50, B, x[0], &w);
    tk = cfg;
    tk.arch = LG_ARCH_TOPK;
    CHECK_OK(lg_route_trainer_new(&cfg, &tc, &w, &rt));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &tk, &tc, &w, &tt));
    for (s = 0; rt && tt && s < STEPS; s++) {
        CHECK_OK(lg_route_trainer_step(rt, x[s % 2], &a));
        CHECK_OK(lg_trainer_step(tt, x[s % 2], &b));
        CHECK_MSG(a.n_dead == b.n_dead, "step %d: n_dead %g vs topk %g", s + 1, a.n_dead, b.n_dead);
        CHECK_MSG(fabs(a.aux - b.aux) <= 1e-3 * (b.aux + 1e-6), "step %d: aux %g vs topk %g", s + 1, a.aux, b.aux);
        CHECK_MSG(fabs(a.loss - b.loss) <= 1e-3 * b.loss, "step %d: loss %g vs topk %g", s + 1, a.loss, b.loss);
        saw_aux |= a.aux > 0;
    }
    CHECK_MSG(saw_aux, "AuxK never switched on: nothing compared");
    lg_route_trainer_free(rt);
    lg_trainer_free(tt);
    lg_sae_weights_release(&w);
}

/* Trains `steps` steps of a larger case at `threads` threads into *out. */
static void train_at(int threads, int steps, lg_sae_weights *out)
{
    enum { B = 64, L = 4, D = 16, M = 96, K = 6 };
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights w;
    lg_route_trainer *t = NULL;
    float *x = malloc(sizeof(float) * B * L * D * 2);
    int s;
    memset(&w, 0, sizeof w);
    lg_backend_cpu_set_threads(threads);
    route_cfg(&cfg, &tc, L, D, M, K, B, steps);
    tc.lr = 3e-3;
    tc.warmup_steps = 2;
    make_case(&cfg, 21, B, x, &w);
    make_case(&cfg, 22, B, x + B * L * D, out);
    lg_sae_weights_release(out);
    CHECK_OK(lg_route_trainer_new(&cfg, &tc, &w, &t));
    for (s = 0; t && s < steps; s++)
        CHECK_OK(lg_route_trainer_step(t, x + (size_t)(s % 2) * B * L * D, NULL));
    if (t)
        CHECK_OK(lg_route_trainer_get_weights(t, out));
    lg_route_trainer_free(t);
    lg_sae_weights_release(&w);
    free(x);
    lg_backend_cpu_set_threads(0);
}

static int bits_equal(const lg_sae_weights *a, const lg_sae_weights *b)
{
    size_t dm = (size_t)a->d_in * a->d_sae;
    return a->W_router && b->W_router && memcmp(a->W_enc, b->W_enc, dm * 4) == 0 &&
           memcmp(a->W_dec, b->W_dec, dm * 4) == 0 && memcmp(a->b_enc, b->b_enc, (size_t)a->d_sae * 4) == 0 &&
           memcmp(a->b_dec, b->b_dec, (size_t)a->d_in * 4) == 0 &&
           memcmp(a->W_router, b->W_router, (size_t)a->d_in * a->n_layers * 4) == 0 &&
           memcmp(a->b_router, b->b_router, (size_t)a->n_layers * 4) == 0;
}

static void test_determinism_threads(void)
{
    lg_sae_weights a, b, c, init;
    lg_sae_config cfg;
    lg_train_config tc;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    memset(&init, 0, sizeof init);
    train_at(1, 12, &a);
    train_at(1, 12, &b);
    train_at(2, 12, &c);
    CHECK_MSG(bits_equal(&a, &b), "two runs at 1 thread differ");
    CHECK_MSG(bits_equal(&a, &c), "1 and 2 threads differ");
    /* and training changed the weights (a test of something) */
    route_cfg(&cfg, &tc, 4, 16, 96, 6, 64, 12);
    {
        float *x = malloc(sizeof(float) * 64 * 4 * 16);
        make_case(&cfg, 21, 64, x, &init);
        free(x);
    }
    CHECK(a.W_router && memcmp(a.W_router, init.W_router, 16 * 4 * 4) != 0);
    CHECK(a.W_enc && memcmp(a.W_enc, init.W_enc, 16 * 96 * 4) != 0);
    lg_sae_weights_release(&a);
    lg_sae_weights_release(&b);
    lg_sae_weights_release(&c);
    lg_sae_weights_release(&init);
}

/* Two seeds in lg_route_multi equal each trained alone; a diverging seed
 * changes nothing (all or nothing). */
static void test_multi_equals_single(void)
{
    enum { B = 16, L = 2, D = 6, M = 20, K = 3, S = 2, STEPS = 5 };
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init[S], alone, multi;
    lg_route_multi *mt = NULL;
    lg_route_trainer *t = NULL;
    float x[S][B * L * D], bad[S * B * L * D];
    lg_step_stats st[S];
    int s, i;
    memset(init, 0, sizeof init);
    memset(&alone, 0, sizeof alone);
    memset(&multi, 0, sizeof multi);
    route_cfg(&cfg, &tc, L, D, M, K, B, STEPS);
    tc.lr = 1e-2;
    for (s = 0; s < S; s++)
        make_case(&cfg, 31 + s, B, x[s], &init[s]);
    CHECK_OK(lg_route_multi_new(&cfg, &tc, init, S, &mt));
    if (!mt)
        goto out;
    /* a batch that makes seed 1's loss NaN */
    memcpy(bad, x, sizeof bad);
    for (i = 0; i < B * L * D; i++)
        bad[B * L * D + i] = NAN;
    CHECK(lg_route_multi_step(mt, bad, st) == LG_EDIVERGED);
    CHECK(lg_route_multi_diverged_seed(mt) == 1);
    for (i = 0; i < STEPS; i++)
        CHECK_OK(lg_route_multi_step(mt, &x[0][0], st));
    CHECK(st[0].step == STEPS && st[1].step == STEPS);
    for (s = 0; s < S; s++) {
        CHECK_OK(lg_route_trainer_new(&cfg, &tc, &init[s], &t));
        for (i = 0; t && i < STEPS; i++)
            CHECK_OK(lg_route_trainer_step(t, x[s], NULL));
        CHECK_OK(lg_route_trainer_get_weights(t, &alone));
        CHECK_OK(lg_route_multi_get_weights(mt, s, &multi));
        CHECK_MSG(bits_equal(&alone, &multi), "seed %d: multi-seed differs from alone", s);
        lg_route_trainer_free(t);
        t = NULL;
        lg_sae_weights_release(&alone);
        lg_sae_weights_release(&multi);
    }
out:
    lg_route_multi_free(mt);
    for (s = 0; s < S; s++)
        lg_sae_weights_release(&init[s]);
}

static void test_eval_metrics(void)
{
    enum { N = 200, L = 3, D = 7, M = 30, K = 4 };
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights w;
    lg_recon_metrics rm;
    float *x = malloc(sizeof(float) * N * L * D);
    double *u = malloc(sizeof(double) * N * D), *uh = malloc(sizeof(double) * N * D), *r = malloc(sizeof(double) * N * L);
    double mu[D] = {0}, sse = 0, den = 0, rmean[L], ent, rs[L] = {0}, ent_ref = 0;
    int n, i, l;
    memset(&w, 0, sizeof w);
    route_cfg(&cfg, &tc, L, D, M, K, N, 1);
    make_case(&cfg, 41, N, x, &w);
    CHECK_OK(lg_route_forward(&cfg, &w, x, N, u, uh, r));
    CHECK_OK(lg_route_eval(&cfg, &w, x, N, -1, &rm, rmean, &ent));
    for (n = 0; n < N; n++)
        for (i = 0; i < D; i++)
            mu[i] += u[n * D + i] / N;
    for (n = 0; n < N; n++) {
        for (i = 0; i < D; i++) {
            sse += (uh[n * D + i] - u[n * D + i]) * (uh[n * D + i] - u[n * D + i]);
            den += (u[n * D + i] - mu[i]) * (u[n * D + i] - mu[i]);
        }
        for (l = 0; l < L; l++) {
            rs[l] += r[n * L + l] / N;
            ent_ref -= r[n * L + l] * log(r[n * L + l]) / N;
        }
    }
    CHECK_CLOSE(rm.mse, sse / N, 1e-12, 1e-9);
    CHECK_CLOSE(rm.fvu, sse / den, 1e-12, 1e-9);
    CHECK_CLOSE(rm.explained_variance, 1 - sse / den, 1e-12, 1e-9);
    CHECK(rm.l0 > 0 && rm.l0 <= K);
    CHECK(rm.dead_frac >= 0 && rm.dead_frac < 1);
    for (l = 0; l < L; l++)
        CHECK_CLOSE(rmean[l], rs[l], 1e-12, 1e-9);
    CHECK_CLOSE(ent, ent_ref, 1e-12, 1e-9);
    CHECK(ent > 0 && ent <= log((double)L) + 1e-12);
    /* the router is not uniform here (random W_router): weights differ by layer */
    CHECK(fabs(rmean[0] - rmean[1]) > 1e-3 || fabs(rmean[1] - rmean[2]) > 1e-3);
    /* bad inputs: weights of another width, no router */
    cfg.d_in = D + 1;
    CHECK(lg_route_eval(&cfg, &w, x, N, -1, &rm, NULL, NULL) == LG_EINPUT);
    cfg.d_in = D;
    {
        float *wr = w.W_router;
        w.W_router = NULL;
        CHECK(lg_route_eval(&cfg, &w, x, N, -1, &rm, NULL, NULL) == LG_EINPUT);
        w.W_router = wr;
    }
    lg_sae_weights_release(&w);
    free(x);
    free(u);
    free(uh);
    free(r);
}

/* lg_route_cell_config: the width split and every refusal (the CUDA one
 * cannot be reached from the CLI on a machine without a GPU). */
static void test_cell_config(void)
{
    lg_sae_config cfg;
    lg_train_config tc;
    route_cfg(&cfg, &tc, 3, 24, 16, 2, 8, 10);
    CHECK_OK(lg_route_cell_config(&cfg, &tc, 3, 0, 0, "cpu"));
    CHECK(cfg.d_in == 8);
    cfg.d_in = 24;
    CHECK(lg_route_cell_config(&cfg, &tc, 3, 0, 0, "cuda") == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "the cuda backend does not implement \"routesae\"") != NULL);
    CHECK(cfg.d_in == 24);
    CHECK(lg_route_cell_config(&cfg, &tc, 0, 0, 0, "cpu") == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "needs layered data") != NULL);
    CHECK(lg_route_cell_config(&cfg, &tc, 3, 1, 0, "cpu") == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "median") != NULL);
    CHECK(lg_route_cell_config(&cfg, &tc, 3, 0, 1, "cpu") == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "data.ood") != NULL);
    CHECK(lg_route_cell_config(&cfg, &tc, 5, 0, 0, "cpu") == LG_EINPUT); /* 24 is not 5 layers */
    cfg.arch = LG_ARCH_TOPK;
    CHECK(lg_route_cell_config(&cfg, &tc, 3, 0, 0, "cpu") == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "only \"routesae\" takes layered data") != NULL);
    /* the backend trainer and evaluator refuse routesae (no silent fallthrough) */
    {
        lg_sae_weights w;
        lg_trainer *t = NULL;
        lg_recon *r = NULL;
        route_cfg(&cfg, &tc, 2, 4, 8, 2, 8, 10);
        CHECK_OK(lg_route_init_weights(&cfg, 2, 1, NULL, &w));
        CHECK(w.n_layers == 2 && w.W_router && w.b_router && w.W_router[0] == 0.0f && w.b_router[1] == 0.0f);
        CHECK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &w, &t) == LG_EINPUT && !t);
        CHECK(lg_recon_new(lg_backend_cpu(), &cfg, &w, 8, &r) == LG_EINPUT && !r);
        lg_sae_weights_release(&w);
    }
    /* b_dec: the mean over layers of the data's per-column mean [L * d] */
    {
        const float mean[8] = {1, 2, 3, 4, 3, 2, 1, 0}; /* L = 2, d = 4 */
        lg_sae_weights w;
        CHECK_OK(lg_route_init_weights(&cfg, 2, 7, mean, &w));
        CHECK(w.b_dec && w.b_dec[0] == 2.0f && w.b_dec[1] == 2.0f && w.b_dec[2] == 2.0f && w.b_dec[3] == 2.0f);
        lg_sae_weights_release(&w);
        CHECK(lg_route_init_weights(&cfg, 0, 7, mean, &w) == LG_EINPUT);
    }
}

CHECK_MAIN(T(test_cell_config), T(test_grad_finite_differences), T(test_grad_auxk), T(test_update_steps_float64), T(test_one_layer_is_topk), T(test_one_layer_auxk_steps),
           T(test_determinism_threads), T(test_multi_equals_single), T(test_eval_metrics))
