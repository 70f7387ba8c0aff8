// cuda_reduce.cu - the CUDA backend's reductions: sums, sums of squares, dots
// and non-zero counts read back to the host (one op, or many with one
// read-back), and the decoder-geometry ops that reduce per row (renormalise
// rows, project the parallel component out of a gradient), one warp per row.
//
// Why this way: no float atomics anywhere. Host-returned reductions run a
// fixed grid (LG_CUDA_RED_BLOCKS x LG_CUDA_THREADS), each thread summing its
// grid-stride slice in double in index order, then a fixed shared-memory tree
// per block; the host adds the block partials in block order, so every value
// is the same bits run to run. Row ops use one warp per row with a fixed
// shuffle tree. The ops enter the backend table in cuda_backend.cu; their
// declarations are in cuda_common.cuh.
#include "kernels/cuda_common.cuh"

// ---- reductions to the host ------------------------------------------------------

enum { RED_SUM, RED_SUMSQ, RED_DOT, RED_NNZ };

// partial[block] = fixed tree over the block of each thread's in-order sum of
// its grid-stride slice (grid and block sizes are compile-time constants).
template <int KIND>
__global__ void __launch_bounds__(LG_CUDA_THREADS)
    k_reduce(const float *x, const float *y, size_t n, double *partial)
{
    __shared__ double sh[LG_CUDA_THREADS];
    double acc = 0.0;
    GRID_STRIDE(i, n)
    {
        double v = x[i];
        if (KIND == RED_SUM)
            acc += v;
        else if (KIND == RED_SUMSQ)
            acc += v * v;
        else if (KIND == RED_DOT)
            acc += v * (double)y[i];
        else
            acc += x[i] != 0.0f ? 1.0 : 0.0;
    }
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int w = LG_CUDA_THREADS / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w)
            sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        partial[blockIdx.x] = sh[0];
}

template <int KIND>
static int reduce_host(const lg_backend *be, const char *name, const float *x, const float *y,
                       size_t n, double *out)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    void *p;
    double s = 0.0;
    int err, b;
    *out = 0.0;
    if (!n)
        return 0;
    if ((err = lg_cuda_scratch(ctx, LG_CUDA_RED_BLOCKS * sizeof(double), &p)) < 0)
        return err;
    k_reduce<KIND><<<LG_CUDA_RED_BLOCKS, LG_CUDA_THREADS, 0, ctx->stream>>>(x, y, n, (double *)p);
    LG_CU(name, cudaGetLastError());
    LG_CU(name, cudaMemcpyAsync(ctx->host_partials, p, LG_CUDA_RED_BLOCKS * sizeof(double),
                                cudaMemcpyDeviceToHost, ctx->stream));
    LG_CU(name, cudaStreamSynchronize(ctx->stream));
    for (b = 0; b < LG_CUDA_RED_BLOCKS; b++) // block order
        s += ctx->host_partials[b];
    *out = s;
    return 0;
}

int lg_cuda_sum(const lg_backend *be, const float *x, size_t n, double *out)
{
    return reduce_host<RED_SUM>(be, "sum", x, NULL, n, out);
}

int lg_cuda_sumsq(const lg_backend *be, const float *x, size_t n, double *out)
{
    return reduce_host<RED_SUMSQ>(be, "sumsq", x, NULL, n, out);
}

int lg_cuda_dot(const lg_backend *be, const float *x, const float *y, size_t n, double *out)
{
    return reduce_host<RED_DOT>(be, "dot", x, y, n, out);
}

int lg_cuda_count_nonzero(const lg_backend *be, const float *x, size_t n, double *out)
{
    return reduce_host<RED_NNZ>(be, "count_nonzero", x, NULL, n, out);
}

// n reductions, one read-back: the same kernels as the single ops write
// their block partials to consecutive slices of one device array, which
// comes back in one copy and one synchronisation; the host then adds each
// request's partials in block order, exactly as reduce_host does (so every
// value is bit-identical to the single op's).
int lg_cuda_reduce_many(const lg_backend *be, const lg_reduce_req *reqs, int n, double *out)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    size_t need = (size_t)(n > 0 ? n : 0) * LG_CUDA_RED_BLOCKS;
    double *part;
    void *p;
    int err, i, b;
    if (n <= 0)
        return 0;
    if ((err = lg_cuda_scratch(ctx, need * sizeof(double), &p)) < 0)
        return err;
    part = (double *)p;
    if (need > ctx->host_many_cap) {
        LG_CU("reduce_many", cudaStreamSynchronize(ctx->stream));
        cudaFreeHost(ctx->host_many);
        ctx->host_many = NULL;
        ctx->host_many_cap = 0;
        if (cudaMallocHost((void **)&ctx->host_many, need * sizeof(double)) != cudaSuccess) {
            cudaGetLastError();
            return lg_error_set(LG_ENOMEM, "cuda: reduce_many: cannot pin %zu bytes",
                                need * sizeof(double));
        }
        ctx->host_many_cap = need;
    }
    for (i = 0; i < n; i++) {
        double *slice = part + (size_t)i * LG_CUDA_RED_BLOCKS;
        if (reqs[i].n == 0) {
            LG_CU("reduce_many", cudaMemsetAsync(slice, 0, LG_CUDA_RED_BLOCKS * sizeof(double),
                                                 ctx->stream));
            continue;
        }
        switch (reqs[i].kind) {
        case LG_RED_SUM:
            k_reduce<RED_SUM><<<LG_CUDA_RED_BLOCKS, LG_CUDA_THREADS, 0, ctx->stream>>>(
                reqs[i].x, NULL, reqs[i].n, slice);
            break;
        case LG_RED_SUMSQ:
            k_reduce<RED_SUMSQ><<<LG_CUDA_RED_BLOCKS, LG_CUDA_THREADS, 0, ctx->stream>>>(
                reqs[i].x, NULL, reqs[i].n, slice);
            break;
        case LG_RED_NNZ:
            k_reduce<RED_NNZ><<<LG_CUDA_RED_BLOCKS, LG_CUDA_THREADS, 0, ctx->stream>>>(
                reqs[i].x, NULL, reqs[i].n, slice);
            break;
        default:
            return lg_error_set(LG_EINTERNAL, "cuda: reduce_many: request %d: unknown kind %d", i,
                                reqs[i].kind);
        }
        LG_CU("reduce_many", cudaGetLastError());
    }
    LG_CU("reduce_many", cudaMemcpyAsync(ctx->host_many, part, need * sizeof(double),
                                         cudaMemcpyDeviceToHost, ctx->stream));
    LG_CU("reduce_many", cudaStreamSynchronize(ctx->stream));
    for (i = 0; i < n; i++) {
        double s = 0.0;
        for (b = 0; b < LG_CUDA_RED_BLOCKS; b++) // block order, as reduce_host
            s += ctx->host_many[(size_t)i * LG_CUDA_RED_BLOCKS + b];
        out[i] = s;
    }
    return 0;
}

// ---- decoder geometry: one warp per row ------------------------------------------

#define ROW_WARPS 8

__global__ void k_renorm_rows(float *W, int rows, int cols)
{
    int r = blockIdx.x * ROW_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= rows)
        return;
    float *w = W + (size_t)r * cols; // [cols]
    double ss = lg_warp_row_sumsq(w, cols);
    if (ss > 0.0) {
        float inv = (float)(1.0 / sqrt(ss));
        for (int c = lane; c < cols; c += 32)
            w[c] = __fmul_rn(w[c], inv);
    }
}

__global__ void k_project_out(const float *W, float *G, int rows, int cols)
{
    int r = blockIdx.x * ROW_WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (r >= rows)
        return;
    const float *w = W + (size_t)r * cols; // [cols]
    float *g = G + (size_t)r * cols;       // [cols]
    double gw = 0.0, ww = 0.0;
    for (int c = lane; c < cols; c += 32) {
        gw += (double)g[c] * w[c];
        ww += (double)w[c] * w[c];
    }
    gw = lg_warp_sum(gw);
    ww = lg_warp_sum(ww);
    if (ww == 0.0)
        return;
    float coef = (float)(gw / ww);
    for (int c = lane; c < cols; c += 32)
        g[c] = __fsub_rn(g[c], __fmul_rn(coef, w[c]));
}

int lg_cuda_renorm_rows(const lg_backend *be, float *W, int rows, int cols)
{
    if (rows <= 0 || cols <= 0)
        return 0;
    k_renorm_rows<<<(rows + ROW_WARPS - 1) / ROW_WARPS, 32 * ROW_WARPS, 0,
                    lg_cuda_ctx_of(be)->stream>>>(W, rows, cols);
    LG_CU("renorm_rows", cudaGetLastError());
    return 0;
}

int lg_cuda_project_out_parallel(const lg_backend *be, const float *W, float *G, int rows,
                                   int cols)
{
    if (rows <= 0 || cols <= 0)
        return 0;
    k_project_out<<<(rows + ROW_WARPS - 1) / ROW_WARPS, 32 * ROW_WARPS, 0,
                    lg_cuda_ctx_of(be)->stream>>>(W, G, rows, cols);
    LG_CU("project_out_parallel", cudaGetLastError());
    return 0;
}
