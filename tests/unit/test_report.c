/*
 * test_report.c - the template parser (ledger/template.c) and the SVG
 * writer (ledger/svg.c): directive fields, error places, escapes and fenced
 * code, FORMAT validation, deterministic well-formed SVG.
 */
#include "ledger/svg.h"
#include "ledger/template.h"
#include "tests/unit/check.h"

static lg_template *parse(const char *s)
{
    lg_template *t = NULL;
    int rc = lg_template_parse("t.md", s, strlen(s), &t);
    if (rc < 0)
        fprintf(stderr, "parse: %s\n", lg_error_msg());
    return t;
}

/* the error message of a template that must not parse */
static const char *parse_err(const char *s)
{
    lg_template *t = NULL;
    int rc = lg_template_parse("t.md", s, strlen(s), &t);
    lg_template_free(t);
    return rc == LG_EINPUT ? lg_error_msg() : "(parsed)";
}

static int concat(void *ctx, const char *lit, size_t len, const lg_directive *d)
{
    lg_buf *b = ctx;
    return d ? lg_buf_printf(b, "<%d>", (int)d->kind) : lg_buf_put(b, lit, len);
}

static void test_directives(void)
{
    lg_template *t = parse("# x\nA {{claim k4-beats-random}} B\n"
                           "{{value small-topk@abcd12 pair.mmcs where control=trained k>=4 | ci95 | %.2f%%}}\n"
                           "{{table s cell.fvu where a=\"x y\" by k, control | mean n}}\n"
                           "{{plot s mmcs-vs-param k where arch=topk | file=f/a.svg title=\"A | B\" metric=seed.mmcs_mean}}\n"
                           "{{plot s maxcos-hist | file=h.svg bins=7 series=arch}}\n{{provenance}}\n");
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK(t->n == 6);
    CHECK(t->d[0].kind == LG_DIR_CLAIM && !strcmp(t->d[0].claim_id, "k4-beats-random"));
    CHECK(t->d[0].line == 2 && t->d[0].col == 3);
    CHECK(t->d[1].kind == LG_DIR_VALUE && !strcmp(t->d[1].study, "small-topk") && !strcmp(t->d[1].run, "abcd12"));
    CHECK(t->d[1].sel.unit == LG_UNIT_PAIR && !strcmp(t->d[1].sel.metric, "mmcs") && t->d[1].sel.nfilters == 2);
    CHECK(t->d[1].sel.nfilters == 2 && t->d[1].sel.filters[1].op == LG_OP_GE && t->d[1].sel.filters[1].is_num &&
          t->d[1].sel.filters[1].num == 4);
    CHECK(t->d[1].stats[0] == LG_STAT_CI95 && !strcmp(t->d[1].fmt, "%.2f%%"));
    CHECK(t->d[2].kind == LG_DIR_TABLE && t->d[2].nby == 2 && !strcmp(t->d[2].by[1], "control"));
    CHECK(t->d[2].sel.nfilters == 1 && !strcmp(t->d[2].sel.filters[0].value, "x y"));
    CHECK(t->d[2].nstats == 2 && t->d[2].stats[1] == LG_STAT_N);
    CHECK(t->d[3].kind == LG_DIR_PLOT && t->d[3].plot == LG_PLOT_PARAM && !strcmp(t->d[3].by[0], "k"));
    CHECK(!strcmp(t->d[3].file, "f/a.svg") && !strcmp(t->d[3].title, "A | B") && !strcmp(t->d[3].series, "control"));
    CHECK(t->d[3].sel.unit == LG_UNIT_SEED && !strcmp(t->d[3].sel.metric, "mmcs_mean") && t->d[3].sel.nfilters == 1);
    CHECK(t->d[4].plot == LG_PLOT_HIST && t->d[4].bins == 7 && !strcmp(t->d[4].series, "arch"));
    CHECK(t->d[5].kind == LG_DIR_PROVENANCE);
    lg_template_free(t);
}

static void test_literals(void)
{
    lg_buf b = LG_BUF_INIT;
    lg_template *t = parse("a \\{{claim x}} b {{claim y}}\n```\n{{not parsed\n```\n~~~ md\n{{x}}\n~~~\nend {{provenance}}");
    CHECK(t != NULL);
    if (!t)
        return;
    CHECK(t->n == 2);
    CHECK_OK(lg_template_walk(t, concat, &b));
    CHECK_MSG(b.ptr && !strcmp(b.ptr, "a {{claim x}} b <0>\n```\n{{not parsed\n```\n~~~ md\n{{x}}\n~~~\nend <4>"), "%s",
              b.ptr ? b.ptr : "(null)");
    lg_buf_release(&b);
    lg_template_free(t);
}

static void test_errors(void)
{
    const char *m;
    m = parse_err("ab\ncd {{value s pair.mmcs | mode}}");
    CHECK_MSG(!strncmp(m, "t.md:2:26: unknown statistic 'mode'", 35), "%s", m);
    m = parse_err("{{value s pair.mmcs where k | mean}}");
    CHECK_MSG(!strncmp(m, "t.md:1:28:", 10) && strstr(m, "a comparison") != NULL, "%s", m);
    m = parse_err("x {{claim a");
    CHECK_MSG(!strncmp(m, "t.md:1:3: '{{' without '}}'", 27), "%s", m);
    m = parse_err("{{frob}}");
    CHECK_MSG(!strncmp(m, "t.md:1:3: unknown directive 'frob'", 34), "%s", m);
    m = parse_err("{{value s pair.mmcs | mean | %s}}");
    CHECK_MSG(strstr(m, "bad FORMAT") != NULL, "%s", m);
    m = parse_err("{{plot s mmcs-vs-param k | file=../x.svg}}");
    CHECK_MSG(strstr(m, "relative path") != NULL, "%s", m);
    m = parse_err("{{plot s maxcos-hist | title=x}}");
    CHECK_MSG(strstr(m, "needs file=") != NULL, "%s", m);
    m = parse_err("{{plot s maxcos-hist | file=a.svg}}\n{{plot s maxcos-hist | file=a.svg}}");
    CHECK_MSG(!strncmp(m, "t.md:2:1: file=a.svg is already written by the plot at line 1", 61), "%s", m);
    m = parse_err("{{table s pair.mmcs by | mean}}");
    CHECK_MSG(strstr(m, "parameter") != NULL, "%s", m);
    m = parse_err("{{value s@XYZ pair.mmcs | mean}}");
    CHECK_MSG(strstr(m, "run id prefix") != NULL, "%s", m);
    m = parse_err("{{value s pair.mmcs where k=\"4 | mean}}");
    CHECK_MSG(strstr(m, "unterminated") != NULL, "%s", m);
    CHECK(strcmp(parse_err("{{claim ok}}"), "(parsed)") == 0);
}

static void test_formats(void)
{
    char buf[64];
    CHECK(lg_template_format_ok("%.3f"));
    CHECK(lg_template_format_ok("%+08.2e"));
    CHECK(lg_template_format_ok("%.1f%%"));
    CHECK(lg_template_format_ok("k=%g"));
    CHECK(!lg_template_format_ok("%s"));
    CHECK(!lg_template_format_ok("%d"));
    CHECK(!lg_template_format_ok("%.3f %.3f"));
    CHECK(!lg_template_format_ok("%n"));
    CHECK(!lg_template_format_ok("%100f"));
    CHECK(!lg_template_format_ok("%*f"));
    CHECK(!lg_template_format_ok("plain"));
    lg_template_format(buf, sizeof buf, "%.2f%%", 12.345);
    CHECK(!strcmp(buf, "12.35%") || !strcmp(buf, "12.34%"));
    lg_template_format(buf, sizeof buf, "%.3f", NAN);
    CHECK(!strcmp(buf, "n/a"));
}

static void test_svg(void)
{
    const char *ticks[2] = {"4", "32"};
    double y1[2] = {0.9, 0.4}, lo1[2] = {0.88, 0.38}, hi1[2] = {0.92, 0.42}, y2[2] = {0.3, NAN};
    lg_svg_series s[2] = {{"trained", y1, lo1, hi1}, {"random <&>", y2, NULL, NULL}};
    lg_svg_points p = {"MMCS \"vs\" k", "k", "mean", ticks, 2, s, 2, "note"};
    lg_buf a = LG_BUF_INIT, b = LG_BUF_INIT;
    float v[6] = {0.1f, 0.5f, 0.5f, 0.99f, 1.0f, NAN};
    lg_svg_hist_series hs[1] = {{"x", v, 6}};
    lg_svg_hist h = {"h", "x", "fraction", 0, 1, 10, hs, 1, NULL};
    CHECK_OK(lg_svg_points_plot(&p, &a));
    CHECK_OK(lg_svg_points_plot(&p, &b));
    CHECK(a.len == b.len && a.ptr && b.ptr && !memcmp(a.ptr, b.ptr, a.len)); /* deterministic */
    CHECK(a.ptr && strstr(a.ptr, "random &lt;&amp;&gt;") && strstr(a.ptr, "MMCS &quot;vs&quot; k"));
    CHECK(a.ptr && !strncmp(a.ptr, "<?xml", 5) && strstr(a.ptr, "</svg>\n"));
    lg_buf_clear(&a);
    CHECK_OK(lg_svg_hist_plot(&h, &a));
    CHECK(a.ptr && strstr(a.ptr, "<rect") && strstr(a.ptr, "</svg>"));
    CHECK(lg_svg_nice_step(0, 1, 5) == 0.2);
    CHECK(lg_svg_nice_step(0.3, 0.9, 5) == 0.1);
    CHECK(lg_svg_nice_step(0, 100, 5) == 20);
    p.nx = 0;
    CHECK(lg_svg_points_plot(&p, &a) == LG_EINPUT);
    lg_buf_release(&a);
    lg_buf_release(&b);
}

static void test_alloc_failures(void)
{
    /* every allocation failure is reported as LG_ENOMEM, never a crash or leak */
    const char *s = "x {{value s pair.mmcs where k=4 | ci95 | %.2f}} {{table s pair.mmcs by k | mean}} {{claim c}}";
    long n;
    for (n = 0; n < 400; n++) {
        lg_template *t = NULL;
        int rc;
        lg_alloc_fail_after(n);
        rc = lg_template_parse("t.md", s, strlen(s), &t);
        lg_alloc_fail_after(-1);
        CHECK(rc == 0 || rc == LG_ENOMEM);
        lg_template_free(t);
        if (rc == 0)
            break;
    }
    CHECK(n < 400);
}

CHECK_MAIN(T(test_directives), T(test_literals), T(test_errors), T(test_formats), T(test_svg), T(test_alloc_failures))
