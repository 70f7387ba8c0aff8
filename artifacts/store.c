/*
 * store.c - content-addressed store (see store.h).
 *
 * put: open a unique temp file under <root>/tmp (mkstemp), stream the source
 * into it while hashing, fsync, then either drop it (the object already
 * exists: dedup) or chmod 0444 + rename to objects/ab/<rest> + fsync the
 * directory. Invariant: every file under objects/ is complete, read-only and
 * named by the SHA-256 of its bytes (lg_store_verify re-checks the last part).
 * Dedup re-hashes the existing object first: when it does not match (bit
 * rot, tampering), the new bytes replace it by the same atomic rename, so
 * storing good bytes again repairs a corrupt object.
 *
 * Links: the store never follows a symbolic link below its root. Objects are
 * opened with openat(O_NOFOLLOW) one component at a time (objects/, ab/,
 * the object), so a link planted as an object or as a fan-out directory
 * reads as a tampered object (LG_ECHECK), never as the bytes it points to;
 * before a write, objects/, ab/ and tmp/ must be real directories, and a
 * rename replaces a planted link instead of writing through it.
 */
#include "artifacts/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/sha256.h"

struct lg_store {
    char *root;
};

int lg_store_open(const char *root, int create, lg_store **out)
{
    lg_store *st = NULL;
    lg_buf p = LG_BUF_INIT;
    int err = 0;

    *out = NULL;
    if (create) {
        if ((err = lg_path_join(&p, root, "objects")) < 0 || (err = lg_mkdir_p(p.ptr, 0755)) < 0)
            goto out;
        if ((err = lg_path_join(&p, root, "tmp")) < 0 || (err = lg_mkdir_p(p.ptr, 0755)) < 0)
            goto out;
    } else {
        if ((err = lg_path_join(&p, root, "objects")) < 0)
            goto out;
        if (!lg_is_dir(p.ptr)) {
            err = lg_error_set(LG_ENOTFOUND, "%s: no artifact store here", root);
            goto out;
        }
    }
    if (!(st = lg_calloc(1, sizeof(*st))) || !(st->root = lg_strdup(root))) {
        err = LG_ENOMEM;
        goto out;
    }
    *out = st;
    st = NULL;
out:
    lg_store_free(st);
    lg_buf_release(&p);
    return err;
}

void lg_store_free(lg_store *st)
{
    if (!st)
        return;
    lg_free(st->root);
    lg_free(st);
}


/* ---- no links below the root ---------------------------------------------- */

/* Opens the object read-only without following any link below the root.
 * LG_ENOTFOUND when absent; LG_ECHECK when a component is a link or the
 * object is not a regular file; LG_EIO otherwise. */
static int open_object(const lg_store *st, const char *hex, int *fd_out)
{
    lg_buf p = LG_BUF_INIT;
    char sub[3];
    struct stat sb;
    int objs = -1, fan = -1, fd = -1, err = 0, e;

    *fd_out = -1;
    if (!lg_sha256_hex_valid(hex))
        return lg_error_set(LG_EINPUT, "'%.80s' is not a SHA-256 digest (64 lowercase hex digits)", hex ? hex : "");
    if ((err = lg_path_join(&p, st->root, "objects")) < 0)
        goto out;
    memcpy(sub, hex, 2);
    sub[2] = '\0';
    if ((objs = open(p.ptr, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        (fan = openat(objs, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        (fd = openat(fan, hex + 2, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0) {
        e = errno;
        if (e == ENOENT)
            err = lg_error_set(LG_ENOTFOUND, "object %s: missing from the store", hex);
        else if (e == ELOOP || e == ENOTDIR)
            err = lg_error_set(LG_ECHECK, "object %s: %s/%s/%s is a symbolic link or not a directory "
                                          "(the store never follows links: tampered)",
                               hex, p.ptr, sub, hex + 2);
        else
            err = lg_error_set(LG_EIO, "object %s: %s", hex, strerror(e));
        goto out;
    }
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        err = lg_error_set(LG_ECHECK, "object %s: not a regular file (tampered)", hex);
        goto out;
    }
    *fd_out = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    if (fan >= 0)
        close(fan);
    if (objs >= 0)
        close(objs);
    lg_buf_release(&p);
    return err;
}

/* A directory of the store we are about to write into must be a real one. */
static int check_real_dir(const char *dir)
{
    struct stat sb;
    if (lstat(dir, &sb) < 0)
        return lg_error_set(LG_EIO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return lg_error_set(LG_EIO, "%s: a symbolic link or not a directory: the store does not write through links",
                            dir);
    return 0;
}

int lg_store_path(const lg_store *st, const char *hex, lg_buf *out)
{
    if (!lg_sha256_hex_valid(hex))
        return lg_error_set(LG_EINPUT, "'%.80s' is not a SHA-256 digest (64 lowercase hex digits)", hex ? hex : "");
    lg_buf_clear(out);
    return lg_buf_printf(out, "%s/objects/%.2s/%s", st->root, hex, hex + 2);
}

int lg_store_exists(const lg_store *st, const char *hex)
{
    int fd = -1, err = open_object(st, hex, &fd);
    if (fd >= 0)
        close(fd);
    if (err == LG_EINPUT)
        return err;
    lg_error_clear();
    return err >= 0; /* a link or a non-file in its place is not the object */
}

static int write_all(int fd, const void *data, size_t n, const char *path)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = lg_fault_write(fd, p, n); /* write(2) unless a fault test limits it */
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return lg_error_set(LG_EIO, "%s: write: %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Creates a temp file under <root>/tmp; tmp_path receives its name. */
static int open_tmp(lg_store *st, lg_buf *tmp_path, int *fd_out)
{
    int err, fd;
    lg_buf_clear(tmp_path);
    if ((err = lg_buf_printf(tmp_path, "%s/tmp", st->root)) < 0 || (err = check_real_dir(tmp_path->ptr)) < 0 ||
        (err = lg_buf_printf(tmp_path, "/obj-%ld-XXXXXX", (long)getpid())) < 0) {
        lg_buf_clear(tmp_path); /* callers unlink a non-empty tmp_path on error: never the directory */
        return err;
    }
    fd = mkstemp(tmp_path->ptr);
    if (fd < 0) {
        err = lg_error_set(LG_EIO, "%s: cannot create a temp file in the store: %s", st->root, strerror(errno));
        lg_buf_clear(tmp_path);
        return err;
    }
    *fd_out = fd;
    return 0;
}

/* Moves a complete, fsync'ed temp file to its object path (or drops it). */
static int commit_tmp(lg_store *st, const char *tmp, const char *hex, int *added_out)
{
    lg_buf dst = LG_BUF_INIT, dir = LG_BUF_INIT, objects = LG_BUF_INIT;
    struct stat sb;
    int err, new_fanout;
    if (added_out)
        *added_out = 0;
    if ((err = lg_store_path(st, hex, &dst)) < 0)
        goto out;
    if ((err = lg_buf_printf(&objects, "%s/objects", st->root)) < 0 || (err = check_real_dir(objects.ptr)) < 0 ||
        (err = lg_buf_printf(&dir, "%s/%.2s", objects.ptr, hex)) < 0)
        goto out;
    new_fanout = lstat(dir.ptr, &sb) < 0;
    if ((err = lg_mkdir_p(dir.ptr, 0755)) < 0 || (err = check_real_dir(dir.ptr)) < 0)
        goto out;
    if (lstat(dst.ptr, &sb) == 0 && S_ISREG(sb.st_mode)) {
        /* dedup only when the stored object really holds these bytes: a corrupt
         * copy is replaced (atomically, by the rename below), never kept */
        int v = lg_store_verify(st, hex);
        if (v == 0) {
            unlink(tmp);
            goto out;
        }
        if (v != LG_ECHECK && v != LG_ENOTFOUND) {
            err = v;
            goto out;
        }
        lg_error_clear();
    }
    /* absent, or a planted link / non-file: rename(2) replaces the link itself, never its target */
    if (chmod(tmp, 0444) < 0) {
        err = lg_error_set(LG_EIO, "%s: chmod: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, dst.ptr) < 0) {
        err = lg_error_set(LG_EIO, "%s: rename into the store: %s", dst.ptr, strerror(errno));
        goto out;
    }
    if ((err = lg_fsync_dir(dir.ptr)) < 0)
        goto out;
    /* a fan-out folder made just now is an entry of objects/: make it durable too,
     * or a power loss could drop the folder with the object in it */
    if (new_fanout && (err = lg_fsync_dir(objects.ptr)) < 0)
        goto out;
    if (added_out)
        *added_out = 1;
out:
    lg_buf_release(&dst);
    lg_buf_release(&dir);
    lg_buf_release(&objects);
    return err;
}

/* Makes the written temp file durable (fsync), closes it (*fd = -1) and
 * commits it under its digest. fault: the test-only fault point between the
 * close and the commit, or NULL. */
static int seal_tmp(lg_store *st, int *fd, const char *tmp, const char *hex, int *added_out, const char *fault)
{
    if (fsync(*fd) < 0)
        return lg_error_set(LG_EIO, "%s: fsync: %s", tmp, strerror(errno));
    close(*fd);
    *fd = -1;
    if (fault)
        lg_fault_point(fault);
    return commit_tmp(st, tmp, hex, added_out);
}

typedef struct {
    int fd;
    const char *tmp;
} copy_ctx;

static int copy_piece(void *vctx, const void *piece, size_t n)
{
    const copy_ctx *c = vctx;
    return write_all(c->fd, piece, n, c->tmp);
}

int lg_store_put_file(lg_store *st, const char *path, char hex_out[65], uint64_t *size_out, int *added_out)
{
    lg_buf tmp = LG_BUF_INIT;
    int in = -1, fd = -1, err;
    struct stat sb;
    copy_ctx cc;

    in = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block us: fstat refuses it below */
    if (in < 0) {
        err = lg_error_set(errno == ENOENT ? LG_ENOTFOUND : LG_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(in, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        err = lg_error_set(LG_EINPUT, "%s: not a regular file", path);
        goto out;
    }
    if (fcntl(in, F_SETFL, 0) < 0) { /* back to blocking reads */
        err = lg_error_set(LG_EIO, "%s: fcntl: %s", path, strerror(errno));
        goto out;
    }
    if ((err = open_tmp(st, &tmp, &fd)) < 0)
        goto out;
    /* one pass: hash what is copied, so the name is the digest of exactly the stored bytes */
    cc.fd = fd;
    cc.tmp = tmp.ptr;
    if ((err = lg_sha256_fd(in, path, copy_piece, &cc, hex_out, size_out)) < 0)
        goto out;
    if ((err = seal_tmp(st, &fd, tmp.ptr, hex_out, added_out, "store:tmp-written")) < 0)
        goto out;
    lg_buf_clear(&tmp); /* committed: nothing to unlink */
out:
    if (fd >= 0)
        close(fd);
    if (in >= 0)
        close(in);
    if (err < 0 && tmp.ptr && tmp.len)
        unlink(tmp.ptr);
    lg_buf_release(&tmp);
    return err;
}

int lg_store_put_buf(lg_store *st, const void *data, size_t n, char hex_out[65], int *added_out)
{
    lg_buf tmp = LG_BUF_INIT;
    int fd = -1, err;

    if ((err = lg_sha256_buf(data, n, hex_out)) < 0)
        goto out;
    /* already stored and intact: nothing to write (a corrupt or planted object is rewritten) */
    if ((err = lg_store_verify(st, hex_out)) == 0) {
        if (added_out)
            *added_out = 0;
        goto out;
    }
    if (err != LG_ENOTFOUND && err != LG_ECHECK)
        goto out;
    lg_error_clear();
    if ((err = open_tmp(st, &tmp, &fd)) < 0 || (err = write_all(fd, data, n, tmp.ptr)) < 0)
        goto out;
    if ((err = seal_tmp(st, &fd, tmp.ptr, hex_out, added_out, NULL)) < 0)
        goto out;
    lg_buf_clear(&tmp);
out:
    if (fd >= 0)
        close(fd);
    if (err < 0 && tmp.ptr && tmp.len)
        unlink(tmp.ptr);
    lg_buf_release(&tmp);
    return err;
}

/* Reads an open object to its end, into the hasher h and/or the buffer out (each may be NULL);
 * max caps the bytes (0 = none). */
static int read_object(int fd, const char *hex, size_t max, lg_sha256 *h, lg_buf *out)
{
    unsigned char *chunk = lg_malloc(LG_SHA256_CHUNK);
    size_t total = 0;
    int err = 0;
    if (!chunk)
        return LG_ENOMEM;
    for (;;) {
        ssize_t n = read(fd, chunk, LG_SHA256_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = lg_error_set(LG_EIO, "object %s: read: %s", hex, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        total += (size_t)n;
        if (max && total > max) {
            err = lg_error_set(LG_EINPUT, "object %s: larger than the limit of %zu bytes", hex, max);
            break;
        }
        if ((h && (err = lg_sha256_update(h, chunk, (size_t)n)) < 0) || (out && (err = lg_buf_put(out, chunk, (size_t)n)) < 0))
            break;
    }
    lg_free(chunk);
    return err;
}

int lg_store_verify(const lg_store *st, const char *hex)
{
    lg_sha256 h = {0};
    char got[65];
    int fd = -1, err;
    if ((err = open_object(st, hex, &fd)) < 0)
        goto out;
    if ((err = lg_sha256_init(&h)) < 0 || (err = read_object(fd, hex, 0, &h, NULL)) < 0 ||
        (err = lg_sha256_final(&h, got)) < 0)
        goto out;
    if (strcmp(got, hex) != 0)
        err = lg_error_set(LG_ECHECK, "object %s: content hashes to %s (modified)", hex, got);
out:
    lg_sha256_release(&h);
    if (fd >= 0)
        close(fd);
    return err;
}

int lg_store_get(const lg_store *st, const char *hex, size_t max, lg_buf *out)
{
    int fd = -1, err = open_object(st, hex, &fd);
    if (err >= 0)
        err = read_object(fd, hex, max, NULL, out);
    if (err >= 0 && !out->ptr)
        err = lg_buf_grow(out, 0);
    if (fd >= 0)
        close(fd);
    return err;
}

static int is_hex_name(const char *s, size_t len)
{
    size_t i;
    if (strlen(s) != len)
        return 0;
    for (i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int lg_store_foreach(const lg_store *st, lg_store_object_fn fn, void *ctx)
{
    lg_buf dir = LG_BUF_INIT, sub = LG_BUF_INIT;
    DIR *d = NULL, *d2 = NULL;
    struct dirent *e, *e2;
    int err = 0;

    if ((err = lg_path_join(&dir, st->root, "objects")) < 0)
        goto out;
    if (!(d = opendir(dir.ptr))) {
        err = lg_error_set(LG_EIO, "%s: %s", dir.ptr, strerror(errno));
        goto out;
    }
    while ((e = readdir(d)) != NULL) {
        if (!is_hex_name(e->d_name, 2))
            continue;
        if ((err = lg_path_join(&sub, dir.ptr, e->d_name)) < 0)
            goto out;
        if (!(d2 = opendir(sub.ptr)))
            continue;
        while ((e2 = readdir(d2)) != NULL) {
            char hex[65];
            struct stat sb;
            lg_buf f = LG_BUF_INIT;
            if (!is_hex_name(e2->d_name, 62))
                continue;
            memcpy(hex, e->d_name, 2);
            memcpy(hex + 2, e2->d_name, 63);
            if ((err = lg_path_join(&f, sub.ptr, e2->d_name)) < 0)
                goto out;
            err = lstat(f.ptr, &sb); /* a planted link is listed as itself (gc removes the link) */
            lg_buf_release(&f);
            if (err < 0) {
                err = 0;
                continue;
            }
            if ((err = fn(ctx, hex, (uint64_t)sb.st_size)) != 0)
                goto out;
        }
        closedir(d2);
        d2 = NULL;
    }
out:
    if (d2)
        closedir(d2);
    if (d)
        closedir(d);
    lg_buf_release(&dir);
    lg_buf_release(&sub);
    return err;
}

int lg_store_remove(lg_store *st, const char *hex)
{
    lg_buf p = LG_BUF_INIT;
    int err = lg_store_path(st, hex, &p);
    if (err >= 0 && unlink(p.ptr) < 0 && errno != ENOENT)
        err = lg_error_set(LG_EIO, "%s: unlink: %s", p.ptr, strerror(errno));
    lg_buf_release(&p);
    return err;
}

int lg_store_gc_tmp(lg_store *st, int dry_run, double min_age_s, void (*fn)(void *ctx, const char *path),
                    void *ctx, size_t *count_out)
{
    lg_buf dir = LG_BUF_INIT, f = LG_BUF_INIT;
    DIR *d = NULL;
    struct dirent *e;
    time_t now = time(NULL);
    int err = 0;

    *count_out = 0;
    if ((err = lg_path_join(&dir, st->root, "tmp")) < 0)
        goto out;
    if (!(d = opendir(dir.ptr))) {
        if (errno != ENOENT)
            err = lg_error_set(LG_EIO, "%s: %s", dir.ptr, strerror(errno));
        goto out;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat sb;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((err = lg_path_join(&f, dir.ptr, e->d_name)) < 0)
            goto out;
        if (lstat(f.ptr, &sb) < 0 || !S_ISREG(sb.st_mode) || difftime(now, sb.st_mtime) < min_age_s)
            continue;
        if (fn)
            fn(ctx, f.ptr);
        if (!dry_run && unlink(f.ptr) < 0 && errno != ENOENT) {
            err = lg_error_set(LG_EIO, "%s: unlink: %s", f.ptr, strerror(errno));
            goto out;
        }
        (*count_out)++;
    }
out:
    if (d)
        closedir(d);
    lg_buf_release(&dir);
    lg_buf_release(&f);
    return err;
}
