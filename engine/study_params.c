/*
 * study_params.c - the parameter table of a study spec and the expansion of
 * its grid into conditions (part of study.c, see study.h; shared
 * prototypes in study_int.h).
 *
 * Every "sae" and "train" key is one row of params[] (type, section, field
 * offset, inclusive bounds): a key that is not in the table is an error, a
 * value is checked against its row before it is stored. The defaults of a
 * condition (study_params_default) are the trainer's own (engine/train.h), so the
 * two cannot disagree. The grid is expanded here too, because a condition
 * is a parameter set plus the id made from its grid values (format_value),
 * checked once more when complete (finish_condition). study.c reads the
 * spec's sections and calls in; it never looks at a parameter by name.
 */
#include "engine/study.h"
#include "engine/consistency_obj.h"
#include "engine/hungarian.h"
#include "engine/train.h"

#include <libgen.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "artifacts/json.h"
#include "engine/study_int.h"

/* ---- parameter table ------------------------------------------------------- */

typedef enum { P_INT, P_DOUBLE, P_ARCH, P_BDEC, P_PREFIXES, P_KS, P_CONSIST, P_BOOL } ptype;

typedef struct {
    const char *name;
    const char *section; /* "sae" or "train" */
    ptype type;
    size_t off;
    double min, max;     /* inclusive bounds for numbers */
} pdef;

#define OFF(f) offsetof(lg_cond_params, f)
static const pdef params[] = {
    {"arch", "sae", P_ARCH, OFF(arch), 0, 0},
    {"d_sae", "sae", P_INT, OFF(d_sae), 1, 1 << 20},
    {"k", "sae", P_INT, OFF(k), 1, 1 << 20},
    {"l1_coeff", "sae", P_DOUBLE, OFF(l1_coeff), 0, 1e6},
    {"l0_coeff", "sae", P_DOUBLE, OFF(l0_coeff), 0, 1e6},
    {"jumprelu_threshold", "sae", P_DOUBLE, OFF(jumprelu_threshold), 1e-12, 1e6},
    {"jumprelu_bandwidth", "sae", P_DOUBLE, OFF(jumprelu_bandwidth), 1e-12, 1e6},
    {"prefixes", "sae", P_PREFIXES, OFF(prefixes), 1, 1 << 20},
    {"transcoder", "sae", P_BOOL, OFF(transcoder), 0, 1},
    {"ks", "sae", P_KS, OFF(ks), 1, 1 << 20},
    {"steps", "train", P_INT, OFF(steps), 1, 1 << 24}, /* the trainer's range (train.h) */
    {"batch", "train", P_INT, OFF(batch), 1, 1 << 20},
    {"lr", "train", P_DOUBLE, OFF(lr), 0, 10},
    {"warmup_steps", "train", P_INT, OFF(warmup_steps), 0, 1e9},
    {"decay_frac", "train", P_DOUBLE, OFF(decay_frac), 0, 1},
    {"grad_clip", "train", P_DOUBLE, OFF(grad_clip), 0, 1e9},
    {"beta1", "train", P_DOUBLE, OFF(beta1), 0, 0.999999},
    {"beta2", "train", P_DOUBLE, OFF(beta2), 0, 0.999999999},
    {"eps", "train", P_DOUBLE, OFF(eps), 1e-30, 1},
    {"b_dec_init", "train", P_BDEC, OFF(b_dec_init), 0, 0},
    {"aux_k", "train", P_INT, OFF(aux_k), 0, 1 << 20},
    {"aux_coeff", "train", P_DOUBLE, OFF(aux_coeff), 0, 1e6},
    {"dead_after", "train", P_INT, OFF(dead_after), 1, 2e9},
    {"consistency", "train", P_CONSIST, OFF(consistency), 0, 1e6}, /* weight's bounds */
};
#undef OFF
#define N_PARAMS (sizeof(params) / sizeof(params[0]))

static const char *const bdec_names[] = {"mean", "median", "zero"};

static const pdef *param_find(const char *name)
{
    size_t i;
    for (i = 0; i < N_PARAMS; i++)
        if (strcmp(params[i].name, name) == 0)
            return &params[i];
    return NULL;
}

/* Defaults of a condition: the training ones are the trainer's
 * (LG_TRAIN_DEFAULT_*, engine/train.h), so a study and a direct trainer agree. */
void study_params_default(lg_cond_params *p)
{
    memset(p, 0, sizeof(*p));
    p->arch = LG_ARCH_TOPK;
    p->d_sae = 0; /* required */
    p->k = 0; /* unset: 32, or hierarchical_topk's largest budget (finish_condition) */
    p->l1_coeff = LG_TRAIN_DEFAULT_L1_COEFF;
    p->l0_coeff = LG_TRAIN_DEFAULT_L0_COEFF;
    p->jumprelu_threshold = LG_TRAIN_DEFAULT_JUMPRELU_THRESHOLD;
    p->jumprelu_bandwidth = LG_TRAIN_DEFAULT_JUMPRELU_BANDWIDTH;
    p->steps = LG_TRAIN_DEFAULT_STEPS;
    p->batch = LG_TRAIN_DEFAULT_BATCH;
    p->lr = LG_TRAIN_DEFAULT_LR;
    p->warmup_steps = LG_TRAIN_DEFAULT_WARMUP_STEPS;
    p->decay_frac = LG_TRAIN_DEFAULT_DECAY_FRAC;
    p->grad_clip = LG_TRAIN_DEFAULT_GRAD_CLIP;
    p->beta1 = LG_TRAIN_DEFAULT_BETA1;
    p->beta2 = LG_TRAIN_DEFAULT_BETA2;
    p->eps = LG_TRAIN_DEFAULT_EPS;
    p->b_dec_init = 0;
    p->aux_k = -1; /* -1: min(512, d_sae / 2) */
    p->aux_coeff = LG_TRAIN_DEFAULT_AUX_COEFF;
    p->dead_after = LG_TRAIN_DEFAULT_DEAD_AFTER;
    p->consistency.every = LG_COBJ_DEFAULT_EVERY;
    p->consistency.mode = LG_COBJ_CONSENSUS;
}

/* train.consistency: {"weight": w, "every": n, "mode": "consensus"|"pairwise"}
 * (engine/consistency_obj.h); keys left out keep their defaults (weight 0,
 * every LG_COBJ_DEFAULT_EVERY, consensus). */
static int consistency_set(const char *file, const char *where, const pdef *d, const cJSON *v, lg_cond_params *p)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        double x = cJSON_IsNumber(it) ? it->valuedouble : NAN;
        if (strcmp(it->string, "weight") == 0) {
            if (!cJSON_IsNumber(it) || !isfinite(x) || x < d->min || x > d->max)
                return lg_error_set(LG_EINPUT, "%s: %s.weight: must be a number in [%.10g, %.10g]", file, where, d->min,
                                    d->max);
            p->consistency.weight = x;
        } else if (strcmp(it->string, "every") == 0) {
            if (!cJSON_IsNumber(it) || x != floor(x) || x < 1 || x > (1 << 24))
                return lg_error_set(LG_EINPUT, "%s: %s.every: must be an integer in [1, 16777216]", file, where);
            p->consistency.every = (int)x;
        } else if (strcmp(it->string, "mode") == 0) {
            if (cJSON_IsString(it) && strcmp(it->valuestring, "consensus") == 0)
                p->consistency.mode = LG_COBJ_CONSENSUS;
            else if (cJSON_IsString(it) && strcmp(it->valuestring, "pairwise") == 0)
                p->consistency.mode = LG_COBJ_PAIRWISE;
            else
                return lg_error_set(LG_EINPUT, "%s: %s.mode: must be \"consensus\" or \"pairwise\"", file, where);
        } else
            return lg_error_set(LG_EINPUT, "%s: %s.%s: unknown key (weight, every, mode)", file, where, it->string);
    }
    p->consistency.set = 1;
    return 0;
}

/* Set one parameter from a JSON value; `where` is the JSON path for errors. */
/* An array of 1 to max_n strictly increasing positive integers, each at most
 * max_val, into out[*n]; `what` names them in the error ("prefixes"). */
static int increasing_ints(const char *file, const char *where, const cJSON *v, int max_n, double max_val,
                           const char *what, int *out, int *n)
{
    const cJSON *e;
    int k = 0, prev = 0;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 || cJSON_GetArraySize(v) > max_n)
        return lg_error_set(LG_EINPUT, "%s: %s: must be an array of 1 to %d increasing integers", file, where, max_n);
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble <= prev ||
            e->valuedouble > max_val)
            return lg_error_set(LG_EINPUT, "%s: %s[%d]: %s must be increasing positive integers", file, where, k, what);
        prev = (int)e->valuedouble;
        out[k++] = prev;
    }
    *n = k;
    return 0;
}

static int param_set(const char *file, const char *where, const pdef *d, const cJSON *v, lg_cond_params *p)
{
    char *base = (char *)p + d->off;
    switch (d->type) {
    case P_INT: {
        double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        if (!cJSON_IsNumber(v) || x != floor(x) || x < d->min || x > d->max)
            return lg_error_set(LG_EINPUT, "%s: %s: must be an integer in [%.10g, %.10g]", file, where, d->min, d->max);
        *(int *)base = (int)x;
        return 0;
    }
    case P_DOUBLE: {
        double x = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        if (!cJSON_IsNumber(v) || !isfinite(x) || x < d->min || x > d->max)
            return lg_error_set(LG_EINPUT, "%s: %s: must be a number in [%.10g, %.10g]", file, where, d->min, d->max);
        *(double *)base = x;
        return 0;
    }
    case P_BOOL:
        if (!cJSON_IsBool(v))
            return lg_error_set(LG_EINPUT, "%s: %s: must be true or false", file, where);
        *(int *)base = cJSON_IsTrue(v) ? 1 : 0;
        return 0;
    case P_ARCH:
        if (cJSON_IsString(v) && strcmp(v->valuestring, "transcoder") == 0) {
            /* shorthand (issue 14's spelling): a TopK transcoder, the same
             * condition as "arch": "topk" with "transcoder": true */
            p->arch = LG_ARCH_TOPK;
            p->transcoder = 1;
            return 0;
        }
        if (!cJSON_IsString(v) || lg_arch_parse(v->valuestring, (lg_arch *)base) < 0)
            return lg_error_set(LG_EINPUT, "%s: %s: must be one of relu, topk, batchtopk, jumprelu, matryoshka, hierarchical_topk, routesae, "
                                "transcoder", file, where);
        return 0;
    case P_BDEC: {
        size_t i;
        if (cJSON_IsString(v))
            for (i = 0; i < 3; i++)
                if (strcmp(v->valuestring, bdec_names[i]) == 0) {
                    *(int *)base = (int)i;
                    return 0;
                }
        return lg_error_set(LG_EINPUT, "%s: %s: must be \"mean\", \"median\" or \"zero\"", file, where);
    }
    case P_CONSIST:
        if (!cJSON_IsObject(v))
            return lg_error_set(LG_EINPUT, "%s: %s: must be an object {\"weight\", \"every\", \"mode\"}", file, where);
        return consistency_set(file, where, d, v, p);
    case P_PREFIXES:
        return increasing_ints(file, where, v, LG_STUDY_MAX_PREFIXES, d->max, "prefixes", p->prefixes, &p->n_prefixes);
    case P_KS:
        return increasing_ints(file, where, v, LG_SAE_MAX_KS, d->max, "budgets", p->ks, &p->n_ks);
    }
    return lg_error_set(LG_EINTERNAL, "bad parameter type");
}
/* "arch": "transcoder" beside "transcoder": false in one object (a section,
 * or one grid cell): which one wins would depend on the keys' order, so the
 * pair is refused. arch_v or tc_v may be NULL (not given). */
static int transcoder_contradiction(const char *file, const char *where, const cJSON *arch_v, const cJSON *tc_v)
{
    if (cJSON_IsString(arch_v) && strcmp(arch_v->valuestring, "transcoder") == 0 && cJSON_IsFalse(tc_v))
        return lg_error_set(LG_EINPUT, "%s: %s: \"arch\": \"transcoder\" is a transcoder, \"transcoder\": false says it "
                            "is not (drop one)", file, where);
    return 0;
}

/* Apply every key of a "sae" or "train" section to p. */
int study_apply_section(const char *file, const char *section, const cJSON *obj, lg_cond_params *p)
{
    const cJSON *it;
    char where[160];
    int err;
    snprintf(where, sizeof where, "%s.transcoder", section);
    if ((err = transcoder_contradiction(file, where, cJSON_GetObjectItemCaseSensitive(obj, "arch"),
                                        cJSON_GetObjectItemCaseSensitive(obj, "transcoder"))) < 0)
        return err;
    cJSON_ArrayForEach(it, obj) {
        const pdef *d = param_find(it->string);
        snprintf(where, sizeof where, "%s.%s", section, it->string);
        if (!strcmp(where, "train.log_every")) /* study-wide, read by lg_study_parse */
            continue;
        if (!d || strcmp(d->section, section) != 0)
            return lg_error_set(LG_EINPUT, "%s: %s: unknown key", file, where);
        if ((err = param_set(file, where, d, it, p)) < 0)
            return err;
    }
    return 0;
}

static int param_to_json(const lg_cond_params *p, cJSON *obj)
{
    size_t i;
    for (i = 0; i < N_PARAMS; i++) {
        const pdef *d = &params[i];
        const char *base = (const char *)p + d->off;
        cJSON *v = NULL;
        switch (d->type) {
        case P_INT: v = cJSON_CreateNumber(*(const int *)base); break;
        case P_DOUBLE: v = cJSON_CreateNumber(*(const double *)base); break;
        case P_ARCH: v = cJSON_CreateString(lg_arch_name(p->arch)); break;
        case P_BDEC: v = cJSON_CreateString(bdec_names[p->b_dec_init]); break;
        case P_PREFIXES:
            if (p->arch != LG_ARCH_MATRYOSHKA)
                continue;
            v = cJSON_CreateIntArray(p->prefixes, p->n_prefixes);
            break;
        case P_KS:
            if (p->arch != LG_ARCH_HIER_TOPK)
                continue;
            v = cJSON_CreateIntArray(p->ks, p->n_ks);
            break;
        case P_BOOL: /* only when set, so that the params of other studies are unchanged */
            if (!*(const int *)base)
                continue;
            v = cJSON_CreateTrue();
            break;
        case P_CONSIST: /* three flat keys, so that claims can filter on them */
            if (!p->consistency.set)
                continue;
            if (!cJSON_AddNumberToObject(obj, "consistency_weight", p->consistency.weight) ||
                !cJSON_AddNumberToObject(obj, "consistency_every", p->consistency.every) ||
                !cJSON_AddStringToObject(obj, "consistency_mode",
                                         p->consistency.mode == LG_COBJ_PAIRWISE ? "pairwise" : "consensus"))
                return lg_error_set(LG_ENOMEM, "out of memory");
            continue;
        }
        if (!v || !cJSON_AddItemToObject(obj, d->name, v)) {
            cJSON_Delete(v);
            return lg_error_set(LG_ENOMEM, "out of memory");
        }
    }
    return 0;
}

/* Final per-condition validation and derived defaults. */
static int finish_condition(const char *file, lg_condition *c, int d_in)
{
    lg_cond_params *p = &c->p;
    if (p->d_sae <= 0)
        return lg_error_set(LG_EINPUT, "%s: sae.d_sae: required (in \"sae\" or \"grid\")", file);
    if (p->arch == LG_ARCH_HIER_TOPK) { /* k is the largest budget */
        if (p->n_ks == 0)
            return lg_error_set(LG_EINPUT, "%s: condition %s: sae.ks: required for hierarchical_topk", file, c->id);
        if (p->k != 0 && p->k != p->ks[p->n_ks - 1])
            return lg_error_set(LG_EINPUT,
                                "%s: condition %s: k = %d differs from the largest of sae.ks (%d); hierarchical_topk's "
                                "k is its largest budget",
                                file, c->id, p->k, p->ks[p->n_ks - 1]);
        p->k = p->ks[p->n_ks - 1];
    } else if (p->k == 0)
        p->k = 32;
    if (p->arch != LG_ARCH_RELU && p->arch != LG_ARCH_JUMPRELU && p->k > p->d_sae)
        return lg_error_set(LG_EINPUT, "%s: condition %s: k = %d exceeds d_sae = %d", file, c->id, p->k, p->d_sae);
    if (p->arch == LG_ARCH_MATRYOSHKA) {
        if (p->n_prefixes == 0) {
            /* default nested sizes: d_sae/8, d_sae/4, d_sae/2, d_sae (integer
             * division), dropping zeros and repeats when d_sae < 8. (Doubling
             * from d_sae/8 instead gave 12, 24, 48, 96, 100 for d_sae = 100.
             * No loop: a doubling from 0 never ended, found by fuzz_spec.) */
            static const int div[4] = {8, 4, 2, 1};
            int n = 0, i;
            for (i = 0; i < 4; i++) {
                int m = p->d_sae / div[i];
                if (m >= 1 && (n == 0 || m > p->prefixes[n - 1]))
                    p->prefixes[n++] = m;
            }
            p->n_prefixes = n;
        }
        if (p->prefixes[p->n_prefixes - 1] != p->d_sae)
            return lg_error_set(LG_EINPUT, "%s: condition %s: the last of sae.prefixes must equal d_sae (%d)", file,
                                c->id, p->d_sae);
    }
    if (p->aux_k < 0)
        p->aux_k = p->d_sae / 2 < 512 ? p->d_sae / 2 : 512;
    if (p->aux_k > p->d_sae)
        return lg_error_set(LG_EINPUT, "%s: condition %s: aux_k = %d exceeds d_sae", file, c->id, p->aux_k);
    if (p->warmup_steps > p->steps && p->steps > 0)
        p->warmup_steps = p->steps;
    (void)d_in;
    if (!(c->params_json = cJSON_CreateObject()) || param_to_json(p, c->params_json) < 0 ||
        !cJSON_AddStringToObject(c->params_json, "control", c->control_random ? "random" : "trained"))
        return lg_error_set(LG_ENOMEM, "out of memory");
    return 0;
}

/* Format a grid value for a condition id. */
static void format_value(const cJSON *v, char *buf, size_t n)
{
    if (cJSON_IsString(v))
        snprintf(buf, n, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(buf, n, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v))
        snprintf(buf, n, "%.10g", v->valuedouble);
    else if (cJSON_IsArray(v)) {
        const cJSON *e;
        size_t len = 0;
        buf[0] = '\0';
        cJSON_ArrayForEach(e, v) {
            if (len + 1 < n)
                len += (size_t)snprintf(buf + len, n - len, "%s%.10g", len ? "-" : "", e->valuedouble);
        }
    } else if (cJSON_IsObject(v)) { /* a train.consistency value: "off" or "W-MODE-EVERY" */
        lg_cond_params p;
        pdef d = {"consistency", "train", P_CONSIST, 0, 0, 1e6};
        study_params_default(&p);
        if (consistency_set("", "", &d, v, &p) < 0)
            snprintf(buf, n, "?");
        else if (p.consistency.weight == 0)
            snprintf(buf, n, "off");
        else
            snprintf(buf, n, "%.10g-%s-%d", p.consistency.weight,
                     p.consistency.mode == LG_COBJ_PAIRWISE ? "pairwise" : "consensus", p.consistency.every);
    } else
        snprintf(buf, n, "?");
}

int study_expand_grid(const char *file, const cJSON *grid, const lg_cond_params *base, lg_study *s)
{
    const cJSON *keys[32];
    int sizes[32], idx[32], nkeys = 0, total = 1, c, i, err;
    const cJSON *it;

    if (grid) {
        cJSON_ArrayForEach(it, grid) {
            const pdef *d = param_find(it->string);
            int n;
            if (!d)
                return lg_error_set(LG_EINPUT, "%s: grid.%s: unknown key", file, it->string);
            if (nkeys == 32)
                return lg_error_set(LG_EINPUT, "%s: grid: more than 32 keys", file);
            if (!cJSON_IsArray(it) || (n = cJSON_GetArraySize(it)) < 1)
                return lg_error_set(LG_EINPUT, "%s: grid.%s: must be a non-empty array of values", file, it->string);
            if (total > LG_MAX_CONDITIONS / n)
                return lg_error_set(LG_EINPUT, "%s: grid: more than %d conditions", file, LG_MAX_CONDITIONS);
            total *= n;
            keys[nkeys] = it;
            sizes[nkeys++] = n;
        }
    }
    s->conds = lg_calloc((size_t)total * (s->random_control ? 2 : 1), sizeof(lg_condition));
    if (!s->conds)
        return LG_ENOMEM;
    memset(idx, 0, sizeof idx);
    for (c = 0; c < total; c++) {
        lg_condition *cd = &s->conds[c];
        size_t len = 0;
        cd->p = *base;
        cd->id[0] = '\0';
        for (i = 0; i < nkeys; i++) {
            const cJSON *v = cJSON_GetArrayItem(keys[i], idx[i]);
            char where[160], val[64];
            snprintf(where, sizeof where, "grid.%s[%d]", keys[i]->string, idx[i]);
            if ((err = param_set(file, where, param_find(keys[i]->string), v, &cd->p)) < 0)
                return err;
            format_value(v, val, sizeof val);
            len += (size_t)snprintf(cd->id + len, len < sizeof cd->id ? sizeof cd->id - len : 0, "%s%s=%s",
                                    i ? "," : "", keys[i]->string, val);
            if (len >= sizeof(cd->id) - 20)
                return lg_error_set(LG_EINPUT, "%s: grid: condition id too long", file);
        }
        {
            const cJSON *av = NULL, *tv = NULL;
            char where[sizeof cd->id + 16];
            for (i = 0; i < nkeys; i++) {
                if (!strcmp(keys[i]->string, "arch"))
                    av = cJSON_GetArrayItem(keys[i], idx[i]);
                else if (!strcmp(keys[i]->string, "transcoder"))
                    tv = cJSON_GetArrayItem(keys[i], idx[i]);
            }
            snprintf(where, sizeof where, "grid: condition %s", cd->id);
            if ((err = transcoder_contradiction(file, where, av, tv)) < 0)
                return err;
        }
        if (nkeys == 0)
            snprintf(cd->id, sizeof cd->id, "default");
        /* advance the odometer, last key fastest */
        for (i = nkeys - 1; i >= 0; i--) {
            if (++idx[i] < sizes[i])
                break;
            idx[i] = 0;
        }
    }
    s->n_conds = total;
    for (c = 0; c < total; c++) {
        int j;
        for (j = 0; j < c; j++)
            if (strcmp(s->conds[j].id, s->conds[c].id) == 0)
                return lg_error_set(LG_EINPUT, "%s: grid: two conditions are both \"%s\" (repeated values?)", file,
                                    s->conds[c].id);
        if ((err = finish_condition(file, &s->conds[c], 0)) < 0)
            return err;
    }
    if (s->random_control) {
        for (c = 0; c < total; c++) {
            static const char suffix[] = ",control=random";
            lg_condition *r = &s->conds[total + c];
            size_t idlen = strlen(s->conds[c].id);
            r->p = s->conds[c].p;
            r->control_random = 1;
            r->trained_twin = c;
            /* the whole trained id + suffix (ids are < sizeof id - 20, so it fits;
             * cutting the trained id could give two twins one id) */
            if (idlen + sizeof suffix > sizeof r->id)
                return lg_error_set(LG_EINPUT, "%s: grid: condition id too long", file);
            memcpy(r->id, s->conds[c].id, idlen);
            memcpy(r->id + idlen, suffix, sizeof suffix);
            if ((err = finish_condition(file, r, 0)) < 0)
                return err;
        }
        s->n_conds = 2 * total;
    }
    return 0;
}

/* ---- layered data: data.layer, data.synthetic.layers / layer_leak ------------ */

/* An integer in [lo, hi] at obj[key], or LG_EINPUT naming where. */
static int layer_int(const char *file, const cJSON *obj, const char *key, const char *where, int lo, int hi, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) || v->valuedouble != floor(v->valuedouble))
        return lg_error_set(LG_EINPUT, "%s: %s: must be an integer in [%d, %d]", file, where, lo, hi);
    *out = (int)v->valuedouble;
    return 1;
}

int study_parse_layer(const char *file, const cJSON *data, lg_study *s)
{
    int err;
    s->data_layer = -1;
    if ((err = layer_int(file, data, "layer", "data.layer", 0, 63, &s->data_layer)) <= 0)
        return err;
    if (s->target_path || s->target_synth)
        return lg_error_set(LG_EINPUT, "%s: data.layer: not supported with data.target (transcoders read 2-D data)",
                            file);
    if (s->ood_path)
        return lg_error_set(LG_EINPUT, "%s: data.layer: not supported with data.ood", file);
    return 0;
}

int study_parse_synth_layers(const char *file, const cJSON *syn, lg_study *s)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(syn, "layer_leak");
    int err;
    s->synth.layers = 0;
    s->synth.layer_leak = 0.5;
    if ((err = layer_int(file, syn, "layers", "data.synthetic.layers", 2, 64, &s->synth.layers)) < 0)
        return err;
    if (v) {
        if (!s->synth.layers)
            return lg_error_set(LG_EINPUT, "%s: data.synthetic.layer_leak: needs data.synthetic.layers", file);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0 && v->valuedouble <= 1.0))
            return lg_error_set(LG_EINPUT, "%s: data.synthetic.layer_leak: must be a number in [0, 1]", file);
        s->synth.layer_leak = v->valuedouble;
    }
    if (s->synth.layers && s->target_synth)
        return lg_error_set(LG_EINPUT, "%s: data.synthetic.layers: not supported with a synthetic data.target", file);
    if (s->synth.layers && (double)s->synth.d * (double)s->synth.n_samples * s->synth.layers > 2147483648.0)
        return lg_error_set(LG_EINPUT, "%s: data.synthetic: d x n_samples x layers over 2^31 values", file);
    if (s->data_layer >= 0 && !s->synth.layers)
        return lg_error_set(LG_EINPUT, "%s: data.layer: the data is not layered (set data.synthetic.layers)", file);
    if (s->data_layer >= s->synth.layers && s->synth.layers)
        return lg_error_set(LG_EINPUT, "%s: data.layer: %d out of range: data.synthetic.layers is %d (0..%d)", file,
                            s->data_layer, s->synth.layers, s->synth.layers - 1);
    return 0;
}
