/*
 * report_plot.c - the {{plot ...}} directives of a report (see report.h):
 * SVG line plots of a metric's bootstrap CI per parameter value
 * (rpt_plot_param) and histograms of stored per-latent max-cosine
 * artifacts (rpt_plot_hist), and training curves and scatter plots
 * (rpt_plot_xy: ledger/plot_xy.c draws, this file reads the evidence).
 * report.c's on_piece dispatches to them.
 *
 * A plot asks the evidence provider exactly as a table does (report.c's
 * rpt_resolve, rpt_find_groups, rpt_ask), so a plot and a number in the
 * same report can never disagree about the run or the filters. Histogram
 * values are read through the store and re-hashed before use: a tampered
 * object never draws a plot. The SVG bytes depend only on the evidence
 * (ledger/svg.c writes fixed-precision numbers), so re-rendering in verify
 * reproduces them byte for byte.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifacts/npy.h"
#include "base/sha256.h"
#include "engine/run.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/plot_xy.h"
#include "ledger/report_int.h"
#include "ledger/svg.h"

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
    return err < 0 ? err : rpt_mark(c, u);
}

int rpt_plot_param(rctx *c, const lg_directive *d)
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
    if ((err = rpt_resolve(c, d, NULL, &u)) <= 0)
        return err;
    if ((err = rpt_find_groups(c, d, u->run_id, keys, 2, 2u, &g, &ng)) < 0)
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
        for (j = i; j > 0 && lg_evidence_cmp_values(ss[j - 1], ss[j]) > 0; j--) {
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
            lg_filter_eq(&fl[0], d->by[0], xs[i]);
            lg_filter_eq(&fl[1], d->series, ss[j]);
            if ((err = rpt_ask(c, d, fl, ss[j][0] ? 2 : 1, NULL, &s)) < 0)
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
    for (i = 0; i < nx; i++) /* the evidence is read: shown from here on */
        rpt_shown_value(xs[i]);
    for (j = 0; j < ns; j++) {
        rpt_shown_value(ss[j]);
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
            err = rpt_not_supported(c, d, d->file, "no condition matches the filters");
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
    rpt_groups_free(g, ng, 2);
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
    if ((f = rpt_art_digest(c, u->run_id, name, sha)) < 0)
        return f;
    if (!f) {
        char why[512];
        snprintf(why, sizeof why, "evidence MISSING: run %.12s has no artifact %s", u->run_id, name);
        return rpt_not_supported(c, d, d->file, why);
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
        return rpt_not_supported(c, d, d->file, why);
    }
    if (strcmp(hex, sha) != 0) {
        char why[512];
        snprintf(why, sizeof why, "evidence MISSING: artifact %s of run %.12s hashes to %.12s, not %.12s", name, u->run_id,
                 hex, sha);
        lg_buf_release(&path);
        return rpt_not_supported(c, d, d->file, why);
    }
    err = lg_npy_read_f32(path.ptr, v, &info);
    lg_buf_release(&path);
    if (err < 0)
        return err;
    *n = (size_t)info.shape[0] * (size_t)(info.ndim == 2 ? info.shape[1] : 1);
    if ((err = rpt_use_art(u, name, sha)) < 0)
        return err;
    return 1;
}

int rpt_plot_hist(rctx *c, const lg_directive *d)
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
    if ((err = rpt_resolve(c, d, "mmcs", &u)) <= 0)
        return err;
    if ((err = rpt_find_groups(c, d, u->run_id, keys, 1, 1u, &g, &ng)) < 0)
        goto out;
    if (ng == 0) {
        err = rpt_not_supported(c, d, d->file, "no condition matches the filters");
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
    if ((err = rpt_run_conditions(c, u->run_id, &conds, &nc)) < 0)
        goto out;
    for (ci = 0; ci < nc; ci++) {
        const char *cond = lg_json_str(conds[ci], "id");
        char fid[256], name[320], *sv = NULL;
        float *v = NULL, *grown;
        size_t n = 0;
        int match;
        if ((err = rpt_cond_matches(conds[ci], d, &match)) < 0)
            goto out;
        if (!match)
            continue;
        if ((err = rpt_cond_param(conds[ci], d->series, &sv)) < 0)
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
        rpt_shown_value(ss[j]); /* the evidence is read: shown from here on */
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
    rpt_groups_free(g, ng, 1);
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
    if ((f = rpt_art_digest(x->c, x->u->run_id, name, sha)) <= 0) {
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
    return (err = rpt_use_art(x->u, name, sha)) < 0 ? err : 1;
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
        snprintf(why, nwhy, "evidence %s: %s", s.status == LG_EVIDENCE_STALE ? "STALE" : "MISSING", s.reason ? s.reason : "");
        return 0;
    }
    *v = s.values;
    *n = s.n;
    return 1;
}

int rpt_plot_xy(rctx *c, const lg_directive *d)
{
    used_run *u = NULL;
    const cJSON **conds = NULL;
    size_t nc = 0;
    lg_buf svg = LG_BUF_INIT, title = LG_BUF_INIT;
    char why[1024], label[64];
    xy_src xs;
    lg_plot_xy_source src;
    int err;
    if ((err = rpt_resolve(c, d, NULL, &u)) <= 0)
        return err;
    if ((err = rpt_run_conditions(c, u->run_id, &conds, &nc)) < 0)
        goto out;
    xs.c = c;
    xs.d = d;
    xs.u = u;
    src.ctx = &xs;
    src.read = xy_read;
    src.samples = xy_samples;
    snprintf(label, sizeof label, "run %ld %.12s", u->seq, u->run_id);
    if ((err = lg_plot_xy_draw(d, conds, nc, &src, label, &svg, &title, why, sizeof why)) == 0)
        err = rpt_not_supported(c, d, d->file, why);
    else if (err > 0 && (err = add_svg(c, d->file, &svg)) == 0)
        err = put_image(c, d, title.ptr, u);
out:
    lg_free(conds);
    lg_buf_release(&svg);
    lg_buf_release(&title);
    return err;
}
