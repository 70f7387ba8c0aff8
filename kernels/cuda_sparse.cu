// cuda_sparse.cu - the sparse training ops of the CUDA backend (engine/backend.h,
// "sparse activations"): the top-k selections written as CSR, its transpose
// (CSC), the decoder as a gather-sum of the active rows, the gradients at the
// active entries and the scatters over the active latents, and the sparse
// bookkeeping. The trainer (engine/train_step.c) uses them for TopK,
// BatchTopK and Matryoshka when the table has them: lg_cuda_sparse_install
// puts them in unless LEDGER_CUDA_SPARSE=0.
//
// Determinism: no float atomics. Every output element is computed by ONE
// thread (or one warp with a fixed shuffle tree) in an order that depends
// only on the data:
//  - gather_rows: out[r,c] += val[e] W[idx[e],c], entries of row r in CSR
//    order, each product and sum rounded (__fmul_rn/__fadd_rn: no FMA
//    contraction), the CPU backend's order and roundings;
//  - scatter_rows: acc = sum over the column's entries in row order (same
//    roundings), then beta*out + alpha*acc, the CPU's formula;
//  - row_dots: lane l of a warp sums the products at c = l, l+32, ... in
//    order, then a butterfly shuffle tree (every lane ends with the same
//    bits); the CPU uses eight lanes, so the two differ in the last bits;
//  - val_sum: double in row order (the CPU's sum);
//  - the selections and the transpose are exact: integer counts (atomics
//    only in histograms, whose result does not depend on their order),
//    ties ranked with warp ballots in index order, and CUB's radix sort,
//    which is stable, for the transpose.
// So two runs give the same bits. Selection rule (both top-k ops): the one of
// cuda_topk.cu and of the CPU oracle, (value desc, index asc) among the
// positive candidates, found by a radix select over the 32-bit keys of
// lg_topk_key (cuda_common.cuh); the result is unique, so the kept set is
// exactly the dense ops'.
//
// Sizes: CSR offsets and indices are int32 (backend.h: nnz < 2^31); the ops
// that could exceed that refuse with LG_EINPUT before launching. Grids: rows
// and latent tiles on grid.x (< 2^31), column tiles on grid.y (checked
// <= 65535). Three ops read a count back to the host (topk_rows_csr,
// topk_batch_csr: *nnz; csr_transpose: nnz, which CUB's sort needs on the
// host) and so synchronise; the others are asynchronous.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda_common.cuh"
#include "kernels/cuda_select.cuh"

#define SP_THREADS 256                // block of the selection and row kernels
#define SP_WARPS (SP_THREADS / 32)
#define SP_SCAN 1024                  // one-block scans
#define SP_UNIT 4096                  // columns per work unit of batch top-k's write pass
#define GA_THREADS 128                // gather_rows: threads per block,
#define GA_CPT 4                      //   columns per thread,
#define GA_TILE (GA_THREADS * GA_CPT) //   columns per block (grid.y tiles d)
#define SC_T 32                       // scatter_rows: 32 latents x 32 columns per block
#define SC_TY 8                       //   (block 32 x 8)
#define FULL_MASK 0xffffffffu

static inline size_t align256(size_t b) { return (b + 255) & ~(size_t)255; }

// The block steps of the selections (block sums, tie ranks, digits, row keys)
// are cuda_select.cuh's, shared with cuda_topk.cu.

// One block of SP_SCAN threads: the sum of `local` over the lower threads (an
// exclusive scan in thread order: an inclusive Hillis-Steele scan through s
// [SP_SCAN], minus this thread's own). Every thread calls it.
static __device__ unsigned long long sp_scan_before(unsigned long long local, unsigned long long *s)
{
    s[threadIdx.x] = local;
    __syncthreads();
    for (int off = 1; off < SP_SCAN; off <<= 1) {
        unsigned long long add = threadIdx.x >= (unsigned)off ? s[threadIdx.x - off] : 0;
        __syncthreads();
        s[threadIdx.x] += add;
        __syncthreads();
    }
    return s[threadIdx.x] - local;
}

// In place, one block: counts c[1..n] -> inclusive prefix sums, c[0] = 0
// (CSR offsets from per-row counts). The caller guarantees the total < 2^31.
__global__ void __launch_bounds__(SP_SCAN) k_sp_scan_counts(int32_t *c, int n)
{
    __shared__ unsigned long long s[SP_SCAN];
    const size_t seg = ((size_t)n + SP_SCAN - 1) / SP_SCAN;
    const size_t lo = threadIdx.x * seg, hi = lo + seg < (size_t)n ? lo + seg : (size_t)n;
    unsigned long long local = 0, run;
    for (size_t t = lo; t < hi; t++)
        local += (unsigned)c[t + 1];
    run = sp_scan_before(local, s);
    for (size_t t = lo; t < hi; t++) {
        run += (unsigned)c[t + 1];
        c[t + 1] = (int32_t)run;
    }
    if (threadIdx.x == 0)
        c[0] = 0;
}

// One step of a CSR write, every thread of the block with its entry c (key
// key, value v[c]): the entry is kept when key > T, or key == T and fewer
// than rem ties come before it (*taken_eq from earlier steps, then the lower
// threads'); kept entries go to idx/val at out + their rank among this
// step's kept ones, in thread order. Returns how many were kept; *taken_eq
// moves on. T >= 1, so only candidates (key > 0) can match.
static __device__ unsigned sp_write_kept(uint32_t key, unsigned T, unsigned long long rem,
                                         unsigned long long *taken_eq, const float *v, int c, int32_t *idx,
                                         float *val, int32_t out, unsigned *s_warp)
{
    unsigned tot;
    const bool eq = key == T;
    const unsigned long long before = *taken_eq + lg_block_rank(eq, s_warp, &tot);
    *taken_eq += tot;
    const bool kept = key > T || (eq && before < rem);
    const unsigned pos = lg_block_rank(kept, s_warp, &tot);
    if (kept) {
        idx[out + pos] = c;
        val[out + pos] = v[c];
    }
    return tot;
}

// ---- per-row top-k as CSR ------------------------------------------------------------
// Pass 1 (block per row): the radix select of cuda_topk.cu's k_topk_rows:
// kk = min(k, candidates), T = the kk-th largest key, rem = how many keys
// == T are kept (the lowest columns); ptr[r+1] = kk. Pass 2: offsets. Pass 3
// (block per row): the row in column order, keeping key > T and the first rem
// keys == T, each kept entry written at ptr[r] + its rank (ballots).

__global__ void __launch_bounds__(SP_THREADS)
    k_sp_rows_select(const float *pre, const float *mask, int cols, int k, unsigned *selT,
                     unsigned *selRem, int32_t *ptr)
{
    __shared__ unsigned hist[256];
    __shared__ unsigned s_warp[SP_WARPS];
    __shared__ unsigned s_digit;
    __shared__ unsigned long long s_rem;
    const float *v = pre + (size_t)blockIdx.x * cols; // [cols]
    const int tid = threadIdx.x;
    unsigned cnt = 0, prefix;
    unsigned long long rem;

    for (int c = tid; c < cols; c += SP_THREADS)
        cnt += lg_row_key(v, mask, c) != 0;
    cnt = lg_block_sum_u(cnt, s_warp);
    rem = cnt < (unsigned)k ? cnt : (unsigned)k;
    if (tid == 0)
        ptr[blockIdx.x + 1] = (int32_t)rem;
    if (rem == 0) { // nothing to keep (uniform branch); no key equals 0xffffffff
        if (tid == 0) {
            selT[blockIdx.x] = 0xffffffffu;
            selRem[blockIdx.x] = 0;
        }
        return;
    }
    prefix = lg_row_radix(v, mask, cols, &rem, hist, &s_digit, &s_rem);
    if (tid == 0) {
        selT[blockIdx.x] = prefix;
        selRem[blockIdx.x] = (unsigned)rem;
    }
}

__global__ void __launch_bounds__(SP_THREADS)
    k_sp_rows_write(const float *pre, const float *mask, int cols, const unsigned *selT,
                    const unsigned *selRem, const int32_t *ptr, int32_t *idx, float *val)
{
    __shared__ unsigned s_warp[SP_WARPS];
    const float *v = pre + (size_t)blockIdx.x * cols;
    const unsigned T = selT[blockIdx.x], rem = selRem[blockIdx.x];
    const int32_t start = ptr[blockIdx.x], want = ptr[blockIdx.x + 1] - start;
    int32_t out = start;
    unsigned long long taken_eq = 0;
    if (want <= 0)
        return; // uniform
    for (int base = 0; base < cols && out - start < want; base += SP_THREADS) {
        const int c = base + threadIdx.x;
        const uint32_t key = c < cols ? lg_row_key(v, mask, c) : 0u;
        out += (int32_t)sp_write_kept(key, T, rem, &taken_eq, v, c, idx, val, out, s_warp);
    }
}

static int sp_read_i32(lg_cuda_ctx *ctx, const char *op, const int32_t *src, int32_t *out)
{
    LG_CU(op, cudaMemcpyAsync(out, src, sizeof(int32_t), cudaMemcpyDeviceToHost, ctx->stream));
    LG_CU(op, cudaStreamSynchronize(ctx->stream));
    return 0;
}

static int cu_topk_rows_csr(const lg_backend *be, const float *pre, const float *col_mask,
                            int rows, int cols, int k, int32_t *ptr, int32_t *idx, float *val,
                            long long *nnz)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    const int kk = k < cols ? k : cols;
    unsigned *selT, *selRem;
    int32_t total = 0;
    void *p;
    int err;
    *nnz = 0;
    if (rows <= 0)
        return 0;
    if (k <= 0 || cols <= 0) {
        LG_CU("topk_rows_csr",
              cudaMemsetAsync(ptr, 0, ((size_t)rows + 1) * sizeof(int32_t), ctx->stream));
        return 0;
    }
    if ((long long)rows * kk > (long long)INT32_MAX)
        return lg_error_set(LG_EINPUT, "cuda backend: topk_rows_csr: %d rows x %d kept exceed 2^31 entries",
                            rows, kk);
    if ((err = lg_cuda_scratch(ctx, 2 * align256((size_t)rows * sizeof(unsigned)), &p)) < 0)
        return err;
    selT = (unsigned *)p;
    selRem = (unsigned *)((char *)p + align256((size_t)rows * sizeof(unsigned)));
    k_sp_rows_select<<<rows, SP_THREADS, 0, ctx->stream>>>(pre, col_mask, cols, k, selT, selRem,
                                                           ptr);
    LG_CU("topk_rows_csr", cudaGetLastError());
    k_sp_scan_counts<<<1, SP_SCAN, 0, ctx->stream>>>(ptr, rows);
    LG_CU("topk_rows_csr", cudaGetLastError());
    k_sp_rows_write<<<rows, SP_THREADS, 0, ctx->stream>>>(pre, col_mask, cols, selT, selRem, ptr,
                                                          idx, val);
    LG_CU("topk_rows_csr", cudaGetLastError());
    if ((err = sp_read_i32(ctx, "topk_rows_csr", ptr + rows, &total)) < 0)
        return err;
    *nnz = total;
    return 0;
}

// ---- batch top-k as CSR ------------------------------------------------------------------
// The radix select of cuda_topk.cu's topk_batch over the flat [rows, cols]
// array (selection state on the device), then units of at most SP_UNIT
// columns of one row, in flat order: per unit the counts of keys > T and ==
// T; one block scans them (ties before each unit, so the unit's kept count;
// then the CSR offsets: ptr[r] = the offset of row r's first unit); per unit
// the kept entries are written in column order (ballots), ties ranked from
// the ties before the unit.

// Unit u = (row u / upr, columns [(u % upr) SP_UNIT, ...)): ugt[u] = keys > T,
// ueq[u] = keys == T (both 0 when nothing is kept).
__global__ void __launch_bounds__(SP_THREADS)
    k_sp_bt_unitcount(const float *pre, int cols, int upr, const lg_bt_state *st, unsigned *ugt,
                      unsigned *ueq)
{
    __shared__ unsigned s_warp[SP_WARPS];
    const unsigned T = st->prefix;
    const bool any = st->kk != 0;
    const size_t u = blockIdx.x;
    const int r = (int)(u / (unsigned)upr), c0 = (int)(u % (unsigned)upr) * SP_UNIT;
    const int c1 = cols - c0 < SP_UNIT ? cols : c0 + SP_UNIT;
    const float *v = pre + (size_t)r * cols;
    unsigned gt = 0, eq = 0;
    if (any)
        for (int c = c0 + threadIdx.x; c < c1; c += SP_THREADS) {
            const uint32_t key = lg_topk_key(v[c]);
            gt += key > T;
            eq += key == T;
        }
    gt = lg_block_sum_u(gt, s_warp);
    eq = lg_block_sum_u(eq, s_warp);
    if (threadIdx.x == 0) {
        ugt[u] = gt;
        ueq[u] = eq;
    }
}

// One block over the n units: ueqb[u] = ties before unit u (flat order);
// kept[u] (in ugt) = ugt[u] + min(ueq[u], max(rem - ueqb[u], 0)); uoff[u] =
// kept entries before unit u; ptr[r] = uoff[r * upr], ptr[rows] = total.
__global__ void __launch_bounds__(SP_SCAN)
    k_sp_bt_scan(unsigned *ugt, const unsigned *ueq, unsigned long long *ueqb, int32_t *uoff,
                 size_t n, int upr, int rows, int32_t *ptr, lg_bt_state *st)
{
    __shared__ unsigned long long s[SP_SCAN];
    const size_t seg = (n + SP_SCAN - 1) / SP_SCAN;
    const size_t lo = threadIdx.x * seg, hi = lo + seg < n ? lo + seg : n;
    const unsigned long long rem = st->rem;
    unsigned long long local = 0, run;
    int pass;
    for (pass = 0; pass < 2; pass++) {
        const unsigned *cnt = pass == 0 ? ueq : ugt;
        local = 0;
        for (size_t t = lo; t < hi; t++)
            local += cnt[t];
        run = sp_scan_before(local, s);
        for (size_t t = lo; t < hi; t++) {
            if (pass == 0) { // ties before the unit; the unit's kept count into ugt
                const unsigned long long left = rem > run ? rem - run : 0;
                ueqb[t] = run;
                run += ueq[t];
                ugt[t] += (unsigned)(left < ueq[t] ? left : ueq[t]);
            } else {
                uoff[t] = (int32_t)run;
                if (t % (unsigned)upr == 0)
                    ptr[t / (unsigned)upr] = (int32_t)run;
                run += ugt[t];
            }
        }
        __syncthreads(); // s is read above before the next pass overwrites it
    }
    if (threadIdx.x == 0) {
        ptr[rows] = (int32_t)s[SP_SCAN - 1];
        st->total = s[SP_SCAN - 1];
    }
}

__global__ void __launch_bounds__(SP_THREADS)
    k_sp_bt_write(const float *pre, int cols, int upr, const lg_bt_state *st,
                  const unsigned *kept_n, const unsigned long long *ueqb, const int32_t *uoff,
                  int32_t *idx, float *val)
{
    __shared__ unsigned s_warp[SP_WARPS];
    const unsigned T = st->prefix;
    const unsigned long long rem = st->rem;
    const size_t u = blockIdx.x;
    const int r = (int)(u / (unsigned)upr), c0 = (int)(u % (unsigned)upr) * SP_UNIT;
    const int c1 = cols - c0 < SP_UNIT ? cols : c0 + SP_UNIT;
    const float *v = pre + (size_t)r * cols;
    const int32_t start = uoff[u], want = (int32_t)kept_n[u];
    unsigned long long taken_eq = ueqb[u];
    int32_t out = start;
    if (st->kk == 0 || want == 0)
        return; // uniform
    for (int base = c0; base < c1 && out - start < want; base += SP_THREADS) {
        const int c = base + threadIdx.x;
        const uint32_t key = c < c1 ? lg_topk_key(v[c]) : 0u;
        out += (int32_t)sp_write_kept(key, T, rem, &taken_eq, v, c, idx, val, out, s_warp);
    }
}

static int cu_topk_batch_csr(const lg_backend *be, const float *pre, int rows, int cols,
                             size_t keep, int32_t *ptr, int32_t *idx, float *val, long long *nnz,
                             float *min_kept)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    const size_t n = (size_t)(rows > 0 ? rows : 0) * (size_t)(cols > 0 ? cols : 0);
    size_t units, off_cnt, off_eqb, off_uoff, bytes;
    lg_bt_state host;
    lg_bt_state *st;
    int upr, err;
    void *p;
    char *base;

    *nnz = 0;
    *min_kept = -1.0f;
    if (rows <= 0)
        return 0;
    if (n > (size_t)INT32_MAX)
        return lg_error_set(LG_EINPUT, "cuda backend: topk_batch_csr: %zu entries exceed 2^31", n);
    if (keep == 0 || cols <= 0) {
        LG_CU("topk_batch_csr",
              cudaMemsetAsync(ptr, 0, ((size_t)rows + 1) * sizeof(int32_t), ctx->stream));
        return 0;
    }
    upr = (cols + SP_UNIT - 1) / SP_UNIT;
    units = (size_t)rows * upr; // <= n < 2^31
    off_cnt = align256(sizeof(lg_bt_state));
    off_eqb = off_cnt + 2 * align256(units * sizeof(unsigned));
    off_uoff = off_eqb + align256(units * sizeof(unsigned long long));
    bytes = off_uoff + align256(units * sizeof(int32_t));
    if ((err = lg_cuda_scratch(ctx, bytes, &p)) < 0)
        return err;
    base = (char *)p;
    st = (lg_bt_state *)base;
    unsigned *ugt = (unsigned *)(base + off_cnt);
    unsigned *ueq = (unsigned *)(base + off_cnt + align256(units * sizeof(unsigned)));
    unsigned long long *ueqb = (unsigned long long *)(base + off_eqb);
    int32_t *uoff = (int32_t *)(base + off_uoff);

    if ((err = lg_cuda_bt_radix(ctx, "topk_batch_csr", pre, n, (unsigned long long)keep, st)) < 0)
        return err;
    k_sp_bt_unitcount<<<(unsigned)units, SP_THREADS, 0, ctx->stream>>>(pre, cols, upr, st, ugt,
                                                                       ueq);
    LG_CU("topk_batch_csr", cudaGetLastError());
    k_sp_bt_scan<<<1, SP_SCAN, 0, ctx->stream>>>(ugt, ueq, ueqb, uoff, units, upr, rows, ptr, st);
    LG_CU("topk_batch_csr", cudaGetLastError());
    k_sp_bt_write<<<(unsigned)units, SP_THREADS, 0, ctx->stream>>>(pre, cols, upr, st, ugt, ueqb,
                                                                   uoff, idx, val);
    LG_CU("topk_batch_csr", cudaGetLastError());
    LG_CU("topk_batch_csr", cudaMemcpyAsync(&host, st, offsetof(lg_bt_state, hist),
                                            cudaMemcpyDeviceToHost, ctx->stream));
    LG_CU("topk_batch_csr", cudaStreamSynchronize(ctx->stream));
    *nnz = (long long)host.total;
    if (host.kk) {
        float t;
        memcpy(&t, &host.prefix, sizeof(t)); // T is the bit pattern of the smallest kept value
        *min_kept = t;
    }
    return 0;
}

// ---- transpose -------------------------------------------------------------------------------
// tent = the entries stably sorted by column (CUB's radix sort of the keys
// idx[e] with values e: within a column the entries keep their order, i.e.
// rows ascend); tptr[j] = number of entries with column < j (binary search in
// the sorted keys); trow[t] = the row of entry tent[t].

// One warp per row: erow[e] = r and iota[e] = e for the row's entries.
__global__ void k_sp_entry_rows(const int32_t *ptr, int rows, int32_t *erow, int32_t *iota)
{
    const int r = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
    if (r >= rows)
        return;
    for (int32_t e = ptr[r] + lane; e < ptr[r + 1]; e += 32) {
        erow[e] = r;
        iota[e] = e;
    }
}

__global__ void k_sp_tptr(const unsigned *keys, int32_t nnz, int cols, int32_t *tptr)
{
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j <= (size_t)cols;
         j += (size_t)gridDim.x * blockDim.x) {
        int32_t lo = 0, hi = nnz; // first position whose key >= j
        while (lo < hi) {
            int32_t mid = lo + (hi - lo) / 2;
            if (keys[mid] < (unsigned)j)
                lo = mid + 1;
            else
                hi = mid;
        }
        tptr[j] = lo;
    }
}

__global__ void k_sp_trow(const int32_t *tent, const int32_t *erow, int32_t nnz, int32_t *trow)
{
    GRID_STRIDE(t, (size_t)nnz) { trow[t] = erow[tent[t]]; }
}

static int cu_csr_transpose(const lg_backend *be, const int32_t *ptr, const int32_t *idx,
                            int rows, int cols, int32_t *tptr, int32_t *trow, int32_t *tent)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    int32_t nnz = 0;
    size_t temp = 0, off_iota, off_erow, off_temp;
    unsigned *keys;
    int32_t *iota, *erow;
    void *p;
    int err, bits = 1;
    if (cols <= 0)
        return 0;
    if (rows > 0 && (err = sp_read_i32(ctx, "csr_transpose", ptr + rows, &nnz)) < 0)
        return err;
    if (nnz < 0)
        return lg_error_set(LG_EINPUT, "cuda backend: csr_transpose: negative entry count %d",
                            (int)nnz);
    if (nnz == 0) {
        LG_CU("csr_transpose",
              cudaMemsetAsync(tptr, 0, ((size_t)cols + 1) * sizeof(int32_t), ctx->stream));
        return 0;
    }
    while (bits < 31 && ((int64_t)1 << bits) < (int64_t)cols) // keys are in [0, cols)
        bits++;
    LG_CU("csr_transpose",
          cub::DeviceRadixSort::SortPairs(NULL, temp, (const unsigned *)idx, (unsigned *)NULL,
                                          (const int32_t *)NULL, tent, (int)nnz, 0, bits,
                                          ctx->stream));
    off_iota = align256((size_t)nnz * sizeof(unsigned));
    off_erow = off_iota + align256((size_t)nnz * sizeof(int32_t));
    off_temp = off_erow + align256((size_t)nnz * sizeof(int32_t));
    if ((err = lg_cuda_scratch(ctx, off_temp + temp, &p)) < 0)
        return err;
    keys = (unsigned *)p;
    iota = (int32_t *)((char *)p + off_iota);
    erow = (int32_t *)((char *)p + off_erow);
    k_sp_entry_rows<<<(unsigned)(((size_t)rows + 7) / 8), 256, 0, ctx->stream>>>(ptr, rows, erow,
                                                                                iota);
    LG_CU("csr_transpose", cudaGetLastError());
    LG_CU("csr_transpose",
          cub::DeviceRadixSort::SortPairs((char *)p + off_temp, temp, (const unsigned *)idx, keys,
                                          (const int32_t *)iota, tent, (int)nnz, 0, bits,
                                          ctx->stream));
    k_sp_tptr<<<lg_cuda_grid((size_t)cols + 1), LG_CUDA_THREADS, 0, ctx->stream>>>(keys, nnz, cols,
                                                                                  tptr);
    LG_CU("csr_transpose", cudaGetLastError());
    k_sp_trow<<<lg_cuda_grid((size_t)nnz), LG_CUDA_THREADS, 0, ctx->stream>>>(tent, erow, nnz,
                                                                              trow);
    LG_CU("csr_transpose", cudaGetLastError());
    return 0;
}

// ---- decoder forward: gather-sum of the active rows -----------------------------------------
// Block (r, tile): GA_CPT columns per thread of row r's output held in
// registers; the row's entries staged GA_THREADS at a time in shared memory
// and added in CSR order.

__global__ void __launch_bounds__(GA_THREADS)
    k_sp_gather_rows(const int32_t *ptr, const int32_t *idx, const float *val, int lo, int hi,
                     const float *W, int d, float *out)
{
    __shared__ int32_t s_idx[GA_THREADS];
    __shared__ float s_val[GA_THREADS];
    const int r = blockIdx.x, c0 = blockIdx.y * GA_TILE + threadIdx.x;
    const int32_t e0 = ptr[r], e1 = ptr[r + 1];
    float *o = out + (size_t)r * d;
    float acc[GA_CPT];
    if (e0 >= e1)
        return; // uniform: nothing to add
#pragma unroll
    for (int q = 0; q < GA_CPT; q++) {
        const int c = c0 + q * GA_THREADS;
        acc[q] = c < d ? o[c] : 0.0f;
    }
    for (int32_t eb = e0; eb < e1; eb += GA_THREADS) {
        const int nb = e1 - eb < GA_THREADS ? (int)(e1 - eb) : GA_THREADS;
        __syncthreads(); // the previous batch is consumed
        if ((int)threadIdx.x < nb) {
            s_idx[threadIdx.x] = idx[eb + threadIdx.x];
            s_val[threadIdx.x] = val[eb + threadIdx.x];
        }
        __syncthreads();
        for (int i = 0; i < nb; i++) {
            const int j = s_idx[i];
            if (j < lo || j >= hi)
                continue;
            const float s = s_val[i];
            const float *w = W + (size_t)j * d;
#pragma unroll
            for (int q = 0; q < GA_CPT; q++) {
                const int c = c0 + q * GA_THREADS;
                if (c < d)
                    acc[q] = __fadd_rn(acc[q], __fmul_rn(s, w[c]));
            }
        }
    }
#pragma unroll
    for (int q = 0; q < GA_CPT; q++) {
        const int c = c0 + q * GA_THREADS;
        if (c < d)
            o[c] = acc[q];
    }
}

static int cu_csr_gather_rows(const lg_backend *be, const int32_t *ptr, const int32_t *idx,
                              const float *val, int rows, int lo, int hi, const float *W, int d,
                              float *out)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    const long long tiles = ((long long)d + GA_TILE - 1) / GA_TILE;
    if (rows <= 0 || d <= 0 || hi <= lo)
        return 0;
    if (tiles > 65535)
        return lg_error_set(LG_EINPUT, "cuda backend: csr_gather_rows: d = %d too large", d);
    dim3 grid((unsigned)rows, (unsigned)tiles);
    k_sp_gather_rows<<<grid, GA_THREADS, 0, ctx->stream>>>(ptr, idx, val, lo, hi, W, d, out);
    LG_CU("csr_gather_rows", cudaGetLastError());
    return 0;
}

// ---- gradient at the active entries: dots of a row of R with rows of W ------------------
// Block per row r, one warp per entry (entries e0 + w, e0 + w + SP_WARPS, ...):
// lane l sums R[r, c] W[j, c] for c = l, l + 32, ... in order, then a
// butterfly over the lanes (a + b == b + a bit for bit: every lane holds the
// same sum), lane 0 writes.

__global__ void __launch_bounds__(SP_THREADS)
    k_sp_row_dots(const int32_t *ptr, const int32_t *idx, int lo, int hi, const float *R,
                  const float *W, int d, float alpha, float beta, float *out)
{
    const int r = blockIdx.x, lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int32_t e1 = ptr[r + 1];
    const float *x = R + (size_t)r * d;
    for (int32_t e = ptr[r] + warp; e < e1; e += SP_WARPS) {
        const int j = idx[e];
        if (j < lo || j >= hi) // uniform in the warp
            continue;
        const float *w = W + (size_t)j * d;
        float acc = 0.0f;
        for (int c = lane; c < d; c += 32)
            acc = __fadd_rn(acc, __fmul_rn(x[c], w[c]));
        for (int off = 16; off > 0; off >>= 1)
            acc = __fadd_rn(acc, __shfl_xor_sync(FULL_MASK, acc, off));
        if (lane == 0) {
            const float s = __fmul_rn(alpha, acc);
            out[e] = beta == 0.0f ? s : __fadd_rn(__fmul_rn(beta, out[e]), s);
        }
    }
}

static int cu_csr_row_dots(const lg_backend *be, const int32_t *ptr, const int32_t *idx, int rows,
                           int lo, int hi, const float *R, const float *W, int d, float alpha,
                           float beta, float *out)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    if (rows <= 0 || hi <= lo)
        return 0;
    k_sp_row_dots<<<rows, SP_THREADS, 0, ctx->stream>>>(ptr, idx, lo, hi, R, W, d, alpha, beta,
                                                        out);
    LG_CU("csr_row_dots", cudaGetLastError());
    return 0;
}

// ---- scatter by latent -------------------------------------------------------------------------
// Block (latent tile, column tile) of 32 x 8 threads: warp-row ty sums the
// latents j0 + ty, j0 + ty + 8, ... (lane tx: column c0 + tx) over their
// entries in row order into a shared tile, then the tile is written with
// the unit-stride index along the lanes (columns for decoder rows, ld_col ==
// 1; latents otherwise, e.g. encoder columns with ld_row == 1).

__global__ void __launch_bounds__(SC_T *SC_TY)
    k_sp_scatter(const int32_t *tptr, const int32_t *trow, const int32_t *tent, const float *val,
                 int lo, int hi, const float *R, int d, float alpha, float beta, float *out,
                 long long ld_row, long long ld_col)
{
    __shared__ float tile[SC_T][SC_T + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int j0 = lo + (int)blockIdx.x * SC_T, c0 = (int)blockIdx.y * SC_T, c = c0 + tx;
    for (int jj = ty; jj < SC_T; jj += SC_TY) {
        const int j = j0 + jj;
        float acc = 0.0f;
        if (j < hi && c < d) {
            const int32_t t1 = tptr[j + 1];
            for (int32_t t = tptr[j]; t < t1; t++)
                acc = __fadd_rn(acc, __fmul_rn(val[tent[t]], R[(size_t)trow[t] * d + c]));
        }
        tile[jj][tx] = acc;
    }
    __syncthreads();
    for (int q = ty; q < SC_T; q += SC_TY) {
        // ld_col == 1: lane = column, q = latent; else lane = latent, q = column
        const int jj = ld_col == 1 ? q : tx, cc = ld_col == 1 ? tx : q;
        const int j = j0 + jj, col = c0 + cc;
        if (j < hi && col < d) {
            float *o = out + (long long)j * ld_row + (long long)col * ld_col;
            const float a = __fmul_rn(alpha, tile[jj][cc]);
            *o = beta == 0.0f ? a : __fadd_rn(__fmul_rn(beta, *o), a);
        }
    }
}

static int cu_csc_scatter_rows(const lg_backend *be, const int32_t *tptr, const int32_t *trow,
                               const int32_t *tent, const float *val, int lo, int hi,
                               const float *R, int d, float alpha, float beta, float *out,
                               long long ld_row, long long ld_col)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    const long long ctiles = ((long long)d + SC_T - 1) / SC_T;
    if (hi <= lo || d <= 0)
        return 0;
    if (ctiles > 65535)
        return lg_error_set(LG_EINPUT, "cuda backend: csc_scatter_rows: d = %d too large", d);
    dim3 grid((unsigned)(((long long)hi - lo + SC_T - 1) / SC_T), (unsigned)ctiles),
        block(SC_T, SC_TY);
    k_sp_scatter<<<grid, block, 0, ctx->stream>>>(tptr, trow, tent, val, lo, hi, R, d, alpha, beta,
                                                  out, ld_row, ld_col);
    LG_CU("csc_scatter_rows", cudaGetLastError());
    return 0;
}

// ---- column sums and the dead-latent clock ------------------------------------------------

__global__ void k_sp_val_sum(const int32_t *tptr, const int32_t *tent, const float *val, int cols,
                             float alpha, float beta, float *out)
{
    GRID_STRIDE(j, (size_t)cols)
    {
        double s = 0.0;
        for (int32_t t = tptr[j]; t < tptr[j + 1]; t++)
            s += (double)val[tent[t]];
        const float f = __fmul_rn(alpha, (float)s);
        out[j] = beta == 0.0f ? f : __fadd_rn(__fmul_rn(beta, out[j]), f);
    }
}

__global__ void k_sp_fired(const int32_t *tptr, int cols, float *since)
{
    GRID_STRIDE(j, (size_t)cols) { since[j] = tptr[j + 1] > tptr[j] ? 0.0f : __fadd_rn(since[j], 1.0f); }
}

static int cu_csc_val_sum(const lg_backend *be, const int32_t *tptr, const int32_t *tent,
                          const float *val, int cols, float alpha, float beta, float *out)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    if (cols <= 0)
        return 0;
    k_sp_val_sum<<<lg_cuda_grid((size_t)cols), LG_CUDA_THREADS, 0, ctx->stream>>>(
        tptr, tent, val, cols, alpha, beta, out);
    LG_CU("csc_val_sum", cudaGetLastError());
    return 0;
}

static int cu_csc_fired_update(const lg_backend *be, const int32_t *tptr, int cols, float *since)
{
    lg_cuda_ctx *ctx = lg_cuda_ctx_of(be);
    if (cols <= 0)
        return 0;
    k_sp_fired<<<lg_cuda_grid((size_t)cols), LG_CUDA_THREADS, 0, ctx->stream>>>(tptr, cols, since);
    LG_CU("csc_fired_update", cudaGetLastError());
    return 0;
}

// ---- the switch ------------------------------------------------------------------------------

int lg_cuda_sparse_install(lg_backend *t)
{
    const char *env = getenv("LEDGER_CUDA_SPARSE");
    if (env && strcmp(env, "0") == 0)
        return 0; // the group stays NULL: the trainer's dense path
    // LEDGER_CUDA_SPARSE=1: every size; else from LG_CUDA_SPARSE_MIN_WORK on
    // (bench/RESULTS.md: on an H200 the sparse step lost at 4096 x 1024 x 128,
    // 1.6 vs 1.1 ms, and won 2.7x at 4096 x 65536 x 2304)
    t->sparse_min_work = env && strcmp(env, "1") == 0 ? 0.0 : LG_CUDA_SPARSE_MIN_WORK;
    t->topk_rows_csr = cu_topk_rows_csr;
    t->topk_batch_csr = cu_topk_batch_csr;
    t->csr_transpose = cu_csr_transpose;
    t->csr_gather_rows = cu_csr_gather_rows;
    t->csr_row_dots = cu_csr_row_dots;
    t->csc_scatter_rows = cu_csc_scatter_rows;
    t->csc_val_sum = cu_csc_val_sum;
    t->csc_fired_update = cu_csc_fired_update;
    return 1;
}
