/*
 * sha256.h - SHA-256 through libcrypto's EVP interface, streamed.
 *
 * Everything the project content-addresses (store objects, manifests, study
 * files) goes through these functions, so there is one definition of "the
 * digest of a file": the lowercase hex of SHA-256 over its bytes, read in
 * 64 KiB chunks (a file is never held in memory whole).
 */
#ifndef LG_SHA256_H
#define LG_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define LG_SHA256_HEX_LEN 64
#define LG_SHA256_CHUNK (64 * 1024)

/* An incremental hasher. Initialise with lg_sha256_init, feed with
 * lg_sha256_update, finish with lg_sha256_final (which releases it), or
 * abandon with lg_sha256_release. Zero-initialised ({0}) is a valid "empty"
 * state for lg_sha256_release. */
typedef struct {
    void *ctx; /* EVP_MD_CTX*, opaque so that callers need no OpenSSL headers */
} lg_sha256;

int lg_sha256_init(lg_sha256 *h);
int lg_sha256_update(lg_sha256 *h, const void *data, size_t n);
/* Writes the 64-char lowercase hex digest + NUL into hex_out and releases h. */
int lg_sha256_final(lg_sha256 *h, char hex_out[65]);
void lg_sha256_release(lg_sha256 *h);

/* One-shot digests. */
int lg_sha256_buf(const void *data, size_t n, char hex_out[65]);
/* Streams the file; *size_out (may be NULL) receives its length.
 * Errors: LG_ENOTFOUND (absent), LG_EIO. */
int lg_sha256_file(const char *path, char hex_out[65], uint64_t *size_out);
/* Reads fd to its end in LG_SHA256_CHUNK pieces and hashes them; each piece
 * is also handed to fn (may be NULL; a negative return stops with that
 * code), which is how the store copies while it hashes. `path` names the
 * file in errors. The caller owns fd. */
typedef int (*lg_sha256_piece_fn)(void *ctx, const void *piece, size_t n);
int lg_sha256_fd(int fd, const char *path, lg_sha256_piece_fn fn, void *ctx, char hex_out[65], uint64_t *size_out);

/* 1 when s is exactly 64 lowercase hex digits, else 0. Paths built from
 * digests rely on this: only validated digests become file names. */
int lg_sha256_hex_valid(const char *s);
/* 1 when s is 1..64 lowercase hex digits (a digest prefix). */
int lg_sha256_prefix_valid(const char *s);

#endif
