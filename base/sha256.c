/*
 * sha256.c - SHA-256 via OpenSSL EVP (see sha256.h).
 *
 * EVP picks the CPU's SHA extensions (SHA-NI / ARMv8) when present, which is
 * why we do not carry our own implementation: bench/bench_hash.c compares the
 * streaming path with `openssl dgst -sha256` on the same file.
 */
#include "base/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"

int lg_sha256_init(lg_sha256 *h)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    h->ctx = NULL;
    if (!ctx)
        return lg_error_set(LG_ENOMEM, "sha256: cannot allocate a digest context");
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return lg_error_set(LG_EINTERNAL, "sha256: EVP_DigestInit_ex failed");
    }
    h->ctx = ctx;
    return 0;
}

int lg_sha256_update(lg_sha256 *h, const void *data, size_t n)
{
    if (!h->ctx)
        return lg_error_set(LG_EINTERNAL, "sha256: update on an uninitialised hasher");
    if (n && EVP_DigestUpdate((EVP_MD_CTX *)h->ctx, data, n) != 1)
        return lg_error_set(LG_EINTERNAL, "sha256: EVP_DigestUpdate failed");
    return 0;
}

int lg_sha256_final(lg_sha256 *h, char hex_out[65])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;
    int err = 0;
    if (!h->ctx)
        return lg_error_set(LG_EINTERNAL, "sha256: final on an uninitialised hasher");
    if (EVP_DigestFinal_ex((EVP_MD_CTX *)h->ctx, md, &len) != 1 || len != 32) {
        err = lg_error_set(LG_EINTERNAL, "sha256: EVP_DigestFinal_ex failed");
    } else {
        for (i = 0; i < 32; i++) {
            hex_out[2 * i] = digits[md[i] >> 4];
            hex_out[2 * i + 1] = digits[md[i] & 15];
        }
        hex_out[64] = '\0';
    }
    lg_sha256_release(h);
    return err;
}

void lg_sha256_release(lg_sha256 *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free((EVP_MD_CTX *)h->ctx);
    h->ctx = NULL;
}

int lg_sha256_buf(const void *data, size_t n, char hex_out[65])
{
    lg_sha256 h = {0};
    int err;
    if ((err = lg_sha256_init(&h)) < 0 || (err = lg_sha256_update(&h, data, n)) < 0) {
        lg_sha256_release(&h);
        return err;
    }
    return lg_sha256_final(&h, hex_out);
}

int lg_sha256_fd(int fd, const char *path, lg_sha256_piece_fn fn, void *ctx, char hex_out[65], uint64_t *size_out)
{
    lg_sha256 h = {0};
    unsigned char *chunk = NULL;
    uint64_t total = 0;
    int err;

    if (!(chunk = lg_malloc(LG_SHA256_CHUNK))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = lg_sha256_init(&h)) < 0)
        goto out;
    for (;;) {
        ssize_t n = read(fd, chunk, LG_SHA256_CHUNK);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = lg_error_set(LG_EIO, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if ((err = lg_sha256_update(&h, chunk, (size_t)n)) < 0 || (fn && (err = fn(ctx, chunk, (size_t)n)) < 0))
            goto out;
        total += (uint64_t)n;
    }
    if ((err = lg_sha256_final(&h, hex_out)) < 0)
        goto out;
    if (size_out)
        *size_out = total;
out:
    lg_sha256_release(&h);
    lg_free(chunk);
    return err;
}

int lg_sha256_file(const char *path, char hex_out[65], uint64_t *size_out)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer. A digest names a
     * file's contents: a FIFO or a device (/dev/zero, named by a forged
     * manifest's study or data path) would block or never end (t7904). */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), err;
    struct stat st;
    if (fd < 0)
        return lg_error_set(errno == ENOENT ? LG_ENOTFOUND : LG_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lg_error_set(LG_EINPUT, "%s: not a regular file (a FIFO, device or folder has no digest)", path);
    }
    err = lg_sha256_fd(fd, path, NULL, NULL, hex_out, size_out);
    close(fd);
    return err;
}

static int is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

int lg_sha256_hex_valid(const char *s)
{
    int i;
    if (!s)
        return 0;
    for (i = 0; i < 64; i++)
        if (!is_lower_hex(s[i]))
            return 0;
    return s[64] == '\0';
}

int lg_sha256_prefix_valid(const char *s)
{
    int i;
    if (!s || !*s)
        return 0;
    for (i = 0; s[i]; i++)
        if (i >= 64 || !is_lower_hex(s[i]))
            return 0;
    return 1;
}
