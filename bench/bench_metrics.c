/*
 * bench_metrics.c - timing of the cross-seed metrics on the CPU, driven by
 * bench/bench_metrics.py (which times the NumPy/SciPy references on the same
 * inputs, interleaved, and prints the ratios). Inputs are raw little-endian
 * arrays written by numpy.tofile.
 *
 *   bench_metrics mmcs [--exact|--gemm] M1 M2 D A.f32 B.f32
 *       lg_dict_similarity without the MCC (MMCS only), method AUTO unless
 *       given; prints one JSON line: seconds, mmcs_ab, mmcs_ba, method.
 *   bench_metrics lsa N COST.f64
 *       lg_hungarian_solve_max on an N x N matrix; prints seconds and total.
 *   bench_metrics coretype
 *       the OPENBLAS_CORETYPE the engine loads OpenBLAS with ("" = OpenBLAS
 *       detects), so that bench/run.sh gives NumPy and PyTorch the same kernels.
 *
 * Wall time from clock_gettime(CLOCK_MONOTONIC) around the call only (file
 * reading excluded, as on the Python side).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "engine/blas_lazy.h"
#include "engine/consistency.h"
#include "engine/hungarian.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* This process's CPU seconds: on a shared machine the ratio that load does not skew. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *read_all(const char *path, size_t bytes)
{
    FILE *f = fopen(path, "rb");
    void *p = malloc(bytes ? bytes : 1);
    if (!f || !p || fread(p, 1, bytes, f) != bytes) {
        fprintf(stderr, "bench_metrics: %s: cannot read %zu bytes\n", path, bytes);
        exit(2);
    }
    fclose(f);
    return p;
}

int main(int argc, char **argv)
{
    double t0, t1;
    int err;
    if (argc >= 7 && strcmp(argv[1], "mmcs") == 0) {
        lg_sim_options opt;
        lg_dict_sim s;
        int a = 2, m1, m2, d;
        float *A, *B;
        lg_sim_options_init(&opt);
        opt.mcc = 0;
        if (strcmp(argv[a], "--exact") == 0 || strcmp(argv[a], "--gemm") == 0) {
            opt.method = strcmp(argv[a], "--exact") == 0 ? LG_SIM_EXACT : LG_SIM_GEMM;
            a++;
        }
        if (argc - a != 5)
            goto usage;
        m1 = atoi(argv[a]);
        m2 = atoi(argv[a + 1]);
        d = atoi(argv[a + 2]);
        if (m1 < 1 || m2 < 1 || d < 1)
            goto usage;
        A = read_all(argv[a + 3], (size_t)m1 * d * sizeof(float));
        B = read_all(argv[a + 4], (size_t)m2 * d * sizeof(float));
        t0 = now();
        err = lg_dict_similarity(A, m1, B, m2, d, &opt, &s, NULL, NULL);
        t1 = now();
        if (err < 0) {
            fprintf(stderr, "bench_metrics: %s\n", lg_error_msg());
            return 3;
        }
        printf("{\"bench\": \"mmcs\", \"m1\": %d, \"m2\": %d, \"d\": %d, \"method\": \"%s\", "
               "\"seconds\": %.4f, \"mmcs_ab\": %.17g, \"mmcs_ba\": %.17g}\n",
               m1, m2, d,
               opt.method == LG_SIM_EXACT ? "exact" : opt.method == LG_SIM_GEMM ? "gemm" : "auto",
               t1 - t0, s.mmcs_ab, s.mmcs_ba);
        free(A);
        free(B);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "coretype") == 0) { /* for bench/run.sh: the same kernel */
        const char *c = getenv("OPENBLAS_CORETYPE");     /* for the references */
        printf("%s\n", c && *c ? c : lg_blas_coretype() ? lg_blas_coretype() : "");
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "lsa") == 0) {
        int n = atoi(argv[2]), *assign;
        double *C, total = 0.0;
        if (n < 1)
            goto usage;
        C = read_all(argv[3], (size_t)n * n * sizeof(double));
        assign = malloc((size_t)n * sizeof(int));
        double c0 = cpu_now(), c1;
        t0 = now();
        err = lg_hungarian_solve_max(C, n, n, assign, &total);
        t1 = now();
        c1 = cpu_now();
        if (err < 0) {
            fprintf(stderr, "bench_metrics: %s\n", lg_error_msg());
            return 3;
        }
        printf("{\"bench\": \"lsa\", \"n\": %d, \"seconds\": %.4f, \"cpu_seconds\": %.4f, \"total\": %.17g}\n", n,
               t1 - t0, c1 - c0, total);
        free(C);
        free(assign);
        return 0;
    }
usage:
    fprintf(stderr, "usage: bench_metrics mmcs [--exact|--gemm] M1 M2 D A.f32 B.f32\n"
                    "       bench_metrics lsa N COST.f64\n");
    return 2;
}
