/*
 * test_train.c - trainer and metrics: seeded init, determinism (same seed ->
 * bit-identical weights), save/load/continue == straight through for every
 * architecture, divergence reporting, config errors, reconstruction metrics
 * against direct float64 formulas (FVU around the mean, chunking invariance),
 * and a synthetic sanity run where TopK recovers a known dictionary.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/recon.h"
#include "base/rng.h"
#include <unistd.h>

#include "engine/checkpoint.h"
#include "engine/sae.h"
#include "engine/train.h"
#include "tests/unit/check.h"

/* Synthetic data: F unit features in d dims; each row = sum of S random
 * features with magnitudes in [0.5, 1.5] (+ offset). truth [F, d]. */
static void make_data(uint64_t seed, int n, int d, int F, int S, float offset, float *truth,
                      float *x)
{
    lg_rng rd, rs;
    int f, i, r, s;
    lg_rng_init(&rd, seed, LG_STREAM_DICT);
    for (f = 0; f < F; f++) {
        double ss = 0;
        for (i = 0; i < d; i++) {
            truth[f * d + i] = (float)lg_rng_normal(&rd);
            ss += (double)truth[f * d + i] * truth[f * d + i];
        }
        for (i = 0; i < d; i++)
            truth[f * d + i] = (float)(truth[f * d + i] / sqrt(ss));
    }
    lg_rng_init(&rs, seed, LG_STREAM_DATA);
    for (r = 0; r < n; r++) {
        for (i = 0; i < d; i++)
            x[(size_t)r * d + i] = offset;
        for (s = 0; s < S; s++) {
            int fi = (int)lg_rng_below(&rs, (uint64_t)F);
            float a = (float)(0.5 + lg_rng_uniform(&rs));
            for (i = 0; i < d; i++)
                x[(size_t)r * d + i] += a * truth[fi * d + i];
        }
    }
}

static void setup(lg_arch arch, lg_sae_config *cfg, lg_train_config *tc)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->arch = arch;
    cfg->d_in = 16;
    cfg->d_sae = 48;
    cfg->k = 4;
    lg_train_config_default(tc);
    tc->batch = 32;
    tc->steps = 40;
    tc->warmup_steps = 5;
    tc->lr = 3e-3;
    tc->l1_coeff = 0.05;
    tc->l0_coeff = 0.01;
    tc->dead_after = 3 * 32; /* dead latents appear within the run: AuxK is exercised */
    tc->threshold_beta = 0.9;
    if (arch == LG_ARCH_MATRYOSHKA) {
        tc->n_prefixes = 2;
        tc->prefixes[0] = 8;
        tc->prefixes[1] = 24;
    }
}

static double max_dead; /* most latents counted dead in a step of run_steps */

/* Train `steps` steps from `start` on rows [start*B ...) of x. */
static int run_steps(lg_trainer *t, const float *x, int d, int B, long start, long steps,
                     lg_step_stats *last)
{
    lg_step_stats st;
    long s;
    int err;
    for (s = start; s < start + steps; s++) {
        if ((err = lg_trainer_step(t, x + (size_t)s * B * d, &st)) < 0)
            return err;
        if (st.n_dead > max_dead)
            max_dead = st.n_dead;
    }
    if (last)
        *last = st;
    return 0;
}

static int weights_equal(const lg_sae_weights *a, const lg_sae_weights *b)
{
    size_t dm = (size_t)a->d_in * a->d_sae;
    return a->d_in == b->d_in && a->d_sae == b->d_sae &&
           memcmp(a->W_enc, b->W_enc, dm * 4) == 0 && memcmp(a->W_dec, b->W_dec, dm * 4) == 0 &&
           memcmp(a->b_enc, b->b_enc, (size_t)a->d_sae * 4) == 0 &&
           memcmp(a->b_dec, b->b_dec, (size_t)a->d_in * 4) == 0 &&
           memcmp(a->threshold, b->threshold, (size_t)a->d_sae * 4) == 0;
}

static void test_init(void)
{
    lg_sae_config cfg = {.arch = LG_ARCH_TOPK, .d_in = 16, .d_sae = 48, .k = 4};
    lg_sae_weights a = {0}, b = {0}, c = {0};
    float bd[16];
    int i, j;
    for (i = 0; i < 16; i++)
        bd[i] = (float)i;
    CHECK_OK(lg_sae_init_weights(&cfg, 7, bd, &a));
    CHECK_OK(lg_sae_init_weights(&cfg, 7, bd, &b));
    CHECK_OK(lg_sae_init_weights(&cfg, 8, NULL, &c));
    CHECK(weights_equal(&a, &b));
    CHECK(memcmp(a.W_dec, c.W_dec, 16 * 48 * 4) != 0);
    for (j = 0; j < 48; j++) {
        double ss = 0;
        for (i = 0; i < 16; i++) {
            ss += (double)a.W_dec[j * 16 + i] * a.W_dec[j * 16 + i];
            CHECK(a.W_enc[i * 48 + j] == a.W_dec[j * 16 + i]);
        }
        CHECK_CLOSE(ss, 1.0, 1e-6, 0);
        CHECK(a.b_enc[j] == 0 && a.threshold[j] == 0);
    }
    CHECK(a.b_dec[5] == 5.0f && c.b_dec[5] == 0.0f);
    cfg.k = 0;
    lg_sae_weights_release(&c); /* init overwrites its out without freeing it */
    CHECK(lg_sae_init_weights(&cfg, 7, NULL, &c) == LG_EINPUT && strstr(lg_error_msg(), "k"));
    lg_sae_weights_release(&a);
    lg_sae_weights_release(&b);
    lg_sae_weights_release(&c);
}

static void test_config_errors(void)
{
    lg_sae_config cfg;
    lg_train_config tc;
    setup(LG_ARCH_MATRYOSHKA, &cfg, &tc);
    CHECK_OK(lg_train_config_check(&tc, &cfg));
    tc.prefixes[1] = 4;
    CHECK(lg_train_config_check(&tc, &cfg) == LG_EINPUT && strstr(lg_error_msg(), "prefixes"));
    setup(LG_ARCH_TOPK, &cfg, &tc);
    tc.lr = -1;
    CHECK(lg_train_config_check(&tc, &cfg) == LG_EINPUT && strstr(lg_error_msg(), "lr"));
    setup(LG_ARCH_TOPK, &cfg, &tc);
    tc.adam_beta2 = 1.0;
    CHECK(lg_train_config_check(&tc, &cfg) == LG_EINPUT && strstr(lg_error_msg(), "adam_beta2"));
    {
        lg_arch a;
        CHECK_OK(lg_arch_parse("batchtopk", &a));
        CHECK(a == LG_ARCH_BATCHTOPK && strcmp(lg_arch_name(a), "batchtopk") == 0);
        CHECK(lg_arch_parse("gated", &a) == LG_EINPUT);
    }
}

/* same seed -> bit-identical; save at N, load into a fresh trainer, continue
 * M more == N+M straight through (weights and the whole state). */
static void check_resume(lg_arch arch)
{
    lg_sae_config cfg;
    lg_train_config tc;
    const int N = 17, M = 23;
    float *x, *truth;
    lg_sae_weights init = {0}, other = {0}, wa = {0}, wb = {0}, wc = {0};
    lg_trainer *a = NULL, *b = NULL, *c = NULL;
    lg_train_state sa = {0}, sc = {0};
    lg_step_stats st;
    int i;
    setup(arch, &cfg, &tc);
    x = malloc((size_t)(N + M) * tc.batch * cfg.d_in * sizeof(float));
    truth = malloc(64 * 16 * sizeof(float));
    make_data(3, (N + M) * tc.batch, cfg.d_in, 64, 3, 0.5f, truth, x);
    CHECK_OK(lg_sae_init_weights(&cfg, 11, NULL, &init));
    CHECK_OK(lg_sae_init_weights(&cfg, 12, NULL, &other));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init, &a));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init, &c));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &other, &b));
    if (!a || !b || !c)
        goto out;
    /* a: N+M straight; c: N, save, (b loads) continue M */
    max_dead = 0;
    CHECK_OK(run_steps(a, x, cfg.d_in, tc.batch, 0, N + M, &st));
    if (arch == LG_ARCH_TOPK || arch == LG_ARCH_BATCHTOPK || arch == LG_ARCH_MATRYOSHKA)
        CHECK_MSG(max_dead > 0, "%s: AuxK never active in the resume run", lg_arch_name(arch));
    CHECK_OK(run_steps(c, x, cfg.d_in, tc.batch, 0, N, NULL));
    CHECK_OK(lg_trainer_save_state(c, &sc));
    {
        /* through a checkpoint file, as a separate process would resume */
        char path[] = "/tmp/lgckptXXXXXX";
        lg_train_state sf = {0};
        int fd = mkstemp(path);
        CHECK(fd >= 0);
        close(fd);
        CHECK_OK(lg_checkpoint_write(path, &sc));
        CHECK_OK(lg_checkpoint_read(path, &sf));
        CHECK(sf.count == sc.count);
        CHECK_OK(lg_trainer_load_state(b, &sf));
        lg_train_state_release(&sf);
        CHECK(lg_checkpoint_read("/nonexistent/ckpt", &sf) < 0);
        unlink(path);
    }
    CHECK(lg_trainer_steps_done(b) == N);
    CHECK_OK(run_steps(b, x, cfg.d_in, tc.batch, N, M, NULL));
    CHECK_OK(run_steps(c, x, cfg.d_in, tc.batch, N, M, NULL)); /* c continues in place too */
    CHECK_OK(lg_trainer_get_weights(a, &wa));
    CHECK_OK(lg_trainer_get_weights(b, &wb));
    CHECK_OK(lg_trainer_get_weights(c, &wc));
    CHECK_MSG(weights_equal(&wa, &wb), "%s: resumed weights differ", lg_arch_name(arch));
    CHECK_MSG(weights_equal(&wa, &wc), "%s: same seed, different weights", lg_arch_name(arch));
    CHECK(!weights_equal(&wa, &init));
    lg_train_state_release(&sc);
    CHECK_OK(lg_trainer_save_state(a, &sa));
    CHECK_OK(lg_trainer_save_state(b, &sc));
    CHECK(sa.count == sc.count && sa.count >= 12);
    for (i = 0; i < sa.count && i < sc.count; i++)
        CHECK_MSG(strcmp(sa.arrays[i].name, sc.arrays[i].name) == 0 &&
                      memcmp(sa.arrays[i].data, sc.arrays[i].data,
                             (size_t)lg_named_array_numel(&sa.arrays[i]) * 4) == 0,
                  "%s: state array %s differs", lg_arch_name(arch), sa.arrays[i].name);
    if (arch == LG_ARCH_BATCHTOPK || arch == LG_ARCH_MATRYOSHKA)
        CHECK(wa.threshold[0] > 0);
    if (arch == LG_ARCH_JUMPRELU)
        CHECK(wa.threshold[0] > 0 && wa.threshold[0] != (float)tc.jumprelu_init_threshold);
    /* bad states are refused and leave the trainer usable */
    sc.arrays[0].shape[0]++;
    CHECK(lg_trainer_load_state(b, &sc) == LG_EINPUT && strstr(lg_error_msg(), "shape"));
    sc.arrays[0].shape[0]--;
    for (i = 0; i < sc.count; i++) {
        /* values are checked too: a NaN weight, a negative second moment */
        lg_named_array *arr = &sc.arrays[i];
        float keep = arr->data[0];
        if (strcmp(arr->name, "W_enc") == 0) {
            arr->data[0] = NAN;
            CHECK(lg_trainer_load_state(b, &sc) == LG_EINPUT && strstr(lg_error_msg(), "W_enc"));
        } else if (strncmp(arr->name, "adam_v.", 7) == 0) {
            arr->data[0] = -1.0f;
            CHECK(lg_trainer_load_state(b, &sc) == LG_EINPUT && strstr(lg_error_msg(), ">= 0"));
        }
        arr->data[0] = keep;
    }
    sc.arrays[0].name[0] = 'X';
    CHECK(lg_trainer_load_state(b, &sc) == LG_EINPUT && strstr(lg_error_msg(), "missing"));
    CHECK(lg_trainer_step(b, x, NULL) == LG_EINPUT); /* beyond the configured steps */
out:
    free(x);
    free(truth);
    lg_train_state_release(&sa);
    lg_train_state_release(&sc);
    lg_sae_weights_release(&init);
    lg_sae_weights_release(&other);
    lg_sae_weights_release(&wa);
    lg_sae_weights_release(&wb);
    lg_sae_weights_release(&wc);
    lg_trainer_free(a);
    lg_trainer_free(b);
    lg_trainer_free(c);
}

static void test_resume_relu(void) { check_resume(LG_ARCH_RELU); }
static void test_resume_topk(void) { check_resume(LG_ARCH_TOPK); }
static void test_resume_batchtopk(void) { check_resume(LG_ARCH_BATCHTOPK); }
static void test_resume_jumprelu(void) { check_resume(LG_ARCH_JUMPRELU); }
static void test_resume_matryoshka(void) { check_resume(LG_ARCH_MATRYOSHKA); }

static void test_diverged(void)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init = {0}, w = {0};
    lg_trainer *t = NULL;
    float *x;
    setup(LG_ARCH_TOPK, &cfg, &tc);
    x = calloc((size_t)tc.batch * cfg.d_in, sizeof(float));
    x[3] = NAN;
    CHECK_OK(lg_sae_init_weights(&cfg, 1, NULL, &init));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init, &t));
    if (t) {
        CHECK(lg_trainer_step(t, x, NULL) == LG_EDIVERGED);
        CHECK(strstr(lg_error_msg(), "diverged at step 1") && strstr(lg_error_msg(), "NaN"));
        CHECK(lg_trainer_steps_done(t) == 0);
        CHECK_OK(lg_trainer_get_weights(t, &w));
        CHECK(memcmp(w.W_dec, init.W_dec, (size_t)cfg.d_in * cfg.d_sae * 4) == 0);
    }
    free(x);
    lg_sae_weights_release(&init);
    lg_sae_weights_release(&w);
    lg_trainer_free(t);
}

/* Metrics against direct float64 computation; chunking does not matter. */
static void test_recon_metrics(void)
{
    const int n = 50, d = 6, m = 10;
    lg_sae_config cfg = {.arch = LG_ARCH_TOPK, .d_in = d, .d_sae = m, .k = 3};
    lg_sae_weights w = {0};
    lg_recon_metrics a, b;
    lg_recon *r = NULL;
    float x[50 * 6];
    double mu[6] = {0}, var = 0, sse = 0, l0 = 0, fired[10] = {0}, dead = 0, dense = 0;
    lg_rng rng;
    int i, j, q;
    lg_rng_init(&rng, 5, 1);
    for (i = 0; i < n * d; i++) /* a large offset: variance around 0 would be wrong */
        x[i] = (float)(lg_rng_normal(&rng) + 10.0);
    CHECK_OK(lg_sae_init_weights(&cfg, 2, NULL, &w));
    for (j = 0; j < m; j++)
        w.b_enc[j] = j == 9 ? -1e6f : (j == 8 ? 1e3f : 0.0f); /* 9 dead, 8 always on */
    for (i = 0; i < d; i++)
        w.b_dec[i] = 10.0f;
    /* reference */
    for (i = 0; i < n; i++)
        for (q = 0; q < d; q++)
            mu[q] += x[i * d + q] / n;
    for (i = 0; i < n; i++) {
        double pre[10], xh[6];
        int keep[10];
        for (j = 0; j < m; j++) {
            pre[j] = w.b_enc[j];
            for (q = 0; q < d; q++)
                pre[j] += ((double)x[i * d + q] - w.b_dec[q]) * w.W_enc[q * m + j];
        }
        for (j = 0; j < m; j++) {
            int before = 0, p;
            for (p = 0; p < m; p++)
                before += pre[p] > pre[j] || (pre[p] == pre[j] && p < j);
            keep[j] = before < 3 && pre[j] > 0;
            l0 += keep[j];
            fired[j] += keep[j];
        }
        for (q = 0; q < d; q++) {
            xh[q] = w.b_dec[q];
            for (j = 0; j < m; j++)
                xh[q] += keep[j] ? pre[j] * w.W_dec[j * d + q] : 0;
            sse += (x[i * d + q] - xh[q]) * (x[i * d + q] - xh[q]);
            var += (x[i * d + q] - mu[q]) * (x[i * d + q] - mu[q]);
        }
    }
    for (j = 0; j < m; j++) {
        dead += fired[j] == 0;
        dense += fired[j] > 0.3 * n;
    }
    CHECK_OK(lg_recon_eval(lg_backend_cpu(), &cfg, &w, x, n, 0.3, &a));
    CHECK(a.n_rows == n);
    CHECK_CLOSE(a.mse, sse / n, 1e-6, 1e-5);
    CHECK_CLOSE(a.fvu, sse / var, 1e-7, 1e-5);
    CHECK_CLOSE(a.explained_variance, 1 - sse / var, 1e-7, 1e-5);
    CHECK_CLOSE(a.l0, l0 / n, 0, 0);
    CHECK_CLOSE(a.dead_frac, dead / m, 0, 0);
    CHECK_CLOSE(a.dense_frac, dense / m, 0, 0);
    CHECK(a.dead_frac >= 0.1 && a.dense_frac >= 0.1);
    /* chunks of 7 give the same numbers */
    CHECK_OK(lg_recon_new(lg_backend_cpu(), &cfg, &w, 7, &r));
    for (i = 0; r && i < n; i += 7)
        CHECK_OK(lg_recon_add(r, x + i * d, n - i < 7 ? n - i : 7));
    if (r) {
        CHECK_OK(lg_recon_finish(r, 0.3, &b));
        CHECK_CLOSE(b.fvu, a.fvu, 1e-12, 1e-9);
        CHECK(b.l0 == a.l0 && b.dead_frac == a.dead_frac && b.dense_frac == a.dense_frac);
        CHECK(lg_recon_add(r, x, 8) == LG_EINPUT);
    }
    lg_recon_free(r);
    lg_sae_weights_release(&w);
}

/* TopK on data from a known dictionary: FVU well below 1, truth recovered. */
static void test_synthetic_recovery(void)
{
    const int d = 32, F = 64, S = 3, B = 256, steps = 1500, n_eval = 2048;
    lg_sae_config cfg = {.arch = LG_ARCH_TOPK, .d_in = d, .d_sae = 64, .k = 3};
    lg_train_config tc;
    lg_sae_weights init = {0}, w = {0};
    lg_trainer *t = NULL;
    lg_recon_metrics met, met0;
    lg_step_stats st;
    float *truth = malloc((size_t)F * d * 4), *x = malloc((size_t)B * d * 4);
    float *ev = malloc((size_t)n_eval * d * 4);
    double mean_max = 0;
    int s, f, j, i;
    lg_train_config_default(&tc);
    tc.batch = B;
    tc.steps = steps;
    tc.lr = 2e-3;
    tc.warmup_steps = 50;
    tc.dead_after = 20.0 * B;
    make_data(42, n_eval, d, F, S, 0.0f, truth, ev); /* held-out rows, same dictionary */
    CHECK_OK(lg_sae_init_weights(&cfg, 1, NULL, &init));
    CHECK_OK(lg_recon_eval(lg_backend_cpu(), &cfg, &init, ev, n_eval, -1, &met0));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init, &t));
    if (!t)
        goto out;
    for (s = 0; s < steps; s++) {
        /* fresh rows per step: the data stream of seed 1000+s, same dictionary */
        lg_rng rs;
        int r, k;
        lg_rng_init(&rs, 1000 + (uint64_t)s, LG_STREAM_DATA);
        memset(x, 0, (size_t)B * d * 4);
        for (r = 0; r < B; r++)
            for (k = 0; k < S; k++) {
                int fi = (int)lg_rng_below(&rs, F);
                float a = (float)(0.5 + lg_rng_uniform(&rs));
                for (i = 0; i < d; i++)
                    x[r * d + i] += a * truth[fi * d + i];
            }
        CHECK_OK(lg_trainer_step(t, x, &st));
    }
    CHECK_OK(lg_trainer_get_weights(t, &w));
    CHECK_OK(lg_recon_eval(lg_backend_cpu(), &cfg, &w, ev, n_eval, -1, &met));
    for (f = 0; f < F; f++) { /* max |cos| of each true feature to the learned rows */
        double best = 0;
        for (j = 0; j < cfg.d_sae; j++) {
            double c = 0;
            for (i = 0; i < d; i++)
                c += (double)truth[f * d + i] * w.W_dec[j * d + i];
            if (c > best)
                best = c;
        }
        mean_max += best / F;
    }
    fprintf(stderr, "synthetic: fvu %.4f (untrained %.4f), l0 %.2f, dead %.3f, recovery %.4f\n",
            met.fvu, met0.fvu, met.l0, met.dead_frac, mean_max);
    CHECK(met0.fvu > 0.5);
    CHECK_MSG(met.fvu < 0.2, "fvu %g", met.fvu);
    CHECK_MSG(mean_max > 0.8, "recovery %g", mean_max);
    CHECK(met.l0 <= 3.0);
out:
    free(truth);
    free(x);
    free(ev);
    lg_sae_weights_release(&init);
    lg_sae_weights_release(&w);
    lg_trainer_free(t);
}

/* One step's update, composed from the pieces train.h lists, against a host
 * float64 reference built from the raw gradients (lg_trainer_get_grads, which
 * test_sae_grad checks): remove the radial part of each W_dec gradient row,
 * clip the global norm over every trained parameter, Adam with bias
 * correction at lr_t = lr * min(1, (t+1)/warmup) * decay(t), renormalise
 * W_dec rows; and the BatchTopK threshold EMA. Every step of a short run is
 * checked, so warmup, plateau and decay steps are all covered. */
static const float *state_get(const lg_train_state *st, const char *name)
{
    int i;
    for (i = 0; i < st->count; i++)
        if (strcmp(st->arrays[i].name, name) == 0)
            return st->arrays[i].data;
    return NULL;
}

static void check_update(lg_arch arch, double grad_clip)
{
    enum { NP = 5 };
    static const char *const names[NP] = {"W_enc", "b_enc", "W_dec", "b_dec", "log_threshold"};
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init = {0};
    lg_trainer *t = NULL;
    float *x;
    const int jump = arch == LG_ARCH_JUMPRELU;
    const int np = jump ? 5 : 4;
    double prev_thr = -1;
    int s, n_clipped = 0, n_decay = 0, n_warm = 0;
    setup(arch, &cfg, &tc);
    tc.steps = 12;
    tc.warmup_steps = 4;
    tc.decay_frac = 0.5; /* s0 = 6 */
    tc.grad_clip = grad_clip;
    tc.lr = 1e-2;
    x = malloc((size_t)tc.steps * tc.batch * cfg.d_in * sizeof(float));
    {
        float *truth = malloc(64 * 16 * sizeof(float));
        make_data(5, (int)tc.steps * tc.batch, cfg.d_in, 64, 3, 0.5f, truth, x);
        free(truth);
    }
    CHECK_OK(lg_sae_init_weights(&cfg, 21, NULL, &init));
    if (jump)
        for (s = 0; s < cfg.d_sae; s++)
            init.threshold[s] = 0.05f;
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init, &t));
    for (s = 0; t && s < tc.steps; s++) {
        const float *xb = x + (size_t)s * tc.batch * cfg.d_in;
        const int d = cfg.d_in, m = cfg.d_sae;
        lg_sae_weights g = {0}, w0 = {0}, w1 = {0};
        lg_train_state st = {0};
        lg_step_stats ss;
        size_t numel[NP] = {(size_t)d * m, (size_t)m, (size_t)m * d, (size_t)d, (size_t)m};
        double *G[NP], *P[NP], norm2 = 0, scale, lr, s0, bc1, bc2;
        int i, r, c, bad = 0;
        size_t q;
        CHECK_OK(lg_trainer_compute_grads(t, xb, NULL));
        CHECK_OK(lg_trainer_get_grads(t, &g));
        CHECK_OK(lg_trainer_get_weights(t, &w0));
        CHECK_OK(lg_trainer_save_state(t, &st));
        if (!g.W_enc || !w0.W_enc || !st.arrays)
            break;
        for (i = 0; i < NP; i++) {
            const float *gs[NP] = {g.W_enc, g.b_enc, g.W_dec, g.b_dec, g.threshold};
            const float *ps[NP] = {w0.W_enc, w0.b_enc, w0.W_dec, w0.b_dec, w0.threshold};
            G[i] = malloc(numel[i] * sizeof(double));
            P[i] = malloc(numel[i] * sizeof(double));
            for (q = 0; q < numel[i]; q++) {
                G[i][q] = gs[i][q];
                P[i][q] = i == 4 ? (jump ? log((double)ps[i][q]) : 0) : ps[i][q];
            }
        }
        /* 2. radial part of each decoder-row gradient removed */
        for (r = 0; r < m; r++) {
            double gw = 0, ww = 0;
            for (c = 0; c < d; c++) {
                gw += G[2][r * d + c] * P[2][r * d + c];
                ww += P[2][r * d + c] * P[2][r * d + c];
            }
            for (c = 0; c < d; c++)
                G[2][r * d + c] -= gw / ww * P[2][r * d + c];
        }
        /* 3. global norm over every trained parameter */
        for (i = 0; i < np; i++)
            for (q = 0; q < numel[i]; q++)
                norm2 += G[i][q] * G[i][q];
        scale = grad_clip > 0 && sqrt(norm2) > grad_clip ? grad_clip / sqrt(norm2) : 1.0;
        n_clipped += scale < 1.0;
        /* 4. schedule and Adam */
        s0 = (double)tc.steps - floor(tc.decay_frac * (double)tc.steps);
        lr = tc.lr * fmin(1.0, (s + 1.0) / (double)tc.warmup_steps) *
             (s < s0 ? 1.0 : ((double)tc.steps - s) / ((double)tc.steps - s0));
        n_warm += s + 1 < tc.warmup_steps;
        n_decay += s >= s0;
        bc1 = 1 - pow(tc.adam_beta1, s + 1.0);
        bc2 = 1 - pow(tc.adam_beta2, s + 1.0);
        for (i = 0; i < np; i++) {
            char mn[48], vn[48];
            const float *M, *V;
            snprintf(mn, sizeof mn, "adam_m.%s", names[i]);
            snprintf(vn, sizeof vn, "adam_v.%s", names[i]);
            M = state_get(&st, mn);
            V = state_get(&st, vn);
            CHECK(M && V);
            if (!M || !V)
                continue;
            for (q = 0; q < numel[i]; q++) {
                double gq = G[i][q] * scale, mq = tc.adam_beta1 * M[q] + (1 - tc.adam_beta1) * gq,
                       vq = tc.adam_beta2 * V[q] + (1 - tc.adam_beta2) * gq * gq;
                P[i][q] -= lr * (mq / bc1) / (sqrt(vq / bc2) + tc.adam_eps);
            }
        }
        /* 5. unit decoder rows */
        for (r = 0; r < m; r++) {
            double ww = 0;
            for (c = 0; c < d; c++)
                ww += P[2][r * d + c] * P[2][r * d + c];
            for (c = 0; c < d; c++)
                P[2][r * d + c] /= sqrt(ww);
        }
        CHECK_OK(lg_trainer_step(t, xb, &ss));
        CHECK_OK(lg_trainer_get_weights(t, &w1));
        CHECK_CLOSE(ss.lr, lr, 0, 1e-15);
        CHECK_CLOSE(ss.grad_norm, sqrt(norm2), 0, 1e-5);
        if (w1.W_enc) {
            const float *ps[NP] = {w1.W_enc, w1.b_enc, w1.W_dec, w1.b_dec, w1.threshold};
            for (i = 0; i < np; i++)
                for (q = 0; q < numel[i]; q++) {
                    double got = i == 4 ? log((double)ps[i][q]) : ps[i][q];
                    if (!(fabs(got - P[i][q]) <= 2e-6 + 1e-5 * fabs(P[i][q]))) {
                        if (bad < 3)
                            fprintf(stderr, "  %s step %d %s[%zu]: got %.9g want %.9g\n",
                                    lg_arch_name(arch), s, names[i], q, got, P[i][q]);
                        bad++;
                    }
                }
        }
        CHECK_MSG(bad == 0, "%s clip %g step %d: %d parameters differ from the reference update",
                  lg_arch_name(arch), grad_clip, s, bad);
        if (arch == LG_ARCH_BATCHTOPK && w0.W_enc) {
            /* 7. threshold = EMA of the smallest kept activation (first: the value) */
            double *pre = malloc((size_t)tc.batch * m * sizeof(double)), kth;
            int keep = cfg.k * tc.batch, above, b2, j;
            for (b2 = 0; b2 < tc.batch; b2++)
                for (j = 0; j < m; j++) {
                    double a = w0.b_enc[j];
                    for (c = 0; c < d; c++)
                        a += ((double)xb[b2 * d + c] - w0.b_dec[c]) * w0.W_enc[c * m + j];
                    pre[b2 * m + j] = a;
                }
            /* the keep-th largest positive value: the smallest v with < keep values above it */
            kth = -1;
            for (q = 0; q < (size_t)tc.batch * m; q++) {
                size_t q2;
                if (!(pre[q] > 0))
                    continue;
                for (above = 0, q2 = 0; q2 < (size_t)tc.batch * m; q2++)
                    above += pre[q2] > pre[q];
                if (above < keep && (kth < 0 || pre[q] < kth))
                    kth = pre[q];
            }
            prev_thr = prev_thr < 0 ? kth : tc.threshold_beta * prev_thr + (1 - tc.threshold_beta) * kth;
            CHECK_CLOSE(ss.threshold, prev_thr, 1e-6, 1e-5);
            free(pre);
        }
        for (i = 0; i < NP; i++) {
            free(G[i]);
            free(P[i]);
        }
        lg_train_state_release(&st);
        lg_sae_weights_release(&g);
        lg_sae_weights_release(&w0);
        lg_sae_weights_release(&w1);
    }
    CHECK(n_warm == 3 && n_decay == 6); /* the schedule's three phases were stepped through */
    if (grad_clip > 0)
        CHECK_MSG(n_clipped > 0, "clip %g never active: the clipping branch is untested", grad_clip);
    else
        CHECK(n_clipped == 0);
    free(x);
    lg_sae_weights_release(&init);
    lg_trainer_free(t);
}

static void test_update_topk(void)
{
    check_update(LG_ARCH_TOPK, 0.0);
    check_update(LG_ARCH_TOPK, 0.05);
}
static void test_update_batchtopk(void) { check_update(LG_ARCH_BATCHTOPK, 0.05); }
static void test_update_jumprelu(void) { check_update(LG_ARCH_JUMPRELU, 0.05); }
static void test_update_relu(void) { check_update(LG_ARCH_RELU, 0.05); }

CHECK_MAIN(T(test_init), T(test_config_errors), T(test_resume_relu), T(test_resume_topk),
           T(test_resume_batchtopk), T(test_resume_jumprelu), T(test_resume_matryoshka),
           T(test_diverged), T(test_recon_metrics), T(test_synthetic_recovery),
           T(test_update_topk), T(test_update_batchtopk), T(test_update_jumprelu),
           T(test_update_relu))
