/* test_run_cells.c - the cell filter of lg_study_execute (engine/run.h,
 * lg_run_options.cells): a selected cell gives the same weights file and
 * metrics as in the full run (its seed trained alone, the full run trains
 * the seeds of a condition together); a condition with some seeds selected
 * lists only those cells, without pairs or condition files; one with every
 * seed selected gets its pairs and files, byte-identical; one with none is
 * left out. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "base/sha256.h"
#include "engine/run.h"
#include "engine/study.h"
#include "tests/unit/check.h"

static const char *SPEC =
    "{\"format\": 1, \"name\": \"cells\","
    " \"data\": {\"source\": \"synthetic\", \"synthetic\": {\"d\": 8, \"n_features\": 16, \"n_samples\": 1500,"
    " \"active_mean\": 2, \"seed\": 4}},"
    " \"sae\": {\"arch\": \"batchtopk\", \"d_sae\": 16, \"k\": 2}, \"train\": {\"steps\": 40, \"batch\": 32},"
    " \"grid\": {\"k\": [2, 3]}, \"seeds\": [5, 6, 7]}";

static int progress_total;

static void on_progress(void *ctx, const lg_run_progress *p)
{
    (void)ctx;
    progress_total = p->cells_total;
}

/* Digest of the output `name` of r, or "" when absent. */
static void digest_of(const lg_run_result *r, const char *name, char hex[65])
{
    size_t i;
    hex[0] = '\0';
    for (i = 0; i < r->nfiles; i++)
        if (strcmp(r->files[i].name, name) == 0)
            CHECK_OK(lg_sha256_file(r->files[i].path, hex, NULL));
}

static const cJSON *cond(const lg_run_result *r, const char *id)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(r->results, "conditions")) {
        if (strcmp(cJSON_GetObjectItem(c, "id")->valuestring, id) == 0)
            return c;
    }
    return NULL;
}

static void test_filter(void)
{
    char d1[] = "/tmp/lgcellsAXXXXXX", d2[] = "/tmp/lgcellsBXXXXXX", a[65], b[65];
    lg_study *s = NULL;
    lg_run_result full, part;
    unsigned char mask[4 * 3];
    const cJSON *ca, *cb, *cells;
    char cmd[128];

    memset(&full, 0, sizeof full);
    memset(&part, 0, sizeof part);
    CHECK(mkdtemp(d1) && mkdtemp(d2));
    CHECK_OK(lg_study_parse("cells.json", SPEC, strlen(SPEC), &s));
    if (!s)
        return;
    CHECK(s->n_conds == 4 && s->n_seeds == 3); /* k=2, k=3 and their random twins */
    {
        lg_run_options o = {.be = lg_backend_cpu(), .outdir = d1};
        CHECK_OK(lg_study_execute(s, &o, &full));
    }
    /* k=2: seed 6 only; k=3: every seed; k=2 random: seed 7; k=3 random: none */
    memset(mask, 0, sizeof mask);
    mask[0 * 3 + 1] = 1;
    mask[1 * 3 + 0] = mask[1 * 3 + 1] = mask[1 * 3 + 2] = 1;
    mask[2 * 3 + 2] = 1;
    {
        lg_run_options o = {.be = lg_backend_cpu(), .outdir = d2, .progress = on_progress, .cells = mask};
        CHECK_OK(lg_study_execute(s, &o, &part));
    }
    CHECK(progress_total == 5);
    digest_of(&full, "cells/k-2/seed-6.safetensors", a);
    digest_of(&part, "cells/k-2/seed-6.safetensors", b);
    CHECK(a[0] && strcmp(a, b) == 0);
    digest_of(&part, "cells/k-2/seed-5.safetensors", b);
    CHECK(b[0] == '\0');
    digest_of(&part, "conditions/k-2/maxcos.npy", b);
    CHECK(b[0] == '\0');
    digest_of(&full, "conditions/k-3/maxcos.npy", a);
    digest_of(&part, "conditions/k-3/maxcos.npy", b);
    CHECK(a[0] && strcmp(a, b) == 0);
    digest_of(&full, "conditions/k-3/truth_maxcos.npy", a);
    digest_of(&part, "conditions/k-3/truth_maxcos.npy", b);
    CHECK(a[0] && strcmp(a, b) == 0);

    cb = cond(&part, "k=2");
    cells = cb ? cJSON_GetObjectItem(cb, "cells") : NULL;
    CHECK(cells && cJSON_GetArraySize(cells) == 1 && cJSON_GetArrayItem(cells, 0) &&
          cJSON_GetObjectItem(cJSON_GetArrayItem(cells, 0), "seed")->valuedouble == 6);
    CHECK(cb && cJSON_GetArraySize(cJSON_GetObjectItem(cb, "pairs")) == 0 &&
          cJSON_GetArraySize(cJSON_GetObjectItem(cb, "seeds")) == 0);
    ca = cond(&full, "k=2");
    CHECK(ca && cb && cJSON_Compare(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ca, "cells"), 1), "metrics"),
                                    cJSON_GetObjectItem(cJSON_GetArrayItem(cells, 0), "metrics"), 1));
    ca = cond(&full, "k=3");
    cb = cond(&part, "k=3");
    CHECK(ca && cb && cJSON_Compare(ca, cb, 1)); /* a fully selected condition: identical results */
    cb = cond(&part, "k=2,control=random");
    CHECK(cb && cJSON_GetArraySize(cJSON_GetObjectItem(cb, "cells")) == 1);
    CHECK(cond(&part, "k=3,control=random") == NULL);
    CHECK(strcmp(full.data_digest, part.data_digest) == 0);

    lg_run_result_release(&full);
    lg_run_result_release(&part);
    lg_study_free(s);
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", d1, d2);
    CHECK(system(cmd) == 0);
}

CHECK_MAIN(T(test_filter))
