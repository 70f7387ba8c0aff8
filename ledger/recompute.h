/*
 * recompute.h - derive recorded results again from stored artifacts
 * (`ledger verify --recompute`, DESIGN.md 5b).
 *
 * For every run of kind "run" with status ok:
 *   - pair metrics (mmcs, mmcs_ab, mmcs_ba, mmcs_signed, mcc, shared_frac)
 *     and per-seed means (mmcs_mean, mcc_mean) from the decoder weights: the
 *     stored cell files of trained conditions, the random-init weights
 *     (a pure function of shape and seed) of control=random conditions;
 *   - cell metrics (mse, fvu, explained_variance, l0, dead_frac, dense_frac,
 *     truth_*) when the data is present: synthetic data is regenerated from
 *     the spec, a data file must exist at the spec's path with the recorded
 *     digest. final_loss is not recomputed (only training gives it: see
 *     `ledger replay`).
 * The computation calls the engine's own code on the same inputs
 * (engine/run.h lg_run_pair_metrics, lg_run_eval_cell), so values are
 * compared exactly. The one exception: cell metrics of a run recorded on the
 * cuda backend are evaluated here on the CPU and compared with a relative
 * tolerance of LG_RECOMPUTE_GPU_RTOL. Pair metrics are computed on the host
 * by every backend, so they are exact for every run.
 * For every run of kind "import" with status ok: its pair metrics and
 * per-seed means from the stored sae_weights.safetensors, with the matching
 * options the import recorded in extra.import (imports from before they were
 * recorded: mmcs, mmcs_ab, mmcs_ba, mmcs_signed only).
 * Missing pieces (a store object, a data file) are warnings "not recomputed",
 * errors with require_artifacts. Every difference is an error (area
 * "recompute"), as is a recorded metric the engine does not compute, a
 * recorded cell or pair the spec does not have, or one that is missing.
 */
#ifndef LG_RECOMPUTE_H
#define LG_RECOMPUTE_H

#include <cjson/cJSON.h>

#include "ledger/ledger.h"
#include "ledger/problems.h"

#define LG_RECOMPUTE_GPU_RTOL 1e-4

typedef struct {
    int require_artifacts; /* what cannot be recomputed for lack of an object or data file is an error */
} lg_recompute_opts;

typedef struct {
    size_t runs;            /* runs recomputed (kind "run" or "import", status ok) */
    size_t cells, pairs;    /* cells whose metrics, pairs whose metrics were recomputed */
    size_t values;          /* metric values compared */
    size_t not_recomputed;  /* cells or conditions skipped for a missing object or data file */
} lg_recompute_stats;

/* Recomputes one run (manifest as loaded by lg_ledger_load_manifest);
 * other kinds (record, report, export) and failed runs are skipped (0). Problems go to ps; the
 * return is negative only when it could not run (out of memory). */
int lg_recompute_run(lg_ledger *lg, const lg_run_info *info, const cJSON *manifest, const lg_recompute_opts *o,
                     lg_problems *ps, lg_recompute_stats *st);
/* Every run of the ledger. st is zeroed first. */
int lg_recompute_all(lg_ledger *lg, const lg_recompute_opts *o, lg_problems *ps, lg_recompute_stats *st);

#endif
