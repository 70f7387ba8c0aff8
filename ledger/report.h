/*
 * report.h - render a report template (ledger/template.h) against the
 * evidence of the ledger, and verify recorded reports.
 *
 * Every number comes from the latest ok run of the named study (or the
 * pinned run) through the evidence provider (ledger/evidence.h), so a
 * report sees exactly what `ledger check` sees: the same run choice, the
 * same STALE / MISSING rules, the same filter semantics. Every directive
 * that shows a number or a verdict carries a footnote marker [^run-SEQ]
 * pointing at the provenance appendix, which lists each run used (id =
 * SHA-256 of its manifest, which holds the results), its engine version,
 * backend and device, spec and data digests, and the SHA-256 of every
 * artifact numbers were taken from.
 *
 * Strict by default: a claim whose verdict is not ok (PASS or XFAIL), or a
 * directive whose evidence is MISSING or STALE, makes lg_report_render
 * return LG_ECHECK with "TEMPLATE:LINE:COL: ..." (exit 1). With
 * allow_failing it renders "**NOT SUPPORTED** (...)" in place and counts it.
 * An unknown claim id or a parameter the conditions lack is LG_EINPUT.
 *
 * Rendering is deterministic: the same template bytes and the same evidence
 * give the same bytes (Markdown and SVG). That is what verify relies on.
 */
#ifndef LG_REPORT_H
#define LG_REPORT_H

#include <cjson/cJSON.h>

#include "base/base.h"
#include "ledger/ledger.h"
#include "ledger/template.h"
#include "ledger/problems.h"

typedef struct {
    int allow_failing;
    char *const *claim_paths;  /* claim files; NULL with nclaim_paths 0 = <repo>/claims/ *.claims */
    size_t nclaim_paths;
} lg_report_opts;

typedef struct {
    char *name;                /* relative output name ("mmcs_vs_k.svg") */
    lg_buf data;
} lg_report_file;

typedef struct {
    char run_id[65];
    long seq;
    char *study;
} lg_report_run;

typedef struct {
    char *id;
    const char *verdict;       /* static: lg_verdict_name */
    int ok;
} lg_report_claim;

typedef struct {
    lg_buf md;                 /* the rendered Markdown */
    lg_report_file *svgs;      /* [nsvgs] in template order */
    size_t nsvgs;
    lg_report_run *runs;       /* [nruns] in order of first use */
    size_t nruns;
    lg_report_claim *claims;   /* [nclaims] claims shown */
    size_t nclaims;
    char **claim_paths;        /* [nclaim_paths] claim files evaluated (absolute) */
    size_t nclaim_paths;
    size_t nfailing;           /* directives rendered NOT SUPPORTED (allow_failing) */
} lg_report;

/* Renders t into *out (zeroed first; release with lg_report_release, also
 * after an error). Returns 0, LG_ECHECK (strict and something not
 * supported), LG_EINPUT, or an I/O / internal error. */
int lg_report_render(lg_ledger *lg, const lg_template *t, const lg_report_opts *o, lg_report *out);
void lg_report_release(lg_report *r);

/* The "extra" object recorded with a report run:
 * {"report_format": 1, "template": PATH (relative to the repo root when
 *  inside it), "template_output": NAME, "output": NAME, "allow_failing": bool,
 *  "claim_files": [PATH...], "runs": [{"run_id", "seq", "study"}],
 *  "claims": [{"id", "verdict"}], "svgs": [NAME...], "not_supported": N}.
 * Caller frees with cJSON_Delete; NULL on ENOMEM. */
cJSON *lg_report_extra(lg_ledger *lg, const lg_report *r, const char *template_path, const char *template_output,
                       const char *output, const lg_report_opts *o);

/* For the latest ok report run of each template: re-renders it from the
 * template bytes it stored, against the current evidence and claim files,
 * and compares the digests with the recorded outputs. Appends one problem
 * (area "report", subject "run SEQ-ID12") per report that no longer matches
 * or cannot be rendered. Returns < 0 only when it could not run. */
int lg_report_verify_all(lg_ledger *lg, lg_problems *out);

#endif
