/*
 * backend_cpu_simd.h - internal to the CPU backend: the two inner loops of
 * the per-row top-k (engine/backend_cpu_sparse.c, topk_row) written with
 * AVX-512 intrinsics where the CPU has them, with a plain C version
 * otherwise. Both are comparisons and counts only (no arithmetic on the
 * values), so every version returns exactly the same result; the choice is
 * made per call (__builtin_cpu_supports), and LEDGER_CPU_SIMD=0 in the
 * environment (read once) forces the plain version.
 */
#ifndef LG_BACKEND_CPU_SIMD_H
#define LG_BACKEND_CPU_SIMD_H

#include <stdint.h>

/* The candidates of a row: fi[0..n) = the columns c < cols, ascending, with
 * v[c] >= t (ge != 0) or v[c] > t (ge == 0), and mask == NULL or
 * mask[c] != 0; returns n. fi [cols] (any of it may be written). */
long lg_cpu_scan_candidates(const float *v, const float *mask, int cols, float t, int ge, int32_t *fi);

/* The k-th largest (1 <= k <= n) of f[0..n) (no NaN, n <= 96): the first
 * f[i] in index order with #{f > f[i]} < k <= #{f >= f[i]};
 * *greater = #{f > f[i]}. */
float lg_cpu_kth_small(const float *f, int n, int k, long *greater);

/* The plain versions (the reference the tests compare against). */
long lg_cpu_scan_candidates_plain(const float *v, const float *mask, int cols, float t, int ge, int32_t *fi);
float lg_cpu_kth_small_plain(const float *f, int n, int k, long *greater);

/* 1 when the AVX-512 versions are used (the CPU has AVX-512F and
 * LEDGER_CPU_SIMD is not 0), else 0. */
int lg_cpu_simd_avx512(void);

#endif
