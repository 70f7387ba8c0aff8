/*
 * gitstate.c - dirty flag and diff digest of the work tree (gitstate.h).
 *
 * libgit2 compares HEAD's tree with the index and the work tree together
 * (git_diff_tree_to_workdir_with_index, the comparison 'git diff HEAD'
 * makes) and prints the patch through a callback that feeds SHA-256, so no
 * patch text is held in memory whatever the size of the change.
 */
#include "ledger/gitstate.h"

#include <string.h>

#include "base/base.h"
#include "base/sha256.h"

static int hash_line(const git_diff_delta *delta, const git_diff_hunk *hunk, const git_diff_line *line, void *payload)
{
    lg_sha256 *h = payload;
    char origin = line->origin;
    (void)delta;
    (void)hunk;
    if ((origin == GIT_DIFF_LINE_CONTEXT || origin == GIT_DIFF_LINE_ADDITION || origin == GIT_DIFF_LINE_DELETION) &&
        lg_sha256_update(h, &origin, 1) < 0)
        return -1;
    return lg_sha256_update(h, line->content, line->content_len) < 0 ? -1 : 0;
}

int lg_git_worktree_state(git_repository *repo, int *dirty, char diff_hex[65])
{
    git_object *tree = NULL;
    git_diff *diff = NULL;
    git_diff_options opts;
    lg_sha256 h;
    int err = 0, hinit = 0;

    *dirty = -1;
    diff_hex[0] = '\0';
    if (git_repository_is_bare(repo))
        return 0;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    if (git_revparse_single(&tree, repo, "HEAD^{tree}") < 0)
        tree = NULL; /* unborn HEAD: compare with the empty tree */
    opts.flags |= GIT_DIFF_SHOW_BINARY;
    if (git_diff_tree_to_workdir_with_index(&diff, repo, (git_tree *)tree, &opts) < 0) {
        const git_error *e = git_error_last();
        err = lg_error_set(LG_EIO, "git: comparing the work tree with HEAD: %s", e && e->message ? e->message : "failed");
        goto out;
    }
    *dirty = git_diff_num_deltas(diff) > 0;
    if (!*dirty)
        goto out;
    if ((err = lg_sha256_init(&h)) < 0)
        goto out;
    hinit = 1;
    if (git_diff_print(diff, GIT_DIFF_FORMAT_PATCH, hash_line, &h) < 0) {
        err = lg_error_set(LG_EIO, "git: hashing the work tree's diff against HEAD failed");
        goto out;
    }
    hinit = 0;
    err = lg_sha256_final(&h, diff_hex);
out:
    if (hinit)
        lg_sha256_release(&h);
    git_diff_free(diff);
    git_object_free(tree);
    return err;
}
