/*
 * run_int.h - what the pieces of the study runner share: engine/run.c (the
 * orchestration), run_train.c (training of a seed group), run_cell.c (one
 * cell: configs, evaluation, metrics, weight files) and run_resume.c (group
 * markers). Only those four files include it; nothing here is API.
 *
 * run_ctx is the state of one execution (data, splits, b_dec initial values,
 * the output file list, progress); the functions below are the former
 * static helpers of run.c that another piece calls, under a run_ prefix.
 */
#ifndef LG_RUN_INT_H
#define LG_RUN_INT_H

#include "engine/run.h"

#include "engine/curve.h"
#include "engine/data.h"
#include "engine/sae.h"
#include "engine/train.h"

typedef struct {
    lg_out_file *files;
    size_t n, cap;
    const char *outdir;
} file_list;

#define LG_RUN_OOD_CHUNK 4096

typedef struct {
    const lg_study *s;
    const lg_run_options *opt;
    lg_dataset *ds;
    const float *truth;     /* [n_features, d] or NULL */
    int d;                  /* row width (layered data: L * d', see lg_dataset_layers) */
    int layers;             /* lg_dataset_layers: L of [n, L, d'] data, 0 for 2-D data */
    int64_t *train_rows, *eval_rows;
    int64_t n_train, n_eval;
    float *eval_x;          /* [n_eval, d], gathered once */
    lg_dataset *ood;        /* data.ood or NULL: every SAE is also evaluated on all its rows */
    float *ood_x;           /* [LG_RUN_OOD_CHUNK, d] staging for the OOD rows */
    int64_t *ood_idx;       /* [LG_RUN_OOD_CHUNK] */
    char ood_digest[65];    /* SHA-256 of data.ood's file */
    float *mean_init;       /* [d] */
    float *median_init;     /* [d] or NULL until needed */
    file_list files;
    int cells_done, cells_total;
    double work_done, work_total; /* training steps, for the ETA */
    double t0;
    int group_index;        /* the next seed group's number in plan order */
    int group_cap;
    /* data.target (transcoder conditions, engine/transcoder.h): the same rows as ds */
    lg_dataset *target;
    char target_digest[65];
    float *eval_y;          /* [n_eval, d] the target of the held-out rows */
    float *target_mean;     /* [d] b_dec's initialisation of a transcoder */
    float *target_median;   /* [d] or NULL until needed */
    float *target_truth;    /* [n_features, d] synthetic target's output dictionary E, or NULL */
    lg_dataset *ood_target; /* data.ood.target, the same rows as ood */
    char ood_target_digest[65];
    float *ood_y;           /* [LG_RUN_OOD_CHUNK, d] */
    /* data.layer (run_layer.c): layer data.layer of layered data, swapped
     * with ds, d, layers, eval_x, mean_init, median_init while a
     * single-layer condition runs (active = 1 then) */
    struct {
        int active;
        lg_dataset *ds;
        int d, layers;
        float *eval_x, *mean_init, *median_init;
    } lv;
} run_ctx;

/* run_resume.c */
int run_uses_markers(const lg_run_options *o);
int run_group_add(run_ctx *rc, lg_run_result *res, const lg_condition *c, int g0, int gn, int state);
int run_group_mark(run_ctx *rc, const lg_condition *c, const uint64_t *gseeds, int g0, int gn,
                   const lg_step_stats *last,
                   const lg_run_result *res);
int run_group_load(run_ctx *rc, const lg_condition *c, const uint64_t *gseeds, int g0, int gn, lg_sae_weights *w,
                   lg_step_stats *last,
                   const lg_run_result *res);

/* run_cell.c */
int run_files_add(file_list *fl, const char *name, const char *media_type, const char **path_out);
void run_fill_configs(const lg_cond_params *p, int d, lg_sae_config *cfg, lg_train_config *tc);
int run_write_weights(run_ctx *rc, const lg_condition *c, uint64_t seed, const lg_sae_weights *w);
int run_cell_configs(run_ctx *rc, const lg_condition *c, lg_sae_config *cfg, lg_train_config *tc);
int run_init_cell(run_ctx *rc, const lg_condition *c, const lg_sae_config *cfg, uint64_t seed,
                  lg_sae_weights *w);
const float *run_cell_truth(const run_ctx *rc, const lg_condition *c);
int run_finish_cell(run_ctx *rc, const lg_condition *c, const lg_sae_config *cfg, uint64_t seed,
                    const lg_sae_weights *w, const lg_step_stats *last, cJSON *metrics, float *truth_maxcos);

/* run_layer.c */
int run_layer_prepare(run_ctx *rc);
void run_layer_enter(run_ctx *rc, const lg_condition *c);
void run_layer_leave(run_ctx *rc);
void run_layer_release(run_ctx *rc);

/* run_train.c */
int run_curve_files(run_ctx *rc, const lg_condition *c, const uint64_t *seeds, int n, lg_curve *cv);
int run_seed_group_size(run_ctx *rc, const lg_sae_config *cfg, const lg_train_config *tc);
int run_train_group(run_ctx *rc, const lg_condition *c, const lg_sae_config *cfg, const lg_train_config *tc,
                    const uint64_t *seeds, int n, lg_sae_weights *w, lg_step_stats *last, int *n_ok,
                    char *failure, size_t failure_len, lg_curve *cv);

#endif /* LG_RUN_INT_H */
