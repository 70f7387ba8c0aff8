/*
 * run_cell.c - one cell of a study: configs, initial weights, weight files,
 * evaluation and metrics (part of run.c, see run.h and run_int.h).
 *
 * A cell is one (condition, seed). Here are the configs a condition gives
 * the SAE and its trainer, the initial weights of a cell (also what a
 * random-init control is), the weight file it writes, its evaluation on the
 * held-out rows (and on data.ood), its ground-truth recovery, and the pair
 * and seed metrics that ledger verify --recompute shares. run.c calls these
 * in order; none of them decides what runs.
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

/* ---- results helpers -------------------------------------------------------- */

static int json_num(cJSON *obj, const char *key, double v)
{
    /* cJSON writes NaN as null, which is what "not computed" should read as */
    return cJSON_AddNumberToObject(obj, key, v) ? 0 : lg_error_set(LG_ENOMEM, "out of memory");
}

/* Registers outdir/name and makes its parent folder; *path_out is the full path (owned by the list). */
int run_files_add(file_list *fl, const char *name, const char *media_type, const char **path_out)
{
    lg_buf full = LG_BUF_INIT;
    char *slash;
    int err;
    if (lg_grow(&fl->files, &fl->cap, fl->n + 1, sizeof *fl->files, 32) < 0)
        return LG_ENOMEM;
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

void run_fill_configs(const lg_cond_params *p, int d, lg_sae_config *cfg, lg_train_config *tc)
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

int run_write_weights(run_ctx *rc, const lg_condition *c, uint64_t seed, const lg_sae_weights *w)
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
    if ((err = run_files_add(&rc->files, name, "application/vnd.safetensors", &path)) < 0)
        return err;
    return lg_st_write(path, t, w->W_router ? 7 : 5, meta, sizeof(meta) / sizeof(meta[0]) / 2 - (has_opt ? 0 : 1));
}

/* Configs of condition c (training config checked when the cells train). */
int run_cell_configs(run_ctx *rc, const lg_condition *c, lg_sae_config *cfg, lg_train_config *tc)
{
    run_fill_configs(&c->p, rc->d, cfg, tc);
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
int run_init_cell(run_ctx *rc, const lg_condition *c, const lg_sae_config *cfg, uint64_t seed,
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
const float *run_cell_truth(const run_ctx *rc, const lg_condition *c)
{
    return c->p.transcoder ? rc->target_truth : rc->truth;
}

/* Writes a trained cell's weights, evaluates the cell and fills its metrics.
 * last: its last training step (NULL when it was not trained). */
int run_finish_cell(run_ctx *rc, const lg_condition *c, const lg_sae_config *cfg, uint64_t seed,
                    const lg_sae_weights *w, const lg_step_stats *last, cJSON *metrics, float *truth_maxcos)
{
    lg_recon_metrics rm;
    int err;
    const float *truth = run_cell_truth(rc, c);
    if (last && (err = run_write_weights(rc, c, seed, w)) < 0)
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
        if ((err = lg_dict_recovery(truth, rc->s->synth.n_features, w->W_dec, w->d_sae, w->d_in, &so, &tr_rec,
                                    truth_maxcos)) < 0)
            return err;
        if ((err = json_num(metrics, "truth_mmcs", tr_rec.mmcs_truth)) < 0 ||
            (err = json_num(metrics, "truth_recovered", tr_rec.recovered_frac)) < 0 ||
            (tr_rec.mcc_computed && (err = json_num(metrics, "truth_mcc", tr_rec.mcc)) < 0))
            return err;
    }
    return 0;
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

