/*
 * plot_xy.c - curve and scatter plots of a report (see plot_xy.h).
 *
 * Curves: for every condition of the run that matches the filters and was
 * trained (control != random), every ok cell's curve artifact
 * (cells/<cond>/seed-<s>.curve.json) is read through the source (bytes
 * checked against the manifest's digest), parsed strictly (engine/curve.h),
 * and checked to be the curve of that condition and seed; the seeds of a
 * condition must share their logged steps. One line per condition, in the
 * order of condition ids. A condition without a curve artifact (a run with
 * train.log_every 0) makes the plot not supported, never a partial plot.
 *
 * Scatter: one point per value of `series` among the matching conditions;
 * both coordinates come from the evidence provider with the filter
 * series=value added, so they are the same numbers a {{value}} or a claim
 * reads.
 *
 * Everything is a pure function of the evidence: the output bytes do not
 * depend on the clock, paths or memory addresses.
 */
#include "ledger/plot_xy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gates/stats.h"
#include "ledger/evidence.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/report_int.h"
#include "ledger/svg.h"

/* a condition's parameters and the directive's filters: rpt_cond_param and
 * rpt_cond_matches (report_evidence.c), as for tables and the other plots */

int lg_plot_curve_mean(const lg_curve *curves, size_t ns, int m, lg_band_kind band, double *x, double *y, double *lo,
                       double *hi)
{
    size_t n = ns ? curves[0].n : 0, i, s;
    if (ns == 0 || m < 0 || m >= LG_CURVE_NMETRICS)
        return lg_error_set(LG_EINPUT, "curve: no seeds or no such metric");
    for (s = 1; s < ns; s++) {
        if (curves[s].n != n)
            return lg_error_set(LG_EINPUT, "curve: seeds logged %zu and %zu points", n, curves[s].n);
        for (i = 0; i < n; i++)
            if (curves[s].pts[i].step != curves[0].pts[i].step)
                return lg_error_set(LG_EINPUT, "curve: seeds logged different steps (%ld and %ld)",
                                    curves[0].pts[i].step, curves[s].pts[i].step);
    }
    for (i = 0; i < n; i++) {
        double sum = 0, mn = INFINITY, mx = -INFINITY, mean, ss = 0;
        for (s = 0; s < ns; s++) { /* in seed order: the bytes do not depend on anything else */
            double v = curves[s].pts[i].v[m];
            sum += v;
            mn = fmin(mn, v);
            mx = fmax(mx, v);
        }
        mean = sum / (double)ns;
        x[i] = (double)curves[0].pts[i].step;
        y[i] = mean;
        if (band == LG_BAND_SD) {
            double sd;
            for (s = 0; s < ns; s++)
                ss += (curves[s].pts[i].v[m] - mean) * (curves[s].pts[i].v[m] - mean);
            sd = ns > 1 ? sqrt(ss / (double)(ns - 1)) : 0;
            lo[i] = mean - sd;
            hi[i] = mean + sd;
        } else {
            lo[i] = mn;
            hi[i] = mx;
        }
    }
    return 0;
}

/* One trained condition's curves: every ok cell's artifact. 1 read (*out
 * [*nout]), 0 not usable (why), < 0 error. */
static int read_curves(const cJSON *cond, const lg_plot_xy_source *src, lg_curve **out, size_t *nout, char *why,
                       size_t nwhy)
{
    const char *id = lg_json_str(cond, "id");
    const cJSON *cells = cJSON_GetObjectItemCaseSensitive(cond, "cells"), *cell;
    lg_curve *cv = NULL;
    lg_buf text = LG_BUF_INIT;
    size_t n = 0;
    int err = 0, f;
    *out = NULL;
    *nout = 0;
    if (!(cv = lg_calloc((size_t)cJSON_GetArraySize(cells) + 1, sizeof(*cv))))
        return LG_ENOMEM;
    cJSON_ArrayForEach(cell, cells) {
        const cJSON *sd = cJSON_GetObjectItemCaseSensitive(cell, "seed");
        const char *st = lg_json_str(cell, "status");
        char name[320];
        uint64_t seed;
        if (!cJSON_IsNumber(sd) || !st || strcmp(st, "ok") != 0)
            continue;
        seed = (uint64_t)sd->valuedouble;
        lg_curve_file_name(id, seed, name, sizeof name);
        lg_buf_clear(&text);
        if ((f = src->read(src->ctx, name, &text, why, nwhy)) <= 0) {
            err = f;
            goto out;
        }
        if (lg_curve_parse(name, text.ptr ? text.ptr : "", text.len, &cv[n]) < 0) {
            snprintf(why, nwhy, "evidence MISSING: %s", lg_error_msg());
            lg_error_clear();
            goto out;
        }
        n++;
        if (cv[n - 1].n == 0) {
            snprintf(why, nwhy, "evidence MISSING: %s has no points", name);
            goto out;
        }
        if (strcmp(cv[n - 1].condition, id) != 0 || cv[n - 1].seed != seed) {
            snprintf(why, nwhy, "evidence MISSING: %s holds the curve of %s seed %llu", name, cv[n - 1].condition,
                     (unsigned long long)cv[n - 1].seed);
            goto out;
        }
    }
    if (n == 0) {
        snprintf(why, nwhy, "evidence MISSING: condition %s has no ok cell", id);
        goto out;
    }
    *out = cv;
    *nout = n;
    cv = NULL;
    err = 1;
out:
    while (cv && n > 0)
        lg_curve_release(&cv[--n]);
    lg_free(cv);
    lg_buf_release(&text);
    return err;
}

static int draw_curve(const lg_directive *d, const cJSON *const *conds, size_t nconds, const lg_plot_xy_source *src,
                      const char *run_label, lg_buf *svg, lg_buf *title, char *why, size_t nwhy)
{
    const int m = lg_curve_metric_index(d->curve);
    lg_svg_xy_series *series = NULL;
    double **cols = NULL; /* [nconds * 4]: x, y, lo, hi of each series */
    size_t ci, ns = 0, i, minseeds = 0, maxseeds = 0;
    lg_buf note = LG_BUF_INIT, ylab = LG_BUF_INIT;
    int err = 0, match;

    if (m < 0)
        return lg_error_set(LG_EINPUT, "unknown curve metric '%s'", d->curve);
    if (!(series = lg_calloc(nconds + 1, sizeof(*series))) || !(cols = lg_calloc(4 * nconds + 1, sizeof(double *)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (ci = 0; ci < nconds; ci++) {
        lg_curve *cv = NULL;
        size_t nc = 0, np, k;
        char *ctl = NULL;
        if ((err = rpt_cond_matches(conds[ci], d, &match)) < 0 || (err = rpt_cond_param(conds[ci], "control", &ctl)) < 0)
            goto out;
        k = match && !(ctl && !strcmp(ctl, "random")); /* random-init controls are not trained */
        lg_free(ctl);
        if (!k)
            continue;
        if ((err = read_curves(conds[ci], src, &cv, &nc, why, nwhy)) <= 0)
            goto out;
        err = 0;
        np = cv[0].n;
        for (k = 0; k < 4 && err == 0; k++)
            if (!(cols[4 * ns + k] = lg_calloc(np + 1, sizeof(double))))
                err = LG_ENOMEM;
        if (err == 0 && lg_plot_curve_mean(cv, nc, m, d->band, cols[4 * ns], cols[4 * ns + 1], cols[4 * ns + 2],
                                           cols[4 * ns + 3]) < 0) {
            snprintf(why, nwhy, "condition %s: %s", lg_json_str(conds[ci], "id"), lg_error_msg());
            lg_error_clear();
            err = 1; /* not supported, below */
        }
        if (err == 0) {
            series[ns].name = lg_json_str(conds[ci], "id");
            series[ns].x = cols[4 * ns];
            series[ns].y = cols[4 * ns + 1];
            series[ns].lo = cols[4 * ns + 2];
            series[ns].hi = cols[4 * ns + 3];
            series[ns].n = np;
            minseeds = ns == 0 || nc < minseeds ? nc : minseeds;
            maxseeds = nc > maxseeds ? nc : maxseeds;
        }
        ns++;
        while (nc > 0)
            lg_curve_release(&cv[--nc]);
        lg_free(cv);
        if (err != 0) {
            err = err < 0 ? err : 0;
            goto out;
        }
    }
    if (ns == 0) {
        snprintf(why, nwhy, "no trained condition matches the filters");
        goto out;
    }
    if (d->title)
        err = lg_buf_puts(title, d->title);
    else
        err = lg_buf_printf(title, "training curve: %s (%s)", d->curve, d->study);
    if (err == 0)
        err = lg_buf_printf(&ylab, "%s, mean over seeds", d->curve);
    if (err == 0) {
        char nseeds[64];
        if (minseeds == maxseeds)
            snprintf(nseeds, sizeof nseeds, "%zu", minseeds);
        else
            snprintf(nseeds, sizeof nseeds, "%zu to %zu", minseeds, maxseeds);
        err = lg_buf_printf(&note, "line: mean over %s seeds; band: %s; cells/*/seed-*.curve.json of %s", nseeds,
                            d->band == LG_BAND_SD ? "mean +- 1 sd" : "min..max over seeds", run_label);
    }
    if (err < 0)
        goto out;
    {
        lg_svg_xy p;
        memset(&p, 0, sizeof p);
        p.title = title->ptr;
        p.xlabel = "training step";
        p.ylabel = ylab.ptr;
        p.series = series;
        p.nseries = ns;
        p.points = 0;
        p.note = note.ptr;
        if ((err = lg_svg_xy_plot(&p, svg)) < 0)
            goto out;
    }
    err = 1;
out:
    for (i = 0; cols && i < 4 * nconds; i++)
        lg_free(cols[i]);
    lg_free(cols);
    lg_free(series);
    lg_buf_release(&note);
    lg_buf_release(&ylab);
    return err;
}

/* The report's table order: lg_evidence_cmp_values (numbers numerically, first). */
static int cmp_val(const void *pa, const void *pb)
{
    return lg_evidence_cmp_values(*(const char *const *)pa, *(const char *const *)pb);
}

/* Mean and 95% bootstrap CI of one group's samples: 1, 0 (why), < 0. */
static int group_stat(const lg_plot_xy_source *src, lg_unit unit, const char *metric, const lg_filter *fl,
                      double *mean, double *lo, double *hi, char *why, size_t nwhy)
{
    const double *v = NULL;
    size_t n = 0;
    lg_interval iv;
    int f;
    if ((f = src->samples(src->ctx, unit, metric, fl, 1, &v, &n, why, nwhy)) <= 0)
        return f;
    *mean = *lo = *hi = NAN;
    if (n == 0)
        return 1;
    *mean = lg_stats_mean(v, n);
    if (n >= 2 && lg_stats_bootstrap_mean(v, n, LG_STATS_DEFAULT_LEVEL, LG_STATS_DEFAULT_RESAMPLES,
                                          LG_STATS_DEFAULT_SEED, LG_BOOT_PERCENTILE, &iv) == 0) {
        *lo = iv.lo;
        *hi = iv.hi;
    }
    lg_error_clear();
    return 1;
}

static int draw_scatter(const lg_directive *d, const cJSON *const *conds, size_t nconds, const lg_plot_xy_source *src,
                        const char *run_label, lg_buf *svg, lg_buf *title, char *why, size_t nwhy)
{
    char **vals = NULL;
    double *num = NULL; /* [6 * ng]: x, y, ylo, yhi, xlo, xhi per group */
    lg_svg_xy_series *series = NULL;
    size_t ng = 0, ci, j;
    lg_buf note = LG_BUF_INIT, xlab = LG_BUF_INIT, ylab = LG_BUF_INIT;
    int err = 0, match, f;

    if (!(vals = lg_calloc(nconds + 1, sizeof(char *))))
        return LG_ENOMEM;
    for (ci = 0; ci < nconds; ci++) {
        char *v = NULL;
        if ((err = rpt_cond_matches(conds[ci], d, &match)) < 0 || (err = rpt_cond_param(conds[ci], d->series, &v)) < 0)
            goto out;
        if (!match || !v) {
            lg_free(v);
            continue;
        }
        for (j = 0; j < ng && strcmp(vals[j], v); j++)
            ;
        if (j < ng)
            lg_free(v);
        else
            vals[ng++] = v;
    }
    if (ng == 0) {
        snprintf(why, nwhy, "no condition with parameter '%s' matches the filters", d->series);
        err = 0;
        goto out;
    }
    qsort(vals, ng, sizeof(char *), cmp_val);
    if (!(num = lg_calloc(6 * ng, sizeof(double))) || !(series = lg_calloc(ng, sizeof(*series)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (j = 0; j < ng; j++) {
        double *g = num + 6 * j;
        lg_filter fl;
        lg_filter_eq(&fl, d->series, vals[j]);
        if ((f = group_stat(src, d->xsel.unit, d->xsel.metric, &fl, &g[0], &g[4], &g[5], why, nwhy)) <= 0 ||
            (f = group_stat(src, d->sel.unit, d->sel.metric, &fl, &g[1], &g[2], &g[3], why, nwhy)) <= 0) {
            err = f;
            goto out;
        }
        rpt_shown_value(vals[j]); /* its evidence is read: shown from here on (0.3, not %.17g) */
        series[j].name = vals[j];
        series[j].x = &g[0];
        series[j].y = &g[1];
        series[j].lo = &g[2];
        series[j].hi = &g[3];
        series[j].xlo = &g[4];
        series[j].xhi = &g[5];
        series[j].n = 1;
    }
    if (d->title)
        err = lg_buf_puts(title, d->title);
    else
        err = lg_buf_printf(title, "%s.%s vs %s.%s (%s)", lg_unit_name(d->sel.unit), d->sel.metric,
                            lg_unit_name(d->xsel.unit), d->xsel.metric, d->study);
    if (err == 0)
        err = lg_buf_printf(&xlab, "mean %s.%s", lg_unit_name(d->xsel.unit), d->xsel.metric);
    if (err == 0)
        err = lg_buf_printf(&ylab, "mean %s.%s", lg_unit_name(d->sel.unit), d->sel.metric);
    if (err == 0)
        err = lg_buf_printf(&note, "one point per %s: means; bars: 95%% bootstrap CIs of the means (%d resamples); %s",
                            d->series, LG_STATS_DEFAULT_RESAMPLES, run_label);
    if (err < 0)
        goto out;
    {
        lg_svg_xy p;
        memset(&p, 0, sizeof p);
        p.title = title->ptr;
        p.xlabel = xlab.ptr;
        p.ylabel = ylab.ptr;
        p.series = series;
        p.nseries = ng;
        p.points = 1;
        p.note = note.ptr;
        if (lg_svg_xy_plot(&p, svg) < 0) { /* no finite point: no sample of a metric */
            snprintf(why, nwhy, "no values of %s.%s and %s.%s", lg_unit_name(d->xsel.unit), d->xsel.metric,
                     lg_unit_name(d->sel.unit), d->sel.metric);
            lg_error_clear();
            err = 0;
            goto out;
        }
    }
    err = 1;
out:
    for (j = 0; j < ng; j++)
        lg_free(vals[j]);
    lg_free(vals);
    lg_free(num);
    lg_free(series);
    lg_buf_release(&note);
    lg_buf_release(&xlab);
    lg_buf_release(&ylab);
    return err;
}

int lg_plot_xy_draw(const lg_directive *d, const cJSON *const *conds, size_t nconds, const lg_plot_xy_source *src,
                    const char *run_label, lg_buf *svg, lg_buf *title, char *why, size_t nwhy)
{
    why[0] = '\0';
    if (d->kind == LG_DIR_PLOT && d->plot == LG_PLOT_CURVE)
        return draw_curve(d, conds, nconds, src, run_label, svg, title, why, nwhy);
    if (d->kind == LG_DIR_PLOT && d->plot == LG_PLOT_SCATTER)
        return draw_scatter(d, conds, nconds, src, run_label, svg, title, why, nwhy);
    return lg_error_set(LG_EINTERNAL, "lg_plot_xy_draw: not a curve or scatter plot");
}
