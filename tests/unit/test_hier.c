/*
 * test_hier.c - HierarchicalTopK (engine/arch_hier.h), on the dense and the
 * sparse CPU paths:
 *   - gradients of the nested-budget loss (with AuxK) against central finite
 *     differences of a float64 reference loss written here from the formulas
 *     of arch_hier.h / train.h (no code shared with the engine), and a float64
 *     analytic gradient of that reference against the same differences;
 *   - a float64 reconstruction of every update step of a short run (schedule,
 *     radial projection, clipping, Adam, renormalisation), with each step's
 *     raw gradients also checked against the float64 analytic gradient;
 *   - determinism: same bits twice, at 1 and 2 threads, one seed vs a
 *     seed-batched trainer, save + load + continue vs straight through;
 *     ks = [k] is bit-identical to TopK at k; dense and sparse agree;
 *   - per-budget evaluation (mse_k<K>, ...) equals TopK evaluation at k;
 *   - config errors, the ks metadata text, and the CUDA refusal.
 * Selections in the gradient checks are kept away from their boundaries by a
 * seed search (as test_sae_grad.c does).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/rng.h"
#include "engine/arch_hier.h"
#include "engine/recon.h"
#include "engine/run.h"
#include "engine/study.h"
#include "engine/sae.h"
#include "engine/train.h"
#include "tests/unit/check.h"

enum { B_ = 8, D_ = 6, M_ = 16, J_ = 3 };
static const int KS[J_] = {2, 4, 6};

/* flat parameter vector */
#define OFF_WE 0
#define OFF_BE (OFF_WE + D_ * M_)
#define OFF_WD (OFF_BE + M_)
#define OFF_BD (OFF_WD + M_ * D_)
#define N_PAR (OFF_BD + D_)

typedef struct {
    const float *x; /* [B, d] */
    double aux_coeff;
    int aux_k;
    int dead[M_];
    int aux_on;
    double e[B_ * D_]; /* frozen AuxK residual x - xhat_J */
    double denom;      /* frozen sum ||e - mean e||^2 */
} ref_ctx;

/* keep[q] = 1 for the k best positive candidates (value desc, index asc);
 * *margin shrinks to the gap at the selection boundary. */
static void ref_select(const double *v, const int *cand, int n, int k, int *keep, double *margin)
{
    int q, p;
    double kth = -1, next = -1;
    for (q = 0; q < n; q++) {
        int before = 0;
        keep[q] = 0;
        if (!(v[q] > 0) || (cand && !cand[q]))
            continue;
        for (p = 0; p < n; p++)
            if ((!cand || cand[p]) && v[p] > 0 && (v[p] > v[q] || (v[p] == v[q] && p < q)))
                before++;
        keep[q] = before < k;
        if (before == k - 1)
            kth = v[q];
        if (before == k)
            next = v[q];
    }
    if (kth > 0 && next > 0 && kth - next < *margin)
        *margin = kth - next;
}

/* Loss at P; optionally e = x - xhat_J, the analytic gradient G [N_PAR] and
 * the selection margin. */
static double ref_loss(const ref_ctx *c, const double *P, double *e_out, double *G, double *margin)
{
    const int B = B_, d = D_, m = M_;
    const double *We = P + OFF_WE, *be = P + OFF_BE, *Wd = P + OFF_WD, *bd = P + OFF_BD;
    double pre[B_ * M_], gpre[B_ * M_], r[B_ * D_], mg = 1e30, recon = 0, aux = 0;
    int keep[J_][B_ * M_], r_, j, i, q, b;

    for (b = 0; b < B; b++)
        for (j = 0; j < m; j++) {
            double s = be[j];
            for (i = 0; i < d; i++)
                s += ((double)c->x[b * d + i] - bd[i]) * We[i * m + j];
            pre[b * m + j] = s;
            if (fabs(s) < mg)
                mg = fabs(s);
        }
    if (G)
        memset(G, 0, sizeof(double) * N_PAR);
    memset(gpre, 0, sizeof gpre);
    for (r_ = 0; r_ < J_; r_++) {
        double ss = 0;
        for (b = 0; b < B; b++)
            ref_select(pre + b * m, NULL, m, KS[r_], keep[r_] + b * m, &mg);
        for (b = 0; b < B; b++)
            for (i = 0; i < d; i++) {
                double xh = bd[i];
                for (j = 0; j < m; j++)
                    if (keep[r_][b * m + j])
                        xh += pre[b * m + j] * Wd[j * d + i];
                r[b * d + i] = xh - c->x[b * d + i];
                ss += r[b * d + i] * r[b * d + i];
            }
        recon += ss / B / J_;
        if (e_out && r_ == J_ - 1)
            for (q = 0; q < B * d; q++)
                e_out[q] = -r[q];
        if (G) {
            const double s = 2.0 / (B * J_);
            for (b = 0; b < B; b++)
                for (i = 0; i < d; i++) {
                    G[OFF_BD + i] += s * r[b * d + i];
                    for (j = 0; j < m; j++)
                        if (keep[r_][b * m + j]) {
                            G[OFF_WD + j * d + i] += s * pre[b * m + j] * r[b * d + i];
                            gpre[b * m + j] += s * r[b * d + i] * Wd[j * d + i];
                        }
                }
        }
    }
    if (c->aux_on) {
        int ak[B_ * M_], nd = 0, kaux;
        double eh[B_ * D_];
        for (j = 0; j < m; j++)
            nd += c->dead[j];
        kaux = c->aux_k < nd ? c->aux_k : nd;
        for (b = 0; b < B; b++)
            ref_select(pre + b * m, c->dead, m, kaux, ak + b * m, &mg);
        for (b = 0; b < B; b++)
            for (i = 0; i < d; i++) {
                double v = 0;
                for (j = 0; j < m; j++)
                    if (ak[b * m + j])
                        v += pre[b * m + j] * Wd[j * d + i];
                eh[b * d + i] = v - c->e[b * d + i];
                aux += eh[b * d + i] * eh[b * d + i];
            }
        aux *= c->aux_coeff / c->denom;
        if (G) {
            const double s = 2.0 * c->aux_coeff / c->denom;
            for (b = 0; b < B; b++)
                for (j = 0; j < m; j++)
                    if (ak[b * m + j])
                        for (i = 0; i < d; i++) {
                            G[OFF_WD + j * d + i] += s * pre[b * m + j] * eh[b * d + i];
                            gpre[b * m + j] += s * eh[b * d + i] * Wd[j * d + i];
                        }
        }
    }
    if (G) /* encoder: pre = (x - b_dec) W_enc + b_enc */
        for (b = 0; b < B; b++)
            for (j = 0; j < m; j++) {
                double g = gpre[b * m + j];
                if (g == 0)
                    continue;
                G[OFF_BE + j] += g;
                for (i = 0; i < d; i++) {
                    G[OFF_WE + i * m + j] += ((double)c->x[b * d + i] - bd[i]) * g;
                    G[OFF_BD + i] -= We[i * m + j] * g;
                }
            }
    if (margin)
        *margin = mg;
    return recon + aux;
}

/* AuxK's frozen residual and normaliser at P. */
static void ref_freeze(ref_ctx *c, const double *P)
{
    double mean[D_] = {0};
    int b, i;
    ref_loss(c, P, c->e, NULL, NULL);
    c->denom = 0;
    for (b = 0; b < B_; b++)
        for (i = 0; i < D_; i++)
            mean[i] += c->e[b * D_ + i] / B_;
    for (b = 0; b < B_; b++)
        for (i = 0; i < D_; i++)
            c->denom += (c->e[b * D_ + i] - mean[i]) * (c->e[b * D_ + i] - mean[i]);
}

static void params_from(const lg_sae_weights *w, double *P)
{
    int i;
    for (i = 0; i < D_ * M_; i++) {
        P[OFF_WE + i] = w->W_enc[i];
        P[OFF_WD + i] = w->W_dec[i];
    }
    for (i = 0; i < M_; i++)
        P[OFF_BE + i] = w->b_enc[i];
    for (i = 0; i < D_; i++)
        P[OFF_BD + i] = w->b_dec[i];
}

static void hier_cfg(lg_sae_config *cfg, int d, int m, const int *ks, int n)
{
    int j;
    memset(cfg, 0, sizeof(*cfg));
    cfg->arch = LG_ARCH_HIER_TOPK;
    cfg->d_in = d;
    cfg->d_sae = m;
    cfg->n_ks = n;
    for (j = 0; j < n; j++)
        cfg->ks[j] = ks[j];
    cfg->k = ks[n - 1];
}

static void grad_tc(lg_train_config *tc)
{
    lg_train_config_default(tc);
    tc->batch = B_;
    tc->aux_k = 3;
    tc->aux_coeff = 0.25; /* large, so AuxK matters in the checks */
    tc->dead_after = B_;  /* dead after one step without firing */
}

static void set_dead(lg_trainer *t, const int *dead)
{
    lg_train_state st = {0};
    int i, j;
    CHECK_OK(lg_trainer_save_state(t, &st));
    for (i = 0; i < st.count; i++)
        if (strcmp(st.arrays[i].name, "steps_since_fired") == 0)
            for (j = 0; j < M_; j++)
                st.arrays[i].data[j] = dead[j] ? 5.0f : 0.0f;
    CHECK_OK(lg_trainer_load_state(t, &st));
    lg_train_state_release(&st);
}

/* A case whose selections (every budget, AuxK, ReLU) are clear of their
 * boundaries by > 2e-3. */
static int make_case(ref_ctx *c, float *x, lg_sae_weights *w, lg_sae_config *cfg, double *P)
{
    uint64_t seed;
    hier_cfg(cfg, D_, M_, KS, J_);
    for (seed = 1; seed < 400; seed++) {
        lg_rng rng;
        double margin = 0;
        int i;
        memset(c, 0, sizeof(*c));
        c->x = x;
        c->aux_coeff = 0.25;
        c->aux_k = 3;
        c->aux_on = 1;
        for (i = 0; i < M_; i++)
            c->dead[i] = i % 4 == 1;
        lg_rng_init(&rng, seed, 91);
        for (i = 0; i < B_ * D_; i++)
            x[i] = (float)(lg_rng_normal(&rng) + 0.3);
        if (lg_sae_init_weights(cfg, seed, NULL, w) < 0)
            return -1;
        for (i = 0; i < M_; i++)
            w->b_enc[i] = (float)(0.2 * lg_rng_normal(&rng));
        for (i = 0; i < D_; i++)
            w->b_dec[i] = (float)(0.2 * lg_rng_normal(&rng));
        params_from(w, P);
        ref_loss(c, P, NULL, NULL, &margin);
        if (margin > 2e-3) {
            ref_freeze(c, P);
            return 0;
        }
        lg_sae_weights_release(w);
    }
    return -1;
}

static void check_grads(const lg_backend *be, const char *label)
{
    ref_ctx c;
    lg_sae_config cfg;
    lg_train_config tc;
    float x[B_ * D_];
    lg_sae_weights w = {0}, g = {0};
    lg_trainer *t = NULL;
    lg_step_stats st;
    double P[N_PAR], fd[N_PAR], an[N_PAR], ra[N_PAR], loss0, maxfd = 0, h = 1e-6;
    int i, bad = 0, bad_ref = 0;

    CHECK_MSG(make_case(&c, x, &w, &cfg, P) == 0, "%s: no seed with a clear margin", label);
    loss0 = ref_loss(&c, P, NULL, ra, NULL);
    grad_tc(&tc);
    CHECK_OK(lg_trainer_new(be, &cfg, &tc, &w, &t));
    if (!t)
        goto out;
    set_dead(t, c.dead);
    CHECK_OK(lg_trainer_compute_grads(t, x, &st));
    CHECK_CLOSE(st.loss, loss0, 1e-6, 1e-5);
    CHECK_MSG(st.aux > 1e-3 && st.n_dead == 4, "%s: aux %g n_dead %g", label, st.aux, st.n_dead);
    CHECK_CLOSE(st.recon + st.aux, st.loss, 1e-12, 1e-12);
    { /* the reported mse is budget J's (c.e = x - xhat_J), l0 the count of A_J */
        double ss = 0;
        for (i = 0; i < B_ * D_; i++)
            ss += c.e[i] * c.e[i];
        CHECK_CLOSE(st.mse, ss / B_, 1e-7, 1e-5);
        CHECK(st.l0 > KS[J_ - 2] && st.l0 <= KS[J_ - 1]);
    }
    CHECK_OK(lg_trainer_get_grads(t, &g));
    if (!g.W_enc)
        goto out;
    params_from(&g, an);
    for (i = 0; i < N_PAR; i++) {
        double save = P[i], lp, lm;
        P[i] = save + h;
        lp = ref_loss(&c, P, NULL, NULL, NULL);
        P[i] = save - h;
        lm = ref_loss(&c, P, NULL, NULL, NULL);
        P[i] = save;
        fd[i] = (lp - lm) / (2 * h);
        if (fabs(fd[i]) > maxfd)
            maxfd = fabs(fd[i]);
    }
    for (i = 0; i < N_PAR; i++) {
        if (!(fabs(an[i] - fd[i]) <= 1e-4 * maxfd + 1e-3 * fabs(fd[i]))) {
            if (bad < 5)
                fprintf(stderr, "  %s: param %d: engine %.9g, finite difference %.9g\n", label, i, an[i], fd[i]);
            bad++;
        }
        if (!(fabs(ra[i] - fd[i]) <= 1e-6 * maxfd + 1e-5 * fabs(fd[i])))
            bad_ref++;
    }
    CHECK_MSG(bad == 0, "%s: %d of %d engine gradients differ from finite differences", label, bad, N_PAR);
    CHECK_MSG(bad_ref == 0, "%s: %d float64 reference gradients differ from finite differences", label, bad_ref);
    CHECK(maxfd > 1e-2); /* not vacuous */
    /* the nested budgets matter: the gradient differs from TopK's at k_J */
    {
        lg_sae_config tk = cfg;
        lg_sae_weights g2 = {0};
        lg_trainer *t2 = NULL;
        double diff = 0;
        tk.arch = LG_ARCH_TOPK;
        tk.n_ks = 0;
        CHECK_OK(lg_trainer_new(be, &tk, &tc, &w, &t2));
        if (t2) {
            set_dead(t2, c.dead);
            CHECK_OK(lg_trainer_compute_grads(t2, x, NULL));
            CHECK_OK(lg_trainer_get_grads(t2, &g2));
            for (i = 0; g2.W_dec && i < M_ * D_; i++)
                diff += fabs((double)g2.W_dec[i] - g.W_dec[i]);
            CHECK_MSG(diff > 1e-3, "%s: hierarchical gradient equals TopK's (diff %g)", label, diff);
        }
        lg_sae_weights_release(&g2);
        lg_trainer_free(t2);
    }
out:
    lg_sae_weights_release(&w);
    lg_sae_weights_release(&g);
    lg_trainer_free(t);
}

static void test_grad_sparse(void) { check_grads(lg_backend_cpu(), "sparse"); }
static void test_grad_dense(void) { check_grads(lg_backend_cpu_dense(), "dense"); }

/* ---- training helpers ------------------------------------------------------ */

enum { TD = 12, TM = 40, TB = 16 };
static const int TKS[3] = {2, 4, 8};

static float *make_data(int n, uint64_t seed)
{
    float *x = malloc((size_t)n * TD * sizeof(float)), dict[24 * TD];
    lg_rng rng;
    int r, i, s;
    lg_rng_init(&rng, seed, 5);
    for (i = 0; i < 24 * TD; i++)
        dict[i] = (float)lg_rng_normal(&rng);
    for (r = 0; r < n; r++) {
        for (i = 0; i < TD; i++)
            x[(size_t)r * TD + i] = 0.1f * (float)lg_rng_normal(&rng);
        for (s = 0; s < 4; s++) {
            int f = (int)lg_rng_below(&rng, 24);
            float a = (float)(0.5 + lg_rng_uniform(&rng));
            for (i = 0; i < TD; i++)
                x[(size_t)r * TD + i] += a * dict[f * TD + i];
        }
    }
    return x;
}

static void train_setup(lg_sae_config *cfg, lg_train_config *tc, long steps)
{
    hier_cfg(cfg, TD, TM, TKS, 3);
    lg_train_config_default(tc);
    tc->batch = TB;
    tc->steps = steps;
    tc->warmup_steps = 4;
    tc->lr = 5e-3;
    tc->aux_k = 6;
    tc->dead_after = 2 * TB; /* dead latents appear: AuxK is exercised */
}

/* Train seed `seed` for `n` steps from `start`; weights into *out. */
static int train(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc, uint64_t seed,
                 const float *x, long n, lg_sae_weights *out, double *max_dead)
{
    lg_sae_weights init = {0};
    lg_trainer *t = NULL;
    lg_step_stats st;
    long s;
    int err;
    memset(out, 0, sizeof(*out));
    if ((err = lg_sae_init_weights(cfg, seed, NULL, &init)) < 0 || (err = lg_trainer_new(be, cfg, tc, &init, &t)) < 0)
        goto out;
    for (s = 0; s < n; s++) {
        if ((err = lg_trainer_step(t, x + (size_t)s * TB * TD, &st)) < 0)
            goto out;
        if (max_dead && st.n_dead > *max_dead)
            *max_dead = st.n_dead;
    }
    err = lg_trainer_get_weights(t, out);
out:
    lg_sae_weights_release(&init);
    lg_trainer_free(t);
    return err;
}

static int same_bits(const lg_sae_weights *a, const lg_sae_weights *b)
{
    size_t dm = (size_t)a->d_in * a->d_sae;
    return a->W_enc && b->W_enc && memcmp(a->W_enc, b->W_enc, dm * 4) == 0 &&
           memcmp(a->W_dec, b->W_dec, dm * 4) == 0 && memcmp(a->b_enc, b->b_enc, (size_t)a->d_sae * 4) == 0 &&
           memcmp(a->b_dec, b->b_dec, (size_t)a->d_in * 4) == 0 &&
           memcmp(a->threshold, b->threshold, (size_t)a->d_sae * 4) == 0;
}

static double max_abs_diff(const lg_sae_weights *a, const lg_sae_weights *b)
{
    size_t i, dm = (size_t)a->d_in * a->d_sae;
    double mx = 0;
    for (i = 0; i < dm; i++) {
        mx = fmax(mx, fabs((double)a->W_enc[i] - b->W_enc[i]));
        mx = fmax(mx, fabs((double)a->W_dec[i] - b->W_dec[i]));
    }
    return mx;
}

/* ---- determinism ------------------------------------------------------------ */

static void check_determinism(const lg_backend *be, const char *label)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights a = {0}, b = {0}, c = {0}, w2[2];
    float *x = make_data(30 * TB, 3), *x2 = NULL;
    double max_dead = 0;
    lg_trainer *t = NULL;
    int s;
    train_setup(&cfg, &tc, 30);
    CHECK_OK(train(be, &cfg, &tc, 7, x, 30, &a, &max_dead));
    CHECK_OK(train(be, &cfg, &tc, 7, x, 30, &b, NULL));
    CHECK_MSG(same_bits(&a, &b), "%s: two runs differ", label);
    CHECK_MSG(max_dead > 0, "%s: no dead latent: AuxK untested", label);
    lg_backend_cpu_set_threads(1);
    CHECK_OK(train(be, &cfg, &tc, 7, x, 30, &c, NULL));
    lg_backend_cpu_set_threads(2);
    CHECK_MSG(same_bits(&a, &c), "%s: 1 thread differs from the default", label);
    lg_sae_weights_release(&c);
    CHECK_OK(train(be, &cfg, &tc, 7, x, 30, &c, NULL));
    CHECK_MSG(same_bits(&a, &c), "%s: 2 threads differ from the default", label);
    lg_sae_weights_release(&b);
    /* seed batching: seeds 7 and 8 together == each alone (same batches per seed) */
    {
        lg_sae_weights init[2] = {{0}}, got = {0};
        x2 = malloc((size_t)2 * 30 * TB * TD * sizeof(float));
        for (s = 0; s < 30; s++) { /* batches [S, B, d]: both seeds on the same rows */
            memcpy(x2 + (size_t)(2 * s) * TB * TD, x + (size_t)s * TB * TD, (size_t)TB * TD * 4);
            memcpy(x2 + (size_t)(2 * s + 1) * TB * TD, x + (size_t)s * TB * TD, (size_t)TB * TD * 4);
        }
        CHECK_OK(lg_sae_init_weights(&cfg, 7, NULL, &init[0]));
        CHECK_OK(lg_sae_init_weights(&cfg, 8, NULL, &init[1]));
        CHECK_OK(lg_trainer_new_multi(be, &cfg, &tc, init, 2, &t));
        for (s = 0; t && s < 30; s++)
            CHECK_OK(lg_trainer_step_multi(t, x2 + (size_t)(2 * s) * TB * TD, NULL));
        memset(w2, 0, sizeof w2);
        if (t) {
            CHECK_OK(lg_trainer_get_weights_multi(t, 0, &w2[0]));
            CHECK_OK(lg_trainer_get_weights_multi(t, 1, &w2[1]));
        }
        CHECK_MSG(same_bits(&a, &w2[0]), "%s: seed-batched seed 0 differs from a single-seed run", label);
        CHECK_OK(train(be, &cfg, &tc, 8, x, 30, &got, NULL));
        CHECK_MSG(same_bits(&got, &w2[1]), "%s: seed-batched seed 1 differs from a single-seed run", label);
        lg_sae_weights_release(&got);
        lg_sae_weights_release(&w2[0]);
        lg_sae_weights_release(&w2[1]);
        lg_sae_weights_release(&init[0]);
        lg_sae_weights_release(&init[1]);
        lg_trainer_free(t);
        t = NULL;
    }
    /* save after 13 steps, load into a fresh trainer, continue: same bits */
    {
        lg_sae_weights init = {0}, got = {0};
        lg_train_state st = {0};
        lg_trainer *t2 = NULL;
        CHECK_OK(lg_sae_init_weights(&cfg, 7, NULL, &init));
        CHECK_OK(lg_trainer_new(be, &cfg, &tc, &init, &t));
        for (s = 0; t && s < 13; s++)
            CHECK_OK(lg_trainer_step(t, x + (size_t)s * TB * TD, NULL));
        if (t)
            CHECK_OK(lg_trainer_save_state(t, &st));
        CHECK_OK(lg_trainer_new(be, &cfg, &tc, &init, &t2));
        if (t2 && st.arrays) {
            CHECK_OK(lg_trainer_load_state(t2, &st));
            for (s = 13; s < 30; s++)
                CHECK_OK(lg_trainer_step(t2, x + (size_t)s * TB * TD, NULL));
            CHECK_OK(lg_trainer_get_weights(t2, &got));
            CHECK_MSG(same_bits(&a, &got), "%s: save + load + continue differs", label);
        }
        lg_train_state_release(&st);
        lg_sae_weights_release(&got);
        lg_sae_weights_release(&init);
        lg_trainer_free(t2);
    }
    lg_trainer_free(t);
    lg_sae_weights_release(&a);
    lg_sae_weights_release(&c);
    free(x);
    free(x2);
}

static void test_determinism_sparse(void) { check_determinism(lg_backend_cpu(), "sparse"); }
static void test_determinism_dense(void) { check_determinism(lg_backend_cpu_dense(), "dense"); }

/* ks = [k]: the nested loss has one term, and training is TopK at k, bit for
 * bit (the hierarchical code path, the same arithmetic). And the sparse and
 * dense paths train the same SAE up to float rounding. */
static void test_single_budget_is_topk(void)
{
    const lg_backend *bes[2] = {lg_backend_cpu(), lg_backend_cpu_dense()};
    lg_sae_config cfg, tk;
    lg_train_config tc;
    lg_sae_weights a = {0}, b = {0}, sp = {0}, de = {0};
    float *x = make_data(25 * TB, 4);
    int one[1] = {5}, i;
    train_setup(&cfg, &tc, 25);
    for (i = 0; i < 2; i++) {
        hier_cfg(&cfg, TD, TM, one, 1);
        tk = cfg;
        tk.arch = LG_ARCH_TOPK;
        tk.n_ks = 0;
        CHECK_OK(train(bes[i], &cfg, &tc, 11, x, 25, &a, NULL));
        CHECK_OK(train(bes[i], &tk, &tc, 11, x, 25, &b, NULL));
        CHECK_MSG(same_bits(&a, &b), "%s: ks=[5] differs from topk k=5", i ? "dense" : "sparse");
        lg_sae_weights_release(&a);
        lg_sae_weights_release(&b);
    }
    train_setup(&cfg, &tc, 25);
    CHECK_OK(train(bes[0], &cfg, &tc, 11, x, 25, &sp, NULL));
    CHECK_OK(train(bes[1], &cfg, &tc, 11, x, 25, &de, NULL));
    if (sp.W_enc && de.W_enc) {
        double diff = max_abs_diff(&sp, &de);
        CHECK_MSG(diff < 1e-4, "sparse vs dense: max |diff| %g", diff);
    }
    lg_sae_weights_release(&sp);
    lg_sae_weights_release(&de);
    free(x);
}

/* ---- float64 reconstruction of every update step ------------------------------ */

static const float *state_get(const lg_train_state *st, const char *name)
{
    int i;
    for (i = 0; i < st->count; i++)
        if (strcmp(st->arrays[i].name, name) == 0)
            return st->arrays[i].data;
    return NULL;
}

static void check_update(const lg_backend *be, const char *label, double grad_clip)
{
    static const char *const names[4] = {"W_enc", "b_enc", "W_dec", "b_dec"};
    static const int off[4] = {OFF_WE, OFF_BE, OFF_WD, OFF_BD};
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init = {0};
    lg_trainer *t = NULL;
    ref_ctx c;
    float xs[10][B_ * D_];
    const size_t numel[4] = {D_ * M_, M_, M_ * D_, D_};
    int s, n_clipped = 0, n_aux = 0;
    lg_rng rng;
    hier_cfg(&cfg, D_, M_, KS, J_);
    grad_tc(&tc);
    tc.steps = 10;
    tc.warmup_steps = 3;
    tc.decay_frac = 0.5;
    tc.grad_clip = grad_clip;
    tc.lr = 1e-2;
    lg_rng_init(&rng, 99, 3);
    for (s = 0; s < 10; s++) {
        int i;
        for (i = 0; i < B_ * D_; i++)
            xs[s][i] = (float)(lg_rng_normal(&rng) + 0.3);
    }
    CHECK_OK(lg_sae_init_weights(&cfg, 5, NULL, &init));
    CHECK_OK(lg_trainer_new(be, &cfg, &tc, &init, &t));
    for (s = 0; t && s < tc.steps; s++) {
        lg_sae_weights g = {0}, w0 = {0}, w1 = {0};
        lg_train_state st = {0};
        lg_step_stats ss;
        double P[N_PAR], G[N_PAR], R[N_PAR], norm2 = 0, scale, lr, s0, bc1, bc2, gmax = 0;
        const float *since;
        int i, r, q, bad = 0, badg = 0;
        CHECK_OK(lg_trainer_compute_grads(t, xs[s], NULL));
        CHECK_OK(lg_trainer_get_grads(t, &g));
        CHECK_OK(lg_trainer_get_weights(t, &w0));
        CHECK_OK(lg_trainer_save_state(t, &st));
        if (!g.W_enc || !w0.W_enc || !st.arrays)
            break;
        /* the float64 analytic gradient at the trainer's weights, dead latents from its clocks */
        memset(&c, 0, sizeof c);
        c.x = xs[s];
        c.aux_coeff = tc.aux_coeff;
        c.aux_k = tc.aux_k;
        since = state_get(&st, "steps_since_fired");
        for (i = 0; since && i < M_; i++) {
            c.dead[i] = since[i] >= 1.0f; /* dead_after = B: one step without firing */
            c.aux_on |= c.dead[i];
        }
        params_from(&w0, P);
        if (c.aux_on) {
            ref_freeze(&c, P);
            n_aux++;
        }
        ref_loss(&c, P, NULL, R, NULL);
        params_from(&g, G);
        for (q = 0; q < N_PAR; q++)
            gmax = fmax(gmax, fabs(R[q]));
        for (q = 0; q < N_PAR; q++)
            badg += !(fabs(G[q] - R[q]) <= 1e-5 * gmax + 1e-4 * fabs(R[q]));
        CHECK_MSG(badg == 0, "%s step %d: %d raw gradients differ from the float64 gradient", label, s, badg);
        /* 2. radial part of each decoder-row gradient */
        for (r = 0; r < M_; r++) {
            double gw = 0, ww = 0;
            for (i = 0; i < D_; i++) {
                gw += G[OFF_WD + r * D_ + i] * P[OFF_WD + r * D_ + i];
                ww += P[OFF_WD + r * D_ + i] * P[OFF_WD + r * D_ + i];
            }
            for (i = 0; i < D_; i++)
                G[OFF_WD + r * D_ + i] -= gw / ww * P[OFF_WD + r * D_ + i];
        }
        /* 3. clipping */
        for (q = 0; q < N_PAR; q++)
            norm2 += G[q] * G[q];
        scale = grad_clip > 0 && sqrt(norm2) > grad_clip ? grad_clip / sqrt(norm2) : 1.0;
        n_clipped += scale < 1.0;
        /* 4. schedule and Adam */
        s0 = (double)tc.steps - floor(tc.decay_frac * (double)tc.steps);
        lr = tc.lr * fmin(1.0, (s + 1.0) / (double)tc.warmup_steps) *
             (s < s0 ? 1.0 : ((double)tc.steps - s) / ((double)tc.steps - s0));
        bc1 = 1 - pow(tc.adam_beta1, s + 1.0);
        bc2 = 1 - pow(tc.adam_beta2, s + 1.0);
        for (i = 0; i < 4; i++) {
            char mn[48], vn[48];
            const float *Mm, *V;
            size_t k;
            snprintf(mn, sizeof mn, "adam_m.%s", names[i]);
            snprintf(vn, sizeof vn, "adam_v.%s", names[i]);
            Mm = state_get(&st, mn);
            V = state_get(&st, vn);
            CHECK(Mm && V);
            for (k = 0; Mm && V && k < numel[i]; k++) {
                double gq = G[off[i] + k] * scale, mq = tc.adam_beta1 * Mm[k] + (1 - tc.adam_beta1) * gq,
                       vq = tc.adam_beta2 * V[k] + (1 - tc.adam_beta2) * gq * gq;
                P[off[i] + k] -= lr * (mq / bc1) / (sqrt(vq / bc2) + tc.adam_eps);
            }
        }
        /* 5. unit decoder rows */
        for (r = 0; r < M_; r++) {
            double ww = 0;
            for (i = 0; i < D_; i++)
                ww += P[OFF_WD + r * D_ + i] * P[OFF_WD + r * D_ + i];
            for (i = 0; i < D_; i++)
                P[OFF_WD + r * D_ + i] /= sqrt(ww);
        }
        CHECK_OK(lg_trainer_step(t, xs[s], &ss));
        CHECK_OK(lg_trainer_get_weights(t, &w1));
        CHECK_CLOSE(ss.lr, lr, 0, 1e-15);
        CHECK_CLOSE(ss.grad_norm, sqrt(norm2), 0, 1e-5);
        if (w1.W_enc) {
            double got[N_PAR];
            params_from(&w1, got);
            for (q = 0; q < N_PAR; q++)
                if (!(fabs(got[q] - P[q]) <= 2e-6 + 1e-5 * fabs(P[q]))) {
                    if (bad < 3)
                        fprintf(stderr, "  %s step %d param %d: got %.9g want %.9g\n", label, s, q, got[q], P[q]);
                    bad++;
                }
        }
        CHECK_MSG(bad == 0, "%s clip %g step %d: %d parameters differ from the float64 update", label, grad_clip,
                  s, bad);
        lg_train_state_release(&st);
        lg_sae_weights_release(&g);
        lg_sae_weights_release(&w0);
        lg_sae_weights_release(&w1);
    }
    if (grad_clip > 0)
        CHECK_MSG(n_clipped > 0, "%s: clipping never active", label);
    CHECK_MSG(n_aux > 0, "%s: no step with dead latents: AuxK untested", label);
    lg_sae_weights_release(&init);
    lg_trainer_free(t);
}

static void test_update(void)
{
    check_update(lg_backend_cpu(), "sparse", 0.0);
    check_update(lg_backend_cpu(), "sparse", 0.05);
    check_update(lg_backend_cpu_dense(), "dense", 0.05);
}

/* ---- evaluation per budget ---------------------------------------------------- */

static void test_eval_budgets(void)
{
    lg_sae_config cfg, at;
    lg_train_config tc;
    lg_sae_weights w = {0};
    lg_recon_metrics rm;
    float *x = make_data(40 * TB, 6);
    cJSON *metrics = cJSON_CreateObject(), *v;
    double prev_fvu = 2;
    char key[64];
    int j;
    train_setup(&cfg, &tc, 30);
    CHECK_OK(train(lg_backend_cpu(), &cfg, &tc, 2, x, 30, &w, NULL));
    CHECK_OK(lg_hier_eval_budgets(lg_backend_cpu(), &cfg, &w, x + (size_t)30 * TB * TD, 10 * TB, -1, metrics));
    for (j = 0; j < 3; j++) {
        at = cfg;
        at.arch = LG_ARCH_TOPK;
        at.k = TKS[j];
        at.n_ks = 0;
        CHECK_OK(lg_recon_eval(lg_backend_cpu(), &at, &w, x + (size_t)30 * TB * TD, 10 * TB, -1, &rm));
        snprintf(key, sizeof key, "fvu_k%d", TKS[j]);
        v = cJSON_GetObjectItemCaseSensitive(metrics, key);
        CHECK_MSG(cJSON_IsNumber(v) && v->valuedouble == rm.fvu, "%s", key);
        snprintf(key, sizeof key, "l0_k%d", TKS[j]);
        v = cJSON_GetObjectItemCaseSensitive(metrics, key);
        CHECK_MSG(cJSON_IsNumber(v) && v->valuedouble == rm.l0 && rm.l0 <= TKS[j] && rm.l0 > TKS[j] - 1, "%s", key);
        snprintf(key, sizeof key, "explained_variance_k%d", TKS[j]);
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(metrics, key)));
        snprintf(key, sizeof key, "dead_frac_k%d", TKS[j]);
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(metrics, key)));
        snprintf(key, sizeof key, "mse_k%d", TKS[j]);
        CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(metrics, key)));
        /* a trained nested SAE reconstructs better with a larger budget */
        CHECK_MSG(rm.fvu < prev_fvu, "fvu at k=%d (%g) not below the smaller budget's (%g)", TKS[j], rm.fvu,
                  prev_fvu);
        prev_fvu = rm.fvu;
    }
    CHECK(cJSON_GetArraySize(metrics) == 18);
    /* the SAE itself (recon.c) is TopK at the largest budget */
    {
        lg_recon_metrics rh;
        CHECK_OK(lg_recon_eval(lg_backend_cpu(), &cfg, &w, x + (size_t)30 * TB * TD, 10 * TB, -1, &rh));
        CHECK(rh.fvu == rm.fvu && rh.l0 == rm.l0);
    }
    /* other architectures: nothing written */
    at.arch = LG_ARCH_TOPK;
    CHECK_OK(lg_hier_eval_budgets(lg_backend_cpu(), &at, &w, x, TB, -1, metrics));
    CHECK(cJSON_GetArraySize(metrics) == 18);
    cJSON_Delete(metrics);
    lg_sae_weights_release(&w);
    free(x);
}

/* ---- configuration, metadata text, backend refusal ---------------------------- */

static void test_config(void)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights w = {0};
    lg_trainer *t = NULL;
    lg_backend fake;
    int ks[3] = {2, 4, 8}, bad1[2] = {4, 4}, bad2[2] = {0, 4};
    char buf[64];
    hier_cfg(&cfg, 8, 16, ks, 3);
    CHECK_OK(lg_sae_config_check(&cfg));
    CHECK(strcmp(lg_arch_name(LG_ARCH_HIER_TOPK), "hierarchical_topk") == 0);
    {
        lg_arch a;
        CHECK(lg_arch_parse("hierarchical_topk", &a) == 0 && a == LG_ARCH_HIER_TOPK);
    }
    cfg.k = 4;
    CHECK(lg_sae_config_check(&cfg) == LG_EINPUT && strstr(lg_error_msg(), "must equal k"));
    hier_cfg(&cfg, 8, 16, bad1, 2);
    CHECK(lg_sae_config_check(&cfg) == LG_EINPUT && strstr(lg_error_msg(), "ks[1]"));
    hier_cfg(&cfg, 8, 16, bad2, 2);
    CHECK(lg_sae_config_check(&cfg) == LG_EINPUT && strstr(lg_error_msg(), "ks[0]"));
    hier_cfg(&cfg, 8, 16, ks, 3);
    cfg.n_ks = 0;
    CHECK(lg_sae_config_check(&cfg) == LG_EINPUT && strstr(lg_error_msg(), "ks"));
    ks[2] = 17; /* beyond d_sae */
    hier_cfg(&cfg, 8, 16, ks, 3);
    CHECK(lg_sae_config_check(&cfg) == LG_EINPUT && strstr(lg_error_msg(), "k: must be in"));
    ks[2] = 8;
    /* the weights files' "ks" metadata */
    lg_hier_ks_format(ks, 3, buf, sizeof buf);
    CHECK(strcmp(buf, "2,4,8") == 0);
    memset(&cfg, 0, sizeof cfg);
    CHECK_OK(lg_hier_ks_parse("2,4,8", "f", &cfg));
    CHECK(cfg.n_ks == 3 && cfg.ks[0] == 2 && cfg.ks[2] == 8);
    CHECK(lg_hier_ks_parse("", "f", &cfg) == LG_EINPUT);
    CHECK(lg_hier_ks_parse(NULL, "f", &cfg) == LG_EINPUT);
    CHECK(lg_hier_ks_parse("2,,4", "f", &cfg) == LG_EINPUT);
    CHECK(lg_hier_ks_parse("2,4,", "f", &cfg) == LG_EINPUT);
    CHECK(lg_hier_ks_parse("2;4", "f", &cfg) == LG_EINPUT);
    CHECK(lg_hier_ks_parse("0", "f", &cfg) == LG_EINPUT);
    CHECK(lg_hier_ks_parse("99999999999999999999", "f", &cfg) == LG_EINPUT);
    CHECK(lg_hier_ks_parse("1,2,3,4,5,6,7,8,9", "f", &cfg) == LG_EINPUT);
    /* a backend that is not the CPU: refused with a message naming the architecture */
    hier_cfg(&cfg, 8, 16, ks, 3);
    lg_train_config_default(&tc);
    tc.batch = 4;
    CHECK_OK(lg_sae_init_weights(&cfg, 1, NULL, &w));
    fake = *lg_backend_cpu();
    fake.name = "cuda";
    CHECK(lg_trainer_new(&fake, &cfg, &tc, &w, &t) == LG_EINPUT && !t &&
          strstr(lg_error_msg(), "hierarchical_topk") && strstr(lg_error_msg(), "cuda"));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &w, &t));
    lg_trainer_free(t);
    lg_sae_weights_release(&w);
    /* a study with a trained hierarchical_topk condition: refused before any data is read (the
     * data path does not exist), naming the study file and the condition */
    {
        static const char spec[] =
            "{\"format\": 1, \"name\": \"h\", \"data\": {\"source\": \"file\", \"path\": \"/nonexistent/x.npy\"},"
            " \"sae\": {\"arch\": \"hierarchical_topk\", \"d_sae\": 16, \"ks\": [2, 4]}, \"seeds\": [1]}";
        lg_study *st = NULL;
        lg_run_options ro;
        lg_run_result res;
        memset(&ro, 0, sizeof ro);
        memset(&res, 0, sizeof res);
        ro.be = &fake;
        ro.outdir = "/nonexistent-out";
        CHECK_OK(lg_study_parse("h.json", spec, sizeof spec - 1, &st));
        if (st) {
            CHECK(st->conds[0].p.k == 4 && st->conds[0].p.n_ks == 2);
            CHECK(lg_study_execute(st, &ro, &res) == LG_EINPUT);
            CHECK_MSG(strstr(lg_error_msg(), "h.json: condition default") &&
                          strstr(lg_error_msg(), "hierarchical_topk: not implemented on the cuda backend"),
                      "message: %s", lg_error_msg());
            lg_run_result_release(&res);
            /* on the CPU the same study gets past the check (and fails on the missing data) */
            ro.be = lg_backend_cpu();
            CHECK(lg_study_execute(st, &ro, &res) < 0 && strstr(lg_error_msg(), "x.npy"));
            lg_run_result_release(&res);
        }
        lg_study_free(st);
    }
}

CHECK_MAIN(T(test_grad_sparse), T(test_grad_dense), T(test_update), T(test_determinism_sparse),
           T(test_determinism_dense), T(test_single_budget_is_topk), T(test_eval_budgets), T(test_config))
