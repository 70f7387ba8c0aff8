/*
 * train.h - SAE training on a backend: a trainer object that owns the
 * parameters, gradients, Adam moments and counters in backend memory, takes
 * one caller-supplied batch per step, and can save and load its full state so
 * that training stops and resumes bit-identically.
 *
 * Loss of one step on a batch x [B, d_in] (model in sae.h):
 *   mse     = (1/B) sum_b sum_i (xhat[b,i] - x[b,i])^2
 *             (mean over the batch of the squared error SUMMED over d_in)
 *   MATRYOSHKA: the reconstruction term is the mean over prefixes p_1 < ...
 *             < p_P = d_sae of mse_p, mse_p using only latents [0, p) (and
 *             b_dec); the reported mse is the full-dictionary one.
 *   sparsity (RELU)     = l1_coeff * (1/B) sum_b sum_j acts[b,j]   (acts >= 0;
 *             decoder rows have unit norm, so this is the norm-weighted L1)
 *   sparsity (JUMPRELU) = l0_coeff * (1/B) sum_b #{j : acts[b,j] != 0}, with
 *             the straight-through pseudo-gradient of backend.h jumprelu_bwd
 *   aux (TOPK, BATCHTOPK, MATRYOSHKA; AuxK, Gao et al. 2024):
 *             dead latents = not fired in the last dead_after samples (counted
 *             in whole steps: dead when steps_since_fired * B >= dead_after and
 *             steps_since_fired >= 1); e = x - xhat (full dictionary, treated
 *             as a constant); ehat = aux_acts @ W_dec with aux_acts the top
 *             min(aux_k, n_dead) of each row of pre among the dead latents
 *             (ReLU'd);
 *             aux = aux_coeff * sum ||ehat - e||^2 / sum ||e - mean_b(e)||^2
 *             (denominator constant; aux = 0 when no latent is dead).
 *   loss = recon + sparsity + aux.  A NaN/Inf loss: LG_EDIVERGED, and the
 *   trainer's weights stay as they were before that step.
 *
 * Update of one step (order matters, as in dictionary_learning):
 *   1. gradients of the loss (the encoder input x - b_dec carries b_dec's
 *      gradient too);
 *   2. remove from each row of grad W_dec its component parallel to that row;
 *   3. global gradient-norm clipping over all trained parameters (grad_clip);
 *   4. Adam with bias correction; learning rate at step t (0-based):
 *        lr_t = lr * min(1, (t+1)/warmup_steps)                 (warmup)
 *             * (t < s0 ? 1 : (steps - t)/(steps - s0)),        (decay)
 *        s0 = steps - floor(decay_frac * steps);
 *   5. renormalise each row of W_dec to unit norm;
 *   6. dead-latent clocks: a latent that fired in this batch resets to 0,
 *      others count one more step;
 *   7. BATCHTOPK/MATRYOSHKA: threshold = min kept activation of the batch on
 *      the first step, then threshold = beta*threshold + (1-beta)*min.
 * Trained parameters: W_enc, b_enc, W_dec, b_dec, and for JUMPRELU
 * log_threshold [d_sae] (theta = exp(log_threshold)).
 */
#ifndef LG_TRAIN_H
#define LG_TRAIN_H

#include <stdint.h>

#include "engine/backend.h"
#include "engine/sae.h"

#define LG_MAX_PREFIXES 16

typedef struct {
    double lr;            /* peak learning rate */
    long steps;           /* total steps, for the schedule; stepping beyond is an error */
    int batch;            /* rows per step B */
    long warmup_steps;    /* 0 = no warmup */
    double decay_frac;    /* fraction of steps, at the end, with linear decay */
    double grad_clip;     /* max global gradient norm; 0 = off */
    double adam_beta1, adam_beta2, adam_eps;
    double l1_coeff;      /* RELU */
    double l0_coeff;      /* JUMPRELU */
    double jumprelu_bandwidth;      /* STE rectangle width eps */
    double jumprelu_init_threshold; /* theta at init when the init weights have none */
    int aux_k;            /* AuxK latents per row; 0 = d_in / 2 */
    double aux_coeff;     /* 0 disables AuxK */
    double dead_after;    /* samples without firing before a latent counts as dead */
    double threshold_beta;/* BatchTopK threshold running average */
    int n_prefixes;       /* MATRYOSHKA: prefix sizes, strictly increasing, in (0, d_sae]; */
    int prefixes[LG_MAX_PREFIXES]; /* d_sae is appended when the last is smaller */
} lg_train_config;

/* Training defaults: the one definition. lg_train_config_default uses them,
 * and so does the study parser (engine/study.c) for a key a spec leaves out;
 * studies/README.md "Study specs" lists them and test_study checks that list against
 * these values. */
#define LG_TRAIN_DEFAULT_LR 3e-4
#define LG_TRAIN_DEFAULT_STEPS 1000
#define LG_TRAIN_DEFAULT_BATCH 256
#define LG_TRAIN_DEFAULT_WARMUP_STEPS 50
#define LG_TRAIN_DEFAULT_DECAY_FRAC 0.2
#define LG_TRAIN_DEFAULT_GRAD_CLIP 1.0
#define LG_TRAIN_DEFAULT_BETA1 0.9
#define LG_TRAIN_DEFAULT_BETA2 0.999
#define LG_TRAIN_DEFAULT_EPS 1e-8
#define LG_TRAIN_DEFAULT_L1_COEFF 1e-3
#define LG_TRAIN_DEFAULT_L0_COEFF 1e-3
#define LG_TRAIN_DEFAULT_JUMPRELU_BANDWIDTH 1e-3
#define LG_TRAIN_DEFAULT_JUMPRELU_THRESHOLD 1e-3
#define LG_TRAIN_DEFAULT_AUX_COEFF (1.0 / 32.0)
#define LG_TRAIN_DEFAULT_DEAD_AFTER 100000
#define LG_TRAIN_DEFAULT_THRESHOLD_BETA 0.999

/* Defaults: the LG_TRAIN_DEFAULT_* values above (lr 3e-4, steps 1000, batch
 * 256, warmup 50, decay_frac 0.2, grad_clip 1, Adam (0.9, 0.999, 1e-8), l1
 * 1e-3, l0 1e-3, bandwidth 1e-3, init threshold 1e-3, aux_coeff 1/32,
 * dead_after 1e5, threshold_beta 0.999), aux_k 0 (= d_in/2; a study's default
 * is min(512, d_sae/2) instead), no prefixes. */
void lg_train_config_default(lg_train_config *tc);
/* LG_EINPUT naming the field. */
int lg_train_config_check(const lg_train_config *tc, const lg_sae_config *cfg);
/* lr_t of 0-based step `step`: the schedule of step 4 above (every trainer uses it). */
double lg_train_lr(const lg_train_config *tc, long step);

typedef struct {
    long step;        /* steps done after this one */
    double loss;      /* total */
    double mse;       /* full-dictionary mse (formula above) */
    double recon;     /* the reconstruction term of the loss (Matryoshka: mean of prefixes) */
    double sparsity;  /* L1 or L0 term (0 for the top-k architectures) */
    double aux;       /* AuxK term */
    double fvu;       /* batch FVU: sum||x - xhat||^2 / sum||x - mean_b(x)||^2 */
    double l0;        /* mean number of non-zero latents per row */
    double n_dead;    /* latents counted dead at this step */
    double lr;        /* learning rate used */
    double grad_norm; /* global norm before clipping */
    double threshold; /* BatchTopK inference threshold after the step (-1 unset) */
    double consistency; /* the extra term's share of loss (lg_trainer_set_extra; 0 without) */
} lg_step_stats;

typedef struct lg_trainer lg_trainer;

/* Copies cfg, tc and init (host weights of cfg's shape) to the backend.
 * JUMPRELU: log_threshold = log(init->threshold) when every entry is > 0,
 * else log(tc->jumprelu_init_threshold). BATCHTOPK/MATRYOSHKA: the threshold
 * starts unset. Free with lg_trainer_free. */
int lg_trainer_new(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc,
                   const lg_sae_weights *init, lg_trainer **out);
/* One training step on batch (host [tc->batch, d_in], row-major).
 * out may be NULL. LG_EDIVERGED with a message naming the step when the loss
 * is NaN/Inf (weights unchanged). */
int lg_trainer_step(lg_trainer *t, const float *batch, lg_step_stats *out);
/* Steps done so far (seed 0 of a multi-seed trainer). */
long lg_trainer_steps_done(const lg_trainer *t);
/* Download the current weights (out allocated here; release with
 * lg_sae_weights_release). threshold: JumpReLU theta = exp(log_threshold);
 * BatchTopK/Matryoshka the inference threshold (0 while unset); else 0. */
int lg_trainer_get_weights(lg_trainer *t, lg_sae_weights *out);

/* For gradient checks: forward + backward on batch without updating
 * anything (no projection, clipping, step, counters or threshold update);
 * out may be NULL. Then lg_trainer_get_grads downloads the raw gradients
 * into a weights-shaped struct (allocated here): W_enc, b_enc, W_dec, b_dec
 * as named, `threshold` = d loss / d log_threshold (JUMPRELU; else 0). */
int lg_trainer_compute_grads(lg_trainer *t, const float *batch, lg_step_stats *out);
int lg_trainer_get_grads(lg_trainer *t, lg_sae_weights *out);

/* ---- full state, as named host float arrays ------------------------------
 * Names (shape):
 *   W_enc [d_in,d_sae]  b_enc [d_sae]  W_dec [d_sae,d_in]  b_dec [d_in]
 *   log_threshold [d_sae]                        (JUMPRELU only)
 *   adam_m.<param>, adam_v.<param>               (same shapes, same params)
 *   step [1]                 steps done (exact: state refuses > 2^24 steps)
 *   steps_since_fired [d_sae]  batchtopk_threshold [1] (-1 = unset)
 *   state_version [1]        = 1
 * The caller may write them as safetensors; load accepts them in any order
 * and checks that every expected name is present with its exact shape. */
typedef struct {
    char name[40];
    int ndim;
    int64_t shape[2];
    float *data; /* owned by the array (lg_malloc) */
} lg_named_array;

typedef struct {
    lg_named_array *arrays;
    int count;
} lg_train_state;

int lg_trainer_save_state(lg_trainer *t, lg_train_state *out);      /* out allocated here */
int lg_trainer_load_state(lg_trainer *t, const lg_train_state *st); /* t must match cfg */
void lg_train_state_release(lg_train_state *st);                   /* accepts NULL */
/* Number of elements of a named array (product of its shape). */
int64_t lg_named_array_numel(const lg_named_array *a);

void lg_trainer_free(lg_trainer *t); /* accepts NULL */

/* ---- several seeds in one trainer (seed batching) -------------------------
 * A trainer holds S >= 1 independent SAEs of one config ("seeds"), trained in
 * lockstep on one batch each per step. Every parameter, gradient, Adam moment
 * and scratch tensor is ONE backend allocation [S, ...] with a fixed per-seed
 * stride, so each GEMM of a step is a single gemm_batched call over the S
 * problems, and elementwise work (activations, Adam, renormalisation, the
 * parallel-gradient removal, per-row top-k) runs over all seeds at once.
 * Per-seed quantities stay per seed: loss and stats, the clipping norm, the
 * BatchTopK threshold, AuxK (dead latents, its denominator), the dead-latent
 * clocks and divergence. Seed s computes exactly what a single-seed trainer
 * given init[s] and the same batches computes (bit-identical on the CPU
 * backend, where gemm_batched is a loop of the same sgemm calls).
 * The single-seed functions above are the S = 1 case: lg_trainer_step and
 * lg_trainer_compute_grads need S == 1 (LG_EINPUT otherwise), the others act
 * on seed 0. A seed's state (save/load) has the single-seed format, so a
 * checkpoint moves freely between single- and multi-seed trainers. */

/* init [S]: host weights of cfg's shape, one per seed (JumpReLU thresholds as
 * in lg_trainer_new, per seed). LG_EINPUT when S < 1. Free with
 * lg_trainer_free. */
int lg_trainer_new_multi(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc,
                         const lg_sae_weights *init, int S, lg_trainer **out);
int lg_trainer_n_seeds(const lg_trainer *t);
/* Backend memory of one seed in bytes (parameters, optimiser state, scratch),
 * for callers that choose how many seeds to train together. */
double lg_trainer_bytes_per_seed(const lg_sae_config *cfg, const lg_train_config *tc);
/* One step of every ACTIVE seed on batches, host [S, B, d_in] (seed s at
 * batches + s*B*d_in; the rows of inactive seeds are not read). out [S] may
 * be NULL; an inactive seed's entry is zeroed except .step. All or nothing:
 * when the loss of an active seed is NaN/Inf, nothing is updated (no seed)
 * and the call returns LG_EDIVERGED naming the lowest such seed (S == 1: the
 * message of lg_trainer_step; else "seed <index>: " before it), which
 * lg_trainer_diverged_seed returns; the caller may deactivate it and redo the
 * step for the others. Active seeds must have done the same number of steps
 * (per-seed state loads may make them differ): LG_EINPUT otherwise. */
int lg_trainer_step_multi(lg_trainer *t, const float *batches, lg_step_stats *out);
/* Index of the seed the last LG_EDIVERGED named; -1 when the last step or
 * gradient computation did not diverge. */
int lg_trainer_diverged_seed(const lg_trainer *t);
/* Seeds start active. An inactive seed is frozen: no step touches its
 * parameters, state or step count. LG_EINPUT for s out of range. */
int lg_trainer_set_active(lg_trainer *t, int s, int on);
/* Steps done by seed s (0 <= s < S). */
long lg_trainer_steps_done_multi(const lg_trainer *t, int s);
/* Seed s's weights (as lg_trainer_get_weights). */
int lg_trainer_get_weights_multi(lg_trainer *t, int s, lg_sae_weights *out);
/* Gradient checks for every active seed (as lg_trainer_compute_grads), then
 * seed s's raw gradients. */
int lg_trainer_compute_grads_multi(lg_trainer *t, const float *batches, lg_step_stats *out);
int lg_trainer_get_grads_multi(lg_trainer *t, int s, lg_sae_weights *out);
/* Seed s's full state (names and checks as above; load validates before it
 * changes anything). */
int lg_trainer_save_state_multi(lg_trainer *t, int s, lg_train_state *out);
int lg_trainer_load_state_multi(lg_trainer *t, int s, const lg_train_state *st);

/* ---- transcoder (a control arm: engine/transcoder.h) ----------------------
 * A transcoder reads x [B, d_in] and reconstructs a different target y
 * [B, d_in] (e.g. an MLP's input and its output; d_target = d_in here):
 *   pre  = x @ W_enc + b_enc          (no b_dec: it lives in y's space;
 *                                      SAELens' Transcoder.process_sae_in)
 *   acts = f(pre)                     (the architecture's activation)
 *   yhat = acts @ W_dec + b_dec
 *   mse  = (1/B) sum_b ||yhat_b - y_b||^2, batch fvu against y;
 * every other term (L1/L0, AuxK with e = y - yhat, Matryoshka prefixes) and
 * the whole update are as above, except that b_dec gets no gradient through
 * the encoder. A transcoder trainer takes each step's targets beside its
 * batches (host [S, B, d_in], laid out like batches); the plain step and
 * gradient calls refuse it (LG_EINPUT), and the target calls refuse a trainer
 * made by lg_trainer_new_multi. State save/load are unchanged. */
int lg_trainer_new_transcoder_multi(const lg_backend *be, const lg_sae_config *cfg, const lg_train_config *tc,
                                    const lg_sae_weights *init, int S, lg_trainer **out);
int lg_trainer_is_transcoder(const lg_trainer *t);
int lg_trainer_step_target_multi(lg_trainer *t, const float *batches, const float *targets, lg_step_stats *out);
int lg_trainer_compute_grads_target_multi(lg_trainer *t, const float *batches, const float *targets,
                                          lg_step_stats *out);
/* ---- extra loss terms computed outside the trainer ------------------------
 * (engine/consistency_obj.h.) fn runs after the forward and backward pass of
 * every step and gradient computation, once the losses are known to be
 * finite and before the update: it may add to st[s].loss (and set
 * st[s].consistency) and add its gradient to grad W_dec of the active seeds
 * (lg_trainer_decoder). A negative return fails the step with nothing
 * updated. fn NULL removes it. */
typedef int (*lg_trainer_extra_fn)(void *ctx, lg_trainer *t, lg_step_stats *st);
void lg_trainer_set_extra(lg_trainer *t, lg_trainer_extra_fn fn, void *ctx);
/* Backend pointers to seed s's W_dec [d_sae, d_in] and its gradient
 * buffer (either out may be NULL). */
int lg_trainer_decoder(lg_trainer *t, int s, float **W_dec, float **grad_W_dec);
int lg_trainer_seed_active(const lg_trainer *t, int s); /* 1 active, 0 frozen or out of range */
const lg_backend *lg_trainer_backend(const lg_trainer *t);
/* The trainer's configs (either out may be NULL). */
int lg_trainer_config(const lg_trainer *t, lg_sae_config *cfg, lg_train_config *tc);

/* 1 when a trainer of this architecture and size on this backend takes the
 * sparse path (the backend has the sparse group, the activation is a top-k
 * (TopK, BatchTopK, Matryoshka) and batch * d_sae * d_in >= the backend's
 * sparse_min_work), else 0 (the dense path). */
int lg_train_sparse_path(const lg_backend *be, lg_arch arch, int batch, int d_sae, int d_in);

#endif
