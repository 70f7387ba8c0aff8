// cuda_ops.cu - the CUDA backend's elementwise ops: activations (ReLU, the
// scalar threshold, JumpReLU forward and its theta = exp(log_threshold) taken
// from the host), column reductions (column sums, non-zero counts, the
// dead-latent clocks, JumpReLU's backward), broadcast and elementwise
// arithmetic, and the Adam step. Each op is a kernel and its launcher; the
// launchers enter the backend table in cuda_backend.cu and are declared in
// cuda_common.cuh.
//
// Why this way (cuda_backend.cu's essay has the whole argument): no float
// atomics, column reductions in an order fixed by the shape (below), and
// __fmul_rn/__fadd_rn/__fdiv_rn so that nvcc does not contract a formula into
// an FMA and every op rounds like the CPU oracle.
#include <math.h>
#include <string.h>

#include "kernels/cuda_common.cuh"

// ---- activations -------------------------------------------------------------

__global__ void k_relu(const float *pre, float *acts, size_t n)
{
    GRID_STRIDE(i, n) { float x = pre[i]; acts[i] = x > 0.0f ? x : 0.0f; }
}

__global__ void k_threshold(const float *pre, float thr, float *acts, size_t n)
{
    GRID_STRIDE(i, n) { float x = pre[i]; acts[i] = x > thr ? x : 0.0f; }
}

__global__ void k_jumprelu_fwd(const float *pre, const float *theta, float *acts, size_t n,
                               int cols)
{
    GRID_STRIDE(i, n)
    {
        float x = pre[i], t = theta[i % (size_t)cols];
        acts[i] = x > t ? x : 0.0f;
    }
}

__global__ void k_active_grad(const float *acts, const float *ga, float beta, float *gp, size_t n)
{
    GRID_STRIDE(i, n)
    {
        float g = acts[i] != 0.0f ? ga[i] : 0.0f;
        gp[i] = beta == 0.0f ? g : __fadd_rn(__fmul_rn(beta, gp[i]), g);
    }
}

int lg_cuda_relu(const lg_backend *be, const float *pre, float *acts, size_t n)
{
    if (!n)
        return 0;
    k_relu<<<lg_cuda_grid(n), LG_CUDA_THREADS, 0, lg_cuda_ctx_of(be)->stream>>>(pre, acts, n);
    LG_CU("relu", cudaGetLastError());
    return 0;
}

int lg_cuda_threshold_scalar(const lg_backend *be, const float *pre, float thr, float *acts,
                             size_t n)
{
    if (!n)
        return 0;
    k_threshold<<<lg_cuda_grid(n), LG_CUDA_THREADS, 0, lg_cuda_ctx_of(be)->stream>>>(pre, thr,
                                                                                   acts, n);
    LG_CU("threshold_scalar", cudaGetLastError());
    return 0;
}

// ctx->theta [cols] = expf(lthr) computed on the host by the engine's
// lg_backend_jumprelu_theta (the CPU backend's own thresholds): CUDA's expf is
// not glibc's, and the two backends must agree on which entries pass. One
// small blocking round trip of cols floats per call.
static int jumprelu_theta(lg_cuda_ctx *ctx, const char *op, const float *lthr, int cols,
                          const float **out)
{
    size_t n = (size_t)cols;
    int err;
    *out = NULL;
    if (n > ctx->theta_cap) {
        LG_CU(op, cudaStreamSynchronize(ctx->stream));
        cudaFree(ctx->theta);
        cudaFreeHost(ctx->theta_host);
        ctx->theta = ctx->theta_host = NULL;
        ctx->theta_cap = 0;
        if ((err = lg_cuda_malloc(op, (void **)&ctx->theta, n * sizeof(float))) < 0)
            return err;
        if (cudaMallocHost((void **)&ctx->theta_host, n * sizeof(float)) != cudaSuccess) {
            cudaGetLastError();
            return lg_error_set(LG_ENOMEM, "cuda: %s: cannot pin %zu bytes", op, n * sizeof(float));
        }
        ctx->theta_cap = n;
    }
    LG_CU(op, cudaMemcpyAsync(ctx->theta_host, lthr, n * sizeof(float), cudaMemcpyDeviceToHost,
                              ctx->stream));
    LG_CU(op, cudaStreamSynchronize(ctx->stream));
    lg_cuda_host_theta(ctx->theta_host, ctx->theta_host, n);
    LG_CU(op, cudaMemcpyAsync(ctx->theta, ctx->theta_host, n * sizeof(float),
                              cudaMemcpyHostToDevice, ctx->stream));
    // theta_host is rewritten only after the next synchronising download, which
    // waits for this upload: the pinned buffer is never overwritten in flight.
    *out = ctx->theta;
    return 0;
}

int lg_cuda_jumprelu_fwd(const lg_backend *be, const float *pre, const float *lthr, float *acts,
                         int rows, int cols)
{
    size_t n = (size_t)(rows > 0 ? rows : 0) * (cols > 0 ? cols : 0);
    const float *theta;
    int err;
    if (!n)
        return 0;
    if ((err = jumprelu_theta(lg_cuda_ctx_of(be), "jumprelu_fwd", lthr, cols, &theta)) < 0)
        return err;
    k_jumprelu_fwd<<<lg_cuda_grid(n), LG_CUDA_THREADS, 0, lg_cuda_ctx_of(be)->stream>>>(
        pre, theta, acts, n, cols);
    LG_CU("jumprelu_fwd", cudaGetLastError());
    return 0;
}

int lg_cuda_active_grad(const lg_backend *be, const float *acts, const float *grad_acts,
                        float beta, float *grad_pre, size_t n)
{
    if (!n)
        return 0;
    k_active_grad<<<lg_cuda_grid(n), LG_CUDA_THREADS, 0, lg_cuda_ctx_of(be)->stream>>>(
        acts, grad_acts, beta, grad_pre, n);
    LG_CU("active_grad", cudaGetLastError());
    return 0;
}

// ---- column reductions ---------------------------------------------------------
// A column op visits every element (r, c) of a dense [rows, cols] matrix once
// (visit may also write that element) and reduces a double per column;
// finish(c, acc) applies the result. Rows are split into `chunks` ranges
// (a function of the shape only); block (bx, chunk) of 32 x 8 threads covers
// columns [32 bx, 32 bx + 32) and the rows of its chunk: thread (tx, ty) adds
// rows r0 + ty, r0 + ty + 8, ... in order, then a fixed tree over ty. With one
// chunk the tree result is final; otherwise partials [chunks, cols] are added
// in chunk order by a second kernel.

#define COL_TX 32
#define COL_TY 8

static int col_chunks(int rows, int cols)
{
    long want = (rows + 63) / 64;                    // at least 64 rows per chunk
    long cap = 262144L / (cols > 0 ? cols : 1);      // partials stay <= 2 MiB
    if (cap < 1)
        cap = 1;
    if (want > cap)
        want = cap;
    if (want > 1024)
        want = 1024;
    return want < 1 ? 1 : (int)want;
}

template <class Op>
__global__ void k_col_partial(Op op, int rows, int cols, int chunks, double *partial)
{
    __shared__ double sh[COL_TY][COL_TX + 1];
    int c = blockIdx.x * COL_TX + threadIdx.x, chunk = blockIdx.y;
    int per = (rows + chunks - 1) / chunks;
    int r0 = chunk * per, r1 = min(rows, r0 + per);
    double acc = 0.0;
    if (c < cols)
        for (int r = r0 + threadIdx.y; r < r1; r += COL_TY)
            acc += op.visit(r, c);
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    for (int w = COL_TY / 2; w > 0; w >>= 1) {
        if (threadIdx.y < w)
            sh[threadIdx.y][threadIdx.x] += sh[threadIdx.y + w][threadIdx.x];
        __syncthreads();
    }
    if (threadIdx.y == 0 && c < cols) {
        if (chunks == 1)
            op.finish(c, sh[0][threadIdx.x]);
        else
            partial[(size_t)chunk * cols + c] = sh[0][threadIdx.x];
    }
}

template <class Op>
__global__ void k_col_finish(Op op, int cols, int chunks, const double *partial)
{
    for (int c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x) {
        double acc = 0.0;
        for (int k = 0; k < chunks; k++)
            acc += partial[(size_t)k * cols + c];
        op.finish(c, acc);
    }
}

template <class Op>
static int col_reduce(const lg_backend *be, const char *name, Op op, int rows, int cols)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    int chunks, err;
    double *partial = NULL;
    if (cols <= 0)
        return 0;
    if (rows < 0)
        rows = 0;
    chunks = col_chunks(rows, cols);
    if (chunks > 1) {
        void *p;
        if ((err = lg_cuda_scratch(ctx, (size_t)chunks * cols * sizeof(double), &p)) < 0)
            return err;
        partial = (double *)p;
    }
    dim3 grid((cols + COL_TX - 1) / COL_TX, chunks), block(COL_TX, COL_TY);
    k_col_partial<Op><<<grid, block, 0, ctx->stream>>>(op, rows, cols, chunks, partial);
    LG_CU(name, cudaGetLastError());
    if (chunks > 1) {
        k_col_finish<Op><<<(cols + LG_CUDA_THREADS - 1) / LG_CUDA_THREADS, LG_CUDA_THREADS, 0,
                           ctx->stream>>>(op, cols, chunks, partial);
        LG_CU(name, cudaGetLastError());
    }
    return 0;
}

struct ColSumOp {
    const float *X;
    float *out;
    int cols;
    float alpha, beta;
    __device__ double visit(int r, int c) const { return X[(size_t)r * cols + c]; }
    __device__ void finish(int c, double acc) const
    {
        float s = __fmul_rn(alpha, (float)acc);
        out[c] = beta == 0.0f ? s : __fadd_rn(__fmul_rn(beta, out[c]), s);
    }
};

struct CountOp { // counts[c] += #{r : X[r,c] != 0}
    const float *X;
    float *counts;
    int cols;
    __device__ double visit(int r, int c) const { return X[(size_t)r * cols + c] != 0.0f; }
    __device__ void finish(int c, double acc) const { counts[c] = counts[c] + (float)acc; }
};

struct FiredOp { // since[c] = fired ? 0 : since[c] + 1
    const float *X;
    float *since;
    int cols;
    __device__ double visit(int r, int c) const { return X[(size_t)r * cols + c] != 0.0f; }
    __device__ void finish(int c, double acc) const
    {
        since[c] = acc > 0.0 ? 0.0f : since[c] + 1.0f;
    }
};

struct JumpBwdOp { // grad_pre elementwise in visit, grad_lthr per column in finish
    const float *pre, *thetas, *ga; // thetas [cols]: expf(lthr) from the host
    float *gp, *glthr;
    int cols;
    float l0_scale, eps;
    __device__ double visit(int r, int c) const
    {
        size_t i = (size_t)r * cols + c;
        float theta = thetas[c], x = pre[i], u = __fdiv_rn(__fsub_rn(x, theta), eps);
        gp[i] = x > theta ? ga[i] : 0.0f;
        if (u > -0.5f && u < 0.5f)
            return -(double)__fdiv_rn(theta, eps) * ga[i] - (double)l0_scale / eps;
        return 0.0;
    }
    __device__ void finish(int c, double acc) const { glthr[c] = (float)(thetas[c] * acc); }
};

int lg_cuda_col_sum(const lg_backend *be, const float *X, int rows, int cols, float alpha,
                    float beta, float *out)
{
    ColSumOp op = {X, out, cols, alpha, beta};
    return col_reduce(be, "col_sum", op, rows, cols);
}

int lg_cuda_col_count_nonzero(const lg_backend *be, const float *X, int rows, int cols,
                              float *counts)
{
    CountOp op = {X, counts, cols};
    return col_reduce(be, "col_count_nonzero", op, rows, cols);
}

int lg_cuda_fired_update(const lg_backend *be, const float *acts, int rows, int cols,
                         float *since)
{
    FiredOp op = {acts, since, cols};
    return col_reduce(be, "fired_update", op, rows, cols);
}

int lg_cuda_jumprelu_bwd(const lg_backend *be, const float *pre, const float *lthr,
                         const float *grad_acts, float l0_scale, float eps, float *grad_pre,
                         float *grad_lthr, int rows, int cols)
{
    const float *theta;
    int err;
    if (cols <= 0)
        return 0;
    if ((err = jumprelu_theta(lg_cuda_ctx_of(be), "jumprelu_bwd", lthr, cols, &theta)) < 0)
        return err;
    JumpBwdOp op = {pre, theta, grad_acts, grad_pre, grad_lthr, cols, l0_scale, eps};
    return col_reduce(be, "jumprelu_bwd", op, rows, cols);
}

// ---- elementwise and broadcast -------------------------------------------------

__global__ void k_add_bias_rows(const float *X, const float *bias, float alpha, float *Y,
                                size_t n, int cols)
{
    GRID_STRIDE(i, n) { Y[i] = __fadd_rn(X[i], __fmul_rn(alpha, bias[i % (size_t)cols])); }
}

__global__ void k_axpby(size_t n, float alpha, const float *x, float beta, const float *y,
                        float *out)
{
    GRID_STRIDE(i, n) { out[i] = __fadd_rn(__fmul_rn(alpha, x[i]), __fmul_rn(beta, y[i])); }
}

__global__ void k_scale_shift(float *x, float alpha, float c, size_t n)
{
    GRID_STRIDE(i, n) { x[i] = __fadd_rn(__fmul_rn(alpha, x[i]), c); }
}

__global__ void k_mask_ge(const float *x, float thr, float *out, size_t n)
{
    GRID_STRIDE(i, n) { out[i] = x[i] >= thr ? 1.0f : 0.0f; }
}

int lg_cuda_add_bias_rows(const lg_backend *be, const float *X, const float *bias, float alpha,
                          float *Y, int rows, int cols)
{
    size_t n = (size_t)(rows > 0 ? rows : 0) * (cols > 0 ? cols : 0);
    if (!n)
        return 0;
    k_add_bias_rows<<<lg_cuda_grid(n), LG_CUDA_THREADS, 0, lg_cuda_ctx_of(be)->stream>>>(
        X, bias, alpha, Y, n, cols);
    LG_CU("add_bias_rows", cudaGetLastError());
    return 0;
}

int lg_cuda_axpby(const lg_backend *be, size_t n, float alpha, const float *x, float beta,
                  const float *y, float *out)
{
    if (!n)
        return 0;
    k_axpby<<<lg_cuda_grid(n), LG_CUDA_THREADS, 0, lg_cuda_ctx_of(be)->stream>>>(n, alpha, x,
                                                                               beta, y, out);
    LG_CU("axpby", cudaGetLastError());
    return 0;
}

int lg_cuda_scale_shift(const lg_backend *be, float *x, float alpha, float c, size_t n)
{
    if (!n)
        return 0;
    k_scale_shift<<<lg_cuda_grid(n), LG_CUDA_THREADS, 0, lg_cuda_ctx_of(be)->stream>>>(x, alpha,
                                                                                     c, n);
    LG_CU("scale_shift", cudaGetLastError());
    return 0;
}

int lg_cuda_mask_ge(const lg_backend *be, const float *x, float thr, float *out, size_t n)
{
    if (!n)
        return 0;
    k_mask_ge<<<lg_cuda_grid(n), LG_CUDA_THREADS, 0, lg_cuda_ctx_of(be)->stream>>>(x, thr, out,
                                                                                 n);
    LG_CU("mask_ge", cudaGetLastError());
    return 0;
}

// ---- optimiser ---------------------------------------------------------------------

// The CPU's expression order, rounded op by op (no FMA contraction).
__global__ void k_adam(float *p, const float *g, float *m, float *v, size_t n, lg_adam_args a)
{
    float one_b1 = 1.0f - a.beta1, one_b2 = 1.0f - a.beta2;
    GRID_STRIDE(i, n)
    {
        float gi = g[i];
        float mi = __fadd_rn(__fmul_rn(a.beta1, m[i]), __fmul_rn(one_b1, gi));
        float vi = __fadd_rn(__fmul_rn(a.beta2, v[i]), __fmul_rn(__fmul_rn(one_b2, gi), gi));
        float mhat = __fdiv_rn(mi, a.bc1), vhat = __fdiv_rn(vi, a.bc2);
        m[i] = mi;
        v[i] = vi;
        p[i] = __fsub_rn(p[i], __fdiv_rn(__fmul_rn(a.lr, mhat), __fadd_rn(__fsqrt_rn(vhat), a.eps)));
    }
}

int lg_cuda_adam_step(const lg_backend *be, float *p, const float *g, float *m, float *v,
                      size_t n, const lg_adam_args *a)
{
    if (!n)
        return 0;
    k_adam<<<lg_cuda_grid(n), LG_CUDA_THREADS, 0, lg_cuda_ctx_of(be)->stream>>>(p, g, m, v, n,
                                                                              *a);
    LG_CU("adam_step", cudaGetLastError());
    return 0;
}
