/*
 * test_transcoder.c - the transcoder mode of the trainer and of recon
 * (train.h, recon.h, engine/transcoder.h):
 *   - gradients against central finite differences of an independent float64
 *     reference loss (written here from the formulas of train.h: encoder
 *     without b_dec, reconstruction of the target), TopK on the sparse and
 *     the dense CPU paths and ReLU+L1;
 *   - a float64 reconstruction of the update steps (projection, clipping,
 *     warmup/decay, Adam, renormalisation) from the trainer's own gradients;
 *   - determinism: two runs, multi-seed vs single-seed, save/load/continue;
 *   - the evaluation (FVU against the target) and the synthetic target;
 *   - refusals: a transcoder trainer without targets and targets for an SAE.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/rng.h"
#include "engine/data.h"
#include "engine/recon.h"
#include "engine/sae.h"
#include "engine/train.h"
#include "engine/transcoder.h"
#include "tests/unit/check.h"

enum { B_ = 6, D_ = 5, M_ = 12, K_ = 3 };

#define OFF_WE 0
#define OFF_BE (OFF_WE + D_ * M_)
#define OFF_WD (OFF_BE + M_)
#define OFF_BD (OFF_WD + M_ * D_)
#define N_PAR (OFF_BD + D_)

/* x [n, d] standard normal; y [n, d] a fixed nonlinear map of x (the
 * "MLP": y = tanh(x A) with A from the same stream) */
static void make_xy(uint64_t seed, int n, int d, float *x, float *y)
{
    lg_rng r;
    double *A = malloc((size_t)d * d * sizeof(double));
    int i, c, j;
    lg_rng_init(&r, seed, 99);
    for (i = 0; i < d * d; i++)
        A[i] = lg_rng_normal(&r) / sqrt((double)d);
    for (i = 0; i < n * d; i++)
        x[i] = (float)lg_rng_normal(&r);
    for (i = 0; i < n; i++)
        for (c = 0; c < d; c++) {
            double s = 0;
            for (j = 0; j < d; j++)
                s += x[i * d + j] * A[j * d + c];
            y[i * d + c] = (float)(1.5 * tanh(s) + 0.3);
        }
    free(A);
}

/* float64 reference loss of a transcoder at P on (x, y); margin = how far
 * the selection (TopK: k-th vs (k+1)-th, ReLU: |pre|) is from a boundary. */
static double ref_loss(lg_arch arch, double l1, const float *x, const float *y, const double *P, double *margin)
{
    const double *We = P + OFF_WE, *be = P + OFF_BE, *Wd = P + OFF_WD, *bd = P + OFF_BD;
    double loss = 0, mg = 1e30;
    int b, j, i, q;
    for (b = 0; b < B_; b++) {
        double pre[M_], acts[M_], yhat[D_];
        for (j = 0; j < M_; j++) {
            pre[j] = be[j];
            for (i = 0; i < D_; i++)
                pre[j] += x[b * D_ + i] * We[i * M_ + j]; /* no b_dec in a transcoder's encoder */
        }
        if (arch == LG_ARCH_TOPK) {
            for (j = 0; j < M_; j++) {
                int before = 0;
                for (q = 0; q < M_; q++)
                    before += pre[q] > pre[j] || (pre[q] == pre[j] && q < j);
                acts[j] = before < K_ && pre[j] > 0 ? pre[j] : 0;
                if (before == K_ - 1 || before == K_) { /* the gap across the selection boundary */
                    for (q = 0; q < M_; q++) {
                        int bq = 0, r2;
                        for (r2 = 0; r2 < M_; r2++)
                            bq += pre[r2] > pre[q] || (pre[r2] == pre[q] && r2 < q);
                        if ((before == K_ - 1 && bq == K_) && pre[j] - pre[q] < mg)
                            mg = pre[j] - pre[q];
                    }
                }
                if (before < K_ && fabs(pre[j]) < mg)
                    mg = fabs(pre[j]);
            }
        } else {
            for (j = 0; j < M_; j++) {
                acts[j] = pre[j] > 0 ? pre[j] : 0;
                if (fabs(pre[j]) < mg)
                    mg = fabs(pre[j]);
                loss += l1 * acts[j] / B_;
            }
        }
        for (i = 0; i < D_; i++) {
            yhat[i] = bd[i];
            for (j = 0; j < M_; j++)
                yhat[i] += acts[j] * Wd[j * D_ + i];
            loss += (yhat[i] - y[b * D_ + i]) * (yhat[i] - y[b * D_ + i]) / B_;
        }
    }
    if (margin)
        *margin = mg;
    return loss;
}

static void weights_to_P(const lg_sae_weights *w, double *P)
{
    int q;
    for (q = 0; q < D_ * M_; q++) {
        P[OFF_WE + q] = w->W_enc[q];
        P[OFF_WD + q] = w->W_dec[q];
    }
    for (q = 0; q < M_; q++)
        P[OFF_BE + q] = w->b_enc[q];
    for (q = 0; q < D_; q++)
        P[OFF_BD + q] = w->b_dec[q];
}

static void setup(lg_arch arch, lg_sae_config *cfg, lg_train_config *tc)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = arch;
    cfg->d_in = D_;
    cfg->d_sae = M_;
    cfg->k = K_;
    lg_train_config_default(tc);
    tc->batch = B_;
    tc->steps = 50;
    tc->aux_coeff = 0;
    tc->l1_coeff = arch == LG_ARCH_RELU ? 0.05 : 0;
}

/* Initial weights with a random b_enc and b_dec, so every gradient entry is exercised. */
static int init_weights(const lg_sae_config *cfg, uint64_t seed, lg_sae_weights *w)
{
    lg_rng r;
    int j, err;
    if ((err = lg_sae_init_weights(cfg, seed, NULL, w)) < 0)
        return err;
    lg_rng_init(&r, seed, 77);
    for (j = 0; j < cfg->d_sae; j++)
        w->b_enc[j] = (float)(0.2 * lg_rng_normal(&r));
    for (j = 0; j < cfg->d_in; j++)
        w->b_dec[j] = (float)(0.3 * lg_rng_normal(&r));
    return 0;
}

static void grad_check(const lg_backend *be, lg_arch arch)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights w = {0}, g = {0}, gsae = {0};
    lg_trainer *t = NULL, *sae = NULL;
    float x[B_ * D_], y[B_ * D_];
    double P[N_PAR], margin = 0, scale = 0, worst = 0, bdec_diff = 0;
    const float *gs[4];
    uint64_t seed;
    int q;
    setup(arch, &cfg, &tc);
    /* inputs whose selection is at least 1e-3 from any boundary */
    for (seed = 1; seed < 200; seed++) {
        lg_sae_weights_release(&w);
        make_xy(seed, B_, D_, x, y);
        CHECK_OK(init_weights(&cfg, seed, &w));
        weights_to_P(&w, P);
        ref_loss(arch, tc.l1_coeff, x, y, P, &margin);
        if (margin > 1e-3)
            break;
    }
    CHECK_MSG(margin > 1e-3, "no input far from the selection boundary (margin %g)", margin);
    CHECK_OK(lg_trainer_new_transcoder_multi(be, &cfg, &tc, &w, 1, &t));
    CHECK_OK(lg_trainer_compute_grads_target_multi(t, x, y, NULL));
    CHECK_OK(lg_trainer_get_grads(t, &g));
    if (!g.W_enc)
        goto out;
    gs[0] = g.W_enc, gs[1] = g.b_enc, gs[2] = g.W_dec, gs[3] = g.b_dec;
    for (q = 0; q < N_PAR; q++) {
        const double h = 1e-6;
        double Pp[N_PAR], lp, lm, fd, got;
        int which = q < OFF_BE ? 0 : q < OFF_WD ? 1 : q < OFF_BD ? 2 : 3;
        int off[4] = {OFF_WE, OFF_BE, OFF_WD, OFF_BD};
        memcpy(Pp, P, sizeof Pp);
        Pp[q] = P[q] + h;
        lp = ref_loss(arch, tc.l1_coeff, x, y, Pp, NULL);
        Pp[q] = P[q] - h;
        lm = ref_loss(arch, tc.l1_coeff, x, y, Pp, NULL);
        fd = (lp - lm) / (2 * h);
        got = gs[which][q - off[which]];
        if (fabs(fd) > scale)
            scale = fabs(fd);
        if (fabs(got - fd) > worst)
            worst = fabs(got - fd);
    }
    CHECK(scale > 0.1); /* the gradient is not trivially zero */
    CHECK_MSG(worst <= 2e-5 * scale, "%s transcoder: max |grad - finite difference| = %g (scale %g)", lg_arch_name(arch),
              worst, scale);
    /* the same weights trained as an SAE (on y as its own input) give another b_dec gradient:
     * the transcoder mode is what the check above saw */
    CHECK_OK(lg_trainer_new_multi(be, &cfg, &tc, &w, 1, &sae));
    CHECK_OK(lg_trainer_compute_grads(sae, y, NULL));
    CHECK_OK(lg_trainer_get_grads(sae, &gsae));
    for (q = 0; gsae.b_dec && q < D_; q++)
        bdec_diff += fabs((double)gsae.b_dec[q] - g.b_dec[q]);
    CHECK(bdec_diff > 1e-3);
out:
    lg_sae_weights_release(&w);
    lg_sae_weights_release(&g);
    lg_sae_weights_release(&gsae);
    lg_trainer_free(t);
    lg_trainer_free(sae);
}

static void test_grad_topk_sparse(void) { grad_check(lg_backend_cpu(), LG_ARCH_TOPK); }
static void test_grad_topk_dense(void) { grad_check(lg_backend_cpu_dense(), LG_ARCH_TOPK); }
static void test_grad_relu(void) { grad_check(lg_backend_cpu(), LG_ARCH_RELU); }

static const float *state_get(const lg_train_state *st, const char *name)
{
    int i;
    for (i = 0; i < st->count; i++)
        if (strcmp(st->arrays[i].name, name) == 0)
            return st->arrays[i].data;
    return NULL;
}

/* Every step rebuilt in float64 from the trainer's gradients and Adam state
 * (train.h steps 2-5), then compared with the trainer's float32 weights. */
static void update_check(const lg_backend *be, lg_arch arch)
{
    enum { NP = 4, STEPS = 10 };
    static const char *const names[NP] = {"W_enc", "b_enc", "W_dec", "b_dec"};
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init = {0};
    lg_trainer *t = NULL;
    float *x, *y;
    int s, bad = 0, n_clipped = 0;
    setup(arch, &cfg, &tc);
    tc.steps = STEPS;
    tc.warmup_steps = 3;
    tc.decay_frac = 0.5;
    tc.grad_clip = 0.5;
    tc.lr = 1e-2;
    x = malloc((size_t)STEPS * B_ * D_ * sizeof(float));
    y = malloc((size_t)STEPS * B_ * D_ * sizeof(float));
    make_xy(3, STEPS * B_, D_, x, y);
    CHECK_OK(init_weights(&cfg, 5, &init));
    CHECK_OK(lg_trainer_new_transcoder_multi(be, &cfg, &tc, &init, 1, &t));
    for (s = 0; t && s < STEPS; s++) {
        const float *xb = x + (size_t)s * B_ * D_, *yb = y + (size_t)s * B_ * D_;
        const int d = D_, m = M_;
        lg_sae_weights g = {0}, w0 = {0}, w1 = {0};
        lg_train_state st = {0};
        lg_step_stats ss;
        size_t numel[NP] = {(size_t)d * m, (size_t)m, (size_t)m * d, (size_t)d}, q;
        double *G[NP], *P[NP], norm2 = 0, scale, lr, s0, bc1, bc2;
        int i, r, c;
        CHECK_OK(lg_trainer_compute_grads_target_multi(t, xb, yb, NULL));
        CHECK_OK(lg_trainer_get_grads(t, &g));
        CHECK_OK(lg_trainer_get_weights(t, &w0));
        CHECK_OK(lg_trainer_save_state(t, &st));
        if (!g.W_enc || !w0.W_enc || !st.arrays)
            break;
        for (i = 0; i < NP; i++) {
            const float *gs[NP] = {g.W_enc, g.b_enc, g.W_dec, g.b_dec};
            const float *ps[NP] = {w0.W_enc, w0.b_enc, w0.W_dec, w0.b_dec};
            G[i] = malloc(numel[i] * sizeof(double));
            P[i] = malloc(numel[i] * sizeof(double));
            for (q = 0; q < numel[i]; q++) {
                G[i][q] = gs[i][q];
                P[i][q] = ps[i][q];
            }
        }
        for (r = 0; r < m; r++) { /* radial part of each decoder-row gradient */
            double gw = 0, ww = 0;
            for (c = 0; c < d; c++) {
                gw += G[2][r * d + c] * P[2][r * d + c];
                ww += P[2][r * d + c] * P[2][r * d + c];
            }
            for (c = 0; c < d; c++)
                G[2][r * d + c] -= gw / ww * P[2][r * d + c];
        }
        for (i = 0; i < NP; i++)
            for (q = 0; q < numel[i]; q++)
                norm2 += G[i][q] * G[i][q];
        scale = sqrt(norm2) > tc.grad_clip ? tc.grad_clip / sqrt(norm2) : 1.0;
        n_clipped += scale < 1.0;
        s0 = (double)tc.steps - floor(tc.decay_frac * (double)tc.steps);
        lr = tc.lr * fmin(1.0, (s + 1.0) / (double)tc.warmup_steps) *
             (s < s0 ? 1.0 : ((double)tc.steps - s) / ((double)tc.steps - s0));
        bc1 = 1 - pow(tc.adam_beta1, s + 1.0);
        bc2 = 1 - pow(tc.adam_beta2, s + 1.0);
        for (i = 0; i < NP; i++) {
            char mn[48], vn[48];
            const float *Mv, *Vv;
            snprintf(mn, sizeof mn, "adam_m.%s", names[i]);
            snprintf(vn, sizeof vn, "adam_v.%s", names[i]);
            Mv = state_get(&st, mn);
            Vv = state_get(&st, vn);
            CHECK(Mv && Vv);
            if (!Mv || !Vv)
                continue;
            for (q = 0; q < numel[i]; q++) {
                double gq = G[i][q] * scale, mq = tc.adam_beta1 * Mv[q] + (1 - tc.adam_beta1) * gq,
                       vq = tc.adam_beta2 * Vv[q] + (1 - tc.adam_beta2) * gq * gq;
                P[i][q] -= lr * (mq / bc1) / (sqrt(vq / bc2) + tc.adam_eps);
            }
        }
        for (r = 0; r < m; r++) {
            double ww = 0;
            for (c = 0; c < d; c++)
                ww += P[2][r * d + c] * P[2][r * d + c];
            for (c = 0; c < d; c++)
                P[2][r * d + c] /= sqrt(ww);
        }
        CHECK_OK(lg_trainer_step_target_multi(t, xb, yb, &ss));
        CHECK_OK(lg_trainer_get_weights(t, &w1));
        CHECK_CLOSE(ss.lr, lr, 0, 1e-15);
        CHECK_CLOSE(ss.grad_norm, sqrt(norm2), 0, 1e-5);
        if (w1.W_enc) {
            const float *ps[NP] = {w1.W_enc, w1.b_enc, w1.W_dec, w1.b_dec};
            for (i = 0; i < NP; i++)
                for (q = 0; q < numel[i]; q++)
                    if (!(fabs(ps[i][q] - P[i][q]) <= 2e-6 + 1e-5 * fabs(P[i][q]))) {
                        if (bad < 3)
                            fprintf(stderr, "  step %d %s[%zu]: got %.9g want %.9g\n", s, names[i], q,
                                    (double)ps[i][q], P[i][q]);
                        bad++;
                    }
        }
        for (i = 0; i < NP; i++) {
            free(G[i]);
            free(P[i]);
        }
        lg_sae_weights_release(&g);
        lg_sae_weights_release(&w0);
        lg_sae_weights_release(&w1);
        lg_train_state_release(&st);
    }
    CHECK_MSG(bad == 0, "%d weights differ from the float64 reconstruction", bad);
    CHECK(n_clipped > 0); /* the clipping branch ran */
    lg_trainer_free(t);
    lg_sae_weights_release(&init);
    free(x);
    free(y);
}

static void test_update_topk(void) { update_check(lg_backend_cpu(), LG_ARCH_TOPK); }
static void test_update_relu(void) { update_check(lg_backend_cpu(), LG_ARCH_RELU); }

/* Trains `steps` steps of a 2-seed transcoder (or seed `only` alone, S = 1)
 * on fixed batches; returns seed s's weights. */
static int train_n(const lg_backend *be, int S, int only, int steps, int resume_at, lg_sae_weights *out)
{
    enum { BB = 32, DD = 8, MM = 24 };
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init[2] = {{0}, {0}};
    lg_trainer *t = NULL;
    float *x = malloc((size_t)2 * BB * DD * sizeof(float)), *y = malloc((size_t)2 * BB * DD * sizeof(float));
    float *xs = malloc((size_t)2 * BB * DD * sizeof(float)), *ys = malloc((size_t)2 * BB * DD * sizeof(float));
    int s, i, err = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.arch = LG_ARCH_TOPK;
    cfg.d_in = DD;
    cfg.d_sae = MM;
    cfg.k = 4;
    lg_train_config_default(&tc);
    tc.batch = BB;
    tc.steps = steps;
    tc.warmup_steps = 5;
    tc.lr = 3e-3;
    tc.aux_k = 6;
    tc.dead_after = BB; /* latents die after one silent step: AuxK runs */
    for (i = 0; i < 2; i++)
        if ((err = init_weights(&cfg, 40 + (uint64_t)i, &init[i])) < 0)
            goto out;
    if ((err = lg_trainer_new_transcoder_multi(be, &cfg, &tc, S == 1 ? &init[only] : init, S, &t)) < 0)
        goto out;
    for (s = 0; s < steps; s++) {
        if (s == resume_at) { /* save, reload into a fresh trainer, continue */
            lg_train_state st[2] = {{0}, {0}};
            lg_trainer *t2 = NULL;
            for (i = 0; i < S; i++)
                if ((err = lg_trainer_save_state_multi(t, i, &st[i])) < 0)
                    goto out;
            if ((err = lg_trainer_new_transcoder_multi(be, &cfg, &tc, S == 1 ? &init[only] : init, S, &t2)) < 0)
                goto out;
            for (i = 0; i < S; i++)
                if ((err = lg_trainer_load_state_multi(t2, i, &st[i])) < 0)
                    goto out;
            for (i = 0; i < S; i++)
                lg_train_state_release(&st[i]);
            lg_trainer_free(t);
            t = t2;
        }
        for (i = 0; i < 2; i++)
            make_xy(1000 + (uint64_t)s * 2 + (uint64_t)i, BB, DD, x + (size_t)i * BB * DD, y + (size_t)i * BB * DD);
        if (S == 1) {
            memcpy(xs, x + (size_t)only * BB * DD, (size_t)BB * DD * sizeof(float));
            memcpy(ys, y + (size_t)only * BB * DD, (size_t)BB * DD * sizeof(float));
        } else {
            memcpy(xs, x, (size_t)2 * BB * DD * sizeof(float));
            memcpy(ys, y, (size_t)2 * BB * DD * sizeof(float));
        }
        if ((err = lg_trainer_step_target_multi(t, xs, ys, NULL)) < 0)
            goto out;
    }
    err = lg_trainer_get_weights_multi(t, S == 1 ? 0 : only, out);
out:
    lg_trainer_free(t);
    lg_sae_weights_release(&init[0]);
    lg_sae_weights_release(&init[1]);
    free(x);
    free(y);
    free(xs);
    free(ys);
    return err;
}

static int same_weights(const lg_sae_weights *a, const lg_sae_weights *b)
{
    size_t dm = (size_t)a->d_in * a->d_sae;
    return a->W_enc && b->W_enc && memcmp(a->W_enc, b->W_enc, dm * 4) == 0 && memcmp(a->W_dec, b->W_dec, dm * 4) == 0 &&
           memcmp(a->b_enc, b->b_enc, (size_t)a->d_sae * 4) == 0 && memcmp(a->b_dec, b->b_dec, (size_t)a->d_in * 4) == 0;
}

static void determinism(const lg_backend *be)
{
    lg_sae_weights a = {0}, b = {0}, c = {0}, r = {0}, init = {0};
    lg_sae_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.arch = LG_ARCH_TOPK;
    cfg.d_in = 8;
    cfg.d_sae = 24;
    cfg.k = 4;
    CHECK_OK(train_n(be, 2, 1, 30, -1, &a));
    CHECK_OK(train_n(be, 2, 1, 30, -1, &b));
    CHECK_OK(train_n(be, 1, 1, 30, -1, &c));
    CHECK_OK(train_n(be, 2, 1, 30, 13, &r));
    CHECK(same_weights(&a, &b)); /* run to run */
    CHECK(same_weights(&a, &c)); /* seed-batched = alone */
    CHECK(same_weights(&a, &r)); /* save, load, continue = straight through */
    CHECK_OK(init_weights(&cfg, 41, &init));
    CHECK(!same_weights(&a, &init)); /* it trained */
    lg_sae_weights_release(&a);
    lg_sae_weights_release(&b);
    lg_sae_weights_release(&c);
    lg_sae_weights_release(&r);
    lg_sae_weights_release(&init);
}

static void test_determinism_sparse(void) { determinism(lg_backend_cpu()); }
static void test_determinism_dense(void) { determinism(lg_backend_cpu_dense()); }

static void test_refusals(void)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights w = {0};
    lg_trainer *tcd = NULL, *sae = NULL;
    lg_recon *r = NULL;
    float x[B_ * D_], y[B_ * D_];
    setup(LG_ARCH_TOPK, &cfg, &tc);
    make_xy(2, B_, D_, x, y);
    CHECK_OK(init_weights(&cfg, 2, &w));
    CHECK_OK(lg_trainer_new_transcoder_multi(lg_backend_cpu(), &cfg, &tc, &w, 1, &tcd));
    CHECK_OK(lg_trainer_new_multi(lg_backend_cpu(), &cfg, &tc, &w, 1, &sae));
    CHECK(tcd && lg_trainer_is_transcoder(tcd) && sae && !lg_trainer_is_transcoder(sae));
    CHECK(lg_trainer_step(tcd, x, NULL) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "transcoder step needs targets") != NULL);
    CHECK(lg_trainer_compute_grads(tcd, x, NULL) == LG_EINPUT);
    CHECK(lg_trainer_step_target_multi(tcd, x, NULL, NULL) == LG_EINPUT);
    CHECK(lg_trainer_step_target_multi(sae, x, y, NULL) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "not a transcoder") != NULL);
    CHECK(lg_trainer_steps_done(tcd) == 0 && lg_trainer_steps_done(sae) == 0); /* nothing moved */
    CHECK_OK(lg_recon_new_transcoder(lg_backend_cpu(), &cfg, &w, B_, &r));
    CHECK(r && lg_recon_add(r, x, B_) == LG_EINPUT);
    lg_recon_free(r);
    r = NULL;
    CHECK_OK(lg_recon_new(lg_backend_cpu(), &cfg, &w, B_, &r));
    CHECK(r && lg_recon_add_target(r, x, y, B_) == LG_EINPUT);
    lg_recon_free(r);
    lg_trainer_free(tcd);
    lg_trainer_free(sae);
    lg_sae_weights_release(&w);
}

/* FVU against the target, computed here in double from the reference forward. */
static void test_eval_fvu(void)
{
    enum { N = 50 };
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights w = {0};
    lg_recon_metrics rm, rs;
    float x[N * D_], y[N * D_];
    double mu[D_] = {0}, sse = 0, var = 0;
    int n, c, j, i;
    setup(LG_ARCH_TOPK, &cfg, &tc);
    make_xy(8, N, D_, x, y);
    CHECK_OK(init_weights(&cfg, 9, &w));
    CHECK_OK(lg_transcoder_eval(lg_backend_cpu(), &cfg, &w, x, y, N, -1, &rm));
    for (n = 0; n < N; n++) {
        double pre[M_], yhat[D_];
        for (j = 0; j < M_; j++) {
            pre[j] = w.b_enc[j];
            for (i = 0; i < D_; i++)
                pre[j] += (double)x[n * D_ + i] * w.W_enc[i * M_ + j];
        }
        for (c = 0; c < D_; c++)
            yhat[c] = w.b_dec[c];
        for (j = 0; j < M_; j++) {
            int before = 0, q;
            for (q = 0; q < M_; q++)
                before += pre[q] > pre[j] || (pre[q] == pre[j] && q < j);
            if (before < K_ && pre[j] > 0)
                for (c = 0; c < D_; c++)
                    yhat[c] += pre[j] * w.W_dec[j * D_ + c];
        }
        for (c = 0; c < D_; c++) {
            sse += (yhat[c] - y[n * D_ + c]) * (yhat[c] - y[n * D_ + c]);
            mu[c] += y[n * D_ + c] / N;
        }
    }
    for (n = 0; n < N; n++)
        for (c = 0; c < D_; c++)
            var += (y[n * D_ + c] - mu[c]) * (y[n * D_ + c] - mu[c]);
    CHECK_CLOSE(rm.mse, sse / N, 1e-9, 1e-5);
    CHECK_CLOSE(rm.fvu, sse / var, 1e-9, 1e-5);
    CHECK_CLOSE(rm.explained_variance, 1 - sse / var, 1e-9, 1e-5);
    /* the SAE evaluation of the same weights on y is another number */
    CHECK_OK(lg_recon_eval(lg_backend_cpu(), &cfg, &w, y, N, -1, &rs));
    CHECK(fabs(rs.fvu - rm.fvu) > 1e-3);
    lg_sae_weights_release(&w);
}

/* y_i = sum_j c_ij E_j with the row's own features; E drawn from the target seed. */
static void test_synth_target(void)
{
    lg_synth_config sc;
    lg_synth *gen = NULL, *gt = NULL;
    lg_dataset *tg = NULL, *tg2 = NULL, *same = NULL, *xs = NULL;
    float *E = NULL, *E2 = NULL, row[8], yrow[8], xrow[8], coef[40];
    int active[40], na, i, c, j;
    int64_t idx;
    char h1[65], h2[65];
    double worst = 0, xdiff = 0;
    memset(&sc, 0, sizeof sc);
    sc.d = 8;
    sc.n_features = 40;
    sc.n_samples = 300;
    sc.active_mean = 3;
    sc.magnitude_mean = 1;
    sc.magnitude_std = 0.2;
    sc.noise_std = 0.0;
    sc.seed = 5;
    CHECK_OK(lg_transcoder_synth_target(&sc, 6, &tg, &E));
    CHECK_OK(lg_transcoder_synth_target(&sc, 6, &tg2, &E2));
    CHECK_OK(lg_synth_new(&sc, &gen));
    if (!tg || !tg2 || !gen || !E || !E2)
        goto out;
    CHECK(lg_dataset_rows(tg) == 300 && lg_dataset_dim(tg) == 8);
    CHECK_OK(lg_dataset_digest(tg, h1));
    CHECK_OK(lg_dataset_digest(tg2, h2));
    CHECK(strcmp(h1, h2) == 0); /* deterministic */
    {
        lg_synth_config sc2 = sc;
        sc2.seed = 6;
        CHECK_OK(lg_synth_new(&sc2, &gt));
        CHECK(gt && memcmp(lg_synth_truth(gt), E, 40 * 8 * sizeof(float)) == 0); /* E is the seed-6 dictionary */
    }
    for (i = 0; i < 300; i++) {
        double acc[8] = {0};
        idx = i;
        CHECK_OK(lg_synth_row(gen, i, xrow, active, coef, &na));
        CHECK_OK(lg_dataset_gather(tg, &idx, 1, yrow));
        for (j = 0; j < na; j++)
            for (c = 0; c < 8; c++)
                acc[c] += (double)coef[j] * E[active[j] * 8 + c];
        for (c = 0; c < 8; c++)
            if (fabs(acc[c] - yrow[c]) > worst)
                worst = fabs(acc[c] - yrow[c]);
    }
    CHECK(worst < 1e-5);
    /* with the data's own seed and no noise, the target is the data */
    CHECK_OK(lg_transcoder_synth_target(&sc, 5, &same, NULL));
    CHECK_OK(lg_dataset_synthetic(&sc, &xs, NULL));
    for (i = 0; same && xs && i < 300; i++) {
        idx = i;
        CHECK_OK(lg_dataset_gather(same, &idx, 1, yrow));
        CHECK_OK(lg_dataset_gather(xs, &idx, 1, row));
        for (c = 0; c < 8; c++)
            xdiff += fabs((double)yrow[c] - row[c]);
    }
    CHECK(xdiff < 1e-3);
out:
    lg_dataset_free(tg);
    lg_dataset_free(tg2);
    lg_dataset_free(same);
    lg_dataset_free(xs);
    lg_synth_free(gen);
    lg_synth_free(gt);
    lg_free(E);
    lg_free(E2);
}

/* GPU: the CUDA backend runs transcoders through the ops it already has
 * (copy, gemm, axpby...). Checked against the dense CPU path (the CUDA
 * backend has no sparse ops) within float tolerances, and run to run
 * bit-identical. Skipped without a GPU. */
static void test_cuda_transcoder(void)
{
    const lg_backend *gpu = lg_backend_cuda();
    lg_sae_weights c = {0}, g1 = {0}, g2 = {0};
    size_t q, n;
    double worst = 0;
    if (!gpu)
        CHECK_SKIP("no GPU");
    CHECK_OK(train_n(lg_backend_cpu_dense(), 2, 1, 30, -1, &c));
    CHECK_OK(train_n(gpu, 2, 1, 30, -1, &g1));
    CHECK_OK(train_n(gpu, 2, 1, 30, -1, &g2));
    CHECK(same_weights(&g1, &g2));
    n = c.W_dec && g1.W_dec ? (size_t)c.d_in * c.d_sae : 0;
    for (q = 0; q < n; q++) {
        double e = fabs((double)c.W_dec[q] - g1.W_dec[q]), f = fabs((double)c.W_enc[q] - g1.W_enc[q]);
        worst = e > worst ? e : worst;
        worst = f > worst ? f : worst;
    }
    CHECK(n > 0);
    CHECK_MSG(worst <= 1e-3, "CPU vs GPU transcoder weights differ by %g after 30 steps", worst);
    lg_sae_weights_release(&c);
    lg_sae_weights_release(&g1);
    lg_sae_weights_release(&g2);
}

static void test_flops(void)
{
    CHECK(lg_transcoder_gemm_flops(0, 256, 64, 512) == 12.0 * 256 * 64 * 512);
    CHECK(lg_transcoder_gemm_flops(1, 256, 64, 512) == 10.0 * 256 * 64 * 512);
}

CHECK_MAIN(T(test_grad_topk_sparse), T(test_grad_topk_dense), T(test_grad_relu), T(test_update_topk),
           T(test_update_relu), T(test_determinism_sparse), T(test_determinism_dense), T(test_refusals),
           T(test_eval_fvu), T(test_synth_target), T(test_flops), T(test_cuda_transcoder))
