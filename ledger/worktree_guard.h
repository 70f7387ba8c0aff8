/*
 * worktree_guard.h - .ledger/ is the clone's own state, never a commit's.
 *
 * .ledger/ (index, config, store) is git-ignored through .git/info/exclude,
 * which is local: nothing stops a commit from carrying .ledger/ with `git add
 * -f`. A checkout then writes the committer's files there (git treats ignored
 * files as expendable), and a fresh CI clone's `ledger init` would keep a
 * planted index whose tip names the branch under review, so `log`/`query`
 * showed its forged rows. The guard refuses such a repository.
 */
#ifndef LG_WORKTREE_GUARD_H
#define LG_WORKTREE_GUARD_H

#include <git2.h>

/* 0 when the repository's git index tracks neither .ledger nor any path
 * below it; LG_EINPUT naming the first such path otherwise (a bare repository
 * or an unreadable index: 0, since nothing can be checked out from it). */
int lg_ledger_dir_untracked(git_repository *repo);

/* 1 when `path` (any form; resolved with realpath) is a file inside the work
 * tree that the repository's git index tracks, i.e. a file a commit under
 * review can change; 0 otherwise (outside, untracked, unresolvable). Used to
 * refuse a trust root taken from such a file (sign_trust.c, t7905). */
int lg_path_tracked(git_repository *repo, const char *path);

#endif
