/*
 * cmd_reindex.c - 'ledger reindex': rebuild .ledger/index.sqlite from the
 * ledger branch alone (into a temp file, then rename).
 */
#include <stdio.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/recover.h"

int cmd_reindex(lg_cli *cli, int argc, char **argv)
{
    int json = 0, accept = 0;
    lg_index_state ist;
    const lg_opt opts[] = {
        {"accept-rewrite", 0, LG_OPT_FLAG, &accept, NULL,
         "rebuild even though the index was built from a commit that is no longer on the branch (the branch was "
         "rewritten): accept the new history"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print {runs, index, accepted_rewrite} as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"reindex", "ledger reindex [options]",
                              "Rebuild the SQLite index from the git ledger alone. The index is derived data, but "
                              "also the local record of the history seen so far: when its tip is no longer on the "
                              "branch (a rewrite), reindex names the rewritten runs and exits 1 unless "
                              "--accept-rewrite is given.",
                              opts, 0, 0, 0};
    lg_ledger *lg = NULL;
    lg_run_info *runs = NULL;
    size_t n = 0;
    char **args;
    int nargs, rc, err;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    memset(&ist, 0, sizeof ist);
    if ((err = lg_ledger_lock(lg)) < 0)
        goto out;
    if (lg_ledger_index_state(lg, &ist) < 0) { /* unreadable or doctored: its tip cannot be believed either */
        fprintf(stderr, "ledger reindex: rebuilding an index that could not be read: %s\n", lg_error_msg());
        lg_error_clear();
        ist.state = LG_INDEX_MISSING;
    } else if (ist.state == LG_INDEX_REWRITTEN) {
        if (!accept)
            err = lg_index_state_error(lg, &ist);
        else
            fprintf(stderr, "ledger reindex: accepting a rewritten branch: the index was built from %.12s; runs no "
                            "longer in the ledger: %s\n",
                    ist.tip, ist.n_rewritten ? ist.rewritten.ptr : "none (commits rewritten)");
    }
    accept = accept && err >= 0 && ist.state == LG_INDEX_REWRITTEN;
    lg_index_state_release(&ist);
    if (err >= 0)
        err = lg_ledger_reindex(lg);
    lg_ledger_unlock(lg);
    if (err < 0 || (err = lg_ledger_runs(lg, &runs, &n)) < 0)
        goto out;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        char *text = NULL;
        if (!o || !cJSON_AddNumberToObject(o, "runs", (double)n) ||
            !cJSON_AddStringToObject(o, "index", lg_ledger_index_path(lg)) ||
            !cJSON_AddBoolToObject(o, "accepted_rewrite", accept) || !(text = cJSON_PrintUnformatted(o))) {
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
    return err < 0 ? cli_fail("reindex", err) : 0;
}
