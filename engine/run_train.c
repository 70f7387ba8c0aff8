/*
 * run_train.c - training of one seed group of a study (part of run.c, see
 * run.h and run_int.h).
 *
 * Holds the batch order (the batcher: epoch e of seed s is a Fisher-Yates
 * permutation drawn from Philox(s, LG_STREAM_BATCH + 256*e)), the training
 * of a group's seeds together in one multi-seed trainer (train_seeds), the
 * CPU schedule that trains the seeds of a group side by side
 * (engine/schedule.h, run_train_group), the group size that fits
 * LG_RUN_SEED_BATCH_BYTES and the curve files a group writes. It is kept
 * apart from run.c so that the orchestration of a study reads on its own:
 * run.c decides which groups train, this file trains them.
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
#include "engine/run_int.h"

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

/* The training curves of seeds[0..n) of condition c (train.log_every):
 * registered as outputs, and written from cv[0..n) when cv is not NULL
 * (else they are already in outdir: a resumed group, whose marker checked
 * them). Written before the group's marker, like the weights. */
int run_curve_files(run_ctx *rc, const lg_condition *c, const uint64_t *seeds, int n, lg_curve *cv)
{
    char name[256];
    const char *path;
    int i, err;
    for (i = 0; i < n && rc->s->log_every > 0; i++) {
        lg_curve_file_name(c->id, seeds[i], name, sizeof name);
        if ((err = run_files_add(&rc->files, name, "application/json", &path)) < 0)
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
        if (lg_sched_lower_failed()) { /* run side by side: an earlier seed failed (run_train_group) */
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
        if (cv && route && lg_curve_due(last[0].step, p->steps, rc->s->log_every)) { /* routesae: its own clocks */
            for (i = 0; i < alive; i++) {
                double dead;
                if ((err = lg_route_multi_dead_frac(rt, i, tc->dead_after, p->batch, &dead)) < 0 ||
                    (err = lg_curve_add(&cv[i], &last[i], dead)) < 0)
                    goto out;
            }
        } else if (cv && !route &&
                   (err = lg_curve_record(cv, alive, tr, last, p->steps, rc->s->log_every, tc->dead_after, p->batch)) < 0)
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
int run_train_group(run_ctx *rc, const lg_condition *c, const lg_sae_config *cfg, const lg_train_config *tc,
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

/* How many seeds train together: all of them unless their trainers would
 * take more than LG_RUN_SEED_BATCH_BYTES. */
int run_seed_group_size(run_ctx *rc, const lg_sae_config *cfg, const lg_train_config *tc)
{
    int ns = rc->s->n_seeds, g;
    double per = lg_trainer_bytes_per_seed(cfg, tc);
    g = per > 0 ? (int)(LG_RUN_SEED_BATCH_BYTES / per) : ns;
    return g < 1 ? 1 : g < ns ? g : ns;
}
