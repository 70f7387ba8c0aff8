/*
 * test_cpu_simd.c - the CPU backend's top-k inner loops
 * (engine/backend_cpu_simd.h): the dispatched versions (AVX-512 where the
 * CPU has it) against the plain C ones and against a brute-force reference,
 * on rows with many ties, zeros of both signs, masks and every length
 * around the 16-lane boundaries. Exact equality everywhere: these are
 * comparisons and counts, and a different result would change training.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "engine/backend_cpu_simd.h"
#include "tests/unit/check.h"

static lg_rng rng;

/* values drawn from a few levels (ties), with both zeros and negatives */
static void fill_row(float *v, int n, int levels)
{
    int i;
    for (i = 0; i < n; i++) {
        uint32_t u = lg_rng_u32(&rng);
        if (levels > 0)
            v[i] = (float)((int)(u % (uint32_t)levels) - levels / 3) * 0.25f;
        else
            v[i] = (float)lg_rng_normal(&rng);
        if (u % 97 == 0)
            v[i] = -0.0f;
    }
}

static void test_scan(void)
{
    static const int lens[] = {1, 7, 15, 16, 17, 31, 32, 33, 100, 1024, 1031};
    float v[1100], mask[1100];
    int32_t a[1100], b[1100], ref[1100];
    size_t li;
    int rep, bad = 0;
    lg_rng_init(&rng, 7, 0);
    for (li = 0; li < sizeof lens / sizeof lens[0]; li++)
        for (rep = 0; rep < 40; rep++) {
            const int n = lens[li], ge = rep & 1, use_mask = (rep >> 1) & 1;
            const float t = rep % 3 == 0 ? 0.0f : (float)(rep % 5) * 0.25f;
            long na, nb, nr = 0;
            int c;
            fill_row(v, n, rep % 4 == 0 ? 0 : 9);
            fill_row(mask, n, 3);
            for (c = 0; c < n; c++)
                if ((ge ? v[c] >= t : v[c] > t) && (!use_mask || mask[c] != 0.0f))
                    ref[nr++] = c;
            na = lg_cpu_scan_candidates(v, use_mask ? mask : NULL, n, t, ge, a);
            nb = lg_cpu_scan_candidates_plain(v, use_mask ? mask : NULL, n, t, ge, b);
            if (na != nr || nb != nr || memcmp(a, ref, (size_t)nr * 4) || memcmp(b, ref, (size_t)nr * 4))
                bad++;
        }
    CHECK_MSG(bad == 0, "%d scans differ from the reference", bad);
}

static void test_kth_small(void)
{
    float f[96];
    int n, k, rep, bad = 0;
    lg_rng_init(&rng, 8, 0);
    for (n = 1; n <= 96; n++)
        for (rep = 0; rep < 6; rep++) {
            fill_row(f, n, rep == 0 ? 0 : (rep == 1 ? 2 : 5 + rep));
            for (k = 1; k <= n; k++) {
                long ga = -1, gb = -1, gr = 0;
                float xa = lg_cpu_kth_small(f, n, k, &ga), xb = lg_cpu_kth_small_plain(f, n, k, &gb), xr = 0;
                int i, j, found = 0;
                for (i = 0; i < n && !found; i++) { /* the first f[i] with gt < k <= ge */
                    long gt = 0, ge = 0;
                    for (j = 0; j < n; j++) {
                        gt += f[j] > f[i];
                        ge += f[j] >= f[i];
                    }
                    if (gt < k && k <= ge) {
                        xr = f[i];
                        gr = gt;
                        found = 1;
                    }
                }
                if (!found || memcmp(&xa, &xr, 4) || memcmp(&xb, &xr, 4) || ga != gr || gb != gr)
                    bad++;
            }
        }
    CHECK_MSG(bad == 0, "%d selections differ from the reference", bad);
}

/* a row where the k-th largest is a zero and both signs of zero occur: the
 * sign returned is the first one in index order */
static void test_kth_small_signed_zero(void)
{
    float f[20];
    long g = 0;
    float x;
    int i;
    for (i = 0; i < 20; i++)
        f[i] = i < 5 ? 1.0f : (i % 2 ? 0.0f : -0.0f);
    x = lg_cpu_kth_small(f, 20, 8, &g);
    CHECK(x == 0.0f && !signbit(x) && g == 5); /* f[5] = +0 comes first */
    f[5] = -0.0f;
    f[6] = 0.0f;
    x = lg_cpu_kth_small(f, 20, 8, &g);
    CHECK(x == 0.0f && signbit(x) && g == 5);
}

static void test_dispatch_reported(void)
{
    int on = lg_cpu_simd_avx512();
    CHECK(on == 0 || on == 1);
    fprintf(stderr, "  AVX-512 versions: %s\n", on ? "on" : "off (the plain ones were compared with themselves)");
}

CHECK_MAIN(T(test_scan), T(test_kth_small), T(test_kth_small_signed_zero),
           T(test_dispatch_reported))
