/*
 * saelens_transcoder.h - `ledger export` of transcoder cells (engine/transcoder.h)
 * in SAELens' transcoder layout (sae_lens/saes/transcoder.py, SAELens 6):
 *   cfg.json   {"architecture": "transcoder" | "jumprelu_transcoder", "d_in",
 *               "d_out", "d_sae", "apply_b_dec_to_input": false, "hook_name",
 *               "hook_name_out"?, ... "metadata": {...}}
 *   sae_weights.safetensors  W_enc [d_in, d_sae], b_enc [d_sae],
 *               W_dec [d_sae, d_out], b_dec [d_out], threshold [d_sae]
 *               (jumprelu_transcoder only)
 * SAELens' Transcoder encodes without b_dec (x @ W_enc + b_enc, as ours) and
 * applies ReLU; its JumpReLUTranscoder applies pre > threshold ? pre : 0.
 * Mapping (ours -> SAELens):
 *   relu                          -> "transcoder"
 *   jumprelu                      -> "jumprelu_transcoder" (threshold = theta)
 *   batchtopk, matryoshka         -> "jumprelu_transcoder" (the scalar inference
 *                                    threshold repeated, as for SAEs)
 *   topk                          -> refused (LG_EINPUT): SAELens has no TopK
 *                                    transcoder; its "transcoder" would apply
 *                                    ReLU to every latent, a different model.
 * d_out = d_in (the engine's transcoders have d_target = d_in).
 */
#ifndef LG_SAELENS_TRANSCODER_H
#define LG_SAELENS_TRANSCODER_H

#include <cjson/cJSON.h>

#include "engine/sae.h"

/* SAELens architecture of a transcoder of `arch` (static string), or NULL
 * when SAELens has none (topk). */
const char *lg_saelens_transcoder_arch(lg_arch arch);
/* LG_EINPUT naming `label` when the transcoder of `arch` cannot be exported. */
int lg_saelens_transcoder_check(lg_arch arch, const char *label);
/* Writes dir/cfg.json and dir/sae_weights.safetensors (dir must exist), each
 * atomically; metadata as lg_saelens_write (metadata.hook_name_out, when a
 * string, also goes to the top level). */
int lg_saelens_write_transcoder(const char *dir, const lg_sae_config *cfg, const lg_sae_weights *w,
                                const cJSON *metadata);

#endif
