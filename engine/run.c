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
 *
 * The runner is four files that share engine/run_int.h: this one holds the
 * orchestration (opening and splitting the data, the conditions in order,
 * the seed groups of a condition, the pairs, the results and the
 * re-evaluation API); run_train.c trains one seed group (batch order, the
 * multi-seed trainer, seeds side by side on the CPU); run_cell.c configures,
 * initialises, writes and evaluates one cell and computes the pair metrics;
 * run_resume.c writes and reads the seed-group markers.
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
    if (run_cell_truth(rc, c) && !(truth_maxcos = lg_calloc((size_t)ns * s->synth.n_features, sizeof(float)))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = run_cell_configs(rc, c, &cfg, &tc)) < 0)
        goto out;
    trained = !c->control_random && c->p.steps > 0;
    group = trained ? run_seed_group_size(rc, &cfg, &tc) : ns;
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
            if ((err = run_group_add(rc, res, c, g0, gn, LG_GROUP_OTHER)) < 0)
                goto out;
            if (sharded && res->groups[gi].index % rc->opt->shard_count != rc->opt->shard_index - 1)
                continue; /* another shard's */
        }
        if (rc->opt->stop && *rc->opt->stop) {
            err = lg_error_set(LG_ESTOPPED, "condition %s: stopped before seed group %d", c->id, g0 / group + 1);
            goto out;
        }
        for (i = g0; i < g0 + gn; i++)
            if ((err = run_init_cell(rc, c, &cfg, sel[i], &w[i])) < 0)
                goto out;
        if (trained && run_uses_markers(rc->opt) && (resumed = run_group_load(rc, c, sel + g0, g0, gn, w + g0, last + g0, res)) < 0) {
            err = resumed;
            goto out;
        }
        if (trained && run_uses_markers(rc->opt) && !resumed)
            /* run_group_load may have read some seeds' weights before a later
             * file failed its check: training starts from the initial ones */
            for (i = g0; i < g0 + gn; i++) {
                lg_sae_weights_release(&w[i]);
                if ((err = run_init_cell(rc, c, &cfg, sel[i], &w[i])) < 0)
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
            if ((terr = run_train_group(rc, c, &cfg, &tc, sel + g0, gn, w + g0, last + g0, &n_ok, res->failure,
                                    sizeof res->failure, cv)) < 0 &&
                terr != LG_EDIVERGED) {
                err = terr;
                goto out;
            }
        }
        if (trained && (resumed || cv)) { /* training curves (train.log_every), before the marker */
            err = run_curve_files(rc, c, sel + g0, resumed ? gn : n_ok, resumed ? NULL : cv);
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
                if ((err = run_write_weights(rc, c, sel[i], &w[i])) < 0)
                    goto out;
            if ((err = run_group_mark(rc, c, sel + g0, g0, gn, last + g0, res)) < 0)
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
                err = run_finish_cell(rc, c, &cfg, sel[i], &w[i], trained ? &last[i] : NULL, m,
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
            if ((err = run_group_mark(rc, c, sel + g0, g0, gn, last + g0, res)) < 0)
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
        if ((err = run_files_add(&rc->files, name, "application/x-npy", &path)) < 0 ||
            (err = lg_npy_write_f32(path, maxcos, 2, shape)) < 0)
            goto out;
    }
    if (truth_maxcos) {
        const char *path;
        int64_t shape[2] = {ns, s->synth.n_features};
        snprintf(name, sizeof name, "conditions/%s/truth_maxcos.npy", fid);
        if ((err = run_files_add(&rc->files, name, "application/x-npy", &path)) < 0 ||
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

/* The study's data.synthetic block as the generator's config (data and target alike). */
static lg_synth_config synth_config_of(const lg_study *s)
{
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
    return sc;
}

static int open_data(run_ctx *rc, float **truth_owned)
{
    const lg_study *s = rc->s;
    int err;
    if (strcmp(s->data_source, "synthetic") == 0) {
        lg_synth_config sc = synth_config_of(s);
        sc.layers = s->synth.layers; /* the data only: a synthetic target stays 2-D */
        sc.layer_leak = s->synth.layer_leak;
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
        lg_synth_config sc = synth_config_of(s);
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

/* ds's held-out rows into eval_out [n_eval, d] (gathered in chunks of 4096)
 * and the mean of its training rows into mean_out [d], through the double
 * scratch mean [d]: the data's view and a transcoder target's, the same way. */
static int split_view(run_ctx *rc, lg_dataset *ds, float *eval_out, float *mean_out, double *mean)
{
    int64_t off;
    int i, err;
    for (off = 0; off < rc->n_eval; off += 4096) {
        int n = rc->n_eval - off < 4096 ? (int)(rc->n_eval - off) : 4096;
        if ((err = lg_dataset_gather(ds, rc->eval_rows + off, n, eval_out + (size_t)off * rc->d)) < 0)
            return err;
    }
    if ((err = lg_dataset_mean(ds, rc->train_rows, rc->n_train, mean)) < 0)
        return err;
    for (i = 0; i < rc->d; i++)
        mean_out[i] = (float)mean[i];
    return 0;
}

/* Opens the data and prepares what every cell uses: the train / held-out
 * split, the held-out rows eval_x and b_dec's mean initialisation. *truth
 * (owned by the caller) gets the synthetic ground truth. */
static int prepare_data(run_ctx *rc, float **truth, char data_digest[65])
{
    const lg_study *s = rc->s;
    double *mean = NULL;
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
    if ((err = split_view(rc, rc->ds, rc->eval_x, rc->mean_init, mean)) < 0)
        goto out;
    if ((err = run_layer_prepare(rc)) < 0) /* data.layer: the single-layer archs' view (run_layer.c) */
        goto out;
    if ((err = open_target(rc)) < 0)
        goto out;
    if (rc->target) { /* the held-out targets and the target's mean (a transcoder's b_dec) */
        if (!(rc->eval_y = lg_malloc((size_t)rc->n_eval * rc->d * sizeof(float))) ||
            !(rc->target_mean = lg_malloc((size_t)rc->d * sizeof(float)))) {
            err = LG_ENOMEM;
            goto out;
        }
        if ((err = split_view(rc, rc->target, rc->eval_y, rc->target_mean, mean)) < 0)
            goto out;
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
    run_layer_release(rc);
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

    for (i = 0; i < s->n_conds; i++) /* routesae: host trainer and evaluation only, controls included */
        if (s->conds[i].p.arch == LG_ARCH_ROUTESAE && (err = lg_route_check_backend(opt->be)) < 0) {
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
        (s->data_layer >= 0 && !cJSON_AddNumberToObject(data, "layer", s->data_layer)) || /* run_layer.c */
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
        run_layer_enter(&rc, &s->conds[i]); /* data.layer: a single-layer arch sees one layer */
        err = run_condition(&rc, &s->conds[i], cj, out);
        run_layer_leave(&rc);
        if (err < 0)
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
    /* the SAEs' input width: one layer's on layered data (routesae has no objective; the
     * single-layer archs read one layer there, run_layer.c) */
    if (!out->diverged && (err = lg_cobj_heldout_results(s, opt->outdir, rc.layers > 0 ? rc.d / rc.layers : rc.d,
                                                         out->results)) < 0)
        goto out;
    /* results.json last, so it is in the list even for a diverged run */
    if (!(text = cJSON_Print(out->results))) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    {
        int werr;
        if ((werr = run_files_add(&rc.files, "results.json", "application/json", &path)) < 0 ||
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
    run_layer_enter(&ev->rc, c); /* data.layer (run_layer.c), left at out: */
    if ((err = run_cell_configs(&ev->rc, c, &cfg, &tc)) < 0)
        goto out;
    if (w && (w->d_in != cfg.d_in || w->d_sae != cfg.d_sae)) {
        err = lg_error_set(LG_EINPUT, "condition %s seed %llu: weights are [%d, %d], the study says [%d, %d]", c->id,
                           (unsigned long long)seed, w->d_sae, w->d_in, cfg.d_sae, cfg.d_in);
        goto out;
    }
    if (!w) {
        if ((err = run_init_cell(&ev->rc, c, &cfg, seed, &init)) < 0)
            goto out;
        w = &init;
    }
    err = run_finish_cell(&ev->rc, c, &cfg, seed, w, NULL, metrics, NULL);
out:
    run_layer_leave(&ev->rc);
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
    run_fill_configs(&c->p, d, cfg, &tc);
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
