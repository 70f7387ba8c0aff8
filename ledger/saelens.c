/*
 * saelens.c - SAELens format conversion (see saelens.h).
 *
 * Why here and this way: the export must be loadable by SAELens without our
 * code, so cfg.json carries exactly the keys SAELens reads and the weights
 * use SAELens's tensor names and shapes (which are also ours, engine/sae.h):
 * conversion is a renaming of metadata, never a transformation of numbers,
 * and every exported float is bit-identical to the stored cell's float.
 *
 * Import treats its folders as untrusted input: cfg.json is read with a size
 * cap, every number is range-checked before it sizes an allocation, the
 * safetensors reader (artifacts/safetensors.h) validates the file layout,
 * and each tensor is checked for shape and for NaN/Inf. Only W_dec is kept
 * in memory (as float32); the other tensors are scanned in chunks.
 */
#include "ledger/saelens.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifacts/json.h"
#include "artifacts/safetensors.h"
#include "engine/arch_hier.h"
#include "engine/consistency.h"

const char *lg_saelens_arch_name(lg_arch arch, int *has_threshold)
{
    int thr = 0;
    const char *name = "standard";
    switch (arch) {
    case LG_ARCH_RELU:
        name = "standard";
        break;
    case LG_ARCH_TOPK:
    case LG_ARCH_HIER_TOPK: /* its inference at the largest budget is TopK at k */
        name = "topk";
        break;
    case LG_ARCH_JUMPRELU:
    case LG_ARCH_BATCHTOPK:
    case LG_ARCH_MATRYOSHKA:
        name = "jumprelu";
        thr = 1;
        break;
    case LG_ARCH_ROUTESAE: /* no SAELens equivalent: lg_saelens_write refuses it */
        name = "routesae";
        break;
    }
    if (has_threshold)
        *has_threshold = thr;
    return name;
}

/* ---- tensors ------------------------------------------------------------------ */

/* Checks tensor `name` of f: floating dtype, shape {d0} or {d0, d1} (d1 < 0:
 * 1-D), all values finite. With out != NULL, *out receives a float32 copy
 * (lg_malloc'd). */
static int tensor_f32(const lg_st_file *f, const char *label, const char *name, int64_t d0, int64_t d1,
                      float **out)
{
    lg_tensor_view v;
    int ndim = d1 < 0 ? 1 : 2, err;
    size_t n, i, off, esz;
    float chunk[4096];

    if (out)
        *out = NULL;
    if ((err = lg_st_get(f, name, &v)) < 0)
        return lg_error_set(LG_EINPUT, "%s: tensor %s is missing", label, name);
    if (v.dtype != LG_DT_F32 && v.dtype != LG_DT_F16 && v.dtype != LG_DT_BF16 && v.dtype != LG_DT_F64)
        return lg_error_set(LG_EINPUT, "%s: tensor %s: dtype %s is not a float type", label, name,
                            lg_dtype_name(v.dtype));
    if (v.ndim != ndim || v.shape[0] != d0 || (ndim == 2 && v.shape[1] != d1)) {
        char got[96] = "[", want[64];
        int j;
        for (j = 0; j < v.ndim; j++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", j ? ", " : "", (long long)v.shape[j]);
        snprintf(got + strlen(got), sizeof got - strlen(got), "]");
        if (ndim == 1)
            snprintf(want, sizeof want, "[%lld]", (long long)d0);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
        return lg_error_set(LG_EINPUT, "%s: tensor %s: shape %s does not match the expected %s", label, name, got, want);
    }
    n = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    esz = lg_dtype_size(v.dtype);
    if (out && !(*out = lg_malloc(n ? n * sizeof(float) : 1)))
        return LG_ENOMEM;
    for (off = 0; off < n; off += 4096) {
        size_t m = n - off < 4096 ? n - off : 4096;
        float *dst = out ? *out + off : chunk;
        if ((err = lg_convert_to_f32(v.dtype, (const char *)v.data + off * esz, m, dst)) < 0)
            goto fail;
        for (i = 0; i < m; i++)
            if (!isfinite(dst[i])) {
                size_t at = off + i;
                if (ndim == 2)
                    err = lg_error_set(LG_EINPUT, "%s: tensor %s[%zu, %zu] is not finite (%g)", label, name,
                                       at / (size_t)d1, at % (size_t)d1, (double)dst[i]);
                else
                    err = lg_error_set(LG_EINPUT, "%s: tensor %s[%zu] is not finite (%g)", label, name, at,
                                       (double)dst[i]);
                goto fail;
            }
    }
    return 0;
fail:
    if (out) {
        lg_free(*out);
        *out = NULL;
    }
    return err;
}

/* ---- the engine's cell files ---------------------------------------------------- */

static void copy_meta(const lg_st_file *f, const char *key, char *dst, size_t n)
{
    const char *v = NULL;
    dst[0] = '\0';
    if (lg_st_meta(f, key, &v) == 0 && v)
        snprintf(dst, n, "%s", v);
}

int lg_cell_sae_read(const char *path, const char *label, lg_cell_sae *out)
{
    lg_st_file *f = NULL;
    lg_tensor_view v;
    const char *arch = NULL, *kstr = NULL, *seed = NULL;
    long k = 0, sv;
    int err;

    memset(out, 0, sizeof(*out));
    out->seed = -1;
    lg_error_clear();
    if ((err = lg_st_open(path, &f)) < 0) {
        lg_error_wrap("%s", label);
        goto out;
    }
    if (lg_st_meta(f, "architecture", &arch) < 0 || lg_arch_parse(arch, &out->cfg.arch) < 0) {
        err = lg_error_set(LG_EINPUT, "%s: metadata architecture: missing or unknown (%s)", label, arch ? arch : "absent");
        goto out;
    }
    if (lg_st_meta(f, "k", &kstr) == 0 && kstr && lg_parse_long(kstr, &k) < 0) {
        err = lg_error_set(LG_EINPUT, "%s: metadata k: '%s' is not an integer", label, kstr);
        goto out;
    }
    if (lg_st_meta(f, "seed", &seed) == 0 && seed && lg_parse_long(seed, &sv) == 0 && sv >= 0)
        out->seed = sv;
    copy_meta(f, "condition", out->condition, sizeof out->condition);
    copy_meta(f, "study", out->study, sizeof out->study);
    copy_meta(f, "engine_version", out->engine_version, sizeof out->engine_version);
    {
        const char *tc = NULL;
        out->transcoder = lg_st_meta(f, "transcoder", &tc) == 0 && tc && strcmp(tc, "true") == 0;
    }
    if ((err = lg_st_get(f, "W_dec", &v)) < 0 || v.ndim != 2 || v.shape[0] < 1 || v.shape[1] < 1 ||
        v.shape[0] > INT32_MAX || v.shape[1] > INT32_MAX) {
        err = lg_error_set(LG_EINPUT, "%s: tensor W_dec: missing or not a non-empty 2-D tensor", label);
        goto out;
    }
    out->cfg.d_sae = (int)v.shape[0];
    out->cfg.d_in = (int)v.shape[1];
    out->cfg.k = out->cfg.arch == LG_ARCH_RELU || out->cfg.arch == LG_ARCH_JUMPRELU ? (k > 0 && k <= out->cfg.d_sae ? (int)k : 0)
                                                                                    : (int)k;
    if (out->cfg.arch == LG_ARCH_HIER_TOPK) {
        const char *ks = NULL;
        if ((err = lg_hier_ks_parse(lg_st_meta(f, "ks", &ks) == 0 ? ks : NULL, label, &out->cfg)) < 0)
            goto out;
    }
    if ((err = lg_sae_config_check(&out->cfg)) < 0) {
        lg_error_wrap("%s", label);
        goto out;
    }
    out->w.d_in = out->cfg.d_in;
    out->w.d_sae = out->cfg.d_sae;
    if ((err = tensor_f32(f, label, "W_enc", out->cfg.d_in, out->cfg.d_sae, &out->w.W_enc)) < 0 ||
        (err = tensor_f32(f, label, "b_enc", out->cfg.d_sae, -1, &out->w.b_enc)) < 0 ||
        (err = tensor_f32(f, label, "W_dec", out->cfg.d_sae, out->cfg.d_in, &out->w.W_dec)) < 0 ||
        (err = tensor_f32(f, label, "b_dec", out->cfg.d_in, -1, &out->w.b_dec)) < 0 ||
        (err = tensor_f32(f, label, "threshold", out->cfg.d_sae, -1, &out->w.threshold)) < 0)
        goto out;
    if (out->cfg.arch == LG_ARCH_ROUTESAE) { /* the router W_router [d_in, L], b_router [L] (engine/arch_route.h) */
        if (lg_st_get(f, "W_router", &v) < 0 || v.ndim != 2 || v.shape[0] != out->cfg.d_in || v.shape[1] < 1 ||
            v.shape[1] > 65536) {
            err = lg_error_set(LG_EINPUT, "%s: tensor W_router: missing or not [d_in=%d, L]", label, out->cfg.d_in);
            goto out;
        }
        out->w.n_layers = (int)v.shape[1];
        if ((err = tensor_f32(f, label, "W_router", out->cfg.d_in, out->w.n_layers, &out->w.W_router)) < 0 ||
            (err = tensor_f32(f, label, "b_router", out->w.n_layers, -1, &out->w.b_router)) < 0)
            goto out;
    }
out:
    lg_st_close(f);
    if (err < 0)
        lg_cell_sae_release(out);
    return err;
}

void lg_cell_sae_release(lg_cell_sae *c)
{
    if (!c)
        return;
    lg_sae_weights_release(&c->w);
    memset(&c->w, 0, sizeof c->w);
}

/* ---- export ----------------------------------------------------------------------- */

/* the SAELens release whose cfg.json layout we write */
#define LG_SAELENS_FORMAT_VERSION "6.0.0"

cJSON *lg_saelens_cfg_new(const lg_sae_config *cfg, const cJSON *metadata)
{
    cJSON *c = cJSON_CreateObject(), *m;
    const char *arch = lg_saelens_arch_name(cfg->arch, NULL);
    int ok;
    if (!c)
        return NULL;
    m = metadata ? cJSON_Duplicate(metadata, 1) : cJSON_CreateObject();
    ok = m && cJSON_AddStringToObject(c, "architecture", arch) && cJSON_AddNumberToObject(c, "d_in", cfg->d_in) &&
         cJSON_AddNumberToObject(c, "d_sae", cfg->d_sae) && cJSON_AddStringToObject(c, "dtype", "float32") &&
         cJSON_AddStringToObject(c, "device", "cpu") && cJSON_AddTrueToObject(c, "apply_b_dec_to_input") &&
         cJSON_AddStringToObject(c, "normalize_activations", "none") &&
         cJSON_AddStringToObject(c, "reshape_activations", "none");
    if (ok && (cfg->arch == LG_ARCH_TOPK || cfg->arch == LG_ARCH_HIER_TOPK))
        ok = cJSON_AddNumberToObject(c, "k", cfg->k) != NULL;
    /* SAELens 6 reads hook_name / model_name at the top level and treats a
     * cfg.json without sae_lens_version (top level or metadata) as a pre-6
     * config to be converted: name the format we write */
    if (ok && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "hook_name")))
        ok = cJSON_AddStringToObject(c, "hook_name", cJSON_GetObjectItemCaseSensitive(m, "hook_name")->valuestring) != NULL;
    if (ok && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "model_name")))
        ok = cJSON_AddStringToObject(c, "model_name", cJSON_GetObjectItemCaseSensitive(m, "model_name")->valuestring) !=
             NULL;
    if (ok && !cJSON_GetObjectItemCaseSensitive(m, "sae_lens_version"))
        ok = cJSON_AddStringToObject(m, "sae_lens_version", LG_SAELENS_FORMAT_VERSION) != NULL;
    if (ok)
        ok = cJSON_AddStringToObject(m, "ledger_architecture", lg_arch_name(cfg->arch)) &&
             (cfg->k <= 0 || cJSON_AddNumberToObject(m, "ledger_k", cfg->k)) &&
             (cfg->arch != LG_ARCH_HIER_TOPK || cJSON_AddItemToObject(m, "ledger_ks", cJSON_CreateIntArray(cfg->ks, cfg->n_ks)));
    if (!ok || !cJSON_AddItemToObject(c, "metadata", m)) {
        cJSON_Delete(m);
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

int lg_saelens_write(const char *dir, const lg_sae_config *cfg, const lg_sae_weights *w, const cJSON *metadata)
{
    lg_buf path = LG_BUF_INIT;
    cJSON *c = NULL;
    char *text = NULL;
    int has_thr = 0, err;
    lg_tensor_f32 t[5] = {
        {"W_enc", 2, {w->d_in, w->d_sae}, w->W_enc},       /* [d_in, d_sae] */
        {"b_enc", 1, {w->d_sae}, w->b_enc},                /* [d_sae] */
        {"W_dec", 2, {w->d_sae, w->d_in}, w->W_dec},       /* [d_sae, d_in] */
        {"b_dec", 1, {w->d_in}, w->b_dec},                 /* [d_in] */
        {"threshold", 1, {w->d_sae}, w->threshold},        /* [d_sae], JumpReLU only */
    };
    const char *meta[] = {"format", "pt"}; /* what torch-saved safetensors carry */

    lg_saelens_arch_name(cfg->arch, &has_thr);
    if (cfg->arch == LG_ARCH_ROUTESAE)
        return lg_error_set(LG_EINPUT, "%s: %s", dir, LG_SAELENS_ROUTESAE_REFUSAL);
    if (w->d_in != cfg->d_in || w->d_sae != cfg->d_sae)
        return lg_error_set(LG_EINTERNAL, "%s: weights [%d, %d] do not match the config [%d, %d]", dir, w->d_in,
                            w->d_sae, cfg->d_in, cfg->d_sae);
    if (!(c = lg_saelens_cfg_new(cfg, metadata)) || !(text = cJSON_Print(c))) {
        err = lg_error_set(LG_ENOMEM, "out of memory building %s/%s", dir, LG_SAELENS_CFG);
        goto out;
    }
    if ((err = lg_path_join(&path, dir, LG_SAELENS_WEIGHTS)) < 0 ||
        (err = lg_st_write(path.ptr, t, has_thr ? 5 : 4, meta, 1)) < 0)
        goto out;
    if ((err = lg_path_join(&path, dir, LG_SAELENS_CFG)) < 0)
        goto out;
    {
        lg_buf body = LG_BUF_INIT;
        if ((err = lg_buf_puts(&body, text)) >= 0 && (err = lg_buf_puts(&body, "\n")) >= 0)
            err = lg_file_write_atomic(path.ptr, body.ptr, body.len);
        lg_buf_release(&body);
    }
out:
    free(text);
    cJSON_Delete(c);
    lg_buf_release(&path);
    return err;
}

/* ---- import ----------------------------------------------------------------------- */

void lg_saelens_limits_init(lg_saelens_limits *lim)
{
    lim->max_elements = (uint64_t)1 << 26;
    lim->max_dim = 1 << 20;
}

/* Integer member in [lo, hi]; *out untouched when absent and !required. */
static int cfg_int(const char *file, const cJSON *c, const char *key, int required, double lo, double hi, long long *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return lg_error_set(LG_EINPUT, "%s: %s: required key missing", file, key);
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < lo || v->valuedouble > hi)
        return lg_error_set(LG_EINPUT, "%s: %s: must be an integer in [%.0f, %.0f]", file, key, lo, hi);
    *out = (long long)v->valuedouble;
    return 0;
}

static int map_arch(const char *file, const char *name, lg_arch *out)
{
    static const struct {
        const char *name;
        lg_arch arch;
    } archs[] = {{"standard", LG_ARCH_RELU},   {"relu", LG_ARCH_RELU},           {"topk", LG_ARCH_TOPK},
                 {"jumprelu", LG_ARCH_JUMPRELU}, {"batchtopk", LG_ARCH_BATCHTOPK}, {"matryoshka_batchtopk", LG_ARCH_MATRYOSHKA}};
    size_t i;
    for (i = 0; i < sizeof(archs) / sizeof(archs[0]); i++)
        if (strcmp(name, archs[i].name) == 0) {
            *out = archs[i].arch;
            return 0;
        }
    return lg_error_set(LG_EINPUT,
                        "%s: architecture: \"%s\" is not supported (standard, topk, jumprelu, batchtopk, "
                        "matryoshka_batchtopk)",
                        file, name);
}

int lg_saelens_load(const char *dir, const lg_saelens_limits *lim, lg_saelens_sae *out)
{
    lg_saelens_limits dl;
    lg_buf cfg_path = LG_BUF_INIT, w_path = LG_BUF_INIT, text = LG_BUF_INIT;
    lg_st_file *f = NULL;
    lg_tensor_view v;
    const cJSON *a, *meta;
    long long d_in = 0, d_sae = 0, k = 0;
    int err;

    memset(out, 0, sizeof(*out));
    out->meta_seed = -1;
    out->apply_b_dec_to_input = 1;
    if (!lim) {
        lg_saelens_limits_init(&dl);
        lim = &dl;
    }
    if ((err = lg_path_join(&cfg_path, dir, LG_SAELENS_CFG)) < 0 || (err = lg_path_join(&w_path, dir, LG_SAELENS_WEIGHTS)) < 0)
        goto out;
    if (!lg_is_dir(dir)) {
        err = lg_error_set(LG_ENOTFOUND, "%s: not a folder", dir);
        goto out;
    }
    if (!lg_path_exists(cfg_path.ptr)) {
        err = lg_error_set(LG_EINPUT, "%s: missing (a SAELens SAE folder holds cfg.json and %s)", cfg_path.ptr,
                           LG_SAELENS_WEIGHTS);
        goto out;
    }
    if (!lg_path_exists(w_path.ptr)) {
        err = lg_error_set(LG_EINPUT, "%s: missing", w_path.ptr);
        goto out;
    }
    /* a FIFO (or any non-file) would block or mislead the readers below */
    if ((err = lg_path_check_regular(cfg_path.ptr)) < 0 || (err = lg_path_check_regular(w_path.ptr)) < 0) {
        err = err == LG_EIO ? err : LG_EINPUT;
        goto out;
    }
    if ((err = lg_file_read(cfg_path.ptr, LG_SAELENS_CFG_MAX, &text)) < 0) {
        lg_error_wrap("%s", cfg_path.ptr);
        err = err == LG_EIO ? err : LG_EINPUT;
        goto out;
    }
    if ((err = lg_json_parse(cfg_path.ptr, text.ptr, text.len, &out->cfg_json)) < 0) /* strict: artifacts/json.h */
        goto out;
    if (!cJSON_IsObject(out->cfg_json)) {
        err = lg_error_set(LG_EINPUT, "%s: not a JSON object", cfg_path.ptr);
        goto out;
    }
    a = cJSON_GetObjectItemCaseSensitive(out->cfg_json, "architecture");
    if (a && !cJSON_IsString(a)) {
        err = lg_error_set(LG_EINPUT, "%s: architecture: must be a string", cfg_path.ptr);
        goto out;
    }
    snprintf(out->architecture, sizeof out->architecture, "%s", a ? a->valuestring : "standard");
    if ((err = map_arch(cfg_path.ptr, out->architecture, &out->cfg.arch)) < 0 ||
        (err = cfg_int(cfg_path.ptr, out->cfg_json, "d_in", 1, 1, lim->max_dim, &d_in)) < 0 ||
        (err = cfg_int(cfg_path.ptr, out->cfg_json, "d_sae", 1, 1, lim->max_dim, &d_sae)) < 0)
        goto out;
    if ((uint64_t)d_in * (uint64_t)d_sae > lim->max_elements) {
        err = lg_error_set(LG_EINPUT, "%s: d_in x d_sae = %lld x %lld exceeds the limit of %llu elements", cfg_path.ptr,
                           d_in, d_sae, (unsigned long long)lim->max_elements);
        goto out;
    }
    if (out->cfg.arch == LG_ARCH_TOPK || out->cfg.arch == LG_ARCH_BATCHTOPK || out->cfg.arch == LG_ARCH_MATRYOSHKA) {
        if ((err = cfg_int(cfg_path.ptr, out->cfg_json, "k", out->cfg.arch == LG_ARCH_TOPK, 1, (double)d_sae, &k)) < 0)
            goto out;
        if (k == 0)
            k = 1; /* BatchTopK inference checkpoints may omit k; it does not change the dictionary */
    }
    out->cfg.d_in = (int)d_in;
    out->cfg.d_sae = (int)d_sae;
    out->cfg.k = (int)k;
    a = cJSON_GetObjectItemCaseSensitive(out->cfg_json, "apply_b_dec_to_input");
    if (a && !cJSON_IsBool(a)) {
        err = lg_error_set(LG_EINPUT, "%s: apply_b_dec_to_input: must be true or false", cfg_path.ptr);
        goto out;
    }
    if (a)
        out->apply_b_dec_to_input = cJSON_IsTrue(a);
    a = cJSON_GetObjectItemCaseSensitive(out->cfg_json, "dtype");
    if (a && !cJSON_IsString(a)) {
        err = lg_error_set(LG_EINPUT, "%s: dtype: must be a string", cfg_path.ptr);
        goto out;
    }
    meta = cJSON_GetObjectItemCaseSensitive(out->cfg_json, "metadata");
    if (meta && cJSON_IsObject(meta)) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(meta, "seed");
        long sv;
        if (s && cJSON_IsNumber(s) && s->valuedouble >= 0 && s->valuedouble < 9007199254740992.0 &&
            s->valuedouble == floor(s->valuedouble))
            out->meta_seed = (long long)s->valuedouble;
        else if (s && cJSON_IsString(s) && lg_parse_long(s->valuestring, &sv) == 0 && sv >= 0)
            out->meta_seed = sv;
    }

    lg_error_clear();
    if ((err = lg_st_open(w_path.ptr, &f)) < 0) {
        err = err == LG_EIO ? err : LG_EINPUT;
        goto out;
    }
    if ((err = tensor_f32(f, w_path.ptr, "W_enc", d_in, d_sae, NULL)) < 0 ||
        (err = tensor_f32(f, w_path.ptr, "b_enc", d_sae, -1, NULL)) < 0 ||
        (err = tensor_f32(f, w_path.ptr, "W_dec", d_sae, d_in, &out->W_dec)) < 0 ||
        (err = tensor_f32(f, w_path.ptr, "b_dec", d_in, -1, NULL)) < 0)
        goto out;
    out->has_threshold = lg_st_get(f, "threshold", &v) == 0;
    lg_error_clear();
    if (out->cfg.arch == LG_ARCH_JUMPRELU && !out->has_threshold) {
        err = lg_error_set(LG_EINPUT, "%s: tensor threshold is missing (architecture jumprelu)", w_path.ptr);
        goto out;
    }
    if (out->has_threshold && (err = tensor_f32(f, w_path.ptr, "threshold", d_sae, -1, NULL)) < 0)
        goto out;
out:
    lg_st_close(f);
    lg_buf_release(&cfg_path);
    lg_buf_release(&w_path);
    lg_buf_release(&text);
    if (err < 0)
        lg_saelens_sae_release(out);
    return err;
}

void lg_saelens_sae_release(lg_saelens_sae *s)
{
    if (!s)
        return;
    lg_free(s->W_dec);
    cJSON_Delete(s->cfg_json);
    s->W_dec = NULL;
    s->cfg_json = NULL;
}

int lg_saelens_read_decoder(const char *path, const char *label, int d_sae, int d_in, float **out)
{
    lg_st_file *f = NULL;
    int err;
    *out = NULL;
    lg_error_clear();
    if ((err = lg_path_check_regular(path)) < 0 || (err = lg_st_open(path, &f)) < 0) {
        lg_error_wrap("%s", label);
        return err == LG_EIO ? err : LG_EINPUT;
    }
    err = tensor_f32(f, label, "W_dec", d_sae, d_in, out);
    lg_st_close(f);
    return err;
}

int lg_saelens_pair_metrics(const float *W_dec_a, const float *W_dec_b, int d_sae, int d_in, double threshold,
                            int hungarian_max, cJSON *m, double *mmcs_out, double *mcc_out)
{
    lg_pair_metrics pm;
    int err;
    /* the same computation and keys as a run's pairs (engine/consistency.h) */
    if ((err = lg_pair_metrics_compute(W_dec_a, W_dec_b, d_sae, d_in, threshold, d_sae <= hungarian_max, &pm, NULL)) < 0 ||
        (err = lg_pair_metrics_to_json(&pm, m)) < 0)
        return err;
    if (mmcs_out)
        *mmcs_out = pm.abs.mmcs;
    if (mcc_out)
        *mcc_out = pm.abs.mcc_computed ? pm.abs.mcc : NAN;
    return 0;
}
