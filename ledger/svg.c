/*
 * svg.c - deterministic SVG 1.1 plots for reports (see svg.h).
 *
 * Fixed canvas (640 x 400 user units) with a plot area, a legend column on
 * the right, the title on top and the x label below. The y range comes
 * from the data (points and bar ends, or bin fractions) widened to "nice"
 * tick steps; every coordinate is printed with "%.2f" so the bytes depend
 * only on the input numbers. No CSS, scripts or external references: the
 * files render the same in browsers, GitHub and rsvg-convert.
 *
 * Colours follow the series name, not its position, for the two series
 * every study has: "trained" is always blue and "random" (or "random-init")
 * always grey, in every plot of every report; other series take the
 * remaining colours in order.
 */
#include "ledger/svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define W 640.0
#define H 400.0
#define ML 72.0   /* left margin: y tick labels and y label */
#define MR 150.0  /* right: legend */
#define MT 42.0   /* top: title */
#define MB 62.0   /* bottom: x ticks, x label, note */

#define TRAINED_COLOUR "#1f77b4"
#define RANDOM_COLOUR "#7f7f7f"
/* six, then three more so that a seven-architecture frontier has no repeated colour (blue and
 * grey are kept for trained / random) */
static const char *const palette[] = {"#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf",
                                      "#e377c2", "#bcbd22", "#393b79"};
#define NPAL (sizeof(palette) / sizeof(palette[0]))

static int name_is(const char *name, const char *what)
{
    return name && strcasecmp(name, what) == 0;
}

/* The colour of series i of names[0..n): by name for trained / random, else
 * the i-th among the other series. */
static const char *series_colour(const char *const *names, size_t stride, size_t n, size_t i)
{
#define NAME_AT(j) (*(const char *const *)((const char *)names + (j) * stride))
    size_t j, k = 0;
    const char *name = NAME_AT(i);
    if (name_is(name, "trained"))
        return TRAINED_COLOUR;
    if (name_is(name, "random") || name_is(name, "random-init") || name_is(name, "random_init"))
        return RANDOM_COLOUR;
    for (j = 0; j < i && j < n; j++) {
        const char *o = NAME_AT(j);
        if (!name_is(o, "trained") && !name_is(o, "random") && !name_is(o, "random-init") && !name_is(o, "random_init"))
            k++;
    }
    return palette[k % NPAL];
#undef NAME_AT
}

static int put_escaped(lg_buf *out, const char *s)
{
    int err = 0;
    for (; s && *s && err == 0; s++) {
        switch (*s) {
        case '&': err = lg_buf_puts(out, "&amp;"); break;
        case '<': err = lg_buf_puts(out, "&lt;"); break;
        case '>': err = lg_buf_puts(out, "&gt;"); break;
        case '"': err = lg_buf_puts(out, "&quot;"); break;
        case '\'': err = lg_buf_puts(out, "&apos;"); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                err = lg_buf_put(out, s, 1);
        }
    }
    return err;
}

/* <text ...>escaped</text> */
static int text_at(lg_buf *out, double x, double y, const char *anchor, const char *extra, const char *s)
{
    int err;
    if ((err = lg_buf_printf(out, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\"%s%s>", x, y, anchor, extra ? " " : "",
                             extra ? extra : "")) < 0 ||
        (err = put_escaped(out, s)) < 0)
        return err;
    return lg_buf_puts(out, "</text>\n");
}

double lg_svg_nice_step(double lo, double hi, int target)
{
    double span = hi - lo, raw, mag, f;
    if (!(span > 0) || target < 1)
        return 1.0;
    raw = span / target;
    mag = pow(10.0, floor(log10(raw)));
    f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

/* Widens [lo, hi] to multiples of a nice step; returns the step. */
static double nice_range(double *lo, double *hi)
{
    double step;
    if (!(*hi > *lo)) {
        double c = *lo, d = fabs(c) > 0 ? fabs(c) * 0.1 : 0.5;
        *lo = c - d;
        *hi = c + d;
    }
    step = lg_svg_nice_step(*lo, *hi, 5);
    *lo = floor(*lo / step + 1e-9) * step;
    *hi = ceil(*hi / step - 1e-9) * step;
    return step;
}

/* Tick label: as few decimals as the step needs. */
static void tick_label(char *buf, size_t n, double v, double step)
{
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6)
        dec = 6;
    if (fabs(v) < step * 1e-6)
        v = 0; /* no "-0.0" */
    snprintf(buf, n, "%.*f", dec, v);
}

static int open_doc(lg_buf *out, const char *title)
{
    int err;
    if ((err = lg_buf_printf(out,
                             "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                             "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%.0f\" height=\"%.0f\" "
                             "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
                             "font-size=\"12\">\n<title>",
                             W, H, W, H)) < 0 ||
        (err = put_escaped(out, title ? title : "plot")) < 0 ||
        (err = lg_buf_puts(out, "</title>\n<rect x=\"0\" y=\"0\" width=\"640\" height=\"400\" fill=\"#ffffff\"/>\n")) < 0)
        return err;
    if (title && (err = text_at(out, W / 2, 24, "middle", "font-size=\"15\" font-weight=\"bold\"", title)) < 0)
        return err;
    return 0;
}

/* Frame, y grid + ticks + labels, axis labels, note. */
static int axes(lg_buf *out, double ylo, double yhi, double ystep, const char *xlabel, const char *ylabel,
                const char *note)
{
    double x0 = ML, x1 = W - MR, y0 = H - MB, y1 = MT, v;
    char lab[32];
    int err = 0, k;
    if ((err = lg_buf_puts(out, "<g stroke=\"#dddddd\" stroke-width=\"1\">\n")) < 0)
        return err;
    for (k = 0, v = ylo; v <= yhi + ystep * 1e-6 && k < 100; k++, v = ylo + k * ystep) {
        double y = y0 - (v - ylo) / (yhi - ylo) * (y0 - y1);
        if ((err = lg_buf_printf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x0, y, x1, y)) < 0)
            return err;
    }
    if ((err = lg_buf_puts(out, "</g>\n<g font-size=\"11\" fill=\"#333333\">\n")) < 0)
        return err;
    for (k = 0, v = ylo; v <= yhi + ystep * 1e-6 && k < 100; k++, v = ylo + k * ystep) {
        double y = y0 - (v - ylo) / (yhi - ylo) * (y0 - y1);
        tick_label(lab, sizeof lab, v, ystep);
        if ((err = lg_buf_printf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n",
                                 x0 - 5, y, x0, y)) < 0 ||
            (err = text_at(out, x0 - 8, y + 4, "end", NULL, lab)) < 0)
            return err;
    }
    if ((err = lg_buf_puts(out, "</g>\n")) < 0 ||
        (err = lg_buf_printf(out,
                             "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#333333\" "
                             "stroke-width=\"1\"/>\n",
                             x0, y1, x1 - x0, y0 - y1)) < 0)
        return err;
    if (xlabel && (err = text_at(out, (x0 + x1) / 2, H - MB + 36, "middle", NULL, xlabel)) < 0)
        return err;
    if (ylabel) {
        char tr[96];
        snprintf(tr, sizeof tr, "transform=\"rotate(-90 %.2f %.2f)\"", 18.0, (y0 + y1) / 2);
        if ((err = text_at(out, 18.0, (y0 + y1) / 2, "middle", tr, ylabel)) < 0)
            return err;
    }
    if (note && (err = text_at(out, (x0 + x1) / 2, H - 8, "middle", "font-size=\"10\" fill=\"#555555\"", note)) < 0)
        return err;
    return 0;
}

/* Legend entry i: a swatch (marker or box) and the name. */
static int legend(lg_buf *out, size_t i, const char *name, int box, const char *c)
{
    double x = W - MR + 16, y = MT + 14 + 20.0 * (double)i;
    int err;
    if (box)
        err = lg_buf_printf(out,
                            "<rect x=\"%.2f\" y=\"%.2f\" width=\"14\" height=\"10\" fill=\"%s\" fill-opacity=\"0.45\" "
                            "stroke=\"%s\"/>\n",
                            x, y - 9, c, c);
    else
        err = lg_buf_printf(out,
                            "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"2\"/>\n"
                            "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"%s\"/>\n",
                            x, y - 4, x + 16, y - 4, c, x + 8, y - 4, c);
    if (err < 0)
        return err;
    return text_at(out, x + 22, y, "start", NULL, name);
}

int lg_svg_points_plot(const lg_svg_points *p, lg_buf *out)
{
    double ylo = INFINITY, yhi = -INFINITY, step, x0 = ML, x1 = W - MR, y0 = H - MB, y1 = MT, band;
    size_t s, i;
    int err;
    if (p->nx == 0 || p->nseries == 0)
        return lg_error_set(LG_EINPUT, "plot: nothing to draw");
    for (s = 0; s < p->nseries; s++)
        for (i = 0; i < p->nx; i++) {
            const lg_svg_series *se = &p->series[s];
            double v[3] = {se->y[i], se->lo ? se->lo[i] : NAN, se->hi ? se->hi[i] : NAN};
            int k;
            for (k = 0; k < 3; k++)
                if (isfinite(v[k])) {
                    ylo = fmin(ylo, v[k]);
                    yhi = fmax(yhi, v[k]);
                }
        }
    if (!isfinite(ylo)) {
        ylo = 0;
        yhi = 1;
    }
    if (yhi > ylo) { /* keep points off the frame */
        double pad = 0.05 * (yhi - ylo);
        ylo = ylo >= 0 && ylo - pad < 0 ? 0 : ylo - pad;
        yhi += pad;
    }
    if (ylo > 0 && ylo < 0.25 * yhi)
        ylo = 0; /* start at zero when the data nearly does */
    step = nice_range(&ylo, &yhi);
    band = (x1 - x0) / (double)p->nx;
    if ((err = open_doc(out, p->title)) < 0 || (err = axes(out, ylo, yhi, step, p->xlabel, p->ylabel, p->note)) < 0)
        return err;
    /* x ticks at category centres */
    if ((err = lg_buf_puts(out, "<g font-size=\"11\" fill=\"#333333\">\n")) < 0)
        return err;
    for (i = 0; i < p->nx; i++) {
        double x = x0 + band * ((double)i + 0.5);
        if ((err = lg_buf_printf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n", x,
                                 y0, x, y0 + 5)) < 0 ||
            (err = text_at(out, x, y0 + 18, "middle", NULL, p->xticks[i])) < 0)
            return err;
    }
    if ((err = lg_buf_puts(out, "</g>\n")) < 0)
        return err;
#define YPOS(v) (y0 - ((v) - ylo) / (yhi - ylo) * (y0 - y1))
    for (s = 0; s < p->nseries; s++) {
        const lg_svg_series *se = &p->series[s];
        const char *c = series_colour(&p->series[0].name, sizeof(p->series[0]), p->nseries, s);
        /* series side by side within a category: offsets in [-0.15, 0.15] of the band */
        double off = p->nseries > 1 ? band * 0.3 * ((double)s / (double)(p->nseries - 1) - 0.5) : 0;
        int first = 1;
        if ((err = lg_buf_printf(out, "<g stroke=\"%s\" fill=\"%s\">\n", c, c)) < 0)
            return err;
        /* the connecting line */
        for (i = 0; i < p->nx; i++) {
            double x = x0 + band * ((double)i + 0.5) + off;
            if (!isfinite(se->y[i]))
                continue;
            if ((err = lg_buf_printf(out, first ? "<polyline fill=\"none\" stroke-width=\"1.5\" points=\"%.2f,%.2f"
                                                : " %.2f,%.2f",
                                     x, YPOS(se->y[i]))) < 0)
                return err;
            first = 0;
        }
        if (!first && (err = lg_buf_puts(out, "\"/>\n")) < 0)
            return err;
        for (i = 0; i < p->nx; i++) {
            double x = x0 + band * ((double)i + 0.5) + off;
            if (se->lo && se->hi && isfinite(se->lo[i]) && isfinite(se->hi[i])) {
                double a = YPOS(se->lo[i]), b = YPOS(se->hi[i]);
                if ((err = lg_buf_printf(out,
                                         "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke-width=\"1.5\"/>\n"
                                         "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke-width=\"1.5\"/>\n"
                                         "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke-width=\"1.5\"/>\n",
                                         x, a, x, b, x - 5, a, x + 5, a, x - 5, b, x + 5, b)) < 0)
                    return err;
            }
            if (isfinite(se->y[i]) &&
                (err = lg_buf_printf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" stroke=\"#ffffff\"/>\n", x,
                                     YPOS(se->y[i]))) < 0)
                return err;
        }
        if ((err = lg_buf_puts(out, "</g>\n")) < 0 || (err = legend(out, s, se->name, 0, c)) < 0)
            return err;
    }
#undef YPOS
    return lg_buf_puts(out, "</svg>\n");
}

int lg_svg_hist_plot(const lg_svg_hist *h, lg_buf *out)
{
    double x0 = ML, x1 = W - MR, y0 = H - MB, y1 = MT, ylo = 0, yhi = 0, step, xstep, bw, v;
    double *frac = NULL;
    size_t s, i;
    int b, k, err = 0;
    char lab[32];
    if (h->bins < 1 || h->nseries == 0 || !(h->hi > h->lo))
        return lg_error_set(LG_EINPUT, "histogram: nothing to draw");
    if (!(frac = lg_calloc(h->nseries * (size_t)h->bins, sizeof(double))))
        return LG_ENOMEM;
    for (s = 0; s < h->nseries; s++) {
        size_t used = 0;
        double *f = frac + s * (size_t)h->bins; /* [bins] */
        for (i = 0; i < h->series[s].n; i++) {
            double x = h->series[s].v[i];
            if (!isfinite(x))
                continue;
            b = (int)floor((x - h->lo) / (h->hi - h->lo) * h->bins);
            b = b < 0 ? 0 : b >= h->bins ? h->bins - 1 : b;
            f[b] += 1;
            used++;
        }
        for (b = 0; b < h->bins; b++) {
            f[b] = used ? f[b] / (double)used : 0;
            yhi = fmax(yhi, f[b]);
        }
    }
    if (!(yhi > 0))
        yhi = 1;
    step = nice_range(&ylo, &yhi);
    if ((err = open_doc(out, h->title)) < 0 || (err = axes(out, ylo, yhi, step, h->xlabel, h->ylabel, h->note)) < 0)
        goto out;
    /* x ticks over the value range */
    xstep = lg_svg_nice_step(h->lo, h->hi, 5);
    if ((err = lg_buf_puts(out, "<g font-size=\"11\" fill=\"#333333\">\n")) < 0)
        goto out;
    for (k = 0, v = ceil(h->lo / xstep - 1e-9) * xstep; v <= h->hi + xstep * 1e-6 && k < 100;
         k++, v = ceil(h->lo / xstep - 1e-9) * xstep + k * xstep) {
        double x = x0 + (v - h->lo) / (h->hi - h->lo) * (x1 - x0);
        tick_label(lab, sizeof lab, v, xstep);
        if ((err = lg_buf_printf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n", x,
                                 y0, x, y0 + 5)) < 0 ||
            (err = text_at(out, x, y0 + 18, "middle", NULL, lab)) < 0)
            goto out;
    }
    if ((err = lg_buf_puts(out, "</g>\n")) < 0)
        goto out;
    bw = (x1 - x0) / h->bins;
    for (s = 0; s < h->nseries; s++) {
        const char *c = series_colour(&h->series[0].name, sizeof(h->series[0]), h->nseries, s);
        const double *f = frac + s * (size_t)h->bins;
        if ((err = lg_buf_printf(out, "<g fill=\"%s\" fill-opacity=\"0.45\" stroke=\"%s\" stroke-width=\"1\">\n", c,
                                 c)) < 0)
            goto out;
        for (b = 0; b < h->bins; b++) {
            double top = y0 - (f[b] - ylo) / (yhi - ylo) * (y0 - y1);
            if (f[b] <= 0)
                continue;
            if ((err = lg_buf_printf(out, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>\n",
                                     x0 + bw * b, top, bw, y0 - top)) < 0)
                goto out;
        }
        if ((err = lg_buf_puts(out, "</g>\n")) < 0 || (err = legend(out, s, h->series[s].name, 1, c)) < 0)
            goto out;
    }
    err = lg_buf_puts(out, "</svg>\n");
out:
    lg_free(frac);
    return err;
}

/* ---- numeric x: lines with a band, or points with bars -------------------------------- */

static void widen(double *lo, double *hi, double v)
{
    if (isfinite(v)) {
        *lo = fmin(*lo, v);
        *hi = fmax(*hi, v);
    }
}

int lg_svg_xy_plot(const lg_svg_xy *p, lg_buf *out)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY, xstep, ystep, v;
    double x0 = ML, x1 = W - MR, y0 = H - MB, y1 = MT;
    size_t s, i;
    int err, k;
    char lab[32];
    for (s = 0; s < p->nseries; s++) {
        const lg_svg_xy_series *se = &p->series[s];
        for (i = 0; i < se->n; i++) {
            if (!isfinite(se->x[i]) || !isfinite(se->y[i]))
                continue;
            widen(&xlo, &xhi, se->x[i]);
            widen(&ylo, &yhi, se->y[i]);
            if (se->lo && se->hi) {
                widen(&ylo, &yhi, se->lo[i]);
                widen(&ylo, &yhi, se->hi[i]);
            }
            if (se->xlo && se->xhi) {
                widen(&xlo, &xhi, se->xlo[i]);
                widen(&xlo, &xhi, se->xhi[i]);
            }
        }
    }
    if (!isfinite(xlo) || !isfinite(ylo))
        return lg_error_set(LG_EINPUT, "plot: nothing to draw");
    if (p->points && xhi > xlo) { /* keep markers off the frame */
        double pad = 0.05 * (xhi - xlo);
        xlo = xlo >= 0 && xlo - pad < 0 ? 0 : xlo - pad;
        xhi += pad;
    }
    if (yhi > ylo) {
        double pad = 0.05 * (yhi - ylo);
        ylo = ylo >= 0 && ylo - pad < 0 ? 0 : ylo - pad;
        yhi += pad;
    }
    if (ylo > 0 && ylo < 0.25 * yhi)
        ylo = 0;
    xstep = nice_range(&xlo, &xhi);
    ystep = nice_range(&ylo, &yhi);
    if ((err = open_doc(out, p->title)) < 0 || (err = axes(out, ylo, yhi, ystep, p->xlabel, p->ylabel, p->note)) < 0)
        return err;
#define XPOS(v) (x0 + ((v) - xlo) / (xhi - xlo) * (x1 - x0))
#define YPOS(v) (y0 - ((v) - ylo) / (yhi - ylo) * (y0 - y1))
    if ((err = lg_buf_puts(out, "<g font-size=\"11\" fill=\"#333333\">\n")) < 0)
        return err;
    for (k = 0, v = xlo; v <= xhi + xstep * 1e-6 && k < 100; k++, v = xlo + k * xstep) {
        tick_label(lab, sizeof lab, v, xstep);
        if ((err = lg_buf_printf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333333\"/>\n",
                                 XPOS(v), y0, XPOS(v), y0 + 5)) < 0 ||
            (err = text_at(out, XPOS(v), y0 + 18, "middle", NULL, lab)) < 0)
            return err;
    }
    if ((err = lg_buf_puts(out, "</g>\n")) < 0)
        return err;
    for (s = 0; s < p->nseries; s++) {
        const lg_svg_xy_series *se = &p->series[s];
        const char *c = series_colour(&p->series[0].name, sizeof(p->series[0]), p->nseries, s);
        int first = 1;
        if ((err = lg_buf_printf(out, "<g stroke=\"%s\" fill=\"%s\">\n", c, c)) < 0)
            return err;
        if (!p->points && se->lo && se->hi) { /* the band: hi left to right, then lo back */
            size_t m = 0;
            for (i = 0; i < se->n; i++)
                m += isfinite(se->x[i]) && isfinite(se->lo[i]) && isfinite(se->hi[i]);
            if (m >= 2) {
                if ((err = lg_buf_puts(out, "<polygon stroke=\"none\" fill-opacity=\"0.18\" points=\"")) < 0)
                    return err;
                for (i = 0; i < se->n; i++) {
                    if (!isfinite(se->x[i]) || !isfinite(se->lo[i]) || !isfinite(se->hi[i]))
                        continue;
                    if ((err = lg_buf_printf(out, "%s%.2f,%.2f", first ? "" : " ", XPOS(se->x[i]), YPOS(se->hi[i]))) < 0)
                        return err;
                    first = 0;
                }
                for (i = se->n; i-- > 0;)
                    if (isfinite(se->x[i]) && isfinite(se->lo[i]) && isfinite(se->hi[i]) &&
                        (err = lg_buf_printf(out, " %.2f,%.2f", XPOS(se->x[i]), YPOS(se->lo[i]))) < 0)
                        return err;
                if ((err = lg_buf_puts(out, "\"/>\n")) < 0)
                    return err;
                first = 1;
            }
        }
        if (!p->points) {
            for (i = 0; i < se->n; i++) {
                if (!isfinite(se->x[i]) || !isfinite(se->y[i]))
                    continue;
                if ((err = lg_buf_printf(out, first ? "<polyline fill=\"none\" stroke-width=\"1.5\" points=\"%.2f,%.2f"
                                                    : " %.2f,%.2f",
                                         XPOS(se->x[i]), YPOS(se->y[i]))) < 0)
                    return err;
                first = 0;
            }
            if (!first && (err = lg_buf_puts(out, "\"/>\n")) < 0)
                return err;
        } else {
            for (i = 0; i < se->n; i++) {
                double x, y;
                if (!isfinite(se->x[i]) || !isfinite(se->y[i]))
                    continue;
                x = XPOS(se->x[i]);
                y = YPOS(se->y[i]);
                if (se->lo && se->hi && isfinite(se->lo[i]) && isfinite(se->hi[i]) &&
                    (err = lg_buf_printf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke-width=\"1.5\"/>\n",
                                         x, YPOS(se->lo[i]), x, YPOS(se->hi[i]))) < 0)
                    return err;
                if (se->xlo && se->xhi && isfinite(se->xlo[i]) && isfinite(se->xhi[i]) &&
                    (err = lg_buf_printf(out, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke-width=\"1.5\"/>\n",
                                         XPOS(se->xlo[i]), y, XPOS(se->xhi[i]), y)) < 0)
                    return err;
                if ((err = lg_buf_printf(out, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4.5\" stroke=\"#ffffff\"/>\n", x, y)) < 0)
                    return err;
            }
        }
        if ((err = lg_buf_puts(out, "</g>\n")) < 0 || (err = legend(out, s, se->name, 0, c)) < 0)
            return err;
    }
#undef XPOS
#undef YPOS
    return lg_buf_puts(out, "</svg>\n");
}
