/*
 * ledger_reindex.c - the SQLite index built from the branch alone.
 *
 * The index is derived data: lg_ledger_build_index_at fills any empty index
 * from a pinned commit (reindex uses a temp file; verify an in-memory one
 * inside its snapshot transaction), and lg_ledger_reindex replaces
 * .ledger/index.sqlite by rename, so a reader sees the old or the new file,
 * never a half-built one. The index's meta 'tip' records the commit it was
 * built from: that is the local tripwire recover.c reads.
 *
 * Reindex itself never asks whether a rebuild is legitimate: callers do
 * (cmd_reindex refuses a rewritten branch without --accept-rewrite; catch-up
 * only rebuilds an index that is behind; sync rebuilds after its own
 * re-chaining under the lock).
 */
#include "ledger/ledger_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/sha256.h"
#include "ledger/index.h"
#include "ledger/manifest.h"

int lg_ledger_build_index(lg_ledger *lg, sqlite3 *db)
{
    git_oid oid;
    if (git_reference_name_to_id(&oid, lg->repo, LG_LEDGER_REF) < 0)
        return lg_error_set(LG_EINPUT, "%s: no branch %s; run 'ledger init'", lg->root, LG_LEDGER_REF);
    return lg_ledger_build_index_at(lg, &oid, db);
}

int lg_ledger_build_index_at(lg_ledger *lg, const git_oid *tip_oid, sqlite3 *db)
{
    lg_chain_entry *chain = NULL;
    lg_run_info *runs = NULL;
    lg_buf raw = LG_BUF_INIT, canon = LG_BUF_INIT;
    cJSON *m = NULL;
    size_t nchain = 0, nruns = 0, i, j;
    char tip[GIT_OID_HEXSZ + 1];
    int err, in_tx = 0, own_tx = sqlite3_get_autocommit(db); /* inside the caller's transaction: no BEGIN/COMMIT */

    if ((err = lg_ledger_chain_at(lg, tip_oid, &chain, &nchain)) < 0 ||
        (err = lg_ledger_runs_at(lg, tip_oid, &runs, &nruns)) < 0)
        goto out;
    if (own_tx && (err = lg_index_exec(db, "BEGIN", "starting a transaction")) < 0)
        goto out;
    in_tx = own_tx;
    for (i = 0; i < nruns; i++) {
        char commit_hex[GIT_OID_HEXSZ + 1] = "", run_id[65];
        lg_buf_clear(&raw);
        lg_buf_clear(&canon);
        if ((err = lg_ledger_read_blob(lg, &runs[i].manifest, LG_MANIFEST_MAX, &raw)) < 0 ||
            (err = lgl_parse_manifest(&raw, runs[i].dir, &m)) < 0 || (err = lg_json_canonical(m, &canon)) < 0 ||
            (err = lg_sha256_buf(canon.ptr, canon.len, run_id)) < 0)
            goto out;
        for (j = 0; j < nchain; j++)
            if (strcmp(chain[j].added, runs[i].dir) == 0) {
                git_oid_tostr(commit_hex, sizeof commit_hex, &chain[j].commit);
                break;
            }
        if ((err = lg_index_add_run(db, m, runs[i].seq, run_id, runs[i].run_id, commit_hex[0] ? commit_hex : NULL)) < 0) {
            lg_error_wrap("%s", runs[i].dir);
            goto out;
        }
        cJSON_Delete(m);
        m = NULL;
    }
    git_oid_tostr(tip, sizeof tip, tip_oid);
    if ((err = lg_index_set_tip(db, tip)) < 0)
        goto out;
    if (own_tx)
        err = lg_index_exec(db, "COMMIT", "committing");
    in_tx = 0;
out:
    if (in_tx)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    cJSON_Delete(m);
    lg_buf_release(&raw);
    lg_buf_release(&canon);
    lg_free(chain);
    lg_free(runs);
    return err;
}

static void unlink_quiet(const char *base, const char *suffix)
{
    lg_buf p = LG_BUF_INIT;
    if (lg_buf_printf(&p, "%s%s", base, suffix) >= 0)
        unlink(p.ptr);
    lg_buf_release(&p);
}

int lg_ledger_reindex(lg_ledger *lg)
{
    lg_buf tmp = LG_BUF_INIT;
    sqlite3 *db = NULL;
    int err, locked = 0;

    if ((err = lg_ledger_lock(lg)) < 0)
        goto out;
    locked = 1;
    if ((err = lg_buf_printf(&tmp, "%s.tmp.%ld", lg->index_path, (long)getpid())) < 0)
        goto out;
    unlink(tmp.ptr);
    unlink_quiet(tmp.ptr, "-wal");
    unlink_quiet(tmp.ptr, "-shm");
    if ((err = lg_index_open(tmp.ptr, 0, &db)) < 0 || (err = lg_ledger_build_index(lg, db)) < 0)
        goto out;
    /* Leave a self-contained file (no -wal) so that the rename carries it all. */
    if ((err = lg_index_exec(db, "PRAGMA journal_mode=DELETE", "finishing the new index")) < 0)
        goto out;
    sqlite3_close(db);
    db = NULL;
    lg_fault_point("reindex:built");
    if (lg->db) {
        sqlite3_close(lg->db);
        lg->db = NULL;
    }
    unlink_quiet(lg->index_path, "-wal");
    unlink_quiet(lg->index_path, "-shm");
    if (rename(tmp.ptr, lg->index_path) < 0) {
        err = lg_error_set(LG_EIO, "%s: rename: %s", lg->index_path, strerror(errno));
        goto out;
    }
    err = lg_fsync_dir(lg->dir);
out:
    if (db)
        sqlite3_close(db);
    if (err < 0 && tmp.ptr) {
        unlink(tmp.ptr);
        unlink_quiet(tmp.ptr, "-wal");
        unlink_quiet(tmp.ptr, "-shm");
    }
    if (locked)
        lg_ledger_unlock(lg);
    lg_buf_release(&tmp);
    return err;
}
