/*
 * npy.c - the .npy header parser and float32 writer (see npy.h).
 *
 * The header is a Python dict literal; rather than a general Python parser
 * this file has a small recursive-descent reader for exactly what NumPy
 * writes: quoted strings (no escapes), True/False, tuples of ints. Each of
 * the three keys must appear once; anything else is an error, so a header
 * we accept means what we think it means.
 *
 * The writer streams the caller's floats into the temp file (no copy of a
 * possibly large array) and then renames, like lg_file_write_atomic.
 */
#include "artifacts/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---- header parsing ------------------------------------------------------------ */

typedef struct {
    const char *p, *end;
    const char *start;
    const char *name;
    int max_ndim; /* 2, or 3 for lg_npy_parse_header_nd */
} hdr_cursor;

static void hc_ws(hdr_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hc_fail(hdr_cursor *c, const char *what)
{
    return lg_error_set(LG_EINPUT, "%s: npy header, offset %ld: %s", c->name, (long)(c->p - c->start), what);
}

static int hc_char(hdr_cursor *c, char ch)
{
    hc_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 0;
    }
    return -1;
}

/* A quoted string into buf (at most n-1 chars). */
static int hc_string(hdr_cursor *c, char *buf, size_t n)
{
    char q;
    size_t i = 0;
    hc_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return hc_fail(c, "expected a quoted string");
    q = *c->p++;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || i + 1 >= n)
            return hc_fail(c, "unsupported or overlong string");
        buf[i++] = *c->p++;
    }
    if (c->p >= c->end)
        return hc_fail(c, "unterminated string");
    c->p++;
    buf[i] = '\0';
    return 0;
}

static int hc_word(hdr_cursor *c, const char *w)
{
    size_t n = strlen(w);
    hc_ws(c);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 0;
    }
    return -1;
}

static int hc_shape(hdr_cursor *c, int *ndim, int64_t shape[3])
{
    *ndim = 0;
    if (hc_char(c, '(') < 0)
        return hc_fail(c, "'shape' must be a tuple");
    for (;;) {
        int64_t v = 0;
        int digits = 0;
        if (hc_char(c, ')') == 0)
            break;
        hc_ws(c);
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > LG_NPY_DIM_MAX)
                return hc_fail(c, "dimension too large");
            v = v * 10 + (*c->p++ - '0');
            digits++;
        }
        if (!digits)
            return hc_fail(c, "shape entries must be non-negative integers");
        if (c->p < c->end && *c->p == 'L') /* Python 2 longs */
            c->p++;
        if (v > LG_NPY_DIM_MAX)
            return hc_fail(c, "dimension too large");
        if (*ndim >= c->max_ndim)
            return hc_fail(c, c->max_ndim == 2 ? "more than 2 dimensions (want a vector or a matrix)"
                                               : "more than 3 dimensions");
        shape[(*ndim)++] = v;
        if (hc_char(c, ',') == 0)
            continue;
        if (hc_char(c, ')') == 0)
            break;
        return hc_fail(c, "malformed shape tuple");
    }
    if (*ndim == 0)
        return hc_fail(c, "0-d array (want a vector or a matrix)");
    return 0;
}

static int parse_dict(hdr_cursor *c, lg_npy_info *info)
{
    int have_descr = 0, have_fortran = 0, have_shape = 0, err;
    char key[32], val[32];

    if (hc_char(c, '{') < 0)
        return hc_fail(c, "header is not a dict");
    for (;;) {
        if (hc_char(c, '}') == 0)
            break;
        if ((err = hc_string(c, key, sizeof(key))) < 0)
            return err;
        if (hc_char(c, ':') < 0)
            return hc_fail(c, "expected ':'");
        if (strcmp(key, "descr") == 0 && !have_descr) {
            have_descr = 1;
            if ((err = hc_string(c, val, sizeof(val))) < 0)
                return err;
            if (strcmp(val, "<f4") == 0)
                info->dtype = LG_DT_F32;
            else if (strcmp(val, "<f2") == 0)
                info->dtype = LG_DT_F16;
            else if (strcmp(val, "<f8") == 0)
                info->dtype = LG_DT_F64;
            else
                return lg_error_set(LG_EINPUT, "%s: npy dtype '%s' not supported (want '<f4', '<f2' or '<f8')",
                                    c->name, val);
        } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
            have_fortran = 1;
            if (hc_word(c, "True") == 0)
                return lg_error_set(LG_EINPUT, "%s: npy fortran_order True not supported (save a C-ordered array)",
                                    c->name);
            if (hc_word(c, "False") < 0)
                return hc_fail(c, "fortran_order must be True or False");
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            have_shape = 1;
            if ((err = hc_shape(c, &info->ndim, info->shape)) < 0)
                return err;
        } else {
            return hc_fail(c, "unknown or repeated key");
        }
        if (hc_char(c, ',') == 0)
            continue;
        if (hc_char(c, '}') == 0)
            break;
        return hc_fail(c, "expected ',' or '}'");
    }
    hc_ws(c);
    if (c->p != c->end)
        return hc_fail(c, "unexpected bytes after the dict");
    if (!have_descr || !have_fortran || !have_shape)
        return lg_error_set(LG_EINPUT, "%s: npy header lacks '%s'", c->name,
                            !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    return 0;
}

static int parse_header(const void *buf, size_t len, uint64_t file_size, const char *name, int max_ndim,
                        lg_npy_info *out);

int lg_npy_parse_header(const void *buf, size_t len, uint64_t file_size, const char *name, lg_npy_info *out)
{
    return parse_header(buf, len, file_size, name, 2, out);
}

int lg_npy_parse_header_nd(const void *buf, size_t len, uint64_t file_size, const char *name, lg_npy_info *out)
{
    return parse_header(buf, len, file_size, name, 3, out);
}

static int parse_header(const void *buf, size_t len, uint64_t file_size, const char *name, int max_ndim,
                        lg_npy_info *out)
{
    const unsigned char *b = buf;
    hdr_cursor c;
    uint64_t hlen, pre, elems, itemsize, data;
    int err, i;

    memset(out, 0, sizeof(*out));
    if (len > file_size)
        len = (size_t)file_size;
    if (len < 6 || memcmp(b, npy_magic, 6) != 0)
        return lg_error_set(LG_EINPUT, "%s: not a .npy file (bad magic)", name);
    if (len < 10)
        return lg_error_set(LG_EINPUT, "%s: truncated .npy header", name);
    if ((b[6] != 1 && b[6] != 2 && b[6] != 3) || b[7] != 0)
        return lg_error_set(LG_EINPUT, "%s: unsupported .npy version %u.%u", name, b[6], b[7]);
    out->version = b[6];
    if (b[6] == 1) {
        hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
        pre = 10;
    } else {
        if (len < 12)
            return lg_error_set(LG_EINPUT, "%s: truncated .npy header", name);
        hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
        pre = 12;
    }
    if (hlen > LG_NPY_HEADER_MAX)
        return lg_error_set(LG_EINPUT, "%s: .npy header of %llu bytes exceeds the limit of %u", name,
                            (unsigned long long)hlen, LG_NPY_HEADER_MAX);
    if (pre + hlen > file_size)
        return lg_error_set(LG_EINPUT, "%s: truncated .npy header (%llu bytes declared, file has %llu)", name,
                            (unsigned long long)(pre + hlen), (unsigned long long)file_size);
    if (pre + hlen > len)
        return lg_error_set(LG_EINTERNAL, "%s: npy header buffer too short", name);
    c.start = c.p = (const char *)b + pre;
    c.end = c.p + hlen;
    c.name = name;
    c.max_ndim = max_ndim;
    if ((err = parse_dict(&c, out)) < 0)
        return err;

    itemsize = lg_dtype_size(out->dtype);
    elems = 1;
    for (i = 0; i < out->ndim; i++) {
        if (out->shape[i] && elems > (UINT64_MAX / 16) / (uint64_t)out->shape[i])
            return lg_error_set(LG_EINPUT, "%s: npy shape too large", name);
        elems *= (uint64_t)out->shape[i];
    }
    data = elems * itemsize;
    out->data_offset = (size_t)(pre + hlen);
    if (file_size - out->data_offset < data)
        return lg_error_set(LG_EINPUT, "%s: truncated: shape (%lld%s%lld) x %llu bytes needs %llu data bytes, file has %llu",
                            name, (long long)out->shape[0], out->ndim == 2 ? ", " : ",",
                            out->ndim == 2 ? (long long)out->shape[1] : 0LL, (unsigned long long)itemsize,
                            (unsigned long long)data, (unsigned long long)(file_size - out->data_offset));
    if (file_size - out->data_offset > data)
        return lg_error_set(LG_EINPUT, "%s: %llu unexpected bytes after the array data", name,
                            (unsigned long long)(file_size - out->data_offset - data));
    if (data > SIZE_MAX)
        return lg_error_set(LG_EINPUT, "%s: array too large for this host", name);
    out->data_bytes = (size_t)data;
    if (out->ndim == 1)
        out->shape[1] = 0;
    return 0;
}

/* Read up to n bytes at offset 0.. of fd into buf: exactly n unless EOF. */
static int read_full(int fd, const char *path, void *buf, size_t n, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, (char *)buf + done, n - done);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return lg_error_set(LG_EIO, "%s: read: %s", path, strerror(errno));
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

static int open_regular(const char *path, int *fd_out, uint64_t *size)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lg_error_set(errno == ENOENT ? LG_ENOTFOUND : LG_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lg_error_set(LG_EINPUT, "%s: not a regular file", path);
    }
    *fd_out = fd;
    *size = (uint64_t)st.st_size;
    return 0;
}

int lg_npy_read_info(const char *path, lg_npy_info *out)
{
    char *buf = NULL;
    size_t got = 0, want = 12 + LG_NPY_HEADER_MAX;
    uint64_t size;
    int fd = -1, err;

    if ((err = open_regular(path, &fd, &size)) < 0)
        return err;
    if (!(buf = lg_malloc(want))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = read_full(fd, path, buf, want, &got)) < 0)
        goto out;
    err = lg_npy_parse_header(buf, got, size, path, out);
out:
    lg_free(buf);
    close(fd);
    return err;
}

int lg_npy_read_f32(const char *path, float **out, lg_npy_info *info)
{
    lg_npy_info local;
    char *raw = NULL;
    float *x = NULL;
    size_t got, n;
    uint64_t size;
    int fd = -1, err;

    *out = NULL;
    if (!info)
        info = &local;
    if ((err = lg_npy_read_info(path, info)) < 0)
        return err;
    if ((err = open_regular(path, &fd, &size)) < 0)
        return err;
    n = info->data_bytes / lg_dtype_size(info->dtype);
    if (!(x = lg_malloc(n * sizeof(float))) ||
        (info->dtype != LG_DT_F32 && !(raw = lg_malloc(info->data_bytes)))) {
        err = LG_ENOMEM;
        goto out;
    }
    if (lseek(fd, (off_t)info->data_offset, SEEK_SET) < 0) {
        err = lg_error_set(LG_EIO, "%s: seek: %s", path, strerror(errno));
        goto out;
    }
    if ((err = read_full(fd, path, raw ? (void *)raw : (void *)x, info->data_bytes, &got)) < 0)
        goto out;
    if (got != info->data_bytes) {
        err = lg_error_set(LG_EIO, "%s: file shrank while reading", path);
        goto out;
    }
    if (raw)
        err = lg_convert_to_f32(info->dtype, raw, n, x);
out:
    close(fd);
    lg_free(raw);
    if (err < 0)
        lg_free(x);
    else
        *out = x;
    return err;
}

/* ---- writing ------------------------------------------------------------------------ */

static int check_shape(int ndim, const int64_t *shape)
{
    int i;
    if (ndim != 1 && ndim != 2)
        return lg_error_set(LG_EINPUT, "npy: ndim %d not supported (1 or 2)", ndim);
    for (i = 0; i < ndim; i++)
        if (shape[i] < 0 || shape[i] > LG_NPY_DIM_MAX)
            return lg_error_set(LG_EINPUT, "npy: shape[%d] = %lld out of range", i, (long long)shape[i]);
    /* count_elems() * sizeof(float) must not wrap: a wrapped size would write a
     * header promising more data than follows */
    if (ndim == 2 && shape[0] && (uint64_t)shape[1] > (uint64_t)(SIZE_MAX / sizeof(float)) / (uint64_t)shape[0])
        return lg_error_set(LG_EINPUT, "npy: shape (%lld, %lld) is too large", (long long)shape[0],
                            (long long)shape[1]);
    return 0;
}

int lg_npy_header_f32(lg_buf *out, int ndim, const int64_t *shape)
{
    char dict[160];
    size_t n, total;
    unsigned char pre[10];
    int err;

    if ((err = check_shape(ndim, shape)) < 0)
        return err;
    if (ndim == 1)
        snprintf(dict, sizeof(dict), "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld,), }",
                 (long long)shape[0]);
    else
        snprintf(dict, sizeof(dict), "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                 (long long)shape[0], (long long)shape[1]);
    n = strlen(dict);
    total = (10 + n + 1 + 63) / 64 * 64; /* magic+len, dict, '\n', padded to 64 */
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)((total - 10) & 0xff);
    pre[9] = (unsigned char)((total - 10) >> 8);
    if ((err = lg_buf_put(out, pre, 10)) < 0 || (err = lg_buf_put(out, dict, n)) < 0)
        return err;
    while (n + 10 + 1 < total) {
        if ((err = lg_buf_put(out, " ", 1)) < 0)
            return err;
        n++;
    }
    return lg_buf_put(out, "\n", 1);
}

static size_t count_elems(int ndim, const int64_t *shape)
{
    return ndim == 1 ? (size_t)shape[0] : (size_t)shape[0] * (size_t)shape[1];
}

int lg_npy_encode_f32(lg_buf *out, const float *data, int ndim, const int64_t *shape)
{
    int err = lg_npy_header_f32(out, ndim, shape);
    if (err < 0)
        return err;
    return lg_buf_put(out, data, count_elems(ndim, shape) * sizeof(float));
}

int lg_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape)
{
    lg_buf hdr = LG_BUF_INIT;
    lg_atomic_file f;
    int err;

    if ((err = lg_npy_header_f32(&hdr, ndim, shape)) < 0) {
        lg_error_wrap("%s", path);
        goto out;
    }
    if ((err = lg_atomic_open(&f, path)) < 0 || (err = lg_atomic_write(&f, hdr.ptr, hdr.len)) < 0 ||
        (err = lg_atomic_write(&f, data, count_elems(ndim, shape) * sizeof(float))) < 0)
        goto out;
    err = lg_atomic_commit(&f);
out:
    lg_buf_release(&hdr);
    return err;
}
