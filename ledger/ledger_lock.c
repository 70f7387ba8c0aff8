/*
 * ledger_lock.c - the writer lock and stale git ref locks.
 *
 * One lock for every writer (record, run, reindex, gc, sync, and verify for a
 * moment): flock on .ledger/lock, which holds the owner's pid for the
 * messages of those who wait. flock, not a lock file, because a SIGKILLed
 * writer must not leave the ledger locked: the kernel drops the lock with the
 * process. The lock nests within a process (lock_depth), so a writer can hold
 * it around several steps that each take it.
 *
 * Invariant: the branch ref and the index only change under this lock, which
 * is what lets verify read one consistent snapshot of both.
 */
#include "ledger/ledger_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

void lg_ledger_set_lock_wait(lg_ledger *lg, double timeout_s, lg_lock_notify_fn notify, void *ctx)
{
    lg->lock_timeout = timeout_s;
    lg->notify = notify;
    lg->notify_ctx = ctx;
}

int lg_ledger_lock(lg_ledger *lg)
{
    char *path = NULL, holder[32] = "", msg[512];
    double start = lg_now_seconds();
    int fd = -1, err = 0, told = 0;

    if (lg->lock_depth > 0) {
        lg->lock_depth++;
        return 0;
    }
    if (!(path = lgl_path2(lg->dir, "lock")))
        return LG_ENOMEM;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = lg_error_set(LG_EIO, "%s: cannot open the ledger lock: %s", path, strerror(errno));
        goto out;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        ssize_t n;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            err = lg_error_set(LG_EIO, "%s: flock: %s", path, strerror(errno));
            goto out;
        }
        n = pread(fd, holder, sizeof(holder) - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        if (!told && lg->notify) {
            snprintf(msg, sizeof msg, "waiting for the ledger lock %s (held by pid %s), up to %g s", path,
                     *holder ? holder : "?", lg->lock_timeout);
            lg->notify(lg->notify_ctx, msg);
            told = 1;
        }
        if (lg_now_seconds() - start >= lg->lock_timeout) {
            err = lg_error_set(LG_ELOCKED, "%s: timed out after %g s waiting for the ledger lock (held by pid %s)",
                               path, lg->lock_timeout, *holder ? holder : "?");
            goto out;
        }
        usleep(50 * 1000);
    }
    {
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
            /* the pid is informative only */
        }
    }
    lg->lock_fd = fd;
    lg->lock_depth = 1;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    lg_free(path);
    return err;
}

void lg_ledger_unlock(lg_ledger *lg)
{
    if (lg->lock_depth <= 0)
        return;
    if (--lg->lock_depth > 0)
        return;
    if (ftruncate(lg->lock_fd, 0) < 0) {
        /* informative only */
    }
    flock(lg->lock_fd, LOCK_UN);
    close(lg->lock_fd);
    lg->lock_fd = -1;
}

/* A refs/heads/ledger.lock left behind by a writer killed inside git's ref
 * update would make every later commit fail. The caller holds the ledger
 * lock, so no other ledger writer is alive; a git command updating the
 * branch (a fetch into it) holds that file for milliseconds. So: wait up to
 * 2 s for it to go, then remove it as stale and say so. */
int lgl_clear_stale_ref_lock(lg_ledger *lg)
{
    lg_buf p = LG_BUF_INIT;
    int i, err;
    if ((err = lg_buf_printf(&p, "%s%s.lock", git_repository_commondir(lg->repo), LG_LEDGER_REF)) < 0)
        goto out;
    for (i = 0; i < 40 && lg_path_exists(p.ptr); i++)
        usleep(50 * 1000);
    if (lg_path_exists(p.ptr)) {
        if (unlink(p.ptr) < 0 && errno != ENOENT) {
            err = lg_error_set(LG_EIO, "%s: cannot remove a stale ref lock: %s", p.ptr, strerror(errno));
            goto out;
        }
        if (lg->notify) {
            char msg[1200];
            snprintf(msg, sizeof msg, "removed %s, left by an interrupted writer", p.ptr);
            lg->notify(lg->notify_ctx, msg);
        }
    }
out:
    lg_buf_release(&p);
    return err;
}
