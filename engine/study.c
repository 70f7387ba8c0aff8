/*
 * study.c - parse, validate and expand study specs (see study.h).
 *
 * Validation is strict by design: a typo in a key would otherwise silently
 * fall back to a default and produce evidence for a different experiment than
 * the one the spec's author meant. Every key is looked up in a table; every
 * error names the file and the JSON path.
 *
 * Grid expansion: conditions are the cartesian product of the grid's value
 * lists, in spec order with the last key varying fastest. The condition id
 * lists the grid keys and values ("arch=topk,k=4"), so ids are stable as long
 * as the grid is.
 *
 * The parser is two files that share engine/study_int.h: this one reads the
 * spec's sections (data, seeds, the JSON helpers), holds the entry points
 * and writes the plan text; study_params.c holds the parameter table, the
 * defaults of a condition and the grid expansion.
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

/* ---- small JSON helpers ---------------------------------------------------- */

typedef struct {
    const char *file;
} ctx;

/* Every key of `obj` must be in `allowed` (NULL-terminated). */
static int check_keys(const char *file, const char *where, const cJSON *obj, const char *const *allowed)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        const char *const *a;
        for (a = allowed; *a; a++)
            if (strcmp(*a, it->string) == 0)
                break;
        if (!*a)
            return lg_error_set(LG_EINPUT, "%s: %s%s%s: unknown key", file, where, *where ? "." : "", it->string);
    }
    return 0;
}

static int get_object(const char *file, const cJSON *parent, const char *key, const char *where, int required, const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(parent, key);
    *out = NULL;
    if (!v) {
        if (required)
            return lg_error_set(LG_EINPUT, "%s: %s: required key missing", file, where);
        return 0;
    }
    if (!cJSON_IsObject(v))
        return lg_error_set(LG_EINPUT, "%s: %s: must be an object", file, where);
    *out = v;
    return 0;
}

static int get_number(const char *file, const cJSON *obj, const char *key, const char *where, double min, double max,
                      int integer, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return 0; /* keep default */
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min || v->valuedouble > max ||
        (integer && v->valuedouble != floor(v->valuedouble)))
        return lg_error_set(LG_EINPUT, "%s: %s: must be %s in [%.10g, %.10g]", file, where, integer ? "an integer" : "a number",
                            min, max);
    *out = v->valuedouble;
    return 0;
}

static int get_string(const char *file, const cJSON *obj, const char *key, const char *where, int required, char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        if (required)
            return lg_error_set(LG_EINPUT, "%s: %s: required key missing", file, where);
        return 0;
    }
    if (!cJSON_IsString(v) || !*v->valuestring)
        return lg_error_set(LG_EINPUT, "%s: %s: must be a non-empty string", file, where);
    if (strlen(v->valuestring) > 4096)
        return lg_error_set(LG_EINPUT, "%s: %s: longer than 4096 characters", file, where);
    lg_free(*out);
    *out = lg_strdup(v->valuestring);
    return *out ? 0 : LG_ENOMEM;
}

int lg_study_name_valid(const char *s)
{
    if (!*s || strlen(s) > 100)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '_' || *s == '.'))
            return 0;
    return 1;
}

/* ---- sections -------------------------------------------------------------- */

/* A path from the spec, resolved against the spec's directory (absolute paths kept). */
static int resolve_spec_path(const char *file, char *rel, char **out)
{
    char *dircopy;
    lg_buf full = LG_BUF_INIT;
    int err;
    if (rel[0] == '/') {
        *out = rel;
        return 0;
    }
    if (!(dircopy = lg_strdup(file))) {
        lg_free(rel);
        return LG_ENOMEM;
    }
    err = lg_path_join(&full, dirname(dircopy), rel);
    lg_free(dircopy);
    lg_free(rel);
    if (err < 0) {
        lg_buf_release(&full);
        return err;
    }
    *out = lg_buf_detach(&full);
    return *out ? 0 : LG_ENOMEM;
}

/* data.target / data.ood.target (transcoders, engine/transcoder.h):
 * {"path": ..., "tensor": ...} a file of the same rows, or (data.target of a
 * synthetic source only) {"synthetic": {"seed": N}}. */
static int parse_target(const char *file, const cJSON *parent, const char *where, int allow_synth, lg_study *s,
                        char **path_out, char **tensor_out)
{
    static const char *const keys[] = {"path", "tensor", "synthetic", NULL};
    static const char *const skeys[] = {"seed", NULL};
    const cJSON *tg = NULL, *syn = NULL;
    char *rel = NULL, wbuf[96];
    double seed = 0;
    int err;
    if ((err = get_object(file, parent, "target", where, 0, &tg)) < 0 || !tg)
        return err;
    if ((err = check_keys(file, where, tg, keys)) < 0)
        return err;
    snprintf(wbuf, sizeof wbuf, "%s.synthetic", where);
    if ((err = get_object(file, tg, "synthetic", wbuf, 0, &syn)) < 0)
        return err;
    if (syn) {
        if (!allow_synth)
            return lg_error_set(LG_EINPUT, "%s: %s: only data.target of a synthetic source can be synthetic", file,
                                wbuf);
        if (cJSON_GetObjectItemCaseSensitive(tg, "path") || cJSON_GetObjectItemCaseSensitive(tg, "tensor"))
            return lg_error_set(LG_EINPUT, "%s: %s: give either path or synthetic", file, where);
        if ((err = check_keys(file, wbuf, syn, skeys)) < 0)
            return err;
        snprintf(wbuf, sizeof wbuf, "%s.synthetic.seed", where);
        if (!cJSON_GetObjectItemCaseSensitive(syn, "seed"))
            return lg_error_set(LG_EINPUT, "%s: %s: required key missing", file, wbuf);
        if ((err = get_number(file, syn, "seed", wbuf, 0, 9007199254740991.0, 1, &seed)) < 0)
            return err;
        s->target_synth = 1;
        s->target_synth_seed = (uint64_t)seed;
        return 0;
    }
    snprintf(wbuf, sizeof wbuf, "%s.path", where);
    if ((err = get_string(file, tg, "path", wbuf, 1, &rel)) < 0)
        return err;
    snprintf(wbuf, sizeof wbuf, "%s.tensor", where);
    if ((err = get_string(file, tg, "tensor", wbuf, 0, tensor_out)) < 0) {
        lg_free(rel);
        return err;
    }
    return resolve_spec_path(file, rel, path_out);
}

/* data.ood: {"path": ..., "tensor": ...}, a second activation file every
 * trained SAE is also evaluated on (a shifted input distribution). */
static int parse_ood(const char *file, const cJSON *data, lg_study *s)
{
    static const char *const keys[] = {"path", "tensor", "target", NULL};
    const cJSON *ood = NULL;
    char *rel = NULL;
    int err;
    if ((err = get_object(file, data, "ood", "data.ood", 0, &ood)) < 0 || !ood)
        return err;
    if ((err = check_keys(file, "data.ood", ood, keys)) < 0)
        return err;
    if ((err = get_string(file, ood, "path", "data.ood.path", 1, &rel)) < 0)
        return err;
    if ((err = get_string(file, ood, "tensor", "data.ood.tensor", 0, &s->ood_tensor)) < 0 ||
        (err = parse_target(file, ood, "data.ood.target", 0, s, &s->ood_target_path, &s->ood_target_tensor)) < 0) {
        lg_free(rel);
        return err;
    }
    return resolve_spec_path(file, rel, &s->ood_path);
}

static int parse_data(const char *file, const cJSON *data, lg_study *s)
{
    static const char *const keys[] = {"source", "path", "tensor", "synthetic", "eval_fraction", "split_seed", "ood",
                                       "target", "layer", NULL};
    static const char *const skeys[] = {"d", "n_features", "n_samples", "active_mean", "zipf_exponent",
                                        "magnitude_mean", "magnitude_std", "noise_std", "seed", "layers",
                                        "layer_leak", NULL};
    const cJSON *syn = NULL;
    double x;
    int err;

    if ((err = check_keys(file, "data", data, keys)) < 0)
        return err;
    if ((err = get_string(file, data, "source", "data.source", 1, &s->data_source)) < 0)
        return err;
    s->eval_fraction = 0.1;
    if ((err = get_number(file, data, "eval_fraction", "data.eval_fraction", 0.001, 0.9, 0, &s->eval_fraction)) < 0)
        return err;
    x = 0;
    if ((err = get_number(file, data, "split_seed", "data.split_seed", 0, 9007199254740991.0, 1, &x)) < 0)
        return err;
    s->split_seed = (uint64_t)x;
    if ((err = parse_ood(file, data, s)) < 0)
        return err;
    if ((err = parse_target(file, data, "data.target", strcmp(s->data_source, "synthetic") == 0, s,
                            &s->target_path, &s->target_tensor)) < 0)
        return err;
    if ((err = study_parse_layer(file, data, s)) < 0) /* data.layer (engine/run_layer.c) */
        return err;

    if (strcmp(s->data_source, "file") == 0) {
        char *rel = NULL;
        if (cJSON_GetObjectItemCaseSensitive(data, "synthetic"))
            return lg_error_set(LG_EINPUT, "%s: data.synthetic: not allowed with source \"file\"", file);
        if ((err = get_string(file, data, "path", "data.path", 1, &rel)) < 0)
            return err;
        if ((err = get_string(file, data, "tensor", "data.tensor", 0, &s->data_tensor)) < 0) {
            lg_free(rel);
            return err;
        }
        return resolve_spec_path(file, rel, &s->data_path);
    }
    if (strcmp(s->data_source, "synthetic") != 0)
        return lg_error_set(LG_EINPUT, "%s: data.source: must be \"synthetic\" or \"file\"", file);
    if (cJSON_GetObjectItemCaseSensitive(data, "path") || cJSON_GetObjectItemCaseSensitive(data, "tensor"))
        return lg_error_set(LG_EINPUT, "%s: data.path: not allowed with source \"synthetic\"", file);
    if ((err = get_object(file, data, "synthetic", "data.synthetic", 1, &syn)) < 0)
        return err;
    if ((err = check_keys(file, "data.synthetic", syn, skeys)) < 0)
        return err;
    {
        lg_study_synth *y = &s->synth;
        double d = 64, nf = 256, ns = 20000, seed = 0;
        y->active_mean = 4;
        y->zipf_exponent = 0;
        y->magnitude_mean = 1.0;
        y->magnitude_std = 0.25;
        y->noise_std = 0.0;
        if ((err = get_number(file, syn, "d", "data.synthetic.d", 1, 65536, 1, &d)) < 0 ||
            (err = get_number(file, syn, "n_features", "data.synthetic.n_features", 1, 1 << 22, 1, &nf)) < 0 ||
            (err = get_number(file, syn, "n_samples", "data.synthetic.n_samples", 2, 1e9, 1, &ns)) < 0 ||
            (err = get_number(file, syn, "active_mean", "data.synthetic.active_mean", 0.01, 1e6, 0, &y->active_mean)) < 0 ||
            (err = get_number(file, syn, "zipf_exponent", "data.synthetic.zipf_exponent", 0, 10, 0, &y->zipf_exponent)) < 0 ||
            (err = get_number(file, syn, "magnitude_mean", "data.synthetic.magnitude_mean", 0, 1e6, 0, &y->magnitude_mean)) < 0 ||
            (err = get_number(file, syn, "magnitude_std", "data.synthetic.magnitude_std", 0, 1e6, 0, &y->magnitude_std)) < 0 ||
            (err = get_number(file, syn, "noise_std", "data.synthetic.noise_std", 0, 1e6, 0, &y->noise_std)) < 0 ||
            (err = get_number(file, syn, "seed", "data.synthetic.seed", 0, 9007199254740991.0, 1, &seed)) < 0)
            return err;
        if (d * ns > 4e9)
            return lg_error_set(LG_EINPUT, "%s: data.synthetic: d x n_samples over 4e9 values", file);
        if (y->active_mean > nf)
            return lg_error_set(LG_EINPUT, "%s: data.synthetic.active_mean: larger than n_features", file);
        y->d = (int)d;
        y->n_features = (int)nf;
        y->n_samples = (int64_t)ns;
        y->seed = (uint64_t)seed;
        if ((err = study_parse_synth_layers(file, syn, s)) < 0) /* layers, layer_leak */
            return err;
    }
    return 0;
}

/* ---- entry points ---------------------------------------------------------- */

/* SHA-256 hex of the spec bytes. (Not lg_sha256_buf: the fuzz_spec target
 * builds this file without base/sha256.c.) The return is checked, so a
 * failed digest is an error rather than a digest of uninitialised bytes. */
static int digest_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return lg_error_set(LG_EINTERNAL, "sha256 of the study spec failed");
    for (i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int lg_study_parse(const char *path, const char *text, size_t len, lg_study **out)
{
    static const char *const top_keys[] = {"format", "name", "description", "data", "train", "sae", "grid",
                                           "seeds", "controls", "metrics", NULL};
    static const char *const ctl_keys[] = {"random_init", NULL};
    static const char *const met_keys[] = {"shared_threshold", "hungarian", "dense_threshold", "hungarian_max", NULL};
    lg_study *s = NULL;
    const cJSON *root, *data, *train, *sae, *grid, *seeds, *ctl, *met, *v;
    lg_cond_params base;
    double fmt = 1, x;
    int err = 0;

    *out = NULL;
    if (!(s = lg_calloc(1, sizeof(*s))))
        return LG_ENOMEM;
    if (!(s->path = lg_strdup(path))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = digest_hex(text, len, s->spec_digest)) < 0)
        goto out;
    /* strict: one document, no duplicate key, no \u0000 (artifacts/json.h) */
    if ((err = lg_json_parse(path, text, len, &s->json)) < 0)
        goto out;
    root = s->json;
    if (!cJSON_IsObject(root)) {
        err = lg_error_set(LG_EINPUT, "%s: the study must be a JSON object", path);
        goto out;
    }
    if ((err = check_keys(path, "", root, top_keys)) < 0)
        goto out;
    if ((err = get_number(path, root, "format", "format", 1, 1, 1, &fmt)) < 0)
        goto out;
    if ((err = get_string(path, root, "name", "name", 1, &s->name)) < 0 ||
        (err = get_string(path, root, "description", "description", 0, &s->description)) < 0)
        goto out;
    if (!lg_study_name_valid(s->name)) {
        err = lg_error_set(LG_EINPUT, "%s: name: use 1-100 characters of [A-Za-z0-9._-]", path);
        goto out;
    }
    if ((err = get_object(path, root, "data", "data", 1, &data)) < 0 || (err = parse_data(path, data, s)) < 0)
        goto out;

    study_params_default(&base);
    if ((err = get_object(path, root, "sae", "sae", 0, &sae)) < 0 ||
        (sae && (err = study_apply_section(path, "sae", sae, &base)) < 0))
        goto out;
    if ((err = get_object(path, root, "train", "train", 0, &train)) < 0 ||
        (train && (err = study_apply_section(path, "train", train, &base)) < 0))
        goto out;
    if (train && cJSON_GetObjectItemCaseSensitive(train, "log_every")) {
        if ((err = get_number(path, train, "log_every", "train.log_every", 0, 1 << 24, 1, &x)) < 0)
            goto out;
        s->log_every = (int)x;
    }

    seeds = cJSON_GetObjectItemCaseSensitive(root, "seeds");
    if (!seeds) {
        err = lg_error_set(LG_EINPUT, "%s: seeds: required key missing", path);
        goto out;
    }
    if (!cJSON_IsArray(seeds) || cJSON_GetArraySize(seeds) < 1 || cJSON_GetArraySize(seeds) > LG_MAX_SEEDS) {
        err = lg_error_set(LG_EINPUT, "%s: seeds: must be an array of 1 to %d integers", path, LG_MAX_SEEDS);
        goto out;
    }
    cJSON_ArrayForEach(v, seeds) {
        int j;
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) ||
            v->valuedouble > 9007199254740991.0) {
            err = lg_error_set(LG_EINPUT, "%s: seeds[%d]: must be a non-negative integer", path, s->n_seeds);
            goto out;
        }
        for (j = 0; j < s->n_seeds; j++)
            if (s->seeds[j] == (uint64_t)v->valuedouble) {
                err = lg_error_set(LG_EINPUT, "%s: seeds[%d]: repeated seed %.0f", path, s->n_seeds, v->valuedouble);
                goto out;
            }
        s->seeds[s->n_seeds++] = (uint64_t)v->valuedouble;
    }

    s->random_control = 1;
    if ((err = get_object(path, root, "controls", "controls", 0, &ctl)) < 0)
        goto out;
    if (ctl) {
        if ((err = check_keys(path, "controls", ctl, ctl_keys)) < 0)
            goto out;
        v = cJSON_GetObjectItemCaseSensitive(ctl, "random_init");
        if (v && !cJSON_IsBool(v)) {
            err = lg_error_set(LG_EINPUT, "%s: controls.random_init: must be true or false", path);
            goto out;
        }
        if (v)
            s->random_control = cJSON_IsTrue(v);
    }

    s->shared_threshold = 0.7;
    s->dense_threshold = 0.1;
    s->hungarian = 1;
    s->hungarian_max = LG_HUNGARIAN_MAX_DEFAULT;
    if ((err = get_object(path, root, "metrics", "metrics", 0, &met)) < 0)
        goto out;
    if (met) {
        if ((err = check_keys(path, "metrics", met, met_keys)) < 0 ||
            (err = get_number(path, met, "shared_threshold", "metrics.shared_threshold", -1, 1, 0, &s->shared_threshold)) < 0 ||
            (err = get_number(path, met, "dense_threshold", "metrics.dense_threshold", 0, 1, 0, &s->dense_threshold)) < 0)
            goto out;
        x = s->hungarian_max;
        if ((err = get_number(path, met, "hungarian_max", "metrics.hungarian_max", 1, LG_HUNGARIAN_MAX_N, 1, &x)) < 0)
            goto out;
        s->hungarian_max = (int)x;
        v = cJSON_GetObjectItemCaseSensitive(met, "hungarian");
        if (v && !cJSON_IsBool(v)) {
            err = lg_error_set(LG_EINPUT, "%s: metrics.hungarian: must be true or false", path);
            goto out;
        }
        if (v)
            s->hungarian = cJSON_IsTrue(v);
    }
    if (s->random_control && s->n_seeds < 2) {
        /* cross-seed metrics need pairs; a single seed is still a valid (degenerate) study */
    }
    if ((err = get_object(path, root, "grid", "grid", 0, &grid)) < 0 || (err = study_expand_grid(path, grid, &base, s)) < 0)
        goto out;
    for (int i = 0; i < s->n_conds; i++) {
        /* with a target, every condition says which arm it is, so claims can select the SAE arm too */
        if ((s->target_path || s->target_synth) && !s->conds[i].p.transcoder &&
            !cJSON_AddFalseToObject(s->conds[i].params_json, "transcoder")) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        if (s->conds[i].p.transcoder) {
            if (s->conds[i].p.arch == LG_ARCH_HIER_TOPK || s->conds[i].p.arch == LG_ARCH_ROUTESAE)
                err = lg_error_set(LG_EINPUT, "%s: condition %s: sae.transcoder: not supported with arch %s (relu, topk, "
                                   "batchtopk, jumprelu and matryoshka are)", path, s->conds[i].id,
                                   lg_arch_name(s->conds[i].p.arch));
            else if (!s->target_path && !s->target_synth)
                err = lg_error_set(LG_EINPUT, "%s: condition %s: sae.transcoder needs data.target (the tensor it "
                                   "reconstructs)", path, s->conds[i].id);
            else if (s->ood_path && !s->ood_target_path)
                err = lg_error_set(LG_EINPUT, "%s: data.ood.target: required when a condition is a transcoder "
                                   "(condition %s)", path, s->conds[i].id);
            if (err < 0)
                goto out;
        }
    }
    for (x = 0; x < s->n_conds; x++) {
        const lg_condition *c = &s->conds[(int)x];
        if (c->p.consistency.weight > 0 && s->n_seeds < 2) {
            err = lg_error_set(LG_EINPUT, "%s: condition %s: train.consistency needs at least 2 seeds", path, c->id);
            goto out;
        }
        if (c->p.consistency.weight > 0 && c->p.d_sae > LG_HUNGARIAN_MAX_N) {
            err = lg_error_set(LG_EINPUT, "%s: condition %s: train.consistency matches at most d_sae %d", path, c->id,
                               LG_HUNGARIAN_MAX_N);
            goto out;
        }
    }
out:
    if (err < 0) {
        lg_study_free(s);
        return err;
    }
    *out = s;
    return 0;
}

int lg_study_load(const char *path, lg_study **out)
{
    lg_buf text = LG_BUF_INIT;
    int err;
    *out = NULL;
    if ((err = lg_file_read(path, 16u << 20, &text)) < 0) {
        lg_buf_release(&text);
        return err;
    }
    err = lg_study_parse(path, text.ptr, text.len, out);
    lg_buf_release(&text);
    return err;
}

void lg_study_free(lg_study *s)
{
    int i;
    if (!s)
        return;
    for (i = 0; i < s->n_conds; i++)
        cJSON_Delete(s->conds[i].params_json);
    lg_free(s->conds);
    lg_free(s->path);
    lg_free(s->name);
    lg_free(s->description);
    lg_free(s->data_source);
    lg_free(s->data_path);
    lg_free(s->data_tensor);
    lg_free(s->ood_path);
    lg_free(s->ood_tensor);
    lg_free(s->target_path);
    lg_free(s->target_tensor);
    lg_free(s->ood_target_path);
    lg_free(s->ood_target_tensor);
    cJSON_Delete(s->json);
    lg_free(s);
}

int lg_study_n_cells(const lg_study *s) { return s->n_conds * s->n_seeds; }

int lg_study_plan_text(const lg_study *s, lg_buf *out)
{
    int i, err = 0;
    int trained = s->random_control ? s->n_conds / 2 : s->n_conds;
    long long train_samples = 0;
    if ((err = lg_buf_printf(out, "study %s (%s)\nspec sha256 %s\n", s->name, s->path, s->spec_digest)) < 0)
        return err;
    if (strcmp(s->data_source, "synthetic") == 0)
        err = lg_buf_printf(out, "data: synthetic d=%d n_features=%d n_samples=%lld active_mean=%g seed=%llu, eval %.0f%%\n",
                            s->synth.d, s->synth.n_features, (long long)s->synth.n_samples, s->synth.active_mean,
                            (unsigned long long)s->synth.seed, 100 * s->eval_fraction);
    else
        err = lg_buf_printf(out, "data: file %s%s%s, eval %.0f%%\n", s->data_path, s->data_tensor ? " tensor " : "",
                            s->data_tensor ? s->data_tensor : "", 100 * s->eval_fraction);
    if (err < 0)
        return err;
    if (s->synth.layers > 0 && /* layered synthetic data (engine/data.h) */
        (err = lg_buf_printf(out, "layers: %d (layer_leak %g)\n", s->synth.layers, s->synth.layer_leak)) < 0)
        return err;
    if (s->data_layer >= 0 && /* engine/run_layer.c */
        (err = lg_buf_printf(out, "layer rule: single-layer archs read layer %d, routesae all layers\n",
                             s->data_layer)) < 0)
        return err;
    if (s->ood_path && (err = lg_buf_printf(out, "ood: file %s%s%s (every SAE is also evaluated on it)\n", s->ood_path,
                                            s->ood_tensor ? " tensor " : "", s->ood_tensor ? s->ood_tensor : "")) < 0)
        return err;
    if (s->target_synth && (err = lg_buf_printf(out, "target: synthetic, output dictionary seed %llu (transcoder "
                                                "conditions reconstruct it)\n",
                                                (unsigned long long)s->target_synth_seed)) < 0)
        return err;
    if (s->target_path && (err = lg_buf_printf(out, "target: file %s%s%s (transcoder conditions reconstruct it)\n",
                                               s->target_path, s->target_tensor ? " tensor " : "",
                                               s->target_tensor ? s->target_tensor : "")) < 0)
        return err;
    if (s->ood_target_path && (err = lg_buf_printf(out, "ood target: file %s\n", s->ood_target_path)) < 0)
        return err;
    if ((err = lg_buf_printf(out, "seeds:")) < 0)
        return err;
    for (i = 0; i < s->n_seeds; i++)
        if ((err = lg_buf_printf(out, " %llu", (unsigned long long)s->seeds[i])) < 0)
            return err;
    if ((err = lg_buf_printf(out, "\nconditions: %d trained%s\n", trained, s->random_control ? " + their random-init twins" : "")) < 0)
        return err;
    for (i = 0; i < s->n_conds; i++) {
        const lg_cond_params *p = &s->conds[i].p;
        if (!s->conds[i].control_random)
            train_samples += (long long)p->steps * p->batch * s->n_seeds;
        if ((err = lg_buf_printf(out, "  %-40s %s d_sae=%d k=%d steps=%d batch=%d lr=%g%s\n", s->conds[i].id,
                                 lg_arch_name(p->arch), p->d_sae, p->k, s->conds[i].control_random ? 0 : p->steps,
                                 p->batch, p->lr, s->conds[i].control_random ? " (untrained)" : "")) < 0)
            return err;
    }
    return lg_buf_printf(out, "cells: %d (%d conditions x %d seeds), %lld training samples in all, %d seed pairs per condition\n",
                         lg_study_n_cells(s), s->n_conds, s->n_seeds, train_samples, s->n_seeds * (s->n_seeds - 1) / 2);
}

cJSON *lg_study_plan_json(const lg_study *s)
{
    cJSON *root = cJSON_CreateObject(), *conds, *cells;
    int i, j;
    if (!root)
        return NULL;
    cJSON_AddStringToObject(root, "study", s->name);
    cJSON_AddStringToObject(root, "spec_sha256", s->spec_digest);
    conds = cJSON_AddArrayToObject(root, "conditions");
    cells = cJSON_AddArrayToObject(root, "cells");
    if (!conds || !cells) {
        cJSON_Delete(root);
        return NULL;
    }
    for (i = 0; i < s->n_conds; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "id", s->conds[i].id);
        cJSON_AddItemToObject(c, "params", cJSON_Duplicate(s->conds[i].params_json, 1));
        cJSON_AddItemToArray(conds, c);
        for (j = 0; j < s->n_seeds; j++) {
            cJSON *cell = cJSON_CreateObject();
            cJSON_AddStringToObject(cell, "condition", s->conds[i].id);
            cJSON_AddNumberToObject(cell, "seed", (double)s->seeds[j]);
            cJSON_AddBoolToObject(cell, "train", !s->conds[i].control_random);
            cJSON_AddItemToArray(cells, cell);
        }
    }
    return root;
}
