/*
 * saelens_transcoder.c - SAELens transcoder export (see saelens_transcoder.h).
 * The cfg starts as the SAE one (lg_saelens_cfg_new: dtype, device, hook and
 * model names, sae_lens_version) and is then changed where SAELens'
 * TranscoderConfig differs; the numbers are copied, never transformed.
 */
#include "ledger/saelens_transcoder.h"

#include <stdlib.h>
#include <string.h>

#include "artifacts/safetensors.h"
#include "base/base.h"
#include "ledger/saelens.h"

const char *lg_saelens_transcoder_arch(lg_arch arch)
{
    switch (arch) {
    case LG_ARCH_RELU:
        return "transcoder";
    case LG_ARCH_JUMPRELU:
    case LG_ARCH_BATCHTOPK:
    case LG_ARCH_MATRYOSHKA:
        return "jumprelu_transcoder";
    default:
        return NULL;
    }
}

int lg_saelens_transcoder_check(lg_arch arch, const char *label)
{
    if (lg_saelens_transcoder_arch(arch))
        return 0;
    return lg_error_set(LG_EINPUT, "%s: a %s transcoder has no SAELens layout (SAELens' \"transcoder\" applies ReLU "
                        "and \"jumprelu_transcoder\" a threshold, so the %s rule would be lost); not exported",
                        label, lg_arch_name(arch), lg_arch_name(arch));
}

static int set_item(cJSON *obj, const char *key, cJSON *v)
{
    if (!v)
        return 0;
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v) ? 1 : (cJSON_Delete(v), 0);
    return cJSON_AddItemToObject(obj, key, v) ? 1 : (cJSON_Delete(v), 0);
}

int lg_saelens_write_transcoder(const char *dir, const lg_sae_config *cfg, const lg_sae_weights *w,
                                const cJSON *metadata)
{
    const char *arch = lg_saelens_transcoder_arch(cfg->arch);
    const int has_thr = cfg->arch != LG_ARCH_RELU;
    lg_buf path = LG_BUF_INIT, body = LG_BUF_INIT;
    cJSON *c = NULL, *m, *hook_out;
    char *text = NULL;
    int err;
    lg_tensor_f32 t[5] = {
        {"W_enc", 2, {w->d_in, w->d_sae}, w->W_enc}, /* [d_in, d_sae] */
        {"b_enc", 1, {w->d_sae}, w->b_enc},          /* [d_sae] */
        {"W_dec", 2, {w->d_sae, w->d_in}, w->W_dec}, /* [d_sae, d_out], d_out = d_in */
        {"b_dec", 1, {w->d_in}, w->b_dec},           /* [d_out] */
        {"threshold", 1, {w->d_sae}, w->threshold},  /* [d_sae], jumprelu_transcoder only */
    };
    const char *meta[] = {"format", "pt"};

    if ((err = lg_saelens_transcoder_check(cfg->arch, dir)) < 0)
        return err;
    if (w->d_in != cfg->d_in || w->d_sae != cfg->d_sae)
        return lg_error_set(LG_EINTERNAL, "%s: weights [%d, %d] do not match the config [%d, %d]", dir, w->d_in,
                            w->d_sae, cfg->d_in, cfg->d_sae);
    if (!(c = lg_saelens_cfg_new(cfg, metadata)) || !(m = cJSON_GetObjectItemCaseSensitive(c, "metadata")) ||
        !set_item(c, "architecture", cJSON_CreateString(arch)) || !set_item(c, "d_out", cJSON_CreateNumber(cfg->d_in)) ||
        !set_item(c, "apply_b_dec_to_input", cJSON_CreateFalse()) || !set_item(m, "ledger_transcoder", cJSON_CreateTrue())) {
        err = lg_error_set(LG_ENOMEM, "out of memory building %s/%s", dir, LG_SAELENS_CFG);
        goto out;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(c, "k"); /* no top-k transcoder is exported */
    hook_out = cJSON_GetObjectItemCaseSensitive(m, "hook_name_out");
    if (cJSON_IsString(hook_out) && !set_item(c, "hook_name_out", cJSON_CreateString(hook_out->valuestring))) {
        err = lg_error_set(LG_ENOMEM, "out of memory building %s/%s", dir, LG_SAELENS_CFG);
        goto out;
    }
    if (!(text = cJSON_Print(c))) {
        err = lg_error_set(LG_ENOMEM, "out of memory building %s/%s", dir, LG_SAELENS_CFG);
        goto out;
    }
    if ((err = lg_path_join(&path, dir, LG_SAELENS_WEIGHTS)) < 0 ||
        (err = lg_st_write(path.ptr, t, has_thr ? 5 : 4, meta, 1)) < 0)
        goto out;
    if ((err = lg_path_join(&path, dir, LG_SAELENS_CFG)) < 0 || (err = lg_buf_puts(&body, text)) < 0 ||
        (err = lg_buf_puts(&body, "\n")) < 0)
        goto out;
    err = lg_file_write_atomic(path.ptr, body.ptr, body.len);
out:
    free(text);
    cJSON_Delete(c);
    lg_buf_release(&path);
    lg_buf_release(&body);
    return err;
}
