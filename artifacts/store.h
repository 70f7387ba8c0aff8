/*
 * store.h - the content-addressed artifact store.
 *
 * Layout (git's loose objects): <root>/objects/ab/cdef... where "abcdef..."
 * is the 64-hex SHA-256 of the bytes; <root>/tmp/ holds objects being
 * written. An object is written to tmp/, fsync'ed, chmod 0444 and renamed
 * into place, then the directory is fsync'ed: a reader never sees a partial
 * object, and a crash leaves at most a temp file that lg_store_gc_tmp()
 * removes. Putting bytes that are already stored is a no-op (dedup) when the
 * stored object still hashes to its name; a corrupt object is replaced.
 *
 * Paths are built only from validated digests (lg_sha256_hex_valid), never
 * from user input, so nothing outside <root> can be named through the store.
 */
#ifndef LG_STORE_H
#define LG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef struct lg_store lg_store;

/* Opens the store at `root`. With `create`, makes root/objects and root/tmp
 * (mode 0755) when missing; else a missing store is LG_ENOTFOUND.
 * *out is freed with lg_store_free. */
int lg_store_open(const char *root, int create, lg_store **out);
void lg_store_free(lg_store *st);

/* Copies the file at `path` into the store while hashing it (one streamed
 * pass, 64 KiB chunks). hex_out receives the digest; size_out (may be NULL)
 * the length; *added_out (may be NULL) is 1 when an object was written (new,
 * or replacing a corrupt one), 0 when an intact copy was already there. Errors: LG_ENOTFOUND (no such file), LG_EIO. */
int lg_store_put_file(lg_store *st, const char *path, char hex_out[65], uint64_t *size_out, int *added_out);
/* Same for a buffer. */
int lg_store_put_buf(lg_store *st, const void *data, size_t n, char hex_out[65], int *added_out);

/* out = path of the object (whether or not it exists). LG_EINPUT if `hex`
 * is not a valid digest. */
int lg_store_path(const lg_store *st, const char *hex, lg_buf *out);
/* 1 if the object exists, 0 if not, negative on error (invalid digest). */
int lg_store_exists(const lg_store *st, const char *hex);
/* Re-hashes the object: 0 when its bytes hash to `hex`, LG_ENOTFOUND when it
 * is absent, LG_ECHECK (message names the object and the digest found) when
 * it does not match, LG_EIO on read errors. */
int lg_store_verify(const lg_store *st, const char *hex);
/* Reads the object into out (appended), at most `max` bytes (0 = no cap). */
int lg_store_get(const lg_store *st, const char *hex, size_t max, lg_buf *out);

/* Calls fn(ctx, hex, size) for every object (names that are not valid
 * digests are skipped). A non-zero return from fn stops the walk and is
 * returned. */
typedef int (*lg_store_object_fn)(void *ctx, const char *hex, uint64_t size);
int lg_store_foreach(const lg_store *st, lg_store_object_fn fn, void *ctx);
/* Removes the object (used by gc). Missing is not an error. */
int lg_store_remove(lg_store *st, const char *hex);
/* Lists (dry_run) or removes leftover temp files older than `min_age_s`
 * seconds; fn (may be NULL) is called with each path. *count_out gets the count. */
int lg_store_gc_tmp(lg_store *st, int dry_run, double min_age_s, void (*fn)(void *ctx, const char *path),
                    void *ctx, size_t *count_out);

#endif
