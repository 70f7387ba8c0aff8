/*
 * worktree_guard.c - refuse a .ledger/ that a commit carries (worktree_guard.h).
 */
#include "ledger/worktree_guard.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "ledger/ledger.h"

int lg_ledger_dir_untracked(git_repository *repo)
{
    git_index *idx = NULL;
    const git_index_entry *e = NULL;
    size_t pos = 0;
    int err = 0;
    if (git_repository_is_bare(repo) || git_repository_index(&idx, repo) < 0)
        return 0;
    /* .ledger itself (a link or a file) or anything below it */
    if (!(e = git_index_get_bypath(idx, LG_LEDGER_DIR, 0)) &&
        git_index_find_prefix(&pos, idx, LG_LEDGER_DIR "/") == 0)
        e = git_index_get_byindex(idx, pos);
    if (e)
        err = lg_error_set(LG_EINPUT,
                           "%s%s: tracked by git (a commit carries it): " LG_LEDGER_DIR "/ is this clone's own state "
                           "and is never taken from a commit; untrack it ('git rm -r --cached " LG_LEDGER_DIR
                           "'), delete the files the checkout wrote there and run 'ledger reindex'",
                           git_repository_workdir(repo) ? git_repository_workdir(repo) : "", e->path);
    git_index_free(idx);
    return err;
}

int lg_path_tracked(git_repository *repo, const char *path)
{
    const char *wd = git_repository_workdir(repo);
    char *abs = realpath(path, NULL), *wdabs = wd ? realpath(wd, NULL) : NULL;
    git_index *idx = NULL;
    size_t n;
    int tracked = 0;
    if (abs && wdabs && (n = strlen(wdabs)) > 0 && strncmp(abs, wdabs, n) == 0 && abs[n] == '/' &&
        git_repository_index(&idx, repo) == 0 && git_index_read(idx, 0) == 0)
        tracked = git_index_get_bypath(idx, abs + n + 1, 0) != NULL;
    git_index_free(idx);
    free(abs); /* realpath's, not ours */
    free(wdabs);
    return tracked;
}
