/*
 * test_backend.c - every op of engine/backend.h against plain double loops on
 * fresh random inputs, for the CPU backend and, when one is usable, the CUDA
 * backend (same references, same tolerances |x - ref| <= atol + rtol*|ref|).
 * Selections, masks and counts must match exactly, including tie-breaking.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/backend.h"
#include "base/rng.h"
#include "tests/unit/check.h"

static const lg_backend *be; /* backend under test */
static lg_rng rng;

static float *host_randn(size_t n, float scale)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (float)(scale * lg_rng_normal(&rng));
    return p;
}

static float *dev_from(const float *h, size_t n)
{
    float *d = NULL;
    CHECK_OK(lg_backend_alloc_upload(be, h, n, &d));
    return d;
}

static float *host_from(const float *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    CHECK_OK(be->download(be, h, d, n));
    return h;
}

/* count of |a - b| > atol + rtol |b| */
static int n_far(const float *a, const double *b, size_t n, double atol, double rtol)
{
    size_t i;
    int bad = 0;
    for (i = 0; i < n; i++)
        if (!(fabs((double)a[i] - b[i]) <= atol + rtol * fabs(b[i]))) {
            if (bad < 3)
                fprintf(stderr, "  [%zu] got %.9g want %.9g\n", i, (double)a[i], b[i]);
            bad++;
        }
    return bad;
}

static void test_memory(void)
{
    float h[5] = {1, 2, 3, 4, 5}, back[5];
    float *a = NULL, *b = NULL;
    CHECK_OK(be->alloc(be, 5, &a));
    CHECK_OK(be->download(be, back, a, 5));
    CHECK(back[0] == 0 && back[4] == 0); /* zeroed */
    CHECK_OK(be->upload(be, a, h, 5));
    CHECK_OK(be->alloc(be, 5, &b));
    CHECK_OK(be->copy(be, b, a, 5));
    CHECK_OK(be->fill(be, a, 7.5f, 2));
    CHECK_OK(be->download(be, back, b, 5));
    CHECK(memcmp(back, h, sizeof(h)) == 0);
    CHECK_OK(be->download(be, back, a, 5));
    CHECK(back[0] == 7.5f && back[1] == 7.5f && back[2] == 3.0f);
    CHECK_OK(be->sync(be));
    be->free(be, a);
    be->free(be, b);
    be->free(be, NULL);
}

/* C = alpha op(A) op(B) + beta C in double */
static void ref_gemm(int ta, int tb, int M, int N, int K, double alpha, const float *A, int lda,
                     const float *B, int ldb, double beta, const float *C0, int ldc, double *C)
{
    int i, j, k;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            double s = 0;
            for (k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
            }
            C[(size_t)i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * C0[(size_t)i * ldc + j]);
        }
}

static void test_gemm(void)
{
    int ta, tb;
    const int M = 37, N = 29, K = 53;
    for (ta = 0; ta < 2; ta++)
        for (tb = 0; tb < 2; tb++) {
            int lda = ta ? M + 3 : K + 3, ldb = tb ? K + 1 : N + 1, ldc = N + 2;
            size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb,
                   nc = (size_t)M * ldc;
            float *A = host_randn(na, 1), *B = host_randn(nb, 1), *C = host_randn(nc, 1);
            double *R = calloc(nc, sizeof(double));
            float *dA = dev_from(A, na), *dB = dev_from(B, nb), *dC = dev_from(C, nc), *got;
            size_t i;
            ref_gemm(ta, tb, M, N, K, 0.7, A, lda, B, ldb, -1.3, C, ldc, R);
            /* keep the padding columns as they were */
            for (i = 0; i < nc; i++)
                if ((int)(i % ldc) >= N)
                    R[i] = C[i];
            CHECK_OK(be->gemm(be, ta, tb, M, N, K, 0.7f, dA, lda, dB, ldb, -1.3f, dC, ldc));
            got = host_from(dC, nc);
            CHECK_MSG(n_far(got, R, nc, 1e-4, 1e-4) == 0, "gemm ta=%d tb=%d", ta, tb);
            free(got);
            /* beta = 0 ignores NaN in C */
            for (i = 0; i < nc; i++)
                C[i] = NAN;
            CHECK_OK(be->upload(be, dC, C, nc));
            ref_gemm(ta, tb, M, N, K, 1.0, A, lda, B, ldb, 0.0, C, ldc, R);
            for (i = 0; i < nc; i++)
                if ((int)(i % ldc) >= N)
                    R[i] = NAN;
            CHECK_OK(be->gemm(be, ta, tb, M, N, K, 1.0f, dA, lda, dB, ldb, 0.0f, dC, ldc));
            got = host_from(dC, nc);
            {
                int bad = 0, r, c;
                for (r = 0; r < M; r++)
                    for (c = 0; c < N; c++) {
                        size_t q = (size_t)r * ldc + c;
                        bad += !(fabs(got[q] - R[q]) <= 1e-4 + 1e-4 * fabs(R[q]));
                    }
                CHECK_MSG(bad == 0, "gemm beta=0 ta=%d tb=%d: %d bad", ta, tb, bad);
            }
            free(got);
            be->free(be, dA);
            be->free(be, dB);
            be->free(be, dC);
            free(A);
            free(B);
            free(C);
            free(R);
        }
}

static void test_gemm_batched(void)
{
    const int M = 8, N = 5, K = 6, batch = 3;
    const long long sA = M * K + 4, sB = K * N + 2, sC = M * N + 1;
    float *A = host_randn((size_t)sA * batch, 1), *B = host_randn((size_t)sB * batch, 1),
          *C = host_randn((size_t)sC * batch, 1);
    double *R = calloc((size_t)sC * batch, sizeof(double));
    float *dA = dev_from(A, sA * batch), *dB = dev_from(B, sB * batch),
          *dC = dev_from(C, sC * batch), *got;
    int i, bad = 0;
    CHECK_OK(be->gemm_batched(be, 0, 1, M, N, K, 1.0f, dA, K, sA, dB, K, sB, 0.5f, dC, N, sC,
                              batch));
    got = host_from(dC, (size_t)sC * batch);
    for (i = 0; i < batch; i++) {
        ref_gemm(0, 1, M, N, K, 1.0, A + i * sA, K, B + i * sB, K, 0.5, C + i * sC, N, R + i * sC);
        bad += n_far(got + i * sC, R + i * sC, (size_t)M * N, 1e-4, 1e-4);
        CHECK(got[i * sC + M * N] == C[i * sC + M * N]); /* the gap is untouched */
    }
    CHECK(bad == 0);
    free(got);
    free(A);
    free(B);
    free(C);
    free(R);
    be->free(be, dA);
    be->free(be, dB);
    be->free(be, dC);
}

/* entry q is kept iff v[q] > 0 and fewer than k candidates rank before it
 * under (value desc, index asc). O(n^2): the obvious definition. */
static void ref_topk(const float *v, const float *mask, size_t n, size_t k, float *out)
{
    size_t q, p;
    for (q = 0; q < n; q++) {
        size_t before = 0;
        out[q] = 0;
        if (!(v[q] > 0) || (mask && mask[q] == 0))
            continue;
        for (p = 0; p < n; p++)
            if ((!mask || mask[p] != 0) && v[p] > 0 && (v[p] > v[q] || (v[p] == v[q] && p < q)))
                before++;
        if (before < k)
            out[q] = v[q];
    }
}

static void test_topk_rows(void)
{
    const int rows = 9, cols = 40;
    const size_t n = (size_t)rows * cols;
    float *pre = host_randn(n, 1), *mask = malloc(cols * sizeof(float)), *want = malloc(n * 4);
    float *dpre, *dmask, *dacts = NULL, *got;
    int k, r, c;
    /* ties: row 0 has many equal values, row 1 all equal, row 2 all negative */
    for (c = 0; c < cols; c++) {
        pre[c] = (c % 3 == 0) ? 0.5f : pre[c];
        pre[cols + c] = 0.25f;
        pre[2 * cols + c] = -fabsf(pre[2 * cols + c]) - 0.1f;
        mask[c] = (c % 4 == 1) ? 0.0f : 1.0f;
    }
    pre[3 * cols + 5] = NAN; /* NaN never selected */
    dpre = dev_from(pre, n);
    dmask = dev_from(mask, cols);
    CHECK_OK(be->alloc(be, n, &dacts));
    for (k = 0; k <= cols; k += 7) {
        int use_mask;
        for (use_mask = 0; use_mask < 2; use_mask++) {
            CHECK_OK(be->topk_rows(be, dpre, use_mask ? dmask : NULL, dacts, rows, cols, k));
            got = host_from(dacts, n);
            for (r = 0; r < rows; r++)
                ref_topk(pre + (size_t)r * cols, use_mask ? mask : NULL, cols, k > 0 ? k : 0,
                         want + (size_t)r * cols);
            CHECK_MSG(memcmp(got, want, n * sizeof(float)) == 0, "topk_rows k=%d mask=%d", k,
                      use_mask);
            free(got);
        }
    }
    be->free(be, dpre);
    be->free(be, dmask);
    be->free(be, dacts);
    free(pre);
    free(mask);
    free(want);
}

static void test_topk_batch(void)
{
    const size_t n = 300;
    float *pre = host_randn(n, 1), *want = malloc(n * 4), *dpre, *dacts = NULL, *got, mk;
    size_t keep, i;
    for (i = 0; i < n; i += 5)
        pre[i] = 0.75f; /* ties */
    dpre = dev_from(pre, n);
    CHECK_OK(be->alloc(be, n, &dacts));
    for (keep = 0; keep <= n; keep += 37) {
        float lo = -1;
        CHECK_OK(be->topk_batch(be, dpre, dacts, n, keep, &mk));
        got = host_from(dacts, n);
        ref_topk(pre, NULL, n, keep, want);
        for (i = 0; i < n; i++)
            if (want[i] > 0 && (lo < 0 || want[i] < lo))
                lo = want[i];
        CHECK_MSG(memcmp(got, want, n * sizeof(float)) == 0, "topk_batch keep=%zu", keep);
        CHECK_MSG(mk == lo, "topk_batch keep=%zu min_kept %g vs %g", keep, mk, lo);
        free(got);
    }
    be->free(be, dpre);
    be->free(be, dacts);
    free(pre);
    free(want);
}

static void test_activations(void)
{
    const int rows = 13, cols = 11;
    const size_t n = (size_t)rows * cols;
    const float eps = 0.3f, l0s = 0.05f;
    float *pre = host_randn(n, 1), *lthr = host_randn(cols, 0.5), *ga = host_randn(n, 1);
    float *gp0 = host_randn(n, 1);
    double *want = calloc(n, sizeof(double)), *wl = calloc(cols, sizeof(double));
    float *dpre = dev_from(pre, n), *dl = dev_from(lthr, cols), *dga = dev_from(ga, n);
    float *dout = NULL, *dgl = NULL, *got;
    size_t i;
    int r, c;
    CHECK_OK(be->alloc(be, n, &dout));
    CHECK_OK(be->alloc(be, cols, &dgl));

    CHECK_OK(be->relu(be, dpre, dout, n));
    got = host_from(dout, n);
    for (i = 0; i < n; i++)
        want[i] = pre[i] > 0 ? pre[i] : 0;
    CHECK(n_far(got, want, n, 0, 0) == 0);
    free(got);

    CHECK_OK(be->threshold_scalar(be, dpre, 0.4f, dout, n));
    got = host_from(dout, n);
    for (i = 0; i < n; i++)
        want[i] = pre[i] > 0.4f ? pre[i] : 0;
    CHECK(n_far(got, want, n, 0, 0) == 0);
    free(got);

    CHECK_OK(be->jumprelu_fwd(be, dpre, dl, dout, rows, cols));
    got = host_from(dout, n);
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++) {
            float x = pre[r * cols + c];
            want[r * cols + c] = x > expf(lthr[c]) ? x : 0;
        }
    CHECK(n_far(got, want, n, 0, 0) == 0);
    free(got);

    /* active_grad, beta = 0 and beta = 1 (acts = the jumprelu output above) */
    CHECK_OK(be->upload(be, dout, gp0, n));
    {
        float *dacts = NULL, *hacts;
        CHECK_OK(be->alloc(be, n, &dacts));
        CHECK_OK(be->jumprelu_fwd(be, dpre, dl, dacts, rows, cols));
        hacts = host_from(dacts, n);
        CHECK_OK(be->active_grad(be, dacts, dga, 1.0f, dout, n));
        got = host_from(dout, n);
        for (i = 0; i < n; i++)
            want[i] = (double)gp0[i] + (hacts[i] != 0 ? ga[i] : 0);
        CHECK(n_far(got, want, n, 1e-6, 1e-6) == 0);
        free(got);
        CHECK_OK(be->active_grad(be, dacts, dga, 0.0f, dout, n));
        got = host_from(dout, n);
        for (i = 0; i < n; i++)
            want[i] = hacts[i] != 0 ? ga[i] : 0;
        CHECK(n_far(got, want, n, 0, 0) == 0);
        free(got);
        free(hacts);
        be->free(be, dacts);
    }

    /* jumprelu_bwd: choose pre near the thresholds so the kernel window is hit */
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++)
            pre[r * cols + c] = expf(lthr[c]) + (float)(0.4 * lg_rng_normal(&rng));
    CHECK_OK(be->upload(be, dpre, pre, n));
    CHECK_OK(be->jumprelu_bwd(be, dpre, dl, dga, l0s, eps, dout, dgl, rows, cols));
    for (c = 0; c < cols; c++) {
        double th = exp((double)lthr[c]), acc = 0;
        int hits = 0;
        for (r = 0; r < rows; r++) {
            double x = pre[r * cols + c], u = (x - th) / eps;
            want[r * cols + c] = x > th ? ga[r * cols + c] : 0;
            if (fabs(u) < 0.5) {
                acc += -(th / eps) * ga[r * cols + c] - l0s / eps;
                hits++;
            }
        }
        wl[c] = th * acc;
    }
    got = host_from(dout, n);
    CHECK(n_far(got, want, n, 0, 0) == 0);
    free(got);
    got = host_from(dgl, cols);
    CHECK(n_far(got, wl, cols, 1e-5, 1e-4) == 0);
    {
        int nonzero = 0;
        for (c = 0; c < cols; c++)
            nonzero += wl[c] != 0;
        CHECK(nonzero >= cols / 2); /* the test exercises the window */
    }
    free(got);

    be->free(be, dpre);
    be->free(be, dl);
    be->free(be, dga);
    be->free(be, dout);
    be->free(be, dgl);
    free(pre);
    free(lthr);
    free(ga);
    free(gp0);
    free(want);
    free(wl);
}

static void test_elementwise(void)
{
    const int rows = 17, cols = 9;
    const size_t n = (size_t)rows * cols;
    float *X = host_randn(n, 1), *Y = host_randn(n, 1), *bias = host_randn(cols, 1);
    float *o0 = host_randn(cols, 1);
    double *want = calloc(n, sizeof(double));
    float *dX = dev_from(X, n), *dY = dev_from(Y, n), *db = dev_from(bias, cols);
    float *dO = dev_from(o0, cols), *dT = NULL, *got;
    size_t i;
    int r, c;
    CHECK_OK(be->alloc(be, n, &dT));

    CHECK_OK(be->add_bias_rows(be, dX, db, -0.5f, dT, rows, cols));
    got = host_from(dT, n);
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++)
            want[r * cols + c] = X[r * cols + c] - 0.5 * bias[c];
    CHECK(n_far(got, want, n, 1e-6, 1e-6) == 0);
    free(got);

    CHECK_OK(be->col_sum(be, dX, rows, cols, 2.0f, 0.5f, dO));
    got = host_from(dO, cols);
    for (c = 0; c < cols; c++) {
        double s = 0;
        for (r = 0; r < rows; r++)
            s += X[r * cols + c];
        want[c] = 0.5 * o0[c] + 2 * s;
    }
    CHECK(n_far(got, want, cols, 1e-5, 1e-5) == 0);
    free(got);
    CHECK_OK(be->col_sum(be, dX, rows, cols, 1.0f, 0.0f, dO));
    got = host_from(dO, cols);
    for (c = 0; c < cols; c++) {
        double s = 0;
        for (r = 0; r < rows; r++)
            s += X[r * cols + c];
        want[c] = s;
    }
    CHECK(n_far(got, want, cols, 1e-5, 1e-5) == 0);
    free(got);

    CHECK_OK(be->axpby(be, n, 1.5f, dX, -2.0f, dY, dT));
    got = host_from(dT, n);
    for (i = 0; i < n; i++)
        want[i] = 1.5 * X[i] - 2.0 * Y[i];
    CHECK(n_far(got, want, n, 1e-6, 1e-6) == 0);
    free(got);

    CHECK_OK(be->scale_shift(be, dT, 0.25f, 3.0f, n));
    got = host_from(dT, n);
    for (i = 0; i < n; i++)
        want[i] = 0.25 * want[i] + 3.0;
    CHECK(n_far(got, want, n, 1e-6, 1e-6) == 0);
    free(got);

    CHECK_OK(be->mask_ge(be, dX, 0.2f, dT, n));
    got = host_from(dT, n);
    for (i = 0; i < n; i++)
        want[i] = X[i] >= 0.2f ? 1 : 0;
    CHECK(n_far(got, want, n, 0, 0) == 0);
    free(got);

    be->free(be, dX);
    be->free(be, dY);
    be->free(be, db);
    be->free(be, dO);
    be->free(be, dT);
    free(X);
    free(Y);
    free(bias);
    free(o0);
    free(want);
}

static void test_reductions(void)
{
    const int rows = 50, cols = 21;
    const size_t n = (size_t)rows * cols;
    float *X = host_randn(n, 1), *Y = host_randn(n, 1), *since = malloc(cols * 4), *counts0;
    float *dX, *dY, *dS, *dC = NULL, *got;
    double s = 0, ss = 0, dt = 0, v, want[64];
    size_t i, nnz = 0;
    int r, c;
    for (i = 0; i < n; i++)
        if (i % 4 == 0 || (i % cols) == 4) /* column 4 never fires */
            X[i] = 0;
    for (i = 0; i < n; i++) {
        s += X[i];
        ss += (double)X[i] * X[i];
        dt += (double)X[i] * Y[i];
        nnz += X[i] != 0;
    }
    dX = dev_from(X, n);
    dY = dev_from(Y, n);
    CHECK_OK(be->sum(be, dX, n, &v));
    CHECK_CLOSE(v, s, 1e-9, 1e-12);
    CHECK_OK(be->sumsq(be, dX, n, &v));
    CHECK_CLOSE(v, ss, 1e-9, 1e-12);
    CHECK_OK(be->dot(be, dX, dY, n, &v));
    CHECK_CLOSE(v, dt, 1e-9, 1e-12);
    CHECK_OK(be->count_nonzero(be, dX, n, &v));
    CHECK(v == (double)nnz);

    counts0 = calloc(cols, sizeof(float));
    counts0[0] = 5;
    dC = dev_from(counts0, cols);
    CHECK_OK(be->col_count_nonzero(be, dX, rows, cols, dC));
    got = host_from(dC, cols);
    for (c = 0; c < cols; c++) {
        want[c] = counts0[c];
        for (r = 0; r < rows; r++)
            want[c] += X[r * cols + c] != 0;
    }
    CHECK(n_far(got, want, cols, 0, 0) == 0);
    free(got);

    for (c = 0; c < cols; c++)
        since[c] = (float)c;
    dS = dev_from(since, cols);
    CHECK_OK(be->fired_update(be, dX, rows, cols, dS));
    got = host_from(dS, cols);
    for (c = 0; c < cols; c++)
        want[c] = c == 4 ? 5.0 : 0.0;
    CHECK(n_far(got, want, cols, 0, 0) == 0);
    free(got);

    be->free(be, dX);
    be->free(be, dY);
    be->free(be, dS);
    be->free(be, dC);
    free(X);
    free(Y);
    free(since);
    free(counts0);
}

static void test_geometry_adam(void)
{
    const int rows = 12, cols = 7;
    const size_t n = (size_t)rows * cols;
    float *W = host_randn(n, 2), *G = host_randn(n, 1), *M0 = host_randn(n, 0.1);
    float *V0 = host_randn(n, 0.1), *got;
    double *want = calloc(n, sizeof(double));
    float *dW, *dG, *dM, *dV;
    lg_adam_args a = {1e-2f, 0.9f, 0.999f, 1e-8f, 1.0f - 0.9f * 0.9f * 0.9f,
                      1.0f - 0.999f * 0.999f * 0.999f};
    size_t i;
    int r, c;
    for (c = 0; c < cols; c++)
        W[3 * cols + c] = 0; /* a zero row stays zero */
    for (i = 0; i < n; i++)
        V0[i] = fabsf(V0[i]);
    dW = dev_from(W, n);
    dG = dev_from(G, n);

    CHECK_OK(be->project_out_parallel(be, dW, dG, rows, cols));
    got = host_from(dG, n);
    for (r = 0; r < rows; r++) {
        double gw = 0, ww = 0;
        for (c = 0; c < cols; c++) {
            gw += (double)G[r * cols + c] * W[r * cols + c];
            ww += (double)W[r * cols + c] * W[r * cols + c];
        }
        for (c = 0; c < cols; c++)
            want[r * cols + c] = G[r * cols + c] - (ww > 0 ? gw / ww : 0) * W[r * cols + c];
    }
    CHECK(n_far(got, want, n, 1e-6, 1e-5) == 0);
    for (r = 0; r < rows; r++) { /* and the result is orthogonal to W's row */
        double gw = 0;
        for (c = 0; c < cols; c++)
            gw += (double)got[r * cols + c] * W[r * cols + c];
        CHECK(fabs(gw) < 1e-5);
    }
    free(got);

    CHECK_OK(be->renorm_rows(be, dW, rows, cols));
    got = host_from(dW, n);
    for (r = 0; r < rows; r++) {
        double ww = 0;
        for (c = 0; c < cols; c++)
            ww += (double)W[r * cols + c] * W[r * cols + c];
        for (c = 0; c < cols; c++)
            want[r * cols + c] = ww > 0 ? W[r * cols + c] / sqrt(ww) : 0;
    }
    CHECK(n_far(got, want, n, 1e-7, 1e-6) == 0);
    free(got);

    /* Adam on fresh copies */
    CHECK_OK(be->upload(be, dW, W, n));
    CHECK_OK(be->upload(be, dG, G, n));
    dM = dev_from(M0, n);
    dV = dev_from(V0, n);
    CHECK_OK(be->adam_step(be, dW, dG, dM, dV, n, &a));
    {
        double *wm = calloc(n, sizeof(double)), *wv = calloc(n, sizeof(double));
        float *gm, *gv;
        for (i = 0; i < n; i++) {
            wm[i] = 0.9 * M0[i] + 0.1 * G[i];
            wv[i] = 0.999 * V0[i] + 0.001 * (double)G[i] * G[i];
            want[i] = W[i] - 1e-2 * (wm[i] / a.bc1) / (sqrt(wv[i] / a.bc2) + 1e-8);
        }
        got = host_from(dW, n);
        gm = host_from(dM, n);
        gv = host_from(dV, n);
        CHECK(n_far(got, want, n, 1e-6, 1e-5) == 0);
        CHECK(n_far(gm, wm, n, 1e-7, 1e-5) == 0);
        CHECK(n_far(gv, wv, n, 1e-8, 1e-5) == 0);
        free(got);
        free(gm);
        free(gv);
        free(wm);
        free(wv);
    }

    /* clipping over two buffers */
    {
        float *bufs[2];
        size_t ns[2] = {n, 5};
        float *G2 = host_randn(5, 1), *dG2 = dev_from(G2, 5);
        double norm, ref = 0, after;
        for (i = 0; i < n; i++)
            ref += (double)G[i] * G[i];
        for (i = 0; i < 5; i++)
            ref += (double)G2[i] * G2[i];
        ref = sqrt(ref);
        CHECK_OK(be->upload(be, dG, G, n));
        bufs[0] = dG;
        bufs[1] = dG2;
        CHECK_OK(lg_backend_clip_grad_norm(be, bufs, ns, 2, ref * 2, &norm));
        CHECK_CLOSE(norm, ref, 1e-9, 1e-9);
        CHECK_OK(lg_backend_clip_grad_norm(be, bufs, ns, 2, 0.0, &norm)); /* off */
        CHECK_CLOSE(norm, ref, 1e-9, 1e-9);
        CHECK_OK(lg_backend_clip_grad_norm(be, bufs, ns, 2, 1.0, &norm));
        CHECK_OK(lg_backend_clip_grad_norm(be, bufs, ns, 2, 0.0, &after));
        CHECK_CLOSE(after, 1.0, 1e-6, 0);
        be->free(be, dG2);
        free(G2);
    }

    be->free(be, dW);
    be->free(be, dG);
    be->free(be, dM);
    be->free(be, dV);
    free(W);
    free(G);
    free(M0);
    free(V0);
    free(want);
}

static void test_get(void)
{
    const lg_backend *b = NULL;
    CHECK_OK(lg_backend_get("cpu", &b));
    CHECK(b == lg_backend_cpu() && strcmp(b->name, "cpu") == 0);
    CHECK(strncmp(b->device, "cpu: ", 5) == 0);
    CHECK_OK(lg_backend_get("auto", &b));
    CHECK(b == (lg_backend_cuda() ? lg_backend_cuda() : lg_backend_cpu()));
    CHECK(lg_backend_get("tpu", &b) == LG_EINPUT && strstr(lg_error_msg(), "tpu"));
    if (!lg_backend_cuda())
        CHECK(lg_backend_get("cuda", &b) == LG_EINPUT);
}

static void run_all(const lg_backend *b)
{
    be = b;
    lg_rng_init(&rng, 1234, 99);
    fprintf(stderr, "backend %s: %s\n", b->name, b->device);
    test_memory();
    test_gemm();
    test_gemm_batched();
    test_topk_rows();
    test_topk_batch();
    test_activations();
    test_elementwise();
    test_reductions();
    test_geometry_adam();
}

static void test_cpu(void) { run_all(lg_backend_cpu()); }

static void test_cuda(void)
{
    if (!lg_backend_cuda())
        CHECK_SKIP("no GPU (test_cuda: no CUDA backend)");
    run_all(lg_backend_cuda());
}

CHECK_MAIN(T(test_get), T(test_cpu), T(test_cuda))
