/* test_store.c - store round trip, dedup, read-only objects, verify detects tampering,
 * a corrupt object repaired by storing its bytes again, FIFOs refused, invalid digests
 * rejected, temp-file gc, iteration. */
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/sha256.h"
#include "artifacts/store.h"
#include "tests/unit/check.h"

static char root[] = "/tmp/lgstoreXXXXXX";

static int count_cb(void *ctx, const char *hex, uint64_t size)
{
    (void)hex;
    (void)size;
    (*(int *)ctx)++;
    return 0;
}

static void test_roundtrip_dedup(void)
{
    lg_store *st = NULL;
    lg_buf src = LG_BUF_INIT, got = LG_BUF_INIT, path = LG_BUF_INIT;
    char hex[65], hex2[65], want[65];
    uint64_t size = 0;
    int added = -1, n = 0, i;
    struct stat sb;

    CHECK(mkdtemp(root) != NULL);
    CHECK(lg_store_open(root, 0, &st) == LG_ENOTFOUND);
    CHECK_OK(lg_store_open(root, 1, &st));
    /* 200 KiB of varied bytes: several chunks */
    for (i = 0; i < 200 * 1024; i++) {
        unsigned char c = (unsigned char)(i * 7 + i / 251);
        CHECK_OK(lg_buf_put(&src, &c, 1));
    }
    CHECK_OK(lg_path_join(&path, root, "src.bin"));
    CHECK_OK(lg_file_write_atomic(path.ptr, src.ptr, src.len));
    CHECK_OK(lg_sha256_buf(src.ptr, src.len, want));
    CHECK_OK(lg_store_put_file(st, path.ptr, hex, &size, &added));
    CHECK(strcmp(hex, want) == 0);
    CHECK(size == src.len && added == 1);
    CHECK(lg_store_exists(st, hex) == 1);
    CHECK_OK(lg_store_get(st, hex, 0, &got));
    CHECK(got.len == src.len && memcmp(got.ptr, src.ptr, src.len) == 0);
    CHECK_OK(lg_store_verify(st, hex));
    /* layout objects/ab/cdef..., read-only */
    CHECK_OK(lg_store_path(st, hex, &path));
    CHECK(strstr(path.ptr, "/objects/") && path.ptr[strlen(path.ptr) - 63] == '/');
    CHECK(stat(path.ptr, &sb) == 0 && (sb.st_mode & 0777) == 0444);
    /* dedup: same bytes again, from a buffer */
    CHECK_OK(lg_store_put_buf(st, src.ptr, src.len, hex2, &added));
    CHECK(strcmp(hex, hex2) == 0 && added == 0);
    CHECK_OK(lg_store_put_buf(st, "other", 5, hex2, &added));
    CHECK(added == 1);
    CHECK_OK(lg_store_foreach(st, count_cb, &n));
    CHECK(n == 2);
    lg_buf_release(&src);
    lg_buf_release(&got);
    lg_buf_release(&path);
    lg_store_free(st);
}

static void test_verify_detects_tamper(void)
{
    lg_store *st = NULL;
    lg_buf path = LG_BUF_INIT;
    char hex[65];
    FILE *f;
    CHECK_OK(lg_store_open(root, 1, &st));
    CHECK_OK(lg_store_put_buf(st, "precious bytes", 14, hex, NULL));
    CHECK_OK(lg_store_path(st, hex, &path));
    CHECK(chmod(path.ptr, 0644) == 0);
    f = fopen(path.ptr, "r+b");
    CHECK(f != NULL);
    if (f) {
        fputc('P' ^ 1, f);
        fclose(f);
    }
    CHECK(lg_store_verify(st, hex) == LG_ECHECK);
    CHECK(strstr(lg_error_msg(), hex) != NULL && strstr(lg_error_msg(), "modified") != NULL);
    CHECK_OK(lg_store_remove(st, hex));
    CHECK(lg_store_verify(st, hex) == LG_ENOTFOUND);
    CHECK(lg_store_exists(st, hex) == 0);
    lg_buf_release(&path);
    lg_store_free(st);
}

/* Storing bytes whose object exists but is corrupt repairs the object
 * (put_buf and put_file alike) instead of keeping the corrupt copy; the
 * repaired object is read-only again. A FIFO is refused without blocking. */
static void test_repair_corrupt(void)
{
    lg_store *st = NULL;
    lg_buf path = LG_BUF_INIT, src = LG_BUF_INIT;
    const char *body = "evidence that must survive";
    char hex[65], hex2[65];
    int added = -1, round;
    struct stat sb;
    FILE *f;
    CHECK_OK(lg_store_open(root, 1, &st));
    CHECK_OK(lg_store_put_buf(st, body, strlen(body), hex, NULL));
    CHECK_OK(lg_store_path(st, hex, &path));
    CHECK_OK(lg_path_join(&src, root, "src-repair.txt"));
    CHECK_OK(lg_file_write_atomic(src.ptr, body, strlen(body)));
    for (round = 0; round < 2; round++) {
        CHECK(chmod(path.ptr, 0644) == 0);
        f = fopen(path.ptr, "r+b");
        CHECK(f != NULL);
        if (f) {
            fputc('e' ^ 1, f); /* the first byte, one bit flipped */
            fclose(f);
        }
        CHECK(lg_store_verify(st, hex) == LG_ECHECK);
        if (round == 0)
            CHECK_OK(lg_store_put_buf(st, body, strlen(body), hex2, &added));
        else
            CHECK_OK(lg_store_put_file(st, src.ptr, hex2, NULL, &added));
        CHECK(strcmp(hex, hex2) == 0);
        CHECK_MSG(added == 1, "round %d: the corrupt object was kept", round);
        CHECK_OK(lg_store_verify(st, hex));
        CHECK(stat(path.ptr, &sb) == 0 && (sb.st_mode & 0777) == 0444);
        /* intact now: storing again is a plain dedup */
        CHECK_OK(lg_store_put_buf(st, body, strlen(body), hex2, &added));
        CHECK(added == 0);
    }
    /* a FIFO as the source: refused at once (open is non-blocking, fstat says not a file) */
    CHECK_OK(lg_path_join(&src, root, "fifo"));
    CHECK(mkfifo(src.ptr, 0600) == 0);
    CHECK(lg_store_put_file(st, src.ptr, hex2, NULL, NULL) == LG_EINPUT);
    CHECK(lg_path_check_regular(src.ptr) == LG_EINPUT && strstr(lg_error_msg(), "FIFO") != NULL);
    unlink(src.ptr);
    lg_buf_release(&path);
    lg_buf_release(&src);
    lg_store_free(st);
}

static void test_bad_input(void)
{
    lg_store *st = NULL;
    lg_buf path = LG_BUF_INIT;
    char hex[65];
    size_t n = 99;
    CHECK_OK(lg_store_open(root, 1, &st));
    CHECK(lg_store_path(st, "../../etc/passwd", &path) == LG_EINPUT);
    CHECK(lg_store_exists(st, "ABCDEF") < 0);
    CHECK(lg_store_put_file(st, "/nonexistent/file", hex, NULL, NULL) == LG_ENOTFOUND);
    CHECK(lg_store_put_file(st, "/tmp", hex, NULL, NULL) == LG_EINPUT);
    /* a leftover temp file is collected; none is left by the failures above */
    CHECK_OK(lg_store_gc_tmp(st, 1, 0, NULL, NULL, &n));
    CHECK(n == 0);
    CHECK_OK(lg_path_join(&path, root, "tmp/obj-1-leftover"));
    CHECK_OK(lg_file_write_atomic(path.ptr, "x", 1));
    CHECK_OK(lg_store_gc_tmp(st, 1, 0, NULL, NULL, &n));
    CHECK(n == 1 && lg_path_exists(path.ptr));
    CHECK_OK(lg_store_gc_tmp(st, 0, 3600, NULL, NULL, &n));
    CHECK(n == 0 && lg_path_exists(path.ptr));
    CHECK_OK(lg_store_gc_tmp(st, 0, 0, NULL, NULL, &n));
    CHECK(n == 1 && !lg_path_exists(path.ptr));
    lg_buf_release(&path);
    lg_store_free(st);
    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "chmod -R u+w %s && rm -rf %s", root, root);
        CHECK(system(cmd) == 0);
    }
}

CHECK_MAIN(T(test_roundtrip_dedup), T(test_verify_detects_tamper), T(test_repair_corrupt), T(test_bad_input))
