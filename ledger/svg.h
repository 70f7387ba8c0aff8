/*
 * svg.h - the report's plots as hand-written SVG 1.1: a point plot with
 * error bars over categorical x values, an overlaid histogram, and lines
 * (with a band) or points (with bars) over a numeric x axis.
 *
 * Output is deterministic: the same input gives the same bytes (fixed
 * layout, coordinates printed with "%.2f", no timestamps or ids from
 * memory). Text is XML-escaped. Arrays are borrowed.
 */
#ifndef LG_SVG_H
#define LG_SVG_H

#include <stddef.h>

#include "base/base.h"

typedef struct {
    const char *name;     /* legend label */
    const double *y;      /* [nx] point (NaN = no point) */
    const double *lo;     /* [nx] error bar ends, or NULL (NaN = no bar) */
    const double *hi;     /* [nx] */
} lg_svg_series;

typedef struct {
    const char *title;
    const char *xlabel, *ylabel;
    const char *const *xticks;  /* [nx] category labels, left to right */
    size_t nx;
    const lg_svg_series *series;
    size_t nseries;
    const char *note;           /* small text under the plot (e.g. "bars: 95% bootstrap CI"), or NULL */
} lg_svg_points;

/* Appends the SVG document to out. LG_EINPUT when nx or nseries is 0. */
int lg_svg_points_plot(const lg_svg_points *p, lg_buf *out);

typedef struct {
    const char *name;
    const float *v;       /* [n] values */
    size_t n;
} lg_svg_hist_series;

typedef struct {
    const char *title;
    const char *xlabel;         /* y is "fraction of latents" */
    const char *ylabel;
    double lo, hi;              /* bin range; values outside are clamped into the end bins */
    int bins;                   /* >= 1 */
    const lg_svg_hist_series *series;
    size_t nseries;
    const char *note;
} lg_svg_hist;

/* Bars are fractions of each series' n, so series of different sizes
 * compare. Non-finite values are skipped. */
int lg_svg_hist_plot(const lg_svg_hist *h, lg_buf *out);

/* Numeric x and y (a training curve, a metric against a metric). */
typedef struct {
    const char *name;     /* legend label */
    const double *x;      /* [n] */
    const double *y;      /* [n] (NaN = gap) */
    const double *lo;     /* [n] lines: the band's edges; points: vertical bar ends; or NULL (NaN = none) */
    const double *hi;     /* [n] */
    const double *xlo;    /* [n] points: horizontal bar ends, or NULL */
    const double *xhi;    /* [n] */
    size_t n;
} lg_svg_xy_series;

typedef struct {
    const char *title;
    const char *xlabel, *ylabel;
    const lg_svg_xy_series *series;
    size_t nseries;
    int points;           /* 0: lines over a shaded band; 1: markers with error bars */
    const char *note;
} lg_svg_xy;

/* Both axes from the data widened to nice ticks. LG_EINPUT when no series
 * has a finite point. */
int lg_svg_xy_plot(const lg_svg_xy *p, lg_buf *out);

/* "nice" tick step (1, 2 or 5 x 10^k) for about `target` ticks over [lo, hi]. */
double lg_svg_nice_step(double lo, double hi, int target);

#endif
