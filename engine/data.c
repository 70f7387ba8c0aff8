/*
 * data.c - datasets: activation files, memory arrays, synthetic data with a
 * ground-truth dictionary, and the held-out split (see data.h for the
 * generative model and the digest definitions).
 *
 * A dataset is a view: `rows` points at n * d elements of `dtype`
 * (row-major, possibly unaligned inside a file mapping) and every read goes
 * through lg_convert_to_f32. Files are mmap'ed whole (read-only, private);
 * the safetensors parser runs on that same mapping, so the digest (SHA-256
 * of the mapped bytes) covers exactly the bytes that were validated and are
 * read.
 *
 * Invariants of a made dataset: n >= 1, d >= 1, every value finite.
 *
 * The dataset code is two files that share engine/data_int.h (struct
 * lg_dataset): this one holds the files, memory arrays, reads, the digest
 * and the split; data_synth.c the synthetic data.
 */
#include "engine/data.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifacts/npy.h"
#include "base/sha256.h"
#include "base/rng.h"
#include "engine/data_int.h"

#define CHUNK_ROWS 256

/* ---- SHA-256 ------------------------------------------------------------------ */

/* SHA-256 of up to two byte ranges, concatenated. */
static int sha256_2(const void *a, size_t na, const void *b, size_t nb, char hex[65])
{
    lg_sha256 h = {0};
    int err;
    if ((err = lg_sha256_init(&h)) < 0 || (err = lg_sha256_update(&h, a, na)) < 0 ||
        (nb && (err = lg_sha256_update(&h, b, nb)) < 0)) {
        lg_sha256_release(&h);
        return err;
    }
    return lg_sha256_final(&h, hex);
}

/* ---- common ------------------------------------------------------------------- */

int data_ds_new(ds_kind kind, lg_dataset **out)
{
    lg_dataset *ds = lg_calloc(1, sizeof(*ds));
    if (!ds)
        return LG_ENOMEM;
    ds->kind = kind;
    *out = ds;
    return 0;
}

void lg_dataset_free(lg_dataset *ds)
{
    if (!ds)
        return;
    lg_st_close(ds->st);
    if (ds->map)
        munmap(ds->map, ds->map_len);
    lg_free(ds->owned);
    lg_free(ds->path);
    lg_free(ds);
}

int64_t lg_dataset_rows(const lg_dataset *ds) { return ds->n; }
int lg_dataset_dim(const lg_dataset *ds) { return ds->d; }
int lg_dataset_layers(const lg_dataset *ds) { return ds->layers; }
lg_dtype lg_dataset_dtype(const lg_dataset *ds) { return ds->dtype; }
const char *lg_dataset_path(const lg_dataset *ds) { return ds->kind == DS_FILE ? ds->path : NULL; }

const char *lg_dataset_kind(const lg_dataset *ds)
{
    return ds->kind == DS_FILE ? "file" : ds->kind == DS_MEMORY ? "memory" : "synthetic";
}

static const unsigned char *row_ptr(const lg_dataset *ds, int64_t r)
{
    return ds->rows + (size_t)r * (size_t)ds->d * lg_dtype_size(ds->dtype);
}

/* Tell the kernel that the mapped pages holding rows [lo, hi] are not needed
 * now (MADV_DONTNEED), widened to whole 2 MiB windows of the file: the page
 * cache holds large folios, and one fault maps a whole folio, so a single row
 * read can make megabytes resident. The mapping is read-only and never
 * written, so a later read faults the same bytes back in from the page cache.
 * With it, whole-file passes (the finite check, the digest, the mean, the
 * median) and random row gathers keep only what they are reading resident
 * instead of the whole file. Only for files of at least 1 GiB; a hint:
 * failures are ignored. */
#define DROP_WINDOW ((size_t)2 << 20)
#define DROP_MIN_FILE ((size_t)1 << 30)
static void ds_drop_rows(const lg_dataset *ds, int64_t lo, int64_t hi)
{
    size_t row = (size_t)ds->d * lg_dtype_size(ds->dtype), a, b;
    if (!ds->map || ds->map_len < DROP_MIN_FILE || lo > hi)
        return;
    a = (size_t)(ds->rows - (const unsigned char *)ds->map) + (size_t)lo * row; /* file offsets */
    b = (size_t)(ds->rows - (const unsigned char *)ds->map) + (size_t)(hi + 1) * row;
    a = a / DROP_WINDOW * DROP_WINDOW;
    b = (b + DROP_WINDOW - 1) / DROP_WINDOW * DROP_WINDOW;
    if (b > ds->map_len)
        b = ds->map_len;
    if (b > a)
        (void)madvise((unsigned char *)ds->map + a, b - a, MADV_DONTNEED);
}

/* Scan every value once, CHUNK_ROWS rows at a time, for NaN/Inf. */
static int ds_check_finite(const lg_dataset *ds, const char *label)
{
    float *buf = lg_malloc((size_t)CHUNK_ROWS * (size_t)ds->d * sizeof(float)); /* [CHUNK_ROWS, d] */
    int64_t r0;
    int err = 0;
    if (!buf)
        return LG_ENOMEM;
    for (r0 = 0; r0 < ds->n && !err; r0 += CHUNK_ROWS) {
        int64_t nr = ds->n - r0 < CHUNK_ROWS ? ds->n - r0 : CHUNK_ROWS;
        size_t k, count = (size_t)nr * (size_t)ds->d;
        if ((err = lg_convert_to_f32(ds->dtype, row_ptr(ds, r0), count, buf)) < 0)
            break;
        for (k = 0; k < count; k++)
            if (!isfinite(buf[k])) {
                err = lg_error_set(LG_EINPUT, "%s: row %lld, column %zu: %s value (data must be finite)", label,
                                   (long long)(r0 + (int64_t)(k / (size_t)ds->d)), k % (size_t)ds->d,
                                   isnan(buf[k]) ? "NaN" : "infinite");
                break;
            }
        ds_drop_rows(ds, r0, r0 + nr - 1);
    }
    lg_free(buf);
    return err;
}

/* ---- files -------------------------------------------------------------------- */

static int open_npy(lg_dataset *ds)
{
    lg_npy_info info;
    int err = lg_npy_parse_header_nd(ds->map, ds->map_len, ds->map_len, ds->path, &info);
    if (err < 0)
        return err;
    if (info.ndim == 1)
        return lg_error_set(LG_EINPUT, "%s: array is 1-D of shape (%lld,); want a 2-D [n, d] array", ds->path,
                            (long long)info.shape[0]);
    if (info.ndim == 3) { /* [n, L, d]: layered rows of L * d (lg_dataset_layers) */
        if (info.shape[1] < 1 || info.shape[2] < 1 || info.shape[1] * info.shape[2] > INT32_MAX)
            return lg_error_set(LG_EINPUT, "%s: layers x dimension %lld x %lld empty or too large", ds->path,
                                (long long)info.shape[1], (long long)info.shape[2]);
        ds->layers = (int)info.shape[1];
    } else if (info.shape[1] > INT32_MAX)
        return lg_error_set(LG_EINPUT, "%s: dimension %lld too large", ds->path, (long long)info.shape[1]);
    ds->dtype = info.dtype;
    ds->n = info.shape[0];
    ds->d = (int)(info.ndim == 3 ? info.shape[1] * info.shape[2] : info.shape[1]);
    ds->rows = (const unsigned char *)ds->map + info.data_offset;
    return 0;
}

static int open_safetensors(lg_dataset *ds, const char *tensor_name)
{
    lg_tensor_view v;
    int err = lg_st_open_memory(ds->map, ds->map_len, ds->path, &ds->st);
    if (err < 0)
        return err;
    if (tensor_name) {
        if ((err = lg_st_get(ds->st, tensor_name, &v)) < 0)
            return err;
    } else if (lg_st_count(ds->st) == 1) {
        if ((err = lg_st_at(ds->st, 0, &v)) < 0)
            return err;
    } else {
        return lg_error_set(LG_EINPUT, "%s: holds %zu tensors; name the one to use", ds->path,
                            lg_st_count(ds->st));
    }
    if (v.dtype != LG_DT_F32 && v.dtype != LG_DT_F16 && v.dtype != LG_DT_BF16 && v.dtype != LG_DT_F64)
        return lg_error_set(LG_EINPUT, "%s: tensor '%.64s' has dtype %s; want F32, F16, BF16 or F64", ds->path,
                            v.name, lg_dtype_name(v.dtype));
    if (v.ndim != 2 && v.ndim != 3)
        return lg_error_set(LG_EINPUT, "%s: tensor '%.64s' has %d dimensions; want a 2-D [n, d] array (or 3-D "
                            "[n, L, d] layers for routesae)", ds->path, v.name, v.ndim);
    if (v.ndim == 3) { /* [n, L, d]: each row is the L layers' activations, [L * d] row-major */
        if (v.shape[1] < 1 || v.shape[2] < 1 || v.shape[1] * v.shape[2] > INT32_MAX)
            return lg_error_set(LG_EINPUT, "%s: tensor '%.64s': layers x dimension %lld x %lld empty or too large",
                                ds->path, v.name, (long long)v.shape[1], (long long)v.shape[2]);
        ds->layers = (int)v.shape[1];
    } else if (v.shape[1] > INT32_MAX)
        return lg_error_set(LG_EINPUT, "%s: tensor '%.64s': dimension %lld too large", ds->path, v.name,
                            (long long)v.shape[1]);
    ds->dtype = v.dtype;
    ds->n = v.shape[0];
    ds->d = (int)(v.ndim == 3 ? v.shape[1] * v.shape[2] : v.shape[1]);
    ds->rows = v.data;
    return 0;
}

int lg_dataset_open_file(const char *path, const char *tensor_name, lg_dataset **out)
{
    lg_dataset *ds = NULL;
    struct stat st;
    int fd = -1, err;

    *out = NULL;
    if ((err = data_ds_new(DS_FILE, &ds)) < 0)
        return err;
    if (!(ds->path = lg_strdup(path))) {
        err = LG_ENOMEM;
        goto out;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = lg_error_set(errno == ENOENT ? LG_ENOTFOUND : LG_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        err = lg_error_set(LG_EINPUT, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size < 8) {
        err = lg_error_set(LG_EINPUT, "%s: too short (%lld bytes) for a .npy or .safetensors file", path,
                           (long long)st.st_size);
        goto out;
    }
    ds->map_len = (size_t)st.st_size;
    ds->map = mmap(NULL, ds->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (ds->map == MAP_FAILED) {
        ds->map = NULL;
        err = lg_error_set(LG_EIO, "%s: mmap: %s", path, strerror(errno));
        goto out;
    }
    /* Recognise the format by its first bytes: .npy starts with \x93NUMPY
     * (a damaged magic still goes to the npy parser, which names the
     * defect); safetensors has its JSON header's '{' at offset 8. */
    if (((const unsigned char *)ds->map)[0] == 0x93) {
        if (tensor_name) {
            err = lg_error_set(LG_EINPUT, "%s: a .npy file holds one array; no tensor name '%.64s' applies", path,
                               tensor_name);
            goto out;
        }
        err = open_npy(ds);
    } else if (((const unsigned char *)ds->map)[8] == '{') {
        err = open_safetensors(ds, tensor_name);
    } else {
        err = lg_error_set(LG_EINPUT, "%s: neither a .npy nor a .safetensors file (unrecognised first bytes)", path);
    }
    if (err < 0)
        goto out;
    if (ds->n < 1 || ds->d < 1) {
        err = lg_error_set(LG_EINPUT, "%s: empty array [%lld, %d]", path, (long long)ds->n, ds->d);
        goto out;
    }
    err = ds_check_finite(ds, path);
out:
    if (fd >= 0)
        close(fd);
    if (err < 0)
        lg_dataset_free(ds);
    else
        *out = ds;
    return err;
}

int lg_dataset_from_memory(const float *x, int64_t n, int d, int copy, lg_dataset **out)
{
    lg_dataset *ds = NULL;
    int err;

    *out = NULL;
    if (n < 1 || d < 1 || !x)
        return lg_error_set(LG_EINPUT, "memory data: need n >= 1 and d >= 1 (got [%lld, %d])", (long long)n, d);
    if ((uint64_t)n > (uint64_t)SIZE_MAX / sizeof(float) / (uint64_t)d)
        return lg_error_set(LG_EINPUT, "memory data: [%lld, %d] too large", (long long)n, d);
    if ((err = data_ds_new(DS_MEMORY, &ds)) < 0)
        return err;
    ds->n = n;
    ds->d = d;
    ds->dtype = LG_DT_F32;
    if (copy) {
        if (!(ds->owned = lg_malloc((size_t)n * (size_t)d * sizeof(float)))) {
            err = LG_ENOMEM;
            goto out;
        }
        memcpy(ds->owned, x, (size_t)n * (size_t)d * sizeof(float));
        ds->rows = (const unsigned char *)ds->owned;
    } else {
        ds->rows = (const unsigned char *)x;
    }
    err = ds_check_finite(ds, "memory data");
out:
    if (err < 0)
        lg_dataset_free(ds);
    else
        *out = ds;
    return err;
}

/* ---- reads -------------------------------------------------------------------- */

int lg_dataset_gather(const lg_dataset *ds, const int64_t *rows, int n, float *out)
{
    int i, err;
    for (i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= ds->n)
            return lg_error_set(LG_EINPUT, "dataset: row index %lld out of range [0, %lld)", (long long)rows[i],
                                (long long)ds->n);
        if ((err = lg_convert_to_f32(ds->dtype, row_ptr(ds, rows[i]), (size_t)ds->d,
                                     out + (size_t)i * (size_t)ds->d)) < 0)
            return err;
        ds_drop_rows(ds, rows[i], rows[i]); /* large files: do not keep the row's folio mapped */
    }
    return 0;
}

/* Visit the selected rows in chunks of CHUNK_ROWS as float32 [nr, d]. */
typedef void (*chunk_fn)(void *ctx, const float *x, int64_t nr, int d);

static int for_each_chunk(const lg_dataset *ds, const int64_t *rows, int64_t n, chunk_fn fn, void *ctx,
                          float *buf /* [CHUNK_ROWS, d] */)
{
    int64_t r0;
    int err;
    for (r0 = 0; r0 < n; r0 += CHUNK_ROWS) {
        int64_t nr = n - r0 < CHUNK_ROWS ? n - r0 : CHUNK_ROWS;
        if (rows)
            err = lg_dataset_gather(ds, rows + r0, (int)nr, buf);
        else
            err = lg_convert_to_f32(ds->dtype, row_ptr(ds, r0), (size_t)nr * (size_t)ds->d, buf);
        if (err < 0)
            return err;
        fn(ctx, buf, nr, ds->d);
        if (!rows) /* (gathered rows were dropped one by one) */
            ds_drop_rows(ds, r0, r0 + nr - 1);
    }
    return 0;
}

static void add_rows(void *ctx, const float *x, int64_t nr, int d)
{
    double *acc = ctx; /* [d] */
    int64_t r;
    int j;
    for (r = 0; r < nr; r++)
        for (j = 0; j < d; j++)
            acc[j] += x[r * d + j];
}

static int select_rows(const lg_dataset *ds, const int64_t *rows, int64_t *n)
{
    if (!rows)
        *n = ds->n;
    if (*n < 1)
        return lg_error_set(LG_EINPUT, "dataset: need at least one row (got %lld)", (long long)*n);
    return 0;
}

int lg_dataset_mean(const lg_dataset *ds, const int64_t *rows, int64_t n, double *out)
{
    float *buf = NULL;
    int j, err;
    if ((err = select_rows(ds, rows, &n)) < 0)
        return err;
    if (!(buf = lg_malloc((size_t)CHUNK_ROWS * (size_t)ds->d * sizeof(float))))
        return LG_ENOMEM;
    memset(out, 0, (size_t)ds->d * sizeof(double));
    if ((err = for_each_chunk(ds, rows, n, add_rows, out, buf)) >= 0)
        for (j = 0; j < ds->d; j++)
            out[j] /= (double)n;
    lg_free(buf);
    return err;
}

typedef struct {
    const double *y; /* [d] current estimate */
    double *num;     /* [d] sum of w_i x_i */
    double den;      /* sum of w_i */
    double floor_;   /* smallest distance used */
} weiszfeld_ctx;

static void weiszfeld_rows(void *ctx, const float *x, int64_t nr, int d)
{
    weiszfeld_ctx *c = ctx;
    int64_t r;
    int j;
    for (r = 0; r < nr; r++) {
        const float *xr = x + r * d;
        double dist = 0.0, w;
        for (j = 0; j < d; j++) {
            double t = xr[j] - c->y[j];
            dist += t * t;
        }
        dist = sqrt(dist);
        w = 1.0 / (dist > c->floor_ ? dist : c->floor_);
        for (j = 0; j < d; j++)
            c->num[j] += w * xr[j];
        c->den += w;
    }
}

int lg_dataset_geometric_median(const lg_dataset *ds, const int64_t *rows, int64_t n, int iters, float *out)
{
    double *y = NULL, *num = NULL; /* [d] each */
    float *buf = NULL;
    weiszfeld_ctx c;
    int it, j, err, d = ds->d;

    if ((err = select_rows(ds, rows, &n)) < 0)
        return err;
    if (iters < 0)
        return lg_error_set(LG_EINPUT, "geometric median: iters must be >= 0 (got %d)", iters);
    if (!(y = lg_calloc((size_t)d, sizeof(double))) || !(num = lg_calloc((size_t)d, sizeof(double))) ||
        !(buf = lg_malloc((size_t)CHUNK_ROWS * (size_t)d * sizeof(float)))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = lg_dataset_mean(ds, rows, n, y)) < 0)
        goto out;
    for (it = 0; it < iters; it++) {
        double ynorm = 0.0, step = 0.0;
        for (j = 0; j < d; j++)
            ynorm += y[j] * y[j];
        ynorm = sqrt(ynorm);
        memset(num, 0, (size_t)d * sizeof(double));
        c.y = y;
        c.num = num;
        c.den = 0.0;
        c.floor_ = 1e-12 * (1.0 + ynorm);
        if ((err = for_each_chunk(ds, rows, n, weiszfeld_rows, &c, buf)) < 0)
            goto out;
        for (j = 0; j < d; j++) {
            double v = num[j] / c.den, t = v - y[j];
            step += t * t;
            y[j] = v;
        }
        if (sqrt(step) < 1e-9 * (1.0 + ynorm))
            break;
    }
    for (j = 0; j < d; j++)
        out[j] = (float)y[j];
out:
    lg_free(y);
    lg_free(num);
    lg_free(buf);
    return err;
}

/* ---- digest ------------------------------------------------------------------- */

static int synth_canonical(const lg_synth_config *c, char *buf, size_t n)
{
    int k = snprintf(buf, n,
                     "ledger-synth-v1\nd=%d\nn_features=%d\nn_samples=%lld\nactive_mean=%.17g\n"
                     "zipf_exponent=%.17g\nmagnitude_mean=%.17g\nmagnitude_std=%.17g\nnoise_std=%.17g\n"
                     "seed=%llu\n",
                     c->d, c->n_features, (long long)c->n_samples, c->active_mean, c->zipf_exponent,
                     c->magnitude_mean, c->magnitude_std, c->noise_std, (unsigned long long)c->seed);
    if (k > 0 && (size_t)k < n && c->layers > 0) { /* layered data (data.h); 2-D digests stay as they were */
        int k2 = snprintf(buf + k, n - (size_t)k, "layers=%d\nlayer_leak=%.17g\n", c->layers, c->layer_leak);
        k = k2 > 0 && (size_t)k2 < n - (size_t)k ? k + k2 : -1;
    }
    return k > 0 && (size_t)k < n ? k : -1;
}

int lg_dataset_digest(const lg_dataset *ds, char hex[65])
{
    switch (ds->kind) {
    case DS_FILE: { /* the mapped bytes, 64 MiB at a time, each span's pages dropped after hashing */
        lg_sha256 h = {0};
        size_t off, step = (size_t)64 << 20;
        int err = lg_sha256_init(&h);
        for (off = 0; err >= 0 && off < ds->map_len; off += step) {
            size_t m = ds->map_len - off < step ? ds->map_len - off : step;
            err = lg_sha256_update(&h, (const unsigned char *)ds->map + off, m);
            if (ds->map_len >= DROP_MIN_FILE) /* step is a multiple of the page size */
                (void)madvise((unsigned char *)ds->map + off, m, MADV_DONTNEED);
        }
        if (err < 0) {
            lg_sha256_release(&h);
            return err;
        }
        return lg_sha256_final(&h, hex);
    }
    case DS_MEMORY: {
        lg_buf hdr = LG_BUF_INIT;
        int64_t shape[2] = {ds->n, ds->d};
        int err = lg_npy_header_f32(&hdr, 2, shape);
        if (err >= 0)
            err = sha256_2(hdr.ptr, hdr.len, ds->rows, (size_t)ds->n * (size_t)ds->d * sizeof(float), hex);
        lg_buf_release(&hdr);
        return err;
    }
    default: {
        char text[512];
        int k = synth_canonical(&ds->synth, text, sizeof(text));
        if (k < 0)
            return lg_error_set(LG_EINTERNAL, "synthetic: canonical config too long");
        return sha256_2(text, (size_t)k, NULL, 0, hex);
    }
    }
}

/* ---- held-out split ----------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int lg_dataset_split(int64_t n, double eval_fraction, uint64_t seed, int64_t **train_rows, int64_t *n_train,
                     int64_t **eval_rows, int64_t *n_eval)
{
    int64_t *perm = NULL, *tr = NULL, *ev = NULL, ne, i;
    lg_rng rng;
    int err = 0;

    *train_rows = *eval_rows = NULL;
    *n_train = *n_eval = 0;
    if (n < 1)
        return lg_error_set(LG_EINPUT, "split: need at least one row (got %lld)", (long long)n);
    if (!(eval_fraction >= 0.0 && eval_fraction < 1.0))
        return lg_error_set(LG_EINPUT, "split: eval_fraction %g not in [0, 1)", eval_fraction);
    ne = (int64_t)llround((double)n * eval_fraction);
    if (eval_fraction > 0.0 && ne < 1)
        ne = 1;
    if (ne > n - 1)
        ne = n - 1;
    if (!(perm = lg_malloc((size_t)n * sizeof(int64_t))) || !(tr = lg_malloc((size_t)(n - ne) * sizeof(int64_t))) ||
        !(ev = lg_malloc((size_t)(ne ? ne : 1) * sizeof(int64_t)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < n; i++)
        perm[i] = i;
    lg_rng_init(&rng, seed, LG_STREAM_SPLIT);
    lg_rng_shuffle_i64(&rng, perm, n);
    memcpy(ev, perm, (size_t)ne * sizeof(int64_t));
    memcpy(tr, perm + ne, (size_t)(n - ne) * sizeof(int64_t));
    qsort(ev, (size_t)ne, sizeof(int64_t), cmp_i64);
    qsort(tr, (size_t)(n - ne), sizeof(int64_t), cmp_i64);
out:
    lg_free(perm);
    if (err < 0) {
        lg_free(tr);
        lg_free(ev);
        return err;
    }
    *train_rows = tr;
    *n_train = n - ne;
    *eval_rows = ev;
    *n_eval = ne;
    return 0;
}
