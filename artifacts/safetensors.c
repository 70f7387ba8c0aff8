/*
 * safetensors.c - the .safetensors reader and writer, dtype helpers and
 * half-precision conversions (see safetensors.h for the accepted format).
 *
 * Reading: the file is mmap'ed and never copied; the JSON header is parsed
 * with cJSON (bounded by LG_ST_HEADER_MAX) into a table of entries sorted by
 * name (so lookups are a binary search and listing order is deterministic).
 * Validation happens once, in st_parse: after it, every entry's bytes lie
 * inside the data buffer, so lg_st_get can hand out pointers without checks.
 *
 * Writing: the header JSON is produced by hand, not by cJSON's printer, so
 * the bytes (and therefore the SHA-256 of the artifacts we store) are fixed
 * by this file alone and do not change with the cJSON version.
 *
 * Invariants of an open lg_st_file: entries[] sorted by name, unique;
 * meta[] sorted by key, unique; data + entry.begin .. entry.end is inside
 * the mapping.
 */
#include "artifacts/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ledger's tensor formats assume a little-endian host"
#endif

/* ---- dtypes and conversions ------------------------------------------------ */

static const struct { const char *name; size_t size; } dtype_table[] = {
    [LG_DT_F32] = {"F32", 4}, [LG_DT_F16] = {"F16", 2}, [LG_DT_BF16] = {"BF16", 2},
    [LG_DT_F64] = {"F64", 8}, [LG_DT_I32] = {"I32", 4}, [LG_DT_I64] = {"I64", 8},
};
#define N_DTYPES (sizeof(dtype_table) / sizeof(dtype_table[0]))

size_t lg_dtype_size(lg_dtype dt) { return (unsigned)dt < N_DTYPES ? dtype_table[dt].size : 0; }
const char *lg_dtype_name(lg_dtype dt) { return (unsigned)dt < N_DTYPES ? dtype_table[dt].name : "?"; }

int lg_dtype_parse(const char *name, lg_dtype *out)
{
    size_t i;
    for (i = 0; i < N_DTYPES; i++)
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (lg_dtype)i;
            return 0;
        }
    return LG_EINPUT;
}

static float bits_to_f32(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

float lg_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) {
        int e = -1;
        if (mant == 0)
            return bits_to_f32(sign);
        /* subnormal: mant * 2^-24; shift until the implicit bit appears */
        do {
            e++;
            mant <<= 1;
        } while (!(mant & 0x400u));
        return bits_to_f32(sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13));
    }
    if (exp == 31)
        return bits_to_f32(sign | 0x7f800000u | (mant << 13));
    return bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

float lg_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t lg_f32_to_bf16(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((b >> 16) | 0x0040u); /* NaN: keep sign and top payload, quiet */
    b += 0x7fffu + ((b >> 16) & 1u);            /* ties to even: carry iff above half, or half and odd */
    return (uint16_t)(b >> 16);
}

int lg_convert_to_f32(lg_dtype dt, const void *src, size_t n, float *out)
{
    const unsigned char *p = src;
    size_t i;
    switch (dt) {
    case LG_DT_F32:
        memcpy(out, src, n * 4);
        return 0;
    case LG_DT_F16:
        for (i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = lg_f16_to_f32(h);
        }
        return 0;
    case LG_DT_BF16:
        for (i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = lg_bf16_to_f32(h);
        }
        return 0;
    case LG_DT_F64:
        for (i = 0; i < n; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
        return 0;
    default:
        return lg_error_set(LG_EINPUT, "cannot convert %s to float32", lg_dtype_name(dt));
    }
}

/* ---- reading ------------------------------------------------------------------- */

typedef struct {
    char *name;
    lg_dtype dtype;
    int ndim;
    int64_t shape[LG_ST_MAX_DIMS];
    uint64_t begin, end; /* relative to the data buffer */
} st_entry;

typedef struct {
    char *key;
    char *value;
} st_meta;

struct lg_st_file {
    char *path;
    void *map;                 /* mmap'ed region (NULL for memory files) */
    size_t map_len;
    const unsigned char *buf;  /* whole file */
    size_t len;
    const unsigned char *data; /* data buffer = buf + 8 + header length */
    size_t data_len;
    st_entry *entries;         /* [n_entries], sorted by name */
    size_t n_entries;
    st_meta *meta;             /* [n_meta], sorted by key */
    size_t n_meta;
};

static int entry_cmp_name(const void *a, const void *b)
{
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static int meta_cmp_key(const void *a, const void *b)
{
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

static int entry_cmp_offset(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* A JSON number that is an exact non-negative integer <= 2^53. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    double d;
    if (!cJSON_IsNumber(v))
        return -1;
    d = v->valuedouble;
    if (!(d >= 0.0 && d <= 9007199254740992.0) || d != floor(d))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static int st_parse_meta(lg_st_file *f, const cJSON *obj)
{
    const cJSON *it;
    size_t i = 0, n = (size_t)cJSON_GetArraySize(obj);
    if (!cJSON_IsObject(obj))
        return lg_error_set(LG_EINPUT, "%s: header: __metadata__ is not an object", f->path);
    if (!(f->meta = lg_calloc(n ? n : 1, sizeof(*f->meta))))
        return LG_ENOMEM;
    cJSON_ArrayForEach(it, obj) {
        if (!cJSON_IsString(it))
            return lg_error_set(LG_EINPUT, "%s: header: __metadata__.%.64s is not a string", f->path,
                                it->string);
        f->meta[i].key = lg_strdup(it->string);
        f->meta[i].value = lg_strdup(it->valuestring);
        f->n_meta = ++i;
        if (!f->meta[i - 1].key || !f->meta[i - 1].value)
            return LG_ENOMEM;
    }
    qsort(f->meta, f->n_meta, sizeof(*f->meta), meta_cmp_key);
    for (i = 1; i < f->n_meta; i++)
        if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0)
            return lg_error_set(LG_EINPUT, "%s: header: duplicate __metadata__ key '%.64s'", f->path,
                                f->meta[i].key);
    return 0;
}

static int st_parse_entry(lg_st_file *f, const cJSON *obj, st_entry *e)
{
    const cJSON *it, *dtype = NULL, *shape = NULL, *offs = NULL;
    uint64_t nbytes, dim;
    int i, has_zero = 0;
    const char *nm = obj->string;

    if (!cJSON_IsObject(obj))
        return lg_error_set(LG_EINPUT, "%s: header: tensor '%.64s' is not an object", f->path, nm);
    cJSON_ArrayForEach(it, obj) {
        if (strcmp(it->string, "dtype") == 0 && !dtype)
            dtype = it;
        else if (strcmp(it->string, "shape") == 0 && !shape)
            shape = it;
        else if (strcmp(it->string, "data_offsets") == 0 && !offs)
            offs = it;
        else
            return lg_error_set(LG_EINPUT, "%s: header: tensor '%.64s': unexpected or repeated key '%.64s'",
                                f->path, nm, it->string);
    }
    if (!dtype || !shape || !offs)
        return lg_error_set(LG_EINPUT, "%s: header: tensor '%.64s': missing %s", f->path, nm,
                            !dtype ? "dtype" : !shape ? "shape" : "data_offsets");
    if (!cJSON_IsString(dtype) || lg_dtype_parse(dtype->valuestring, &e->dtype) < 0)
        return lg_error_set(LG_EINPUT,
                            "%s: header: tensor '%.64s': unsupported dtype %.32s%s%s (want F32, F16, BF16, F64, I32 or I64)",
                            f->path, nm, cJSON_IsString(dtype) ? "'" : "",
                            cJSON_IsString(dtype) ? dtype->valuestring : "(not a string)",
                            cJSON_IsString(dtype) ? "'" : "");
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > LG_ST_MAX_DIMS)
        return lg_error_set(LG_EINPUT, "%s: header: tensor '%.64s': shape must be a list of at most %d integers",
                            f->path, nm, LG_ST_MAX_DIMS);
    e->ndim = cJSON_GetArraySize(shape);
    nbytes = lg_dtype_size(e->dtype);
    i = 0;
    cJSON_ArrayForEach(it, shape) {
        if (json_uint(it, &dim) < 0)
            return lg_error_set(LG_EINPUT, "%s: header: tensor '%.64s': shape[%d] is not a non-negative integer",
                                f->path, nm, i);
        e->shape[i++] = (int64_t)dim;
        has_zero |= dim == 0;
        if (dim && nbytes > UINT64_MAX / 2 / dim)
            nbytes = UINT64_MAX; /* overflow: reported below */
        else if (nbytes != UINT64_MAX)
            nbytes *= dim;
    }
    if (has_zero)
        nbytes = 0;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        json_uint(cJSON_GetArrayItem(offs, 0), &e->begin) < 0 ||
        json_uint(cJSON_GetArrayItem(offs, 1), &e->end) < 0 || e->begin > e->end)
        return lg_error_set(LG_EINPUT, "%s: header: tensor '%.64s': data_offsets must be [begin, end] with 0 <= begin <= end",
                            f->path, nm);
    if (e->end > f->data_len)
        return lg_error_set(LG_EINPUT,
                            "%s: tensor '%.64s': data_offsets [%llu, %llu] past the end of the data (%zu bytes; truncated file?)",
                            f->path, nm, (unsigned long long)e->begin, (unsigned long long)e->end, f->data_len);
    if (nbytes != e->end - e->begin)
        return lg_error_set(LG_EINPUT, "%s: tensor '%.64s': data_offsets span %llu bytes but shape x dtype needs %s%llu",
                            f->path, nm, (unsigned long long)(e->end - e->begin),
                            nbytes == UINT64_MAX ? "more than " : "",
                            (unsigned long long)(nbytes == UINT64_MAX ? f->data_len : nbytes));
    return 0;
}

static int st_parse(lg_st_file *f)
{
    cJSON *root = NULL;
    const cJSON *it;
    const st_entry **order = NULL;
    const char *end = NULL;
    uint64_t hlen, pos;
    size_t i, n;
    int err = 0;

    if (f->len < 8) {
        err = lg_error_set(LG_EINPUT, "%s: too short for a safetensors file (%zu bytes)", f->path, f->len);
        goto out;
    }
    memcpy(&hlen, f->buf, 8);
    if (hlen > LG_ST_HEADER_MAX) {
        err = lg_error_set(LG_EINPUT, "%s: header length %llu exceeds the limit of %llu bytes (not a safetensors file?)",
                           f->path, (unsigned long long)hlen, (unsigned long long)LG_ST_HEADER_MAX);
        goto out;
    }
    if (hlen > f->len - 8) {
        err = lg_error_set(LG_EINPUT, "%s: truncated: header length %llu but only %zu bytes follow", f->path,
                           (unsigned long long)hlen, f->len - 8);
        goto out;
    }
    if (hlen < 2 || f->buf[8] != '{') {
        err = lg_error_set(LG_EINPUT, "%s: header is not a JSON object (not a safetensors file?)", f->path);
        goto out;
    }
    f->data = f->buf + 8 + hlen;
    f->data_len = f->len - 8 - (size_t)hlen;
    root = cJSON_ParseWithLengthOpts((const char *)f->buf + 8, (size_t)hlen, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        err = lg_error_set(LG_EINPUT, "%s: header: invalid JSON", f->path);
        goto out;
    }
    for (pos = (uint64_t)(end - (const char *)f->buf); pos < 8 + hlen; pos++)
        if (f->buf[pos] != ' ' && f->buf[pos] != '\n' && f->buf[pos] != '\t' && f->buf[pos] != '\r') {
            err = lg_error_set(LG_EINPUT, "%s: header: unexpected bytes after the JSON object (offset %llu)",
                               f->path, (unsigned long long)pos);
            goto out;
        }
    n = (size_t)cJSON_GetArraySize(root);
    if (n > LG_ST_MAX_TENSORS + 1) { /* + __metadata__ */
        err = lg_error_set(LG_EINPUT, "%s: header: %zu entries exceed the limit of %u tensors", f->path, n,
                           LG_ST_MAX_TENSORS);
        goto out;
    }
    if (!(f->entries = lg_calloc(n ? n : 1, sizeof(*f->entries)))) {
        err = LG_ENOMEM;
        goto out;
    }
    cJSON_ArrayForEach(it, root) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (f->meta) {
                err = lg_error_set(LG_EINPUT, "%s: header: __metadata__ given twice", f->path);
                goto out;
            }
            if ((err = st_parse_meta(f, it)) < 0)
                goto out;
            continue;
        }
        if (!it->string[0]) {
            err = lg_error_set(LG_EINPUT, "%s: header: empty tensor name", f->path);
            goto out;
        }
        if (!(f->entries[f->n_entries].name = lg_strdup(it->string))) {
            err = LG_ENOMEM;
            goto out;
        }
        f->n_entries++;
        if ((err = st_parse_entry(f, it, &f->entries[f->n_entries - 1])) < 0)
            goto out;
    }
    qsort(f->entries, f->n_entries, sizeof(*f->entries), entry_cmp_name);
    for (i = 1; i < f->n_entries; i++)
        if (strcmp(f->entries[i - 1].name, f->entries[i].name) == 0) {
            err = lg_error_set(LG_EINPUT, "%s: header: duplicate tensor '%.64s'", f->path, f->entries[i].name);
            goto out;
        }
    /* The tensors must tile the data buffer: sorted by offset, each starts
     * where the previous ended, the last ends at the end of the file. */
    if (!(order = lg_calloc(f->n_entries ? f->n_entries : 1, sizeof(*order)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < f->n_entries; i++)
        order[i] = &f->entries[i];
    qsort(order, f->n_entries, sizeof(*order), entry_cmp_offset);
    pos = 0;
    for (i = 0; i < f->n_entries; i++) {
        if (order[i]->begin != pos) {
            err = lg_error_set(LG_EINPUT, "%s: tensor '%.64s': data_offsets [%llu, %llu] %s (expected begin %llu)",
                               f->path, order[i]->name, (unsigned long long)order[i]->begin,
                               (unsigned long long)order[i]->end,
                               order[i]->begin < pos ? "overlap the previous tensor" : "leave a hole",
                               (unsigned long long)pos);
            goto out;
        }
        pos = order[i]->end;
    }
    if (pos != f->data_len) {
        err = lg_error_set(LG_EINPUT, "%s: %llu bytes after the last tensor (data ends at %llu of %zu)", f->path,
                           (unsigned long long)(f->data_len - pos), (unsigned long long)pos, f->data_len);
        goto out;
    }
out:
    cJSON_Delete(root);
    lg_free(order);
    return err;
}

static int st_new(const char *name, lg_st_file **out)
{
    lg_st_file *f = lg_calloc(1, sizeof(*f));
    if (!f)
        return LG_ENOMEM;
    if (!(f->path = lg_strdup(name))) {
        lg_free(f);
        return LG_ENOMEM;
    }
    *out = f;
    return 0;
}

int lg_st_open_memory(const void *buf, size_t len, const char *name, lg_st_file **out)
{
    lg_st_file *f = NULL;
    int err;
    *out = NULL;
    if ((err = st_new(name ? name : "<memory>", &f)) < 0)
        return err;
    f->buf = buf;
    f->len = len;
    if ((err = st_parse(f)) < 0) {
        lg_st_close(f);
        return err;
    }
    *out = f;
    return 0;
}

int lg_st_open(const char *path, lg_st_file **out)
{
    lg_st_file *f = NULL;
    struct stat st;
    int fd = -1, err;

    *out = NULL;
    if ((err = st_new(path, &f)) < 0)
        return err;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = lg_error_set(errno == ENOENT ? LG_ENOTFOUND : LG_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        err = lg_error_set(LG_EIO, "%s: stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err = lg_error_set(LG_EINPUT, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size < 8) {
        err = lg_error_set(LG_EINPUT, "%s: too short for a safetensors file (%lld bytes)", path,
                           (long long)st.st_size);
        goto out;
    }
    f->map_len = (size_t)st.st_size;
    f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        err = lg_error_set(LG_EIO, "%s: mmap: %s", path, strerror(errno));
        goto out;
    }
    f->buf = f->map;
    f->len = f->map_len;
    err = st_parse(f);
out:
    if (fd >= 0)
        close(fd);
    if (err < 0)
        lg_st_close(f);
    else
        *out = f;
    return err;
}

static void entry_view(const lg_st_file *f, const st_entry *e, lg_tensor_view *out)
{
    memset(out, 0, sizeof(*out));
    out->name = e->name;
    out->dtype = e->dtype;
    out->ndim = e->ndim;
    memcpy(out->shape, e->shape, sizeof(out->shape));
    out->data = f->data + e->begin;
    out->nbytes = (size_t)(e->end - e->begin);
}

int lg_st_get(const lg_st_file *f, const char *name, lg_tensor_view *out)
{
    st_entry key, *e;
    key.name = (char *)name;
    e = bsearch(&key, f->entries, f->n_entries, sizeof(*f->entries), entry_cmp_name);
    if (!e)
        return lg_error_set(LG_ENOTFOUND, "%s: no tensor named '%.64s'", f->path, name);
    entry_view(f, e, out);
    return 0;
}

size_t lg_st_count(const lg_st_file *f) { return f->n_entries; }

int lg_st_at(const lg_st_file *f, size_t i, lg_tensor_view *out)
{
    if (i >= f->n_entries)
        return lg_error_set(LG_ENOTFOUND, "%s: tensor index %zu out of range", f->path, i);
    entry_view(f, &f->entries[i], out);
    return 0;
}

int lg_st_meta(const lg_st_file *f, const char *key, const char **out)
{
    st_meta k, *m;
    k.key = (char *)key;
    m = f->n_meta ? bsearch(&k, f->meta, f->n_meta, sizeof(*f->meta), meta_cmp_key) : NULL;
    if (!m)
        return lg_error_set(LG_ENOTFOUND, "%s: no metadata key '%.64s'", f->path, key);
    *out = m->value;
    return 0;
}

size_t lg_st_meta_count(const lg_st_file *f) { return f->n_meta; }

int lg_st_meta_at(const lg_st_file *f, size_t i, const char **key, const char **value)
{
    if (i >= f->n_meta)
        return lg_error_set(LG_ENOTFOUND, "%s: metadata index %zu out of range", f->path, i);
    *key = f->meta[i].key;
    *value = f->meta[i].value;
    return 0;
}

const char *lg_st_path(const lg_st_file *f) { return f->path; }

void lg_st_close(lg_st_file *f)
{
    size_t i;
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->map_len);
    for (i = 0; i < f->n_entries; i++)
        lg_free(f->entries[i].name);
    if (f->meta)
        for (i = 0; i < f->n_meta; i++) {
            lg_free(f->meta[i].key);
            lg_free(f->meta[i].value);
        }
    lg_free(f->entries);
    lg_free(f->meta);
    lg_free(f->path);
    lg_free(f);
}

/* ---- writing -------------------------------------------------------------------- */

static int json_put_string(lg_buf *b, const char *s)
{
    int err = lg_buf_put(b, "\"", 1);
    for (; !err && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            err = lg_buf_printf(b, "\\%c", c);
        else if (c == '\n' || c == '\t' || c == '\r')
            err = lg_buf_printf(b, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
        else if (c < 0x20)
            err = lg_buf_printf(b, "\\u%04x", c);
        else
            err = lg_buf_put(b, s, 1);
    }
    return err ? err : lg_buf_put(b, "\"", 1);
}

static int view_ptr_cmp_name(const void *a, const void *b)
{
    return strcmp((*(const lg_tensor_view *const *)a)->name, (*(const lg_tensor_view *const *)b)->name);
}

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

int lg_st_encode_views(lg_buf *out, const lg_tensor_view *t, size_t n, const char *const *meta_kv,
                       size_t n_meta)
{
    const lg_tensor_view **order = NULL;
    const char *const **mord = NULL;
    lg_buf hdr = LG_BUF_INIT;
    uint64_t off = 0, hlen;
    size_t i;
    int j, err = 0;

    if (!(order = lg_calloc(n ? n : 1, sizeof(*order))) || !(mord = lg_calloc(n_meta ? n_meta : 1, sizeof(*mord)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        uint64_t need = (uint64_t)lg_dtype_size(t[i].dtype);
        if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, "__metadata__") == 0) {
            err = lg_error_set(LG_EINPUT, "safetensors: tensor %zu: invalid name '%s'", i, t[i].name ? t[i].name : "(null)");
            goto out;
        }
        if (!need || t[i].ndim < 0 || t[i].ndim > LG_ST_MAX_DIMS) {
            err = lg_error_set(LG_EINPUT, "safetensors: tensor '%.64s': bad dtype or ndim %d", t[i].name, t[i].ndim);
            goto out;
        }
        for (j = 0; j < t[i].ndim; j++) {
            if (t[i].shape[j] < 0) {
                err = lg_error_set(LG_EINPUT, "safetensors: tensor '%.64s': negative shape[%d]", t[i].name, j);
                goto out;
            }
            if (t[i].shape[j] && need > ((uint64_t)1 << 53) / (uint64_t)t[i].shape[j]) {
                /* a wrapped product could equal nbytes; our reader caps offsets at 2^53 */
                err = lg_error_set(LG_EINPUT, "safetensors: tensor '%.64s': shape too large", t[i].name);
                goto out;
            }
            need *= (uint64_t)t[i].shape[j];
        }
        if (need != t[i].nbytes || (need && !t[i].data)) {
            err = lg_error_set(LG_EINPUT, "safetensors: tensor '%.64s': %zu bytes given, shape x dtype needs %llu",
                               t[i].name, t[i].nbytes, (unsigned long long)need);
            goto out;
        }
        order[i] = &t[i];
    }
    qsort(order, n, sizeof(*order), view_ptr_cmp_name);
    for (i = 1; i < n; i++)
        if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
            err = lg_error_set(LG_EINPUT, "safetensors: duplicate tensor name '%.64s'", order[i]->name);
            goto out;
        }
    for (i = 0; i < n_meta; i++) {
        if (!meta_kv[2 * i] || !meta_kv[2 * i + 1]) {
            err = lg_error_set(LG_EINPUT, "safetensors: metadata pair %zu has a NULL key or value", i);
            goto out;
        }
        mord[i] = &meta_kv[2 * i];
    }
    qsort(mord, n_meta, sizeof(*mord), str_ptr_cmp);
    for (i = 1; i < n_meta; i++)
        if (strcmp(*mord[i - 1], *mord[i]) == 0) {
            err = lg_error_set(LG_EINPUT, "safetensors: duplicate metadata key '%.64s'", *mord[i]);
            goto out;
        }

    /* header JSON: {"__metadata__":{...},"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]},...} */
    err = lg_buf_put(&hdr, "{", 1);
    if (!err && n_meta) {
        err = lg_buf_puts(&hdr, "\"__metadata__\":{");
        for (i = 0; !err && i < n_meta; i++) {
            if (i)
                err = lg_buf_put(&hdr, ",", 1);
            if (!err)
                err = json_put_string(&hdr, mord[i][0]);
            if (!err)
                err = lg_buf_put(&hdr, ":", 1);
            if (!err)
                err = json_put_string(&hdr, mord[i][1]);
        }
        if (!err)
            err = lg_buf_puts(&hdr, n ? "}," : "}");
    }
    for (i = 0; !err && i < n; i++) {
        const lg_tensor_view *v = order[i];
        if (i)
            err = lg_buf_put(&hdr, ",", 1);
        if (!err)
            err = json_put_string(&hdr, v->name);
        if (!err)
            err = lg_buf_printf(&hdr, ":{\"dtype\":\"%s\",\"shape\":[", lg_dtype_name(v->dtype));
        for (j = 0; !err && j < v->ndim; j++)
            err = lg_buf_printf(&hdr, j ? ",%lld" : "%lld", (long long)v->shape[j]);
        if (!err)
            err = lg_buf_printf(&hdr, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                                (unsigned long long)(off + v->nbytes));
        off += v->nbytes;
    }
    if (!err)
        err = lg_buf_put(&hdr, "}", 1);
    while (!err && hdr.len % 8)
        err = lg_buf_put(&hdr, " ", 1);
    if (err)
        goto out;
    hlen = hdr.len;
    if ((err = lg_buf_grow(out, 8 + hdr.len + (size_t)off)) < 0 || (err = lg_buf_put(out, &hlen, 8)) < 0 ||
        (err = lg_buf_put(out, hdr.ptr, hdr.len)) < 0)
        goto out;
    for (i = 0; i < n; i++)
        if ((err = lg_buf_put(out, order[i]->data, order[i]->nbytes)) < 0)
            goto out;
out:
    lg_buf_release(&hdr);
    lg_free(order);
    lg_free(mord);
    return err;
}

static int f32_views(const lg_tensor_f32 *t, size_t n, lg_tensor_view **out)
{
    lg_tensor_view *v = lg_calloc(n ? n : 1, sizeof(*v));
    size_t i;
    int j;
    if (!v)
        return LG_ENOMEM;
    for (i = 0; i < n; i++) {
        size_t count = 1;
        if (t[i].ndim < 0 || t[i].ndim > LG_ST_MAX_DIMS) {
            lg_free(v);
            return lg_error_set(LG_EINPUT, "safetensors: tensor '%.64s': ndim %d not in 0..%d",
                                t[i].name ? t[i].name : "(null)", t[i].ndim, LG_ST_MAX_DIMS);
        }
        for (j = 0; j < t[i].ndim; j++)
            count *= t[i].shape[j] > 0 ? (size_t)t[i].shape[j] : 0;
        v[i].name = (char *)t[i].name;
        v[i].dtype = LG_DT_F32;
        v[i].ndim = t[i].ndim;
        memcpy(v[i].shape, t[i].shape, sizeof(v[i].shape));
        v[i].data = t[i].data;
        v[i].nbytes = count * 4;
    }
    *out = v;
    return 0;
}

int lg_st_encode(lg_buf *out, const lg_tensor_f32 *t, size_t n, const char *const *meta_kv, size_t n_meta)
{
    lg_tensor_view *v = NULL;
    int err = f32_views(t, n, &v);
    if (err >= 0)
        err = lg_st_encode_views(out, v, n, meta_kv, n_meta);
    lg_free(v);
    return err;
}

int lg_st_write_views(const char *path, const lg_tensor_view *t, size_t n, const char *const *meta_kv,
                      size_t n_meta)
{
    lg_buf b = LG_BUF_INIT;
    int err = lg_st_encode_views(&b, t, n, meta_kv, n_meta);
    if (err < 0)
        lg_error_wrap("%s", path);
    else
        err = lg_file_write_atomic(path, b.ptr, b.len);
    lg_buf_release(&b);
    return err;
}

int lg_st_write(const char *path, const lg_tensor_f32 *t, size_t n, const char *const *meta_kv, size_t n_meta)
{
    lg_tensor_view *v = NULL;
    int err = f32_views(t, n, &v);
    if (err >= 0)
        err = lg_st_write_views(path, v, n, meta_kv, n_meta);
    lg_free(v);
    return err;
}
