/*
 * cmd_query.c - 'ledger query SQL': read-only SQL over the index. The index
 * is opened with SQLITE_OPEN_READONLY and PRAGMA query_only, and statements
 * that are not read-only are refused before they run.
 */
#include <stdio.h>

#include "ledger/cli.h"
#include "ledger/index.h"
#include "ledger/ledger.h"
#include "ledger/recover.h"

int cmd_query(int argc, char **argv)
{
    int json = 0;
    const lg_opt opts[] = {{"json", 0, LG_OPT_FLAG, &json, NULL, "rows as a JSON array of objects"},
                           LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"query", "ledger query [--json] SQL",
                              "Run one read-only SQL statement on the index (.ledger/index.sqlite; tables runs, "
                              "conditions, params, cells, samples, artifacts, meta) and print the rows "
                              "tab-separated with a header line.",
                              opts, 1, 1};
    lg_ledger *lg = NULL;
    sqlite3 *db = NULL;
    lg_buf out = LG_BUF_INIT;
    char **args;
    int nargs, rc, err;

    if ((rc = lg_opts_parse(&spec, argc, argv, &nargs, &args)) != 0)
        return rc == 1 ? 0 : rc;
    if ((err = lg_ledger_open(".", &lg)) < 0)
        goto out;
    if (!lg_path_exists(lg_ledger_index_path(lg))) {
        err = lg_error_set(LG_EINPUT, "%s: the index is missing; run 'ledger reindex'", lg_ledger_index_path(lg));
        goto out;
    }
    /* catch up an index left behind by an interrupted record (recover.h) */
    if ((err = lg_ledger_index_catch_up(lg, NULL)) < 0 || (err = lg_index_open(lg_ledger_index_path(lg), 1, &db)) < 0 ||
        (err = lg_index_query(db, args[0], json, &out)) < 0)
        goto out;
    if (out.len)
        fwrite(out.ptr, 1, out.len, stdout);
out:
    sqlite3_close(db);
    lg_buf_release(&out);
    lg_ledger_free(lg);
    return err < 0 ? cli_fail("query", err) : 0;
}
