/*
 * consistency.h - cross-seed consistency of SAE dictionaries (DESIGN.md 4).
 *
 * Inputs are decoder dictionaries as float32 rows: A [m1, d], B [m2, d], one
 * latent's direction per row, NOT assumed normalised. Every row is first
 * normalised to unit L2 norm (in float64); a zero row, or a NaN/Inf entry,
 * is an error naming the dictionary ("A" or "B", or "truth"/"sae") and row.
 *
 * Cosine: cos(i, j) = <a_i, b_j> / (|a_i| |b_j|), computed in float64 with a
 * fixed summation order over d (no BLAS), so every value - and every metric -
 * is bit-identical run to run and independent of the block size.
 * Signed by default: SAE decoder directions have a sign (a latent fires
 * positively), so a flipped direction is a different feature. With
 * opt.abs_cos = 1 every cosine is replaced by |cos| before any max or match.
 *   NB: HUSAI's random baseline "PWMCC 0.298829" (d=128, m=1024) is the |cos|
 *   statistic: the expected MMCS of random unit dictionaries is 0.29879 with
 *   |cos| and 0.28268 with the signed cosine (tests/py/test_metrics_scipy.py
 *   derives both from cos^2 ~ Beta(1/2, (d-1)/2)). Set abs_cos = 1 to compare
 *   with HUSAI's numbers.
 *
 * Metrics (with s(i, j) the signed or absolute cosine):
 *   mmcs_ab = (1/m1) sum_i max_j s(i, j)          A -> B
 *   mmcs_ba = (1/m2) sum_j max_i s(i, j)          B -> A
 *   mmcs    = (mmcs_ab + mmcs_ba) / 2             ("PWMCC" in HUSAI)
 *   mcc     = (1/n) sum over the optimal one-to-one assignment pi of
 *             s(i, pi(i)), n = min(m1, m2), pi maximising the total
 *             (Song et al.'s PW-MCC; engine/hungarian.h)
 *   shared_frac = (1/n) #{matched pairs with s > shared_threshold}
 * mcc and shared_frac need the full [min(m1,m2), max(m1,m2)] float64 matrix
 * for the solver; they are computed only when opt.mcc is set and
 * m1 * m2 <= opt.mcc_max_cells (<= LG_HUNGARIAN_MAX_CELLS); otherwise
 * mcc_computed = 0 and both are NaN. MMCS never holds an m1 x m2 matrix: it
 * is computed tile by tile, the row and column maxima accumulated per tile.
 *
 * Two ways to compute the cosine tiles (opt.method), both in float64:
 *  - EXACT: our own loop, one fixed summation order over d; bit-identical
 *    for any block_rows. One thread. Used by AUTO when m1 m2 d <=
 *    LG_SIM_EXACT_MAX_MACS (every study shipped here: d=128, m <= 1024), so
 *    metrics recorded before the GEMM path existed are reproduced bit for bit.
 *  - GEMM: cblas_dgemm (OpenBLAS, its threads) on fixed tiles of
 *    LG_SIM_GEMM_ROWS rows of A x LG_SIM_GEMM_COLS rows of B; for m = 65536,
 *    d = 2304 this is minutes instead of hours. Deterministic: the tile grid
 *    depends only on (m1, m2) and tiles are visited in a fixed order (row
 *    blocks, then column tiles, ascending); max is exact and order-free; the
 *    means are summed in index order in double. So the same inputs give the
 *    same bits with the same OpenBLAS build and thread count (BLAS may order
 *    the d-sum differently per kernel: GEMM and EXACT agree to ~1e-15, not
 *    bit for bit; block_rows is ignored).
 *
 * Memory: the normalised copies of A and B in float64 (8 (m1 + m2) d bytes),
 * one tile buffer (GEMM: 8 LG_SIM_GEMM_ROWS LG_SIM_GEMM_COLS bytes = 16 MiB),
 * and, for the MCC only, 8 m1 m2 bytes.
 * Time: m1 m2 d multiply-adds, plus the O(n^2 max(m1,m2)) assignment for the
 * MCC (about 1 s at m1 = m2 = 1024).
 */
#ifndef LG_CONSISTENCY_H
#define LG_CONSISTENCY_H

#include <stddef.h>

enum {
    LG_SIM_AUTO = 0,  /* EXACT up to LG_SIM_EXACT_MAX_MACS, GEMM above */
    LG_SIM_EXACT = 1, /* own float64 loop: bit-identical for any block size */
    LG_SIM_GEMM = 2   /* cblas_dgemm tiles (float64, multi-threaded) */
};
#define LG_SIM_EXACT_MAX_MACS ((double)(1u << 30)) /* m1 * m2 * d */
#define LG_SIM_GEMM_ROWS 512
#define LG_SIM_GEMM_COLS 4096

typedef struct {
    int abs_cos;             /* 0 (default): signed cosine; 1: |cos| */
    double shared_threshold; /* default 0.7; a matched pair counts if s > threshold */
    int block_rows;          /* EXACT: rows of A per block; default 64; any value >= 1
                                gives bit-identical results (GEMM: fixed tiles) */
    int mcc;                 /* default 1: compute the matched MCC and shared fraction */
    size_t mcc_max_cells;    /* default LG_HUNGARIAN_MAX_CELLS; MCC skipped above it */
    int method;              /* LG_SIM_AUTO (default), LG_SIM_EXACT or LG_SIM_GEMM */
} lg_sim_options;

typedef struct {
    double mmcs;        /* (mmcs_ab + mmcs_ba) / 2 */
    double mmcs_ab;     /* mean over rows of A of the best match in B */
    double mmcs_ba;     /* mean over rows of B of the best match in A */
    double mcc;         /* Hungarian-matched mean cosine; NaN if not computed */
    double shared_frac; /* share of matched pairs above the threshold; NaN if not computed */
    int mcc_computed;   /* 1 if mcc and shared_frac were computed */
} lg_dict_sim;

/* Ground-truth recovery: an SAE dictionary against the true dictionary of a
 * synthetic data source (sizes may differ). */
typedef struct {
    double mmcs_truth;     /* mean over true features of the max cosine to the SAE:
                              how well the true features are found */
    double mmcs_sae;       /* mean over SAE latents of the max cosine to the truth */
    double recovered_frac; /* share of true features with max cosine > threshold */
    double mcc;            /* Hungarian-matched mean cosine; NaN if not computed */
    double shared_frac;    /* share of matched pairs above the threshold; NaN if not */
    int mcc_computed;
} lg_truth_recovery;

/* Defaults: signed cosine, threshold 0.7, 64-row blocks, MCC on, solver cap. */
void lg_sim_options_init(lg_sim_options *opt);

/* Similarity of two dictionaries. A [m1, d], B [m2, d] float32 row-major;
 * opt NULL = defaults. maxcos_a [m1] / maxcos_b [m2]: if not NULL, receive
 * the per-latent max (signed or absolute) cosine of each row of A over B and
 * of each row of B over A (rounded to float, for histograms).
 * Returns 0, LG_EINPUT (bad sizes, zero row, NaN/Inf, bad option) or
 * LG_ENOMEM; on error *out is unspecified. */
int lg_dict_similarity(const float *A, int m1, const float *B, int m2, int d,
                       const lg_sim_options *opt, lg_dict_sim *out, float *maxcos_a,
                       float *maxcos_b);

/* Recovery of a true dictionary truth [n_true, d] by an SAE dictionary
 * sae [m, d]. maxcos_truth [n_true]: per true feature, its best cosine in
 * the SAE (NULL to skip). Same options, errors and determinism as above. */
int lg_dict_recovery(const float *truth, int n_true, const float *sae, int m, int d,
                     const lg_sim_options *opt, lg_truth_recovery *out, float *maxcos_truth);

/* The metrics recorded for one seed pair of a condition, by `ledger run`
 * (engine/run.c) and `ledger import` alike: the |cos| similarity (MMCS, its
 * two directions and, when asked, the matched MCC and shared fraction at
 * shared_threshold) and the signed MMCS. */
typedef struct {
    lg_dict_sim abs;    /* |cos| */
    double mmcs_signed; /* signed cosine MMCS */
} lg_pair_metrics;

/* Both dictionaries [d_sae, d] float32 row-major. mcc: 1 to compute the
 * matched MCC (the caller decides: hungarian on and d_sae <= hungarian_max).
 * maxcos_a [d_sae] or NULL: per latent of A, its max |cos| in B. Errors as
 * lg_dict_similarity. */
int lg_pair_metrics_compute(const float *A, const float *B, int d_sae, int d, double shared_threshold, int mcc,
                            lg_pair_metrics *out, float *maxcos_a);

struct cJSON;
/* Adds the recorded keys to obj, in this order: mmcs, mmcs_ab, mmcs_ba,
 * mmcs_signed, and, when the MCC was computed, mcc and shared_frac.
 * LG_ENOMEM on failure (obj may hold some of the keys). */
int lg_pair_metrics_to_json(const lg_pair_metrics *pm, struct cJSON *obj);

#endif
