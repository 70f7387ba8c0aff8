/*
 * backend_cpu_sparse.c - the CPU backend's sparse training ops (backend.h,
 * "sparse activations"): top-k selections written as CSR, the decoder as a
 * gather-sum of the active rows, the decoder-row and encoder-column gradients
 * as scatters over the active latents, and the sparse bookkeeping.
 *
 * Threads (OpenMP): every op partitions its OUTPUTS between threads (rows of a
 * CSR, latents of a CSC; dynamic schedules, so that a thread the OS
 * deschedules on a busy machine does not hold the others up) and each output
 * element is computed by exactly one thread, in a loop whose order depends
 * only on the data (entries of a row in
 * column order, entries of a latent in row order). No atomics, no reduction
 * whose order depends on the partition: the results are bit-identical run to
 * run and at any thread count (OMP_NUM_THREADS). The few serial passes (CSR
 * prefix sums, the transpose's counting sort, batch top-k's quickselect) are
 * single-threaded by construction.
 *
 * Float sums of the dense path (GEMMs) accumulate in float; so do these ops
 * (dots in eight fixed lanes, combined in a fixed order, so that they
 * vectorise without -ffast-math). Sums of columns (csc_val_sum) accumulate in
 * double in row order, like col_sum.
 */
#include "engine/backend_cpu_sparse.h"

#include <cblas.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "base/base.h"
#include "engine/backend_cpu_simd.h"

_Static_assert(sizeof(int32_t) == sizeof(float), "index buffers come from float alloc()");

/* Below this much work (entries touched) an op runs on the calling thread
 * alone: waking a second thread costs more, and on a loaded machine it may
 * wait a whole time slice for it. Same results either way. */
#define PAR_MIN 32768

int lg_cpu_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void lg_backend_cpu_set_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n < 1 ? 1 : n);
#endif
}

int lg_cpu_gemm_block_size(int dim)
{
    /* 128 rows or columns of C per block, at most 32 blocks per call (each
     * block packs the other operand again) */
    return dim <= 128 * 32 ? 128 : ((dim + 31) / 32 + 15) / 16 * 16;
}

void lg_cpu_gemm_blocks(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc)
{
    const int by_rows = M >= N, dim = by_rows ? M : N;
    int bs = lg_cpu_gemm_block_size(dim);
    int nb = (dim + bs - 1) / bs, b;
    /* OpenBLAS single-threaded for the blocks (its thread count is global:
     * set back afterwards, for its other users such as consistency.c) */
    const int blas_threads = openblas_get_num_threads();
    if (blas_threads != 1)
        openblas_set_num_threads(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(lg_cpu_threads()) if (nb > 1 && (double)M * N * K > PAR_MIN * 32.0)
    for (b = 0; b < nb; b++) {
        int i0 = b * bs, n = dim - i0 < bs ? dim - i0 : bs;
        if (by_rows) /* rows of op(A): A [M, K] row i0, or A^T stored [K, M] column i0 */
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                        n, N, K, alpha, ta ? A + i0 : A + (size_t)i0 * lda, lda, B, ldb, beta,
                        C + (size_t)i0 * ldc, ldc);
        else /* columns of op(B): B [K, N] column i0, or B^T stored [N, K] row i0 */
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                        M, n, K, alpha, A, lda, tb ? B + (size_t)i0 * ldb : B + i0, ldb, beta,
                        C + i0, ldc);
    }
    if (blas_threads != 1)
        openblas_set_num_threads(blas_threads);
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The k-th largest (1 <= k <= n) of f[0..n), reordering f: quickselect with
 * a three-way partition (greater | equal | less than a median-of-three
 * pivot), so runs of equal values cost nothing. Values only: which of equal
 * values are kept is decided by index afterwards. */
static float kth_largest(float *f, long n, long k)
{
    long lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        long mid = lo + (hi - lo) / 2, i = lo, lt = lo, gt = hi;
        float a = f[lo], b = f[mid], c = f[hi], pv, tmp;
        pv = a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
        while (i <= gt) {
            if (f[i] > pv) {
                tmp = f[lt];
                f[lt++] = f[i];
                f[i++] = tmp;
            } else if (f[i] < pv) {
                tmp = f[gt];
                f[gt--] = f[i];
                f[i] = tmp;
            } else {
                i++;
            }
        }
        /* [lo, lt) > pv, [lt, gt] == pv, (gt, hi] < pv */
        if (want < lt)
            hi = lt - 1;
        else if (want > gt)
            lo = gt + 1;
        else
            return pv;
    }
    return f[lo];
}

/* Clones of the top-k scan (comparisons only: the same results in every
 * clone) */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(LG_NO_CLONES)
#define LG_TOPK_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LG_TOPK_CLONES
#endif

/* Serial prefix sum turning per-row counts in ptr[1..rows] into CSR offsets,
 * then moving each row's entries from their slot start r*slot down to ptr[r]
 * (rows in increasing order: destinations never pass their sources). */
static long long compact_rows(int32_t *ptr, int32_t *idx, float *val, int rows, int slot)
{
    int r;
    ptr[0] = 0;
    for (r = 0; r < rows; r++) {
        int32_t n = ptr[r + 1];
        ptr[r + 1] = ptr[r] + n;
        if (ptr[r] != (int64_t)r * slot && n > 0) {
            memmove(idx + ptr[r], idx + (int64_t)r * slot, (size_t)n * sizeof(int32_t));
            memmove(val + ptr[r], val + (int64_t)r * slot, (size_t)n * sizeof(float));
        }
    }
    return ptr[rows];
}

/* Maxima of the strided blocks of a row: mx[b] = max over c = b (mod nb) of
 * the candidates v[c] (mask[c] != 0; mask may be NULL), 0 when a block has
 * none above 0 (candidates are > 0). nb a multiple of 8 (nb <= cols): eight
 * independent lanes per vector, so it vectorises; the maximum of a set does
 * not depend on the order it is taken in. */
LG_TOPK_CLONES static void strided_maxima(const float *v, const float *mask, int cols, int nb, float *mx)
{
    int b, c0;
    for (b = 0; b < nb; b++)
        mx[b] = 0.0f;
    for (c0 = 0; c0 + nb <= cols; c0 += nb) {
        const float *x = v + c0;
        if (mask) {
            const float *q = mask + c0;
            for (b = 0; b < nb; b++) {
                float y = q[b] == 0.0f ? 0.0f : x[b];
                mx[b] = y > mx[b] ? y : mx[b];
            }
        } else {
            for (b = 0; b < nb; b++)
                mx[b] = x[b] > mx[b] ? x[b] : mx[b];
        }
    }
    for (b = 0; c0 + b < cols; b++) {
        float y = mask && mask[c0 + b] == 0.0f ? 0.0f : v[c0 + b];
        mx[b] = y > mx[b] ? y : mx[b];
    }
}

/* The k-th largest of a short list (n <= KTH_SMALL) by counting:
 * lg_cpu_kth_small (engine/backend_cpu_simd.h), the same value as
 * kth_largest without reordering f. */
#define KTH_SMALL 96

/* Top-k of one row under (value desc, index asc) among its positive
 * candidates (mask may be NULL), written in column order to oi/ov; returns
 * the count. f [cols], fi [cols] scratch. The k-th largest candidate value vk
 * splits the row: every candidate > vk is kept, and of those == vk the ones
 * with the lowest columns, as many as remain. */
static int topk_row(const float *v, const float *mask, int cols, int k, float *f, int32_t *fi,
                    int32_t *oi, float *ov)
{
    long n = 0, i, greater = 0, need;
    float vk, t0 = 0.0f;
    int cnt = 0, nb;
    /* Exact pre-filter: split the row into nb >= k blocks (about 2k when the
     * row is long enough; block b = the columns = b mod nb) and take t0 = the
     * k-th largest block maximum: when it is > 0, k blocks hold a candidate
     * >= t0, so the k-th largest candidate is >= t0 and only candidates >= t0
     * need selecting (about 43 of a Gaussian row of 1024 for k = 32, instead
     * of ~512 positive ones). */
    nb = (2 * k + 7) / 8 * 8;
    if (nb > cols)
        nb = cols / 8 * 8;
    if (nb >= k && nb > 0) {
        strided_maxima(v, mask, cols, nb, f);
        t0 = nb <= KTH_SMALL ? lg_cpu_kth_small(f, nb, k, &greater) : kth_largest(f, nb, k);
        if (!(t0 > 0.0f))
            t0 = 0.0f;
    }
    /* the candidates, in column order (engine/backend_cpu_simd.h) */
    n = lg_cpu_scan_candidates(v, mask, cols, t0, t0 > 0.0f, fi);
    if (n <= k) { /* every candidate is kept (t0 > 0: exactly k, the ones >= t0) */
        for (i = 0; i < n; i++) {
            oi[i] = fi[i];
            ov[i] = v[fi[i]];
        }
        return (int)n;
    }
    for (i = 0; i < n; i++)
        f[i] = v[fi[i]];
    if (n <= KTH_SMALL) {
        vk = lg_cpu_kth_small(f, (int)n, k, &greater); /* > 0 */
    } else {
        vk = kth_largest(f, n, k); /* > 0 */
        greater = 0;
        for (i = 0; i < k; i++) /* f[0..k) are the k largest: count those above vk */
            greater += f[i] > vk;
    }
    need = k - greater; /* candidates == vk to keep, lowest columns first */
    for (i = 0; i < n; i++) {
        float x = v[fi[i]];
        if (x > vk || (x == vk && need-- > 0)) {
            oi[cnt] = fi[i];
            ov[cnt++] = x;
        }
    }
    return cnt;
}

int lg_cpu_topk_row(const float *v, const float *mask, int cols, int k, float *f, int32_t *fi, int32_t *oi,
                    float *ov)
{
    return topk_row(v, mask, cols, k, f, fi, oi, ov);
}

long long lg_cpu_csr_compact(int32_t *ptr, int32_t *idx, float *val, int rows, int slot)
{
    return compact_rows(ptr, idx, val, rows, slot);
}

int lg_cpu_topk_rows_csr(const lg_backend *be, const float *pre, const float *col_mask, int rows,
                         int cols, int k, int32_t *ptr, int32_t *idx, float *val, long long *nnz)
{
    float *scratch = NULL;
    int nt = lg_cpu_threads();
    *nnz = 0;
    if (rows <= 0)
        return 0;
    if (k <= 0 || cols <= 0) {
        memset(ptr, 0, (size_t)(rows + 1) * sizeof(int32_t));
        return 0;
    }
    if (k > cols)
        k = cols;
    if (!(scratch = lg_malloc((size_t)nt * 2 * cols * sizeof(float))))
        return lg_error_wrap("cpu backend: topk_rows_csr");
#pragma omp parallel num_threads(nt) if ((size_t)rows * cols > PAR_MIN)
    {
        float *f = scratch + (size_t)thread_id() * 2 * cols;
        int32_t *fi = (int32_t *)(f + cols);
        int r;
#pragma omp for schedule(dynamic, 32)
        for (r = 0; r < rows; r++)
            ptr[r + 1] = topk_row(pre + (size_t)r * cols, col_mask, cols, k, f, fi,
                                  idx + (int64_t)r * k, val + (int64_t)r * k);
    }
    lg_free(scratch);
    *nnz = compact_rows(ptr, idx, val, rows, k);
    return 0;
}

int lg_cpu_topk_rows_dense(const float *pre, const float *col_mask, float *acts, int rows, int cols, int k)
{
    float *scratch = NULL;
    int nt = lg_cpu_threads();
    if (rows <= 0 || cols <= 0)
        return 0;
    memset(acts, 0, (size_t)rows * cols * sizeof(float));
    if (k <= 0)
        return 0;
    if (k > cols)
        k = cols;
    if (!(scratch = lg_malloc((size_t)nt * (2 * (size_t)cols + 2 * (size_t)k) * sizeof(float))))
        return lg_error_wrap("cpu backend: topk_rows");
#pragma omp parallel num_threads(nt) if ((size_t)rows * cols > PAR_MIN)
    {
        float *f = scratch + (size_t)thread_id() * (2 * (size_t)cols + 2 * (size_t)k);
        int32_t *fi = (int32_t *)(f + cols), *oi = (int32_t *)(f + 2 * (size_t)cols);
        float *ov = f + 2 * (size_t)cols + k;
        int r;
#pragma omp for schedule(dynamic, 32)
        for (r = 0; r < rows; r++) {
            const float *v = pre + (size_t)r * cols;
            float *a = acts + (size_t)r * cols;
            int n = topk_row(v, col_mask, cols, k, f, fi, oi, ov), i;
            for (i = 0; i < n; i++)
                a[oi[i]] = ov[i];
        }
    }
    lg_free(scratch);
    return 0;
}

int lg_cpu_topk_batch_csr(const lg_backend *be, const float *pre, int rows, int cols, size_t keep,
                          int32_t *ptr, int32_t *idx, float *val, long long *nnz, float *min_kept)
{
    const size_t n = (size_t)rows * cols;
    float *f = NULL, vk = 0.0f;
    size_t npos = 0, i;
    int64_t last_eq = -1; /* entries == vk are kept up to this flat index */
    int all = 0, r, nt = lg_cpu_threads();
    *nnz = 0;
    *min_kept = -1.0f;
    if (rows <= 0)
        return 0;
    if (n > (size_t)INT32_MAX)
        return lg_error_set(LG_EINPUT, "cpu backend: topk_batch_csr: %zu entries exceed 2^31", n);
    if (keep == 0 || cols <= 0) {
        memset(ptr, 0, (size_t)(rows + 1) * sizeof(int32_t));
        return 0;
    }
    if (!(f = lg_malloc(n * sizeof(float))))
        return lg_error_wrap("cpu backend: topk_batch_csr");
    for (i = 0; i < n; i++) {
        f[npos] = pre[i];
        npos += pre[i] > 0.0f;
    }
    if (npos <= keep) { /* every positive entry is kept */
        all = 1;
        if (npos > 0) {
            float lo = f[0];
            for (i = 1; i < npos; i++)
                if (f[i] < lo)
                    lo = f[i];
            *min_kept = lo;
        }
    } else {
        size_t greater = 0, need;
        vk = kth_largest(f, (long)npos, (long)keep);
        for (i = 0; i < keep; i++)
            greater += f[i] > vk;
        need = keep - greater; /* >= 1: the flat index of the need-th entry == vk */
        for (i = 0; i < n && need > 0; i++)
            if (pre[i] == vk && --need == 0)
                last_eq = (int64_t)i;
        *min_kept = vk;
    }
    lg_free(f);
    /* row r keeps its positive entries > vk, and those == vk up to last_eq */
#define KEPT(q) (pre[q] > 0.0f && (all || pre[q] > vk || (pre[q] == vk && (q) <= last_eq)))
#pragma omp parallel for schedule(dynamic, 32) num_threads(nt) if (n > PAR_MIN)
    for (r = 0; r < rows; r++) {
        const int64_t base = (int64_t)r * cols;
        int c, cnt = 0;
        for (c = 0; c < cols; c++)
            cnt += KEPT(base + c);
        ptr[r + 1] = cnt;
    }
    ptr[0] = 0;
    for (r = 0; r < rows; r++)
        ptr[r + 1] += ptr[r];
#pragma omp parallel for schedule(dynamic, 32) num_threads(nt) if (n > PAR_MIN)
    for (r = 0; r < rows; r++) {
        const int64_t base = (int64_t)r * cols;
        int32_t e = ptr[r];
        int c;
        for (c = 0; c < cols; c++)
            if (KEPT(base + c)) {
                idx[e] = c;
                val[e++] = pre[base + c];
            }
    }
#undef KEPT
    *nnz = ptr[rows];
    return 0;
}

int lg_cpu_csr_transpose(const lg_backend *be, const int32_t *ptr, const int32_t *idx, int rows,
                         int cols, int32_t *tptr, int32_t *trow, int32_t *tent)
{
    int32_t *fill = NULL;
    int r, j;
    if (cols <= 0)
        return 0;
    if (!(fill = lg_calloc((size_t)cols, sizeof(int32_t))))
        return lg_error_wrap("cpu backend: csr_transpose");
    for (r = 0; r < rows; r++) { /* counting sort by column; rows stay ascending */
        int32_t e;
        for (e = ptr[r]; e < ptr[r + 1]; e++)
            fill[idx[e]]++;
    }
    tptr[0] = 0;
    for (j = 0; j < cols; j++) {
        tptr[j + 1] = tptr[j] + fill[j];
        fill[j] = tptr[j];
    }
    for (r = 0; r < rows; r++) {
        int32_t e;
        for (e = ptr[r]; e < ptr[r + 1]; e++) {
            int32_t t = fill[idx[e]]++;
            trow[t] = r;
            tent[t] = e;
        }
    }
    lg_free(fill);
    return 0;
}

/* The inner loops, compiled for AVX-512, AVX2 and the baseline and chosen
 * at load time. Same arithmetic in every clone (ISO C: no FMA contraction,
 * -ffp-contract=off), so the bits do not depend on the clone. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(LG_NO_CLONES)
#define LG_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LG_CLONES
#endif

/* dot of two float rows: eight lanes, lane i summing the products at
 * indices = i mod 8 in index order (a GCC vector of 8 floats: one AVX
 * register, two SSE ones, the same arithmetic), then the lanes in a fixed
 * tree; the tail goes to lane 0. */
typedef float lg_v8f __attribute__((vector_size(32)));

LG_CLONES static float dot8(const float *a, const float *b, int n)
{
    lg_v8f acc = {0, 0, 0, 0, 0, 0, 0, 0}, x, y;
    float l[8];
    int c = 0;
    for (; c + 8 <= n; c += 8) {
        memcpy(&x, a + c, sizeof(x));
        memcpy(&y, b + c, sizeof(y));
        acc += x * y;
    }
    memcpy(l, &acc, sizeof(l));
    for (; c < n; c++)
        l[0] += a[c] * b[c];
    return ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
}

/* dot8 of one row a against four rows b0..b3 at once: four independent
 * accumulators, each with exactly dot8's operations in dot8's order (the
 * same four results, bit for bit), so that the CPU overlaps their add
 * chains instead of waiting on one. */
LG_CLONES static void dot8x4(const float *a, const float *b0, const float *b1, const float *b2,
                             const float *b3, int n, float *out)
{
    lg_v8f acc0 = {0, 0, 0, 0, 0, 0, 0, 0}, acc1 = acc0, acc2 = acc0, acc3 = acc0, x, y;
    float l[4][8];
    int c = 0, q;
    for (; c + 8 <= n; c += 8) {
        memcpy(&x, a + c, sizeof(x));
        memcpy(&y, b0 + c, sizeof(y));
        acc0 += x * y;
        memcpy(&y, b1 + c, sizeof(y));
        acc1 += x * y;
        memcpy(&y, b2 + c, sizeof(y));
        acc2 += x * y;
        memcpy(&y, b3 + c, sizeof(y));
        acc3 += x * y;
    }
    memcpy(l[0], &acc0, sizeof(l[0]));
    memcpy(l[1], &acc1, sizeof(l[1]));
    memcpy(l[2], &acc2, sizeof(l[2]));
    memcpy(l[3], &acc3, sizeof(l[3]));
    for (; c < n; c++) {
        l[0][0] += a[c] * b0[c];
        l[1][0] += a[c] * b1[c];
        l[2][0] += a[c] * b2[c];
        l[3][0] += a[c] * b3[c];
    }
    for (q = 0; q < 4; q++)
        out[q] = ((l[q][0] + l[q][4]) + (l[q][1] + l[q][5])) + ((l[q][2] + l[q][6]) + (l[q][3] + l[q][7]));
}

/* Register-blocked sums of scaled rows: acc[0..d) += a_e * X_e[0..d) for each
 * entry in order, 64 columns at a time held in four 16-float vectors (so the
 * accumulator stays in registers across the entries), the tail column by
 * column. Each output float gets acc[c] += a_e * X_e[c], entry after entry (a
 * product, then a sum, each rounded: no FMA contraction in ISO C), as the
 * earlier one-row-at-a-time loop did: the same bits. */
typedef float lg_v16f __attribute__((vector_size(64)));

#define LG_ROWS_SUM(ACC, D, FOR_ENTRIES, SCALE, ROW)                                           \
    do {                                                                                       \
        int c0_ = 0, c_;                                                                       \
        for (; c0_ + 64 <= (D); c0_ += 64) {                                                   \
            lg_v16f a0_, a1_, a2_, a3_, x_;                                                    \
            memcpy(&a0_, (ACC) + c0_, 64);                                                     \
            memcpy(&a1_, (ACC) + c0_ + 16, 64);                                                \
            memcpy(&a2_, (ACC) + c0_ + 32, 64);                                                \
            memcpy(&a3_, (ACC) + c0_ + 48, 64);                                                \
            FOR_ENTRIES {                                                                      \
                const float s_ = (SCALE);                                                      \
                const float *r_ = (ROW) + c0_;                                                 \
                memcpy(&x_, r_, 64);                                                           \
                a0_ += s_ * x_;                                                                \
                memcpy(&x_, r_ + 16, 64);                                                      \
                a1_ += s_ * x_;                                                                \
                memcpy(&x_, r_ + 32, 64);                                                      \
                a2_ += s_ * x_;                                                                \
                memcpy(&x_, r_ + 48, 64);                                                      \
                a3_ += s_ * x_;                                                                \
            }                                                                                  \
            memcpy((ACC) + c0_, &a0_, 64);                                                     \
            memcpy((ACC) + c0_ + 16, &a1_, 64);                                                \
            memcpy((ACC) + c0_ + 32, &a2_, 64);                                                \
            memcpy((ACC) + c0_ + 48, &a3_, 64);                                                \
        }                                                                                      \
        if (c0_ < (D))                                                                         \
            FOR_ENTRIES {                                                                      \
                const float s_ = (SCALE);                                                      \
                const float *r_ = (ROW);                                                       \
                for (c_ = c0_; c_ < (D); c_++)                                                 \
                    (ACC)[c_] += s_ * r_[c_];                                                  \
            }                                                                                  \
    } while (0)

/* o[0..d) += val[e] W[idx[e]] over the entries e0..e1 with lo <= idx < hi */
LG_CLONES static void gather_row(float *o, const int32_t *idx, const float *val, int32_t e0, int32_t e1,
                                 int lo, int hi, const float *W, int d)
{
    int32_t e;
#define GATHER_ENTRIES                                                                         \
    for (e = e0; e < e1; e++)                                                                  \
        if (idx[e] >= lo && idx[e] < hi)
    LG_ROWS_SUM(o, d, GATHER_ENTRIES, val[e], W + (size_t)idx[e] * d);
#undef GATHER_ENTRIES
}

/* a[0..d) += val[tent[t]] R[trow[t]] over the latent's entries t0..t1, in
 * entry order */
LG_CLONES static void scatter_latent(float *a, const int32_t *trow, const int32_t *tent, const float *val,
                                     int32_t t0, int32_t t1, const float *R, int d)
{
    int32_t t;
#define SCATTER_ENTRIES for (t = t0; t < t1; t++)
    LG_ROWS_SUM(a, d, SCATTER_ENTRIES, val[tent[t]], R + (size_t)trow[t] * d);
#undef SCATTER_ENTRIES
}

int lg_cpu_csr_gather_rows(const lg_backend *be, const int32_t *ptr, const int32_t *idx,
                           const float *val, int rows, int lo, int hi, const float *W, int d,
                           float *out)
{
    int r;
#pragma omp parallel for schedule(dynamic, 32) num_threads(lg_cpu_threads()) if ((double)ptr[rows] * d > PAR_MIN)
    for (r = 0; r < rows; r++)
        gather_row(out + (size_t)r * d, idx, val, ptr[r], ptr[r + 1], lo, hi, W, d);
    return 0;
}

int lg_cpu_csr_row_dots(const lg_backend *be, const int32_t *ptr, const int32_t *idx, int rows,
                        int lo, int hi, const float *R, const float *W, int d, float alpha,
                        float beta, float *out)
{
    int r;
#pragma omp parallel for schedule(dynamic, 32) num_threads(lg_cpu_threads()) if ((double)ptr[rows] * d > PAR_MIN)
    for (r = 0; r < rows; r++) {
        const float *x = R + (size_t)r * d;
        const int32_t end = ptr[r + 1];
        int32_t e = ptr[r], sel[4];
        float dots[4];
        int ns, q;
        while (e < end) { /* the row's entries in [lo, hi), four dots at a time */
            for (ns = 0; e < end && ns < 4; e++)
                if (idx[e] >= lo && idx[e] < hi)
                    sel[ns++] = e;
            if (ns == 4)
                dot8x4(x, W + (size_t)idx[sel[0]] * d, W + (size_t)idx[sel[1]] * d, W + (size_t)idx[sel[2]] * d,
                       W + (size_t)idx[sel[3]] * d, d, dots);
            else
                for (q = 0; q < ns; q++)
                    dots[q] = dot8(x, W + (size_t)idx[sel[q]] * d, d);
            for (q = 0; q < ns; q++) {
                const float s = alpha * dots[q];
                out[sel[q]] = beta == 0.0f ? s : beta * out[sel[q]] + s;
            }
        }
    }
    return 0;
}

/* Columns are handled in blocks of SC_BLOCK consecutive latents: their
 * accumulated rows sit in a scratch [SC_BLOCK, d], so that the encoder
 * layout (ld_row = 1) writes SC_BLOCK contiguous floats per input dimension
 * instead of one float per 64 KiB stride.
 *
 * Each entry reads a row of R, and every row of R is read by about k
 * latents, from anywhere in R (2 MiB at B = 4096, d = 128): more than a
 * core's cache keeps. When every latent's sum fits in SC_ACC_BYTES, the rows
 * are taken in chunks of SC_CHUNK_BYTES of R instead: for each chunk, each
 * latent adds its entries in that chunk to its sum (kept in a scratch
 * [hi - lo, d]), so the chunk is read while it is in cache.
 *
 * Either way each latent's row is summed alone, from 0, entry after entry
 * in row order (a chunk's entries come after the previous chunk's): the
 * blocking and the chunks change no result. */
#define SC_BLOCK 16
#define SC_CHUNK_BYTES (512 * 1024)
#define SC_ACC_BYTES (1024 * 1024)

/* out[j*ld_row + c*ld_col] = beta*out + alpha*a[(j - j0)*d + c] for the
 * latents j0..j1 (beta == 0 overwrites) */
static void scatter_write(const float *a, int j0, int j1, int d, float alpha, float beta, float *out,
                          long long ld_row, long long ld_col)
{
    int j, c;
    if (ld_col == 1) {
        for (j = j0; j < j1; j++) {
            const float *aj = a + (size_t)(j - j0) * d;
            float *o = out + (long long)j * ld_row;
            if (beta == 0.0f)
                for (c = 0; c < d; c++)
                    o[c] = alpha * aj[c];
            else
                for (c = 0; c < d; c++)
                    o[c] = beta * o[c] + alpha * aj[c];
        }
    } else {
        for (c = 0; c < d; c++)
            for (j = j0; j < j1; j++) {
                float *p = out + (long long)j * ld_row + (long long)c * ld_col;
                const float v = a[(size_t)(j - j0) * d + c];
                *p = beta == 0.0f ? alpha * v : beta * *p + alpha * v;
            }
    }
}

int lg_cpu_csc_scatter_rows(const lg_backend *be, const int32_t *tptr, const int32_t *trow,
                            const int32_t *tent, const float *val, int lo, int hi, const float *R,
                            int d, float alpha, float beta, float *out, long long ld_row,
                            long long ld_col)
{
    const size_t acc_n = (size_t)(hi > lo ? hi - lo : 0) * (d > 0 ? d : 0);
    float *acc = NULL;
    int32_t *cur = NULL; /* [hi - lo] chunked: each latent's next entry */
    int nt = lg_cpu_threads(), nblk, rows = 0, chunk, j;
    if (hi <= lo || d <= 0)
        return 0;
    nblk = (hi - lo + SC_BLOCK - 1) / SC_BLOCK;
    for (j = lo; j < hi; j++) /* rows of R read: up to the last entry's */
        if (tptr[j + 1] > tptr[j] && trow[tptr[j + 1] - 1] >= rows)
            rows = trow[tptr[j + 1] - 1] + 1;
    chunk = (int)(SC_CHUNK_BYTES / ((size_t)d * sizeof(float)));
    if (chunk < 1)
        chunk = 1;
    if (rows > chunk && acc_n * sizeof(float) <= SC_ACC_BYTES) { /* chunked */
        if (!(acc = lg_calloc(acc_n, sizeof(float))) || !(cur = lg_malloc((size_t)(hi - lo) * sizeof(int32_t)))) {
            lg_free(acc);
            return lg_error_wrap("cpu backend: csc_scatter_rows");
        }
        for (j = lo; j < hi; j++)
            cur[j - lo] = tptr[j];
#pragma omp parallel num_threads(nt) if ((double)(tptr[hi] - tptr[lo]) * d + (double)(hi - lo) * d > PAR_MIN)
        {
            int r0, bk;
            for (r0 = 0; r0 < rows; r0 += chunk) { /* every thread, in order; the omp for ends in a barrier */
                const int r1 = rows - r0 > chunk ? r0 + chunk : rows;
#pragma omp for schedule(dynamic, 1)
                for (bk = 0; bk < nblk; bk++) {
                    const int j0 = lo + bk * SC_BLOCK, j1 = j0 + SC_BLOCK < hi ? j0 + SC_BLOCK : hi;
                    int jj;
                    for (jj = j0; jj < j1; jj++) {
                        int32_t t1 = cur[jj - lo];
                        while (t1 < tptr[jj + 1] && trow[t1] < r1)
                            t1++;
                        scatter_latent(acc + (size_t)(jj - lo) * d, trow, tent, val, cur[jj - lo], t1, R, d);
                        cur[jj - lo] = t1;
                    }
                }
            }
#pragma omp for schedule(dynamic, 1)
            for (bk = 0; bk < nblk; bk++) {
                const int j0 = lo + bk * SC_BLOCK, j1 = j0 + SC_BLOCK < hi ? j0 + SC_BLOCK : hi;
                scatter_write(acc + (size_t)(j0 - lo) * d, j0, j1, d, alpha, beta, out, ld_row, ld_col);
            }
        }
        lg_free(acc);
        lg_free(cur);
        return 0;
    }
    if (!(acc = lg_malloc((size_t)nt * SC_BLOCK * d * sizeof(float))))
        return lg_error_wrap("cpu backend: csc_scatter_rows");
#pragma omp parallel num_threads(nt) if ((double)(tptr[hi] - tptr[lo]) * d + (double)(hi - lo) * d > PAR_MIN)
    {
        float *blkacc = acc + (size_t)thread_id() * SC_BLOCK * d;
        int bk;
#pragma omp for schedule(dynamic, 1)
        for (bk = 0; bk < nblk; bk++) {
            const int j0 = lo + bk * SC_BLOCK, j1 = j0 + SC_BLOCK < hi ? j0 + SC_BLOCK : hi;
            int jj;
            memset(blkacc, 0, (size_t)(j1 - j0) * d * sizeof(float));
            for (jj = j0; jj < j1; jj++)
                scatter_latent(blkacc + (size_t)(jj - j0) * d, trow, tent, val, tptr[jj], tptr[jj + 1], R, d);
            scatter_write(blkacc, j0, j1, d, alpha, beta, out, ld_row, ld_col);
        }
    }
    lg_free(acc);
    return 0;
}

int lg_cpu_csc_val_sum(const lg_backend *be, const int32_t *tptr, const int32_t *tent,
                       const float *val, int cols, float alpha, float beta, float *out)
{
    int j;
#pragma omp parallel for schedule(static) num_threads(lg_cpu_threads()) if (tptr[cols] + (int64_t)cols > PAR_MIN)
    for (j = 0; j < cols; j++) {
        double s = 0.0;
        int32_t t;
        float f;
        for (t = tptr[j]; t < tptr[j + 1]; t++)
            s += val[tent[t]];
        f = alpha * (float)s;
        out[j] = beta == 0.0f ? f : beta * out[j] + f;
    }
    return 0;
}

int lg_cpu_csc_fired_update(const lg_backend *be, const int32_t *tptr, int cols, float *since)
{
    int j;
    for (j = 0; j < cols; j++)
        since[j] = tptr[j + 1] > tptr[j] ? 0.0f : since[j] + 1.0f;
    return 0;
}
