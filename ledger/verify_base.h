/*
 * verify_base.h - the checks that give verify an anchor outside the ledger
 * under review: `verify --base REF` (the ledger extends REF append-only) and
 * `verify --at-least SEQ:ID` (the ledger still holds a run someone saw).
 */
#ifndef LG_VERIFY_BASE_H
#define LG_VERIFY_BASE_H

#include <git2.h>

#include "ledger/ledger.h"
#include "ledger/problems.h"

struct lg_verify_stats; /* defined in verify.h, which is verify_base.c's to include: verify.c includes
                           this header, and this header does not include verify.h back */

/* The ledger at `tip` must be an append-only extension of base_ref (any
 * revision, e.g. origin/ledger): every run of the base is present at the same
 * seq, with the same id, byte-identical manifest.json and chain.json and an
 * identical run directory, and the base commit is a first-parent ancestor of
 * tip. Each violation is an error problem (area "base") naming the run.
 * stats->new_runs / base_runs are filled. LG_EINPUT when base_ref does not
 * resolve to a format-2 ledger commit. */
int lg_verify_base(lg_ledger *lg, const git_oid *tip, const char *base_ref, lg_problems *ps,
                   struct lg_verify_stats *stats);

/* `spec` is "SEQ:ID" (ID a full run id or a prefix of at least 12 hex
 * digits): the ledger at tip must hold run ID at seq SEQ; otherwise an error
 * problem (area "rollback"). LG_EINPUT when spec is malformed. */
int lg_verify_at_least(lg_ledger *lg, const git_oid *tip, const char *spec, lg_problems *ps);

/* 1 when `anc` is on the first-parent chain of `tip` (the ledger's order;
 * used by verify --base and by sync's check that a remote only moved on). */
int lg_first_parent_ancestor(git_repository *repo, const git_oid *tip, const git_oid *anc);

#endif
