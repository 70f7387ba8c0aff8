/*
 * backend_cpu_encode.c - the CPU backend's fused TopK encoder (backend.h
 * encode_topk_csr): pre = xc @ W_enc + b_enc and its per-row top-k as CSR,
 * a block of rows at a time.
 *
 * Why: run as three ops, the encoder's output pre [B, d_sae] (16 MiB at
 * B = 4096, d_sae = 1024) goes through memory four times: OpenBLAS zeroes it
 * (beta = 0), its kernel writes it, add_bias_rows reads and writes it, the
 * top-k reads it. Here each block of rows of lg_cpu_gemm_blocks (128 rows,
 * 512 KiB) gets its bias and its top-k right after its sgemm, while it is
 * still in the core's cache.
 *
 * Same bits: the blocks and the sgemm call of each block are exactly
 * lg_cpu_gemm_blocks's (lg_cpu_gemm_block_size), the bias is added with
 * add_bias_rows's expression (x + alpha * b, alpha = 1), and each row's
 * selection is topk_rows_csr's (lg_cpu_topk_row, then the same compaction).
 * Shapes that lg_cpu_gemm_blocks would cut by columns (rows < cols) or with
 * d = 0 run the three ops one after the other instead.
 * tests/unit/test_cpu_encode.c compares the two at 1, 2 and 3 threads.
 */
#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "base/base.h"
#include "engine/backend_cpu_sparse.h"

/* as backend_cpu_sparse.c: below this much work one thread */
#define PAR_MIN 32768

static int encode_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Y = X + alpha * bias over rows [r0, r1), as backend_cpu.c's add_bias_rows */
static void add_bias_block(float *X, const float *bias, float alpha, int r0, int r1, int cols)
{
    int r, c;
    for (r = r0; r < r1; r++) {
        float *x = X + (size_t)r * cols;
        for (c = 0; c < cols; c++)
            x[c] = x[c] + alpha * bias[c];
    }
}

int lg_cpu_encode_topk_csr(const lg_backend *be, const float *xc, const float *W_enc, const float *b_enc,
                           int rows, int d, int cols, int k, float *pre, int keep_pre, int32_t *ptr,
                           int32_t *idx, float *val, long long *nnz)
{
    const float one = 1.0f;
    float *scratch = NULL;
    int nt = lg_cpu_threads(), bs, nb, b, blas_threads, scratch_pre;
    *nnz = 0;
    if (rows <= 0 || cols <= 0)
        return be->topk_rows_csr(be, pre, NULL, rows, cols, k, ptr, idx, val, nnz);
    if (rows < cols || d <= 0 || k <= 0) { /* the three ops (gemm cuts by columns; K = 0) */
        int err;
        if ((err = be->gemm(be, 0, 0, rows, cols, d, 1.0f, xc, d, W_enc, cols, 0.0f, pre, cols)) < 0 ||
            (err = be->add_bias_rows(be, pre, b_enc, 1.0f, pre, rows, cols)) < 0)
            return err;
        return be->topk_rows_csr(be, pre, NULL, rows, cols, k, ptr, idx, val, nnz);
    }
    if (k > cols)
        k = cols;
    bs = lg_cpu_gemm_block_size(rows);
    nb = (rows + bs - 1) / bs;
    /* pre not kept: each thread computes its blocks in the same slot (its
     * own block of pre's first rows), which stays in cache from block to
     * block and step to step, instead of a fresh 512 KiB of memory each time */
    scratch_pre = !keep_pre && (size_t)nt * bs <= (size_t)rows;
    if (!(scratch = lg_malloc((size_t)nt * 2 * cols * sizeof(float))))
        return lg_error_wrap("cpu backend: encode_topk_csr");
    /* OpenBLAS single-threaded for the blocks, as in lg_cpu_gemm_blocks */
    blas_threads = openblas_get_num_threads();
    if (blas_threads != 1)
        openblas_set_num_threads(1);
    /* lg_cpu_gemm_blocks's condition for threads, so that the blocks are
     * the same calls (they are whatever the thread count) */
#pragma omp parallel num_threads(nt) if (nb > 1 && (double)rows * cols * d > PAR_MIN * 32.0)
    {
        const int tid = encode_thread_id();
        float *f = scratch + (size_t)tid * 2 * cols;
        int32_t *fi = (int32_t *)(f + cols);
#pragma omp for schedule(dynamic, 1)
        for (b = 0; b < nb; b++) {
            const int i0 = b * bs, n = rows - i0 < bs ? rows - i0 : bs;
            /* block b's rows of pre (or the thread's slot) */
            float *P = pre + (size_t)(scratch_pre ? tid * bs : i0) * cols;
            int r;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, cols, d, 1.0f, xc + (size_t)i0 * d, d,
                        W_enc, cols, 0.0f, P, cols);
            add_bias_block(P, b_enc, one, 0, n, cols);
            for (r = 0; r < n; r++)
                ptr[i0 + r + 1] = lg_cpu_topk_row(P + (size_t)r * cols, NULL, cols, k, f, fi,
                                                  idx + (int64_t)(i0 + r) * k, val + (int64_t)(i0 + r) * k);
        }
    }
    if (blas_threads != 1)
        openblas_set_num_threads(blas_threads);
    lg_free(scratch);
    *nnz = lg_cpu_csr_compact(ptr, idx, val, rows, k);
    return 0;
}
