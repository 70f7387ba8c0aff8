/*
 * fuzz_spec.c - libFuzzer target for the study spec parser (engine/study.c
 * lg_study_parse) and the plan renderers.
 *
 * fuzz-sources: base/base.c artifacts/json.c engine/study.c engine/study_params.c engine/sae.c base/rng.c engine/arch_hier_cfg.c
 *
 * Invariants: the parser fails only with LG_EINPUT (or LG_ENOMEM) and a
 * message naming the file, or returns a study within the documented limits
 * (1..LG_MAX_SEEDS distinct seeds, 1..LG_MAX_CONDITIONS conditions), whose
 * plan renders as text and as JSON that cJSON prints.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/base.h"
#include "engine/study.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lg_study *s = NULL;
    lg_buf text = LG_BUF_INIT;
    cJSON *plan;
    char *printed;
    int i, j, rc = lg_study_parse("fuzz/study.json", (const char *)data, size, &s);
    if (rc < 0) {
        if ((rc != LG_EINPUT && rc != LG_ENOMEM) || (rc == LG_EINPUT && strncmp(lg_error_msg(), "fuzz/study.json", 15) != 0))
            abort();
        return 0;
    }
    if (s->n_seeds < 1 || s->n_seeds > LG_MAX_SEEDS || s->n_conds < 1 || s->n_conds > 2 * LG_MAX_CONDITIONS)
        abort();
    for (i = 0; i < s->n_seeds; i++)
        for (j = 0; j < i; j++)
            if (s->seeds[i] == s->seeds[j])
                abort();
    if (lg_study_plan_text(s, &text) < 0)
        abort();
    plan = lg_study_plan_json(s);
    if (!plan || !(printed = cJSON_PrintUnformatted(plan)))
        abort();
    cJSON_free(printed);
    cJSON_Delete(plan);
    lg_buf_release(&text);
    lg_study_free(s);
    return 0;
}
