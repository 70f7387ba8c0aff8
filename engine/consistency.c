/*
 * consistency.c - cross-seed consistency metrics (MMCS, matched MCC, shared
 * fraction) and ground-truth recovery; formulas in consistency.h.
 *
 * How: both dictionaries are normalised into float64 copies, A as rows
 * An [m1, d] and B transposed Bt [d, m2]. Rows of A are taken in blocks of
 * opt.block_rows; each block is multiplied against B one column tile of
 * TILE_COLS at a time into a small float64 tile S [block rows, TILE_COLS]
 * (never an m1 x m2 matrix, unless the MCC asks for one). From each tile we
 * update the running row maxima (A -> B) and column maxima (B -> A).
 *
 * Why our own float64 kernel and not cblas_sgemm: determinism. Each cosine
 * is sum_k An[i,k] * Bt[k,j], accumulated from 0.0 in increasing k by one
 * loop whose lanes are independent columns j; the arithmetic of one entry is
 * the same whatever the block, tile or row-unrolling it falls in, so the
 * blocked result equals the unblocked one bit for bit (tested). BLAS kernels
 * may change the reduction order with the matrix shape and thread count.
 * Float64 also makes the cosines exact to ~1e-16 from float32 inputs, so the
 * NumPy references can be compared tightly. (Built with -std=c11, GCC does
 * not contract a*b+c into an FMA, so vector and scalar lanes agree.)
 *
 * Above LG_SIM_EXACT_MAX_MACS (or with opt.method = LG_SIM_GEMM) the tiles
 * come from cblas_dgemm instead: B is kept as rows Bn [m2, d] and each tile
 * S [LG_SIM_GEMM_ROWS, LG_SIM_GEMM_COLS] = An_blk Bn_tile^T is one dgemm
 * call. Still float64 (agrees with the exact path to ~1e-15), multi-threaded
 * by OpenBLAS, and deterministic for a given OpenBLAS build and thread
 * count: the tile grid is a function of (m1, m2) only and is visited in a
 * fixed order. The small problems every shipped study makes stay on the
 * exact path, so their recorded metrics do not move.
 *
 * Max is exact, so the maxima do not depend on the visiting order; the means
 * are summed in index order. The MCC is the maximising assignment of
 * engine/hungarian.c on the full [min(m1,m2), max(m1,m2)] matrix (A's rows
 * as the matrix rows when m1 <= m2, else B's).
 */
#include "engine/consistency.h"

#include <cblas.h>
#include <cjson/cJSON.h>

#include <math.h>
#include <string.h>

#include "base/base.h"
#include "engine/blas_lazy.h"
#include "engine/hungarian.h"

#define TILE_COLS 256
#define DEFAULT_BLOCK_ROWS 64

void lg_sim_options_init(lg_sim_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->abs_cos = 0;
    opt->shared_threshold = 0.7;
    opt->block_rows = DEFAULT_BLOCK_ROWS;
    opt->mcc = 1;
    opt->mcc_max_cells = LG_HUNGARIAN_MAX_CELLS;
}

/* out [m, d] (transpose = 0) or [d, m] (transpose = 1): the rows of X [m, d]
 * scaled to unit L2 norm, in float64. */
static int normalise_rows(const float *X, int m, int d, const char *name, int transpose,
                          double **out)
{
    double *Y = NULL;
    int i, k, err = 0;
    *out = NULL;
    Y = lg_malloc((size_t)m * (size_t)d * sizeof(double));
    if (!Y)
        return LG_ENOMEM;
    for (i = 0; i < m; i++) {
        const float *x = X + (size_t)i * (size_t)d; /* [d] */
        double ss = 0.0, inv;
        for (k = 0; k < d; k++) {
            double v = (double)x[k];
            if (!isfinite(v)) {
                err = lg_error_set(LG_EINPUT, "dictionary %s: row %d, column %d is not finite",
                                   name, i, k);
                goto out;
            }
            ss += v * v;
        }
        if (ss == 0.0) {
            err = lg_error_set(LG_EINPUT, "dictionary %s: row %d has zero norm", name, i);
            goto out;
        }
        inv = 1.0 / sqrt(ss);
        for (k = 0; k < d; k++) {
            double v = (double)x[k] * inv;
            if (transpose)
                Y[(size_t)k * (size_t)m + (size_t)i] = v;
            else
                Y[(size_t)i * (size_t)d + (size_t)k] = v;
        }
    }
    *out = Y;
    Y = NULL;
out:
    lg_free(Y);
    return err;
}

/* S[r, 0..jn) = An[r, :] . Bt[:, j0 + 0..jn) for r < rows.
 * An [rows, d], Bt [d, m2], S [rows, TILE_COLS]. Rows go four at a time so
 * that each loaded Bt value is used four times; every entry is accumulated
 * the same way (0, then + a*b for k = 0..d-1) in both paths. */
static void tile_dots(const double *An, int rows, int d, const double *Bt, int m2, int j0, int jn,
                      double *S)
{
    int r = 0, k, j;
    for (; r + 4 <= rows; r += 4) {
        double *restrict s0 = S + (size_t)r * TILE_COLS;
        double *restrict s1 = s0 + TILE_COLS;
        double *restrict s2 = s1 + TILE_COLS;
        double *restrict s3 = s2 + TILE_COLS;
        const double *a = An + (size_t)r * (size_t)d;
        for (j = 0; j < jn; j++)
            s0[j] = s1[j] = s2[j] = s3[j] = 0.0;
        for (k = 0; k < d; k++) {
            const double *restrict b = Bt + (size_t)k * (size_t)m2 + (size_t)j0;
            double a0 = a[k], a1 = a[(size_t)d + k], a2 = a[2 * (size_t)d + k],
                   a3 = a[3 * (size_t)d + k];
            for (j = 0; j < jn; j++) {
                double bj = b[j];
                s0[j] += a0 * bj;
                s1[j] += a1 * bj;
                s2[j] += a2 * bj;
                s3[j] += a3 * bj;
            }
        }
    }
    for (; r < rows; r++) {
        double *restrict s0 = S + (size_t)r * TILE_COLS;
        const double *a = An + (size_t)r * (size_t)d;
        for (j = 0; j < jn; j++)
            s0[j] = 0.0;
        for (k = 0; k < d; k++) {
            const double *restrict b = Bt + (size_t)k * (size_t)m2 + (size_t)j0;
            double a0 = a[k];
            for (j = 0; j < jn; j++)
                s0[j] += a0 * b[j];
        }
    }
}

typedef struct {
    double *rowmax; /* [m1] max_j s(i, j) */
    double *colmax; /* [m2] max_i s(i, j) */
    double *rowmax_signed, *colmax_signed; /* the same of the signed cosines (compare's want_signed) */
    double mcc, shared_frac;
    int mcc_computed;
} compare_result;

static void compare_result_release(compare_result *r)
{
    lg_free(r->rowmax);
    lg_free(r->colmax);
    lg_free(r->rowmax_signed);
    lg_free(r->colmax_signed);
    r->rowmax = r->colmax = r->rowmax_signed = r->colmax_signed = NULL;
}

/* want_signed: also the maxima of the signed cosines, from the same tiles
 * (what a second call with abs_cos = 0 would give, bit for bit: the same
 * dot products, and a maximum is exact) */
static int compare(const float *A, int m1, const char *na, const float *B, int m2, const char *nb,
                   int d, const lg_sim_options *user_opt, int want_signed, compare_result *res)
{
    lg_sim_options opt;
    /* An [m1,d]; Bt [d,m2] (EXACT) or [m2,d] (GEMM); S [blk,tc]; C [n,mc] */
    double *An = NULL, *Bt = NULL, *S = NULL, *C = NULL;
    int *assign = NULL;
    int err = 0, i0, i, j, n, mc, want_mcc, gemm, tc;
    size_t max_cells;

    memset(res, 0, sizeof(*res));
    res->mcc = res->shared_frac = NAN;
    if (user_opt)
        opt = *user_opt;
    else
        lg_sim_options_init(&opt);
    if (m1 < 1 || m2 < 1 || d < 1)
        return lg_error_set(LG_EINPUT, "dictionaries %s [%d, %d] and %s [%d, %d]: empty or bad shape",
                            na, m1, d, nb, m2, d);
    if (!A || !B)
        return lg_error_set(LG_EINPUT, "dictionary %s: NULL data", !A ? na : nb);
    if (opt.block_rows < 1)
        return lg_error_set(LG_EINPUT, "similarity options: block_rows = %d must be >= 1",
                            opt.block_rows);
    if (!isfinite(opt.shared_threshold))
        return lg_error_set(LG_EINPUT, "similarity options: shared_threshold is not finite");
    if (opt.method < LG_SIM_AUTO || opt.method > LG_SIM_GEMM)
        return lg_error_set(LG_EINPUT, "similarity options: method = %d is not 0, 1 or 2",
                            opt.method);
    gemm = opt.method == LG_SIM_GEMM ||
           (opt.method == LG_SIM_AUTO && (double)m1 * m2 * d > LG_SIM_EXACT_MAX_MACS);
    if (gemm) {
        opt.block_rows = LG_SIM_GEMM_ROWS;
        tc = LG_SIM_GEMM_COLS;
    } else {
        tc = TILE_COLS;
    }

    if (gemm && (err = lg_blas_load()) < 0)
        goto out;
    if ((err = normalise_rows(A, m1, d, na, 0, &An)) < 0)
        goto out;
    if ((err = normalise_rows(B, m2, d, nb, !gemm, &Bt)) < 0)
        goto out;
    res->rowmax = lg_malloc((size_t)m1 * sizeof(double));
    res->colmax = lg_malloc((size_t)m2 * sizeof(double));
    if (opt.block_rows > m1)
        opt.block_rows = m1;
    if (gemm && tc > m2) /* (tile_dots writes rows of TILE_COLS) */
        tc = m2;
    S = lg_malloc((size_t)opt.block_rows * (size_t)tc * sizeof(double));
    if (want_signed) {
        res->rowmax_signed = lg_malloc((size_t)m1 * sizeof(double));
        res->colmax_signed = lg_malloc((size_t)m2 * sizeof(double));
    }
    if (!res->rowmax || !res->colmax || !S || (want_signed && (!res->rowmax_signed || !res->colmax_signed))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < m1; i++)
        res->rowmax[i] = -INFINITY;
    for (j = 0; j < m2; j++)
        res->colmax[j] = -INFINITY;
    for (i = 0; want_signed && i < m1; i++)
        res->rowmax_signed[i] = -INFINITY;
    for (j = 0; want_signed && j < m2; j++)
        res->colmax_signed[j] = -INFINITY;

    /* The MCC's matrix: rows = the smaller dictionary. */
    n = m1 <= m2 ? m1 : m2;
    mc = m1 <= m2 ? m2 : m1;
    max_cells = opt.mcc_max_cells < LG_HUNGARIAN_MAX_CELLS ? opt.mcc_max_cells
                                                           : LG_HUNGARIAN_MAX_CELLS;
    want_mcc = opt.mcc && (size_t)m1 * (size_t)m2 <= max_cells;
    if (want_mcc) {
        C = lg_malloc((size_t)n * (size_t)mc * sizeof(double));
        assign = lg_malloc((size_t)n * sizeof(int));
        if (!C || !assign) {
            err = LG_ENOMEM;
            goto out;
        }
    }

    for (i0 = 0; i0 < m1; i0 += opt.block_rows) {
        int rows = m1 - i0 < opt.block_rows ? m1 - i0 : opt.block_rows, j0;
        for (j0 = 0; j0 < m2; j0 += tc) {
            int jn = m2 - j0 < tc ? m2 - j0 : tc, r;
            if (gemm) /* S [rows, jn] (ld tc) = An[i0.., :] Bn[j0.., :]^T */
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, jn, d, 1.0,
                            An + (size_t)i0 * (size_t)d, d, Bt + (size_t)j0 * (size_t)d, d, 0.0,
                            S, tc);
            else
                tile_dots(An + (size_t)i0 * (size_t)d, rows, d, Bt, m2, j0, jn, S);
            for (r = 0; r < rows; r++) {
                double *s = S + (size_t)r * (size_t)tc; /* [jn] */
                double rmax = res->rowmax[i0 + r];
                for (j = 0; j < jn; j++) {
                    double x = opt.abs_cos ? fabs(s[j]) : s[j];
                    if (x > rmax)
                        rmax = x;
                    if (x > res->colmax[j0 + j])
                        res->colmax[j0 + j] = x;
                    if (C) {
                        size_t ia = (size_t)(i0 + r), jb = (size_t)(j0 + j);
                        if (m1 <= m2)
                            C[ia * (size_t)mc + jb] = x;
                        else
                            C[jb * (size_t)mc + ia] = x;
                    }
                }
                res->rowmax[i0 + r] = rmax;
                if (want_signed) {
                    rmax = res->rowmax_signed[i0 + r];
                    for (j = 0; j < jn; j++) {
                        if (s[j] > rmax)
                            rmax = s[j];
                        if (s[j] > res->colmax_signed[j0 + j])
                            res->colmax_signed[j0 + j] = s[j];
                    }
                    res->rowmax_signed[i0 + r] = rmax;
                }
            }
        }
    }

    if (want_mcc) {
        double total;
        int shared = 0;
        if ((err = lg_hungarian_solve_max(C, n, mc, assign, &total)) < 0) {
            lg_error_wrap("matched MCC of %s and %s", na, nb);
            goto out;
        }
        for (i = 0; i < n; i++)
            shared += C[(size_t)i * (size_t)mc + (size_t)assign[i]] > opt.shared_threshold;
        res->mcc = total / n;
        res->shared_frac = (double)shared / n;
        res->mcc_computed = 1;
    }
    err = 0;
out:
    lg_free(An);
    lg_free(Bt);
    lg_free(S);
    lg_free(C);
    lg_free(assign);
    if (err < 0)
        compare_result_release(res);
    return err;
}

/* dst[i] = (float)src[i] for i < n, when dst is given (the per-latent max-cos outputs). */
static void copy_maxcos(float *dst, const double *src, int n)
{
    int i;
    if (dst)
        for (i = 0; i < n; i++)
            dst[i] = (float)src[i];
}

static double mean_of(const double *x, int n)
{
    double s = 0.0;
    int i;
    for (i = 0; i < n; i++)
        s += x[i];
    return s / n;
}

int lg_dict_similarity(const float *A, int m1, const float *B, int m2, int d,
                       const lg_sim_options *opt, lg_dict_sim *out, float *maxcos_a,
                       float *maxcos_b)
{
    compare_result r;
    int err;
    if ((err = compare(A, m1, "A", B, m2, "B", d, opt, 0, &r)) < 0)
        return err;
    out->mmcs_ab = mean_of(r.rowmax, m1);
    out->mmcs_ba = mean_of(r.colmax, m2);
    out->mmcs = 0.5 * (out->mmcs_ab + out->mmcs_ba);
    out->mcc = r.mcc;
    out->shared_frac = r.shared_frac;
    out->mcc_computed = r.mcc_computed;
    copy_maxcos(maxcos_a, r.rowmax, m1);
    copy_maxcos(maxcos_b, r.colmax, m2);
    compare_result_release(&r);
    return 0;
}

int lg_dict_recovery(const float *truth, int n_true, const float *sae, int m, int d,
                     const lg_sim_options *opt, lg_truth_recovery *out, float *maxcos_truth)
{
    compare_result r;
    lg_sim_options def;
    int err, i, found = 0;
    if (!opt) {
        lg_sim_options_init(&def);
        opt = &def;
    }
    if ((err = compare(truth, n_true, "truth", sae, m, "sae", d, opt, 0, &r)) < 0)
        return err;
    out->mmcs_truth = mean_of(r.rowmax, n_true);
    out->mmcs_sae = mean_of(r.colmax, m);
    for (i = 0; i < n_true; i++)
        found += r.rowmax[i] > opt->shared_threshold;
    out->recovered_frac = (double)found / n_true;
    out->mcc = r.mcc;
    out->shared_frac = r.shared_frac;
    out->mcc_computed = r.mcc_computed;
    copy_maxcos(maxcos_truth, r.rowmax, n_true);
    compare_result_release(&r);
    return 0;
}

int lg_pair_metrics_compute(const float *A, const float *B, int d_sae, int d, double shared_threshold, int mcc,
                            lg_pair_metrics *out, float *maxcos_a)
{
    /* lg_dict_similarity with abs_cos = 1 (and the MCC when asked), and its
     * signed MMCS, from ONE pass over the cosines (the abs_cos = 0, mcc = 0
     * call it replaces computed every dot product again) */
    lg_sim_options so;
    compare_result r;
    int err;
    lg_sim_options_init(&so);
    so.abs_cos = 1;
    so.shared_threshold = shared_threshold;
    so.mcc = mcc;
    if ((err = compare(A, d_sae, "A", B, d_sae, "B", d, &so, 1, &r)) < 0)
        return err;
    out->abs.mmcs_ab = mean_of(r.rowmax, d_sae);
    out->abs.mmcs_ba = mean_of(r.colmax, d_sae);
    out->abs.mmcs = 0.5 * (out->abs.mmcs_ab + out->abs.mmcs_ba);
    out->abs.mcc = r.mcc;
    out->abs.shared_frac = r.shared_frac;
    out->abs.mcc_computed = r.mcc_computed;
    out->mmcs_signed = 0.5 * (mean_of(r.rowmax_signed, d_sae) + mean_of(r.colmax_signed, d_sae));
    copy_maxcos(maxcos_a, r.rowmax, d_sae);
    compare_result_release(&r);
    return 0;
}

static int pair_num(cJSON *obj, const char *key, double v)
{
    /* cJSON writes NaN as null, which is what "not computed" should read as */
    return cJSON_AddNumberToObject(obj, key, v) ? 0 : lg_error_set(LG_ENOMEM, "out of memory");
}

int lg_pair_metrics_to_json(const lg_pair_metrics *pm, cJSON *obj)
{
    int err;
    if ((err = pair_num(obj, "mmcs", pm->abs.mmcs)) < 0 || (err = pair_num(obj, "mmcs_ab", pm->abs.mmcs_ab)) < 0 ||
        (err = pair_num(obj, "mmcs_ba", pm->abs.mmcs_ba)) < 0 ||
        (err = pair_num(obj, "mmcs_signed", pm->mmcs_signed)) < 0 ||
        (pm->abs.mcc_computed && ((err = pair_num(obj, "mcc", pm->abs.mcc)) < 0 ||
                                  (err = pair_num(obj, "shared_frac", pm->abs.shared_frac)) < 0)))
        return err;
    return 0;
}
