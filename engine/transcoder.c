/*
 * transcoder.c - synthetic targets, the FLOP count and the chunked
 * evaluation of the transcoder arm (see transcoder.h). The trainer and the
 * per-chunk metrics live in train.c and recon.c (their transcoder mode).
 */
#include "engine/transcoder.h"

#include <string.h>

#include "base/base.h"

int lg_transcoder_synth_target(const lg_synth_config *cfg, uint64_t target_seed, lg_dataset **out, float **e_out)
{
    lg_synth *gen = NULL, *out_dict = NULL;
    lg_synth_config tc;
    float *y = NULL, *xrow = NULL, *coef = NULL;
    int *active = NULL;
    double *acc = NULL;
    const float *E;
    int64_t i;
    int err, d = cfg->d, j, c, n_active;

    *out = NULL;
    if (e_out)
        *e_out = NULL;
    if ((err = lg_synth_new(cfg, &gen)) < 0)
        return err;
    tc = *cfg;
    tc.seed = target_seed; /* E is drawn as D is, from the target's seed */
    if ((err = lg_synth_new(&tc, &out_dict)) < 0)
        goto out;
    E = lg_synth_truth(out_dict);
    if (!(y = lg_malloc((size_t)cfg->n_samples * (size_t)d * sizeof(float))) ||
        !(xrow = lg_malloc((size_t)d * sizeof(float))) || !(coef = lg_malloc((size_t)cfg->n_features * sizeof(float))) ||
        !(active = lg_malloc((size_t)cfg->n_features * sizeof(int))) || !(acc = lg_malloc((size_t)d * sizeof(double)))) {
        err = lg_error_wrap("synthetic target");
        goto out;
    }
    for (i = 0; i < cfg->n_samples; i++) {
        if ((err = lg_synth_row(gen, i, xrow, active, coef, &n_active)) < 0)
            goto out;
        memset(acc, 0, (size_t)d * sizeof(double));
        for (j = 0; j < n_active; j++) {
            const float *e = E + (size_t)active[j] * d;
            for (c = 0; c < d; c++)
                acc[c] += (double)coef[j] * e[c];
        }
        for (c = 0; c < d; c++)
            y[(size_t)i * d + c] = (float)acc[c];
    }
    if ((err = lg_dataset_from_memory(y, cfg->n_samples, d, 1, out)) < 0)
        goto out;
    if (e_out) {
        if (!(*e_out = lg_malloc((size_t)cfg->n_features * (size_t)d * sizeof(float)))) {
            lg_dataset_free(*out);
            *out = NULL;
            err = lg_error_wrap("synthetic target");
            goto out;
        }
        memcpy(*e_out, E, (size_t)cfg->n_features * (size_t)d * sizeof(float));
    }
out:
    lg_free(y);
    lg_free(xrow);
    lg_free(coef);
    lg_free(active);
    lg_free(acc);
    lg_synth_free(gen);
    lg_synth_free(out_dict);
    return err;
}

double lg_transcoder_gemm_flops(int transcoder, int batch, int d, int d_sae)
{
    return (transcoder ? 10.0 : 12.0) * (double)batch * (double)d * (double)d_sae;
}

int lg_transcoder_eval(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w, const float *x,
                       const float *y, long n, double dense_threshold, lg_recon_metrics *out)
{
    return lg_recon_eval_targets(be, cfg, w, x, y, n, dense_threshold, out);
}
