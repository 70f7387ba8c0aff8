/*
 * hungarian.h - rectangular linear assignment (the "Hungarian" problem):
 * given a cost matrix C [n_rows, n_cols] with n_rows <= n_cols, pick one
 * distinct column per row so that the total cost is minimal (or maximal).
 *
 * Used by the cross-seed metrics (engine/consistency.h) for the
 * Hungarian-matched MCC, where the costs are cosines and we maximise.
 *
 * Solver: shortest augmenting paths with row/column potentials (the
 * augmentation phase of Jonker & Volgenant 1987, in the Dijkstra form of
 * Tomizawa/Edmonds-Karp), O(n_rows^2 * n_cols) time, O(n_cols) extra memory.
 * The result is deterministic: ties are broken by the lowest column index.
 *
 * Limits (checked, LG_EINPUT with a message naming the limit):
 *   - n_rows <= n_cols (transpose the problem otherwise);
 *   - n_rows * n_cols <= LG_HUNGARIAN_MAX_CELLS (8192 x 8192 = 2^26 cells:
 *     the caller's matrix is then 512 MiB of doubles; the solve itself can
 *     take minutes at that size, roughly n^3 / 1e9 seconds at worst);
 *   - every cost finite with |c| <= LG_HUNGARIAN_MAX_ABS (1e100), so that the
 *     potentials, which are sums of at most 2n cost differences, cannot
 *     overflow; NaN and +-inf are refused, naming the row and column.
 */
#ifndef LG_HUNGARIAN_H
#define LG_HUNGARIAN_H

#include <stddef.h>

/* Largest square problem the solver takes (the study option hungarian_max is
 * capped at it), and the default of hungarian_max (studies, ledger import):
 * the matched MCC is computed only for d_sae <= hungarian_max. */
#define LG_HUNGARIAN_MAX_N 8192
#define LG_HUNGARIAN_MAX_DEFAULT 4096
#define LG_HUNGARIAN_MAX_CELLS ((size_t)LG_HUNGARIAN_MAX_N * LG_HUNGARIAN_MAX_N)
#define LG_HUNGARIAN_MAX_ABS 1e100

/* Minimise sum_i cost[i * n_cols + assign[i]].
 * cost:   [n_rows, n_cols] row-major, read only.
 * assign: [n_rows] out, caller-allocated: the column given to each row
 *         (all distinct). May be NULL when only the total is wanted.
 * out_total: the optimal total, summed over rows in row order from the
 *         original costs (not from the potentials). May be NULL.
 * n_rows == 0 is valid (total 0). Returns 0 or LG_EINPUT / LG_ENOMEM. */
int lg_hungarian_solve(const double *cost, int n_rows, int n_cols, int *assign, double *out_total);

/* Same, maximising the total (the costs are negated internally, exactly). */
int lg_hungarian_solve_max(const double *cost, int n_rows, int n_cols, int *assign,
                           double *out_total);

#endif
