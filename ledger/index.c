/*
 * index.c - the SQLite index (see index.h).
 *
 * The schema lives in one table of {name, columns} so that CREATE and the
 * verify diff are generated from the same list. The diff attaches the index
 * file read-only to the connection holding the expected rows and runs
 * `grouped(expected) EXCEPT grouped(actual)` both ways, which compares rows
 * with multiplicity without loading them into C.
 */
#include "ledger/index.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/manifest.h"

typedef struct {
    const char *name;
    const char *cols; /* comma-separated, in order */
    const char *decl; /* full column declarations */
} table_def;

static const table_def tables[] = {
    {"meta", "key,value", "key TEXT PRIMARY KEY, value TEXT"},
    {"runs",
     "run_id,seq,kind,study,study_path,spec_digest,data_digest,engine_version,ledger_version,code_commit,backend,"
     "device,host,status,created,commit_oid,manifest_sha256",
     "run_id TEXT PRIMARY KEY, seq INTEGER UNIQUE NOT NULL, kind TEXT NOT NULL, study TEXT NOT NULL, study_path TEXT,"
     " spec_digest TEXT, data_digest TEXT, engine_version TEXT, ledger_version TEXT, code_commit TEXT, backend TEXT,"
     " device TEXT, host TEXT, status TEXT NOT NULL, created TEXT NOT NULL, commit_oid TEXT, manifest_sha256 TEXT"},
    {"conditions", "run_id,condition,params_json",
     "run_id TEXT NOT NULL, condition TEXT NOT NULL, params_json TEXT, PRIMARY KEY(run_id, condition)"},
    {"params", "run_id,condition,key,value", "run_id TEXT NOT NULL, condition TEXT NOT NULL, key TEXT NOT NULL, value TEXT"},
    {"cells", "run_id,condition,seed,status", "run_id TEXT NOT NULL, condition TEXT NOT NULL, seed INTEGER, status TEXT"},
    {"samples", "run_id,condition,unit,seed,seed_b,metric,value",
     "run_id TEXT NOT NULL, condition TEXT NOT NULL, unit TEXT NOT NULL CHECK(unit IN ('cell','pair','seed')),"
     " seed INTEGER, seed_b INTEGER, metric TEXT NOT NULL, value REAL"},
    {"artifacts", "run_id,name,sha256,size,media_type,in_tree",
     "run_id TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER, media_type TEXT, in_tree INTEGER"},
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))

/* runs' columns 3 to 15 (tables[] order): the manifest's top-level strings of the same names. */
static const char *const run_manifest_cols[] = {"kind", "study", "study_path", "spec_digest", "data_digest",
                                                "engine_version", "ledger_version", "code_commit", "backend",
                                                "device", "host", "status", "created"};

static const char *const extra_sql =
    "CREATE INDEX samples_by_metric ON samples(condition, metric);"
    "CREATE INDEX samples_by_run ON samples(run_id);"
    "CREATE INDEX params_by_key ON params(key, value);"
    "CREATE INDEX artifacts_by_sha ON artifacts(sha256);"
    "CREATE INDEX runs_by_study ON runs(study);";

int lg_index_exec(sqlite3 *db, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int err = lg_error_set(LG_EIO, "index: %s: %s", what, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return err;
    }
    return 0;
}

int lg_index_create_schema(sqlite3 *db)
{
    lg_buf sql = LG_BUF_INIT;
    size_t i;
    int err = 0;
    for (i = 0; i < NTABLES && err >= 0; i++)
        err = lg_buf_printf(&sql, "CREATE TABLE %s(%s);", tables[i].name, tables[i].decl);
    if (err >= 0)
        err = lg_buf_printf(&sql, "%sPRAGMA user_version=%d;", extra_sql, LG_INDEX_SCHEMA);
    if (err >= 0)
        err = lg_index_exec(db, sql.ptr, "creating the schema");
    lg_buf_release(&sql);
    return err;
}

static int get_user_version(sqlite3 *db, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return 0;
    }
    sqlite3_finalize(st);
    return lg_error_set(LG_EIO, "index: reading the schema version: %s", sqlite3_errmsg(db));
}

/* A writer killed in the middle of a transaction leaves a WAL that the next
 * connection must recover, and a read-only connection cannot do that: SQLite
 * answers SQLITE_READONLY_RECOVERY (or _ROLLBACK, _CANTINIT), "attempt to
 * write a readonly database". One read-write connection that reads the
 * schema version lets SQLite recover the file (no row changes: the killed
 * transaction is simply not there), after which read-only readers work. */
static int index_recover(const char *path)
{
    sqlite3 *db = NULL;
    int ver = 0, err;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        err = lg_error_set(LG_EIO, "%s: cannot open the index to recover it: %s", path,
                           db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return err;
    }
    sqlite3_busy_timeout(db, 10000);
    err = get_user_version(db, &ver);
    sqlite3_close(db);
    return err;
}

int lg_index_open(const char *path, int readonly, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int flags = readonly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int err = 0, ver = 0, attempt;

    *out = NULL;
    for (attempt = 0;; attempt++) {
        if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
            err = lg_error_set(readonly ? LG_ENOTFOUND : LG_EIO, "%s: cannot open the index: %s", path,
                               db ? sqlite3_errmsg(db) : "out of memory");
            goto out;
        }
        sqlite3_busy_timeout(db, 10000);
        if ((err = get_user_version(db, &ver)) == 0)
            break;
        if (!readonly || attempt > 0 || (sqlite3_errcode(db) & 0xff) != SQLITE_READONLY)
            goto out;
        sqlite3_close(db); /* a WAL left by a killed writer: recover it, then read again */
        db = NULL;
        if ((err = index_recover(path)) < 0)
            goto out;
        lg_error_clear();
    }
    if (readonly) {
        if ((err = lg_index_exec(db, "PRAGMA query_only=1", "setting query_only")) < 0)
            goto out;
    } else {
        if (strcmp(path, ":memory:") != 0 &&
            (err = lg_index_exec(db, "PRAGMA journal_mode=WAL", "setting WAL mode")) < 0)
            goto out;
        if (ver == 0) {
            sqlite3_stmt *st = NULL;
            int empty = 1;
            if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW)
                empty = sqlite3_column_int(st, 0) == 0;
            sqlite3_finalize(st);
            if (empty) {
                if ((err = lg_index_create_schema(db)) < 0)
                    goto out;
                ver = LG_INDEX_SCHEMA;
            }
        }
    }
    if (ver != LG_INDEX_SCHEMA) {
        err = lg_error_set(LG_EINPUT, "%s: index schema version %d, expected %d (run 'ledger reindex')", path, ver,
                           LG_INDEX_SCHEMA);
        goto out;
    }
    if (strcmp(path, ":memory:") != 0) {
        /* ledger creates no trigger or view: one can only have been planted (a
         * trigger rewrites the rows later writers insert, a view could mask a
         * table in a reader's query). Cheap, and no reader goes on with it. */
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT type, name FROM sqlite_master WHERE type IN ('trigger','view') LIMIT 1", -1,
                               &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            err = lg_error_set(LG_ECHECK,
                               "%s: the index holds %s '%s', which ledger never creates (a doctored index); run "
                               "'ledger verify' to see it, 'ledger reindex' to rebuild the index",
                               path, (const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
        sqlite3_finalize(st);
        if (err < 0)
            goto out;
    }
    *out = db;
    db = NULL;
out:
    sqlite3_close(db);
    return err;
}

/* ---- inserting a run ------------------------------------------------------ */

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *st;
} ins;

static int ins_prepare(ins *s, sqlite3 *db, const char *sql)
{
    s->db = db;
    if (sqlite3_prepare_v2(db, sql, -1, &s->st, NULL) != SQLITE_OK)
        return lg_error_set(LG_EIO, "index: preparing '%.40s': %s", sql, sqlite3_errmsg(db));
    return 0;
}

/* An INSERT into table t with one placeholder per column of tables[]. */
static int ins_prepare_insert(ins *s, sqlite3 *db, const table_def *t)
{
    lg_buf sql = LG_BUF_INIT;
    const char *p;
    int err;
    if ((err = lg_buf_printf(&sql, "INSERT INTO %s VALUES(?", t->name)) >= 0)
        for (p = t->cols; *p && err >= 0; p++)
            if (*p == ',')
                err = lg_buf_puts(&sql, ",?");
    if (err >= 0 && (err = lg_buf_puts(&sql, ")")) >= 0)
        err = ins_prepare(s, db, sql.ptr);
    lg_buf_release(&sql);
    return err < 0 ? err : 0;
}

static int ins_run(ins *s, const char *what)
{
    int rc = sqlite3_step(s->st);
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
    if (rc != SQLITE_DONE)
        return lg_error_set(LG_EIO, "index: inserting %s: %s", what, sqlite3_errmsg(s->db));
    return 0;
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static void bind_json_str(sqlite3_stmt *st, int i, const cJSON *obj, const char *key)
{
    bind_str(st, i, lg_json_str(obj, key));
}

int lg_index_param_text(const cJSON *v, lg_buf *out)
{
    lg_buf_clear(out);
    if (cJSON_IsString(v))
        return lg_buf_puts(out, v->valuestring);
    if (cJSON_IsNumber(v))
        return lg_buf_printf(out, "%.17g", v->valuedouble);
    if (cJSON_IsTrue(v))
        return lg_buf_puts(out, "true");
    if (cJSON_IsFalse(v))
        return lg_buf_puts(out, "false");
    return lg_json_canonical(v, out);
}

static int add_samples(ins *s, const char *run_id, const char *cond, const cJSON *arr, const char *unit,
                       ins *cells)
{
    const cJSON *u, *m;
    int err;
    cJSON_ArrayForEach(u, arr) {
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(u, strcmp(unit, "pair") == 0 ? "seed_a" : "seed");
        const cJSON *seed_b = strcmp(unit, "pair") == 0 ? cJSON_GetObjectItemCaseSensitive(u, "seed_b") : NULL;
        if (cells) {
            const char *status = lg_json_str(u, "status");
            bind_str(cells->st, 1, run_id);
            bind_str(cells->st, 2, cond);
            sqlite3_bind_int64(cells->st, 3, (sqlite3_int64)seed->valuedouble);
            bind_str(cells->st, 4, status ? status : "ok");
            if ((err = ins_run(cells, "a cell")) < 0)
                return err;
        }
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(u, "metrics")) {
            bind_str(s->st, 1, run_id);
            bind_str(s->st, 2, cond);
            bind_str(s->st, 3, unit);
            sqlite3_bind_int64(s->st, 4, (sqlite3_int64)seed->valuedouble);
            if (seed_b)
                sqlite3_bind_int64(s->st, 5, (sqlite3_int64)seed_b->valuedouble);
            bind_str(s->st, 6, m->string);
            if (cJSON_IsNumber(m))
                sqlite3_bind_double(s->st, 7, m->valuedouble);
            if ((err = ins_run(s, "a sample")) < 0)
                return err;
        }
    }
    return 0;
}

int lg_index_add_run(sqlite3 *db, const cJSON *m, long seq, const char *run_id, const char *manifest_sha256,
                     const char *commit_oid)
{
    ins runs = {0}, conds = {0}, params = {0}, cells = {0}, samples = {0}, arts = {0};
    ins *const all[] = {&runs, &conds, &params, &cells, &samples, &arts}; /* tables[1..6], in order */
    lg_buf text = LG_BUF_INIT;
    const cJSON *c, *o, *results;
    size_t i;
    int err = 0;

    for (i = 0; i < sizeof all / sizeof all[0]; i++)
        if ((err = ins_prepare_insert(all[i], db, &tables[1 + i])) < 0)
            goto out;

    bind_str(runs.st, 1, run_id);
    sqlite3_bind_int64(runs.st, 2, (sqlite3_int64)seq);
    for (i = 0; i < sizeof run_manifest_cols / sizeof run_manifest_cols[0]; i++)
        bind_json_str(runs.st, 3 + (int)i, m, run_manifest_cols[i]);
    bind_str(runs.st, 16, commit_oid);
    bind_str(runs.st, 17, manifest_sha256);
    if ((err = ins_run(&runs, "the run")) < 0)
        goto out;

    results = cJSON_GetObjectItemCaseSensitive(m, "results");
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(results, "conditions")) {
        const char *cond = lg_json_str(c, "id");
        const cJSON *ps = cJSON_GetObjectItemCaseSensitive(c, "params"), *p;
        lg_buf_clear(&text);
        if (ps && (err = lg_json_canonical(ps, &text)) < 0)
            goto out;
        bind_str(conds.st, 1, run_id);
        bind_str(conds.st, 2, cond);
        bind_str(conds.st, 3, ps ? text.ptr : NULL);
        if ((err = ins_run(&conds, "a condition")) < 0)
            goto out;
        cJSON_ArrayForEach(p, ps) {
            bind_str(params.st, 1, run_id);
            bind_str(params.st, 2, cond);
            bind_str(params.st, 3, p->string);
            if (!cJSON_IsNull(p)) {
                if ((err = lg_index_param_text(p, &text)) < 0)
                    goto out;
                bind_str(params.st, 4, text.ptr);
            }
            if ((err = ins_run(&params, "a param")) < 0)
                goto out;
        }
        if ((err = add_samples(&samples, run_id, cond, cJSON_GetObjectItemCaseSensitive(c, "cells"), "cell", &cells)) < 0 ||
            (err = add_samples(&samples, run_id, cond, cJSON_GetObjectItemCaseSensitive(c, "pairs"), "pair", NULL)) < 0 ||
            (err = add_samples(&samples, run_id, cond, cJSON_GetObjectItemCaseSensitive(c, "seeds"), "seed", NULL)) < 0)
            goto out;
    }
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
        bind_str(arts.st, 1, run_id);
        bind_json_str(arts.st, 2, o, "name");
        bind_json_str(arts.st, 3, o, "sha256");
        sqlite3_bind_int64(arts.st, 4, (sqlite3_int64)cJSON_GetObjectItemCaseSensitive(o, "size")->valuedouble);
        bind_json_str(arts.st, 5, o, "media_type");
        sqlite3_bind_int(arts.st, 6, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "in_tree")));
        if ((err = ins_run(&arts, "an artifact")) < 0)
            goto out;
    }
out:
    for (i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]->st);
    lg_buf_release(&text);
    return err;
}

int lg_index_set_tip(sqlite3 *db, const char *tip_hex)
{
    sqlite3_stmt *st = NULL;
    int err = 0;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta VALUES('tip', ?)", -1, &st, NULL) != SQLITE_OK ||
        (bind_str(st, 1, tip_hex), sqlite3_step(st)) != SQLITE_DONE)
        err = lg_error_set(LG_EIO, "index: setting the tip: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return err;
}

int lg_index_get_tip(sqlite3 *db, char tip_out[65])
{
    sqlite3_stmt *st = NULL;
    int rc;
    tip_out[0] = '\0';
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='tip'", -1, &st, NULL) != SQLITE_OK)
        return lg_error_set(LG_EIO, "index: reading the tip: %s", sqlite3_errmsg(db));
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(tip_out, 65, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return 0;
}

/* ---- diff -------------------------------------------------------------------- */

/* "quote(a)||'|'||quote(b)..." for a column list. */
static int row_expr(lg_buf *out, const char *cols)
{
    const char *s = cols;
    int err = 0, first = 1;
    while (*s && err >= 0) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        err = lg_buf_printf(out, "%squote(%.*s)", first ? "" : "||'|'||", (int)n, s);
        first = 0;
        s += n + (e ? 1 : 0);
    }
    return err;
}

static int diff_one(sqlite3 *db, const table_def *t, const char *a, const char *b, const char *kind,
                    lg_index_diff_fn fn, void *ctx, int *count)
{
    lg_buf sql = LG_BUF_INIT;
    sqlite3_stmt *st = NULL;
    int err, rc;
    const char *runcol = strncmp(t->cols, "run_id", 6) == 0 ? "run_id" : "NULL";

    if ((err = lg_buf_printf(&sql, "SELECT %s, ", runcol)) < 0 || (err = row_expr(&sql, t->cols)) < 0 ||
        (err = lg_buf_printf(&sql, ", n FROM (SELECT %s, count(*) AS n FROM %s.%s GROUP BY %s EXCEPT "
                                   "SELECT %s, count(*) AS n FROM %s.%s GROUP BY %s) ORDER BY 1, 2",
                             t->cols, a, t->name, t->cols, t->cols, b, t->name, t->cols)) < 0)
        goto out;
    if (sqlite3_prepare_v2(db, sql.ptr, -1, &st, NULL) != SQLITE_OK) {
        err = lg_error_set(LG_EIO, "index: comparing table %s: %s", t->name, sqlite3_errmsg(db));
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *run = (const char *)sqlite3_column_text(st, 0);
        const char *row = (const char *)sqlite3_column_text(st, 1);
        char rowbuf[512];
        int n = sqlite3_column_int(st, 2);
        snprintf(rowbuf, sizeof(rowbuf), "%s%s", row ? row : "", n > 1 ? " (repeated)" : "");
        fn(ctx, t->name, run ? run : "", kind, rowbuf);
        (*count)++;
    }
    if (rc != SQLITE_DONE)
        err = lg_error_set(LG_EIO, "index: comparing table %s: %s", t->name, sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    lg_buf_release(&sql);
    return err;
}

int lg_index_attach(sqlite3 *db, const char *path, const char *schema)
{
    sqlite3_stmt *st = NULL;
    lg_buf uri = LG_BUF_INIT, sql = LG_BUF_INIT;
    int err = 0;

    /* Attach by URI so that the file is opened read-only. */
    if ((err = lg_buf_puts(&uri, "file:")) < 0)
        goto out;
    for (const char *p = path; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '%' || c == '?' || c == '#' || c < 0x21 || c > 0x7e)
            err = lg_buf_printf(&uri, "%%%02X", c);
        else
            err = lg_buf_put(&uri, p, 1);
        if (err < 0)
            goto out;
    }
    if ((err = lg_buf_puts(&uri, "?mode=ro")) < 0 || (err = lg_buf_printf(&sql, "ATTACH DATABASE ? AS %s", schema)) < 0)
        goto out;
    for (int attempt = 0;; attempt++) {
        if (sqlite3_prepare_v2(db, sql.ptr, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_bind_text(st, 1, uri.ptr, -1, SQLITE_TRANSIENT) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE)
            break;
        if (attempt > 0 || (sqlite3_errcode(db) & 0xff) != SQLITE_READONLY) {
            err = lg_error_set(LG_EIO, "%s: cannot attach the index: %s", path, sqlite3_errmsg(db));
            break;
        }
        sqlite3_finalize(st); /* a WAL left by a killed writer (index_recover): recover, attach again */
        st = NULL;
        if ((err = index_recover(path)) < 0)
            break;
    }
out:
    sqlite3_finalize(st);
    lg_buf_release(&uri);
    lg_buf_release(&sql);
    return err;
}

int lg_index_diff_attached(sqlite3 *expected, const char *schema, lg_index_diff_fn fn, void *ctx)
{
    sqlite3_stmt *st = NULL;
    lg_buf sql = LG_BUF_INIT;
    size_t i;
    int err = 0, count = 0, ver = -1;

    if ((err = lg_buf_printf(&sql, "PRAGMA %s.user_version", schema)) < 0)
        return err;
    if (sqlite3_prepare_v2(expected, sql.ptr, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        ver = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    lg_buf_release(&sql);
    if (ver != LG_INDEX_SCHEMA) {
        char what[64];
        snprintf(what, sizeof what, "schema version %d, expected %d", ver, LG_INDEX_SCHEMA);
        fn(ctx, "schema", "", "unexpected", what);
        return 1;
    }
    for (i = 0; i < NTABLES; i++) {
        if ((err = diff_one(expected, &tables[i], "main", schema, "missing", fn, ctx, &count)) < 0 ||
            (err = diff_one(expected, &tables[i], schema, "main", "unexpected", fn, ctx, &count)) < 0) {
            if (err == LG_EIO) { /* e.g. a dropped table: report it as a difference */
                fn(ctx, tables[i].name, "", "unexpected", lg_error_msg());
                count++;
                err = 0;
                continue;
            }
            break;
        }
    }
    return err < 0 ? err : count;
}

int lg_index_diff(sqlite3 *expected, const char *actual_path, lg_index_diff_fn fn, void *ctx)
{
    int n;
    if ((n = lg_index_attach(expected, actual_path, "actual")) < 0)
        return n;
    n = lg_index_diff_attached(expected, "actual", fn, ctx);
    sqlite3_exec(expected, "DETACH DATABASE actual", NULL, NULL, NULL);
    return n;
}

/* ---- schema check ----------------------------------------------------------------- */

typedef struct {
    char **type, **name, **sql;
    size_t n, cap;
} schema_list;

static void schema_list_release(schema_list *l)
{
    size_t i;
    for (i = 0; i < l->n; i++) {
        lg_free(l->type[i]);
        lg_free(l->name[i]);
        lg_free(l->sql[i]);
    }
    lg_free(l->type);
    lg_free(l->name);
    lg_free(l->sql);
    memset(l, 0, sizeof(*l));
}

static int schema_list_read(sqlite3 *db, const char *schema, schema_list *l)
{
    sqlite3_stmt *st = NULL;
    lg_buf sql = LG_BUF_INIT;
    int err = 0, rc;
    if ((err = lg_buf_printf(&sql, "SELECT type, name, sql FROM %s.sqlite_master", schema)) < 0)
        goto out;
    if (sqlite3_prepare_v2(db, sql.ptr, -1, &st, NULL) != SQLITE_OK) {
        err = lg_error_set(LG_EIO, "index: reading the schema: %s", sqlite3_errmsg(db));
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (l->n == l->cap) {
            size_t cap = lg_grow_cap(l->cap, l->n + 1, 32);
            if (lg_resize(&l->type, cap, sizeof *l->type) < 0 || lg_resize(&l->name, cap, sizeof *l->name) < 0 ||
                lg_resize(&l->sql, cap, sizeof *l->sql) < 0) {
                err = LG_ENOMEM;
                goto out;
            }
            l->cap = cap;
        }
        l->type[l->n] = lg_strdup((const char *)sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
        l->name[l->n] = lg_strdup((const char *)sqlite3_column_text(st, 1) ? (const char *)sqlite3_column_text(st, 1) : "");
        l->sql[l->n] = lg_strdup((const char *)sqlite3_column_text(st, 2) ? (const char *)sqlite3_column_text(st, 2) : "");
        l->n++;
        if (!l->type[l->n - 1] || !l->name[l->n - 1] || !l->sql[l->n - 1]) {
            err = LG_ENOMEM;
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        err = lg_error_set(LG_EIO, "index: reading the schema: %s", sqlite3_errmsg(db));
out:
    sqlite3_finalize(st);
    lg_buf_release(&sql);
    return err;
}

static long schema_find(const schema_list *l, const char *type, const char *name)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        if (strcmp(l->type[i], type) == 0 && strcmp(l->name[i], name) == 0)
            return (long)i;
    return -1;
}

int lg_index_check_schema(sqlite3 *db, const char *schema, lg_index_schema_fn fn, void *ctx)
{
    sqlite3 *ref = NULL;
    schema_list want = {0}, have = {0};
    size_t i;
    int err, count = 0;
    if (sqlite3_open_v2(":memory:", &ref, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        err = lg_error_set(LG_ENOMEM, "index: cannot open an in-memory database");
        goto out;
    }
    if ((err = lg_index_create_schema(ref)) < 0 || (err = schema_list_read(ref, "main", &want)) < 0 ||
        (err = schema_list_read(db, schema, &have)) < 0)
        goto out;
    for (i = 0; i < have.n; i++) {
        long k = schema_find(&want, have.type[i], have.name[i]);
        if (k < 0) {
            fn(ctx, have.type[i], have.name[i], "not created by ledger (the index was doctored)");
            count++;
        } else if (strcmp(want.sql[k], have.sql[i]) != 0) {
            fn(ctx, have.type[i], have.name[i], "definition differs from the ledger's schema (the index was doctored)");
            count++;
        }
    }
    for (i = 0; i < want.n; i++)
        if (schema_find(&have, want.type[i], want.name[i]) < 0) {
            fn(ctx, want.type[i], want.name[i], "missing from the index");
            count++;
        }
    err = count;
out:
    schema_list_release(&want);
    schema_list_release(&have);
    sqlite3_close(ref);
    return err;
}

/* ---- query ---------------------------------------------------------------------- */

static int json_value(lg_buf *out, sqlite3_stmt *st, int i)
{
    cJSON *v = NULL;
    int err;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return lg_buf_puts(out, "null");
    case SQLITE_INTEGER:
        return lg_buf_printf(out, "%lld", (long long)sqlite3_column_int64(st, i));
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, i);
        if (!isfinite(d))
            return lg_buf_puts(out, "null");
        v = cJSON_CreateNumber(d);
        break;
    }
    default:
        v = cJSON_CreateString((const char *)sqlite3_column_text(st, i));
        break;
    }
    if (!v)
        return lg_error_set(LG_ENOMEM, "out of memory");
    err = lg_json_canonical(v, out);
    cJSON_Delete(v);
    return err;
}

static int text_value(lg_buf *out, sqlite3_stmt *st, int i)
{
    const unsigned char *s;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL:
        return 0;
    case SQLITE_FLOAT: { /* shortest form that reads back to the same double */
        double d = sqlite3_column_double(st, i);
        char tmp[64];
        int prec;
        for (prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
        return lg_buf_puts(out, tmp);
    }
    default:
        for (s = sqlite3_column_text(st, i); s && *s; s++) {
            int err = lg_buf_put(out, *s == '\t' || *s == '\n' ? " " : (const char *)s, 1);
            if (err < 0)
                return err;
        }
        return 0;
    }
}

int lg_index_query(sqlite3 *db, const char *sql, int json, lg_buf *out)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int err = 0, rc = SQLITE_DONE, i, ncol, nrow = 0;

    if (sqlite3_prepare_v2(db, sql, -1, &st, &tail) != SQLITE_OK) {
        err = lg_error_set(LG_EINPUT, "query: %s", sqlite3_errmsg(db));
        goto out;
    }
    if (!st) {
        err = lg_error_set(LG_EINPUT, "query: empty statement");
        goto out;
    }
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';'))
        tail++;
    if (tail && *tail) {
        err = lg_error_set(LG_EINPUT, "query: one statement at a time (extra text at '%.20s')", tail);
        goto out;
    }
    if (!sqlite3_stmt_readonly(st)) {
        err = lg_error_set(LG_EINPUT, "query: only read-only statements are allowed");
        goto out;
    }
    ncol = sqlite3_column_count(st);
    if (json)
        err = lg_buf_puts(out, "[");
    else
        for (i = 0; i < ncol && err >= 0; i++)
            err = lg_buf_printf(out, "%s%s", i ? "\t" : "", sqlite3_column_name(st, i));
    if (!json && err >= 0)
        err = lg_buf_puts(out, "\n");
    while (err >= 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (json) {
            lg_buf key = LG_BUF_INIT;
            err = lg_buf_puts(out, nrow ? ",\n{" : "\n{");
            for (i = 0; i < ncol && err >= 0; i++) {
                cJSON *k = cJSON_CreateString(sqlite3_column_name(st, i));
                lg_buf_clear(&key);
                err = k ? lg_json_canonical(k, &key) : lg_error_set(LG_ENOMEM, "out of memory");
                cJSON_Delete(k);
                if (err >= 0)
                    err = lg_buf_printf(out, "%s%s:", i ? "," : "", key.ptr);
                if (err >= 0)
                    err = json_value(out, st, i);
            }
            lg_buf_release(&key);
            if (err >= 0)
                err = lg_buf_puts(out, "}");
        } else {
            for (i = 0; i < ncol && err >= 0; i++) {
                if (i)
                    err = lg_buf_puts(out, "\t");
                if (err >= 0)
                    err = text_value(out, st, i);
            }
            if (err >= 0)
                err = lg_buf_puts(out, "\n");
        }
        nrow++;
    }
    if (err >= 0 && rc != SQLITE_DONE)
        err = lg_error_set(LG_EINPUT, "query: %s", sqlite3_errmsg(db));
    if (err >= 0 && json)
        err = lg_buf_puts(out, nrow ? "\n]\n" : "]\n");
out:
    sqlite3_finalize(st);
    return err;
}
