/*
 * stats.h - the statistics behind claims, in double precision.
 *
 * Conventions follow scipy.stats (the reference the tests compare against):
 * sd uses n-1; p-values of the t tests come from the Student t distribution
 * (regularised incomplete beta); Mann-Whitney U is scipy's U1 (the statistic of
 * the first sample) with tie-corrected normal approximation and continuity
 * correction, or the exact null distribution when there are no ties;
 * bootstrap and permutation draws come from the base layer's rng.h (stream
 * LG_STREAM_STATS) so that a stated seed and resample count reproduce a result
 * bit for bit.
 *
 * Functions returning int give 0 or a negative LG_E* code (base.h) with the
 * last-error message set; they never print. Values that are undefined for the
 * data (sd of one value, a t statistic with zero variance) are NaN, not errors:
 * the claim evaluator turns NaN into an ERROR verdict.
 * Arrays are borrowed (never freed or kept).
 */
#ifndef LG_STATS_H
#define LG_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    LG_ALT_TWO_SIDED = 0,
    LG_ALT_GREATER = 1,   /* H1: first sample (or the difference) is larger */
    LG_ALT_LESS = 2
} lg_alternative;

/* Resampling defaults: what a claim gets without `level`, `resamples` or
 * `seed` (gates/claims.c), and what a report's bootstrap CIs should use, so
 * that a CI in a report and the same CI stated in a claim agree bit for bit. */
#define LG_STATS_DEFAULT_LEVEL 0.95
#define LG_STATS_DEFAULT_RESAMPLES 10000
#define LG_STATS_DEFAULT_SEED 0

typedef enum { LG_MWU_AUTO = 0, LG_MWU_EXACT = 1, LG_MWU_ASYMPTOTIC = 2 } lg_mwu_method;
typedef enum { LG_BOOT_PERCENTILE = 0, LG_BOOT_BCA = 1 } lg_boot_method;

/* Result of a test. `est` is the effect the test is about: mean(a) - mean(b)
 * (Welch, permutation), mean(a - b) (paired), U1 / (n1 n2) (Mann-Whitney: the
 * probability that a value of a exceeds one of b, ties counting half). */
typedef struct {
    double stat;   /* t, or U1 */
    double df;     /* degrees of freedom (t tests), NaN otherwise */
    double p;      /* p-value for the requested alternative */
    double est;
    size_t n1, n2;
    int exact;     /* 1 when p is exact (Mann-Whitney exact, full permutation enumeration) */
} lg_test_result;

typedef struct {
    double est;    /* the point estimate */
    double lo, hi;
    double level;  /* e.g. 0.95 */
} lg_interval;

/* ---- descriptive (NaN when n is too small: mean n<1, sd/se n<2) ---------- */
double lg_stats_mean(const double *x, size_t n);
double lg_stats_sd(const double *x, size_t n);       /* sample sd, n-1 */
double lg_stats_se(const double *x, size_t n);       /* sd / sqrt(n) */
double lg_stats_min(const double *x, size_t n);
double lg_stats_max(const double *x, size_t n);
double lg_stats_median(const double *x, size_t n);   /* allocates a copy; NaN on n=0 or no memory */
/* t-based CI of the mean: mean +- t_{(1+level)/2, n-1} * se.  n >= 2. */
int lg_stats_t_ci(const double *x, size_t n, double level, lg_interval *out);

/* ---- distributions ------------------------------------------------------- */
/* Regularised incomplete beta I_x(a, b), a, b > 0, 0 <= x <= 1 (continued
 * fraction, modified Lentz). */
double lg_stats_betainc(double a, double b, double x);
double lg_stats_t_cdf(double t, double df);           /* df > 0 (real) */
double lg_stats_t_sf(double t, double df);            /* 1 - cdf, accurate in the tail */
double lg_stats_t_quantile(double p, double df);      /* 0 < p < 1 */
double lg_stats_norm_cdf(double z);
double lg_stats_norm_sf(double z);
double lg_stats_norm_quantile(double p);              /* 0 < p < 1 */

/* ---- tests (n1, n2 >= 2 for the t tests; >= 1 for the others) ------------ */
/* Welch's unequal-variance t test (scipy.stats.ttest_ind(equal_var=False)). */
int lg_stats_welch(const double *a, size_t na, const double *b, size_t nb, lg_alternative alt,
                   lg_test_result *out);
/* Paired t test on a[i] - b[i] (scipy.stats.ttest_rel); na == nb. */
int lg_stats_paired_t(const double *a, const double *b, size_t n, lg_alternative alt,
                      lg_test_result *out);
/* Mann-Whitney U (scipy.stats.mannwhitneyu, use_continuity=True). AUTO picks
 * exact when min(n1, n2) <= 8 and there are no ties, as scipy does; EXACT
 * with ties, or with samples too large for the exact table, is LG_EINPUT. */
int lg_stats_mannwhitney(const double *a, size_t na, const double *b, size_t nb,
                         lg_alternative alt, lg_mwu_method method, lg_test_result *out);
/* Permutation test of mean(a) - mean(b) (scipy.stats.permutation_test,
 * permutation_type='independent'). When the number of distinct splits
 * C(na+nb, na) is <= resamples, every split is enumerated and p is exact;
 * otherwise `resamples` random splits, p = (count + 1) / (resamples + 1). */
int lg_stats_permutation(const double *a, size_t na, const double *b, size_t nb,
                         lg_alternative alt, long resamples, uint64_t seed, lg_test_result *out);

/* ---- bootstrap (scipy.stats.bootstrap semantics, our RNG) ----------------- */
/* CI of the mean of x, from `resamples` resamples with replacement. */
int lg_stats_bootstrap_mean(const double *x, size_t n, double level, long resamples,
                            uint64_t seed, lg_boot_method method, lg_interval *out);
/* CI of mean(a) - mean(b), a and b resampled independently. */
int lg_stats_bootstrap_diff(const double *a, size_t na, const double *b, size_t nb, double level,
                            long resamples, uint64_t seed, lg_boot_method method, lg_interval *out);
/* The same, also returning the bootstrap distribution: *reps_out gets
 * `resamples` values in draw order (caller frees with lg_free). nb == 0 (b may
 * be NULL) means the one-sample mean. For tests and plots. */
int lg_stats_bootstrap_reps(const double *a, size_t na, const double *b, size_t nb, double level,
                            long resamples, uint64_t seed, lg_boot_method method,
                            lg_interval *out, double **reps_out);

/* ---- effect sizes and corrections ---------------------------------------- */
double lg_stats_mean_diff(const double *a, size_t na, const double *b, size_t nb);
/* Cohen's d with the pooled sd: (ma - mb) / sqrt(((na-1)va + (nb-1)vb) / (na+nb-2)). */
double lg_stats_cohen_d(const double *a, size_t na, const double *b, size_t nb);
/* Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1):
 * adj[i] corresponds to p[i]. p values must be in [0, 1]. */
int lg_stats_holm(const double *p, size_t n, double *adj);

/* Limits on what the exact methods enumerate. */
#define LG_STATS_MAX_RESAMPLES 10000000L
#define LG_STATS_MWU_EXACT_MAX_CELLS 4000000L  /* (n2+1) * (n1*n2+1) doubles */

#endif
