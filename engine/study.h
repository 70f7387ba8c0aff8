/*
 * study.h - study specs (JSON) and their plans.
 *
 * A study names a data source, a grid of conditions over architecture and
 * hyperparameters, a list of seeds and the controls. The plan expands it into
 * cells: every condition x seed is trained; with the random-init control on,
 * every condition also gets a "control=random" twin whose cells are the
 * untrained SAEs of the same shape and seeds.
 *
 * Spec format (version 1), every key optional unless marked:
 *
 *   {
 *     "format": 1,
 *     "name": "small-topk",                       required, [A-Za-z0-9._-]+
 *     "description": "...",
 *     "data": {                                   required
 *       "source": "synthetic" | "file",           required
 *       "path": "acts.npy", "tensor": "acts",     file source (path relative to the spec)
 *       "synthetic": { "d", "n_features", "n_samples", "active_mean", "zipf_exponent",
 *                      "magnitude_mean", "magnitude_std", "noise_std", "seed",
 *                      "layers": 0, "layer_leak": 0.5 },   layers >= 2: rows [L, d], each
 *                                                        layer a mix of the same features
 *                                                        (engine/data.h)
 *       "layer": 0,                               layered data only: the layer every
 *                                                 single-layer arch trains on; routesae
 *                                                 reads all L (engine/run_layer.c)
 *       "eval_fraction": 0.1, "split_seed": 0,
 *       "ood": { "path": "ood.npy", "tensor": "acts" }  optional: every SAE is also evaluated on
 *                                                        this file (metrics ood_fvu, ood_l0, ...)
 *       "target": { "path": "y.npy", "tensor": "y" } | { "synthetic": { "seed": 11 } }
 *                                                        transcoders: what they reconstruct; the
 *                                                        ood block then takes "target" too
 *     },
 *     "train": { "steps", "batch", "lr", "warmup_steps", "decay_frac", "grad_clip",
 *                "beta1", "beta2", "eps", "b_dec_init": "mean"|"median"|"zero",
 *                "aux_k", "aux_coeff", "dead_after",
 *                "log_every": 0,
 *                "consistency": { "weight", "every", "mode" } },  defaults for every condition
 *                                                  (log_every: study-wide, not a grid key: every N
 *                                                  steps a training-curve point, engine/curve.h;
 *                                                  0 = off)
 *     "sae": { "arch", "d_sae", "k", "l1_coeff", "l0_coeff", "jumprelu_threshold",
 *              "jumprelu_bandwidth", "prefixes": [..], "ks": [..], "transcoder": bool },
 *                                             defaults for every condition
 *                                             ("ks": hierarchical_topk's budgets, k < ... ; k is
 *                                              their largest: engine/arch_hier.h)
 *     "grid": { KEY: [values...], ... },          cartesian product over any sae/train key
 *                                                 ("consistency": a list of objects)
 *     "seeds": [1, 2, 3],                         required, distinct non-negative integers
 *     "controls": { "random_init": true },
 *     "metrics": { "shared_threshold": 0.7, "hungarian": true, "dense_threshold": 0.1,
 *                  "hungarian_max": 4096 }
 *   }
 *
 * Errors name the file and the JSON path:
 * "study.json: grid.k[1]: must be an integer in [1, 1048576]".
 */
#ifndef LG_STUDY_H
#define LG_STUDY_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/base.h"
#include "engine/sae.h"

#define LG_STUDY_MAX_PREFIXES 8
#define LG_MAX_SEEDS 256
#define LG_MAX_CONDITIONS 1024

/* Every hyperparameter a condition can set. */
typedef struct {
    lg_arch arch;
    int d_sae;
    int k;
    double l1_coeff;
    double l0_coeff;
    double jumprelu_threshold;
    double jumprelu_bandwidth;
    int prefixes[LG_STUDY_MAX_PREFIXES];
    int n_prefixes;
    int ks[LG_SAE_MAX_KS]; /* hierarchical_topk budgets (sae.ks); k = the last */
    int n_ks;
    /* training */
    int steps;
    int batch;
    double lr;
    int warmup_steps;
    double decay_frac;
    double grad_clip;
    double beta1, beta2, eps;
    int b_dec_init; /* 0 mean, 1 geometric median, 2 zero */
    int aux_k;
    double aux_coeff;
    int dead_after;
    int transcoder; /* sae.transcoder: reconstruct data.target from the data (engine/transcoder.h) */
    /* train.consistency (engine/consistency_obj.h): weight 0 = off; `set`
     * when the spec names it (then params list consistency_weight,
     * consistency_every, consistency_mode) */
    struct {
        double weight;
        int every;
        int mode;
        int set;
    } consistency;
} lg_cond_params;

typedef struct {
    char id[128];         /* "arch=topk,k=4" (grid keys in spec order) [+ ",control=random"] */
    int control_random;   /* 1 for the random-init twin */
    int trained_twin;     /* for a random condition: index of its trained condition */
    lg_cond_params p;
    cJSON *params_json;   /* owned: every param + "control" */
} lg_condition;

typedef struct {
    int d;
    int n_features;
    int64_t n_samples;
    double active_mean;
    double zipf_exponent;
    double magnitude_mean, magnitude_std;
    double noise_std;
    uint64_t seed;
    int layers;           /* data.synthetic.layers: 0 (2-D) or 2..64 (engine/data.h, layered data) */
    double layer_leak;    /* data.synthetic.layer_leak, default 0.5 */
} lg_study_synth;

typedef struct {
    char *path;           /* as written in the spec file, and the owning spec file */
    char *name;
    char *description;
    char *data_source;    /* "synthetic" | "file" */
    char *data_path;      /* resolved against the spec's directory */
    char *data_tensor;    /* or NULL */
    char *ood_path;       /* data.ood.path resolved like data_path, or NULL: a second file every SAE is
                             also evaluated on (metrics ood_*) */
    char *ood_tensor;     /* or NULL */
    /* data.target (transcoders, engine/transcoder.h): a file with the same
     * rows as the data (resolved like data_path), or a synthetic target made
     * from the data's own features (target_synth, seed target_synth_seed);
     * data.ood.target likewise for the OOD file. All NULL / 0 when absent. */
    char *target_path, *target_tensor;
    int target_synth;
    uint64_t target_synth_seed;
    char *ood_target_path, *ood_target_tensor;
    lg_study_synth synth;
    int data_layer;       /* data.layer: the layer single-layer archs read on layered data, -1 if absent
                             (engine/run_layer.c) */
    double eval_fraction;
    uint64_t split_seed;
    uint64_t seeds[LG_MAX_SEEDS];
    int n_seeds;
    int random_control;
    double shared_threshold;
    double dense_threshold;
    int hungarian;
    int hungarian_max;
    int log_every;        /* train.log_every: curve point every N steps (engine/curve.h); 0 = off */
    lg_condition *conds;  /* trained conditions first, then random twins */
    int n_conds;
    char spec_digest[65]; /* SHA-256 of the spec file bytes */
    cJSON *json;          /* the parsed spec (owned) */
} lg_study;

/* Parse and validate a study file; expands the grid into conditions.
 * On error returns LG_EINPUT (or LG_ENOTFOUND / LG_EIO) with the message naming file and place. */
int lg_study_load(const char *path, lg_study **out);
/* Same from a buffer; `path` is used in messages and to resolve relative data paths. */
int lg_study_parse(const char *path, const char *text, size_t len, lg_study **out);
void lg_study_free(lg_study *s);

/* 1 when `name` is a valid study name: 1-100 characters of [A-Za-z0-9._-]
 * (what a spec's "name" must be; `ledger record` and `import` check their
 * --study the same way), else 0. */
int lg_study_name_valid(const char *name);

/* Number of cells: every condition x every seed. */
int lg_study_n_cells(const lg_study *s);

/* Human-readable plan (for `ledger run --dry-run`), appended to a cJSON-free text buffer. */
int lg_study_plan_text(const lg_study *s, lg_buf *out);
/* The plan as JSON (caller frees with cJSON_Delete). */
cJSON *lg_study_plan_json(const lg_study *s);

#endif
