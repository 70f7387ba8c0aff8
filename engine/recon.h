/*
 * recon.h - reconstruction and sparsity metrics of a trained SAE on held-out
 * rows that the caller feeds in chunks (so the evaluation set need not fit in
 * memory). Inference uses each architecture's inference rule (sae.h): ReLU,
 * per-row top-k, JumpReLU with theta = threshold, and for BatchTopK and
 * Matryoshka the scalar threshold `threshold[0]` (acts = pre > thr ? pre : 0;
 * an untrained BatchTopK has threshold 0, i.e. ReLU).
 *
 * Over the N evaluated rows x_n [d_in] with reconstructions xhat_n:
 *   mse                = (1/N) sum_n ||x_n - xhat_n||^2        (summed over d_in,
 *                        the training convention of train.h)
 *   fvu                = sum_n ||x_n - xhat_n||^2 / sum_n ||x_n - mu||^2,
 *                        mu = per-dimension mean of the N evaluated rows
 *                        (variance around the mean, NOT around zero)
 *   explained_variance = 1 - fvu
 *   l0                 = (1/N) sum_n #{j : acts_nj != 0}
 *   dead_frac          = #{j : acts_nj == 0 for every n} / d_sae
 *   dense_frac         = #{j : #{n : acts_nj != 0} > dense_threshold * N} / d_sae
 *                        (dense_threshold 0.1 by default)
 * The denominator is accumulated per dimension with Chan et al.'s pairwise
 * update of (count, mean, M2) in double, so it is exact-ish whatever the
 * chunking; all sums are in a fixed order, so the metrics are deterministic
 * for a given backend and chunking.
 */
#ifndef LG_RECON_H
#define LG_RECON_H

#include "engine/backend.h"
#include "engine/sae.h"

typedef struct {
    long n_rows;
    double mse;
    double fvu;
    double explained_variance;
    double l0;
    double dead_frac;
    double dense_frac;
} lg_recon_metrics;

typedef struct lg_recon lg_recon;

/* Upload w (cfg's shape) to be; chunks hold at most max_rows rows.
 * Free with lg_recon_free. */
int lg_recon_new(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w,
                 int max_rows, lg_recon **out);
/* Evaluate rows (host [n, d_in], 1 <= n <= max_rows) and accumulate. */
int lg_recon_add(lg_recon *r, const float *rows, int n);
/* Metrics over everything added so far (LG_EINPUT when nothing was added).
 * dense_threshold < 0 means the default 0.1. May be called more than once. */
int lg_recon_finish(lg_recon *r, double dense_threshold, lg_recon_metrics *out);
void lg_recon_free(lg_recon *r); /* accepts NULL */
/* Transcoder (train.h): the encoder reads rows without b_dec and the metrics
 * score the reconstruction of targets [n, d_in] (mse, fvu around the
 * targets' mean, explained_variance); rows are fed with
 * lg_recon_add_target (lg_recon_add refuses a transcoder, and
 * lg_recon_add_target a plain SAE). */
int lg_recon_new_transcoder(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w, int max_rows,
                            lg_recon **out);
int lg_recon_add_target(lg_recon *r, const float *rows, const float *targets, int n);

/* Convenience: the whole of rows [n, d_in] in chunks of at most 4096 rows. */
int lg_recon_eval(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w,
                  const float *rows, long n, double dense_threshold, lg_recon_metrics *out);
/* The same walk for a transcoder (targets [n, d_in], row i the target of
 * rows' row i) when targets is given, for a plain SAE when it is NULL:
 * lg_recon_eval and lg_transcoder_eval are this. */
int lg_recon_eval_targets(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w, const float *rows,
                          const float *targets, long n, double dense_threshold, lg_recon_metrics *out);

#endif
