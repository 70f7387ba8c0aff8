// cuda_sim.cu - cross-seed MMCS of two dictionaries on the GPU (kernels/cuda.h).
//
// The CPU code (engine/consistency.c) takes m1 m2 d float64 multiply-adds on
// one thread: hours at m = 65536, d = 2304. Here: normalise the rows (norm in
// double, one warp per row), then for blocks of R rows of A compute the
// cosine tile S = A_blk B^T [R, m2] with one cuBLAS SGEMM and reduce it at
// once: the row maxima are final (a tile holds whole rows), the column
// maxima are folded into a running [m2] vector tile after tile in stream
// order. max is exact and order-free, so the maxima are bit-identical for any
// R; the two means are summed by the backend's fixed-order double reduction.
// Memory: A, B (float) + one tile of R m2 <= 64 Mi floats.
#include <math.h>
#include <stdint.h>

#include "kernels/cuda_common.cuh"


#define SIM_TILE_MAX ((size_t)64 << 20) // floats in one cosine tile
#define SIM_WARPS 8

// Rows of X [rows, d] scaled to unit norm in place (norm in double). The
// first zero or non-finite row (smallest index: atomicMin is exact) goes to
// *bad, which starts at INT_MAX.
__global__ void k_sim_normalise(float *X, int rows, int d, int *bad)
{
    int r = blockIdx.x * SIM_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= rows)
        return;
    float *x = X + (size_t)r * d; // [d]
    double ss = lg_warp_row_sumsq(x, d);
    if (!(ss > 0.0) || isinf(ss)) {
        if (lane == 0)
            atomicMin(bad, r);
        return;
    }
    double norm = sqrt(ss);
    for (int c = lane; c < d; c += 32)
        x[c] = (float)((double)x[c] / norm);
}

// rowmax[i] = max_j s(S[i, j]) for the R rows of the tile S [R, m2].
__global__ void k_sim_rowmax(const float *S, int m2, int abs_cos, float *rowmax)
{
    __shared__ float sh[LG_CUDA_THREADS];
    const float *s = S + (size_t)blockIdx.x * m2; // [m2]
    float best = -INFINITY;
    for (int j = threadIdx.x; j < m2; j += LG_CUDA_THREADS) {
        float v = abs_cos ? fabsf(s[j]) : s[j];
        best = fmaxf(best, v);
    }
    sh[threadIdx.x] = best;
    __syncthreads();
    for (int w = LG_CUDA_THREADS / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w)
            sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + w]);
        __syncthreads();
    }
    if (threadIdx.x == 0)
        rowmax[blockIdx.x] = sh[0];
}

// colmax[j] = max(colmax[j], max_i s(S[i, j])) over the R rows of the tile.
__global__ void k_sim_colmax(const float *S, int R, int m2, int abs_cos, float *colmax)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= m2)
        return;
    float best = colmax[j];
    for (int i = 0; i < R; i++) {
        float v = S[(size_t)i * m2 + j];
        best = fmaxf(best, abs_cos ? fabsf(v) : v);
    }
    colmax[j] = best;
}

__global__ void k_sim_fill(float *p, float v, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        p[i] = v;
}

static int sim_normalise(lg_cuda_ctx *ctx, float *X, int rows, int d, int *dbad, const char *name)
{
    int bad = INT32_MAX;
    LG_CU("dict_mmcs", cudaMemcpyAsync(dbad, &bad, sizeof(int), cudaMemcpyHostToDevice, ctx->stream));
    k_sim_normalise<<<(rows + SIM_WARPS - 1) / SIM_WARPS, 32 * SIM_WARPS, 0, ctx->stream>>>(X, rows,
                                                                                         d, dbad);
    LG_CU("dict_mmcs", cudaGetLastError());
    LG_CU("dict_mmcs", cudaMemcpyAsync(&bad, dbad, sizeof(int), cudaMemcpyDeviceToHost, ctx->stream));
    LG_CU("dict_mmcs", cudaStreamSynchronize(ctx->stream));
    if (bad != INT32_MAX)
        return lg_error_set(LG_EINPUT, "dict_mmcs: %s: row %d is zero or not finite", name, bad);
    return 0;
}

#define SIM_TRY(call)           \
    do {                        \
        if ((err = (call)) < 0) \
            goto out;           \
    } while (0)

#define SIM_CU(call)                                            \
    do {                                                        \
        cudaError_t e_ = (call);                                \
        if (e_ != cudaSuccess) {                                \
            err = lg_cuda_fail("dict_mmcs", e_);                \
            goto out;                                           \
        }                                                       \
    } while (0)

int lg_cudam_dict_mmcs(const float *A, int m1, const float *B, int m2, int d, int abs_cos,
                       double *mmcs_ab, double *mmcs_ba, float *maxcos_a,
                                 float *maxcos_b)
{
    const lg_backend *be = lg_cudam_backend();
    lg_cuda_ctx *ctx;
    float *dA = NULL, *dB = NULL, *S = NULL, *rowmax = NULL, *colmax = NULL;
    int *dbad = NULL, err = 0, R;
    double sa = 0.0, sb = 0.0;
    const float one = 1.0f, zero = 0.0f;

    if (!be)
        return lg_error_set(LG_EINPUT, "dict_mmcs: no usable CUDA device (%s)",
                            lg_cudam_unavailable_reason());
    if (m1 < 1 || m2 < 1 || d < 1)
        return lg_error_set(LG_EINPUT, "dict_mmcs: bad sizes m1=%d m2=%d d=%d", m1, m2, d);
    ctx = lg_cuda_ctx_of(be);
    R = (int)(SIM_TILE_MAX / (size_t)m2);
    if (R < 1)
        R = 1;
    if (R > m1)
        R = m1;

    SIM_TRY(lg_cuda_malloc("dict_mmcs", (void **)&dA, (size_t)m1 * d * sizeof(float)));
    SIM_TRY(lg_cuda_malloc("dict_mmcs", (void **)&dB, (size_t)m2 * d * sizeof(float)));
    SIM_TRY(lg_cuda_malloc("dict_mmcs", (void **)&S, (size_t)R * m2 * sizeof(float)));
    SIM_TRY(lg_cuda_malloc("dict_mmcs", (void **)&rowmax, (size_t)m1 * sizeof(float)));
    SIM_TRY(lg_cuda_malloc("dict_mmcs", (void **)&colmax, (size_t)m2 * sizeof(float)));
    SIM_TRY(lg_cuda_malloc("dict_mmcs", (void **)&dbad, sizeof(int)));
    SIM_CU(cudaMemcpyAsync(dA, A, (size_t)m1 * d * sizeof(float), cudaMemcpyHostToDevice,
                           ctx->stream));
    SIM_CU(cudaMemcpyAsync(dB, B, (size_t)m2 * d * sizeof(float), cudaMemcpyHostToDevice,
                           ctx->stream));
    SIM_TRY(sim_normalise(ctx, dA, m1, d, dbad, "A"));
    SIM_TRY(sim_normalise(ctx, dB, m2, d, dbad, "B"));
    k_sim_fill<<<(m2 + LG_CUDA_THREADS - 1) / LG_CUDA_THREADS, LG_CUDA_THREADS, 0, ctx->stream>>>(
        colmax, -INFINITY, m2);
    SIM_CU(cudaGetLastError());

    for (int i0 = 0; i0 < m1; i0 += R) {
        int r = m1 - i0 < R ? m1 - i0 : R;
        // row-major S [r, m2] = A_blk [r, d] @ B^T: column-major S^T = B A_blk^T
        cublasStatus_t s = cublasSgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, m2, r, d, &one, dB, d,
                                       dA + (size_t)i0 * d, d, &zero, S, m2);
        if (s != CUBLAS_STATUS_SUCCESS) {
            err = lg_cublas_fail("dict_mmcs", s);
            goto out;
        }
        k_sim_rowmax<<<r, LG_CUDA_THREADS, 0, ctx->stream>>>(S, m2, abs_cos, rowmax + i0);
        SIM_CU(cudaGetLastError());
        k_sim_colmax<<<(m2 + LG_CUDA_THREADS - 1) / LG_CUDA_THREADS, LG_CUDA_THREADS, 0,
                       ctx->stream>>>(S, r, m2, abs_cos, colmax);
        SIM_CU(cudaGetLastError());
    }
    SIM_TRY(be->sum(be, rowmax, (size_t)m1, &sa));
    SIM_TRY(be->sum(be, colmax, (size_t)m2, &sb));
    *mmcs_ab = sa / m1;
    *mmcs_ba = sb / m2;
    if (maxcos_a)
        SIM_TRY(be->download(be, maxcos_a, rowmax, (size_t)m1));
    if (maxcos_b)
        SIM_TRY(be->download(be, maxcos_b, colmax, (size_t)m2));
out:
    if (err < 0)
        cudaStreamSynchronize(ctx->stream); // nothing in flight uses the buffers below
    cudaFree(dA);
    cudaFree(dB);
    cudaFree(S);
    cudaFree(rowmax);
    cudaFree(colmax);
    cudaFree(dbad);
    return err;
}
