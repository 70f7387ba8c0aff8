/*
 * transcoder.h - the transcoder control arm (issue 14): what a study needs
 * beyond the trainer's and recon's transcoder mode (train.h, recon.h).
 *
 * A transcoder reads x and reconstructs a different tensor y, the target
 * (e.g. an MLP's input and its output): pre = x W_enc + b_enc, acts = f(pre),
 * yhat = acts W_dec + b_dec, loss and FVU against y. A study turns it on per
 * condition with "sae": {"transcoder": true} on any architecture (the
 * activation is the architecture's: TopK, BatchTopK, ReLU+L1, JumpReLU,
 * Matryoshka), and names the target in "data": {"target": ...}. Only
 * d_target = d_in is supported (the target must have the data's rows and
 * width): W_dec rows then live in the same space as an SAE's, so the
 * cross-seed metrics (MMCS, Hungarian MCC) compare decoder dictionaries
 * exactly as for SAEs.
 *
 * Synthetic target (data.target.synthetic.seed = t, synthetic source only):
 * the data's generator (data.h) gives row i = sum_j c_ij D_j + noise with
 * the active features j and coefficients c_ij of the row; the target is
 *   y_i = sum_j c_ij E_j   (accumulated in double, no noise)
 * with E [n_features, d] a second dictionary of unit rows, drawn exactly as
 * D is but from the seed t (Philox stream (t, LG_STREAM_DICT)). The same
 * sparse features, read through other output directions: a transcoder that
 * finds them has E in its decoder, an SAE on x has D.
 *
 * Equal compute: an SAE arm and a transcoder arm that differ only in
 * sae.transcoder (a grid over it) see the same training tokens (steps x
 * batch, and the same batches: the batch order is a function of seed and
 * step) with the same shapes. Per step, the dense-path GEMMs do
 *   SAE:        12 B d m FLOPs (2 per multiply-add: encoder and decoder
 *               forward, gW_dec, gacts, gW_enc, and the gradient of b_dec
 *               through the encoder input x - b_dec)
 *   transcoder: 10 B d m FLOPs (no b_dec in the encoder: that GEMM is gone)
 * so at d_target = d_in the transcoder is given 5/6 of the SAE's GEMM FLOPs
 * per step, never more. lg_transcoder_gemm_flops is that count; a study
 * with a target records train_tokens and train_gemm_flops per trained cell.
 */
#ifndef LG_TRANSCODER_H
#define LG_TRANSCODER_H

#include <stdint.h>

#include "engine/backend.h"
#include "engine/data.h"
#include "engine/recon.h"
#include "engine/sae.h"

/* The synthetic target of the data made by cfg (above), as an in-memory
 * dataset [n_samples, d]. e_out (may be NULL) gets E [n_features, d]
 * (lg_free). LG_EINPUT for a bad cfg. */
int lg_transcoder_synth_target(const lg_synth_config *cfg, uint64_t target_seed, lg_dataset **out, float **e_out);

/* Dense-path GEMM FLOPs of one training step (above), without AuxK. */
double lg_transcoder_gemm_flops(int transcoder, int batch, int d, int d_sae);

/* lg_recon_eval for a transcoder: x, y [n, d_in], in chunks of at most
 * 4096 rows. */
int lg_transcoder_eval(const lg_backend *be, const lg_sae_config *cfg, const lg_sae_weights *w, const float *x,
                       const float *y, long n, double dense_threshold, lg_recon_metrics *out);

#endif
