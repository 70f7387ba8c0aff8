/*
 * backend_cpu_simd.c - the per-row top-k's candidate scan and small
 * selection (backend_cpu_simd.h), in plain C and with AVX-512 intrinsics.
 *
 * Why intrinsics: the scan keeps the columns whose value passes a threshold,
 * in column order. In C that is a branch-free loop of one compare and one
 * store per column (about 2 cycles each over a 1024-column row); AVX-512's
 * compress does 16 columns in a few instructions. The small selection counts,
 * for each value, how many values are above it: 16 comparisons per
 * instruction and a popcount. Neither does arithmetic on the values: every
 * version returns the same columns and the same value, so the choice of
 * version cannot change a result (tests/unit/test_cpu_simd.c compares them).
 */
#include "engine/backend_cpu_simd.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(LG_NO_CLONES)
#define LG_SIMD_X86 1
#include <immintrin.h>
#define LG_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LG_SIMD_X86 0
#define LG_SIMD_CLONES
#endif

long lg_cpu_scan_candidates_plain(const float *v, const float *mask, int cols, float t, int ge, int32_t *fi)
{
    long n = 0;
    int c;
    /* branch-free: whether a column passes is a coin flip for t = 0 */
    if (mask && ge) {
        for (c = 0; c < cols; c++) {
            fi[n] = c;
            n += (v[c] >= t) & (mask[c] != 0.0f);
        }
    } else if (mask) {
        for (c = 0; c < cols; c++) {
            fi[n] = c;
            n += (v[c] > t) & (mask[c] != 0.0f);
        }
    } else if (ge) {
        for (c = 0; c < cols; c++) {
            fi[n] = c;
            n += v[c] >= t;
        }
    } else {
        for (c = 0; c < cols; c++) {
            fi[n] = c;
            n += v[c] > t;
        }
    }
    return n;
}

/* O(n^2) comparisons that vectorise (the compiler's clones) */
LG_SIMD_CLONES float lg_cpu_kth_small_plain(const float *f, int n, int k, long *greater)
{
    int i, j;
    for (i = 0; i < n; i++) {
        const float x = f[i];
        int gt = 0, ge = 0;
        for (j = 0; j < n; j++) {
            gt += f[j] > x;
            ge += f[j] >= x;
        }
        if (gt < k && k <= ge) {
            *greater = gt;
            return x;
        }
    }
    *greater = 0; /* not reached for 1 <= k <= n */
    return f[0];
}

#if LG_SIMD_X86

#define LG_AVX512 __attribute__((target("avx512f,popcnt")))

LG_AVX512 static long scan_avx512(const float *v, const float *mask, int cols, float t, int ge, int32_t *fi)
{
    const __m512 tv = _mm512_set1_ps(t), zero = _mm512_setzero_ps();
    const __m512i step = _mm512_set1_epi32(16);
    __m512i col = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    long n = 0;
    int c = 0;
    /* 16 columns at a time: the passing ones' indices packed to the front
     * and stored at fi + n (16 slots: n <= c, so n + 16 <= c + 16 <= cols) */
    for (; c + 16 <= cols; c += 16) {
        const __m512 x = _mm512_loadu_ps(v + c);
        __mmask16 k = ge ? _mm512_cmp_ps_mask(x, tv, _CMP_GE_OQ) : _mm512_cmp_ps_mask(x, tv, _CMP_GT_OQ);
        if (mask) /* != 0 is true for NaN, like C's != */
            k &= _mm512_cmp_ps_mask(_mm512_loadu_ps(mask + c), zero, _CMP_NEQ_UQ);
        _mm512_storeu_si512((void *)(fi + n), _mm512_maskz_compress_epi32(k, col));
        n += __builtin_popcount((unsigned)k);
        col = _mm512_add_epi32(col, step);
    }
    for (; c < cols; c++) {
        int pass = ge ? v[c] >= t : v[c] > t;
        if (pass && (!mask || mask[c] != 0.0f))
            fi[n++] = c;
    }
    return n;
}

/* n <= 96, branch-free: gt[i] = #{f > f[i]} for 16 values at a time (one
 * compare against each f[j] broadcast, a masked add), then the k-th largest
 * = the least f[i] with gt[i] < k (every value above it has fewer than k
 * values above it too); the first such f[i] in index order is returned, as
 * the plain version does, so even the sign of a zero agrees. */
LG_AVX512 static inline __attribute__((always_inline)) float kth_small_nv(const float *f, int n, int k,
                                                                         long *greater, const int nv)
{
    __m512 x[6];
    __m512i cnt[6];
    __mmask16 m[6], below;
    const __m512i one = _mm512_set1_epi32(1), kv = _mm512_set1_epi32(k);
    int32_t gt[96];
    float best = 0.0f;
    int i, j, have = 0;
    for (j = 0; j < nv; j++) {
        const int rem = n - 16 * j;
        m[j] = rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
        x[j] = _mm512_maskz_loadu_ps(m[j], f + 16 * j);
        cnt[j] = _mm512_setzero_si512();
    }
    for (i = 0; i < n; i++) {
        const __m512 fi = _mm512_set1_ps(f[i]);
        for (j = 0; j < nv; j++) /* lanes whose value is below f[i] */
            cnt[j] = _mm512_mask_add_epi32(cnt[j], _mm512_cmp_ps_mask(x[j], fi, _CMP_LT_OQ), cnt[j], one);
    }
    for (j = 0; j < nv; j++) {
        _mm512_storeu_si512((void *)(gt + 16 * j), cnt[j]);
        below = m[j] & _mm512_cmp_epi32_mask(cnt[j], kv, _MM_CMPINT_LT);
        if (below) {
            const float b = _mm512_mask_reduce_min_ps(below, x[j]);
            if (!have || b < best)
                best = b;
            have = 1;
        }
    }
    for (i = 0; i < n; i++)
        if (gt[i] < k && f[i] == best) {
            *greater = gt[i];
            return f[i];
        }
    *greater = 0; /* not reached for 1 <= k <= n */
    return f[0];
}

/* nv = the number of registers, a constant in each call, so that the
 * values and counts stay in registers */
LG_AVX512 static float kth_small_avx512(const float *f, int n, int k, long *greater)
{
    switch ((n + 15) / 16) {
    case 1:
        return kth_small_nv(f, n, k, greater, 1);
    case 2:
        return kth_small_nv(f, n, k, greater, 2);
    case 3:
        return kth_small_nv(f, n, k, greater, 3);
    case 4:
        return kth_small_nv(f, n, k, greater, 4);
    case 5:
        return kth_small_nv(f, n, k, greater, 5);
    default:
        return kth_small_nv(f, n, k, greater, 6);
    }
}

static int simd_on;
static pthread_once_t simd_once = PTHREAD_ONCE_INIT;

static void simd_init(void)
{
    const char *env = getenv("LEDGER_CPU_SIMD");
    __builtin_cpu_init();
    simd_on = __builtin_cpu_supports("avx512f") && !(env && strcmp(env, "0") == 0);
}

int lg_cpu_simd_avx512(void)
{
    pthread_once(&simd_once, simd_init);
    return simd_on;
}

#else

int lg_cpu_simd_avx512(void)
{
    return 0;
}

#endif

long lg_cpu_scan_candidates(const float *v, const float *mask, int cols, float t, int ge, int32_t *fi)
{
#if LG_SIMD_X86
    if (lg_cpu_simd_avx512())
        return scan_avx512(v, mask, cols, t, ge, fi);
#endif
    return lg_cpu_scan_candidates_plain(v, mask, cols, t, ge, fi);
}

float lg_cpu_kth_small(const float *f, int n, int k, long *greater)
{
#if LG_SIMD_X86
    if (n <= 96 && lg_cpu_simd_avx512())
        return kth_small_avx512(f, n, k, greater);
#endif
    return lg_cpu_kth_small_plain(f, n, k, greater);
}
