/*
 * rng.c - Philox4x32-10. Constants from Salmon, Moraes, Dror & Shaw, "Parallel
 * random numbers: as easy as 1, 2, 3" (SC'11). The known-answer vectors of
 * the Random123 distribution are checked in tests/unit/test_rng.c.
 *
 * Normals use Box-Muller (cosine branch only), so a sequence of normals is a
 * function of (seed, stream, start block).
 */
#include "base/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void lg_philox4x32(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)ctr_lo, c1 = (uint32_t)(ctr_lo >> 32);
    uint32_t c2 = (uint32_t)ctr_hi, c3 = (uint32_t)(ctr_hi >> 32);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    int round;
    for (round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void lg_rng_init(lg_rng *r, uint64_t seed, uint64_t stream)
{
    r->seed = seed;
    r->stream = stream;
    r->block = 0;
    r->pos = 4;
}

void lg_rng_seek(lg_rng *r, uint64_t block)
{
    r->block = block;
    r->pos = 4;
}

uint32_t lg_rng_u32(lg_rng *r)
{
    if (r->pos >= 4) {
        lg_philox4x32(r->seed, r->stream, r->block++, r->buf);
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

uint64_t lg_rng_u64(lg_rng *r)
{
    uint64_t hi = lg_rng_u32(r);
    return (hi << 32) | lg_rng_u32(r);
}

double lg_rng_uniform(lg_rng *r)
{
    return (double)(lg_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t lg_rng_below(lg_rng *r, uint64_t n)
{
    uint64_t limit, x;
    if (n <= 1)
        return 0;
    limit = UINT64_MAX - UINT64_MAX % n;
    do
        x = lg_rng_u64(r);
    while (x >= limit);
    return x % n;
}

double lg_rng_normal(lg_rng *r)
{
    /* One normal per two uniforms (the cosine branch only): simple, and a
     * normal's value never depends on whether an odd or even count was drawn. */
    double u1 = lg_rng_uniform(r), u2 = lg_rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void lg_rng_shuffle_i64(lg_rng *r, int64_t *idx, int64_t n)
{
    int64_t i;
    for (i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)lg_rng_below(r, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
