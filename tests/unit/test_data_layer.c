/* test_data_layer.c - layered data: the layered synthetic generator
 * (data.synthetic.layers: shapes, determinism, the generative model, so the
 * truth defines every layer; layer_leak 1 reproduces the 2-D rows; config
 * errors; the digest), one layer of layered data (lg_dataset_layer_view), the
 * spec keys data.layer / layers / layer_leak and their errors, and the layer
 * rule of a study run (engine/run_layer.c): a single-layer arch on layered
 * data trains on exactly the layer it names, RouteSAE on all layers, and a
 * backend other than the CPU refuses RouteSAE before any data is read. */
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "base/sha256.h"
#include "engine/backend.h"
#include "engine/data.h"
#include "engine/run.h"
#include "engine/study.h"
#include "tests/unit/check.h"

static lg_synth_config layered_config(void)
{
    lg_synth_config c;
    memset(&c, 0, sizeof c);
    c.d = 6;
    c.n_features = 10;
    c.n_samples = 300;
    c.active_mean = 2.5;
    c.zipf_exponent = 0.5;
    c.magnitude_mean = 1.0;
    c.magnitude_std = 0.3;
    c.noise_std = 0.05;
    c.seed = 9;
    c.layers = 3;
    c.layer_leak = 0.25;
    return c;
}

static float *all_rows(const lg_dataset *ds)
{
    int64_t n = lg_dataset_rows(ds), i, *idx = lg_malloc((size_t)n * sizeof(int64_t));
    float *x = lg_malloc((size_t)n * lg_dataset_dim(ds) * sizeof(float));
    for (i = 0; idx && i < n; i++)
        idx[i] = i;
    if (!idx || !x || lg_dataset_gather(ds, idx, (int)n, x) < 0) {
        lg_free(x);
        x = NULL;
    }
    lg_free(idx);
    return x;
}

/* Shapes: rows [L * d], lg_dataset_layers = L, the truth [n_features, d] is the
 * 2-D generator's (it does not depend on the layers). Determinism: the same
 * bytes twice, every row regenerated alone equals the dataset's. */
static void test_layered_shapes_determinism(void)
{
    lg_synth_config c = layered_config(), c2;
    lg_dataset *a = NULL, *b = NULL, *e = NULL;
    lg_synth *s = NULL, *s2 = NULL;
    float *truth = NULL, *xa = NULL, *xb = NULL, *xe = NULL, row[3 * 6];
    long bad = 0;
    int64_t i;

    CHECK_OK(lg_dataset_synthetic(&c, &a, &truth));
    CHECK_OK(lg_dataset_synthetic(&c, &b, NULL));
    if (!a || !b)
        goto out;
    CHECK(lg_dataset_rows(a) == 300 && lg_dataset_dim(a) == 18 && lg_dataset_layers(a) == 3);
    CHECK(lg_synth_row_width(&c) == 18);
    c2 = c;
    c2.layers = 0;
    CHECK(lg_synth_row_width(&c2) == 6);
    CHECK_OK(lg_synth_new(&c2, &s2));
    CHECK(s2 && truth && memcmp(truth, lg_synth_truth(s2), (size_t)c.n_features * c.d * sizeof(float)) == 0);
    xa = all_rows(a);
    xb = all_rows(b);
    CHECK(xa && xb && memcmp(xa, xb, (size_t)300 * 18 * sizeof(float)) == 0);
    CHECK_OK(lg_synth_new(&c, &s));
    for (i = 299; s && xa && i >= 0; i -= 13) {
        CHECK_OK(lg_synth_row(s, i, row, NULL, NULL, NULL));
        bad += memcmp(row, xa + (size_t)i * 18, sizeof row) != 0;
    }
    CHECK(bad == 0);
    c2 = c;
    c2.seed = 10; /* another seed: other rows */
    CHECK_OK(lg_dataset_synthetic(&c2, &e, NULL));
    xe = e ? all_rows(e) : NULL;
    CHECK(xe && xa && memcmp(xe, xa, (size_t)300 * 18 * sizeof(float)) != 0);
out:
    lg_free(truth);
    lg_free(xa);
    lg_free(xb);
    lg_free(xe);
    lg_synth_free(s);
    lg_synth_free(s2);
    lg_dataset_free(a);
    lg_dataset_free(b);
    lg_dataset_free(e);
}

/* The generative model without noise: layer l of a row is exactly
 * sum_k c_k g_{l,f_k} D_{f_k}, g = 1 in the home layer f mod L and
 * layer_leak elsewhere; and the truth recovers it: the coefficients of
 * layer l on the true directions (least squares on the active features)
 * are c_k g_{l,f_k}. Then the same for layer_leak 0 (each layer holds its
 * home features only). */
static void test_layered_model(void)
{
    lg_synth_config c = layered_config();
    lg_synth *s = NULL;
    float row[3 * 6], coef[10];
    int active[10], na, i, j, k, l, pass;
    double err_max = 0.0, home_min = 1e30;

    c.noise_std = 0.0;
    for (pass = 0; pass < 2; pass++) {
        if (pass == 1)
            c.layer_leak = 0.0;
        CHECK_OK(lg_synth_new(&c, &s));
        for (i = 0; s && i < 300; i++) {
            CHECK_OK(lg_synth_row(s, i, row, active, coef, &na));
            for (l = 0; l < c.layers; l++)
                for (j = 0; j < c.d; j++) {
                    double ref = 0.0;
                    for (k = 0; k < na; k++) {
                        double g = active[k] % c.layers == l ? 1.0 : c.layer_leak;
                        ref += g * coef[k] * lg_synth_truth(s)[active[k] * c.d + j];
                    }
                    if (fabs(ref - row[l * c.d + j]) > err_max)
                        err_max = fabs(ref - row[l * c.d + j]);
                }
            /* one active feature: its coefficient in each layer is the projection on D_f */
            if (na == 1)
                for (l = 0; l < c.layers; l++) {
                    double p = 0.0, g = active[0] % c.layers == l ? 1.0 : c.layer_leak;
                    for (j = 0; j < c.d; j++)
                        p += (double)row[l * c.d + j] * lg_synth_truth(s)[active[0] * c.d + j];
                    CHECK_CLOSE(p, g * coef[0], 1e-5, 1e-5);
                    if (g == 1.0 && p < home_min)
                        home_min = p;
                }
        }
        lg_synth_free(s);
        s = NULL;
    }
    CHECK_MSG(err_max < 1e-5, "max |x_l - sum c g D| = %g", err_max);
    CHECK(home_min < 1e30); /* some rows had one feature */
}

/* layer_leak 1: layer 0 is bit for bit the 2-D generator's row (same draws,
 * same order); layer 1 has the same signal and its own noise. */
static void test_leak_one_is_2d(void)
{
    lg_synth_config c = layered_config(), c2;
    lg_synth *s = NULL, *s2 = NULL;
    float row[3 * 6], row2[6];
    long bad = 0, same1 = 0;
    double sig = 0.0;
    int i, j;
    c.layer_leak = 1.0;
    c2 = c;
    c2.layers = 0;
    CHECK_OK(lg_synth_new(&c, &s));
    CHECK_OK(lg_synth_new(&c2, &s2));
    for (i = 0; s && s2 && i < 300; i++) {
        CHECK_OK(lg_synth_row(s, i, row, NULL, NULL, NULL));
        CHECK_OK(lg_synth_row(s2, i, row2, NULL, NULL, NULL));
        bad += memcmp(row, row2, sizeof row2) != 0;
        same1 += memcmp(row, row + 6, sizeof row2) == 0;
        for (j = 0; j < 6; j++) /* the layers differ by noise only: |x_1 - x_0| ~ noise * sqrt(2) */
            sig = fmax(sig, fabs((double)row[6 + j] - row[j]));
    }
    CHECK(bad == 0);
    CHECK(same1 == 0);
    CHECK_MSG(sig < 0.05 * 10, "max |x_1 - x_0| = %g", sig);
    lg_synth_free(s);
    lg_synth_free(s2);
}

static void test_layered_config_errors(void)
{
    lg_synth_config c = layered_config();
    lg_dataset *ds = NULL;
    c.layers = 1;
    CHECK(lg_synth_config_check(&c) == LG_EINPUT && strstr(lg_error_msg(), "synthetic: layers: 1 not in 2..64"));
    c.layers = 65;
    CHECK(lg_synth_config_check(&c) == LG_EINPUT && strstr(lg_error_msg(), "layers"));
    c.layers = -2;
    CHECK(lg_synth_config_check(&c) == LG_EINPUT);
    c.layers = 2;
    c.layer_leak = -0.1;
    CHECK(lg_synth_config_check(&c) == LG_EINPUT && strstr(lg_error_msg(), "layer_leak"));
    c.layer_leak = 1.5;
    CHECK(lg_synth_config_check(&c) == LG_EINPUT && strstr(lg_error_msg(), "layer_leak"));
    c.layer_leak = NAN;
    CHECK(lg_synth_config_check(&c) == LG_EINPUT && strstr(lg_error_msg(), "layer_leak"));
    c.layer_leak = 0.5;
    c.d = 1024;
    c.n_samples = (int64_t)1 << 20; /* 2^30 values in 2-D, 2^31 x 2 layered */
    c.layers = 0;
    CHECK_OK(lg_synth_config_check(&c));
    c.layers = 4;
    CHECK(lg_synth_config_check(&c) == LG_EINPUT && strstr(lg_error_msg(), "x layers <= 2^31"));
    CHECK(lg_dataset_synthetic(&c, &ds, NULL) == LG_EINPUT && ds == NULL);
}

/* The digest: 2-D data keeps the v1 canonical text (layer_leak ignored), the
 * layered text adds the layers and the leak. */
static void test_layered_digest(void)
{
    lg_synth_config c = layered_config();
    lg_dataset *a = NULL, *b = NULL, *e = NULL, *f = NULL;
    char ha[65], hb[65], he[65], hf[65], want[65], text[512];
    c.layers = 0;
    c.n_samples = 20;
    CHECK_OK(lg_dataset_synthetic(&c, &a, NULL));
    c.layer_leak = 0.75;
    CHECK_OK(lg_dataset_synthetic(&c, &b, NULL));
    c.layers = 2;
    CHECK_OK(lg_dataset_synthetic(&c, &e, NULL));
    c.layer_leak = 0.5;
    CHECK_OK(lg_dataset_synthetic(&c, &f, NULL));
    if (!a || !b || !e || !f)
        goto out;
    CHECK_OK(lg_dataset_digest(a, ha));
    CHECK_OK(lg_dataset_digest(b, hb));
    CHECK_OK(lg_dataset_digest(e, he));
    CHECK_OK(lg_dataset_digest(f, hf));
    CHECK(strcmp(ha, hb) == 0);
    CHECK(strcmp(ha, he) != 0 && strcmp(he, hf) != 0);
    snprintf(text, sizeof text,
             "ledger-synth-v1\nd=6\nn_features=10\nn_samples=20\nactive_mean=2.5\nzipf_exponent=0.5\n"
             "magnitude_mean=1\nmagnitude_std=0.29999999999999999\nnoise_std=0.050000000000000003\nseed=9\n");
    CHECK_OK(lg_sha256_buf(text, strlen(text), want));
    CHECK_MSG(strcmp(ha, want) == 0, "2-D digest %s, want %s", ha, want);
    strcat(text, "layers=2\nlayer_leak=0.5\n");
    CHECK_OK(lg_sha256_buf(text, strlen(text), want));
    CHECK_MSG(strcmp(hf, want) == 0, "layered digest %s, want %s", hf, want);
out:
    lg_dataset_free(a);
    lg_dataset_free(b);
    lg_dataset_free(e);
    lg_dataset_free(f);
}

/* lg_dataset_layer_view: layer l of every row, as a 2-D dataset; errors. */
static void test_layer_view(void)
{
    lg_synth_config c = layered_config();
    lg_dataset *ds = NULL, *v = NULL, *flat = NULL;
    float *x = NULL, *y = NULL, two[4] = {1, 2, 3, 4};
    long bad = 0;
    int l, i;
    CHECK_OK(lg_dataset_synthetic(&c, &ds, NULL));
    x = ds ? all_rows(ds) : NULL;
    for (l = 0; x && l < 3; l++) {
        CHECK_OK(lg_dataset_layer_view(ds, l, &v));
        if (!v)
            break;
        CHECK(lg_dataset_rows(v) == 300 && lg_dataset_dim(v) == 6 && lg_dataset_layers(v) == 0);
        y = all_rows(v);
        for (i = 0; y && i < 300; i++)
            bad += memcmp(y + (size_t)i * 6, x + ((size_t)i * 3 + l) * 6, 6 * sizeof(float)) != 0;
        CHECK(y != NULL);
        lg_free(y);
        y = NULL;
        lg_dataset_free(v);
        v = NULL;
    }
    CHECK(bad == 0);
    CHECK(lg_dataset_layer_view(ds, 3, &v) == LG_EINPUT && v == NULL &&
          strstr(lg_error_msg(), "data.layer: 3 out of range: the data has 3 layers (0..2)"));
    CHECK(lg_dataset_layer_view(ds, -1, &v) == LG_EINPUT && v == NULL);
    CHECK_OK(lg_dataset_from_memory(two, 2, 2, 0, &flat));
    CHECK(flat && lg_dataset_layer_view(flat, 0, &v) == LG_EINPUT && v == NULL &&
          strstr(lg_error_msg(), "not layered"));
    lg_free(x);
    lg_dataset_free(ds);
    lg_dataset_free(flat);
}

/* ---- the spec keys ------------------------------------------------------------ */

static const char *spec_fmt =
    "{\"format\": 1, \"name\": \"lay\", \"data\": {\"source\": \"synthetic\"%s, \"synthetic\": "
    "{\"d\": 6, \"n_features\": 10, \"n_samples\": 400, \"active_mean\": 2, \"noise_std\": 0.01, \"seed\": 4%s}},"
    " \"sae\": {\"d_sae\": 12, \"k\": 2}, \"train\": {\"steps\": 30, \"batch\": 16, \"lr\": 0.01, \"warmup_steps\": 2},"
    " \"grid\": {\"arch\": [%s]}, \"seeds\": [1, 2]}";

static int parse(const char *data_extra, const char *synth_extra, const char *archs, lg_study **out)
{
    char text[2048];
    snprintf(text, sizeof text, spec_fmt, data_extra, synth_extra, archs);
    return lg_study_parse("lay.json", text, strlen(text), out);
}

static void test_spec_keys(void)
{
    lg_study *s = NULL;
    CHECK_OK(parse(", \"layer\": 1", ", \"layers\": 3, \"layer_leak\": 0.25", "\"topk\", \"routesae\"", &s));
    CHECK(s && s->data_layer == 1 && s->synth.layers == 3 && s->synth.layer_leak == 0.25);
    lg_study_free(s);
    s = NULL;
    CHECK_OK(parse("", ", \"layers\": 2", "\"routesae\"", &s));
    CHECK(s && s->data_layer == -1 && s->synth.layers == 2 && s->synth.layer_leak == 0.5);
    lg_study_free(s);
    s = NULL;
    CHECK_OK(parse("", "", "\"topk\"", &s));
    CHECK(s && s->data_layer == -1 && s->synth.layers == 0);
    lg_study_free(s);
    s = NULL;
#define BAD(de, se, want)                                                                          \
    do {                                                                                           \
        CHECK(parse(de, se, "\"topk\"", &s) == LG_EINPUT && s == NULL);                           \
        CHECK_MSG(strstr(lg_error_msg(), want) != NULL, "message '%s' lacks '%s'", lg_error_msg(), \
                  want);                                                                           \
        CHECK(strchr(lg_error_msg(), '\n') == NULL);                                               \
    } while (0)
    BAD(", \"layer\": 2", ", \"layers\": 2", "lay.json: data.layer: 2 out of range: data.synthetic.layers is 2 (0..1)");
    BAD(", \"layer\": 0", "", "lay.json: data.layer: the data is not layered");
    BAD(", \"layer\": -1", ", \"layers\": 2", "lay.json: data.layer: must be an integer in [0, 63]");
    BAD(", \"layer\": 0.5", ", \"layers\": 2", "data.layer: must be an integer");
    BAD(", \"layer\": \"0\"", ", \"layers\": 2", "data.layer: must be an integer");
    BAD("", ", \"layers\": 1", "lay.json: data.synthetic.layers: must be an integer in [2, 64]");
    BAD("", ", \"layers\": 65", "data.synthetic.layers: must be an integer in [2, 64]");
    BAD("", ", \"layer_leak\": 0.5", "lay.json: data.synthetic.layer_leak: needs data.synthetic.layers");
    BAD("", ", \"layers\": 2, \"layer_leak\": 1.5", "data.synthetic.layer_leak: must be a number in [0, 1]");
    BAD("", ", \"layers\": 2, \"layer_leak\": \"x\"", "data.synthetic.layer_leak: must be a number in [0, 1]");
    BAD("", ", \"layerz\": 2", "layerz");
    BAD(", \"layer\": 0, \"target\": {\"synthetic\": {\"seed\": 3}}", ", \"layers\": 2",
        "data.layer: not supported with data.target");
    BAD("", ", \"layers\": 200000", "data.synthetic.layers: must be an integer in [2, 64]");
    BAD(", \"layer\": 1e300", ", \"layers\": 2", "data.layer: must be an integer in [0, 63]");
#undef BAD
}

/* ---- the layer rule in a run ------------------------------------------------------ */

static char tmpdir[] = "/tmp/lglayerXXXXXX";

static const cJSON *cond_of(const cJSON *results, const char *id)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(results, "conditions"))
    if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "id")->valuestring, id) == 0)
        return c;
    return NULL;
}

static double cell_metric(const cJSON *cond, int i, const char *name)
{
    const cJSON *cell = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cond, "cells"), i);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cell, "metrics"), name);
    return cJSON_IsNumber(m) ? m->valuedouble : NAN;
}

static int run_study(lg_study *s, const char *sub, const lg_backend *be, lg_run_result *res)
{
    char dir[256];
    lg_run_options o;
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    if (mkdir(dir, 0700) != 0)
        return lg_error_set(LG_EIO, "mkdir %s", dir);
    memset(&o, 0, sizeof o);
    o.be = be;
    o.outdir = dir;
    return lg_study_execute(s, &o, res);
}

/* A topk condition of a layered study with data.layer = l gives exactly the
 * metrics of the same topk condition on a 2-D study whose data is that
 * layer: the same rows, split, batches and initial weights. Layer 0 of a
 * layer_leak-1 study is the 2-D generator's data, so its twin is the plain
 * 2-D spec; layer 1 differs (its own noise). RouteSAE in the same study
 * reads both layers (router metrics over 2 layers). */
static void test_layer_rule_run(void)
{
    lg_study *lay0 = NULL, *lay1 = NULL, *flat = NULL;
    lg_run_result r0, r1, rf;
    const lg_backend *cpu = lg_backend_cpu();
    const cJSON *t0, *t1, *tf, *rt;
    memset(&r0, 0, sizeof r0);
    memset(&r1, 0, sizeof r1);
    memset(&rf, 0, sizeof rf);
    CHECK_OK(parse(", \"layer\": 0", ", \"layers\": 2, \"layer_leak\": 1", "\"topk\", \"routesae\"", &lay0));
    CHECK_OK(parse(", \"layer\": 1", ", \"layers\": 2, \"layer_leak\": 1", "\"topk\"", &lay1));
    CHECK_OK(parse("", "", "\"topk\"", &flat));
    if (!lay0 || !lay1 || !flat)
        goto out;
    CHECK_OK(run_study(lay0, "l0", cpu, &r0));
    CHECK_OK(run_study(lay1, "l1", cpu, &r1));
    CHECK_OK(run_study(flat, "flat", cpu, &rf));
    if (!r0.results || !r1.results || !rf.results)
        goto out;
    t0 = cond_of(r0.results, "arch=topk");
    t1 = cond_of(r1.results, "arch=topk");
    tf = cond_of(rf.results, "arch=topk");
    rt = cond_of(r0.results, "arch=routesae");
    CHECK(t0 && t1 && tf && rt);
    if (!t0 || !t1 || !tf || !rt)
        goto out;
    CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(t0, "cells"), cJSON_GetObjectItemCaseSensitive(tf, "cells"), 1));
    CHECK(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(t0, "pairs"), cJSON_GetObjectItemCaseSensitive(tf, "pairs"), 1));
    CHECK(cell_metric(t1, 0, "explained_variance") != cell_metric(t0, 0, "explained_variance"));
    CHECK(isfinite(cell_metric(t0, 0, "truth_mmcs")) && isfinite(cell_metric(rt, 0, "truth_mmcs")));
    CHECK(isfinite(cell_metric(rt, 0, "route_weight_1")) && isnan(cell_metric(rt, 0, "route_weight_2")));
    CHECK(isnan(cell_metric(t0, 0, "route_weight_0")));
out:
    lg_run_result_release(&r0);
    lg_run_result_release(&r1);
    lg_run_result_release(&rf);
    lg_study_free(lay0);
    lg_study_free(lay1);
    lg_study_free(flat);
}

/* A backend other than the CPU refuses a routesae condition before any data
 * is read or any condition trains (a copy of the CPU backend named "cuda"
 * stands in for the GPU one). */
static void test_routesae_refused_off_cpu(void)
{
    lg_study *s = NULL;
    lg_run_result r;
    lg_backend fake = *lg_backend_cpu();
    char dir[256];
    memset(&r, 0, sizeof r);
    fake.name = "cuda";
    CHECK_OK(parse(", \"layer\": 0", ", \"layers\": 2", "\"topk\", \"routesae\"", &s));
    if (!s)
        return;
    CHECK(run_study(s, "cuda", &fake, &r) == LG_EINPUT);
    CHECK_MSG(strstr(lg_error_msg(), "condition arch=routesae: sae.arch: the cuda backend does not implement \"routesae\"") !=
                  NULL, "%s", lg_error_msg());
    snprintf(dir, sizeof dir, "%s/cuda/cells", tmpdir);
    CHECK(access(dir, F_OK) != 0); /* nothing trained, nothing written */
    lg_run_result_release(&r);
    lg_study_free(s);
}

static void setup(void) { CHECK(mkdtemp(tmpdir) != NULL); }
static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0);
}

CHECK_MAIN(T(setup), T(test_layered_shapes_determinism), T(test_layered_model), T(test_leak_one_is_2d),
           T(test_layered_config_errors), T(test_layered_digest), T(test_layer_view), T(test_spec_keys),
           T(test_layer_rule_run), T(test_routesae_refused_off_cpu), T(teardown))
