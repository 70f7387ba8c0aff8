/*
 * stats.c - descriptive statistics, distributions, tests, bootstrap (see stats.h).
 *
 * Why this way:
 * - The Student t CDF is the regularised incomplete beta, evaluated by its
 *   continued fraction with the modified Lentz algorithm; the caller passes
 *   both x and 1 - x so that the tails (tiny p-values) keep full relative
 *   precision instead of being computed as 1 - (something close to 1).
 * - Quantiles (t and normal) are found by safeguarded Newton steps on the CDF:
 *   a bracket is kept so that a bad step falls back to bisection. Accuracy is
 *   that of the CDF (~1e-13 relative), far inside the 1e-6 the tests ask.
 * - Every resampling draw comes from lg_rng (stream LG_STREAM_STATS) in a
 *   fixed order, so (data, seed, resamples) determines the result exactly.
 * - Conventions (U1, percentile interpolation, BCa acceleration over several
 *   samples, permutation p with +1, tie tolerance) follow scipy.stats, the
 *   reference of tests/py/test_stats_scipy.py.
 */
#include "gates/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/rng.h"

/* ---- descriptive ------------------------------------------------------------ */

double lg_stats_mean(const double *x, size_t n)
{
    double s = 0;
    size_t i;
    if (n == 0)
        return NAN;
    for (i = 0; i < n; i++)
        s += x[i];
    return s / (double)n;
}

/* Two-pass variance (n-1): stable for data with a large mean. */
static double var_n1(const double *x, size_t n)
{
    double m, s = 0, c = 0;
    size_t i;
    if (n < 2)
        return NAN;
    m = lg_stats_mean(x, n);
    for (i = 0; i < n; i++) {
        double d = x[i] - m;
        s += d * d;
        c += d;
    }
    return (s - c * c / (double)n) / (double)(n - 1);
}

double lg_stats_sd(const double *x, size_t n) { return sqrt(var_n1(x, n)); }

double lg_stats_se(const double *x, size_t n) { return n < 2 ? NAN : sqrt(var_n1(x, n) / (double)n); }

/* The smallest (want_max 0) or largest value; NaN when n is 0 or a value is NaN. */
static double extreme(const double *x, size_t n, int want_max)
{
    double m;
    size_t i;
    if (n == 0)
        return NAN;
    m = x[0];
    for (i = 1; i < n; i++)
        if ((want_max ? x[i] > m : x[i] < m) || isnan(x[i]))
            m = x[i];
    return m;
}

double lg_stats_min(const double *x, size_t n) { return extreme(x, n, 0); }

double lg_stats_max(const double *x, size_t n) { return extreme(x, n, 1); }

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

double lg_stats_median(const double *x, size_t n)
{
    double *c, m;
    if (n == 0 || !(c = lg_malloc(n * sizeof(*c))))
        return NAN;
    memcpy(c, x, n * sizeof(*c));
    qsort(c, n, sizeof(*c), cmp_double);
    m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    lg_free(c);
    return m;
}

static int check_level(double level)
{
    if (!(level > 0 && level < 1))
        return lg_error_set(LG_EINPUT, "confidence level %g is not in (0, 1)", level);
    return 0;
}

int lg_stats_t_ci(const double *x, size_t n, double level, lg_interval *out)
{
    double m, se, q;
    int err;
    if ((err = check_level(level)) < 0)
        return err;
    if (n < 2)
        return lg_error_set(LG_EINPUT, "a t confidence interval needs at least 2 values (got %zu)", n);
    m = lg_stats_mean(x, n);
    se = lg_stats_se(x, n);
    q = lg_stats_t_quantile(0.5 + level / 2, (double)(n - 1));
    out->est = m;
    out->lo = m - q * se;
    out->hi = m + q * se;
    out->level = level;
    return 0;
}

/* ---- distributions ---------------------------------------------------------- */

/* Continued fraction of I_x(a, b) (modified Lentz): returns K with
 * I_x(a, b) = x^a y^b / (a B(a, b) K). Converges fast for x < (a+1)/(a+b+2). */
static double betacf(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-16;
    double f = 1, C = 1, D = 0;
    int j;
    for (j = 1; j <= 20000; j++) {
        int m = j / 2;
        double dj, delta;
        if (j % 2) /* d_{2m+1} */
            dj = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
        else       /* d_{2m} */
            dj = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
        D = 1 + dj * D;
        if (fabs(D) < tiny)
            D = tiny;
        C = 1 + dj / C;
        if (fabs(C) < tiny)
            C = tiny;
        D = 1 / D;
        delta = C * D;
        f *= delta;
        if (fabs(delta - 1) < eps)
            break;
    }
    return f;
}

/* I_x(a, b) given x and y = 1 - x separately (both exact). */
static double ibeta2(double a, double b, double x, double y)
{
    double lfront;
    if (!(a > 0 && b > 0) || isnan(x) || isnan(y) || x < 0 || y < 0)
        return NAN;
    if (x == 0)
        return 0;
    if (y == 0)
        return 1;
    lfront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(y);
    if (x < (a + 1) / (a + b + 2))
        return exp(lfront) / (a * betacf(a, b, x));
    return 1 - exp(lfront) / (b * betacf(b, a, y));
}

double lg_stats_betainc(double a, double b, double x)
{
    if (!(x >= 0 && x <= 1))
        return NAN;
    return ibeta2(a, b, x, 1 - x);
}

/* P(T > t) for t >= 0: 0.5 * I_{df/(df+t^2)}(df/2, 1/2). */
static double t_upper(double t, double df)
{
    double t2 = t * t, x, y;
    if (isinf(t2))
        return 0;
    if (df > 1e15) /* the t distribution is the normal to double precision */
        return lg_stats_norm_sf(t);
    x = df / (df + t2);
    y = t2 / (df + t2);
    return 0.5 * ibeta2(df / 2, 0.5, x, y);
}

double lg_stats_t_sf(double t, double df)
{
    if (isnan(t) || !(df > 0))
        return NAN;
    return t >= 0 ? t_upper(t, df) : 1 - t_upper(-t, df);
}

double lg_stats_t_cdf(double t, double df)
{
    if (isnan(t) || !(df > 0))
        return NAN;
    return t <= 0 ? t_upper(-t, df) : 1 - t_upper(t, df);
}

static double t_pdf(double t, double df)
{
    if (df > 1e15)
        return exp(-0.5 * t * t) / sqrt(2 * M_PI);
    return exp(lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * log(df * M_PI) -
               (df + 1) / 2 * log1p(t * t / df));
}

double lg_stats_norm_cdf(double z) { return 0.5 * erfc(-z / M_SQRT2); }
double lg_stats_norm_sf(double z) { return 0.5 * erfc(z / M_SQRT2); }

/* Safeguarded Newton for t >= 0 with upper(t) = q, upper decreasing, pdf = -upper'.
 * The bracket [lo, hi] always holds the root; a step leaving it bisects. */
static double solve_upper(double q, double guess, double (*upper)(double, double),
                          double (*pdf)(double, double), double df)
{
    double lo = 0, hi = guess > 1 ? guess : 1, t;
    int i;
    while (upper(hi, df) > q && hi < 1e300)
        hi *= 4;
    t = guess > lo && guess < hi ? guess : 0.5 * (lo + hi);
    for (i = 0; i < 400; i++) {
        /* Newton on log(upper) - log(q): quadratic in the far tail too, where
         * upper is exponentially convex and plain Newton crawls. */
        double u = upper(t, df), d = pdf(t, df), tn;
        if (u == q)
            return t;
        if (u > q)
            lo = t;
        else
            hi = t;
        tn = d > 0 && u > 0 ? t + (log(u) - log(q)) * u / d : 0.5 * (lo + hi);
        if (!(tn > lo && tn < hi))
            tn = 0.5 * (lo + hi);
        if (fabs(tn - t) <= 1e-15 * fabs(tn) || hi - lo <= 1e-15 * hi) {
            t = tn;
            break;
        }
        t = tn;
    }
    return t;
}

static double norm_upper(double z, double df) { (void)df; return lg_stats_norm_sf(z); }
static double norm_pdf(double z, double df) { (void)df; return exp(-0.5 * z * z) / sqrt(2 * M_PI); }

/* Initial guess for the normal upper-tail quantile (q <= 0.5): a rational
 * approximation in sqrt(-2 log q), good to ~1e-3, then polished by Newton. */
static double norm_upper_guess(double q)
{
    double s = sqrt(-2 * log(q));
    return s - (2.515517 + 0.802853 * s + 0.010328 * s * s) /
                   (1 + 1.432788 * s + 0.189269 * s * s + 0.001308 * s * s * s);
}

double lg_stats_norm_quantile(double p)
{
    double q, z;
    if (!(p > 0 && p < 1))
        return p == 0 ? -INFINITY : p == 1 ? INFINITY : NAN;
    if (p == 0.5)
        return 0;
    q = p < 0.5 ? p : 1 - p;
    z = solve_upper(q, norm_upper_guess(q), norm_upper, norm_pdf, 0);
    return p < 0.5 ? -z : z;
}

double lg_stats_t_quantile(double p, double df)
{
    double q, t;
    if (!(p > 0 && p < 1) || !(df > 0))
        return NAN;
    if (p == 0.5)
        return 0;
    q = p < 0.5 ? p : 1 - p;
    t = solve_upper(q, norm_upper_guess(q), t_upper, t_pdf, df);
    return p < 0.5 ? -t : t;
}

/* ---- t tests ------------------------------------------------------------------ */

static double p_from_t(double t, double df, lg_alternative alt)
{
    if (isnan(t))
        return NAN;
    switch (alt) {
    case LG_ALT_GREATER: return lg_stats_t_sf(t, df);
    case LG_ALT_LESS: return lg_stats_t_cdf(t, df);
    default: {
        double p = 2 * lg_stats_t_sf(fabs(t), df);
        return p > 1 ? 1 : p;
    }
    }
}

int lg_stats_welch(const double *a, size_t na, const double *b, size_t nb, lg_alternative alt,
                   lg_test_result *out)
{
    double va, vb, sa, sb;
    if (na < 2 || nb < 2)
        return lg_error_set(LG_EINPUT, "Welch's t test needs at least 2 values per sample (got %zu and %zu)", na, nb);
    va = var_n1(a, na);
    vb = var_n1(b, nb);
    sa = va / (double)na;
    sb = vb / (double)nb;
    out->est = lg_stats_mean(a, na) - lg_stats_mean(b, nb);
    out->stat = out->est / sqrt(sa + sb);
    out->df = (sa + sb) * (sa + sb) / (sa * sa / (double)(na - 1) + sb * sb / (double)(nb - 1));
    out->p = p_from_t(out->stat, out->df, alt);
    out->n1 = na;
    out->n2 = nb;
    out->exact = 0;
    return 0;
}

int lg_stats_paired_t(const double *a, const double *b, size_t n, lg_alternative alt,
                      lg_test_result *out)
{
    double *d = NULL;
    size_t i;
    if (n < 2)
        return lg_error_set(LG_EINPUT, "the paired t test needs at least 2 pairs (got %zu)", n);
    if (!(d = lg_malloc(n * sizeof(*d))))
        return LG_ENOMEM;
    for (i = 0; i < n; i++)
        d[i] = a[i] - b[i];
    out->est = lg_stats_mean(d, n);
    out->stat = out->est / lg_stats_se(d, n);
    out->df = (double)(n - 1);
    out->p = p_from_t(out->stat, out->df, alt);
    out->n1 = out->n2 = n;
    out->exact = 0;
    lg_free(d);
    return 0;
}

/* ---- Mann-Whitney U ---------------------------------------------------------- */

typedef struct { double v; size_t i; } ranked;

static int cmp_ranked(const void *pa, const void *pb)
{
    const ranked *a = pa, *b = pb;
    if (a->v != b->v)
        return (a->v > b->v) - (a->v < b->v);
    return (a->i > b->i) - (a->i < b->i);
}

/* P(U >= k) for U the Mann-Whitney statistic of sizes (m, n) without ties.
 * f(i, j, u) = f(i-1, j, u-j) + f(i, j-1, u): the largest of i+j values is
 * either an x (beating all j y's) or a y. Tables: [n+1][m*n+1] doubles, two rows of i. */
static int mwu_exact_sf(size_t m, size_t n, double k, double *out)
{
    size_t W = m * n + 1, i, j, u;
    double *prev = NULL, *cur = NULL, total = 0, tail = 0;
    int err = 0;
    if ((double)(n + 1) * (double)W > (double)LG_STATS_MWU_EXACT_MAX_CELLS)
        return lg_error_set(LG_EINPUT, "samples of %zu and %zu values are too large for the exact Mann-Whitney p (use method=asymptotic)", m, n);
    prev = lg_calloc((n + 1) * W, sizeof(double));
    cur = lg_calloc((n + 1) * W, sizeof(double));
    if (!prev || !cur) {
        err = LG_ENOMEM;
        goto out;
    }
    for (j = 0; j <= n; j++) /* i = 0: no x values, U = 0 */
        prev[j * W] = 1;
    for (i = 1; i <= m; i++) {
        double *t;
        memset(cur, 0, (n + 1) * W * sizeof(double));
        cur[0] = 1; /* j = 0 */
        for (j = 1; j <= n; j++)
            for (u = 0; u <= i * j; u++)
                cur[j * W + u] = (u >= j ? prev[j * W + u - j] : 0) + cur[(j - 1) * W + u];
        t = prev;
        prev = cur;
        cur = t;
    }
    for (u = 0; u < W; u++) {
        total += prev[n * W + u];
        if ((double)u >= k - 1e-9)
            tail += prev[n * W + u];
    }
    *out = tail / total;
out:
    lg_free(prev);
    lg_free(cur);
    return err;
}

int lg_stats_mannwhitney(const double *a, size_t na, const double *b, size_t nb,
                         lg_alternative alt, lg_mwu_method method, lg_test_result *out)
{
    size_t N = na + nb, i, j;
    ranked *r = NULL;
    double R1 = 0, ties = 0, U1, U2, U, p = NAN;
    int err = 0, has_ties = 0, exact;
    if (na < 1 || nb < 1)
        return lg_error_set(LG_EINPUT, "Mann-Whitney U needs at least 1 value per sample (got %zu and %zu)", na, nb);
    if (!(r = lg_malloc(N * sizeof(*r))))
        return LG_ENOMEM;
    for (i = 0; i < N; i++) {
        r[i].v = i < na ? a[i] : b[i - na];
        r[i].i = i;
        if (isnan(r[i].v)) {
            err = lg_error_set(LG_EINPUT, "Mann-Whitney U: NaN in the data");
            goto out;
        }
    }
    qsort(r, N, sizeof(*r), cmp_ranked);
    for (i = 0; i < N; i = j) {
        double t, rank;
        size_t k;
        for (j = i + 1; j < N && r[j].v == r[i].v; j++)
            ;
        t = (double)(j - i);
        rank = 0.5 * (double)(i + 1 + j); /* average of ranks i+1 .. j */
        for (k = i; k < j; k++)
            if (r[k].i < na)
                R1 += rank;
        ties += t * t * t - t;
        if (j - i > 1)
            has_ties = 1;
    }
    U1 = R1 - (double)na * (double)(na + 1) / 2;
    U2 = (double)na * (double)nb - U1;
    U = alt == LG_ALT_GREATER ? U1 : alt == LG_ALT_LESS ? U2 : (U1 > U2 ? U1 : U2);
    if (method == LG_MWU_AUTO)
        exact = (na <= 8 || nb <= 8) && !has_ties;
    else
        exact = method == LG_MWU_EXACT;
    if (exact) {
        if (has_ties) {
            err = lg_error_set(LG_EINPUT, "the exact Mann-Whitney p needs data without ties (use method=asymptotic)");
            goto out;
        }
        if ((err = mwu_exact_sf(na, nb, U, &p)) < 0)
            goto out;
    } else {
        double n = (double)N, mu = (double)na * (double)nb / 2;
        double s = sqrt((double)na * (double)nb / 12 * ((n + 1) - ties / (n * (n - 1))));
        p = lg_stats_norm_sf((U - mu - 0.5) / s);
    }
    if (alt == LG_ALT_TWO_SIDED)
        p *= 2;
    if (p > 1)
        p = 1;
    out->stat = U1;
    out->df = NAN;
    out->p = p;
    out->est = U1 / ((double)na * (double)nb);
    out->n1 = na;
    out->n2 = nb;
    out->exact = exact;
out:
    lg_free(r);
    return err;
}

/* ---- permutation test -------------------------------------------------------- */

/* C(n, k) as a double, saturating above `cap` (returns cap + 1). */
static double choose_capped(size_t n, size_t k, double cap)
{
    double c = 1;
    size_t i;
    if (k > n - k)
        k = n - k;
    for (i = 1; i <= k; i++) {
        c = c * (double)(n - k + i) / (double)i;
        if (c > cap)
            return cap + 1;
    }
    return floor(c + 0.5);
}

static int check_resamples(long resamples)
{
    if (resamples < 1 || resamples > LG_STATS_MAX_RESAMPLES)
        return lg_error_set(LG_EINPUT, "resamples = %ld is not in [1, %ld]", resamples, LG_STATS_MAX_RESAMPLES);
    return 0;
}

int lg_stats_permutation(const double *a, size_t na, const double *b, size_t nb,
                         lg_alternative alt, long resamples, uint64_t seed, lg_test_result *out)
{
    size_t N = na + nb, i;
    double *pool = NULL, total = 0, obs, gamma, ncomb, count_ge = 0, count_le = 0, nnull;
    int64_t *idx = NULL;
    int err, exact;
    if ((err = check_resamples(resamples)) < 0)
        return err;
    if (na < 1 || nb < 1)
        return lg_error_set(LG_EINPUT, "the permutation test needs at least 1 value per sample (got %zu and %zu)", na, nb);
    pool = lg_malloc(N * sizeof(*pool));
    idx = lg_malloc(N * sizeof(*idx));
    if (!pool || !idx) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < N; i++) {
        pool[i] = i < na ? a[i] : b[i - na];
        total += pool[i];
        idx[i] = (int64_t)i;
    }
#define PERM_STAT(sa) ((sa) / (double)na - (total - (sa)) / (double)nb)
    {
        double sa = 0;
        for (i = 0; i < na; i++)
            sa += pool[i];
        obs = PERM_STAT(sa);
    }
    gamma = fabs(1e-14 * obs); /* scipy's tolerance for ties with the observed value */
    ncomb = choose_capped(N, na, (double)resamples);
    exact = ncomb <= (double)resamples;
    if (exact) {
        /* idx[0..na) walks through every na-subset in lexicographic order */
        for (;;) {
            double sa = 0, s;
            for (i = 0; i < na; i++)
                sa += pool[idx[i]];
            s = PERM_STAT(sa);
            count_ge += s >= obs - gamma;
            count_le += s <= obs + gamma;
            for (i = na; i-- > 0;)
                if ((size_t)idx[i] < N - na + i)
                    break;
            if (i == (size_t)-1)
                break;
            idx[i]++;
            for (size_t k = i + 1; k < na; k++)
                idx[k] = idx[k - 1] + 1;
        }
        nnull = ncomb;
    } else {
        lg_rng rng;
        long r;
        lg_rng_init(&rng, seed, LG_STREAM_STATS);
        for (r = 0; r < resamples; r++) {
            double sa = 0, s;
            for (i = 0; i < na; i++) { /* partial Fisher-Yates: a uniform na-subset */
                size_t j = i + (size_t)lg_rng_below(&rng, N - i);
                int64_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
                sa += pool[idx[i]];
            }
            s = PERM_STAT(sa);
            count_ge += s >= obs - gamma;
            count_le += s <= obs + gamma;
        }
        count_ge += 1; /* the observed split counts once (a valid p-value) */
        count_le += 1;
        nnull = (double)resamples + 1;
    }
#undef PERM_STAT
    {
        double pg = count_ge / nnull, pl = count_le / nnull;
        double p = alt == LG_ALT_GREATER ? pg : alt == LG_ALT_LESS ? pl : 2 * (pg < pl ? pg : pl);
        out->p = p > 1 ? 1 : p;
    }
    out->stat = obs;
    out->est = obs;
    out->df = NAN;
    out->n1 = na;
    out->n2 = nb;
    out->exact = exact;
out:
    lg_free(pool);
    lg_free(idx);
    return err;
}

/* ---- bootstrap ------------------------------------------------------------------ */

/* Linear-interpolated percentile of sorted x (numpy's default), q in [0, 100]. */
static double percentile_sorted(const double *x, size_t n, double q)
{
    double h = (double)(n - 1) * q / 100, f;
    size_t lo;
    if (isnan(q))
        return NAN;
    if (h <= 0)
        return x[0];
    if (h >= (double)(n - 1))
        return x[n - 1];
    lo = (size_t)h;
    f = h - (double)lo;
    return x[lo] + f * (x[lo + 1] - x[lo]);
}

/* Jackknife acceleration over one or two samples (scipy's multi-sample BCa):
 * U_i = (n-1)(mean of leave-one-out stats - stat without i), per sample;
 * a = sum_j sum U^3 / n_j^3 / (6 (sum_j sum U^2 / n_j^2)^(3/2)). */
static double bca_accel(const double *a, size_t na, const double *b, size_t nb)
{
    double num = 0, den = 0;
    int s;
    for (s = 0; s < (nb ? 2 : 1); s++) {
        const double *x = s == 0 ? a : b;
        size_t n = s == 0 ? na : nb, i;
        double sum = 0, jdot, nd = (double)n, u2 = 0, u3 = 0;
        if (n < 2)
            return NAN;
        for (i = 0; i < n; i++)
            sum += x[i];
        /* leave-one-out mean of this sample: (sum - x_i) / (n-1); the other
         * sample's mean is a constant shift that cancels in U. The sign of the
         * second sample's contribution flips (it enters the difference with -),
         * which only matters for U^3. */
        jdot = sum / nd;
        for (i = 0; i < n; i++) {
            double ji = (sum - x[i]) / (nd - 1);
            double u = (nd - 1) * (jdot - ji);
            if (s == 1)
                u = -u;
            u2 += u * u;
            u3 += u * u * u;
        }
        num += u3 / (nd * nd * nd);
        den += u2 / (nd * nd);
    }
    return num / (6 * pow(den, 1.5));
}

int lg_stats_bootstrap_reps(const double *a, size_t na, const double *b, size_t nb, double level,
                            long resamples, uint64_t seed, lg_boot_method method,
                            lg_interval *out, double **reps_out)
{
    double *reps = NULL, *sorted = NULL, theta, alpha = (1 - level) / 2, q1, q2;
    lg_rng rng;
    long r;
    size_t i;
    int err;
    if ((err = check_level(level)) < 0 || (err = check_resamples(resamples)) < 0)
        return err;
    if (na < 1 || !a || (nb > 0 && !b)) /* nb == 0: the one-sample mean, b unused (stats.h) */
        return lg_error_set(LG_EINPUT, "the bootstrap needs at least 1 value per sample (got %zu and %zu)", na, nb);
    reps = lg_malloc((size_t)resamples * sizeof(*reps));
    sorted = lg_malloc((size_t)resamples * sizeof(*sorted));
    if (!reps || !sorted) {
        err = LG_ENOMEM;
        goto out;
    }
    theta = lg_stats_mean(a, na) - (nb ? lg_stats_mean(b, nb) : 0);
    lg_rng_init(&rng, seed, LG_STREAM_STATS);
    for (r = 0; r < resamples; r++) {
        double sa = 0, sb = 0;
        for (i = 0; i < na; i++)
            sa += a[lg_rng_below(&rng, na)];
        for (i = 0; i < nb; i++)
            sb += b[lg_rng_below(&rng, nb)];
        reps[r] = sa / (double)na - (nb ? sb / (double)nb : 0);
    }
    memcpy(sorted, reps, (size_t)resamples * sizeof(*sorted));
    qsort(sorted, (size_t)resamples, sizeof(*sorted), cmp_double);
    q1 = alpha;
    q2 = 1 - alpha;
    if (method == LG_BOOT_BCA) {
        double below = 0, le = 0, z0, ah, za = lg_stats_norm_quantile(alpha), n1, n2;
        for (r = 0; r < resamples; r++) {
            below += reps[r] < theta;
            le += reps[r] <= theta;
        }
        z0 = lg_stats_norm_quantile((below + le) / (2.0 * (double)resamples));
        ah = bca_accel(a, na, b, nb);
        n1 = z0 + za;
        n2 = z0 - za;
        q1 = lg_stats_norm_cdf(z0 + n1 / (1 - ah * n1));
        q2 = lg_stats_norm_cdf(z0 + n2 / (1 - ah * n2));
    }
    out->est = theta;
    out->level = level;
    out->lo = percentile_sorted(sorted, (size_t)resamples, q1 * 100);
    out->hi = percentile_sorted(sorted, (size_t)resamples, q2 * 100);
    if (reps_out) {
        *reps_out = reps;
        reps = NULL;
    }
out:
    lg_free(reps);
    lg_free(sorted);
    return err;
}

int lg_stats_bootstrap_mean(const double *x, size_t n, double level, long resamples,
                            uint64_t seed, lg_boot_method method, lg_interval *out)
{
    return lg_stats_bootstrap_reps(x, n, NULL, 0, level, resamples, seed, method, out, NULL);
}

int lg_stats_bootstrap_diff(const double *a, size_t na, const double *b, size_t nb, double level,
                            long resamples, uint64_t seed, lg_boot_method method, lg_interval *out)
{
    if (!b || nb < 1)
        return lg_error_set(LG_EINPUT, "bootstrap of a difference needs a second sample");
    return lg_stats_bootstrap_reps(a, na, b, nb, level, resamples, seed, method, out, NULL);
}

/* ---- effect sizes, corrections ---------------------------------------------------- */

double lg_stats_mean_diff(const double *a, size_t na, const double *b, size_t nb)
{
    return lg_stats_mean(a, na) - lg_stats_mean(b, nb);
}

double lg_stats_cohen_d(const double *a, size_t na, const double *b, size_t nb)
{
    double pooled;
    if (na < 2 || nb < 2)
        return NAN;
    pooled = ((double)(na - 1) * var_n1(a, na) + (double)(nb - 1) * var_n1(b, nb)) / (double)(na + nb - 2);
    return (lg_stats_mean(a, na) - lg_stats_mean(b, nb)) / sqrt(pooled);
}

typedef struct { double p; size_t i; } pidx;

static int cmp_pidx(const void *pa, const void *pb)
{
    const pidx *a = pa, *b = pb;
    if (a->p != b->p)
        return (a->p > b->p) - (a->p < b->p);
    return (a->i > b->i) - (a->i < b->i);
}

int lg_stats_holm(const double *p, size_t n, double *adj)
{
    pidx *s;
    double run = 0;
    size_t i;
    for (i = 0; i < n; i++)
        if (!(p[i] >= 0 && p[i] <= 1))
            return lg_error_set(LG_EINPUT, "Holm correction: p-value %zu (%g) is not in [0, 1]", i, p[i]);
    if (n == 0)
        return 0;
    if (!(s = lg_malloc(n * sizeof(*s))))
        return LG_ENOMEM;
    for (i = 0; i < n; i++) {
        s[i].p = p[i];
        s[i].i = i;
    }
    qsort(s, n, sizeof(*s), cmp_pidx);
    for (i = 0; i < n; i++) {
        double v = (double)(n - i) * s[i].p;
        if (v > run)
            run = v;
        adj[s[i].i] = run > 1 ? 1 : run;
    }
    lg_free(s);
    return 0;
}
