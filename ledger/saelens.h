/*
 * saelens.h - conversion between the engine's SAE weights and the SAELens
 * on-disk format (the hand-off to SAELens / SAEBench), used by `ledger
 * export` and `ledger import`.
 *
 * A SAELens SAE is a folder holding
 *   cfg.json                  {"architecture", "d_in", "d_sae", "dtype",
 *                              "device", "apply_b_dec_to_input",
 *                              "normalize_activations", "k"?, "metadata": {...}}
 *   sae_weights.safetensors   W_enc [d_in, d_sae], b_enc [d_sae],
 *                             W_dec [d_sae, d_in], b_dec [d_in],
 *                             threshold [d_sae] (JumpReLU only)
 * with the forward pass of engine/sae.h when apply_b_dec_to_input is true:
 *   pre = (x - b_dec) @ W_enc + b_enc;  xhat = f(pre) @ W_dec + b_dec.
 *
 * Architecture mapping (ours -> SAELens "architecture"):
 *   relu        -> "standard"  (no threshold tensor)
 *   topk        -> "topk"      (cfg "k")
 *   jumprelu    -> "jumprelu"  (threshold = theta)
 *   batchtopk,
 *   matryoshka  -> "jumprelu"  (threshold = the scalar inference threshold
 *                  repeated: our inference rule pre > thr ? pre : 0 is exactly
 *                  SAELens's JumpReLU, which is also what SAELens itself saves
 *                  a BatchTopK SAE as for inference). The trained
 *                  architecture and k stay in metadata.ledger_architecture /
 *                  metadata.ledger_k.
 *   hierarchical_topk -> "topk" (cfg "k" = its largest budget: its inference
 *                  rule; the budgets in metadata.ledger_ks; SAELens has no
 *                  nested-budget architecture, and a smaller budget is the
 *                  same SAE with "k" set to it)
 * Import reads "standard", "topk", "jumprelu", "batchtopk" and
 * "matryoshka_batchtopk"; other architectures (gated, transcoders...) are
 * LG_EINPUT.
 *
 * Errors name the file and the place ("sae/cfg.json: d_sae: must be an
 * integer >= 1"). Nothing here prints.
 */
#ifndef LG_SAELENS_H
#define LG_SAELENS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/base.h"
#include "engine/sae.h"

#define LG_SAELENS_CFG "cfg.json"
#define LG_SAELENS_WEIGHTS "sae_weights.safetensors"
#define LG_SAELENS_CFG_MAX (1u << 20) /* largest cfg.json we read */

/* SAELens architecture name for one of ours (static string); *has_threshold
 * (may be NULL) is set when the export carries a threshold tensor. */
const char *lg_saelens_arch_name(lg_arch arch, int *has_threshold);

/* ---- the engine's own cell files (engine/run.c) ------------------------ */

/* A trained cell as `ledger run` writes it: cells/<cond>/seed-<s>.safetensors.
 * Strings point into `meta_*` buffers owned by the struct. */
typedef struct {
    lg_sae_config cfg;     /* from metadata "architecture", "k" and the shapes */
    lg_sae_weights w;      /* owned */
    char condition[128];   /* metadata "condition" ("" when absent) */
    char study[128];       /* metadata "study" ("" when absent) */
    char engine_version[32];
    long long seed;        /* metadata "seed", -1 when absent */
    int transcoder;        /* metadata "transcoder" = "true": a transcoder cell (engine/transcoder.h) */
} lg_cell_sae;

/* Reads and validates a cell file (shapes of all five tensors, F32/F16/BF16/F64,
 * finite values, metadata architecture/k). `label` names it in messages
 * (e.g. the output name). out is overwritten; release with lg_cell_sae_release. */
int lg_cell_sae_read(const char *path, const char *label, lg_cell_sae *out);

/* Why a RouteSAE (engine/arch_route.h) cell is not exported: SAELens' SAE
 * encodes one hook's activations, and its cfg.json has no router over
 * several layers' activations. (README "Export", engine/README.md "RouteSAE".) */
#define LG_SAELENS_ROUTESAE_REFUSAL                                                                         \
    "architecture routesae cannot be exported in SAELens format: a SAELens SAE reads one hook's activations " \
    "and has no router over several layers (export the other conditions, or read the cell's safetensors, "  \
    "which holds W_router and b_router)"
void lg_cell_sae_release(lg_cell_sae *c);

/* ---- export ----------------------------------------------------------------- */

/* cfg.json document for `cfg` (a new object: caller deletes). `metadata` (may
 * be NULL) is duplicated under "metadata"; ledger_architecture and ledger_k
 * are added to it. */
cJSON *lg_saelens_cfg_new(const lg_sae_config *cfg, const cJSON *metadata);

/* Writes dir/cfg.json and dir/sae_weights.safetensors (dir must exist),
 * each atomically. The tensors are float32 copies of w's arrays; threshold
 * only when the architecture has one. */
int lg_saelens_write(const char *dir, const lg_sae_config *cfg, const lg_sae_weights *w, const cJSON *metadata);

/* ---- import ----------------------------------------------------------------- */

typedef struct {
    uint64_t max_elements; /* d_in * d_sae cap per SAE (default 1 << 26) */
    int max_dim;           /* cap on d_in and d_sae (default 1 << 20) */
} lg_saelens_limits;

void lg_saelens_limits_init(lg_saelens_limits *lim);

/* An SAE loaded from a SAELens folder: its config and decoder rows (what the
 * consistency metrics need); every tensor was checked for shape and finiteness. */
typedef struct {
    char architecture[32];    /* as written in cfg.json */
    lg_sae_config cfg;        /* arch mapped as above; k = 0 unless top-k */
    int apply_b_dec_to_input; /* cfg value (default 1) */
    int has_threshold;        /* sae_weights.safetensors holds "threshold" */
    float *W_dec;             /* [d_sae, d_in], owned */
    cJSON *cfg_json;          /* the parsed cfg.json, owned */
    long long meta_seed;      /* cfg.metadata.seed when an integer >= 0, else -1 */
} lg_saelens_sae;

/* Loads dir/cfg.json and dir/sae_weights.safetensors and validates them
 * against each other and the limits (lim NULL = defaults). LG_EINPUT (or
 * LG_ENOTFOUND for a missing file) with a message naming the file. Release
 * with lg_saelens_sae_release. */
int lg_saelens_load(const char *dir, const lg_saelens_limits *lim, lg_saelens_sae *out);
void lg_saelens_sae_release(lg_saelens_sae *s);

/* The decoder of a SAELens sae_weights.safetensors as import reads it:
 * W_dec [d_sae, d_in] of any float dtype, converted to float32 and checked
 * finite; *out lg_malloc'd. LG_EINPUT naming `label` otherwise. */
int lg_saelens_read_decoder(const char *path, const char *label, int d_sae, int d_in, float **out);

/* The metrics of a pair of SAEs of the same shape as `ledger import`
 * records them (HUSAI's PWMCC with |cos| as mmcs, with mmcs_ab, mmcs_ba,
 * mmcs_signed; mcc and shared_frac when d_sae <= hungarian_max), added to m.
 * *mmcs_out, *mcc_out (may be NULL) get mmcs and mcc (NaN when skipped). */
int lg_saelens_pair_metrics(const float *W_dec_a, const float *W_dec_b, int d_sae, int d_in, double threshold,
                            int hungarian_max, cJSON *m, double *mmcs_out, double *mcc_out);

#endif
