/*
 * report_int.h - what the three report files share (not an API: only
 * report.c, report_evidence.c, report_plot.c and report_verify.c include it).
 *
 * report.c renders a template (values, tables, claims, provenance, the
 * walk); report_plot.c draws the {{plot ...}} directives; report_verify.c
 * records a report's "extra" and re-renders recorded reports in verify.
 * The render context (rctx) belongs to report.c; the evidence helpers below
 * live in report_evidence.c, which report.c and the plot file both call, so
 * that a plot sees its evidence exactly as a table does (the same run choice,
 * groups, filters and footnote marks) and neither file calls the other back.
 */
#ifndef LG_REPORT_INT_H
#define LG_REPORT_INT_H

#include <cjson/cJSON.h>

#include "gates/eval.h"
#include "gates/stats.h"
#include "ledger/evidence.h"
#include "ledger/report.h"
#include "ledger/template.h"

/* the claims' defaults (gates/stats.h): a report CI and a claim CI agree */
#define CI_LEVEL LG_STATS_DEFAULT_LEVEL
#define CI_RESAMPLES LG_STATS_DEFAULT_RESAMPLES
#define CI_SEED LG_STATS_DEFAULT_SEED

/* An artifact a number or plot came from. */
typedef struct {
    char *name;
    char sha[65];
} used_art;

typedef struct {
    char run_id[65];
    long seq;
    char *study;
    used_art *arts;
    size_t narts;
} used_run;

typedef struct {
    lg_ledger *lg;
    const lg_template *t;
    const lg_report_opts *o;
    lg_report *out;
    lg_evidence_ctx *ev;
    lg_eval_result **cres;    /* claim results, evaluated on first use */
    size_t ncres;
    int claims_loaded;
    used_run *runs;
    size_t nruns;
    lg_buf *cur;              /* where rendering goes: head, then tail after {{provenance}} */
    lg_buf tail;
    int have_prov;
} rctx;

typedef struct {
    char *vals[LG_TEMPLATE_MAX_BY + 1]; /* group key values */
    char *cond;                         /* a condition of the group (the first) */
} group;

/* ---- report_evidence.c: the evidence access report.c and the plots share (each
 * documented at its definition) ---- */

int rpt_derr(const rctx *c, const lg_directive *d, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
const cJSON *rpt_run_manifest(rctx *c, const char *run_id, int *err);
int rpt_use_run(rctx *c, const char *run_id, used_run **out);

int rpt_art_digest(rctx *c, const char *run_id, const char *name, char sha[65]);
int rpt_ask(rctx *c, const lg_directive *d, const lg_filter *extra, size_t nextra, const char *metric, lg_samples *s);
int rpt_cond_param(const cJSON *cond, const char *key, char **out);
/* A parameter value as shown to a reader: a number in the index's %.17g form
 * becomes its shortest text that reads back to the same double (0.3, not
 * 0.29999999999999999; never an exponent where the index wrote none), in
 * place (never longer); other text, a string such as "007" included, is
 * unchanged.
 * Only for display: filters keep the index's form. */
void rpt_shown_value(char *text);
int rpt_cond_matches(const cJSON *cond, const lg_directive *d, int *match);
int rpt_find_groups(rctx *c, const lg_directive *d, const char *run_id, const char *const *keys, size_t nk,
                    unsigned optional, group **out, size_t *nout);
void rpt_groups_free(group *g, size_t n, size_t nk);
int rpt_mark(rctx *c, const used_run *u);
int rpt_not_supported(rctx *c, const lg_directive *d, const char *what, const char *why);
int rpt_resolve(rctx *c, const lg_directive *d, const char *metric, used_run **u);
int rpt_run_conditions(rctx *c, const char *run_id, const cJSON ***out, size_t *n);
int rpt_use_art(used_run *u, const char *name, const char *sha);

/* ---- report_plot.c: the {{plot ...}} directives, dispatched from report.c's on_piece ---- */

/* {{plot hist ...}}: a histogram of a run's conditions/<cond>/maxcos.npy artifacts. */
int rpt_plot_hist(rctx *c, const lg_directive *d);
/* {{plot METRIC by PARAM [series PARAM]}}: a metric's CI per group, one line per series. */
int rpt_plot_param(rctx *c, const lg_directive *d);
/* {{plot STUDY curve ...}} and {{plot STUDY scatter ...}}: ledger/plot_xy.c draws what this reads
 * (curve artifacts hashed against the manifest, samples through the evidence provider). */
int rpt_plot_xy(rctx *c, const lg_directive *d);

#endif
