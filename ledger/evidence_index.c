/*
 * evidence_index.c - the SQLite index, cross-checked against a run's
 * verified manifest before the evidence provider answers from that run
 * (see evidence.c).
 *
 * The rows the manifest implies for the index tables (runs, metrics,
 * pairs, ...) are rebuilt as text and compared, sorted, with the rows the
 * index holds for the run: any difference is LG_ECHECK naming the run
 * ("run 'ledger verify'"). Values are never taken from the index: the
 * check only makes a falsified index visible instead of routing around it.
 * Done once per run used (run_ent.index_checked).
 */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/sha256.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/sign.h"
#include "ledger/evidence_int.h"

/* ---- helpers the evidence files share: string lists, their order, index errors ---- */

int ev_db_err(sqlite3 *db, const char *what)
{
    return lg_error_set(LG_EIO, "index: %s: %s", what, sqlite3_errmsg(db));
}

int ev_cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void ev_strlist_release(strlist *l)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        lg_free(l->v[i]);
    lg_free(l->v);
    memset(l, 0, sizeof *l);
}

int ev_strlist_add(strlist *l, char *s)
{
    if (!s)
        return LG_ENOMEM;
    if (lg_grow(&l->v, &l->cap, l->n + 1, sizeof *l->v, 32) < 0) {
        lg_free(s);
        return LG_ENOMEM;
    }
    l->v[l->n++] = s;
    return 0;
}

/* ---- the index, cross-checked against the manifest ------------------------------- */

static const char *nz(const char *s) { return s ? s : "\x01null"; }

static char *fmt_num(double v, int is_null, char buf[40])
{
    if (is_null)
        snprintf(buf, 40, "null");
    else
        snprintf(buf, 40, "%.17g", v);
    return buf;
}

/* Rows the manifest implies for one table, as text. */
static int expected_rows(const run_ent *e, const char *table, strlist *out)
{
    const cJSON *c, *o;
    lg_buf t = LG_BUF_INIT;
    int err = 0;
    static const char *const units[3] = {"cells", "pairs", "seeds"};
    static const char *const unames[3] = {"cell", "pair", "seed"};
    if (!strcmp(table, "runs")) {
        const cJSON *m = e->m;
        return ev_strlist_add(out, lg_strdup_printf("%ld|%s|%s|%s|%s|%s|%s|%s|%s", e->info.seq, nz(lg_json_str(m, "kind")),
                                                 nz(lg_json_str(m, "study")), nz(lg_json_str(m, "study_path")),
                                                 nz(lg_json_str(m, "spec_digest")), nz(lg_json_str(m, "data_digest")),
                                                 nz(lg_json_str(m, "engine_version")), nz(lg_json_str(m, "status")),
                                                 nz(lg_json_str(m, "created"))));
    }
    if (!strcmp(table, "artifacts")) {
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(e->m, "outputs")) {
            const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "size");
            if ((err = ev_strlist_add(out, lg_strdup_printf("%s|%s|%lld|%d", nz(lg_json_str(o, "name")),
                                                         nz(lg_json_str(o, "sha256")),
                                                         cJSON_IsNumber(size) ? (long long)size->valuedouble : -1LL,
                                                         cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "in_tree"))))) <
                0)
                return err;
        }
        return 0;
    }
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e->m, "results"), "conditions"))
    {
        const char *cond = lg_json_str(c, "id");
        if (!strcmp(table, "params")) {
            const cJSON *p;
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(c, "params")) {
                if (cJSON_IsNull(p))
                    err = ev_strlist_add(out, lg_strdup_printf("%s|%s|%s", nz(cond), p->string, nz(NULL)));
                else if ((err = lg_index_param_text(p, &t)) == 0)
                    err = ev_strlist_add(out, lg_strdup_printf("%s|%s|%s", nz(cond), p->string, t.ptr));
                if (err < 0)
                    goto out;
            }
        } else { /* samples */
            int u;
            for (u = 0; u < 3; u++) {
                const cJSON *it, *mv;
                cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(c, units[u])) {
                    const cJSON *sa = cJSON_GetObjectItemCaseSensitive(it, u == 1 ? "seed_a" : "seed");
                    const cJSON *sb = u == 1 ? cJSON_GetObjectItemCaseSensitive(it, "seed_b") : NULL;
                    char b1[40];
                    cJSON_ArrayForEach(mv, cJSON_GetObjectItemCaseSensitive(it, "metrics")) {
                        char sbt[32] = "null";
                        if (sb)
                            snprintf(sbt, sizeof sbt, "%lld", (long long)sb->valuedouble);
                        if ((err = ev_strlist_add(out, lg_strdup_printf("%s|%s|%lld|%s|%s|%s", nz(cond), unames[u],
                                                                     sa ? (long long)sa->valuedouble : 0LL, sbt,
                                                                     mv->string,
                                                                     fmt_num(cJSON_IsNumber(mv) ? mv->valuedouble : 0,
                                                                             !cJSON_IsNumber(mv), b1)))) < 0)
                            goto out;
                    }
                }
            }
        }
    }
out:
    lg_buf_release(&t);
    return err;
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : NULL;
}

/* Rows the index holds for one table of a run, as text in expected_rows' form. */
static int actual_rows(lg_evidence_ctx *ev, const run_ent *e, const char *table, strlist *out)
{
    const char *sql = !strcmp(table, "runs")
                          ? "SELECT seq, kind, study, study_path, spec_digest, data_digest, engine_version, status, created "
                            "FROM runs WHERE run_id = ?1"
                      : !strcmp(table, "artifacts") ? "SELECT name, sha256, size, in_tree FROM artifacts WHERE run_id = ?1"
                      : !strcmp(table, "params")    ? "SELECT condition, key, value FROM params WHERE run_id = ?1"
                                                    : "SELECT condition, unit, seed, seed_b, metric, value FROM samples "
                                                      "WHERE run_id = ?1";
    sqlite3_stmt *st = NULL;
    int rc, err = 0;
    if (sqlite3_prepare_v2(ev->db, sql, -1, &st, NULL) != SQLITE_OK)
        return ev_db_err(ev->db, "cross-checking a run");
    sqlite3_bind_text(st, 1, e->info.run_id, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && err == 0) {
        char b1[40];
        if (!strcmp(table, "runs"))
            err = ev_strlist_add(out, lg_strdup_printf("%lld|%s|%s|%s|%s|%s|%s|%s|%s", (long long)sqlite3_column_int64(st, 0),
                                                    nz(col(st, 1)), nz(col(st, 2)), nz(col(st, 3)), nz(col(st, 4)),
                                                    nz(col(st, 5)), nz(col(st, 6)), nz(col(st, 7)), nz(col(st, 8))));
        else if (!strcmp(table, "artifacts"))
            err = ev_strlist_add(out, lg_strdup_printf("%s|%s|%lld|%d", nz(col(st, 0)), nz(col(st, 1)),
                                                    (long long)sqlite3_column_int64(st, 2), sqlite3_column_int(st, 3) != 0));
        else if (!strcmp(table, "params"))
            err = ev_strlist_add(out, lg_strdup_printf("%s|%s|%s", nz(col(st, 0)), nz(col(st, 1)), nz(col(st, 2))));
        else {
            char sbt[32] = "null";
            if (sqlite3_column_type(st, 3) != SQLITE_NULL)
                snprintf(sbt, sizeof sbt, "%lld", (long long)sqlite3_column_int64(st, 3));
            err = ev_strlist_add(out, lg_strdup_printf("%s|%s|%lld|%s|%s|%s", nz(col(st, 0)), nz(col(st, 1)),
                                                    (long long)sqlite3_column_int64(st, 2), sbt, nz(col(st, 4)),
                                                    fmt_num(sqlite3_column_double(st, 5),
                                                            sqlite3_column_type(st, 5) == SQLITE_NULL, b1)));
        }
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = ev_db_err(ev->db, "cross-checking a run");
    sqlite3_finalize(st);
    return err;
}

/* The index rows of a run must be exactly what its manifest implies (the
 * tables the evidence and reports could read: runs, params, samples, artifacts). */
int ev_check_index(lg_evidence_ctx *ev, run_ent *e)
{
    static const char *const tables[] = {"runs", "params", "samples", "artifacts"};
    strlist want = {0}, got = {0};
    size_t t, i;
    int err = 0;
    if (e->index_checked)
        return 0;
    for (t = 0; t < sizeof tables / sizeof tables[0] && err == 0; t++) {
        ev_strlist_release(&want);
        ev_strlist_release(&got);
        if ((err = expected_rows(e, tables[t], &want)) < 0 || (err = actual_rows(ev, e, tables[t], &got)) < 0)
            break;
        if (want.n > 1)
            qsort(want.v, want.n, sizeof(char *), ev_cmp_str);
        if (got.n > 1)
            qsort(got.v, got.n, sizeof(char *), ev_cmp_str);
        for (i = 0; i < want.n && i < got.n && !strcmp(want.v[i], got.v[i]); i++)
            ;
        if (i < want.n || i < got.n) {
            const char *row = i < got.n ? got.v[i] : want.v[i];
            err = lg_error_set(LG_ECHECK,
                               "run %ld-%.12s: the index (table %s) does not match the run's manifest (%s row: %.200s): "
                               "the index was altered or is out of date; run 'ledger verify'",
                               e->info.seq, e->info.run_id, tables[t], i < got.n ? "index" : "manifest", row);
        }
    }
    ev_strlist_release(&want);
    ev_strlist_release(&got);
    if (err == 0)
        e->index_checked = 1;
    return err;
}
