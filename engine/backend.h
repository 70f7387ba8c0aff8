/*
 * backend.h - the compute backend interface of the engine: a vtable of the few
 * mid-level operations that SAE training and evaluation need, on float
 * buffers owned by the backend (host memory for "cpu", device memory for
 * "cuda"). engine/train.c and engine/recon.c are written only against this
 * interface; engine/backend_cpu.c is the readable oracle, kernels/ implements
 * the same table in CUDA.
 *
 * Conventions (every backend must follow them; tests compare backends):
 *  - Buffers are `float *` returned by alloc(). Pointer arithmetic on them is
 *    allowed (views: `W_dec + p*d_in`), so every op takes plain pointers.
 *  - All matrices are ROW-MAJOR. A matrix "[rows, cols]" has element (r, c) at
 *    p[r*ld + c]; ld >= cols.
 *  - Sizes: element counts are size_t, matrix dimensions are int (CBLAS).
 *  - Every op returns 0 or a negative LG_E* code with lg_error_set() (a CUDA
 *    failure is LG_EINTERNAL naming the op). Ops may be asynchronous; the
 *    ops that return a value on the host (download, the reductions, count
 *    and select ops) synchronise.
 *  - Determinism: no float atomics anywhere a result depends on the order of
 *    accumulation. Every reduction uses an order fixed for the backend, so a
 *    backend gives bit-identical results run to run (the CPU backend given
 *    the same OpenBLAS build and CPU kernel, at any thread count: its GEMMs
 *    run in blocks fixed by the shape). Results may differ BETWEEN backends
 *    in the last bits; tests compare them with tolerances.
 *  - Host-returned reductions are double: they accumulate in double (CPU: in
 *    index order; CUDA: a fixed tree, also in double).
 *  - Ties in top-k selections are broken by the LOWER index (flat index for
 *    batch top-k), i.e. the order is (value descending, index ascending);
 *    NaN ranks below every number.
 *  - In-place use: ops whose doc says "may alias" accept out == in.
 *
 * Ownership: the lg_backend structs are static singletons (never freed);
 * buffers from alloc() are freed with free() of the same backend.
 */
#ifndef LG_BACKEND_H
#define LG_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef struct lg_backend lg_backend;

/* Adam hyper-parameters for one step, computed on the host so that every
 * backend uses the same float values: bc1 = 1 - beta1^t, bc2 = 1 - beta2^t
 * (t = 1-based step). Update, elementwise:
 *   m = beta1*m + (1-beta1)*g
 *   v = beta2*v + (1-beta2)*g*g
 *   p = p - lr * (m/bc1) / (sqrt(v/bc2) + eps)                              */
typedef struct {
    float lr, beta1, beta2, eps, bc1, bc2;
} lg_adam_args;

/* One host-returned reduction of a batch (reduce_many): kind LG_RED_SUM,
 * LG_RED_SUMSQ or LG_RED_NNZ over x[0..n). */
enum { LG_RED_SUM = 0, LG_RED_SUMSQ = 1, LG_RED_NNZ = 2 };
typedef struct {
    int kind;
    const float *x;
    size_t n;
} lg_reduce_req;

struct lg_backend {
    const char *name;   /* "cpu" or "cuda" */
    const char *device; /* human-readable device string, recorded in manifests,
                           e.g. "cpu: AMD EPYC (OpenBLAS 0.3.21, 2 threads)" */
    void *ctx;          /* backend private state (cuBLAS handle, stream...) */

    /* ---- memory ---------------------------------------------------------- */
    /* *out = n zero-initialised floats (n may be 0: then *out may be NULL). */
    int (*alloc)(const lg_backend *be, size_t n, float **out);
    void (*free)(const lg_backend *be, float *p); /* accepts NULL */
    int (*upload)(const lg_backend *be, float *dst, const float *host, size_t n);
    int (*download)(const lg_backend *be, float *host, const float *src, size_t n);
    int (*copy)(const lg_backend *be, float *dst, const float *src, size_t n);
    int (*fill)(const lg_backend *be, float *dst, float value, size_t n);
    int (*sync)(const lg_backend *be);

    /* ---- GEMM ------------------------------------------------------------ */
    /* C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C, row-major.
     * op(X) = X if tX == 0, X^T if tX == 1. lda/ldb/ldc are the row strides of
     * A, B, C as stored (A is [M,K] or, transposed, [K,M]). beta == 0 means C
     * is overwritten (its old contents, even NaN, are ignored). No TF32. */
    int (*gemm)(const lg_backend *be, int ta, int tb, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
    /* The same for `batch` independent problems: problem i uses A + i*sA,
     * B + i*sB, C + i*sC (strides in elements). For seed batching. */
    int (*gemm_batched)(const lg_backend *be, int ta, int tb, int M, int N, int K, float alpha,
                        const float *A, int lda, long long sA, const float *B, int ldb,
                        long long sB, float beta, float *C, int ldc, long long sC, int batch);

    /* ---- activations ----------------------------------------------------- */
    /* acts = max(pre, 0). May alias. */
    int (*relu)(const lg_backend *be, const float *pre, float *acts, size_t n);
    /* Per-row top-k of pre [rows, cols]: acts[r,c] = max(pre[r,c], 0) if (r,c)
     * is among the k largest entries of row r, else 0. col_mask [cols] may be
     * NULL; when given, only columns with col_mask[c] != 0 are candidates
     * (AuxK over dead latents), and at most that many are kept. k <= 0 keeps
     * nothing. acts must not alias pre. */
    int (*topk_rows)(const lg_backend *be, const float *pre, const float *col_mask, float *acts,
                     int rows, int cols, int k);
    /* Batch top-k: among all n entries of pre (flat, row-major [rows, cols]),
     * acts = max(pre, 0) on the `keep` largest, 0 elsewhere. *min_kept = the
     * smallest POSITIVE kept value (what BatchTopK's inference threshold
     * averages), or -1 when nothing positive was kept. Not aliasing. */
    int (*topk_batch)(const lg_backend *be, const float *pre, float *acts, size_t n, size_t keep,
                      float *min_kept);
    /* Fixed threshold (BatchTopK/Matryoshka inference):
     * acts = pre > thr ? pre : 0. May alias. */
    int (*threshold_scalar)(const lg_backend *be, const float *pre, float thr, float *acts,
                            size_t n);
    /* JumpReLU forward, log-threshold parameter lthr [cols] (theta = exp(lthr)):
     * acts[r,c] = pre[r,c] > theta[c] ? pre[r,c] : 0. May alias. */
    int (*jumprelu_fwd)(const lg_backend *be, const float *pre, const float *lthr, float *acts,
                        int rows, int cols);
    /* JumpReLU backward with the rectangle-kernel straight-through estimator
     * (Rajamanoharan et al. 2024), bandwidth eps, K(u) = 1 if |u| < 1/2 else 0,
     * u = (pre - theta)/eps, theta = exp(lthr):
     *   grad_pre[r,c]  = pre > theta ? grad_acts[r,c] : 0            (overwritten)
     *   grad_lthr[c]   = theta[c] * sum_r K(u) * ( -(theta[c]/eps) * grad_acts[r,c]
     *                                              - l0_scale / eps )   (overwritten)
     * The first term is d(acts)/d(theta); the second the L0 penalty's
     * l0_scale * sum H(pre - theta), l0_scale = l0_coeff / rows for a mean over
     * the batch. The factor theta is the chain rule through theta = exp(lthr).
     * Column sums run over r in a fixed order. */
    int (*jumprelu_bwd)(const lg_backend *be, const float *pre, const float *lthr,
                        const float *grad_acts, float l0_scale, float eps, float *grad_pre,
                        float *grad_lthr, int rows, int cols);
    /* Backward of every "keep or zero" activation (ReLU, TopK, BatchTopK, the
     * threshold): grad_pre = beta*grad_pre + (acts != 0 ? grad_acts : 0).
     * beta == 0 overwrites grad_pre. */
    int (*active_grad)(const lg_backend *be, const float *acts, const float *grad_acts,
                       float beta, float *grad_pre, size_t n);

    /* ---- elementwise and broadcast --------------------------------------- */
    /* Y[r,c] = X[r,c] + alpha * bias[c]; X, Y [rows, cols] (dense). May alias. */
    int (*add_bias_rows)(const lg_backend *be, const float *X, const float *bias, float alpha,
                         float *Y, int rows, int cols);
    /* out[c] = beta*out[c] + alpha * sum_r X[r,c], the sum accumulated in
     * double in an order fixed for the backend (CPU: r = 0..rows-1);
     * beta == 0 overwrites. X [rows, cols] dense. */
    int (*col_sum)(const lg_backend *be, const float *X, int rows, int cols, float alpha,
                   float beta, float *out);
    /* out = alpha*x + beta*y (any of out, x, y may alias). */
    int (*axpby)(const lg_backend *be, size_t n, float alpha, const float *x, float beta,
                 const float *y, float *out);
    /* x = alpha*x + c (scale and shift). */
    int (*scale_shift)(const lg_backend *be, float *x, float alpha, float c, size_t n);
    /* out = x >= thr ? 1 : 0 (dead-latent masks). May alias. */
    int (*mask_ge)(const lg_backend *be, const float *x, float thr, float *out, size_t n);

    /* ---- reductions to the host (double, fixed order) -------------------- */
    int (*sum)(const lg_backend *be, const float *x, size_t n, double *out);
    int (*sumsq)(const lg_backend *be, const float *x, size_t n, double *out);
    int (*dot)(const lg_backend *be, const float *x, const float *y, size_t n, double *out);
    /* *out = number of entries != 0 (exact). */
    int (*count_nonzero)(const lg_backend *be, const float *x, size_t n, double *out);

    /* ---- sparsity bookkeeping -------------------------------------------- */
    /* counts[c] += number of r with X[r,c] != 0. X [rows, cols]. Counts are
     * exact while they stay below 2^24. */
    int (*col_count_nonzero)(const lg_backend *be, const float *X, int rows, int cols,
                             float *counts);
    /* Dead-latent clock: since[c] = (any r: acts[r,c] != 0) ? 0 : since[c] + 1. */
    int (*fired_update)(const lg_backend *be, const float *acts, int rows, int cols,
                        float *since);

    /* ---- decoder geometry ------------------------------------------------ */
    /* W [rows, cols]: each row divided by its L2 norm (norm accumulated in
     * double in column order; rows of norm 0 are left as they are). */
    int (*renorm_rows)(const lg_backend *be, float *W, int rows, int cols);
    /* Remove from each gradient row the component parallel to the matching
     * row of W: G[i] -= (G[i].W[i] / W[i].W[i]) W[i] (dot in double; rows with
     * W[i] = 0 untouched). W, G [rows, cols]. */
    int (*project_out_parallel)(const lg_backend *be, const float *W, float *G, int rows,
                                int cols);

    /* ---- optimiser ------------------------------------------------------- */
    /* Adam (Kingma & Ba) with bias correction, see lg_adam_args. */
    int (*adam_step)(const lg_backend *be, float *p, const float *g, float *m, float *v,
                     size_t n, const lg_adam_args *a);

    /* ---- optional ops (NULL: the generic helper below does it) ------------ */
    /* out[i] = the reduction reqs[i] (sum, sumsq or count_nonzero), each
     * bit-identical to the single op; a device backend reads all of them back
     * with ONE synchronisation instead of n. Use lg_backend_reduce_many(). */
    int (*reduce_many)(const lg_backend *be, const lg_reduce_req *reqs, int n, double *out);

    /* ---- sparse activations (OPTIONAL) ------------------------------------
     * A backend may leave ALL of these NULL (LEDGER_CUDA_SPARSE=0 and
     * LEDGER_CPU_SPARSE=0 make the two backends do so): the
     * trainer then uses the dense ops above. When topk_rows_csr is non-NULL,
     * every op of this group must be. The trainer uses them for TopK,
     * BatchTopK and Matryoshka (decoder and encoder gradients touch only the
     * active latents); the encoder forward stays a dense GEMM.
     *
     * A sparse activation matrix [rows, cols] is CSR: ptr [rows+1] (ptr[0] =
     * 0), idx [nnz] the column of each entry, ascending within a row, val
     * [nnz] its value (never 0). Its transpose (CSC) is tptr [cols+1], trow
     * [nnz] the row of each entry and tent [nnz] its position in idx/val,
     * rows ascending within a column. Index arrays are int32 in buffers from
     * alloc() (4 bytes per entry, as a float). nnz < 2^31.
     * Every op computes each output element in one fixed order (entries of a
     * row in column order, of a column in row order), so results are
     * bit-identical run to run and, on the CPU, at any thread count.
     *
     * Per-row top-k as topk_rows (same selection, same mask rule), written as
     * CSR; each row holds at most k entries. *nnz (host) = entries kept. */
    int (*topk_rows_csr)(const lg_backend *be, const float *pre, const float *col_mask, int rows,
                         int cols, int k, int32_t *ptr, int32_t *idx, float *val, long long *nnz);
    /* Batch top-k as topk_batch (same selection and *min_kept), as CSR with
     * at most `keep` entries in all (ptr [rows+1]). */
    int (*topk_batch_csr)(const lg_backend *be, const float *pre, int rows, int cols, size_t keep,
                          int32_t *ptr, int32_t *idx, float *val, long long *nnz,
                          float *min_kept);
    /* CSC of a CSR [rows, cols] (values are looked up through tent). */
    int (*csr_transpose)(const lg_backend *be, const int32_t *ptr, const int32_t *idx, int rows,
                         int cols, int32_t *tptr, int32_t *trow, int32_t *tent);
    /* Decoder forward: out[r, :] += sum over the entries e of row r with
     * lo <= idx[e] < hi of val[e] * W[idx[e], :]. W [cols, d], out [rows, d]. */
    int (*csr_gather_rows)(const lg_backend *be, const int32_t *ptr, const int32_t *idx,
                           const float *val, int rows, int lo, int hi, const float *W, int d,
                           float *out);
    /* Gradient at the active entries: for entries e of row r with lo <=
     * idx[e] < hi: out[e] = beta*out[e] + alpha * dot(R[r, :], W[idx[e], :])
     * (beta == 0 overwrites); other entries untouched. R [rows, d], W [cols, d]. */
    int (*csr_row_dots)(const lg_backend *be, const int32_t *ptr, const int32_t *idx, int rows,
                        int lo, int hi, const float *R, const float *W, int d, float alpha,
                        float beta, float *out);
    /* Scatter by latent: for each column j in [lo, hi) and c < d,
     *   out[j*ld_row + c*ld_col] = beta*out[...] + alpha * sum over the
     *   entries t of column j (rows ascending) of val[tent[t]] * R[trow[t], c]
     * (beta == 0 overwrites). Decoder rows: ld_row = d, ld_col = 1; encoder
     * columns of W_enc [d, cols]: ld_row = 1, ld_col = cols. */
    int (*csc_scatter_rows)(const lg_backend *be, const int32_t *tptr, const int32_t *trow,
                            const int32_t *tent, const float *val, int lo, int hi, const float *R,
                            int d, float alpha, float beta, float *out, long long ld_row,
                            long long ld_col);
    /* out[j] = beta*out[j] + alpha * sum_t val[tent[t]] over column j, the sum
     * in double in row order (= col_sum of the dense matrix). */
    int (*csc_val_sum)(const lg_backend *be, const int32_t *tptr, const int32_t *tent,
                       const float *val, int cols, float alpha, float beta, float *out);
    /* Dead-latent clock of the CSR's matrix: since[j] = column j has an
     * entry ? 0 : since[j] + 1 (= fired_update of the dense matrix). */
    int (*csc_fired_update)(const lg_backend *be, const int32_t *tptr, int cols, float *since);

    /* ---- fused TopK encoder (OPTIONAL; set only with the sparse ops) ------
     * pre [rows, cols] = xc [rows, d] @ W_enc [d, cols] + b_enc [cols], and
     * topk_rows_csr(pre, NULL, rows, cols, k, ptr, idx, val, nnz): the same
     * bits as gemm(0, 0, rows, cols, d, 1, xc, d, W_enc, cols, 0, pre, cols),
     * add_bias_rows(pre, b_enc, 1, pre) and topk_rows_csr run one after the
     * other (the CPU does it a block of rows at a time, while the block is in
     * cache). keep_pre == 0: the caller does not need pre afterwards, and the
     * op may use it as scratch (its contents are then unspecified). NULL: the
     * trainer runs the three ops. */
    int (*encode_topk_csr)(const lg_backend *be, const float *xc, const float *W_enc, const float *b_enc,
                           int rows, int d, int cols, int k, float *pre, int keep_pre, int32_t *ptr,
                           int32_t *idx, float *val, long long *nnz);

    /* The sparse group has a fixed cost per step (entry counts read back to
     * the host, a sort) that a small model does not earn back: the trainer
     * takes the sparse path only when batch * d_sae * d_in >= sparse_min_work
     * (lg_train_sparse_path, engine/train.h). 0: always (the CPU backend). */
    double sparse_min_work;
};

/* The CPU backend (CBLAS + plain loops, OpenMP threads). Never NULL. Its
 * sparse ops are set unless the environment has LEDGER_CPU_SPARSE=0 (read
 * once, at the first call), which makes training take the dense path. */
const lg_backend *lg_backend_cpu(void);
/* The CPU backend with the sparse ops NULL (the dense reference path), for
 * tests and benchmarks that compare the two. Never NULL. */
const lg_backend *lg_backend_cpu_dense(void);
/* Threads of the CPU backend from now on (OpenMP's; OpenBLAS always runs
 * single-threaded inside the backend's GEMM blocks), n >= 1. For tests and
 * benchmarks (the device string keeps the count of the first lg_backend_cpu()
 * call). Every op gives the same bits at any count. */
void lg_backend_cpu_set_threads(int n);
/* The CUDA backend, from the CUDA module (kernels/cuda_module.h), which
 * engine/backend_cuda_load.c loads on the first call. NULL when not built,
 * when the module cannot be loaded or when no device is usable
 * (kernels/cuda.h's lg_cuda_unavailable_reason() says why). */
const lg_backend *lg_backend_cuda(void);
/* name: "cpu", "cuda" or "auto" (cuda when lg_backend_cuda() is non-NULL,
 * else cpu). "cuda" without a device: LG_EINPUT naming the reason; an
 * unknown name: LG_EINPUT. */
int lg_backend_get(const char *name, const lg_backend **out);

/* Generic helpers written on top of the vtable (engine/backend.c). */

/* be->reduce_many when the backend has it, else the single ops one by one. */
int lg_backend_reduce_many(const lg_backend *be, const lg_reduce_req *reqs, int n, double *out);

/* The scaling step of lg_backend_clip_grad_norm, given total = the sum of
 * the buffers' sumsq in buffer order: *norm_out = sqrt(total); if max_norm > 0
 * and the norm exceeds it, every buffer is scaled by max_norm / norm. */
int lg_backend_clip_apply(const lg_backend *be, float *const *grads, const size_t *ns, int count,
                          double total, double max_norm, double *norm_out);

/* Global gradient-norm clipping over `count` buffers: norm = sqrt(sum of
 * sumsq(grads[i])) (buffers in order); if max_norm > 0 and norm > max_norm,
 * every buffer is scaled by max_norm / norm. *norm_out (may be NULL) = the
 * norm before clipping. */
int lg_backend_clip_grad_norm(const lg_backend *be, float *const *grads, const size_t *ns,
                              int count, double max_norm, double *norm_out);
/* JumpReLU thresholds, the one definition both backends use:
 * theta[c] = expf(lthr[c]) (glibc's expf, computed on the host), so that the
 * CPU and CUDA backends compare bit for bit. */
void lg_backend_jumprelu_theta(const float *lthr, float *theta, size_t cols);
/* alloc + upload in one call (*out freed with be->free). */
int lg_backend_alloc_upload(const lg_backend *be, const float *host, size_t n, float **out);

#endif
