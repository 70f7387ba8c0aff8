/* test_data_bigfile.c - activation files of at least 1 GiB (engine/data.c drops the mapped
 * pages it has read, in 2 MiB windows): on a sparse 1 GiB .npy (zeros, with a few rows set)
 * the finite check, the digest, row gathers and the mean read the right values after the
 * drops, and the process keeps far less than the file resident (RssFile). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#include "base/base.h"
#include "artifacts/npy.h"
#include "base/sha256.h"
#include "engine/data.h"
#include "tests/unit/check.h"

#define N 65600 /* rows of d=4096 float32: 1.0 GiB + */
#define D 4096

static long rss_file_kib(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "RssFile:", 8))
            v = strtol(line + 8, NULL, 10);
    fclose(f);
    return v;
}

static float val(int64_t r, int j) { return (float)(r % 97) + 0.001f * (float)j; }

static void test_bigfile(void)
{
    static const int64_t set[] = {0, 5, 4095, 32768, 60001, N - 1};
    char path[] = "/tmp/ledger-bigfile-XXXXXX", hex[65], want[65];
    int64_t shape[2] = {N, D}, *rows = NULL, pick[4] = {60001, 5, 1, N - 1}, i;
    lg_buf hdr = LG_BUF_INIT;
    lg_dataset *ds = NULL;
    float *row = malloc(D * sizeof(float)), *got = malloc(4 * D * sizeof(float));
    double *mean = malloc(D * sizeof(double));
    int fd = mkstemp(path), j, ok;
    size_t k;
    long rss;
    CHECK(fd >= 0 && row && got && mean);
    if (fd < 0 || !row || !got || !mean)
        goto out;
    CHECK_OK(lg_npy_header_f32(&hdr, 2, shape));
    CHECK(write(fd, hdr.ptr, hdr.len) == (ssize_t)hdr.len);
    CHECK(ftruncate(fd, (off_t)hdr.len + (off_t)N * D * 4) == 0); /* sparse: zeros */
    for (k = 0; k < sizeof set / sizeof set[0]; k++) {
        for (j = 0; j < D; j++)
            row[j] = val(set[k], j);
        CHECK(pwrite(fd, row, D * 4, (off_t)hdr.len + (off_t)set[k] * D * 4) == D * 4);
    }
    close(fd);
    CHECK_OK(lg_dataset_open_file(path, NULL, &ds)); /* scans every value */
    if (!ds)
        goto out;
    CHECK(lg_dataset_rows(ds) == N && lg_dataset_dim(ds) == D);
    CHECK_OK(lg_dataset_digest(ds, hex));
    CHECK_OK(lg_sha256_file(path, want, NULL));
    CHECK(!strcmp(hex, want));
    CHECK_OK(lg_dataset_gather(ds, pick, 4, got));
    ok = 1;
    for (j = 0; j < D; j++)
        ok &= got[j] == val(60001, j) && got[D + j] == val(5, j) && got[2 * D + j] == 0 &&
              got[3 * D + j] == val(N - 1, j);
    CHECK_MSG(ok, "gathered rows differ after the drops");
    CHECK((rows = malloc(N * sizeof(int64_t))) != NULL);
    for (i = 0; rows && i < N; i++)
        rows[i] = i;
    if (rows) {
        CHECK_OK(lg_dataset_mean(ds, rows, N, mean));
        ok = 1;
        for (j = 0; j < D; j++) {
            double s = 0;
            for (k = 0; k < sizeof set / sizeof set[0]; k++)
                s += val(set[k], j);
            ok &= fabs(mean[j] - s / N) <= 1e-9 * (1 + fabs(s / N));
        }
        CHECK_MSG(ok, "mean differs");
    }
    rss = rss_file_kib();
    printf("RssFile after a 1 GiB file's check, digest, gathers and mean: %ld KiB\n", rss);
    CHECK_MSG(rss >= 0 && rss < 256 * 1024, "RssFile %ld KiB: the file's pages stayed mapped", rss);
out:
    lg_dataset_free(ds);
    lg_buf_release(&hdr);
    if (fd >= 0)
        unlink(path);
    free(rows);
    free(row);
    free(got);
    free(mean);
}

CHECK_MAIN(T(test_bigfile))
