/*
 * fuzz_template.c - libFuzzer target for the report template parser
 * (ledger/template.c, template_directive.c, template_format.c) and the SVG
 * writer (ledger/svg.c).
 *
 * These files depend only on base/base.c and gates/ (the selector goes
 * through the claim parser), so they are compiled into this target directly
 * and run-fuzz.sh needs no extra sources. Invariants checked: parse either
 * succeeds or fails with LG_EINPUT / LG_ENOMEM and a "fuzz.md:LINE:COL: "
 * message (or "fuzz.md: " for whole-file limits); the pieces cover the input
 * in order; every accepted FORMAT formats without overflow; plots of the
 * numbers the input spells are well formed (start and end tags).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/svg.c"
#include "ledger/template.c"
#include "ledger/template_directive.c"
#include "ledger/template_format.c"

static int count_piece(void *ctx, const char *lit, size_t len, const lg_directive *d)
{
    size_t *n = ctx;
    (void)lit;
    *n += d ? 1 : 0;
    (void)len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lg_template *t = NULL;
    size_t i, seen = 0, prev_end = 0;
    int rc = lg_template_parse("fuzz.md", (const char *)data, size, &t);
    if (rc < 0) {
        if (rc != LG_EINPUT && rc != LG_ENOMEM)
            abort();
        if (rc == LG_EINPUT && strncmp(lg_error_msg(), "fuzz.md:", 8) != 0)
            abort();
        return 0;
    }
    for (i = 0; i < t->npieces; i++) {
        const lg_template_piece *p = &t->pieces[i];
        if (p->start + p->len > t->len && p->dir < 0)
            abort();
        if (p->dir >= 0) {
            const lg_directive *d = &t->d[p->dir];
            if ((size_t)p->dir >= t->n || d->start < prev_end || d->end > t->len)
                abort();
            prev_end = d->end;
        }
    }
    if (lg_template_walk(t, count_piece, &seen) < 0 || seen != t->n)
        abort();
    for (i = 0; i < t->n; i++) {
        const lg_directive *d = &t->d[i];
        char buf[128];
        if (!lg_template_format_ok(d->fmt))
            abort();
        lg_template_format(buf, sizeof buf, d->fmt, -1.2345678901234e300);
        if (d->kind == LG_DIR_PLOT) {
            /* a plot of numbers taken from the directive's position */
            const char *xt[2] = {d->file, d->title ? d->title : "x"};
            double y[2] = {(double)d->line, d->col * 1e-3}, lo[2] = {y[0] - 1, NAN}, hi[2] = {y[0] + 1, NAN};
            lg_svg_series s = {d->series, y, lo, hi};
            lg_svg_points pp = {d->title, "x", "y", xt, 2, &s, 1, d->file};
            float v[3] = {(float)d->bins / 100.0f, -0.5f, 2.0f};
            lg_svg_hist_series hs = {d->series, v, 3};
            lg_svg_hist h = {d->title, "x", "y", -1, 1, d->bins > 0 ? d->bins : 1, &hs, 1, NULL};
            lg_buf b = LG_BUF_INIT;
            if (lg_svg_points_plot(&pp, &b) == 0 && (strncmp(b.ptr, "<?xml", 5) || !strstr(b.ptr, "</svg>\n")))
                abort();
            lg_buf_clear(&b);
            if (lg_svg_hist_plot(&h, &b) == 0 && !strstr(b.ptr, "</svg>\n"))
                abort();
            lg_buf_release(&b);
        }
    }
    lg_template_free(t);
    return 0;
}
