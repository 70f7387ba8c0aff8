/*
 * bench_gpu_train.c - benchmark driver for the engine's backends (issue 4):
 * trains SAEs with engine/train.h on a chosen backend and prints one JSON
 * object per measurement on stdout, for bench/gpu-check.sh and
 * bench/gpu/compare.py.
 *
 *   bench_gpu_train train [--backend cpu|cuda|auto] [--arch topk] [--d 128]
 *       [--m 1024] [--k 32] [--batch 4096] [--steps 50] [--warmup 5]
 *       [--seeds 1] [--batched 0|1] [--sparse 0|1] [--data X.npy]
 *     Per seed: init (engine/sae.h, seed = 1..S), `warmup` untimed steps,
 *     then `steps` timed steps (each step ends with host-returned reductions,
 *     so the clock sees finished work). Prints per-seed samples/s and, for
 *     S > 1, the total wall time of the S sequential runs (init included).
 *     --batched 1 (S > 1): then the same S seeds again in ONE multi-seed
 *     trainer (train.h, lg_trainer_step_multi: gemm_batched over the seeds),
 *     same init, batches, warmup and steps, timed the same way (init
 *     included); prints its total time, the speedup over the sequential
 *     total, and the largest difference of a seed's final loss between the
 *     two (0 on the CPU backend, where they are bit-identical).
 *     --sparse 0: the backend's dense training path (its sparse op group
 *     NULL, as with LEDGER_CUDA_SPARSE=0 / LEDGER_CPU_SPARSE=0); --sparse 1:
 *     the sparse path, an error (exit 2) when the backend has none; default:
 *     the backend as configured. Every train line says which path ran:
 *     "decode": "sparse" or "dense" (TopK, BatchTopK, Matryoshka train
 *     sparse when the backend has the group; ReLU and JumpReLU always dense).
 *     Batches cycle through the rows of --data ([n, d] float32 .npy, the same
 *     file the PyTorch reference reads), else 4 batches of N(0,1) data.
 *   bench_gpu_train gemm [--backend cuda] [--n 8192] [--reps 10]
 *     Measured SGEMM peak: n x n x n GEMMs through the backend, TFLOP/s.
 *   bench_gpu_train mmcs [--m 65536] [--d 2304] [--data-a A.npy --data-b B.npy]
 *     Cross-seed MMCS of two [m, d] dictionaries on the GPU (kernels/cuda.h).
 *
 * Exit codes: 0 ok, 2 usage, 3 failure, 77 when the CUDA backend is asked
 * for and there is no GPU (printing "skipped: no GPU").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "artifacts/npy.h"
#include "engine/backend.h"
#include "base/rng.h"
#include "engine/sae.h"
#include "engine/train.h"
#ifdef LEDGER_HAVE_CUDA
#include "kernels/cuda.h"
#endif

typedef struct {
    const char *mode, *backend, *arch, *data, *data_a, *data_b;
    int d, m, k, batch, seeds, n, reps, batched, sparse; /* sparse: -1 default, 0, 1 */
    long steps, warmup;
} bench_opts;

static int usage(void)
{
    fprintf(stderr, "usage: bench_gpu_train train|gemm|mmcs [--backend B] [--arch A] [--d D] "
                    "[--m M] [--k K] [--batch B] [--steps S] [--warmup W] [--seeds N] [--batched 0|1] "
                    "[--sparse 0|1] [--data X.npy] [--n N] [--reps R] [--data-a A.npy --data-b B.npy]\n");
    return 2;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_gpu_train: %s: %s\n", what, lg_error_msg());
    return 3;
}

static int get_backend(const char *name, const lg_backend **out)
{
    if (lg_backend_get(name, out) < 0) {
        if (strcmp(name, "cuda") == 0) {
            printf("skipped: no GPU (%s)\n", lg_error_msg());
            return 77;
        }
        return fail("backend");
    }
    return 0;
}

/* The backend with the sparse op group set as --sparse asks (o->sparse < 0:
 * as it is). Returns 0, or 2 (usage) when --sparse 1 meets a backend
 * without the group. */
static int choose_path(const bench_opts *o, const lg_backend **be)
{
    static lg_backend dense; /* a copy of the table without the sparse group */
    if (o->sparse == 1 && !(*be)->topk_rows_csr) {
        fprintf(stderr, "bench_gpu_train: --sparse 1: the %s backend has no sparse ops "
                        "(LEDGER_CUDA_SPARSE=0 or LEDGER_CPU_SPARSE=0 set?)\n", (*be)->name);
        return 2;
    }
    if (o->sparse == 0 && (*be)->topk_rows_csr) {
        dense = **be;
        dense.topk_rows_csr = NULL;
        dense.topk_batch_csr = NULL;
        dense.csr_transpose = NULL;
        dense.csr_gather_rows = NULL;
        dense.csr_row_dots = NULL;
        dense.csc_scatter_rows = NULL;
        dense.csc_val_sum = NULL;
        dense.csc_fired_update = NULL;
        *be = &dense;
    }
    return 0;
}

/* "sparse" or "dense": the path the trainer takes (engine/train.c's rule) */
static const char *decode_path(const lg_backend *be, lg_arch arch)
{
    return be->topk_rows_csr && arch != LG_ARCH_RELU && arch != LG_ARCH_JUMPRELU ? "sparse" : "dense";
}

static char *json_escape(const char *s, char *buf, size_t n)
{
    size_t j = 0;
    for (; *s && j + 2 < n; s++) {
        if (*s == '"' || *s == '\\')
            buf[j++] = '\\';
        buf[j++] = *s;
    }
    buf[j] = '\0';
    return buf;
}

/* The S seeds of run_train in one multi-seed trainer. seq_loss [S]: each
 * seed's final loss in the sequential runs; seq_total: their total time. */
static int run_train_batched(const bench_opts *o, const lg_backend *be, const lg_sae_config *cfg,
                             const lg_train_config *tc, const float *data, int64_t rows,
                             const double *seq_loss, double seq_total)
{
    const int S = o->seeds;
    const size_t Bd = (size_t)o->batch * o->d;
    const int64_t nb = rows / o->batch;
    lg_sae_weights *init = NULL;
    lg_trainer *t = NULL;
    lg_step_stats *st = NULL;
    float *blocks = NULL; /* [nb, S, B, d]: block i = batch i for every seed, as run_train feeds them */
    double t0, t_steps0 = 0, total, dt, maxdiff = 0;
    int64_t i;
    long s;
    int err = 0, j;
    char esc[512];

    if (!(init = calloc((size_t)S, sizeof(*init))) || !(st = calloc((size_t)S, sizeof(*st))) ||
        !(blocks = malloc((size_t)nb * S * Bd * sizeof(float))))
        goto nomem;
    for (i = 0; i < nb; i++)
        for (j = 0; j < S; j++)
            memcpy(blocks + ((size_t)i * S + j) * Bd, data + (size_t)i * Bd, Bd * sizeof(float));
    t0 = lg_now_seconds();
    for (j = 0; j < S && err >= 0; j++)
        err = lg_sae_init_weights(cfg, (uint64_t)(j + 1), NULL, &init[j]);
    if (err >= 0)
        err = lg_trainer_new_multi(be, cfg, tc, init, S, &t);
    for (s = 0; err >= 0 && s < o->warmup + o->steps; s++) {
        if (s == o->warmup) {
            if ((err = be->sync(be)) < 0)
                break;
            t_steps0 = lg_now_seconds();
        }
        err = lg_trainer_step_multi(t, blocks + (size_t)(s % nb) * S * Bd, st);
    }
    if (err >= 0)
        err = be->sync(be);
    total = lg_now_seconds() - t0;
    dt = lg_now_seconds() - t_steps0;
    if (err < 0)
        goto out;
    for (j = 0; j < S; j++)
        if (fabs(st[j].loss - seq_loss[j]) > maxdiff)
            maxdiff = fabs(st[j].loss - seq_loss[j]);
    printf("{\"bench\": \"train_seeds_batched\", \"backend\": \"%s\", \"device\": \"%s\", "
           "\"arch\": \"%s\", \"decode\": \"%s\", \"d\": %d, \"m\": %d, \"k\": %d, \"batch\": %d, \"seeds\": %d, "
           "\"steps_per_seed\": %ld, \"warmup_per_seed\": %ld, \"total_seconds\": %.6f, "
           "\"samples_per_s\": %.1f, \"ms_per_step\": %.4f, \"sequential_total_seconds\": %.6f, "
           "\"speedup_vs_sequential\": %.3f, \"max_final_loss_diff_vs_sequential\": %.6g}\n",
           be->name, json_escape(be->device, esc, sizeof(esc)), o->arch, decode_path(be, cfg->arch), o->d,
           o->m, o->k, o->batch, S, o->steps, o->warmup, total, (double)o->steps * o->batch * S / dt,
           1e3 * dt / (double)o->steps, seq_total, seq_total / total, maxdiff);
    fflush(stdout);
    goto out;
nomem:
    err = lg_error_set(LG_ENOMEM, "out of memory");
out:
    lg_trainer_free(t);
    for (j = 0; init && j < S; j++)
        lg_sae_weights_release(&init[j]);
    free(init);
    free(st);
    free(blocks);
    return err;
}

static int run_train(const bench_opts *o)
{
    const lg_backend *be = NULL;
    lg_sae_config cfg;
    lg_train_config tc;
    float *data = NULL;
    int64_t rows;
    double t_all0, t_all, sps_sum = 0.0, *final_loss = NULL;
    int err = 0, seed, rc;
    char esc[512];

    if ((rc = get_backend(o->backend, &be)) != 0 || (rc = choose_path(o, &be)) != 0)
        return rc;
    memset(&cfg, 0, sizeof(cfg));
    if (lg_arch_parse(o->arch, &cfg.arch) < 0)
        return fail("--arch");
    cfg.d_in = o->d;
    cfg.d_sae = o->m;
    cfg.k = o->k;
    lg_train_config_default(&tc);
    tc.batch = o->batch;
    tc.steps = o->warmup + o->steps;
    tc.warmup_steps = 10;
    tc.l1_coeff = 5.0;  /* the figures in bench/RESULTS.md were taken with these */
    tc.dead_after = 1e7;
    if (lg_sae_config_check(&cfg) < 0 || lg_train_config_check(&tc, &cfg) < 0) {
        fprintf(stderr, "bench_gpu_train: %s\n", lg_error_msg());
        return 2;
    }
    if (o->data) {
        lg_npy_info info;
        if (lg_npy_read_f32(o->data, &data, &info) < 0)
            return fail(o->data);
        if (info.ndim != 2 || info.shape[1] != o->d || info.shape[0] < o->batch) {
            fprintf(stderr, "bench_gpu_train: %s: want [>= %d, %d]\n", o->data, o->batch, o->d);
            lg_free(data);
            return 2;
        }
        rows = info.shape[0];
    } else {
        lg_rng r;
        int64_t i;
        rows = (int64_t)4 * o->batch;
        if (!(data = lg_malloc((size_t)rows * o->d * sizeof(float))))
            return fail("data");
        lg_rng_init(&r, 7, LG_STREAM_DATA);
        for (i = 0; i < rows * o->d; i++)
            data[i] = (float)lg_rng_normal(&r);
    }

    if (!(final_loss = calloc((size_t)o->seeds, sizeof(double)))) {
        lg_free(data);
        return fail("train");
    }
    t_all0 = lg_now_seconds();
    for (seed = 1; seed <= o->seeds && err >= 0; seed++) {
        lg_sae_weights init;
        lg_trainer *t = NULL;
        lg_step_stats st;
        int64_t nb = rows / o->batch;
        double t0 = 0, dt;
        long s;
        memset(&st, 0, sizeof(st));
        if ((err = lg_sae_init_weights(&cfg, (uint64_t)seed, NULL, &init)) < 0)
            break;
        err = lg_trainer_new(be, &cfg, &tc, &init, &t);
        lg_sae_weights_release(&init);
        for (s = 0; err >= 0 && s < o->warmup + o->steps; s++) {
            if (s == o->warmup) {
                if ((err = be->sync(be)) < 0)
                    break;
                t0 = lg_now_seconds();
            }
            err = lg_trainer_step(t, data + (size_t)(s % nb) * o->batch * o->d, &st);
        }
        if (err >= 0)
            err = be->sync(be);
        dt = lg_now_seconds() - t0;
        lg_trainer_free(t);
        if (err < 0)
            break;
        final_loss[seed - 1] = st.loss;
        sps_sum += (double)o->steps * o->batch / dt;
        printf("{\"bench\": \"train\", \"backend\": \"%s\", \"device\": \"%s\", \"arch\": \"%s\", "
               "\"decode\": \"%s\", \"d\": %d, \"m\": %d, \"k\": %d, \"batch\": %d, \"seed\": %d, \"steps\": %ld, "
               "\"seconds\": %.6f, \"samples_per_s\": %.1f, \"ms_per_step\": %.4f, "
               "\"final_loss\": %.8g, \"final_fvu\": %.6g, \"final_l0\": %.4f}\n",
               be->name, json_escape(be->device, esc, sizeof(esc)), o->arch, decode_path(be, cfg.arch),
               o->d, o->m, o->k, o->batch, seed, o->steps, dt, (double)o->steps * o->batch / dt,
               1e3 * dt / (double)o->steps, st.loss, st.fvu, st.l0);
        fflush(stdout);
    }
    t_all = lg_now_seconds() - t_all0;
    if (err < 0) {
        lg_free(data);
        free(final_loss);
        return fail("train");
    }
    if (o->seeds > 1)
        printf("{\"bench\": \"train_seeds_sequential\", \"backend\": \"%s\", \"decode\": \"%s\", "
               "\"seeds\": %d, \"steps_per_seed\": %ld, \"warmup_per_seed\": %ld, \"total_seconds\": %.6f, "
               "\"mean_samples_per_s\": %.1f}\n",
               be->name, decode_path(be, cfg.arch), o->seeds, o->steps, o->warmup, t_all,
               sps_sum / o->seeds);
    fflush(stdout);
    if (o->seeds > 1 && o->batched)
        err = run_train_batched(o, be, &cfg, &tc, data, rows, final_loss, t_all);
    lg_free(data);
    free(final_loss);
    return err < 0 ? fail("train (batched)") : 0;
}

static int run_gemm(const bench_opts *o)
{
    const lg_backend *be = NULL;
    float *A = NULL, *B = NULL, *C = NULL;
    size_t nn = (size_t)o->n * o->n;
    double t0, dt, tflops;
    int rc, r, err;
    if ((rc = get_backend(o->backend, &be)) != 0)
        return rc;
    if ((err = be->alloc(be, nn, &A)) < 0 || (err = be->alloc(be, nn, &B)) < 0 ||
        (err = be->alloc(be, nn, &C)) < 0 || (err = be->fill(be, A, 0.5f, nn)) < 0 ||
        (err = be->fill(be, B, 0.25f, nn)) < 0)
        goto out;
    /* one untimed call (library warm-up), then reps timed */
    if ((err = be->gemm(be, 0, 0, o->n, o->n, o->n, 1.0f, A, o->n, B, o->n, 0.0f, C, o->n)) < 0 ||
        (err = be->sync(be)) < 0)
        goto out;
    t0 = lg_now_seconds();
    for (r = 0; r < o->reps && err >= 0; r++)
        err = be->gemm(be, 0, 0, o->n, o->n, o->n, 1.0f, A, o->n, B, o->n, 0.0f, C, o->n);
    if (err >= 0)
        err = be->sync(be);
    dt = lg_now_seconds() - t0;
    if (err < 0)
        goto out;
    tflops = 2.0 * o->n * (double)o->n * o->n * o->reps / dt / 1e12;
    printf("{\"bench\": \"sgemm_peak\", \"backend\": \"%s\", \"n\": %d, \"reps\": %d, "
           "\"seconds\": %.6f, \"tflops\": %.3f}\n",
           be->name, o->n, o->reps, dt, tflops);
out:
    be->free(be, A);
    be->free(be, B);
    be->free(be, C);
    return err < 0 ? fail("gemm") : 0;
}

static int run_mmcs(const bench_opts *o)
{
#ifdef LEDGER_HAVE_CUDA
    float *A = NULL, *B = NULL;
    int m1 = o->m, m2 = o->m, d = o->d, err = 0;
    double ab = 0, ba = 0, t0, dt;
    if (!lg_backend_cuda()) {
        printf("skipped: no GPU (%s)\n", lg_cuda_unavailable_reason());
        return 77;
    }
    if (o->data_a && o->data_b) {
        lg_npy_info ia, ib;
        if (lg_npy_read_f32(o->data_a, &A, &ia) < 0 || lg_npy_read_f32(o->data_b, &B, &ib) < 0 ||
            ia.ndim != 2 || ib.ndim != 2 || ia.shape[1] != ib.shape[1]) {
            lg_free(A);
            lg_free(B);
            return fail("mmcs: reading dictionaries");
        }
        m1 = (int)ia.shape[0];
        m2 = (int)ib.shape[0];
        d = (int)ia.shape[1];
    } else {
        lg_rng r;
        size_t i;
        A = lg_malloc((size_t)m1 * d * sizeof(float));
        B = lg_malloc((size_t)m2 * d * sizeof(float));
        if (!A || !B) {
            lg_free(A);
            lg_free(B);
            return fail("mmcs");
        }
        lg_rng_init(&r, 3, LG_STREAM_INIT);
        for (i = 0; i < (size_t)m1 * d; i++)
            A[i] = (float)lg_rng_normal(&r);
        for (i = 0; i < (size_t)m2 * d; i++)
            B[i] = (float)lg_rng_normal(&r);
    }
    /* first call includes cuBLAS/context warm-up; time the second */
    err = lg_cuda_dict_mmcs(A, m1 < 256 ? m1 : 256, B, m2 < 256 ? m2 : 256, d, 0, &ab, &ba, NULL,
                            NULL);
    t0 = lg_now_seconds();
    if (err >= 0)
        err = lg_cuda_dict_mmcs(A, m1, B, m2, d, 0, &ab, &ba, NULL, NULL);
    dt = lg_now_seconds() - t0;
    lg_free(A);
    lg_free(B);
    if (err < 0)
        return fail("mmcs");
    printf("{\"bench\": \"mmcs\", \"backend\": \"cuda\", \"m1\": %d, \"m2\": %d, \"d\": %d, "
           "\"seconds\": %.6f, \"mmcs\": %.9f, \"mmcs_ab\": %.9f, \"mmcs_ba\": %.9f, "
           "\"includes\": \"host-to-device copies, normalisation, GEMM tiles, maxima\"}\n",
           m1, m2, d, dt, (ab + ba) / 2, ab, ba);
    return 0;
#else
    printf("skipped: no GPU (built without CUDA)\n");
    return 77;
#endif
}

int main(int argc, char **argv)
{
    bench_opts o = {NULL, "auto", "topk", NULL, NULL, NULL, 128, 1024, 32, 4096, 1, 8192, 10, 0,
                    -1, 50, 5};
    int i;
    if (argc < 2)
        return usage();
    o.mode = argv[1];
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
        if (!v)
            return usage();
        i++;
        if (strcmp(a, "--backend") == 0)
            o.backend = v;
        else if (strcmp(a, "--arch") == 0)
            o.arch = v;
        else if (strcmp(a, "--data") == 0)
            o.data = v;
        else if (strcmp(a, "--data-a") == 0)
            o.data_a = v;
        else if (strcmp(a, "--data-b") == 0)
            o.data_b = v;
        else if (lg_parse_long(v, &x) < 0 || x < 0 || x > (1L << 30))
            return usage();
        else if (strcmp(a, "--d") == 0)
            o.d = (int)x;
        else if (strcmp(a, "--m") == 0)
            o.m = (int)x;
        else if (strcmp(a, "--k") == 0)
            o.k = (int)x;
        else if (strcmp(a, "--batch") == 0)
            o.batch = (int)x;
        else if (strcmp(a, "--steps") == 0)
            o.steps = x;
        else if (strcmp(a, "--warmup") == 0)
            o.warmup = x;
        else if (strcmp(a, "--seeds") == 0)
            o.seeds = (int)x;
        else if (strcmp(a, "--n") == 0)
            o.n = (int)x;
        else if (strcmp(a, "--reps") == 0)
            o.reps = (int)x;
        else if (strcmp(a, "--batched") == 0)
            o.batched = (int)x;
        else if (strcmp(a, "--sparse") == 0 && x <= 1)
            o.sparse = (int)x;
        else
            return usage();
    }
    if (o.steps < 1 || o.seeds < 1 || o.batch < 1 || o.n < 1 || o.reps < 1)
        return usage();
    if (strcmp(o.mode, "train") == 0)
        return run_train(&o);
    if (strcmp(o.mode, "gemm") == 0)
        return run_gemm(&o);
    if (strcmp(o.mode, "mmcs") == 0)
        return run_mmcs(&o);
    return usage();
}
