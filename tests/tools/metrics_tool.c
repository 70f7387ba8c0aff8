/*
 * metrics_tool.c - a thin CLI over engine/hungarian.h and engine/consistency.h
 * for the reference tests in tests/py/test_metrics_scipy.py. Inputs are raw
 * little-endian arrays (float64 costs, float32 dictionaries) whose shapes are
 * given on the command line, so the Python side needs only numpy.tofile().
 *
 *   metrics_tool lsa [--max] ROWS COLS COST.f64
 *       prints "total <%.17g>" and "assign <col of row 0> <col of row 1> ..."
 *   metrics_tool sim [--abs] [--no-mcc] [--block N] [--threshold T] [--max-cells N] [--exact|--gemm]
 *                    [--maxcos PREFIX] M1 M2 D A.f32 B.f32
 *       prints "key value" lines (mmcs mmcs_ab mmcs_ba mcc shared_frac mcc_computed);
 *       --maxcos writes PREFIX.a.f32 [M1] and PREFIX.b.f32 [M2]
 *   metrics_tool recover [same options] NTRUE M D TRUTH.f32 SAE.f32
 *
 * Exit codes: 0 ok, 2 usage or bad input, 3 internal/I-O (lg_exit_code).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "engine/consistency.h"
#include "engine/hungarian.h"

static int usage(void)
{
    fprintf(stderr, "usage: metrics_tool lsa [--max] ROWS COLS COST.f64\n"
                    "       metrics_tool sim|recover [--abs] [--no-mcc] [--block N] "
                    "[--threshold T] [--max-cells N] [--exact|--gemm] [--maxcos PREFIX] M1 M2 D A.f32 B.f32\n");
    return 2;
}

/* Read exactly `count` elements of `size` bytes from `path` into a new array. */
static int read_raw(const char *path, size_t count, size_t size, void **out)
{
    lg_buf b = LG_BUF_INIT;
    int err;
    *out = NULL;
    if ((err = lg_file_read(path, 0, &b)) < 0)
        return err;
    if (b.len != count * size) {
        lg_buf_release(&b);
        return lg_error_set(LG_EINPUT, "%s: %zu bytes, expected %zu (%zu x %zu)", path, b.len,
                            count * size, count, size);
    }
    *out = lg_buf_detach(&b);
    if (!*out) { /* empty file for count == 0 */
        *out = lg_malloc(1);
        if (!*out)
            return LG_ENOMEM;
    }
    return 0;
}

static int write_floats(const char *prefix, const char *suffix, const float *x, size_t n)
{
    lg_buf path = LG_BUF_INIT;
    int err;
    if ((err = lg_buf_printf(&path, "%s%s", prefix, suffix)) < 0)
        goto out;
    err = lg_file_write_atomic(path.ptr, x, n * sizeof(float));
out:
    lg_buf_release(&path);
    return err;
}

static int parse_int(const char *s, const char *what, int *out)
{
    long v;
    if (lg_parse_long(s, &v) < 0 || v < 0 || v > 1000000000L)
        return lg_error_set(LG_EINPUT, "%s: bad value '%s'", what, s);
    *out = (int)v;
    return 0;
}

static int cmd_lsa(int argc, char **argv)
{
    int maximise = 0, rows, cols, err, i;
    double *cost = NULL, total;
    int *assign = NULL;
    if (argc > 0 && strcmp(argv[0], "--max") == 0)
        maximise = 1, argc--, argv++;
    if (argc != 3)
        return usage();
    if ((err = parse_int(argv[0], "ROWS", &rows)) < 0 || (err = parse_int(argv[1], "COLS", &cols)) < 0)
        goto out;
    if ((err = read_raw(argv[2], (size_t)rows * cols, sizeof(double), (void **)&cost)) < 0)
        goto out;
    assign = lg_malloc(((size_t)rows + 1) * sizeof(int));
    if (!assign) {
        err = LG_ENOMEM;
        goto out;
    }
    err = maximise ? lg_hungarian_solve_max(cost, rows, cols, assign, &total)
                   : lg_hungarian_solve(cost, rows, cols, assign, &total);
    if (err < 0) {
        lg_error_wrap("%s", argv[2]);
        goto out;
    }
    printf("total %.17g\nassign", total);
    for (i = 0; i < rows; i++)
        printf(" %d", assign[i]);
    printf("\n");
out:
    lg_free(cost);
    lg_free(assign);
    return err;
}

static int cmd_sim(int argc, char **argv, int recover)
{
    lg_sim_options opt;
    const char *prefix = NULL;
    int m1, m2, d, err;
    float *A = NULL, *B = NULL, *ma = NULL, *mb = NULL;
    lg_sim_options_init(&opt);
    while (argc > 0 && strncmp(argv[0], "--", 2) == 0) {
        if (strcmp(argv[0], "--abs") == 0) {
            opt.abs_cos = 1;
        } else if (strcmp(argv[0], "--gemm") == 0) {
            opt.method = LG_SIM_GEMM;
        } else if (strcmp(argv[0], "--exact") == 0) {
            opt.method = LG_SIM_EXACT;
        } else if (strcmp(argv[0], "--no-mcc") == 0) {
            opt.mcc = 0;
        } else if (argc > 1 && strcmp(argv[0], "--block") == 0) {
            if ((err = parse_int(argv[1], "--block", &opt.block_rows)) < 0)
                return err;
            argc--, argv++;
        } else if (argc > 1 && strcmp(argv[0], "--max-cells") == 0) {
            int v;
            if ((err = parse_int(argv[1], "--max-cells", &v)) < 0)
                return err;
            opt.mcc_max_cells = (size_t)v;
            argc--, argv++;
        } else if (argc > 1 && strcmp(argv[0], "--threshold") == 0) {
            if ((err = lg_parse_double(argv[1], &opt.shared_threshold)) < 0)
                return lg_error_set(LG_EINPUT, "--threshold: bad value '%s'", argv[1]);
            argc--, argv++;
        } else if (argc > 1 && strcmp(argv[0], "--maxcos") == 0) {
            prefix = argv[1];
            argc--, argv++;
        } else {
            return usage();
        }
        argc--, argv++;
    }
    if (argc != 5)
        return usage();
    if ((err = parse_int(argv[0], "M1", &m1)) < 0 || (err = parse_int(argv[1], "M2", &m2)) < 0 ||
        (err = parse_int(argv[2], "D", &d)) < 0)
        goto out;
    if ((err = read_raw(argv[3], (size_t)m1 * d, sizeof(float), (void **)&A)) < 0 ||
        (err = read_raw(argv[4], (size_t)m2 * d, sizeof(float), (void **)&B)) < 0)
        goto out;
    ma = lg_malloc(((size_t)m1 + 1) * sizeof(float));
    mb = lg_malloc(((size_t)m2 + 1) * sizeof(float));
    if (!ma || !mb) {
        err = LG_ENOMEM;
        goto out;
    }
    if (recover) {
        lg_truth_recovery r;
        if ((err = lg_dict_recovery(A, m1, B, m2, d, &opt, &r, ma)) < 0)
            goto out;
        printf("mmcs_truth %.17g\nmmcs_sae %.17g\nrecovered_frac %.17g\nmcc %.17g\n"
               "shared_frac %.17g\nmcc_computed %d\n",
               r.mmcs_truth, r.mmcs_sae, r.recovered_frac, r.mcc, r.shared_frac, r.mcc_computed);
        if (prefix && (err = write_floats(prefix, ".a.f32", ma, (size_t)m1)) < 0)
            goto out;
    } else {
        lg_dict_sim s;
        if ((err = lg_dict_similarity(A, m1, B, m2, d, &opt, &s, ma, mb)) < 0)
            goto out;
        printf("mmcs %.17g\nmmcs_ab %.17g\nmmcs_ba %.17g\nmcc %.17g\nshared_frac %.17g\n"
               "mcc_computed %d\n",
               s.mmcs, s.mmcs_ab, s.mmcs_ba, s.mcc, s.shared_frac, s.mcc_computed);
        if (prefix && ((err = write_floats(prefix, ".a.f32", ma, (size_t)m1)) < 0 ||
                       (err = write_floats(prefix, ".b.f32", mb, (size_t)m2)) < 0))
            goto out;
    }
out:
    lg_free(A);
    lg_free(B);
    lg_free(ma);
    lg_free(mb);
    return err;
}

int main(int argc, char **argv)
{
    int err;
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "lsa") == 0)
        err = cmd_lsa(argc - 2, argv + 2);
    else if (strcmp(argv[1], "sim") == 0)
        err = cmd_sim(argc - 2, argv + 2, 0);
    else if (strcmp(argv[1], "recover") == 0)
        err = cmd_sim(argc - 2, argv + 2, 1);
    else
        return usage();
    if (err > 0) /* usage() already printed */
        return err;
    if (err < 0) {
        fprintf(stderr, "metrics_tool: %s\n", lg_error_msg());
        return lg_exit_code(err);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "metrics_tool: error writing stdout\n");
        return 3;
    }
    return 0;
}
