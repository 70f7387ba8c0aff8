/* test_stats.c - gates/stats.c: fixed SciPy reference values (scipy 1.10, printed
 * with repr), resampling determinism, edge cases and allocation failure. The
 * broad randomised comparison with SciPy is tests/py/test_stats_scipy.py. */
#include "base/base.h"
#include "gates/stats.h"
#include "tests/unit/check.h"

/* MMCS-like numbers: trained pairs vs a random-init null near 0.299. */
static const double A[] = {0.31, 0.29, 0.35, 0.33, 0.30, 0.36, 0.34, 0.32};
static const double B[] = {0.299, 0.301, 0.298, 0.300, 0.297, 0.302, 0.299, 0.300};

static void test_distributions(void)
{
    /* mpmath (40 digits); scipy 1.10's t.ppf gives 2.3646242510102993, 2.5e-10 off */
    CHECK_CLOSE(lg_stats_t_quantile(0.975, 7), 2.3646242515927853, 1e-13, 1e-13);
    CHECK_CLOSE(lg_stats_t_cdf(-3.5, 2.5), 0.026172773480160158, 1e-14, 1e-10);
    CHECK_CLOSE(lg_stats_betainc(2.5, 3.5, 0.4), 0.4869041915261175, 1e-14, 1e-12);
    CHECK_CLOSE(lg_stats_norm_quantile(0.975), 1.959963984540054, 1e-14, 1e-12);
    CHECK_CLOSE(lg_stats_t_cdf(0, 3), 0.5, 1e-15, 0);
    CHECK(isnan(lg_stats_t_quantile(0, 3)) && isnan(lg_stats_t_cdf(1, 0)));
    /* quantile inverts the CDF over the range, including heavy tails */
    for (double df = 0.7; df < 300; df *= 3.1)
        for (double p = 1e-9; p < 1; p = p < 0.5 ? p * 13 : 1 - (1 - p) / 7) {
            double t = lg_stats_t_quantile(p, df);
            CHECK_CLOSE(lg_stats_t_cdf(t, df), p, 1e-300, 1e-9);
            if (p > 0.99999)
                break;
        }
}

static void test_tests(void)
{
    lg_test_result r;
    lg_interval ci;
    CHECK_OK(lg_stats_welch(A, 8, B, 8, LG_ALT_GREATER, &r));
    CHECK_CLOSE(r.p, 0.010779805918775642, 1e-12, 1e-9);
    CHECK_OK(lg_stats_welch(A, 8, B, 8, LG_ALT_TWO_SIDED, &r));
    CHECK_CLOSE(r.stat, 2.938196967950767, 1e-12, 1e-10);
    CHECK_CLOSE(r.p, 0.021559611837551285, 1e-12, 1e-9);
    CHECK_OK(lg_stats_paired_t(A, B, 8, LG_ALT_LESS, &r));
    CHECK_CLOSE(r.p, 0.9897557208797937, 1e-12, 1e-9);
    CHECK_OK(lg_stats_mannwhitney(A, 8, B, 8, LG_ALT_GREATER, LG_MWU_AUTO, &r));
    CHECK_CLOSE(r.stat, 53.0, 0, 0);
    CHECK_CLOSE(r.p, 0.015351929036690085, 1e-12, 1e-9);
    CHECK(r.exact == 0); /* B has ties: auto falls back to the normal approximation */
    CHECK(lg_stats_mannwhitney(A, 8, B, 8, LG_ALT_GREATER, LG_MWU_EXACT, &r) == LG_EINPUT);
    CHECK_OK(lg_stats_t_ci(A, 8, 0.95, &ci));
    CHECK_CLOSE(ci.lo, 0.30452175328220327, 1e-12, 1e-10);
    CHECK_CLOSE(ci.hi, 0.34547824671779664, 1e-12, 1e-10);
    /* too few values are input errors, not crashes */
    CHECK(lg_stats_welch(A, 1, B, 8, LG_ALT_GREATER, &r) == LG_EINPUT);
    CHECK(lg_stats_t_ci(A, 1, 0.95, &ci) == LG_EINPUT);
    CHECK(lg_stats_t_ci(A, 8, 1.5, &ci) == LG_EINPUT);
    CHECK(isnan(lg_stats_sd(A, 1)));
    /* zero variance: t undefined -> NaN, not a false certainty */
    {
        const double c[] = {1, 1, 1}, d[] = {1, 1, 1};
        CHECK_OK(lg_stats_welch(c, 3, d, 3, LG_ALT_GREATER, &r));
        CHECK(isnan(r.p));
    }
}

static void test_resampling(void)
{
    lg_interval c1, c2, c3;
    lg_test_result p1, p2;
    CHECK_OK(lg_stats_bootstrap_diff(A, 8, B, 8, 0.95, 2000, 1, LG_BOOT_PERCENTILE, &c1));
    CHECK_OK(lg_stats_bootstrap_diff(A, 8, B, 8, 0.95, 2000, 1, LG_BOOT_PERCENTILE, &c2));
    CHECK_OK(lg_stats_bootstrap_diff(A, 8, B, 8, 0.95, 2000, 2, LG_BOOT_PERCENTILE, &c3));
    CHECK(c1.lo == c2.lo && c1.hi == c2.hi);  /* same seed: bit-identical */
    CHECK(c1.lo != c3.lo || c1.hi != c3.hi);  /* another seed: other draws */
    CHECK(c1.lo > 0 && c1.lo < c1.est && c1.est < c1.hi);
    CHECK_CLOSE(c1.est, lg_stats_mean(A, 8) - lg_stats_mean(B, 8), 1e-15, 0);
    CHECK_OK(lg_stats_bootstrap_mean(A, 8, 0.9, 2000, 5, LG_BOOT_BCA, &c1));
    CHECK(c1.lo < c1.est && c1.est < c1.hi && c1.level == 0.9);
    CHECK(lg_stats_bootstrap_mean(A, 8, 0.9, 0, 5, LG_BOOT_BCA, &c1) == LG_EINPUT);
    /* bootstrap_reps: nb == 0 is the one-sample mean whatever b is (stats.h); a
     * second sample with no array is an input error, not a NULL dereference */
    {
        double *reps = NULL;
        CHECK_OK(lg_stats_bootstrap_mean(A, 8, 0.9, 500, 5, LG_BOOT_PERCENTILE, &c2));
        CHECK_OK(lg_stats_bootstrap_reps(A, 8, B, 0, 0.9, 500, 5, LG_BOOT_PERCENTILE, &c3, &reps));
        CHECK(reps && c2.lo == c3.lo && c2.hi == c3.hi && c2.est == c3.est);
        lg_free(reps);
        CHECK(lg_stats_bootstrap_reps(A, 8, NULL, 3, 0.9, 500, 5, LG_BOOT_PERCENTILE, &c3, NULL) == LG_EINPUT);
    }
    /* permutation: C(16, 8) = 12870 > 5000 -> Monte Carlo, seeded */
    CHECK_OK(lg_stats_permutation(A, 8, B, 8, LG_ALT_GREATER, 5000, 9, &p1));
    CHECK_OK(lg_stats_permutation(A, 8, B, 8, LG_ALT_GREATER, 5000, 9, &p2));
    CHECK(p1.p == p2.p && !p1.exact && p1.p > 0 && p1.p < 0.01);
    /* exact enumeration: C(16, 8) <= 20000 */
    CHECK_OK(lg_stats_permutation(A, 8, B, 8, LG_ALT_GREATER, 20000, 9, &p2));
    CHECK(p2.exact);
    CHECK_CLOSE(p2.p, 0.005516705516705517, 1e-15, 0); /* scipy: 71 / 12870 */
}

static void test_holm_effect(void)
{
    const double p[] = {0.01, 0.04, 0.03, 0.005};
    double adj[4];
    CHECK_OK(lg_stats_holm(p, 4, adj));
    CHECK_CLOSE(adj[3], 0.02, 1e-15, 0);  /* 4 * 0.005 */
    CHECK_CLOSE(adj[0], 0.03, 1e-15, 0);  /* 3 * 0.01 */
    CHECK_CLOSE(adj[2], 0.06, 1e-15, 0);  /* 2 * 0.03 */
    CHECK_CLOSE(adj[1], 0.06, 1e-15, 0);  /* max(1 * 0.04, 0.06): monotone */
    {
        const double bad[] = {0.1, 1.5};
        CHECK(lg_stats_holm(bad, 2, adj) == LG_EINPUT);
    }
    {
        const double x[] = {1, 2, 3, 4}, y[] = {2, 3, 4, 5};
        CHECK_CLOSE(lg_stats_cohen_d(x, 4, y, 4), -1 / sqrt(5.0 / 3), 1e-14, 0);
        CHECK_CLOSE(lg_stats_median(x, 4), 2.5, 0, 0);
    }
}

static void test_alloc_failure(void)
{
    lg_interval ci;
    lg_test_result r;
    lg_alloc_fail_after(0);
    CHECK(lg_stats_bootstrap_mean(A, 8, 0.95, 100, 1, LG_BOOT_PERCENTILE, &ci) == LG_ENOMEM);
    lg_alloc_fail_after(0);
    CHECK(lg_stats_mannwhitney(A, 8, B, 8, LG_ALT_GREATER, LG_MWU_AUTO, &r) == LG_ENOMEM);
    lg_alloc_fail_after(-1);
}

CHECK_MAIN(T(test_distributions), T(test_tests), T(test_resampling), T(test_holm_effect), T(test_alloc_failure))
