/*
 * test_svg_colour.c - ledger/svg.c gives a series its colour by name for the
 * two series every study has: "trained" is the same blue and "random" the
 * same grey in every plot, whatever their position or the other series.
 */
#include "check.h"
#include "ledger/svg.h"

/* colour of the i-th series group of a points plot ("<g stroke=C fill=C>") or histogram ("<g fill=C fill-opacity") */
static int series_colour(const char *svg, int hist, int i, char out[8])
{
    const char *p = svg, *pat = hist ? "<g fill=\"#" : "<g stroke=\"#";
    int n = -1;
    while ((p = strstr(p, pat))) {
        p += strlen(pat) - 1;
        if (hist ? !strncmp(p + 7, "\" fill-opacity", 14) : !strncmp(p + 7, "\" fill=\"", 8))
            if (++n == i) {
                memcpy(out, p, 7);
                out[7] = '\0';
                return 0;
            }
    }
    return -1;
}

static void points(const char *const *names, size_t n, lg_buf *out)
{
    static const char *ticks[2] = {"4", "16"};
    static double y[2] = {0.5, 0.6};
    lg_svg_series s[4];
    lg_svg_points p = {"t", "k", "mmcs", ticks, 2, s, n, NULL};
    size_t i;
    for (i = 0; i < n; i++) {
        s[i].name = names[i];
        s[i].y = y;
        s[i].lo = s[i].hi = NULL;
    }
    lg_buf_clear(out);
    CHECK_OK(lg_svg_points_plot(&p, out));
}

static void test_fixed_colours(void)
{
    const char *a[2] = {"trained", "random"}, *b[2] = {"random", "trained"}, *c[3] = {"k=4", "x", "trained"};
    const char *d[1] = {"trained"};
    lg_buf out = LG_BUF_INIT;
    char col[8], first[8];
    float v[3] = {0.1f, 0.5f, 0.9f};
    lg_svg_hist_series hs[2] = {{"random", v, 3}, {"trained", v, 3}};
    lg_svg_hist h = {"h", "x", "fraction", 0, 1, 5, hs, 2, NULL};

    points(a, 2, &out);
    CHECK(series_colour(out.ptr, 0, 0, first) == 0);
    CHECK(series_colour(out.ptr, 0, 1, col) == 0 && strcmp(col, "#7f7f7f") == 0);
    points(b, 2, &out);
    CHECK(series_colour(out.ptr, 0, 1, col) == 0 && strcmp(col, first) == 0); /* trained second: same colour */
    CHECK(series_colour(out.ptr, 0, 0, col) == 0 && strcmp(col, "#7f7f7f") == 0);
    points(c, 3, &out);
    CHECK(series_colour(out.ptr, 0, 2, col) == 0 && strcmp(col, first) == 0);
    {
        char c0[8], c1[8];
        CHECK(series_colour(out.ptr, 0, 0, c0) == 0 && series_colour(out.ptr, 0, 1, c1) == 0);
        CHECK(strcmp(c0, first) != 0 && strcmp(c1, first) != 0 && strcmp(c0, c1) != 0); /* others never take trained's */
    }
    points(d, 1, &out);
    CHECK(series_colour(out.ptr, 0, 0, col) == 0 && strcmp(col, first) == 0);
    /* the legend swatch uses the series' colour */
    CHECK(strstr(out.ptr, "fill=\"#1f77b4\"/>") != NULL && strcmp(first, "#1f77b4") == 0);
    lg_buf_clear(&out);
    CHECK_OK(lg_svg_hist_plot(&h, &out));
    CHECK(series_colour(out.ptr, 1, 1, col) == 0 && strcmp(col, first) == 0);
    CHECK(series_colour(out.ptr, 1, 0, col) == 0 && strcmp(col, "#7f7f7f") == 0);
    lg_buf_release(&out);
}

CHECK_MAIN(T(test_fixed_colours))
