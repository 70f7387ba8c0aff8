// cuda_select.cuh - the block-level steps of the radix top-k selections,
// shared by the dense selections (cuda_topk.cu) and the CSR ones
// (cuda_sparse.cu), so that both rank keys and ties the same way: a block
// sum, the rank of a flag among the block's set flags in thread order, the
// digit of a 256-bin histogram that holds the rem-th largest key, and the
// key of a row entry under an optional column mask. Every function that
// synchronises must be called by every thread of the block (blockDim.x a
// multiple of 32, at most 1024; s_warp holds blockDim.x / 32 entries).
#ifndef LG_CUDA_SELECT_CUH
#define LG_CUDA_SELECT_CUH

#include <stdint.h>

#include "kernels/cuda_common.cuh"

// Sum of one unsigned per thread over the block (exact); the result in every thread.
static __device__ __forceinline__ unsigned lg_block_sum_u(unsigned v, unsigned *s_warp)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, off);
    if ((threadIdx.x & 31) == 0)
        s_warp[threadIdx.x >> 5] = v;
    __syncthreads();
    unsigned t = 0;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++)
        t += s_warp[w];
    __syncthreads();
    return t;
}

// The rank, in thread order, of this thread's `flag` among the block's set
// flags (how many lower threads have theirs set); *total = how many are set
// in the block. Ends with a barrier, so s_warp may be reused at once.
static __device__ __forceinline__ unsigned lg_block_rank(bool flag, unsigned *s_warp, unsigned *total)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const unsigned ballot = __ballot_sync(0xffffffffu, flag);
    unsigned before = 0, sum = 0;
    if (lane == 0)
        s_warp[warp] = __popc(ballot);
    __syncthreads();
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) {
        if (w < warp)
            before += s_warp[w];
        sum += s_warp[w];
    }
    __syncthreads();
    *total = sum;
    return before + __popc(ballot & ((1u << lane) - 1u));
}

// One thread: the digit holding the rem-th largest key of the histogram,
// scanning from the largest digit; *rem becomes the rank inside that digit.
static __device__ void lg_pick_digit(const unsigned *hist, unsigned long long *rem, unsigned *digit)
{
    unsigned long long cum = 0;
    int b;
    for (b = 255; b > 0; b--) {
        if (cum + hist[b] >= *rem)
            break;
        cum += hist[b];
    }
    *digit = (unsigned)b;
    *rem -= cum;
}

// The selection key of entry c of a row (lg_topk_key), 0 where mask[c] == 0.
static __device__ __forceinline__ uint32_t lg_row_key(const float *v, const float *mask, int c)
{
    const uint32_t key = lg_topk_key(v[c]);
    return mask && mask[c] == 0.0f ? 0u : key;
}

// Block: the four 8-bit digit passes of a row's radix select (most
// significant first) over the keys lg_row_key(v, mask, c), c < cols, that are
// non-zero. On entry *rem is kk >= 1 (how many to keep); on return the result
// is T, the kk-th largest key, and *rem how many keys == T are kept (the
// lowest columns). hist [256], s_digit and s_rem are the block's shared
// memory. Integer atomics only: the result does not depend on their order.
static __device__ unsigned lg_row_radix(const float *v, const float *mask, int cols, unsigned long long *rem,
                                        unsigned *hist, unsigned *s_digit, unsigned long long *s_rem)
{
    const int tid = threadIdx.x;
    unsigned prefix = 0, bits = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = tid; i < 256; i += blockDim.x)
            hist[i] = 0;
        __syncthreads();
        for (int c = tid; c < cols; c += blockDim.x) {
            uint32_t key = lg_row_key(v, mask, c);
            if (key && (key & bits) == prefix)
                atomicAdd(&hist[(key >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (tid == 0) {
            unsigned long long r = *rem;
            lg_pick_digit(hist, &r, s_digit);
            *s_rem = r;
        }
        __syncthreads();
        prefix |= *s_digit << shift;
        bits |= 0xffu << shift;
        *rem = *s_rem;
        __syncthreads();
    }
    return prefix;
}

// The device state of a batch top-k's radix select over a flat array (both
// topk_batch and topk_batch_csr): after lg_cuda_bt_radix, T = prefix is the
// key of the kk-th largest candidate and rem the number of entries equal to T
// to keep (the lowest flat indices). total is topk_batch_csr's own: the
// entries it wrote.
typedef struct {
    unsigned long long cnt;   // candidates (positive entries)
    unsigned long long kk;    // min(keep, cnt): entries to keep
    unsigned long long rem;   // rank still to resolve / ties to keep at the end
    unsigned long long total; // entries written (topk_batch_csr: = ptr[rows])
    unsigned prefix, bits;    // digits of T found so far, and their mask
    unsigned hist[256];
} lg_bt_state;

// cuda_topk.cu: zeroes *st (device memory) and runs the count and the four
// digit passes over pre [n] on the context's stream (no synchronisation);
// LG_EINTERNAL naming op on a CUDA error.
int lg_cuda_bt_radix(lg_cuda_ctx *ctx, const char *op, const float *pre, size_t n, unsigned long long keep,
                     lg_bt_state *st);

#endif
