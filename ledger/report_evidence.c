/*
 * report_evidence.c - how a report reads its evidence (report_int.h), shared
 * by the renderer (report.c) and the plots (report_plot.c), so that a plot
 * sees its evidence exactly as a value or table does: directive errors
 * naming the template place, the runs used and the artifacts their numbers
 * came from (for the footnotes and the provenance appendix), rpt_ask (one
 * lg_evidence_provider call for a directive's selection), the conditions of
 * a run from its verified manifest and their grouping by parameter values,
 * and the run a directive resolves to. Both report.c and report_plot.c call
 * this file; it calls neither.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/evidence.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/report_int.h"

/* ---- small helpers ------------------------------------------------------------------ */

int rpt_derr(const rctx *c, const lg_directive *d, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lg_error_set(code, "%s:%d:%d: %s", c->t->path, d->line, d->col, msg);
}

/* Not supported: an error (strict) or a visible rpt_mark. */
int rpt_not_supported(rctx *c, const lg_directive *d, const char *what, const char *why)
{
    if (!c->o->allow_failing)
        return rpt_derr(c, d, LG_ECHECK, "%s: %s (use --allow-failing to render it marked)", what, why);
    c->out->nfailing++;
    return lg_buf_printf(c->cur, "**NOT SUPPORTED** (%s: %s)", what, why);
}

static const char *evidence_name(lg_evidence e)
{
    return e == LG_EVIDENCE_STALE ? "STALE" : e == LG_EVIDENCE_MISSING ? "MISSING" : "FRESH";
}

/* The run's seq and study from its verified manifest. */
static int run_lookup(rctx *c, const char *run_id, long *seq, char **study)
{
    const cJSON *m = NULL;
    const lg_run_info *info = NULL;
    const char *st;
    int err;
    if ((err = lg_evidence_run(c->ev, run_id, &m, &info)) < 0)
        return err;
    *seq = info->seq;
    st = lg_json_str(m, "study");
    return (*study = lg_strdup(st ? st : "")) ? 0 : LG_ENOMEM;
}

/* The verified manifest of a run the provider answered with. */
const cJSON *rpt_run_manifest(rctx *c, const char *run_id, int *err)
{
    const cJSON *m = NULL;
    *err = lg_evidence_run(c->ev, run_id, &m, NULL);
    return *err < 0 ? NULL : m;
}

/* Registers a run as used; *out = its entry. Artifact results.json is noted
 * when the run has one (the values of the index come from the same results). */
int rpt_use_run(rctx *c, const char *run_id, used_run **out)
{
    size_t i;
    used_run *u;
    int err;
    for (i = 0; i < c->nruns; i++)
        if (!strcmp(c->runs[i].run_id, run_id)) {
            *out = &c->runs[i];
            return 0;
        }
    if (!(u = lg_realloc(c->runs, (c->nruns + 1) * sizeof(*u))))
        return LG_ENOMEM;
    c->runs = u;
    u = &c->runs[c->nruns];
    memset(u, 0, sizeof *u);
    snprintf(u->run_id, sizeof u->run_id, "%s", run_id);
    if ((err = run_lookup(c, run_id, &u->seq, &u->study)) < 0) {
        lg_free(u->study);
        return err;
    }
    c->nruns++;
    *out = u;
    return 0;
}

int rpt_use_art(used_run *u, const char *name, const char *sha)
{
    size_t i;
    used_art *a;
    for (i = 0; i < u->narts; i++)
        if (!strcmp(u->arts[i].name, name))
            return 0;
    if (!(a = lg_realloc(u->arts, (u->narts + 1) * sizeof(*a))))
        return LG_ENOMEM;
    u->arts = a;
    if (!(a[u->narts].name = lg_strdup(name)))
        return LG_ENOMEM;
    snprintf(a[u->narts].sha, 65, "%s", sha);
    u->narts++;
    return 0;
}

/* sha256 of a run's artifact by name (from its manifest): 1 found, 0 not, < 0 error. */
int rpt_art_digest(rctx *c, const char *run_id, const char *name, char sha[65])
{
    const cJSON *m, *o;
    int err;
    if (!(m = rpt_run_manifest(c, run_id, &err)))
        return err;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs")) {
        const char *n = lg_json_str(o, "name"), *h = lg_json_str(o, "sha256");
        if (n && h && !strcmp(n, name)) {
            snprintf(sha, 65, "%s", h);
            return 1;
        }
    }
    return 0;
}

/* Marks the numbers of a directive: [^run-SEQ]. */
int rpt_mark(rctx *c, const used_run *u) { return lg_buf_printf(c->cur, "[^run-%ld]", u->seq); }

/* Evidence for a selection: the provider's answer for (study, run, selector + extra filters).
 * The answer's buffers are valid until the next provider call. */
int rpt_ask(rctx *c, const lg_directive *d, const lg_filter *extra, size_t nextra, const char *metric, lg_samples *s)
{
    lg_filter fl[LG_CLAIMS_MAX_FILTERS + LG_TEMPLATE_MAX_BY + 2];
    lg_sample_query q;
    size_t n = 0, i;
    for (i = 0; i < d->sel.nfilters && n < sizeof fl / sizeof fl[0]; i++)
        fl[n++] = d->sel.filters[i];
    for (i = 0; i < nextra && n < sizeof fl / sizeof fl[0]; i++)
        fl[n++] = extra[i];
    memset(&q, 0, sizeof q);
    memset(s, 0, sizeof *s);
    q.claim_id = "report";
    q.sample_name = "report";
    q.study = d->study;
    q.run = d->run;
    q.unit = d->sel.unit;
    q.metric = metric ? metric : d->sel.metric;
    q.filters = fl;
    q.nfilters = n;
    return lg_evidence_provider(c->ev, &q, s);
}

/* ---- conditions and groups ------------------------------------------------------------ */

void rpt_groups_free(group *g, size_t n, size_t nk)
{
    size_t i, k;
    for (i = 0; i < n; i++) {
        for (k = 0; k < nk; k++)
            lg_free(g[i].vals[k]);
        lg_free(g[i].cond);
    }
    lg_free(g);
}

static size_t g_nk; /* key count for qsort (single-threaded use only within one call) */
static int cmp_group(const void *pa, const void *pb)
{
    const group *a = pa, *b = pb;
    size_t k;
    for (k = 0; k < g_nk; k++) {
        int r = lg_evidence_cmp_values(a->vals[k], b->vals[k]);
        if (r)
            return r;
    }
    return 0;
}

/* The value of a condition's parameter (NULL = absent) into *out (lg_free),
 * as text in the index's form (lg_index_param_text). */
int rpt_cond_param(const cJSON *cond, const char *key, char **out)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cond, "params"), key);
    lg_buf t = LG_BUF_INIT;
    int err = 0;
    *out = NULL;
    if (p && !cJSON_IsNull(p)) {
        if ((err = lg_index_param_text(p, &t)) == 0 && !(*out = lg_strdup(t.ptr ? t.ptr : "")))
            err = LG_ENOMEM;
    }
    lg_buf_release(&t);
    return err;
}

/* *match = whether condition cond satisfies every filter of the directive's selection. 0 or < 0. */
int rpt_cond_matches(const cJSON *cond, const lg_directive *d, int *match)
{
    size_t i;
    int err;
    *match = 1;
    for (i = 0; i < d->sel.nfilters && *match; i++) {
        char *v = NULL;
        if ((err = rpt_cond_param(cond, d->sel.filters[i].key, &v)) < 0)
            return err;
        *match = lg_filter_match(&d->sel.filters[i], v);
        lg_free(v);
    }
    return 0;
}

void rpt_shown_value(char *text)
{
    char *end, buf[40];
    double x;
    int prec;
    if (!text || !*text)
        return;
    x = strtod(text, &end);
    if (*end || !isfinite(x))
        return;
    /* only the index's form of a number: a string parameter that reads as
     * one ("007", "1.50") is shown as written */
    snprintf(buf, sizeof buf, "%.17g", x);
    if (strcmp(buf, text) != 0)
        return;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        /* never trade positional text for an exponent: %.1g of 100000 is
         * 1e+05, which reads back but is not how anyone wrote it */
        if (strpbrk(buf, "eE") && !strpbrk(text, "eE"))
            continue;
        if (strtod(buf, NULL) == x) {
            if (strlen(buf) < strlen(text))
                memcpy(text, buf, strlen(buf) + 1);
            return;
        }
    }
}

static int cmp_cond(const void *a, const void *b)
{
    const char *x = lg_json_str(*(const cJSON *const *)a, "id"), *y = lg_json_str(*(const cJSON *const *)b, "id");
    return strcmp(x ? x : "", y ? y : "");
}

/* The conditions of a run's verified manifest, sorted by id. *out freed with lg_free. */
int rpt_run_conditions(rctx *c, const char *run_id, const cJSON ***out, size_t *n)
{
    const cJSON *m, *arr, *it;
    size_t k = 0;
    int err;
    *out = NULL;
    *n = 0;
    if (!(m = rpt_run_manifest(c, run_id, &err)))
        return err;
    arr = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "results"), "conditions");
    if (!(*out = lg_calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(cJSON *))))
        return LG_ENOMEM;
    cJSON_ArrayForEach(it, arr) {
        if (lg_json_str(it, "id"))
            (*out)[k++] = it;
    }
    if (k > 1)
        qsort((void *)*out, k, sizeof(cJSON *), cmp_cond);
    *n = k;
    return 0;
}

/* Conditions of run_id matching the selector's filters, grouped by the values
 * of keys[0..nk). A key a matching condition lacks is LG_EINPUT unless
 * `optional` has its bit set (then the value is ""). Sorted groups in *out. */
int rpt_find_groups(rctx *c, const lg_directive *d, const char *run_id, const char *const *keys, size_t nk,
                    unsigned optional, group **out, size_t *nout)
{
    const cJSON **conds = NULL;
    group *g = NULL;
    size_t n = 0, i, k, ci, nc = 0;
    int err = 0;
    *out = NULL;
    *nout = 0;
    if ((err = rpt_run_conditions(c, run_id, &conds, &nc)) < 0)
        return err;
    for (ci = 0; ci < nc; ci++) {
        const char *cond = lg_json_str(conds[ci], "id");
        char *vals[LG_TEMPLATE_MAX_BY + 1] = {NULL};
        int match;
        if ((err = rpt_cond_matches(conds[ci], d, &match)) < 0)
            goto out;
        if (!match)
            continue;
        for (k = 0; k < nk; k++) {
            if ((err = rpt_cond_param(conds[ci], keys[k], &vals[k])) < 0)
                break;
            if (!vals[k] && (optional >> k & 1u) && !(vals[k] = lg_strdup("")))
                err = LG_ENOMEM;
            else if (!vals[k])
                err = rpt_derr(c, d, LG_EINPUT, "condition '%s' of run %.12s has no parameter '%s'", cond, run_id, keys[k]);
            if (err < 0)
                break;
        }
        if (err == 0) {
            for (i = 0; i < n; i++) {
                for (k = 0; k < nk && !strcmp(g[i].vals[k], vals[k]); k++)
                    ;
                if (k == nk)
                    break;
            }
            if (i == n) {
                group *ng = lg_realloc(g, (n + 1) * sizeof(*ng));
                if (!ng)
                    err = LG_ENOMEM;
                else {
                    g = ng;
                    memset(&g[n], 0, sizeof g[n]);
                    memcpy(g[n].vals, vals, sizeof vals);
                    memset(vals, 0, sizeof vals);
                    if (!(g[n].cond = lg_strdup(cond)))
                        err = LG_ENOMEM;
                    n++;
                }
            }
        }
        for (k = 0; k < nk; k++)
            lg_free(vals[k]);
        if (err < 0)
            goto out;
    }
out:
    lg_free(conds);
    if (err < 0) {
        rpt_groups_free(g, n, nk);
        return err;
    }
    g_nk = nk;
    if (n > 1)
        qsort(g, n, sizeof(*g), cmp_group);
    *out = g;
    *nout = n;
    return 0;
}

/* ---- the run a directive reads ------------------------------------------------------ */

static int sel_text(const lg_directive *d, lg_buf *b)
{
    size_t i;
    int err = lg_buf_printf(b, "%s %s.%s", d->study, lg_unit_name(d->sel.unit), d->sel.metric);
    for (i = 0; i < d->sel.nfilters && err == 0; i++)
        err = lg_buf_printf(b, "%s%s%s%s", i ? " " : " where ", d->sel.filters[i].key, lg_op_name(d->sel.filters[i].op),
                            d->sel.filters[i].value);
    return err;
}

/* Resolves the selection's run; 1 fresh (u set), 0 rendered as not supported, < 0 error. */
int rpt_resolve(rctx *c, const lg_directive *d, const char *metric, used_run **u)
{
    lg_samples s;
    lg_buf what = LG_BUF_INIT;
    int err;
    if ((err = rpt_ask(c, d, NULL, 0, metric, &s)) < 0)
        return err;
    if (s.status != LG_EVIDENCE_FRESH) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", s.reason ? s.reason : "");
        if ((err = sel_text(d, &what)) == 0) {
            char why[700];
            snprintf(why, sizeof why, "evidence %s: %s", evidence_name(s.status), reason);
            err = rpt_not_supported(c, d, what.ptr, why);
        }
        lg_buf_release(&what);
        return err < 0 ? err : 0;
    }
    if ((err = rpt_use_run(c, s.run_id, u)) < 0)
        return err;
    {
        char sha[65];
        int f = rpt_art_digest(c, (*u)->run_id, "results.json", sha);
        if (f < 0)
            return f;
        if (f && (err = rpt_use_art(*u, "results.json", sha)) < 0)
            return err;
    }
    return 1;
}
