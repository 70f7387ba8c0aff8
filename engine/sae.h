/*
 * sae.h - sparse autoencoder architectures, their configuration and host
 * weights (DESIGN.md section 4).
 *
 * Model, with x a row [d_in] (batch: [B, d_in]):
 *   pre  = (x - b_dec) @ W_enc + b_enc                      [B, d_sae]
 *   acts = f(pre)                                           [B, d_sae]
 *   xhat = acts @ W_dec + b_dec                             [B, d_in]
 * with f per architecture:
 *   RELU        f = max(pre, 0); trained with an L1 penalty on acts.
 *   TOPK        the k largest of each row, ReLU'd; other entries 0.
 *   BATCHTOPK   training: the k*B largest entries of the whole batch (ReLU'd);
 *               inference: pre > threshold ? pre : 0 with one scalar threshold,
 *               the running average of the smallest kept activation.
 *   JUMPRELU    pre > theta_j ? pre : 0, theta_j = exp(log_threshold_j) > 0,
 *               trained through a straight-through estimator (rectangle
 *               kernel, bandwidth) with an L0 penalty.
 *   MATRYOSHKA  BatchTopK, trained with the mean of the reconstruction losses
 *               of nested prefixes of the dictionary (latents [0, p_i)).
 *   HIER_TOPK   ("hierarchical_topk") per-row TopK with k = ks[n_ks-1], trained
 *               with the mean of the reconstruction losses at every budget
 *               k_j of ks (the top-k_j of each row); inference at any budget
 *               k_j is TopK with k = k_j (engine/arch_hier.h).
 * Ties in top-k are broken by the lower index (backend.h).
 *
 * Weights follow SAELens shapes: W_enc [d_in, d_sae], b_enc [d_sae],
 * W_dec [d_sae, d_in] (one row per latent, unit norm), b_dec [d_in],
 * threshold [d_sae] (JumpReLU: theta; BatchTopK/Matryoshka: the scalar
 * inference threshold repeated; ReLU/TopK: zeros, unused).
 */
#ifndef LG_SAE_H
#define LG_SAE_H

#include <stdint.h>

typedef enum {
    LG_ARCH_RELU = 0,
    LG_ARCH_TOPK,
    LG_ARCH_BATCHTOPK,
    LG_ARCH_JUMPRELU,
    LG_ARCH_MATRYOSHKA,
    LG_ARCH_HIER_TOPK,
    LG_ARCH_ROUTESAE /* a TopK SAE over a learned mix of L layers (engine/arch_route.h) */
} lg_arch;

#define LG_SAE_MAX_KS 8 /* HIER_TOPK: most budgets */

typedef struct {
    lg_arch arch;
    int d_in;  /* input width d */
    int d_sae; /* number of latents m */
    int k;     /* TopK / BatchTopK / Matryoshka: active latents per row (mean per row for batch) */
    int n_ks;  /* HIER_TOPK: budgets ks[0] < ... < ks[n_ks-1] = k (0 for the others) */
    int ks[LG_SAE_MAX_KS];
} lg_sae_config;

/* "relu", "topk", "batchtopk", "jumprelu", "matryoshka", "hierarchical_topk",
 * "routesae" (static string). */
const char *lg_arch_name(lg_arch arch);
/* Inverse of lg_arch_name; LG_EINPUT for an unknown name. */
int lg_arch_parse(const char *name, lg_arch *out);
/* d_in, d_sae >= 1; 1 <= k <= d_sae for the top-k architectures; HIER_TOPK:
 * 1 <= n_ks <= LG_SAE_MAX_KS, ks strictly increasing, ks[0] >= 1, ks[n_ks-1]
 * = k. LG_EINPUT naming the field otherwise. */
int lg_sae_config_check(const lg_sae_config *cfg);

/* Host weights. Each array is owned by the struct (lg_malloc'd), freed by
 * lg_sae_weights_release. */
typedef struct {
    int d_in, d_sae;
    float *W_enc;     /* [d_in, d_sae] */
    float *b_enc;     /* [d_sae] */
    float *W_dec;     /* [d_sae, d_in] */
    float *b_dec;     /* [d_in] */
    float *threshold; /* [d_sae] */
    /* ROUTESAE only (NULL otherwise; engine/arch_route.h): the router over
     * L = n_layers layers; the layer count lives here, not in lg_sae_config */
    int n_layers;     /* L */
    float *W_router;  /* [d_in, L] */
    float *b_router;  /* [L] */
} lg_sae_weights;

/* Allocate zeroed arrays of the given shape (out is overwritten, not freed). */
int lg_sae_weights_alloc(lg_sae_weights *out, int d_in, int d_sae);
void lg_sae_weights_release(lg_sae_weights *w); /* accepts NULL and zeroed structs */

/* Initial weights for `seed` (also the untrained random baseline), computed
 * on the host so every backend starts from identical bytes:
 *   W_dec row j = g_j / ||g_j||, g_j ~ N(0, I_d_in), drawn from Philox stream
 *                 (seed, LG_STREAM_INIT): rows in order, d_in normals each
 *                 (lg_rng_normal), normalised in double;
 *   W_enc = W_dec^T;  b_enc = 0;  threshold = 0 (the trainer sets JumpReLU's
 *   initial threshold);  b_dec = the caller's b_dec [d_in] (data mean or
 *   geometric median), or 0 when b_dec is NULL. (ROUTESAE: no router here;
 *   lg_route_init_weights adds it, arch_route.h.)
 * out is allocated here; release with lg_sae_weights_release. */
int lg_sae_init_weights(const lg_sae_config *cfg, uint64_t seed, const float *b_dec,
                        lg_sae_weights *out);

#endif
