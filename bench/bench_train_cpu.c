/*
 * bench_train_cpu.c - CPU training throughput of the engine: TopK SAE,
 * d_in=128, d_sae=1024, k=32, batch 4096 (defaults; argv: steps d_in d_sae k
 * batch). Data: Gaussian rows from base/rng.h, a few distinct batches
 * cycled. Prints one line "samples/s" after warmup steps; compare with
 * bench/bench_train_cpu.py (PyTorch CPU references of the same model and
 * update, which also runs this program interleaved with them) on the same
 * machine. Results: bench/RESULTS.md.
 * Path and threads as in training: the sparse top-k path unless
 * LEDGER_CPU_SPARSE=0 (dense reference), OMP_NUM_THREADS threads (the device
 * string printed at the end names both).
 */
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "base/rng.h"
#include "engine/sae.h"
#include "engine/train.h"

int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 10;
    lg_sae_config cfg = {.arch = LG_ARCH_TOPK, .d_in = argc > 2 ? atoi(argv[2]) : 128,
                         .d_sae = argc > 3 ? atoi(argv[3]) : 1024, .k = argc > 4 ? atoi(argv[4]) : 32};
    lg_train_config tc;
    lg_sae_weights init = {0};
    lg_trainer *t = NULL;
    lg_step_stats st;
    const int n_batches = 4, warm = 2;
    float *x;
    lg_rng rng;
    size_t i, n;
    double t0 = 0.0;
    long s;
    int err;
    lg_train_config_default(&tc);
    tc.batch = argc > 5 ? atoi(argv[5]) : 4096;
    tc.warmup_steps = 100; /* as bench_train_cpu.py */
    tc.dead_after = 1e7;   /* AuxK off in both */
    tc.steps = steps + warm;
    n = (size_t)n_batches * tc.batch * cfg.d_in;
    if (!(x = malloc(n * sizeof(float))))
        return 3;
    lg_rng_init(&rng, 1, LG_STREAM_DATA);
    for (i = 0; i < n; i++)
        x[i] = (float)lg_rng_normal(&rng);
    if ((err = lg_sae_init_weights(&cfg, 1, NULL, &init)) < 0 ||
        (err = lg_trainer_new(lg_backend_cpu(), &cfg, &tc, &init, &t)) < 0)
        goto out;
    for (s = 0; s < warm + steps; s++) {
        if (s == warm)
            t0 = lg_now_seconds();
        if ((err = lg_trainer_step(t, x + (size_t)(s % n_batches) * tc.batch * cfg.d_in, &st)) < 0)
            goto out;
    }
    {
        double dt = lg_now_seconds() - t0;
        printf("engine cpu topk d_in=%d d_sae=%d k=%d batch=%d steps=%ld: %.1f samples/s "
               "(%.1f ms/step, final mse %.4f) on %s\n",
               cfg.d_in, cfg.d_sae, cfg.k, tc.batch, steps, steps * tc.batch / dt,
               1e3 * dt / steps, st.mse, lg_backend_cpu()->device);
    }
out:
    if (err < 0)
        fprintf(stderr, "bench_train_cpu: %s\n", lg_error_msg());
    lg_trainer_free(t);
    lg_sae_weights_release(&init);
    free(x);
    return err < 0 ? 3 : 0;
}
