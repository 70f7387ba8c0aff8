// Host emulation of the few CUDA features kernels/cuda_sparse.cu uses: every
// CUDA thread of a block is a host thread, blocks run one after another,
// __syncthreads is a block barrier, warp intrinsics exchange through a
// per-warp buffer between warp barriers. For checking the kernels' logic.
#pragma once
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <numeric>
#include <thread>
#include <vector>
#include <stddef.h>
extern "C" {
#include "base/base.h"
#include "engine/backend.h"
}
struct dim3 { unsigned x, y, z; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__ static
typedef int cudaError_t;
typedef void *cudaStream_t;
enum { cudaSuccess = 0, cudaMemcpyDeviceToHost = 2, cudaMemcpyHostToDevice = 1 };
inline const char *cudaGetErrorString(cudaError_t) { return "emu error"; }
inline cudaError_t cudaGetLastError() { return 0; }
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) { memset(p, v, n); return 0; }
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, int, cudaStream_t) { memcpy(d, s, n); return 0; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return 0; }
typedef struct { cudaStream_t stream; void *scratch; size_t scratch_bytes; } lg_cuda_ctx;
static inline lg_cuda_ctx *lg_cuda_ctx_of(const lg_backend *be) { return (lg_cuda_ctx *)be->ctx; }
static inline int lg_cuda_fail(const char *op, cudaError_t e) { return lg_error_set(LG_EINTERNAL, "cuda: %s: emu", op); }
#define LG_CU(op, call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) return lg_cuda_fail((op), e_); } while (0)
#define LG_CUDA_THREADS 256
#define GRID_STRIDE(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)
static inline unsigned lg_cuda_grid(size_t n) { size_t g = (n + LG_CUDA_THREADS - 1) / LG_CUDA_THREADS; return (unsigned)(g > 65535 * 8 ? 65535 * 8 : (g ? g : 1)); }
static inline int lg_cuda_scratch(lg_cuda_ctx *ctx, size_t bytes, void **out) {
    if (bytes > ctx->scratch_bytes) { free(ctx->scratch); ctx->scratch = aligned_alloc(256, (bytes + 255) / 256 * 256); ctx->scratch_bytes = bytes; }
    // poison: scratch contents are undefined
    memset(ctx->scratch, 0xA5, bytes);
    *out = ctx->scratch; return 0; }
static inline uint32_t __float_as_uint(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static inline uint32_t lg_topk_key(float x) { return x > 0.0f ? __float_as_uint(x) : 0u; }
static inline float __fadd_rn(float a, float b) { volatile float r = a + b; return r; }
static inline float __fmul_rn(float a, float b) { volatile float r = a * b; return r; }
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline unsigned atomicAdd(unsigned *p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
static inline unsigned long long atomicAdd(unsigned long long *p, unsigned long long v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }
namespace emu {
inline std::barrier<> *blk;
inline std::vector<std::barrier<> *> warps;
inline uint64_t wbuf[32][32];
inline unsigned tid() { return threadIdx.x + threadIdx.y * blockDim.x; }
template <class T> T exch(T v, int src_lane, bool valid) {
    unsigned t = tid(), w = t / 32, l = t % 32;
    uint64_t b = 0; memcpy(&b, &v, sizeof(T)); wbuf[w][l] = b;
    warps[w]->arrive_and_wait();
    T r = v;
    if (valid) memcpy(&r, &wbuf[w][src_lane], sizeof(T));
    warps[w]->arrive_and_wait();
    return r;
}
template <class... P> struct launcher {
    void (*k)(P...); dim3 g, b;
    template <class... A> void operator()(A... a) {
        unsigned nt = b.x * b.y * b.z;
        if ((nt % 32 && nt != 1) || nt > 1024 || g.y > 65535) { fprintf(stderr, "emu: bad launch %u threads grid.y %u\n", nt, g.y); abort(); }
        blockDim = b; gridDim = g;
        std::barrier<> bb(nt); blk = &bb;
        std::vector<std::barrier<> *> ws; for (unsigned i = 0; i < nt / 32; i++) ws.push_back(new std::barrier<>(32)); warps = ws;
        std::vector<std::thread> th;
        for (unsigned t = 0; t < nt; t++) th.emplace_back([&, t] {
            threadIdx = dim3(t % b.x, t / b.x, 1);
            for (unsigned by = 0; by < g.y; by++) for (unsigned bx = 0; bx < g.x; bx++) {
                blockIdx = dim3(bx, by, 1);
                k(a...);
                blk->arrive_and_wait();
            }
        });
        for (auto &x : th) x.join();
        for (auto *w : ws) delete w;
    }
};
template <class... P> launcher<P...> launch(void (*k)(P...), dim3 g, dim3 b) { return launcher<P...>{k, g, b}; }
}
#define EMU_LAUNCH(k, g, b, ...) emu::launch(k, dim3(g), dim3(b))
static inline void __syncthreads() { emu::blk->arrive_and_wait(); }
template <class T> static inline T __shfl_down_sync(unsigned, T v, int off) { unsigned l = emu::tid() % 32; return emu::exch(v, l + off, l + off < 32); }
template <class T> static inline T __shfl_xor_sync(unsigned, T v, int m) { unsigned l = emu::tid() % 32; return emu::exch(v, l ^ m, true); }
static inline unsigned __ballot_sync(unsigned, bool p) {
    unsigned t = emu::tid(), w = t / 32, l = t % 32;
    emu::wbuf[w][l] = p; emu::warps[w]->arrive_and_wait();
    unsigned m = 0; for (int i = 0; i < 32; i++) if (emu::wbuf[w][i]) m |= 1u << i;
    emu::warps[w]->arrive_and_wait(); return m;
}
namespace cub { struct DeviceRadixSort {
  template <class K, class V, class N>
  static cudaError_t SortPairs(void *tmp, size_t &bytes, const K *kin, K *kout, const V *vin, V *vout, N n, int b0, int b1, cudaStream_t) {
    if (!tmp) { bytes = 64; return 0; }
    std::vector<N> o(n); std::iota(o.begin(), o.end(), 0);
    K mask = (K)((b1 - b0) >= 32 ? ~0u : ((1u << (b1 - b0)) - 1));
    std::stable_sort(o.begin(), o.end(), [&](N x, N y) { return ((kin[x] >> b0) & mask) < ((kin[y] >> b0) & mask); });
    std::vector<K> kk(n); std::vector<V> vv(n);
    for (N i = 0; i < n; i++) { kk[i] = kin[o[i]]; vv[i] = vin[o[i]]; }
    memcpy(kout, kk.data(), n * sizeof(K)); memcpy(vout, vv.data(), n * sizeof(V)); return 0; }
}; }
