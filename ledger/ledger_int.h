/*
 * ledger_int.h - what the files of the ledger core share and nothing else
 * may use: the handle's fields and a few helpers. Public API: ledger.h.
 *
 * The core is split by concern, each file calling only files listed before it
 * (no circle of calls between files):
 *   ledger_core.c     the handle: fields, accessors, free, FORMAT check, paths
 *   ledger_lock.c     the writer lock (flock) and stale git ref locks
 *   ledger_history.c  reading the branch: runs, manifests, chain entries, chain walk
 *   ledger_reindex.c  building the index from the branch; reindex
 *   ledger_migrate.c  format 1 -> format 2 (ledger init --migrate)
 *   (recover.c)       index catch-up / tripwire, leftovers of interrupted writers
 *   ledger_open.c     init, open, config, the index handle for readers
 *   ledger_record.c   recording a run
 *   ledger_gc.c       artifact lookup and garbage collection
 *   (sync.c)          sharing through a git remote
 */
#ifndef LG_LEDGER_INT_H
#define LG_LEDGER_INT_H

#include "ledger/ledger.h"

struct lg_ledger {
    git_repository *repo;
    char *root;
    char *dir;
    char *index_path;
    lg_store *store;
    sqlite3 *db;
    uint64_t small_max;
    int lock_fd;
    int lock_depth;
    double lock_timeout;
    lg_lock_notify_fn notify;
    void *notify_ctx;
    lg_trust_opts trust;
};

/* ledger_core.c */
int lgl_git_fail(const char *what);              /* LG_EIO with libgit2's last message */
char *lgl_path2(const char *a, const char *b);   /* a/b, or NULL (LG_ENOMEM); lg_free */
int lgl_make_signature(git_repository *repo, git_signature **out);
int lgl_new(git_repository *repo, lg_ledger **out); /* takes repo; paths set, nothing opened */

/* ledger_open.c: reads and checks <dir>/ledger.json (format 2; format 1 refused) */
int lgl_read_config(const char *dir, uint64_t *small_max);

/* git_batch.c: between begin and commit, libgit2 writes objects without
 * fsync; commit makes them durable with one syncfs(2) of the objects' file
 * system and turns fsync back on (LG_EIO on failure); end turns it back on
 * on any other exit. */
void lgl_objects_batch_begin(lg_ledger *lg);
int lgl_objects_batch_commit(lg_ledger *lg);
void lgl_objects_batch_end(lg_ledger *lg);

/* ledger_lock.c: the caller holds the ledger lock */
int lgl_clear_stale_ref_lock(lg_ledger *lg);

/* ledger_history.c */
int lgl_tip_tree(lg_ledger *lg, git_commit **commit_out, git_tree **tree_out);
int lgl_runs_of_tree(lg_ledger *lg, git_tree *root, lg_run_info **out, size_t *n);
/* The run lgl_runs_of_tree would list last (the largest seq), reading only
 * that run's manifest: *found 0 when the tree holds no run. */
int lgl_last_run_of_tree(lg_ledger *lg, git_tree *root, lg_run_info *out, int *found);
int lgl_parse_manifest(const lg_buf *raw, const char *where, cJSON **out);

#endif
