/*
 * run.h - execute a study plan: data -> per cell init, train, evaluate ->
 * per condition cross-seed metrics, written as files into an output folder
 * plus the evidence (results JSON) that the ledger records.
 *
 * Output files (names relative to the output folder; condition ids are made
 * file-safe by mapping '=' to '-' and ',' to '_'):
 *   results.json                         the evidence (ledger/FORMAT.md)
 *   cells/<cond>/seed-<s>.safetensors    trained SAE weights (W_enc, b_enc,
 *                                        W_dec, b_dec, threshold) + metadata;
 *                                        random-init controls are not written
 *                                        (they are a pure function of shape
 *                                        and seed, see sae.h)
 *   cells/<cond>/seed-<s>.curve.json     training curve (train.log_every > 0 only;
 *                                        engine/curve.h), written with the
 *                                        weights, before a group's marker
 *   conditions/<cond>/maxcos.npy         [n_pairs, d_sae] per-latent max |cos|
 *                                        of seed a's latents to seed b's, one
 *                                        row per pair in the order of "pairs"
 *   conditions/<cond>/truth_maxcos.npy   [n_seeds, n_features] (synthetic data):
 *                                        per true feature, max |cos| to the SAE
 *
 * Results format: ledger/FORMAT.md, "Results format" (the one description;
 * ledger/index.c loads it into the samples table).
 */
#ifndef LG_RUN_H
#define LG_RUN_H

#include <signal.h>

#include <cjson/cJSON.h>

#include "engine/backend.h"
#include "engine/study.h"

typedef struct {
    int cells_done, cells_total;
    const char *condition;
    uint64_t seed;
    long step, steps;
    double loss, fvu;
    double elapsed; /* seconds since the run started */
    double work_done, work_total; /* training steps done / planned over the whole run */
    const uint64_t *seeds;        /* the seeds training together [nseeds] (seed = seeds[0]) */
    int nseeds;                   /* > 1 while a seed-batched group trains */
} lg_run_progress;

typedef void (*lg_run_progress_fn)(void *ctx, const lg_run_progress *p);

typedef struct {
    const lg_backend *be;
    const char *outdir;            /* existing, empty folder */
    lg_run_progress_fn progress;   /* may be NULL; called every ~progress_every steps and per cell */
    void *progress_ctx;
    int progress_every;            /* steps; 0 = 50 */
    /* Cell filter (ledger replay): NULL runs every cell; else [n_conds *
     * n_seeds] flags, cells[c * n_seeds + i] != 0 runs seed i of condition c
     * (plan order). Only the selected cells are initialised, trained (the
     * selected seeds of a condition seed-batched among themselves: each seed
     * is computed as when trained alone) and evaluated, giving the same
     * weights files and cell metrics as the full run. A condition with every
     * seed selected also gets its pairs, per-seed means and condition files;
     * a condition with some seeds selected lists only their cells (no pairs,
     * seeds or condition files); one with none is left out of the results. */
    const unsigned char *cells;
    /* Stop and resume. When *stop becomes non-zero (a signal handler sets
     * it) the run abandons the seed group in training at its next step and
     * returns LG_ESTOPPED; outdir then holds every finished group's files
     * and a marker per group (outdir/.resume/<cond>/group-<first seed
     * index>.json: seeds, final losses, data digest, backend, engine
     * version, the SHA-256 of each weight file). With resume set, a group
     * whose marker matches (same seeds, data, backend and engine, weight
     * files unchanged) is not trained again: its weights are read back from
     * outdir (exact float32) and evaluated, so the results and files equal
     * those of an uninterrupted run. Any mismatch retrains the group. */
    volatile const sig_atomic_t *stop; /* may be NULL */
    int resume;
    /* Sharding (scale-out). The unit of work is a seed group of a trained
     * condition (random-init controls are not trained and belong to no
     * group). Groups are numbered 0.. in plan order: conditions in study
     * order, within a condition its seed groups in seed order. With
     * shard_count N > 0, only the groups g with g % N == shard_index - 1
     * (shard_index 1..N) are trained (resume implied: a group whose marker
     * matches is skipped), each written as weight files then its marker (the
     * marker, written last with temp + fsync + rename, is what makes a group
     * complete); nothing is evaluated, no pair is compared and no results are
     * made (out->results NULL). */
    int shard_index, shard_count;
    /* check_only: no training and no evaluation; out->groups says which
     * groups outdir holds complete (marker matches, weight files re-hashed).
     * staged_only (gather): like resume, but a group without a matching
     * marker is never trained: the run fails with LG_ECHECK naming it. */
    int check_only, staged_only;
    /* When set, markers carry this plan digest and a marker of another plan
     * does not match (lg_study_plan_digest). */
    const char *plan_digest;
} lg_run_options;

/* The seeds of a condition train together in one multi-seed trainer
 * (train.h), in groups whose trainers take at most this much backend memory
 * (at least one seed per group). Results do not depend on the grouping: each
 * seed keeps its own batch order. */
#define LG_RUN_SEED_BATCH_BYTES (8.0 * 1024 * 1024 * 1024)

typedef struct {
    char *name;       /* relative to outdir */
    char *path;       /* full path */
    const char *media_type;
} lg_out_file;

/* One seed group of the plan (see lg_run_options' sharding). */
typedef struct {
    int index;              /* 0.. in plan order */
    const char *condition;  /* the condition's id (owned by the study) */
    int first, n;           /* seeds first..first+n-1 (indexes into the study's seeds) */
    int state;              /* LG_GROUP_* */
} lg_run_group;

enum {
    LG_GROUP_OTHER = 0,     /* another shard's (not looked at) */
    LG_GROUP_TRAINED = 1,   /* trained (and marked) by this call */
    LG_GROUP_STAGED = 2,    /* complete in outdir: taken from its marker */
    LG_GROUP_MISSING = 3    /* no matching marker (check_only, staged_only) */
};

typedef struct {
    cJSON *results;         /* owned */
    lg_out_file *files;     /* owned */
    size_t nfiles;
    char data_digest[65];
    int diverged;           /* a cell diverged: results are partial, never evidence */
    char failure[512];      /* the divergence message */
    int groups_done;        /* seed groups trained (and marked) by this call */
    int groups_resumed;     /* seed groups taken from outdir's markers (opt->resume) */
    lg_run_group *groups;   /* owned: every group of the plan that was reached, in plan order */
    int ngroups;
} lg_run_result;

/* Executes every cell of the study. On divergence returns LG_EDIVERGED with
 * out->diverged set, out->failure the message and out->results the partial
 * results (so the caller can record a failed run). */
int lg_study_execute(const lg_study *s, const lg_run_options *opt, lg_run_result *out);
void lg_run_result_release(lg_run_result *r);

/* The metrics of one seed pair of condition c, computed and named as a run
 * records them in "pairs" (mmcs, mmcs_ab, mmcs_ba, mmcs_signed, and mcc,
 * shared_frac when the matching runs), added to `metrics`. W_dec_a, W_dec_b
 * [d_sae, d]. *mmcs_out / *mcc_out (may be NULL) get mmcs and mcc (NaN when
 * not computed); maxcos [d_sae] (may be NULL) a's per-latent max |cos|. */
int lg_run_pair_metrics(const lg_study *s, const lg_condition *c, const float *W_dec_a, const float *W_dec_b, int d,
                        cJSON *metrics, double *mmcs_out, double *mcc_out, float *maxcos);
/* Seed i's "seeds" metrics (mmcs_mean, mcc_mean when finite) from the
 * symmetric [ns, ns] pair matrices, summed in seed order as a run does. */
int lg_run_seed_metrics(const double *pair_mmcs, const double *pair_mcc, int ns, int i, cJSON *metrics);
/* The SAE shape of condition c on d-dimensional data. */
int lg_run_cell_config(const lg_study *s, const lg_condition *c, int d, lg_sae_config *cfg);

/* Re-evaluation of stored cells (ledger verify --recompute): the study's
 * data prepared exactly as lg_study_execute prepares it (same split, held-out
 * rows and b_dec initialisation), so that lg_run_eval_cell computes a cell's
 * metrics with the same code and inputs as the run did: mse, fvu,
 * explained_variance, l0, dead_frac, dense_frac and, on synthetic data,
 * truth_mmcs, truth_recovered, truth_mcc (not final_loss, which only
 * training gives). data_digest gets lg_dataset_digest of the data. */
typedef struct lg_run_eval lg_run_eval;
int lg_run_eval_open(const lg_study *s, const lg_backend *be, char data_digest[65], lg_run_eval **out);
/* w: the cell's trained weights, or NULL for its random-init weights (what a
 * control=random cell is). Metrics are added to `metrics`. */
int lg_run_eval_cell(lg_run_eval *ev, const lg_condition *c, uint64_t seed, const lg_sae_weights *w, cJSON *metrics);
void lg_run_eval_free(lg_run_eval *ev);
/* The plan's digest: SHA-256 over "ledger-plan-1", the spec digest, the data
 * digest, the engine version and the backend name (hex into plan_hex; the
 * data digest into data_hex when not NULL). Opens (and for synthetic data,
 * generates) the data source once. */
int lg_study_plan_digest(const lg_study *s, const lg_backend *be, char plan_hex[65], char data_hex[65]);

/* "arch=topk,k=4" -> "arch-topk_k-4" into buf. */
void lg_condition_file_id(const char *id, char *buf, size_t n);

#endif
