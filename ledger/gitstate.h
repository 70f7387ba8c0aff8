/*
 * gitstate.h - the state of the user's work tree beside HEAD, for the run
 * manifest: whether tracked files differ from HEAD and a digest of that
 * difference, so that a run made from uncommitted code says so.
 */
#ifndef LG_GITSTATE_H
#define LG_GITSTATE_H

#include <git2.h>

/* *dirty = 1 when a tracked file (in the index or the work tree) differs
 * from HEAD's tree (an unborn HEAD counts as the empty tree), else 0; -1
 * when it cannot be told (a bare repository). diff_hex = SHA-256 of the
 * patch text of that difference (what 'git diff --binary HEAD' shows, in
 * libgit2's patch format), "" when clean or unknown. Untracked files do not
 * count, as in 'git diff HEAD'. Returns 0 or a negative code. */
int lg_git_worktree_state(git_repository *repo, int *dirty, char diff_hex[65]);

#endif
