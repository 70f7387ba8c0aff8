/*
 * verify.h - integrity verification of a ledger, as a list of problems.
 *
 * lg_verify_integrity checks the chain, every manifest, in-tree files,
 * store objects and the index (one snapshot: the tip is pinned and the index
 * read in one transaction taken under the writer lock), optionally that the
 * ledger extends a base append-only and holds a given run, and appends one
 * lg_problem per thing that is wrong. Without a base, a rewrite of the whole
 * branch by someone with write access cannot be detected. It returns an error only when it could not run at all; the caller
 * decides the exit code from lg_problems_failed(). Claim checks (gates) are
 * meant to append to the same list with lg_problems_add(area "claim").
 */
#ifndef LG_VERIFY_H
#define LG_VERIFY_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "base/base.h"
#include "ledger/ledger.h"
#include "ledger/problems.h"

typedef struct {
    int require_artifacts; /* absent store objects are errors, not warnings */
    int skip_objects;      /* do not re-hash store objects */
    int skip_index;        /* do not cross-check the index */
    int require_signed;    /* every run must be signed by a key of the trust root (lg_trust_root_load, set
                              with lg_ledger_set_trust; never the work tree's file); LG_EINPUT when there is
                              none. Signatures that are present are checked either way */
    const char *base_ref;  /* --base REF: the ledger must extend REF append-only (verify_base.h) */
    const char *at_least;  /* --at-least SEQ:ID: the ledger must hold run ID at seq SEQ */
} lg_verify_opts;

typedef struct lg_verify_stats {
    size_t commits, runs, files_checked, objects_checked, objects_missing, index_rows_differing;
    int base_checked;      /* --base was checked */
    size_t base_runs;      /* runs of the base */
    size_t new_runs;       /* runs of the tip beyond the base */
} lg_verify_stats;

int lg_verify_integrity(lg_ledger *lg, const lg_verify_opts *opts, lg_problems *out, lg_verify_stats *stats);

#endif
