/*
 * run.c - executes a study (see run.h).
 *
 * Order of work: the data source is opened once and split once (train /
 * held-out rows, LG_STREAM_SPLIT with the study's split_seed); b_dec's
 * initial value (mean or geometric median of the training rows) is computed
 * once per kind. Conditions are processed one at a time so that only one
 * condition's dictionaries are in memory: all seeds are trained (or, for a
 * random-init control, initialised), evaluated on the held-out rows, written,
 * and then every seed pair is compared.
 *
 * Seed batching: the seeds of a condition train together in one multi-seed
 * trainer (train.h; all of them, or groups that fit LG_RUN_SEED_BATCH_BYTES),
 * one batch per seed per step. Each seed keeps its own batch order and the trainer
 * computes each seed as a single-seed trainer would, so results and files are
 * those of training the seeds one after another, divergence included: the
 * first seed (in study order) that diverges fails the run, seeds before it
 * finish and are recorded, later ones are dropped (train_seeds).
 *
 * Batch order: for seed s, epoch e is a Fisher-Yates permutation of the
 * training rows drawn from Philox(seed s, stream LG_STREAM_BATCH + 256*e);
 * step t takes rows [t*B, (t+1)*B) of the concatenated epochs. The batch of a
 * step is therefore a pure function of (seed, step), identical on every
 * backend and across a save/resume.
 *
 * Cross-seed consistency is computed on W_dec rows with the ABSOLUTE cosine
 * (HUSAI's PWMCC convention: its random baseline 0.298829 at d=128, m=1024 is
 * the |cos| null); the signed variant is recorded as mmcs_signed.
 */
#include "engine/run.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "artifacts/npy.h"
#include "artifacts/safetensors.h"
#include "base/sha256.h"
#include "engine/arch_route.h"
#include "engine/consistency.h"
#include "engine/curve.h"
#include "engine/consistency_obj.h"
#include "engine/data.h"
#include "engine/engine.h"
#include "engine/recon.h"
#include "engine/arch_hier.h"
#include "engine/schedule.h"
#include "base/rng.h"
#include "engine/sae.h"
#include "engine/train.h"
#include "engine/transcoder.h"

void lg_condition_file_id(const char *id, char *buf, size_t n)
{
    size_t i;
    for (i = 0; id[i] && i + 1 < n; i++) {
        char c = id[i];
        if (c == '=')
            c = '-';
        else if (c == ',')
            c = '_';
        else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                   c == '_'))
            c = '_';
        buf[i] = c;
    }
    buf[i] = '\0';
}

/* ---- batch order ------------------------------------------------------------ */

typedef struct {
    const int64_t *rows; /* training rows */
    int64_t n;
    uint64_t seed;
    int64_t *perm;       /* permutation of the current epoch */
    long epoch;          /* -1 = none */
} batcher;

static int batcher_init(batcher *b, const int64_t *rows, int64_t n, uint64_t seed)
{
    b->rows = rows;
    b->n = n;
    b->seed = seed;
    b->epoch = -1;
    b->perm = lg_malloc((size_t)n * sizeof(int64_t));
    return b->perm ? 0 : LG_ENOMEM;
}

static void batcher_epoch(batcher *b, long e)
{
    lg_rng r;
    if (b->epoch == e)
        return;
    memcpy(b->perm, b->rows, (size_t)b->n * sizeof(int64_t));
    lg_rng_init(&r, b->seed, LG_STREAM_BATCH + 256u * (uint64_t)e);
    lg_rng_shuffle_i64(&r, b->perm, b->n);
    b->epoch = e;
}

/* idx [B] = the rows of step `step`. */
static void batcher_rows(batcher *b, long step, int B, int64_t *idx)
{
    int64_t pos = (int64_t)step * B;
    int i;
    for (i = 0; i < B; i++, pos++) {
        batcher_epoch(b, (long)(pos / b->n));
        idx[i] = b->perm[pos % b->n];
    }
}

/* ---- results helpers -------------------------------------------------------- */

static int json_num(cJSON *obj, const char *key, double v)
{
    /* cJSON writes NaN as null, which is what "not computed" should read as */
    return cJSON_AddNumberToObject(obj, key, v) ? 0 : lg_error_set(LG_ENOMEM, "out of memory");
}

typedef struct {
    lg_out_file *files;
    size_t n, cap;
    const char *outdir;
} file_list;

/* Registers outdir/name and makes its parent folder; *path_out is the full path (owned by the list). */
static int files_add(file_list *fl, const char *name, const char *media_type, const char **path_out)
{
    lg_buf full = LG_BUF_INIT;
    char *slash;
    int err;
    if (fl->n == fl->cap) {
        size_t cap = fl->cap ? fl->cap * 2 : 32;
        lg_out_file *p = lg_realloc(fl->files, cap * sizeof(*p));
        if (!p)
            return LG_ENOMEM;
        fl->files = p;
        fl->cap = cap;
    }
    if ((err = lg_path_join(&full, fl->outdir, name)) < 0)
        goto out;
    slash = strrchr(full.ptr, '/');
    *slash = '\0';
    err = lg_mkdir_p(full.ptr, 0755);
    *slash = '/';
    if (err < 0)
        goto out;
    fl->files[fl->n].name = lg_strdup(name);
    fl->files[fl->n].path = lg_buf_detach(&full);
    fl->files[fl->n].media_type = media_type;
    if (!fl->files[fl->n].name || !fl->files[fl->n].path) {
        lg_free(fl->files[fl->n].name);
        lg_free(fl->files[fl->n].path);
        err = LG_ENOMEM;
        goto out;
    }
    *path_out = fl->files[fl->n].path;
    fl->n++;
out:
    lg_buf_release(&full);
    return err;
}

/* ---- one cell ----------------------------------------------------------------- */

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
} run_ctx;

/* Shard, check or gather: the modes in which groups are taken from (or
 * written to) markers whatever opt->resume says. */
static int uses_markers(const lg_run_options *o)
{
    return o->resume || o->shard_count > 0 || o->check_only || o->staged_only;
}

static int group_add(run_ctx *rc, lg_run_result *res, const lg_condition *c, int g0, int gn, int state)
{
    lg_run_group *g;
    if (res->ngroups == rc->group_cap) {
        int cap = rc->group_cap ? rc->group_cap * 2 : 16;
        lg_run_group *p = lg_realloc(res->groups, (size_t)cap * sizeof(*p));
        if (!p)
            return LG_ENOMEM;
        res->groups = p;
        rc->group_cap = cap;
    }
    g = &res->groups[res->ngroups++];
    g->index = rc->group_index++;
    g->condition = c->id;
    g->first = g0;
    g->n = gn;
    g->state = state;
    return 0;
}

static void fill_configs(const lg_cond_params *p, int d, lg_sae_config *cfg, lg_train_config *tc)
{
    int i;
    cfg->arch = p->arch;
    cfg->d_in = d;
    cfg->d_sae = p->d_sae;
    cfg->k = p->k;
    cfg->n_ks = p->arch == LG_ARCH_HIER_TOPK ? p->n_ks : 0;
    for (i = 0; i < cfg->n_ks; i++)
        cfg->ks[i] = p->ks[i];
    lg_train_config_default(tc);
    tc->lr = p->lr;
    tc->steps = p->steps;
    tc->batch = p->batch;
    tc->warmup_steps = p->warmup_steps;
    tc->decay_frac = p->decay_frac;
    tc->grad_clip = p->grad_clip;
    tc->adam_beta1 = p->beta1;
    tc->adam_beta2 = p->beta2;
    tc->adam_eps = p->eps;
    tc->l1_coeff = p->l1_coeff;
    tc->l0_coeff = p->l0_coeff;
    tc->jumprelu_bandwidth = p->jumprelu_bandwidth;
    tc->jumprelu_init_threshold = p->jumprelu_threshold;
    tc->aux_k = p->aux_k;
    tc->aux_coeff = p->aux_k > 0 ? p->aux_coeff : 0;
    tc->dead_after = p->dead_after;
    tc->n_prefixes = p->n_prefixes;
    for (i = 0; i < p->n_prefixes; i++)
        tc->prefixes[i] = p->prefixes[i];
}

static int write_weights(run_ctx *rc, const lg_condition *c, uint64_t seed, const lg_sae_weights *w)
{
    char fid[160], name[256], seedbuf[32], kbuf[32], ksbuf[LG_SAE_MAX_KS * 12];
    const char *path = NULL;
    const int hier = c->p.arch == LG_ARCH_HIER_TOPK, has_opt = hier || c->p.transcoder;
    const char *opt_key = hier ? "ks" : "transcoder", *opt_val = hier ? ksbuf : "true";
    const char *meta[] = {"format", "ledger-sae-1",
                          "architecture", lg_arch_name(c->p.arch),
                          "condition", c->id,
                          "seed", seedbuf,
                          "k", kbuf,
                          "engine_version", LG_ENGINE_VERSION,
                          "study", rc->s->name,
                          opt_key, opt_val}; /* hierarchical_topk's ks or a transcoder's mark, else nothing
                                              * (the others' files are unchanged) */
    lg_tensor_f32 t[7] = {
        {"W_enc", 2, {w->d_in, w->d_sae}, w->W_enc},
        {"b_enc", 1, {w->d_sae}, w->b_enc},
        {"W_dec", 2, {w->d_sae, w->d_in}, w->W_dec},
        {"b_dec", 1, {w->d_in}, w->b_dec},
        {"threshold", 1, {w->d_sae}, w->threshold},
        {"W_router", 2, {w->d_in, w->n_layers}, w->W_router}, /* routesae only */
        {"b_router", 1, {w->n_layers}, w->b_router},
    };
    int err;
    snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)seed);
    snprintf(kbuf, sizeof kbuf, "%d", c->p.k);
    lg_hier_ks_format(c->p.ks, c->p.arch == LG_ARCH_HIER_TOPK ? c->p.n_ks : 0, ksbuf, sizeof ksbuf);
    lg_condition_file_id(c->id, fid, sizeof fid);
    snprintf(name, sizeof name, "cells/%s/seed-%llu.safetensors", fid, (unsigned long long)seed);
    if ((err = files_add(&rc->files, name, "application/vnd.safetensors", &path)) < 0)
        return err;
    return lg_st_write(path, t, w->W_router ? 7 : 5, meta, sizeof(meta) / sizeof(meta[0]) / 2 - (has_opt ? 0 : 1));
}

/* Configs of condition c (training config checked when the cells train). */
static int cell_configs(run_ctx *rc, const lg_condition *c, lg_sae_config *cfg, lg_train_config *tc)
{
    fill_configs(&c->p, rc->d, cfg, tc);
    if ((c->p.arch == LG_ARCH_ROUTESAE || rc->layers > 0) &&
        lg_route_cell_config(cfg, tc, rc->layers, c->p.b_dec_init, rc->s->ood_path != NULL, rc->opt->be->name) < 0)
        return lg_error_wrap("%s: condition %s", rc->s->path, c->id);
    if (lg_sae_config_check(cfg) < 0)
        return lg_error_wrap("%s: condition %s", rc->s->path, c->id);
    if (!c->control_random && c->p.steps > 0 && lg_train_config_check(tc, cfg) < 0)
        return lg_error_wrap("%s: condition %s", rc->s->path, c->id);
    return 0;
}

/* Initial weights of one cell into *w (also what a random-init control is). */
static int init_cell(run_ctx *rc, const lg_condition *c, const lg_sae_config *cfg, uint64_t seed,
                     lg_sae_weights *w)
{
    const lg_cond_params *p = &c->p;
    const float *bdec;
    int err;
    if (p->arch == LG_ARCH_ROUTESAE) /* b_dec: the mean over layers of the data mean */
        return lg_route_init_weights(cfg, rc->layers, seed, p->b_dec_init == 0 ? rc->mean_init : NULL, w);
    if (p->transcoder) { /* b_dec lives in the target's space: the target's mean or median */
        if (p->b_dec_init == 1 && !rc->target_median) {
            if (!(rc->target_median = lg_malloc((size_t)rc->d * sizeof(float))))
                return LG_ENOMEM;
            if ((err = lg_dataset_geometric_median(rc->target, rc->train_rows, rc->n_train, 64, rc->target_median)) < 0)
                return err;
        }
        bdec = p->b_dec_init == 1 ? rc->target_median : p->b_dec_init == 0 ? rc->target_mean : NULL;
    } else if (p->b_dec_init == 1) {
        if (!rc->median_init) {
            if (!(rc->median_init = lg_malloc((size_t)rc->d * sizeof(float))))
                return LG_ENOMEM;
            if ((err = lg_dataset_geometric_median(rc->ds, rc->train_rows, rc->n_train, 64, rc->median_init)) < 0)
                return err;
        }
        bdec = rc->median_init;
    } else
        bdec = p->b_dec_init == 0 ? rc->mean_init : NULL;
    if ((err = lg_sae_init_weights(cfg, lg_cobj_train_seed(p->consistency.weight, seed), bdec, w)) < 0)
        return err;
    if (p->arch == LG_ARCH_JUMPRELU) {
        /* the initial JumpReLU threshold, also what a random-init control uses */
        int j;
        for (j = 0; j < w->d_sae; j++)
            w->threshold[j] = (float)p->jumprelu_threshold;
    }
    return 0;
}

/* The training curves of seeds[0..n) of condition c (train.log_every):
 * registered as outputs, and written from cv[0..n) when cv is not NULL
 * (else they are already in outdir: a resumed group, whose marker checked
 * them). Written before the group's marker, like the weights. */
static int curve_files(run_ctx *rc, const lg_condition *c, const uint64_t *seeds, int n, lg_curve *cv)
{
    char name[256];
    const char *path;
    int i, err;
    for (i = 0; i < n && rc->s->log_every > 0; i++) {
        lg_curve_file_name(c->id, seeds[i], name, sizeof name);
        if ((err = files_add(&rc->files, name, "application/json", &path)) < 0)
            return err;
        if (cv) {
            cv[i].log_every = rc->s->log_every;
            cv[i].steps = c->p.steps;
            cv[i].seed = seeds[i];
            if (!cv[i].condition && !(cv[i].condition = lg_strdup(c->id)))
                return LG_ENOMEM;
            if ((err = lg_curve_write(&cv[i], path)) < 0)
                return err;
        }
    }
    return 0;
}

/* Trains the n seeds seeds[0..n) of condition c together, from w[0..n)
 * (replaced by the trained weights) in one multi-seed trainer; each seed
 * keeps its own batch order, so its result does not depend on n. last [n]:
 * each seed's stats of its last step.
 *
 * Divergence reproduces one-seed-after-another training exactly: when seed j
 * diverges, seeds j.. are frozen (a sequential run would never train past j)
 * and the step is redone for the others, which go on to the end. *n_ok =
 * the number of leading seeds that finished (n when none diverged); seed
 * *n_ok then diverged, with its message in failure, and LG_EDIVERGED is
 * returned after w[0..n_ok) hold their trained weights. cv [n] (NULL when
 * the study logs no curves) gets each seed's curve points (engine/curve.h). */
static int train_seeds(run_ctx *rc, const lg_condition *c, const lg_sae_config *cfg, const lg_train_config *tc,
                       const uint64_t *seeds, int n, lg_sae_weights *w, lg_step_stats *last, int *n_ok,
                       char *failure, size_t failure_len, lg_curve *cv)
{
    const lg_cond_params *p = &c->p;
    const size_t Bd = (size_t)p->batch * rc->d;
    lg_trainer *tr = NULL;
    lg_route_multi *rt = NULL; /* routesae: its host trainer (arch_route.h) instead of tr */
    const int route = cfg->arch == LG_ARCH_ROUTESAE;
    lg_cobj *cobj = NULL; /* train.consistency: couples the seeds of the group (the whole condition) */
    batcher *bt = NULL;
    float *batches = NULL; /* host [n, B, d] */
    float *targets = NULL; /* host [n, B, d], transcoder */
    int64_t *idx = NULL;
    long step;
    int every = rc->opt->progress_every > 0 ? rc->opt->progress_every : 50;
    int alive = n, i, err;

    *n_ok = n;
    if ((err = route               ? lg_route_multi_new(cfg, tc, w, n, &rt)
               : p->transcoder ? lg_trainer_new_transcoder_multi(rc->opt->be, cfg, tc, w, n, &tr)
                               : lg_trainer_new_multi(rc->opt->be, cfg, tc, w, n, &tr)) < 0)
        return err;
    if (p->consistency.weight > 0 && route) { /* the objective hooks the backend trainer */
        err = lg_error_set(LG_EINPUT, "%s: condition %s: train.consistency is not implemented for arch routesae",
                           rc->s->path, c->id);
        goto out;
    }
    if (p->consistency.weight > 0) {
        lg_cobj_config cc = {p->consistency.weight, p->consistency.every, p->consistency.mode};
        if ((err = lg_cobj_new(&cc, n, cfg->d_sae, cfg->d_in, &cobj)) < 0 || (err = lg_cobj_attach(cobj, tr)) < 0) {
            lg_error_wrap("%s: condition %s", rc->s->path, c->id);
            goto out;
        }
    }
    if ((p->transcoder && !(targets = lg_malloc((size_t)n * Bd * sizeof(float)))) ||
        !(batches = lg_malloc((size_t)n * Bd * sizeof(float))) ||
        !(idx = lg_malloc((size_t)p->batch * sizeof(int64_t))) || !(bt = lg_calloc((size_t)n, sizeof(*bt)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++)
        if ((err = batcher_init(&bt[i], rc->train_rows, rc->n_train, lg_cobj_train_seed(p->consistency.weight, seeds[i]))) < 0)
            goto out;
    for (step = 0; step < p->steps; step++) {
        if (rc->opt->stop && *rc->opt->stop) { /* abandon the group: resume trains it again */
            err = lg_error_set(LG_ESTOPPED, "condition %s: stopped at step %ld of %d", c->id, step, p->steps);
            goto out;
        }
        if (lg_sched_lower_failed()) { /* run side by side: an earlier seed failed (train_group) */
            err = lg_error_set(LG_ESTOPPED, "condition %s: an earlier seed failed", c->id);
            goto out;
        }
        lg_sched_share_threads();
        for (i = 0; i < alive; i++) {
            batcher_rows(&bt[i], step, p->batch, idx);
            if ((err = lg_dataset_gather(rc->ds, idx, p->batch, batches + (size_t)i * Bd)) < 0 ||
                (targets && (err = lg_dataset_gather(rc->target, idx, p->batch, targets + (size_t)i * Bd)) < 0))
                goto out;
        }
        while ((err = route     ? lg_route_multi_step(rt, batches, last)
                      : targets ? lg_trainer_step_target_multi(tr, batches, targets, last)
                                : lg_trainer_step_multi(tr, batches, last)) == LG_EDIVERGED) {
            int j = route ? lg_route_multi_diverged_seed(rt) : lg_trainer_diverged_seed(tr);
            snprintf(failure, failure_len, "condition %s seed %llu: training diverged at step %ld: loss is %s", c->id,
                     (unsigned long long)seeds[j], step + 1, isnan(last[j].loss) ? "NaN" : "Inf");
            for (i = j; i < alive; i++)
                if ((err = route ? lg_route_multi_set_active(rt, i, 0) : lg_trainer_set_active(tr, i, 0)) < 0)
                    goto out;
            alive = *n_ok = j;
            if (alive == 0)
                break;
        }
        if (err < 0 && err != LG_EDIVERGED)
            goto out;
        if (alive == 0)
            break;
        if (cv && (err = lg_curve_record(cv, alive, tr, last, p->steps, rc->s->log_every, tc->dead_after, p->batch)) < 0)
            goto out;
        if (rc->opt->progress && ((step + 1) % every == 0 || step + 1 == p->steps)) {
            lg_run_progress pr = {rc->cells_done, rc->cells_total, c->id, seeds[0], step + 1, p->steps,
                                  last[0].loss, last[0].fvu, lg_now_seconds() - rc->t0,
                                  rc->work_done + (double)(step + 1) * alive, rc->work_total, seeds, alive};
            rc->opt->progress(rc->opt->progress_ctx, &pr);
        }
    }
    rc->work_done += (double)p->steps * n;
    for (i = 0; i < *n_ok; i++) {
        lg_sae_weights_release(&w[i]);
        if ((err = route ? lg_route_multi_get_weights(rt, i, &w[i]) : lg_trainer_get_weights_multi(tr, i, &w[i])) < 0)
            goto out;
    }
    err = *n_ok < n ? lg_error_set(LG_EDIVERGED, "%s", failure) : 0;
out:
    lg_trainer_free(tr);
    lg_route_multi_free(rt);
    lg_cobj_free(cobj);
    for (i = 0; bt && i < n; i++)
        lg_free(bt[i].perm);
    lg_free(bt);
    lg_free(batches);
    lg_free(targets);
    lg_free(idx);
    return err;
}

/* ---- seeds side by side on the CPU (engine/schedule.h) ------------------------- */

typedef struct {
    run_ctx *rc;
    const lg_condition *c;
    const lg_sae_config *cfg;
    const lg_train_config *tc;
    const uint64_t *seeds;
    lg_sae_weights *w;
    lg_step_stats *last;
    char (*failure)[512]; /* [n] */
    lg_curve *cv;         /* [n] training curves, or NULL (no train.log_every) */
    pthread_mutex_t mu;   /* progress: one report at a time, work summed over the jobs */
    double base, *work;   /* rc->work_done before; [n] steps each job has reported */
} group_jobs;

typedef struct {
    group_jobs *g;
    int i;
    run_ctx rc;          /* the job's copy (train_seeds reads it; its progress goes to job_progress) */
    lg_run_options opt;
} group_job;

static void job_progress(void *ctx, const lg_run_progress *p)
{
    group_job *j = ctx;
    group_jobs *g = j->g;
    lg_run_progress pr = *p;
    int i;
    pthread_mutex_lock(&g->mu);
    g->work[j->i] = p->work_done - g->base;
    pr.work_done = g->base;
    for (i = 0; g->work[i] >= 0.0; i++) /* the list ends with -1 */
        pr.work_done += g->work[i];
    /* the group as one: its seeds, and the mean of their steps */
    pr.seeds = g->seeds;
    pr.nseeds = i;
    pr.step = (long)((pr.work_done - g->base) / i);
    g->rc->opt->progress(g->rc->opt->progress_ctx, &pr);
    pthread_mutex_unlock(&g->mu);
}

static int job_train(void *ctx, int i)
{
    group_job *j = (group_job *)ctx + i;
    group_jobs *g = j->g;
    int n_ok = 1;
    return train_seeds(&j->rc, g->c, g->cfg, g->tc, g->seeds + i, 1, g->w + i, g->last + i, &n_ok,
                       g->failure[i], sizeof g->failure[i], g->cv ? g->cv + i : NULL);
}

/* train_seeds for the n seeds of a group, with the same results and the
 * same failure reporting: on the CPU with two or more OpenMP threads, the
 * seeds train one per worker (schedule.h), each alone (the multi-seed
 * trainer of one seed), and the first seed that failed, in seed order,
 * decides the outcome as in a sequential run (a later seed's training is
 * then dropped). Elsewhere, train_seeds itself. */
static int train_group(run_ctx *rc, const lg_condition *c, const lg_sae_config *cfg, const lg_train_config *tc,
                       const uint64_t *seeds, int n, lg_sae_weights *w, lg_step_stats *last, int *n_ok,
                       char *failure, size_t failure_len, lg_curve *cv)
{
    group_jobs g;
    group_job *jobs = NULL;
    lg_sched_result *res = NULL;
    /* train.consistency couples the seeds of the group: they step together */
    int workers = strcmp(rc->opt->be->name, "cpu") == 0 && n > 1 && !(c->p.consistency.weight > 0)
                      ? lg_sched_workers(n) : 1, i, err = 0;
    if (workers <= 1)
        return train_seeds(rc, c, cfg, tc, seeds, n, w, last, n_ok, failure, failure_len, cv);
    memset(&g, 0, sizeof g);
    g.rc = rc;
    g.c = c;
    g.cfg = cfg;
    g.tc = tc;
    g.seeds = seeds;
    g.w = w;
    g.last = last;
    g.cv = cv;
    g.base = rc->work_done;
    if (!(jobs = lg_calloc((size_t)n, sizeof(*jobs))) || !(res = lg_calloc((size_t)n, sizeof(*res))) ||
        !(g.failure = lg_calloc((size_t)n, sizeof(*g.failure))) ||
        !(g.work = lg_calloc((size_t)n + 1, sizeof(double)))) {
        err = LG_ENOMEM;
        goto out;
    }
    g.work[n] = -1.0;
    if (pthread_mutex_init(&g.mu, NULL) != 0) {
        err = lg_error_set(LG_EIO, "condition %s: cannot create a mutex", c->id);
        goto out;
    }
    for (i = 0; i < n; i++) {
        jobs[i].g = &g;
        jobs[i].i = i;
        jobs[i].rc = *rc;
        jobs[i].opt = *rc->opt;
        jobs[i].rc.opt = &jobs[i].opt;
        if (rc->opt->progress) {
            jobs[i].opt.progress = job_progress;
            jobs[i].opt.progress_ctx = &jobs[i];
        }
    }
    err = lg_sched_run(n, workers, job_train, jobs, res);
    pthread_mutex_destroy(&g.mu);
    if (err < 0)
        goto out;
    rc->work_done = g.base + (double)c->p.steps * n;
    *n_ok = n;
    for (i = 0; i < n && res[i].code >= 0; i++)
        ;
    if (i < n && res[i].code == LG_EDIVERGED) { /* seed i diverged: seeds 0..i-1 trained */
        *n_ok = i;
        snprintf(failure, failure_len, "%s", g.failure[i]);
        err = lg_error_set(LG_EDIVERGED, "%s", failure);
    } else if (i < n) {
        err = lg_error_set(res[i].code, "%s", res[i].msg);
    }
out:
    lg_free(jobs);
    lg_free(res);
    lg_free(g.failure);
    lg_free(g.work);
    return err;
}

#define LG_RUN_OOD_CHUNK 4096

/* The cell's SAE on every row of the OOD file, streamed in chunks (the file is
 * memory-mapped and never copied whole): metrics ood_fvu, ood_explained_variance,
 * ood_mse, ood_l0, ood_dead_frac, ood_dense_frac. */
static int eval_ood(run_ctx *rc, const lg_sae_config *cfg, const lg_sae_weights *w, int transcoder, cJSON *metrics)
{
    lg_recon *r = NULL;
    lg_recon_metrics rm;
    int64_t off, n = lg_dataset_rows(rc->ood), i;
    int err;
    if ((err = transcoder ? lg_recon_new_transcoder(rc->opt->be, cfg, w, LG_RUN_OOD_CHUNK, &r)
                          : lg_recon_new(rc->opt->be, cfg, w, LG_RUN_OOD_CHUNK, &r)) < 0)
        return err;
    for (off = 0; off < n; off += LG_RUN_OOD_CHUNK) {
        int m = n - off < LG_RUN_OOD_CHUNK ? (int)(n - off) : LG_RUN_OOD_CHUNK;
        for (i = 0; i < m; i++)
            rc->ood_idx[i] = off + i;
        if ((err = lg_dataset_gather(rc->ood, rc->ood_idx, m, rc->ood_x)) < 0)
            goto out;
        if (transcoder ? ((err = lg_dataset_gather(rc->ood_target, rc->ood_idx, m, rc->ood_y)) < 0 ||
                          (err = lg_recon_add_target(r, rc->ood_x, rc->ood_y, m)) < 0)
                       : (err = lg_recon_add(r, rc->ood_x, m)) < 0)
            goto out;
    }
    if ((err = lg_recon_finish(r, rc->s->dense_threshold, &rm)) < 0)
        goto out;
    if ((err = json_num(metrics, "ood_mse", rm.mse)) < 0 || (err = json_num(metrics, "ood_fvu", rm.fvu)) < 0 ||
        (err = json_num(metrics, "ood_explained_variance", rm.explained_variance)) < 0 ||
        (err = json_num(metrics, "ood_l0", rm.l0)) < 0 || (err = json_num(metrics, "ood_dead_frac", rm.dead_frac)) < 0)
        goto out;
    err = json_num(metrics, "ood_dense_frac", rm.dense_frac);
out:
    lg_recon_free(r);
    return err;
}

/* The ground truth a cell's decoder is compared with: the data's dictionary
 * D for an SAE, the synthetic target's output dictionary E for a transcoder
 * (NULL when there is none: a transcoder on a target file). */
static const float *cell_truth(const run_ctx *rc, const lg_condition *c)
{
    return c->p.transcoder ? rc->target_truth : rc->truth;
}

/* Writes a trained cell's weights, evaluates the cell and fills its metrics.
 * last: its last training step (NULL when it was not trained). */
static int finish_cell(run_ctx *rc, const lg_condition *c, const lg_sae_config *cfg, uint64_t seed,
                       const lg_sae_weights *w, const lg_step_stats *last, cJSON *metrics, float *truth_maxcos)
{
    lg_recon_metrics rm;
    int err;
    const float *truth = cell_truth(rc, c);
    if (last && (err = write_weights(rc, c, seed, w)) < 0)
        return err;
    if ((err = cfg->arch == LG_ARCH_ROUTESAE
                   ? lg_route_eval_json(cfg, w, rc->eval_x, (long)rc->n_eval, rc->s->dense_threshold, &rm, metrics)
               : c->p.transcoder
                   ? lg_transcoder_eval(rc->opt->be, cfg, w, rc->eval_x, rc->eval_y, (long)rc->n_eval,
                                        rc->s->dense_threshold, &rm)
                   : lg_recon_eval(rc->opt->be, cfg, w, rc->eval_x, (long)rc->n_eval, rc->s->dense_threshold, &rm)) < 0)
        return err;
    if ((err = json_num(metrics, "mse", rm.mse)) < 0 || (err = json_num(metrics, "fvu", rm.fvu)) < 0 ||
        (err = json_num(metrics, "explained_variance", rm.explained_variance)) < 0 ||
        (err = json_num(metrics, "l0", rm.l0)) < 0 || (err = json_num(metrics, "dead_frac", rm.dead_frac)) < 0 ||
        (err = json_num(metrics, "dense_frac", rm.dense_frac)) < 0)
        return err;
    if (last && (err = json_num(metrics, "final_loss", last->loss)) < 0)
        return err;
    if (!c->control_random && c->p.steps > 0 && rc->target && /* equal compute (transcoder.h), in studies with a
                                                                   * target; a function of the condition, so
                                                                   * verify --recompute checks it too */
        ((err = json_num(metrics, "train_tokens", (double)c->p.steps * c->p.batch)) < 0 ||
         (err = json_num(metrics, "train_gemm_flops",
                         (double)c->p.steps * lg_transcoder_gemm_flops(c->p.transcoder, c->p.batch, rc->d, c->p.d_sae))) < 0))
        return err;
    /* hierarchical_topk: the same metrics at every budget (mse_k8, ...) */
    if ((err = lg_hier_eval_budgets(rc->opt->be, cfg, w, rc->eval_x, (long)rc->n_eval, rc->s->dense_threshold,
                                    metrics)) < 0)
        return err;
    if (rc->ood && (err = eval_ood(rc, cfg, w, c->p.transcoder, metrics)) < 0)
        return err;
    if (truth) {
        lg_sim_options so;
        lg_truth_recovery tr_rec;
        lg_sim_options_init(&so);
        so.abs_cos = 1;
        so.shared_threshold = rc->s->shared_threshold;
        so.mcc = rc->s->hungarian && (size_t)rc->s->synth.n_features * (size_t)w->d_sae <=
                                         (size_t)rc->s->hungarian_max * (size_t)rc->s->hungarian_max;
        if ((err = lg_dict_recovery(truth, rc->s->synth.n_features, w->W_dec, w->d_sae, rc->d, &so, &tr_rec,
                                    truth_maxcos)) < 0)
            return err;
        if ((err = json_num(metrics, "truth_mmcs", tr_rec.mmcs_truth)) < 0 ||
            (err = json_num(metrics, "truth_recovered", tr_rec.recovered_frac)) < 0 ||
            (tr_rec.mcc_computed && (err = json_num(metrics, "truth_mcc", tr_rec.mcc)) < 0))
            return err;
    }
    return 0;
}

/* How many seeds train together: all of them unless their trainers would
 * take more than LG_RUN_SEED_BATCH_BYTES. */
static int seed_group_size(run_ctx *rc, const lg_sae_config *cfg, const lg_train_config *tc)
{
    int ns = rc->s->n_seeds, g;
    double per = lg_trainer_bytes_per_seed(cfg, tc);
    g = per > 0 ? (int)(LG_RUN_SEED_BATCH_BYTES / per) : ns;
    return g < 1 ? 1 : g < ns ? g : ns;
}
/* ---- stop and resume: one marker per finished seed group (run.h) ----------------- */

static int group_marker_path(run_ctx *rc, const lg_condition *c, int g0, lg_buf *out)
{
    char fid[160];
    lg_condition_file_id(c->id, fid, sizeof fid);
    lg_buf_clear(out);
    return lg_buf_printf(out, "%s/.resume/%s/group-%d.json", rc->opt->outdir, fid, g0);
}

/* The digest of a seed's curve file (train.log_every) appended to the
 * marker's "curves_sha256" (made on first use). */
static int mark_curve(run_ctx *rc, const lg_condition *c, uint64_t seed, cJSON *m)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(m, "curves_sha256");
    lg_buf path = LG_BUF_INIT;
    char name[256], hex[65];
    int err;
    lg_curve_file_name(c->id, seed, name, sizeof name);
    if ((!a && !(a = cJSON_AddArrayToObject(m, "curves_sha256"))))
        return lg_error_set(LG_ENOMEM, "out of memory");
    if ((err = lg_path_join(&path, rc->opt->outdir, name)) == 0 && (err = lg_sha256_file(path.ptr, hex, NULL)) == 0 &&
        !cJSON_AddItemToArray(a, cJSON_CreateString(hex)))
        err = lg_error_set(LG_ENOMEM, "out of memory");
    lg_buf_release(&path);
    return err;
}

/* 1 when seed i's curve file in outdir hashes to the marker's digest (or the study logs no curves). */
static int curve_marked(run_ctx *rc, const lg_condition *c, uint64_t seed, const cJSON *m, int i)
{
    const cJSON *dg = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "curves_sha256"), i);
    lg_buf path = LG_BUF_INIT;
    char name[256], hex[65];
    int ok;
    if (rc->s->log_every <= 0)
        return 1;
    lg_curve_file_name(c->id, seed, name, sizeof name);
    ok = cJSON_IsString(dg) && lg_path_join(&path, rc->opt->outdir, name) == 0 &&
         lg_sha256_file(path.ptr, hex, NULL) == 0 && strcmp(hex, dg->valuestring) == 0;
    lg_buf_release(&path);
    return ok;
}

/* Written after the group's weight files (lg_st_write is atomic), so a
 * marker always names complete files. last [gn]. */
static int group_mark(run_ctx *rc, const lg_condition *c, const uint64_t *gseeds, int g0, int gn,
                      const lg_step_stats *last,
                      const lg_run_result *res)
{
    cJSON *m = cJSON_CreateObject(), *seeds, *losses, *digests;
    lg_buf path = LG_BUF_INIT;
    char *text = NULL, *slash, fid[160], hex[65];
    int i, err = 0;
    if (!m || !cJSON_AddNumberToObject(m, "format", 1) || !cJSON_AddStringToObject(m, "condition", c->id) ||
        !cJSON_AddStringToObject(m, "data_sha256", res->data_digest) ||
        !cJSON_AddStringToObject(m, "backend", rc->opt->be->name) ||
        !cJSON_AddStringToObject(m, "engine_version", LG_ENGINE_VERSION) ||
        (rc->opt->plan_digest && !cJSON_AddStringToObject(m, "plan_sha256", rc->opt->plan_digest)) ||
        (rc->target && !cJSON_AddStringToObject(m, "target_sha256", rc->target_digest)) ||
        !(seeds = cJSON_AddArrayToObject(m, "seeds")) || !(losses = cJSON_AddArrayToObject(m, "final_loss")) ||
        !(digests = cJSON_AddArrayToObject(m, "weights_sha256"))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    lg_condition_file_id(c->id, fid, sizeof fid);
    for (i = 0; i < gn; i++) {
        /* the weights' digest: a kept file that changed since is trained again */
        lg_buf_clear(&path);
        if ((err = lg_buf_printf(&path, "%s/cells/%s/seed-%llu.safetensors", rc->opt->outdir, fid,
                                 (unsigned long long)gseeds[i])) < 0 ||
            (err = lg_sha256_file(path.ptr, hex, NULL)) < 0)
            goto out;
        if (!cJSON_AddItemToArray(seeds, cJSON_CreateNumber((double)gseeds[i])) ||
            !cJSON_AddItemToArray(losses, cJSON_CreateNumber(last[i].loss)) ||
            !cJSON_AddItemToArray(digests, cJSON_CreateString(hex))) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        if (rc->s->log_every > 0 && (err = mark_curve(rc, c, gseeds[i], m)) < 0)
            goto out;
    }
    if (!(text = cJSON_PrintUnformatted(m))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    if ((err = group_marker_path(rc, c, g0, &path)) < 0)
        goto out;
    slash = strrchr(path.ptr, '/');
    *slash = '\0';
    err = lg_mkdir_p(path.ptr, 0755);
    *slash = '/';
    if (err < 0 || (err = lg_file_write_atomic(path.ptr, text, strlen(text))) < 0)
        goto out;
out:
    cJSON_free(text);
    cJSON_Delete(m);
    lg_buf_release(&path);
    return err;
}

/* Copies tensor `name` [n] of f into dst; 0 when it is F32 of n elements. */
static int load_tensor(lg_st_file *f, const char *name, size_t n, float *dst)
{
    lg_tensor_view v;
    if (lg_st_get(f, name, &v) < 0 || v.dtype != LG_DT_F32 || v.nbytes != n * sizeof(float))
        return -1;
    memcpy(dst, v.data, v.nbytes);
    return 0;
}

/* 1 when group g0 (gn seeds) of condition c has a matching marker and its
 * weight files read back into w[0..gn) (last[i].loss from the marker); 0
 * when it must be trained (no marker, another data digest, backend or
 * engine, a missing or malformed file). */
static int group_load(run_ctx *rc, const lg_condition *c, const uint64_t *gseeds, int g0, int gn, lg_sae_weights *w,
                      lg_step_stats *last,
                      const lg_run_result *res)
{
    lg_buf path = LG_BUF_INIT, text = LG_BUF_INIT;
    cJSON *m = NULL;
    const cJSON *seeds, *losses, *digests;
    lg_st_file *f = NULL;
    char fid[160], hex[65];
    int i, ok = 0;
    if (group_marker_path(rc, c, g0, &path) < 0 || !lg_path_exists(path.ptr) ||
        lg_file_read(path.ptr, 1 << 20, &text) < 0 || !(m = cJSON_ParseWithLength(text.ptr, text.len)))
        goto out;
    seeds = cJSON_GetObjectItemCaseSensitive(m, "seeds");
    losses = cJSON_GetObjectItemCaseSensitive(m, "final_loss");
    digests = cJSON_GetObjectItemCaseSensitive(m, "weights_sha256");
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "data_sha256")) ||
        strcmp(cJSON_GetObjectItemCaseSensitive(m, "data_sha256")->valuestring, res->data_digest) != 0 ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "backend")) ||
        strcmp(cJSON_GetObjectItemCaseSensitive(m, "backend")->valuestring, rc->opt->be->name) != 0 ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "engine_version")) ||
        strcmp(cJSON_GetObjectItemCaseSensitive(m, "engine_version")->valuestring, LG_ENGINE_VERSION) != 0 ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "condition")) ||
        strcmp(cJSON_GetObjectItemCaseSensitive(m, "condition")->valuestring, c->id) != 0 ||
        cJSON_GetArraySize(seeds) != gn || cJSON_GetArraySize(losses) != gn || cJSON_GetArraySize(digests) != gn)
        goto out;
    if (rc->target && (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "target_sha256")) ||
                       strcmp(cJSON_GetObjectItemCaseSensitive(m, "target_sha256")->valuestring, rc->target_digest) != 0))
        goto out;
    if (rc->opt->plan_digest && (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "plan_sha256")) ||
                                 strcmp(cJSON_GetObjectItemCaseSensitive(m, "plan_sha256")->valuestring,
                                        rc->opt->plan_digest) != 0))
        goto out;
    lg_condition_file_id(c->id, fid, sizeof fid);
    for (i = 0; i < gn; i++) {
        const cJSON *sd = cJSON_GetArrayItem(seeds, i), *ls = cJSON_GetArrayItem(losses, i);
        const cJSON *dg = cJSON_GetArrayItem(digests, i);
        size_t di = (size_t)w[i].d_in, ds = (size_t)w[i].d_sae;
        if (!cJSON_IsNumber(sd) || sd->valuedouble != (double)gseeds[i] || !cJSON_IsNumber(ls))
            goto out;
        lg_buf_clear(&path);
        if (lg_buf_printf(&path, "%s/cells/%s/seed-%llu.safetensors", rc->opt->outdir, fid,
                          (unsigned long long)gseeds[i]) < 0 ||
            !cJSON_IsString(dg) || lg_sha256_file(path.ptr, hex, NULL) < 0 || strcmp(hex, dg->valuestring) != 0 ||
            !curve_marked(rc, c, gseeds[i], m, i) || lg_st_open(path.ptr, &f) < 0)
            goto out;
        if (load_tensor(f, "W_enc", di * ds, w[i].W_enc) < 0 || load_tensor(f, "b_enc", ds, w[i].b_enc) < 0 ||
            load_tensor(f, "W_dec", ds * di, w[i].W_dec) < 0 || load_tensor(f, "b_dec", di, w[i].b_dec) < 0 ||
            load_tensor(f, "threshold", ds, w[i].threshold) < 0 ||
            (w[i].W_router && (load_tensor(f, "W_router", di * w[i].n_layers, w[i].W_router) < 0 ||
                               load_tensor(f, "b_router", (size_t)w[i].n_layers, w[i].b_router) < 0)))
            goto out;
        lg_st_close(f);
        f = NULL;
        memset(&last[i], 0, sizeof last[i]);
        last[i].loss = ls->valuedouble;
    }
    ok = 1;
out:
    lg_st_close(f);
    cJSON_Delete(m);
    lg_buf_release(&path);
    lg_buf_release(&text);
    lg_error_clear();
    return ok;
}

/* ---- pair and seed metrics (shared with ledger verify --recompute) ---------- */

int lg_run_pair_metrics(const lg_study *s, const lg_condition *c, const float *W_dec_a, const float *W_dec_b, int d,
                        cJSON *metrics, double *mmcs_out, double *mcc_out, float *maxcos)
{
    lg_pair_metrics pm;
    int err;
    if ((err = lg_pair_metrics_compute(W_dec_a, W_dec_b, c->p.d_sae, d, s->shared_threshold,
                                       s->hungarian && c->p.d_sae <= s->hungarian_max, &pm, maxcos)) < 0 ||
        (err = lg_pair_metrics_to_json(&pm, metrics)) < 0)
        return err;
    if (mmcs_out)
        *mmcs_out = pm.abs.mmcs;
    if (mcc_out)
        *mcc_out = pm.abs.mcc_computed ? pm.abs.mcc : NAN;
    return 0;
}

int lg_run_seed_metrics(const double *pair_mmcs, const double *pair_mcc, int ns, int i, cJSON *metrics)
{
    double sm = 0, sc = 0;
    int j;
    for (j = 0; j < ns; j++)
        if (j != i) {
            sm += pair_mmcs[i * ns + j];
            sc += pair_mcc[i * ns + j];
        }
    if (json_num(metrics, "mmcs_mean", sm / (ns - 1)) < 0 || (isfinite(sc) && json_num(metrics, "mcc_mean", sc / (ns - 1)) < 0))
        return lg_error_set(LG_ENOMEM, "out of memory");
    return 0;
}

/* ---- one condition ------------------------------------------------------------- */

/* Is seed i of condition ci selected (lg_run_options.cells)? */
static int cell_selected(const run_ctx *rc, int ci, int i)
{
    return !rc->opt->cells || rc->opt->cells[(size_t)ci * rc->s->n_seeds + i];
}

static int run_condition(run_ctx *rc, const lg_condition *c, cJSON *cond_json, lg_run_result *res)
{
    const lg_study *s = rc->s;
    const int ci = (int)(c - s->conds);
    int ns = s->n_seeds, npairs = ns * (ns - 1) / 2, i, j, pi = 0, err = 0, g0, group, trained, n = 0, full;
    uint64_t sel[LG_MAX_SEEDS]; /* the selected seeds, in study order (all of them in a full run) */
    lg_sae_weights *w = lg_calloc((size_t)ns, sizeof(*w));
    lg_sae_config cfg;
    lg_train_config tc;
    lg_step_stats *last = NULL; /* [n] last training step of each selected seed */
    int ncv = 0;
    lg_curve *cv = NULL;        /* [ncv] training curves of the group in training (train.log_every) */
    float *maxcos = NULL, *truth_maxcos = NULL;
    double *pair_mmcs = NULL, *pair_mcc = NULL;
    cJSON *cells, *pairs, *seeds;
    char fid[160], name[256];

    if (!w)
        return LG_ENOMEM;
    for (i = 0; i < ns; i++)
        if (cell_selected(rc, ci, i))
            sel[n++] = s->seeds[i];
    full = n == ns; /* pairs, per-seed means and condition files need every seed */
    if (!(cells = cJSON_AddArrayToObject(cond_json, "cells")) || !(pairs = cJSON_AddArrayToObject(cond_json, "pairs")) ||
        !(seeds = cJSON_AddArrayToObject(cond_json, "seeds"))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    if (cell_truth(rc, c) && !(truth_maxcos = lg_calloc((size_t)ns * s->synth.n_features, sizeof(float)))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = cell_configs(rc, c, &cfg, &tc)) < 0)
        goto out;
    trained = !c->control_random && c->p.steps > 0;
    group = trained ? seed_group_size(rc, &cfg, &tc) : ns;
    if (trained && c->p.consistency.weight > 0) { /* the objective couples the seeds: one group, all of them */
        group = ns;
        if (!full) {
            err = lg_error_set(LG_EINPUT, "%s: condition %s: train.consistency couples its seeds, so they can only run "
                               "all together (%d of %d selected)", s->path, c->id, n, ns);
            goto out;
        }
    }
    if (!(last = lg_calloc((size_t)ns, sizeof(*last)))) {
        err = LG_ENOMEM;
        goto out;
    }
    /* seeds in groups trained together; then per seed, in order: weights
     * file, evaluation, metrics (the same files and results as training the
     * seeds one after another, so also as training only some of them) */
    for (g0 = 0; g0 < n; g0 += group) {
        int gn = n - g0 < group ? n - g0 : group, n_ok = gn, terr = 0;
        int resumed = 0, gi = res->ngroups;
        const int sharded = rc->opt->shard_count > 0, partial = sharded || rc->opt->check_only;
        if (partial && !trained)
            break; /* controls: nothing to train, evaluated by the gathering run */
        if (trained) {
            if ((err = group_add(rc, res, c, g0, gn, LG_GROUP_OTHER)) < 0)
                goto out;
            if (sharded && res->groups[gi].index % rc->opt->shard_count != rc->opt->shard_index - 1)
                continue; /* another shard's */
        }
        if (rc->opt->stop && *rc->opt->stop) {
            err = lg_error_set(LG_ESTOPPED, "condition %s: stopped before seed group %d", c->id, g0 / group + 1);
            goto out;
        }
        for (i = g0; i < g0 + gn; i++)
            if ((err = init_cell(rc, c, &cfg, sel[i], &w[i])) < 0)
                goto out;
        if (trained && uses_markers(rc->opt) && (resumed = group_load(rc, c, sel + g0, g0, gn, w + g0, last + g0, res)) < 0) {
            err = resumed;
            goto out;
        }
        if (trained && uses_markers(rc->opt) && !resumed)
            /* group_load may have read some seeds' weights before a later
             * file failed its check: training starts from the initial ones */
            for (i = g0; i < g0 + gn; i++) {
                lg_sae_weights_release(&w[i]);
                if ((err = init_cell(rc, c, &cfg, sel[i], &w[i])) < 0)
                    goto out;
            }
        if (trained)
            res->groups[gi].state = resumed ? LG_GROUP_STAGED : LG_GROUP_MISSING;
        if (resumed) {
            rc->work_done += (double)c->p.steps * gn;
            res->groups_resumed++;
        } else if (trained && rc->opt->check_only)
            continue;
        else if (trained && rc->opt->staged_only) {
            err = lg_error_set(LG_ECHECK, "seed group %d (condition %s, seeds %llu..%llu) is not staged", gi + 1,
                               c->id, (unsigned long long)sel[g0], (unsigned long long)sel[g0 + gn - 1]);
            goto out;
        } else if (trained) {
            if (rc->s->log_every > 0 && !(cv = lg_calloc((size_t)gn, sizeof(*cv)))) {
                err = LG_ENOMEM;
                goto out;
            }
            ncv = cv ? gn : 0;
            if ((terr = train_group(rc, c, &cfg, &tc, sel + g0, gn, w + g0, last + g0, &n_ok, res->failure,
                                    sizeof res->failure, cv)) < 0 &&
                terr != LG_EDIVERGED) {
                err = terr;
                goto out;
            }
        }
        if (trained && (resumed || cv)) { /* training curves (train.log_every), before the marker */
            err = curve_files(rc, c, sel + g0, resumed ? gn : n_ok, resumed ? NULL : cv);
            for (i = 0; i < ncv; i++)
                lg_curve_release(&cv[i]);
            lg_free(cv);
            cv = NULL;
            ncv = 0;
            if (err < 0)
                goto out;
        }
        if (partial) {
            /* a shard writes the group's files and its marker; nothing is evaluated */
            if (resumed || rc->opt->check_only)
                continue;
            if (terr == LG_EDIVERGED) {
                err = lg_error_set(LG_EDIVERGED, "%s", res->failure);
                goto out;
            }
            for (i = g0; i < g0 + gn; i++)
                if ((err = write_weights(rc, c, sel[i], &w[i])) < 0)
                    goto out;
            if ((err = group_mark(rc, c, sel + g0, g0, gn, last + g0, res)) < 0)
                goto out;
            res->groups[gi].state = LG_GROUP_TRAINED;
            res->groups_done++;
            rc->cells_done += gn;
            continue;
        }
        for (i = g0; i < g0 + n_ok + (terr == LG_EDIVERGED); i++) {
            cJSON *cell = cJSON_CreateObject(), *m;
            if (!cell || !cJSON_AddItemToArray(cells, cell) || !cJSON_AddNumberToObject(cell, "seed", (double)sel[i]) ||
                !(m = cJSON_AddObjectToObject(cell, "metrics"))) {
                err = lg_error_set(LG_ENOMEM, "out of memory");
                goto out;
            }
            if (i == g0 + n_ok) /* the seed that diverged: a failed cell, and the run stops */
                err = lg_error_set(LG_EDIVERGED, "%s", res->failure);
            else
                err = finish_cell(rc, c, &cfg, sel[i], &w[i], trained ? &last[i] : NULL, m,
                                  truth_maxcos ? truth_maxcos + (size_t)i * s->synth.n_features : NULL);
            cJSON_AddStringToObject(cell, "status", err < 0 ? "failed" : "ok");
            if (err < 0)
                goto out;
            rc->cells_done++;
            if (rc->opt->progress) {
                lg_run_progress pr = {rc->cells_done, rc->cells_total, c->id, sel[i], c->p.steps, c->p.steps,
                                      NAN, NAN, lg_now_seconds() - rc->t0, rc->work_done, rc->work_total,
                                      sel + i, 1};
                rc->opt->progress(rc->opt->progress_ctx, &pr);
            }
        }
        if (trained && !resumed) {
            if ((err = group_mark(rc, c, sel + g0, g0, gn, last + g0, res)) < 0)
                goto out;
            res->groups[gi].state = LG_GROUP_TRAINED;
            res->groups_done++;
        }
    }
    if (!full || rc->opt->shard_count > 0 || rc->opt->check_only)
        goto out; /* no evaluation of pairs: a partial (replay) or sharded run */

    /* every seed pair */
    if (npairs > 0 && (!(maxcos = lg_malloc((size_t)npairs * c->p.d_sae * sizeof(float))) ||
                       !(pair_mmcs = lg_calloc((size_t)ns * ns, sizeof(double))) ||
                       !(pair_mcc = lg_calloc((size_t)ns * ns, sizeof(double))))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < ns; i++)
        for (j = i + 1; j < ns; j++, pi++) {
            cJSON *pair = cJSON_CreateObject(), *m;
            if (!pair || !cJSON_AddItemToArray(pairs, pair) ||
                !cJSON_AddNumberToObject(pair, "seed_a", (double)s->seeds[i]) ||
                !cJSON_AddNumberToObject(pair, "seed_b", (double)s->seeds[j]) ||
                !(m = cJSON_AddObjectToObject(pair, "metrics"))) {
                err = lg_error_set(LG_ENOMEM, "out of memory");
                goto out;
            }
            if ((err = lg_run_pair_metrics(s, c, w[i].W_dec, w[j].W_dec, cfg.d_in, m, &pair_mmcs[i * ns + j],
                                           &pair_mcc[i * ns + j], maxcos + (size_t)pi * c->p.d_sae)) < 0) {
                lg_error_wrap("condition %s seeds %llu/%llu", c->id, (unsigned long long)s->seeds[i],
                              (unsigned long long)s->seeds[j]);
                goto out;
            }
            pair_mmcs[j * ns + i] = pair_mmcs[i * ns + j];
            pair_mcc[j * ns + i] = pair_mcc[i * ns + j];
        }
    /* per-seed means: the unit that is independent across seeds' own draws */
    for (i = 0; i < ns && ns > 1; i++) {
        cJSON *seed = cJSON_CreateObject(), *m;
        if (!seed || !cJSON_AddItemToArray(seeds, seed) || !cJSON_AddNumberToObject(seed, "seed", (double)s->seeds[i]) ||
            !(m = cJSON_AddObjectToObject(seed, "metrics")) || lg_run_seed_metrics(pair_mmcs, pair_mcc, ns, i, m) < 0) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
    }

    lg_condition_file_id(c->id, fid, sizeof fid);
    if (npairs > 0) {
        const char *path;
        int64_t shape[2] = {npairs, c->p.d_sae};
        snprintf(name, sizeof name, "conditions/%s/maxcos.npy", fid);
        if ((err = files_add(&rc->files, name, "application/x-npy", &path)) < 0 ||
            (err = lg_npy_write_f32(path, maxcos, 2, shape)) < 0)
            goto out;
    }
    if (truth_maxcos) {
        const char *path;
        int64_t shape[2] = {ns, s->synth.n_features};
        snprintf(name, sizeof name, "conditions/%s/truth_maxcos.npy", fid);
        if ((err = files_add(&rc->files, name, "application/x-npy", &path)) < 0 ||
            (err = lg_npy_write_f32(path, truth_maxcos, 2, shape)) < 0)
            goto out;
    }
out:
    for (i = 0; i < ns; i++)
        lg_sae_weights_release(&w[i]);
    for (i = 0; i < ncv; i++)
        lg_curve_release(&cv[i]);
    lg_free(cv);
    lg_free(w);
    lg_free(last);
    lg_free(maxcos);
    lg_free(truth_maxcos);
    lg_free(pair_mmcs);
    lg_free(pair_mcc);
    return err;
}

/* ---- the study ------------------------------------------------------------------- */

static int open_data(run_ctx *rc, float **truth_owned)
{
    const lg_study *s = rc->s;
    int err;
    if (strcmp(s->data_source, "synthetic") == 0) {
        lg_synth_config sc;
        memset(&sc, 0, sizeof sc);
        sc.d = s->synth.d;
        sc.n_features = s->synth.n_features;
        sc.n_samples = s->synth.n_samples;
        sc.active_mean = s->synth.active_mean;
        sc.zipf_exponent = s->synth.zipf_exponent;
        sc.magnitude_mean = s->synth.magnitude_mean;
        sc.magnitude_std = s->synth.magnitude_std;
        sc.noise_std = s->synth.noise_std;
        sc.seed = s->synth.seed;
        if ((err = lg_dataset_synthetic(&sc, &rc->ds, truth_owned)) < 0)
            return lg_error_wrap("%s: data.synthetic", s->path);
        rc->truth = *truth_owned;
    } else if ((err = lg_dataset_open_file(s->data_path, s->data_tensor, &rc->ds)) < 0)
        return err;
    rc->d = lg_dataset_dim(rc->ds);
    rc->layers = lg_dataset_layers(rc->ds);
    return 0;
}

/* data.target (transcoders): the synthetic target or the file, checked to
 * have the data's rows and width (d_target = d_in), and its digest. */
static int open_target(run_ctx *rc)
{
    const lg_study *s = rc->s;
    const char *what = s->target_synth ? "the synthetic target" : s->target_path;
    int err;
    if (s->target_synth) {
        lg_synth_config sc;
        memset(&sc, 0, sizeof sc);
        sc.d = s->synth.d;
        sc.n_features = s->synth.n_features;
        sc.n_samples = s->synth.n_samples;
        sc.active_mean = s->synth.active_mean;
        sc.zipf_exponent = s->synth.zipf_exponent;
        sc.magnitude_mean = s->synth.magnitude_mean;
        sc.magnitude_std = s->synth.magnitude_std;
        sc.noise_std = s->synth.noise_std;
        sc.seed = s->synth.seed;
        if ((err = lg_transcoder_synth_target(&sc, s->target_synth_seed, &rc->target, &rc->target_truth)) < 0)
            return lg_error_wrap("%s: data.target.synthetic", s->path);
    } else if (!s->target_path)
        return 0;
    else if ((err = lg_dataset_open_file(s->target_path, s->target_tensor, &rc->target)) < 0)
        return err;
    if (lg_dataset_rows(rc->target) != lg_dataset_rows(rc->ds))
        return lg_error_set(LG_EINPUT, "%s: data.target: %s has %lld rows, the data has %lld (row i must be the target of "
                            "data row i)", s->path, what, (long long)lg_dataset_rows(rc->target),
                            (long long)lg_dataset_rows(rc->ds));
    if (lg_dataset_dim(rc->target) != rc->d)
        return lg_error_set(LG_EINPUT, "%s: data.target: %s has d=%d, the data has d=%d (transcoders need d_target = d_in)",
                            s->path, what, lg_dataset_dim(rc->target), rc->d);
    return lg_dataset_digest(rc->target, rc->target_digest);
}

/* Opens the data and prepares what every cell uses: the train / held-out
 * split, the held-out rows eval_x and b_dec's mean initialisation. *truth
 * (owned by the caller) gets the synthetic ground truth. */
static int prepare_data(run_ctx *rc, float **truth, char data_digest[65])
{
    const lg_study *s = rc->s;
    double *mean = NULL;
    int64_t off;
    int i, err;

    if ((err = open_data(rc, truth)) < 0)
        goto out;
    if ((err = lg_dataset_digest(rc->ds, data_digest)) < 0)
        goto out;
    if ((err = lg_dataset_split(lg_dataset_rows(rc->ds), s->eval_fraction, s->split_seed, &rc->train_rows,
                                &rc->n_train, &rc->eval_rows, &rc->n_eval)) < 0)
        goto out;
    if (rc->n_train < 1 || rc->n_eval < 1) {
        err = lg_error_set(LG_EINPUT, "%s: data: %lld rows are too few for a train/eval split", s->path,
                           (long long)lg_dataset_rows(rc->ds));
        goto out;
    }
    for (i = 0; i < s->n_conds; i++)
        if (s->conds[i].p.batch > rc->n_train) {
            err = lg_error_set(LG_EINPUT, "%s: condition %s: batch %d exceeds the %lld training rows", s->path,
                               s->conds[i].id, s->conds[i].p.batch, (long long)rc->n_train);
            goto out;
        }
    if (!(rc->eval_x = lg_malloc((size_t)rc->n_eval * rc->d * sizeof(float))) ||
        !(mean = lg_malloc((size_t)rc->d * sizeof(double))) ||
        !(rc->mean_init = lg_malloc((size_t)rc->d * sizeof(float)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (off = 0; off < rc->n_eval; off += 4096) {
        int n = rc->n_eval - off < 4096 ? (int)(rc->n_eval - off) : 4096;
        if ((err = lg_dataset_gather(rc->ds, rc->eval_rows + off, n, rc->eval_x + (size_t)off * rc->d)) < 0)
            goto out;
    }
    if ((err = lg_dataset_mean(rc->ds, rc->train_rows, rc->n_train, mean)) < 0)
        goto out;
    for (i = 0; i < rc->d; i++)
        rc->mean_init[i] = (float)mean[i];
    if ((err = open_target(rc)) < 0)
        goto out;
    if (rc->target) { /* the held-out targets and the target's mean (a transcoder's b_dec) */
        if (!(rc->eval_y = lg_malloc((size_t)rc->n_eval * rc->d * sizeof(float))) ||
            !(rc->target_mean = lg_malloc((size_t)rc->d * sizeof(float)))) {
            err = LG_ENOMEM;
            goto out;
        }
        for (off = 0; off < rc->n_eval; off += 4096) {
            int n = rc->n_eval - off < 4096 ? (int)(rc->n_eval - off) : 4096;
            if ((err = lg_dataset_gather(rc->target, rc->eval_rows + off, n, rc->eval_y + (size_t)off * rc->d)) < 0)
                goto out;
        }
        if ((err = lg_dataset_mean(rc->target, rc->train_rows, rc->n_train, mean)) < 0)
            goto out;
        for (i = 0; i < rc->d; i++)
            rc->target_mean[i] = (float)mean[i];
    }
    if (s->ood_path) {
        if ((err = lg_dataset_open_file(s->ood_path, s->ood_tensor, &rc->ood)) < 0 ||
            (err = lg_dataset_digest(rc->ood, rc->ood_digest)) < 0)
            goto out;
        if (lg_dataset_dim(rc->ood) != rc->d) {
            err = lg_error_set(LG_EINPUT, "%s: data.ood: %s has d=%d, the data has d=%d", s->path, s->ood_path,
                               lg_dataset_dim(rc->ood), rc->d);
            goto out;
        }
        if (!(rc->ood_x = lg_malloc((size_t)LG_RUN_OOD_CHUNK * rc->d * sizeof(float))) ||
            !(rc->ood_idx = lg_malloc(LG_RUN_OOD_CHUNK * sizeof(int64_t)))) {
            err = LG_ENOMEM;
            goto out;
        }
        if (s->ood_target_path) {
            if ((err = lg_dataset_open_file(s->ood_target_path, s->ood_target_tensor, &rc->ood_target)) < 0 ||
                (err = lg_dataset_digest(rc->ood_target, rc->ood_target_digest)) < 0)
                goto out;
            if (lg_dataset_rows(rc->ood_target) != lg_dataset_rows(rc->ood) || lg_dataset_dim(rc->ood_target) != rc->d) {
                err = lg_error_set(LG_EINPUT, "%s: data.ood.target: %s is [%lld, %d], the OOD data is [%lld, %d]", s->path,
                                   s->ood_target_path, (long long)lg_dataset_rows(rc->ood_target),
                                   lg_dataset_dim(rc->ood_target), (long long)lg_dataset_rows(rc->ood), rc->d);
                goto out;
            }
            if (!(rc->ood_y = lg_malloc((size_t)LG_RUN_OOD_CHUNK * rc->d * sizeof(float)))) {
                err = LG_ENOMEM;
                goto out;
            }
        }
    }
out:
    lg_free(mean);
    return err;
}

static void run_ctx_release(run_ctx *rc)
{
    lg_free(rc->mean_init);
    lg_free(rc->median_init);
    lg_free(rc->eval_x);
    lg_free(rc->train_rows);
    lg_free(rc->eval_rows);
    lg_free(rc->ood_x);
    lg_free(rc->ood_idx);
    lg_dataset_free(rc->ood);
    lg_dataset_free(rc->ds);
    lg_dataset_free(rc->target);
    lg_free(rc->eval_y);
    lg_free(rc->target_mean);
    lg_free(rc->target_median);
    lg_free(rc->target_truth);
    lg_dataset_free(rc->ood_target);
    lg_free(rc->ood_y);
}

int lg_study_execute(const lg_study *s, const lg_run_options *opt, lg_run_result *out)
{
    run_ctx rc;
    float *truth = NULL;
    cJSON *conds, *data;
    const char *path;
    char *text = NULL;
    int i, j, err;

    memset(out, 0, sizeof(*out));
    memset(&rc, 0, sizeof rc);
    rc.s = s;
    rc.opt = opt;
    rc.files.outdir = opt->outdir;
    for (i = 0; i < s->n_conds; i++)
        for (j = 0; j < s->n_seeds; j++)
            if (cell_selected(&rc, i, j)) {
                rc.cells_total++;
                if (!s->conds[i].control_random)
                    rc.work_total += (double)s->conds[i].p.steps;
            }
    rc.t0 = lg_now_seconds();
    for (i = 0; i < s->n_conds; i++) /* before any data is read: an arch the backend cannot train */
        if (s->conds[i].p.arch == LG_ARCH_HIER_TOPK && !s->conds[i].control_random &&
            (err = lg_hier_check_backend(opt->be)) < 0) {
            err = lg_error_wrap("%s: condition %s", s->path, s->conds[i].id);
            goto out;
        }

    for (i = 0; i < s->n_conds; i++)
        if (!s->conds[i].control_random && s->conds[i].p.consistency.weight > 0 &&
            lg_cobj_backend_check(opt->be) < 0) {
            err = lg_error_wrap("%s: condition %s", s->path, s->conds[i].id);
            goto out;
        }
    if ((err = prepare_data(&rc, &truth, out->data_digest)) < 0)
        goto out;

    if (!(out->results = cJSON_CreateObject()) || !cJSON_AddNumberToObject(out->results, "format", 1) ||
        !cJSON_AddStringToObject(out->results, "study", s->name) ||
        !(data = cJSON_AddObjectToObject(out->results, "data")) ||
        !cJSON_AddStringToObject(data, "source", s->data_source) ||
        !cJSON_AddStringToObject(data, "sha256", out->data_digest) ||
        /* layered data: d is one layer's width, and "layers" says how many */
        !cJSON_AddNumberToObject(data, "d", rc.layers > 0 ? rc.d / rc.layers : rc.d) ||
        (rc.layers > 0 && !cJSON_AddNumberToObject(data, "layers", rc.layers)) ||
        !cJSON_AddNumberToObject(data, "n_train", (double)rc.n_train) ||
        !cJSON_AddNumberToObject(data, "n_eval", (double)rc.n_eval) ||
        !(conds = cJSON_AddArrayToObject(out->results, "conditions"))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    if (rc.ood) { /* the OOD file's digest: evidence is stale when it changes (ledger/evidence.c) */
        cJSON *o = cJSON_AddObjectToObject(data, "ood");
        if (!o || !cJSON_AddStringToObject(o, "sha256", rc.ood_digest) ||
            !cJSON_AddNumberToObject(o, "n", (double)lg_dataset_rows(rc.ood)) ||
            (rc.ood_target && !cJSON_AddStringToObject(o, "target_sha256", rc.ood_target_digest))) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (rc.target) { /* the target's digest: evidence is stale when a target file changes (ledger/evidence.c) */
        cJSON *o = cJSON_AddObjectToObject(data, "target");
        if (!o || !cJSON_AddStringToObject(o, "source", s->target_synth ? "synthetic" : "file") ||
            !cJSON_AddStringToObject(o, "sha256", rc.target_digest) ||
            (s->target_synth && !cJSON_AddNumberToObject(o, "seed", (double)s->target_synth_seed))) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (i = 0; i < s->n_conds; i++) {
        cJSON *cj;
        for (j = 0; j < s->n_seeds && !cell_selected(&rc, i, j); j++)
            ;
        if (j == s->n_seeds) /* no cell of this condition selected */
            continue;
        cj = cJSON_CreateObject();
        if (!cj || !cJSON_AddItemToArray(conds, cj) || !cJSON_AddStringToObject(cj, "id", s->conds[i].id) ||
            !cJSON_AddItemToObject(cj, "params", cJSON_Duplicate(s->conds[i].params_json, 1))) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        if (opt->stop && *opt->stop) {
            err = lg_error_set(LG_ESTOPPED, "stopped before condition %s", s->conds[i].id);
            break;
        }
        if ((err = run_condition(&rc, &s->conds[i], cj, out)) < 0)
            break;
    }
    if (err == LG_EDIVERGED)
        out->diverged = 1;
    if (opt->shard_count > 0 || opt->check_only) {
        /* a shard or a check makes no results */
        cJSON_Delete(out->results);
        out->results = NULL;
        goto out;
    }
    if (err < 0 && !out->diverged)
        goto out;
    if (!out->diverged && (err = lg_cobj_heldout_results(s, opt->outdir, rc.d, out->results)) < 0)
        goto out;
    /* results.json last, so it is in the list even for a diverged run */
    if (!(text = cJSON_Print(out->results))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    {
        int werr;
        if ((werr = files_add(&rc.files, "results.json", "application/json", &path)) < 0 ||
            (werr = lg_file_write_atomic(path, text, strlen(text))) < 0) {
            err = werr;
            goto out;
        }
    }
    if (out->diverged)
        err = lg_error_set(LG_EDIVERGED, "%s", out->failure);
out:
    out->files = rc.files.files;
    out->nfiles = rc.files.n;
    if (err < 0 && !out->diverged) {
        cJSON_Delete(out->results);
        out->results = NULL;
    }
    lg_free(text);
    lg_free(truth);
    run_ctx_release(&rc);
    return err;
}

/* ---- re-evaluation of stored cells (ledger verify --recompute) -------------------- */

struct lg_run_eval {
    run_ctx rc;
    lg_run_options opt;
    float *truth;
};

int lg_run_eval_open(const lg_study *s, const lg_backend *be, char data_digest[65], lg_run_eval **out)
{
    lg_run_eval *ev;
    int err;
    *out = NULL;
    if (!(ev = lg_calloc(1, sizeof(*ev))))
        return LG_ENOMEM;
    ev->opt.be = be;
    ev->rc.s = s;
    ev->rc.opt = &ev->opt;
    if ((err = prepare_data(&ev->rc, &ev->truth, data_digest)) < 0) {
        lg_run_eval_free(ev);
        return err;
    }
    *out = ev;
    return 0;
}

int lg_run_eval_cell(lg_run_eval *ev, const lg_condition *c, uint64_t seed, const lg_sae_weights *w, cJSON *metrics)
{
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights init;
    int err;
    memset(&init, 0, sizeof init);
    if ((err = cell_configs(&ev->rc, c, &cfg, &tc)) < 0)
        return err;
    if (w && (w->d_in != cfg.d_in || w->d_sae != cfg.d_sae))
        return lg_error_set(LG_EINPUT, "condition %s seed %llu: weights are [%d, %d], the study says [%d, %d]", c->id,
                            (unsigned long long)seed, w->d_sae, w->d_in, cfg.d_sae, cfg.d_in);
    if (!w) {
        if ((err = init_cell(&ev->rc, c, &cfg, seed, &init)) < 0)
            goto out;
        w = &init;
    }
    err = finish_cell(&ev->rc, c, &cfg, seed, w, NULL, metrics, NULL);
out:
    lg_sae_weights_release(&init);
    return err;
}

void lg_run_eval_free(lg_run_eval *ev)
{
    if (!ev)
        return;
    run_ctx_release(&ev->rc);
    lg_free(ev->truth);
    lg_free(ev);
}

int lg_run_cell_config(const lg_study *s, const lg_condition *c, int d, lg_sae_config *cfg)
{
    lg_train_config tc;
    fill_configs(&c->p, d, cfg, &tc);
    if (lg_sae_config_check(cfg) < 0)
        return lg_error_wrap("%s: condition %s", s->path, c->id);
    return 0;
}

void lg_run_result_release(lg_run_result *r)
{
    size_t i;
    if (!r)
        return;
    for (i = 0; i < r->nfiles; i++) {
        lg_free(r->files[i].name);
        lg_free(r->files[i].path);
    }
    lg_free(r->files);
    lg_free(r->groups);
    cJSON_Delete(r->results);
    memset(r, 0, sizeof(*r));
}

int lg_study_plan_digest(const lg_study *s, const lg_backend *be, char plan_hex[65], char data_hex[65])
{
    run_ctx rc;
    float *truth = NULL;
    char data[65];
    lg_buf text = LG_BUF_INIT;
    int err;
    memset(&rc, 0, sizeof rc);
    rc.s = s;
    if ((err = open_data(&rc, &truth)) < 0 || (err = lg_dataset_digest(rc.ds, data)) < 0)
        goto out;
    rc.d = lg_dataset_dim(rc.ds);
    if ((err = open_target(&rc)) < 0)
        goto out;
    if ((err = lg_buf_printf(&text, "ledger-plan-1\nspec %s\ndata %s\nengine %s\nbackend %s\n", s->spec_digest, data,
                             LG_ENGINE_VERSION, be->name)) < 0 ||
        (rc.target && (err = lg_buf_printf(&text, "target %s\n", rc.target_digest)) < 0) ||
        (err = lg_sha256_buf(text.ptr, text.len, plan_hex)) < 0)
        goto out;
    if (data_hex)
        memcpy(data_hex, data, 65);
out:
    lg_buf_release(&text);
    lg_free(truth);
    lg_free(rc.target_truth);
    lg_dataset_free(rc.target);
    lg_dataset_free(rc.ds);
    return err;
}

int lg_study_cpu_only(const lg_study *s, char *why, size_t why_len)
{
    int i;
    for (i = 0; i < s->n_conds; i++) {
        const lg_cond_params *p = &s->conds[i].p;
        const char *what = p->arch == LG_ARCH_HIER_TOPK  ? "sae.arch hierarchical_topk"
                           : p->arch == LG_ARCH_ROUTESAE ? "sae.arch routesae"
                           : p->consistency.weight > 0   ? "train.consistency"
                                                         : NULL;
        if (what) {
            snprintf(why, why_len, "condition %s: %s is implemented on the CPU backend only", s->conds[i].id, what);
            return 1;
        }
    }
    return 0;
}
