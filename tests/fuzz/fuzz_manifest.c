/*
 * fuzz_manifest.c - libFuzzer target for the manifest reader: cJSON parse,
 * lg_manifest_check, lg_results_check and the canonical form
 * (ledger/manifest.c), i.e. what verify and reindex run on manifest.json
 * bytes taken from a ledger branch someone else may have written.
 *
 * fuzz-sources: base/base.c base/sha256.c ledger/manifest.c
 *
 * Invariants: the checks fail only with LG_EINPUT; a manifest that passes has
 * output names that lg_manifest_check_name accepts (relative, no "..": what
 * keeps tree and export paths inside their folders); when the canonical form
 * exists, parsing it and canonicalising again gives the same bytes (the run
 * id is well defined).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/base.h"
#include "ledger/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *m = cJSON_ParseWithLength((const char *)data, size), *again = NULL;
    lg_buf c1 = LG_BUF_INIT, c2 = LG_BUF_INIT;
    int rc;
    if (!m)
        return 0;
    rc = lg_manifest_check(m, "fuzz");
    if (rc < 0 && rc != LG_EINPUT)
        abort();
    if (rc == 0) {
        const cJSON *o;
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
            const char *name = lg_json_str(o, "name");
            if (!name || lg_manifest_check_name(name) < 0 || name[0] == '/' || strstr(name, "/../") ||
                strncmp(name, "../", 3) == 0)
                abort();
        }
    }
    rc = lg_results_check(cJSON_GetObjectItemCaseSensitive(m, "results"), "fuzz");
    if (rc < 0 && rc != LG_EINPUT)
        abort();
    rc = lg_json_canonical(m, &c1);
    if (rc < 0 && rc != LG_EINPUT)
        abort();
    if (rc == 0) {
        if (!(again = cJSON_ParseWithLength(c1.ptr, c1.len)))
            abort();
        if (lg_json_canonical(again, &c2) < 0 || c1.len != c2.len || memcmp(c1.ptr, c2.ptr, c1.len) != 0)
            abort();
    }
    cJSON_Delete(again);
    cJSON_Delete(m);
    lg_buf_release(&c1);
    lg_buf_release(&c2);
    return 0;
}
