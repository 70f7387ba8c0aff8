/*
 * evidence.h - the bridge between the claim evaluator (gates/, which knows
 * nothing of git or SQLite) and the ledger: a sample provider that answers
 * claim queries from the SQLite index, decides whether the evidence is
 * fresh, stale or missing, and helpers to evaluate claim files.
 *
 * Which run: the claim's pinned run (id prefix) or else the latest run of the
 * study with status "ok" and kind run, record or import (failed runs are never
 * evidence; report and export runs carry no evidence of their own).
 * STALE: the run recorded a study file (study_path, relative to the
 *   repository root) and a spec digest, and that file now has other bytes or
 *   is gone; or the run used a data file whose bytes changed (digest
 *   recomputed, once per run per process).
 * MISSING: no ok run of the study; a pinned run that does not exist; an
 *   artifact of the run kept only in the store (larger than the in-tree
 *   threshold) and absent from it (the evidence is incomplete);
 *   no value of the metric for the unit and filters (the reason lists the
 *   metrics the run has for that unit).
 */
#ifndef LG_EVIDENCE_H
#define LG_EVIDENCE_H

#include "gates/claims.h"
#include "gates/eval.h"
#include "ledger/ledger.h"

typedef struct lg_evidence_ctx lg_evidence_ctx;

int lg_evidence_new(lg_ledger *lg, lg_evidence_ctx **out);
void lg_evidence_free(lg_evidence_ctx *ev);
/* The lg_sample_provider to pass to lg_eval_file with ctx = the lg_evidence_ctx. */
int lg_evidence_provider(void *ctx, const lg_sample_query *q, lg_samples *out);
/* With `on`, only runs signed by a key of ledger-trusted-keys, with a valid
 * signature and linked into this ledger's chain, are evidence
 * (lg_sign_evidence_check); any other run makes the claim MISSING with the
 * reason. Default off. Set it before the first query. */
void lg_evidence_set_require_signed(lg_evidence_ctx *ev, int on);

/* The default claim files: <repo root>/claims/ *.claims, sorted by name.
 * *paths freed with lg_evidence_paths_free. A missing folder gives 0 files. */
int lg_evidence_default_claims(lg_ledger *lg, char ***paths, size_t *n);
void lg_evidence_paths_free(char **paths, size_t n);

/* Parse and evaluate files; results[i] for paths[i] (free each with
 * lg_eval_result_free, the array with lg_free). A parse error aborts with
 * LG_EINPUT (message "FILE:LINE:COL: ..."). */
int lg_evidence_eval_files(lg_ledger *lg, char *const *paths, size_t n, lg_eval_result ***results);
/* Same, with the evidence provider's switches. */
typedef struct {
    int require_signed; /* lg_evidence_set_require_signed */
} lg_evidence_opts;
int lg_evidence_eval_files_opts(lg_ledger *lg, char *const *paths, size_t n, const lg_evidence_opts *opts,
                                lg_eval_result ***results);

/* Looks up one claim by id across files (for reports). *result is owned by
 * the results array. LG_ENOTFOUND when no file declares it. */
int lg_evidence_find_claim(lg_eval_result *const *results, size_t n, const char *id, const lg_claim_result **result);

#endif
