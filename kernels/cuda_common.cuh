// cuda_common.cuh - what the .cu files of the CUDA backend share: the
// backend's private context, status checks that turn CUDA/cuBLAS failures into
// lg_error_set(LG_EINTERNAL, "cuda: <op>: <reason>"), launch geometry, and
// the float-key helpers of the top-k selections. C never includes this file
// (STYLE.md 13): the C-visible API is kernels/cuda.h.
#ifndef LG_CUDA_COMMON_CUH
#define LG_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "base/base.h"
#include "engine/backend.h"
}

// Private state of the (single, static) CUDA backend. Every op runs on
// `stream`; cuBLAS is bound to it. Scratch memory grows on demand and is
// reused by ops that need temporary device memory (partial sums, top-k
// state); ops are stream-ordered, so reuse between ops is safe. The backend
// serves one host thread at a time (like the trainer that drives it).
typedef struct {
    int dev;
    int n_sm;
    int tf32;                 // 1: cuBLAS may use TF32 tensor cores (LEDGER_CUDA_TF32=1)
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_workspace;     // fixed cuBLAS workspace (deterministic kernel choice)
    void *scratch;            // device scratch, scratch_bytes long
    size_t scratch_bytes;
    double *host_partials;    // pinned host buffer [LG_CUDA_RED_BLOCKS] for reductions
    float *theta;             // device [theta_cap]: JumpReLU thresholds of the current op
    float *theta_host;        // pinned host [theta_cap]: lthr down, theta up
    size_t theta_cap;
    int sync_check;           // LEDGER_CUDA_SYNC=1: synchronise and check after every op
    double *host_many;        // pinned host [host_many_cap] block partials of reduce_many
    size_t host_many_cap;
    void *stage[2];           // pinned upload staging ring (LG_CUDA_STAGE_BYTES each)
    cudaEvent_t stage_done[2];// recorded after the copy out of stage[i]
    int stage_next, stage_ok; // next slot; ring state: 0 not tried, 1 set up, -1 failed (pageable)
} lg_cuda_ctx;

// Uploads at least this large go through the pinned ring, in chunks of this size.
#define LG_CUDA_STAGE_MIN ((size_t)256 << 10)
#define LG_CUDA_STAGE_BYTES ((size_t)8 << 20)

// Block and grid sizes fixed at compile time: reduction orders depend on
// them, so they must not depend on the device or the load.
#define LG_CUDA_THREADS 256
#define LG_CUDA_RED_BLOCKS 256

static inline lg_cuda_ctx *lg_cuda_ctx_of(const lg_backend *be) { return (lg_cuda_ctx *)be->ctx; }

static inline int lg_cuda_fail(const char *op, cudaError_t e)
{
    return lg_error_set(LG_EINTERNAL, "cuda: %s: %s", op, cudaGetErrorString(e));
}

static inline int lg_cublas_fail(const char *op, cublasStatus_t s)
{
    return lg_error_set(LG_EINTERNAL, "cuda: %s: cuBLAS: %s", op, cublasGetStatusString(s));
}

// Check a CUDA runtime call (or, after a launch, cudaGetLastError()).
#define LG_CU(op, call)                          \
    do {                                         \
        cudaError_t lg_cu_e_ = (call);           \
        if (lg_cu_e_ != cudaSuccess)             \
            return lg_cuda_fail((op), lg_cu_e_); \
    } while (0)

#define LG_CUBLAS(op, call)                           \
    do {                                              \
        cublasStatus_t lg_cb_s_ = (call);             \
        if (lg_cb_s_ != CUBLAS_STATUS_SUCCESS)        \
            return lg_cublas_fail((op), lg_cb_s_);    \
    } while (0)

// Grid for an elementwise grid-stride loop over n items (n > 0).
// for (i = this thread's first index; i < n; i += the grid's thread count)
#define GRID_STRIDE(i, n)                                                    \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

static inline unsigned lg_cuda_grid(size_t n)
{
    size_t g = (n + LG_CUDA_THREADS - 1) / LG_CUDA_THREADS;
    return (unsigned)(g > 65535 * 8 ? 65535 * 8 : (g ? g : 1));
}

// Device scratch of at least `bytes` (grown, never shrunk; contents undefined).
int lg_cuda_scratch(lg_cuda_ctx *ctx, size_t bytes, void **out);

// cudaMalloc that leaves no error behind: a failed cudaMalloc records
// cudaErrorMemoryAllocation as the thread's last error, which the next op's
// cudaGetLastError() after a launch would then report as ITS failure. On
// failure this clears it and returns LG_ENOMEM naming op and size.
int lg_cuda_malloc(const char *op, void **p, size_t bytes);

// The module's backend (cuda_backend.cu) and MMCS (cuda_sim.cu), reached by the
// engine through the table of kernels/cuda_module.h (cuda_module.cu).
const lg_backend *lg_cudam_backend(void);
const char *lg_cudam_unavailable_reason(void);
int lg_cudam_dict_mmcs(const float *A, int m1, const float *B, int m2, int d, int abs_cos,
                       double *mmcs_ab, double *mmcs_ba, float *maxcos_a, float *maxcos_b);

// JumpReLU thresholds computed by the engine on the host (kernels/cuda_module.h's
// host->jumprelu_theta), so both backends use the same bits.
extern "C" void lg_cuda_host_theta(const float *lthr, float *theta, size_t cols);

// Top-k selection key of a value: the bit pattern of a candidate's value
// when it is a positive number (positive floats order like their bits as
// unsigned ints, +inf included), 0 otherwise (non-positive, NaN, masked out).
// Only positive entries can give a non-zero activation, so selecting the k
// largest keys among the non-zero ones is the top-k of backend.h.
__device__ __forceinline__ uint32_t lg_topk_key(float x)
{
    return x > 0.0f ? __float_as_uint(x) : 0u;
}

// Sum over the warp with a fixed tree (shfl_down), broadcast from lane 0.
__device__ __forceinline__ double lg_warp_sum(double v)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, off);
    return __shfl_sync(0xffffffffu, v, 0);
}

// sum_c x[c]^2 over x [n], in double, by the warp (lane l adds c = l, l+32,
// ..., then lg_warp_sum): the row norm of the one-warp-per-row kernels, the
// same bits in each of them. Every lane gets it.
__device__ __forceinline__ double lg_warp_row_sumsq(const float *x, int n)
{
    double ss = 0.0;
    for (int c = threadIdx.x % 32; c < n; c += 32)
        ss += (double)x[c] * x[c];
    return lg_warp_sum(ss);
}

// cuda_reduce.cu: the reductions and row ops of the backend table.
int lg_cuda_sum(const lg_backend *be, const float *x, size_t n, double *out);
int lg_cuda_sumsq(const lg_backend *be, const float *x, size_t n, double *out);
int lg_cuda_dot(const lg_backend *be, const float *x, const float *y, size_t n, double *out);
int lg_cuda_count_nonzero(const lg_backend *be, const float *x, size_t n, double *out);
int lg_cuda_reduce_many(const lg_backend *be, const lg_reduce_req *reqs, int n, double *out);
int lg_cuda_renorm_rows(const lg_backend *be, float *W, int rows, int cols);
int lg_cuda_project_out_parallel(const lg_backend *be, const float *W, float *G, int rows,
                                 int cols);

// cuda_ops.cu: the elementwise, activation, column-reduction and Adam ops of the table.
int lg_cuda_relu(const lg_backend *be, const float *pre, float *acts, size_t n);
int lg_cuda_threshold_scalar(const lg_backend *be, const float *pre, float thr, float *acts,
                             size_t n);
int lg_cuda_jumprelu_fwd(const lg_backend *be, const float *pre, const float *lthr, float *acts,
                         int rows, int cols);
int lg_cuda_active_grad(const lg_backend *be, const float *acts, const float *grad_acts, float beta,
                        float *grad_pre, size_t n);
int lg_cuda_col_sum(const lg_backend *be, const float *X, int rows, int cols, float alpha,
                    float beta, float *out);
int lg_cuda_col_count_nonzero(const lg_backend *be, const float *X, int rows, int cols,
                              float *counts);
int lg_cuda_fired_update(const lg_backend *be, const float *acts, int rows, int cols, float *since);
int lg_cuda_jumprelu_bwd(const lg_backend *be, const float *pre, const float *lthr,
                         const float *grad_acts, float l0_scale, float eps, float *grad_pre,
                         float *grad_lthr, int rows, int cols);
int lg_cuda_add_bias_rows(const lg_backend *be, const float *X, const float *bias, float alpha,
                          float *Y, int rows, int cols);
int lg_cuda_axpby(const lg_backend *be, size_t n, float alpha, const float *x, float beta,
                  const float *y, float *out);
int lg_cuda_scale_shift(const lg_backend *be, float *x, float alpha, float c, size_t n);
int lg_cuda_mask_ge(const lg_backend *be, const float *x, float thr, float *out, size_t n);
int lg_cuda_adam_step(const lg_backend *be, float *p, const float *g, float *m, float *v, size_t n,
                      const lg_adam_args *a);

// cuda_topk.cu: the top-k selections of the table.
int lg_cuda_topk_rows(const lg_backend *be, const float *pre, const float *col_mask, float *acts,
                      int rows, int cols, int k);
int lg_cuda_topk_batch(const lg_backend *be, const float *pre, float *acts, size_t n, size_t keep,
                       float *min_kept);

// The trainer's sparse path on CUDA from batch * d_sae * d_in >= this on
// (backend.h, sparse_min_work): below it the dense step is faster.
#define LG_CUDA_SPARSE_MIN_WORK 2147483648.0 // 2^31

// cuda_sparse.cu: puts the sparse op group of backend.h into table t unless
// the environment has LEDGER_CUDA_SPARSE=0 (then it stays NULL: the trainer's
// dense path), with sparse_min_work = LG_CUDA_SPARSE_MIN_WORK, or 0 (every
// size) when LEDGER_CUDA_SPARSE=1. Returns 1 when the group was set, 0 when not.
int lg_cuda_sparse_install(lg_backend *t);

#endif
