/*
 * base.c - errors, allocation, buffers, atomic files (see base.h).
 *
 * The last error is thread-local so that library code can be called from
 * several threads (concurrent tests) without mixing messages. The allocation
 * counter used by fault injection is one atomic for the process: seeds train
 * on threads, and the n-th allocation fails exactly once whichever thread
 * makes it.
 */
#define _XOPEN_SOURCE 700 /* nftw (lg_path_remove_tree) */
#include "base/base.h"
#include "base/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LG_ERRMSG_MAX 1024

static _Thread_local char err_msg[LG_ERRMSG_MAX];
static _Thread_local int err_code;

int lg_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
    va_end(ap);
    err_code = code;
    return code;
}

int lg_error_wrap(const char *fmt, ...)
{
    char prefix[LG_ERRMSG_MAX / 2];
    char old[LG_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err_msg, sizeof(old));
    snprintf(err_msg, sizeof(err_msg), "%s: %.*s", prefix, (int)(sizeof(err_msg) / 2 - 3), old);
    return err_code ? err_code : LG_EINTERNAL;
}

const char *lg_error_msg(void) { return err_msg; }
int lg_error_code(void) { return err_code; }
void lg_error_clear(void) { err_msg[0] = '\0'; err_code = 0; }

int lg_exit_code(int err)
{
    switch (err) {
    case LG_OK: return 0;
    case LG_ECHECK: case LG_EDIVERGED: return 1;
    case LG_EINPUT: case LG_ENOTFOUND: return 2;
    default: return err > 0 ? 0 : 3;
    }
}

/* ---- allocation ---------------------------------------------------------- */

static atomic_long alloc_countdown = -1;

static int alloc_should_fail(void)
{
    long c = atomic_load_explicit(&alloc_countdown, memory_order_relaxed);
    while (c >= 0) { /* claim one tick; the thread that takes it from 0 fails */
        if (atomic_compare_exchange_weak_explicit(&alloc_countdown, &c, c == 0 ? -1 : c - 1,
                                                  memory_order_relaxed, memory_order_relaxed))
            return c == 0;
    }
    return 0;
}

void lg_alloc_fail_after(long n) { atomic_store_explicit(&alloc_countdown, n, memory_order_relaxed); }

void *lg_malloc(size_t n)
{
    void *p = alloc_should_fail() ? NULL : malloc(n ? n : 1);
    if (!p)
        lg_error_set(LG_ENOMEM, "out of memory (%zu bytes)", n);
    return p;
}

void *lg_calloc(size_t count, size_t size)
{
    void *p;
    if (size && count > SIZE_MAX / size) {
        lg_error_set(LG_ENOMEM, "allocation overflow (%zu x %zu)", count, size);
        return NULL;
    }
    p = alloc_should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
    if (!p)
        lg_error_set(LG_ENOMEM, "out of memory (%zu x %zu bytes)", count, size);
    return p;
}

void *lg_realloc(void *old, size_t n)
{
    void *p = alloc_should_fail() ? NULL : realloc(old, n ? n : 1);
    if (!p)
        lg_error_set(LG_ENOMEM, "out of memory (%zu bytes)", n);
    return p;
}

char *lg_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = lg_malloc(len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *lg_strdup(const char *s) { return lg_strndup(s, SIZE_MAX); }

char *lg_strdup_vprintf(const char *fmt, va_list ap)
{
    lg_buf b = LG_BUF_INIT;
    if (lg_buf_vprintf(&b, fmt, ap) < 0) {
        lg_buf_release(&b);
        return NULL;
    }
    return lg_buf_detach(&b);
}

char *lg_strdup_printf(const char *fmt, ...)
{
    va_list ap;
    char *s;
    va_start(ap, fmt);
    s = lg_strdup_vprintf(fmt, ap);
    va_end(ap);
    return s;
}

void lg_free(void *p) { free(p); }

size_t lg_grow_cap(size_t cap, size_t need, size_t first)
{
    size_t nc = cap ? cap : (first ? first : 1);
    while (nc < need && nc <= SIZE_MAX / 2)
        nc *= 2;
    return nc < need ? need : nc;
}

/* The pointer is read and written through memcpy: pptr is the address of any
 * object pointer (T **), which C does not let us name as void **. */
int lg_resize(void *pptr, size_t n, size_t elem)
{
    void *old, *p;
    if (elem && n > SIZE_MAX / elem)
        return lg_error_set(LG_ENOMEM, "out of memory (%zu elements of %zu bytes)", n, elem);
    memcpy(&old, pptr, sizeof old);
    if (!(p = lg_realloc(old, n * elem)))
        return LG_ENOMEM;
    memcpy(pptr, &p, sizeof p);
    return 0;
}

int lg_grow(void *pptr, size_t *cap, size_t need, size_t elem, size_t first)
{
    size_t nc;
    int err;
    if (need <= *cap)
        return 0;
    nc = lg_grow_cap(*cap, need, first);
    if ((err = lg_resize(pptr, nc, elem)) < 0)
        return err;
    *cap = nc;
    return 0;
}

/* ---- buffers --------------------------------------------------------------- */

void lg_buf_init(lg_buf *b, size_t max)
{
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

int lg_buf_grow(lg_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;
    if (extra > SIZE_MAX - b->len - 1)
        return lg_error_set(LG_ENOMEM, "buffer overflow");
    need = b->len + extra + 1;
    if (b->max && need - 1 > b->max)
        return lg_error_set(LG_EINPUT, "input larger than the limit of %zu bytes", b->max);
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = lg_realloc(b->ptr, cap);
    if (!p)
        return LG_ENOMEM;
    p[b->len] = '\0'; /* a buffer that holds memory is a C string, even when grown from empty */
    b->ptr = p;
    b->cap = cap;
    return 0;
}

int lg_buf_put(lg_buf *b, const void *data, size_t n)
{
    int err;
    if ((err = lg_buf_grow(b, n)) < 0)
        return err;
    if (n)
        memcpy(b->ptr + b->len, data, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return 0;
}

int lg_buf_puts(lg_buf *b, const char *s) { return lg_buf_put(b, s, strlen(s)); }

int lg_buf_vprintf(lg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    int n, err;
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return lg_error_set(LG_EINTERNAL, "format error");
    if ((err = lg_buf_grow(b, (size_t)n)) < 0)
        return err;
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int lg_buf_printf(lg_buf *b, const char *fmt, ...)
{
    va_list ap;
    int err;
    va_start(ap, fmt);
    err = lg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return err;
}

void lg_buf_clear(lg_buf *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

void lg_buf_release(lg_buf *b)
{
    if (!b)
        return;
    lg_free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

char *lg_buf_detach(lg_buf *b)
{
    char *p;
    if (!b->ptr && lg_buf_grow(b, 0) < 0)
        return NULL;
    p = b->ptr;
    b->ptr = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- files ----------------------------------------------------------------- */

int lg_file_read(const char *path, size_t max, lg_buf *out)
{
    char chunk[65536];
    size_t total = 0;
    /* O_NONBLOCK only for the open: a FIFO nobody writes to then reads as
     * empty instead of blocking open() forever (a planted claims/x.claims);
     * reads block as usual, so a pipe with a writer (<(cmd)) still works */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int err = 0, fl;
    if (fd < 0)
        return lg_error_set(errno == ENOENT ? LG_ENOTFOUND : LG_EIO, "%s: %s", path, strerror(errno));
    if ((fl = fcntl(fd, F_GETFL)) >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = lg_error_set(LG_EIO, "%s: read: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        total += (size_t)n;
        if (max && total > max) {
            err = lg_error_set(LG_EINPUT, "%s: larger than the limit of %zu bytes", path, max);
            break;
        }
        if ((err = lg_buf_put(out, chunk, (size_t)n)) < 0)
            break;
    }
    close(fd);
    if (!err && !out->ptr)
        err = lg_buf_grow(out, 0);
    return err;
}

int lg_file_read_optional(const char *path, size_t max, lg_buf *out)
{
    int err = lg_file_read(path, max, out);
    if (err == LG_ENOTFOUND) {
        lg_error_clear();
        return 0;
    }
    return err < 0 ? err : 1;
}

int lg_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return lg_error_set(LG_EIO, "%s: open directory: %s", dir, strerror(errno));
    if (fsync(fd) < 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return lg_error_set(LG_EIO, "%s: fsync: %s", dir, strerror(e));
    }
    close(fd);
    return 0;
}

void lg_atomic_abort(lg_atomic_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if (f->tmp)
        unlink(f->tmp);
    lg_free(f->tmp);
    lg_free(f->path);
    f->fd = -1;
    f->tmp = f->path = NULL;
}

int lg_atomic_open(lg_atomic_file *f, const char *path)
{
    lg_buf tmp = LG_BUF_INIT;
    int err;
    f->fd = -1;
    f->tmp = NULL;
    if (!(f->path = lg_strdup(path)))
        return LG_ENOMEM;
    if ((err = lg_buf_printf(&tmp, "%s.tmp.%ld", path, (long)getpid())) < 0) {
        lg_buf_release(&tmp);
        lg_atomic_abort(f);
        return err;
    }
    f->tmp = lg_buf_detach(&tmp);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        err = lg_error_set(LG_EIO, "%s: %s", f->tmp, strerror(errno));
        lg_free(f->tmp); /* nothing was created: do not unlink a file we do not own */
        f->tmp = NULL;
        lg_atomic_abort(f);
        return err;
    }
    return 0;
}

int lg_atomic_write(lg_atomic_file *f, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = lg_fault_write(f->fd, p, len); /* write(2) unless a fault test limits it */
        if (n < 0) {
            int err;
            if (errno == EINTR)
                continue;
            err = lg_error_set(LG_EIO, "%s: write: %s", f->tmp, strerror(errno));
            lg_atomic_abort(f);
            return err;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int lg_atomic_commit(lg_atomic_file *f)
{
    char *dir;
    int err;
    if (fsync(f->fd) < 0) {
        err = lg_error_set(LG_EIO, "%s: fsync: %s", f->tmp, strerror(errno));
        lg_atomic_abort(f);
        return err;
    }
    if (close(f->fd) < 0) {
        f->fd = -1;
        err = lg_error_set(LG_EIO, "%s: close: %s", f->tmp, strerror(errno));
        lg_atomic_abort(f);
        return err;
    }
    f->fd = -1;
    if (rename(f->tmp, f->path) < 0) {
        err = lg_error_set(LG_EIO, "%s: rename: %s", f->path, strerror(errno));
        lg_atomic_abort(f);
        return err;
    }
    lg_free(f->tmp);
    f->tmp = NULL;
    dir = f->path; /* dirname may modify its argument: path is ours */
    err = lg_fsync_dir(dirname(dir));
    lg_free(f->path);
    f->path = NULL;
    return err;
}

int lg_file_write_atomic(const char *path, const void *data, size_t len)
{
    lg_atomic_file f;
    int err;
    if ((err = lg_atomic_open(&f, path)) < 0 || (err = lg_atomic_write(&f, data, len)) < 0)
        return err;
    return lg_atomic_commit(&f);
}

int lg_mkdir_p(const char *path, mode_t mode)
{
    char *copy, *s;
    int err = 0;
    if (!*path) /* the loop below starts at copy + 1 */
        return lg_error_set(LG_EINPUT, "mkdir: empty directory path");
    if (!(copy = lg_strdup(path)))
        return LG_ENOMEM;
    for (s = copy + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(copy, mode) < 0 && errno != EEXIST) {
                err = lg_error_set(LG_EIO, "%s: mkdir: %s", copy, strerror(errno));
                break;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    if (!err && !lg_is_dir(path))
        err = lg_error_set(LG_EIO, "%s: not a directory", path);
    lg_free(copy);
    return err;
}

int lg_path_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

int lg_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int lg_path_check_regular(const char *path)
{
    struct stat st;
    const char *what;
    if (stat(path, &st) < 0)
        return lg_error_set(errno == ENOENT || errno == ENOTDIR ? LG_ENOTFOUND : LG_EIO, "%s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode))
        return 0;
    what = S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISDIR(st.st_mode) ? "a directory" : S_ISSOCK(st.st_mode) ? "a socket"
         : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "not a regular file";
    return lg_error_set(LG_EINPUT, "%s: %s, not a regular file", path, what);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void lg_path_remove_tree(const char *path) { nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

int lg_path_join(lg_buf *out, const char *a, const char *b)
{
    size_t la = strlen(a);
    lg_buf_clear(out);
    if (la && a[la - 1] == '/')
        return lg_buf_printf(out, "%s%s", a, b);
    return lg_buf_printf(out, "%s/%s", a, b);
}

/* ---- small helpers ---------------------------------------------------------- */

int lg_parse_double(const char *s, double *out)
{
    char *end;
    double v;
    if (!s || !*s)
        return lg_error_set(LG_EINPUT, "empty number");
    errno = 0;
    v = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(v))
        return lg_error_set(LG_EINPUT, "'%s' is not a finite number", s);
    *out = v;
    return 0;
}

int lg_parse_long(const char *s, long *out)
{
    char *end;
    long v;
    if (!s || !*s)
        return lg_error_set(LG_EINPUT, "empty integer");
    errno = 0;
    v = strtol(s, &end, 10);
    if (*end || errno == ERANGE)
        return lg_error_set(LG_EINPUT, "'%s' is not an integer", s);
    *out = v;
    return 0;
}

double lg_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void lg_utc_iso8601(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
