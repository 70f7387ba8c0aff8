/*
 * cmd_query.c - 'ledger query SQL': read-only SQL over the index. The index
 * is opened with SQLITE_OPEN_READONLY and PRAGMA query_only, and statements
 * that are not read-only are refused before they run.
 *
 * Every query runs under a time limit (--timeout, default 30 s): a SQLite
 * progress handler, called every few thousand virtual-machine steps, stops
 * the statement once the limit has passed, so a runaway recursive CTE ends
 * with exit 2 instead of spinning (and growing memory) for ever. The
 * tab-separated and JSON outputs are built in memory by lg_index_query (the
 * handler also stops them past LG_QUERY_MAX_OUTPUT bytes); --csv and --jsonl
 * stream row by row to stdout.
 *
 * The index is read without opening the repository through libgit2 when it
 * is provably current (ledger/index_current.h: its tip equals the branch
 * tip); in every other state the full path runs as before.
 */
#include <stdio.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/index.h"
#include "ledger/index_current.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"
#include "ledger/recover.h"
#include "ledger/tabular.h"

#define LG_QUERY_MAX_OUTPUT ((size_t)512 * 1024 * 1024)

typedef struct {
    double t0, limit;
    const lg_buf *out; /* in-memory output, or NULL */
    int timed_out, too_big;
} query_guard;

static int guard_check(void *vctx)
{
    query_guard *g = vctx;
    if (lg_now_seconds() - g->t0 > g->limit)
        return g->timed_out = 1;
    if (g->out && g->out->len > LG_QUERY_MAX_OUTPUT)
        return g->too_big = 1;
    return 0;
}

/* The checks lg_index_query makes, for the streaming formats. */
static int prepare_readonly(sqlite3 *db, const char *sql, sqlite3_stmt **out)
{
    const char *tail = NULL;
    *out = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, out, &tail) != SQLITE_OK)
        return lg_error_set(LG_EINPUT, "query: %s", sqlite3_errmsg(db));
    if (!*out)
        return lg_error_set(LG_EINPUT, "query: empty statement");
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';'))
        tail++;
    if (tail && *tail)
        return lg_error_set(LG_EINPUT, "query: one statement at a time (extra text at '%.20s')", tail);
    if (!sqlite3_stmt_readonly(*out))
        return lg_error_set(LG_EINPUT, "query: only read-only statements are allowed");
    return 0;
}

static void csv_value(sqlite3_stmt *st, int i)
{
    char tmp[64];
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        break;
    case SQLITE_INTEGER:
        printf("%lld", (long long)sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT:
        fputs(lg_fmt_num(sqlite3_column_double(st, i), tmp, sizeof tmp), stdout);
        break;
    default:
        lg_csv_field(stdout, (const char *)sqlite3_column_text(st, i));
    }
}

static cJSON *json_value(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return cJSON_CreateNull();
    case SQLITE_INTEGER:
        return cJSON_CreateNumber((double)sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
        return cJSON_CreateNumber(sqlite3_column_double(st, i));
    default: {
        const char *s = (const char *)sqlite3_column_text(st, i);
        return cJSON_CreateString(s ? s : "");
    }
    }
}

/* --csv: a header row then one row per result row; --jsonl: one object per line. */
static int query_stream(sqlite3 *db, const char *sql, int csv)
{
    sqlite3_stmt *st = NULL;
    int err, rc, i, ncol;
    if ((err = prepare_readonly(db, sql, &st)) < 0)
        goto out;
    ncol = sqlite3_column_count(st);
    if (csv) {
        for (i = 0; i < ncol; i++) {
            if (i)
                putchar(',');
            lg_csv_field(stdout, sqlite3_column_name(st, i));
        }
        putchar('\n');
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (csv) {
            for (i = 0; i < ncol; i++) {
                if (i)
                    putchar(',');
                csv_value(st, i);
            }
            putchar('\n');
        } else {
            cJSON *o = cJSON_CreateObject();
            char *text = NULL;
            for (i = 0; o && i < ncol; i++)
                if (!cJSON_AddItemToObject(o, sqlite3_column_name(st, i), json_value(st, i))) {
                    cJSON_Delete(o);
                    o = NULL;
                }
            if (!o || !(text = cJSON_PrintUnformatted(o))) {
                cJSON_Delete(o);
                err = lg_error_set(LG_ENOMEM, "out of memory");
                goto out;
            }
            puts(text);
            cJSON_free(text);
            cJSON_Delete(o);
        }
        if (ferror(stdout)) {
            err = lg_error_set(LG_EIO, "writing output failed");
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        err = lg_error_set(LG_EINPUT, "query: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    return err;
}

int cmd_query(lg_cli *cli, int argc, char **argv)
{
    int json = 0, csv = 0, jsonl = 0;
    double timeout = 30;
    const lg_opt opts[] = {{"json", 0, LG_OPT_FLAG, &json, NULL, "rows as a JSON array of objects"},
                           {"csv", 0, LG_OPT_FLAG, &csv, NULL, "CSV with a header row (RFC 4180 quoting), streamed"},
                           {"jsonl", 0, LG_OPT_FLAG, &jsonl, NULL, "one JSON object per row and line, streamed"},
                           {"timeout", 0, LG_OPT_DOUBLE, &timeout, "SECONDS",
                            "stop the statement after this long, exit 2 (default 30)"},
                           LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"query", "ledger query [--json|--csv|--jsonl] [--timeout S] SQL",
                              "Run one read-only SQL statement on the index (.ledger/index.sqlite; tables runs, "
                              "conditions, params, cells, samples, artifacts, meta) and print the rows "
                              "tab-separated with a header line (or as JSON, CSV or JSON lines). A statement still "
                              "running after --timeout seconds is stopped (exit 2).",
                              opts, 1, 1, 0};
    lg_ledger *lg = NULL;
    sqlite3 *db = NULL;
    lg_buf out = LG_BUF_INIT;
    query_guard g;
    const char *why = NULL;
    char **args;
    int nargs, rc, err, fast;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if (json + csv + jsonl > 1) {
        fprintf(stderr, "ledger query: --json, --csv and --jsonl exclude each other\n");
        return 2;
    }
    if (!(timeout > 0)) {
        fprintf(stderr, "ledger query: --timeout must be > 0 seconds\n");
        return 2;
    }
    /* The index when it is provably current, without libgit2 (index_current.h);
     * otherwise the full path: open the ledger, catch up or refuse the index. */
    fast = lg_index_open_current(".", &db, &why);
    cli_trace_read_path("query", fast, why);
    if (!fast) {
        if ((err = cli_ledger(cli, &lg)) < 0)
            goto out;
        if (!lg_path_exists(lg_ledger_index_path(lg))) {
            err = lg_error_set(LG_EINPUT, "%s: the index is missing; run 'ledger reindex'", lg_ledger_index_path(lg));
            goto out;
        }
        /* catch up an index left behind by an interrupted record (recover.h) */
        if ((err = lg_ledger_index_catch_up(lg, NULL)) < 0 || (err = lg_index_open(lg_ledger_index_path(lg), 1, &db)) < 0)
            goto out;
    }
    memset(&g, 0, sizeof g);
    g.t0 = lg_now_seconds();
    g.limit = timeout;
    g.out = csv || jsonl ? NULL : &out;
    sqlite3_progress_handler(db, 4096, guard_check, &g);
    if (csv || jsonl)
        err = query_stream(db, args[0], csv);
    else
        err = lg_index_query(db, args[0], json, &out);
    if (err < 0 && g.timed_out)
        err = lg_error_set(LG_EINPUT, "query: stopped after %g s (--timeout %g); narrow the query or raise the limit",
                           timeout, timeout);
    else if (err < 0 && g.too_big)
        err = lg_error_set(LG_EINPUT, "query: the result exceeds %zu MiB in memory; use --csv or --jsonl (streamed)",
                           LG_QUERY_MAX_OUTPUT >> 20);
    if (err < 0)
        goto out;
    if (out.len)
        fwrite(out.ptr, 1, out.len, stdout);
out:
    sqlite3_close(db);
    lg_buf_release(&out);
    return err < 0 ? cli_fail("query", err) : 0;
}
