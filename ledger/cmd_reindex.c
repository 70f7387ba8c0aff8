/*
 * cmd_reindex.c - 'ledger reindex': rebuild .ledger/index.sqlite from the
 * ledger branch alone (into a temp file, then rename).
 */
#include <stdio.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"

static void notify(void *ctx, const char *msg) { fprintf(stderr, "ledger reindex: %s\n", msg); }

int cmd_reindex(int argc, char **argv)
{
    int lock_timeout = 30, json = 0;
    const lg_opt opts[] = {
        {"lock-timeout", 0, LG_OPT_INT, &lock_timeout, "SECONDS", "wait this long for the ledger lock (default 30)"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print {runs, index} as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"reindex", "ledger reindex [options]",
                              "Rebuild the SQLite index from the git ledger alone. The index is derived data; "
                              "this is safe at any time.",
                              opts, 0, 0};
    lg_ledger *lg = NULL;
    lg_run_info *runs = NULL;
    size_t n = 0;
    char **args;
    int nargs, rc, err;

    if ((rc = lg_opts_parse(&spec, argc, argv, &nargs, &args)) != 0)
        return rc == 1 ? 0 : rc;
    if ((err = lg_ledger_open(".", &lg)) < 0)
        goto out;
    lg_ledger_set_lock_wait(lg, lock_timeout, notify, NULL);
    if ((err = lg_ledger_reindex(lg)) < 0 || (err = lg_ledger_runs(lg, &runs, &n)) < 0)
        goto out;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        char *text = NULL;
        if (!o || !cJSON_AddNumberToObject(o, "runs", (double)n) ||
            !cJSON_AddStringToObject(o, "index", lg_ledger_index_path(lg)) || !(text = cJSON_PrintUnformatted(o))) {
            cJSON_Delete(o);
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        printf("%s\n", text);
        cJSON_free(text);
        cJSON_Delete(o);
    } else
        printf("reindexed %zu run%s into %s\n", n, n == 1 ? "" : "s", lg_ledger_index_path(lg));
out:
    lg_free(runs);
    lg_ledger_free(lg);
    return err < 0 ? cli_fail("reindex", err) : 0;
}
