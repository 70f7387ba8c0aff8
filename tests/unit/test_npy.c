/* test_npy.c - .npy header parsing (v1/v2/v3, f4/f2/f8), the float32 writer,
 * and malformed headers -> LG_EINPUT naming the file. NumPy-written files are
 * checked in tests/py/test_tensor_formats.py. */
#include <unistd.h>

#include "base/base.h"
#include "artifacts/npy.h"
#include "tests/unit/check.h"

static char tmpdir[] = "/tmp/lgnpyXXXXXX";

/* magic + version + length + dict (not padded) + `ndata` bytes of data. */
static void make_npy(lg_buf *b, int major, const char *dict, const void *data, size_t ndata)
{
    unsigned char pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 0, 0, 0, 0, 0, 0};
    size_t n = strlen(dict);
    pre[6] = (unsigned char)major;
    pre[8] = (unsigned char)(n & 0xff);
    pre[9] = (unsigned char)(n >> 8);
    pre[10] = (unsigned char)(n >> 16);
    lg_buf_clear(b);
    lg_buf_put(b, pre, major == 1 ? 10 : 12);
    lg_buf_puts(b, dict);
    if (ndata)
        lg_buf_put(b, data, ndata);
}

static void test_encode_parse(void)
{
    float x[6] = {1, -2, 3.5f, 0, 1e-40f, 7};
    int64_t shape2[2] = {2, 3}, shape1[1] = {6};
    lg_buf b = LG_BUF_INIT;
    lg_npy_info info;

    CHECK_OK(lg_npy_encode_f32(&b, x, 2, shape2));
    CHECK(b.len == 128 + 24);
    CHECK(memcmp(b.ptr + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 59) == 0);
    CHECK(b.ptr[127] == '\n');
    CHECK_OK(lg_npy_parse_header(b.ptr, b.len, b.len, "m.npy", &info));
    CHECK(info.version == 1 && info.dtype == LG_DT_F32 && info.ndim == 2);
    CHECK(info.shape[0] == 2 && info.shape[1] == 3 && info.data_offset == 128 && info.data_bytes == 24);
    CHECK(memcmp(b.ptr + 128, x, 24) == 0);

    lg_buf_clear(&b);
    CHECK_OK(lg_npy_encode_f32(&b, x, 1, shape1));
    CHECK(strstr(b.ptr + 10, "'shape': (6,), }") != NULL);
    CHECK_OK(lg_npy_parse_header(b.ptr, b.len, b.len, "v.npy", &info));
    CHECK(info.ndim == 1 && info.shape[0] == 6 && info.shape[1] == 0);
    CHECK(lg_npy_encode_f32(&b, x, 3, shape2) == LG_EINPUT);
    {
        /* each dimension within LG_NPY_DIM_MAX, the product * 4 wraps size_t: refused,
         * not a header promising 2^80 floats followed by none */
        int64_t huge[2] = {LG_NPY_DIM_MAX, LG_NPY_DIM_MAX};
        size_t before = b.len;
        CHECK(lg_npy_header_f32(&b, 2, huge) == LG_EINPUT && b.len == before);
        CHECK(lg_npy_encode_f32(&b, x, 2, huge) == LG_EINPUT);
    }
    lg_buf_release(&b);
}

static void test_write_read(void)
{
    float x[12], *y = NULL;
    int64_t shape[2] = {4, 3};
    lg_npy_info info;
    char path[128];
    lg_buf a = LG_BUF_INIT, b = LG_BUF_INIT;
    int i;
    for (i = 0; i < 12; i++)
        x[i] = (float)i / 3.0f - 1.0f;
    snprintf(path, sizeof(path), "%s/x.npy", tmpdir);
    CHECK_OK(lg_npy_write_f32(path, x, 2, shape));
    CHECK_OK(lg_npy_read_f32(path, &y, &info));
    CHECK(y && memcmp(x, y, sizeof(x)) == 0);
    CHECK(info.shape[0] == 4 && info.shape[1] == 3);
    lg_free(y);
    /* same bytes as the memory form */
    CHECK_OK(lg_file_read(path, 0, &a));
    CHECK_OK(lg_npy_encode_f32(&b, x, 2, shape));
    CHECK(a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0);
    CHECK(lg_npy_write_f32("/nonexistent-dir/x.npy", x, 2, shape) == LG_EIO);
    CHECK(lg_npy_read_f32("/nonexistent-dir/x.npy", &y, NULL) == LG_ENOTFOUND);
    unlink(path);
    lg_buf_release(&a);
    lg_buf_release(&b);
}

/* Headers in the forms NumPy and others write: v2/v3, f2/f8, spacing,
 * double quotes, Python 2 longs, key order. */
static void test_variants(void)
{
    uint16_t h[2] = {0x3c00, 0xc200}; /* 1, -3 */
    double d[2] = {0.5, -1e300};
    float f[4], *y = NULL;
    lg_buf b = LG_BUF_INIT;
    lg_npy_info info;
    char path[128];

    make_npy(&b, 2, "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 2), }    \n", h, 4);
    CHECK_OK(lg_npy_parse_header(b.ptr, b.len, b.len, "v2.npy", &info));
    CHECK(info.version == 2 && info.dtype == LG_DT_F16 && info.data_offset == b.len - 4);
    make_npy(&b, 3, "{\"shape\":(2L,1L),\"fortran_order\":False,\"descr\":\"<f8\"}\n", d, 16);
    CHECK_OK(lg_npy_parse_header(b.ptr, b.len, b.len, "v3.npy", &info));
    CHECK(info.version == 3 && info.dtype == LG_DT_F64 && info.shape[0] == 2 && info.shape[1] == 1);
    snprintf(path, sizeof(path), "%s/v3.npy", tmpdir);
    CHECK_OK(lg_file_write_atomic(path, b.ptr, b.len));
    CHECK_OK(lg_npy_read_f32(path, &y, &info));
    CHECK(y && y[0] == 0.5f && isinf(y[1]) && y[1] < 0);
    lg_free(y);
    y = NULL;
    make_npy(&b, 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2,)}", h, 4);
    CHECK_OK(lg_file_write_atomic(path, b.ptr, b.len));
    CHECK_OK(lg_npy_read_f32(path, &y, &info));
    CHECK(y && y[0] == 1.0f && y[1] == -3.0f && info.ndim == 1);
    lg_free(y);
    /* zero rows is a valid array (the dataset layer refuses it) */
    make_npy(&b, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", f, 0);
    CHECK_OK(lg_npy_parse_header(b.ptr, b.len, b.len, "z.npy", &info));
    CHECK(info.data_bytes == 0);
    unlink(path);
    lg_buf_release(&b);
}

static void expect_bad(int major, const char *dict, size_t ndata, const char *want)
{
    static const char zeros[64];
    lg_buf b = LG_BUF_INIT;
    lg_npy_info info;
    int err;
    make_npy(&b, major, dict, zeros, ndata);
    err = lg_npy_parse_header(b.ptr, b.len, b.len, "bad.npy", &info);
    CHECK_MSG(err == LG_EINPUT, "%s: got %d", dict, err);
    CHECK_MSG(strstr(lg_error_msg(), "bad.npy") != NULL && strstr(lg_error_msg(), want) != NULL,
              "%s: message '%s' lacks '%s'", dict, lg_error_msg(), want);
    lg_buf_release(&b);
}

static void test_malformed(void)
{
    lg_buf b = LG_BUF_INIT;
    lg_npy_info info;
    char *big;
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
    make_npy(&b, 1, good, "0123456789abcdef", 16);
    CHECK_OK(lg_npy_parse_header(b.ptr, b.len, b.len, "good.npy", &info));

    expect_bad(1, good, 15, "truncated");
    expect_bad(1, good, 17, "unexpected bytes after the array");
    expect_bad(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", 16, "'>f4' not supported");
    expect_bad(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 2), }", 32, "'<i8' not supported");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16, "fortran_order True");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2, 1), }", 16, "more than 2");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "0-d");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 2), }", 16, "non-negative");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999, 2), }", 16, "too large");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False}", 0, "lacks 'shape'");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", 16, "unknown or repeated");
    expect_bad(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)}", 16, "repeated");
    expect_bad(1, "['descr']", 0, "not a dict");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)} junk", 16, "after the dict");
    expect_bad(4, good, 16, "unsupported .npy version");

    /* bad magic */
    make_npy(&b, 1, good, "0123456789abcdef", 16);
    b.ptr[1] = 'X';
    CHECK(lg_npy_parse_header(b.ptr, b.len, b.len, "magic.npy", &info) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "magic.npy: not a .npy file") != NULL);
    /* header longer than the file */
    make_npy(&b, 1, good, NULL, 0);
    CHECK(lg_npy_parse_header(b.ptr, b.len - 5, b.len - 5, "cut.npy", &info) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "truncated .npy header") != NULL);
    /* header over the 64 KiB limit (v2 allows 4 GiB) */
    big = lg_malloc(70000);
    if (big) {
        memset(big, ' ', 69999);
        big[69999] = '\0';
        memcpy(big, good, strlen(good));
        make_npy(&b, 2, big, "0123456789abcdef", 16);
        CHECK(lg_npy_parse_header(b.ptr, b.len, b.len, "huge.npy", &info) == LG_EINPUT);
        CHECK(strstr(lg_error_msg(), "huge.npy") && strstr(lg_error_msg(), "exceeds the limit"));
    }
    lg_free(big);
    lg_buf_release(&b);
}

/* Every truncation and many random byte mutations of a valid file: the
 * parser returns 0 or LG_EINPUT, never crashes, and an accepted header
 * always describes data that fits the file. */
static void test_mutations(void)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    lg_buf b = LG_BUF_INIT;
    lg_npy_info info;
    unsigned char *copy;
    size_t len;
    long i, bad = 0;
    uint32_t state = 12345;
    CHECK_OK(lg_npy_encode_f32(&b, x, 2, shape));
    copy = lg_malloc(b.len);
    if (!copy)
        return;
    for (len = 0; len < b.len; len++)
        if (lg_npy_parse_header(b.ptr, len, len, "cut", &info) != LG_EINPUT)
            bad++;
    for (i = 0; i < 20000; i++) {
        int err;
        memcpy(copy, b.ptr, b.len);
        state = state * 1103515245u + 12345u;
        copy[(state >> 8) % 128] = (unsigned char)(state >> 20); /* mutate the header */
        err = lg_npy_parse_header(copy, b.len, b.len, "mut", &info);
        if (err == 0 && info.data_offset + info.data_bytes != b.len)
            bad++;
        else if (err != 0 && err != LG_EINPUT)
            bad++;
    }
    CHECK_MSG(bad == 0, "%ld truncations/mutations gave a wrong result", bad);
    lg_free(copy);
    lg_buf_release(&b);
}

static void setup(void) { CHECK(mkdtemp(tmpdir) != NULL); }
static void teardown(void) { CHECK(rmdir(tmpdir) == 0); }

CHECK_MAIN(T(setup), T(test_encode_parse), T(test_write_read), T(test_variants), T(test_malformed), T(test_mutations), T(teardown))
