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

#include "ledger/ledger.h"

/* When .ledger/index.sqlite exists and its tip is a strict ancestor of the
 * ledger branch tip (the branch moved on without the index: an interrupted
 * record, or a fetch), takes the writer lock, re-checks, and rebuilds the
 * index. *repaired (may be NULL) is set to the number of commits the index
 * was behind (0 when nothing was done). An index whose tip is not on the
 * branch (history rewritten, foreign file) is left alone for verify to
 * report. Errors: lock timeout (LG_ELOCKED), I/O. The caller must not hold
 * an lg_ledger_db() handle it means to keep: a rebuild closes it. */
int lg_ledger_index_catch_up(lg_ledger *lg, size_t *repaired);

/* Lists (dry_run) or removes what interrupted writers left outside the
 * store: staging folders under .ledger/tmp/ and "<file>.tmp.<pid>" files
 * (with -wal/-shm) directly under .ledger/, older than min_age_s and whose
 * writer pid (in the name) is no longer alive on this host. fn (may be
 * NULL) gets each path; *count_out the number. The caller holds the lock. */
int lg_ledger_gc_leftovers(lg_ledger *lg, int dry_run, double min_age_s, void (*fn)(void *ctx, const char *what),
                           void *ctx, size_t *count_out);

#endif
