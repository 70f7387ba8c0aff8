/*
 * test_cuda_sparse.c - the CUDA backend's sparse op group (backend.h "sparse
 * activations", kernels/cuda_sparse.cu) against the CPU backend's
 * (engine/backend_cpu_sparse.c), on the same fresh random inputs:
 *   - the selections (topk_rows_csr, topk_batch_csr) and the transpose
 *     EXACTLY equal to the CPU's (ptr, idx, val, tptr, trow, tent, *nnz,
 *     *min_kept), and the selections exactly equal to the GPU's own dense
 *     topk_rows / topk_batch, with ties, masks (half, all masked), rows with
 *     nothing positive, k > cols, k = 0, keep >= the positives, a row longer
 *     than one write unit, 256 x 65536 with k = 64 and batch top-k over 2^23
 *     and more entries;
 *   - gather, row dots, both scatter layouts (decoder rows ld_row = d, padded
 *     rows, encoder columns ld_row = 1, ld_col = cols), column sums and the
 *     dead-latent clock within float tolerance of the CPU, on CSRs with
 *     empty rows, a column in half of the rows, columns without entries,
 *     lo/hi sub-ranges and beta 0 and 1; entries and latents outside [lo, hi)
 *     must stay untouched (exact);
 *   - every op twice on the same large inputs: bit-identical;
 *   - training: TopK, BatchTopK and Matryoshka (AuxK active) GPU-sparse
 *     against CPU-sparse and against GPU-dense (the same backend with the
 *     group NULL) within the tolerance of test_cuda_parity.c's training
 *     parity; two GPU-sparse trainings bit-identical.
 * Without a usable device: prints "skipped: no GPU" and exits 77 (ctest: skipped).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/rng.h"
#include "engine/backend.h"
#include "engine/sae.h"
#include "engine/train.h"
#include "tests/unit/check.h"
#ifdef LEDGER_HAVE_CUDA
#include "kernels/cuda.h"
#endif

static const lg_backend *cpu, *gpu;
static lg_backend gpu_dense; /* the CUDA table with the sparse group NULL */
static lg_rng rng;

/* ---- helpers ------------------------------------------------------------- */

static float *randn(size_t n, float scale)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (float)(scale * lg_rng_normal(&rng));
    return p;
}

/* values from a few levels (multiples of 0.25 around 0): many ties */
static float *rand_levels(size_t n, int levels)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    size_t i;
    for (i = 0; i < n; i++)
        p[i] = (float)((int)lg_rng_below(&rng, (uint64_t)levels) - levels / 3) * 0.25f;
    return p;
}

static void *up(const lg_backend *b, const void *h, size_t n)
{
    float *d = NULL;
    CHECK_OK(b->alloc(b, n ? n : 1, &d));
    if (d && n)
        CHECK_OK(b->upload(b, d, (const float *)h, n));
    return d;
}

static void *down(const lg_backend *b, const void *d, size_t n)
{
    float *h = calloc(n ? n : 1, sizeof(float));
    if (n)
        CHECK_OK(b->download(b, h, (const float *)d, n));
    return h;
}

/* [0] on the CPU backend, [1] on the GPU; a 4-byte element per entry */
typedef struct {
    void *p[2];
    size_t n;
} twin;

static twin twin_up(const void *h, size_t n)
{
    twin t;
    t.p[0] = up(cpu, h, n);
    t.p[1] = up(gpu, h, n);
    t.n = n;
    return t;
}

static twin twin_new(size_t n) /* zeros */
{
    twin t;
    t.p[0] = t.p[1] = NULL;
    CHECK_OK(cpu->alloc(cpu, n ? n : 1, (float **)&t.p[0]));
    CHECK_OK(gpu->alloc(gpu, n ? n : 1, (float **)&t.p[1]));
    t.n = n;
    return t;
}

static void twin_free(twin *t)
{
    cpu->free(cpu, t->p[0]);
    gpu->free(gpu, t->p[1]);
    t->p[0] = t->p[1] = NULL;
}

/* The first n elements of both copies: exact (bits) for ints, or floats
 * within |gpu - cpu| <= atol + rtol |cpu| (atol = rtol = 0: bits). */
static int twin_cmp(const char *what, const twin *t, size_t n, int is_int, double atol, double rtol)
{
    float *a = down(cpu, t->p[0], n), *b = down(gpu, t->p[1], n);
    size_t i, bad = 0;
    double worst = 0.0;
    for (i = 0; i < n; i++) {
        int ok;
        if (is_int || (atol == 0.0 && rtol == 0.0)) {
            ok = memcmp(&a[i], &b[i], 4) == 0;
        } else {
            double e = fabs((double)b[i] - a[i]);
            ok = e <= atol + rtol * fabs((double)a[i]);
            if (e > worst)
                worst = e;
        }
        if (!ok) {
            if (bad < 3) {
                if (is_int)
                    fprintf(stderr, "  %s[%zu]: gpu %d cpu %d\n", what, i, ((int32_t *)b)[i],
                            ((int32_t *)a)[i]);
                else
                    fprintf(stderr, "  %s[%zu]: gpu %.9g cpu %.9g\n", what, i, b[i], a[i]);
            }
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu differ (atol %g rtol %g, max |diff| %g)", what, bad, n, atol,
              rtol, worst);
    if (getenv("PARITY_VERBOSE"))
        fprintf(stderr, "  %-40s n=%-9zu max |diff| %.3g\n", what, n, worst);
    free(a);
    free(b);
    return bad == 0;
}

#define BOTH(CALL)                                      \
    do {                                                \
        int side_;                                      \
        for (side_ = 0; side_ < 2; side_++) {           \
            const lg_backend *be = side_ ? gpu : cpu;   \
            CHECK_OK(CALL);                             \
        }                                               \
    } while (0)
#define X(t) ((t).p[side_])
#define XF(t) ((float *)(t).p[side_])
#define XI(t) ((int32_t *)(t).p[side_])

static void csr_to_dense(const int32_t *ptr, const int32_t *idx, const float *val, int rows,
                         int cols, float *out)
{
    int r;
    memset(out, 0, (size_t)rows * cols * sizeof(float));
    for (r = 0; r < rows; r++) {
        int32_t e;
        for (e = ptr[r]; e < ptr[r + 1]; e++)
            out[(size_t)r * cols + idx[e]] = val[e];
    }
}

/* CSR well formed: ptr from 0, non-decreasing, <= per_row per row (< 0: any),
 * columns ascending in a row, values != 0. */
static int csr_ok(const int32_t *ptr, const int32_t *idx, const float *val, int rows, int cols,
                  int per_row)
{
    int r;
    if (ptr[0] != 0)
        return 0;
    for (r = 0; r < rows; r++) {
        int32_t e;
        if (ptr[r + 1] < ptr[r] || (per_row >= 0 && ptr[r + 1] - ptr[r] > per_row))
            return 0;
        for (e = ptr[r]; e < ptr[r + 1]; e++)
            if (idx[e] < 0 || idx[e] >= cols || val[e] == 0.0f ||
                (e > ptr[r] && idx[e] <= idx[e - 1]))
                return 0;
    }
    return 1;
}

/* GPU selection vs the GPU's dense op: the GPU CSR (ptr/idx/val) expanded
 * must equal dense acts bit for bit. */
static void gpu_csr_vs_dense(const char *what, const twin *ptr, const twin *idx, const twin *val,
                             long long nnz, const float *acts_dev, int rows, int cols, int per_row)
{
    const size_t n = (size_t)rows * cols;
    int32_t *hp = down(gpu, ptr->p[1], (size_t)rows + 1), *hi = down(gpu, idx->p[1], (size_t)nnz);
    float *hv = down(gpu, val->p[1], (size_t)nnz), *dense = down(gpu, acts_dev, n);
    float *mine = malloc(n * sizeof(float));
    CHECK_MSG(hp[rows] == nnz && csr_ok(hp, hi, hv, rows, cols, per_row), "%s: GPU CSR malformed",
              what);
    if (hp[rows] == nnz) {
        csr_to_dense(hp, hi, hv, rows, cols, mine);
        CHECK_MSG(memcmp(mine, dense, n * sizeof(float)) == 0,
                  "%s: GPU CSR selection != GPU dense selection", what);
    }
    free(hp);
    free(hi);
    free(hv);
    free(dense);
    free(mine);
}

/* ---- selections ------------------------------------------------------------- */

static void test_topk_rows_csr(void)
{
    static const int cases[][3] = {/* rows, cols, k */
                                   {7, 100, 5},   {64, 1000, 32}, {3, 50, 80},   {5, 300, 300},
                                   {33, 513, 17}, {4, 70000, 64}, {2, 10, 0},    {1, 1, 1},
                                   {16, 4096, 1}, {256, 65536, 64}};
    size_t c;
    int levels, mode;
    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
        for (levels = 0; levels < 2; levels++) {
            const int rows = cases[c][0], cols = cases[c][1], k = cases[c][2];
            const size_t n = (size_t)rows * cols, cap = (size_t)rows * (k < cols ? (k > 0 ? k : 0) : cols);
            float *pre = levels ? rand_levels(n, 9) : randn(n, 1), *mask = rand_levels(cols, 2);
            int j;
            twin tp, tm, tz;
            if (rows > 1) /* a row with nothing positive */
                for (j = 0; j < cols; j++)
                    pre[j] = -fabsf(pre[j]) - 0.5f;
            tp = twin_up(pre, n);
            tm = twin_up(mask, cols); /* entries 0 or 0.25: about half the columns */
            tz = twin_new(cols);      /* every column masked out */
            for (mode = 0; mode < 3; mode++) {
                const void *mk[2];
                twin ptr = twin_new((size_t)rows + 1), idx = twin_new(cap), val = twin_new(cap);
                long long nnz[2] = {-1, -1};
                float *acts = NULL;
                char what[96];
                int side_;
                for (side_ = 0; side_ < 2; side_++) {
                    const lg_backend *be = side_ ? gpu : cpu;
                    mk[side_] = mode == 0 ? NULL : mode == 1 ? X(tm) : X(tz);
                    CHECK_OK(be->topk_rows_csr(be, XF(tp), mk[side_], rows, cols, k, XI(ptr),
                                               XI(idx), XF(val), &nnz[side_]));
                }
                snprintf(what, sizeof(what), "topk_rows_csr %dx%d k=%d ties=%d mask=%d", rows, cols,
                         k, levels, mode);
                CHECK_MSG(nnz[0] == nnz[1], "%s: nnz gpu %lld cpu %lld", what, nnz[1], nnz[0]);
                if (mode == 2 || k == 0)
                    CHECK_MSG(nnz[1] == 0, "%s: kept %lld with nothing to keep", what, nnz[1]);
                twin_cmp(what, &ptr, (size_t)rows + 1, 1, 0, 0);
                if (nnz[0] == nnz[1] && nnz[0] >= 0) {
                    twin_cmp(what, &idx, (size_t)nnz[0], 1, 0, 0);
                    twin_cmp(what, &val, (size_t)nnz[0], 0, 0, 0);
                }
                CHECK_OK(gpu->alloc(gpu, n, &acts));
                CHECK_OK(gpu->topk_rows(gpu, (const float *)tp.p[1], mk[1], acts, rows, cols, k));
                gpu_csr_vs_dense(what, &ptr, &idx, &val, nnz[1], acts, rows, cols, k);
                gpu->free(gpu, acts);
                twin_free(&ptr);
                twin_free(&idx);
                twin_free(&val);
            }
            twin_free(&tp);
            twin_free(&tm);
            twin_free(&tz);
            free(pre);
            free(mask);
        }
}

static void test_topk_batch_csr(void)
{
    static const size_t cases[][3] = {/* rows, cols, keep */
                                      {10, 100, 37},       {64, 3000, 1024},   {1, 50000, 1},
                                      {100, 100, 9000},    {7, 111, 0},        {300, 1000, 150000},
                                      {3, 5000, 15000},    {9, 4097, 100},     {5, 8193, 20000},
                                      /* past 2^23 entries, in one row and at the training
                                         shape B = 128, k = 64 of m = 65536 */
                                      {1, ((size_t)1 << 23) + 12345, 64 * 128},
                                      {128, 65536, 64 * 128}};
    size_t c;
    int levels;
    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
        for (levels = 0; levels < 2; levels++) {
            const int rows = (int)cases[c][0], cols = (int)cases[c][1];
            const size_t n = (size_t)rows * cols, keep = cases[c][2], cap = keep < n ? keep : n;
            float *pre = levels ? rand_levels(n, 50) : randn(n, 1), mk[2] = {0, 0}, mkd = 0;
            twin tp, ptr = twin_new((size_t)rows + 1), idx = twin_new(cap), val = twin_new(cap);
            long long nnz[2] = {-1, -1};
            float *acts = NULL;
            char what[96];
            int side_, j;
            if (rows > 2) /* a row with nothing positive */
                for (j = 0; j < cols; j++)
                    pre[(size_t)cols + j] = -fabsf(pre[(size_t)cols + j]) - 0.5f;
            tp = twin_up(pre, n);
            for (side_ = 0; side_ < 2; side_++) {
                const lg_backend *be = side_ ? gpu : cpu;
                CHECK_OK(be->topk_batch_csr(be, XF(tp), rows, cols, keep, XI(ptr), XI(idx), XF(val),
                                            &nnz[side_], &mk[side_]));
            }
            snprintf(what, sizeof(what), "topk_batch_csr %dx%d keep=%zu ties=%d", rows, cols, keep,
                     levels);
            CHECK_MSG(nnz[0] == nnz[1] && (size_t)nnz[1] <= keep, "%s: nnz gpu %lld cpu %lld", what,
                      nnz[1], nnz[0]);
            CHECK_MSG(memcmp(&mk[0], &mk[1], sizeof(float)) == 0, "%s: min_kept gpu %.9g cpu %.9g",
                      what, (double)mk[1], (double)mk[0]);
            twin_cmp(what, &ptr, (size_t)rows + 1, 1, 0, 0);
            if (nnz[0] == nnz[1] && nnz[0] >= 0) {
                twin_cmp(what, &idx, (size_t)nnz[0], 1, 0, 0);
                twin_cmp(what, &val, (size_t)nnz[0], 0, 0, 0);
            }
            CHECK_OK(gpu->alloc(gpu, n, &acts));
            CHECK_OK(gpu->topk_batch(gpu, (const float *)tp.p[1], acts, n, keep, &mkd));
            CHECK_MSG(mkd == mk[1], "%s: min_kept csr %.9g dense %.9g", what, (double)mk[1],
                      (double)mkd);
            gpu_csr_vs_dense(what, &ptr, &idx, &val, nnz[1], acts, rows, cols, -1);
            gpu->free(gpu, acts);
            twin_free(&tp);
            twin_free(&ptr);
            twin_free(&idx);
            twin_free(&val);
            free(pre);
        }
}

/* ---- a random CSR -------------------------------------------------------------- */

typedef struct {
    int rows, cols;
    int32_t *ptr, *idx; /* host */
    float *val;
    long long nnz;
} host_csr;

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* rows with up to kmax entries (about 1 in 8 empty), column 0 in about half
 * the rows, the last 3 columns never used, values N(0,1) != 0 */
static host_csr make_csr(int rows, int cols, int kmax)
{
    host_csr h;
    int r;
    int32_t *tmp = malloc(((size_t)kmax + 2) * sizeof(int32_t));
    h.rows = rows;
    h.cols = cols;
    h.ptr = malloc(((size_t)rows + 1) * sizeof(int32_t));
    h.idx = malloc(((size_t)rows * (kmax + 1) + 1) * sizeof(int32_t));
    h.val = malloc(((size_t)rows * (kmax + 1) + 1) * sizeof(float));
    h.ptr[0] = 0;
    for (r = 0; r < rows; r++) {
        int want = lg_rng_below(&rng, 8) == 0 ? 0 : (int)lg_rng_below(&rng, (uint64_t)kmax + 1);
        int n = 0, i, usable = cols > 3 ? cols - 3 : cols;
        int32_t e = h.ptr[r];
        if (want > 0 && lg_rng_below(&rng, 2) == 0)
            tmp[n++] = 0;
        for (i = n; i < want; i++)
            tmp[n++] = (int32_t)lg_rng_below(&rng, (uint64_t)usable);
        qsort(tmp, (size_t)n, sizeof(int32_t), cmp_i32);
        for (i = 0; i < n; i++)
            if (i == 0 || tmp[i] != tmp[i - 1]) {
                float v = (float)lg_rng_normal(&rng);
                h.idx[e] = tmp[i];
                h.val[e++] = v != 0.0f ? v : 1.0f;
            }
        h.ptr[r + 1] = e;
    }
    h.nnz = h.ptr[rows];
    free(tmp);
    return h;
}

static void host_csr_free(host_csr *h)
{
    free(h->ptr);
    free(h->idx);
    free(h->val);
}

/* the CSR on both backends, and its CSC made by each backend (compared exactly) */
typedef struct {
    twin ptr, idx, val, tptr, trow, tent;
} dev_csr;

static dev_csr dev_csr_up(const host_csr *h)
{
    dev_csr d;
    char what[64];
    d.ptr = twin_up(h->ptr, (size_t)h->rows + 1);
    d.idx = twin_up(h->idx, (size_t)h->nnz);
    d.val = twin_up(h->val, (size_t)h->nnz);
    d.tptr = twin_new((size_t)h->cols + 1);
    d.trow = twin_new((size_t)h->nnz);
    d.tent = twin_new((size_t)h->nnz);
    BOTH(be->csr_transpose(be, XI(d.ptr), XI(d.idx), h->rows, h->cols, XI(d.tptr), XI(d.trow),
                           XI(d.tent)));
    snprintf(what, sizeof(what), "csr_transpose %dx%d nnz=%lld", h->rows, h->cols, h->nnz);
    twin_cmp(what, &d.tptr, (size_t)h->cols + 1, 1, 0, 0);
    twin_cmp(what, &d.trow, (size_t)h->nnz, 1, 0, 0);
    twin_cmp(what, &d.tent, (size_t)h->nnz, 1, 0, 0);
    return d;
}

static void dev_csr_free(dev_csr *d)
{
    twin_free(&d->ptr);
    twin_free(&d->idx);
    twin_free(&d->val);
    twin_free(&d->tptr);
    twin_free(&d->trow);
    twin_free(&d->tent);
}

static void test_transpose(void)
{
    static const int cases[][3] = {/* rows, cols, kmax */
                                   {1, 1, 1},      {5, 7, 7},         {50, 1000, 20}, {20, 30, 0},
                                   {0, 10, 0},     {256, 65536, 64},  {4096, 65536, 64},
                                   {3, 100000, 90000}};
    size_t c;
    for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        host_csr h = make_csr(cases[c][0], cases[c][1], cases[c][2]);
        dev_csr d = dev_csr_up(&h); /* compares the two transposes */
        int32_t *tptr = down(gpu, d.tptr.p[1], (size_t)h.cols + 1);
        int32_t *trow = down(gpu, d.trow.p[1], (size_t)h.nnz), *tent = down(gpu, d.tent.p[1], (size_t)h.nnz);
        long long t, bad = 0;
        int j;
        /* and against the definition: columns in order, rows ascending, entries matching */
        bad += tptr[0] != 0 || tptr[h.cols] != h.nnz;
        for (j = 0; j < h.cols; j++)
            for (t = tptr[j]; t < tptr[j + 1]; t++)
                bad += h.idx[tent[t]] != j || tent[t] < h.ptr[trow[t]] || tent[t] >= h.ptr[trow[t] + 1] ||
                       (t > tptr[j] && trow[t] <= trow[t - 1]);
        CHECK_MSG(bad == 0, "csr_transpose %dx%d: %lld entries break the CSC rules", h.rows, h.cols, bad);
        free(tptr);
        free(trow);
        free(tent);
        dev_csr_free(&d);
        host_csr_free(&h);
    }
}

/* ---- gather, dots, scatters, sums ------------------------------------------------- */

static const int op_shapes[][4] = {/* rows, cols, kmax, d */
                                   {5, 7, 7, 1},        {50, 1000, 20, 33},  {64, 512, 64, 100},
                                   {128, 4096, 32, 2304}, {256, 65536, 64, 64}, {300, 40, 40, 129}};

static void test_gather_dots(void)
{
    size_t s;
    for (s = 0; s < sizeof(op_shapes) / sizeof(op_shapes[0]); s++) {
        const int rows = op_shapes[s][0], cols = op_shapes[s][1], d = op_shapes[s][3];
        const int ranges[][2] = {{0, cols}, {0, cols / 4}, {cols / 3, cols}, {5, 5}};
        static const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-2.0f, 0.25f}, {1.0f, 1.0f}};
        host_csr h = make_csr(rows, cols, op_shapes[s][2]);
        dev_csr c = dev_csr_up(&h);
        float *W = randn((size_t)cols * d, 1), *R = randn((size_t)rows * d, 1);
        float *o0 = randn((size_t)rows * d, 1), *g0 = randn((size_t)h.nnz, 1);
        twin tW = twin_up(W, (size_t)cols * d), tR = twin_up(R, (size_t)rows * d);
        size_t q;
        for (q = 0; q < 4; q++) {
            const int lo = ranges[q][0], hi = ranges[q][1];
            twin to = twin_up(o0, (size_t)rows * d), tg = twin_up(g0, (size_t)h.nnz);
            char what[96];
            BOTH(be->csr_gather_rows(be, XI(c.ptr), XI(c.idx), XF(c.val), rows, lo, hi, XF(tW), d,
                                     XF(to)));
            snprintf(what, sizeof(what), "csr_gather_rows %dx%d d=%d [%d,%d)", rows, cols, d, lo, hi);
            twin_cmp(what, &to, (size_t)rows * d, 0, 1e-4, 1e-5);
            BOTH(be->csr_row_dots(be, XI(c.ptr), XI(c.idx), rows, lo, hi, XF(tR), XF(tW), d,
                                  ab[q][0], ab[q][1], XF(tg)));
            snprintf(what, sizeof(what), "csr_row_dots %dx%d d=%d [%d,%d) a=%g b=%g", rows, cols, d,
                     lo, hi, (double)ab[q][0], (double)ab[q][1]);
            /* lanes of 32 vs the CPU's 8: sums of d products in other orders */
            twin_cmp(what, &tg, (size_t)h.nnz, 0, 2e-6 * d * fabs(ab[q][0]) + 1e-6, 1e-5);
            if (hi <= lo) { /* an empty range leaves everything as it was: bits */
                float *a = down(gpu, to.p[1], (size_t)rows * d), *b = down(gpu, tg.p[1], (size_t)h.nnz);
                CHECK_MSG(memcmp(a, o0, (size_t)rows * d * 4) == 0 && memcmp(b, g0, (size_t)h.nnz * 4) == 0,
                          "%s: an empty range changed the output", what);
                free(a);
                free(b);
            } else if (lo > 0) { /* entries outside [lo, hi) untouched */
                float *b = down(gpu, tg.p[1], (size_t)h.nnz);
                long long e, bad = 0;
                for (e = 0; e < h.nnz; e++)
                    bad += (h.idx[e] < lo || h.idx[e] >= hi) && memcmp(&b[e], &g0[e], 4) != 0;
                CHECK_MSG(bad == 0, "%s: %lld entries outside the range changed", what, bad);
                free(b);
            }
            twin_free(&to);
            twin_free(&tg);
        }
        twin_free(&tW);
        twin_free(&tR);
        free(W);
        free(R);
        free(o0);
        free(g0);
        dev_csr_free(&c);
        host_csr_free(&h);
    }
}

static void test_scatter_sums(void)
{
    size_t s;
    for (s = 0; s < sizeof(op_shapes) / sizeof(op_shapes[0]); s++) {
        const int rows = op_shapes[s][0], cols = op_shapes[s][1], d = op_shapes[s][3];
        const int ranges[][2] = {{0, cols}, {0, cols / 4}, {cols / 3, cols}, {5, 5}};
        static const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-2.0f, 0.25f}, {1.0f, 1.0f}};
        host_csr h = make_csr(rows, cols, op_shapes[s][2]);
        dev_csr c = dev_csr_up(&h);
        const size_t no = (size_t)cols * (d + 3);
        float *R = randn((size_t)rows * d, 1), *o0 = randn(no, 1), *sn = rand_levels(cols, 7);
        twin tR = twin_up(R, (size_t)rows * d);
        size_t q;
        int layout, j;
        for (j = 0; j < cols; j++)
            sn[j] = fabsf(sn[j]) * 4; /* small non-negative counts */
        for (q = 0; q < 4; q++)
            for (layout = 0; layout < 3; layout++) {
                /* decoder rows [cols, d]; padded rows [cols, d + 3]; encoder columns [d, cols] */
                const long long ld_row = layout == 0 ? d : layout == 1 ? d + 3 : 1;
                const long long ld_col = layout == 2 ? cols : 1;
                const int lo = ranges[q][0], hi = ranges[q][1];
                twin to = twin_up(o0, no);
                char what[128];
                float *got;
                long long bad = 0;
                size_t i;
                BOTH(be->csc_scatter_rows(be, XI(c.tptr), XI(c.trow), XI(c.tent), XF(c.val), lo, hi,
                                          XF(tR), d, ab[q][0], ab[q][1], XF(to), ld_row, ld_col));
                snprintf(what, sizeof(what), "csc_scatter_rows %dx%d d=%d [%d,%d) a=%g b=%g ld %lld,%lld",
                         rows, cols, d, lo, hi, (double)ab[q][0], (double)ab[q][1], ld_row, ld_col);
                twin_cmp(what, &to, no, 0, 1e-5 * (1 + rows), 1e-5);
                got = down(gpu, to.p[1], no); /* outside [lo, hi) x [0, d): untouched */
                for (i = 0; i < no; i++) {
                    long long jj, cc;
                    int inside;
                    if (layout == 2) {
                        jj = (long long)(i % (size_t)cols);
                        cc = (long long)(i / (size_t)cols);
                    } else {
                        jj = (long long)(i / (size_t)ld_row);
                        cc = (long long)(i % (size_t)ld_row);
                    }
                    inside = jj >= lo && jj < hi && cc < d && (layout != 2 || i < (size_t)cols * d);
                    bad += !inside && memcmp(&got[i], &o0[i], 4) != 0;
                }
                CHECK_MSG(bad == 0, "%s: %lld floats outside the range changed", what, bad);
                free(got);
                twin_free(&to);
            }
        for (q = 0; q < 2; q++) {
            twin to = twin_up(o0, (size_t)cols), ts = twin_up(sn, (size_t)cols);
            char what[96];
            BOTH(be->csc_val_sum(be, XI(c.tptr), XI(c.tent), XF(c.val), cols, q ? -0.5f : 1.0f,
                                 q ? 1.0f : 0.0f, XF(to)));
            snprintf(what, sizeof(what), "csc_val_sum %dx%d beta=%d", rows, cols, (int)q);
            twin_cmp(what, &to, (size_t)cols, 0, 1e-6, 1e-6);
            BOTH(be->csc_fired_update(be, XI(c.tptr), cols, XF(ts)));
            snprintf(what, sizeof(what), "csc_fired_update %dx%d", rows, cols);
            twin_cmp(what, &ts, (size_t)cols, 0, 0, 0);
            twin_free(&to);
            twin_free(&ts);
        }
        twin_free(&tR);
        free(R);
        free(o0);
        free(sn);
        dev_csr_free(&c);
        host_csr_free(&h);
    }
}

/* ---- run to run ----------------------------------------------------------------------- */

/* Every GPU op twice on the same large inputs: the same bits. */
static void test_ops_deterministic(void)
{
    const int rows = 256, cols = 65536, k = 64, d = 128;
    const size_t n = (size_t)rows * cols, cap = (size_t)rows * k, keep = (size_t)rows * k;
    float *pre = rand_levels(n, 200), *W = randn((size_t)cols * d, 1), *R = randn((size_t)rows * d, 1);
    float *dp = up(gpu, pre, n), *dW = up(gpu, W, (size_t)cols * d), *dR = up(gpu, R, (size_t)rows * d);
    float *outs[2][6];
    size_t sizes[6] = {(size_t)rows + 1, cap, (size_t)cols + 1, cap, (size_t)rows * d, (size_t)cols * d};
    int run, i, sel;
    for (sel = 0; sel < 2; sel++) {
        for (run = 0; run < 2; run++) {
            int32_t *ptr = NULL, *idx = NULL, *tptr = NULL, *trow = NULL, *tent = NULL;
            float *val = NULL, *gval = NULL, *o = NULL, *gw = NULL, mk = 0;
            long long nnz = 0;
            CHECK_OK(gpu->alloc(gpu, (size_t)rows + 1, (float **)&ptr));
            CHECK_OK(gpu->alloc(gpu, cap, (float **)&idx));
            CHECK_OK(gpu->alloc(gpu, cap, &val));
            CHECK_OK(gpu->alloc(gpu, cap, &gval));
            CHECK_OK(gpu->alloc(gpu, (size_t)cols + 1, (float **)&tptr));
            CHECK_OK(gpu->alloc(gpu, cap, (float **)&trow));
            CHECK_OK(gpu->alloc(gpu, cap, (float **)&tent));
            CHECK_OK(gpu->alloc(gpu, (size_t)rows * d, &o));
            CHECK_OK(gpu->alloc(gpu, (size_t)cols * d, &gw));
            if (sel == 0)
                CHECK_OK(gpu->topk_rows_csr(gpu, dp, NULL, rows, cols, k, ptr, idx, val, &nnz));
            else
                CHECK_OK(gpu->topk_batch_csr(gpu, dp, rows, cols, keep, ptr, idx, val, &nnz, &mk));
            CHECK_OK(gpu->csr_transpose(gpu, ptr, idx, rows, cols, tptr, trow, tent));
            CHECK_OK(gpu->csr_gather_rows(gpu, ptr, idx, val, rows, 0, cols, dW, d, o));
            CHECK_OK(gpu->csr_row_dots(gpu, ptr, idx, rows, 0, cols, dR, dW, d, 0.7f, 0.0f, gval));
            CHECK_OK(gpu->csc_scatter_rows(gpu, tptr, trow, tent, gval, 0, cols, dR, d, 1.0f, 0.0f,
                                           gw, 1, cols));
            CHECK_OK(gpu->csc_scatter_rows(gpu, tptr, trow, tent, val, 0, cols / 2, o, d, -1.0f,
                                           1.0f, gw, d, 1));
            CHECK(nnz > 0 && (size_t)nnz <= cap);
            outs[run][0] = down(gpu, ptr, sizes[0]);
            outs[run][1] = down(gpu, idx, sizes[1]);
            outs[run][2] = down(gpu, tptr, sizes[2]);
            outs[run][3] = down(gpu, gval, sizes[3]);
            outs[run][4] = down(gpu, o, sizes[4]);
            outs[run][5] = down(gpu, gw, sizes[5]);
            gpu->free(gpu, (float *)ptr);
            gpu->free(gpu, (float *)idx);
            gpu->free(gpu, val);
            gpu->free(gpu, gval);
            gpu->free(gpu, (float *)tptr);
            gpu->free(gpu, (float *)trow);
            gpu->free(gpu, (float *)tent);
            gpu->free(gpu, o);
            gpu->free(gpu, gw);
        }
        for (i = 0; i < 6; i++) {
            CHECK_MSG(memcmp(outs[0][i], outs[1][i], sizes[i] * 4) == 0,
                      "%s: output %d differs between two runs", sel ? "batch" : "rows", i);
            free(outs[0][i]);
            free(outs[1][i]);
        }
    }
    gpu->free(gpu, dp);
    gpu->free(gpu, dW);
    gpu->free(gpu, dR);
    free(pre);
    free(W);
    free(R);
}

/* ---- training --------------------------------------------------------------------------- */

/* sparse non-negative combinations of a few directions plus noise */
static float *make_data(int n, int d, uint64_t seed)
{
    lg_rng r;
    float *x = malloc((size_t)n * d * sizeof(float)), *dirs = malloc((size_t)64 * d * sizeof(float));
    int i, j, t;
    lg_rng_init(&r, seed, 77);
    for (i = 0; i < 64 * d; i++)
        dirs[i] = (float)lg_rng_normal(&r);
    for (i = 0; i < n; i++) {
        float *row = x + (size_t)i * d;
        for (j = 0; j < d; j++)
            row[j] = (float)(0.05 * lg_rng_normal(&r));
        for (t = 0; t < 4; t++) {
            int f = (int)lg_rng_below(&r, 64);
            float c = (float)(0.5 + lg_rng_uniform(&r));
            for (j = 0; j < d; j++)
                row[j] += c * dirs[(size_t)f * d + j];
        }
    }
    free(dirs);
    return x;
}

typedef struct {
    lg_sae_weights w;
    double loss[64];
    lg_step_stats last;
    double max_dead;
} train_out;

static int train(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc,
                 const float *data, train_out *out)
{
    lg_sae_weights init;
    lg_trainer *t = NULL;
    long s;
    int err;
    memset(out, 0, sizeof(*out));
    if ((err = lg_sae_init_weights(cfg, 42, NULL, &init)) < 0)
        return err;
    if ((err = lg_trainer_new(be, cfg, tc, &init, &t)) < 0)
        goto out;
    for (s = 0; s < tc->steps; s++) {
        lg_step_stats st;
        if ((err = lg_trainer_step(t, data + (size_t)(s % 4) * tc->batch * cfg->d_in, &st)) < 0)
            goto out;
        if (s < 64)
            out->loss[s] = st.loss;
        if (st.n_dead > out->max_dead)
            out->max_dead = st.n_dead;
        out->last = st;
    }
    err = lg_trainer_get_weights(t, &out->w);
out:
    lg_trainer_free(t);
    lg_sae_weights_release(&init);
    return err;
}

static double max_rel(const float *a, const float *b, size_t n, double atol)
{
    double worst = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (atol + fabs((double)b[i]));
        if (!(e <= worst))
            worst = e; /* NaN propagates */
    }
    return worst;
}

static void setup_train(lg_arch arch, lg_sae_config *cfg, lg_train_config *tc)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->arch = arch;
    cfg->d_in = 32;
    cfg->d_sae = 256; /* more latents than the data's 64 directions: some die */
    cfg->k = 8;
    lg_train_config_default(tc);
    tc->steps = 30;
    tc->batch = 256;
    tc->warmup_steps = 5;
    tc->lr = 1e-3;
    tc->dead_after = 1.0 * tc->batch; /* AuxK on latents that did not fire last step */
    if (arch == LG_ARCH_MATRYOSHKA) {
        tc->n_prefixes = 2;
        tc->prefixes[0] = 16;
        tc->prefixes[1] = 64;
    }
}

/* a vs reference b: weights within atol 4e-6 + rtol 2e-3 (test_cuda_parity.c's
 * training parity), losses within 1e-3 relative at every step */
static void compare_train(const char *what, lg_arch arch, const lg_sae_config *cfg,
                          const lg_train_config *tc, const train_out *a, const train_out *b)
{
    size_t dm = (size_t)cfg->d_in * cfg->d_sae;
    double wd, we, be_, bd, ld = 0.0;
    long s;
    if (!a->w.W_dec || !b->w.W_dec)
        return; /* the training call failed: already a failed check */
    wd = max_rel(a->w.W_dec, b->w.W_dec, dm, 2e-3);
    we = max_rel(a->w.W_enc, b->w.W_enc, dm, 2e-3);
    be_ = max_rel(a->w.b_enc, b->w.b_enc, (size_t)cfg->d_sae, 2e-3);
    bd = max_rel(a->w.b_dec, b->w.b_dec, (size_t)cfg->d_in, 2e-3);
    for (s = 0; s < tc->steps && s < 64; s++) {
        double e = fabs(a->loss[s] - b->loss[s]) / fabs(b->loss[s]);
        if (!(e <= ld))
            ld = e;
    }
    fprintf(stderr,
            "  %s %s: max rel diff W_dec %.3g W_enc %.3g b_enc %.3g b_dec %.3g loss %.3g "
            "(final loss %.6g vs %.6g, dead up to %g)\n",
            what, lg_arch_name(arch), wd, we, be_, bd, ld, a->last.loss, b->last.loss, a->max_dead);
    CHECK_MSG(wd <= 2e-3 && we <= 2e-3 && be_ <= 2e-3 && bd <= 2e-3,
              "%s %s: weights differ beyond tolerance", what, lg_arch_name(arch));
    CHECK_MSG(ld <= 1e-3, "%s %s: losses differ by %.3g relative", what, lg_arch_name(arch), ld);
}

static int weights_equal(const lg_sae_weights *a, const lg_sae_weights *b)
{
    size_t dm = (size_t)a->d_in * a->d_sae;
    return a->W_enc && b->W_enc && memcmp(a->W_enc, b->W_enc, dm * 4) == 0 &&
           memcmp(a->W_dec, b->W_dec, dm * 4) == 0 &&
           memcmp(a->b_enc, b->b_enc, (size_t)a->d_sae * 4) == 0 &&
           memcmp(a->b_dec, b->b_dec, (size_t)a->d_in * 4) == 0 &&
           memcmp(a->threshold, b->threshold, (size_t)a->d_sae * 4) == 0;
}

static void test_train_sparse_parity(void)
{
    static const lg_arch archs[] = {LG_ARCH_TOPK, LG_ARCH_BATCHTOPK, LG_ARCH_MATRYOSHKA};
    size_t a;
    CHECK_MSG(cpu->topk_rows_csr != NULL, "the CPU backend has no sparse ops (LEDGER_CPU_SPARSE=0?)");
    for (a = 0; a < sizeof(archs) / sizeof(archs[0]); a++) {
        lg_sae_config cfg;
        lg_train_config tc;
        train_out rc, rg, rd, rg2;
        float *data;
        setup_train(archs[a], &cfg, &tc);
        data = make_data(4 * tc.batch, cfg.d_in, 9);
        CHECK_OK(train(cpu, &cfg, &tc, data, &rc));
        CHECK_OK(train(gpu, &cfg, &tc, data, &rg));
        CHECK_OK(train(&gpu_dense, &cfg, &tc, data, &rd));
        CHECK_OK(train(gpu, &cfg, &tc, data, &rg2));
        compare_train("gpu-sparse vs cpu-sparse", archs[a], &cfg, &tc, &rg, &rc);
        compare_train("gpu-sparse vs gpu-dense", archs[a], &cfg, &tc, &rg, &rd);
        CHECK_MSG(rg.max_dead > 0, "%s: AuxK never active (no dead latents)", lg_arch_name(archs[a]));
        CHECK_MSG(weights_equal(&rg.w, &rg2.w) && memcmp(rg.loss, rg2.loss, sizeof(rg.loss)) == 0 &&
                      memcmp(&rg.last, &rg2.last, sizeof(rg.last)) == 0,
                  "%s: two GPU-sparse trainings differ", lg_arch_name(archs[a]));
        lg_sae_weights_release(&rc.w);
        lg_sae_weights_release(&rg.w);
        lg_sae_weights_release(&rd.w);
        lg_sae_weights_release(&rg2.w);
        free(data);
    }
}

/* A larger model, two GPU-sparse trainings: the same bits. */
static void test_train_sparse_deterministic(void)
{
    static const lg_arch archs[] = {LG_ARCH_TOPK, LG_ARCH_BATCHTOPK, LG_ARCH_MATRYOSHKA};
    size_t a;
    for (a = 0; a < sizeof(archs) / sizeof(archs[0]); a++) {
        lg_sae_config cfg;
        lg_train_config tc;
        train_out r1, r2;
        float *data;
        setup_train(archs[a], &cfg, &tc);
        cfg.d_in = 64;
        cfg.d_sae = 4096;
        cfg.k = 16;
        tc.batch = 512;
        tc.steps = 20;
        tc.dead_after = 2.0 * tc.batch;
        if (archs[a] == LG_ARCH_MATRYOSHKA) {
            tc.prefixes[0] = 256;
            tc.prefixes[1] = 1024;
        }
        data = make_data(4 * tc.batch, cfg.d_in, 11);
        CHECK_OK(train(gpu, &cfg, &tc, data, &r1));
        CHECK_OK(train(gpu, &cfg, &tc, data, &r2));
        CHECK_MSG(weights_equal(&r1.w, &r2.w), "%s: two GPU-sparse trainings differ",
                  lg_arch_name(archs[a]));
        CHECK_MSG(memcmp(r1.loss, r2.loss, sizeof(r1.loss)) == 0 &&
                      memcmp(&r1.last, &r2.last, sizeof(r1.last)) == 0,
                  "%s: step statistics differ", lg_arch_name(archs[a]));
        lg_sae_weights_release(&r1.w);
        lg_sae_weights_release(&r2.w);
        free(data);
    }
}

static const check_test tests[] = {
    T(test_topk_rows_csr), T(test_topk_batch_csr),     T(test_transpose),
    T(test_gather_dots),   T(test_scatter_sums),       T(test_ops_deterministic),
    T(test_train_sparse_parity), T(test_train_sparse_deterministic),
};

int main(int argc, char **argv)
{
    cpu = lg_backend_cpu();
    gpu = lg_backend_cuda();
    if (!gpu) {
#ifdef LEDGER_HAVE_CUDA
        printf("skipped: no GPU (%s)\n", lg_cuda_unavailable_reason());
#else
        printf("skipped: no GPU (built without CUDA)\n");
#endif
        return 77;
    }
    printf("cpu: %s\ngpu: %s\n", cpu->device, gpu->device);
    if (!gpu->topk_rows_csr || !cpu->topk_rows_csr) {
        /* LEDGER_CUDA_SPARSE=0 or LEDGER_CPU_SPARSE=0 in the environment: nothing to compare */
        printf("skipped: the %s backend's sparse ops are off (LEDGER_%s_SPARSE=0)\n",
               gpu->topk_rows_csr ? "cpu" : "cuda", gpu->topk_rows_csr ? "CPU" : "CUDA");
        return 77;
    }
    gpu_dense = *gpu;
    gpu_dense.topk_rows_csr = NULL;
    gpu_dense.topk_batch_csr = NULL;
    gpu_dense.csr_transpose = NULL;
    gpu_dense.csr_gather_rows = NULL;
    gpu_dense.csr_row_dots = NULL;
    gpu_dense.csc_scatter_rows = NULL;
    gpu_dense.csc_val_sum = NULL;
    gpu_dense.csc_fired_update = NULL;
    lg_rng_init(&rng, 20261130, 5);
    return check_run(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
