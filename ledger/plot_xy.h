/*
 * plot_xy.h - the report's plots over a numeric x axis (templates/README.md):
 *
 *   {{plot STUDY[@RUN] curve METRIC [where FILTERS] | file=NAME.svg [band=minmax|sd] [title="..."]}}
 *       a training curve (engine/curve.h) of every matching trained
 *       condition: one line per condition, the mean over its seeds at each
 *       logged step, and a band: min..max over the seeds (default) or the
 *       mean +- 1 sample sd (band=sd);
 *   {{plot STUDY[@RUN] scatter UNIT.X UNIT.Y [where FILTERS] | file=NAME.svg [series=PARAM] [title="..."]}}
 *       one point per value of PARAM (default control) among the matching
 *       conditions: x = mean of UNIT.X, y = mean of UNIT.Y over the
 *       condition's samples, bars = 95% percentile bootstrap CI of each mean
 *       (10000 resamples, seed 1), as {{plot mmcs-vs-param}} draws them.
 *
 * This file draws; the report (report.c) hands it the run's verified
 * conditions and two readers that go through the same evidence as every
 * other number of a report: the bytes of a run's artifact checked against
 * the digest its manifest records, and the samples of a selector from the
 * evidence provider. So a curve comes only from hashed, recorded artifacts.
 */
#ifndef LG_PLOT_XY_H
#define LG_PLOT_XY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "base/base.h"
#include "engine/curve.h"
#include "ledger/template.h"

typedef struct {
    void *ctx;
    /* The bytes of the plotted run's artifact `name`, checked against the
     * digest its manifest records: 1 read into text, 0 not usable (why set,
     * e.g. "evidence MISSING: ..."), < 0 error. */
    int (*read)(void *ctx, const char *name, lg_buf *text, char *why, size_t nwhy);
    /* The plotted run's samples of unit.metric under the directive's filters
     * plus extra[0..nextra): 1 fresh (*v [*n], valid until the next call),
     * 0 not usable (why set), < 0 error. */
    int (*samples)(void *ctx, lg_unit unit, const char *metric, const lg_filter *extra, size_t nextra,
                   const double **v, size_t *n, char *why, size_t nwhy);
} lg_plot_xy_source;

/* Draws directive d (kind plot, plot curve or scatter) of the run whose
 * results' conditions are conds [nconds] (sorted by id); run_label ("run 3
 * abcdef012345") goes into the note. 1: drawn, the SVG appended to svg and
 * the title to title; 0: not drawn, why says why (no matching condition,
 * evidence MISSING, curves that disagree); < 0 error. */
int lg_plot_xy_draw(const lg_directive *d, const cJSON *const *conds, size_t nconds, const lg_plot_xy_source *src,
                    const char *run_label, lg_buf *svg, lg_buf *title, char *why, size_t nwhy);

/* Mean and band of one metric over seeds' curves that share their steps:
 * curves [ns] (ns >= 1, each with n points at the same steps), metric m; x,
 * y, lo, hi [n] out. band: LG_BAND_MINMAX or LG_BAND_SD (sample sd, n-1;
 * one seed gives lo = hi = y). LG_EINPUT when the steps differ. */
int lg_plot_curve_mean(const lg_curve *curves, size_t ns, int m, lg_band_kind band, double *x, double *y,
                       double *lo, double *hi);

#endif
