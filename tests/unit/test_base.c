/* test_base.c - errors, allocation fault injection, buffers, atomic writes. */
#include <unistd.h>

#include "base/base.h"
#include "tests/unit/check.h"

static void test_errors(void)
{
    CHECK(lg_error_set(LG_EINPUT, "spec.json: k: %d", 3) == LG_EINPUT);
    CHECK(strcmp(lg_error_msg(), "spec.json: k: 3") == 0);
    CHECK(lg_error_wrap("reading %s", "x") == LG_EINPUT);
    CHECK(strcmp(lg_error_msg(), "reading x: spec.json: k: 3") == 0);
    CHECK(lg_exit_code(LG_ECHECK) == 1 && lg_exit_code(LG_EINPUT) == 2 && lg_exit_code(LG_EIO) == 3);
    CHECK(lg_exit_code(0) == 0 && lg_exit_code(LG_ENOMEM) == 3 && lg_exit_code(LG_ENOTFOUND) == 2);
}

static void test_alloc_fault(void)
{
    void *p;
    lg_alloc_fail_after(1);
    p = lg_malloc(8);
    CHECK(p != NULL);
    lg_free(p);
    CHECK(lg_malloc(8) == NULL);
    CHECK(lg_error_code() == LG_ENOMEM);
    p = lg_malloc(8); /* disabled again */
    CHECK(p != NULL);
    lg_free(p);
}

static void test_buf(void)
{
    lg_buf b = LG_BUF_INIT;
    int i;
    for (i = 0; i < 1000; i++)
        CHECK_OK(lg_buf_printf(&b, "%d,", i));
    CHECK(b.len == strlen(b.ptr));
    CHECK(strncmp(b.ptr, "0,1,2,", 6) == 0);
    lg_buf_release(&b);
    lg_buf_init(&b, 10);
    CHECK_OK(lg_buf_puts(&b, "0123456789"));
    CHECK(lg_buf_puts(&b, "x") == LG_EINPUT);
    CHECK(b.len == 10);
    lg_buf_release(&b);
}

static void test_atomic_write(void)
{
    char dir[] = "/tmp/lgbaseXXXXXX";
    lg_buf path = LG_BUF_INIT, got = LG_BUF_INIT;
    CHECK(mkdtemp(dir) != NULL);
    CHECK_OK(lg_path_join(&path, dir, "a/b/c"));
    CHECK_OK(lg_mkdir_p(path.ptr, 0755));
    CHECK(lg_is_dir(path.ptr));
    CHECK_OK(lg_buf_puts(&path, "/file"));
    CHECK_OK(lg_file_write_atomic(path.ptr, "hello", 5));
    CHECK_OK(lg_file_read(path.ptr, 0, &got));
    CHECK(got.len == 5 && memcmp(got.ptr, "hello", 5) == 0);
    lg_buf_clear(&got);
    CHECK(lg_file_read(path.ptr, 3, &got) == LG_EINPUT);
    CHECK(lg_file_write_atomic("/nonexistent-dir/x", "a", 1) == LG_EIO);
    CHECK(lg_mkdir_p("", 0755) == LG_EINPUT); /* used to read past the copy of "" */
    CHECK(lg_file_read("/nonexistent-dir/x", 0, &got) == LG_ENOTFOUND);
    lg_buf_release(&path);
    lg_buf_release(&got);
    {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        CHECK(system(cmd) == 0);
    }
}

CHECK_MAIN(T(test_errors), T(test_alloc_fault), T(test_buf), T(test_atomic_write))
