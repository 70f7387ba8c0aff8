/*
 * rng.h - deterministic counter-based RNG: Philox4x32-10 (Salmon et al. 2011).
 *
 * A stream is (seed, stream id); the n-th block of 4 x uint32 is
 * philox(key = seed, counter = (stream, n)), so any draw can be recomputed
 * anywhere (CPU or GPU) from its coordinates alone. All initial weights and
 * batch orders of the engine come from here, which is what makes a seed give
 * the same SAE on every backend.
 *
 * Stream ids used by the engine (keep them distinct): see LG_STREAM_*.
 */
#ifndef LG_RNG_H
#define LG_RNG_H

#include <stdint.h>

enum {
    LG_STREAM_INIT = 1,       /* SAE initial weights */
    LG_STREAM_BATCH = 2,      /* batch order */
    LG_STREAM_DATA = 3,       /* synthetic data samples */
    LG_STREAM_DICT = 4,       /* synthetic ground-truth dictionary */
    LG_STREAM_SPLIT = 5,      /* train / held-out split */
    LG_STREAM_STATS = 6       /* bootstrap / permutation resampling */
};

typedef struct {
    uint64_t seed;
    uint64_t stream;
    uint64_t block;    /* next counter value */
    uint32_t buf[4];
    int pos;           /* 4 = buffer empty */
} lg_rng;

/* Stateless block function: out = Philox4x32-10(key, counter). */
void lg_philox4x32(uint64_t key, uint64_t ctr_hi, uint64_t ctr_lo, uint32_t out[4]);

void lg_rng_init(lg_rng *r, uint64_t seed, uint64_t stream);
/* Position the stream at block `block` (each block = 4 draws of 32 bits). */
void lg_rng_seek(lg_rng *r, uint64_t block);
uint32_t lg_rng_u32(lg_rng *r);
uint64_t lg_rng_u64(lg_rng *r);
/* Uniform in [0, 1) with 53 bits. */
double lg_rng_uniform(lg_rng *r);
/* Uniform integer in [0, n), unbiased (rejection). n >= 1. */
uint64_t lg_rng_below(lg_rng *r, uint64_t n);
/* Standard normal: Box-Muller on two lg_rng_uniform draws (four 32-bit
 * words), cosine branch only; the sine value is not kept. */
double lg_rng_normal(lg_rng *r);
/* In-place Fisher-Yates shuffle of idx[0..n). */
void lg_rng_shuffle_i64(lg_rng *r, int64_t *idx, int64_t n);

#endif
