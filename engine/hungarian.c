/*
 * hungarian.c - rectangular linear assignment by shortest augmenting paths.
 *
 * Rows are added one at a time. For the new row we grow a Dijkstra tree over
 * the columns on reduced costs c(i,j) - u[i] - v[j] (which the potentials u,
 * v keep >= 0 for every edge), stop at the first free column, update the
 * potentials by the path lengths and flip the alternating path. After row i
 * the matching of rows 1..i is optimal, so after the last row it is optimal
 * for the whole (rectangular, n_rows <= n_cols) problem. This is the
 * augmentation step of Jonker-Volgenant without its (optional) heuristics
 * for the initial matching; it is O(n_rows^2 * n_cols) worst case.
 *
 * Indexing: internally rows and columns are 1-based and column 0 is a
 * virtual column holding the row being inserted (p[0]); this keeps the
 * path-flip loop free of special cases.
 *
 * Invariants: p[j] is the row matched to column j (0 = free); tree[] lists
 * the columns in the current tree (in the order they joined) and free_cols[]
 * the others, in increasing order; minv[j] is the tentative distance of a
 * free column and way[j] its predecessor column. Ties pick the lowest
 * column index (strict '<' over increasing j), so the result is a function
 * of the input only.
 *
 * Speed (m = 4096, against SciPy's linear_sum_assignment, bench/RESULTS.md):
 * each Dijkstra step makes ONE pass over the free columns only (the textbook
 * form makes two passes over all m + 1: a scan that skips used columns and a
 * potential update). The free-column update "minv -= delta" of a step is
 * applied at the start of the next step's pass, and the potential updates
 * touch only the tree's rows and columns, kept in two dense arrays (tu, tv)
 * for the row and written back when it is done (within a row, u and v of the
 * tree are read only when a member joins, before its first update). Each value sees the same floating-point
 * operations in the same order as in the textbook form, so the assignment
 * and the total are bit-identical to it (tests/unit/test_hungarian.c keeps
 * the textbook form as an oracle).
 *
 * Sign: maximisation multiplies each cost by -1 on read (exact in IEEE), so
 * no negated copy of the matrix is made.
 */
#include "engine/hungarian.h"

#include <math.h>
#include <stdint.h>

#include "base/base.h"

static int check_input(const double *cost, int n_rows, int n_cols)
{
    size_t i, cells;
    if (n_rows < 0 || n_cols < 0)
        return lg_error_set(LG_EINPUT, "hungarian: negative size %d x %d", n_rows, n_cols);
    if (n_rows > n_cols)
        return lg_error_set(LG_EINPUT,
                            "hungarian: %d rows > %d columns (transpose the cost matrix)",
                            n_rows, n_cols);
    cells = (size_t)n_rows * (size_t)n_cols;
    if (cells > LG_HUNGARIAN_MAX_CELLS)
        return lg_error_set(LG_EINPUT,
                            "hungarian: %d x %d cost matrix exceeds the cap of %zu cells "
                            "(%d x %d)",
                            n_rows, n_cols, (size_t)LG_HUNGARIAN_MAX_CELLS, LG_HUNGARIAN_MAX_N, LG_HUNGARIAN_MAX_N);
    if (cells > 0 && !cost)
        return lg_error_set(LG_EINPUT, "hungarian: NULL cost matrix");
    for (i = 0; i < cells; i++) {
        double c = cost[i];
        if (!(fabs(c) <= LG_HUNGARIAN_MAX_ABS)) /* also catches NaN */
            return lg_error_set(LG_EINPUT,
                                "hungarian: cost[%zu][%zu] = %g is not finite or exceeds "
                                "|c| <= %g",
                                i / (size_t)n_cols, i % (size_t)n_cols, c,
                                LG_HUNGARIAN_MAX_ABS);
    }
    return 0;
}

static int solve(const double *cost, int n, int m, double sign, int *assign, double *out_total)
{
    double *u = NULL, *v = NULL, *minv = NULL; /* [n+1], [m+1], [m+1] */
    int *p = NULL, *way = NULL;                /* [m+1], [m+1] */
    int *free_cols = NULL, *tree = NULL;       /* [m], [m+1] */
    double *tu = NULL, *tv = NULL;             /* [m+1], [m+1]: u, v of the tree's rows and columns */
    int i, j, err;
    double total = 0.0;

    if ((err = check_input(cost, n, m)) < 0)
        return err;
    if (n == 0) {
        if (out_total)
            *out_total = 0.0;
        return 0;
    }
    u = lg_calloc((size_t)n + 1, sizeof(double));
    v = lg_calloc((size_t)m + 1, sizeof(double));
    minv = lg_calloc((size_t)m + 1, sizeof(double));
    p = lg_calloc((size_t)m + 1, sizeof(int));
    way = lg_calloc((size_t)m + 1, sizeof(int));
    free_cols = lg_calloc((size_t)m, sizeof(int));
    tree = lg_calloc((size_t)m + 1, sizeof(int));
    tu = lg_calloc((size_t)m + 1, sizeof(double));
    tv = lg_calloc((size_t)m + 1, sizeof(double));
    if (!u || !v || !minv || !p || !way || !free_cols || !tree || !tu || !tv) {
        err = LG_ENOMEM;
        goto out;
    }

    for (i = 1; i <= n; i++) {
        int j0 = 0, nfree = m, ntree = 0, t;
        double prev_delta = 0.0; /* INFINITY - 0 and x - 0 are exact: the first step subtracts nothing */
        p[0] = i;
        for (j = 1; j <= m; j++) {
            minv[j] = INFINITY;
            free_cols[j - 1] = j;
        }
        do {
            int i0 = p[j0], j1 = 0, k, kept = 0;
            double delta = INFINITY, ui0 = u[i0];
            const double *row = cost + (size_t)(i0 - 1) * (size_t)m; /* [m] */
            tree[ntree] = j0;
            tu[ntree] = ui0; /* not yet moved in this row: it joins now */
            tv[ntree++] = v[j0];
            /* One pass over the columns not yet in the tree, in increasing
             * order (so the strict '<' keeps the lowest index on ties): drop
             * j0, apply the previous step's "minv -= delta", relax, pick. */
            for (k = 0; k < nfree; k++) {
                double mv, cur;
                j = free_cols[k];
                if (j == j0)
                    continue;
                free_cols[kept++] = j;
                mv = minv[j] - prev_delta;
                cur = sign * row[j - 1] - ui0 - v[j];
                if (cur < mv) {
                    mv = cur;
                    way[j] = j0;
                }
                minv[j] = mv;
                if (mv < delta) {
                    delta = mv;
                    j1 = j;
                }
            }
            nfree = kept;
            /* n <= m guarantees a free, unused column exists, so j1 > 0. */
            if (j1 == 0) {
                err = lg_error_set(LG_EINTERNAL, "hungarian: no augmenting column at row %d", i);
                goto out;
            }
            for (t = 0; t < ntree; t++) { /* the potentials of the tree's rows and columns */
                tu[t] += delta;
                tv[t] -= delta;
            }
            prev_delta = delta;
            j0 = j1;
        } while (p[j0] != 0);
        for (t = 0; t < ntree; t++) { /* only now: nothing read them in between */
            u[p[tree[t]]] = tu[t];
            v[tree[t]] = tv[t];
        }
        do { /* flip the alternating path back to the virtual column 0 */
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0 != 0);
    }

    /* Read the matching off the columns, then sum the original costs in row
     * order so the total does not carry the potentials' rounding. */
    {
        int *col_of_row = way; /* reuse [m+1] >= n+1 */
        for (j = 1; j <= m; j++)
            if (p[j] != 0)
                col_of_row[p[j]] = j - 1;
        for (i = 1; i <= n; i++) {
            total += cost[(size_t)(i - 1) * (size_t)m + (size_t)col_of_row[i]];
            if (assign)
                assign[i - 1] = col_of_row[i];
        }
    }
    if (out_total)
        *out_total = total;
    err = 0;
out:
    lg_free(u);
    lg_free(v);
    lg_free(minv);
    lg_free(p);
    lg_free(way);
    lg_free(free_cols);
    lg_free(tree);
    lg_free(tu);
    lg_free(tv);
    return err;
}

int lg_hungarian_solve(const double *cost, int n_rows, int n_cols, int *assign, double *out_total)
{
    return solve(cost, n_rows, n_cols, 1.0, assign, out_total);
}

int lg_hungarian_solve_max(const double *cost, int n_rows, int n_cols, int *assign,
                           double *out_total)
{
    return solve(cost, n_rows, n_cols, -1.0, assign, out_total);
}
