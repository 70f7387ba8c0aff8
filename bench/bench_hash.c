/*
 * bench_hash.c - hashing throughput of the store's streamed SHA-256
 * (lg_sha256_file: 64 KiB reads + EVP) against `openssl dgst -sha256` on the
 * same file, in the same run. Usage: bench_hash [FILE] [MiB]; without FILE a
 * file of MiB (default 1024) pseudo-random MiB is written to /tmp and removed
 * afterwards. Each side runs 3 times after a warm-up (page cache hot); the
 * best time counts. Prints both throughputs and ours/openssl as a ratio of
 * throughputs (> 1 means faster than openssl). Exits 1 if digests differ.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "base/sha256.h"

static int make_file(const char *path, long mib)
{
    FILE *f = fopen(path, "wb");
    uint32_t *buf = malloc(1 << 20);
    long i;
    size_t j;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    if (!f || !buf)
        return -1;
    for (i = 0; i < mib; i++) {
        for (j = 0; j < (1u << 20) / 4; j++) { /* xorshift: content only needs to be non-trivial */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[j] = (uint32_t)x;
        }
        if (fwrite(buf, 1, 1 << 20, f) != 1u << 20)
            return -1;
    }
    free(buf);
    return fclose(f);
}

static double run_openssl(const char *path, char hex[65])
{
    char cmd[4200], line[512];
    double t0 = lg_now_seconds(), t;
    FILE *p;
    snprintf(cmd, sizeof cmd, "openssl dgst -sha256 -r '%s'", path);
    if (!(p = popen(cmd, "r")) || !fgets(line, sizeof line, p)) {
        if (p)
            pclose(p);
        return -1;
    }
    t = lg_now_seconds() - t0;
    pclose(p);
    t = lg_now_seconds() - t0;
    snprintf(hex, 65, "%.64s", line);
    return t;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : NULL;
    long mib = argc > 2 ? atol(argv[2]) : 1024;
    char tmp[] = "/tmp/lgbenchhashXXXXXX", ours[65], theirs[65];
    double best_ours = 1e30, best_ssl = 1e30, size_mib;
    uint64_t size = 0;
    int r, made = 0;

    if (!path) {
        int fd = mkstemp(tmp);
        if (fd < 0)
            return 3;
        close(fd);
        fprintf(stderr, "writing %ld MiB to %s\n", mib, tmp);
        if (make_file(tmp, mib) < 0) {
            fprintf(stderr, "bench_hash: cannot write %s\n", tmp);
            unlink(tmp);
            return 3;
        }
        path = tmp;
        made = 1;
    }
    if (run_openssl(path, theirs) < 0) { /* warm-up: page cache */
        fprintf(stderr, "bench_hash: openssl dgst failed\n");
        return 3;
    }
    for (r = 0; r < 3; r++) {
        double t0 = lg_now_seconds(), t;
        if (lg_sha256_file(path, ours, &size) < 0) {
            fprintf(stderr, "bench_hash: %s\n", lg_error_msg());
            return 3;
        }
        t = lg_now_seconds() - t0;
        if (t < best_ours)
            best_ours = t;
        t = run_openssl(path, theirs);
        if (t > 0 && t < best_ssl)
            best_ssl = t;
    }
    size_mib = (double)size / (1024.0 * 1024.0);
    printf("file      %s (%.0f MiB)\n", path, size_mib);
    printf("digest    %s (%s)\n", ours, strcmp(ours, theirs) == 0 ? "same as openssl" : "DIFFERS from openssl");
    printf("ledger    %.3f s  %.0f MiB/s  (lg_sha256_file, best of 3)\n", best_ours, size_mib / best_ours);
    printf("openssl   %.3f s  %.0f MiB/s  (openssl dgst -sha256, best of 3, includes process start)\n", best_ssl,
           size_mib / best_ssl);
    printf("ratio     %.3f  (ledger throughput / openssl throughput)\n", best_ssl / best_ours);
    if (made)
        unlink(tmp);
    return strcmp(ours, theirs) == 0 ? 0 : 1;
}
