/*
 * data_synth.c - synthetic data with a ground-truth dictionary (part of
 * data.c; the generative model and its digest are defined in data.h).
 *
 * Holds the config check, the generator (lg_synth: unit-norm dictionary
 * rows drawn from the config's seed, Zipf feature weights when asked), the
 * rows it makes (row i from Philox stream LG_STREAM_DATA + ((i + 1) << 8),
 * so a row is a pure function of the seed and its index) and the synthetic
 * dataset made of them, whose rows are kept in memory. Kept
 * apart from data.c, which handles the files, the reads and the split; the
 * two share struct lg_dataset through data_int.h.
 */
#include "engine/data.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifacts/npy.h"
#include "base/sha256.h"
#include "base/rng.h"
#include "engine/data_int.h"

/* ---- synthetic data ----------------------------------------------------------- */

struct lg_synth {
    lg_synth_config cfg;
    float *truth;  /* [n_features, d], unit rows */
    double *cdf;   /* [n_features] cumulative weights (NULL when uniform) */
};

int lg_synth_row_width(const lg_synth_config *c)
{
    return c->layers > 0 ? c->layers * c->d : c->d;
}

/* Gain of feature f in layer l of layered data (data.h): 1 in its home layer
 * f mod L, layer_leak elsewhere. */
static double layer_gain(const lg_synth_config *c, int l, int f)
{
    return f % c->layers == l ? 1.0 : c->layer_leak;
}

int lg_synth_config_check(const lg_synth_config *c)
{
    double amax;
    if (c->d < 1 || c->d > 65536)
        return lg_error_set(LG_EINPUT, "synthetic: d: %d not in 1..65536", c->d);
    if (c->n_features < 1 || c->n_features > (1 << 24))
        return lg_error_set(LG_EINPUT, "synthetic: n_features: %d not in 1..16777216", c->n_features);
    if ((uint64_t)c->n_features * (uint64_t)c->d > ((uint64_t)1 << 30))
        return lg_error_set(LG_EINPUT, "synthetic: n_features x d = %lld exceeds 2^30",
                            (long long)c->n_features * c->d);
    if (c->layers != 0 && (c->layers < 2 || c->layers > 64))
        return lg_error_set(LG_EINPUT, "synthetic: layers: %d not in 2..64 (0 = not layered)", c->layers);
    if (c->layers > 0 && !(c->layer_leak >= 0.0 && c->layer_leak <= 1.0))
        return lg_error_set(LG_EINPUT, "synthetic: layer_leak: %g not in [0, 1]", c->layer_leak);
    if (c->n_samples < 1 ||
        (uint64_t)c->n_samples * (uint64_t)lg_synth_row_width(c) > ((uint64_t)1 << 31))
        return lg_error_set(LG_EINPUT, "synthetic: n_samples: %lld must be >= 1 with n_samples x d%s <= 2^31",
                            (long long)c->n_samples, c->layers > 0 ? " x layers" : "");
    amax = c->n_features < 512 ? c->n_features : 512;
    if (!(c->active_mean > 0.0 && c->active_mean <= amax))
        return lg_error_set(LG_EINPUT, "synthetic: active_mean: %g not in (0, %g]", c->active_mean, amax);
    if (!(c->zipf_exponent >= 0.0 && c->zipf_exponent <= 100.0))
        return lg_error_set(LG_EINPUT, "synthetic: zipf_exponent: %g not in [0, 100]", c->zipf_exponent);
    if (!(c->magnitude_mean > 0.0 && isfinite(c->magnitude_mean)))
        return lg_error_set(LG_EINPUT, "synthetic: magnitude_mean: %g must be finite and > 0", c->magnitude_mean);
    if (!(c->magnitude_std >= 0.0 && isfinite(c->magnitude_std)))
        return lg_error_set(LG_EINPUT, "synthetic: magnitude_std: %g must be finite and >= 0", c->magnitude_std);
    if (!(c->noise_std >= 0.0 && isfinite(c->noise_std)))
        return lg_error_set(LG_EINPUT, "synthetic: noise_std: %g must be finite and >= 0", c->noise_std);
    return 0;
}

void lg_synth_free(lg_synth *s)
{
    if (!s)
        return;
    lg_free(s->truth);
    lg_free(s->cdf);
    lg_free(s);
}

const float *lg_synth_truth(const lg_synth *s) { return s->truth; }

int lg_synth_new(const lg_synth_config *cfg, lg_synth **out)
{
    lg_synth *s = NULL;
    lg_rng rng;
    double *g = NULL; /* [d] */
    int i, j, d = cfg->d, err;

    *out = NULL;
    if ((err = lg_synth_config_check(cfg)) < 0)
        return err;
    if (!(s = lg_calloc(1, sizeof(*s))) || !(g = lg_malloc((size_t)d * sizeof(double))) ||
        !(s->truth = lg_malloc((size_t)cfg->n_features * (size_t)d * sizeof(float)))) {
        err = LG_ENOMEM;
        goto out;
    }
    s->cfg = *cfg;
    lg_rng_init(&rng, cfg->seed, LG_STREAM_DICT);
    for (i = 0; i < cfg->n_features; i++) {
        double norm;
        do {
            norm = 0.0;
            for (j = 0; j < d; j++) {
                g[j] = lg_rng_normal(&rng);
                norm += g[j] * g[j];
            }
        } while (norm < 1e-30); /* a zero draw is (practically) impossible; redraw if it happens */
        norm = sqrt(norm);
        for (j = 0; j < d; j++)
            s->truth[(size_t)i * d + j] = (float)(g[j] / norm);
    }
    if (cfg->zipf_exponent > 0.0) {
        double acc = 0.0;
        if (!(s->cdf = lg_malloc((size_t)cfg->n_features * sizeof(double)))) {
            err = LG_ENOMEM;
            goto out;
        }
        for (i = 0; i < cfg->n_features; i++) {
            acc += pow((double)(i + 1), -cfg->zipf_exponent);
            s->cdf[i] = acc;
        }
    }
out:
    lg_free(g);
    if (err < 0)
        lg_synth_free(s);
    else
        *out = s;
    return err;
}

/* Poisson(lambda) by inversion (lambda <= 512, so exp(-lambda) > 0). */
static int poisson(lg_rng *r, double lambda)
{
    double p = exp(-lambda), s = p, u = lg_rng_uniform(r);
    int k = 0;
    while (u > s && k < 100000) {
        k++;
        p *= lambda / k;
        s += p;
        if (p == 0.0 && (double)k > lambda)
            break; /* rounding left u above the total mass: stop in the tail */
    }
    return k;
}

static int draw_feature(const lg_synth *s, lg_rng *r)
{
    int lo = 0, hi = s->cfg.n_features - 1;
    double u;
    if (!s->cdf)
        return (int)lg_rng_below(r, (uint64_t)s->cfg.n_features);
    u = lg_rng_uniform(r) * s->cdf[hi];
    while (lo < hi) { /* first index with cdf > u */
        int mid = lo + (hi - lo) / 2;
        if (s->cdf[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int lg_synth_row(const lg_synth *s, int64_t i, float *x, int *active, float *coef, int *n_active)
{
    const lg_synth_config *c = &s->cfg;
    lg_rng rng;
    int *act = active, local_act[64];
    double *acc = NULL; /* [d] */
    int S, k = 0, tries = 0, j, m, err = 0;

    if (i < 0 || i >= c->n_samples)
        return lg_error_set(LG_EINPUT, "synthetic: row %lld out of range [0, %lld)", (long long)i,
                            (long long)c->n_samples);
    if (!(acc = lg_calloc((size_t)lg_synth_row_width(c), sizeof(double)))) /* [d] or [L, d] */
        return LG_ENOMEM;
    lg_rng_init(&rng, c->seed, LG_STREAM_DATA + (((uint64_t)i + 1) << 8));
    S = poisson(&rng, c->active_mean);
    if (S > c->n_features)
        S = c->n_features;
    if (!act && S <= (int)(sizeof(local_act) / sizeof(local_act[0]))) {
        act = local_act;
    } else if (!act && !(act = lg_malloc((size_t)S * sizeof(int)))) {
        err = LG_ENOMEM;
        goto out;
    }
    while (k < S) {
        int f = draw_feature(s, &rng), dup = 0;
        double cj;
        for (m = 0; m < k; m++)
            if (act[m] == f) {
                dup = 1;
                break;
            }
        if (dup) {
            if (++tries > 64 * (S + 1))
                break;
            continue;
        }
        cj = fabs(c->magnitude_mean + c->magnitude_std * lg_rng_normal(&rng));
        act[k] = f;
        if (coef)
            coef[k] = (float)cj;
        k++;
        if (c->layers > 0) { /* layer l sees c_j g_{l,j} D_j (data.h, layered data) */
            int l;
            for (l = 0; l < c->layers; l++) {
                double cl = cj * layer_gain(c, l, f);
                for (j = 0; j < c->d; j++)
                    acc[(size_t)l * c->d + j] += cl * s->truth[(size_t)f * c->d + j];
            }
        } else
            for (j = 0; j < c->d; j++)
                acc[j] += cj * s->truth[(size_t)f * c->d + j];
    }
    for (j = 0; j < lg_synth_row_width(c); j++) { /* layered: layer 0's noise first, then layer 1's, ... */
        if (c->noise_std > 0.0)
            acc[j] += c->noise_std * lg_rng_normal(&rng);
        x[j] = (float)acc[j];
    }
    if (n_active)
        *n_active = k;
out:
    if (act != active && act != local_act)
        lg_free(act);
    lg_free(acc);
    return err;
}

int lg_dataset_synthetic(const lg_synth_config *cfg, lg_dataset **out, float **truth_out)
{
    lg_dataset *ds = NULL;
    lg_synth *s = NULL;
    float *truth = NULL;
    int64_t i;
    int err;

    *out = NULL;
    if (truth_out)
        *truth_out = NULL;
    if ((err = lg_synth_new(cfg, &s)) < 0)
        return err;
    if ((err = data_ds_new(DS_SYNTH, &ds)) < 0)
        goto out;
    ds->synth = *cfg;
    ds->n = cfg->n_samples;
    ds->d = lg_synth_row_width(cfg);
    ds->layers = cfg->layers;
    ds->dtype = LG_DT_F32;
    if (!(ds->owned = lg_malloc((size_t)ds->n * (size_t)ds->d * sizeof(float)))) { /* [n, d] */
        err = LG_ENOMEM;
        goto out;
    }
    ds->rows = (const unsigned char *)ds->owned;
    {   /* rows are independent (one RNG stream each): large sets over the OpenMP
         * threads; a failed row is redone here for its message */
        int64_t bad = -1, r;
#pragma omp parallel for schedule(dynamic, 1024) if (ds->n >= 65536)
        for (r = 0; r < ds->n; r++)
            if (lg_synth_row(s, r, ds->owned + (size_t)r * (size_t)ds->d, NULL, NULL, NULL) < 0) {
#pragma omp critical(lg_synth_bad)
                if (bad < 0 || r < bad)
                    bad = r;
            }
        if (bad >= 0 && (err = lg_synth_row(s, bad, ds->owned + (size_t)bad * (size_t)ds->d, NULL, NULL, NULL)) < 0)
            goto out;
        for (i = bad + 1; bad >= 0 && i < ds->n; i++) /* (rows after it may have failed too) */
            if ((err = lg_synth_row(s, i, ds->owned + (size_t)i * (size_t)ds->d, NULL, NULL, NULL)) < 0)
                goto out;
    }
    if (truth_out) {
        size_t bytes = (size_t)cfg->n_features * (size_t)cfg->d * sizeof(float);
        if (!(truth = lg_malloc(bytes))) {
            err = LG_ENOMEM;
            goto out;
        }
        memcpy(truth, s->truth, bytes);
    }
out:
    lg_synth_free(s);
    if (err < 0) {
        lg_dataset_free(ds);
        lg_free(truth);
    } else {
        *out = ds;
        if (truth_out)
            *truth_out = truth;
    }
    return err;
}
