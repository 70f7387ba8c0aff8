// cuda_backend.cu - the CUDA implementation of engine/backend.h's lg_backend
// table: cuBLAS for the GEMMs, small kernels for everything else. This file
// holds the context, memory, GEMMs, the table and its initialisation; the
// elementwise, activation, column-reduction and Adam ops are in cuda_ops.cu,
// the reductions to the host and row ops in cuda_reduce.cu, the top-k
// selections in cuda_topk.cu, the cross-seed similarity in cuda_sim.cu.
//
// Why this way:
//  - One backend (device 0, or LEDGER_CUDA_DEVICE), one stream, one cuBLAS
//    handle with a fixed workspace, CUBLAS_DEFAULT_MATH (plain FP32, no TF32:
//    TF32 only when LEDGER_CUDA_TF32=1, and then the device string says so)
//    and atomics disallowed: cuBLAS then gives bit-identical results run to
//    run on the same GPU and toolkit.
//  - Row-major GEMM through the column-major library: a row-major [M,N]
//    matrix is the column-major [N,M] matrix of its transpose, so
//    C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T, i.e. cuBLAS is
//    called with (B, A) swapped and (N, M) swapped; the transposition flags
//    stay as given.
//  - Reductions: no float atomics anywhere. Host-returned reductions run a
//    fixed grid (LG_CUDA_RED_BLOCKS x LG_CUDA_THREADS), each thread summing
//    its grid-stride slice in double in index order, then a fixed shared-
//    memory tree per block; the host adds the block partials in block order.
//    Column reductions (col_sum, counts, JumpReLU's threshold gradient) split
//    rows into a number of chunks that depends only on the shape; each chunk
//    is summed in a fixed order and the chunks are added in chunk order.
//    Row reductions (norms, dots) use one warp per row with a fixed tree.
//  - Elementwise formulas use __fmul_rn/__fadd_rn/__fdiv_rn so that nvcc does
//    not contract them into FMAs: Adam, axpby and friends then round exactly
//    like the CPU oracle (which has no FMA in its baseline x86-64 build).
//  - Every CUDA/cuBLAS status is checked; a failure is LG_EINTERNAL
//    "cuda: <op>: <reason>". lg_backend_cuda() returns NULL when no device is
//    usable; lg_cuda_unavailable_reason() says why.
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_common.cuh"


// ---- context and scratch ---------------------------------------------------

int lg_cuda_malloc(const char *op, void **p, size_t bytes)
{
    cudaError_t e = cudaMalloc(p, bytes);
    if (e != cudaSuccess) {
        *p = NULL;
        cudaGetLastError(); // not sticky, but recorded as the last error: clear it
        return lg_error_set(LG_ENOMEM, "cuda: %s: cannot allocate %zu bytes: %s", op, bytes,
                            cudaGetErrorString(e));
    }
    return 0;
}

int lg_cuda_scratch(lg_cuda_ctx *ctx, size_t bytes, void **out)
{
    int err;
    *out = NULL;
    if (bytes > ctx->scratch_bytes) {
        size_t want = bytes < ((size_t)1 << 20) ? ((size_t)1 << 20) : bytes;
        if (ctx->scratch) {
            LG_CU("scratch", cudaStreamSynchronize(ctx->stream));
            LG_CU("scratch", cudaFree(ctx->scratch));
            ctx->scratch = NULL;
            ctx->scratch_bytes = 0;
        }
        if ((err = lg_cuda_malloc("scratch", &ctx->scratch, want)) < 0)
            return err;
        ctx->scratch_bytes = want;
    }
    *out = ctx->scratch;
    return 0;
}

// ---- memory ------------------------------------------------------------------

__global__ void k_fill(float *dst, float v, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = v;
}

static int cu_alloc(const lg_backend *be, size_t n, float **out)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    float *p = NULL;
    cudaError_t e;
    int err;
    *out = NULL;
    if (n == 0)
        return 0;
    if ((err = lg_cuda_malloc("alloc", (void **)&p, n * sizeof(float))) < 0)
        return err;
    if ((e = cudaMemsetAsync(p, 0, n * sizeof(float), ctx->stream)) != cudaSuccess) {
        cudaFree(p);
        return lg_cuda_fail("alloc", e);
    }
    *out = p;
    return 0;
}

static void cu_free(const lg_backend *be, float *p)
{
    if (p)
        cudaFree(p); // synchronises the device; errors here cannot be reported
}

// Uploads: the caller may reuse `host` as soon as upload returns. Small ones
// go straight from pageable memory (the driver stages them before
// returning). Large ones (batches, weights) go through a ring of two pinned
// 8 MiB buffers: copy a chunk into a slot (after waiting for that slot's
// previous DMA, an event), queue the DMA, record the slot's event. The host
// copy of chunk i+1 then overlaps the DMA of chunk i and earlier GPU work,
// pinned memory stays bounded, and DMA runs at pinned bandwidth.
static int stage_setup(lg_cuda_ctx *ctx)
{
    int i;
    for (i = 0; i < 2; i++) {
        if (cudaMallocHost(&ctx->stage[i], LG_CUDA_STAGE_BYTES) != cudaSuccess ||
            cudaEventCreateWithFlags(&ctx->stage_done[i], cudaEventDisableTiming) != cudaSuccess) {
            cudaGetLastError(); // no pinned memory: stay with pageable copies
            ctx->stage_ok = -1;
            return 0;
        }
    }
    ctx->stage_ok = 1;
    return 0;
}

static int cu_upload(const lg_backend *be, float *dst, const float *host, size_t n)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    size_t bytes = n * sizeof(float), off, len;
    if (!n)
        return 0;
    if (bytes >= LG_CUDA_STAGE_MIN && ctx->stage_ok == 0)
        stage_setup(ctx);
    if (bytes < LG_CUDA_STAGE_MIN || ctx->stage_ok != 1) {
        LG_CU("upload", cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, ctx->stream));
        return 0;
    }
    for (off = 0; off < bytes; off += len) {
        int slot = ctx->stage_next;
        len = bytes - off < LG_CUDA_STAGE_BYTES ? bytes - off : LG_CUDA_STAGE_BYTES;
        ctx->stage_next ^= 1;
        LG_CU("upload", cudaEventSynchronize(ctx->stage_done[slot])); // slot free again
        memcpy(ctx->stage[slot], (const char *)host + off, len);
        LG_CU("upload", cudaMemcpyAsync((char *)dst + off, ctx->stage[slot], len,
                                        cudaMemcpyHostToDevice, ctx->stream));
        LG_CU("upload", cudaEventRecord(ctx->stage_done[slot], ctx->stream));
    }
    return 0;
}

static int cu_download(const lg_backend *be, float *host, const float *src, size_t n)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    if (!n)
        return 0;
    LG_CU("download", cudaMemcpyAsync(host, src, n * sizeof(float), cudaMemcpyDeviceToHost,
                                      ctx->stream));
    LG_CU("download", cudaStreamSynchronize(ctx->stream));
    return 0;
}

static int cu_copy(const lg_backend *be, float *dst, const float *src, size_t n)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    int err;
    if (!n || dst == src)
        return 0;
    if (dst < src + n && src < dst + n) { // overlapping: go through scratch (memmove)
        void *tmp;
        if ((err = lg_cuda_scratch(ctx, n * sizeof(float), &tmp)) < 0)
            return err;
        LG_CU("copy", cudaMemcpyAsync(tmp, src, n * sizeof(float), cudaMemcpyDeviceToDevice,
                                      ctx->stream));
        src = (const float *)tmp;
    }
    LG_CU("copy", cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice,
                                  ctx->stream));
    return 0;
}

static int cu_fill(const lg_backend *be, float *dst, float value, size_t n)
{
    if (!n)
        return 0;
    k_fill<<<lg_cuda_grid(n), LG_CUDA_THREADS, 0, lg_cuda_ctx_of(be)->stream>>>(dst, value, n);
    LG_CU("fill", cudaGetLastError());
    return 0;
}

static int cu_sync(const lg_backend *be)
{
    LG_CU("sync", cudaStreamSynchronize(lg_cuda_ctx_of(be)->stream));
    return 0;
}

// ---- GEMM ------------------------------------------------------------------

// C[r, c] = beta == 0 ? 0 : beta * C[r, c] for r < M, c < N (the K == 0 case).
__global__ void k_scale_matrix(float *C, int M, int N, int ldc, float beta)
{
    size_t n = (size_t)M * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / N, c = i % N;
        float *p = C + r * ldc + c;
        *p = beta == 0.0f ? 0.0f : __fmul_rn(beta, *p);
    }
}

static int gemm_check(const char *op, int M, int N, int K)
{
    if (M < 0 || N < 0 || K < 0)
        return lg_error_set(LG_EINTERNAL, "cuda: %s: negative size %d x %d x %d", op, M, N, K);
    return 0;
}

static int cu_gemm(const lg_backend *be, int ta, int tb, int M, int N, int K, float alpha,
                   const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    int err;
    if ((err = gemm_check("gemm", M, N, K)) < 0)
        return err;
    if (M == 0 || N == 0)
        return 0;
    if (K == 0) {
        k_scale_matrix<<<lg_cuda_grid((size_t)M * N), LG_CUDA_THREADS, 0, ctx->stream>>>(
            C, M, N, ldc, beta);
        LG_CU("gemm", cudaGetLastError());
        return 0;
    }
    // Row-major C = op(A) op(B)  <=>  column-major C^T = op(B)^T op(A)^T.
    // cuBLAS does not read C when beta == 0 (NaN in C is ignored).
    LG_CUBLAS("gemm", cublasSgemm(ctx->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, A, lda,
                                  &beta, C, ldc));
    return 0;
}

static int cu_gemm_batched(const lg_backend *be, int ta, int tb, int M, int N, int K, float alpha,
                           const float *A, int lda, long long sA, const float *B, int ldb,
                           long long sB, float beta, float *C, int ldc, long long sC, int batch)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    int err, i;
    if ((err = gemm_check("gemm_batched", M, N, K)) < 0)
        return err;
    if (M == 0 || N == 0 || batch <= 0)
        return 0;
    if (K == 0) {
        for (i = 0; i < batch; i++)
            if ((err = cu_gemm(be, ta, tb, M, N, 0, alpha, A, lda, B, ldb, beta, C + i * sC,
                               ldc)) < 0)
                return err;
        return 0;
    }
    LG_CUBLAS("gemm_batched",
              cublasSgemmStridedBatched(ctx->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                        ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb,
                                        sB, A, lda, sA, &beta, C, ldc, sC, batch));
    return 0;
}

// ---- the table -------------------------------------------------------------------------

static lg_cuda_ctx cuda_ctx;
static char cuda_device[512];
static char cuda_reason[256] = "CUDA backend not initialised";
static lg_backend cuda_backend = {
    "cuda", cuda_device, &cuda_ctx,
    cu_alloc, cu_free, cu_upload, cu_download, cu_copy, cu_fill, cu_sync,
    cu_gemm, cu_gemm_batched,
    lg_cuda_relu, lg_cuda_topk_rows, lg_cuda_topk_batch, lg_cuda_threshold_scalar, lg_cuda_jumprelu_fwd,
    lg_cuda_jumprelu_bwd, lg_cuda_active_grad,
    lg_cuda_add_bias_rows, lg_cuda_col_sum, lg_cuda_axpby, lg_cuda_scale_shift, lg_cuda_mask_ge,
    lg_cuda_sum, lg_cuda_sumsq, lg_cuda_dot, lg_cuda_count_nonzero,
    lg_cuda_col_count_nonzero, lg_cuda_fired_update,
    lg_cuda_renorm_rows, lg_cuda_project_out_parallel,
    lg_cuda_adam_step,
    lg_cuda_reduce_many,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, // sparse ops: lg_cuda_sparse_install (cuda_sparse.cu)
    NULL, // encode_topk_csr: the trainer runs gemm + add_bias_rows + topk_rows_csr
    0.0,  // sparse_min_work: set with the sparse ops
};
static lg_backend cuda_backend_sync; // the table with every op checked (LEDGER_CUDA_SYNC=1)
static const lg_backend *cuda_usable; // NULL until initialised successfully
static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;

// ---- LEDGER_CUDA_SYNC=1: synchronise and check after every op -------------------
// Kernels run asynchronously, so a fault (illegal address, a launch that
// failed on the device) surfaces at some LATER synchronising call and is
// reported under that op's name. In this debug mode every op of the table is
// wrapped: run it, then cudaStreamSynchronize and cudaGetLastError, and name
// the op that was just run. Slow (one sync per op); for finding the op, not
// for production runs. The manifest's device string says it was on.

static int sync_done(const char *op, int err)
{
    cudaError_t e;
    if (err < 0)
        return err;
    if ((e = cudaStreamSynchronize(cuda_ctx.stream)) != cudaSuccess)
        return lg_error_set(LG_EINTERNAL, "cuda: %s: %s (LEDGER_CUDA_SYNC=1: raised by this op)",
                            op, cudaGetErrorString(e));
    if ((e = cudaGetLastError()) != cudaSuccess)
        return lg_error_set(LG_EINTERNAL, "cuda: %s: %s (LEDGER_CUDA_SYNC=1: raised by this op)",
                            op, cudaGetErrorString(e));
    return 0;
}

// One wrapper per int-returning field: the template parameters are deduced
// from the field's type when the wrapper is assigned to it.
#define SYNC_OP(field)                                                     \
    template <typename... A>                                               \
    static int sync_##field(const lg_backend *be, A... a)                  \
    {                                                                      \
        return sync_done(#field, cuda_backend.field(&cuda_backend, a...)); \
    }
SYNC_OP(alloc) SYNC_OP(upload) SYNC_OP(download) SYNC_OP(copy) SYNC_OP(fill) SYNC_OP(sync)
SYNC_OP(gemm) SYNC_OP(gemm_batched) SYNC_OP(relu) SYNC_OP(topk_rows) SYNC_OP(topk_batch)
SYNC_OP(threshold_scalar) SYNC_OP(jumprelu_fwd) SYNC_OP(jumprelu_bwd) SYNC_OP(active_grad)
SYNC_OP(add_bias_rows) SYNC_OP(col_sum) SYNC_OP(axpby) SYNC_OP(scale_shift) SYNC_OP(mask_ge)
SYNC_OP(sum) SYNC_OP(sumsq) SYNC_OP(dot) SYNC_OP(count_nonzero) SYNC_OP(col_count_nonzero)
SYNC_OP(fired_update) SYNC_OP(renorm_rows) SYNC_OP(project_out_parallel) SYNC_OP(adam_step)
SYNC_OP(reduce_many) SYNC_OP(topk_rows_csr) SYNC_OP(topk_batch_csr) SYNC_OP(csr_transpose)
SYNC_OP(csr_gather_rows) SYNC_OP(csr_row_dots) SYNC_OP(csc_scatter_rows) SYNC_OP(csc_val_sum)
SYNC_OP(csc_fired_update)
#undef SYNC_OP

static void sync_table_init(void)
{
    lg_backend *t = &cuda_backend_sync;
    *t = cuda_backend; // name, device, ctx, free
#define SET(field) t->field = sync_##field
    SET(alloc); SET(upload); SET(download); SET(copy); SET(fill); SET(sync);
    SET(gemm); SET(gemm_batched); SET(relu); SET(topk_rows); SET(topk_batch);
    SET(threshold_scalar); SET(jumprelu_fwd); SET(jumprelu_bwd); SET(active_grad);
    SET(add_bias_rows); SET(col_sum); SET(axpby); SET(scale_shift); SET(mask_ge);
    SET(sum); SET(sumsq); SET(dot); SET(count_nonzero); SET(col_count_nonzero);
    SET(fired_update); SET(renorm_rows); SET(project_out_parallel); SET(adam_step);
    SET(reduce_many);
    if (cuda_backend.topk_rows_csr) { // the sparse group, when installed
        SET(topk_rows_csr); SET(topk_batch_csr); SET(csr_transpose); SET(csr_gather_rows);
        SET(csr_row_dots); SET(csc_scatter_rows); SET(csc_val_sum); SET(csc_fired_update);
    }
#undef SET
}

#define INIT_TRY(what, call)                                                               \
    do {                                                                                   \
        cudaError_t e_ = (call);                                                           \
        if (e_ != cudaSuccess) {                                                           \
            snprintf(cuda_reason, sizeof(cuda_reason), "%s: %s", what, cudaGetErrorString(e_)); \
            cudaGetLastError();                                                            \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#define INIT_TRY_BLAS(what, call)                                                          \
    do {                                                                                   \
        cublasStatus_t s_ = (call);                                                        \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                 \
            snprintf(cuda_reason, sizeof(cuda_reason), "%s: %s", what,                     \
                     cublasGetStatusString(s_));                                           \
            return;                                                                        \
        }                                                                                  \
    } while (0)

static void cuda_init(void)
{
    lg_cuda_ctx *ctx = &cuda_ctx;
    cudaDeviceProp prop;
    const char *env;
    int n = 0, dev = 0, rt = 0, drv = 0, blas_ver = 0, sparse;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        snprintf(cuda_reason, sizeof(cuda_reason), "no CUDA device (%s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "device count 0");
        cudaGetLastError();
        return;
    }
    if ((env = getenv("LEDGER_CUDA_DEVICE")) && *env)
        dev = atoi(env);
    if (dev < 0 || dev >= n) {
        snprintf(cuda_reason, sizeof(cuda_reason), "LEDGER_CUDA_DEVICE=%d: only %d device(s)",
                 dev, n);
        return;
    }
    ctx->dev = dev;
    ctx->tf32 = (env = getenv("LEDGER_CUDA_TF32")) && strcmp(env, "1") == 0;
    ctx->sync_check = (env = getenv("LEDGER_CUDA_SYNC")) && strcmp(env, "1") == 0;
    INIT_TRY("cudaSetDevice", cudaSetDevice(dev));
    INIT_TRY("cudaGetDeviceProperties", cudaGetDeviceProperties(&prop, dev));
    ctx->n_sm = prop.multiProcessorCount;
    INIT_TRY("cudaStreamCreate", cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    INIT_TRY("cudaMallocHost", cudaMallocHost((void **)&ctx->host_partials,
                                              LG_CUDA_RED_BLOCKS * sizeof(double)));
    INIT_TRY_BLAS("cublasCreate", cublasCreate(&ctx->blas));
    INIT_TRY_BLAS("cublasSetStream", cublasSetStream(ctx->blas, ctx->stream));
    INIT_TRY_BLAS("cublasSetMathMode",
                  cublasSetMathMode(ctx->blas, ctx->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                         : CUBLAS_DEFAULT_MATH));
    INIT_TRY_BLAS("cublasSetAtomicsMode", cublasSetAtomicsMode(ctx->blas, CUBLAS_ATOMICS_NOT_ALLOWED));
    INIT_TRY("cudaMalloc(workspace)", cudaMalloc(&ctx->blas_workspace, (size_t)32 << 20));
    INIT_TRY_BLAS("cublasSetWorkspace",
                  cublasSetWorkspace(ctx->blas, ctx->blas_workspace, (size_t)32 << 20));
    sparse = lg_cuda_sparse_install(&cuda_backend);
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    cublasGetVersion(ctx->blas, &blas_ver);
    snprintf(cuda_device, sizeof(cuda_device),
             "cuda: %.200s (sm_%d%d, %d SMs, %.1f GiB; CUDA runtime %d.%d, driver %d.%d, cuBLAS %d; %s, %s)",
             prop.name, prop.major, prop.minor, prop.multiProcessorCount,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), rt / 1000, (rt % 1000) / 10,
             drv / 1000, (drv % 1000) / 10, blas_ver, ctx->tf32 ? "tf32" : "fp32",
             !sparse ? "dense training"
             : cuda_backend.sparse_min_work > 0 ? "sparse top-k training from batch*d_sae*d_in >= 2^31"
                                                : "sparse top-k training");
    cuda_reason[0] = '\0';
    if (ctx->sync_check) {
        size_t len = strlen(cuda_device);
        snprintf(cuda_device + len, sizeof(cuda_device) - len, " [LEDGER_CUDA_SYNC=1]");
        sync_table_init();
        cuda_usable = &cuda_backend_sync;
    } else {
        cuda_usable = &cuda_backend;
    }
}

const lg_backend *lg_cudam_backend(void)
{
    pthread_once(&cuda_once, cuda_init);
    return cuda_usable;
}

const char *lg_cudam_unavailable_reason(void)
{
    pthread_once(&cuda_once, cuda_init);
    return cuda_reason;
}
