/*
 * evidence.c - sample provider over the SQLite index (see evidence.h).
 *
 * Queries are small (one run, one unit, one metric), so the provider asks
 * SQLite each time and filters conditions on their params in C with
 * lg_filter_match (the one definition of filter semantics, in gates/).
 * Per-run facts that cost I/O (staleness, artifact presence) are computed
 * once per run and cached for the life of the context.
 */
#include "ledger/evidence.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifacts/sha256.h"
#include "ledger/sign.h"

typedef struct {
    char run_id[65];
    lg_evidence status;
    char *reason;
} run_fact;

struct lg_evidence_ctx {
    lg_ledger *lg;
    sqlite3 *db;
    run_fact *facts;
    size_t nfacts, capfacts;
    /* answer buffers, valid until the next call */
    double *values;
    char **labels;
    size_t n, cap;
    char run_id[65];
    char engine[64];
    lg_buf reason;
    int require_signed;   /* lg_evidence_set_require_signed */
    int keys_loaded;
    lg_keyring keys;      /* ledger-trusted-keys, loaded on first use */
};

void lg_evidence_set_require_signed(lg_evidence_ctx *ev, int on) { ev->require_signed = on; }

int lg_evidence_new(lg_ledger *lg, lg_evidence_ctx **out)
{
    lg_evidence_ctx *ev;
    sqlite3 *db = lg_ledger_db(lg);
    *out = NULL;
    if (!db)
        return lg_error_code() ? lg_error_code() : LG_EIO;
    if (!(ev = lg_calloc(1, sizeof(*ev))))
        return LG_ENOMEM;
    ev->lg = lg;
    ev->db = db;
    lg_buf_init(&ev->reason, 0);
    *out = ev;
    return 0;
}

static void clear_answer(lg_evidence_ctx *ev)
{
    size_t i;
    for (i = 0; i < ev->n; i++)
        lg_free(ev->labels[i]);
    ev->n = 0;
    lg_buf_clear(&ev->reason);
}

void lg_evidence_free(lg_evidence_ctx *ev)
{
    size_t i;
    if (!ev)
        return;
    clear_answer(ev);
    lg_free(ev->values);
    lg_free(ev->labels);
    for (i = 0; i < ev->nfacts; i++)
        lg_free(ev->facts[i].reason);
    lg_free(ev->facts);
    lg_buf_release(&ev->reason);
    lg_keyring_release(&ev->keys);
    lg_free(ev);
}

static int db_err(sqlite3 *db, const char *what)
{
    return lg_error_set(LG_EIO, "index: %s: %s", what, sqlite3_errmsg(db));
}

/* ---- which run ---------------------------------------------------------------- */

typedef struct {
    char run_id[65];
    char spec_digest[65];
    char data_digest[65];
    char engine[64];
    char study_path[1024];
    long seq;
} run_row;

static void copy_col(sqlite3_stmt *st, int col, char *buf, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(buf, n, "%s", t ? (const char *)t : "");
}

/* 1 found, 0 none, < 0 error. */
static int find_run(lg_evidence_ctx *ev, const char *study, const char *prefix, run_row *out, int *ambiguous)
{
    sqlite3_stmt *st = NULL;
    const char *sql = prefix ? "SELECT run_id, spec_digest, data_digest, engine_version, study_path, seq, status FROM runs "
                               "WHERE study = ?1 AND substr(run_id, 1, length(?2)) = ?2 ORDER BY seq DESC LIMIT 2"
                             : "SELECT run_id, spec_digest, data_digest, engine_version, study_path, seq, status FROM runs "
                               "WHERE study = ?1 AND status = 'ok' AND kind IN ('run', 'record', 'import') "
                               "ORDER BY seq DESC LIMIT 1";
    int rc, found = 0;
    *ambiguous = 0;
    if (sqlite3_prepare_v2(ev->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_err(ev->db, "looking up runs");
    sqlite3_bind_text(st, 1, study, -1, SQLITE_TRANSIENT);
    if (prefix)
        sqlite3_bind_text(st, 2, prefix, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (found) {
            *ambiguous = 1;
            break;
        }
        copy_col(st, 0, out->run_id, sizeof out->run_id);
        copy_col(st, 1, out->spec_digest, sizeof out->spec_digest);
        copy_col(st, 2, out->data_digest, sizeof out->data_digest);
        copy_col(st, 3, out->engine, sizeof out->engine);
        copy_col(st, 4, out->study_path, sizeof out->study_path);
        out->seq = (long)sqlite3_column_int64(st, 5);
        found = 1;
        if (prefix) {
            const unsigned char *status = sqlite3_column_text(st, 6);
            if (!status || strcmp((const char *)status, "ok") != 0)
                found = 2; /* pinned but failed */
        }
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        sqlite3_finalize(st);
        return db_err(ev->db, "looking up runs");
    }
    sqlite3_finalize(st);
    return found;
}

/* ---- staleness and completeness, once per run ------------------------------------ */

static int fact_set(run_fact *f, lg_evidence status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fact_set(run_fact *f, lg_evidence status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    f->reason = lg_strdup_vprintf(fmt, ap);
    va_end(ap);
    f->status = status;
    return f->reason ? 0 : LG_ENOMEM;
}

/* The data file a run's spec used, resolved like engine/study.c does. */
static int spec_data_path(lg_evidence_ctx *ev, const run_row *r, lg_buf *out)
{
    cJSON *m = NULL;
    const cJSON *data, *src, *path;
    int err, found = 0;
    if ((err = lg_ledger_load_manifest(ev->lg, r->run_id, &m, NULL, NULL)) < 0)
        return err;
    data = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "spec"), "data");
    src = cJSON_GetObjectItemCaseSensitive(data, "source");
    path = cJSON_GetObjectItemCaseSensitive(data, "path");
    if (cJSON_IsString(src) && strcmp(src->valuestring, "file") == 0 && cJSON_IsString(path) && r->study_path[0]) {
        lg_buf_clear(out);
        if (path->valuestring[0] == '/')
            err = lg_buf_puts(out, path->valuestring);
        else {
            const char *slash = strrchr(r->study_path, '/');
            err = lg_buf_printf(out, "%s/%.*s%s%s", lg_ledger_root(ev->lg), slash ? (int)(slash - r->study_path) : 0,
                                r->study_path, slash ? "/" : "", path->valuestring);
        }
        found = err < 0 ? err : 1;
    }
    cJSON_Delete(m);
    return found;
}

static int check_run(lg_evidence_ctx *ev, const run_row *r, run_fact *f)
{
    lg_buf path = LG_BUF_INIT;
    sqlite3_stmt *st = NULL;
    char hex[65];
    int err = 0, rc;

    f->status = LG_EVIDENCE_FRESH;
    /* --require-signed: a trusted signature and a chain link, before anything else (sign.h) */
    if (ev->require_signed) {
        if (!ev->keys_loaded) {
            if ((err = lg_keyring_load_repo(ev->lg, &ev->keys)) < 0)
                goto out;
            ev->keys_loaded = 1;
        }
        if ((rc = lg_sign_evidence_check(ev->lg, r->run_id, &ev->keys, &path)) < 0) {
            err = rc;
            goto out;
        }
        if (rc == 0) {
            err = fact_set(f, LG_EVIDENCE_MISSING, "%s (--require-signed)", path.ptr);
            goto out;
        }
        lg_buf_clear(&path);
    }
    /* the study file */
    if (r->study_path[0] && r->spec_digest[0]) {
        if (r->study_path[0] == '/')
            err = lg_buf_puts(&path, r->study_path);
        else
            err = lg_path_join(&path, lg_ledger_root(ev->lg), r->study_path);
        if (err < 0)
            goto out;
        if (!lg_path_exists(path.ptr)) {
            err = fact_set(f, LG_EVIDENCE_STALE, "study file %s no longer exists (run %.12s)", r->study_path, r->run_id);
            goto out;
        }
        if ((err = lg_sha256_file(path.ptr, hex, NULL)) < 0)
            goto out;
        if (strcmp(hex, r->spec_digest) != 0) {
            err = fact_set(f, LG_EVIDENCE_STALE, "study file %s changed since run %.12s (spec sha256 %.12s, now %.12s): re-run it",
                           r->study_path, r->run_id, r->spec_digest, hex);
            goto out;
        }
    }
    /* the data file, for file sources */
    if (r->data_digest[0] && (rc = spec_data_path(ev, r, &path)) != 0) {
        if (rc < 0) {
            err = rc;
            goto out;
        }
        if (!lg_path_exists(path.ptr)) {
            err = fact_set(f, LG_EVIDENCE_STALE, "data file %s no longer exists (run %.12s)", path.ptr, r->run_id);
            goto out;
        }
        if ((err = lg_sha256_file(path.ptr, hex, NULL)) < 0)
            goto out;
        if (strcmp(hex, r->data_digest) != 0) {
            err = fact_set(f, LG_EVIDENCE_STALE, "data file %s changed since run %.12s: re-run the study", path.ptr,
                           r->run_id);
            goto out;
        }
    }
    /* completeness: every artifact of the run present locally (outputs kept in the git tree are,
     * by construction; integrity checks their bytes) */
    if (sqlite3_prepare_v2(ev->db, "SELECT name, sha256 FROM artifacts WHERE run_id = ? AND NOT in_tree ORDER BY name",
                           -1, &st, NULL) !=
        SQLITE_OK) {
        err = db_err(ev->db, "listing artifacts");
        goto out;
    }
    sqlite3_bind_text(st, 1, r->run_id, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *digest = (const char *)sqlite3_column_text(st, 1);
        /* lg_store_exists: 1 present, 0 absent, < 0 error (e.g. a malformed digest): only 1 counts */
        if (!digest || lg_store_exists(lg_ledger_store(ev->lg), digest) != 1) {
            err = fact_set(f, LG_EVIDENCE_MISSING, "artifact %s of run %.12s is absent from the store (sha256 %.12s)",
                           name ? name : "?", r->run_id, digest ? digest : "?");
            goto out;
        }
    }
    if (rc != SQLITE_DONE)
        err = db_err(ev->db, "listing artifacts");
out:
    sqlite3_finalize(st);
    lg_buf_release(&path);
    return err;
}

static int run_fact_get(lg_evidence_ctx *ev, const run_row *r, const run_fact **out)
{
    size_t i;
    int err;
    for (i = 0; i < ev->nfacts; i++)
        if (strcmp(ev->facts[i].run_id, r->run_id) == 0) {
            *out = &ev->facts[i];
            return 0;
        }
    if (ev->nfacts == ev->capfacts) {
        size_t cap = ev->capfacts ? ev->capfacts * 2 : 8;
        run_fact *p = lg_realloc(ev->facts, cap * sizeof(*p));
        if (!p)
            return LG_ENOMEM;
        ev->facts = p;
        ev->capfacts = cap;
    }
    memset(&ev->facts[ev->nfacts], 0, sizeof(run_fact));
    snprintf(ev->facts[ev->nfacts].run_id, 65, "%s", r->run_id);
    if ((err = check_run(ev, r, &ev->facts[ev->nfacts])) < 0) {
        lg_free(ev->facts[ev->nfacts].reason);
        return err;
    }
    *out = &ev->facts[ev->nfacts++];
    return 0;
}

/* ---- values ------------------------------------------------------------------------- */

static const char *unit_sql(lg_unit u) { return lg_unit_name(u); }

/* Does the condition satisfy every filter? 1 yes, 0 no, < 0 error. */
static int condition_matches(lg_evidence_ctx *ev, const char *run_id, const char *cond, const lg_sample_query *q)
{
    sqlite3_stmt *st = NULL;
    size_t i;
    int ok = 1;
    if (q->nfilters == 0)
        return 1;
    if (sqlite3_prepare_v2(ev->db, "SELECT value FROM params WHERE run_id = ?1 AND condition = ?2 AND key = ?3", -1, &st,
                           NULL) != SQLITE_OK)
        return db_err(ev->db, "reading params");
    for (i = 0; i < q->nfilters && ok; i++) {
        const char *val = NULL;
        int rc;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, run_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, cond, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 3, q->filters[i].key, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            val = (const char *)sqlite3_column_text(st, 0);
        else if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            return db_err(ev->db, "reading params");
        }
        ok = lg_filter_match(&q->filters[i], val);
    }
    sqlite3_finalize(st);
    return ok;
}

static int push_value(lg_evidence_ctx *ev, double v, const char *label)
{
    if (ev->n == ev->cap) {
        size_t cap = ev->cap ? ev->cap * 2 : 64;
        double *pv = lg_realloc(ev->values, cap * sizeof(double));
        char **pl;
        if (!pv)
            return LG_ENOMEM;
        ev->values = pv;
        if (!(pl = lg_realloc(ev->labels, cap * sizeof(char *))))
            return LG_ENOMEM;
        ev->labels = pl;
        ev->cap = cap;
    }
    if (!(ev->labels[ev->n] = lg_strdup(label)))
        return LG_ENOMEM;
    ev->values[ev->n++] = v;
    return 0;
}

/* Reason for "no values": the metrics the run has for this unit. */
static int explain_empty(lg_evidence_ctx *ev, const char *run_id, const lg_sample_query *q, int n_conditions_matched)
{
    sqlite3_stmt *st = NULL;
    int rc, first = 1, err;
    if (n_conditions_matched == 0)
        return lg_buf_printf(&ev->reason, "no condition of run %.12s matches the filters of sample '%s'", run_id,
                             q->sample_name);
    if ((err = lg_buf_printf(&ev->reason, "run %.12s has no %s.%s values (its %s metrics: ", run_id, unit_sql(q->unit),
                             q->metric, unit_sql(q->unit))) < 0)
        return err;
    if (sqlite3_prepare_v2(ev->db, "SELECT DISTINCT metric FROM samples WHERE run_id = ?1 AND unit = ?2 ORDER BY metric",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(ev->db, "listing metrics");
    sqlite3_bind_text(st, 1, run_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, unit_sql(q->unit), -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((err = lg_buf_printf(&ev->reason, "%s%s", first ? "" : ", ", (const char *)sqlite3_column_text(st, 0))) < 0)
            break;
        first = 0;
    }
    sqlite3_finalize(st);
    return lg_buf_puts(&ev->reason, first ? "none)" : ")");
}

int lg_evidence_provider(void *ctx, const lg_sample_query *q, lg_samples *out)
{
    lg_evidence_ctx *ev = ctx;
    run_row r;
    const run_fact *fact = NULL;
    sqlite3_stmt *st = NULL;
    char last_cond[512] = "";
    int found, ambiguous, rc, err = 0, cond_ok = 0, n_matched = 0;

    clear_answer(ev);
    memset(&r, 0, sizeof r);
    if ((found = find_run(ev, q->study, q->run, &r, &ambiguous)) < 0)
        return found;
    if (ambiguous) {
        out->status = LG_EVIDENCE_MISSING;
        lg_buf_printf(&ev->reason, "run prefix '%s' of study %s is ambiguous", q->run, q->study);
        out->reason = ev->reason.ptr;
        return 0;
    }
    if (!found || found == 2) {
        out->status = LG_EVIDENCE_MISSING;
        if (found == 2)
            lg_buf_printf(&ev->reason, "pinned run %.12s of study %s did not finish ok (failed runs are not evidence)",
                          r.run_id, q->study);
        else if (q->run)
            lg_buf_printf(&ev->reason, "no run %s of study %s in the ledger", q->run, q->study);
        else
            lg_buf_printf(&ev->reason, "no ok run of study %s in the ledger: run 'ledger run' on it", q->study);
        out->reason = ev->reason.ptr;
        return 0;
    }
    snprintf(ev->run_id, sizeof ev->run_id, "%s", r.run_id);
    snprintf(ev->engine, sizeof ev->engine, "%s", r.engine);
    out->run_id = ev->run_id;
    out->engine_version = ev->engine[0] ? ev->engine : NULL;
    if ((err = run_fact_get(ev, &r, &fact)) < 0)
        return err;
    if (fact->status != LG_EVIDENCE_FRESH) {
        out->status = fact->status;
        out->reason = fact->reason;
        return 0;
    }
    if (sqlite3_prepare_v2(ev->db,
                           "SELECT condition, seed, seed_b, value FROM samples WHERE run_id = ?1 AND unit = ?2 AND metric = ?3 "
                           "ORDER BY condition, seed, seed_b",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(ev->db, "reading samples");
    sqlite3_bind_text(st, 1, r.run_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, unit_sql(q->unit), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, q->metric, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *cond = (const char *)sqlite3_column_text(st, 0);
        char label[128];
        double v;
        if (!cond)
            cond = "";
        if (strcmp(cond, last_cond) != 0) {
            snprintf(last_cond, sizeof last_cond, "%s", cond);
            if ((cond_ok = condition_matches(ev, r.run_id, cond, q)) < 0) {
                err = cond_ok;
                break;
            }
            n_matched += cond_ok;
        }
        if (!cond_ok)
            continue;
        v = sqlite3_column_type(st, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 3);
        if (q->unit == LG_UNIT_PAIR)
            snprintf(label, sizeof label, "%lld-%lld", (long long)sqlite3_column_int64(st, 1),
                     (long long)sqlite3_column_int64(st, 2));
        else
            snprintf(label, sizeof label, "seed=%lld", (long long)sqlite3_column_int64(st, 1));
        if ((err = push_value(ev, v, label)) < 0)
            break;
    }
    if (!err && rc != SQLITE_DONE)
        err = db_err(ev->db, "reading samples");
    sqlite3_finalize(st);
    if (err < 0)
        return err;
    if (ev->n == 0) {
        if (!n_matched) {
            /* the metric may exist but no condition matched: count matches independently of metric */
            sqlite3_stmt *cs = NULL;
            if (sqlite3_prepare_v2(ev->db, "SELECT DISTINCT condition FROM conditions WHERE run_id = ?1", -1, &cs, NULL) ==
                SQLITE_OK) {
                sqlite3_bind_text(cs, 1, r.run_id, -1, SQLITE_TRANSIENT);
                while (sqlite3_step(cs) == SQLITE_ROW) {
                    int m = condition_matches(ev, r.run_id, (const char *)sqlite3_column_text(cs, 0), q);
                    if (m > 0)
                        n_matched++;
                }
            }
            sqlite3_finalize(cs);
        }
        out->status = LG_EVIDENCE_MISSING;
        if ((err = explain_empty(ev, r.run_id, q, n_matched)) < 0)
            return err;
        out->reason = ev->reason.ptr;
        return 0;
    }
    out->values = ev->values;
    out->labels = (const char *const *)ev->labels;
    out->n = ev->n;
    out->status = LG_EVIDENCE_FRESH;
    return 0;
}

/* ---- files ---------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int lg_evidence_default_claims(lg_ledger *lg, char ***paths, size_t *n)
{
    lg_buf dir = LG_BUF_INIT, p = LG_BUF_INIT;
    DIR *d = NULL;
    struct dirent *e;
    char **list = NULL;
    size_t cnt = 0, cap = 0;
    int err = 0;
    *paths = NULL;
    *n = 0;
    if ((err = lg_path_join(&dir, lg_ledger_root(lg), "claims")) < 0)
        goto out;
    if (!(d = opendir(dir.ptr)))
        goto out; /* no claims folder: no claims */
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 8 || strcmp(e->d_name + len - 7, ".claims") != 0 || e->d_name[0] == '.')
            continue;
        if (cnt == cap) {
            char **nl;
            cap = cap ? cap * 2 : 8;
            if (!(nl = lg_realloc(list, cap * sizeof(char *)))) {
                err = LG_ENOMEM;
                goto out;
            }
            list = nl;
        }
        if ((err = lg_path_join(&p, dir.ptr, e->d_name)) < 0)
            goto out;
        if (!(list[cnt] = lg_strdup(p.ptr))) {
            err = LG_ENOMEM;
            goto out;
        }
        cnt++;
    }
    if (cnt)
        qsort(list, cnt, sizeof(char *), cmp_str);
out:
    if (d)
        closedir(d);
    lg_buf_release(&dir);
    lg_buf_release(&p);
    if (err < 0) {
        lg_evidence_paths_free(list, cnt);
        return err;
    }
    *paths = list;
    *n = cnt;
    return 0;
}

void lg_evidence_paths_free(char **paths, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        lg_free(paths[i]);
    lg_free(paths);
}

int lg_evidence_eval_files(lg_ledger *lg, char *const *paths, size_t n, lg_eval_result ***results)
{
    return lg_evidence_eval_files_opts(lg, paths, n, NULL, results);
}

int lg_evidence_eval_files_opts(lg_ledger *lg, char *const *paths, size_t n, const lg_evidence_opts *opts,
                                lg_eval_result ***results)
{
    lg_evidence_ctx *ev = NULL;
    lg_eval_result **res = NULL;
    size_t i;
    int err;
    *results = NULL;
    if (!(res = lg_calloc(n ? n : 1, sizeof(*res))))
        return LG_ENOMEM;
    if ((err = lg_evidence_new(lg, &ev)) < 0)
        goto out;
    if (opts)
        lg_evidence_set_require_signed(ev, opts->require_signed);
    for (i = 0; i < n; i++) {
        lg_claim_file *f = NULL;
        if ((err = lg_claims_load(paths[i], &f)) < 0)
            goto out;
        err = lg_eval_file(f, lg_evidence_provider, ev, &res[i]);
        lg_claims_free(f);
        if (err < 0)
            goto out;
    }
out:
    lg_evidence_free(ev);
    if (err < 0) {
        for (i = 0; i < n; i++)
            lg_eval_result_free(res[i]);
        lg_free(res);
        return err;
    }
    *results = res;
    return 0;
}

int lg_evidence_find_claim(lg_eval_result *const *results, size_t n, const char *id, const lg_claim_result **result)
{
    size_t i, j;
    for (i = 0; i < n; i++)
        for (j = 0; j < results[i]->nclaims; j++)
            if (strcmp(results[i]->claims[j].id, id) == 0) {
                *result = &results[i]->claims[j];
                return 0;
            }
    return lg_error_set(LG_ENOTFOUND, "no claim '%s' in the claim files", id);
}
