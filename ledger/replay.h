/*
 * replay.h - re-execute a recorded run and compare it with the record
 * (`ledger replay`, DESIGN.md 5b: evidence can be re-derived, so a forged
 * number is caught without any key).
 *
 * A run of kind "run" embeds its study spec; the engine is deterministic
 * (same spec, data, seed and backend give bit-identical weights and
 * metrics), so running the spec again must give the recorded artifact
 * digests and metric values exactly. A sample of the cells can be replayed
 * (lg_replay_select), each trained alone (engine/run.h cell filter), so CI
 * can bound the time. Nothing is recorded in the ledger: outputs go to a
 * staging folder under .ledger/tmp/ that is removed afterwards.
 */
#ifndef LG_REPLAY_H
#define LG_REPLAY_H

#include <cjson/cJSON.h>

#include "engine/run.h"
#include "engine/study.h"
#include "ledger/ledger.h"
#include "ledger/problems.h"

/* The study of a recorded run of kind "run", parsed from the spec embedded
 * in its manifest. Relative data paths resolve against the recorded
 * study_path (relative to the repository root). LG_EINPUT (message naming
 * the run) when the manifest has no spec or it does not parse. */
int lg_replay_load_study(lg_ledger *lg, const cJSON *manifest, const char *label, lg_study **out);

/* The run's study name (and its results' "study") must be the embedded
 * spec's "name", as 'ledger run' records it; and when the recorded
 * study_path names a file that still hashes to the recorded spec_digest,
 * its JSON must equal the embedded spec (the one replay and recompute use).
 * Else an error problem (area, label as given) is added. A file absent or changed since is not a problem (specs evolve).
 * Returns 0 or LG_ENOMEM. */
int lg_replay_check_spec(lg_ledger *lg, const cJSON *manifest, const char *area, const char *label, lg_problems *ps);

/* Checks that a file data source is present and hashes to the recorded
 * data digest: 0, or LG_EINPUT naming the file and both digests (or saying
 * it is missing). Synthetic data: always 0 (it is regenerated). */
int lg_replay_check_data(const lg_study *s, const char *recorded_digest);

/* The deterministic sample of n cells of a run: every cell (condition c,
 * seed s) gets the key SHA-256("ledger-replay-v1\n" RUN_ID "\n" S "\n" COND_ID
 * "\n" SEED "\n") (decimal S and SEED); the trained cells are taken in
 * increasing key order (as hex strings), then the control=random cells in
 * key order, until n are chosen (trained cells first: their weights are
 * artifacts and their training is what a forger would skip). mask [n_conds * n_seeds] gets 1 for those;
 * n <= 0 or n >= the number of cells selects every cell. (lg_replay_run
 * widens the sample to whole conditions on a backend other than the CPU,
 * the only one on which a seed trained alone is known to be bit-identical
 * to the seed-batched run.) */
int lg_replay_select(const lg_study *s, const char *run_id, uint64_t sample_seed, int n, unsigned char *mask);

typedef struct {
    int n_cells;             /* 0 = every cell */
    uint64_t sample_seed;    /* S of lg_replay_select */
    const char *backend;     /* NULL = the recorded backend */
    int force_backend;       /* allow a backend other than the recorded one */
    lg_run_progress_fn progress;
    void *progress_ctx;
} lg_replay_opts;

typedef struct {
    char run_id[65];
    char backend[16];        /* the backend replayed on */
    char recorded_backend[16];
    int cells_total, cells_replayed;
    int conditions_full;     /* conditions with all seeds replayed (pairs compared) */
    size_t artifacts_compared, values_compared;
    cJSON *cells;            /* [{"condition", "seed"}] replayed, owned */
} lg_replay_result;

/* Replays run `ref` (id, prefix or @seq) and appends one problem (area
 * "data", "artifact", "metric", "cell" or "run") per mismatch to ps.
 * Returns 0 when the replay ran (mismatches or not), LG_EINPUT for a run
 * that cannot be replayed (kind, status, backend, missing or changed data
 * file), other negative codes for failures. Release out with
 * lg_replay_result_release. */
int lg_replay_run(lg_ledger *lg, const char *ref, const lg_replay_opts *opts, lg_replay_result *out, lg_problems *ps);
void lg_replay_result_release(lg_replay_result *r);

/* Compares two metric objects {name: number|null} exactly (NaN and null are
 * equal; tolerance rel > 0 allows |a - b| <= rel * max(|a|, |b|)); each
 * difference, and each name present on one side only, is added to ps as an
 * error (area, subject as given; message "WHAT: NAME: recorded X, replayed Y"
 * with `verb` in place of "replayed"). skip (may be NULL) names a metric not
 * compared. *compared (may be NULL) is increased by the values compared. */
int lg_replay_compare_metrics(const cJSON *recorded, const cJSON *got, const char *what, const char *verb,
                              const char *skip, double rel, const char *area, const char *subject, lg_problems *ps,
                              size_t *compared);

/* Lookups in a manifest's results (manifest.h "Results format"): the
 * condition with this id; the element of its array `key` ("cells", "seeds":
 * b < 0, matched on "seed" = a; "pairs": on seed_a = a and seed_b = b); the
 * recorded digest of output `name`. NULL when absent. */
const cJSON *lg_results_find_cond(const cJSON *results, const char *id);
const cJSON *lg_results_find_seeded(const cJSON *cond, const char *key, double a, double b);
const char *lg_manifest_find_output(const cJSON *manifest, const char *name);

#endif
