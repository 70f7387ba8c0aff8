/*
 * consistency_heldout.c - held-out-seed MMCS, the acceptance evidence of
 * the consistency objective v2 (definitions in consistency_obj.h).
 *
 * Why across conditions: seeds trained with the objective are pulled
 * towards each other, so their own MMCS says nothing about whether they
 * found more reproducible features. The honest reference is seeds trained
 * without it on the same data: the study's weight-0 twin condition. Both
 * conditions use the study's seeds; seed i of the twin is left out of seed
 * i's mean because it starts from the same weights and sees the same batch
 * order.
 *
 * After a run the decoders are read back from the weight files the run
 * wrote (exact float32), so the pass needs no second copy of any condition
 * in memory and works the same for resumed groups.
 */
#include "engine/consistency_obj.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "artifacts/safetensors.h"
#include "base/base.h"
#include "engine/consistency.h"
#include "engine/run.h"

/* params_json without the consistency keys equal? */
static int same_but_consistency(const cJSON *a, const cJSON *b)
{
    static const char *const keys[] = {"consistency_weight", "consistency_every", "consistency_mode"};
    cJSON *x = cJSON_Duplicate(a, 1), *y = cJSON_Duplicate(b, 1);
    int i, eq = 0;
    if (x && y) {
        for (i = 0; i < 3; i++) {
            cJSON_DeleteItemFromObjectCaseSensitive(x, keys[i]);
            cJSON_DeleteItemFromObjectCaseSensitive(y, keys[i]);
        }
        eq = cJSON_Compare(x, y, 1);
    }
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

int lg_cobj_heldout_twin(const lg_study *s, int ci)
{
    const lg_condition *c;
    int b;
    if (ci < 0 || ci >= s->n_conds)
        return -1;
    c = &s->conds[ci];
    if (c->control_random || !c->p.consistency.set)
        return -1;
    for (b = 0; b < s->n_conds; b++) {
        const lg_condition *t = &s->conds[b];
        if (!t->control_random && t->p.consistency.set && t->p.consistency.weight == 0 &&
            same_but_consistency(c->params_json, t->params_json))
            return b;
    }
    return -1;
}

int lg_cobj_heldout_seed(const lg_study *s, int ci, int d, const float *const *Wc, const float *const *Wb, int i,
                         cJSON *metrics)
{
    const lg_condition *c = &s->conds[ci];
    const int ns = s->n_seeds;
    double sm = 0, sc = 0;
    int j, n = 0, err, mcc = s->hungarian && c->p.d_sae <= s->hungarian_max;
    for (j = 0; j < ns; j++) {
        lg_pair_metrics pm;
        if (j == i)
            continue;
        if ((err = lg_pair_metrics_compute(Wc[i], Wb[j], c->p.d_sae, d, s->shared_threshold, mcc, &pm, NULL)) < 0)
            return lg_error_wrap("condition %s: held-out seeds %llu/%llu", c->id, (unsigned long long)s->seeds[i],
                                 (unsigned long long)s->seeds[j]);
        sm += pm.abs.mmcs;
        sc += pm.abs.mcc_computed ? pm.abs.mcc : NAN;
        n++;
    }
    if (n == 0)
        return 0;
    if (!cJSON_AddNumberToObject(metrics, "heldout_mmcs", sm / n) ||
        (isfinite(sc) && !cJSON_AddNumberToObject(metrics, "heldout_mcc", sc / n)))
        return lg_error_set(LG_ENOMEM, "out of memory");
    return 0;
}

/* W [d_sae * d] of condition c's seed from outdir's weight file. */
static int read_decoder(const lg_study *s, const char *outdir, const lg_condition *c, uint64_t seed, int d, float *W)
{
    lg_buf path = LG_BUF_INIT;
    lg_st_file *f = NULL;
    lg_tensor_view v;
    char fid[160];
    int err;
    lg_condition_file_id(c->id, fid, sizeof fid);
    if ((err = lg_buf_printf(&path, "%s/cells/%s/seed-%llu.safetensors", outdir, fid, (unsigned long long)seed)) < 0 ||
        (err = lg_st_open(path.ptr, &f)) < 0)
        goto out;
    if ((err = lg_st_get(f, "W_dec", &v)) < 0 || v.dtype != LG_DT_F32 ||
        v.nbytes != (size_t)c->p.d_sae * d * sizeof(float)) {
        err = lg_error_set(LG_EINPUT, "%s: W_dec is not F32 [%d, %d]", path.ptr, c->p.d_sae, d);
        goto out;
    }
    memcpy(W, v.data, v.nbytes);
out:
    (void)s;
    lg_st_close(f);
    lg_buf_release(&path);
    return err;
}

/* The condition's entry of results with every seed listed in "seeds". */
static cJSON *full_condition(const lg_study *s, cJSON *results, const char *id)
{
    cJSON *cj;
    cJSON_ArrayForEach(cj, cJSON_GetObjectItemCaseSensitive(results, "conditions")) {
        const cJSON *cid = cJSON_GetObjectItemCaseSensitive(cj, "id");
        if (cJSON_IsString(cid) && strcmp(cid->valuestring, id) == 0)
            return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cj, "seeds")) == s->n_seeds ? cj : NULL;
    }
    return NULL;
}

int lg_cobj_heldout_results(const lg_study *s, const char *outdir, int d, cJSON *results)
{
    const int ns = s->n_seeds;
    float *buf = NULL, *Wc[LG_MAX_SEEDS], *Wb[LG_MAX_SEEDS];
    int ci, i, err = 0;
    if (ns < 2)
        return 0;
    for (ci = 0; ci < s->n_conds; ci++) {
        const lg_condition *c = &s->conds[ci];
        int b = lg_cobj_heldout_twin(s, ci);
        size_t md = (size_t)c->p.d_sae * d;
        cJSON *cj, *seeds, *e;
        if (b < 0 || !(cj = full_condition(s, results, c->id)) || !full_condition(s, results, s->conds[b].id))
            continue;
        lg_free(buf);
        if (!(buf = lg_malloc(2 * (size_t)ns * md * sizeof(float)))) {
            err = LG_ENOMEM;
            goto out;
        }
        for (i = 0; i < ns; i++) {
            Wc[i] = buf + (size_t)i * md;
            Wb[i] = buf + (size_t)(ns + i) * md;
            if ((err = read_decoder(s, outdir, c, s->seeds[i], d, Wc[i])) < 0 ||
                (err = read_decoder(s, outdir, &s->conds[b], s->seeds[i], d, Wb[i])) < 0)
                goto out;
        }
        seeds = cJSON_GetObjectItemCaseSensitive(cj, "seeds");
        i = 0;
        cJSON_ArrayForEach(e, seeds) {
            cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "metrics");
            const cJSON *sd = cJSON_GetObjectItemCaseSensitive(e, "seed");
            if (i >= ns || !cJSON_IsObject(m) || !cJSON_IsNumber(sd) || sd->valuedouble != (double)s->seeds[i]) {
                err = lg_error_set(LG_EINTERNAL, "condition %s: unexpected seeds entry %d", c->id, i);
                goto out;
            }
            if ((err = lg_cobj_heldout_seed(s, ci, d, (const float *const *)Wc, (const float *const *)Wb, i, m)) < 0)
                goto out;
            i++;
        }
    }
out:
    lg_free(buf);
    return err;
}
