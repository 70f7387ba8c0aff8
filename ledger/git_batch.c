/*
 * git_batch.c - one durability barrier for the git objects of a record,
 * instead of two fsyncs per loose object.
 *
 * Why: with GIT_OPT_ENABLE_FSYNC_GITDIR (ledger_open.c) libgit2 fsyncs every
 * loose object file and its directory: a small `record` writes about 7
 * objects (blobs, the trees of runs/<dir>/files, runs/<dir>, runs/, the root),
 * 14 fsyncs, which were most of its wall time (bench/RESULTS.md).
 *
 * What is kept: the guarantee that every object the new commit reaches is on
 * disk before the ref that makes the run visible can be. The objects are
 * written with libgit2's fsync off, then one syncfs(2) on the filesystem that
 * holds <gitdir>/objects flushes them, their fanout directories and the
 * journal, and reports any write-back error; only then is fsync turned back
 * on and the commit and ref written as before (file + directory fsyncs, the
 * ref update refusing a moved tip). A crash before the barrier leaves only
 * unreferenced objects (garbage, as before); a failed barrier fails the
 * record with nothing committed.
 *
 * The option is process-global; the CLI is single-threaded and every exit
 * path of lg_ledger_record calls lgl_objects_batch_end.
 */
#define _GNU_SOURCE
#include "ledger/ledger_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

void lgl_objects_batch_begin(lg_ledger *lg)
{
    (void)lg;
    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 0);
}

int lgl_objects_batch_commit(lg_ledger *lg)
{
    lg_buf path = LG_BUF_INIT;
    int fd = -1, err;
    if ((err = lg_path_join(&path, git_repository_path(lg->repo), "objects")) < 0)
        goto out;
    if ((fd = open(path.ptr, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        err = lg_error_set(LG_EIO, "%s: open: %s", path.ptr, strerror(errno));
        goto out;
    }
    if (syncfs(fd) < 0) {
        err = lg_error_set(LG_EIO, "%s: syncing the new objects to disk: %s", path.ptr, strerror(errno));
        goto out;
    }
    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
out:
    if (fd >= 0)
        close(fd);
    lg_buf_release(&path);
    return err;
}

void lgl_objects_batch_end(lg_ledger *lg)
{
    (void)lg;
    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
}
