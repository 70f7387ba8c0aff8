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
 *
 * This file: the context, the run list and verified manifests, the run
 * choice and the providers. The index cross-check is evidence_index.c, the
 * freshness of a run evidence_fresh.c, the claim files evidence_claims.c
 * (evidence_int.h: what they share).
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
#include "ledger/evidence_int.h"

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

typedef enum { FIND_OK = 0, FIND_NONE, FIND_FAILED, FIND_AMBIGUOUS, FIND_UNDERIVABLE } find_state;

/* A run of kind "record" holds numbers computed elsewhere: replay and
 * recompute cannot re-derive them. It must not stand in for a study that
 * `ledger run` (or import) produces: `ledger record --study S --results
 * forged.json` made a FAILing claim PASS, and verify --recompute and the
 * replay loop (kind run) passed (tests/cli/t7906-record-shadows-run.sh).
 * The earlier re-derivable run of the study, or NULL. */
/* Likewise a run of kind "import" (red team 2, t7922): its pairs are
 * recomputed from the imported weights, but nothing ties those weights to the
 * study's training; `ledger import --study S` of two near-copies of one SAE
 * recorded mmcs 1.0 and a FAILing claim about `ledger run`'s study PASSed. So
 * an import never stands in for a study that has an ok run of kind run. */
static run_ent *underivable_shadow(lg_evidence_ctx *ev, size_t latest, const char *study, int *err)
{
    size_t i;
    int rec = str_eq(lg_json_str(ev->runs[latest].m, "kind"), "record");
    *err = 0;
    if (!rec && !str_eq(lg_json_str(ev->runs[latest].m, "kind"), "import"))
        return NULL;
    for (i = latest; i-- > 0;) {
        run_ent *e = &ev->runs[i];
        if ((*err = load_run(ev, e)) < 0)
            return NULL;
        if (str_eq(lg_json_str(e->m, "study"), study) && str_eq(lg_json_str(e->m, "status"), "ok") &&
            (str_eq(lg_json_str(e->m, "kind"), "run") || (rec && str_eq(lg_json_str(e->m, "kind"), "import"))))
            return e;
    }
    return NULL;
}

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
            run_ent *shadowed = underivable_shadow(ev, i, study, &err);
            if (err < 0)
                return err;
            *out = e;
            *st = FIND_OK;
            if (shadowed) {
                *st = FIND_UNDERIVABLE;
                err = lg_buf_printf(&ev->reason,
                                    "the latest ok run %.12s of study %s is of kind %s (%s), but run %.12s of the "
                                    "study came from 'ledger %s': %s cannot stand in for it; %s under another study "
                                    "name or pin a run",
                                    e->info.run_id, study, lg_json_str(e->m, "kind"),
                                    str_eq(lg_json_str(e->m, "kind"), "record") ? "numbers computed elsewhere"
                                                                                 : "SAEs trained elsewhere",
                                    shadowed->info.run_id, lg_json_str(shadowed->m, "kind"),
                                    str_eq(lg_json_str(e->m, "kind"), "record")
                                        ? "a recorded run (it cannot be replayed or recomputed)"
                                        : "an import (its SAEs cannot be replayed from the study)",
                                    str_eq(lg_json_str(e->m, "kind"), "record") ? "record" : "import");
            }
            return err;
        }
    }
    return 0;
}

/* load_run for evidence_fresh.c (evidence_int.h). */
int ev_load_run(lg_evidence_ctx *ev, run_ent *e) { return load_run(ev, e); }

/* Appends ", "-separated distinct sorted strings. */
static int put_list(lg_buf *b, char **v, size_t n, size_t max)
{
    size_t i, shown = 0;
    int err = 0;
    if (n > 1)
        qsort(v, n, sizeof(char *), ev_cmp_str);
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
    } else if (st == FIND_UNDERIVABLE) {
        *e = NULL; /* ev->reason set by find_run */
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
        if ((err = ev_check_index(ev, *e)) < 0 || (err = ev_run_fact_get(ev, *e, prefix != NULL, &fact)) < 0)
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
        size_t cap = lg_grow_cap(ev->cap, ev->n + 1, 64);
        if (lg_resize(&ev->values, cap, sizeof *ev->values) < 0 || lg_resize(&ev->labels, cap, sizeof *ev->labels) < 0)
            return LG_ENOMEM;
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

int lg_evidence_cmp_values(const char *a, const char *b)
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

static int cmp_val_p(const void *a, const void *b) { return lg_evidence_cmp_values(*(char *const *)a, *(char *const *)b); }

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
            err = ev_strlist_add(l, lg_strdup(t.ptr));
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
                        if ((err = ev_strlist_add(&keys, lg_strdup(p->string))) < 0)
                            break;
                    }
                }
                if (err == 0 && (err = lg_buf_printf(&ev->reason, ": no condition has a parameter '%s' (parameters: ",
                                                     q->filters[i].key)) == 0 &&
                    (err = put_list(&ev->reason, keys.v, keys.n, 40)) == 0)
                    err = lg_buf_puts(&ev->reason, ")");
                ev_strlist_release(&keys);
            } else if ((err = lg_buf_printf(&ev->reason, ": %s%s%s matches nothing (valid values of %s: ",
                                            q->filters[i].key, lg_op_name(q->filters[i].op), q->filters[i].value,
                                            q->filters[i].key)) == 0) {
                for (j = 0; j < vals.n && err == 0; j++)
                    err = lg_buf_printf(&ev->reason, "%s%s", j ? ", " : "", vals.v[j]);
                if (err == 0)
                    err = lg_buf_puts(&ev->reason, ")");
            }
        }
        ev_strlist_release(&vals);
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
                if ((err = ev_strlist_add(&names, lg_strdup(mv->string))) < 0)
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
    ev_strlist_release(&names);
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
                if ((err = ev_strlist_add(&keys, lg_strdup(p->string))) < 0)
                    break;
            }
        }
        if (err == 0 && (err = put_list(&ev->reason, keys.v, keys.n, 40)) == 0)
            err = lg_buf_puts(&ev->reason, ")");
        ev_strlist_release(&keys);
        out->reason = ev->reason.ptr;
        goto out;
    }
    ev->strs = vals.v;
    ev->nstrs = vals.n;
    memset(&vals, 0, sizeof vals);
    out->values = (const char *const *)ev->strs;
    out->n = ev->nstrs;
out:
    ev_strlist_release(&vals);
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
            if ((err = load_run(ev, &ev->runs[i])) < 0 || (err = ev_check_index(ev, &ev->runs[i])) < 0)
                return err;
            if (manifest)
                *manifest = ev->runs[i].m;
            if (info)
                *info = &ev->runs[i].info;
            return 0;
        }
    return lg_error_set(LG_ENOTFOUND, "run %.12s is not in the ledger", run_id);
}
