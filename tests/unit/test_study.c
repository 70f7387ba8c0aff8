/* test_study.c - study spec parsing, validation errors naming the key, grid expansion. */
#include "base/base.h"
#include "engine/hungarian.h"
#include "engine/run.h"
#include "engine/study.h"
#include "engine/train.h"
#include "tests/unit/check.h"

static const char *good =
    "{ \"format\": 1, \"name\": \"t\", \"data\": {\"source\": \"synthetic\", \"synthetic\": {\"d\": 16, "
    "\"n_features\": 32, \"n_samples\": 1000, \"seed\": 3}},\n"
    "  \"sae\": {\"arch\": \"topk\", \"d_sae\": 64}, \"train\": {\"steps\": 10, \"batch\": 32},\n"
    "  \"grid\": {\"k\": [4, 8], \"lr\": [0.001, 0.0003]}, \"seeds\": [1, 2, 3] }";

static int parse_err(const char *text, const char *want)
{
    lg_study *s = NULL;
    int rc = lg_study_parse("spec.json", text, strlen(text), &s);
    lg_study_free(s);
    if (rc != LG_EINPUT || !strstr(lg_error_msg(), want)) {
        fprintf(stderr, "  wanted error containing '%s', got rc=%d '%s'\n", want, rc, lg_error_msg());
        return 0;
    }
    return 1;
}

static void test_good(void)
{
    lg_study *s = NULL;
    lg_buf plan = LG_BUF_INIT;
    CHECK_OK(lg_study_parse("spec.json", good, strlen(good), &s));
    if (!s)
        return;
    CHECK(s->n_conds == 8);
    CHECK(strcmp(s->conds[0].id, "k=4,lr=0.001") == 0);
    CHECK(strcmp(s->conds[1].id, "k=4,lr=0.0003") == 0);
    CHECK(strcmp(s->conds[3].id, "k=8,lr=0.0003") == 0);
    CHECK(s->conds[3].p.k == 8 && s->conds[3].p.lr == 0.0003 && s->conds[3].p.d_sae == 64);
    CHECK(s->conds[4].control_random && s->conds[4].trained_twin == 0);
    CHECK(strcmp(s->conds[4].id, "k=4,lr=0.001,control=random") == 0);
    CHECK(lg_study_n_cells(s) == 24);
    CHECK(strlen(s->spec_digest) == 64);
    CHECK_OK(lg_study_plan_text(s, &plan));
    CHECK(strstr(plan.ptr, "cells: 24") != NULL);
    CHECK(s->conds[0].p.aux_k == 32);
    lg_buf_release(&plan);
    lg_study_free(s);
}

static void test_errors(void)
{
    CHECK(parse_err("{ \"name\": ", "spec.json:1:"));
    CHECK(parse_err("{\"name\":\"t\",\"dta\":{}}", "spec.json: dta: unknown key"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{\"dd\":1}},\"seeds\":[1]}",
                    "data.synthetic.dd: unknown key"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"sae\":{\"d_sae\":8,\"kk\":2},\"seeds\":[1]}",
                    "sae.kk: unknown key"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"sae\":{\"d_sae\":8},\"grid\":{\"k\":[2,\"x\"]},\"seeds\":[1]}",
                    "grid.k[1]: must be an integer"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"sae\":{\"d_sae\":8,\"k\":9},\"seeds\":[1]}",
                    "k = 9 exceeds d_sae = 8"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"sae\":{\"d_sae\":8},\"seeds\":[1,1]}",
                    "seeds[1]: repeated seed"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"sae\":{\"d_sae\":8}}",
                    "seeds: required"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"train\":{\"lr\":-1},\"sae\":{\"d_sae\":8},\"seeds\":[1]}",
                    "train.lr: must be a number"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"sae\":{\"arch\":\"foo\",\"d_sae\":8},\"seeds\":[1]}",
                    "sae.arch: must be one of"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"seeds\":[1]}",
                    "sae.d_sae: required"));
    CHECK(parse_err("{\"name\":\"a b\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"seeds\":[1]}", "name: use"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"file\"},\"seeds\":[1]}", "data.path: required"));
    CHECK(parse_err("[1]", "must be a JSON object"));
}

static void test_matryoshka_defaults(void)
{
    const char *t = "{\"name\":\"m\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},"
                    "\"sae\":{\"arch\":\"matryoshka\",\"d_sae\":64,\"k\":4},\"seeds\":[1,2],"
                    "\"controls\":{\"random_init\":false}}";
    lg_study *s = NULL;
    CHECK_OK(lg_study_parse("m.json", t, strlen(t), &s));
    if (!s)
        return;
    CHECK(s->n_conds == 1 && strcmp(s->conds[0].id, "default") == 0);
    CHECK(s->conds[0].p.n_prefixes == 4 && s->conds[0].p.prefixes[0] == 8 && s->conds[0].p.prefixes[3] == 64);
    lg_study_free(s);
    s = NULL;
    {
        /* d_sae not a multiple of 8: exactly d_sae/8, /4, /2, d_sae (it used
         * to double from d_sae/8: 12, 24, 48, 96, 100) */
        const char *t100 = "{\"name\":\"m\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},"
                           "\"sae\":{\"arch\":\"matryoshka\",\"d_sae\":100,\"k\":4},\"seeds\":[1]}";
        CHECK_OK(lg_study_parse("m.json", t100, strlen(t100), &s));
        if (!s)
            return;
        CHECK_MSG(s->conds[0].p.n_prefixes == 4 && s->conds[0].p.prefixes[0] == 12 &&
                      s->conds[0].p.prefixes[1] == 25 && s->conds[0].p.prefixes[2] == 50 &&
                      s->conds[0].p.prefixes[3] == 100,
                  "prefixes n=%d: %d %d %d %d", s->conds[0].p.n_prefixes, s->conds[0].p.prefixes[0],
                  s->conds[0].p.prefixes[1], s->conds[0].p.prefixes[2], s->conds[0].p.prefixes[3]);
        lg_study_free(s);
    }
}

/* Long condition ids: the random twin's id is the trained id plus
 * ",control=random" in full. It used to be cut at 100 characters, so two
 * trained ids that differ only after that gave two twins with one id (one
 * results key, one conditions/<id>/ folder for both). */
static void test_long_ids(void)
{
    const char *t = "{\"name\":\"l\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},"
                    "\"sae\":{\"arch\":\"jumprelu\",\"d_sae\":16},\"seeds\":[1,2],"
                    "\"grid\":{\"l1_coeff\":[0.1234567891],\"l0_coeff\":[0.1234567891],"
                    "\"jumprelu_threshold\":[0.1234567891],"
                    "\"jumprelu_bandwidth\":[0.1234567891,0.1234567892]}}";
    lg_study *s = NULL;
    size_t n;
    CHECK_OK(lg_study_parse("l.json", t, strlen(t), &s));
    if (!s)
        return;
    CHECK(s->n_conds == 4);
    n = strlen(s->conds[0].id);
    CHECK(n == 107);
    CHECK(strcmp(s->conds[0].id, s->conds[1].id) != 0);
    CHECK_MSG(strcmp(s->conds[2].id, s->conds[3].id) != 0, "twin ids collide: '%s'", s->conds[2].id);
    CHECK(strlen(s->conds[2].id) == n + strlen(",control=random"));
    CHECK(strncmp(s->conds[3].id, s->conds[1].id, n) == 0);
    CHECK(strcmp(s->conds[3].id + n, ",control=random") == 0);
    lg_study_free(s);
}

/* Bounds in messages are printed in full ("1048576", not "1.04858e+06"), and
 * steps outside what the trainer accepts ([1, 2^24]) are refused at parse
 * time, naming the key, not hours into a run (or, for 0, silently recording
 * an untrained SAE as the "trained" condition). */
static void test_bounds(void)
{
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"sae\":{\"d_sae\":8},"
                    "\"grid\":{\"k\":[2,0]},\"seeds\":[1]}",
                    "grid.k[1]: must be an integer in [1, 1048576]"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"sae\":{\"d_sae\":64},"
                    "\"train\":{\"steps\":0},\"seeds\":[1]}",
                    "train.steps: must be an integer in [1, 16777216]"));
    CHECK(parse_err("{\"name\":\"t\",\"data\":{\"source\":\"synthetic\",\"synthetic\":{}},\"sae\":{\"d_sae\":64},"
                    "\"train\":{\"steps\":16777217},\"seeds\":[1]}",
                    "train.steps: must be an integer in [1, 16777216]"));
}

/* The value studies/README.md "Study specs" gives a key in its list of defaults: the
 * number after "`key` " on the line(s) after "Defaults of a key left out".
 * NAN when absent. */
static double readme_default(const char *text, const char *key)
{
    const char *list = strstr(text, "Defaults of a key left out"), *end, *at;
    char pat[64];
    if (!list)
        return NAN;
    end = strstr(list, "\n- ");
    if (!end)
        end = strstr(list, "\n\n");
    snprintf(pat, sizeof pat, "`%s` ", key);
    at = strstr(list, pat);
    if (!at || (end && at > end))
        return NAN;
    return strtod(at + strlen(pat), NULL);
}

/* The defaults a spec gets for what it leaves out are the trainer's, the
 * Hungarian's and studies/README.md's. */
static void test_defaults(void)
{
    static const char spec[] = "{\"format\": 1, \"name\": \"d\", \"data\": {\"source\": \"synthetic\", "
                               "\"synthetic\": {\"d\": 8}}, \"sae\": {\"d_sae\": 64}, \"seeds\": [1]}";
    const char *src = getenv("LEDGER_SRC");
    lg_study *s = NULL;
    lg_train_config tc;
    lg_buf path = LG_BUF_INIT, readme = LG_BUF_INIT;
    size_t i;
    lg_train_config_default(&tc);
    CHECK_OK(lg_study_parse("d.json", spec, sizeof spec - 1, &s));
    if (!s)
        return;
    {
        const lg_cond_params *p = &s->conds[0].p;
        struct {
            const char *key;
            double parsed, trainer;
        } rows[] = {
            {"k", p->k, 32},
            {"l1_coeff", p->l1_coeff, tc.l1_coeff},
            {"l0_coeff", p->l0_coeff, tc.l0_coeff},
            {"jumprelu_threshold", p->jumprelu_threshold, tc.jumprelu_init_threshold},
            {"jumprelu_bandwidth", p->jumprelu_bandwidth, tc.jumprelu_bandwidth},
            {"steps", p->steps, tc.steps},
            {"batch", p->batch, tc.batch},
            {"lr", p->lr, tc.lr},
            {"warmup_steps", p->warmup_steps, tc.warmup_steps},
            {"decay_frac", p->decay_frac, tc.decay_frac},
            {"grad_clip", p->grad_clip, tc.grad_clip},
            {"beta1", p->beta1, tc.adam_beta1},
            {"beta2", p->beta2, tc.adam_beta2},
            {"eps", p->eps, tc.adam_eps},
            {"aux_coeff", p->aux_coeff, tc.aux_coeff},
            {"dead_after", p->dead_after, tc.dead_after},
            {"shared_threshold", s->shared_threshold, 0.7},
            {"dense_threshold", s->dense_threshold, 0.1},
            {"hungarian_max", s->hungarian_max, LG_HUNGARIAN_MAX_DEFAULT},
        };
        if (!src) {
            lg_study_free(s);
            CHECK_SKIP("LEDGER_SRC is not set: cannot read studies/README.md");
        }
        CHECK_OK(lg_buf_printf(&path, "%s/studies/README.md", src));
        CHECK_OK(lg_file_read(path.ptr, 0, &readme));
        for (i = 0; readme.ptr && i < sizeof rows / sizeof rows[0]; i++) {
            double doc = readme_default(readme.ptr, rows[i].key);
            CHECK_MSG(rows[i].parsed == rows[i].trainer, "%s: a spec gets %.17g, the trainer's default is %.17g",
                      rows[i].key, rows[i].parsed, rows[i].trainer);
            CHECK_MSG(fabs(doc - rows[i].parsed) <= 1e-12 * fabs(rows[i].parsed),
                      "%s: studies/README.md says %.17g, a spec gets %.17g", rows[i].key, doc, rows[i].parsed);
        }
    }
    CHECK(s->hungarian == 1);
    lg_study_free(s);
    lg_buf_release(&path);
    lg_buf_release(&readme);
}

/* lg_study_cpu_only: what --backend auto must not send to the GPU */
static void test_cpu_only(void)
{
    static const char *const cpu[] = {
        "\"sae\": {\"arch\": \"topk\", \"d_sae\": 16, \"k\": 2, \"ks\": [1, 2]}, \"grid\": {\"arch\": [\"topk\", \"hierarchical_topk\"]}, "
        "\"train\": {\"steps\": 10}",
        "\"sae\": {\"arch\": \"topk\", \"d_sae\": 16, \"k\": 2}, "
        "\"train\": {\"steps\": 10, \"consistency\": {\"weight\": 0.1}}",
    };
    char text[1024], why[256];
    lg_study *s = NULL;
    size_t i;
    for (i = 0; i < 3; i++) {
        snprintf(text, sizeof text,
                 "{\"format\": 1, \"name\": \"c\", \"data\": {\"source\": \"synthetic\", \"synthetic\": "
                 "{\"d\": 8, \"n_features\": 16, \"n_samples\": 100}}, %s, \"seeds\": [1, 2]}",
                 i < 2 ? cpu[i] : "\"sae\": {\"arch\": \"topk\", \"d_sae\": 16, \"k\": 2}, \"train\": {\"steps\": 10}");
        CHECK_OK(lg_study_parse("c.json", text, strlen(text), &s));
        if (!s)
            continue;
        why[0] = 0;
        CHECK(lg_study_cpu_only(s, why, sizeof why) == (i < 2));
        CHECK(i == 2 || strstr(why, i == 0 ? "hierarchical_topk" : "train.consistency") != NULL);
        lg_study_free(s);
        s = NULL;
    }
}

CHECK_MAIN(T(test_good), T(test_errors), T(test_matryoshka_defaults), T(test_long_ids), T(test_bounds),
           T(test_defaults), T(test_cpu_only))
