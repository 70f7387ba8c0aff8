/*
 * tensor_tool.c - a small driver of artifacts/npy.h, artifacts/safetensors.h
 * and engine/data.h for tests/py/test_tensor_formats.py (NumPy is the
 * reference there). Not installed; not a ledger command.
 *
 *   tensor_tool dump FILE [NAME]           dtype, shape, metadata, values (%.9g, one row per line)
 *   tensor_tool npy2st IN.npy OUT.st [NAME] .npy -> float32 safetensors (tensor NAME, default "x")
 *   tensor_tool st2npy IN.st NAME OUT.npy   float tensor (1-D or 2-D) -> float32 .npy
 *   tensor_tool check FILE [NAME]           open as a dataset: rows, dim, dtype, digest
 *   tensor_tool stats FILE [NAME]           dataset mean and geometric median (100 iterations)
 *   tensor_tool synth D F N ACTIVE ZIPF SEED OUT.npy [NOISE]
 *                                           synthetic data -> .npy (+ OUT.npy.truth.npy); prints digest
 *   tensor_tool split N FRACTION SEED       eval rows, one line
 *
 * Exit codes follow the CLI contract (lg_exit_code); errors are one line on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "artifacts/npy.h"
#include "artifacts/safetensors.h"
#include "engine/data.h"

static int is_npy(const char *path)
{
    char magic[6] = {0};
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f)
        return 0;
    n = fread(magic, 1, 6, f);
    fclose(f);
    return n == 6 && memcmp(magic, "\x93NUMPY", 6) == 0;
}

static void print_values(const float *x, int64_t rows, int64_t cols)
{
    int64_t i, j;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++)
            printf("%.9g%c", x[i * cols + j], j + 1 == cols ? '\n' : ' ');
}

static int cmd_dump(int argc, char **argv)
{
    lg_st_file *st = NULL;
    lg_tensor_view v;
    lg_npy_info info;
    float *x = NULL;
    size_t i, count = 1;
    int err, k;

    if (argc < 1)
        return lg_error_set(LG_EINPUT, "usage: dump FILE [NAME]");
    if (is_npy(argv[0])) {
        if ((err = lg_npy_read_f32(argv[0], &x, &info)) < 0)
            return err;
        printf("dtype %s\nshape", lg_dtype_name(info.dtype));
        for (k = 0; k < info.ndim; k++)
            printf(" %lld", (long long)info.shape[k]);
        printf("\n");
        print_values(x, info.shape[0], info.ndim == 2 ? info.shape[1] : 1);
        lg_free(x);
        return 0;
    }
    if ((err = lg_st_open(argv[0], &st)) < 0)
        return err;
    for (i = 0; i < lg_st_meta_count(st); i++) {
        const char *key, *val;
        lg_st_meta_at(st, i, &key, &val);
        printf("meta %s %s\n", key, val);
    }
    if (argc < 2) {
        for (i = 0; i < lg_st_count(st); i++) {
            lg_st_at(st, i, &v);
            printf("tensor %s %s", v.name, lg_dtype_name(v.dtype));
            for (k = 0; k < v.ndim; k++)
                printf(" %lld", (long long)v.shape[k]);
            printf("\n");
        }
        goto out;
    }
    if ((err = lg_st_get(st, argv[1], &v)) < 0)
        goto out;
    for (k = 0; k < v.ndim; k++)
        count *= (size_t)v.shape[k];
    if (!(x = lg_malloc(count * sizeof(float)))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = lg_convert_to_f32(v.dtype, v.data, count, x)) < 0)
        goto out;
    printf("dtype %s\nshape", lg_dtype_name(v.dtype));
    for (k = 0; k < v.ndim; k++)
        printf(" %lld", (long long)v.shape[k]);
    printf("\n");
    print_values(x, v.ndim ? v.shape[0] : 1, v.ndim == 2 ? v.shape[1] : 1);
out:
    lg_free(x);
    lg_st_close(st);
    return err;
}

static int cmd_npy2st(int argc, char **argv)
{
    static const char *const meta[] = {"format", "pt", "source", "tensor_tool npy2st"};
    lg_npy_info info;
    lg_tensor_f32 t;
    float *x = NULL;
    int err;
    if (argc < 2)
        return lg_error_set(LG_EINPUT, "usage: npy2st IN.npy OUT.safetensors [NAME]");
    if ((err = lg_npy_read_f32(argv[0], &x, &info)) < 0)
        return err;
    memset(&t, 0, sizeof(t));
    t.name = argc > 2 ? argv[2] : "x";
    t.ndim = info.ndim;
    t.shape[0] = info.shape[0];
    t.shape[1] = info.shape[1];
    t.data = x;
    err = lg_st_write(argv[1], &t, 1, meta, 2);
    lg_free(x);
    return err;
}

static int cmd_st2npy(int argc, char **argv)
{
    lg_st_file *st = NULL;
    lg_tensor_view v;
    float *x = NULL;
    size_t count;
    int err;
    if (argc < 3)
        return lg_error_set(LG_EINPUT, "usage: st2npy IN.safetensors NAME OUT.npy");
    if ((err = lg_st_open(argv[0], &st)) < 0)
        return err;
    if ((err = lg_st_get(st, argv[1], &v)) < 0)
        goto out;
    if (v.ndim != 1 && v.ndim != 2) {
        err = lg_error_set(LG_EINPUT, "%s: tensor '%s' is %d-D; .npy output takes 1-D or 2-D", argv[0], argv[1],
                           v.ndim);
        goto out;
    }
    count = (size_t)v.shape[0] * (v.ndim == 2 ? (size_t)v.shape[1] : 1);
    if (!(x = lg_malloc(count * sizeof(float)))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = lg_convert_to_f32(v.dtype, v.data, count, x)) < 0)
        goto out;
    err = lg_npy_write_f32(argv[2], x, v.ndim, v.shape);
out:
    lg_free(x);
    lg_st_close(st);
    return err;
}

static int cmd_check(int argc, char **argv)
{
    lg_dataset *ds = NULL;
    char hex[65];
    int err;
    if (argc < 1)
        return lg_error_set(LG_EINPUT, "usage: check FILE [NAME]");
    if ((err = lg_dataset_open_file(argv[0], argc > 1 ? argv[1] : NULL, &ds)) < 0)
        return err;
    if ((err = lg_dataset_digest(ds, hex)) >= 0)
        printf("rows %lld\ndim %d\ndtype %s\ndigest %s\n", (long long)lg_dataset_rows(ds), lg_dataset_dim(ds),
               lg_dtype_name(lg_dataset_dtype(ds)), hex);
    lg_dataset_free(ds);
    return err;
}

static int cmd_stats(int argc, char **argv)
{
    lg_dataset *ds = NULL;
    double *mean = NULL;
    float *med = NULL;
    int j, d, err;
    if (argc < 1)
        return lg_error_set(LG_EINPUT, "usage: stats FILE [NAME]");
    if ((err = lg_dataset_open_file(argv[0], argc > 1 ? argv[1] : NULL, &ds)) < 0)
        return err;
    d = lg_dataset_dim(ds);
    if (!(mean = lg_malloc((size_t)d * sizeof(double))) || !(med = lg_malloc((size_t)d * sizeof(float)))) {
        err = LG_ENOMEM;
        goto out;
    }
    if ((err = lg_dataset_mean(ds, NULL, 0, mean)) < 0 ||
        (err = lg_dataset_geometric_median(ds, NULL, 0, 100, med)) < 0)
        goto out;
    printf("mean");
    for (j = 0; j < d; j++)
        printf(" %.17g", mean[j]);
    printf("\nmedian");
    for (j = 0; j < d; j++)
        printf(" %.9g", med[j]);
    printf("\n");
out:
    lg_free(mean);
    lg_free(med);
    lg_dataset_free(ds);
    return err;
}

static int parse_num(const char *s, double *out, const char *what)
{
    if (lg_parse_double(s, out) < 0)
        return lg_error_set(LG_EINPUT, "%s: '%s' is not a number", what, s);
    return 0;
}

static int cmd_synth(int argc, char **argv)
{
    lg_synth_config c;
    lg_dataset *ds = NULL;
    float *truth = NULL, *x = NULL;
    int64_t *rows = NULL, i, shape[2];
    lg_buf tpath = LG_BUF_INIT;
    double v[7];
    char hex[65];
    int k, err = 0;
    static const char *names[] = {"D", "F", "N", "ACTIVE", "ZIPF", "SEED", "NOISE"};

    if (argc < 7)
        return lg_error_set(LG_EINPUT, "usage: synth D F N ACTIVE ZIPF SEED OUT.npy [NOISE]");
    v[6] = 0.0;
    for (k = 0; k < 7; k++) {
        if (k == 6 && argc < 8)
            break;
        if ((err = parse_num(argv[k < 6 ? k : 7], &v[k], names[k])) < 0)
            return err;
    }
    memset(&c, 0, sizeof(c));
    c.d = (int)v[0];
    c.n_features = (int)v[1];
    c.n_samples = (int64_t)v[2];
    c.active_mean = v[3];
    c.zipf_exponent = v[4];
    c.seed = (uint64_t)v[5];
    c.magnitude_mean = 1.0;
    c.magnitude_std = 0.25;
    c.noise_std = v[6];
    if ((err = lg_dataset_synthetic(&c, &ds, &truth)) < 0)
        return err;
    if (!(x = lg_malloc((size_t)c.n_samples * (size_t)c.d * sizeof(float))) ||
        !(rows = lg_malloc((size_t)c.n_samples * sizeof(int64_t)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < c.n_samples; i++)
        rows[i] = i;
    if ((err = lg_dataset_gather(ds, rows, (int)c.n_samples, x)) < 0)
        goto out;
    shape[0] = c.n_samples;
    shape[1] = c.d;
    if ((err = lg_npy_write_f32(argv[6], x, 2, shape)) < 0)
        goto out;
    shape[0] = c.n_features;
    if ((err = lg_buf_printf(&tpath, "%s.truth.npy", argv[6])) < 0 ||
        (err = lg_npy_write_f32(tpath.ptr, truth, 2, shape)) < 0)
        goto out;
    if ((err = lg_dataset_digest(ds, hex)) >= 0)
        printf("digest %s\n", hex);
out:
    lg_buf_release(&tpath);
    lg_free(x);
    lg_free(rows);
    lg_free(truth);
    lg_dataset_free(ds);
    return err;
}

static int cmd_split(int argc, char **argv)
{
    int64_t *tr = NULL, *ev = NULL, ntr, nev, i;
    double n, frac, seed;
    int err;
    if (argc < 3)
        return lg_error_set(LG_EINPUT, "usage: split N FRACTION SEED");
    if ((err = parse_num(argv[0], &n, "N")) < 0 || (err = parse_num(argv[1], &frac, "FRACTION")) < 0 ||
        (err = parse_num(argv[2], &seed, "SEED")) < 0)
        return err;
    if ((err = lg_dataset_split((int64_t)n, frac, (uint64_t)seed, &tr, &ntr, &ev, &nev)) < 0)
        return err;
    for (i = 0; i < nev; i++)
        printf(i ? " %lld" : "%lld", (long long)ev[i]);
    printf("\n");
    lg_free(tr);
    lg_free(ev);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        {"dump", cmd_dump}, {"npy2st", cmd_npy2st}, {"st2npy", cmd_st2npy}, {"check", cmd_check},
        {"stats", cmd_stats}, {"synth", cmd_synth}, {"split", cmd_split},
    };
    size_t i;
    int err = LG_EINPUT;
    if (argc < 2) {
        fprintf(stderr, "usage: tensor_tool dump|npy2st|st2npy|check|stats|synth|split ARGS\n");
        return 2;
    }
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            break;
    if (i == sizeof(cmds) / sizeof(cmds[0])) {
        fprintf(stderr, "tensor_tool: unknown command '%s'\n", argv[1]);
        return 2;
    }
    err = cmds[i].fn(argc - 2, argv + 2);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "tensor_tool: error writing to stdout\n");
        return 3;
    }
    if (err < 0) {
        fprintf(stderr, "tensor_tool: %s\n", lg_error_msg());
        return lg_exit_code(err);
    }
    return 0;
}
