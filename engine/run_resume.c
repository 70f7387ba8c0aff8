/*
 * run_resume.c - stop and resume of a study: the seed-group markers (part of
 * run.c, see run.h and run_int.h).
 *
 * A finished seed group leaves one marker beside its weight files, written
 * last (temp + fsync + rename) so that a group is complete exactly when its
 * marker matches: the plan digest, each seed's weight file digest and, when
 * the study logs curves, each curve file's digest. Resume, shards, check and
 * gather read the markers back here (run_group_load) and list the groups of
 * a run (run_group_add). Kept apart from run.c because it is the one place
 * that trusts files from a previous process.
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

/* Shard, check or gather: the modes in which groups are taken from (or
 * written to) markers whatever opt->resume says. */
int run_uses_markers(const lg_run_options *o)
{
    return o->resume || o->shard_count > 0 || o->check_only || o->staged_only;
}

int run_group_add(run_ctx *rc, lg_run_result *res, const lg_condition *c, int g0, int gn, int state)
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
int run_group_mark(run_ctx *rc, const lg_condition *c, const uint64_t *gseeds, int g0, int gn,
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
int run_group_load(run_ctx *rc, const lg_condition *c, const uint64_t *gseeds, int g0, int gn, lg_sae_weights *w,
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

