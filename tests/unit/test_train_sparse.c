/*
 * test_train_sparse.c - the CPU backend's sparse training path (backend.h
 * "sparse activations", engine/backend_cpu_sparse.c) against the dense
 * reference path (lg_backend_cpu_dense(): the same backend without the
 * sparse ops):
 *  - every sparse op on random inputs with ties: the selections EXACTLY equal
 *    to the dense topk_rows / topk_batch (same set, same values, same
 *    min_kept), CSR/CSC well formed; gather, row dots, scatters and column
 *    sums against float64 loops;
 *  - TopK, BatchTopK and Matryoshka, with AuxK active: the loss terms and
 *    every gradient of one step agree with the dense path within float
 *    tolerance, and so do the weights after a few training steps;
 *  - training is bit-identical run to run and at 1, 2 and 3 threads
 *    (lg_backend_cpu_set_threads), at a size where a multi-threaded OpenBLAS
 *    sgemm gives different bits at 1 and 3 threads (256 x 512 x 64): the
 *    backend cuts GEMMs into blocks fixed by the shape instead.
 * Multi-seed = single-seed on both paths: test_train_multi.c.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/backend.h"
#include "base/rng.h"
#include "engine/sae.h"
#include "engine/train.h"
#include "tests/unit/check.h"

static lg_rng rng;

/* normal entries; quant > 0 rounds them to multiples of quant (ties) */
static float *randn(size_t n, double quant)
{
    float *x = malloc(n * sizeof(float));
    size_t i;
    for (i = 0; i < n; i++) {
        double v = lg_rng_normal(&rng);
        x[i] = (float)(quant > 0 ? quant * floor(v / quant + 0.5) : v);
    }
    return x;
}

/* CSR well formed: ptr from 0, non-decreasing, at most per_row per row
 * (per_row < 0: any), columns ascending inside a row, values != 0. */
static int csr_ok(const int32_t *ptr, const int32_t *idx, const float *val, int rows, int cols,
                  int per_row)
{
    int r;
    if (ptr[0] != 0)
        return 0;
    for (r = 0; r < rows; r++) {
        int32_t e;
        if (ptr[r + 1] < ptr[r] || (per_row >= 0 && ptr[r + 1] - ptr[r] > per_row))
            return 0;
        for (e = ptr[r]; e < ptr[r + 1]; e++)
            if (idx[e] < 0 || idx[e] >= cols || val[e] == 0.0f || (e > ptr[r] && idx[e] <= idx[e - 1]))
                return 0;
    }
    return 1;
}

static void csr_to_dense(const int32_t *ptr, const int32_t *idx, const float *val, int rows,
                         int cols, float *out)
{
    int r;
    memset(out, 0, (size_t)rows * cols * sizeof(float));
    for (r = 0; r < rows; r++) {
        int32_t e;
        for (e = ptr[r]; e < ptr[r + 1]; e++)
            out[(size_t)r * cols + idx[e]] = val[e];
    }
}

static void test_selections(void)
{
    const lg_backend *be = lg_backend_cpu(), *dn = lg_backend_cpu_dense();
    /* rows, cols, k, tie quantum, mask */
    static const struct { int rows, cols, k; double quant; int mask; } cs[] = {
        {40, 64, 8, 0, 0},   {40, 64, 8, 0.5, 0}, {40, 64, 8, 0.25, 1}, {17, 100, 32, 1.0, 0},
        {9, 30, 30, 0, 0},   {9, 30, 45, 0.5, 1}, {33, 257, 7, 0.125, 0}, {5, 16, 1, 1.0, 0},
        {64, 1024, 32, 0, 0}, {64, 1024, 32, 0.05, 1}};
    size_t ci;
    int total_ties = 0;
    lg_rng_init(&rng, 17, LG_STREAM_DATA);
    CHECK(be->topk_rows_csr && be->topk_batch_csr && be->csr_transpose && be->csr_gather_rows &&
          be->csr_row_dots && be->csc_scatter_rows && be->csc_val_sum && be->csc_fired_update);
    CHECK(dn->topk_rows_csr == NULL && dn->csc_fired_update == NULL && dn->gemm == be->gemm);
    for (ci = 0; ci < sizeof(cs) / sizeof(cs[0]); ci++) {
        const int rows = cs[ci].rows, cols = cs[ci].cols, k = cs[ci].k;
        const size_t n = (size_t)rows * cols;
        float *pre = randn(n, cs[ci].quant), *mask = NULL, *ad = malloc(n * sizeof(float)),
              *as = malloc(n * sizeof(float));
        int32_t *ptr = malloc((size_t)(rows + 1) * 4), *idx = malloc(n * 4);
        float *val = malloc(n * sizeof(float)), mk_d = 0, mk_s = 0;
        long long nnz = -1;
        size_t keep, q;
        int r, c;
        for (c = 0; c < cols; c++) /* one all-negative row: nothing to keep there */
            pre[c] = -1.0f - (float)c;
        if (cs[ci].mask) {
            mask = malloc((size_t)cols * sizeof(float));
            for (c = 0; c < cols; c++)
                mask[c] = (c % 3) != 1;
        }
        for (r = 1; r < rows; r++) /* count ties at the selection boundary */
            for (c = 0; c + 1 < cols; c++)
                total_ties += pre[(size_t)r * cols + c] > 0 &&
                              pre[(size_t)r * cols + c] == pre[(size_t)r * cols + c + 1];
        CHECK_OK(dn->topk_rows(dn, pre, mask, ad, rows, cols, k));
        CHECK_OK(be->topk_rows_csr(be, pre, mask, rows, cols, k, ptr, idx, val, &nnz));
        CHECK_MSG(csr_ok(ptr, idx, val, rows, cols, k), "case %zu: topk_rows_csr CSR malformed", ci);
        csr_to_dense(ptr, idx, val, rows, cols, as);
        CHECK_MSG(memcmp(ad, as, n * sizeof(float)) == 0, "case %zu: topk_rows_csr != topk_rows", ci);
        for (q = 0, r = 0; q < n; q++)
            r += ad[q] != 0.0f;
        CHECK(nnz == r && nnz == ptr[rows] && ptr[1] == 0);
        /* batch top-k at several budgets, incl. more than the positives */
        for (keep = 1; keep <= n + 1; keep = keep * 3 + 1) {
            CHECK_OK(dn->topk_batch(dn, pre, ad, n, keep, &mk_d));
            CHECK_OK(be->topk_batch_csr(be, pre, rows, cols, keep, ptr, idx, val, &nnz, &mk_s));
            CHECK_MSG(csr_ok(ptr, idx, val, rows, cols, -1) && nnz == ptr[rows] && (size_t)nnz <= keep,
                      "case %zu keep %zu: batch CSR malformed", ci, keep);
            csr_to_dense(ptr, idx, val, rows, cols, as);
            CHECK_MSG(memcmp(ad, as, n * sizeof(float)) == 0 && mk_d == mk_s,
                      "case %zu keep %zu: topk_batch_csr != topk_batch (min %g vs %g)", ci, keep,
                      (double)mk_s, (double)mk_d);
        }
        free(pre);
        free(mask);
        free(ad);
        free(as);
        free(ptr);
        free(idx);
        free(val);
    }
    CHECK_MSG(total_ties > 100, "ties exercised: %d", total_ties);
}

/* gather, row dots, both scatters, column sums, the clock: against float64 */
static void test_linear_ops(void)
{
    const lg_backend *be = lg_backend_cpu(), *dn = lg_backend_cpu_dense();
    const int rows = 50, cols = 70, d = 19, k = 9, lo = 11, hi = 53;
    float *pre = randn((size_t)rows * cols, 0), *W = randn((size_t)cols * d, 0),
          *R = randn((size_t)rows * d, 0), *acts = malloc((size_t)rows * cols * sizeof(float));
    int32_t ptr[51], idx[50 * 9], tptr[71], trow[50 * 9], tent[50 * 9];
    float val[50 * 9], out[50 * 19], dots[50 * 9], sc[70 * 19], scT[19 * 70], vs[70], vd[70];
    float since_s[70], since_d[70];
    long long nnz;
    int r, c, j, e, bad = 0, t;
    for (r = 0; r < rows; r++) /* latents 5 and 60 never fire */
        pre[r * cols + 5] = pre[r * cols + 60] = -1.0f;
    CHECK_OK(be->topk_rows_csr(be, pre, NULL, rows, cols, k, ptr, idx, val, &nnz));
    CHECK_OK(be->csr_transpose(be, ptr, idx, rows, cols, tptr, trow, tent));
    /* CSC: every entry once, rows ascending within a column */
    CHECK(tptr[0] == 0 && tptr[cols] == nnz);
    for (j = 0; j < cols; j++)
        for (t = tptr[j]; t < tptr[j + 1]; t++)
            bad += idx[tent[t]] != j || tent[t] < ptr[trow[t]] || tent[t] >= ptr[trow[t] + 1] ||
                   (t > tptr[j] && trow[t] <= trow[t - 1]);
    CHECK_MSG(bad == 0, "csr_transpose: %d bad entries", bad);
    for (r = 0; r < rows * d; r++)
        out[r] = 0.5f;
    for (e = 0; e < nnz; e++)
        dots[e] = 2.0f;
    CHECK_OK(be->csr_gather_rows(be, ptr, idx, val, rows, lo, hi, W, d, out));
    CHECK_OK(be->csr_row_dots(be, ptr, idx, rows, lo, hi, R, W, d, 0.75f, 0.5f, dots));
    for (r = 0, bad = 0; r < rows; r++) {
        for (c = 0; c < d; c++) {
            double ref = 0.5;
            for (e = ptr[r]; e < ptr[r + 1]; e++)
                if (idx[e] >= lo && idx[e] < hi)
                    ref += (double)val[e] * W[(size_t)idx[e] * d + c];
            bad += !(fabs(out[r * d + c] - ref) <= 1e-5 * (1 + fabs(ref)));
        }
        for (e = ptr[r]; e < ptr[r + 1]; e++) {
            double ref = 0.0;
            for (c = 0; c < d; c++)
                ref += (double)R[r * d + c] * W[(size_t)idx[e] * d + c];
            ref = idx[e] >= lo && idx[e] < hi ? 1.0 + 0.75 * ref : 2.0; /* outside: untouched */
            bad += !(fabs(dots[e] - ref) <= 1e-5 * (1 + fabs(ref)));
        }
    }
    CHECK_MSG(bad == 0, "gather / row dots: %d entries off", bad);
    /* scatter, decoder layout [cols, d] (accumulating) and encoder layout [d, cols] */
    for (j = 0; j < cols * d; j++) {
        sc[j] = 1.0f;
        scT[j] = 7.0f;
    }
    CHECK_OK(be->csc_scatter_rows(be, tptr, trow, tent, val, lo, hi, R, d, 0.5f, 2.0f, sc, d, 1));
    CHECK_OK(be->csc_scatter_rows(be, tptr, trow, tent, val, 0, cols, R, d, -1.0f, 0.0f, scT, 1, cols));
    for (j = 0, bad = 0; j < cols; j++)
        for (c = 0; c < d; c++) {
            double acc = 0.0;
            for (r = 0; r < rows; r++)
                for (e = ptr[r]; e < ptr[r + 1]; e++)
                    if (idx[e] == j)
                        acc += (double)val[e] * R[r * d + c];
            bad += !(fabs(sc[j * d + c] - (j >= lo && j < hi ? 2.0 + 0.5 * acc : 1.0)) <= 1e-5 * (1 + fabs(acc)));
            bad += !(fabs(scT[c * cols + j] + acc) <= 1e-5 * (1 + fabs(acc)));
        }
    CHECK_MSG(bad == 0, "csc_scatter_rows: %d entries off", bad);
    /* column sums and the dead-latent clock: exactly the dense ops on the dense matrix */
    csr_to_dense(ptr, idx, val, rows, cols, acts);
    for (j = 0; j < cols; j++) {
        vs[j] = vd[j] = (float)j;
        since_s[j] = since_d[j] = (float)(j % 4);
    }
    CHECK_OK(be->csc_val_sum(be, tptr, tent, val, cols, 0.25f, 1.0f, vs));
    CHECK_OK(dn->col_sum(dn, acts, rows, cols, 0.25f, 1.0f, vd));
    CHECK(memcmp(vs, vd, sizeof(vs)) == 0);
    CHECK_OK(be->csc_fired_update(be, tptr, cols, since_s));
    CHECK_OK(dn->fired_update(dn, acts, rows, cols, since_d));
    CHECK(memcmp(since_s, since_d, sizeof(since_s)) == 0);
    for (j = 0, c = 0; j < cols; j++)
        c += tptr[j + 1] == tptr[j];
    CHECK_MSG(c > 0, "no latent without entries: the clock's other branch is untested");
    free(pre);
    free(W);
    free(R);
    free(acts);
}

/* ---- training ------------------------------------------------------------- */

static void setup(lg_arch arch, int d, int m, int k, int B, lg_sae_config *cfg, lg_train_config *tc)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->arch = arch;
    cfg->d_in = d;
    cfg->d_sae = m;
    cfg->k = k;
    lg_train_config_default(tc);
    tc->batch = B;
    tc->steps = 12;
    tc->warmup_steps = 3;
    tc->lr = 3e-3;
    tc->dead_after = 2.0 * B; /* latents die within the run: AuxK runs */
    tc->threshold_beta = 0.9;
    if (arch == LG_ARCH_MATRYOSHKA) {
        tc->n_prefixes = 2;
        tc->prefixes[0] = m / 8;
        tc->prefixes[1] = m / 3;
    }
}

/* rows = sums of 3 of 64 random directions (non-negative offset), [n, d] */
static float *make_data(uint64_t seed, int n, int d)
{
    float *x = malloc((size_t)n * d * sizeof(float)), *f = malloc((size_t)64 * d * sizeof(float));
    lg_rng r;
    int i, j, q;
    lg_rng_init(&r, seed, LG_STREAM_DATA);
    for (i = 0; i < 64 * d; i++)
        f[i] = (float)lg_rng_normal(&r);
    for (i = 0; i < n; i++) {
        for (j = 0; j < d; j++)
            x[(size_t)i * d + j] = 0.3f;
        for (q = 0; q < 3; q++) {
            int fi = (int)lg_rng_below(&r, 64);
            float a = (float)(0.5 + lg_rng_uniform(&r));
            for (j = 0; j < d; j++)
                x[(size_t)i * d + j] += a * f[fi * d + j];
        }
    }
    free(f);
    return x;
}

static void set_dead_every_third(lg_trainer *t, int m)
{
    lg_train_state st = {0};
    int i, j;
    CHECK_OK(lg_trainer_save_state(t, &st));
    for (i = 0; i < st.count; i++)
        if (strcmp(st.arrays[i].name, "steps_since_fired") == 0)
            for (j = 0; j < m; j++)
                st.arrays[i].data[j] = j % 3 == 0 ? 1000.0f : 0.0f;
    CHECK_OK(lg_trainer_load_state(t, &st));
    lg_train_state_release(&st);
}

/* max |a-b| over n entries, relative to max |b| (the tensor's scale) */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        double dd = fabs((double)a[i] - b[i]);
        md = dd > md || isnan(dd) ? dd : md;
        mb = fabs(b[i]) > mb ? fabs(b[i]) : mb;
    }
    return mb > 0 ? md / mb : md;
}

static double weights_rel_diff(const lg_sae_weights *a, const lg_sae_weights *b, const char **which)
{
    const size_t dm = (size_t)a->d_in * a->d_sae;
    double r[4] = {rel_diff(a->W_enc, b->W_enc, dm), rel_diff(a->b_enc, b->b_enc, a->d_sae),
                   rel_diff(a->W_dec, b->W_dec, dm), rel_diff(a->b_dec, b->b_dec, a->d_in)};
    static const char *const names[4] = {"W_enc", "b_enc", "W_dec", "b_dec"};
    double mx = -1;
    int i;
    for (i = 0; i < 4; i++)
        if (!(r[i] <= mx)) {
            mx = r[i];
            *which = names[i];
        }
    return mx;
}

static void check_vs_dense(lg_arch arch)
{
    const char *an = lg_arch_name(arch);
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init = {0}, gs = {0}, gd = {0}, ws = {0}, wd = {0};
    lg_trainer *ts = NULL, *td = NULL;
    lg_step_stats ss, sd;
    float *x;
    const char *which = "";
    double diff, max_dead = 0;
    int s;
    setup(arch, 24, 96, 6, 64, &cfg, &tc);
    x = make_data(3, (int)tc.steps * tc.batch, cfg.d_in);
    CHECK_OK(lg_sae_init_weights(&cfg, 7, NULL, &init));
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init, &ts));
    CHECK_OK(lg_trainer_new(lg_backend_cpu_dense(), &cfg, &tc, &init, &td));
    if (!ts || !td)
        goto out;
    /* one step's loss and gradients, AuxK on a third of the latents */
    set_dead_every_third(ts, cfg.d_sae);
    set_dead_every_third(td, cfg.d_sae);
    CHECK_OK(lg_trainer_compute_grads(ts, x, &ss));
    CHECK_OK(lg_trainer_compute_grads(td, x, &sd));
    CHECK_MSG(ss.aux > 0 && ss.n_dead == 32, "%s: AuxK not active (aux %g, dead %g)", an, ss.aux, ss.n_dead);
    CHECK(ss.l0 == sd.l0 && ss.n_dead == sd.n_dead); /* same selection */
    CHECK_CLOSE(ss.loss, sd.loss, 1e-9, 1e-6);
    CHECK_CLOSE(ss.mse, sd.mse, 1e-9, 1e-6);
    CHECK_CLOSE(ss.recon, sd.recon, 1e-9, 1e-6);
    CHECK_CLOSE(ss.aux, sd.aux, 1e-9, 1e-6);
    CHECK_OK(lg_trainer_get_grads(ts, &gs));
    CHECK_OK(lg_trainer_get_grads(td, &gd));
    if (gs.W_enc && gd.W_enc) {
        diff = weights_rel_diff(&gs, &gd, &which);
        CHECK_MSG(diff < 1e-5, "%s: gradient %s differs from the dense path by %g of its scale", an,
                  which, diff);
        CHECK(rel_diff(gd.W_dec, init.W_dec, (size_t)cfg.d_in * cfg.d_sae) > 0); /* not vacuous */
    }
    /* a few training steps from the same start: the same trajectory within float noise */
    lg_trainer_free(ts);
    lg_trainer_free(td);
    ts = td = NULL;
    CHECK_OK(lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init, &ts));
    CHECK_OK(lg_trainer_new(lg_backend_cpu_dense(), &cfg, &tc, &init, &td));
    for (s = 0; ts && td && s < tc.steps; s++) {
        const float *xb = x + (size_t)s * tc.batch * cfg.d_in;
        CHECK_OK(lg_trainer_step(ts, xb, &ss));
        CHECK_OK(lg_trainer_step(td, xb, &sd));
        CHECK_CLOSE(ss.loss, sd.loss, 1e-7, 1e-4);
        if (ss.n_dead > max_dead)
            max_dead = ss.n_dead;
    }
    CHECK_MSG(max_dead > 0, "%s: no latent died during training: AuxK untested", an);
    CHECK_OK(lg_trainer_get_weights(ts, &ws));
    CHECK_OK(lg_trainer_get_weights(td, &wd));
    if (ws.W_enc && wd.W_enc) {
        diff = weights_rel_diff(&ws, &wd, &which);
        CHECK_MSG(diff < 1e-4, "%s: after %ld steps %s differs from the dense path by %g", an,
                  tc.steps, which, diff);
        CHECK(rel_diff(ws.W_enc, init.W_enc, (size_t)cfg.d_in * cfg.d_sae) > 1e-3); /* it trained */
        if (arch != LG_ARCH_TOPK)
            CHECK_CLOSE(ws.threshold[0], wd.threshold[0], 1e-7, 1e-4);
    }
out:
    lg_sae_weights_release(&init);
    lg_sae_weights_release(&gs);
    lg_sae_weights_release(&gd);
    lg_sae_weights_release(&ws);
    lg_sae_weights_release(&wd);
    lg_trainer_free(ts);
    lg_trainer_free(td);
    free(x);
}

static void test_topk_vs_dense(void) { check_vs_dense(LG_ARCH_TOPK); }
static void test_batchtopk_vs_dense(void) { check_vs_dense(LG_ARCH_BATCHTOPK); }
static void test_matryoshka_vs_dense(void) { check_vs_dense(LG_ARCH_MATRYOSHKA); }

/* Trains `steps` steps at `threads` threads; weights in *w. Big enough that
 * OpenBLAS splits the encoder GEMM (B x d x m = 256 x 64 x 512). */
static void train_at(const lg_backend *be, lg_arch arch, int threads, const float *x,
                     lg_sae_weights *w)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init = {0};
    lg_trainer *t = NULL;
    int s;
    setup(arch, 64, 512, 16, 256, &cfg, &tc);
    tc.steps = 6;
    lg_backend_cpu_set_threads(threads);
    CHECK_OK(lg_sae_init_weights(&cfg, 9, NULL, &init));
    CHECK_OK(lg_trainer_new(be, &cfg, &tc, &init, &t));
    for (s = 0; t && s < tc.steps; s++)
        CHECK_OK(lg_trainer_step(t, x + (size_t)s * tc.batch * cfg.d_in, NULL));
    CHECK_OK(lg_trainer_get_weights(t, w));
    lg_trainer_free(t);
    lg_sae_weights_release(&init);
}

static int bits_equal(const lg_sae_weights *a, const lg_sae_weights *b)
{
    const size_t dm = (size_t)a->d_in * a->d_sae;
    return a->W_enc && b->W_enc && memcmp(a->W_enc, b->W_enc, dm * 4) == 0 &&
           memcmp(a->b_enc, b->b_enc, (size_t)a->d_sae * 4) == 0 &&
           memcmp(a->W_dec, b->W_dec, dm * 4) == 0 && memcmp(a->b_dec, b->b_dec, (size_t)a->d_in * 4) == 0 &&
           memcmp(a->threshold, b->threshold, (size_t)a->d_sae * 4) == 0;
}

static void test_threads_bit_identical(void)
{
    static const lg_arch archs[3] = {LG_ARCH_TOPK, LG_ARCH_BATCHTOPK, LG_ARCH_MATRYOSHKA};
    float *x = make_data(4, 6 * 256, 64);
    int a;
    for (a = 0; a < 3; a++) {
        lg_sae_weights w1 = {0}, w1b = {0}, w2 = {0}, w3 = {0};
        train_at(lg_backend_cpu(), archs[a], 1, x, &w1);
        train_at(lg_backend_cpu(), archs[a], 1, x, &w1b);
        train_at(lg_backend_cpu(), archs[a], 2, x, &w2);
        train_at(lg_backend_cpu(), archs[a], 3, x, &w3);
        CHECK_MSG(bits_equal(&w1, &w1b), "%s: two runs differ", lg_arch_name(archs[a]));
        CHECK_MSG(bits_equal(&w1, &w2), "%s: 1 and 2 threads differ", lg_arch_name(archs[a]));
        CHECK_MSG(bits_equal(&w1, &w3), "%s: 1 and 3 threads differ", lg_arch_name(archs[a]));
        lg_sae_weights_release(&w1);
        lg_sae_weights_release(&w1b);
        lg_sae_weights_release(&w2);
        lg_sae_weights_release(&w3);
    }
    /* the dense path too (its GEMMs are cut into blocks fixed by the shape) */
    {
        lg_sae_weights w1 = {0}, w3 = {0};
        train_at(lg_backend_cpu_dense(), LG_ARCH_TOPK, 1, x, &w1);
        train_at(lg_backend_cpu_dense(), LG_ARCH_TOPK, 3, x, &w3);
        CHECK_MSG(bits_equal(&w1, &w3), "dense topk: 1 and 3 threads differ");
        lg_sae_weights_release(&w1);
        lg_sae_weights_release(&w3);
    }
    lg_backend_cpu_set_threads(2);
    free(x);
}

/* backend.h's sparse_min_work: below it the trainer takes the dense path
 * (the dense backend's bits), from it on the sparse one (the sparse bits). */
static void test_sparse_min_work(void)
{
    const double work = 256.0 * 512 * 64; /* train_at's batch * d_sae * d_in */
    lg_backend below = *lg_backend_cpu(), at = *lg_backend_cpu();
    float *x = make_data(5, 6 * 256, 64);
    lg_sae_weights wb = {0}, wd = {0}, wa = {0}, ws = {0};
    below.sparse_min_work = work + 1;
    at.sparse_min_work = work;
    CHECK(lg_train_sparse_path(lg_backend_cpu(), LG_ARCH_TOPK, 256, 512, 64) == 1);
    CHECK(lg_train_sparse_path(lg_backend_cpu(), LG_ARCH_RELU, 256, 512, 64) == 0);
    CHECK(lg_train_sparse_path(lg_backend_cpu(), LG_ARCH_JUMPRELU, 256, 512, 64) == 0);
    CHECK(lg_train_sparse_path(lg_backend_cpu_dense(), LG_ARCH_TOPK, 256, 512, 64) == 0);
    CHECK(lg_train_sparse_path(&below, LG_ARCH_TOPK, 256, 512, 64) == 0);
    CHECK(lg_train_sparse_path(&at, LG_ARCH_MATRYOSHKA, 256, 512, 64) == 1);
    CHECK(lg_train_sparse_path(&below, LG_ARCH_TOPK, 4096, 65536, 2304) == 1); /* no int overflow */
    train_at(&below, LG_ARCH_TOPK, 2, x, &wb);
    train_at(lg_backend_cpu_dense(), LG_ARCH_TOPK, 2, x, &wd);
    train_at(&at, LG_ARCH_TOPK, 2, x, &wa);
    train_at(lg_backend_cpu(), LG_ARCH_TOPK, 2, x, &ws);
    CHECK_MSG(!bits_equal(&ws, &wd), "the sparse and dense paths gave the same bits: this test cannot tell them apart");
    CHECK_MSG(bits_equal(&wb, &wd), "below sparse_min_work the trainer did not take the dense path");
    CHECK_MSG(bits_equal(&wa, &ws), "at sparse_min_work the trainer did not take the sparse path");
    lg_sae_weights_release(&wb);
    lg_sae_weights_release(&wd);
    lg_sae_weights_release(&wa);
    lg_sae_weights_release(&ws);
    lg_backend_cpu_set_threads(2);
    free(x);
}

CHECK_MAIN(T(test_selections), T(test_linear_ops), T(test_topk_vs_dense),
           T(test_batchtopk_vs_dense), T(test_matryoshka_vs_dense), T(test_threads_bit_identical),
           T(test_sparse_min_work))
