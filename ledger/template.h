/*
 * template.h - the report template language: Markdown with directives.
 *
 * A template is Markdown; a directive is `{{ ... }}` on one line. Outside
 * fenced code blocks (lines opening with ``` or ~~~) every `{{` starts a
 * directive; `\{{` is a literal `{{`. Directives (templates/README.md):
 *
 *   {{claim ID}}
 *   {{value STUDY[@RUN] UNIT.METRIC [where FILTERS] | STAT [| FORMAT]}}
 *   {{table STUDY[@RUN] UNIT.METRIC [where FILTERS] by P1[, P2...] [| STAT...] [| FORMAT]}}
 *   {{plot STUDY[@RUN] mmcs-vs-param PARAM [where FILTERS] | file=NAME.svg [metric=UNIT.METRIC]
 *         [series=PARAM] [title="..."]}}
 *   {{plot STUDY[@RUN] maxcos-hist [where FILTERS] | file=NAME.svg [bins=N] [series=PARAM] [title="..."]}}
 *   {{plot STUDY[@RUN] curve METRIC [where FILTERS] | file=NAME.svg [band=minmax|sd] [title="..."]}}
 *   {{plot STUDY[@RUN] scatter UNIT.X UNIT.Y [where FILTERS] | file=NAME.svg [series=PARAM] [title="..."]}}
 *   {{provenance}}
 *
 * UNIT.METRIC [where FILTERS] is the claim language's sample selector,
 * parsed by gates/claims.c itself (one definition of the filter syntax and,
 * through lg_filter_match, of its semantics). STAT is one of mean sd se min
 * max median n ci95 (percentile bootstrap 95% CI of the mean, 10000
 * resamples, seed 1). FORMAT is a printf conversion for one double
 * (`%[flags][width][.precision](f|e|g)`, with literal text and `%%` around
 * it), default "%.3f" ("%.0f" for n).
 *
 * This file only parses (no ledger access): the fuzz target links it with
 * base/base.c and gates/ alone. Errors are LG_EINPUT with the message
 * "PATH:LINE:COL: message" (1-based, COL counts bytes).
 */
#ifndef LG_TEMPLATE_H
#define LG_TEMPLATE_H

#include <stddef.h>

#include "gates/claims.h"

#define LG_TEMPLATE_MAX_FILE (4u << 20)   /* bytes */
#define LG_TEMPLATE_MAX_DIRECTIVE 4096     /* bytes between {{ and }} */
#define LG_TEMPLATE_MAX_DIRECTIVES 10000
#define LG_TEMPLATE_MAX_STATS 8
#define LG_TEMPLATE_MAX_BY 4
#define LG_TEMPLATE_MAX_BINS 200

typedef enum {
    LG_DIR_CLAIM = 0,
    LG_DIR_VALUE,
    LG_DIR_TABLE,
    LG_DIR_PLOT,
    LG_DIR_PROVENANCE
} lg_dir_kind;

typedef enum { LG_PLOT_PARAM = 0, LG_PLOT_HIST = 1, LG_PLOT_CURVE = 2, LG_PLOT_SCATTER = 3 } lg_plot_kind;

/* curve: the band around the mean over seeds */
typedef enum { LG_BAND_MINMAX = 0, LG_BAND_SD = 1 } lg_band_kind;

/* The metrics of a training curve (engine/curve.h's names; this parser does
 * not link the engine; test_plot_xy checks that the lists agree). */
#define LG_TEMPLATE_CURVE_METRICS "loss", "mse", "l0", "dead_frac", "aux_loss", "lr"

typedef enum {
    LG_STAT_MEAN = 0, LG_STAT_SD, LG_STAT_SE, LG_STAT_MIN, LG_STAT_MAX, LG_STAT_MEDIAN, LG_STAT_N, LG_STAT_CI95
} lg_stat;

/* The part "UNIT.METRIC where FILTERS" (from the claim parser). */
typedef struct {
    lg_unit unit;
    char *metric;
    lg_filter *filters;   /* [nfilters], owned */
    size_t nfilters;
} lg_selector;

typedef struct {
    lg_dir_kind kind;
    int line, col;        /* of the opening "{{" */
    size_t start, end;    /* bytes [start, end) of the template, "{{" .. "}}" inclusive */
    char *claim_id;       /* claim */
    char *study;          /* value, table, plot */
    char *run;            /* pinned run id prefix (STUDY@RUN), or NULL */
    lg_selector sel;      /* value, table, plot (mmcs-vs-param: the metric option, default pair.mmcs) */
    char *by[LG_TEMPLATE_MAX_BY]; /* table: grouping parameters; plot param: by[0] = the x parameter */
    size_t nby;
    lg_stat stats[LG_TEMPLATE_MAX_STATS];
    size_t nstats;
    char fmt[40];         /* validated printf conversion for one double */
    int fmt_set;
    lg_plot_kind plot;
    char *file;           /* plot: output name (relative, ends in .svg) */
    char *title;          /* plot: title or NULL */
    char *series;         /* plot: the parameter whose values are the series (default "control") */
    int bins;             /* hist */
    char *curve;          /* curve: the metric (LG_TEMPLATE_CURVE_METRICS); sel is cell.final_loss + filters */
    lg_band_kind band;    /* curve */
    lg_selector xsel;     /* scatter: the x metric (no filters; sel is y with the filters) */
} lg_directive;

/* The template as a sequence of pieces: literal bytes or a directive. */
typedef struct {
    size_t start, len;    /* literal: bytes of text (an escape `\{{` gives the piece "{{") */
    long dir;             /* index into d, or -1 for a literal */
} lg_template_piece;

typedef struct {
    char *path;
    char *text;           /* the template bytes, NUL-terminated copy */
    size_t len;
    lg_directive *d;      /* [n] in order of appearance */
    size_t n;
    lg_template_piece *pieces; /* [npieces] covering the text in order */
    size_t npieces;
} lg_template;

/* Parses `len` bytes (need not be NUL-terminated; a NUL byte is an error).
 * *out: new template, free with lg_template_free. */
int lg_template_parse(const char *path, const char *text, size_t len, lg_template **out);
/* Reads (at most LG_TEMPLATE_MAX_FILE bytes) and parses a file. */
int lg_template_load(const char *path, lg_template **out);
void lg_template_free(lg_template *t);   /* accepts NULL */

/* Iterates the literal text between directives: calls fn for each literal
 * chunk (escapes `\{{` already turned into `{{`) and directive in order.
 * fn returns < 0 to stop (returned). */
typedef int (*lg_template_fn)(void *ctx, const char *lit, size_t len, const lg_directive *d);
int lg_template_walk(const lg_template *t, lg_template_fn fn, void *ctx);

const char *lg_stat_name(lg_stat s);
/* Checks a FORMAT ("%.3f", "%+.2e%%", "k=%g"): exactly one conversion
 * f/F/e/E/g/G with optional flags "-+ 0#", width <= 2 digits, precision <= 2
 * digits; other text printable ASCII, '%' only as "%%". 1 valid, 0 not. */
int lg_template_format_ok(const char *fmt);
/* snprintf of one double with a format that passed lg_template_format_ok;
 * NaN prints "n/a". */
void lg_template_format(char *buf, size_t n, const char *fmt, double v);

#endif
