/*
 * backend_cpu.c - the CPU backend: GEMM through CBLAS (OpenBLAS), everything
 * else plain loops. It is the readable oracle the CUDA backend is tested
 * against (STYLE.md 8), so clarity beats speed here: one loop per formula of
 * backend.h, no SIMD tricks.
 *
 * Determinism: every reduction runs in index order and accumulates in double;
 * top-k selections use the strict total order (value desc, index asc), so the
 * selected set is unique whatever the selection algorithm does internally.
 * A GEMM is cut into blocks of C fixed by its shape alone, each computed by
 * a single-threaded OpenBLAS sgemm (OpenBLAS's own threads are 1 meanwhile: its
 * results change with its thread count, e.g. 1 vs 3 threads on a 256 x 512
 * x 64 sgemm), the blocks shared among OpenMP threads; with every other op
 * computing each output in a fixed order, the backend gives the same bits
 * run to run and at any thread count (OMP_NUM_THREADS), for a given OpenBLAS
 * build and CPU kernel.
 *
 * Memory is host memory from lg_calloc (zeroed), so the buffers are ordinary
 * pointers and upload/download/copy are memcpy.
 */
#include "engine/backend.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/backend_cpu_sparse.h"

/* ---- memory ------------------------------------------------------------- */

static int cpu_alloc(const lg_backend *be, size_t n, float **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    *out = lg_calloc(n, sizeof(float));
    if (!*out)
        return lg_error_wrap("cpu backend: allocating %zu floats", n);
    return 0;
}

static void cpu_free(const lg_backend *be, float *p) { lg_free(p); }

static int cpu_copy(const lg_backend *be, float *dst, const float *src, size_t n)
{
    if (n && dst != src)
        memmove(dst, src, n * sizeof(float));
    return 0;
}

static int cpu_upload(const lg_backend *be, float *dst, const float *host, size_t n)
{
    return cpu_copy(be, dst, host, n);
}

static int cpu_download(const lg_backend *be, float *host, const float *src, size_t n)
{
    return cpu_copy(be, host, src, n);
}

static int cpu_fill(const lg_backend *be, float *dst, float value, size_t n)
{
    size_t i;
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if (n > 32768)
    for (i = 0; i < n; i++)
        dst[i] = value;
    return 0;
}

static int cpu_sync(const lg_backend *be) { return 0; }

/* ---- GEMM --------------------------------------------------------------- */

static int cpu_gemm(const lg_backend *be, int ta, int tb, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C,
                    int ldc)
{
    int r;
    if (M < 0 || N < 0 || K < 0)
        return lg_error_set(LG_EINTERNAL, "cpu backend: gemm: negative size %d x %d x %d", M, N, K);
    if (M == 0 || N == 0)
        return 0;
    if (K == 0) { /* C = beta*C, which CBLAS may not special-case */
        for (r = 0; r < M; r++) {
            int c;
            for (c = 0; c < N; c++)
                C[(size_t)r * ldc + c] = beta == 0.0f ? 0.0f : beta * C[(size_t)r * ldc + c];
        }
        return 0;
    }
    lg_cpu_gemm_blocks(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return 0;
}

static int cpu_gemm_batched(const lg_backend *be, int ta, int tb, int M, int N, int K,
                            float alpha, const float *A, int lda, long long sA, const float *B,
                            int ldb, long long sB, float beta, float *C, int ldc, long long sC,
                            int batch)
{
    int i, err;
    for (i = 0; i < batch; i++)
        if ((err = cpu_gemm(be, ta, tb, M, N, K, alpha, A + i * sA, lda, B + i * sB, ldb, beta,
                            C + i * sC, ldc)) < 0)
            return err;
    return 0;
}

/* ---- top-k selection -----------------------------------------------------
 * sel_topk reorders idx[0..n) so that idx[0..k) are the k best candidates
 * under the strict total order "a before b iff v[a] > v[b], or equal and
 * a < b" (quickselect, Lomuto partition around a median-of-three pivot).
 * Because the order is strict and total, the selected SET is unique. */

static int sel_before(const float *v, uint32_t a, uint32_t b)
{
    return v[a] > v[b] || (v[a] == v[b] && a < b);
}

static void sel_swap(uint32_t *idx, size_t i, size_t j)
{
    uint32_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
}

static void sel_topk(const float *v, uint32_t *idx, size_t n, size_t k)
{
    size_t lo = 0, hi = n;
    if (k >= n)
        return;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2, i, j;
        uint32_t p;
        /* median of three to the end of the range, then it is the pivot */
        if (sel_before(v, idx[mid], idx[lo]))
            sel_swap(idx, mid, lo);
        if (sel_before(v, idx[hi - 1], idx[lo]))
            sel_swap(idx, hi - 1, lo);
        if (sel_before(v, idx[mid], idx[hi - 1]))
            sel_swap(idx, mid, hi - 1);
        p = idx[hi - 1];
        for (i = lo, j = lo; j < hi - 1; j++)
            if (sel_before(v, idx[j], p))
                sel_swap(idx, i++, j);
        sel_swap(idx, i, hi - 1); /* pivot at i: [lo, i) come before it */
        if (k == i || k == i + 1)
            return;
        if (k < i)
            hi = i;
        else
            lo = i + 1;
    }
}

static int cpu_topk_rows(const lg_backend *be, const float *pre, const float *col_mask,
                         float *acts, int rows, int cols, int k)
{
    uint32_t *idx = NULL;
    int r;
    if (rows <= 0 || cols <= 0)
        return 0;
    memset(acts, 0, (size_t)rows * cols * sizeof(float));
    if (k <= 0)
        return 0;
    if (!(idx = lg_malloc((size_t)cols * sizeof(uint32_t))))
        return lg_error_wrap("cpu backend: topk_rows");
    for (r = 0; r < rows; r++) {
        const float *v = pre + (size_t)r * cols; /* [cols] */
        float *a = acts + (size_t)r * cols;
        size_t n = 0, i;
        int c;
        /* only positive entries can give a non-zero activation; keeping
         * fewer than k when fewer are positive gives the same acts */
        for (c = 0; c < cols; c++)
            if (v[c] > 0.0f && (!col_mask || col_mask[c] != 0.0f))
                idx[n++] = (uint32_t)c;
        sel_topk(v, idx, n, (size_t)k);
        for (i = 0; i < n && i < (size_t)k; i++)
            a[idx[i]] = v[idx[i]];
    }
    lg_free(idx);
    return 0;
}

/* The default table's topk_rows: the same kept set through the sparse path's
 * row selection (rows over the OpenMP threads); the dense table keeps the
 * quickselect above, an independent implementation for the tests. */
static int cpu_topk_rows_fast(const lg_backend *be, const float *pre, const float *col_mask,
                              float *acts, int rows, int cols, int k)
{
    return lg_cpu_topk_rows_dense(pre, col_mask, acts, rows, cols, k);
}

static int cpu_topk_batch(const lg_backend *be, const float *pre, float *acts, size_t n,
                          size_t keep, float *min_kept)
{
    uint32_t *idx = NULL;
    size_t m = 0, i;
    float lo = -1.0f;
    if (n > UINT32_MAX)
        return lg_error_set(LG_EINPUT, "cpu backend: topk_batch: %zu entries exceed 2^32", n);
    memset(acts, 0, n * sizeof(float));
    if (n && keep) {
        if (!(idx = lg_malloc(n * sizeof(uint32_t))))
            return lg_error_wrap("cpu backend: topk_batch");
        for (i = 0; i < n; i++)
            if (pre[i] > 0.0f)
                idx[m++] = (uint32_t)i;
        sel_topk(pre, idx, m, keep);
        for (i = 0; i < m && i < keep; i++) {
            float x = pre[idx[i]];
            acts[idx[i]] = x;
            if (lo < 0.0f || x < lo)
                lo = x;
        }
        lg_free(idx);
    }
    if (min_kept)
        *min_kept = lo;
    return 0;
}

/* ---- activations -------------------------------------------------------- */

static int cpu_relu(const lg_backend *be, const float *pre, float *acts, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        acts[i] = pre[i] > 0.0f ? pre[i] : 0.0f;
    return 0;
}

static int cpu_threshold_scalar(const lg_backend *be, const float *pre, float thr, float *acts,
                                size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        acts[i] = pre[i] > thr ? pre[i] : 0.0f;
    return 0;
}

/* theta = expf(lthr) once per column, by lg_backend_jumprelu_theta (the CUDA
 * backend uses the same function), in chunks of 256 columns. */
static int cpu_jumprelu_fwd(const lg_backend *be, const float *pre, const float *lthr,
                            float *acts, int rows, int cols)
{
    float theta[256]; /* [chunk] */
    int r, c, c0, nc;
    for (c0 = 0; c0 < cols; c0 += nc) {
        nc = cols - c0 < 256 ? cols - c0 : 256;
        lg_backend_jumprelu_theta(lthr + c0, theta, (size_t)nc);
        for (r = 0; r < rows; r++)
            for (c = 0; c < nc; c++) {
                size_t i = (size_t)r * cols + c0 + c;
                acts[i] = pre[i] > theta[c] ? pre[i] : 0.0f;
            }
    }
    return 0;
}

static int cpu_jumprelu_bwd(const lg_backend *be, const float *pre, const float *lthr,
                            const float *grad_acts, float l0_scale, float eps, float *grad_pre,
                            float *grad_lthr, int rows, int cols)
{
    int r, c;
    for (c = 0; c < cols; c++) {
        float theta;
        double acc = 0.0; /* sum_r K(u) * (-(theta/eps) g - l0_scale/eps) */
        lg_backend_jumprelu_theta(lthr + c, &theta, 1);
        for (r = 0; r < rows; r++) {
            size_t i = (size_t)r * cols + c;
            float x = pre[i], u = (x - theta) / eps;
            grad_pre[i] = x > theta ? grad_acts[i] : 0.0f;
            if (u > -0.5f && u < 0.5f)
                acc += -(double)(theta / eps) * grad_acts[i] - (double)l0_scale / eps;
        }
        grad_lthr[c] = (float)(theta * acc);
    }
    return 0;
}

static int cpu_active_grad(const lg_backend *be, const float *acts, const float *grad_acts,
                           float beta, float *grad_pre, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        float g = acts[i] != 0.0f ? grad_acts[i] : 0.0f;
        grad_pre[i] = beta == 0.0f ? g : beta * grad_pre[i] + g;
    }
    return 0;
}

/* ---- elementwise and broadcast ------------------------------------------ */

static int cpu_add_bias_rows(const lg_backend *be, const float *X, const float *bias,
                             float alpha, float *Y, int rows, int cols)
{
    int r, c;
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if ((size_t)rows * cols > 32768) private(c)
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++)
            Y[(size_t)r * cols + c] = X[(size_t)r * cols + c] + alpha * bias[c];
    return 0;
}

static int cpu_col_sum(const lg_backend *be, const float *X, int rows, int cols, float alpha,
                       float beta, float *out)
{
    double *acc = NULL;
    int r, c;
    if (cols <= 0)
        return 0;
    if (!(acc = lg_calloc((size_t)cols, sizeof(double))))
        return lg_error_wrap("cpu backend: col_sum");
    for (r = 0; r < rows; r++) /* row order: contiguous reads */
        for (c = 0; c < cols; c++)
            acc[c] += X[(size_t)r * cols + c];
    for (c = 0; c < cols; c++) {
        float s = alpha * (float)acc[c];
        out[c] = beta == 0.0f ? s : beta * out[c] + s;
    }
    lg_free(acc);
    return 0;
}

static int cpu_axpby(const lg_backend *be, size_t n, float alpha, const float *x, float beta,
                     const float *y, float *out)
{
    size_t i;
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if (n > 32768)
    for (i = 0; i < n; i++)
        out[i] = alpha * x[i] + beta * y[i];
    return 0;
}

static int cpu_scale_shift(const lg_backend *be, float *x, float alpha, float c, size_t n)
{
    size_t i;
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if (n > 32768)
    for (i = 0; i < n; i++)
        x[i] = alpha * x[i] + c;
    return 0;
}

static int cpu_mask_ge(const lg_backend *be, const float *x, float thr, float *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        out[i] = x[i] >= thr ? 1.0f : 0.0f;
    return 0;
}

/* ---- reductions --------------------------------------------------------- */

static int cpu_sum(const lg_backend *be, const float *x, size_t n, double *out)
{
    double s = 0.0;
    size_t i;
    for (i = 0; i < n; i++)
        s += x[i];
    *out = s;
    return 0;
}

static int cpu_sumsq(const lg_backend *be, const float *x, size_t n, double *out)
{
    double s = 0.0;
    size_t i;
    for (i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    *out = s;
    return 0;
}

static int cpu_dot(const lg_backend *be, const float *x, const float *y, size_t n, double *out)
{
    double s = 0.0;
    size_t i;
    for (i = 0; i < n; i++)
        s += (double)x[i] * y[i];
    *out = s;
    return 0;
}

static int cpu_count_nonzero(const lg_backend *be, const float *x, size_t n, double *out)
{
    size_t i, cnt = 0;
    for (i = 0; i < n; i++)
        cnt += x[i] != 0.0f;
    *out = (double)cnt;
    return 0;
}

/* ---- sparsity bookkeeping ----------------------------------------------- */

static int cpu_col_count_nonzero(const lg_backend *be, const float *X, int rows, int cols,
                                 float *counts)
{
    int r, c;
    for (r = 0; r < rows; r++)
        for (c = 0; c < cols; c++)
            counts[c] += X[(size_t)r * cols + c] != 0.0f ? 1.0f : 0.0f;
    return 0;
}

static int cpu_fired_update(const lg_backend *be, const float *acts, int rows, int cols,
                            float *since)
{
    int r, c;
    for (c = 0; c < cols; c++) {
        int fired = 0;
        for (r = 0; r < rows && !fired; r++)
            fired = acts[(size_t)r * cols + c] != 0.0f;
        since[c] = fired ? 0.0f : since[c] + 1.0f;
    }
    return 0;
}

/* ---- decoder geometry --------------------------------------------------- */

static int cpu_renorm_rows(const lg_backend *be, float *W, int rows, int cols)
{
    int r, c;
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if ((size_t)rows * cols > 32768) private(c)
    for (r = 0; r < rows; r++) {
        float *w = W + (size_t)r * cols;
        double ss = 0.0;
        for (c = 0; c < cols; c++)
            ss += (double)w[c] * w[c];
        if (ss > 0.0) {
            float inv = (float)(1.0 / sqrt(ss));
            for (c = 0; c < cols; c++)
                w[c] *= inv;
        }
    }
    return 0;
}

static int cpu_project_out_parallel(const lg_backend *be, const float *W, float *G, int rows,
                                    int cols)
{
    int r, c;
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if ((size_t)rows * cols > 32768) private(c)
    for (r = 0; r < rows; r++) {
        const float *w = W + (size_t)r * cols;
        float *g = G + (size_t)r * cols;
        double gw = 0.0, ww = 0.0;
        float coef;
        for (c = 0; c < cols; c++) {
            gw += (double)g[c] * w[c];
            ww += (double)w[c] * w[c];
        }
        if (ww == 0.0)
            continue;
        coef = (float)(gw / ww);
        for (c = 0; c < cols; c++)
            g[c] -= coef * w[c];
    }
    return 0;
}

/* ---- optimiser ---------------------------------------------------------- */

static int cpu_adam_step(const lg_backend *be, float *p, const float *g, float *m, float *v,
                         size_t n, const lg_adam_args *a)
{
    size_t i;
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if (n > 32768)
    for (i = 0; i < n; i++) {
        float mhat, vhat;
        m[i] = a->beta1 * m[i] + (1.0f - a->beta1) * g[i];
        v[i] = a->beta2 * v[i] + (1.0f - a->beta2) * g[i] * g[i];
        mhat = m[i] / a->bc1;
        vhat = v[i] / a->bc2;
        p[i] -= a->lr * mhat / (sqrtf(vhat) + a->eps);
    }
    return 0;
}

/* ---- the table ---------------------------------------------------------- */

static char cpu_device[256];
static lg_backend cpu_backend = {
    "cpu", cpu_device, NULL,
    cpu_alloc, cpu_free, cpu_upload, cpu_download, cpu_copy, cpu_fill, cpu_sync,
    cpu_gemm, cpu_gemm_batched,
    cpu_relu, cpu_topk_rows_fast, cpu_topk_batch, cpu_threshold_scalar, cpu_jumprelu_fwd,
    cpu_jumprelu_bwd, cpu_active_grad,
    cpu_add_bias_rows, cpu_col_sum, cpu_axpby, cpu_scale_shift, cpu_mask_ge,
    cpu_sum, cpu_sumsq, cpu_dot, cpu_count_nonzero,
    cpu_col_count_nonzero, cpu_fired_update,
    cpu_renorm_rows, cpu_project_out_parallel,
    cpu_adam_step,
    NULL, /* reduce_many: lg_backend_reduce_many loops over the single ops */
    lg_cpu_topk_rows_csr, lg_cpu_topk_batch_csr, lg_cpu_csr_transpose, lg_cpu_csr_gather_rows,
    lg_cpu_csr_row_dots, lg_cpu_csc_scatter_rows, lg_cpu_csc_val_sum, lg_cpu_csc_fired_update,
    lg_cpu_encode_topk_csr,
    0.0, /* sparse_min_work: the sparse path at every size, as before the field existed */
};
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;

void lg_cpu_sel_topk(const float *v, uint32_t *idx, size_t n, size_t k) { sel_topk(v, idx, n, k); }

/* The training path: sparse top-k ops unless LEDGER_CPU_SPARSE=0 (then the
 * table's sparse ops are NULL and the trainer takes the dense path). The
 * device string recorded in manifests names it, with the thread count
 * (OpenMP's; OpenBLAS runs single-threaded inside lg_cpu_gemm_blocks):
 * "cpu: <model> (OpenBLAS ..., N threads, sparse top-k training)".
 * lg_backend_cpu_dense() is the same backend with the sparse ops NULL. */
static char cpu_dense_device[256];
static lg_backend cpu_dense_backend;

static void cpu_configure(const char *model, const char *cfg)
{
    const char *env = getenv("LEDGER_CPU_SPARSE");
    int sparse = !(env && strcmp(env, "0") == 0);
    cpu_dense_backend = cpu_backend;
    cpu_dense_backend.device = cpu_dense_device;
    cpu_dense_backend.topk_rows = cpu_topk_rows;
    cpu_dense_backend.topk_rows_csr = NULL;
    cpu_dense_backend.topk_batch_csr = NULL;
    cpu_dense_backend.csr_transpose = NULL;
    cpu_dense_backend.csr_gather_rows = NULL;
    cpu_dense_backend.csr_row_dots = NULL;
    cpu_dense_backend.csc_scatter_rows = NULL;
    cpu_dense_backend.csc_val_sum = NULL;
    cpu_dense_backend.csc_fired_update = NULL;
    cpu_dense_backend.encode_topk_csr = NULL;
    if (!sparse)
        cpu_backend = cpu_dense_backend; /* the default table takes the dense path */
    snprintf(cpu_dense_device, sizeof(cpu_dense_device),
             "cpu: %s (%.80s, %d threads, dense training)", model,
             cfg ? cfg : "OpenBLAS", lg_cpu_threads());
    snprintf(cpu_device, sizeof(cpu_device), "cpu: %s (%.80s, %d threads, %s)", model,
             cfg ? cfg : "OpenBLAS", lg_cpu_threads(),
             sparse ? "sparse top-k training" : "dense training");
    if (!sparse)
        cpu_backend.device = cpu_device;
}

/* "cpu: <model name> (OpenBLAS 0.3.21 ..., N threads, ...)" */
static void cpu_describe(void)
{
    char model[128] = "unknown CPU", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    const char *cfg = openblas_get_config();
    if (f) {
        while (fgets(line, sizeof(line), f)) {
            char *colon = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && colon) {
                size_t len;
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                len = strcspn(colon, "\n");
                if (len >= sizeof(model))
                    len = sizeof(model) - 1;
                memcpy(model, colon, len);
                model[len] = '\0';
                break;
            }
        }
        fclose(f);
    }
    cpu_configure(model, cfg);
}

const lg_backend *lg_backend_cpu(void)
{
    pthread_once(&cpu_once, cpu_describe);
    return &cpu_backend;
}

const lg_backend *lg_backend_cpu_dense(void)
{
    pthread_once(&cpu_once, cpu_describe);
    return &cpu_dense_backend;
}
