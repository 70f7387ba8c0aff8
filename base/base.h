/*
 * base.h - the few utilities every module shares: error codes with a
 * thread-local last-error message, one allocation wrapper (fault-injectable),
 * one growable buffer with a size cap, and atomic file writes.
 *
 * It lives in base/, the lowest layer: every other module may depend on it
 * (DESIGN.md section 2).
 *
 * Conventions (STYLE.md 3-5): library functions return 0 or a negative LG_E*
 * code and, on error, set a message naming the file and place through
 * lg_error_set(). Only the CLI prints. Free functions accept NULL.
 */
#ifndef LG_BASE_H
#define LG_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Error codes. lg_exit_code() maps them to the CLI contract:
 * 0 ok, 1 a check failed, 2 usage or bad input, 3 internal or I/O error. */
enum {
    LG_OK = 0,
    LG_ECHECK = -1,    /* a check failed (claim, digest): exit 1 */
    LG_EINPUT = -2,    /* bad input or usage: exit 2 */
    LG_EIO = -3,       /* I/O error: exit 3 */
    LG_EINTERNAL = -4, /* internal error: exit 3 */
    LG_ENOMEM = -5,    /* out of memory: exit 3 */
    LG_ENOTFOUND = -6, /* a named thing does not exist: exit 2 */
    LG_ELOCKED = -7,   /* resource busy (lock held): exit 3 */
    LG_EDIVERGED = -8, /* training diverged (NaN/Inf loss): exit 1 */
    LG_ESTOPPED = -20  /* stopped on request (SIGINT/SIGTERM): the CLI exits 128 + signal */
};

/* Set the thread-local last error (printf-style) and return `code`.
 * The message should name the file and place ("spec.json: conditions[2].k: ..."). */
int lg_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepend context to the current message ("reading X: <old message>"); returns the current code. */
int lg_error_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *lg_error_msg(void);  /* never NULL; "" when no error */
int lg_error_code(void);
void lg_error_clear(void);
int lg_exit_code(int err);        /* 0 for err >= 0 */

/* Allocation: every allocation of the project goes through these, so that a
 * test can make the n-th one fail (lg_alloc_fail_after). On failure they set
 * LG_ENOMEM and return NULL. */
void *lg_malloc(size_t n);
void *lg_calloc(size_t count, size_t size);
void *lg_realloc(void *p, size_t n);
char *lg_strdup(const char *s);
char *lg_strndup(const char *s, size_t n);
/* printf into a new string (free with lg_free); NULL with LG_ENOMEM set. */
char *lg_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *lg_strdup_vprintf(const char *fmt, va_list ap);
void lg_free(void *p);
/* Test hook: the allocation after the next `n` succeeds fails; n < 0 disables. */
void lg_alloc_fail_after(long n);

/* Growable arrays. lg_resize: *(T **)pptr = lg_realloc of it to n elements of
 * elem bytes; on failure (LG_ENOMEM, also when n * elem overflows) the array
 * is left as it was. lg_grow: room for `need` elements, the capacity *cap
 * doubling from `first`; *cap is updated only on success. Both return 0 or
 * LG_ENOMEM. Arrays kept side by side share one capacity: lg_resize each to
 * lg_grow_cap(cap, need, first), then store the capacity. */
size_t lg_grow_cap(size_t cap, size_t need, size_t first);
int lg_resize(void *pptr, size_t n, size_t elem);
int lg_grow(void *pptr, size_t *cap, size_t need, size_t elem, size_t first);

/* Growable byte buffer, always NUL-terminated when ptr != NULL.
 * `max` caps the length (0 = no cap); growing past it fails with LG_EINPUT,
 * which is what untrusted input needs. */
typedef struct {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max;
} lg_buf;
#define LG_BUF_INIT {NULL, 0, 0, 0}

void lg_buf_init(lg_buf *b, size_t max);
int lg_buf_grow(lg_buf *b, size_t extra);
int lg_buf_put(lg_buf *b, const void *data, size_t n);
int lg_buf_puts(lg_buf *b, const char *s);
int lg_buf_printf(lg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int lg_buf_vprintf(lg_buf *b, const char *fmt, va_list ap);
void lg_buf_clear(lg_buf *b);        /* len = 0, keeps memory */
void lg_buf_release(lg_buf *b);      /* frees memory */
char *lg_buf_detach(lg_buf *b);      /* caller frees with lg_free; never NULL on success */

/* Files. */
/* Read a whole file (at most `max` bytes, 0 = no cap) into `out` (appended). */
int lg_file_read(const char *path, size_t max, lg_buf *out);
/* lg_file_read for a file that may be absent: 1 read, 0 absent (nothing
 * appended, no error left set), < 0 any other error. */
int lg_file_read_optional(const char *path, size_t max, lg_buf *out);
/* Write atomically: <path>.tmp.<pid>, fsync, rename, fsync the directory. */
int lg_file_write_atomic(const char *path, const void *data, size_t len);

/* The same, streamed: open, write any number of pieces, then commit (fsync,
 * close, rename, fsync the directory) or abort (close, unlink the temp
 * file). Until commit, `path` keeps its old content (or stays absent).
 * commit and write release everything on failure (the temp file removed);
 * abort accepts a writer that failed or was never opened (fd < 0). */
typedef struct {
    int fd;
    char *path;
    char *tmp;
} lg_atomic_file;
int lg_atomic_open(lg_atomic_file *f, const char *path);
int lg_atomic_write(lg_atomic_file *f, const void *data, size_t len);
int lg_atomic_commit(lg_atomic_file *f);
void lg_atomic_abort(lg_atomic_file *f);
/* fsync a directory (after a rename in it). */
int lg_fsync_dir(const char *dir);
int lg_mkdir_p(const char *path, mode_t mode);
int lg_path_exists(const char *path);
int lg_is_dir(const char *path);
/* 0 when path (links followed) is a regular file; LG_ENOTFOUND when absent,
 * LG_EINPUT naming what it is ("a FIFO", "a directory", ...) otherwise.
 * For commands that read input files: opening a FIFO blocks until a writer
 * comes, so they check before they open (and before taking any lock). */
int lg_path_check_regular(const char *path);
/* out = a "/" b (out is cleared first). */
int lg_path_join(lg_buf *out, const char *a, const char *b);
/* Best effort: removes path and everything below it, depth first, never
 * following a symbolic link (a link is removed, not its target). For
 * staging and scratch folders; failures are ignored. */
void lg_path_remove_tree(const char *path);

/* Small helpers. */
int lg_parse_double(const char *s, double *out); /* whole string must parse, finite */
int lg_parse_long(const char *s, long *out);
double lg_now_seconds(void);                     /* monotonic clock */
/* UTC time as "2026-11-27T02:00:00Z" into buf (>= 21 bytes). */
void lg_utc_iso8601(char *buf, size_t n);

#endif
