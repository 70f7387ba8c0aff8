/*
 * test_cuda_parity.c - the CUDA backend against the CPU oracle (STYLE.md 8-9).
 *
 * Every op of engine/backend.h runs on both backends on the same fresh
 * random inputs (base/rng.h); outputs must agree within
 * |gpu - cpu| <= atol + rtol*|cpu| (tolerances per op below), and exactly
 * for masks, selections (including tie-breaking by lower index), counts and
 * the copies. Then:
 *   - training parity: small TopK / BatchTopK / ReLU SAEs trained N steps on
 *     both backends from the same init and batches -> weights and losses
 *     within the stated tolerances;
 *   - determinism: two GPU trainings (AuxK path active) -> bit-identical
 *     weights and step statistics;
 *   - the GPU MMCS (kernels/cuda.h) against engine/consistency.h.
 * Without a usable device: prints "skipped: no GPU" and exits 77.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/backend.h"
#include "engine/consistency.h"
#include "base/rng.h"
#include "engine/sae.h"
#include "engine/train.h"
#include "tests/unit/check.h"
#ifdef LEDGER_HAVE_CUDA
#include "kernels/cuda.h"
#endif

static const lg_backend *cpu, *gpu;
static lg_rng rng;

/* ---- helpers ------------------------------------------------------------- */

static float *randn(size_t n, float scale)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (float)(scale * lg_rng_normal(&rng));
    return p;
}

/* values from a few levels, so that top-k selections meet many ties */
static float *rand_levels(size_t n, int levels)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (float)((int)lg_rng_below(&rng, (uint64_t)levels) - levels / 3) * 0.25f;
    return p;
}

static float *up(const lg_backend *b, const float *h, size_t n)
{
    float *d = NULL;
    CHECK_OK(lg_backend_alloc_upload(b, h, n, &d));
    return d;
}

static float *down(const lg_backend *b, const float *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    CHECK_OK(b->download(b, h, d, n));
    return h;
}

/* A pair of device copies of one host array: [0] on the CPU, [1] on the GPU. */
typedef struct {
    float *p[2];
    size_t n;
} twin;

static twin twin_up(const float *h, size_t n)
{
    twin t;
    t.p[0] = up(cpu, h, n);
    t.p[1] = up(gpu, h, n);
    t.n = n;
    return t;
}

static void twin_free(twin *t)
{
    cpu->free(cpu, t->p[0]);
    gpu->free(gpu, t->p[1]);
    t->p[0] = t->p[1] = NULL;
}

/* Compare the two copies: atol = rtol = 0 means bit-exact. */
static void twin_check(const char *what, const twin *t, double atol, double rtol)
{
    float *a = down(cpu, t->p[0], t->n), *b = down(gpu, t->p[1], t->n);
    size_t i, bad = 0, differ = 0;
    double worst = 0.0;
    for (i = 0; i < t->n; i++) {
        double ref = a[i], got = b[i], e = fabs(got - ref);
        int ok;
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0)
            differ++;
        if (atol == 0.0 && rtol == 0.0)
            ok = memcmp(&a[i], &b[i], sizeof(float)) == 0 || (isnan(ref) && isnan(got));
        else
            ok = e <= atol + rtol * fabs(ref) || (isnan(ref) && isnan(got));
        if (e > worst && !isnan(e))
            worst = e;
        if (!ok) {
            if (bad < 3)
                fprintf(stderr, "  %s[%zu]: gpu %.9g cpu %.9g\n", what, i, got, ref);
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu outside atol %g rtol %g (max |diff| %g)", what, bad, t->n,
              atol, rtol, worst);
    if (getenv("PARITY_VERBOSE"))
        fprintf(stderr, "  %-28s n=%-8zu bit-different %zu, max |diff| %.3g\n", what, t->n, differ,
                worst);
    free(a);
    free(b);
}

/* Run the same call on both backends: CALL uses `be` and `X(t)` for the
 * backend's copy of twin t. */
#define BOTH(CALL)                                      \
    do {                                                \
        int side_;                                      \
        for (side_ = 0; side_ < 2; side_++) {           \
            const lg_backend *be = side_ ? gpu : cpu;   \
            (void)be;                                   \
            CHECK_OK(CALL);                             \
        }                                               \
    } while (0)
#define X(t) ((t).p[side_])

/* ---- ops ------------------------------------------------------------------- */

static void test_memory(void)
{
    float *h = randn(1000, 1);
    twin a = twin_up(h, 1000), b = twin_up(h, 1000);
    BOTH(be->fill(be, X(a) + 10, -2.5f, 500));
    BOTH(be->copy(be, X(b) + 3, X(a), 900));
    BOTH(be->copy(be, X(a) + 1, X(a), 700)); /* overlapping, like memmove */
    BOTH(be->sync(be));
    twin_check("fill+copy", &a, 0, 0);
    twin_check("copy", &b, 0, 0);
    twin_free(&a);
    twin_free(&b);
    free(h);
}

/* Large uploads go through the pinned staging ring in 8 MiB chunks: a size
 * that is not a multiple of the chunk, the host buffer rewritten at once
 * after each upload (the caller may reuse it), several uploads in flight. */
static void test_upload_staging(void)
{
    const size_t n = ((size_t)5 << 20) + 333; /* 20 MiB + : three chunks */
    float *h = randn(n, 1), *ref = malloc(n * sizeof(float)), *back, *d1 = NULL, *d2 = NULL;
    size_t i, bad = 0;
    memcpy(ref, h, n * sizeof(float));
    CHECK_OK(gpu->alloc(gpu, n, &d1));
    CHECK_OK(gpu->alloc(gpu, n, &d2));
    CHECK_OK(gpu->upload(gpu, d1, h, n));
    for (i = 0; i < n; i++) /* reuse the host buffer immediately */
        h[i] = -h[i];
    CHECK_OK(gpu->upload(gpu, d2, h, n));
    memset(h, 0, n * sizeof(float));
    back = down(gpu, d1, n);
    for (i = 0; i < n; i++)
        bad += memcmp(&back[i], &ref[i], sizeof(float)) != 0;
    free(back);
    back = down(gpu, d2, n);
    for (i = 0; i < n; i++)
        bad += back[i] != -ref[i];
    CHECK_MSG(bad == 0, "staged uploads: %zu floats differ", bad);
    free(back);
    gpu->free(gpu, d1);
    gpu->free(gpu, d2);
    free(h);
    free(ref);
}

/* A failed cudaMalloc must not leave an error that the next op reports as
 * its own: an impossible allocation is LG_ENOMEM, and the ops after it work. */
static void test_alloc_failure_not_sticky(void)
{
    float *p = NULL, *q = NULL, *h;
    double s = -1;
    CHECK(gpu->alloc(gpu, (size_t)1 << 46, &p) == LG_ENOMEM && p == NULL); /* 256 TiB */
    CHECK_OK(gpu->alloc(gpu, 1000, &q));
    CHECK_OK(gpu->fill(gpu, q, 2.0f, 1000));
    CHECK_OK(gpu->sum(gpu, q, 1000, &s));
    CHECK(s == 2000.0);
    h = down(gpu, q, 1000);
    CHECK(h[999] == 2.0f);
    free(h);
    gpu->free(gpu, q);
}

static void test_gemm(void)
{
    static const int shapes[][3] = {{37, 29, 53}, {1, 300, 17}, {128, 1024, 64}, {5, 7, 0}};
    size_t s;
    int ta, tb, pass;
    for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++)
                for (pass = 0; pass < 2; pass++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
                    size_t na = (size_t)(ta ? K : M) * lda + 1, nb = (size_t)(tb ? N : K) * ldb + 1,
                           nc = (size_t)M * ldc;
                    float *A = randn(na, 1), *B = randn(nb, 1), *C = randn(nc, 1);
                    float beta = pass ? -0.7f : 0.0f;
                    char what[64];
                    twin tA, tB, tC;
                    size_t i;
                    if (!pass) /* beta == 0: C's NaN must be ignored */
                        for (i = 0; i < nc; i++)
                            if ((int)(i % ldc) < N)
                                C[i] = NAN;
                    tA = twin_up(A, na);
                    tB = twin_up(B, nb);
                    tC = twin_up(C, nc);
                    BOTH(be->gemm(be, ta, tb, M, N, K, 1.3f, X(tA), lda, X(tB), ldb, beta, X(tC),
                                  ldc));
                    snprintf(what, sizeof(what), "gemm %dx%dx%d t%d%d b%g", M, N, K, ta, tb,
                             (double)beta);
                    twin_check(what, &tC, 1e-4 * (1 + sqrt((double)K)), 1e-4);
                    twin_free(&tA);
                    twin_free(&tB);
                    twin_free(&tC);
                    free(A);
                    free(B);
                    free(C);
                }
}

static void test_gemm_batched(void)
{
    const int M = 33, N = 20, K = 47, batch = 5;
    const long long sA = M * K + 7, sB = K * N + 3, sC = M * N + 1;
    int ta, tb;
    for (ta = 0; ta < 2; ta++)
        for (tb = 0; tb < 2; tb++) {
            float *A = randn((size_t)sA * batch, 1), *B = randn((size_t)sB * batch, 1),
                  *C = randn((size_t)sC * batch, 1);
            twin tA = twin_up(A, (size_t)sA * batch), tB = twin_up(B, (size_t)sB * batch),
                 tC = twin_up(C, (size_t)sC * batch);
            BOTH(be->gemm_batched(be, ta, tb, M, N, K, 0.5f, X(tA), ta ? M : K, sA, X(tB),
                                  tb ? K : N, sB, 2.0f, X(tC), N, sC, batch));
            twin_check("gemm_batched", &tC, 1e-3, 1e-4);
            twin_free(&tA);
            twin_free(&tB);
            twin_free(&tC);
            free(A);
            free(B);
            free(C);
        }
}

static void test_topk_rows(void)
{
    static const int cases[][3] = {/* rows, cols, k */
                                   {7, 100, 5},   {64, 1000, 32}, {16, 4096, 1},  {8, 4096, 300},
                                   {5, 300, 300}, {3, 50, 80},    {33, 513, 17},  {4, 70000, 64},
                                   {2, 10, 0},    {256, 65536, 64} /* TopK at d_sae = 65536 */};
    size_t c;
    int levels;
    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
        for (levels = 0; levels < 2; levels++) {
            int rows = cases[c][0], cols = cases[c][1], k = cases[c][2], masked;
            size_t n = (size_t)rows * cols;
            float *pre = levels ? rand_levels(n, 9) : randn(n, 1);
            float *mask = rand_levels((size_t)cols, 2); /* entries 0 or 0.25: ~half candidates */
            twin tp = twin_up(pre, n), tm = twin_up(mask, (size_t)cols), ta;
            for (masked = 0; masked < 2; masked++) {
                char what[80];
                float *junk = randn(n, 1); /* acts are fully overwritten */
                ta = twin_up(junk, n);
                BOTH(be->topk_rows(be, X(tp), masked ? X(tm) : NULL, X(ta), rows, cols, k));
                snprintf(what, sizeof(what), "topk_rows %dx%d k=%d ties=%d mask=%d", rows, cols, k,
                         levels, masked);
                twin_check(what, &ta, 0, 0);
                twin_free(&ta);
                free(junk);
            }
            twin_free(&tp);
            twin_free(&tm);
            free(pre);
            free(mask);
        }
}

static void test_topk_batch(void)
{
    static const size_t cases[][2] = {{1000, 37}, {64 * 3000, 64 * 16}, {50000, 1},
                                      {10000, 9000}, {777, 0}, {300000, 150000},
                                      /* past 2^23 entries (float-exact counts end there) and
                                         the training shape B=128, k=64 of m=65536 */
                                      {((size_t)1 << 23) + 12345, 64 * 128},
                                      {(size_t)128 * 65536, 64 * 128}};
    size_t c;
    int levels;
    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
        for (levels = 0; levels < 2; levels++) {
            size_t n = cases[c][0], keep = cases[c][1];
            float *pre = levels ? rand_levels(n, 50) : randn(n, 1), *junk = randn(n, 1);
            float mk[2] = {0, 0};
            twin tp = twin_up(pre, n), ta = twin_up(junk, n);
            char what[80];
            int side_;
            for (side_ = 0; side_ < 2; side_++) {
                const lg_backend *be = side_ ? gpu : cpu;
                CHECK_OK(be->topk_batch(be, X(tp), X(ta), n, keep, &mk[side_]));
            }
            snprintf(what, sizeof(what), "topk_batch n=%zu keep=%zu ties=%d", n, keep, levels);
            twin_check(what, &ta, 0, 0);
            CHECK_MSG(mk[0] == mk[1], "%s: min_kept gpu %.9g cpu %.9g", what, (double)mk[1],
                      (double)mk[0]);
            twin_free(&tp);
            twin_free(&ta);
            free(pre);
            free(junk);
        }
}

static void test_activations(void)
{
    const int rows = 300, cols = 257;
    const size_t n = (size_t)rows * cols;
    float *pre = randn(n, 1), *ga = randn(n, 1), *gp0 = randn(n, 1), *lthr = randn(cols, 0.5f);
    twin tpre = twin_up(pre, n), tga = twin_up(ga, n), tl = twin_up(lthr, cols), tout, tg, tgl;
    float eps;

    tout = twin_up(gp0, n);
    BOTH(be->relu(be, X(tpre), X(tout), n));
    twin_check("relu", &tout, 0, 0);
    BOTH(be->threshold_scalar(be, X(tpre), 0.37f, X(tout), n));
    twin_check("threshold_scalar", &tout, 0, 0);
    /* Rows 0-2 hold exactly theta = expf(lthr) (the engine's host function,
     * which both backends use) and its float neighbours: the `pre > theta`
     * decision at the boundary must agree bit for bit. */
    {
        float *theta = malloc(cols * sizeof(float));
        int c;
        lg_backend_jumprelu_theta(lthr, theta, (size_t)cols);
        for (c = 0; c < cols; c++) {
            pre[c] = theta[c];
            pre[cols + c] = nextafterf(theta[c], INFINITY);
            pre[2 * cols + c] = nextafterf(theta[c], 0.0f);
        }
        twin_free(&tpre);
        tpre = twin_up(pre, n);
        free(theta);
    }
    BOTH(be->jumprelu_fwd(be, X(tpre), X(tl), X(tout), rows, cols));
    twin_check("jumprelu_fwd", &tout, 0, 0); /* same theta on both: exact */
    tg = twin_up(gp0, n);
    BOTH(be->active_grad(be, X(tout), X(tga), 0.0f, X(tg), n));
    twin_check("active_grad beta=0", &tg, 0, 0);
    BOTH(be->active_grad(be, X(tout), X(tga), 0.75f, X(tg), n));
    twin_check("active_grad beta=.75", &tg, 0, 0);
    twin_free(&tg);

    /* JumpReLU backward with a wide band so that many entries are in it */
    for (eps = 0.05f; eps < 2.0f; eps *= 10.0f) {
        float *junk = randn(cols, 1);
        tg = twin_up(gp0, n);
        tgl = twin_up(junk, cols);
        BOTH(be->jumprelu_bwd(be, X(tpre), X(tl), X(tga), 0.01f, eps, X(tg), X(tgl), rows, cols));
        twin_check("jumprelu_bwd grad_pre", &tg, 0, 0);
        twin_check("jumprelu_bwd grad_lthr", &tgl, 1e-5, 1e-5);
        twin_free(&tg);
        twin_free(&tgl);
        free(junk);
    }
    twin_free(&tpre);
    twin_free(&tga);
    twin_free(&tl);
    twin_free(&tout);
    free(pre);
    free(ga);
    free(gp0);
    free(lthr);
}

static void test_elementwise(void)
{
    static const int shapes[][2] = {{3, 5}, {1000, 130}, {64, 70000}, {5000, 2}};
    size_t s;
    for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * cols;
        float *Xh = randn(n, 1), *Yh = randn(n, 2), *bias = randn(cols, 1), *o = randn(cols, 1);
        float *sparse = rand_levels(n, 4), *cnt = rand_levels(cols, 5);
        twin tX = twin_up(Xh, n), tY = twin_up(Yh, n), tb = twin_up(bias, cols),
             tout = twin_up(o, cols), ts = twin_up(sparse, n), tc, tf;
        size_t i;
        for (i = 0; i < (size_t)cols; i++)
            cnt[i] = fabsf(cnt[i]) * 8; /* small non-negative integers */
        tc = twin_up(cnt, cols);
        tf = twin_up(cnt, cols);

        BOTH(be->add_bias_rows(be, X(tX), X(tb), -0.5f, X(tY), rows, cols));
        twin_check("add_bias_rows", &tY, 0, 0);
        BOTH(be->add_bias_rows(be, X(tY), X(tb), 1.5f, X(tY), rows, cols)); /* aliasing */
        twin_check("add_bias_rows alias", &tY, 0, 0);
        BOTH(be->col_sum(be, X(tX), rows, cols, 0.25f, 0.0f, X(tout)));
        twin_check("col_sum beta=0", &tout, 1e-6, 1e-6);
        BOTH(be->col_sum(be, X(tX), rows, cols, -1.0f, 1.0f, X(tout)));
        twin_check("col_sum beta=1", &tout, 1e-6, 1e-6);
        BOTH(be->axpby(be, n, 0.3f, X(tX), -1.7f, X(tY), X(tY)));
        twin_check("axpby", &tY, 0, 0);
        BOTH(be->scale_shift(be, X(tY), 0.9f, 0.125f, n));
        twin_check("scale_shift", &tY, 0, 0);
        BOTH(be->mask_ge(be, X(tX), 0.1f, X(tY), n));
        twin_check("mask_ge", &tY, 0, 0);
        BOTH(be->col_count_nonzero(be, X(ts), rows, cols, X(tc)));
        twin_check("col_count_nonzero", &tc, 0, 0);
        BOTH(be->fired_update(be, X(ts), rows > 2 ? 2 : rows, cols, X(tf)));
        twin_check("fired_update", &tf, 0, 0);

        twin_free(&tX);
        twin_free(&tY);
        twin_free(&tb);
        twin_free(&tout);
        twin_free(&ts);
        twin_free(&tc);
        twin_free(&tf);
        free(Xh);
        free(Yh);
        free(bias);
        free(o);
        free(sparse);
        free(cnt);
    }
}

static void test_reductions(void)
{
    static const size_t sizes[] = {1, 17, 1000, 65537, 3000000};
    size_t s;
    for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s], i;
        float *x = randn(n, 1), *y = rand_levels(n, 3);
        twin tx = twin_up(x, n), ty = twin_up(y, n);
        double r[2][4], mag = 0.0;
        int side_, j;
        for (i = 0; i < n; i++)
            mag += fabs(x[i]) * (1.0 + fabs(x[i]));
        for (side_ = 0; side_ < 2; side_++) {
            const lg_backend *be = side_ ? gpu : cpu;
            CHECK_OK(be->sum(be, X(tx), n, &r[side_][0]));
            CHECK_OK(be->sumsq(be, X(tx), n, &r[side_][1]));
            CHECK_OK(be->dot(be, X(tx), X(ty), n, &r[side_][2]));
            CHECK_OK(be->count_nonzero(be, X(ty), n, &r[side_][3]));
        }
        for (side_ = 0; side_ < 2; side_++) { /* one read-back == the single ops, bit for bit */
            const lg_backend *be = side_ ? gpu : cpu;
            lg_reduce_req rq[4] = {{LG_RED_SUM, X(tx), n}, {LG_RED_SUMSQ, X(tx), n},
                                   {LG_RED_NNZ, X(ty), n}, {LG_RED_SUM, X(tx), 0}};
            double many[4];
            CHECK_OK(lg_backend_reduce_many(be, rq, 4, many));
            CHECK_MSG(memcmp(&many[0], &r[side_][0], sizeof(double)) == 0 &&
                          memcmp(&many[1], &r[side_][1], sizeof(double)) == 0 &&
                          many[2] == r[side_][3] && many[3] == 0.0,
                      "%s reduce_many n=%zu differs from the single ops", be->name, n);
        }
        for (j = 0; j < 3; j++) /* double sums in different orders: ~1e-16 relative to sum|.| */
            CHECK_MSG(fabs(r[1][j] - r[0][j]) <= 1e-12 * mag + 1e-12,
                      "reduction %d n=%zu: gpu %.17g cpu %.17g", j, n, r[1][j], r[0][j]);
        CHECK_MSG(r[1][3] == r[0][3], "count_nonzero n=%zu: gpu %.17g cpu %.17g", n, r[1][3],
                  r[0][3]);
        twin_free(&tx);
        twin_free(&ty);
        free(x);
        free(y);
    }
}

static void test_geometry_adam(void)
{
    static const int shapes[][2] = {{1, 1}, {1024, 128}, {300, 2304}, {20, 33}};
    size_t s;
    for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)rows * cols;
        float *W = randn(n, 1), *G = randn(n, 0.1f), *m0 = randn(n, 0.01f), *v0 = randn(n, 0.01f);
        twin tW, tG, tm, tv;
        lg_adam_args a = {3e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, 0.0f};
        size_t i;
        for (i = 0; i < (size_t)cols; i++) /* a zero row stays zero / untouched */
            W[i] = 0.0f;
        for (i = 0; i < n; i++)
            v0[i] = v0[i] * v0[i];
        tW = twin_up(W, n);
        tG = twin_up(G, n);
        tm = twin_up(m0, n);
        tv = twin_up(v0, n);
        BOTH(be->project_out_parallel(be, X(tW), X(tG), rows, cols));
        twin_check("project_out_parallel", &tG, 1e-7, 1e-5);
        BOTH(be->renorm_rows(be, X(tW), rows, cols));
        twin_check("renorm_rows", &tW, 1e-7, 1e-6);
        a.bc1 = 1.0f - powf(a.beta1, 7.0f);
        a.bc2 = 1.0f - powf(a.beta2, 7.0f);
        BOTH(be->adam_step(be, X(tW), X(tG), X(tm), X(tv), n, &a));
        twin_check("adam p", &tW, 1e-7, 1e-6);
        twin_check("adam m", &tm, 0, 0);
        twin_check("adam v", &tv, 0, 0);
        twin_free(&tW);
        twin_free(&tG);
        twin_free(&tm);
        twin_free(&tv);
        free(W);
        free(G);
        free(m0);
        free(v0);
    }
}

/* ---- training ---------------------------------------------------------------- */

/* Batches: sparse non-negative combinations of a few directions plus noise,
 * so that latents specialise and TopK selections are not near-ties. */
static float *make_data(int n, int d, uint64_t seed)
{
    lg_rng r;
    float *x = malloc((size_t)n * d * sizeof(float)), *dirs = malloc((size_t)64 * d * sizeof(float));
    int i, j, t;
    lg_rng_init(&r, seed, 77);
    for (i = 0; i < 64 * d; i++)
        dirs[i] = (float)lg_rng_normal(&r);
    for (i = 0; i < n; i++) {
        float *row = x + (size_t)i * d;
        for (j = 0; j < d; j++)
            row[j] = (float)(0.05 * lg_rng_normal(&r));
        for (t = 0; t < 4; t++) {
            int f = (int)lg_rng_below(&r, 64);
            float c = (float)(0.5 + lg_rng_uniform(&r));
            for (j = 0; j < d; j++)
                row[j] += c * dirs[(size_t)f * d + j];
        }
    }
    free(dirs);
    return x;
}

typedef struct {
    lg_sae_weights w;
    double loss[64];
    lg_step_stats last;
} train_out;

static int train(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc,
                 const float *data, train_out *out)
{
    lg_sae_weights init;
    lg_trainer *t = NULL;
    long s;
    int err;
    memset(out, 0, sizeof(*out));
    if ((err = lg_sae_init_weights(cfg, 42, NULL, &init)) < 0)
        return err;
    if ((err = lg_trainer_new(be, cfg, tc, &init, &t)) < 0)
        goto out;
    for (s = 0; s < tc->steps; s++) {
        lg_step_stats st;
        if ((err = lg_trainer_step(t, data + (size_t)(s % 4) * tc->batch * cfg->d_in, &st)) < 0)
            goto out;
        if (s < 64)
            out->loss[s] = st.loss;
        out->last = st;
    }
    err = lg_trainer_get_weights(t, &out->w);
out:
    lg_trainer_free(t);
    lg_sae_weights_release(&init);
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

static void setup_train(lg_arch arch, lg_sae_config *cfg, lg_train_config *tc)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->arch = arch;
    cfg->d_in = 32;
    cfg->d_sae = 128;
    cfg->k = 8;
    lg_train_config_default(tc);
    tc->steps = 30;
    tc->batch = 256;
    tc->warmup_steps = 5;
    tc->lr = 1e-3;
    tc->l1_coeff = 0.05;
    tc->dead_after = 2.0 * tc->batch; /* AuxK active after two steps without firing */
}

/* Training parity tolerance: weights within |gpu-cpu| <= 2e-3 (2e-3 + |cpu|)
 * i.e. atol 4e-6 + rtol 2e-3, losses within 1e-3 relative. cuBLAS and
 * OpenBLAS sum the GEMMs in different orders (~1e-7 relative per step);
 * Adam divides by sqrt(v), which amplifies such differences where gradients
 * are tiny, so 30 steps end ~1e-4 apart; a top-k selection flip would show
 * as a much larger jump. */
static void test_train_parity(void)
{
    static const lg_arch archs[] = {LG_ARCH_TOPK, LG_ARCH_BATCHTOPK, LG_ARCH_RELU,
                                    LG_ARCH_JUMPRELU, LG_ARCH_MATRYOSHKA};
    size_t a;
    for (a = 0; a < sizeof(archs) / sizeof(archs[0]); a++) {
        lg_sae_config cfg;
        lg_train_config tc;
        train_out rc, rg;
        float *data;
        double wd, we, be_, bd, ld = 0.0;
        long s;
        setup_train(archs[a], &cfg, &tc);
        if (archs[a] == LG_ARCH_MATRYOSHKA) {
            tc.n_prefixes = 2;
            tc.prefixes[0] = 16;
            tc.prefixes[1] = 64;
        }
        data = make_data(4 * tc.batch, cfg.d_in, 9);
        CHECK_OK(train(cpu, &cfg, &tc, data, &rc));
        CHECK_OK(train(gpu, &cfg, &tc, data, &rg));
        if (rc.w.W_dec && rg.w.W_dec) {
            size_t dm = (size_t)cfg.d_in * cfg.d_sae;
            wd = max_rel(rg.w.W_dec, rc.w.W_dec, dm, 2e-3);
            we = max_rel(rg.w.W_enc, rc.w.W_enc, dm, 2e-3);
            be_ = max_rel(rg.w.b_enc, rc.w.b_enc, (size_t)cfg.d_sae, 2e-3);
            bd = max_rel(rg.w.b_dec, rc.w.b_dec, (size_t)cfg.d_in, 2e-3);
            for (s = 0; s < tc.steps; s++) {
                double e = fabs(rg.loss[s] - rc.loss[s]) / fabs(rc.loss[s]);
                if (!(e <= ld))
                    ld = e;
            }
            fprintf(stderr,
                    "  train parity %s: max rel diff W_dec %.3g W_enc %.3g b_enc %.3g b_dec %.3g "
                    "loss %.3g (final loss cpu %.6g gpu %.6g)\n",
                    lg_arch_name(archs[a]), wd, we, be_, bd, ld, rc.last.loss, rg.last.loss);
            CHECK_MSG(wd <= 2e-3 && we <= 2e-3 && be_ <= 2e-3 && bd <= 2e-3,
                      "%s: weights differ beyond tolerance", lg_arch_name(archs[a]));
            CHECK_MSG(ld <= 1e-3, "%s: losses differ by %.3g relative", lg_arch_name(archs[a]), ld);
        }
        lg_sae_weights_release(&rc.w);
        lg_sae_weights_release(&rg.w);
        free(data);
    }
}

static int weights_equal(const lg_sae_weights *a, const lg_sae_weights *b)
{
    size_t dm = (size_t)a->d_in * a->d_sae;
    return a->W_enc && b->W_enc && memcmp(a->W_enc, b->W_enc, dm * 4) == 0 &&
           memcmp(a->W_dec, b->W_dec, dm * 4) == 0 &&
           memcmp(a->b_enc, b->b_enc, (size_t)a->d_sae * 4) == 0 &&
           memcmp(a->b_dec, b->b_dec, (size_t)a->d_in * 4) == 0 &&
           memcmp(a->threshold, b->threshold, (size_t)a->d_sae * 4) == 0;
}

static void test_determinism(void)
{
    static const lg_arch archs[] = {LG_ARCH_TOPK, LG_ARCH_BATCHTOPK, LG_ARCH_JUMPRELU};
    size_t a;
    for (a = 0; a < sizeof(archs) / sizeof(archs[0]); a++) {
        lg_sae_config cfg;
        lg_train_config tc;
        train_out r1, r2;
        float *data;
        setup_train(archs[a], &cfg, &tc);
        cfg.d_in = 64;
        cfg.d_sae = 1024;
        cfg.k = 16;
        tc.batch = 512;
        tc.dead_after = 2.0 * tc.batch;
        data = make_data(4 * tc.batch, cfg.d_in, 11);
        CHECK_OK(train(gpu, &cfg, &tc, data, &r1));
        CHECK_OK(train(gpu, &cfg, &tc, data, &r2));
        CHECK_MSG(weights_equal(&r1.w, &r2.w), "%s: two GPU trainings differ",
                  lg_arch_name(archs[a]));
        CHECK_MSG(memcmp(r1.loss, r2.loss, sizeof(r1.loss)) == 0 &&
                      memcmp(&r1.last, &r2.last, sizeof(r1.last)) == 0,
                  "%s: step statistics differ", lg_arch_name(archs[a]));
        lg_sae_weights_release(&r1.w);
        lg_sae_weights_release(&r2.w);
        free(data);
    }
}

/* ---- cross-seed MMCS ------------------------------------------------------------ */

static void test_mmcs(void)
{
#ifdef LEDGER_HAVE_CUDA
    const int m1 = 300, m2 = 517, d = 64;
    float *A = randn((size_t)m1 * d, 1), *B = randn((size_t)m2 * d, 2);
    float *ga = malloc(m1 * sizeof(float)), *gb = malloc(m2 * sizeof(float));
    float *ca = malloc(m1 * sizeof(float)), *cb = malloc(m2 * sizeof(float));
    int abs_cos, i, bad;
    for (i = 0; i < 20 * d; i++) /* some near-duplicate rows */
        B[i] = A[i] + 0.01f * B[i];
    for (abs_cos = 0; abs_cos < 2; abs_cos++) {
        lg_sim_options opt;
        lg_dict_sim ref;
        double ab = 0, ba = 0;
        lg_sim_options_init(&opt);
        opt.abs_cos = abs_cos;
        opt.mcc = 0;
        CHECK_OK(lg_dict_similarity(A, m1, B, m2, d, &opt, &ref, ca, cb));
        CHECK_OK(lg_cuda_dict_mmcs(A, m1, B, m2, d, abs_cos, &ab, &ba, ga, gb));
        CHECK_CLOSE(ab, ref.mmcs_ab, 2e-6, 0);
        CHECK_CLOSE(ba, ref.mmcs_ba, 2e-6, 0);
        for (bad = 0, i = 0; i < m1; i++)
            bad += !(fabsf(ga[i] - ca[i]) <= 1e-5f);
        for (i = 0; i < m2; i++)
            bad += !(fabsf(gb[i] - cb[i]) <= 1e-5f);
        CHECK_MSG(bad == 0, "mmcs abs=%d: %d per-latent maxima differ", abs_cos, bad);
    }
    memset(B + 7 * d, 0, d * sizeof(float)); /* a zero row is an input error naming it */
    {
        double ab, ba;
        CHECK(lg_cuda_dict_mmcs(A, m1, B, m2, d, 0, &ab, &ba, NULL, NULL) == LG_EINPUT);
        CHECK(strstr(lg_error_msg(), "B: row 7") != NULL);
    }
    free(A);
    free(B);
    free(ga);
    free(gb);
    free(ca);
    free(cb);
#endif
}

static const check_test tests[] = {
    T(test_memory),        T(test_gemm),         T(test_gemm_batched), T(test_topk_rows),
    T(test_topk_batch),    T(test_activations),  T(test_elementwise),  T(test_reductions),
    T(test_geometry_adam), T(test_train_parity), T(test_determinism),  T(test_mmcs),
    T(test_upload_staging), T(test_alloc_failure_not_sticky),
};

int main(int argc, char **argv)
{
    cpu = lg_backend_cpu();
    gpu = lg_backend_cuda();
    if (!gpu) {
#ifdef LEDGER_HAVE_CUDA
        printf("skipped: no GPU (%s)\n", lg_cuda_unavailable_reason());
#else
        printf("skipped: no GPU (built without CUDA)\n");
#endif
        return 77;
    }
    printf("cpu: %s\ngpu: %s\n", cpu->device, gpu->device);
    lg_rng_init(&rng, 20240601, 5);
    return check_run(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
