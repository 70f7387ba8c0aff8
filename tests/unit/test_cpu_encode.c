/*
 * test_cpu_encode.c - the CPU backend's fused TopK encoder (backend.h
 * encode_topk_csr, engine/backend_cpu_encode.c) against the three ops it
 * replaces (gemm, add_bias_rows, topk_rows_csr), bit for bit: the CSR, the
 * entry count and, when kept, pre; at 1, 2 and 3 threads, with pre kept and
 * used as scratch, on shapes that take the blocked path (rows not a multiple
 * of the block, ties in the values) and the fallback (rows < cols, d = 0,
 * k > cols). Also the two sparse ops this work rearranged, against plain loops
 * written here with the arithmetic backend.h and backend_cpu_sparse.c
 * promise: csr_row_dots (four dots at a time) and csc_scatter_rows (rows
 * taken in chunks when the latents' sums fit in cache), bit for bit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/rng.h"
#include "engine/backend.h"
#include "tests/unit/check.h"

static lg_rng rng;

/* n values, rounded to multiples of quant when quant > 0 (ties) */
static float *randn(size_t n, double scale, double quant)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    size_t i;
    for (i = 0; i < n; i++) {
        double v = scale * lg_rng_normal(&rng);
        p[i] = (float)(quant > 0 ? quant * (double)(long)(v / quant) : v);
    }
    return p;
}

static void test_fused_matches_ops(void)
{
    const lg_backend *be = lg_backend_cpu();
    static const struct { int rows, cols, d, k; double quant; } cs[] = {
        {300, 64, 16, 8, 0},    {300, 64, 16, 8, 0.25}, {1030, 1024, 128, 32, 0}, {4096, 1024, 128, 32, 0},
        {129, 100, 7, 30, 0.5}, {50, 100, 8, 5, 0},     {200, 10, 4, 16, 0},      {260, 48, 0, 4, 0},
        {256, 256, 3, 1, 1.0}};
    size_t ci;
    int threads, runs = 0;
    lg_rng_init(&rng, 23, LG_STREAM_DATA);
    CHECK(be->encode_topk_csr != NULL);
    CHECK(lg_backend_cpu_dense()->encode_topk_csr == NULL);
    if (!be->encode_topk_csr)
        return;
    for (ci = 0; ci < sizeof(cs) / sizeof(cs[0]); ci++) {
        const int rows = cs[ci].rows, cols = cs[ci].cols, d = cs[ci].d, k = cs[ci].k;
        const int kk = k < cols ? k : cols;
        const size_t n = (size_t)rows * cols;
        float *xc = randn((size_t)rows * (d ? d : 1), 1.0, cs[ci].quant);
        float *W = randn((size_t)(d ? d : 1) * cols, 0.3, cs[ci].quant);
        float *b = randn((size_t)cols, 0.5, cs[ci].quant);
        float *pre_ref = malloc(n * sizeof(float)), *pre = malloc(n * sizeof(float));
        int32_t *ptr_ref = malloc((size_t)(rows + 1) * 4), *ptr = malloc((size_t)(rows + 1) * 4);
        int32_t *idx_ref = malloc((size_t)rows * kk * 4), *idx = malloc((size_t)rows * kk * 4);
        float *val_ref = malloc((size_t)rows * kk * 4), *val = malloc((size_t)rows * kk * 4);
        long long nnz_ref = -1, nnz = -1;
        lg_backend_cpu_set_threads(1);
        CHECK_OK(be->gemm(be, 0, 0, rows, cols, d, 1.0f, xc, d, W, cols, 0.0f, pre_ref, cols));
        CHECK_OK(be->add_bias_rows(be, pre_ref, b, 1.0f, pre_ref, rows, cols));
        CHECK_OK(be->topk_rows_csr(be, pre_ref, NULL, rows, cols, k, ptr_ref, idx_ref, val_ref, &nnz_ref));
        CHECK_MSG(nnz_ref > 0, "case %zu: the reference kept nothing", ci);
        for (threads = 1; threads <= 3; threads++) {
            int keep;
            lg_backend_cpu_set_threads(threads);
            for (keep = 0; keep <= 1; keep++) {
                memset(pre, 0xff, n * sizeof(float)); /* NaN: a row the op forgot shows */
                memset(idx, 0xff, (size_t)rows * kk * 4);
                CHECK_OK(be->encode_topk_csr(be, xc, W, b, rows, d, cols, k, pre, keep, ptr, idx, val, &nnz));
                CHECK_MSG(nnz == nnz_ref && memcmp(ptr, ptr_ref, (size_t)(rows + 1) * 4) == 0 &&
                              memcmp(idx, idx_ref, (size_t)nnz_ref * 4) == 0 &&
                              memcmp(val, val_ref, (size_t)nnz_ref * 4) == 0,
                          "case %zu (%d x %d, d %d, k %d), %d threads, keep %d: the CSR differs", ci, rows, cols,
                          d, k, threads, keep);
                if (keep)
                    CHECK_MSG(memcmp(pre, pre_ref, n * sizeof(float)) == 0,
                              "case %zu, %d threads: pre differs from gemm + add_bias_rows", ci, threads);
                runs++;
            }
        }
        free(xc);
        free(W);
        free(b);
        free(pre_ref);
        free(pre);
        free(ptr_ref);
        free(ptr);
        free(idx_ref);
        free(idx);
        free(val_ref);
        free(val);
    }
    lg_backend_cpu_set_threads(2);
    CHECK(runs == 6 * (int)(sizeof(cs) / sizeof(cs[0])));
}

/* dot8's arithmetic: eight lanes (index mod 8), the tail to lane 0, then
 * ((l0+l4)+(l1+l5))+((l2+l6)+(l3+l7)) */
static float ref_dot8(const float *a, const float *b, int n)
{
    float l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int c = 0, q;
    for (; c + 8 <= n; c += 8)
        for (q = 0; q < 8; q++)
            l[q] += a[c + q] * b[c + q];
    for (; c < n; c++)
        l[0] += a[c] * b[c];
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

/* a random CSR [rows, cols] with up to k entries per row (ascending
 * columns), values != 0 */
static void random_csr(int rows, int cols, int k, int32_t *ptr, int32_t *idx, float *val)
{
    int r, c;
    ptr[0] = 0;
    for (r = 0; r < rows; r++) {
        int32_t e = ptr[r];
        const int want = (int)(lg_rng_u32(&rng) % (uint32_t)(k + 1));
        for (c = 0; c < cols && e - ptr[r] < want; c++)
            if (lg_rng_u32(&rng) % (uint32_t)cols < (uint32_t)(2 * want)) {
                idx[e] = c;
                val[e++] = (float)lg_rng_normal(&rng) + 3.0f;
            }
        ptr[r + 1] = e;
    }
}

static void test_sparse_ops_match_plain_loops(void)
{
    const lg_backend *be = lg_backend_cpu();
    /* rows, cols (latents), k, d: chunked scatter (rows of R > 512 KiB, sums <= 1 MiB), unchunked
     * (sums > 1 MiB; or R small), a d that is not a multiple of 8 */
    static const struct { int rows, cols, k, d; } cs[] = {
        {2500, 200, 24, 128}, {1500, 2600, 20, 128}, {300, 64, 9, 20}, {5000, 150, 7, 37}};
    size_t ci;
    int threads, bad = 0;
    lg_rng_init(&rng, 29, LG_STREAM_DATA);
    for (ci = 0; ci < sizeof(cs) / sizeof(cs[0]); ci++) {
        const int rows = cs[ci].rows, cols = cs[ci].cols, k = cs[ci].k, d = cs[ci].d;
        int32_t *ptr = malloc((size_t)(rows + 1) * 4), *idx = malloc((size_t)rows * k * 4);
        int32_t *tptr = malloc((size_t)(cols + 1) * 4), *trow = malloc((size_t)rows * k * 4),
                *tent = malloc((size_t)rows * k * 4);
        float *val = malloc((size_t)rows * k * 4), *R = randn((size_t)rows * d, 1.0, 0),
              *W = randn((size_t)cols * d, 1.0, 0);
        float *dots = malloc((size_t)rows * k * 4), *dots_ref = malloc((size_t)rows * k * 4);
        float *sc = malloc((size_t)cols * d * 4), *sc_ref = malloc((size_t)cols * d * 4), *acc = malloc((size_t)d * 4);
        int r, j, c, layout;
        random_csr(rows, cols, k, ptr, idx, val);
        CHECK_OK(be->csr_transpose(be, ptr, idx, rows, cols, tptr, trow, tent));
        for (r = 0; r < rows; r++) { /* out = 0.5 out + 0.25 dot for 3 <= idx < cols - 2; the others keep 7 */
            int32_t e;
            for (e = ptr[r]; e < ptr[r + 1]; e++)
                dots_ref[e] = idx[e] >= 3 && idx[e] < cols - 2
                                  ? 0.5f * 7.0f + 0.25f * ref_dot8(R + (size_t)r * d, W + (size_t)idx[e] * d, d)
                                  : 7.0f;
        }
        for (threads = 1; threads <= 3; threads++) {
            lg_backend_cpu_set_threads(threads);
            for (r = 0; r < ptr[rows]; r++)
                dots[r] = 7.0f;
            CHECK_OK(be->csr_row_dots(be, ptr, idx, rows, 3, cols - 2, R, W, d, 0.25f, 0.5f, dots));
            bad += memcmp(dots, dots_ref, (size_t)ptr[rows] * 4) != 0;
            for (layout = 0; layout <= 1; layout++) { /* decoder rows [cols, d]; encoder columns [d, cols] */
                const long long ld_row = layout ? 1 : d, ld_col = layout ? cols : 1;
                for (j = 0; j < cols * d; j++)
                    sc[j] = sc_ref[j] = 0.125f * (float)(j % 17);
                for (j = 1; j < cols - 1; j++) { /* latents [1, cols - 1) */
                    int32_t t;
                    for (c = 0; c < d; c++)
                        acc[c] = 0.0f;
                    for (t = tptr[j]; t < tptr[j + 1]; t++)
                        for (c = 0; c < d; c++)
                            acc[c] += val[tent[t]] * R[(size_t)trow[t] * d + c];
                    for (c = 0; c < d; c++) {
                        float *o = sc_ref + j * ld_row + c * ld_col;
                        *o = 0.75f * *o + 1.5f * acc[c];
                    }
                }
                CHECK_OK(be->csc_scatter_rows(be, tptr, trow, tent, val, 1, cols - 1, R, d, 1.5f, 0.75f, sc,
                                              ld_row, ld_col));
                bad += memcmp(sc, sc_ref, (size_t)cols * d * 4) != 0;
            }
        }
        free(ptr);
        free(idx);
        free(tptr);
        free(trow);
        free(tent);
        free(val);
        free(R);
        free(W);
        free(dots);
        free(dots_ref);
        free(sc);
        free(sc_ref);
        free(acc);
    }
    lg_backend_cpu_set_threads(2);
    CHECK_MSG(bad == 0, "%d of %d row-dot / scatter results differ from the plain loops", bad,
              (int)(sizeof(cs) / sizeof(cs[0])) * 3 * 3);
}

CHECK_MAIN(T(test_fused_matches_ops), T(test_sparse_ops_match_plain_loops))
