/*
 * recover.c - catch the index up after an interrupted record, and collect
 * what interrupted writers left outside the store (see recover.h).
 *
 * Why catch up automatically instead of failing with "run 'ledger reindex'":
 * the window between the ref update and the index COMMIT is a normal crash
 * window, not damage; the index is derived data, and the lagging state is
 * recognisable exactly (its tip is an ancestor of the branch tip on the
 * first-parent chain). Every other mismatch is never repaired silently: an
 * index tip that is not on the branch means the branch was rewritten (the
 * index is the local tripwire), and every reader and writer refuses with the
 * rewritten runs named until `ledger reindex --accept-rewrite`; rows changed
 * under an unchanged tip are left for verify to name.
 *
 * Leftovers are judged by age and by their writer's pid (in the name): a
 * long `ledger run` keeps its staging folder for hours, and it must not be
 * removed under it even with --min-age 0. A pid that is alive but reused by
 * another program only makes gc keep the folder until next time.
 */
#define _XOPEN_SOURCE 700
#include "ledger/recover.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ledger/index.h"

/* ---- index catch-up -------------------------------------------------------- */

/* Reads the index's tip without keeping it open ("" when unset). */
static int index_tip(lg_ledger *lg, char tip[65])
{
    sqlite3 *db = NULL;
    int err = lg_index_open(lg_ledger_index_path(lg), 1, &db);
    tip[0] = '\0';
    if (err >= 0)
        err = lg_index_get_tip(db, tip);
    sqlite3_close(db);
    return err;
}

/* Number of first-parent steps from the branch tip back to `ancestor_hex`,
 * 0 when it is not on the chain (or is not a commit at all). */
static size_t commits_behind(lg_ledger *lg, const char *ancestor_hex)
{
    git_repository *repo = lg_ledger_repo(lg);
    git_oid want, oid;
    git_commit *c = NULL, *p = NULL;
    size_t steps = 0;

    if (git_oid_fromstrn(&want, ancestor_hex, strlen(ancestor_hex)) < 0 || strlen(ancestor_hex) != GIT_OID_HEXSZ ||
        git_reference_name_to_id(&oid, repo, LG_LEDGER_REF) < 0 || git_commit_lookup(&c, repo, &oid) < 0)
        return 0;
    while (c) {
        if (git_oid_equal(git_commit_id(c), &want))
            break;
        steps++;
        p = NULL;
        if (git_commit_parentcount(c) == 0 || git_commit_parent(&p, c, 0) < 0)
            steps = 0; /* reached the root: not an ancestor */
        git_commit_free(c);
        c = p;
    }
    git_commit_free(c);
    return steps;
}

void lg_index_state_release(lg_index_state *st)
{
    if (!st)
        return;
    lg_buf_release(&st->rewritten);
}

/* Rows of the index's runs table that the ledger (at its tip) does not hold
 * at that seq with that id: what a rewrite removed or replaced. */
static int list_rewritten(lg_ledger *lg, lg_index_state *st)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    lg_run_info *runs = NULL;
    size_t n = 0, i;
    int err, rc;
    if ((err = lg_index_open(lg_ledger_index_path(lg), 1, &db)) < 0 || (err = lg_ledger_runs(lg, &runs, &n)) < 0)
        goto out;
    if (sqlite3_prepare_v2(db, "SELECT seq, run_id FROM runs ORDER BY seq", -1, &q, NULL) != SQLITE_OK) {
        err = lg_error_set(LG_EIO, "%s: reading runs: %s", lg_ledger_index_path(lg), sqlite3_errmsg(db));
        goto out;
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        long seq = (long)sqlite3_column_int64(q, 0);
        const char *id = (const char *)sqlite3_column_text(q, 1);
        int found = 0;
        for (i = 0; i < n && !found; i++)
            found = runs[i].seq == seq && id && strcmp(runs[i].run_id, id) == 0;
        if (found)
            continue;
        if ((err = lg_buf_printf(&st->rewritten, "%s%ld-%.12s", st->n_rewritten ? ", " : "", seq, id ? id : "?")) < 0)
            goto out;
        st->n_rewritten++;
    }
    if (rc != SQLITE_DONE)
        err = lg_error_set(LG_EIO, "%s: reading runs: %s", lg_ledger_index_path(lg), sqlite3_errmsg(db));
out:
    sqlite3_finalize(q);
    sqlite3_close(db);
    lg_free(runs);
    return err;
}

int lg_ledger_index_state(lg_ledger *lg, lg_index_state *st)
{
    char btip[GIT_OID_HEXSZ + 1];
    int err;
    memset(st, 0, sizeof(*st));
    lg_buf_init(&st->rewritten, 0);
    if (!lg_path_exists(lg_ledger_index_path(lg))) {
        st->state = LG_INDEX_MISSING;
        return 0;
    }
    if ((err = index_tip(lg, st->tip)) < 0 || (err = lg_ledger_tip(lg, btip)) < 0)
        return err;
    if (!st->tip[0]) {
        st->state = LG_INDEX_NO_TIP; /* verify names the missing meta row */
        return 0;
    }
    if (strcmp(st->tip, btip) == 0) {
        st->state = LG_INDEX_CURRENT;
        return 0;
    }
    if ((st->behind = commits_behind(lg, st->tip)) > 0) {
        st->state = LG_INDEX_BEHIND;
        return 0;
    }
    st->state = LG_INDEX_REWRITTEN;
    return list_rewritten(lg, st);
}

int lg_index_state_error(lg_ledger *lg, const lg_index_state *st)
{
    return lg_error_set(LG_ECHECK,
                        "%s: the index was built from ledger commit %.12s, which is not on %s: the branch was "
                        "rewritten (%s%s%s); nothing was repaired. Inspect it ('ledger verify --base REF'), then accept "
                        "the new history with 'ledger reindex --accept-rewrite'",
                        lg_ledger_index_path(lg), st->tip, LG_LEDGER_REF,
                        st->n_rewritten ? "runs in the index, not in the ledger at that seq with that id: " : "",
                        st->n_rewritten ? st->rewritten.ptr : "no indexed run differs: commits rewritten",
                        "");
}

/* 1 when the index is behind the branch (to rebuild), 0 when it is current,
 * < 0 on error (a rewritten branch is one: lg_index_state_error). */
static int index_behind(lg_ledger *lg, lg_index_state *st)
{
    int err;
    if ((err = lg_ledger_index_state(lg, st)) < 0)
        return err;
    if (st->state == LG_INDEX_REWRITTEN)
        return lg_index_state_error(lg, st);
    return st->state == LG_INDEX_BEHIND;
}

int lg_ledger_index_catch_up(lg_ledger *lg, size_t *repaired)
{
    lg_index_state st;
    int err, locked = 0;

    if (repaired)
        *repaired = 0;
    if ((err = index_behind(lg, &st)) <= 0)
        goto out;
    /* A writer may be between its commit and its index update right now:
     * wait for it, then look again. */
    if ((err = lg_ledger_lock(lg)) < 0)
        goto out;
    locked = 1;
    lg_index_state_release(&st);
    if ((err = index_behind(lg, &st)) <= 0)
        goto out;
    if ((err = lg_ledger_reindex(lg)) < 0) {
        lg_error_wrap("%s: the index is %zu commit(s) behind %s and could not be rebuilt", lg_ledger_index_path(lg),
                      st.behind, LG_LEDGER_REF);
        goto out;
    }
    if (repaired)
        *repaired = st.behind;
out:
    if (locked)
        lg_ledger_unlock(lg);
    lg_index_state_release(&st);
    return err;
}

int lg_ledger_lock_caught_up(lg_ledger *lg)
{
    int err;
    if ((err = lg_ledger_lock(lg)) < 0)
        return err;
    if ((err = lg_ledger_index_catch_up(lg, NULL)) < 0)
        lg_ledger_unlock(lg);
    return err;
}

/* ---- leftovers ------------------------------------------------------------------ */

/* The pid embedded in a leftover's name, 0 when there is none:
 * "run-<pid>-XXXXXX" (first number after a '-') or "<file>.tmp.<pid>[-wal]". */
static long pid_in_name(const char *name)
{
    const char *s = strstr(name, ".tmp.");
    char *end;
    long pid;
    if (s)
        s += 5;
    else if ((s = strchr(name, '-')) != NULL)
        s++;
    else
        return 0;
    if (*s < '1' || *s > '9')
        return 0;
    pid = strtol(s, &end, 10);
    return (*end == '\0' || *end == '-') ? pid : 0;
}

static int pid_alive(long pid)
{
    if (pid <= 0)
        return 0;
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
        return lg_error_set(LG_EIO, "%s: %s", path, strerror(errno));
    return 0;
}

typedef struct {
    int dry_run;
    double min_age;
    void (*fn)(void *, const char *);
    void *ctx;
    size_t *count;
} leftover_ctx;

/* Considers one entry; `want_dir` selects staging folders (else .tmp. files). */
static int consider(leftover_ctx *c, const char *dir, const char *name, int want_dir)
{
    lg_buf p = LG_BUF_INIT;
    struct stat sb;
    int err;
    if ((err = lg_path_join(&p, dir, name)) < 0)
        goto out;
    if (lstat(p.ptr, &sb) < 0 || (want_dir ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode)) ||
        difftime(time(NULL), sb.st_mtime) < c->min_age || pid_alive(pid_in_name(name)))
        goto out;
    if (c->fn)
        c->fn(c->ctx, p.ptr);
    if (!c->dry_run) {
        int rc = want_dir ? nftw(p.ptr, rm_entry, 16, FTW_DEPTH | FTW_PHYS) : rm_entry(p.ptr, &sb, FTW_F, NULL);
        if (rc != 0) { /* rm_entry's code (message set), or nftw's own -1 (errno) */
            err = rc < -1 ? rc : lg_error_set(LG_EIO, "%s: cannot remove: %s", p.ptr, strerror(errno));
            goto out;
        }
    }
    (*c->count)++;
out:
    lg_buf_release(&p);
    return err;
}

int lg_ledger_gc_leftovers(lg_ledger *lg, int dry_run, double min_age_s, void (*fn)(void *ctx, const char *what),
                           void *ctx, size_t *count_out)
{
    leftover_ctx c = {dry_run, min_age_s, fn, ctx, count_out};
    lg_buf staging = LG_BUF_INIT;
    DIR *d = NULL;
    struct dirent *e;
    int err = 0;

    *count_out = 0;
    /* "<file>.tmp.<pid>" next to index.sqlite, ledger.json, ... */
    if (!(d = opendir(lg_ledger_dir(lg)))) {
        err = lg_error_set(LG_EIO, "%s: %s", lg_ledger_dir(lg), strerror(errno));
        goto out;
    }
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.") && (err = consider(&c, lg_ledger_dir(lg), e->d_name, 0)) < 0)
            goto out;
    closedir(d);
    d = NULL;
    /* staging folders of `ledger run` (and any other command staging there) */
    if ((err = lg_path_join(&staging, lg_ledger_dir(lg), "tmp")) < 0)
        goto out;
    if (!(d = opendir(staging.ptr))) {
        if (errno != ENOENT)
            err = lg_error_set(LG_EIO, "%s: %s", staging.ptr, strerror(errno));
        goto out;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((err = consider(&c, staging.ptr, e->d_name, 1)) < 0 || (err = consider(&c, staging.ptr, e->d_name, 0)) < 0)
            goto out;
    }
out:
    if (d)
        closedir(d);
    lg_buf_release(&staging);
    return err;
}
