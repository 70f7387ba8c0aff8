/*
 * evidence.c - sample provider over the ledger's manifests (see evidence.h).
 *
 * Trust: every value a verdict or a report uses comes from a run's manifest,
 * read from the ledger branch and hashed again here (its SHA-256 must be the
 * run id, lg_ledger_runs), never from the SQLite index. Which run counts
 * (latest ok run of a study, a pinned prefix) is decided on the ledger's own
 * run list and the manifests' kind/study/status, so a deleted or altered
 * `runs` row cannot promote an older or a failed run. The index is still
 * cross-checked, once per run used: if its rows for that run differ from the
 * manifest, the command fails with LG_ECHECK naming the run ("run 'ledger
 * verify'") instead of answering from either side, because a falsified index
 * is tampering that must be seen, not silently routed around.
 *
 * Cost: the run list and each manifest are read and parsed once per context
 * (a cache for the life of the command); the provider is then in-memory.
 * Per-run facts that cost I/O (staleness, the index cross-check, signatures)
 * are computed once per run too.
 */
#include "ledger/evidence.h"

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

#define SPEC_FILE_MAX (16u * 1024 * 1024) /* engine/study.c's limit on a study file */
#define SEARCH_MAX_FILES 4096             /* files looked at when a study file moved */
#define SEARCH_MAX_DEPTH 4
#define SEARCH_MAX_BYTES (64u * 1024 * 1024) /* bytes of candidate files read in one search */

typedef struct {
    int done;
    lg_evidence status;
    char *reason;
} run_fact;

typedef struct {
    lg_run_info info;
    cJSON *m;          /* verified manifest; NULL until loaded */
    int index_checked; /* its index rows matched the manifest */
    run_fact fact[2];  /* [0] latest-run claims, [1] claims pinned to this run */
} run_ent;

struct lg_evidence_ctx {
    lg_ledger *lg;
    sqlite3 *db;
    run_ent *runs; /* the ledger's run list, by seq */
    size_t nruns;
    int listed;
    /* answer buffers, valid until the next call */
    double *values;
    char **labels;
    size_t n, cap;
    char **strs; /* grid values */
    size_t nstrs;
    char run_id[65];
    char engine[64];
    lg_buf reason;
    int require_signed; /* lg_evidence_set_require_signed */
    int keys_loaded;
    lg_keyring keys; /* trusted keys, loaded on first use (trust_keys) */
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
    for (i = 0; i < ev->nstrs; i++)
        lg_free(ev->strs[i]);
    lg_free(ev->strs);
    ev->strs = NULL;
    ev->nstrs = 0;
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
    for (i = 0; i < ev->nruns; i++) {
        cJSON_Delete(ev->runs[i].m);
        lg_free(ev->runs[i].fact[0].reason);
        lg_free(ev->runs[i].fact[1].reason);
    }
    lg_free(ev->runs);
    lg_buf_release(&ev->reason);
    lg_keyring_release(&ev->keys);
    lg_free(ev);
}

static int db_err(sqlite3 *db, const char *what)
{
    return lg_error_set(LG_EIO, "index: %s: %s", what, sqlite3_errmsg(db));
}

/* The trusted keys for --require-signed: the one place they are loaded. */
static int trust_keys(lg_evidence_ctx *ev, const lg_keyring **out)
{
    int err;
    if (!ev->keys_loaded) {
        if ((err = lg_trust_root_load(ev->lg, &ev->keys, NULL)) < 0)
            return err;
        ev->keys_loaded = 1;
    }
    *out = &ev->keys;
    return 0;
}

/* ---- the run list and verified manifests ----------------------------------------- */

static int list_runs(lg_evidence_ctx *ev)
{
    lg_run_info *v = NULL;
    size_t n = 0, i;
    int err;
    if (ev->listed)
        return 0;
    if ((err = lg_ledger_runs(ev->lg, &v, &n)) < 0)
        return err;
    if (!(ev->runs = lg_calloc(n ? n : 1, sizeof(*ev->runs)))) {
        lg_free(v);
        return LG_ENOMEM;
    }
    for (i = 0; i < n; i++)
        ev->runs[i].info = v[i];
    ev->nruns = n;
    ev->listed = 1;
    lg_free(v);
    return 0;
}

/* Loads e's manifest from git: its bytes must hash to the run id and its
 * directory must name that id. */
static int load_run(lg_evidence_ctx *ev, run_ent *e)
{
    lg_buf raw = LG_BUF_INIT;
    char hex[65];
    const char *base;
    long seq;
    char id12[13];
    cJSON *m = NULL;
    int err;
    if (e->m)
        return 0;
    if ((err = lg_ledger_read_blob(ev->lg, &e->info.manifest, LG_MANIFEST_MAX, &raw)) < 0 ||
        (err = lg_sha256_buf(raw.ptr ? raw.ptr : "", raw.len, hex)) < 0)
        goto out;
    base = strrchr(e->info.dir, '/');
    base = base ? base + 1 : e->info.dir;
    /* the bytes must hash to the id the run list gave; a "<seq>-<id12>" directory must name it */
    if (strcmp(hex, e->info.run_id) != 0 ||
        (lg_ledger_parse_dirname(base, &seq, id12) == 0 && strncmp(id12, hex, 12) != 0)) {
        lg_error_clear();
        err = lg_error_set(LG_ECHECK, "%s: manifest.json hashes to %.12s, which its directory does not name: "
                                      "run 'ledger verify'",
                           e->info.dir, hex);
        goto out;
    }
    if (!(m = cJSON_ParseWithLength(raw.ptr ? raw.ptr : "", raw.len))) {
        err = lg_error_set(LG_ECHECK, "%s: manifest.json is not valid JSON: run 'ledger verify'", e->info.dir);
        goto out;
    }
    lg_error_clear(); /* a directory name of another form is not an error here (verify judges it) */
    if ((err = lg_manifest_check(m, e->info.dir)) < 0) {
        cJSON_Delete(m);
        goto out;
    }
    e->m = m;
out:
    lg_buf_release(&raw);
    return err;
}

static int is_evidence_kind(const char *kind)
{
    return kind && (!strcmp(kind, "run") || !strcmp(kind, "record") || !strcmp(kind, "import"));
}

static int str_eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

typedef enum { FIND_OK = 0, FIND_NONE, FIND_FAILED, FIND_AMBIGUOUS } find_state;

/* The run a query names: the pinned prefix among the study's runs, or the
 * latest ok evidence run of the study, both decided on verified manifests. */
static int find_run(lg_evidence_ctx *ev, const char *study, const char *prefix, run_ent **out, find_state *st)
{
    size_t i, plen = prefix ? strlen(prefix) : 0;
    int err;
    *out = NULL;
    *st = FIND_NONE;
    if ((err = list_runs(ev)) < 0)
        return err;
    if (prefix) {
        run_ent *hit = NULL;
        for (i = 0; i < ev->nruns; i++) {
            run_ent *e = &ev->runs[i];
            if (strncmp(e->info.run_id, prefix, plen) != 0)
                continue;
            if ((err = load_run(ev, e)) < 0)
                return err;
            if (!str_eq(lg_json_str(e->m, "study"), study))
                continue;
            if (hit) {
                *st = FIND_AMBIGUOUS;
                return 0;
            }
            hit = e;
        }
        if (hit) {
            *out = hit;
            *st = str_eq(lg_json_str(hit->m, "status"), "ok") ? FIND_OK : FIND_FAILED;
        }
        return 0;
    }
    for (i = ev->nruns; i-- > 0;) {
        run_ent *e = &ev->runs[i];
        if ((err = load_run(ev, e)) < 0)
            return err;
        if (str_eq(lg_json_str(e->m, "study"), study) && str_eq(lg_json_str(e->m, "status"), "ok") &&
            is_evidence_kind(lg_json_str(e->m, "kind"))) {
            *out = e;
            *st = FIND_OK;
            return 0;
        }
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Appends ", "-separated distinct sorted strings. */
static int put_list(lg_buf *b, char **v, size_t n, size_t max)
{
    size_t i, shown = 0;
    int err = 0;
    if (n > 1)
        qsort(v, n, sizeof(char *), cmp_str);
    for (i = 0; i < n && err == 0; i++) {
        if (i && !strcmp(v[i], v[i - 1]))
            continue;
        if (shown == max) {
            err = lg_buf_puts(b, ", ...");
            break;
        }
        err = lg_buf_printf(b, "%s%s", shown ? ", " : "", v[i]);
        shown++;
    }
    return err;
}

/* "(studies with ok runs: a, b)" for a study name that matches nothing. */
static int explain_no_study(lg_evidence_ctx *ev, const char *study)
{
    char **names = NULL;
    size_t n = 0, i;
    int err;
    if ((err = lg_buf_printf(&ev->reason, "no ok run of study %s in the ledger: run 'ledger run' on it", study)) < 0)
        return err;
    if (!(names = lg_calloc(ev->nruns + 1, sizeof(char *))))
        return LG_ENOMEM;
    for (i = 0; i < ev->nruns; i++) {
        run_ent *e = &ev->runs[i];
        if ((err = load_run(ev, e)) < 0)
            goto out;
        if (str_eq(lg_json_str(e->m, "status"), "ok") && is_evidence_kind(lg_json_str(e->m, "kind")) &&
            lg_json_str(e->m, "study"))
            names[n++] = (char *)lg_json_str(e->m, "study");
    }
    if (n == 0)
        err = lg_buf_puts(&ev->reason, " (the ledger has no ok runs)");
    else if ((err = lg_buf_puts(&ev->reason, " (studies with ok runs: ")) == 0 &&
             (err = put_list(&ev->reason, names, n, 20)) == 0)
        err = lg_buf_puts(&ev->reason, ")");
out:
    lg_free(names);
    return err;
}

/* ---- the index, cross-checked against the manifest ------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} strlist;

static void strlist_release(strlist *l)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        lg_free(l->v[i]);
    lg_free(l->v);
    memset(l, 0, sizeof *l);
}

static int strlist_add(strlist *l, char *s)
{
    if (!s)
        return LG_ENOMEM;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char **p = lg_realloc(l->v, cap * sizeof(char *));
        if (!p) {
            lg_free(s);
            return LG_ENOMEM;
        }
        l->v = p;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

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
        return strlist_add(out, lg_strdup_printf("%ld|%s|%s|%s|%s|%s|%s|%s|%s", e->info.seq, nz(lg_json_str(m, "kind")),
                                                 nz(lg_json_str(m, "study")), nz(lg_json_str(m, "study_path")),
                                                 nz(lg_json_str(m, "spec_digest")), nz(lg_json_str(m, "data_digest")),
                                                 nz(lg_json_str(m, "engine_version")), nz(lg_json_str(m, "status")),
                                                 nz(lg_json_str(m, "created"))));
    }
    if (!strcmp(table, "artifacts")) {
        cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(e->m, "outputs")) {
            const cJSON *size = cJSON_GetObjectItemCaseSensitive(o, "size");
            if ((err = strlist_add(out, lg_strdup_printf("%s|%s|%lld|%d", nz(lg_json_str(o, "name")),
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
                    err = strlist_add(out, lg_strdup_printf("%s|%s|%s", nz(cond), p->string, nz(NULL)));
                else if ((err = lg_index_param_text(p, &t)) == 0)
                    err = strlist_add(out, lg_strdup_printf("%s|%s|%s", nz(cond), p->string, t.ptr));
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
                        if ((err = strlist_add(out, lg_strdup_printf("%s|%s|%lld|%s|%s|%s", nz(cond), unames[u],
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
        return db_err(ev->db, "cross-checking a run");
    sqlite3_bind_text(st, 1, e->info.run_id, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && err == 0) {
        char b1[40];
        if (!strcmp(table, "runs"))
            err = strlist_add(out, lg_strdup_printf("%lld|%s|%s|%s|%s|%s|%s|%s|%s", (long long)sqlite3_column_int64(st, 0),
                                                    nz(col(st, 1)), nz(col(st, 2)), nz(col(st, 3)), nz(col(st, 4)),
                                                    nz(col(st, 5)), nz(col(st, 6)), nz(col(st, 7)), nz(col(st, 8))));
        else if (!strcmp(table, "artifacts"))
            err = strlist_add(out, lg_strdup_printf("%s|%s|%lld|%d", nz(col(st, 0)), nz(col(st, 1)),
                                                    (long long)sqlite3_column_int64(st, 2), sqlite3_column_int(st, 3) != 0));
        else if (!strcmp(table, "params"))
            err = strlist_add(out, lg_strdup_printf("%s|%s|%s", nz(col(st, 0)), nz(col(st, 1)), nz(col(st, 2))));
        else {
            char sbt[32] = "null";
            if (sqlite3_column_type(st, 3) != SQLITE_NULL)
                snprintf(sbt, sizeof sbt, "%lld", (long long)sqlite3_column_int64(st, 3));
            err = strlist_add(out, lg_strdup_printf("%s|%s|%lld|%s|%s|%s", nz(col(st, 0)), nz(col(st, 1)),
                                                    (long long)sqlite3_column_int64(st, 2), sbt, nz(col(st, 4)),
                                                    fmt_num(sqlite3_column_double(st, 5),
                                                            sqlite3_column_type(st, 5) == SQLITE_NULL, b1)));
        }
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = db_err(ev->db, "cross-checking a run");
    sqlite3_finalize(st);
    return err;
}

/* The index rows of a run must be exactly what its manifest implies (the
 * tables the evidence and reports could read: runs, params, samples, artifacts). */
static int check_index(lg_evidence_ctx *ev, run_ent *e)
{
    static const char *const tables[] = {"runs", "params", "samples", "artifacts"};
    strlist want = {0}, got = {0};
    size_t t, i;
    int err = 0;
    if (e->index_checked)
        return 0;
    for (t = 0; t < sizeof tables / sizeof tables[0] && err == 0; t++) {
        strlist_release(&want);
        strlist_release(&got);
        if ((err = expected_rows(e, tables[t], &want)) < 0 || (err = actual_rows(ev, e, tables[t], &got)) < 0)
            break;
        if (want.n > 1)
            qsort(want.v, want.n, sizeof(char *), cmp_str);
        if (got.n > 1)
            qsort(got.v, got.n, sizeof(char *), cmp_str);
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
    strlist_release(&want);
    strlist_release(&got);
    if (err == 0)
        e->index_checked = 1;
    return err;
}

/* ---- staleness by meaning ---------------------------------------------------------- */

int lg_spec_canonical_digest(const cJSON *spec, char hex_out[65])
{
    cJSON *dup;
    lg_buf b = LG_BUF_INIT;
    int err;
    if (!cJSON_IsObject(spec))
        return lg_error_set(LG_EINPUT, "a study spec is a JSON object");
    if (!(dup = cJSON_Duplicate(spec, 1)))
        return LG_ENOMEM;
    cJSON_DeleteItemFromObjectCaseSensitive(dup, "description");
    if ((err = lg_json_canonical(dup, &b)) == 0)
        err = lg_sha256_buf(b.ptr ? b.ptr : "", b.len, hex_out);
    cJSON_Delete(dup);
    lg_buf_release(&b);
    return err;
}

/* Reads a study file: 1 with *name and hex filled (canonical digest), 0 when it
 * is not a JSON object (or too big), < 0 on I/O error. *name freed with lg_free. */
static int study_file_digest(const char *path, char **name, char hex[65])
{
    lg_buf b = LG_BUF_INIT;
    cJSON *j = NULL;
    int err;
    *name = NULL;
    if ((err = lg_file_read(path, SPEC_FILE_MAX, &b)) < 0) {
        lg_buf_release(&b);
        if (err == LG_EINPUT || err == LG_ENOTFOUND) {
            lg_error_clear();
            return 0;
        }
        return err;
    }
    j = cJSON_ParseWithLength(b.ptr ? b.ptr : "", b.len);
    lg_buf_release(&b);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return 0;
    }
    if ((err = lg_spec_canonical_digest(j, hex)) < 0) {
        cJSON_Delete(j);
        if (err == LG_EINPUT) { /* NaN, duplicate keys: not a spec we could have run */
            lg_error_clear();
            return 0;
        }
        return err;
    }
    if (lg_json_str(j, "name") && !(*name = lg_strdup(lg_json_str(j, "name"))))
        err = LG_ENOMEM;
    cJSON_Delete(j);
    return err < 0 ? err : 1;
}

typedef struct {
    const char *study;
    const char *want;  /* canonical digest recorded for the run */
    lg_buf same;       /* a file of the study with the recorded meaning */
    lg_buf other;      /* a file of the study whose meaning changed */
    size_t visited;
    uint64_t bytes;    /* read so far (SEARCH_MAX_BYTES) */
} search_ctx;

/* Looks for *.json files declaring the study (by "name") under dir. */
static int search_dir(search_ctx *s, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    lg_buf p = LG_BUF_INIT;
    int err = 0;
    if (!d)
        return 0;
    while ((de = readdir(d)) && err == 0 && !s->same.len && s->visited < SEARCH_MAX_FILES) {
        struct stat sb;
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.')
            continue; /* ., .., .git, .ledger and hidden files */
        if ((err = lg_path_join(&p, dir, de->d_name)) < 0)
            break;
        if (lstat(p.ptr, &sb) != 0)
            continue;
        s->visited++;
        if (S_ISDIR(sb.st_mode)) {
            if (depth < SEARCH_MAX_DEPTH)
                err = search_dir(s, p.ptr, depth + 1);
        } else if (S_ISREG(sb.st_mode) && len > 5 && !strcmp(de->d_name + len - 5, ".json") &&
                   (uint64_t)sb.st_size <= SPEC_FILE_MAX && s->bytes + (uint64_t)sb.st_size <= SEARCH_MAX_BYTES) {
            char *name = NULL, hex[65];
            int rc;
            s->bytes += (uint64_t)sb.st_size;
            rc = study_file_digest(p.ptr, &name, hex);
            if (rc < 0)
                err = rc;
            else if (rc == 1 && name && !strcmp(name, s->study)) {
                lg_buf *dst = !strcmp(hex, s->want) ? &s->same : &s->other;
                if (!dst->len) {
                    lg_buf_clear(dst);
                    err = lg_buf_puts(dst, p.ptr);
                }
            }
            lg_free(name);
        }
    }
    closedir(d);
    lg_buf_release(&p);
    return err;
}

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

static const char *rel(lg_evidence_ctx *ev, const char *p)
{
    const char *root = lg_ledger_root(ev->lg);
    size_t n = strlen(root);
    return !strncmp(p, root, n) && p[n] == '/' ? p + n + 1 : p;
}

/* The canonical spec digest the run recorded: extra.spec_canonical_sha256
 * (runs since it was added), else computed from the spec the manifest embeds;
 * 0 when the run embeds no spec (record runs: raw bytes are compared then). */
static int recorded_meaning(const cJSON *m, char hex[65])
{
    const char *rec = lg_json_str(cJSON_GetObjectItemCaseSensitive(m, "extra"), "spec_canonical_sha256");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(m, "spec");
    int err;
    if (rec && strlen(rec) == 64) {
        snprintf(hex, 65, "%s", rec);
        return 1;
    }
    if (!cJSON_IsObject(spec))
        return 0;
    if ((err = lg_spec_canonical_digest(spec, hex)) < 0)
        return err;
    return 1;
}

/* The study file: still the recorded meaning (found by path, or by study name
 * and digest when it moved)? On FRESH, study_path_now = the file found. */
static int check_study_file(lg_evidence_ctx *ev, const run_ent *e, run_fact *f, lg_buf *study_now)
{
    const cJSON *m = e->m;
    const char *sp = lg_json_str(m, "study_path"), *sd = lg_json_str(m, "spec_digest"), *study = lg_json_str(m, "study");
    char want[65], hex[65];
    lg_buf path = LG_BUF_INIT;
    search_ctx s;
    char *name = NULL;
    int have, rc, err = 0;

    memset(&s, 0, sizeof s);
    lg_buf_clear(study_now);
    if (!sp || !sd)
        return 0;
    if (sp[0] == '/')
        err = lg_buf_puts(&path, sp);
    else
        err = lg_path_join(&path, lg_ledger_root(ev->lg), sp);
    if (err < 0)
        goto out;
    if ((have = recorded_meaning(m, want)) < 0) {
        err = have;
        goto out;
    }
    if (!have) { /* no embedded spec: the file's bytes are the spec */
        if (!lg_path_exists(path.ptr)) {
            err = fact_set(f, LG_EVIDENCE_STALE, "study file %s no longer exists (run %.12s)", sp, e->info.run_id);
            goto out;
        }
        if ((err = lg_sha256_file(path.ptr, hex, NULL)) < 0)
            goto out;
        if (strcmp(hex, sd) != 0)
            err = fact_set(f, LG_EVIDENCE_STALE,
                           "study file %s changed since run %.12s (spec sha256 %.12s, now %.12s): re-run it", sp,
                           e->info.run_id, sd, hex);
        else
            err = lg_buf_puts(study_now, path.ptr);
        goto out;
    }
    /* the recorded path first */
    if ((rc = study_file_digest(path.ptr, &name, hex)) < 0) {
        err = rc;
        goto out;
    }
    if (rc == 1 && name && study && !strcmp(name, study)) {
        if (strcmp(hex, want) == 0)
            err = lg_buf_puts(study_now, path.ptr);
        else
            err = fact_set(f, LG_EVIDENCE_STALE,
                           "study file %s changed since run %.12s (spec meaning sha256 %.12s, now %.12s; the "
                           "description and formatting do not count): re-run it",
                           sp, e->info.run_id, want, hex);
        goto out;
    }
    /* moved or renamed: find the study by name and meaning */
    if (!study) {
        err = fact_set(f, LG_EVIDENCE_STALE, "study file %s no longer exists (run %.12s)", sp, e->info.run_id);
        goto out;
    }
    s.study = study;
    s.want = want;
    {
        const char *slash = strrchr(path.ptr, '/'), *root = lg_ledger_root(ev->lg);
        size_t rl = strlen(root);
        lg_buf dir = LG_BUF_INIT;
        /* the old folder and its children, only inside the repository (a manifest's study_path
         * is not trusted to send us scanning elsewhere) */
        if ((err = lg_buf_printf(&dir, "%.*s", slash ? (int)(slash - path.ptr) : 1, slash ? path.ptr : ".")) == 0 &&
            !strncmp(dir.ptr, root, rl) && dir.ptr[rl] == '/' && !strstr(dir.ptr + rl, "/../") &&
            !strstr(dir.ptr + rl, "/.."))
            err = search_dir(&s, dir.ptr, SEARCH_MAX_DEPTH - 1);
        lg_buf_release(&dir);
        if (err == 0 && !s.same.len && (err = lg_path_join(&dir, lg_ledger_root(ev->lg), "studies")) == 0)
            err = search_dir(&s, dir.ptr, 1);
        if (err == 0 && !s.same.len) /* anywhere in the repository, SEARCH_MAX_DEPTH folders deep */
            err = search_dir(&s, lg_ledger_root(ev->lg), 0);
        lg_buf_release(&dir);
        if (err < 0)
            goto out;
    }
    if (s.same.len)
        err = lg_buf_puts(study_now, s.same.ptr);
    else if (s.other.len)
        err = fact_set(f, LG_EVIDENCE_STALE,
                       "study %s (recorded as %s, now in %s) changed since run %.12s (spec meaning sha256 %.12s): re-run it",
                       study, sp, rel(ev, s.other.ptr), e->info.run_id, want);
    else if (lg_path_exists(path.ptr))
        err = fact_set(f, LG_EVIDENCE_STALE,
                       "study file %s changed since run %.12s (it no longer declares study '%s' as a JSON spec, and no "
                       "other study file with the recorded spec was found): re-run it",
                       sp, e->info.run_id, study);
    else
        err = fact_set(f, LG_EVIDENCE_STALE,
                       "study file %s no longer exists and no study file named '%s' with the recorded spec was found "
                       "(run %.12s)",
                       sp, study, e->info.run_id);
out:
    lg_free(name);
    lg_buf_release(&path);
    lg_buf_release(&s.same);
    lg_buf_release(&s.other);
    return err;
}

/* The data file a run's spec used, resolved like engine/study.c does, relative
 * to the study file (where it is now). 1 found, 0 not a file source. With
 * ood set: the spec's data.ood.path instead (any source). */
static int spec_data_path_of(lg_evidence_ctx *ev, const run_ent *e, const char *study_file, int ood, lg_buf *out)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e->m, "spec"), "data");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(data, "source");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(ood ? cJSON_GetObjectItemCaseSensitive(data, "ood") : data,
                                                         "path");
    const char *slash;
    (void)ev;
    if ((!ood && (!cJSON_IsString(src) || strcmp(src->valuestring, "file") != 0)) || !cJSON_IsString(path) ||
        !study_file[0])
        return 0;
    lg_buf_clear(out);
    if (path->valuestring[0] == '/')
        return lg_buf_puts(out, path->valuestring) < 0 ? LG_ENOMEM : 1;
    slash = strrchr(study_file, '/');
    return lg_buf_printf(out, "%.*s%s%s", slash ? (int)(slash - study_file) : 0, study_file, slash ? "/" : "",
                         path->valuestring) < 0
               ? LG_ENOMEM
               : 1;
}

/* The transcoder target file a run's spec used (data.target.path, or with ood set
 * data.ood.target.path; engine/transcoder.h), resolved like spec_data_path_of.
 * 1 found, 0 none (no target, or a synthetic one). */
static int spec_target_path(const run_ent *e, const char *study_file, int ood, lg_buf *out)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e->m, "spec"), "data");
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(ood ? cJSON_GetObjectItemCaseSensitive(data, "ood") : data, "target"), "path");
    const char *slash;
    if (!cJSON_IsString(path) || !study_file[0])
        return 0;
    lg_buf_clear(out);
    if (path->valuestring[0] == '/')
        return lg_buf_puts(out, path->valuestring) < 0 ? LG_ENOMEM : 1;
    slash = strrchr(study_file, '/');
    return lg_buf_printf(out, "%.*s%s%s", slash ? (int)(slash - study_file) : 0, study_file, slash ? "/" : "",
                         path->valuestring) < 0
               ? LG_ENOMEM
               : 1;
}

static int spec_data_path(lg_evidence_ctx *ev, const run_ent *e, const char *study_file, lg_buf *out)
{
    return spec_data_path_of(ev, e, study_file, 0, out);
}

static int check_run(lg_evidence_ctx *ev, run_ent *e, int pinned, run_fact *f)
{
    lg_buf path = LG_BUF_INIT, study_now = LG_BUF_INIT;
    const char *dd = lg_json_str(e->m, "data_digest");
    char hex[65];
    int err = 0, rc;

    f->status = LG_EVIDENCE_FRESH;
    /* --require-signed: a trusted signature and a chain link, before anything else (sign.h) */
    if (ev->require_signed) {
        const lg_keyring *kr;
        if ((err = trust_keys(ev, &kr)) < 0)
            goto out;
        if ((rc = lg_sign_evidence_check(ev->lg, e->info.run_id, kr, &path)) < 0) {
            err = rc;
            goto out;
        }
        if (rc == 0) {
            err = fact_set(f, LG_EVIDENCE_MISSING, "%s (--require-signed)", path.ptr);
            goto out;
        }
        lg_buf_clear(&path);
    }
    /* A claim pinned to a run is judged on that run's own record: later edits
     * of the study or data files are not its business. */
    if (pinned)
        goto out;
    if ((err = check_study_file(ev, e, f, &study_now)) < 0 || f->status != LG_EVIDENCE_FRESH)
        goto out;
    /* the data file, for file sources */
    if (dd && (rc = spec_data_path(ev, e, study_now.ptr ? study_now.ptr : "", &path)) != 0) {
        if (rc < 0) {
            err = rc;
            goto out;
        }
        if (!lg_path_exists(path.ptr)) {
            err = fact_set(f, LG_EVIDENCE_STALE, "data file %s no longer exists (run %.12s)", path.ptr, e->info.run_id);
            goto out;
        }
        if ((err = lg_sha256_file(path.ptr, hex, NULL)) < 0)
            goto out;
        if (strcmp(hex, dd) != 0) {
            err = fact_set(f, LG_EVIDENCE_STALE, "data file %s changed since run %.12s: re-run the study", path.ptr,
                           e->info.run_id);
            goto out;
        }
    }
    /* the OOD file (data.ood), whose digest the run recorded in results.data.ood.sha256 */
    {
        const cJSON *od = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e->m, "results"), "data"), "ood");
        const char *odd = lg_json_str(od, "sha256");
        if ((rc = spec_data_path_of(ev, e, study_now.ptr ? study_now.ptr : "", 1, &path)) != 0) {
            if (rc < 0) {
                err = rc;
                goto out;
            }
            if (!odd) { /* the engine always records it: a run without it cannot vouch for the file */
                err = fact_set(f, LG_EVIDENCE_STALE, "run %.12s read OOD data file %s but recorded no digest of it",
                               e->info.run_id, path.ptr);
                goto out;
            }
            if (!lg_path_exists(path.ptr)) {
                err = fact_set(f, LG_EVIDENCE_STALE, "OOD data file %s no longer exists (run %.12s)", path.ptr,
                               e->info.run_id);
                goto out;
            }
            if ((err = lg_sha256_file(path.ptr, hex, NULL)) < 0)
                goto out;
            if (strcmp(hex, odd) != 0) {
                err = fact_set(f, LG_EVIDENCE_STALE, "OOD data file %s changed since run %.12s: re-run the study",
                               path.ptr, e->info.run_id);
                goto out;
            }
        }
    }
    /* the transcoder target files: data.target (digest in results.data.target.sha256) and
     * data.ood.target (results.data.ood.target_sha256) */
    for (int ood = 0; ood < 2; ood++) {
        const cJSON *rd = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e->m, "results"), "data");
        const char *tdd = ood ? lg_json_str(cJSON_GetObjectItemCaseSensitive(rd, "ood"), "target_sha256")
                              : lg_json_str(cJSON_GetObjectItemCaseSensitive(rd, "target"), "sha256");
        if ((rc = spec_target_path(e, study_now.ptr ? study_now.ptr : "", ood, &path)) != 0) {
            if (rc < 0) {
                err = rc;
                goto out;
            }
            if (!tdd) {
                err = fact_set(f, LG_EVIDENCE_STALE, "run %.12s read target file %s but recorded no digest of it",
                               e->info.run_id, path.ptr);
                goto out;
            }
            if (!lg_path_exists(path.ptr)) {
                err = fact_set(f, LG_EVIDENCE_STALE, "target file %s no longer exists (run %.12s)", path.ptr,
                               e->info.run_id);
                goto out;
            }
            if ((err = lg_sha256_file(path.ptr, hex, NULL)) < 0)
                goto out;
            if (strcmp(hex, tdd) != 0) {
                err = fact_set(f, LG_EVIDENCE_STALE, "target file %s changed since run %.12s: re-run the study",
                               path.ptr, e->info.run_id);
                goto out;
            }
        }
    }
    /* No artifact-presence check: claims read the manifest's results, never a
     * store object, so outputs kept only in the store (absent on a fresh clone)
     * do not make claims MISSING. Directives that read an artifact check it. */
out:
    lg_buf_release(&path);
    lg_buf_release(&study_now);
    return err;
}

static int run_fact_get(lg_evidence_ctx *ev, run_ent *e, int pinned, const run_fact **out)
{
    run_fact *f = &e->fact[pinned ? 1 : 0];
    int err;
    if (!f->done) {
        if ((err = check_run(ev, e, pinned, f)) < 0) {
            lg_free(f->reason);
            f->reason = NULL;
            f->status = LG_EVIDENCE_FRESH;
            return err;
        }
        f->done = 1;
    }
    *out = f;
    return 0;
}

/* Resolves a query's run and its freshness. On return *e is the run (when
 * one was found); the answer is MISSING/STALE with out->reason set, or FRESH. */
static int resolve(lg_evidence_ctx *ev, const char *study, const char *prefix, run_ent **e, lg_samples *out)
{
    find_state st;
    const run_fact *fact = NULL;
    int err;
    if ((err = find_run(ev, study, prefix, e, &st)) < 0)
        return err;
    out->status = LG_EVIDENCE_MISSING;
    if (st == FIND_AMBIGUOUS) {
        *e = NULL;
        err = lg_buf_printf(&ev->reason, "run prefix '%s' of study %s is ambiguous", prefix, study);
    } else if (st == FIND_FAILED) {
        err = lg_buf_printf(&ev->reason, "pinned run %.12s of study %s did not finish ok (failed runs are not evidence)",
                            (*e)->info.run_id, study);
        *e = NULL;
    } else if (st == FIND_NONE) {
        if (prefix)
            err = lg_buf_printf(&ev->reason, "no run %s of study %s in the ledger", prefix, study);
        else
            err = explain_no_study(ev, study);
    } else {
        if ((err = check_index(ev, *e)) < 0 || (err = run_fact_get(ev, *e, prefix != NULL, &fact)) < 0)
            return err;
        snprintf(ev->run_id, sizeof ev->run_id, "%s", (*e)->info.run_id);
        snprintf(ev->engine, sizeof ev->engine, "%s",
                 lg_json_str((*e)->m, "engine_version") ? lg_json_str((*e)->m, "engine_version") : "");
        out->run_id = ev->run_id;
        out->engine_version = ev->engine[0] ? ev->engine : NULL;
        out->status = fact->status;
        if (fact->status != LG_EVIDENCE_FRESH)
            out->reason = fact->reason;
        return 0;
    }
    if (err < 0)
        return err;
    out->reason = ev->reason.ptr;
    return 0;
}

/* ---- values ------------------------------------------------------------------------- */

static const cJSON *conditions_of(const run_ent *e)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e->m, "results"), "conditions");
}

/* Does the condition satisfy every filter (skipping those on `skip_key`)?
 * 1 yes, 0 no, < 0 error. */
static int condition_matches(const cJSON *cond, const lg_filter *fl, size_t nf, const char *skip_key)
{
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(cond, "params");
    lg_buf t = LG_BUF_INIT;
    size_t i;
    int ok = 1;
    for (i = 0; i < nf && ok; i++) {
        const cJSON *p;
        if (skip_key && !strcmp(fl[i].key, skip_key))
            continue;
        p = cJSON_GetObjectItemCaseSensitive(params, fl[i].key);
        if (!p || cJSON_IsNull(p))
            ok = lg_filter_match(&fl[i], NULL);
        else if (lg_index_param_text(p, &t) < 0)
            ok = LG_ENOMEM;
        else
            ok = lg_filter_match(&fl[i], t.ptr);
    }
    lg_buf_release(&t);
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

/* Conditions of a run sorted by id (the order the index query used). */
static int cmp_cond(const void *a, const void *b)
{
    const char *x = lg_json_str(*(const cJSON *const *)a, "id"), *y = lg_json_str(*(const cJSON *const *)b, "id");
    return strcmp(x ? x : "", y ? y : "");
}

static int sorted_conditions(const run_ent *e, const cJSON ***out, size_t *n)
{
    const cJSON *c, *arr = conditions_of(e);
    size_t k = 0;
    *out = NULL;
    *n = 0;
    if (!(*out = lg_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(cJSON *))))
        return LG_ENOMEM;
    cJSON_ArrayForEach(c, arr)(*out)[k++] = c;
    if (k > 1)
        qsort((void *)*out, k, sizeof(cJSON *), cmp_cond);
    *n = k;
    return 0;
}

typedef struct {
    long long a, b;
    size_t ord;
    double v;
} vrow;

static int cmp_vrow(const void *pa, const void *pb)
{
    const vrow *x = pa, *y = pb;
    if (x->a != y->a)
        return x->a < y->a ? -1 : 1;
    if (x->b != y->b)
        return x->b < y->b ? -1 : 1;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static const char *unit_key(lg_unit u) { return u == LG_UNIT_CELL ? "cells" : u == LG_UNIT_PAIR ? "pairs" : "seeds"; }

/* The values of one condition for (unit, metric), ordered by seed (seed_a, seed_b). */
static int condition_values(lg_evidence_ctx *ev, const cJSON *cond, const lg_sample_query *q)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(cond, unit_key(q->unit)), *it;
    vrow *rows = NULL;
    size_t n = 0, i;
    int err = 0;
    if (!(rows = lg_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*rows))))
        return LG_ENOMEM;
    cJSON_ArrayForEach(it, arr) {
        const cJSON *mv = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(it, "metrics"), q->metric);
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(it, q->unit == LG_UNIT_PAIR ? "seed_a" : "seed");
        const cJSON *sb = cJSON_GetObjectItemCaseSensitive(it, "seed_b");
        if (!mv)
            continue;
        rows[n].a = cJSON_IsNumber(sa) ? (long long)sa->valuedouble : 0;
        rows[n].b = q->unit == LG_UNIT_PAIR && cJSON_IsNumber(sb) ? (long long)sb->valuedouble : 0;
        rows[n].ord = n;
        rows[n].v = cJSON_IsNumber(mv) ? mv->valuedouble : NAN;
        n++;
    }
    if (n > 1)
        qsort(rows, n, sizeof(*rows), cmp_vrow);
    for (i = 0; i < n && err == 0; i++) {
        char label[64];
        if (q->unit == LG_UNIT_PAIR)
            snprintf(label, sizeof label, "%lld-%lld", rows[i].a, rows[i].b);
        else
            snprintf(label, sizeof label, "seed=%lld", rows[i].a);
        err = push_value(ev, rows[i].v, label);
    }
    lg_free(rows);
    return err;
}

/* Numbers compare numerically and before strings; strings by bytes. */
static int cmp_val(const char *a, const char *b)
{
    char *ea, *eb;
    double x = strtod(a, &ea), y = strtod(b, &eb);
    int na = *a && !*ea, nb = *b && !*eb;
    if (na && nb)
        return x < y ? -1 : x > y ? 1 : strcmp(a, b);
    if (na != nb)
        return na ? -1 : 1;
    return strcmp(a, b);
}

static int cmp_val_p(const void *a, const void *b) { return cmp_val(*(char *const *)a, *(char *const *)b); }

/* Distinct values of a parameter over the given conditions into l (sorted:
 * numbers numerically, then strings). */
static int param_values(const cJSON *const *conds, size_t nc, const char *key, strlist *l)
{
    lg_buf t = LG_BUF_INIT;
    size_t i, j;
    int err = 0;
    for (i = 0; i < nc && err == 0; i++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(conds[i], "params"), key);
        if (!p || cJSON_IsNull(p))
            continue;
        if ((err = lg_index_param_text(p, &t)) < 0)
            break;
        for (j = 0; j < l->n && strcmp(l->v[j], t.ptr); j++)
            ;
        if (j == l->n)
            err = strlist_add(l, lg_strdup(t.ptr));
    }
    if (l->n > 1)
        qsort(l->v, l->n, sizeof(char *), cmp_val_p);
    lg_buf_release(&t);
    return err;
}

/* Why no condition matched: the first filter that matches nothing on its own,
 * with the values the run has for its key; else the run's conditions. */
static int explain_no_match(lg_evidence_ctx *ev, const run_ent *e, const cJSON *const *conds, size_t nc,
                            const lg_sample_query *q)
{
    size_t i, j;
    int err;
    if ((err = lg_buf_printf(&ev->reason, "no condition of run %.12s matches the filters of sample '%s'", e->info.run_id,
                             q->sample_name)) < 0)
        return err;
    for (i = 0; i < q->nfilters; i++) {
        strlist vals = {0};
        int any = 0;
        for (j = 0; j < nc && !any; j++)
            if ((any = condition_matches(conds[j], &q->filters[i], 1, NULL)) < 0)
                return any;
        if (any)
            continue;
        if ((err = param_values(conds, nc, q->filters[i].key, &vals)) == 0) {
            if (vals.n == 0) {
                strlist keys = {0};
                for (j = 0; j < nc && err == 0; j++) {
                    const cJSON *p;
                    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(conds[j], "params")) {
                        if ((err = strlist_add(&keys, lg_strdup(p->string))) < 0)
                            break;
                    }
                }
                if (err == 0 && (err = lg_buf_printf(&ev->reason, ": no condition has a parameter '%s' (parameters: ",
                                                     q->filters[i].key)) == 0 &&
                    (err = put_list(&ev->reason, keys.v, keys.n, 40)) == 0)
                    err = lg_buf_puts(&ev->reason, ")");
                strlist_release(&keys);
            } else if ((err = lg_buf_printf(&ev->reason, ": %s%s%s matches nothing (valid values of %s: ",
                                            q->filters[i].key, lg_op_name(q->filters[i].op), q->filters[i].value,
                                            q->filters[i].key)) == 0) {
                for (j = 0; j < vals.n && err == 0; j++)
                    err = lg_buf_printf(&ev->reason, "%s%s", j ? ", " : "", vals.v[j]);
                if (err == 0)
                    err = lg_buf_puts(&ev->reason, ")");
            }
        }
        strlist_release(&vals);
        return err;
    }
    /* every filter matches something, but not all together */
    if ((err = lg_buf_puts(&ev->reason, " together (its conditions: ")) < 0)
        return err;
    for (j = 0; j < nc && err == 0; j++)
        err = lg_buf_printf(&ev->reason, "%s%s", j ? "; " : "", lg_json_str(conds[j], "id") ? lg_json_str(conds[j], "id") : "?");
    return err < 0 ? err : lg_buf_puts(&ev->reason, ")");
}

/* Reason for "no values": the metrics the run has for this unit. */
static int explain_no_metric(lg_evidence_ctx *ev, const run_ent *e, const cJSON *const *conds, size_t nc,
                             const lg_sample_query *q)
{
    strlist names = {0};
    size_t j;
    int err;
    for (j = 0; j < nc; j++) {
        const cJSON *it, *mv;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(conds[j], unit_key(q->unit))) {
            cJSON_ArrayForEach(mv, cJSON_GetObjectItemCaseSensitive(it, "metrics")) {
                if ((err = strlist_add(&names, lg_strdup(mv->string))) < 0)
                    goto out;
            }
        }
    }
    if ((err = lg_buf_printf(&ev->reason, "run %.12s has no %s.%s values (its %s metrics: ", e->info.run_id,
                             lg_unit_name(q->unit), q->metric, lg_unit_name(q->unit))) < 0)
        goto out;
    if (names.n == 0)
        err = lg_buf_puts(&ev->reason, "none)");
    else if ((err = put_list(&ev->reason, names.v, names.n, 64)) == 0)
        err = lg_buf_puts(&ev->reason, ")");
out:
    strlist_release(&names);
    return err;
}

int lg_evidence_provider(void *ctx, const lg_sample_query *q, lg_samples *out)
{
    lg_evidence_ctx *ev = ctx;
    run_ent *e = NULL;
    const cJSON **conds = NULL;
    size_t nc = 0, i;
    int err = 0, n_matched = 0;

    clear_answer(ev);
    if ((err = resolve(ev, q->study, q->run, &e, out)) < 0 || out->status != LG_EVIDENCE_FRESH)
        return err;
    if ((err = sorted_conditions(e, &conds, &nc)) < 0)
        return err;
    for (i = 0; i < nc && err == 0; i++) {
        int m = condition_matches(conds[i], q->filters, q->nfilters, NULL);
        if (m < 0)
            err = m;
        else if (m) {
            n_matched++;
            err = condition_values(ev, conds[i], q);
        }
    }
    if (err == 0 && ev->n == 0) {
        out->status = LG_EVIDENCE_MISSING;
        err = n_matched ? explain_no_metric(ev, e, conds, nc, q) : explain_no_match(ev, e, conds, nc, q);
        out->reason = ev->reason.ptr;
    } else if (err == 0) {
        out->values = ev->values;
        out->labels = (const char *const *)ev->labels;
        out->n = ev->n;
        out->status = LG_EVIDENCE_FRESH;
    }
    lg_free(conds);
    return err;
}

int lg_evidence_grid_provider(void *ctx, const lg_grid_query *q, lg_grid_answer *out)
{
    lg_evidence_ctx *ev = ctx;
    run_ent *e = NULL;
    lg_samples s;
    const cJSON **conds = NULL, **use = NULL;
    size_t nc = 0, nu = 0, i, k;
    strlist vals = {0};
    int err;

    clear_answer(ev);
    memset(&s, 0, sizeof s);
    if ((err = resolve(ev, q->study, q->run, &e, &s)) < 0)
        return err;
    out->run_id = s.run_id;
    out->status = s.status;
    out->reason = s.reason;
    if (s.status != LG_EVIDENCE_FRESH)
        return 0;
    if ((err = sorted_conditions(e, &conds, &nc)) < 0)
        return err;
    if (!(use = lg_calloc(nc + 1, sizeof(*use)))) {
        err = LG_ENOMEM;
        goto out;
    }
    /* the conditions some sample selects (all its filters, so `where k>=4` on every sample
     * limits `by k` to 4 and up; a value only some samples reach shows up as MISSING) */
    for (i = 0; i < nc; i++) {
        int any = q->nsamples == 0;
        for (k = 0; k < q->nsamples && !any; k++)
            if ((any = condition_matches(conds[i], q->samples[k].filters, q->samples[k].nfilters, NULL)) < 0) {
                err = any;
                goto out;
            }
        if (any)
            use[nu++] = conds[i];
    }
    if ((err = param_values(use, nu, q->key, &vals)) < 0)
        goto out;
    if (vals.n == 0) {
        strlist keys = {0};
        out->status = LG_EVIDENCE_MISSING;
        if ((err = lg_buf_printf(&ev->reason, "no condition of run %.12s that the claim's samples select has a parameter "
                                              "'%s' (parameters: ",
                                 e->info.run_id, q->key)) < 0)
            goto out;
        for (i = 0; i < nc && err == 0; i++) {
            const cJSON *p;
            cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(conds[i], "params")) {
                if ((err = strlist_add(&keys, lg_strdup(p->string))) < 0)
                    break;
            }
        }
        if (err == 0 && (err = put_list(&ev->reason, keys.v, keys.n, 40)) == 0)
            err = lg_buf_puts(&ev->reason, ")");
        strlist_release(&keys);
        out->reason = ev->reason.ptr;
        goto out;
    }
    ev->strs = vals.v;
    ev->nstrs = vals.n;
    memset(&vals, 0, sizeof vals);
    out->values = (const char *const *)ev->strs;
    out->n = ev->nstrs;
out:
    strlist_release(&vals);
    lg_free(use);
    lg_free(conds);
    return err;
}

/* ---- verified runs for reports ---------------------------------------------------------- */

int lg_evidence_run(lg_evidence_ctx *ev, const char *run_id, const cJSON **manifest, const lg_run_info **info)
{
    size_t i;
    int err;
    if ((err = list_runs(ev)) < 0)
        return err;
    for (i = 0; i < ev->nruns; i++)
        if (!strcmp(ev->runs[i].info.run_id, run_id)) {
            if ((err = load_run(ev, &ev->runs[i])) < 0 || (err = check_index(ev, &ev->runs[i])) < 0)
                return err;
            if (manifest)
                *manifest = ev->runs[i].m;
            if (info)
                *info = &ev->runs[i].info;
            return 0;
        }
    return lg_error_set(LG_ENOTFOUND, "run %.12s is not in the ledger", run_id);
}

/* ---- files ---------------------------------------------------------------------------- */

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

int lg_evidence_eval_files_ctx(lg_evidence_ctx *ev, char *const *paths, size_t n, lg_eval_result ***results)
{
    lg_eval_result **res = NULL;
    size_t i;
    int err = 0;
    *results = NULL;
    if (!(res = lg_calloc(n ? n : 1, sizeof(*res))))
        return LG_ENOMEM;
    for (i = 0; i < n; i++) {
        lg_claim_file *f = NULL;
        if (lg_is_dir(paths[i])) {
            err = lg_error_set(LG_EINPUT, "%s: is a directory, not a claims file (give the .claims files in it)",
                               paths[i]);
            goto out;
        }
        if ((err = lg_claims_load(paths[i], &f)) < 0)
            goto out;
        err = lg_eval_file_grid(f, lg_evidence_provider, lg_evidence_grid_provider, ev, &res[i]);
        lg_claims_free(f);
        if (err < 0)
            goto out;
    }
out:
    if (err < 0) {
        for (i = 0; i < n; i++)
            lg_eval_result_free(res[i]);
        lg_free(res);
        return err;
    }
    *results = res;
    return 0;
}

int lg_evidence_eval_files_opts(lg_ledger *lg, char *const *paths, size_t n, const lg_evidence_opts *opts,
                                lg_eval_result ***results)
{
    lg_evidence_ctx *ev = NULL;
    int err;
    *results = NULL;
    if ((err = lg_evidence_new(lg, &ev)) < 0)
        return err;
    if (opts)
        lg_evidence_set_require_signed(ev, opts->require_signed);
    err = lg_evidence_eval_files_ctx(ev, paths, n, results);
    lg_evidence_free(ev);
    return err;
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

int lg_evidence_find_claims(lg_eval_result *const *results, size_t n, const char *id, const lg_claim_result ***out,
                            size_t *nout)
{
    size_t i, j, k = 0, len = strlen(id), total = 0;
    const lg_claim_result **v;
    *out = NULL;
    *nout = 0;
    for (i = 0; i < n; i++)
        total += results[i]->nclaims;
    if (!(v = lg_calloc(total + 1, sizeof(*v))))
        return LG_ENOMEM;
    for (i = 0; i < n; i++)
        for (j = 0; j < results[i]->nclaims; j++) {
            const lg_claim_result *c = &results[i]->claims[j];
            if (!strcmp(c->id, id) || (c->grid_key && !strncmp(c->id, id, len) && c->id[len] == '['))
                v[k++] = c;
        }
    if (k == 0) {
        lg_free(v);
        return lg_error_set(LG_ENOTFOUND, "no claim '%s' in the claim files", id);
    }
    *out = v;
    *nout = k;
    return 0;
}
