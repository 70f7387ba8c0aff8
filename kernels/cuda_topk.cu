// cuda_topk.cu - the top-k selections of the CUDA backend: per-row top-k
// (TopK, AuxK over dead latents) and batch top-k (BatchTopK, Matryoshka).
//
// Both are radix selects over sortable 32-bit keys (cuda_common.cuh:
// lg_topk_key): a candidate's key is the bit pattern of its positive value,
// every other entry has key 0 and is never selected. With kk = min(k, number
// of candidates), four 8-bit passes (most significant digit first) find T,
// the kk-th largest key, and `rem`, how many entries equal to T belong to the
// top kk; the result keeps every key > T and the `rem` entries equal to T with
// the LOWEST index (flat index for the batch version), which is exactly the
// order (value desc, index asc) of backend.h. Histograms use integer atomics
// only (exact, so the result does not depend on their order); the ties are
// ranked with warp ballots in index order, so the selection is unique and
// identical to the CPU oracle's.
//
// Per-row: one block of TOPK_THREADS per row reads the row five times (count,
// four digit passes) plus once to write; rows of 64k floats stay in L2.
// Batch: the same passes over the whole flat array, with the selection state
// (prefix, remaining rank) kept on the device between launches so the host
// synchronises once, at the end, to read the smallest kept value.
#include <stdint.h>
#include <string.h>

#include "kernels/cuda_common.cuh"
#include "kernels/cuda_select.cuh"

#define TOPK_THREADS 256
#define TOPK_WARPS (TOPK_THREADS / 32)
#define BT_TILE (TOPK_THREADS * 16) // elements per tile of the batch tie ranking
#define BT_GRID 2048                // blocks of the batch count/histogram passes
#define SCAN_THREADS 1024

// ---- per-row top-k ---------------------------------------------------------------

// Block r handles row r of pre/acts [rows, cols]. k >= 1.
__global__ void __launch_bounds__(TOPK_THREADS)
    k_topk_rows(const float *pre, const float *mask, float *acts, int cols, int k)
{
    __shared__ unsigned hist[256];
    __shared__ unsigned s_warp[TOPK_WARPS];
    __shared__ unsigned s_digit;
    __shared__ unsigned long long s_rem;
    const float *v = pre + (size_t)blockIdx.x * cols; // [cols]
    float *a = acts + (size_t)blockIdx.x * cols;      // [cols]
    const int tid = threadIdx.x;
    unsigned cnt = 0, prefix, taken = 0;
    unsigned long long rem;

    for (int c = tid; c < cols; c += TOPK_THREADS)
        cnt += lg_row_key(v, mask, c) != 0;
    cnt = lg_block_sum_u(cnt, s_warp);
    rem = cnt < (unsigned)k ? cnt : (unsigned)k;
    if (rem == 0) { // nothing positive: an all-zero row (uniform branch)
        for (int c = tid; c < cols; c += TOPK_THREADS)
            a[c] = 0.0f;
        return;
    }
    prefix = lg_row_radix(v, mask, cols, &rem, hist, &s_digit, &s_rem);
    // keep key > T, and the first `rem` keys == T in column order
    for (int base = 0; base < cols; base += TOPK_THREADS) {
        int c = base + tid;
        uint32_t key = c < cols ? lg_row_key(v, mask, c) : 0u;
        bool eq = key == prefix;
        unsigned total, before = taken + lg_block_rank(eq, s_warp, &total);
        if (c < cols)
            a[c] = key > prefix || (eq && before < rem) ? v[c] : 0.0f;
        taken += total;
        __syncthreads();
    }
}

int lg_cuda_topk_rows(const lg_backend *be, const float *pre, const float *col_mask, float *acts,
                      int rows, int cols, int k)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    if (rows <= 0 || cols <= 0)
        return 0;
    if (k <= 0) {
        LG_CU("topk_rows", cudaMemsetAsync(acts, 0, (size_t)rows * cols * sizeof(float),
                                           ctx->stream));
        return 0;
    }
    k_topk_rows<<<rows, TOPK_THREADS, 0, ctx->stream>>>(pre, col_mask, acts, cols, k);
    LG_CU("topk_rows", cudaGetLastError());
    return 0;
}

// ---- batch top-k -------------------------------------------------------------------

__global__ void __launch_bounds__(TOPK_THREADS) k_bt_count(const float *pre, size_t n, lg_bt_state *st)
{
    __shared__ unsigned s_warp[TOPK_WARPS];
    unsigned cnt = 0;
    for (size_t i = blockIdx.x * (size_t)TOPK_THREADS + threadIdx.x; i < n;
         i += (size_t)gridDim.x * TOPK_THREADS)
        cnt += lg_topk_key(pre[i]) != 0;
    cnt = lg_block_sum_u(cnt, s_warp);
    if (threadIdx.x == 0 && cnt)
        atomicAdd(&st->cnt, (unsigned long long)cnt); // integer: exact in any order
}

__global__ void k_bt_setk(lg_bt_state *st, unsigned long long keep)
{
    st->kk = st->cnt < keep ? st->cnt : keep;
    st->rem = st->kk;
    st->prefix = st->bits = 0;
}

__global__ void __launch_bounds__(TOPK_THREADS)
    k_bt_hist(const float *pre, size_t n, int shift, lg_bt_state *st)
{
    __shared__ unsigned hist[256];
    const unsigned prefix = st->prefix, bits = st->bits;
    if (st->kk == 0)
        return;
    for (int i = threadIdx.x; i < 256; i += TOPK_THREADS)
        hist[i] = 0;
    __syncthreads();
    for (size_t i = blockIdx.x * (size_t)TOPK_THREADS + threadIdx.x; i < n;
         i += (size_t)gridDim.x * TOPK_THREADS) {
        uint32_t key = lg_topk_key(pre[i]);
        if (key && (key & bits) == prefix)
            atomicAdd(&hist[(key >> shift) & 255u], 1u);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < 256; i += TOPK_THREADS)
        if (hist[i])
            atomicAdd(&st->hist[i], hist[i]);
}

__global__ void k_bt_pick(lg_bt_state *st, int shift)
{
    unsigned digit;
    if (st->kk == 0)
        return;
    lg_pick_digit(st->hist, &st->rem, &digit);
    st->prefix |= digit << shift;
    st->bits |= 0xffu << shift;
    for (int i = 0; i < 256; i++)
        st->hist[i] = 0;
}

// tilecnt[t] = entries equal to T in tile t.
__global__ void __launch_bounds__(TOPK_THREADS)
    k_bt_tilecount(const float *pre, size_t n, const lg_bt_state *st, unsigned *tilecnt)
{
    __shared__ unsigned s_warp[TOPK_WARPS];
    const unsigned T = st->prefix;
    size_t start = (size_t)blockIdx.x * BT_TILE, end = start + BT_TILE < n ? start + BT_TILE : n;
    unsigned cnt = 0;
    if (st->kk != 0)
        for (size_t i = start + threadIdx.x; i < end; i += TOPK_THREADS)
            cnt += lg_topk_key(pre[i]) == T;
    cnt = lg_block_sum_u(cnt, s_warp);
    if (threadIdx.x == 0)
        tilecnt[blockIdx.x] = cnt;
}

// In place: tilecnt[t] -> sum of tilecnt[0..t) (one block; integer sums).
__global__ void __launch_bounds__(SCAN_THREADS) k_bt_scan(unsigned *tilecnt, size_t ntiles)
{
    __shared__ unsigned long long s[SCAN_THREADS];
    size_t seg = (ntiles + SCAN_THREADS - 1) / SCAN_THREADS;
    size_t lo = threadIdx.x * seg, hi = lo + seg < ntiles ? lo + seg : ntiles;
    unsigned long long local = 0, run;
    for (size_t t = lo; t < hi; t++)
        local += tilecnt[t];
    s[threadIdx.x] = local;
    __syncthreads();
    for (int off = 1; off < SCAN_THREADS; off <<= 1) { // inclusive Hillis-Steele scan
        unsigned long long add = threadIdx.x >= off ? s[threadIdx.x - off] : 0;
        __syncthreads();
        s[threadIdx.x] += add;
        __syncthreads();
    }
    run = s[threadIdx.x] - local;
    for (size_t t = lo; t < hi; t++) {
        unsigned c = tilecnt[t];
        tilecnt[t] = (unsigned)(run < 0xffffffffull ? run : 0xffffffffull);
        run += c;
    }
}

__global__ void __launch_bounds__(TOPK_THREADS)
    k_bt_write(const float *pre, float *acts, size_t n, const lg_bt_state *st, const unsigned *tileoff)
{
    __shared__ unsigned s_warp[TOPK_WARPS];
    const unsigned T = st->prefix;
    const unsigned long long rem = st->rem;
    const bool any = st->kk != 0;
    const int tid = threadIdx.x;
    size_t start = (size_t)blockIdx.x * BT_TILE;
    unsigned long long taken = tileoff[blockIdx.x];
    for (size_t base = start; base < start + BT_TILE && base < n; base += TOPK_THREADS) {
        size_t i = base + tid;
        float x = i < n ? pre[i] : 0.0f;
        uint32_t key = lg_topk_key(x);
        bool eq = any && key == T;
        unsigned total;
        unsigned long long before = taken + lg_block_rank(eq, s_warp, &total);
        if (i < n)
            acts[i] = any && (key > T || (eq && before < rem)) ? x : 0.0f;
        taken += total;
        __syncthreads();
    }
}

int lg_cuda_bt_radix(lg_cuda_ctx *ctx, const char *op, const float *pre, size_t n, unsigned long long keep,
                     lg_bt_state *st)
{
    unsigned grid = (unsigned)((n + TOPK_THREADS - 1) / TOPK_THREADS);
    if (grid > BT_GRID)
        grid = BT_GRID;
    LG_CU(op, cudaMemsetAsync(st, 0, sizeof(lg_bt_state), ctx->stream));
    k_bt_count<<<grid, TOPK_THREADS, 0, ctx->stream>>>(pre, n, st);
    LG_CU(op, cudaGetLastError());
    k_bt_setk<<<1, 1, 0, ctx->stream>>>(st, keep);
    LG_CU(op, cudaGetLastError());
    for (int shift = 24; shift >= 0; shift -= 8) {
        k_bt_hist<<<grid, TOPK_THREADS, 0, ctx->stream>>>(pre, n, shift, st);
        LG_CU(op, cudaGetLastError());
        k_bt_pick<<<1, 1, 0, ctx->stream>>>(st, shift);
        LG_CU(op, cudaGetLastError());
    }
    return 0;
}

int lg_cuda_topk_batch(const lg_backend *be, const float *pre, float *acts, size_t n, size_t keep,
                       float *min_kept)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    size_t ntiles = (n + BT_TILE - 1) / BT_TILE, off = (sizeof(lg_bt_state) + 255) & ~(size_t)255;
    lg_bt_state host;
    lg_bt_state *st;
    unsigned *tiles;
    void *p;
    int err;

    if (min_kept)
        *min_kept = -1.0f;
    if (n > UINT32_MAX) // the CPU oracle's limit too (32-bit indices)
        return lg_error_set(LG_EINPUT, "cuda backend: topk_batch: %zu entries exceed 2^32", n);
    if (!n)
        return 0;
    if (!keep) {
        LG_CU("topk_batch", cudaMemsetAsync(acts, 0, n * sizeof(float), ctx->stream));
        return 0;
    }
    if ((err = lg_cuda_scratch(ctx, off + ntiles * sizeof(unsigned), &p)) < 0)
        return err;
    st = (lg_bt_state *)p;
    tiles = (unsigned *)((char *)p + off);

    if ((err = lg_cuda_bt_radix(ctx, "topk_batch", pre, n, (unsigned long long)keep, st)) < 0)
        return err;
    k_bt_tilecount<<<(unsigned)ntiles, TOPK_THREADS, 0, ctx->stream>>>(pre, n, st, tiles);
    LG_CU("topk_batch", cudaGetLastError());
    k_bt_scan<<<1, SCAN_THREADS, 0, ctx->stream>>>(tiles, ntiles);
    LG_CU("topk_batch", cudaGetLastError());
    k_bt_write<<<(unsigned)ntiles, TOPK_THREADS, 0, ctx->stream>>>(pre, acts, n, st, tiles);
    LG_CU("topk_batch", cudaGetLastError());
    LG_CU("topk_batch", cudaMemcpyAsync(&host, st, sizeof(host), cudaMemcpyDeviceToHost,
                                        ctx->stream));
    LG_CU("topk_batch", cudaStreamSynchronize(ctx->stream));
    if (min_kept && host.kk) {
        float t;
        memcpy(&t, &host.prefix, sizeof(t)); // T is the bit pattern of the smallest kept value
        *min_kept = t;
    }
    return 0;
}
