/*
 * test_cpu_encode.c - the CPU backend's fused TopK encoder (backend.h
 * encode_topk_csr, engine/backend_cpu_encode.c) against the three ops it
 * replaces (gemm, add_bias_rows, topk_rows_csr), bit for bit: the CSR, the
 * entry count and, when kept, pre; at 1, 2 and 3 threads, with pre kept and
 * used as scratch, on shapes that take the blocked path (rows not a multiple
 * of the block, ties in the values) and the fallback (rows < cols, d = 0,
 * k > cols).
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

CHECK_MAIN(T(test_fused_matches_ops))
