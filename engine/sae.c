/*
 * sae.c - architecture names, configuration checks, host weights and their
 * seeded initialisation (formulas in sae.h). Initialisation draws in a fixed
 * order from one Philox stream and normalises in double, so a seed names one
 * set of bytes on every machine and backend.
 */
#include "engine/sae.h"

#include <math.h>
#include <string.h>

#include "base/base.h"
#include "base/rng.h"
#include "engine/arch_hier.h"

static const char *const arch_names[] = {"relu",       "topk",      "batchtopk", "jumprelu",
                                         "matryoshka", "hierarchical_topk", "routesae"};

const char *lg_arch_name(lg_arch arch)
{
    if ((int)arch < 0 || (size_t)arch >= sizeof(arch_names) / sizeof(arch_names[0]))
        return "unknown";
    return arch_names[arch];
}

int lg_arch_parse(const char *name, lg_arch *out)
{
    size_t i;
    for (i = 0; i < sizeof(arch_names) / sizeof(arch_names[0]); i++)
        if (name && strcmp(name, arch_names[i]) == 0) {
            *out = (lg_arch)i;
            return 0;
        }
    return lg_error_set(LG_EINPUT,
                        "architecture '%s': unknown (expected relu, topk, batchtopk, jumprelu, "
                        "matryoshka, hierarchical_topk or routesae)",
                        name ? name : "(null)");
}

int lg_sae_config_check(const lg_sae_config *cfg)
{
    if ((int)cfg->arch < LG_ARCH_RELU || cfg->arch > LG_ARCH_ROUTESAE)
        return lg_error_set(LG_EINPUT, "sae config: arch: unknown value %d", (int)cfg->arch);
    if (cfg->d_in < 1)
        return lg_error_set(LG_EINPUT, "sae config: d_in: must be >= 1 (got %d)", cfg->d_in);
    if (cfg->d_sae < 1)
        return lg_error_set(LG_EINPUT, "sae config: d_sae: must be >= 1 (got %d)", cfg->d_sae);
    if ((cfg->arch == LG_ARCH_TOPK || cfg->arch == LG_ARCH_BATCHTOPK ||
         cfg->arch == LG_ARCH_MATRYOSHKA || cfg->arch == LG_ARCH_HIER_TOPK ||
         cfg->arch == LG_ARCH_ROUTESAE) &&
        (cfg->k < 1 || cfg->k > cfg->d_sae))
        return lg_error_set(LG_EINPUT, "sae config: k: must be in [1, d_sae=%d] (got %d)",
                            cfg->d_sae, cfg->k);
    if (cfg->arch == LG_ARCH_HIER_TOPK)
        return lg_hier_config_check(cfg);
    return 0;
}

int lg_sae_weights_alloc(lg_sae_weights *out, int d_in, int d_sae)
{
    size_t dm = (size_t)d_in * d_sae;
    memset(out, 0, sizeof(*out));
    out->d_in = d_in;
    out->d_sae = d_sae;
    out->W_enc = lg_calloc(dm, sizeof(float));
    out->b_enc = lg_calloc((size_t)d_sae, sizeof(float));
    out->W_dec = lg_calloc(dm, sizeof(float));
    out->b_dec = lg_calloc((size_t)d_in, sizeof(float));
    out->threshold = lg_calloc((size_t)d_sae, sizeof(float));
    if (!out->W_enc || !out->b_enc || !out->W_dec || !out->b_dec || !out->threshold) {
        lg_sae_weights_release(out);
        return lg_error_wrap("allocating SAE weights [%d x %d]", d_in, d_sae);
    }
    return 0;
}

void lg_sae_weights_release(lg_sae_weights *w)
{
    if (!w)
        return;
    lg_free(w->W_enc);
    lg_free(w->b_enc);
    lg_free(w->W_dec);
    lg_free(w->b_dec);
    lg_free(w->threshold);
    lg_free(w->W_router);
    lg_free(w->b_router);
    memset(w, 0, sizeof(*w));
}

int lg_sae_init_weights(const lg_sae_config *cfg, uint64_t seed, const float *b_dec,
                        lg_sae_weights *out)
{
    lg_rng rng;
    double *g = NULL; /* [d_in] one row of normals */
    int d = cfg->d_in, m = cfg->d_sae, i, j, err;
    memset(out, 0, sizeof(*out));
    if ((err = lg_sae_config_check(cfg)) < 0)
        return err;
    if ((err = lg_sae_weights_alloc(out, d, m)) < 0)
        return err;
    if (!(g = lg_malloc((size_t)d * sizeof(double)))) {
        err = lg_error_wrap("initialising SAE weights");
        goto out;
    }
    lg_rng_init(&rng, seed, LG_STREAM_INIT);
    for (j = 0; j < m; j++) {
        double ss = 0.0, inv;
        for (i = 0; i < d; i++) {
            g[i] = lg_rng_normal(&rng);
            ss += g[i] * g[i];
        }
        inv = ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
        for (i = 0; i < d; i++) {
            float w = (float)(g[i] * inv);
            out->W_dec[(size_t)j * d + i] = w; /* W_dec [m, d] */
            out->W_enc[(size_t)i * m + j] = w; /* W_enc [d, m] = W_dec^T */
        }
    }
    if (b_dec)
        memcpy(out->b_dec, b_dec, (size_t)d * sizeof(float));
    err = 0;
out:
    lg_free(g);
    if (err < 0)
        lg_sae_weights_release(out);
    return err;
}
