/*
 * report.c - rendering report templates against the ledger, and verifying
 * recorded reports (see report.h).
 *
 * Data flow: every number goes through lg_evidence_provider (run choice,
 * STALE / MISSING, filters); tables and plots first ask it for the whole
 * selection (which names the run and says whether the evidence is fresh),
 * then list the run's conditions from its verified manifest
 * (lg_evidence_run: never from the SQLite index, which is only
 * cross-checked) to find the groups, then ask once per group with the
 * group's parameter values added as '=' filters. Claims are evaluated once,
 * with the same evidence context (one manifest cache per render).
 * Histogram values come from the run's conditions/<cond>/maxcos.npy
 * artifacts, read through the store and re-hashed before use, so a tampered
 * object cannot draw a plot; an artifact kept only in the store and absent
 * locally (a fresh clone) is MISSING with "run 'ledger pull DIR'".
 *
 * The provenance appendix is produced last (it needs every run used): the
 * Markdown is rendered into a head and a tail around the {{provenance}}
 * directive (or the end of the text) and joined at the end.
 *
 * Invariants: the output depends only on the template bytes, the claim
 * files and the ledger's evidence (no clock, no paths outside the repo, no
 * hash-table order), so re-rendering reproduces it byte for byte.
 */
#include "ledger/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifacts/npy.h"
#include "base/sha256.h"
#include "engine/run.h"
#include "gates/eval.h"
#include "gates/stats.h"
#include "ledger/evidence.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/plot_xy.h"
#include "ledger/svg.h"

/* the claims' defaults (gates/stats.h): a report CI and a claim CI agree */
#define CI_LEVEL LG_STATS_DEFAULT_LEVEL
#define CI_RESAMPLES LG_STATS_DEFAULT_RESAMPLES
#define CI_SEED LG_STATS_DEFAULT_SEED

/* An artifact a number or plot came from. */
typedef struct {
    char *name;
    char sha[65];
} used_art;

typedef struct {
    char run_id[65];
    long seq;
    char *study;
    used_art *arts;
    size_t narts;
} used_run;

typedef struct {
    lg_ledger *lg;
    const lg_template *t;
    const lg_report_opts *o;
    lg_report *out;
    lg_evidence_ctx *ev;
    lg_eval_result **cres;    /* claim results, evaluated on first use */
    size_t ncres;
    int claims_loaded;
    used_run *runs;
    size_t nruns;
    lg_buf *cur;              /* where rendering goes: head, then tail after {{provenance}} */
    lg_buf tail;
    int have_prov;
} rctx;

/* ---- small helpers ------------------------------------------------------------------ */

static int derr(const rctx *c, const lg_directive *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int derr(const rctx *c, const lg_directive *d, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lg_error_set(code, "%s:%d:%d: %s", c->t->path, d->line, d->col, msg);
}

/* Not supported: an error (strict) or a visible mark. */
static int not_supported(rctx *c, const lg_directive *d, const char *what, const char *why)
{
    if (!c->o->allow_failing)
        return derr(c, d, LG_ECHECK, "%s: %s (use --allow-failing to render it marked)", what, why);
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
static const cJSON *run_manifest(rctx *c, const char *run_id, int *err)
{
    const cJSON *m = NULL;
    *err = lg_evidence_run(c->ev, run_id, &m, NULL);
    return *err < 0 ? NULL : m;
}

/* Registers a run as used; *out = its entry. Artifact results.json is noted
 * when the run has one (the values of the index come from the same results). */
static int use_run(rctx *c, const char *run_id, used_run **out)
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

static int use_art(used_run *u, const char *name, const char *sha)
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
static int art_digest(rctx *c, const char *run_id, const char *name, char sha[65])
{
    const cJSON *m, *o;
    int err;
    if (!(m = run_manifest(c, run_id, &err)))
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
static int mark(rctx *c, const used_run *u) { return lg_buf_printf(c->cur, "[^run-%ld]", u->seq); }

/* Evidence for a selection: the provider's answer for (study, run, selector + extra filters).
 * The answer's buffers are valid until the next provider call. */
static int ask(rctx *c, const lg_directive *d, const lg_filter *extra, size_t nextra, const char *metric, lg_samples *s)
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

static void eq_filter(lg_filter *f, const char *key, const char *value)
{
    char *end;
    memset(f, 0, sizeof *f);
    f->key = (char *)key;
    f->op = LG_OP_EQ;
    f->value = (char *)value;
    f->num = strtod(value, &end);
    f->is_num = *value && !*end && isfinite(f->num) && strspn(value, "0123456789+-.eE") == strlen(value);
}

static double stat_of(lg_stat s, const double *x, size_t n, double *lo, double *hi)
{
    lg_interval iv;
    *lo = *hi = NAN;
    switch (s) {
    case LG_STAT_MEAN: return lg_stats_mean(x, n);
    case LG_STAT_SD: return lg_stats_sd(x, n);
    case LG_STAT_SE: return lg_stats_se(x, n);
    case LG_STAT_MIN: return n ? lg_stats_min(x, n) : NAN;
    case LG_STAT_MAX: return n ? lg_stats_max(x, n) : NAN;
    case LG_STAT_MEDIAN: return lg_stats_median(x, n);
    case LG_STAT_N: return (double)n;
    case LG_STAT_CI95:
        if (n >= 2 && lg_stats_bootstrap_mean(x, n, CI_LEVEL, CI_RESAMPLES, CI_SEED, LG_BOOT_PERCENTILE, &iv) == 0) {
            *lo = iv.lo;
            *hi = iv.hi;
            return iv.est;
        }
        lg_error_clear();
        return NAN;
    }
    return NAN;
}

static int put_stat(lg_buf *b, const lg_directive *d, lg_stat s, const double *x, size_t n)
{
    char v1[64], v2[64];
    double lo, hi, v = stat_of(s, x, n, &lo, &hi);
    const char *fmt = s == LG_STAT_N ? "%.0f" : d->fmt_set ? d->fmt : "%.3f"; /* n is a count: no decimals */
    if (s == LG_STAT_CI95) {
        lg_template_format(v1, sizeof v1, fmt, lo);
        lg_template_format(v2, sizeof v2, fmt, hi);
        return lg_buf_printf(b, "[%s, %s]", v1, v2);
    }
    lg_template_format(v1, sizeof v1, fmt, v);
    return lg_buf_puts(b, v1);
}

/* ---- conditions and groups ------------------------------------------------------------ */

typedef struct {
    char *vals[LG_TEMPLATE_MAX_BY + 1]; /* group key values */
    char *cond;                         /* a condition of the group (the first) */
} group;

static void groups_free(group *g, size_t n, size_t nk)
{
    size_t i, k;
    for (i = 0; i < n; i++) {
        for (k = 0; k < nk; k++)
            lg_free(g[i].vals[k]);
        lg_free(g[i].cond);
    }
    lg_free(g);
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

static size_t g_nk; /* key count for qsort (single-threaded use only within one call) */
static int cmp_group(const void *pa, const void *pb)
{
    const group *a = pa, *b = pb;
    size_t k;
    for (k = 0; k < g_nk; k++) {
        int r = cmp_val(a->vals[k], b->vals[k]);
        if (r)
            return r;
    }
    return 0;
}

/* The value of a condition's parameter (NULL = absent) into *out (lg_free),
 * as text in the index's form (lg_index_param_text). */
static int cond_param(const cJSON *cond, const char *key, char **out)
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

static int cmp_cond(const void *a, const void *b)
{
    const char *x = lg_json_str(*(const cJSON *const *)a, "id"), *y = lg_json_str(*(const cJSON *const *)b, "id");
    return strcmp(x ? x : "", y ? y : "");
}

/* The conditions of a run's verified manifest, sorted by id. *out freed with lg_free. */
static int run_conditions(rctx *c, const char *run_id, const cJSON ***out, size_t *n)
{
    const cJSON *m, *arr, *it;
    size_t k = 0;
    int err;
    *out = NULL;
    *n = 0;
    if (!(m = run_manifest(c, run_id, &err)))
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
static int find_groups(rctx *c, const lg_directive *d, const char *run_id, const char *const *keys, size_t nk,
                       unsigned optional, group **out, size_t *nout)
{
    const cJSON **conds = NULL;
    group *g = NULL;
    size_t n = 0, i, k, ci, nc = 0;
    int err = 0;
    *out = NULL;
    *nout = 0;
    if ((err = run_conditions(c, run_id, &conds, &nc)) < 0)
        return err;
    for (ci = 0; ci < nc; ci++) {
        const char *cond = lg_json_str(conds[ci], "id");
        char *vals[LG_TEMPLATE_MAX_BY + 1] = {NULL};
        int match = 1;
        for (i = 0; i < d->sel.nfilters && match; i++) {
            char *v = NULL;
            if ((err = cond_param(conds[ci], d->sel.filters[i].key, &v)) < 0)
                goto out;
            match = lg_filter_match(&d->sel.filters[i], v);
            lg_free(v);
        }
        if (!match)
            continue;
        for (k = 0; k < nk; k++) {
            if ((err = cond_param(conds[ci], keys[k], &vals[k])) < 0)
                break;
            if (!vals[k] && (optional >> k & 1u) && !(vals[k] = lg_strdup("")))
                err = LG_ENOMEM;
            else if (!vals[k])
                err = derr(c, d, LG_EINPUT, "condition '%s' of run %.12s has no parameter '%s'", cond, run_id, keys[k]);
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
        groups_free(g, n, nk);
        return err;
    }
    g_nk = nk;
    if (n > 1)
        qsort(g, n, sizeof(*g), cmp_group);
    *out = g;
    *nout = n;
    return 0;
}

/* ---- directives ------------------------------------------------------------------------- */

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
static int resolve(rctx *c, const lg_directive *d, const char *metric, used_run **u)
{
    lg_samples s;
    lg_buf what = LG_BUF_INIT;
    int err;
    if ((err = ask(c, d, NULL, 0, metric, &s)) < 0)
        return err;
    if (s.status != LG_EVIDENCE_FRESH) {
        char reason[512];
        snprintf(reason, sizeof reason, "%s", s.reason ? s.reason : "");
        if ((err = sel_text(d, &what)) == 0) {
            char why[700];
            snprintf(why, sizeof why, "evidence %s: %s", evidence_name(s.status), reason);
            err = not_supported(c, d, what.ptr, why);
        }
        lg_buf_release(&what);
        return err < 0 ? err : 0;
    }
    if ((err = use_run(c, s.run_id, u)) < 0)
        return err;
    {
        char sha[65];
        int f = art_digest(c, (*u)->run_id, "results.json", sha);
        if (f < 0)
            return f;
        if (f && (err = use_art(*u, "results.json", sha)) < 0)
            return err;
    }
    return 1;
}

static int do_value(rctx *c, const lg_directive *d)
{
    lg_samples s;
    used_run *u = NULL;
    int err;
    if ((err = resolve(c, d, NULL, &u)) <= 0)
        return err;
    if ((err = ask(c, d, NULL, 0, NULL, &s)) < 0)
        return err;
    if ((err = put_stat(c->cur, d, d->stats[0], s.values, s.n)) < 0)
        return err;
    return mark(c, u);
}

static int do_table(rctx *c, const lg_directive *d)
{
    group *g = NULL;
    size_t ng = 0, i, k;
    used_run *u = NULL;
    lg_buf *b = c->cur;
    int err;
    if ((err = resolve(c, d, NULL, &u)) <= 0)
        return err;
    if ((err = find_groups(c, d, u->run_id, (const char *const *)d->by, d->nby, 0, &g, &ng)) < 0)
        return err;
    /* header */
    for (k = 0; k < d->nby && err == 0; k++)
        err = lg_buf_printf(b, "| %s ", d->by[k]);
    for (k = 0; k < d->nstats && err == 0; k++)
        err = lg_buf_printf(b, "| %s(%s.%s)%s ", lg_stat_name(d->stats[k]), lg_unit_name(d->sel.unit), d->sel.metric,
                            k == d->nstats - 1 ? "" : "");
    if (err == 0)
        err = lg_buf_puts(b, "|\n");
    for (k = 0; k < d->nby && err == 0; k++)
        err = lg_buf_puts(b, "|---");
    for (k = 0; k < d->nstats && err == 0; k++)
        err = lg_buf_puts(b, "|---:");
    if (err == 0)
        err = lg_buf_puts(b, "|\n");
    for (i = 0; i < ng && err == 0; i++) {
        lg_filter fl[LG_TEMPLATE_MAX_BY];
        lg_samples s;
        for (k = 0; k < d->nby; k++)
            eq_filter(&fl[k], d->by[k], g[i].vals[k]);
        if ((err = ask(c, d, fl, d->nby, NULL, &s)) < 0)
            break;
        for (k = 0; k < d->nby && err == 0; k++)
            err = lg_buf_printf(b, "| %s ", g[i].vals[k]);
        for (k = 0; k < d->nstats && err == 0; k++) {
            if ((err = lg_buf_puts(b, "| ")) == 0 && (err = put_stat(b, d, d->stats[k], s.values, s.n)) == 0)
                err = lg_buf_puts(b, " ");
        }
        if (err == 0)
            err = lg_buf_puts(b, "|\n");
    }
    if (err == 0)
        err = lg_buf_printf(b, "\n*%s.%s of study %s, run %ld", lg_unit_name(d->sel.unit), d->sel.metric, d->study,
                            u->seq);
    if (err == 0)
        err = lg_buf_puts(b, "*");
    if (err == 0)
        err = mark(c, u);
    groups_free(g, ng, d->nby);
    return err;
}

static int add_svg(rctx *c, const char *name, lg_buf *data)
{
    lg_report_file *f = lg_realloc(c->out->svgs, (c->out->nsvgs + 1) * sizeof(*f));
    if (!f)
        return LG_ENOMEM;
    c->out->svgs = f;
    f = &f[c->out->nsvgs];
    if (!(f->name = lg_strdup(name)))
        return LG_ENOMEM;
    f->data = *data;
    memset(data, 0, sizeof *data);
    c->out->nsvgs++;
    return 0;
}

static int put_image(rctx *c, const lg_directive *d, const char *title, const used_run *u)
{
    int err = lg_buf_puts(c->cur, "![");
    const char *s;
    for (s = title; err == 0 && *s; s++) /* keep the alt text from closing the bracket */
        err = (*s == ']' || *s == '[') ? lg_buf_put(c->cur, "\\", 1) == 0 ? lg_buf_put(c->cur, s, 1) : LG_ENOMEM
                                       : lg_buf_put(c->cur, s, 1);
    if (err == 0)
        err = lg_buf_printf(c->cur, "](%s)", d->file);
    return err < 0 ? err : mark(c, u);
}

static int do_plot_param(rctx *c, const lg_directive *d)
{
    const char *keys[2] = {d->by[0], d->series};
    group *g = NULL;
    size_t ng = 0, i, j, nx = 0, ns = 0;
    char **xs = NULL, **ss = NULL;
    double *y = NULL, *lo = NULL, *hi = NULL;
    lg_svg_series *series = NULL;
    lg_buf svg = LG_BUF_INIT, title = LG_BUF_INIT, note = LG_BUF_INIT, ylab = LG_BUF_INIT;
    used_run *u = NULL;
    int err;
    if ((err = resolve(c, d, NULL, &u)) <= 0)
        return err;
    if ((err = find_groups(c, d, u->run_id, keys, 2, 2u, &g, &ng)) < 0)
        goto out;
    if (!(xs = lg_calloc(ng + 1, sizeof(char *))) || !(ss = lg_calloc(ng + 1, sizeof(char *)))) {
        err = LG_ENOMEM;
        goto out;
    }
    /* distinct x and series values, sorted (groups are sorted by x first) */
    for (i = 0; i < ng; i++) {
        for (j = 0; j < nx && strcmp(xs[j], g[i].vals[0]); j++)
            ;
        if (j == nx)
            xs[nx++] = g[i].vals[0];
        for (j = 0; j < ns && strcmp(ss[j], g[i].vals[1]); j++)
            ;
        if (j == ns)
            ss[ns++] = g[i].vals[1];
    }
    for (i = 1; i < ns; i++) /* insertion sort of the series names */
        for (j = i; j > 0 && cmp_val(ss[j - 1], ss[j]) > 0; j--) {
            char *t = ss[j];
            ss[j] = ss[j - 1];
            ss[j - 1] = t;
        }
    if (!(y = lg_calloc(nx * ns + 1, sizeof(double))) || !(lo = lg_calloc(nx * ns + 1, sizeof(double))) ||
        !(hi = lg_calloc(nx * ns + 1, sizeof(double))) || !(series = lg_calloc(ns + 1, sizeof(*series)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (j = 0; j < ns; j++)
        for (i = 0; i < nx; i++) {
            lg_filter fl[2];
            lg_samples s;
            lg_interval iv;
            size_t at = j * nx + i; /* y: [ns, nx] */
            eq_filter(&fl[0], d->by[0], xs[i]);
            eq_filter(&fl[1], d->series, ss[j]);
            if ((err = ask(c, d, fl, ss[j][0] ? 2 : 1, NULL, &s)) < 0)
                goto out;
            y[at] = lo[at] = hi[at] = NAN;
            if (s.status != LG_EVIDENCE_FRESH || s.n == 0)
                continue;
            y[at] = lg_stats_mean(s.values, s.n);
            if (s.n >= 2 &&
                lg_stats_bootstrap_mean(s.values, s.n, CI_LEVEL, CI_RESAMPLES, CI_SEED, LG_BOOT_PERCENTILE, &iv) == 0) {
                lo[at] = iv.lo;
                hi[at] = iv.hi;
            }
            lg_error_clear();
        }
    for (j = 0; j < ns; j++) {
        series[j].name = ss[j][0] ? ss[j] : d->sel.metric;
        series[j].y = y + j * nx;
        series[j].lo = lo + j * nx;
        series[j].hi = hi + j * nx;
    }
    if (d->title)
        err = lg_buf_puts(&title, d->title);
    else
        err = lg_buf_printf(&title, "%s.%s vs %s (%s)", lg_unit_name(d->sel.unit), d->sel.metric, d->by[0], d->study);
    if (err == 0)
        err = lg_buf_printf(&ylab, "mean %s.%s", lg_unit_name(d->sel.unit), d->sel.metric);
    if (err == 0)
        err = lg_buf_printf(&note, "points: mean; bars: 95%% bootstrap CI of the mean (%d resamples, seed %d); run %ld %.12s",
                            CI_RESAMPLES, CI_SEED, u->seq, u->run_id);
    if (err < 0)
        goto out;
    {
        lg_svg_points p;
        memset(&p, 0, sizeof p);
        p.title = title.ptr;
        p.xlabel = d->by[0];
        p.ylabel = ylab.ptr;
        p.xticks = (const char *const *)xs;
        p.nx = nx;
        p.series = series;
        p.nseries = ns;
        p.note = note.ptr;
        if (nx == 0) {
            err = not_supported(c, d, d->file, "no condition matches the filters");
            goto out;
        }
        if ((err = lg_svg_points_plot(&p, &svg)) < 0)
            goto out;
    }
    if ((err = add_svg(c, d->file, &svg)) < 0)
        goto out;
    err = put_image(c, d, title.ptr, u);
out:
    lg_free(xs);
    lg_free(ss);
    lg_free(y);
    lg_free(lo);
    lg_free(hi);
    lg_free(series);
    groups_free(g, ng, 2);
    lg_buf_release(&svg);
    lg_buf_release(&title);
    lg_buf_release(&note);
    lg_buf_release(&ylab);
    return err;
}

/* Reads a run's .npy artifact after checking its bytes against the digest.
 * 1 read, 0 rendered as not supported, < 0 error. */
static int read_artifact_npy(rctx *c, const lg_directive *d, used_run *u, const char *name, float **v, size_t *n)
{
    char sha[65], hex[65];
    lg_buf path = LG_BUF_INIT;
    lg_npy_info info;
    int f, err;
    *v = NULL;
    *n = 0;
    if ((f = art_digest(c, u->run_id, name, sha)) < 0)
        return f;
    if (!f) {
        char why[512];
        snprintf(why, sizeof why, "evidence MISSING: run %.12s has no artifact %s", u->run_id, name);
        return not_supported(c, d, d->file, why);
    }
    if ((err = lg_ledger_artifact_path(c->lg, sha, &path)) < 0 || (err = lg_sha256_file(path.ptr, hex, NULL)) < 0) {
        char why[600];
        if (err == LG_ENOTFOUND) /* kept only in the store (larger than small_output_max) and not here */
            snprintf(why, sizeof why,
                     "evidence MISSING: artifact %s of run %.12s (sha256 %.12s) is not in the local store: "
                     "run 'ledger pull DIR' from a store that has it",
                     name, u->run_id, sha);
        else
            snprintf(why, sizeof why, "evidence MISSING: artifact %s of run %.12s: %s", name, u->run_id, lg_error_msg());
        lg_error_clear();
        lg_buf_release(&path);
        return not_supported(c, d, d->file, why);
    }
    if (strcmp(hex, sha) != 0) {
        char why[512];
        snprintf(why, sizeof why, "evidence MISSING: artifact %s of run %.12s hashes to %.12s, not %.12s", name, u->run_id,
                 hex, sha);
        lg_buf_release(&path);
        return not_supported(c, d, d->file, why);
    }
    err = lg_npy_read_f32(path.ptr, v, &info);
    lg_buf_release(&path);
    if (err < 0)
        return err;
    *n = (size_t)info.shape[0] * (size_t)(info.ndim == 2 ? info.shape[1] : 1);
    if ((err = use_art(u, name, sha)) < 0)
        return err;
    return 1;
}

static int do_plot_hist(rctx *c, const lg_directive *d)
{
    const char *keys[1] = {d->series};
    group *g = NULL;
    size_t ng = 0, i, j, ns = 0;
    float **vals = NULL;      /* per series, concatenated */
    size_t *nv = NULL;
    char **ss = NULL;
    lg_svg_hist_series *hs = NULL;
    lg_buf svg = LG_BUF_INIT, title = LG_BUF_INIT, note = LG_BUF_INIT;
    used_run *u = NULL;
    double vmin = 0;
    const cJSON **conds = NULL;
    size_t nc = 0, ci;
    int err;
    if ((err = resolve(c, d, "mmcs", &u)) <= 0)
        return err;
    if ((err = find_groups(c, d, u->run_id, keys, 1, 1u, &g, &ng)) < 0)
        goto out;
    if (ng == 0) {
        err = not_supported(c, d, d->file, "no condition matches the filters");
        goto out;
    }
    if (!(vals = lg_calloc(ng, sizeof(float *))) || !(nv = lg_calloc(ng, sizeof(size_t))) ||
        !(ss = lg_calloc(ng, sizeof(char *))) || !(hs = lg_calloc(ng, sizeof(*hs)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (j = 0; j < ng; j++)
        ss[ns++] = g[j].vals[0]; /* groups are distinct series values, sorted */
    /* every matching condition, in condition order, into its series */
    if ((err = run_conditions(c, u->run_id, &conds, &nc)) < 0)
        goto out;
    for (ci = 0; ci < nc; ci++) {
        const char *cond = lg_json_str(conds[ci], "id");
        char fid[256], name[320], *sv = NULL;
        float *v = NULL, *grown;
        size_t n = 0;
        int match = 1;
        for (i = 0; i < d->sel.nfilters && match; i++) {
            char *pv = NULL;
            if ((err = cond_param(conds[ci], d->sel.filters[i].key, &pv)) < 0)
                goto out;
            match = lg_filter_match(&d->sel.filters[i], pv);
            lg_free(pv);
        }
        if (!match)
            continue;
        if ((err = cond_param(conds[ci], d->series, &sv)) < 0)
            goto out;
        for (j = 0; j < ns && strcmp(ss[j], sv ? sv : ""); j++)
            ;
        lg_free(sv);
        if (j == ns)
            continue;
        lg_condition_file_id(cond, fid, sizeof fid);
        snprintf(name, sizeof name, "conditions/%s/maxcos.npy", fid);
        if ((err = read_artifact_npy(c, d, u, name, &v, &n)) <= 0)
            goto out; /* 0: marked not supported, nothing more to draw */
        if (!(grown = lg_realloc(vals[j], (nv[j] + n) * sizeof(float)))) {
            lg_free(v);
            err = LG_ENOMEM;
            goto out;
        }
        vals[j] = grown;
        memcpy(vals[j] + nv[j], v, n * sizeof(float));
        nv[j] += n;
        for (i = 0; i < n; i++)
            if (isfinite(v[i]) && v[i] < vmin)
                vmin = v[i];
        lg_free(v);
    }
    for (j = 0; j < ns; j++) {
        hs[j].name = ss[j][0] ? ss[j] : "all";
        hs[j].v = vals[j];
        hs[j].n = nv[j];
    }
    if (d->title)
        err = lg_buf_puts(&title, d->title);
    else
        err = lg_buf_printf(&title, "per-latent max cosine across seeds (%s)", d->study);
    if (err == 0)
        err = lg_buf_printf(&note, "conditions/*/maxcos.npy of run %ld %.12s; bars: share of latents per bin", u->seq,
                            u->run_id);
    if (err < 0)
        goto out;
    {
        lg_svg_hist h;
        memset(&h, 0, sizeof h);
        h.title = title.ptr;
        h.xlabel = "max cosine of a latent to the other seed's dictionary";
        h.ylabel = "fraction of latents";
        h.lo = vmin < 0 ? floor(vmin * 10) / 10 : 0;
        h.hi = 1;
        h.bins = d->bins;
        h.series = hs;
        h.nseries = ns;
        h.note = note.ptr;
        if ((err = lg_svg_hist_plot(&h, &svg)) < 0)
            goto out;
    }
    if ((err = add_svg(c, d->file, &svg)) < 0)
        goto out;
    err = put_image(c, d, title.ptr, u);
out:
    lg_free(conds);
    if (vals)
        for (j = 0; j < ng; j++)
            lg_free(vals[j]);
    lg_free(vals);
    lg_free(nv);
    lg_free(ss);
    lg_free(hs);
    groups_free(g, ng, 1);
    lg_buf_release(&svg);
    lg_buf_release(&title);
    lg_buf_release(&note);
    return err;
}

/* ---- curve and scatter plots: ledger/plot_xy.c draws from what these read --------------- */

typedef struct {
    rctx *c;
    const lg_directive *d;
    used_run *u;
} xy_src;

/* A run's artifact, its bytes hashed against the manifest's digest before use. */
static int xy_read(void *ctx, const char *name, lg_buf *text, char *why, size_t nwhy)
{
    xy_src *x = ctx;
    char sha[65], hex[65];
    lg_buf path = LG_BUF_INIT;
    int f, err;
    if ((f = art_digest(x->c, x->u->run_id, name, sha)) <= 0) {
        if (f == 0)
            snprintf(why, nwhy, "evidence MISSING: run %.12s has no artifact %s", x->u->run_id, name);
        return f;
    }
    if ((err = lg_ledger_artifact_path(x->c->lg, sha, &path)) == 0)
        err = lg_file_read(path.ptr, LG_CURVE_MAX_BYTES, text);
    lg_buf_release(&path);
    if (err < 0) {
        if (err == LG_ENOTFOUND)
            snprintf(why, nwhy, "evidence MISSING: artifact %s of run %.12s (sha256 %.12s) is not in the local store: "
                     "run 'ledger pull DIR' from a store that has it", name, x->u->run_id, sha);
        else
            snprintf(why, nwhy, "evidence MISSING: artifact %s of run %.12s: %s", name, x->u->run_id, lg_error_msg());
        lg_error_clear();
        return 0;
    }
    if ((err = lg_sha256_buf(text->ptr ? text->ptr : "", text->len, hex)) < 0)
        return err;
    if (strcmp(hex, sha) != 0) {
        snprintf(why, nwhy, "evidence MISSING: artifact %s of run %.12s hashes to %.12s, not %.12s", name,
                 x->u->run_id, hex, sha);
        return 0;
    }
    return (err = use_art(x->u, name, sha)) < 0 ? err : 1;
}

/* Samples of the plotted run: the directive's filters + extra, any unit and metric. */
static int xy_samples(void *ctx, lg_unit unit, const char *metric, const lg_filter *extra, size_t nextra,
                      const double **v, size_t *n, char *why, size_t nwhy)
{
    xy_src *x = ctx;
    lg_filter fl[LG_CLAIMS_MAX_FILTERS + 2];
    lg_sample_query q;
    lg_samples s;
    size_t nf = 0, i;
    int err;
    for (i = 0; i < x->d->sel.nfilters && nf < sizeof fl / sizeof fl[0]; i++)
        fl[nf++] = x->d->sel.filters[i];
    for (i = 0; i < nextra && nf < sizeof fl / sizeof fl[0]; i++)
        fl[nf++] = extra[i];
    memset(&q, 0, sizeof q);
    memset(&s, 0, sizeof s);
    q.claim_id = "report";
    q.sample_name = "report";
    q.study = x->d->study;
    q.run = x->u->run_id;
    q.unit = unit;
    q.metric = metric;
    q.filters = fl;
    q.nfilters = nf;
    if ((err = lg_evidence_provider(x->c->ev, &q, &s)) < 0)
        return err;
    if (s.status != LG_EVIDENCE_FRESH) {
        snprintf(why, nwhy, "evidence %s: %s", evidence_name(s.status), s.reason ? s.reason : "");
        return 0;
    }
    *v = s.values;
    *n = s.n;
    return 1;
}

static int do_plot_xy(rctx *c, const lg_directive *d)
{
    used_run *u = NULL;
    const cJSON **conds = NULL;
    size_t nc = 0;
    lg_buf svg = LG_BUF_INIT, title = LG_BUF_INIT;
    char why[1024], label[64];
    xy_src xs;
    lg_plot_xy_source src;
    int err;
    if ((err = resolve(c, d, NULL, &u)) <= 0)
        return err;
    if ((err = run_conditions(c, u->run_id, &conds, &nc)) < 0)
        goto out;
    xs.c = c;
    xs.d = d;
    xs.u = u;
    src.ctx = &xs;
    src.read = xy_read;
    src.samples = xy_samples;
    snprintf(label, sizeof label, "run %ld %.12s", u->seq, u->run_id);
    if ((err = lg_plot_xy_draw(d, conds, nc, &src, label, &svg, &title, why, sizeof why)) == 0)
        err = not_supported(c, d, d->file, why);
    else if (err > 0 && (err = add_svg(c, d->file, &svg)) == 0)
        err = put_image(c, d, title.ptr, u);
out:
    lg_free(conds);
    lg_buf_release(&svg);
    lg_buf_release(&title);
    return err;
}

static int load_claims(rctx *c)
{
    char **paths = NULL;
    size_t n = 0, i;
    int err;
    if (c->claims_loaded)
        return 0;
    if (c->o->nclaim_paths) {
        if (!(paths = lg_calloc(c->o->nclaim_paths, sizeof(char *))))
            return LG_ENOMEM;
        for (i = 0; i < c->o->nclaim_paths; i++)
            if (!(paths[i] = lg_strdup(c->o->claim_paths[i]))) {
                lg_evidence_paths_free(paths, c->o->nclaim_paths);
                return LG_ENOMEM;
            }
        n = c->o->nclaim_paths;
    } else if ((err = lg_evidence_default_claims(c->lg, &paths, &n)) < 0) {
        return err;
    }
    c->out->claim_paths = paths;
    c->out->nclaim_paths = n;
    if ((err = lg_evidence_eval_files_ctx(c->ev, paths, n, &c->cres)) < 0)
        return err;
    c->ncres = n;
    c->claims_loaded = 1;
    return 0;
}

/* One claim result (a claim, or one value of its `by` grid). */
static int put_claim(rctx *c, const lg_directive *d, const lg_claim_result *cr)
{
    lg_report_claim *rc;
    size_t i;
    int err;
    if (!(rc = lg_realloc(c->out->claims, (c->out->nclaims + 1) * sizeof(*rc))))
        return LG_ENOMEM;
    c->out->claims = rc;
    rc = &rc[c->out->nclaims];
    if (!(rc->id = lg_strdup(cr->id)))
        return LG_ENOMEM;
    rc->verdict = lg_verdict_name(cr->verdict);
    rc->ok = lg_verdict_ok(cr->verdict);
    c->out->nclaims++;
    if (!rc->ok) {
        char what[300], why[900];
        snprintf(what, sizeof what, "claim %s is %s", cr->id, lg_verdict_name(cr->verdict));
        snprintf(why, sizeof why, "%s", cr->reason ? cr->reason : "a requirement does not hold");
        if ((err = not_supported(c, d, what, why)) < 0)
            return err;
        if ((err = lg_buf_printf(c->cur, " ~~%s~~", cr->says)) < 0)
            return err;
    } else {
        if ((err = lg_buf_printf(c->cur, "**%s**%s %s (`%s`:", lg_verdict_name(cr->verdict),
                                 cr->expect_fail ? " (documented negative result)" : "", cr->says, cr->id)) < 0)
            return err;
        for (i = 0; i < cr->nreqs; i++) {
            const lg_req_result *r = &cr->reqs[i];
            char v[64];
            snprintf(v, sizeof v, "%.4g", r->value);
            if ((err = lg_buf_printf(c->cur, "%s `%s` %s%s, %s", i ? ";" : "", r->text,
                                     r->corrected ? "Holm-adjusted p = " : "= ", v, r->holds ? "holds" : "does not hold")) < 0)
                return err;
        }
        for (i = 0; i < cr->ngates; i++) /* `requires`: an ok claim's gates all hold */
            if ((err = lg_buf_printf(c->cur, "%s`%s`", i ? ", " : "; gates ok: ", cr->gates[i])) < 0)
                return err;
        if ((err = lg_buf_puts(c->cur, ")")) < 0)
            return err;
    }
    if (cr->pinned_run && (err = lg_buf_printf(c->cur, " (pinned to run %s)", cr->pinned_run)) < 0)
        return err;
    for (i = 0; i < cr->nrun_ids; i++) {
        used_run *u = NULL;
        if ((err = use_run(c, cr->run_ids[i], &u)) < 0)
            return err;
        {
            char sha[65];
            int f = art_digest(c, u->run_id, "results.json", sha);
            if (f < 0)
                return f;
            if (f && (err = use_art(u, "results.json", sha)) < 0)
                return err;
        }
        if ((err = mark(c, u)) < 0)
            return err;
    }
    return 0;
}

static int do_claim(rctx *c, const lg_directive *d)
{
    const lg_claim_result **crs = NULL;
    size_t n = 0, i;
    int err;
    if ((err = load_claims(c)) < 0)
        return err;
    if (lg_evidence_find_claims(c->cres, c->ncres, d->claim_id, &crs, &n) < 0)
        return derr(c, d, LG_EINPUT, "no claim '%s' in %s", d->claim_id,
                    c->o->nclaim_paths ? "the claim files given" : "claims/*.claims");
    /* a `by` claim renders every value of its grid, one per line */
    for (i = 0; i < n && err == 0; i++)
        if ((err = i ? lg_buf_puts(c->cur, "\n\n") : 0) == 0)
            err = put_claim(c, d, crs[i]);
    lg_free(crs);
    return err;
}

/* ---- provenance ------------------------------------------------------------------------------ */

static const char *str_or(const cJSON *m, const char *key, const char *dflt)
{
    const char *t = lg_json_str(m, key);
    return t && *t ? t : dflt;
}

static int provenance(rctx *c, lg_buf *b)
{
    size_t i, k;
    int err = 0;
    if (c->nruns == 0)
        return lg_buf_puts(b, "*No evidence was used.*\n");
    if ((err = lg_buf_puts(b, "| run | id | study | kind | created | engine | backend / device | spec | data |\n"
                              "|---:|---|---|---|---|---|---|---|---|\n")) < 0)
        return err;
    for (i = 0; i < c->nruns && err == 0; i++) {
        const cJSON *m = run_manifest(c, c->runs[i].run_id, &err);
        if (!m)
            break;
        err = lg_buf_printf(b, "| %ld | `%.12s` | %s | %s | %s | %s | %s", c->runs[i].seq, c->runs[i].run_id,
                            str_or(m, "study", "-"), str_or(m, "kind", "-"), str_or(m, "created", "-"),
                            str_or(m, "engine_version", "-"), str_or(m, "backend", "-"));
        if (err == 0 && lg_json_str(m, "device"))
            err = lg_buf_printf(b, " (%s)", str_or(m, "device", ""));
        if (err == 0)
            err = lg_buf_puts(b, " | ");
        if (err == 0 && lg_json_str(m, "study_path"))
            err = lg_buf_printf(b, "`%s` ", str_or(m, "study_path", ""));
        if (err == 0)
            err = lg_json_str(m, "spec_digest") ? lg_buf_printf(b, "`%.12s`", str_or(m, "spec_digest", ""))
                                                : lg_buf_puts(b, "-");
        if (err == 0)
            err = lg_json_str(m, "data_digest") ? lg_buf_printf(b, " | `%.12s` |\n", str_or(m, "data_digest", ""))
                                                : lg_buf_puts(b, " | - |\n");
    }
    if (err < 0)
        return err;
    if (c->out->nclaims) {
        if ((err = lg_buf_puts(b, "\nClaims shown (evaluated from ")) < 0)
            return err;
        for (i = 0; i < c->out->nclaim_paths && err == 0; i++) {
            const char *p = c->out->claim_paths[i], *root = lg_ledger_root(c->lg);
            size_t rl = strlen(root);
            if (!strncmp(p, root, rl) && p[rl] == '/')
                p += rl + 1;
            err = lg_buf_printf(b, "%s`%s`", i ? ", " : "", p);
        }
        if (err == 0)
            err = lg_buf_puts(b, "): ");
        for (i = 0; i < c->out->nclaims && err == 0; i++)
            err = lg_buf_printf(b, "%s`%s` %s", i ? ", " : "", c->out->claims[i].id, c->out->claims[i].verdict);
        if (err == 0)
            err = lg_buf_puts(b, ".\n");
    }
    if (err == 0)
        err = lg_buf_puts(b, "\nEach run id is the SHA-256 of the run's manifest, which holds the results every "
                             "number and claim above was computed from; plots name the artifacts they read.\n\n");
    for (i = 0; i < c->nruns && err == 0; i++) {
        const used_run *u = &c->runs[i];
        err = lg_buf_printf(b, "[^run-%ld]: Run %ld of study %s, manifest SHA-256 `%s`", u->seq, u->seq, u->study,
                            u->run_id);
        for (k = 0; k < u->narts && err == 0; k++)
            err = lg_buf_printf(b, "%s `%s` SHA-256 `%s`", k ? ";" : ", artifacts:", u->arts[k].name, u->arts[k].sha);
        if (err == 0)
            err = lg_buf_puts(b, ".\n");
    }
    return err;
}

/* ---- the walk ---------------------------------------------------------------------------------- */

static int on_piece(void *ctx, const char *lit, size_t len, const lg_directive *d)
{
    rctx *c = ctx;
    if (!d)
        return lg_buf_put(c->cur, lit, len);
    switch (d->kind) {
    case LG_DIR_CLAIM: return do_claim(c, d);
    case LG_DIR_VALUE: return do_value(c, d);
    case LG_DIR_TABLE: return do_table(c, d);
    case LG_DIR_PLOT:
        if (d->plot == LG_PLOT_CURVE || d->plot == LG_PLOT_SCATTER)
            return do_plot_xy(c, d);
        return d->plot == LG_PLOT_HIST ? do_plot_hist(c, d) : do_plot_param(c, d);
    case LG_DIR_PROVENANCE:
        if (c->have_prov)
            return derr(c, d, LG_EINPUT, "a second {{provenance}}");
        c->have_prov = 1;
        c->cur = &c->tail;
        return 0;
    }
    return lg_error_set(LG_EINTERNAL, "unknown directive kind");
}

void lg_report_release(lg_report *r)
{
    size_t i;
    if (!r)
        return;
    lg_buf_release(&r->md);
    for (i = 0; i < r->nsvgs; i++) {
        lg_free(r->svgs[i].name);
        lg_buf_release(&r->svgs[i].data);
    }
    lg_free(r->svgs);
    for (i = 0; i < r->nruns; i++)
        lg_free(r->runs[i].study);
    lg_free(r->runs);
    for (i = 0; i < r->nclaims; i++)
        lg_free(r->claims[i].id);
    lg_free(r->claims);
    lg_evidence_paths_free(r->claim_paths, r->nclaim_paths);
    memset(r, 0, sizeof *r);
}

int lg_report_render(lg_ledger *lg, const lg_template *t, const lg_report_opts *o, lg_report *out)
{
    static const lg_report_opts dflt = {0, NULL, 0};
    rctx c;
    size_t i, k;
    int err;
    memset(out, 0, sizeof *out);
    memset(&c, 0, sizeof c);
    c.lg = lg;
    c.t = t;
    c.o = o ? o : &dflt;
    c.out = out;
    c.cur = &out->md;
    lg_buf_init(&out->md, 0);
    lg_buf_init(&c.tail, 0);
    if ((err = lg_evidence_new(lg, &c.ev)) < 0)
        goto out;
    if ((err = lg_template_walk(t, on_piece, &c)) < 0)
        goto out;
    /* provenance: in place, or appended as a section */
    if (!c.have_prov && c.nruns) {
        if (out->md.len && out->md.ptr[out->md.len - 1] != '\n' && (err = lg_buf_puts(&out->md, "\n")) < 0)
            goto out;
        if ((err = lg_buf_puts(&out->md, "\n## Provenance\n\n")) < 0)
            goto out;
    }
    if ((c.have_prov || c.nruns) && (err = provenance(&c, &out->md)) < 0)
        goto out;
    if (c.tail.len && (err = lg_buf_put(&out->md, c.tail.ptr, c.tail.len)) < 0)
        goto out;
    if (!out->md.ptr && (err = lg_buf_puts(&out->md, "")) < 0)
        goto out;
    if (c.nruns && !(out->runs = lg_calloc(c.nruns, sizeof(*out->runs)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < c.nruns; i++) {
        snprintf(out->runs[i].run_id, 65, "%s", c.runs[i].run_id);
        out->runs[i].seq = c.runs[i].seq;
        out->runs[i].study = c.runs[i].study;
        c.runs[i].study = NULL;
        out->nruns++;
    }
out:
    for (i = 0; i < c.nruns; i++) {
        lg_free(c.runs[i].study);
        for (k = 0; k < c.runs[i].narts; k++)
            lg_free(c.runs[i].arts[k].name);
        lg_free(c.runs[i].arts);
    }
    lg_free(c.runs);
    for (i = 0; i < c.ncres; i++)
        lg_eval_result_free(c.cres[i]);
    lg_free(c.cres);
    lg_evidence_free(c.ev);
    lg_buf_release(&c.tail);
    return err;
}

/* ---- recording and verifying ----------------------------------------------------------------------- */

/* path relative to the repository root when inside it */
static const char *rel_to_root(lg_ledger *lg, const char *p)
{
    const char *root = lg_ledger_root(lg);
    size_t rl = strlen(root);
    if (!strncmp(p, root, rl) && p[rl] == '/')
        return p + rl + 1;
    return p;
}

cJSON *lg_report_extra(lg_ledger *lg, const lg_report *r, const char *template_path, const char *template_output,
                       const char *output, const lg_report_opts *o)
{
    cJSON *e = cJSON_CreateObject(), *a;
    size_t i;
    if (!e || !cJSON_AddNumberToObject(e, "report_format", 1) ||
        !cJSON_AddStringToObject(e, "template", rel_to_root(lg, template_path)) ||
        !cJSON_AddStringToObject(e, "template_output", template_output) || !cJSON_AddStringToObject(e, "output", output) ||
        !cJSON_AddBoolToObject(e, "allow_failing", o && o->allow_failing) ||
        !cJSON_AddNumberToObject(e, "not_supported", (double)r->nfailing))
        goto fail;
    if (!(a = cJSON_AddArrayToObject(e, "claim_files")))
        goto fail;
    for (i = 0; i < r->nclaim_paths; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(rel_to_root(lg, r->claim_paths[i]))))
            goto fail;
    if (!(a = cJSON_AddArrayToObject(e, "runs")))
        goto fail;
    for (i = 0; i < r->nruns; i++) {
        cJSON *o1 = cJSON_CreateObject();
        if (!o1 || !cJSON_AddItemToArray(a, o1) || !cJSON_AddStringToObject(o1, "run_id", r->runs[i].run_id) ||
            !cJSON_AddNumberToObject(o1, "seq", (double)r->runs[i].seq) ||
            !cJSON_AddStringToObject(o1, "study", r->runs[i].study))
            goto fail;
    }
    if (!(a = cJSON_AddArrayToObject(e, "claims")))
        goto fail;
    for (i = 0; i < r->nclaims; i++) {
        cJSON *o1 = cJSON_CreateObject();
        if (!o1 || !cJSON_AddItemToArray(a, o1) || !cJSON_AddStringToObject(o1, "id", r->claims[i].id) ||
            !cJSON_AddStringToObject(o1, "verdict", r->claims[i].verdict))
            goto fail;
    }
    if (!(a = cJSON_AddArrayToObject(e, "svgs")))
        goto fail;
    for (i = 0; i < r->nsvgs; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(r->svgs[i].name)))
            goto fail;
    return e;
fail:
    cJSON_Delete(e);
    return NULL;
}

/* sha256 of the output `name` in a manifest, or NULL */
static const char *output_sha(const cJSON *m, const char *name)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs"))
    {
        const char *n = lg_json_str(o, "name");
        if (n && !strcmp(n, name))
            return lg_json_str(o, "sha256");
    }
    return NULL;
}

/* First differing line of two texts (1-based), for the message. */
static long first_diff_line(const char *a, size_t na, const char *b, size_t nb)
{
    size_t i;
    long line = 1;
    for (i = 0; i < na && i < nb && a[i] == b[i]; i++)
        if (a[i] == '\n')
            line++;
    return line;
}

typedef struct {
    lg_ledger *lg;
    lg_problems *ps;
    /* latest report per template: [n] */
    char **keys;
    long *seqs;
    char (*ids)[65];
    size_t n;
} vctx;

static int collect_reports(void *ctx, const lg_run_info *info, const cJSON *m)
{
    vctx *v = ctx;
    const char *kind = lg_json_str(m, "kind"), *status = lg_json_str(m, "status");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(m, "extra");
    const char *tmpl = lg_json_str(extra, "template");
    size_t i;
    if (!kind || strcmp(kind, "report") || !status || strcmp(status, "ok") || !tmpl)
        return 0;
    for (i = 0; i < v->n; i++)
        if (!strcmp(v->keys[i], tmpl))
            break;
    if (i == v->n) {
        char **k = lg_realloc(v->keys, (v->n + 1) * sizeof(char *));
        long *s;
        char(*ids)[65];
        if (!k)
            return LG_ENOMEM;
        v->keys = k;
        if (!(s = lg_realloc(v->seqs, (v->n + 1) * sizeof(long))))
            return LG_ENOMEM;
        v->seqs = s;
        if (!(ids = lg_realloc(v->ids, (v->n + 1) * sizeof(*ids))))
            return LG_ENOMEM;
        v->ids = ids;
        if (!(v->keys[v->n] = lg_strdup(tmpl)))
            return LG_ENOMEM;
        v->n++;
    }
    v->seqs[i] = info->seq;
    snprintf(v->ids[i], 65, "%s", info->run_id);
    return 0;
}

static int verify_one(lg_ledger *lg, lg_problems *ps, const char *run_id, long seq)
{
    cJSON *m = NULL;
    const cJSON *extra, *cf, *it;
    const char *tname, *output, *tsha;
    char subject[64], **cpaths = NULL, hex[65];
    size_t ncp = 0, i;
    lg_buf tb = LG_BUF_INIT, path = LG_BUF_INIT, p = LG_BUF_INIT;
    lg_template *t = NULL;
    lg_report r;
    lg_report_opts o;
    int err;

    memset(&r, 0, sizeof r);
    snprintf(subject, sizeof subject, "run %ld-%.12s", seq, run_id);
    if ((err = lg_ledger_load_manifest(lg, run_id, &m, NULL, NULL)) < 0)
        goto out;
    extra = cJSON_GetObjectItemCaseSensitive(m, "extra");
    tname = lg_json_str(extra, "template_output");
    output = lg_json_str(extra, "output");
    if (!tname || !output || !(tsha = output_sha(m, tname))) {
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject, "report run lacks its template or output names");
        goto out;
    }
    if ((err = lg_ledger_artifact_path(lg, tsha, &path)) < 0 || (err = lg_file_read(path.ptr, LG_TEMPLATE_MAX_FILE, &tb)) < 0) {
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject, "template %s: %s", tname, lg_error_msg());
        goto out;
    }
    if ((err = lg_sha256_buf(tb.ptr ? tb.ptr : "", tb.len, hex)) < 0)
        goto out;
    if (strcmp(hex, tsha) != 0) {
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject, "template %s hashes to %.12s, not %.12s", tname, hex,
                              tsha);
        goto out;
    }
    {
        const char *tp = lg_json_str(extra, "template");
        if ((err = lg_template_parse(tp ? tp : tname, tb.ptr ? tb.ptr : "", tb.len, &t)) < 0) {
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject, "%s", lg_error_msg());
            goto out;
        }
    }
    cf = cJSON_GetObjectItemCaseSensitive(extra, "claim_files");
    if (cJSON_GetArraySize(cf) > 0) {
        if (!(cpaths = lg_calloc((size_t)cJSON_GetArraySize(cf), sizeof(char *)))) {
            err = LG_ENOMEM;
            goto out;
        }
        cJSON_ArrayForEach(it, cf)
        {
            if (!cJSON_IsString(it))
                continue;
            if (it->valuestring[0] == '/')
            {
                lg_buf_clear(&p);
                err = lg_buf_puts(&p, it->valuestring);
            }
            else
                err = lg_path_join(&p, lg_ledger_root(lg), it->valuestring);
            if (err < 0 || !(cpaths[ncp] = lg_strdup(p.ptr))) {
                err = err < 0 ? err : LG_ENOMEM;
                goto out;
            }
            ncp++;
        }
    }
    memset(&o, 0, sizeof o);
    o.allow_failing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(extra, "allow_failing"));
    o.claim_paths = cpaths;
    o.nclaim_paths = ncp;
    /* a claim file named in the report but gone now: say so (not the default list) */
    for (i = 0; i < ncp; i++)
        if (!lg_path_exists(cpaths[i])) {
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject,
                                  "claim file %s used by the report no longer exists", rel_to_root(lg, cpaths[i]));
            goto out;
        }
    if ((err = lg_report_render(lg, t, &o, &r)) < 0) {
        if (err == LG_ENOMEM)
            goto out;
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject,
                              "%s no longer renders from the current evidence: %s", output, lg_error_msg());
        goto out;
    }
    /* compare: the Markdown, every plot, and the set of plots */
    {
        const char *rsha = output_sha(m, output);
        char got[65];
        if ((err = lg_sha256_buf(r.md.ptr, r.md.len, got)) < 0)
            goto out;
        if (!rsha || strcmp(rsha, got) != 0) {
            lg_buf old = LG_BUF_INIT, op = LG_BUF_INIT;
            char where[64] = "";
            if (rsha && lg_ledger_artifact_path(lg, rsha, &op) == 0 && lg_file_read(op.ptr, 0, &old) == 0)
                snprintf(where, sizeof where, " (first difference at line %ld)",
                         first_diff_line(old.ptr ? old.ptr : "", old.len, r.md.ptr, r.md.len));
            lg_error_clear();
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject,
                                  "%s no longer matches the evidence: re-rendered sha256 %.12s, recorded %.12s%s", output,
                                  got, rsha ? rsha : "(none)", where);
            lg_buf_release(&old);
            lg_buf_release(&op);
            if (err < 0)
                goto out;
        }
        for (i = 0; i < r.nsvgs; i++) {
            const char *s = output_sha(m, r.svgs[i].name);
            if ((err = lg_sha256_buf(r.svgs[i].data.ptr, r.svgs[i].data.len, got)) < 0)
                goto out;
            if (!s || strcmp(s, got) != 0 ? (err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject,
                                                                  "plot %s no longer matches the evidence (re-rendered "
                                                                  "sha256 %.12s, recorded %.12s)",
                                                                  r.svgs[i].name, got, s ? s : "(none)")) < 0
                                           : 0)
                goto out;
        }
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(extra, "svgs"))
        {
            int found = 0;
            for (i = 0; i < r.nsvgs; i++)
                if (cJSON_IsString(it) && !strcmp(r.svgs[i].name, it->valuestring))
                    found = 1;
            if (!found && (err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject,
                                                 "plot %s is no longer produced by the template",
                                                 cJSON_IsString(it) ? it->valuestring : "?")) < 0)
                goto out;
        }
    }
    err = 0;
out:
    if (err < 0 && err != LG_ENOMEM) {
        /* anything unexpected becomes a problem of this report, not a failure of verify */
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject, "cannot verify: %s", lg_error_msg());
    }
    lg_report_release(&r);
    lg_template_free(t);
    lg_evidence_paths_free(cpaths, ncp);
    lg_buf_release(&tb);
    lg_buf_release(&path);
    lg_buf_release(&p);
    cJSON_Delete(m);
    return err;
}

int lg_report_verify_all(lg_ledger *lg, lg_problems *out)
{
    vctx v;
    size_t i;
    int err;
    memset(&v, 0, sizeof v);
    v.lg = lg;
    v.ps = out;
    if ((err = lg_ledger_foreach_run(lg, collect_reports, &v)) < 0)
        goto out;
    for (i = 0; i < v.n; i++)
        if ((err = verify_one(lg, out, v.ids[i], v.seqs[i])) < 0)
            goto out;
out:
    for (i = 0; i < v.n; i++)
        lg_free(v.keys[i]);
    lg_free(v.keys);
    lg_free(v.seqs);
    lg_free(v.ids);
    return err;
}
