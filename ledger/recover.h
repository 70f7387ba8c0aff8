/*
 * recover.h - bringing a ledger back to a clean state after an interrupted
 * writer (SIGKILL, power loss, full disk).
 *
 * What an interrupted `ledger record` / `ledger run` can leave (DESIGN.md
 * section 5, Atomicity): the branch is moved by one atomic ref update, so it
 * holds either the old tip or the new commit, never a partial run. Around it:
 *   - before the commit: store objects no run references, temp files in
 *     .ledger/store/tmp/, a staging folder .ledger/tmp/run-<pid>-XXXXXX,
 *     unreferenced git objects (git gc's business): all garbage, removed by
 *     `ledger gc` (lg_ledger_gc calls lg_ledger_gc_leftovers);
 *   - after the commit, before the index transaction committed: the index
 *     still names the parent as its tip. It is derived data, so readers catch
 *     it up from the branch (lg_ledger_index_catch_up): automatic, no user step.
 */
#ifndef LG_RECOVER_H
#define LG_RECOVER_H

#include <stddef.h>

#include "base/base.h"
#include "ledger/ledger.h"

/* Where the index stands against the branch (its meta 'tip'). */
enum { LG_INDEX_CURRENT = 0, LG_INDEX_BEHIND, LG_INDEX_REWRITTEN, LG_INDEX_NO_TIP, LG_INDEX_MISSING };
typedef struct {
    int state;          /* LG_INDEX_* */
    size_t behind;      /* BEHIND: first-parent commits between the index tip and the branch tip */
    char tip[65];       /* the index's tip ("" when unset) */
    lg_buf rewritten;   /* REWRITTEN: "SEQ-ID12, ..." of index runs not in the ledger at that seq with that id */
    size_t n_rewritten;
} lg_index_state;
/* Fills st (release with lg_index_state_release). Reads, never repairs. */
int lg_ledger_index_state(lg_ledger *lg, lg_index_state *st);
void lg_index_state_release(lg_index_state *st);
/* Sets and returns LG_ECHECK with the one-line "branch rewritten" message
 * naming the index tip and the rewritten runs, and how to accept. */
int lg_index_state_error(lg_ledger *lg, const lg_index_state *st);

/* When .ledger/index.sqlite exists and its tip is a strict ancestor of the
 * ledger branch tip (the branch moved on without the index: an interrupted
 * record, or a fetch), takes the writer lock, re-checks, and rebuilds the
 * index. *repaired (may be NULL) is set to the number of commits the index
 * was behind (0 when nothing was done). An index whose tip is not on the
 * branch (history rewritten) is LG_ECHECK (lg_index_state_error): no reader
 * or writer goes on with it. Errors: lock timeout (LG_ELOCKED), I/O. The
 * caller must not hold an lg_ledger_db() handle it means to keep: a rebuild
 * closes it. */
int lg_ledger_index_catch_up(lg_ledger *lg, size_t *repaired);
/* What a writer does first: takes the writer lock, then catches the index up
 * (above), so that what it writes can never erase the tripwire of a
 * rewritten branch. 0 with the lock held; on error the lock is not held. */
int lg_ledger_lock_caught_up(lg_ledger *lg);

/* Lists (dry_run) or removes what interrupted writers left outside the
 * store: staging folders under .ledger/tmp/ and "<file>.tmp.<pid>" files
 * (with -wal/-shm) directly under .ledger/, older than min_age_s and whose
 * writer pid (in the name) is no longer alive on this host. fn (may be
 * NULL) gets each path; *count_out the number. The caller holds the lock. */
int lg_ledger_gc_leftovers(lg_ledger *lg, int dry_run, double min_age_s, void (*fn)(void *ctx, const char *what),
                           void *ctx, size_t *count_out);

#endif
