/*
 * template_directive.c - parser of one report-template directive (part of
 * template.c, see template.h; the parser state is in template_int.h).
 *
 * A directive's body is tokenised into '|'-separated segments of
 * whitespace-separated words ("..." strings may hold blanks and '|'), then
 * read by kind: claim, value, table, plot, provenance. The selector part
 * (UNIT.METRIC where FILTERS) is wrapped into a one-claim text and handed to
 * lg_claims_parse, so that a template filter means exactly what a claim
 * filter means; error columns are mapped back to the template (derr). Kept
 * apart from template.c, which only finds the directives in the text and
 * keeps the pieces in order.
 */
#include "ledger/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "ledger/template_int.h"

static const char *const stat_names[] = {"mean", "sd", "se", "min", "max", "median", "n", "ci95"};

const char *lg_stat_name(lg_stat s) { return (unsigned)s < 8 ? stat_names[s] : "?"; }

/* ---- the parser state ----------------------------------------------------------- */

static int derr(const dparser *p, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int derr(const dparser *p, size_t off, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lg_error_set(LG_EINPUT, "%s:%d:%d: %s", p->path, p->line, p->col + (int)off, msg);
}

typedef struct {
    size_t start, end; /* raw bytes in body */
    char *text;        /* unquoted value */
} token;

#define MAX_TOKENS 64
#define MAX_SEGS 8

typedef struct {
    token tok[MAX_TOKENS];
    size_t ntok;
    size_t start, end; /* raw bytes of the segment */
} segment;

typedef struct {
    segment seg[MAX_SEGS];
    size_t nseg;
} tokens;

static void tokens_release(tokens *t)
{
    size_t i, j;
    for (i = 0; i < t->nseg; i++)
        for (j = 0; j < t->seg[i].ntok; j++)
            lg_free(t->seg[i].tok[j].text);
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Splits the body into segments and tokens. A ',' ends a word and is a token of its own. */
static int tokenize(const dparser *p, tokens *t)
{
    size_t i = 0;
    segment *s;
    memset(t, 0, sizeof *t);
    t->nseg = 1;
    s = &t->seg[0];
    s->start = 0;
    while (i < p->len) {
        char c = p->body[i];
        token *tk;
        if (is_blank(c)) {
            i++;
            continue;
        }
        if (c == '|') {
            s->end = i;
            if (t->nseg == MAX_SEGS)
                return derr(p, i, "more than %d '|' segments", MAX_SEGS);
            s = &t->seg[t->nseg++];
            s->start = i + 1;
            i++;
            continue;
        }
        if (s->ntok == MAX_TOKENS)
            return derr(p, i, "more than %d words in a segment", MAX_TOKENS);
        tk = &s->tok[s->ntok];
        tk->start = i;
        if (c == ',') {
            i++;
            if (!(tk->text = lg_strdup(",")))
                return LG_ENOMEM;
        } else {
            lg_buf b = LG_BUF_INIT;
            int err = 0;
            while (i < p->len && !is_blank(p->body[i]) && p->body[i] != '|' && p->body[i] != ',') {
                if (p->body[i] == '"') {
                    size_t q = i++;
                    while (i < p->len && p->body[i] != '"') {
                        if (p->body[i] == '\\' && i + 1 < p->len && (p->body[i + 1] == '"' || p->body[i + 1] == '\\'))
                            i++;
                        if ((err = lg_buf_put(&b, &p->body[i], 1)) < 0)
                            break;
                        i++;
                    }
                    if (err == 0 && i >= p->len)
                        err = derr(p, q, "unterminated string");
                    if (err < 0) {
                        lg_buf_release(&b);
                        return err;
                    }
                    i++; /* closing quote */
                } else {
                    if ((err = lg_buf_put(&b, &p->body[i], 1)) < 0) {
                        lg_buf_release(&b);
                        return err;
                    }
                    i++;
                }
            }
            if (!b.ptr && (err = lg_buf_puts(&b, "")) < 0)
                return err;
            tk->text = lg_buf_detach(&b);
            if (!tk->text)
                return LG_ENOMEM;
        }
        tk->end = i;
        s->ntok++;
    }
    s->end = p->len;
    return 0;
}

/* ---- the selector, through the claim parser ----------------------------------------- */

#define SEL_PREFIX "  sample s = "

/* Parses `prefix` + body[start, end) as a claim sample selector into sel.
 * Errors name the template place: columns inside the raw text map back. */
static int parse_selector(const dparser *p, const char *prefix, size_t start, size_t end, lg_selector *sel)
{
    lg_buf text = LG_BUF_INIT;
    lg_claim_file *f = NULL;
    int err;
    if ((err = lg_buf_printf(&text, "claim t\n  says \"t\"\n  study t\n" SEL_PREFIX "%s%.*s\n  require n(s) >= 0\nend\n",
                             prefix, (int)(end - start), p->body + start)) < 0)
        goto out;
    if ((err = lg_claims_parse("", text.ptr, text.len, &f)) < 0) {
        /* message ":LINE:COL: msg" */
        const char *m = lg_error_msg();
        int line = 0, col = 0, used = 0;
        char msg[512];
        if (err == LG_ENOMEM)
            goto out;
        if (sscanf(m, ":%d:%d: %n", &line, &col, &used) == 2 && used > 0) {
            long c = (long)col - 1 - (long)strlen(SEL_PREFIX) - (long)strlen(prefix);
            snprintf(msg, sizeof msg, "%s", m + used);
            if (line != 4 || c < 0)
                c = 0;
            if (c > (long)(end - start))
                c = (long)(end - start);
            err = derr(p, start + (size_t)c, "%s", msg);
        } else {
            snprintf(msg, sizeof msg, "%s", m);
            err = derr(p, start, "%s", msg);
        }
        goto out;
    }
    if (f->nclaims != 1 || f->claims[0].nsamples != 1) {
        err = derr(p, start, "not a selector (UNIT.METRIC [where FILTERS])");
        goto out;
    }
    {
        lg_sample_decl *s = &f->claims[0].samples[0];
        sel->unit = s->unit;
        sel->metric = s->metric;
        sel->filters = s->filters;
        sel->nfilters = s->nfilters;
        s->metric = NULL;
        s->filters = NULL;
        s->nfilters = 0;
    }
out:
    lg_claims_free(f);
    lg_buf_release(&text);
    return err;
}

static void selector_release(lg_selector *sel)
{
    size_t i;
    lg_free(sel->metric);
    for (i = 0; i < sel->nfilters; i++) {
        lg_free(sel->filters[i].key);
        lg_free(sel->filters[i].value);
    }
    lg_free(sel->filters);
    memset(sel, 0, sizeof *sel);
}

void template_directive_release(lg_directive *d)
{
    size_t i;
    lg_free(d->claim_id);
    lg_free(d->study);
    lg_free(d->run);
    selector_release(&d->sel);
    for (i = 0; i < d->nby; i++)
        lg_free(d->by[i]);
    lg_free(d->file);
    lg_free(d->title);
    lg_free(d->series);
    lg_free(d->curve);
    selector_release(&d->xsel);
}

/* ---- pieces of a directive --------------------------------------------------------- */

static int is_name(const char *s, const char *extra)
{
    size_t i;
    if (!s[0] || strlen(s) > LG_CLAIMS_MAX_NAME)
        return 0;
    for (i = 0; s[i]; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              (extra && strchr(extra, c))))
            return 0;
    }
    return 1;
}

/* STUDY[@RUN] */
static int parse_study(const dparser *p, const token *tk, lg_directive *d)
{
    const char *at = strchr(tk->text, '@');
    size_t n = at ? (size_t)(at - tk->text) : strlen(tk->text);
    size_t i;
    if (n == 0 || n > LG_CLAIMS_MAX_NAME)
        return derr(p, tk->start, "expected a study name");
    for (i = 0; i < n; i++)
        if ((unsigned char)tk->text[i] < 0x21 || tk->text[i] == '"')
            return derr(p, tk->start, "bad character in the study name");
    if (!(d->study = lg_strndup(tk->text, n)))
        return LG_ENOMEM;
    if (at) {
        const char *r = at + 1;
        size_t rl = strlen(r);
        if (rl < 4 || rl > 64 || strspn(r, "0123456789abcdef") != rl)
            return derr(p, tk->start + n + 1, "expected a run id prefix (4 to 64 lowercase hex digits) after '@'");
        if (!(d->run = lg_strdup(r)))
            return LG_ENOMEM;
    }
    return 0;
}

static int parse_stat(const dparser *p, const token *tk, lg_stat *out)
{
    size_t i;
    for (i = 0; i < 8; i++)
        if (!strcmp(tk->text, stat_names[i])) {
            *out = (lg_stat)i;
            return 0;
        }
    return derr(p, tk->start, "unknown statistic '%s' (mean, sd, se, min, max, median, n, ci95)", tk->text);
}

static int parse_format(const dparser *p, const segment *s, lg_directive *d)
{
    if (s->ntok != 1)
        return derr(p, s->ntok ? s->tok[1].start : s->start, "expected one FORMAT (e.g. %%.3f)");
    if (!lg_template_format_ok(s->tok[0].text))
        return derr(p, s->tok[0].start,
                    "bad FORMAT '%.40s': one conversion %%[flags][width][.prec](f|e|g), '%%%%' for a literal '%%'",
                    s->tok[0].text);
    snprintf(d->fmt, sizeof d->fmt, "%s", s->tok[0].text);
    d->fmt_set = 1;
    return 0;
}

/* A segment that is a FORMAT (holds a '%'). */
static int seg_is_format(const segment *s) { return s->ntok >= 1 && strchr(s->tok[0].text, '%') != NULL; }

static int parse_value(const dparser *p, tokens *t, lg_directive *d)
{
    segment *s0 = &t->seg[0];
    int err;
    if (s0->ntok < 3)
        return derr(p, s0->ntok ? s0->tok[s0->ntok - 1].end : 0, "expected: value STUDY UNIT.METRIC [where FILTERS] | STAT [| FORMAT]");
    if ((err = parse_study(p, &s0->tok[1], d)) < 0 ||
        (err = parse_selector(p, "", s0->tok[2].start, s0->end, &d->sel)) < 0)
        return err;
    if (t->nseg < 2 || t->seg[1].ntok != 1)
        return derr(p, t->nseg < 2 ? s0->end : t->seg[1].start, "expected '| STAT' (mean, sd, se, min, max, median, n, ci95)");
    if ((err = parse_stat(p, &t->seg[1].tok[0], &d->stats[0])) < 0)
        return err;
    d->nstats = 1;
    if (t->nseg >= 3 && (err = parse_format(p, &t->seg[2], d)) < 0)
        return err;
    if (t->nseg > 3)
        return derr(p, t->seg[3].start - 1, "unexpected '|'");
    return 0;
}

static int parse_table(const dparser *p, tokens *t, lg_directive *d)
{
    segment *s0 = &t->seg[0];
    size_t i, by = 0;
    int err;
    for (i = 3; i < s0->ntok; i++)
        if (!strcmp(s0->tok[i].text, "by"))
            by = i;
    if (s0->ntok < 3 || !by)
        return derr(p, s0->end, "expected: table STUDY UNIT.METRIC [where FILTERS] by PARAM[, PARAM...] [| STAT...] [| FORMAT]");
    if ((err = parse_study(p, &s0->tok[1], d)) < 0 ||
        (err = parse_selector(p, "", s0->tok[2].start, s0->tok[by].start, &d->sel)) < 0)
        return err;
    for (i = by + 1; i < s0->ntok; i++) {
        const token *tk = &s0->tok[i];
        int want_name = ((i - by) % 2) == 1;
        if (want_name) {
            if (!is_name(tk->text, ".-"))
                return derr(p, tk->start, "expected a parameter name");
            if (d->nby == LG_TEMPLATE_MAX_BY)
                return derr(p, tk->start, "more than %d 'by' parameters", LG_TEMPLATE_MAX_BY);
            if (!(d->by[d->nby++] = lg_strdup(tk->text)))
                return LG_ENOMEM;
        } else if (strcmp(tk->text, ",") != 0) {
            return derr(p, tk->start, "expected ',' between 'by' parameters");
        }
    }
    if (d->nby == 0 || !strcmp(s0->tok[s0->ntok - 1].text, ","))
        return derr(p, s0->end, "expected a parameter name after 'by'");
    i = 1;
    if (t->nseg > i && !seg_is_format(&t->seg[i])) {
        size_t j;
        if (t->seg[i].ntok == 0)
            return derr(p, t->seg[i].start, "expected statistics");
        for (j = 0; j < t->seg[i].ntok; j++) {
            if (d->nstats == LG_TEMPLATE_MAX_STATS)
                return derr(p, t->seg[i].tok[j].start, "more than %d statistics", LG_TEMPLATE_MAX_STATS);
            if ((err = parse_stat(p, &t->seg[i].tok[j], &d->stats[d->nstats++])) < 0)
                return err;
        }
        i++;
    } else {
        d->stats[0] = LG_STAT_MEAN;
        d->stats[1] = LG_STAT_SD;
        d->stats[2] = LG_STAT_N;
        d->nstats = 3;
    }
    if (t->nseg > i && (err = parse_format(p, &t->seg[i], d)) < 0)
        return err;
    if (t->nseg > i + 1)
        return derr(p, t->seg[i + 1].start - 1, "unexpected '|'");
    return 0;
}

static int check_file_name(const dparser *p, const token *tk, const char *v)
{
    size_t n = strlen(v), i;
    if (n < 5 || n > 200 || strcmp(v + n - 4, ".svg") != 0)
        return derr(p, tk->start, "file= must name a .svg file");
    if (v[0] == '/' || strstr(v, "..") || strstr(v, "//") || v[n - 5] == '/')
        return derr(p, tk->start, "file= must be a relative path inside the report folder");
    for (i = 0; i < n; i++)
        if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') || (v[i] >= '0' && v[i] <= '9') ||
              strchr("._-/", v[i])))
            return derr(p, tk->start, "file= may use letters, digits and . _ - /");
    return 0;
}

static int parse_plot(const dparser *p, tokens *t, lg_directive *d)
{
    segment *s0 = &t->seg[0];
    size_t i, where_at;
    const char *metric = "pair.mmcs";
    int err;
    if (s0->ntok < 3)
        return derr(p, s0->end, "expected: plot STUDY mmcs-vs-param PARAM | file=NAME.svg, plot STUDY maxcos-hist | "
                                "file=NAME.svg, plot STUDY curve METRIC | file=NAME.svg or plot STUDY scatter "
                                "UNIT.X UNIT.Y | file=NAME.svg");
    if ((err = parse_study(p, &s0->tok[1], d)) < 0)
        return err;
    if (!strcmp(s0->tok[2].text, "mmcs-vs-param")) {
        d->plot = LG_PLOT_PARAM;
        if (s0->ntok < 4 || !is_name(s0->tok[3].text, ".-") || !strcmp(s0->tok[3].text, "where"))
            return derr(p, s0->ntok < 4 ? s0->end : s0->tok[3].start, "expected the x-axis parameter after mmcs-vs-param");
        if (!(d->by[0] = lg_strdup(s0->tok[3].text)))
            return LG_ENOMEM;
        d->nby = 1;
        where_at = 4;
    } else if (!strcmp(s0->tok[2].text, "maxcos-hist")) {
        d->plot = LG_PLOT_HIST;
        where_at = 3;
        d->bins = 20;
    } else if (!strcmp(s0->tok[2].text, "curve")) {
        static const char *const names[] = {LG_TEMPLATE_CURVE_METRICS};
        size_t k;
        d->plot = LG_PLOT_CURVE;
        if (s0->ntok < 4 || !strcmp(s0->tok[3].text, "where"))
            return derr(p, s0->ntok < 4 ? s0->end : s0->tok[3].start,
                        "expected the curve metric after curve (loss, mse, l0, dead_frac, aux_loss, lr)");
        for (k = 0; k < sizeof names / sizeof names[0] && strcmp(names[k], s0->tok[3].text); k++)
            ;
        if (k == sizeof names / sizeof names[0])
            return derr(p, s0->tok[3].start, "unknown curve metric '%.40s' (loss, mse, l0, dead_frac, aux_loss, lr)",
                        s0->tok[3].text);
        if (!(d->curve = lg_strdup(s0->tok[3].text)))
            return LG_ENOMEM;
        metric = "cell.final_loss"; /* the trained cells: what resolves the run */
        where_at = 4;
    } else if (!strcmp(s0->tok[2].text, "scatter")) {
        d->plot = LG_PLOT_SCATTER;
        if (s0->ntok < 5 || !strcmp(s0->tok[3].text, "where") || !strcmp(s0->tok[4].text, "where"))
            return derr(p, s0->ntok < 5 ? s0->end : s0->tok[3].start, "expected two metrics after scatter: UNIT.X UNIT.Y");
        if ((err = parse_selector(p, "", s0->tok[3].start, s0->tok[3].end, &d->xsel)) < 0)
            return err;
        metric = s0->tok[4].text;
        where_at = 5;
    } else {
        return derr(p, s0->tok[2].start, "unknown plot '%s' (mmcs-vs-param, maxcos-hist, curve, scatter)",
                    s0->tok[2].text);
    }
    if (where_at < s0->ntok && strcmp(s0->tok[where_at].text, "where") != 0)
        return derr(p, s0->tok[where_at].start, "expected 'where' or '|'");
    if (t->nseg < 2)
        return derr(p, s0->end, "expected '| file=NAME.svg'");
    for (i = 1; i < t->nseg; i++) {
        size_t j;
        if (i > 1)
            return derr(p, t->seg[i].start - 1, "unexpected '|'");
        for (j = 0; j < t->seg[i].ntok; j++) {
            const token *tk = &t->seg[i].tok[j];
            const char *eq = strchr(tk->text, '=');
            const char *v = eq ? eq + 1 : "";
            size_t kl = eq ? (size_t)(eq - tk->text) : 0;
            char **slot = NULL;
            if (!eq || !*v)
                return derr(p, tk->start, "expected KEY=VALUE (file, title, series, metric, bins, band)");
            if (kl == 4 && !strncmp(tk->text, "file", 4)) {
                if ((err = check_file_name(p, tk, v)) < 0)
                    return err;
                slot = &d->file;
            } else if (kl == 5 && !strncmp(tk->text, "title", 5)) {
                size_t k;
                for (k = 0; v[k]; k++)
                    if ((unsigned char)v[k] < 0x20)
                        return derr(p, tk->start, "control character in title");
                slot = &d->title;
            } else if (kl == 4 && !strncmp(tk->text, "band", 4) && d->plot == LG_PLOT_CURVE) {
                if (strcmp(v, "minmax") && strcmp(v, "sd"))
                    return derr(p, tk->start, "band= must be minmax or sd");
                d->band = strcmp(v, "sd") ? LG_BAND_MINMAX : LG_BAND_SD;
                continue;
            } else if (kl == 6 && !strncmp(tk->text, "series", 6) && d->plot != LG_PLOT_CURVE) {
                if (!is_name(v, ".-"))
                    return derr(p, tk->start, "series= must name a parameter");
                slot = &d->series;
            } else if (kl == 6 && !strncmp(tk->text, "metric", 6) && d->plot == LG_PLOT_PARAM) {
                metric = v;
                continue;
            } else if (kl == 4 && !strncmp(tk->text, "bins", 4) && d->plot == LG_PLOT_HIST) {
                long b;
                if (lg_parse_long(v, &b) < 0 || b < 2 || b > LG_TEMPLATE_MAX_BINS) {
                    lg_error_clear();
                    return derr(p, tk->start, "bins= must be an integer from 2 to %d", LG_TEMPLATE_MAX_BINS);
                }
                d->bins = (int)b;
                continue;
            } else {
                return derr(p, tk->start, "unknown plot option '%.*s' (%s)", (int)kl, tk->text,
                            d->plot == LG_PLOT_PARAM   ? "file, title, series, metric"
                            : d->plot == LG_PLOT_HIST  ? "file, title, series, bins"
                            : d->plot == LG_PLOT_CURVE ? "file, title, band"
                                                       : "file, title, series");
            }
            if (*slot)
                return derr(p, tk->start, "option given twice");
            if (!(*slot = lg_strdup(v)))
                return LG_ENOMEM;
        }
    }
    if (!d->file)
        return derr(p, t->seg[1].start, "a plot needs file=NAME.svg");
    if (!d->series && !(d->series = lg_strdup("control")))
        return LG_ENOMEM;
    /* the selector: METRIC + the where part */
    {
        lg_buf pre = LG_BUF_INIT;
        size_t start = where_at < s0->ntok ? s0->tok[where_at].start : s0->end;
        if (d->plot == LG_PLOT_HIST)
            metric = "pair.maxcos";
        if ((err = lg_buf_printf(&pre, "%s ", metric)) < 0)
            return err;
        err = parse_selector(p, pre.ptr, start, s0->end, &d->sel);
        lg_buf_release(&pre);
        if (err < 0)
            return err;
    }
    return 0;
}

/* Parses one directive body. */
int template_parse_directive(const dparser *p, lg_directive *d)
{
    tokens t;
    segment *s0;
    int err = 0;
    if ((err = tokenize(p, &t)) < 0)
        goto out;
    s0 = &t.seg[0];
    if (s0->ntok == 0) {
        err = derr(p, 0, "empty directive (claim, value, table, plot, provenance)");
        goto out;
    }
    if (!strcmp(s0->tok[0].text, "claim")) {
        d->kind = LG_DIR_CLAIM;
        if (s0->ntok != 2 || t.nseg != 1 || !is_name(s0->tok[1].text, "-.")) {
            err = derr(p, s0->ntok >= 2 ? s0->tok[1].start : s0->end, "expected: claim ID");
            goto out;
        }
        if (!(d->claim_id = lg_strdup(s0->tok[1].text)))
            err = LG_ENOMEM;
    } else if (!strcmp(s0->tok[0].text, "value")) {
        d->kind = LG_DIR_VALUE;
        err = parse_value(p, &t, d);
    } else if (!strcmp(s0->tok[0].text, "table")) {
        d->kind = LG_DIR_TABLE;
        err = parse_table(p, &t, d);
    } else if (!strcmp(s0->tok[0].text, "plot")) {
        d->kind = LG_DIR_PLOT;
        err = parse_plot(p, &t, d);
    } else if (!strcmp(s0->tok[0].text, "provenance")) {
        d->kind = LG_DIR_PROVENANCE;
        if (s0->ntok != 1 || t.nseg != 1)
            err = derr(p, s0->ntok > 1 ? s0->tok[1].start : s0->end, "provenance takes no arguments");
    } else {
        err = derr(p, s0->tok[0].start, "unknown directive '%.40s' (claim, value, table, plot, provenance)",
                   s0->tok[0].text);
    }
    if (err == 0 && !d->fmt_set)
        snprintf(d->fmt, sizeof d->fmt, "%s", d->nstats == 1 && d->stats[0] == LG_STAT_N ? "%.0f" : "%.3f");
out:
    tokens_release(&t);
    return err;
}
