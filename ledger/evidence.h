/*
 * evidence.h - the bridge between the claim evaluator (gates/, which knows
 * nothing of git or SQLite) and the ledger: a sample provider that answers
 * claim queries from the runs' manifests (read from the ledger branch, each
 * hashed again against its run id), decides whether the evidence is fresh,
 * stale or missing, and helpers to evaluate claim files.
 *
 * Trust: values, and the choice of run, come from verified manifests only.
 * The SQLite index is cross-checked for every run used (tables runs, params,
 * samples, artifacts); a difference is LG_ECHECK naming the run ("run 'ledger
 * verify'"), never a verdict.
 *
 * Which run: the claim's pinned run (id prefix, among the study's runs) or
 * else the latest run of the study (in the ledger's run list) whose manifest
 * says status "ok" and kind run, record or import (failed runs are never
 * evidence; report and export runs carry no evidence of their own).
 * STALE (latest-run claims only): the study's meaning changed: the canonical
 *   JSON of the spec without "description" (lg_spec_canonical_digest) differs
 *   from the run's (extra.spec_canonical_sha256, or computed from the spec the
 *   manifest embeds; runs without an embedded spec compare the file's bytes
 *   with spec_digest). The study file is looked for at study_path, then by
 *   study name and digest (its old folder, studies/, the repository) when it
 *   moved. Or the run used a data file whose bytes changed. A claim pinned to
 *   a run is judged on that run's own record and is never STALE for files.
 * MISSING: no ok run of the study (the reason lists the studies that have
 *   one); a pinned run that does not exist; no condition matches the filters
 *   (the reason names the filter and the valid values of its key); no value
 *   of the metric (the reason lists the metrics the run has for that unit).
 *   Outputs kept only in the store are not read by claims, so their absence
 *   (a fresh clone) does not make a claim MISSING.
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
/* The lg_grid_provider for `by KEY` claims (lg_eval_file_grid), same ctx. */
int lg_evidence_grid_provider(void *ctx, const lg_grid_query *q, lg_grid_answer *out);
/* A run of the ledger by full id, its manifest verified (SHA-256 = id) and its
 * index rows cross-checked: for reports. *manifest and *info (either may be
 * NULL) are owned by ev. LG_ENOTFOUND, or LG_ECHECK for a tampered run/index. */
int lg_evidence_run(lg_evidence_ctx *ev, const char *run_id, const cJSON **manifest, const lg_run_info **info);
/* The order of parameter values (a `by KEY` grid's values, a report's groups):
 * values that parse as numbers compare numerically and before strings;
 * strings compare by bytes. A qsort-style result. */
int lg_evidence_cmp_values(const char *a, const char *b);
/* SHA-256 of the canonical JSON of a study spec without its top-level
 * "description": the spec's meaning, which staleness compares (recorded by
 * `ledger run` as extra.spec_canonical_sha256). */
int lg_spec_canonical_digest(const cJSON *spec, char hex_out[65]);
/* A condition parameter's value as text, as filters compare it, is the
 * index's form: lg_index_param_text (index.h). */
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

/* Same, with an existing context (its manifest cache is shared). A path that
 * is a directory is LG_EINPUT. */
int lg_evidence_eval_files_ctx(lg_evidence_ctx *ev, char *const *paths, size_t n, lg_eval_result ***results);

/* Looks up one claim by id across files (for reports). *result is owned by
 * the results array. LG_ENOTFOUND when no file declares it. */
int lg_evidence_find_claim(lg_eval_result *const *results, size_t n, const char *id, const lg_claim_result **result);
/* Every result of claim `id`: the claim, or all its `by` expansions
 * ("ID[k=4]", ...). *out (lg_free) points into results. LG_ENOTFOUND. */
int lg_evidence_find_claims(lg_eval_result *const *results, size_t n, const char *id, const lg_claim_result ***out,
                            size_t *nout);

#endif
