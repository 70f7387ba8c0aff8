/*
 * ledger_core.c - the ledger handle: its fields (ledger_int.h), accessors,
 * free, the FORMAT check and small path helpers.
 *
 * Why a file of its own: every other file of the core needs the handle, and
 * nothing here calls them, so the files form layers (ledger_int.h lists
 * them). A handle is made by ledger_open.c (lg_ledger_open / lg_ledger_init);
 * lg_ledger_free releases a held writer lock itself, so that this bottom
 * layer does not call ledger_lock.c.
 *
 * The FORMAT file: the root commit's tree holds FORMAT = "ledger-format 2",
 * and since every later commit only adds runs/<k>-<id12>/, every tree of the
 * branch carries it. Checking the tip's copy is therefore a cheap and exact
 * way to refuse a format-1 ledger on every command.
 */
#include "ledger/ledger_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/sha256.h"

int lgl_git_fail(const char *what)
{
    const git_error *e = git_error_last();
    return lg_error_set(LG_EIO, "git: %s: %s", what, e && e->message ? e->message : "failed");
}

/* ---- small path helpers -------------------------------------------------- */

char *lgl_path2(const char *a, const char *b)
{
    lg_buf p = LG_BUF_INIT;
    if (lg_path_join(&p, a, b) < 0) {
        lg_buf_release(&p);
        return NULL;
    }
    return lg_buf_detach(&p);
}

static char *workdir_of(git_repository *repo)
{
    const char *wd = git_repository_workdir(repo);
    size_t n;
    if (!wd)
        return NULL;
    n = strlen(wd);
    while (n > 1 && wd[n - 1] == '/')
        n--;
    return lg_strndup(wd, n);
}

int lg_ledger_parse_dirname(const char *name, long *seq, char id12[13])
{
    const char *dash = strchr(name, '-'), *p;
    char *end;
    long s;
    if (!dash || dash == name || dash - name > 18 || strlen(dash + 1) != 12)
        return lg_error_set(LG_EINPUT, "'%s' is not a run directory name (<seq>-<id12>)", name);
    for (p = name; p < dash; p++) /* digits only: strtol alone took " 2-..." and "+2-..." (t7902) */
        if (*p < '0' || *p > '9')
            return lg_error_set(LG_EINPUT, "'%s' is not a run directory name (<seq>-<id12>)", name);
    s = strtol(name, &end, 10);
    if (end != dash || s < 1 || name[0] == '0' || !lg_sha256_prefix_valid(dash + 1))
        return lg_error_set(LG_EINPUT, "'%s' is not a run directory name (<seq>-<id12>)", name);
    *seq = s;
    memcpy(id12, dash + 1, 13);
    return 0;
}

int lgl_make_signature(git_repository *repo, git_signature **out)
{
    if (git_signature_default(out, repo) == 0)
        return 0;
    if (git_signature_now(out, "ledger", "ledger@localhost") == 0)
        return 0;
    return lgl_git_fail("creating a signature");
}

/* The FORMAT file of a ledger tree (every commit keeps the root's). */
static int check_format_tree(git_repository *repo, git_tree *t, const char *where)
{
    const git_tree_entry *e = git_tree_entry_byname(t, "FORMAT");
    git_blob *b = NULL;
    int err = 0;
    if (!e || git_tree_entry_type(e) != GIT_OBJECT_BLOB || git_blob_lookup(&b, repo, git_tree_entry_id(e)) < 0)
        return lg_error_set(LG_EINPUT, "%s: the ledger tree has no FORMAT file (not a ledger branch)", where);
    if ((size_t)git_blob_rawsize(b) == strlen(LG_FORMAT_TEXT) &&
        memcmp(git_blob_rawcontent(b), LG_FORMAT_TEXT, strlen(LG_FORMAT_TEXT)) == 0)
        err = 0;
    else if ((size_t)git_blob_rawsize(b) == 16 && memcmp(git_blob_rawcontent(b), "ledger-format 1\n", 16) == 0)
        err = lg_error_set(LG_EINPUT, "format 1 ledger: %s holds a format 1 ledger; " LG_FORMAT1_ADVICE, where);
    else
        err = lg_error_set(LG_EINPUT, "%s: FORMAT is not \"ledger-format %d\" (unknown ledger format)", where,
                           LG_LEDGER_FORMAT);
    git_blob_free(b);
    return err;
}

int lg_ledger_check_format_at(git_repository *repo, const git_oid *commit, const char *where)
{
    git_commit *c = NULL;
    git_tree *t = NULL;
    int err;
    if (git_commit_lookup(&c, repo, commit) < 0 || git_commit_tree(&t, c) < 0)
        err = lgl_git_fail(where);
    else
        err = check_format_tree(repo, t, where);
    git_tree_free(t);
    git_commit_free(c);
    return err;
}

int lgl_new(git_repository *repo, lg_ledger **out)
{
    lg_ledger *lg = lg_calloc(1, sizeof(*lg));
    if (!lg)
        return LG_ENOMEM;
    lg->repo = repo;
    lg->lock_fd = -1;
    lg->lock_timeout = 30;
    if (!(lg->root = workdir_of(repo)) || !(lg->dir = lgl_path2(lg->root, LG_LEDGER_DIR)) ||
        !(lg->index_path = lgl_path2(lg->dir, "index.sqlite"))) {
        lg->repo = NULL;
        lg_ledger_free(lg);
        return LG_ENOMEM;
    }
    *out = lg;
    return 0;
}

void lg_ledger_free(lg_ledger *lg)
{
    if (!lg)
        return;
    if (lg->lock_fd >= 0) { /* held: release it here (ledger_lock.c sits above this file) */
        if (ftruncate(lg->lock_fd, 0) < 0) {
            /* the pid is informative only */
        }
        flock(lg->lock_fd, LOCK_UN);
        close(lg->lock_fd);
        lg->lock_fd = -1;
        lg->lock_depth = 0;
    }
    if (lg->db)
        sqlite3_close(lg->db);
    lg_store_free(lg->store);
    git_repository_free(lg->repo); /* libgit2 stays initialised: init is refcounted and cheap to keep */
    lg_free(lg->root);
    lg_free(lg->dir);
    lg_free(lg->index_path);
    lg_free(lg);
}

const char *lg_ledger_root(lg_ledger *lg) { return lg->root; }
const char *lg_ledger_dir(lg_ledger *lg) { return lg->dir; }
const char *lg_ledger_index_path(lg_ledger *lg) { return lg->index_path; }
git_repository *lg_ledger_repo(lg_ledger *lg) { return lg->repo; }
lg_store *lg_ledger_store(lg_ledger *lg) { return lg->store; }
uint64_t lg_ledger_small_output_max(lg_ledger *lg) { return lg->small_max; }

void lg_ledger_set_trust(lg_ledger *lg, const lg_trust_opts *t)
{
    if (t)
        lg->trust = *t;
    else
        memset(&lg->trust, 0, sizeof lg->trust);
}

const lg_trust_opts *lg_ledger_trust(lg_ledger *lg) { return &lg->trust; }

