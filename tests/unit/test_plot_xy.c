/*
 * test_plot_xy.c - the numbers a curve plot draws (ledger/plot_xy.h):
 * lg_plot_curve_mean's mean over seeds and its band (min..max, or mean +- 1
 * sample sd), checked against values computed here by hand; seeds whose
 * logged steps differ are refused; and the SVG of a curve plot is a pure
 * function of its input (two draws, same bytes) holding one polyline and one
 * band per condition; the template parser's curve metrics are the engine's.
 */
#include <math.h>
#include <string.h>

#include "engine/curve.h"
#include "ledger/plot_xy.h"
#include "ledger/svg.h"
#include "tests/unit/check.h"

static void make(lg_curve *c, const double *loss, size_t n, long step0)
{
    size_t i;
    memset(c, 0, sizeof *c);
    for (i = 0; i < n; i++) {
        lg_step_stats st;
        memset(&st, 0, sizeof st);
        st.step = step0 * (long)(i + 1);
        st.loss = loss[i];
        st.lr = 0.001;
        CHECK_OK(lg_curve_add(c, &st, 0.25));
    }
}

static void test_mean_band(void)
{
    static const double a[3] = {3, 2, 1}, b[3] = {5, 2, 0.5}, c3[3] = {4, 2, 2};
    lg_curve cv[3];
    double x[3], y[3], lo[3], hi[3];
    int i;
    make(&cv[0], a, 3, 10);
    make(&cv[1], b, 3, 10);
    make(&cv[2], c3, 3, 10);
    CHECK_OK(lg_plot_curve_mean(cv, 3, lg_curve_metric_index("loss"), LG_BAND_MINMAX, x, y, lo, hi));
    CHECK(x[0] == 10 && x[1] == 20 && x[2] == 30);
    CHECK(y[0] == 4 && y[1] == 2 && fabs(y[2] - 3.5 / 3) < 1e-15);
    CHECK(lo[0] == 3 && hi[0] == 5 && lo[1] == 2 && hi[1] == 2 && lo[2] == 0.5 && hi[2] == 2);
    CHECK_OK(lg_plot_curve_mean(cv, 3, lg_curve_metric_index("loss"), LG_BAND_SD, x, y, lo, hi));
    /* step 10: values 3, 5, 4: mean 4, sample sd 1 */
    CHECK(fabs(lo[0] - 3) < 1e-15 && fabs(hi[0] - 5) < 1e-15 && lo[1] == 2 && hi[1] == 2);
    {
        double m = 3.5 / 3, ss = (1 - m) * (1 - m) + (0.5 - m) * (0.5 - m) + (2 - m) * (2 - m), sd = sqrt(ss / 2);
        CHECK_CLOSE(hi[2], m + sd, 1e-15, 0);
        CHECK_CLOSE(lo[2], m - sd, 1e-15, 0);
    }
    CHECK_OK(lg_plot_curve_mean(cv, 3, lg_curve_metric_index("dead_frac"), LG_BAND_MINMAX, x, y, lo, hi));
    CHECK(y[1] == 0.25 && lo[1] == 0.25 && hi[1] == 0.25);
    /* one seed: the band is the line */
    CHECK_OK(lg_plot_curve_mean(cv + 1, 1, 0, LG_BAND_SD, x, y, lo, hi));
    CHECK(y[0] == 5 && lo[0] == 5 && hi[0] == 5);
    /* seeds logged at other steps: refused */
    lg_curve_release(&cv[2]);
    make(&cv[2], c3, 3, 7);
    CHECK(lg_plot_curve_mean(cv, 3, 0, LG_BAND_MINMAX, x, y, lo, hi) == LG_EINPUT);
    lg_error_clear();
    lg_curve_release(&cv[2]);
    make(&cv[2], c3, 2, 10);
    CHECK(lg_plot_curve_mean(cv, 3, 0, LG_BAND_MINMAX, x, y, lo, hi) == LG_EINPUT);
    lg_error_clear();
    for (i = 0; i < 3; i++)
        lg_curve_release(&cv[i]);
}

static void test_svg(void)
{
    static const double x[3] = {10, 20, 30}, y[3] = {4, 2, 1}, lo[3] = {3, 1.5, 0.5}, hi[3] = {5, 2.5, 2};
    static const double y2[3] = {3, 2.5, 2};
    lg_svg_xy_series s[2] = {{"arch=topk", x, y, lo, hi, NULL, NULL, 3}, {"arch=relu", x, y2, NULL, NULL, NULL, NULL, 3}};
    lg_svg_xy p;
    lg_buf a = LG_BUF_INIT, b = LG_BUF_INIT;
    memset(&p, 0, sizeof p);
    p.title = "loss <&>";
    p.xlabel = "training step";
    p.ylabel = "loss";
    p.series = s;
    p.nseries = 2;
    CHECK_OK(lg_svg_xy_plot(&p, &a));
    CHECK_OK(lg_svg_xy_plot(&p, &b));
    CHECK(a.len > 0 && a.len == b.len && !memcmp(a.ptr, b.ptr, a.len));
    CHECK(a.ptr && strstr(a.ptr, "<polygon") && !strstr(strstr(a.ptr, "<polygon") + 1, "<polygon")); /* one band */
    CHECK(a.ptr && strstr(a.ptr, "loss &lt;&amp;&gt;"));
    {
        size_t n = 0;
        const char *q = a.ptr;
        while (q && (q = strstr(q, "<polyline")))
            n++, q++;
        CHECK(n == 2);
    }
    lg_buf_release(&a);
    p.nseries = 0;
    CHECK(lg_svg_xy_plot(&p, &a) == LG_EINPUT);
    lg_error_clear();
    lg_buf_release(&a);
    lg_buf_release(&b);
}

/* The template parser's list of curve metrics is engine/curve.h's. */
static void test_metric_names(void)
{
    static const char *const names[] = {LG_TEMPLATE_CURVE_METRICS};
    size_t i;
    CHECK(sizeof names / sizeof names[0] == LG_CURVE_NMETRICS);
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK_MSG(lg_curve_metric_name((int)i) && !strcmp(names[i], lg_curve_metric_name((int)i)), "%s", names[i]);
    CHECK(lg_curve_metric_name(LG_CURVE_NMETRICS) == NULL);
}

CHECK_MAIN(T(test_mean_band), T(test_svg), T(test_metric_names))
