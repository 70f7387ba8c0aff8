/*
 * eval.h - evaluate parsed claims against samples supplied by the caller,
 * decide verdicts, and render the results (text, JSON, JUnit XML).
 *
 * gates/ knows nothing of git or SQLite: the caller (ledger/) implements a
 * sample provider that maps a query (study, run, unit, metric, filters) to the
 * values of the evidence and says whether that evidence is fresh, stale or
 * missing. Evaluation is deterministic: the same samples give the same
 * verdicts and numbers (bootstrap and permutation are seeded).
 *
 * Verdicts:
 *   PASS     every requirement holds
 *   FAIL     some requirement does not hold
 *   XFAIL    `expect fail` and some requirement does not hold (ok: the negative result stands)
 *   XPASS    `expect fail` but every requirement holds (not ok: the documented failure changed)
 *   MISSING  a sample has no evidence (the provider said missing, or no value matched)
 *   STALE    evidence exists but is stale (provider: spec/data digest changed; or the claim's
 *            `stale-if engine-older-than` policy)
 *   ERROR    a statistic is not computable on the evidence (too few values, NaN, exact
 *            method on ties, unaligned pairs)
 *   BLOCKED  the claim `requires` gate claims and one of them is not ok (the reason names
 *            it); the claim's own requirements are still computed and reported
 * Only PASS and XFAIL are ok. Precedence: MISSING, then STALE, then ERROR, then BLOCKED,
 * then PASS/FAIL.
 */
#ifndef LG_EVAL_H
#define LG_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "gates/claims.h"
#include "gates/stats.h"

struct cJSON;

typedef enum { LG_EVIDENCE_FRESH = 0, LG_EVIDENCE_STALE = 1, LG_EVIDENCE_MISSING = 2 } lg_evidence;

/* What the evaluator asks for. All pointers are borrowed for the duration of the call. */
typedef struct {
    const char *claim_id;
    const char *sample_name;
    const char *study;
    const char *run;            /* pinned run id prefix; NULL = latest ok run of the study */
    lg_unit unit;               /* cell | pair | seed */
    const char *metric;
    const lg_filter *filters;   /* AND of all; see lg_filter_match() */
    size_t nfilters;
} lg_sample_query;

/* What the provider answers. The evaluator zeroes it before each call.
 * Everything it points to is owned by the provider and must stay valid until
 * the provider's next call (the evaluator copies what it keeps). */
typedef struct {
    const double *values;       /* [n] */
    size_t n;
    const char *const *labels;  /* optional [n]: unit labels (e.g. "seed=3"); paired() pairs by them */
    const char *run_id;         /* the run the values come from */
    const char *engine_version; /* engine version of that run (for stale-if engine-older-than) */
    lg_evidence status;
    const char *reason;         /* for STALE / MISSING: why (one line) */
} lg_samples;

/* Returns 0 with *out filled, or a negative LG_E* code with the last error set
 * (e.g. LG_EINPUT for a metric that does not exist): that aborts evaluation. */
typedef int (*lg_sample_provider)(void *ctx, const lg_sample_query *q, lg_samples *out);

/* Claims with `by KEY`: before evaluating, the evaluator asks for the values
 * of the grid parameter KEY among the conditions of the claim's evidence run
 * that at least one of its samples selects (all its filters), and expands
 * the claim into one claim per value, id "ID[KEY=VALUE]", each sample
 * getting the filter KEY=VALUE. */
typedef struct {
    const char *claim_id;
    const char *study;
    const char *run;                  /* pinned run id prefix or NULL */
    const char *key;                  /* the grid parameter */
    const lg_sample_decl *samples;    /* the claim's samples (their filters) */
    size_t nsamples;
} lg_grid_query;

typedef struct {
    const char *const *values;  /* [n] distinct values, in the order to report them */
    size_t n;
    const char *run_id;
    lg_evidence status;         /* MISSING / STALE: one verdict for the whole claim, with reason */
    const char *reason;
} lg_grid_answer;

/* Same ownership rules as lg_sample_provider (valid until the next call of either). */
typedef int (*lg_grid_provider)(void *ctx, const lg_grid_query *q, lg_grid_answer *out);

typedef enum {
    LG_VERDICT_PASS = 0, LG_VERDICT_FAIL, LG_VERDICT_XFAIL, LG_VERDICT_XPASS,
    LG_VERDICT_MISSING, LG_VERDICT_STALE, LG_VERDICT_ERROR, LG_VERDICT_BLOCKED
} lg_verdict;
#define LG_VERDICT_COUNT (LG_VERDICT_BLOCKED + 1)

/* The numbers of one term. Fields that do not apply are NaN (n: 0). */
typedef struct {
    lg_fn fn;
    lg_field field;
    int sign;
    int sample[2];      /* indexes into the claim's samples, -1 unused */
    size_t n[2];
    double value;       /* the selected field (for .p under Holm: the raw p) */
    double est, lo, hi, level, p, p_adj, stat, df;
    int exact;
    /* the options used */
    lg_alternative alt;
    long resamples;
    uint64_t seed;
    const char *method; /* static string: "percentile", "bca", "auto", "exact", "asymptotic" or "" */
} lg_term_result;

typedef struct {
    char *text;          /* the expression as written */
    int line;
    double value;        /* left-hand side used for the comparison (adjusted p when corrected) */
    lg_op op;
    double threshold;
    int holds;
    int corrected;       /* 1 when the Holm-adjusted p was compared */
    char *note;          /* why it is not computable (ERROR), else NULL */
    lg_term_result *terms;
    size_t nterms;
} lg_req_result;

typedef struct {
    char *name;
    size_t n;
    char *run_id;        /* NULL when missing */
    lg_evidence status;
} lg_sample_result;

typedef struct {
    char *id;
    char *says;
    char *study;
    int line;
    int expect_fail;
    lg_verdict verdict;
    char *reason;        /* one line for MISSING / STALE / ERROR / FAIL / XPASS, else NULL */
    char **run_ids;      /* distinct run ids the samples came from */
    size_t nrun_ids;
    lg_sample_result *samples;
    size_t nsamples;
    lg_req_result *reqs; /* empty when MISSING or STALE (nothing was computed) */
    size_t nreqs;
    char *pinned_run;    /* the claim's `run PREFIX`, NULL for the latest run */
    char *grid_key;      /* `by KEY` expansions: KEY and this verdict's value; else NULL */
    char *grid_value;
    char **gates;        /* the claim's `requires` ids (a gate with `by` counts as all its values) */
    size_t ngates;
    char *blocked_by;    /* BLOCKED: the id of the first gate (or gate value) that is not ok; else NULL */
} lg_claim_result;

typedef struct {
    char *path;
    lg_claim_result *claims;
    size_t nclaims;
    size_t counts[LG_VERDICT_COUNT];      /* claims per verdict */
} lg_eval_result;

/* Evaluate every claim of `f`. Holm correction (claims with `correct holm`)
 * runs over the single-term, positive `.p` requirements of the file's claims
 * that were computed. *out: new result, free with lg_eval_result_free.
 * Returns a negative code only for a provider error or out of memory; a claim
 * that does not hold is a verdict, not an error. */
int lg_eval_file(const lg_claim_file *f, lg_sample_provider provider, void *ctx, lg_eval_result **out);
/* Same, expanding `by KEY` claims with `grid` (same ctx). Without a grid
 * provider (lg_eval_file) a `by` claim is ERROR. Expanded claims that say
 * `correct holm` join the file's Holm family, one member per value. */
int lg_eval_file_grid(const lg_claim_file *f, lg_sample_provider provider, lg_grid_provider grid, void *ctx,
                      lg_eval_result **out);
void lg_eval_result_free(lg_eval_result *r);   /* accepts NULL */

const char *lg_verdict_name(lg_verdict v);     /* "PASS", "FAIL", "XFAIL", ..., "BLOCKED" */
int lg_verdict_ok(lg_verdict v);               /* PASS or XFAIL */
int lg_eval_ok(const lg_eval_result *r);       /* every claim ok */

/* Human-readable report, appended to out: one line per claim, then one per requirement. */
int lg_eval_render_text(const lg_eval_result *r, lg_buf *out);
/* JSON object of one file's results (NaN -> null); caller frees with cJSON_Delete. NULL on ENOMEM. */
struct cJSON *lg_eval_to_json(const lg_eval_result *r);
/* {"gates_version": ..., "ok": bool, "files": [...]} as a string; caller frees *out with lg_free. */
int lg_eval_render_json(const lg_eval_result *const *r, size_t n, char **out);
/* JUnit XML: one <testsuite> per file, one <testcase> per claim; FAIL, XPASS and
 * BLOCKED are <failure>, MISSING / STALE / ERROR are <error>. Caller frees *out with lg_free. */
int lg_eval_render_junit(const lg_eval_result *const *r, size_t n, char **out);

/* Compare dotted versions numerically ("0.10.0" > "0.9.2"); missing parts are 0. */
int lg_version_cmp(const char *a, const char *b);

#endif
