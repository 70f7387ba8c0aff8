/*
 * sync.h - `ledger sync`: share one ledger between clones through a git
 * remote (a path or URL libgit2 understands).
 *
 * Under the writer lock: fetch the remote's refs/heads/ledger; the local runs
 * whose ids the remote lacks are re-chained on top of the remote tip (new
 * seq and chain.json; same manifest, id, files and signature.json: format 2
 * keeps a run's identity apart from its place); the result is pushed as a
 * fast-forward (a lost race fetches and retries, at most LG_SYNC_TRIES
 * times); the local branch moves to it and the index is rebuilt. A run the
 * remote holds already (same id) is never duplicated. The remote's tip after
 * each completed sync is kept at refs/ledger-sync/seen/<hash of REMOTE>; a
 * later sync refuses (LG_ECHECK, nothing changed) a remote that no longer
 * extends it append-only (lg_verify_base): the remote was rewritten.
 */
#ifndef LG_SYNC_H
#define LG_SYNC_H

#include <stddef.h>

#include "ledger/ledger.h"

#define LG_SYNC_TRIES 5

typedef struct {
    size_t remote_runs;   /* runs on the remote before the push */
    size_t rechained;     /* local runs re-chained on top of the remote */
    size_t already;       /* local runs the remote held already (by id) */
    size_t fetched;       /* remote runs that were new here */
    size_t total;         /* runs of the shared ledger afterwards */
    int pushed;           /* the remote branch was moved */
    int tries;            /* fetch/push rounds used */
    char old_remote_tip[41]; /* "" when the remote had no ledger */
    char tip[41];         /* the shared tip afterwards */
} lg_sync_result;

/* notify (may be NULL) gets progress lines (the CLI prints them on stderr).
 * LG_EINPUT for an unknown remote or a remote ledger of another format;
 * LG_ECHECK for a rewritten remote or a local index whose tip a rewrite
 * took off the branch (recover.h);
 * LG_EIO for transport errors; LG_ELOCKED after LG_SYNC_TRIES lost races. */
int lg_ledger_sync(lg_ledger *lg, const char *remote, void (*notify)(void *ctx, const char *msg), void *ctx,
                   lg_sync_result *res);

#endif
