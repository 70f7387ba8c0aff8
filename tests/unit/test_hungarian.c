/* test_hungarian.c - the assignment solver against hand-computed cases and a
 * brute force over all injective row -> column maps (n_rows <= n_cols <= 7),
 * plus its input checks, and the one-pass solver bit for bit against the
 * textbook form it replaced. scipy comparisons live in tests/py/test_metrics_scipy.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/hungarian.h"
#include "base/rng.h"
#include "tests/unit/check.h"

/* Brute force: best total over injective maps rows -> cols (minimise if sign = 1). */
static void brute(const double *c, int n, int m, int row, unsigned used, double acc, double sign,
                  double *best)
{
    int j;
    if (row == n) {
        if (sign * acc < sign * *best)
            *best = acc;
        return;
    }
    for (j = 0; j < m; j++)
        if (!(used & (1u << j)))
            brute(c, n, m, row + 1, used | (1u << j), acc + c[row * m + j], sign, best);
}

static int is_injective(const int *a, int n, int m)
{
    unsigned used = 0;
    int i;
    for (i = 0; i < n; i++) {
        if (a[i] < 0 || a[i] >= m || (used & (1u << a[i])))
            return 0;
        used |= 1u << a[i];
    }
    return 1;
}

static void test_hand(void)
{
    /* Classic 3x3: optimum 1 + 2 + 2 = 5 at (0,1) (1,0) (2,2). */
    static const double c[9] = {4, 1, 3, 2, 0, 5, 3, 2, 2};
    int a[3];
    double t = -1;
    CHECK_OK(lg_hungarian_solve(c, 3, 3, a, &t));
    CHECK(t == 5.0);
    CHECK(a[0] == 1 && a[1] == 0 && a[2] == 2);
    /* Maximum: 4 + 5 + 2 = 11 at (0,0) (1,2) (2,1)? 3+5+... check by brute. */
    CHECK_OK(lg_hungarian_solve_max(c, 3, 3, a, &t));
    CHECK(t == 11.0);
    CHECK(a[0] == 0 && a[1] == 2 && a[2] == 1);
    /* Rectangular 2x4: rows pick the cheapest distinct columns. */
    {
        static const double r[8] = {5, 1, 9, 2, 4, 1, 8, 7};
        CHECK_OK(lg_hungarian_solve(r, 2, 4, a, &t));
        CHECK(t == 3.0); /* row0 -> col3 (2), row1 -> col1 (1) */
        CHECK(a[0] == 3 && a[1] == 1);
    }
    /* Identity-like cosine matrix, maximise: diagonal. */
    {
        static const double id[9] = {1, 0.1, -0.2, 0.3, 1, 0, -1, 0.5, 1};
        CHECK_OK(lg_hungarian_solve_max(id, 3, 3, a, &t));
        CHECK(t == 3.0 && a[0] == 0 && a[1] == 1 && a[2] == 2);
    }
    /* Empty problem and 1 x m. */
    CHECK_OK(lg_hungarian_solve(NULL, 0, 5, NULL, &t));
    CHECK(t == 0.0);
    {
        static const double one[4] = {3, -2, 7, -2};
        CHECK_OK(lg_hungarian_solve(one, 1, 4, a, &t));
        CHECK(t == -2.0 && a[0] == 1); /* tie: lowest column */
    }
}

static void test_brute(void)
{
    lg_rng r;
    int trial, n, m, i;
    double c[49];
    int a[7];
    lg_rng_init(&r, 2024, LG_STREAM_STATS);
    for (trial = 0; trial < 400; trial++) {
        double t, best, sum;
        n = 1 + (int)lg_rng_below(&r, 6);
        m = n + (int)lg_rng_below(&r, (uint64_t)(8 - n));
        for (i = 0; i < n * m; i++) /* every 3rd trial: small integers, many ties */
            c[i] = trial % 3 == 0 ? (double)lg_rng_below(&r, 4) - 1.0 : lg_rng_normal(&r) * 10.0;
        best = INFINITY;
        brute(c, n, m, 0, 0, 0.0, 1.0, &best);
        CHECK_OK(lg_hungarian_solve(c, n, m, a, &t));
        CHECK(is_injective(a, n, m));
        for (sum = 0, i = 0; i < n; i++)
            sum += c[i * m + a[i]];
        CHECK(sum == t);
        CHECK_CLOSE(t, best, 1e-12, 1e-12);
        best = -INFINITY;
        brute(c, n, m, 0, 0, 0.0, -1.0, &best);
        CHECK_OK(lg_hungarian_solve_max(c, n, m, a, &t));
        CHECK(is_injective(a, n, m));
        CHECK_CLOSE(t, best, 1e-12, 1e-12);
    }
}

/* The textbook form of the solver (two passes over all m + 1 columns per
 * Dijkstra step, a used[] flag), as engine/hungarian.c had it before its
 * one-pass rewrite: the oracle for test_textbook_identical. */
static void textbook(const double *cost, int n, int m, double sign, int *assign, double *out_total)
{
    double *u = calloc((size_t)n + 1, sizeof(double)), *v = calloc((size_t)m + 1, sizeof(double));
    double *minv = calloc((size_t)m + 1, sizeof(double)), total = 0.0;
    int *p = calloc((size_t)m + 1, sizeof(int)), *way = calloc((size_t)m + 1, sizeof(int));
    char *used = calloc((size_t)m + 1, 1);
    int i, j;
    for (i = 1; i <= n; i++) {
        int j0 = 0;
        p[0] = i;
        for (j = 0; j <= m; j++) {
            minv[j] = INFINITY;
            used[j] = 0;
        }
        do {
            int i0 = p[j0], j1 = 0;
            double delta = INFINITY, ui0 = u[i0];
            const double *row = cost + (size_t)(i0 - 1) * (size_t)m;
            used[j0] = 1;
            for (j = 1; j <= m; j++) {
                double cur;
                if (used[j])
                    continue;
                cur = sign * row[j - 1] - ui0 - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (j = 0; j <= m; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    for (j = 1; j <= m; j++)
        if (p[j] != 0)
            way[p[j]] = j - 1;
    for (i = 1; i <= n; i++) {
        total += cost[(size_t)(i - 1) * (size_t)m + (size_t)way[i]];
        assign[i - 1] = way[i];
    }
    *out_total = total;
    free(u), free(v), free(minv), free(p), free(way), free(used);
}

/* The one-pass solver gives the textbook form's assignment and total bit for
 * bit: uniform, normal and small-integer costs (ties everywhere), square and
 * rectangular, minimise and maximise. */
static void test_textbook_identical(void)
{
    lg_rng r;
    int trial, kind;
    lg_rng_init(&r, 77, LG_STREAM_STATS);
    for (trial = 0; trial < 60; trial++)
        for (kind = 0; kind < 3; kind++) {
            int n = 1 + (int)lg_rng_below(&r, 120), m = n + (int)lg_rng_below(&r, 40) * (trial % 2);
            double *c = malloc((size_t)n * m * sizeof(double)), t1 = 0, t2 = 0;
            int *a1 = malloc((size_t)n * sizeof(int)), *a2 = malloc((size_t)n * sizeof(int)), i, same = 1, mx;
            for (i = 0; i < n * m; i++)
                c[i] = kind == 0 ? lg_rng_uniform(&r) : kind == 1 ? lg_rng_normal(&r) * 3.0
                                                                  : (double)lg_rng_below(&r, 3);
            for (mx = 0; mx < 2; mx++) {
                textbook(c, n, m, mx ? -1.0 : 1.0, a1, &t1);
                if (mx)
                    CHECK_OK(lg_hungarian_solve_max(c, n, m, a2, &t2));
                else
                    CHECK_OK(lg_hungarian_solve(c, n, m, a2, &t2));
                for (i = 0; i < n; i++)
                    same &= a1[i] == a2[i];
                CHECK(same);
                CHECK(memcmp(&t1, &t2, sizeof t1) == 0);
            }
            free(c), free(a1), free(a2);
        }
}

static void test_errors(void)
{
    double c[6] = {1, 2, 3, 4, 5, 6};
    int a[3];
    double t;
    CHECK(lg_hungarian_solve(c, 3, 2, a, &t) == LG_EINPUT); /* rows > cols */
    CHECK(strstr(lg_error_msg(), "transpose") != NULL);
    CHECK(lg_hungarian_solve(c, -1, 2, a, &t) == LG_EINPUT);
    c[4] = NAN;
    CHECK(lg_hungarian_solve(c, 2, 3, a, &t) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "cost[1][1]") != NULL);
    c[4] = -INFINITY;
    CHECK(lg_hungarian_solve_max(c, 2, 3, a, &t) == LG_EINPUT);
    c[4] = 1e200;
    CHECK(lg_hungarian_solve(c, 2, 3, a, &t) == LG_EINPUT);
    c[4] = 5;
    /* Cap: refused before the matrix is read (so a dummy pointer is fine). */
    CHECK(lg_hungarian_solve(c, 8193, 8193, NULL, &t) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "cap") != NULL);
    CHECK(lg_hungarian_solve(c, 1, 1 << 27, NULL, &t) == LG_EINPUT);
    /* Allocation failure is reported, not crashed on. */
    lg_alloc_fail_after(2);
    CHECK(lg_hungarian_solve(c, 2, 3, a, &t) == LG_ENOMEM);
    lg_alloc_fail_after(-1);
    CHECK_OK(lg_hungarian_solve(c, 2, 3, a, &t));
    CHECK(t == 1 + 5);
}

/* A mid-size case with a known optimum: a random permutation whose entries
 * are made the unique best (cost 0, all others >= 1). */
static void test_planted(void)
{
    enum { N = 300, M = 420 };
    static double c[N * M];
    int a[N], perm[M];
    lg_rng r;
    int i, j, ok = 1;
    double t;
    int64_t idx[M];
    lg_rng_init(&r, 9, LG_STREAM_STATS);
    for (j = 0; j < M; j++)
        idx[j] = j;
    lg_rng_shuffle_i64(&r, idx, M);
    for (j = 0; j < M; j++)
        perm[j] = (int)idx[j];
    for (i = 0; i < N; i++)
        for (j = 0; j < M; j++)
            c[i * M + j] = j == perm[i] ? 0.0 : 1.0 + lg_rng_uniform(&r);
    CHECK_OK(lg_hungarian_solve(c, N, M, a, &t));
    CHECK(t == 0.0);
    for (i = 0; i < N; i++)
        ok &= a[i] == perm[i];
    CHECK(ok);
}

CHECK_MAIN(T(test_hand), T(test_brute), T(test_textbook_identical), T(test_errors), T(test_planted))
