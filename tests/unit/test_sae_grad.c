/*
 * test_sae_grad.c - the backward pass of every architecture against central
 * finite differences of an independent float64 reference loss (written here
 * from the formulas of train.h, sharing no code with train.c).
 *
 * Top-k, batch top-k, ReLU and JumpReLU are piecewise smooth: the inputs are
 * chosen (seed search) so that no selection or threshold lies within a margin
 * of its boundary, so the finite differences see the same branch as the
 * analytic gradient. AuxK's residual e and its normaliser are constants of
 * the loss (stop-gradient), so the reference freezes them at the base point.
 * JumpReLU's threshold gradient is a straight-through pseudo-gradient, not a
 * derivative: it is checked against its formula with a float64 dL/dacts.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/rng.h"
#include "engine/sae.h"
#include "engine/train.h"
#include "tests/unit/check.h"

enum { B_ = 6, D_ = 5, M_ = 12 };

typedef struct {
    lg_sae_config cfg;
    lg_train_config tc;
    const float *x;       /* [B, d] */
    int dead[M_];         /* 1 = dead latent (AuxK) */
    int aux_on;
    double e[B_ * D_];    /* frozen AuxK residual x - xhat */
    double denom;         /* frozen sum ||e - mean e||^2 */
    int n_pref, pref[4];
} ref_ctx;

/* layout of the flat parameter vector */
#define OFF_WE 0
#define OFF_BE (OFF_WE + D_ * M_)
#define OFF_WD (OFF_BE + M_)
#define OFF_BD (OFF_WD + M_ * D_)
#define OFF_LT (OFF_BD + D_)
#define N_PAR (OFF_LT + M_)

/* keep[q] = 1 for the `k` best positive candidates of v (value desc, index
 * asc); *margin = min over the boundary of the selection of the value gap. */
static void ref_select(const double *v, const int *cand, int n, int k, int *keep, double *margin)
{
    int q, p;
    double kth = -1, next = -1; /* the k-th and (k+1)-th candidate values */
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

/* Loss at parameters P; optionally the residual of the full reconstruction
 * (e = x - xhat), dL/dacts of the reconstruction, and the branch margin. */
static double ref_loss(const ref_ctx *c, const double *P, double *e_out, double *gacts,
                       double *margin)
{
    const int B = B_, d = D_, m = M_;
    const double *We = P + OFF_WE, *be = P + OFF_BE, *Wd = P + OFF_WD, *bd = P + OFF_BD,
                 *lt = P + OFF_LT;
    double pre[B_ * M_], acts[B_ * M_], xhat[B_ * D_], mg = 1e30, recon = 0, sparsity = 0,
                                                       aux = 0;
    int keep[B_ * M_], r, j, i, q;
    lg_arch arch = c->cfg.arch;

    for (r = 0; r < B; r++)
        for (j = 0; j < m; j++) {
            double s = be[j];
            for (i = 0; i < d; i++)
                s += ((double)c->x[r * d + i] - bd[i]) * We[i * m + j];
            pre[r * m + j] = s;
            if (fabs(s) < mg)
                mg = fabs(s); /* ReLU boundary */
        }
    if (arch == LG_ARCH_RELU) {
        for (q = 0; q < B * m; q++)
            acts[q] = pre[q] > 0 ? pre[q] : 0;
    } else if (arch == LG_ARCH_TOPK) {
        for (r = 0; r < B; r++)
            ref_select(pre + r * m, NULL, m, c->cfg.k, keep + r * m, &mg);
        for (q = 0; q < B * m; q++)
            acts[q] = keep[q] ? pre[q] : 0;
    } else if (arch == LG_ARCH_BATCHTOPK || arch == LG_ARCH_MATRYOSHKA) {
        ref_select(pre, NULL, B * m, c->cfg.k * B, keep, &mg);
        for (q = 0; q < B * m; q++)
            acts[q] = keep[q] ? pre[q] : 0;
    } else { /* JUMPRELU */
        mg = 1e30;
        for (r = 0; r < B; r++)
            for (j = 0; j < m; j++) {
                double th = exp(lt[j]), x = pre[r * m + j];
                acts[r * m + j] = x > th ? x : 0;
                if (fabs(x - th) < mg)
                    mg = fabs(x - th);
                sparsity += x > th ? c->tc.l0_coeff / B : 0;
            }
    }
    if (arch == LG_ARCH_RELU)
        for (q = 0; q < B * m; q++)
            sparsity += c->tc.l1_coeff * acts[q] / B;

    if (gacts)
        memset(gacts, 0, sizeof(double) * B * m);
    for (q = 0; q < B * d; q++)
        xhat[q] = bd[q % d];
    {
        int lo = 0, pi;
        for (pi = 0; pi < c->n_pref; pi++) {
            int hi = c->pref[pi];
            double ss = 0;
            for (r = 0; r < B; r++)
                for (i = 0; i < d; i++)
                    for (j = lo; j < hi; j++)
                        xhat[r * d + i] += acts[r * m + j] * Wd[j * d + i];
            for (q = 0; q < B * d; q++)
                ss += (xhat[q] - c->x[q]) * (xhat[q] - c->x[q]);
            recon += ss / B / c->n_pref;
            if (gacts)
                for (r = 0; r < B; r++)
                    for (j = 0; j < hi; j++)
                        for (i = 0; i < d; i++)
                            gacts[r * m + j] += 2.0 / (B * c->n_pref) *
                                                (xhat[r * d + i] - c->x[r * d + i]) * Wd[j * d + i];
            lo = hi;
        }
    }
    if (e_out)
        for (q = 0; q < B * d; q++)
            e_out[q] = c->x[q] - xhat[q];

    if (c->aux_on) {
        double aacts[B_ * M_];
        int nd = 0, kaux;
        for (j = 0; j < m; j++)
            nd += c->dead[j];
        kaux = c->tc.aux_k > 0 ? c->tc.aux_k : d / 2;
        if (kaux > nd)
            kaux = nd;
        for (r = 0; r < B; r++)
            ref_select(pre + r * m, c->dead, m, kaux, keep + r * m, &mg);
        for (q = 0; q < B * m; q++)
            aacts[q] = keep[q] ? pre[q] : 0;
        for (r = 0; r < B; r++)
            for (i = 0; i < d; i++) {
                double eh = 0;
                for (j = 0; j < m; j++)
                    eh += aacts[r * m + j] * Wd[j * d + i];
                aux += (eh - c->e[r * d + i]) * (eh - c->e[r * d + i]);
            }
        aux *= c->tc.aux_coeff / c->denom;
    }
    if (margin)
        *margin = mg;
    return recon + sparsity + aux;
}

static void make_case(lg_arch arch, uint64_t seed, ref_ctx *c, float *x, lg_sae_weights *w)
{
    lg_rng rng;
    int i;
    memset(c, 0, sizeof(*c));
    c->cfg.arch = arch;
    c->cfg.d_in = D_;
    c->cfg.d_sae = M_;
    c->cfg.k = 3;
    lg_train_config_default(&c->tc);
    c->tc.batch = B_;
    c->tc.l1_coeff = 0.3;
    c->tc.l0_coeff = 0.5;
    c->tc.jumprelu_bandwidth = 0.05;
    c->tc.aux_k = 2;
    c->tc.aux_coeff = 0.25; /* large, so the AuxK term matters in the check */
    c->tc.dead_after = B_;  /* dead after one step without firing */
    c->n_pref = 1;
    c->pref[0] = M_;
    if (arch == LG_ARCH_MATRYOSHKA) {
        c->tc.n_prefixes = 2;
        c->tc.prefixes[0] = 4;
        c->tc.prefixes[1] = 8;
        c->n_pref = 3;
        c->pref[0] = 4;
        c->pref[1] = 8;
        c->pref[2] = M_;
    }
    c->x = x;
    lg_rng_init(&rng, seed, 77);
    for (i = 0; i < B_ * D_; i++)
        x[i] = (float)(lg_rng_normal(&rng) + 0.3);
    CHECK_OK(lg_sae_init_weights(&c->cfg, seed, NULL, w));
    for (i = 0; i < M_; i++) {
        w->b_enc[i] = (float)(0.2 * lg_rng_normal(&rng));
        w->threshold[i] = (float)(0.1 + 0.5 * lg_rng_uniform(&rng));
    }
    for (i = 0; i < D_; i++)
        w->b_dec[i] = (float)(0.2 * lg_rng_normal(&rng));
    c->aux_on = arch == LG_ARCH_TOPK || arch == LG_ARCH_BATCHTOPK || arch == LG_ARCH_MATRYOSHKA;
    for (i = 0; i < M_; i++)
        c->dead[i] = c->aux_on && i % 3 == 1;
}

static void params_from(const lg_sae_weights *w, int jump, double *P)
{
    int i;
    for (i = 0; i < D_ * M_; i++) {
        P[OFF_WE + i] = w->W_enc[i];
        P[OFF_WD + i] = w->W_dec[i];
    }
    for (i = 0; i < M_; i++) {
        P[OFF_BE + i] = w->b_enc[i];
        P[OFF_LT + i] = jump ? log((double)w->threshold[i]) : 0;
    }
    for (i = 0; i < D_; i++)
        P[OFF_BD + i] = w->b_dec[i];
}

/* Mark the dead latents in the trainer through its state (steps_since_fired). */
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

static void check_arch(lg_arch arch)
{
    ref_ctx c;
    float x[B_ * D_];
    lg_sae_weights w = {0}, g = {0};
    lg_trainer *t = NULL;
    lg_step_stats st;
    double P[N_PAR], fd[N_PAR], an[N_PAR], margin = 0, loss0, maxfd = 0, h = 1e-6;
    const int jump = arch == LG_ARCH_JUMPRELU;
    uint64_t seed;
    int i, bad = 0, n_par = jump ? OFF_LT : N_PAR; /* JumpReLU's lthr: STE below */

    /* find a seed whose branches are far from their boundaries */
    for (seed = 1; seed < 200; seed++) {
        make_case(arch, seed, &c, x, &w);
        params_from(&w, jump, P);
        ref_loss(&c, P, NULL, NULL, &margin);
        if (margin > 2e-3)
            break;
        lg_sae_weights_release(&w);
    }
    CHECK_MSG(margin > 2e-3, "%s: no seed with a clear margin", lg_arch_name(arch));
    /* frozen AuxK residual at the base point */
    ref_loss(&c, P, c.e, NULL, NULL);
    {
        double mean[D_] = {0};
        int r, k;
        c.denom = 0;
        for (r = 0; r < B_; r++)
            for (k = 0; k < D_; k++)
                mean[k] += c.e[r * D_ + k] / B_;
        for (r = 0; r < B_; r++)
            for (k = 0; k < D_; k++)
                c.denom += (c.e[r * D_ + k] - mean[k]) * (c.e[r * D_ + k] - mean[k]);
    }
    loss0 = ref_loss(&c, P, NULL, NULL, NULL);

    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &c.cfg, &c.tc, &w, &t));
    if (!t)
        goto out;
    if (c.aux_on)
        set_dead(t, c.dead);
    CHECK_OK(lg_trainer_compute_grads(t, x, &st));
    CHECK_CLOSE(st.loss, loss0, 1e-6, 1e-5);
    if (c.aux_on)
        CHECK_MSG(st.aux > 1e-3 && st.n_dead == 4, "%s: aux %g n_dead %g", lg_arch_name(arch),
                  st.aux, st.n_dead);
    if (arch == LG_ARCH_RELU || jump)
        CHECK(st.sparsity > 0);
    CHECK_OK(lg_trainer_get_grads(t, &g));
    if (!g.W_enc)
        goto out;
    params_from(&g, 0, an);
    for (i = 0; i < M_; i++)
        an[OFF_LT + i] = g.threshold[i];

    for (i = 0; i < n_par; i++) {
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
    for (i = 0; i < n_par; i++)
        if (!(fabs(an[i] - fd[i]) <= 1e-4 * maxfd + 1e-3 * fabs(fd[i]))) {
            if (bad < 5)
                fprintf(stderr, "  %s: param %d: analytic %.9g, finite difference %.9g\n",
                        lg_arch_name(arch), i, an[i], fd[i]);
            bad++;
        }
    CHECK_MSG(bad == 0, "%s: %d of %d gradients differ", lg_arch_name(arch), bad, n_par);
    CHECK(maxfd > 1e-2); /* the check is not vacuous */

    if (jump) { /* STE: grad_lthr[j] = theta_j sum_r K(u) (-(theta_j/eps) gacts - l0/(B eps)) */
        double gacts[B_ * M_], pre[B_ * M_];
        int r, j, k, hits = 0;
        const double eps = c.tc.jumprelu_bandwidth;
        ref_loss(&c, P, NULL, gacts, NULL);
        for (r = 0; r < B_; r++)
            for (j = 0; j < M_; j++) {
                double s = P[OFF_BE + j];
                for (k = 0; k < D_; k++)
                    s += ((double)x[r * D_ + k] - P[OFF_BD + k]) * P[OFF_WE + k * M_ + j];
                pre[r * M_ + j] = s;
            }
        bad = 0;
        for (j = 0; j < M_; j++) {
            double th = exp(P[OFF_LT + j]), acc = 0, want;
            for (r = 0; r < B_; r++) {
                double u = (pre[r * M_ + j] - th) / eps;
                if (fabs(u) < 0.5) {
                    acc += -(th / eps) * gacts[r * M_ + j] - c.tc.l0_coeff / (B_ * eps);
                    hits++;
                }
            }
            want = th * acc;
            if (!(fabs(an[OFF_LT + j] - want) <= 1e-4 + 1e-3 * fabs(want)))
                bad++;
        }
        CHECK_MSG(bad == 0, "jumprelu: %d STE threshold gradients differ", bad);
        CHECK_MSG(hits > 0, "jumprelu: no activation inside the STE window");
    }
out:
    lg_sae_weights_release(&w);
    lg_sae_weights_release(&g);
    lg_trainer_free(t);
}

/* JumpReLU with a wide bandwidth so the STE window is populated. */
static void test_relu(void) { check_arch(LG_ARCH_RELU); }
static void test_topk(void) { check_arch(LG_ARCH_TOPK); }
static void test_batchtopk(void) { check_arch(LG_ARCH_BATCHTOPK); }
static void test_jumprelu(void) { check_arch(LG_ARCH_JUMPRELU); }
static void test_matryoshka(void) { check_arch(LG_ARCH_MATRYOSHKA); }

CHECK_MAIN(T(test_relu), T(test_topk), T(test_batchtopk), T(test_jumprelu), T(test_matryoshka))
