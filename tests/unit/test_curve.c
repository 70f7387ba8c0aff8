/*
 * test_curve.c - training curves (engine/curve.h, train.log_every).
 *
 * - test_record: a 2-seed trainer stepped by hand; lg_curve_record takes a
 *   point exactly at the due steps (every N and the last), and each point's
 *   values are the trainer's own lg_step_stats of that step, compared with
 *   ==; the dead fraction equals a count of the trainer's steps_since_fired
 *   with AuxK's rule, and is non-zero for ReLU too (where lg_step_stats has
 *   no dead count).
 * - test_roundtrip: encode -> parse gives the same doubles bit for bit, and
 *   the strict parser refuses malformed files naming the key.
 * - test_study: a study with log_every writes one curve per trained cell
 *   (none for random-init controls), whose last loss is the cell's
 *   final_loss; a second run gives byte-identical files (determinism); a
 *   run of one seed alone (the cell filter: trained without the other seeds
 *   of its seed batch) gives the same bytes; log_every 0 writes none and
 *   leaves the results as they were.
 * - test_resume: resume markers keep the curves (a resumed group registers
 *   the same bytes; a changed curve file retrains its group).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "base/rng.h"
#include "base/sha256.h"
#include "engine/curve.h"
#include "engine/run.h"
#include "engine/sae.h"
#include "engine/study.h"
#include "engine/train.h"
#include "tests/unit/check.h"

static float *make_data(uint64_t seed, int n, int d)
{
    float *x = malloc((size_t)n * d * sizeof(float));
    lg_rng r;
    int i;
    lg_rng_init(&r, seed, LG_STREAM_DATA);
    for (i = 0; i < n * d; i++)
        x[i] = (float)(lg_rng_normal(&r) * (lg_rng_uniform(&r) < 0.2 ? 2.0 : 0.1));
    return x;
}

static void record_arch(lg_arch arch)
{
    enum { NS = 2, STEPS = 23, EVERY = 5, B = 16, D = 8, M = 24 };
    lg_sae_config cfg;
    lg_train_config tc;
    lg_sae_weights w[NS];
    lg_trainer *t = NULL;
    lg_curve cv[NS];
    lg_step_stats st[NS], seen[NS][STEPS];
    float *x = make_data(3, NS * B * STEPS, D);
    long step;
    int s, i, npts = 0;

    memset(&cfg, 0, sizeof cfg);
    memset(cv, 0, sizeof cv);
    cfg.arch = arch;
    cfg.d_in = D;
    cfg.d_sae = M;
    cfg.k = 3;
    lg_train_config_default(&tc);
    tc.batch = B;
    tc.steps = STEPS;
    tc.warmup_steps = 4;
    tc.lr = arch == LG_ARCH_RELU ? 5e-2 : 3e-3;
    tc.l1_coeff = arch == LG_ARCH_RELU ? 1.0 : 0.05; /* ReLU: a strong L1 silences latents */
    tc.dead_after = arch == LG_ARCH_RELU ? B : 2 * B; /* latents die within the run */
    for (s = 0; s < NS; s++)
        CHECK_OK(lg_sae_init_weights(&cfg, 10 + s, NULL, &w[s]));
    CHECK_OK(lg_trainer_new_multi(lg_backend_cpu(), &cfg, &tc, w, NS, &t));
    if (!t)
        goto out;
    for (step = 0; step < STEPS; step++) {
        CHECK_OK(lg_trainer_step_multi(t, x + (size_t)step * NS * B * D, st));
        for (s = 0; s < NS; s++)
            seen[s][step] = st[s];
        CHECK_OK(lg_curve_record(cv, NS, t, st, STEPS, EVERY, tc.dead_after, B));
        if (lg_curve_due(step + 1, STEPS, EVERY)) {
            /* the dead fraction by hand from the state: AuxK's rule */
            for (s = 0; s < NS; s++) {
                lg_train_state ts;
                double dead = 0;
                int64_t n = 0, j;
                CHECK_OK(lg_trainer_save_state_multi(t, s, &ts));
                for (i = 0; i < ts.count; i++)
                    if (!strcmp(ts.arrays[i].name, "steps_since_fired"))
                        for (j = 0, n = lg_named_array_numel(&ts.arrays[i]); j < n; j++)
                            dead += ts.arrays[i].data[j] >= tc.dead_after / B; /* ceil(dead_after / B) */
                CHECK(n == M);
                CHECK(cv[s].n == (size_t)npts + 1 && cv[s].pts[npts].v[3] == dead / M);
                lg_train_state_release(&ts);
            }
            npts++;
        }
    }
    /* steps 5, 10, 15, 20 and the last, 23 */
    CHECK(npts == 5);
    for (s = 0; s < NS; s++) {
        static const long want[5] = {5, 10, 15, 20, 23};
        CHECK(cv[s].n == 5);
        for (i = 0; i < (int)cv[s].n && i < 5; i++) {
            const lg_step_stats *e = &seen[s][want[i] - 1];
            const lg_curve_point *p = &cv[s].pts[i];
            CHECK(p->step == want[i] && e->step == want[i]);
            CHECK_MSG(p->v[0] == e->loss && p->v[1] == e->mse && p->v[2] == e->l0 && p->v[4] == e->aux &&
                          p->v[5] == e->lr,
                      "arch %s seed %d point %d", lg_arch_name(arch), s, i);
        }
        /* the learning rate is the schedule's: warmup, then the decay over the last 20% */
        CHECK(cv[s].pts[1].v[5] == tc.lr);
        CHECK(cv[s].pts[4].v[5] < tc.lr);
    }
    {
        double dead_any = 0;
        for (s = 0; s < NS; s++)
            for (i = 0; i < (int)cv[s].n; i++)
                dead_any += cv[s].pts[i].v[3];
        CHECK_MSG(dead_any > 0, "arch %s: no latent ever counted dead (the test data should kill some)",
                  lg_arch_name(arch));
    }
out:
    for (s = 0; s < NS; s++) {
        lg_curve_release(&cv[s]);
        lg_sae_weights_release(&w[s]);
    }
    lg_trainer_free(t);
    free(x);
}

static void test_record(void)
{
    record_arch(LG_ARCH_TOPK);
    record_arch(LG_ARCH_RELU);
    CHECK(lg_curve_due(5, 23, 5) && !lg_curve_due(6, 23, 5) && lg_curve_due(23, 23, 5) && !lg_curve_due(5, 23, 0));
    CHECK(lg_curve_metric_index("dead_frac") == 3 && lg_curve_metric_index("nope") == -1);
}

static void test_roundtrip(void)
{
    lg_curve c, back;
    lg_step_stats st;
    lg_buf b = LG_BUF_INIT;
    size_t i;
    int m;
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"{\"format\":\"ledger-curve-1\",\"condition\":\"c\",\"seed\":1,\"log_every\":1,\"steps\":2,\"step\":[1],"
         "\"loss\":[1],\"mse\":[1],\"l0\":[1],\"dead_frac\":[0],\"aux_loss\":[0],\"lr\":[1],\"x\":1}",
         "x: unknown key"},
        {"{\"format\":\"ledger-curve-1\",\"condition\":\"c\",\"seed\":1,\"log_every\":1,\"steps\":2,\"step\":[1,2],"
         "\"loss\":[1],\"mse\":[1,1],\"l0\":[1,1],\"dead_frac\":[0,0],\"aux_loss\":[0,0],\"lr\":[1,1]}",
         "loss: must be an array as long as"},
        {"{\"format\":\"ledger-curve-1\",\"condition\":\"c\",\"seed\":1,\"log_every\":1,\"steps\":2,\"step\":[2,1],"
         "\"loss\":[1,1],\"mse\":[1,1],\"l0\":[1,1],\"dead_frac\":[0,0],\"aux_loss\":[0,0],\"lr\":[1,1]}",
         "step[1]: must be an integer in [1, steps], increasing"},
        {"{\"format\":\"ledger-curve-2\",\"condition\":\"c\",\"seed\":1,\"log_every\":1,\"steps\":2}", "format: must be"},
        {"{\"format\":\"ledger-curve-1\",\"condition\":\"c\",\"seed\":1,\"log_every\":1,\"steps\":2,\"step\":[1],"
         "\"loss\":[\"1\"],\"mse\":[1],\"l0\":[1],\"dead_frac\":[0],\"aux_loss\":[0],\"lr\":[1]}",
         "loss[0]: must be a finite number"},
    };
    memset(&c, 0, sizeof c);
    memset(&st, 0, sizeof st);
    c.log_every = 7;
    c.steps = 100;
    c.seed = 42;
    c.condition = lg_strdup("arch=topk,k=4");
    for (i = 0; i < 20; i++) {
        st.step = (long)(7 * (i + 1) > 100 ? 100 : 7 * (i + 1));
        if (i > 0 && st.step <= c.pts[i - 1].step)
            break;
        st.loss = 1.0 / 3.0 + (double)i * 1e-17 + exp(-(double)i); /* digits that %.15g loses */
        st.mse = 3.14159265358979 * (double)i;
        st.l0 = 3.0 + 1.0 / 7.0;
        st.aux = 1e-300 * (double)i;
        st.lr = 0.002 * (double)(i + 1) / 13.0;
        CHECK_OK(lg_curve_add(&c, &st, (double)i / 11.0));
    }
    CHECK_OK(lg_curve_encode(&c, &b));
    CHECK_OK(lg_curve_parse("c.json", b.ptr, b.len, &back));
    CHECK(back.n == c.n && back.seed == 42 && back.log_every == 7 && back.steps == 100 && back.condition &&
          !strcmp(back.condition, "arch=topk,k=4"));
    for (i = 0; i < c.n && i < back.n; i++) {
        CHECK(back.pts[i].step == c.pts[i].step);
        for (m = 0; m < LG_CURVE_NMETRICS; m++)
            CHECK_MSG(memcmp(&back.pts[i].v[m], &c.pts[i].v[m], sizeof(double)) == 0, "point %zu metric %s", i,
                      lg_curve_metric_name(m));
    }
    lg_curve_release(&back);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int err = lg_curve_parse("bad.json", bad[i].text, strlen(bad[i].text), &back);
        CHECK_MSG(err == LG_EINPUT && strstr(lg_error_msg(), bad[i].want) && !strncmp(lg_error_msg(), "bad.json: ", 10),
                  "case %zu: %s", i, lg_error_msg());
        CHECK(back.pts == NULL && back.condition == NULL);
        lg_error_clear();
    }
    lg_curve_release(&c);
    lg_buf_release(&b);
}

#define SPEC_FMT                                                                                                   \
    "{\"format\": 1, \"name\": \"curves\","                                                                        \
    " \"data\": {\"source\": \"synthetic\", \"synthetic\": {\"d\": 8, \"n_features\": 16, \"n_samples\": 1200,"   \
    " \"active_mean\": 2, \"seed\": 4}},"                                                                          \
    " \"sae\": {\"arch\": \"topk\", \"d_sae\": 16, \"k\": 2}, \"train\": {\"steps\": 31, \"batch\": 32%s},"        \
    " \"grid\": {\"arch\": [\"topk\", \"jumprelu\"]}, \"seeds\": [5, 6, 7]}"

static int run_spec_opt(const char *log_every, const unsigned char *cells, char *dir, int resume, lg_run_result *r,
                        lg_study **sp)
{
    char spec[1024];
    lg_study *s = NULL;
    int err;
    snprintf(spec, sizeof spec, SPEC_FMT, log_every);
    memset(r, 0, sizeof *r);
    if ((err = lg_study_parse("curves.json", spec, strlen(spec), &s)) < 0)
        return err;
    {
        lg_run_options o = {.be = lg_backend_cpu(), .outdir = dir, .cells = cells, .resume = resume};
        err = lg_study_execute(s, &o, r);
    }
    *sp = s;
    return err;
}

static int run_spec(const char *log_every, const unsigned char *cells, char *dir, lg_run_result *r, lg_study **sp)
{
    return run_spec_opt(log_every, cells, dir, 0, r, sp);
}

static const lg_out_file *file_of(const lg_run_result *r, const char *name)
{
    size_t i;
    for (i = 0; i < r->nfiles; i++)
        if (!strcmp(r->files[i].name, name))
            return &r->files[i];
    return NULL;
}

static void digest_of(const lg_run_result *r, const char *name, char hex[65])
{
    const lg_out_file *f = file_of(r, name);
    hex[0] = '\0';
    if (f)
        CHECK_OK(lg_sha256_file(f->path, hex, NULL));
}

static void test_study(void)
{
    char d1[] = "/tmp/lgcurveAXXXXXX", d2[] = "/tmp/lgcurveBXXXXXX", d3[] = "/tmp/lgcurveCXXXXXX",
         d4[] = "/tmp/lgcurveDXXXXXX", a[65], b[65], cmd[256];
    lg_study *s1 = NULL, *s2 = NULL, *s3 = NULL, *s4 = NULL;
    lg_run_result r1, r2, r3, r4;
    unsigned char mask[4 * 3];
    const cJSON *c;
    size_t i, ncurves = 0;

    CHECK(mkdtemp(d1) && mkdtemp(d2) && mkdtemp(d3) && mkdtemp(d4));
    CHECK_OK(run_spec(", \"log_every\": 10", NULL, d1, &r1, &s1));
    CHECK_OK(run_spec(", \"log_every\": 10", NULL, d2, &r2, &s2));
    memset(mask, 0, sizeof mask);
    mask[1 * 3 + 1] = 1; /* jumprelu, seed 6 alone */
    CHECK_OK(run_spec(", \"log_every\": 10", mask, d3, &r3, &s3));
    CHECK_OK(run_spec("", NULL, d4, &r4, &s4));
    CHECK(s1 && s1->log_every == 10 && s4 && s4->log_every == 0);
    if (!r1.results || !r2.results || !r3.results || !r4.results)
        goto out;
    for (i = 0; i < r1.nfiles; i++)
        ncurves += strstr(r1.files[i].name, ".curve.json") != NULL;
    CHECK(ncurves == 6); /* 2 trained conditions x 3 seeds, no random-init controls */
    for (i = 0; i < r4.nfiles; i++)
        CHECK(strstr(r4.files[i].name, ".curve.json") == NULL);
    /* determinism: same bytes run to run, and seed 6 trained alone */
    digest_of(&r1, "cells/arch-jumprelu/seed-6.curve.json", a);
    digest_of(&r2, "cells/arch-jumprelu/seed-6.curve.json", b);
    CHECK(a[0] && !strcmp(a, b));
    digest_of(&r3, "cells/arch-jumprelu/seed-6.curve.json", b);
    CHECK(a[0] && !strcmp(a, b));
    digest_of(&r1, "cells/arch-topk/seed-7.curve.json", a);
    digest_of(&r2, "cells/arch-topk/seed-7.curve.json", b);
    CHECK(a[0] && !strcmp(a, b));
    /* log_every changes no result: the evidence equals the run without curves */
    CHECK(cJSON_Compare(cJSON_GetObjectItem(r1.results, "conditions"), cJSON_GetObjectItem(r4.results, "conditions"), 1));
    /* each curve: points at 10, 20, 30, 31; its last loss is the cell's final_loss */
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(r1.results, "conditions")) {
        const cJSON *cell;
        const char *id = cJSON_GetObjectItem(c, "id")->valuestring;
        cJSON_ArrayForEach(cell, cJSON_GetObjectItem(c, "cells")) {
            char name[256];
            const lg_out_file *f;
            lg_buf text = LG_BUF_INIT;
            lg_curve cv;
            double final_loss = cJSON_GetObjectItem(cJSON_GetObjectItem(cell, "metrics"), "final_loss")
                                    ? cJSON_GetObjectItem(cJSON_GetObjectItem(cell, "metrics"), "final_loss")->valuedouble
                                    : NAN;
            lg_curve_file_name(id, (uint64_t)cJSON_GetObjectItem(cell, "seed")->valuedouble, name, sizeof name);
            f = file_of(&r1, name);
            if (strstr(id, "control=random")) {
                CHECK(f == NULL);
                continue;
            }
            CHECK_MSG(f != NULL, "%s", name);
            if (!f)
                continue;
            CHECK_OK(lg_file_read(f->path, LG_CURVE_MAX_BYTES, &text));
            CHECK_OK(lg_curve_parse(name, text.ptr, text.len, &cv));
            CHECK(cv.n == 4 && cv.pts[0].step == 10 && cv.pts[3].step == 31 && !strcmp(cv.condition, id));
            CHECK_MSG(cv.n == 4 && cv.pts[3].v[0] == final_loss, "%s: last loss %.17g vs final_loss %.17g", name,
                      cv.n ? cv.pts[cv.n - 1].v[0] : NAN, final_loss);
            lg_curve_release(&cv);
            lg_buf_release(&text);
        }
    }
out:
    lg_run_result_release(&r1);
    lg_run_result_release(&r2);
    lg_run_result_release(&r3);
    lg_run_result_release(&r4);
    lg_study_free(s1);
    lg_study_free(s2);
    lg_study_free(s3);
    lg_study_free(s4);
    snprintf(cmd, sizeof cmd, "rm -rf %s %s %s %s", d1, d2, d3, d4);
    CHECK(system(cmd) == 0);
}

/* Stop and resume: a group taken from its marker registers its curves
 * (same bytes); a curve file changed since makes the group train again,
 * which writes the same curve back. */
static void test_resume(void)
{
    char d[] = "/tmp/lgcurveRXXXXXX", a[65], b[65], cmd[128];
    lg_study *s1 = NULL, *s2 = NULL, *s3 = NULL;
    lg_run_result r1, r2, r3;
    const lg_out_file *f;
    FILE *fp;
    CHECK(mkdtemp(d) != NULL);
    CHECK_OK(run_spec_opt(", \"log_every\": 10", NULL, d, 1, &r1, &s1));
    digest_of(&r1, "cells/arch-topk/seed-6.curve.json", a);
    CHECK(a[0] != '\0' && r1.groups_done == 2 && r1.groups_resumed == 0);
    CHECK_OK(run_spec_opt(", \"log_every\": 10", NULL, d, 1, &r2, &s2));
    digest_of(&r2, "cells/arch-topk/seed-6.curve.json", b);
    CHECK(r2.groups_resumed == 2 && r2.groups_done == 0 && !strcmp(a, b));
    CHECK(r1.nfiles == r2.nfiles);
    /* a changed curve file: its group is trained again and the curve rewritten */
    f = file_of(&r2, "cells/arch-topk/seed-6.curve.json");
    CHECK(f && (fp = fopen(f->path, "a")) && fputs(" ", fp) >= 0 && fclose(fp) == 0);
    CHECK_OK(run_spec_opt(", \"log_every\": 10", NULL, d, 1, &r3, &s3));
    digest_of(&r3, "cells/arch-topk/seed-6.curve.json", b);
    CHECK(r3.groups_resumed == 1 && r3.groups_done == 1 && !strcmp(a, b));
    lg_run_result_release(&r1);
    lg_run_result_release(&r2);
    lg_run_result_release(&r3);
    lg_study_free(s1);
    lg_study_free(s2);
    lg_study_free(s3);
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    CHECK(system(cmd) == 0);
}

static void test_spec(void)
{
    static const char *bad[] = {
        "{\"format\":1,\"name\":\"x\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{\"d\":4,\"n_features\":8,\"n_samples\":100}},\"sae\":{\"d_sae\":8},"
        "\"train\":{\"log_every\":-1},\"seeds\":[1]}",
        "{\"format\":1,\"name\":\"x\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{\"d\":4,\"n_features\":8,\"n_samples\":100}},\"sae\":{\"d_sae\":8},"
        "\"train\":{\"log_every\":2.5},\"seeds\":[1]}",
        "{\"format\":1,\"name\":\"x\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{\"d\":4,\"n_features\":8,\"n_samples\":100}},\"sae\":{\"d_sae\":8},"
        "\"grid\":{\"log_every\":[1,2]},\"seeds\":[1]}",
        "{\"format\":1,\"name\":\"x\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{\"d\":4,\"n_features\":8,\"n_samples\":100}},\"sae\":{\"d_sae\":8,\"log_every\":3},"
        "\"seeds\":[1]}",
    };
    static const char *want[] = {"train.log_every: must be an integer", "train.log_every: must be an integer",
                                 "grid.log_every: unknown key", "sae.log_every: unknown key"};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lg_study *s = NULL;
        int err = lg_study_parse("s.json", bad[i], strlen(bad[i]), &s);
        CHECK_MSG(err == LG_EINPUT && strstr(lg_error_msg(), want[i]), "case %zu: %s", i, lg_error_msg());
        lg_study_free(s);
        lg_error_clear();
    }
}

CHECK_MAIN(T(test_record), T(test_roundtrip), T(test_study), T(test_resume), T(test_spec))
