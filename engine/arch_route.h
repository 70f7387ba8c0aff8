/*
 * arch_route.h - RouteSAE (sae.arch "routesae"): one shared TopK dictionary
 * over the activations of L layers, fed a learned, per-row mix of the layers
 * (after Shi et al. 2025, "Route Sparse Autoencoder to Interpret Large
 * Language Models", with soft routing; engine/README.md "RouteSAE").
 *
 * Model, for one input row X [L, d] (layer l's activation x_l = X[l, :]):
 *   p    = (1/L) sum_l x_l                                  [d]   pooled input
 *   z    = p @ W_router + b_router                          [L]   router logits
 *   r    = softmax(z)                                       [L]   layer weights
 *   u    = sum_l r_l x_l                                    [d]   routed input
 *   pre  = (u - b_dec) @ W_enc + b_enc                      [d_sae]
 *   acts = TopK(pre): the k largest entries (ties to the lower index), ReLU'd
 *   uhat = acts @ W_dec + b_dec                             [d]
 * What is reconstructed is the routed input u (the target moves with the
 * router). Training loss of a batch of B rows:
 *   loss = mse + aux,  mse = (1/B) sum_b ||uhat_b - u_b||^2
 * and its gradient flows through both uses of u (the encoder input and the
 * target) into the router. aux is train.h's AuxK with x := u: latents dead
 * before the step (not fired for max(1, ceil(dead_after / B)) steps),
 * e = u - uhat held constant, ehat = aux_acts @ W_dec with aux_acts the top
 * min(aux_k or d/2, n_dead) pre-activations among the dead latents (ReLU'd),
 * aux = aux_coeff * sum_b ||ehat_b - e_b||^2 / sum_b ||e_b - mean(e)||^2
 * (0 when nothing is dead or the denominator is 0); its gradient reaches
 * W_dec, W_enc, b_enc and, through the encoder input u - b_dec, b_dec and
 * the router. Metrics (lg_route_eval): mse, fvu, explained
 * variance, l0, dead_frac, dense_frac as in recon.h with x := u (so FVU is
 * against the routed target, with mu the mean of u over the evaluated rows),
 * plus the router's mean weight per layer and its mean entropy.
 *
 * Parameters: W_enc [d, d_sae], b_enc [d_sae], W_dec [d_sae, d] (unit rows),
 * b_dec [d], W_router [d, L], b_router [L]. Initialisation: the SAE part as
 * sae.h (b_dec = the caller's, the mean of u at init: the mean over training
 * rows and layers of x_l); W_router = 0, b_router = 0 (uniform routing 1/L).
 *
 * Update of one step: exactly train.h's steps 1-5 over the six parameters
 * (W_dec row-gradient projection, global norm clipping over all six, Adam
 * with bias correction and the same learning-rate schedule, decoder row
 * renormalisation), then step 6, the dead-latent clocks (a latent with a
 * non-zero activation in the batch resets to 0, the others count one more
 * step). Not supported: b_dec_init "median" (lg_route_cell_config).
 *
 * Arithmetic: parameters and Adam moments are float32; every intermediate
 * (router, u, pre-activations, reconstruction) and every gradient is float64,
 * summed in a fixed order. Rows are processed in parallel (OpenMP) only
 * where each output belongs to one row; gradient sums over rows run in row
 * order on one thread. The result is bit-identical run to run and at any
 * thread count. The trainer runs on the host only: no backend implements it
 * (the CUDA backend refuses it, see run.c).
 */
#ifndef LG_ARCH_ROUTE_H
#define LG_ARCH_ROUTE_H

#include "engine/recon.h"
#include "engine/sae.h"
#include "engine/train.h"

/* Allocate w->W_router [w->d_in, n_layers] and w->b_router [n_layers], zeroed,
 * and set w->n_layers (w's other arrays untouched; freed by
 * lg_sae_weights_release). */
int lg_route_alloc_router(lg_sae_weights *w, int n_layers);

/* cfg must be ROUTESAE and valid (tc may be NULL). LG_EINPUT naming the field. */
int lg_route_check(const lg_sae_config *cfg, const lg_train_config *tc);

/* The layer count L is not part of lg_sae_config: the weights carry it
 * (lg_sae_weights.n_layers, with W_router [d_in, L] and b_router [L]); the
 * trainer takes it from its initial weights. */

/* 0 when be can run a routesae condition (only "cpu"; be NULL: 0), else
 * LG_EINPUT naming the backend. lg_study_execute checks every condition
 * with it before any data is read. */
struct lg_backend;
int lg_route_check_backend(const struct lg_backend *be);

/* For a study cell (engine/run.c): cfg was filled with d_in = the data's row
 * width; with `layers` = lg_dataset_layers of the data (0: 2-D data) it
 * becomes d_in = width / L. Refused with LG_EINPUT and a
 * message naming the spec key: layered data with another arch, routesae on
 * 2-D data, a backend other than "cpu" (backend may be NULL: not checked),
 * b_dec_init median (b_dec_init == 1), data.ood (has_ood). */
int lg_route_cell_config(lg_sae_config *cfg, const lg_train_config *tc, int layers, int b_dec_init, int has_ood,
                         const char *backend);
/* Initial weights (sae.h's, plus a zero router over n_layers >= 1 layers)
 * with b_dec = the mean over layers of row_mean [L * d_in] (the data's
 * per-column mean; NULL: b_dec = 0). */
int lg_route_init_weights(const lg_sae_config *cfg, int n_layers, uint64_t seed, const float *row_mean,
                          lg_sae_weights *out);

typedef struct lg_route_trainer lg_route_trainer;

/* Copies cfg, tc and init (shape of cfg, with its router). Free with
 * lg_route_trainer_free. */
int lg_route_trainer_new(const lg_sae_config *cfg, const lg_train_config *tc, const lg_sae_weights *init,
                         lg_route_trainer **out);
/* One step on batch, host [tc->batch, L * d] (row b is X_b [L, d] row-major).
 * out may be NULL (fields as train.h; sparsity 0, threshold -1).
 * LG_EDIVERGED naming the step when the loss is NaN/Inf (nothing changes). */
int lg_route_trainer_step(lg_route_trainer *t, const float *batch, lg_step_stats *out);
/* Forward + backward only (no update, no step count); then get_grads copies
 * the raw float64 gradients (before projection and clipping) as float32 into
 * a weights-shaped struct with the router (allocated here). */
int lg_route_trainer_compute_grads(lg_route_trainer *t, const float *batch, lg_step_stats *out);
int lg_route_trainer_get_grads(const lg_route_trainer *t, lg_sae_weights *out);
/* The current weights, router included (allocated here). */
int lg_route_trainer_get_weights(const lg_route_trainer *t, lg_sae_weights *out);
long lg_route_trainer_steps_done(const lg_route_trainer *t);
/* Set the dead-latent clocks (steps since each latent fired, [d_sae]); for
 * tests of the AuxK path. */
void lg_route_trainer_set_clocks(lg_route_trainer *t, const double *since);
void lg_route_trainer_free(lg_route_trainer *t); /* accepts NULL */

/* Several seeds, as train.h's multi-seed trainer: S independent trainers
 * stepped in lockstep, each seed computing exactly what it computes alone.
 * step: batches host [S, B, L * d]; out [S] may be NULL. All or nothing: when
 * an active seed's loss is NaN/Inf no seed is updated and LG_EDIVERGED names
 * the lowest one (lg_route_multi_diverged_seed); the caller may deactivate
 * it and redo the step. An inactive seed is frozen. */
typedef struct lg_route_multi lg_route_multi;
int lg_route_multi_new(const lg_sae_config *cfg, const lg_train_config *tc, const lg_sae_weights *init, int S,
                       lg_route_multi **out);
int lg_route_multi_step(lg_route_multi *mt, const float *batches, lg_step_stats *out);
int lg_route_multi_diverged_seed(const lg_route_multi *mt); /* -1 when the last step did not diverge */
int lg_route_multi_set_active(lg_route_multi *mt, int s, int on);
int lg_route_multi_get_weights(const lg_route_multi *mt, int s, lg_sae_weights *out);
void lg_route_multi_free(lg_route_multi *mt); /* accepts NULL */
/* Share of seed s's latents dead by the AuxK clock (silent for at least
 * max(1, ceil(dead_after / batch)) steps): the training curves' dead_frac
 * (engine/curve.h), as lg_curve_dead_frac computes it for the backend trainer. */
int lg_route_multi_dead_frac(const lg_route_multi *mt, int s, double dead_after, int batch, double *out);

/* Metrics of w on rows [n, L * d] (recon.h's definitions with x := u, see
 * above). route_mean [L] (may be NULL): mean router weight of each layer;
 * *entropy (may be NULL): mean over rows of -sum_l r_l ln r_l (nats). */
int lg_route_eval(const lg_sae_config *cfg, const lg_sae_weights *w, const float *rows, long n,
                  double dense_threshold, lg_recon_metrics *out, double *route_mean, double *entropy);

/* lg_route_eval, adding to `metrics` route_entropy and route_weight_<l> for
 * l = 0..L-1 (the caller adds the recon metrics from *out). */
struct cJSON;
int lg_route_eval_json(const lg_sae_config *cfg, const lg_sae_weights *w, const float *rows, long n,
                       double dense_threshold, lg_recon_metrics *out, struct cJSON *metrics);

/* Forward of rows [n, L * d] in float64: u [n, d] and uhat [n, d] (either may
 * be NULL), r [n, L] (may be NULL). For tests and tools. */
int lg_route_forward(const lg_sae_config *cfg, const lg_sae_weights *w, const float *rows, long n, double *u,
                     double *uhat, double *r);

#endif
