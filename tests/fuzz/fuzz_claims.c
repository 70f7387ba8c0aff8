/*
 * fuzz_claims.c - libFuzzer target for the claim language (gates/claims.c) and,
 * on inputs that parse, the evaluator and renderers (gates/eval.c).
 *
 * Lives outside gates/ on purpose: gates/ *.c is globbed into the library and
 * LLVMFuzzerTestOneInput must not be. Built and run by tests/fuzz/run-fuzz.sh.
 * Invariants checked: parse either succeeds or fails with LG_EINPUT /
 * LG_ENOMEM and a "FILE:LINE:COL: " message; no crash, leak or UB anywhere.
 * Resample counts are clamped before evaluation so that one input stays fast.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/base.h"
#include "gates/claims.h"
#include "gates/eval.h"

/* Deterministic fake evidence: values and status derived from the query. */
static int fuzz_provide(void *ctx, const lg_sample_query *q, lg_samples *out)
{
    static double vals[16];
    static const char *labels[16] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7",
                                     "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15"};
    uint32_t h = 2166136261u;
    size_t i;
    (void)ctx;
    for (i = 0; q->metric[i]; i++)
        h = (h ^ (unsigned char)q->metric[i]) * 16777619u;
    h ^= (uint32_t)q->nfilters * 2654435761u ^ (uint32_t)q->unit;
    if (!strcmp(q->metric, "err"))
        return lg_error_set(LG_EINPUT, "unknown metric 'err'");
    out->n = h % 13;
    for (i = 0; i < out->n; i++)
        vals[i] = (double)((h >> (i % 24)) % 97) / 97.0 + (h % 3 == 0 ? 0.0 : (double)i * 0.01);
    out->values = vals;
    out->labels = (h & 64) ? labels : NULL;
    out->run_id = "feedbeef";
    out->engine_version = (h & 128) ? "0.0.1" : "0.2.0";
    out->status = (h & 0x300) == 0x300 ? LG_EVIDENCE_STALE : (h & 0xc00) == 0xc00 ? LG_EVIDENCE_MISSING : LG_EVIDENCE_FRESH;
    out->reason = "fuzz";
    return 0;
}

/* Deterministic fake grid for `by KEY`: 0..4 values, a status from the key. */
static int fuzz_grid(void *ctx, const lg_grid_query *q, lg_grid_answer *out)
{
    static const char *vals[4] = {"4", "8", "topk", "1e3"};
    uint32_t h = 2166136261u;
    size_t i;
    (void)ctx;
    for (i = 0; q->key[i]; i++)
        h = (h ^ (unsigned char)q->key[i]) * 16777619u;
    if (!strcmp(q->key, "err"))
        return lg_error_set(LG_EINPUT, "unknown grid key 'err'");
    out->n = h % 5;
    out->values = vals;
    out->run_id = "feedbeef";
    out->status = (h & 0x30) == 0x30 ? LG_EVIDENCE_STALE : LG_EVIDENCE_FRESH;
    out->reason = "fuzz";
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lg_claim_file *f = NULL;
    lg_eval_result *r = NULL;
    int rc = lg_claims_parse("fuzz.claims", (const char *)data, size, &f);
    if (rc < 0) {
        if (rc != LG_EINPUT && rc != LG_ENOMEM)
            abort();
        if (rc == LG_EINPUT && strncmp(lg_error_msg(), "fuzz.claims:", 12) != 0)
            abort();
        return 0;
    }
    for (size_t i = 0; i < f->nclaims; i++)
        for (size_t j = 0; j < f->claims[i].nrequires; j++)
            for (size_t k = 0; k < f->claims[i].requires[j].nterms; k++)
                if (f->claims[i].requires[j].terms[k].resamples > 200)
                    f->claims[i].requires[j].terms[k].resamples = 200;
    if (lg_eval_file_grid(f, fuzz_provide, fuzz_grid, NULL, &r) == 0) {
        lg_buf b = LG_BUF_INIT;
        char *s = NULL;
        const lg_eval_result *one[1] = {r};
        lg_eval_render_text(r, &b);
        lg_buf_release(&b);
        if (lg_eval_render_json(one, 1, &s) == 0) {
            cJSON *o = cJSON_Parse(s);
            if (!o)
                abort(); /* our JSON must parse */
            cJSON_Delete(o);
        }
        lg_free(s);
        s = NULL;
        lg_eval_render_junit(one, 1, &s);
        lg_free(s);
        lg_eval_result_free(r);
    }
    lg_claims_free(f);
    return 0;
}
