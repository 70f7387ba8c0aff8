/* test_safetensors.c - half conversions (exhaustive), safetensors round trips,
 * the writer's byte layout, and malformed files -> LG_EINPUT naming the file. */
#include <unistd.h>

#include "base/base.h"
#include "artifacts/safetensors.h"
#include "base/rng.h"
#include "tests/unit/check.h"

static uint32_t f32_bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

static float f32_from(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* Reference: the IEEE binary16 value formula, in double. */
static double ref_f16(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 31)
        return m ? NAN : (s ? -INFINITY : INFINITY);
    v = e == 0 ? ldexp((double)m, -24) : ldexp(1.0 + m / 1024.0, e - 15);
    return s ? -v : v;
}

static double ref_bf16(uint16_t h)
{
    int s = h >> 15, e = (h >> 7) & 255, m = h & 127;
    double v;
    if (e == 255)
        return m ? NAN : (s ? -INFINITY : INFINITY);
    v = e == 0 ? ldexp((double)m, -133) : ldexp(1.0 + m / 128.0, e - 127);
    return s ? -v : v;
}

static void test_f16_exhaustive(void)
{
    long bad = 0, badsign = 0;
    uint32_t h;
    for (h = 0; h < 65536; h++) {
        float got = lg_f16_to_f32((uint16_t)h);
        double ref = ref_f16((uint16_t)h);
        if (isnan(ref) ? !isnan(got) : (double)got != ref)
            bad++;
        if ((f32_bits(got) >> 31) != (h >> 15))
            badsign++;
#ifdef __FLT16_MANT_DIG__
        {
            _Float16 hf;
            uint16_t hb = (uint16_t)h;
            memcpy(&hf, &hb, 2);
            if (!isnan(ref) && (float)hf != got)
                bad++;
        }
#endif
    }
    CHECK_MSG(bad == 0, "%ld f16 patterns differ from the reference", bad);
    CHECK(badsign == 0);
    /* spot values */
    CHECK(lg_f16_to_f32(0x3c00) == 1.0f);
    CHECK(lg_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
    CHECK(lg_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(f32_bits(lg_f16_to_f32(0x8000)) == 0x80000000u); /* -0 */
    CHECK(isinf(lg_f16_to_f32(0xfc00)) && lg_f16_to_f32(0xfc00) < 0);
    CHECK(f32_bits(lg_f16_to_f32(0x7e01)) == 0x7fc02000u); /* payload kept */
}

static void test_bf16_exhaustive(void)
{
    long bad = 0, badrt = 0;
    uint32_t h;
    for (h = 0; h < 65536; h++) {
        float got = lg_bf16_to_f32((uint16_t)h);
        double ref = ref_bf16((uint16_t)h);
        if (isnan(ref) ? !isnan(got) : (double)got != ref)
            bad++;
        /* f32 -> bf16 of an exact bf16 value is the identity (NaN stays NaN) */
        if (isnan(ref) ? !isnan(lg_bf16_to_f32(lg_f32_to_bf16(got))) : lg_f32_to_bf16(got) != h)
            badrt++;
    }
    CHECK_MSG(bad == 0, "%ld bf16 patterns differ from the reference", bad);
    CHECK_MSG(badrt == 0, "%ld bf16 patterns do not round-trip", badrt);
}

/* Reference rounding: nearest of the two neighbouring bf16 values, by
 * distance in double; ties to the even mantissa; beyond the largest finite
 * bf16 the next value is 2^128 (i.e. infinity). */
static uint16_t ref_to_bf16(float f)
{
    uint32_t b = f32_bits(f), sign = b & 0x80000000u, a = b & 0x7fffffffu;
    uint32_t lo = a & 0xffff0000u, hi = lo + 0x10000u;
    double x = fabs((double)f), vlo = (double)f32_from(lo);
    double vhi = hi >= 0x7f800000u ? ldexp(1.0, 128) : (double)f32_from(hi);
    uint32_t pick;
    if (a >= 0x7f800000u)
        return (uint16_t)(b >> 16); /* inf (NaN is tested separately) */
    if (x - vlo < vhi - x)
        pick = lo;
    else if (x - vlo > vhi - x)
        pick = hi;
    else
        pick = ((lo >> 16) & 1) ? hi : lo;
    return (uint16_t)((sign | pick) >> 16);
}

static void test_bf16_rounding(void)
{
    lg_rng r;
    long i, bad = 0;
    lg_rng_init(&r, 7, 100);
    for (i = 0; i < 2000000; i++) {
        uint32_t b = lg_rng_u32(&r);
        float f = f32_from(b);
        if (isnan(f))
            continue;
        if (lg_f32_to_bf16(f) != ref_to_bf16(f))
            bad++;
    }
    CHECK_MSG(bad == 0, "%ld random floats round differently from the reference", bad);
    /* ties: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> even (1.0) */
    CHECK(lg_f32_to_bf16(1.0f + ldexpf(1.0f, -8)) == 0x3f80);
    /* 1 + 3*2^-8 is halfway between 1+2^-7 (odd) and 1+2^-6 (even) -> up */
    CHECK(lg_f32_to_bf16(1.0f + 3 * ldexpf(1.0f, -8)) == 0x3f82);
    CHECK(lg_f32_to_bf16(3.4028235e38f) == 0x7f80); /* FLT_MAX rounds to inf */
    CHECK(lg_f32_to_bf16(-0.0f) == 0x8000);
    CHECK(isnan(lg_bf16_to_f32(lg_f32_to_bf16(NAN))));
    CHECK(isnan(lg_bf16_to_f32(lg_f32_to_bf16(f32_from(0x7f800001u))))); /* sNaN with low payload stays NaN */
}

static void test_convert(void)
{
    unsigned char raw[16];
    float out[4];
    double d[2] = {1.5, 1e300};
    uint16_t h[2] = {0x3c00, 0xc000};
    memcpy(raw + 1, h, 4); /* unaligned source */
    CHECK_OK(lg_convert_to_f32(LG_DT_F16, raw + 1, 2, out));
    CHECK(out[0] == 1.0f && out[1] == -2.0f);
    memcpy(raw, d, 16);
    CHECK_OK(lg_convert_to_f32(LG_DT_F64, raw, 2, out));
    CHECK(out[0] == 1.5f && isinf(out[1]));
    CHECK(lg_convert_to_f32(LG_DT_I32, raw, 1, out) == LG_EINPUT);
    CHECK(lg_dtype_size(LG_DT_BF16) == 2 && lg_dtype_size(LG_DT_I64) == 8);
}

/* ---- round trips ------------------------------------------------------------- */

static void test_round_trip(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {-1.5f, 0.25f, 1e-30f}, s = 42.0f;
    lg_tensor_f32 t[3] = {
        {"zeta", 2, {2, 3}, a},
        {"alpha", 1, {3}, b},
        {"scalar", 0, {0}, &s},
    };
    const char *meta[] = {"version", "1", "arch", "topk \"k\"=4\n"};
    lg_buf enc = LG_BUF_INIT, file = LG_BUF_INIT;
    lg_st_file *f = NULL;
    lg_tensor_view v;
    const char *val;
    uint64_t hlen;
    char dir[] = "/tmp/lgstXXXXXX", path[64];

    CHECK_OK(lg_st_encode(&enc, t, 3, meta, 2));
    memcpy(&hlen, enc.ptr, 8);
    CHECK(hlen % 8 == 0);
    CHECK(enc.len == 8 + hlen + 6 * 4 + 3 * 4 + 4);
    CHECK(enc.ptr[8 + hlen - 1] == ' ' || enc.ptr[8 + hlen - 1] == '}');
    /* metadata first, then tensors sorted by name with contiguous offsets */
    CHECK(strstr(enc.ptr + 8, "{\"__metadata__\":{\"arch\":\"topk \\\"k\\\"=4\\n\",\"version\":\"1\"},"
                              "\"alpha\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                              "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[12,16]},"
                              "\"zeta\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[16,40]}}") == enc.ptr + 8);
    CHECK(memcmp(enc.ptr + 8 + hlen, b, 12) == 0);

    CHECK_OK(lg_st_open_memory(enc.ptr, enc.len, "mem", &f));
    if (f) {
        CHECK(lg_st_count(f) == 3);
        CHECK_OK(lg_st_get(f, "zeta", &v));
        CHECK(v.dtype == LG_DT_F32 && v.ndim == 2 && v.shape[0] == 2 && v.shape[1] == 3 && v.nbytes == 24);
        CHECK(memcmp(v.data, a, 24) == 0);
        CHECK_OK(lg_st_get(f, "scalar", &v));
        CHECK(v.ndim == 0 && v.nbytes == 4 && memcmp(v.data, &s, 4) == 0);
        CHECK_OK(lg_st_at(f, 0, &v));
        CHECK(strcmp(v.name, "alpha") == 0);
        CHECK(lg_st_get(f, "nope", &v) == LG_ENOTFOUND);
        CHECK(strstr(lg_error_msg(), "mem") != NULL);
        CHECK_OK(lg_st_meta(f, "arch", &val));
        CHECK(strcmp(val, "topk \"k\"=4\n") == 0);
        CHECK(lg_st_meta(f, "missing", &val) == LG_ENOTFOUND);
        CHECK(lg_st_meta_count(f) == 2);
    }
    lg_st_close(f);
    f = NULL;

    /* the file form writes the same bytes, atomically */
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof(path), "%s/w.safetensors", dir);
    CHECK_OK(lg_st_write(path, t, 3, meta, 2));
    CHECK_OK(lg_file_read(path, 0, &file));
    CHECK(file.len == enc.len && memcmp(file.ptr, enc.ptr, enc.len) == 0);
    CHECK_OK(lg_st_open(path, &f));
    if (f) {
        CHECK_OK(lg_st_get(f, "alpha", &v));
        CHECK(memcmp(v.data, b, 12) == 0);
        CHECK(strcmp(lg_st_path(f), path) == 0);
    }
    lg_st_close(f);
    unlink(path);
    rmdir(dir);
    lg_buf_release(&file);

    /* no metadata, no tensors: still a valid file ("{}" padded) */
    lg_buf_clear(&enc);
    CHECK_OK(lg_st_encode(&enc, NULL, 0, NULL, 0));
    CHECK(enc.len == 16 && memcmp(enc.ptr + 8, "{}      ", 8) == 0);
    CHECK_OK(lg_st_open_memory(enc.ptr, enc.len, "empty", &f));
    lg_st_close(f);
    lg_buf_release(&enc);
}

static void test_views(void)
{
    uint16_t h[4] = {0x3f80, 0x4000, 0x3f80, 0xc040};
    int64_t ids[3] = {-1, 0, 1LL << 40};
    lg_tensor_view v[2], got;
    lg_buf enc = LG_BUF_INIT;
    lg_st_file *f = NULL;
    float x[4];
    memset(v, 0, sizeof(v));
    v[0].name = "h";
    v[0].dtype = LG_DT_BF16;
    v[0].ndim = 2;
    v[0].shape[0] = 2;
    v[0].shape[1] = 2;
    v[0].data = h;
    v[0].nbytes = 8;
    v[1].name = "ids";
    v[1].dtype = LG_DT_I64;
    v[1].ndim = 1;
    v[1].shape[0] = 3;
    v[1].data = ids;
    v[1].nbytes = 24;
    CHECK_OK(lg_st_encode_views(&enc, v, 2, NULL, 0));
    CHECK_OK(lg_st_open_memory(enc.ptr, enc.len, "views", &f));
    if (f) {
        CHECK_OK(lg_st_get(f, "h", &got));
        CHECK(got.dtype == LG_DT_BF16 && got.nbytes == 8);
        CHECK_OK(lg_convert_to_f32(got.dtype, got.data, 4, x));
        CHECK(x[0] == 1.0f && x[1] == 2.0f && x[2] == 1.0f && x[3] == -3.0f);
        CHECK_OK(lg_st_get(f, "ids", &got));
        CHECK(got.dtype == LG_DT_I64 && memcmp(got.data, ids, 24) == 0);
    }
    lg_st_close(f);
    /* nbytes that disagree with the shape are refused */
    lg_buf_clear(&enc);
    v[1].nbytes = 16;
    CHECK(lg_st_encode_views(&enc, v, 2, NULL, 0) == LG_EINPUT);
    lg_buf_release(&enc);
}

static void test_write_errors(void)
{
    float a[2] = {1, 2};
    lg_tensor_f32 dup[2] = {{"w", 1, {2}, a}, {"w", 1, {2}, a}};
    lg_tensor_f32 bad[1] = {{"__metadata__", 1, {2}, a}};
    lg_tensor_f32 big[1] = {{"w", 5, {1, 1, 1, 1}, a}};
    const char *meta[] = {"k", "1", "k", "2"};
    lg_buf enc = LG_BUF_INIT;
    CHECK(lg_st_encode(&enc, dup, 2, NULL, 0) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "duplicate") != NULL);
    CHECK(lg_st_encode(&enc, bad, 1, NULL, 0) == LG_EINPUT);
    CHECK(lg_st_encode(&enc, big, 1, NULL, 0) == LG_EINPUT);
    {
        /* 4 x 2^32 x 2^32 bytes wraps to 0 == nbytes: used to be written (a file our
         * own reader rejects); now refused */
        lg_tensor_view wrap;
        memset(&wrap, 0, sizeof wrap);
        wrap.name = "w";
        wrap.dtype = LG_DT_F32;
        wrap.ndim = 2;
        wrap.shape[0] = wrap.shape[1] = (int64_t)1 << 32;
        lg_buf_clear(&enc);
        CHECK(lg_st_encode_views(&enc, &wrap, 1, NULL, 0) == LG_EINPUT && enc.len == 0);
        CHECK(strstr(lg_error_msg(), "too large") != NULL);
    }
    CHECK(lg_st_encode(&enc, dup, 1, meta, 2) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "metadata") != NULL);
    CHECK(lg_st_write("/nonexistent-dir/x.safetensors", dup, 1, NULL, 0) == LG_EIO);
    CHECK(strstr(lg_error_msg(), "/nonexistent-dir/x.safetensors") != NULL);
    lg_buf_release(&enc);
}

/* ---- malformed files ------------------------------------------------------------ */

/* 8-byte length + header + `ndata` data bytes (zeros). */
static void make_file(lg_buf *b, const char *header, size_t ndata)
{
    uint64_t n = strlen(header);
    size_t i;
    lg_buf_clear(b);
    lg_buf_put(b, &n, 8);
    lg_buf_puts(b, header);
    for (i = 0; i < ndata; i++)
        lg_buf_put(b, "\0", 1);
}

static void expect_bad(const char *header, size_t ndata, const char *want)
{
    lg_buf b = LG_BUF_INIT;
    lg_st_file *f = NULL;
    int err;
    make_file(&b, header, ndata);
    err = lg_st_open_memory(b.ptr, b.len, "bad.safetensors", &f);
    CHECK_MSG(err == LG_EINPUT, "%s: got %d", header, err);
    CHECK_MSG(strstr(lg_error_msg(), "bad.safetensors") != NULL && strstr(lg_error_msg(), want) != NULL,
              "%s: message '%s' lacks '%s'", header, lg_error_msg(), want);
    CHECK(f == NULL);
    lg_st_close(f);
    lg_buf_release(&b);
}

static void test_malformed(void)
{
    lg_buf b = LG_BUF_INIT;
    lg_st_file *f = NULL;
    uint64_t huge = (uint64_t)200 << 20;
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    /* the good case passes, so the failures below are about the defect */
    make_file(&b, ok, 8);
    CHECK_OK(lg_st_open_memory(b.ptr, b.len, "good", &f));
    lg_st_close(f);
    f = NULL;

    expect_bad(ok, 7, "past the end");        /* truncated data */
    expect_bad(ok, 9, "after the last tensor");
    expect_bad("{\"a\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unsupported dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "hole");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, "at most 4");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, "unexpected");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing data_offsets");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", 8, "duplicate");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "not a string");
    expect_bad("{\"a\":[1]}", 0, "not an object");
    expect_bad("{\"a\":{\"dtype\":\"F32\"", 0, "invalid JSON");
    expect_bad("[1, 2]", 0, "not a JSON object");
    expect_bad("{} x", 0, "unexpected bytes");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8, "shape[0]");

    /* header length beyond the file, beyond the limit; too short */
    make_file(&b, ok, 8);
    memcpy(b.ptr, &huge, 8);
    CHECK(lg_st_open_memory(b.ptr, b.len, "big.st", &f) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "big.st") && strstr(lg_error_msg(), "exceeds the limit"));
    huge = b.len;
    memcpy(b.ptr, &huge, 8);
    CHECK(lg_st_open_memory(b.ptr, b.len, "trunc.st", &f) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "trunc.st") && strstr(lg_error_msg(), "truncated"));
    CHECK(lg_st_open_memory(b.ptr, 5, "short.st", &f) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "too short") != NULL);
    CHECK(f == NULL);
    CHECK(lg_st_open("/nonexistent/x.safetensors", &f) == LG_ENOTFOUND);
    lg_buf_release(&b);
}

/* Every allocation failure is reported as LG_ENOMEM, without a crash or leak. */
static void test_alloc_faults(void)
{
    float a[4] = {1, 2, 3, 4};
    lg_tensor_f32 t[2] = {{"b", 1, {4}, a}, {"a", 2, {2, 2}, a}};
    const char *meta[] = {"k", "v"};
    lg_buf enc = LG_BUF_INIT;
    lg_st_file *f = NULL;
    long k;
    int err, failures_seen = 0;
    CHECK_OK(lg_st_encode(&enc, t, 2, meta, 1));
    for (k = 0; k < 100; k++) {
        lg_alloc_fail_after(k);
        err = lg_st_open_memory(enc.ptr, enc.len, "m", &f);
        lg_alloc_fail_after(-1);
        lg_st_close(f);
        f = NULL;
        if (err == 0)
            break;
        failures_seen++;
        CHECK(err == LG_ENOMEM);
    }
    CHECK(k < 100 && failures_seen > 0);
    for (k = 0; k < 100; k++) {
        lg_buf out = LG_BUF_INIT;
        lg_alloc_fail_after(k);
        err = lg_st_encode(&out, t, 2, meta, 1);
        lg_alloc_fail_after(-1);
        if (err == 0)
            CHECK(out.len == enc.len && memcmp(out.ptr, enc.ptr, enc.len) == 0);
        lg_buf_release(&out);
        if (err == 0)
            break;
        CHECK(err == LG_ENOMEM);
    }
    CHECK(k < 100);
    lg_buf_release(&enc);
}

/* Every truncation and many random byte mutations of a valid file: the
 * reader returns 0 or LG_EINPUT, never crashes (run under ASan in CI). */
static void test_mutations(void)
{
    float a[6] = {1, 2, 3, 4, 5, 6};
    lg_tensor_f32 t[2] = {{"b", 1, {2}, a}, {"a", 2, {2, 2}, a + 2}};
    const char *meta[] = {"k", "v"};
    lg_buf enc = LG_BUF_INIT;
    lg_st_file *f = NULL;
    unsigned char *copy;
    size_t len;
    long i, bad = 0, accepted = 0;
    lg_rng r;
    CHECK_OK(lg_st_encode(&enc, t, 2, meta, 1));
    copy = lg_malloc(enc.len);
    if (!copy)
        return;
    for (len = 0; len < enc.len; len++) {
        int err = lg_st_open_memory(enc.ptr, len, "cut", &f);
        if (err != LG_EINPUT)
            bad++;
        lg_st_close(f);
        f = NULL;
    }
    CHECK_MSG(bad == 0, "%ld truncations not refused", bad);
    lg_rng_init(&r, 99, 101);
    for (i = 0; i < 20000; i++) {
        int k, nflip = 1 + (int)lg_rng_below(&r, 3), err;
        memcpy(copy, enc.ptr, enc.len);
        for (k = 0; k < nflip; k++)
            copy[lg_rng_below(&r, enc.len)] = (unsigned char)lg_rng_u32(&r);
        err = lg_st_open_memory(copy, enc.len, "mut", &f);
        if (err == 0) {
            lg_tensor_view v;
            size_t j;
            accepted++;
            for (j = 0; j < lg_st_count(f); j++) /* every accepted view lies inside the buffer */
                if (lg_st_at(f, j, &v) < 0 || (const unsigned char *)v.data < copy ||
                    (const unsigned char *)v.data + v.nbytes > copy + enc.len)
                    bad++;
        } else if (err != LG_EINPUT) {
            bad++;
        }
        lg_st_close(f);
        f = NULL;
    }
    CHECK_MSG(bad == 0, "%ld mutations gave a wrong result", bad);
    CHECK(accepted > 0); /* mutations of data bytes are still valid files */
    lg_free(copy);
    lg_buf_release(&enc);
}

CHECK_MAIN(T(test_f16_exhaustive), T(test_bf16_exhaustive), T(test_bf16_rounding), T(test_convert),
           T(test_round_trip), T(test_views), T(test_write_errors), T(test_malformed), T(test_alloc_faults),
           T(test_mutations))
