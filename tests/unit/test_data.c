/* test_data.c - datasets from memory and files (f32/f16/bf16), NaN/Inf
 * rejection with row and column, mean and geometric median, digests, the
 * synthetic generator (determinism, statistics, the generative model) and
 * the held-out split. */
#include <unistd.h>

#include "base/base.h"
#include "artifacts/npy.h"
#include "artifacts/safetensors.h"
#include "engine/data.h"
#include "tests/unit/check.h"

static char tmpdir[] = "/tmp/lgdataXXXXXX";

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static void test_memory(void)
{
    float x[6] = {1, 2, 3, 4, 5, 6}, out[6];
    int64_t rows[3] = {2, 0, 2}, bad[1] = {3};
    double mean[2];
    lg_dataset *ds = NULL;
    CHECK_OK(lg_dataset_from_memory(x, 3, 2, 0, &ds));
    if (!ds)
        return;
    CHECK(lg_dataset_rows(ds) == 3 && lg_dataset_dim(ds) == 2);
    CHECK(strcmp(lg_dataset_kind(ds), "memory") == 0 && lg_dataset_path(ds) == NULL);
    CHECK_OK(lg_dataset_gather(ds, rows, 3, out));
    CHECK(out[0] == 5 && out[1] == 6 && out[2] == 1 && out[3] == 2 && out[4] == 5 && out[5] == 6);
    CHECK(lg_dataset_gather(ds, bad, 1, out) == LG_EINPUT);
    CHECK_OK(lg_dataset_mean(ds, NULL, 0, mean));
    CHECK(mean[0] == 3.0 && mean[1] == 4.0);
    CHECK_OK(lg_dataset_mean(ds, rows, 2, mean));
    CHECK(mean[0] == 3.0 && mean[1] == 4.0);
    CHECK_OK(lg_dataset_mean(ds, rows, 1, mean));
    CHECK(mean[0] == 5.0 && mean[1] == 6.0);
    CHECK(lg_dataset_mean(ds, rows, 0, mean) == LG_EINPUT);
    lg_dataset_free(ds);
    ds = NULL;

    x[3] = NAN;
    CHECK(lg_dataset_from_memory(x, 3, 2, 1, &ds) == LG_EINPUT);
    CHECK_MSG(strstr(lg_error_msg(), "row 1, column 1: NaN") != NULL, "%s", lg_error_msg());
    CHECK(ds == NULL);
    CHECK(lg_dataset_from_memory(x, 0, 2, 1, &ds) == LG_EINPUT);
}

/* The digest of memory data equals that of the .npy file holding it (two
 * code paths: header+floats vs the mapped file bytes). */
static void test_digest(void)
{
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {1, 2, 3, 4, 5, 6.0000005f};
    int64_t shape[2] = {3, 2};
    lg_dataset *a = NULL, *b = NULL, *c = NULL, *e = NULL;
    char ha[65], hb[65], hc[65], he[65], path[128];
    tmp_path(path, sizeof(path), "digest.npy");
    CHECK_OK(lg_npy_write_f32(path, x, 2, shape));
    CHECK_OK(lg_dataset_from_memory(x, 3, 2, 1, &a));
    CHECK_OK(lg_dataset_open_file(path, NULL, &b));
    CHECK_OK(lg_dataset_from_memory(y, 3, 2, 1, &c));
    CHECK_OK(lg_dataset_from_memory(x, 2, 3, 1, &e)); /* same floats, other shape */
    if (a && b && c && e) {
        CHECK_OK(lg_dataset_digest(a, ha));
        CHECK_OK(lg_dataset_digest(b, hb));
        CHECK_OK(lg_dataset_digest(c, hc));
        CHECK_OK(lg_dataset_digest(e, he));
        CHECK(strlen(ha) == 64 && strspn(ha, "0123456789abcdef") == 64);
        CHECK(strcmp(ha, hb) == 0);
        CHECK(strcmp(ha, hc) != 0);
        CHECK(strcmp(ha, he) != 0);
    }
    lg_dataset_free(a);
    lg_dataset_free(b);
    lg_dataset_free(c);
    lg_dataset_free(e);
    unlink(path);
}

static void test_files(void)
{
    /* [3, 2] in f32 (.npy), f16 and bf16 (.safetensors); all exact in each type */
    float x[6] = {1, -2, 0.5f, 3, -0.25f, 1024};
    uint16_t h16[6] = {0x3c00, 0xc000, 0x3800, 0x4200, 0xb400, 0x6400};
    uint16_t hb[6] = {0x3f80, 0xc000, 0x3f00, 0x4040, 0xbe80, 0x4480};
    int64_t shape[2] = {3, 2}, all[3] = {0, 1, 2};
    lg_tensor_view v[2];
    lg_dataset *ds = NULL;
    float out[6];
    char p1[128], p2[128];
    int k;

    tmp_path(p1, sizeof(p1), "x.npy");
    tmp_path(p2, sizeof(p2), "x.safetensors");
    CHECK_OK(lg_npy_write_f32(p1, x, 2, shape));
    memset(v, 0, sizeof(v));
    for (k = 0; k < 2; k++) {
        v[k].name = k ? "bf" : "half";
        v[k].dtype = k ? LG_DT_BF16 : LG_DT_F16;
        v[k].ndim = 2;
        v[k].shape[0] = 3;
        v[k].shape[1] = 2;
        v[k].data = k ? hb : h16;
        v[k].nbytes = 12;
    }
    CHECK_OK(lg_st_write_views(p2, v, 2, NULL, 0));

    CHECK_OK(lg_dataset_open_file(p1, NULL, &ds));
    if (ds) {
        CHECK(lg_dataset_dtype(ds) == LG_DT_F32 && strcmp(lg_dataset_path(ds), p1) == 0);
        CHECK_OK(lg_dataset_gather(ds, all, 3, out));
        CHECK(memcmp(out, x, sizeof(x)) == 0);
    }
    lg_dataset_free(ds);
    ds = NULL;
    for (k = 0; k < 2; k++) {
        CHECK_OK(lg_dataset_open_file(p2, k ? "bf" : "half", &ds));
        if (ds) {
            CHECK(lg_dataset_dtype(ds) == (k ? LG_DT_BF16 : LG_DT_F16));
            CHECK(lg_dataset_rows(ds) == 3 && lg_dataset_dim(ds) == 2);
            CHECK_OK(lg_dataset_gather(ds, all, 3, out));
            CHECK_MSG(memcmp(out, x, sizeof(x)) == 0, "%s values differ", k ? "bf16" : "f16");
        }
        lg_dataset_free(ds);
        ds = NULL;
    }
    /* two tensors and no name; an unknown name; a name for an .npy */
    CHECK(lg_dataset_open_file(p2, NULL, &ds) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "holds 2 tensors") != NULL);
    CHECK(lg_dataset_open_file(p2, "nope", &ds) == LG_ENOTFOUND);
    CHECK(strstr(lg_error_msg(), p2) != NULL);
    CHECK(lg_dataset_open_file(p1, "x", &ds) == LG_EINPUT);

    /* an Inf in the bf16 tensor, a NaN in the f16 one: named by row and column */
    hb[5] = 0xff80;
    h16[2] = 0x7e00;
    CHECK_OK(lg_st_write_views(p2, v, 2, NULL, 0));
    CHECK(lg_dataset_open_file(p2, "bf", &ds) == LG_EINPUT);
    CHECK_MSG(strstr(lg_error_msg(), p2) && strstr(lg_error_msg(), "row 2, column 1: infinite"), "%s",
              lg_error_msg());
    CHECK(lg_dataset_open_file(p2, "half", &ds) == LG_EINPUT);
    CHECK_MSG(strstr(lg_error_msg(), "row 1, column 0: NaN"), "%s", lg_error_msg());
    CHECK(ds == NULL);

    /* 1-D, 3-D, integer tensors, empty arrays, truncated files are refused */
    CHECK_OK(lg_npy_write_f32(p1, x, 1, shape + 1));
    CHECK(lg_dataset_open_file(p1, NULL, &ds) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "1-D") != NULL);
    {
        int64_t ids[2] = {1, 2}, zero_shape[2] = {0, 4};
        lg_tensor_view w;
        memset(&w, 0, sizeof(w));
        w.name = "ids";
        w.dtype = LG_DT_I64;
        w.ndim = 2;
        w.shape[0] = 1;
        w.shape[1] = 2;
        w.data = ids;
        w.nbytes = 16;
        CHECK_OK(lg_st_write_views(p2, &w, 1, NULL, 0));
        CHECK(lg_dataset_open_file(p2, NULL, &ds) == LG_EINPUT);
        CHECK(strstr(lg_error_msg(), "dtype I64") != NULL);
        w.dtype = LG_DT_F32;
        w.ndim = 4; /* 3-D is layered data (lg_dataset_layers); 4-D is refused */
        w.shape[2] = 1;
        w.shape[3] = 1;
        w.data = x;
        w.nbytes = 8;
        CHECK_OK(lg_st_write_views(p2, &w, 1, NULL, 0));
        CHECK(lg_dataset_open_file(p2, NULL, &ds) == LG_EINPUT);
        CHECK(strstr(lg_error_msg(), "4 dimensions") != NULL);
        w.ndim = 3; /* [1, 2, 1]: one row of 2 layers of width 1 */
        CHECK_OK(lg_st_write_views(p2, &w, 1, NULL, 0));
        CHECK_OK(lg_dataset_open_file(p2, NULL, &ds));
        CHECK(ds && lg_dataset_layers(ds) == 2 && lg_dataset_dim(ds) == 2 && lg_dataset_rows(ds) == 1);
        lg_dataset_free(ds);
        ds = NULL;
        CHECK_OK(lg_npy_write_f32(p1, x, 2, zero_shape));
        CHECK(lg_dataset_open_file(p1, NULL, &ds) == LG_EINPUT);
        CHECK(strstr(lg_error_msg(), "empty") != NULL);
    }
    {
        lg_buf b = LG_BUF_INIT;
        CHECK_OK(lg_npy_encode_f32(&b, x, 2, shape));
        CHECK_OK(lg_file_write_atomic(p1, b.ptr, b.len - 1));
        CHECK(lg_dataset_open_file(p1, NULL, &ds) == LG_EINPUT);
        CHECK(strstr(lg_error_msg(), p1) && strstr(lg_error_msg(), "truncated"));
        CHECK_OK(lg_file_write_atomic(p1, "garbage!garbage!", 16));
        CHECK(lg_dataset_open_file(p1, NULL, &ds) == LG_EINPUT);
        CHECK(strstr(lg_error_msg(), "neither a .npy nor a .safetensors") != NULL);
        CHECK_OK(lg_file_write_atomic(p1, "tiny", 4));
        CHECK(lg_dataset_open_file(p1, NULL, &ds) == LG_EINPUT);
        CHECK(strstr(lg_error_msg(), "too short") != NULL);
        lg_buf_release(&b);
    }
    CHECK(lg_dataset_open_file("/nonexistent/x.npy", NULL, &ds) == LG_ENOTFOUND);
    unlink(p1);
    unlink(p2);
}

static double sum_dist(const float *pts, int n, int d, const double *y)
{
    double s = 0.0;
    int i, j;
    for (i = 0; i < n; i++) {
        double t = 0.0;
        for (j = 0; j < d; j++)
            t += (pts[i * d + j] - y[j]) * (pts[i * d + j] - y[j]);
        s += sqrt(t);
    }
    return s;
}

static void test_geometric_median(void)
{
    /* collinear: the median of {0, 1, 10} on a line is 1 */
    float line[6] = {0, 0, 1, 0, 10, 0};
    /* a cluster and an outlier: the median stays with the cluster, the mean does not */
    float pts[12] = {0, 0, 1, 0, 0, 1, 1, 1, 0.2f, 0.7f, 100, 100};
    float med[2];
    double mean[2], y[2];
    lg_dataset *ds = NULL;
    int dx, dy;

    CHECK_OK(lg_dataset_from_memory(line, 3, 2, 0, &ds));
    CHECK_OK(lg_dataset_geometric_median(ds, NULL, 0, 500, med));
    CHECK_CLOSE(med[0], 1.0, 1e-3, 0);
    CHECK_CLOSE(med[1], 0.0, 1e-6, 0);
    CHECK_OK(lg_dataset_geometric_median(ds, NULL, 0, 0, med)); /* 0 iterations = mean */
    CHECK_CLOSE(med[0], 11.0 / 3.0, 1e-6, 0);
    lg_dataset_free(ds);

    CHECK_OK(lg_dataset_from_memory(pts, 6, 2, 0, &ds));
    CHECK_OK(lg_dataset_geometric_median(ds, NULL, 0, 200, med));
    CHECK_OK(lg_dataset_mean(ds, NULL, 0, mean));
    y[0] = med[0];
    y[1] = med[1];
    /* it minimises the sum of distances: no better than the mean or a nearby point */
    CHECK(sum_dist(pts, 6, 2, y) < sum_dist(pts, 6, 2, mean));
    for (dx = -1; dx <= 1; dx++)
        for (dy = -1; dy <= 1; dy++) {
            double z[2] = {y[0] + 1e-3 * dx, y[1] + 1e-3 * dy};
            CHECK(sum_dist(pts, 6, 2, y) <= sum_dist(pts, 6, 2, z) + 1e-9);
        }
    /* reference: scipy.optimize.minimize (Nelder-Mead, xatol 1e-10) of the sum of distances */
    CHECK_CLOSE(med[0], 0.38236073, 1e-5, 0);
    CHECK_CLOSE(med[1], 0.71522601, 1e-5, 0);
    CHECK(lg_dataset_geometric_median(ds, NULL, 0, -1, med) == LG_EINPUT);
    lg_dataset_free(ds);
}

static lg_synth_config base_config(void)
{
    lg_synth_config c;
    memset(&c, 0, sizeof(c));
    c.d = 16;
    c.n_features = 64; /* superposition: 64 directions in 16 dimensions */
    c.n_samples = 500;
    c.active_mean = 4;
    c.zipf_exponent = 1.0;
    c.magnitude_mean = 1.0;
    c.magnitude_std = 0.2;
    c.noise_std = 0.01;
    c.seed = 1234;
    return c;
}

static float *all_rows(const lg_dataset *ds)
{
    int64_t n = lg_dataset_rows(ds), i, *rows = lg_malloc((size_t)n * sizeof(int64_t));
    float *x = lg_malloc((size_t)n * (size_t)lg_dataset_dim(ds) * sizeof(float));
    for (i = 0; i < n; i++)
        rows[i] = i;
    if (lg_dataset_gather(ds, rows, (int)n, x) < 0) {
        lg_free(x);
        x = NULL;
    }
    lg_free(rows);
    return x;
}

static void test_synth_determinism(void)
{
    lg_synth_config c = base_config();
    lg_dataset *a = NULL, *b = NULL, *e = NULL;
    float *ta = NULL, *tb = NULL, *te = NULL, *xa = NULL, *xb = NULL, *xe = NULL;
    char ha[65], hb[65], he[65];
    size_t nb = (size_t)c.n_samples * c.d * sizeof(float), tbytes = (size_t)c.n_features * c.d * sizeof(float);

    CHECK_OK(lg_dataset_synthetic(&c, &a, &ta));
    CHECK_OK(lg_dataset_synthetic(&c, &b, &tb));
    c.seed++;
    CHECK_OK(lg_dataset_synthetic(&c, &e, &te));
    if (!a || !b || !e)
        goto out;
    CHECK(strcmp(lg_dataset_kind(a), "synthetic") == 0);
    xa = all_rows(a);
    xb = all_rows(b);
    xe = all_rows(e);
    CHECK(xa && xb && xe);
    if (!xa || !xb || !xe)
        goto out;
    CHECK(memcmp(xa, xb, nb) == 0);
    CHECK(memcmp(ta, tb, tbytes) == 0);
    CHECK(memcmp(xa, xe, nb) != 0);
    CHECK(memcmp(ta, te, tbytes) != 0);
    CHECK_OK(lg_dataset_digest(a, ha));
    CHECK_OK(lg_dataset_digest(b, hb));
    CHECK_OK(lg_dataset_digest(e, he));
    CHECK(strcmp(ha, hb) == 0 && strcmp(ha, he) != 0);
out:
    lg_free(xa);
    lg_free(xb);
    lg_free(xe);
    lg_free(ta);
    lg_free(tb);
    lg_free(te);
    lg_dataset_free(a);
    lg_dataset_free(b);
    lg_dataset_free(e);
}

/* Rows generated lazily one at a time equal the rows of the dataset, and
 * without noise each row is exactly sum_j c_j D_j of its active features. */
static void test_synth_model(void)
{
    lg_synth_config c = base_config();
    lg_synth *s = NULL;
    lg_dataset *ds = NULL;
    float *truth = NULL, *x = NULL, row[16], coef[64];
    int active[64], na, i, j, k, bad_norm = 0;
    long bad_lazy = 0;
    double err_max = 0.0;

    CHECK_OK(lg_dataset_synthetic(&c, &ds, &truth));
    CHECK_OK(lg_synth_new(&c, &s));
    if (!ds || !s)
        goto out;
    CHECK(memcmp(truth, lg_synth_truth(s), (size_t)c.n_features * c.d * sizeof(float)) == 0);
    for (i = 0; i < c.n_features; i++) {
        double nrm = 0.0;
        for (j = 0; j < c.d; j++)
            nrm += (double)truth[i * c.d + j] * truth[i * c.d + j];
        if (fabs(sqrt(nrm) - 1.0) > 1e-6)
            bad_norm++;
    }
    CHECK(bad_norm == 0);
    x = all_rows(ds);
    for (i = 499; x && i >= 0; i -= 7) { /* out of order on purpose */
        CHECK_OK(lg_synth_row(s, i, row, NULL, NULL, NULL));
        if (memcmp(row, x + (size_t)i * c.d, sizeof(row)) != 0)
            bad_lazy++;
    }
    CHECK(x && bad_lazy == 0);
    lg_synth_free(s);
    s = NULL;

    c.noise_std = 0.0;
    CHECK_OK(lg_synth_new(&c, &s));
    for (i = 0; s && i < 200; i++) {
        CHECK_OK(lg_synth_row(s, i, row, active, coef, &na));
        for (j = 0; j < c.d; j++) {
            double ref = 0.0;
            for (k = 0; k < na; k++)
                ref += (double)coef[k] * lg_synth_truth(s)[active[k] * c.d + j];
            if (fabs(ref - row[j]) > err_max)
                err_max = fabs(ref - row[j]);
        }
        for (k = 0; k < na; k++)
            CHECK(active[k] >= 0 && active[k] < c.n_features && coef[k] >= 0);
    }
    CHECK_MSG(err_max < 1e-5, "max |x - sum c D| = %g", err_max);
    CHECK(lg_synth_row(s, c.n_samples, row, NULL, NULL, NULL) == LG_EINPUT);
out:
    lg_free(x);
    lg_free(truth);
    lg_synth_free(s);
    lg_dataset_free(ds);
}

static void test_synth_stats(void)
{
    lg_synth_config c = base_config();
    lg_synth *s = NULL;
    float row[4];
    int active[256], na = 0, i, k, rc_bad = 0;
    double sum = 0.0, se;
    long count[32] = {0};
    const int N = 20000;

    /* uniform frequencies: the mean number of active features is active_mean */
    c.d = 4;
    c.n_features = 256;
    c.n_samples = N;
    c.active_mean = 5.0;
    c.zipf_exponent = 0.0;
    CHECK_OK(lg_synth_new(&c, &s));
    for (i = 0; s && i < N; i++) {
        if (lg_synth_row(s, i, row, active, NULL, &na) < 0)
            rc_bad++;
        sum += na;
    }
    se = sqrt(c.active_mean / N);
    CHECK_MSG(fabs(sum / N - c.active_mean) < 4 * se, "mean active %g vs %g", sum / N, c.active_mean);
    lg_synth_free(s);
    s = NULL;

    /* Zipf(1) over 32 features with few actives: P(feature j) ~= active_mean
     * * w_j / sum(w) (sampling without replacement barely matters at 0.1) */
    c.n_features = 32;
    c.active_mean = 0.1;
    c.zipf_exponent = 1.0;
    c.n_samples = 200000;
    CHECK_OK(lg_synth_new(&c, &s));
    for (i = 0; s && i < 200000; i++) {
        if (lg_synth_row(s, i, row, active, NULL, &na) < 0)
            rc_bad++;
        for (k = 0; k < na; k++)
            count[active[k]]++;
    }
    {
        double W = 0.0, e0, e3;
        for (k = 0; k < 32; k++)
            W += 1.0 / (k + 1);
        e0 = 200000 * 0.1 * 1.0 / W;
        e3 = 200000 * 0.1 * 0.25 / W;
        CHECK_MSG(fabs(count[0] - e0) < 4 * sqrt(e0) + 0.01 * e0, "feature 0: %ld vs %g", count[0], e0);
        CHECK_MSG(fabs(count[3] - e3) < 4 * sqrt(e3) + 0.01 * e3, "feature 3: %ld vs %g", count[3], e3);
        CHECK(count[0] > count[7] && count[7] > count[31]);
    }
    CHECK(rc_bad == 0);
    lg_synth_free(s);
}

static void test_synth_config_errors(void)
{
    lg_synth_config c = base_config();
    lg_dataset *ds = NULL;
    c.d = 0;
    CHECK(lg_dataset_synthetic(&c, &ds, NULL) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "synthetic: d:") != NULL);
    c = base_config();
    c.active_mean = 65; /* > n_features */
    CHECK(lg_dataset_synthetic(&c, &ds, NULL) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "active_mean") != NULL);
    c = base_config();
    c.noise_std = NAN;
    CHECK(lg_dataset_synthetic(&c, &ds, NULL) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "noise_std") != NULL);
    c = base_config();
    c.zipf_exponent = -1;
    CHECK(lg_synth_config_check(&c) == LG_EINPUT);
    CHECK(ds == NULL);
}

static void test_split(void)
{
    int64_t *tr = NULL, *ev = NULL, *tr2 = NULL, *ev2 = NULL, ntr, nev, ntr2, nev2, i;
    char *seen;
    int dup = 0, sorted = 1;
    CHECK_OK(lg_dataset_split(1000, 0.1, 7, &tr, &ntr, &ev, &nev));
    CHECK(ntr == 900 && nev == 100);
    seen = lg_calloc(1000, 1);
    for (i = 0; seen && i < ntr; i++)
        dup += seen[tr[i]]++;
    for (i = 0; seen && i < nev; i++)
        dup += seen[ev[i]]++;
    for (i = 1; i < ntr; i++)
        sorted &= tr[i - 1] < tr[i];
    for (i = 1; i < nev; i++)
        sorted &= ev[i - 1] < ev[i];
    CHECK(dup == 0 && sorted);
    lg_free(seen);
    CHECK_OK(lg_dataset_split(1000, 0.1, 7, &tr2, &ntr2, &ev2, &nev2));
    CHECK(nev2 == nev && memcmp(ev, ev2, (size_t)nev * sizeof(int64_t)) == 0);
    lg_free(tr2);
    lg_free(ev2);
    CHECK_OK(lg_dataset_split(1000, 0.1, 8, &tr2, &ntr2, &ev2, &nev2));
    CHECK(memcmp(ev, ev2, (size_t)nev * sizeof(int64_t)) != 0);
    /* evaluation rows are not just the first ones */
    CHECK(ev[nev - 1] > 100);
    lg_free(tr);
    lg_free(ev);
    lg_free(tr2);
    lg_free(ev2);
    CHECK_OK(lg_dataset_split(5, 0.0, 1, &tr, &ntr, &ev, &nev));
    CHECK(ntr == 5 && nev == 0 && ev != NULL);
    lg_free(tr);
    lg_free(ev);
    CHECK_OK(lg_dataset_split(2, 0.01, 1, &tr, &ntr, &ev, &nev));
    CHECK(ntr == 1 && nev == 1);
    lg_free(tr);
    lg_free(ev);
    CHECK(lg_dataset_split(10, 1.0, 1, &tr, &ntr, &ev, &nev) == LG_EINPUT);
    CHECK(lg_dataset_split(0, 0.5, 1, &tr, &ntr, &ev, &nev) == LG_EINPUT);
}

static void setup(void) { CHECK(mkdtemp(tmpdir) != NULL); }
static void teardown(void) { CHECK(rmdir(tmpdir) == 0); }

CHECK_MAIN(T(setup), T(test_memory), T(test_digest), T(test_files), T(test_geometric_median),
           T(test_synth_determinism), T(test_synth_model), T(test_synth_stats), T(test_synth_config_errors),
           T(test_split), T(teardown))
