/*
 * cmd_show.c - 'ledger show RUN': a human summary of one run (identity,
 * environment, outputs, per-condition metric summaries: n, mean, min, max
 * over the cells, pairs and seeds of each condition) or, with --json, the
 * manifest exactly as stored (its canonical bytes).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"

static const char *or_dash(const char *s) { return s ? s : "-"; }

/* Prints n/mean/min/max of every metric found in arr[*].metrics. */
static void summarise(const cJSON *arr, const char *unit)
{
    const cJSON *first, *u, *m;
    int count = cJSON_GetArraySize(arr);
    if (!count)
        return;
    printf("    %s (%d):\n", unit, count);
    /* metric names: union in order of first appearance, scanning all units */
    cJSON_ArrayForEach(first, arr) {
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(first, "metrics")) {
            const cJSON *earlier;
            int seen = 0, n = 0;
            double sum = 0, lo = INFINITY, hi = -INFINITY;
            cJSON_ArrayForEach(earlier, arr) {
                if (earlier == first)
                    break;
                if (cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(earlier, "metrics"), m->string))
                    seen = 1;
            }
            if (seen)
                continue;
            cJSON_ArrayForEach(u, arr) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(u, "metrics"), m->string);
                if (cJSON_IsNumber(v)) {
                    n++;
                    sum += v->valuedouble;
                    lo = fmin(lo, v->valuedouble);
                    hi = fmax(hi, v->valuedouble);
                }
            }
            if (n)
                printf("      %-20s n=%-4d mean=%-12.6g min=%-12.6g max=%.6g\n", m->string, n, sum / n, lo, hi);
            else
                printf("      %-20s n=0\n", m->string);
        }
    }
}

int cmd_show(lg_cli *cli, int argc, char **argv)
{
    int json = 0;
    const lg_opt opts[] = {{"json", 0, LG_OPT_FLAG, &json, NULL, "print the manifest (canonical JSON)"},
                           LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"show", "ledger show [--json] RUN",
                              "Show one run, named by its id, a unique prefix (at least 4 hex digits) or its sequence\n"
                              "number as @N (or N, below 1000) as listed by ledger log.",
                              opts, 1, 1, 0};
    lg_ledger *lg = NULL;
    lg_run_info info;
    lg_chain_link link;
    lg_buf raw = LG_BUF_INIT;
    cJSON *m = NULL;
    const cJSON *o, *c;
    char **args;
    int nargs, rc, err;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if ((err = cli_ledger(cli, &lg)) < 0 || (err = lg_ledger_load_manifest(lg, args[0], &m, &info, &raw)) < 0)
        goto out;
    if (json) {
        fwrite(raw.ptr, 1, raw.len, stdout);
        putchar('\n');
        goto out;
    }
    printf("run      %s\n", info.run_id);
    printf("seq      %ld (%s)\n", info.seq, info.dir);
    printf("kind     %s\nstudy    %s\nstatus   %s\ncreated  %s\n", lg_json_str(m, "kind"), lg_json_str(m, "study"),
           lg_json_str(m, "status"), lg_json_str(m, "created"));
    if ((err = lg_ledger_chain_link(lg, &info, &link)) < 0)
        goto out;
    printf("prev     %s\nentry    %s\n", link.prev[0] ? link.prev : "-", link.digest);
    printf("spec     %s %s\n", or_dash(lg_json_str(m, "spec_digest")), lg_json_str(m, "study_path") ? lg_json_str(m, "study_path") : "");
    printf("data     %s\n", or_dash(lg_json_str(m, "data_digest")));
    printf("code     %s\n", or_dash(lg_json_str(m, "code_commit")));
    printf("engine   %s, ledger %s\n", lg_json_str(m, "engine_version"), lg_json_str(m, "ledger_version"));
    printf("backend  %s (%s) on %s\n", or_dash(lg_json_str(m, "backend")), or_dash(lg_json_str(m, "device")),
           or_dash(lg_json_str(m, "host")));
    printf("outputs  %d\n", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "outputs")));
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
        printf("  %-40s %12.0f  %.12s  %s\n", lg_json_str(o, "name"),
               cJSON_GetObjectItemCaseSensitive(o, "size")->valuedouble, lg_json_str(o, "sha256"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "in_tree")) ? "tree+store" : "store");
    }
    c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "results"), "conditions");
    if (c) {
        const cJSON *cond;
        printf("conditions %d\n", cJSON_GetArraySize(c));
        cJSON_ArrayForEach(cond, c) {
            printf("  %s\n", lg_json_str(cond, "id"));
            summarise(cJSON_GetObjectItemCaseSensitive(cond, "cells"), "cells");
            summarise(cJSON_GetObjectItemCaseSensitive(cond, "pairs"), "pairs");
            summarise(cJSON_GetObjectItemCaseSensitive(cond, "seeds"), "seeds");
        }
    }
out:
    cJSON_Delete(m);
    lg_buf_release(&raw);
    return err < 0 ? cli_fail("show", err) : 0;
}
