/*
 * arch_hier_cfg.c - HierarchicalTopK's configuration rule and the text form
 * of its budgets (arch_hier.h). Apart from arch_hier.c because sae.c's
 * config check calls it and the spec fuzzer (tests/fuzz/fuzz_spec.c) links
 * sae.c without the backend: this file depends on base/ only.
 */
#include "engine/arch_hier.h"

#include <stdio.h>

#include "base/base.h"

int lg_hier_config_check(const lg_sae_config *cfg)
{
    int j;
    if (cfg->n_ks < 1 || cfg->n_ks > LG_SAE_MAX_KS)
        return lg_error_set(LG_EINPUT, "sae config: ks: hierarchical_topk needs 1 to %d budgets (got %d)",
                            LG_SAE_MAX_KS, cfg->n_ks);
    for (j = 0; j < cfg->n_ks; j++)
        if (cfg->ks[j] < 1 || (j > 0 && cfg->ks[j] <= cfg->ks[j - 1]))
            return lg_error_set(LG_EINPUT, "sae config: ks[%d] = %d: budgets must increase strictly from 1", j,
                                cfg->ks[j]);
    if (cfg->ks[cfg->n_ks - 1] != cfg->k)
        return lg_error_set(LG_EINPUT, "sae config: ks: the largest budget (%d) must equal k (%d)",
                            cfg->ks[cfg->n_ks - 1], cfg->k);
    return 0;
}

void lg_hier_ks_format(const int *ks, int n, char *buf, size_t len)
{
    size_t at = 0;
    int j;
    if (len)
        buf[0] = '\0';
    for (j = 0; j < n && at < len; j++) {
        int w = snprintf(buf + at, len - at, "%s%d", j ? "," : "", ks[j]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
}

int lg_hier_ks_parse(const char *text, const char *label, lg_sae_config *cfg)
{
    const char *p = text;
    int n = 0;
    if (!text || !*text)
        return lg_error_set(LG_EINPUT, "%s: metadata ks: missing (hierarchical_topk needs its budgets)", label);
    while (*p) {
        long v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && v <= (1L << 24)) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }
        if (!digits || v < 1 || v > (1L << 24) || n == LG_SAE_MAX_KS || (*p && *p != ',') || (*p == ',' && !p[1]))
            return lg_error_set(LG_EINPUT, "%s: metadata ks: '%.60s' is not 1 to %d comma-separated positive integers",
                                label, text, LG_SAE_MAX_KS);
        cfg->ks[n++] = (int)v;
        if (*p == ',')
            p++;
    }
    cfg->n_ks = n;
    return 0;
}
