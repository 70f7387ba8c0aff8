/*
 * bench_sparse_crossover.c - at which density (fraction of non-zero
 * activations, L0 / d_sae) the CPU backend's sparse ops stop beating the
 * dense GEMMs, for the part of a training step that sparsity can cut:
 *   dense : xhat = acts W_dec; gW_dec = acts^T r; gacts = r W_dec^T (masked);
 *           gW_enc = xc^T gpre; gxc = gpre W_enc^T            (5 GEMMs)
 *   sparse: CSR of acts (all positives: topk_rows_csr with k = d_sae, as a
 *           ReLU/JumpReLU path would build it), its CSC, gather, row dots,
 *           two scatters, column sums, gb_dec through W_enc gb_enc
 * The encoder forward GEMM and the selection of the activations are common
 * to both and not timed. pre is N(0,1) shifted so that the wanted fraction is
 * positive. Prints one line per density with both times and their ratio.
 *
 * usage: bench_sparse_crossover [d_in d_sae batch reps]   (default 128 1024 4096 3)
 * Threads: OMP_NUM_THREADS. Results: bench/RESULTS.md (ReLU/JumpReLU crossover).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "engine/backend.h"
#include "base/rng.h"

/* inverse of the standard normal CDF by bisection (enough for a benchmark) */
static double norm_quantile(double p)
{
    double lo = -10, hi = 10;
    int i;
    for (i = 0; i < 100; i++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(-mid / sqrt(2.0)) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

int main(int argc, char **argv)
{
    const int d = argc > 1 ? atoi(argv[1]) : 128, m = argc > 2 ? atoi(argv[2]) : 1024,
              B = argc > 3 ? atoi(argv[3]) : 4096, reps = argc > 4 ? atoi(argv[4]) : 3;
    static const double dens[] = {0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5};
    const lg_backend *be = lg_backend_cpu();
    const size_t Bm = (size_t)B * m, Bd = (size_t)B * d, md = (size_t)m * d;
    float *pre = malloc(Bm * 4), *acts = malloc(Bm * 4), *gacts = malloc(Bm * 4),
          *W = malloc(md * 4), *We = malloc(md * 4), *r = malloc(Bd * 4), *xc = malloc(Bd * 4),
          *out = malloc(Bd * 4), *gW = malloc(md * 4), *gWe = malloc(md * 4), *gb = malloc(m * 4),
          *gbd = malloc(d * 4), *val = malloc(Bm * 4), *gval = malloc(Bm * 4);
    int32_t *ptr = malloc((B + 1) * 4), *idx = malloc(Bm * 4), *tptr = malloc((m + 1) * 4),
            *trow = malloc(Bm * 4), *tent = malloc(Bm * 4);
    float *z = NULL;
    lg_rng rng;
    size_t i;
    int di, rep;
    if (!pre || !acts || !gacts || !W || !We || !r || !xc || !out || !gW || !gWe || !gb || !gbd ||
        !val || !gval || !ptr || !idx || !tptr || !trow || !tent)
        return 3;
    lg_rng_init(&rng, 1, LG_STREAM_DATA);
    for (i = 0; i < md; i++) {
        W[i] = (float)lg_rng_normal(&rng);
        We[i] = (float)lg_rng_normal(&rng);
    }
    for (i = 0; i < Bd; i++) {
        r[i] = (float)lg_rng_normal(&rng);
        xc[i] = (float)lg_rng_normal(&rng);
    }
    if (!(z = malloc(Bm * 4)))
        return 3;
    for (i = 0; i < Bm; i++)
        z[i] = (float)lg_rng_normal(&rng);
    printf("sparse vs dense decoder+encoder-backward, d_in=%d d_sae=%d batch=%d, best of %d, on %s\n",
           d, m, B, reps, be->device);
    printf("%8s %12s %12s %8s\n", "density", "dense ms", "sparse ms", "dense/sparse");
    for (di = 0; di < (int)(sizeof(dens) / sizeof(dens[0])); di++) {
        const float shift = (float)norm_quantile(1.0 - dens[di]);
        double td = 1e30, ts = 1e30, t0;
        long long nnz = 0;
        for (i = 0; i < Bm; i++)
            pre[i] = z[i] - shift;
        be->relu(be, pre, acts, Bm);
        for (rep = 0; rep < reps; rep++) {
            t0 = lg_now_seconds();
            be->gemm(be, 0, 0, B, d, m, 1.0f, acts, m, W, d, 0.0f, out, d);
            be->gemm(be, 1, 0, m, d, B, 1.0f, acts, m, r, d, 0.0f, gW, d);
            be->gemm(be, 0, 1, B, m, d, 1.0f, r, d, W, d, 0.0f, gacts, m);
            be->active_grad(be, acts, gacts, 0.0f, gacts, Bm);
            be->gemm(be, 1, 0, d, m, B, 1.0f, xc, d, gacts, m, 0.0f, gWe, m);
            be->gemm(be, 0, 1, B, d, m, 1.0f, gacts, m, We, m, 0.0f, out, d);
            be->col_sum(be, out, B, d, -1.0f, 0.0f, gbd);
            t0 = lg_now_seconds() - t0;
            td = t0 < td ? t0 : td;
            t0 = lg_now_seconds();
            be->topk_rows_csr(be, pre, NULL, B, m, m, ptr, idx, val, &nnz);
            be->csr_transpose(be, ptr, idx, B, m, tptr, trow, tent);
            be->fill(be, out, 0.0f, Bd);
            be->csr_gather_rows(be, ptr, idx, val, B, 0, m, W, d, out);
            be->csc_scatter_rows(be, tptr, trow, tent, val, 0, m, r, d, 1.0f, 0.0f, gW, d, 1);
            be->csr_row_dots(be, ptr, idx, B, 0, m, r, W, d, 1.0f, 0.0f, gval);
            be->csc_scatter_rows(be, tptr, trow, tent, gval, 0, m, xc, d, 1.0f, 0.0f, gWe, 1, m);
            be->csc_val_sum(be, tptr, tent, gval, m, 1.0f, 0.0f, gb);
            be->gemm(be, 0, 1, 1, d, m, -1.0f, gb, m, We, m, 0.0f, gbd, d);
            t0 = lg_now_seconds() - t0;
            ts = t0 < ts ? t0 : ts;
        }
        printf("%8.3f %12.2f %12.2f %8.2f   (measured density %.4f)\n", dens[di], 1e3 * td, 1e3 * ts,
               td / ts, (double)nnz / (double)Bm);
    }
    return 0;
}
