/*
 * cmd_log.c - 'ledger log': one line per run, oldest first: seq, id12, kind,
 * study, status, created.
 *
 * Where the rows come from: when the index is provably current (its tip is
 * the branch tip, ledger/index_current.h), from its runs table, without
 * initialising libgit2: the same rows the branch holds at that tip (the index
 * is built from it; a local edit of index rows is what `ledger verify`
 * names). In every other state (no index, an index behind or off the branch,
 * any unusual repository layout) from the ledger branch itself, as before.
 * Both go through print_run, so the output is the same byte for byte.
 */
#include <stdio.h>
#include <string.h>

#include "base/sha256.h"
#include "ledger/cli.h"
#include "ledger/index_current.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"

typedef struct {
    int json, n;
    const char *study, *kind;
} log_ctx;

static const char *or_dash(const char *s) { return s ? s : "-"; }

static int print_run(void *vctx, const lg_run_info *ri, const cJSON *m)
{
    log_ctx *c = vctx;
    if (c->study && strcmp(c->study, lg_json_str(m, "study") ? lg_json_str(m, "study") : "") != 0)
        return 0;
    if (c->kind && strcmp(c->kind, lg_json_str(m, "kind") ? lg_json_str(m, "kind") : "") != 0)
        return 0;
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        char *s;
        if (!o || !cJSON_AddNumberToObject(o, "seq", (double)ri->seq) || !cJSON_AddStringToObject(o, "run_id", ri->run_id) ||
            !cJSON_AddStringToObject(o, "kind", lg_json_str(m, "kind")) ||
            !cJSON_AddStringToObject(o, "study", lg_json_str(m, "study")) ||
            !cJSON_AddStringToObject(o, "status", lg_json_str(m, "status")) ||
            !cJSON_AddStringToObject(o, "created", lg_json_str(m, "created")) || !(s = cJSON_PrintUnformatted(o))) {
            cJSON_Delete(o);
            return lg_error_set(LG_ENOMEM, "out of memory");
        }
        printf("%s%s", c->n ? ",\n" : "\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        printf("%ld\t%.12s\t%s\t%s\t%s\t%s\n", ri->seq, ri->run_id, or_dash(lg_json_str(m, "kind")),
               or_dash(lg_json_str(m, "study")), or_dash(lg_json_str(m, "status")), or_dash(lg_json_str(m, "created")));
    }
    c->n++;
    return 0;
}

/* The rows of the current index's runs table, in seq order, as (run info,
 * manifest fields) pairs for print_run, all read before anything is
 * printed. Returns 1 when printed, 0 when a row is not what ledger writes
 * (nothing printed: the caller reads the branch instead), < 0 on error. */
static int log_from_index(sqlite3 *db, log_ctx *c)
{
    sqlite3_stmt *st = NULL;
    cJSON *rows = NULL, *r;
    lg_run_info ri;
    int rc, err = 1;

    if (sqlite3_prepare_v2(db, "SELECT seq, manifest_sha256, kind, study, status, created FROM runs ORDER BY seq", -1,
                           &st, NULL) != SQLITE_OK)
        return 0;
    if (!(rows = cJSON_CreateArray())) {
        err = lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sha = (const char *)sqlite3_column_text(st, 1);
        static const char *const keys[] = {"kind", "study", "status", "created"};
        cJSON *o;
        size_t k;
        if (sqlite3_column_type(st, 0) != SQLITE_INTEGER || !sha || !lg_sha256_hex_valid(sha)) {
            err = 0;
            goto out;
        }
        if (!(o = cJSON_CreateObject()) || (cJSON_AddItemToArray(rows, o), 0) ||
            !cJSON_AddNumberToObject(o, "seq", (double)sqlite3_column_int64(st, 0)) ||
            !cJSON_AddStringToObject(o, "id", sha)) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        for (k = 0; k < 4; k++) {
            const char *v = (const char *)sqlite3_column_text(st, (int)k + 2);
            if (v && !cJSON_AddStringToObject(o, keys[k], v)) {
                err = lg_error_set(LG_ENOMEM, "out of memory");
                goto out;
            }
        }
    }
    if (rc != SQLITE_DONE) {
        err = 0;
        goto out;
    }
    if (c->json)
        printf("[");
    cJSON_ArrayForEach(r, rows) {
        memset(&ri, 0, sizeof ri);
        ri.seq = (long)cJSON_GetObjectItemCaseSensitive(r, "seq")->valuedouble;
        snprintf(ri.run_id, sizeof ri.run_id, "%s", lg_json_str(r, "id"));
        if ((err = print_run(c, &ri, r)) < 0)
            goto out;
        err = 1;
    }
    if (c->json)
        printf(c->n ? "\n]\n" : "]\n");
out:
    sqlite3_finalize(st);
    cJSON_Delete(rows);
    return err;
}

int cmd_log(lg_cli *cli, int argc, char **argv)
{
    log_ctx c = {0, 0, NULL, NULL};
    const lg_opt opts[] = {
        {"study", 's', LG_OPT_STRING, &c.study, "NAME", "only runs of this study"},
        {"kind", 'k', LG_OPT_STRING, &c.kind, "KIND", "only runs of this kind (run, record, report, import, ...)"},
        {"json", 0, LG_OPT_FLAG, &c.json, NULL, "a JSON array of {seq, run_id, kind, study, status, created}"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"log", "ledger log [--study NAME] [--kind KIND] [--json]",
                              "List the runs of the ledger, oldest first: seq, id (12 digits), kind, study, status, "
                              "created (UTC), tab-separated.",
                              opts, 0, 0, 0};
    lg_ledger *lg = NULL;
    sqlite3 *db = NULL;
    const char *why = NULL;
    char **args;
    int nargs, rc, err, fast;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if ((fast = lg_index_open_current(".", &db, &why)) != 0) {
        err = log_from_index(db, &c);
        sqlite3_close(db);
        if (err != 0) { /* printed (1), or failed (< 0) */
            cli_trace_read_path("log", 1, NULL);
            return err < 0 ? cli_fail("log", err) : 0;
        }
        fast = 0; /* nothing printed: read the branch */
        why = "a runs row ledger does not write";
    }
    cli_trace_read_path("log", fast, why);
    if ((err = cli_ledger(cli, &lg)) < 0)
        return cli_fail("log", err);
    if (c.json)
        printf("[");
    err = lg_ledger_foreach_run(lg, print_run, &c);
    if (c.json)
        printf(c.n ? "\n]\n" : "]\n");
    return err < 0 ? cli_fail("log", err) : 0;
}
