/*
 * test_train_multi.c - seed-batched training (train.h, lg_trainer_*_multi)
 * on the CPU backend: S = 3 seeds trained in one trainer must give
 * BIT-IDENTICAL per-step stats, final weights and full states to three
 * single-seed trainers, for all five architectures. Exact equality is the
 * expected outcome, not a tolerance: the CPU gemm_batched is a loop of the
 * same sgemm calls, the row/elementwise ops act on each entry alone, and
 * every per-seed reduction runs alone in its own order (engine/train.c).
 *
 * Also: a frozen seed (non-contiguous spans of active seeds), the
 * all-or-nothing divergence of one seed (named, nothing updated, the others
 * redo the step), per-seed state save/load across single- and multi-seed
 * trainers, and API misuse errors.
 *
 * With a GPU (CUDA backend), test_cuda_batched: the same S = 3 comparison
 * with the parity tolerance of test_cuda_parity.c's training test (cuBLAS may
 * pick other kernels for strided-batched GEMMs than for single ones, so the
 * summation order, and the last bits, may differ), and batched training twice
 * must be bit-identical (determinism on one backend). Without a GPU it skips
 * (CHECK_SKIP; ctest registers it as unit.test_train_multi.test_cuda_batched).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/rng.h"
#include "engine/sae.h"
#include "engine/train.h"
#include "tests/unit/check.h"

#define S 3

static void setup(lg_arch arch, lg_sae_config *cfg, lg_train_config *tc)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->arch = arch;
    cfg->d_in = 16;
    cfg->d_sae = 48;
    cfg->k = 4;
    lg_train_config_default(tc);
    tc->batch = 32;
    tc->steps = 30;
    tc->warmup_steps = 5;
    tc->lr = 3e-3;
    tc->l1_coeff = 0.05;
    tc->l0_coeff = 0.01;
    tc->dead_after = 3 * 32; /* dead latents within the run: AuxK is exercised */
    tc->threshold_beta = 0.9;
    if (arch == LG_ARCH_MATRYOSHKA) {
        tc->n_prefixes = 2;
        tc->prefixes[0] = 8;
        tc->prefixes[1] = 24;
    }
}

/* Sparse non-negative data around an offset, [n, d]: each row sums 3 of 64
 * random unit features (seeded), so latents die and AuxK runs. */
static float *make_data(uint64_t seed, int n, int d)
{
    float *x = malloc((size_t)n * d * sizeof(float)), *f = malloc((size_t)64 * d * sizeof(float));
    lg_rng r;
    int i, j, k;
    lg_rng_init(&r, seed, LG_STREAM_DATA);
    for (i = 0; i < 64 * d; i++)
        f[i] = (float)lg_rng_normal(&r);
    for (i = 0; i < n; i++) {
        for (j = 0; j < d; j++)
            x[(size_t)i * d + j] = 0.5f;
        for (k = 0; k < 3; k++) {
            int fi = (int)lg_rng_below(&r, 64);
            float a = (float)(0.5 + lg_rng_uniform(&r));
            for (j = 0; j < d; j++)
                x[(size_t)i * d + j] += a * f[fi * d + j];
        }
    }
    free(f);
    return x;
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

static int states_equal(const lg_train_state *a, const lg_train_state *b)
{
    int i;
    if (a->count != b->count)
        return 0;
    for (i = 0; i < a->count; i++)
        if (strcmp(a->arrays[i].name, b->arrays[i].name) != 0 ||
            lg_named_array_numel(&a->arrays[i]) != lg_named_array_numel(&b->arrays[i]) ||
            memcmp(a->arrays[i].data, b->arrays[i].data,
                   (size_t)lg_named_array_numel(&a->arrays[i]) * 4) != 0)
            return 0;
    return 1;
}

/* every field, bit for bit (a NaN equals the same NaN) */
static int stats_equal(const lg_step_stats *a, const lg_step_stats *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/* Seed s's batch of step t: rows [(s*steps + t)*B, ...) of x. */
static const float *batch_of(const float *x, const lg_train_config *tc, int d, int s, long t)
{
    return x + ((size_t)s * tc->steps + t) * tc->batch * d;
}

static void init_seeds(const lg_sae_config *cfg, lg_sae_weights *w)
{
    float bdec[16];
    int s, j;
    for (j = 0; j < 16; j++)
        bdec[j] = 0.5f;
    for (s = 0; s < S; s++)
        CHECK_OK(lg_sae_init_weights(cfg, (uint64_t)(101 + s), bdec, &w[s]));
    if (cfg->arch == LG_ARCH_JUMPRELU) /* seed 2 brings its own thresholds, the others the default */
        for (j = 0; j < cfg->d_sae; j++)
            w[2].threshold[j] = 2e-3f * (1 + j % 3);
}

static const lg_backend *eq_be; /* NULL: lg_backend_cpu() (the sparse path for top-k kinds) */

static void check_equivalence(lg_arch arch)
{
    const lg_backend *be = eq_be ? eq_be : lg_backend_cpu();
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init[S] = {{0}}, ws = {0}, wm = {0};
    lg_trainer *single[S] = {NULL}, *multi = NULL;
    lg_train_state ss = {0}, sm = {0};
    lg_step_stats st1, stm[S];
    float *x = NULL, *bufs = NULL;
    double max_dead = 0;
    long t;
    int s, d, mismatched_stats = 0, seeds_differ = 0;
    const char *an = lg_arch_name(arch);

    setup(arch, &cfg, &tc);
    d = cfg.d_in;
    x = make_data(5, S * (int)tc.steps * tc.batch, d);
    bufs = malloc((size_t)S * tc.batch * d * sizeof(float));
    init_seeds(&cfg, init);
    for (s = 0; s < S; s++)
        CHECK_OK(lg_trainer_new(be, &cfg, &tc, &init[s], &single[s]));
    CHECK_OK(lg_trainer_new_multi(be, &cfg, &tc, init, S, &multi));
    if (!multi || !single[0] || !single[1] || !single[2])
        goto out;
    CHECK(lg_trainer_n_seeds(multi) == S);
    for (t = 0; t < tc.steps; t++) {
        for (s = 0; s < S; s++)
            memcpy(bufs + (size_t)s * tc.batch * d, batch_of(x, &tc, d, s, t),
                   (size_t)tc.batch * d * sizeof(float));
        CHECK_OK(lg_trainer_step_multi(multi, bufs, stm));
        for (s = 0; s < S; s++) {
            CHECK_OK(lg_trainer_step(single[s], batch_of(x, &tc, d, s, t), &st1));
            mismatched_stats += !stats_equal(&st1, &stm[s]);
            if (st1.n_dead > max_dead)
                max_dead = st1.n_dead;
        }
    }
    CHECK_MSG(mismatched_stats == 0, "%s: %d per-step stats differ", an, mismatched_stats);
    if (arch == LG_ARCH_TOPK || arch == LG_ARCH_BATCHTOPK || arch == LG_ARCH_MATRYOSHKA)
        CHECK_MSG(max_dead > 0, "%s: AuxK never active", an);
    for (s = 0; s < S; s++) {
        CHECK(lg_trainer_steps_done_multi(multi, s) == tc.steps);
        CHECK_OK(lg_trainer_get_weights(single[s], &ws));
        CHECK_OK(lg_trainer_get_weights_multi(multi, s, &wm));
        CHECK_MSG(weights_equal(&ws, &wm), "%s: seed %d weights differ", an, s);
        CHECK(!weights_equal(&wm, &init[s]));
        if (s > 0) { /* the seeds really are different problems */
            lg_sae_weights w0 = {0};
            CHECK_OK(lg_trainer_get_weights_multi(multi, 0, &w0));
            seeds_differ += !weights_equal(&w0, &wm);
            lg_sae_weights_release(&w0);
        }
        if (arch == LG_ARCH_BATCHTOPK || arch == LG_ARCH_MATRYOSHKA)
            CHECK(wm.threshold[0] > 0);
        CHECK_OK(lg_trainer_save_state(single[s], &ss));
        CHECK_OK(lg_trainer_save_state_multi(multi, s, &sm));
        CHECK_MSG(states_equal(&ss, &sm), "%s: seed %d state differs", an, s);
        lg_train_state_release(&ss);
        lg_train_state_release(&sm);
        lg_sae_weights_release(&ws);
        lg_sae_weights_release(&wm);
    }
    CHECK(seeds_differ == S - 1);
    /* beyond the configured steps, as for one seed */
    CHECK(lg_trainer_step_multi(multi, bufs, NULL) == LG_EINPUT);
out:
    for (s = 0; s < S; s++) {
        lg_trainer_free(single[s]);
        lg_sae_weights_release(&init[s]);
    }
    lg_trainer_free(multi);
    free(x);
    free(bufs);
}

static void test_equal_relu(void) { check_equivalence(LG_ARCH_RELU); }
static void test_equal_topk(void) { check_equivalence(LG_ARCH_TOPK); }
static void test_equal_batchtopk(void) { check_equivalence(LG_ARCH_BATCHTOPK); }
static void test_equal_jumprelu(void) { check_equivalence(LG_ARCH_JUMPRELU); }
static void test_equal_matryoshka(void) { check_equivalence(LG_ARCH_MATRYOSHKA); }
/* the same on the dense reference path (the CPU backend without its sparse ops) */
static void test_equal_dense(void)
{
    eq_be = lg_backend_cpu_dense();
    CHECK(eq_be->topk_rows_csr == NULL && lg_backend_cpu()->topk_rows_csr != NULL);
    check_equivalence(LG_ARCH_TOPK);
    check_equivalence(LG_ARCH_BATCHTOPK);
    check_equivalence(LG_ARCH_MATRYOSHKA);
    eq_be = NULL;
}

/* Seed 1 diverges at step D (a NaN in its batch): LG_EDIVERGED naming seed 1
 * and no seed updated; frozen, the others redo the step and go on, equal to
 * single-seed runs; seed 1 stays as it was after D steps (non-contiguous
 * active spans [0,1) and [2,3) from then on). */
static void test_diverged_seed(void)
{
    const long D = 6;
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init[S] = {{0}}, before[S] = {{0}}, w = {0}, ref = {0};
    lg_trainer *multi = NULL, *one = NULL;
    lg_step_stats stm[S];
    float *x = NULL, *bufs = NULL;
    long t;
    int s, d, err;

    setup(LG_ARCH_BATCHTOPK, &cfg, &tc);
    d = cfg.d_in;
    x = make_data(7, S * (int)tc.steps * tc.batch, d);
    bufs = malloc((size_t)S * tc.batch * d * sizeof(float));
    init_seeds(&cfg, init);
    CHECK_OK(lg_trainer_new_multi(lg_backend_cpu(), &cfg, &tc, init, S, &multi));
    if (!multi)
        goto out;
    for (t = 0; t < tc.steps; t++) {
        for (s = 0; s < S; s++)
            memcpy(bufs + (size_t)s * tc.batch * d, batch_of(x, &tc, d, s, t),
                   (size_t)tc.batch * d * sizeof(float));
        if (t == D) {
            bufs[(size_t)1 * tc.batch * d + 7] = NAN;
            for (s = 0; s < S; s++)
                CHECK_OK(lg_trainer_get_weights_multi(multi, s, &before[s]));
            err = lg_trainer_step_multi(multi, bufs, stm);
            CHECK(err == LG_EDIVERGED && lg_trainer_diverged_seed(multi) == 1);
            CHECK_MSG(strcmp(lg_error_msg(), "seed 1: training diverged at step 7: loss is NaN") == 0,
                      "message: %s", lg_error_msg());
            CHECK(isnan(stm[1].loss) && isfinite(stm[0].loss) && isfinite(stm[2].loss));
            for (s = 0; s < S; s++) {
                CHECK(lg_trainer_steps_done_multi(multi, s) == D);
                CHECK_OK(lg_trainer_get_weights_multi(multi, s, &w));
                CHECK_MSG(weights_equal(&w, &before[s]), "seed %d changed by a diverged step", s);
                lg_sae_weights_release(&w);
            }
            CHECK_OK(lg_trainer_set_active(multi, 1, 0));
        }
        CHECK_OK(lg_trainer_step_multi(multi, bufs, stm));
        CHECK(lg_trainer_diverged_seed(multi) == -1);
        if (t >= D)
            CHECK(stm[1].loss == 0 && stm[1].step == D); /* frozen: zeroed stats */
    }
    CHECK(lg_trainer_steps_done_multi(multi, 1) == D && lg_trainer_steps_done_multi(multi, 0) == tc.steps);
    /* the frozen seed is exactly its state after D steps */
    CHECK_OK(lg_trainer_get_weights_multi(multi, 1, &w));
    CHECK(weights_equal(&w, &before[1]));
    lg_sae_weights_release(&w);
    /* the live seeds equal single-seed runs on their own batches */
    for (s = 0; s < S; s += 2) {
        lg_trainer_free(one);
        one = NULL;
        CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init[s], &one));
        for (t = 0; one && t < tc.steps; t++)
            CHECK_OK(lg_trainer_step(one, batch_of(x, &tc, d, s, t), NULL));
        CHECK_OK(lg_trainer_get_weights(one, &ref));
        CHECK_OK(lg_trainer_get_weights_multi(multi, s, &w));
        CHECK_MSG(weights_equal(&w, &ref), "live seed %d differs from its single-seed run", s);
        lg_sae_weights_release(&w);
        lg_sae_weights_release(&ref);
    }
    /* re-activated, seed 1 is behind the others: refused */
    CHECK_OK(lg_trainer_set_active(multi, 1, 1));
    CHECK(lg_trainer_step_multi(multi, bufs, NULL) == LG_EINPUT && strstr(lg_error_msg(), "different steps"));
out:
    for (s = 0; s < S; s++) {
        lg_sae_weights_release(&init[s]);
        lg_sae_weights_release(&before[s]);
    }
    lg_trainer_free(multi);
    lg_trainer_free(one);
    free(x);
    free(bufs);
}

/* The single-seed message is unchanged by seed batching. */
static void test_diverged_single_message(void)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init = {0};
    lg_trainer *t = NULL;
    float *x;
    setup(LG_ARCH_TOPK, &cfg, &tc);
    x = make_data(9, tc.batch, cfg.d_in);
    x[3] = INFINITY;
    CHECK_OK(lg_sae_init_weights(&cfg, 1, NULL, &init));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init, &t));
    if (t) {
        CHECK(lg_trainer_step(t, x, NULL) == LG_EDIVERGED);
        CHECK_MSG(strncmp(lg_error_msg(), "training diverged at step 1: loss is ", 37) == 0, "message: %s",
                  lg_error_msg());
        CHECK(lg_trainer_diverged_seed(t) == 0);
    }
    lg_trainer_free(t);
    lg_sae_weights_release(&init);
    free(x);
}

/* Seed 2's state saved from a multi trainer after N steps resumes in a
 * single-seed trainer (and a single-seed state resumes as seed 0 of a multi
 * trainer): both equal straight-through training. */
static void test_state_across(void)
{
    const long N = 12;
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init[S] = {{0}}, wa = {0}, wb = {0};
    lg_trainer *multi = NULL, *one = NULL, *multi2 = NULL, *ref = NULL;
    lg_train_state st = {0};
    float *x = NULL, *bufs = NULL;
    long t;
    int s, d;

    setup(LG_ARCH_MATRYOSHKA, &cfg, &tc);
    d = cfg.d_in;
    x = make_data(11, S * (int)tc.steps * tc.batch, d);
    bufs = calloc((size_t)S * tc.batch * d, sizeof(float));
    init_seeds(&cfg, init);
    CHECK_OK(lg_trainer_new_multi(lg_backend_cpu(), &cfg, &tc, init, S, &multi));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init[0], &one));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init[2], &ref));
    if (!multi || !one || !ref)
        goto out;
    for (t = 0; t < N; t++) {
        for (s = 0; s < S; s++)
            memcpy(bufs + (size_t)s * tc.batch * d, batch_of(x, &tc, d, s, t),
                   (size_t)tc.batch * d * sizeof(float));
        CHECK_OK(lg_trainer_step_multi(multi, bufs, NULL));
        CHECK_OK(lg_trainer_step(one, batch_of(x, &tc, d, 0, t), NULL));
    }
    /* multi seed 2 -> a fresh single-seed trainer (built from other init weights) */
    CHECK_OK(lg_trainer_save_state_multi(multi, 2, &st));
    {
        lg_trainer *fresh = NULL;
        CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init[1], &fresh));
        if (fresh) {
            CHECK_OK(lg_trainer_load_state(fresh, &st));
            CHECK(lg_trainer_steps_done(fresh) == N);
            for (t = 0; t < tc.steps; t++)
                CHECK_OK(lg_trainer_step(ref, batch_of(x, &tc, d, 2, t), NULL));
            for (t = N; t < tc.steps; t++)
                CHECK_OK(lg_trainer_step(fresh, batch_of(x, &tc, d, 2, t), NULL));
            CHECK_OK(lg_trainer_get_weights(ref, &wa));
            CHECK_OK(lg_trainer_get_weights(fresh, &wb));
            CHECK_MSG(weights_equal(&wa, &wb), "multi seed 2 -> single: resumed weights differ");
            lg_sae_weights_release(&wa);
            lg_sae_weights_release(&wb);
        }
        lg_trainer_free(fresh);
    }
    lg_train_state_release(&st);
    /* single (seed 0 after N) -> seed 0 of a new multi trainer; its seeds 1, 2
     * are brought to step N from the first trainer's states */
    CHECK_OK(lg_trainer_new_multi(lg_backend_cpu(), &cfg, &tc, init, S, &multi2));
    if (!multi2)
        goto out;
    CHECK_OK(lg_trainer_save_state(one, &st));
    CHECK_OK(lg_trainer_load_state_multi(multi2, 0, &st));
    lg_train_state_release(&st);
    CHECK(lg_trainer_step_multi(multi2, bufs, NULL) == LG_EINPUT); /* seeds at steps N, 0, 0 */
    for (s = 1; s < S; s++) {
        CHECK_OK(lg_trainer_save_state_multi(multi, s, &st));
        CHECK_OK(lg_trainer_load_state_multi(multi2, s, &st));
        lg_train_state_release(&st);
    }
    for (t = N; t < tc.steps; t++) {
        for (s = 0; s < S; s++)
            memcpy(bufs + (size_t)s * tc.batch * d, batch_of(x, &tc, d, s, t),
                   (size_t)tc.batch * d * sizeof(float));
        CHECK_OK(lg_trainer_step_multi(multi, bufs, NULL));
        CHECK_OK(lg_trainer_step_multi(multi2, bufs, NULL));
    }
    for (s = 0; s < S; s++) {
        CHECK_OK(lg_trainer_get_weights_multi(multi, s, &wa));
        CHECK_OK(lg_trainer_get_weights_multi(multi2, s, &wb));
        CHECK_MSG(weights_equal(&wa, &wb), "seed %d: resumed multi trainer differs", s);
        lg_sae_weights_release(&wa);
        lg_sae_weights_release(&wb);
    }
out:
    for (s = 0; s < S; s++)
        lg_sae_weights_release(&init[s]);
    lg_train_state_release(&st);
    lg_trainer_free(multi);
    lg_trainer_free(multi2);
    lg_trainer_free(one);
    lg_trainer_free(ref);
    free(x);
    free(bufs);
}

static void test_misuse(void)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init[S] = {{0}}, w = {0};
    lg_trainer *t = NULL;
    lg_train_state st = {0};
    float *x;
    int s;
    setup(LG_ARCH_TOPK, &cfg, &tc);
    x = make_data(13, S * tc.batch, cfg.d_in);
    init_seeds(&cfg, init);
    CHECK(lg_trainer_new_multi(lg_backend_cpu(), &cfg, &tc, init, 0, &t) == LG_EINPUT && !t);
    init[1].d_in = 8; /* a seed of the wrong shape */
    CHECK(lg_trainer_new_multi(lg_backend_cpu(), &cfg, &tc, init, S, &t) == LG_EINPUT && !t);
    init[1].d_in = cfg.d_in;
    CHECK_OK(lg_trainer_new_multi(lg_backend_cpu(), &cfg, &tc, init, S, &t));
    if (t) {
        CHECK(lg_trainer_step(t, x, NULL) == LG_EINPUT && strstr(lg_error_msg(), "_multi"));
        CHECK(lg_trainer_compute_grads(t, x, NULL) == LG_EINPUT);
        CHECK(lg_trainer_set_active(t, S, 0) == LG_EINPUT);
        CHECK(lg_trainer_get_weights_multi(t, -1, &w) == LG_EINPUT && !w.W_enc);
        CHECK(lg_trainer_save_state_multi(t, S, &st) == LG_EINPUT && st.count == 0);
        CHECK(lg_trainer_get_grads_multi(t, 0, &w) == LG_EINTERNAL); /* none computed */
        CHECK_OK(lg_trainer_compute_grads_multi(t, x, NULL));
        CHECK_OK(lg_trainer_get_grads_multi(t, 2, &w));
        lg_sae_weights_release(&w);
        CHECK(lg_trainer_steps_done_multi(t, 0) == 0); /* gradients alone change nothing */
        /* all seeds frozen: a step is a no-op */
        for (s = 0; s < S; s++)
            CHECK_OK(lg_trainer_set_active(t, s, 0));
        CHECK_OK(lg_trainer_step_multi(t, x, NULL));
        CHECK(lg_trainer_steps_done_multi(t, 1) == 0);
        CHECK(lg_trainer_bytes_per_seed(&cfg, &tc) > 4.0 * 4 * cfg.d_in * cfg.d_sae);
    }
    lg_trainer_free(t);
    for (s = 0; s < S; s++)
        lg_sae_weights_release(&init[s]);
    free(x);
}

/* Seeds 101..103 of cfg trained `steps` steps on backend be: all together
 * (multi) or one trainer each; w [S] and loss [S] of the last step. */
static int train_seeds(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc,
                       const float *x, int together, lg_sae_weights *w, double *loss)
{
    lg_sae_weights init[S] = {{0}};
    lg_trainer *t[S] = {NULL};
    lg_step_stats st[S];
    float *bufs = malloc((size_t)S * tc->batch * cfg->d_in * sizeof(float));
    const size_t Bd = (size_t)tc->batch * cfg->d_in;
    long step;
    int s, err = 0;
    init_seeds(cfg, init);
    if (together)
        err = lg_trainer_new_multi(be, cfg, tc, init, S, &t[0]);
    for (s = 0; !together && s < S && err >= 0; s++)
        err = lg_trainer_new(be, cfg, tc, &init[s], &t[s]);
    for (step = 0; err >= 0 && step < tc->steps; step++) {
        for (s = 0; s < S; s++)
            memcpy(bufs + s * Bd, batch_of(x, tc, cfg->d_in, s, step), Bd * sizeof(float));
        if (together)
            err = lg_trainer_step_multi(t[0], bufs, st);
        for (s = 0; !together && s < S && err >= 0; s++)
            err = lg_trainer_step(t[s], bufs + s * Bd, &st[s]);
    }
    for (s = 0; err >= 0 && s < S; s++) {
        err = together ? lg_trainer_get_weights_multi(t[0], s, &w[s]) : lg_trainer_get_weights(t[s], &w[s]);
        loss[s] = st[s].loss;
    }
    for (s = 0; s < S; s++) {
        lg_trainer_free(t[s]);
        lg_sae_weights_release(&init[s]);
    }
    free(bufs);
    return err;
}

static double max_rel(const float *a, const float *b, size_t n, double atol)
{
    double worst = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (atol + fabs((double)b[i]));
        if (!(e <= worst))
            worst = e; /* NaN propagates */
    }
    return worst;
}

static void test_cuda_batched(void)
{
    static const lg_arch archs[] = {LG_ARCH_RELU, LG_ARCH_TOPK, LG_ARCH_BATCHTOPK, LG_ARCH_JUMPRELU,
                                    LG_ARCH_MATRYOSHKA};
    const lg_backend *gpu = lg_backend_cuda();
    size_t a;
    if (!gpu)
        CHECK_SKIP("no GPU (test_cuda_batched)");
    for (a = 0; a < sizeof(archs) / sizeof(archs[0]); a++) {
        lg_sae_config cfg;
        lg_train_config tc;
        lg_sae_weights ws[S] = {{0}}, wm[S] = {{0}}, wm2[S] = {{0}};
        double ls[S], lm[S], lm2[S], wd = 0, we = 0, ld = 0;
        float *x;
        int s, same = 1;
        setup(archs[a], &cfg, &tc);
        tc.steps = 20;
        x = make_data(17, S * (int)tc.steps * tc.batch, cfg.d_in);
        CHECK_OK(train_seeds(gpu, &cfg, &tc, x, 0, ws, ls));
        CHECK_OK(train_seeds(gpu, &cfg, &tc, x, 1, wm, lm));
        CHECK_OK(train_seeds(gpu, &cfg, &tc, x, 1, wm2, lm2));
        for (s = 0; s < S && ws[s].W_dec && wm[s].W_dec && wm2[s].W_dec; s++) {
            size_t dm = (size_t)cfg.d_in * cfg.d_sae;
            double e1 = max_rel(wm[s].W_dec, ws[s].W_dec, dm, 2e-3),
                   e2 = max_rel(wm[s].W_enc, ws[s].W_enc, dm, 2e-3),
                   e3 = fabs(lm[s] - ls[s]) / fabs(ls[s]);
            wd = e1 > wd || e1 != e1 ? e1 : wd;
            we = e2 > we || e2 != e2 ? e2 : we;
            ld = e3 > ld || e3 != e3 ? e3 : ld;
            same &= weights_equal(&wm[s], &wm2[s]) && lm[s] == lm2[s];
        }
        fprintf(stderr, "  cuda batched vs sequential %s: max rel diff W_dec %.3g W_enc %.3g loss %.3g%s\n",
                lg_arch_name(archs[a]), wd, we, ld, wd == 0 && we == 0 && ld == 0 ? " (bit-identical)" : "");
        CHECK_MSG(s == S, "%s: training failed", lg_arch_name(archs[a]));
        CHECK_MSG(wd <= 2e-3 && we <= 2e-3, "%s: batched weights differ beyond tolerance", lg_arch_name(archs[a]));
        CHECK_MSG(ld <= 1e-3, "%s: batched losses differ by %.3g relative", lg_arch_name(archs[a]), ld);
        CHECK_MSG(same, "%s: batched GPU training is not deterministic", lg_arch_name(archs[a]));
        for (s = 0; s < S; s++) {
            lg_sae_weights_release(&ws[s]);
            lg_sae_weights_release(&wm[s]);
            lg_sae_weights_release(&wm2[s]);
        }
        free(x);
    }
}

CHECK_MAIN(T(test_equal_relu), T(test_equal_topk), T(test_equal_batchtopk), T(test_equal_jumprelu),
           T(test_equal_matryoshka), T(test_equal_dense), T(test_diverged_seed), T(test_diverged_single_message),
           T(test_state_across), T(test_misuse), T(test_cuda_batched))
