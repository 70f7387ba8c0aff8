/* test_claims.c - the claim language (gates/claims.c) and evaluation (gates/eval.c):
 * valid files and their AST, invalid files with their exact FILE:LINE:COL errors,
 * every verdict (PASS, FAIL, XFAIL, XPASS, MISSING, STALE, ERROR, BLOCKED) through an in-memory
 * sample provider, Holm across a file, and the JSON / JUnit renderings. */
#include <cjson/cJSON.h>

#include "base/base.h"
#include "gates/claims.h"
#include "gates/eval.h"
#include "tests/unit/check.h"

/* ---- an in-memory provider ------------------------------------------------------- */

typedef struct {
    const char *study, *unit, *metric;
    const char *params[3][2];  /* condition parameters, NULL-terminated */
    double values[12];
    size_t n;
    const char *run, *engine;
    lg_evidence status;
    const char *reason;
} entry;

typedef struct {
    const entry *e;
    size_t n;
    double buf[64];
    int calls;
    int fail_metric;  /* the provider rejects metric "nonexistent" */
} mem_provider;

static const char *param_of(const entry *e, const char *key)
{
    int i;
    for (i = 0; i < 3 && e->params[i][0]; i++)
        if (!strcmp(e->params[i][0], key))
            return e->params[i][1];
    return NULL;
}

static int mem_provide(void *ctx, const lg_sample_query *q, lg_samples *out)
{
    mem_provider *m = ctx;
    size_t i, j, k = 0;
    m->calls++;
    if (!strcmp(q->metric, "nonexistent"))
        return lg_error_set(LG_EINPUT, "unknown metric '%s'", q->metric);
    out->status = LG_EVIDENCE_MISSING;
    out->reason = "no run of this study";
    for (i = 0; i < m->n; i++) {
        const entry *e = &m->e[i];
        int ok = !strcmp(e->study, q->study) && !strcmp(e->unit, lg_unit_name(q->unit)) && !strcmp(e->metric, q->metric);
        for (j = 0; ok && j < q->nfilters; j++)
            ok = lg_filter_match(&q->filters[j], param_of(e, q->filters[j].key));
        if (q->run && ok)
            ok = !strncmp(e->run, q->run, strlen(q->run));
        if (!ok)
            continue;
        for (j = 0; j < e->n && k < 64; j++)
            m->buf[k++] = e->values[j];
        out->run_id = e->run;
        out->engine_version = e->engine;
        out->status = e->status;
        out->reason = e->reason;
    }
    out->values = m->buf;
    out->n = k;
    return 0;
}

#define TRAINED {0.31, 0.29, 0.35, 0.33, 0.30, 0.36, 0.34, 0.32, 0.33, 0.35}, 10
#define RANDOM {0.299, 0.301, 0.298, 0.300, 0.297, 0.302, 0.2991, 0.3002, 0.2985, 0.3004}, 10
static const entry DATA[] = {
    {"small-topk", "pair", "mmcs", {{"control", "trained"}, {"k", "8"}}, TRAINED, "aaaa1111", "0.1.0", LG_EVIDENCE_FRESH, NULL},
    {"small-topk", "pair", "mmcs", {{"control", "random"}, {"k", "8.0"}}, RANDOM, "aaaa1111", "0.1.0", LG_EVIDENCE_FRESH, NULL},
    {"small-topk", "cell", "explained_variance", {{"arch", "topk"}, {"k", "8"}}, {0.93, 0.95, 0.91, 0.94}, 4, "aaaa1111", "0.1.0", LG_EVIDENCE_FRESH, NULL},
    {"small-topk", "cell", "explained_variance", {{"arch", "topk"}, {"k", "4"}}, {0.85, 0.88}, 2, "aaaa1111", "0.1.0", LG_EVIDENCE_FRESH, NULL},
    {"adaptive", "pair", "mmcs", {{"k", "4"}}, {0.52, 0.55, 0.50, 0.53, 0.56, 0.54}, 6, "bbbb2222", "0.1.0", LG_EVIDENCE_FRESH, NULL},
    {"adaptive", "pair", "mmcs", {{"k", "32"}}, {0.41, 0.44, 0.40, 0.43, 0.42, 0.45}, 6, "bbbb2222", "0.1.0", LG_EVIDENCE_FRESH, NULL},
    {"changed", "pair", "mmcs", {{"k", "4"}}, {0.5, 0.6, 0.7}, 3, "cccc3333", "0.1.0", LG_EVIDENCE_STALE, "spec digest changed since run cccc3333"},
    {"old", "pair", "mmcs", {{"k", "4"}}, {0.5, 0.6, 0.7}, 3, "dddd4444", "0.0.9", LG_EVIDENCE_FRESH, NULL},
    {"tiny", "seed", "mmcs", {{"k", "4"}}, {0.5}, 1, "eeee5555", "0.1.0", LG_EVIDENCE_FRESH, NULL},
};

static const char *EXAMPLE =
    "# shipped-style claims\n"
    "claims-language 1\n"
    "\n"
    "claim trained-beats-random\n"
    "  says \"Trained TopK SAEs agree across seeds more than random-init SAEs\"\n"
    "  study small-topk\n"
    "  sample trained = pair.mmcs where control=trained k=8\n"
    "  sample random  = pair.mmcs where control=random and k = 8   # 8.0 matches numerically\n"
    "  require mean(trained) - mean(random) > 0\n"
    "  require welch(trained, random, alternative=greater).p < 0.01\n"
    "  require mannwhitney(trained, random, alternative=greater).p < 0.01\n"
    "  correct holm\n"
    "end\n"
    "\n"
    "claim k4-beats-k32\n"
    "  says \"Mean MMCS at k=4 exceeds k=32 (bootstrap 95% CI of the difference above 0)\"\n"
    "  study adaptive\n"
    "  run bbbb\n"
    "  stale-if engine-older-than 0.1.0\n"
    "  sample k4 = pair.mmcs where k=4\n"
    "  sample k32 = pair.mmcs where k=32\n"
    "  require bootstrap_diff(k4, k32, level=0.95, resamples=2000, seed=1).lo > 0\n"
    "  require bootstrap_diff(k4, k32, resamples=2000, seed=1, method=bca).lo > 0\n"
    "  require permutation(k4, k32, alternative=greater, resamples=2000, seed=3).p < 0.05\n"
    "end\n"
    "\n"
    "claim ev-every-seed\n"
    "  says \"Explained variance is at least 0.9 for every seed at k=8\"\n"
    "  study small-topk\n"
    "  sample ev = cell.explained_variance where arch=topk k>=8\n"
    "  require min(ev) >= 0.9\n"
    "end\n"
    "\n"
    "claim ev-k4-negative\n"
    "  says \"Documented negative result: at k=4 explained variance stays below 0.9\"\n"
    "  study small-topk\n"
    "  sample ev = cell.explained_variance where arch=topk k=4\n"
    "  require min(ev) >= 0.9\n"
    "  expect fail\n"
    "end\n";

static void test_parse_example(void)
{
    lg_claim_file *f = NULL;
    const lg_claim *c;
    CHECK_OK(lg_claims_parse("ex.claims", EXAMPLE, strlen(EXAMPLE), &f));
    if (!f)
        return;
    CHECK(f->nclaims == 4);
    c = &f->claims[0];
    CHECK(!strcmp(c->id, "trained-beats-random") && c->line == 4);
    CHECK(!strcmp(c->says, "Trained TopK SAEs agree across seeds more than random-init SAEs"));
    CHECK(!strcmp(c->study, "small-topk") && c->run == NULL && c->correct_holm && !c->expect_fail);
    CHECK(c->nsamples == 2 && c->samples[1].unit == LG_UNIT_PAIR && !strcmp(c->samples[1].metric, "mmcs"));
    CHECK(c->samples[1].nfilters == 2 && c->samples[1].filters[1].is_num && c->samples[1].filters[1].num == 8);
    CHECK(c->nrequires == 3);
    CHECK(c->requires[0].nterms == 2 && c->requires[0].terms[1].sign == -1 && c->requires[0].op == LG_OP_GT);
    CHECK(!strcmp(c->requires[1].text, "welch(trained, random, alternative=greater).p < 0.01"));
    CHECK(c->requires[1].terms[0].fn == LG_FN_WELCH && c->requires[1].terms[0].alt == LG_ALT_GREATER);
    CHECK(c->requires[1].terms[0].field == LG_FIELD_P && c->requires[1].threshold == 0.01);
    c = &f->claims[1];
    CHECK(!strcmp(c->run, "bbbb") && !strcmp(c->engine_min, "0.1.0"));
    CHECK(c->requires[0].terms[0].resamples == 2000 && c->requires[0].terms[0].seed == 1);
    CHECK(c->requires[1].terms[0].boot == LG_BOOT_BCA && c->requires[1].terms[0].level == 0.95);
    CHECK(f->claims[2].samples[0].filters[1].op == LG_OP_GE);
    CHECK(f->claims[3].expect_fail == 1);
    lg_claims_free(f);
}

/* Each invalid input and the exact error it must give. */
static void test_parse_errors(void)
{
    static const struct { const char *text, *err; } cases[] = {
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require mean(t) > \n end\n", "f.claims:5:20: expected a number"},
        {"claim a\n  says \"x\"\n  study s\n  require mean(t) > 0\nend\n", "f.claims:4:16: unknown sample 't'"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require mean(t) > 0\n", "f.claims:1:1: claim 'a' has no 'end'"},
        {"claim a\n  says \"unterminated\n", "f.claims:2:8: unterminated string"},
        {"claim a\n  study s\n  sample t = pair.mmcs\n  require mean(t) > 0\nend\n", "f.claims:1:1: claim 'a' has no 'says"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\nend\n", "f.claims:1:1: claim 'a' has no 'require' line"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = cells.mmcs\n", "f.claims:4:14: unknown unit 'cells'"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require welch(t).p < 0.01\nend\n", "f.claims:5:11: welch() takes 2 samples, got 1"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require bootstrap(t) > 0\nend\n", "f.claims:5:23: bootstrap() needs a field: .lo, .hi or .est"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require bootstrap(t, level=95).lo > 0\nend\n", "f.claims:5:24: level must be a number in (0, 1)"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  sample u = pair.mmcs\n  require welch(t, u, alternative=bigger).p < 0.01\nend\n", "f.claims:6:23: alternative must be two-sided, greater or less"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require mean(t).p > 0\nend\n", "f.claims:5:19: mean() has no field 'p'"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require mean(t) = 0\nend\n", "f.claims:5:19: a requirement compares with <, <=, > or >="},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require mean(t) > 0 extra\nend\n", "f.claims:5:23: unexpected 'e'"},
        {"claim a\n  frobnicate\n", "f.claims:2:3: unknown directive 'frobnicate'"},
        {"claim a\n  says \"x\"\n  says \"y\"\n", "f.claims:3:3: 'says' given twice"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  sample t = pair.ev\n", "f.claims:5:10: sample 't' is already defined (line 4)"},
        {"claim a\nclaim b\n", "f.claims:2:1: claim 'a' (line 1) has no 'end' before the next claim"},
        {"says \"x\"\n", "f.claims:1:1: expected 'claim ID', found 'says'"},
        {"claims-language 2\n", "f.claims:1:17: unsupported claims-language 2"},
        {"claim a\n  says \"x\"\n  study s\n  stale-if engine-older-than 0..1\n", "f.claims:4:30: '0..1' is not a version"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs where\n", "f.claims:4:29: expected filters after 'where'"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs where k=4\n  require n(t) > 1e999\nend\n", "f.claims:5:18: '1e999' is not a finite number"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require mean(t) > 0\nend\nclaim a\n", "f.claims:7:7: claim 'a' is already defined (line 1)"},
        {"claim a\n  says \"a \\q b\"\n", "f.claims:2:11: unknown escape"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require frob(t) > 0\nend\n", "f.claims:5:11: unknown function 'frob'"},
        {"claim a\n  says \"x\"\n  study s\n  sample t = pair.mmcs\n  require permutation(t, t, resamples=0).p < 0.05\nend\n", "f.claims:5:29: resamples must be an integer in [1, 1000000]"},
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        lg_claim_file *f = NULL;
        int rc = lg_claims_parse("f.claims", cases[i].text, strlen(cases[i].text), &f);
        CHECK_MSG(rc == LG_EINPUT && f == NULL, "case %zu: rc %d", i, rc);
        CHECK_MSG(!strncmp(lg_error_msg(), cases[i].err, strlen(cases[i].err)), "case %zu: got '%s', want '%s'", i,
                  lg_error_msg(), cases[i].err);
        lg_claims_free(f);
    }
}

static void test_parse_limits(void)
{
    lg_buf b = LG_BUF_INIT;
    lg_claim_file *f = NULL;
    int i;
    /* a line over the limit */
    lg_buf_puts(&b, "claim a\n  says \"");
    for (i = 0; i < LG_CLAIMS_MAX_LINE; i++)
        lg_buf_puts(&b, "x");
    lg_buf_puts(&b, "\"\n");
    CHECK(lg_claims_parse("f", b.ptr, b.len, &f) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "f:2:4097: line longer than 4096 bytes") != NULL);
    /* a NUL byte */
    CHECK(lg_claims_parse("f", "claim a\n\0", 9, &f) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "f:2:1: NUL byte") != NULL);
    /* too many samples */
    lg_buf_clear(&b);
    lg_buf_puts(&b, "claim a\n  says \"x\"\n  study s\n");
    for (i = 0; i <= LG_CLAIMS_MAX_SAMPLES; i++)
        lg_buf_printf(&b, "  sample s%d = pair.mmcs\n", i);
    CHECK(lg_claims_parse("f", b.ptr, b.len, &f) == LG_EINPUT);
    CHECK(strstr(lg_error_msg(), "more than 32 samples") != NULL);
    /* allocation failure at every point of a parse is reported, never a crash or leak */
    for (i = 0; i < 400; i++) {
        int rc;
        lg_alloc_fail_after(i);
        rc = lg_claims_parse("ex", EXAMPLE, strlen(EXAMPLE), &f);
        lg_alloc_fail_after(-1);
        if (rc == 0) {
            lg_claims_free(f);
            break;
        }
        CHECK(rc == LG_ENOMEM && f == NULL);
    }
    CHECK(i < 400);
    lg_buf_release(&b);
}

static lg_eval_result *eval_text(const char *text, mem_provider *m)
{
    lg_claim_file *f = NULL;
    lg_eval_result *r = NULL;
    int rc = lg_claims_parse("t.claims", text, strlen(text), &f);
    CHECK_OK(rc);
    if (rc == 0)
        CHECK_OK(lg_eval_file(f, mem_provide, m, &r));
    lg_claims_free(f);
    return r;
}

static const lg_claim_result *find(const lg_eval_result *r, const char *id)
{
    size_t i;
    for (i = 0; r && i < r->nclaims; i++)
        if (!strcmp(r->claims[i].id, id))
            return &r->claims[i];
    return NULL;
}

static void test_verdicts(void)
{
    mem_provider m = {DATA, sizeof(DATA) / sizeof(DATA[0]), {0}, 0, 0};
    lg_eval_result *r = eval_text(EXAMPLE, &m);
    const lg_claim_result *c;
    if (!r)
        return;
    CHECK(r->nclaims == 4);
    c = find(r, "trained-beats-random");
    CHECK(c && c->verdict == LG_VERDICT_PASS);
    CHECK(c && c->nrun_ids == 1 && !strcmp(c->run_ids[0], "aaaa1111"));
    CHECK(c && c->samples[0].n == 10 && c->samples[1].n == 10);  /* k=8.0 matched k=8 */
    /* Welch one-sided: scipy.stats.ttest_ind(trained, random, equal_var=False, alternative='greater') */
    CHECK(c && c->reqs[1].corrected && c->reqs[1].terms[0].p < 0.01);
    /* Holm over this claim's two p's: the smaller is doubled, the larger kept (monotone) */
    CHECK(c && c->reqs[1].terms[0].p < c->reqs[2].terms[0].p);
    CHECK(c && c->reqs[1].terms[0].p_adj == 2 * c->reqs[1].terms[0].p);
    CHECK(c && c->reqs[2].terms[0].p_adj == fmax(c->reqs[2].terms[0].p, 2 * c->reqs[1].terms[0].p));
    CHECK(c && !c->reqs[0].corrected);  /* not a .p requirement */
    c = find(r, "k4-beats-k32");
    CHECK(c && c->verdict == LG_VERDICT_PASS && !strcmp(c->run_ids[0], "bbbb2222"));
    CHECK(c && c->reqs[0].terms[0].lo > 0 && c->reqs[0].terms[0].resamples == 2000);
    CHECK(c && c->reqs[2].terms[0].exact);  /* C(12, 6) = 924 <= 2000: full enumeration */
    CHECK_CLOSE(c ? c->reqs[2].terms[0].p : 0, 1.0 / 924, 1e-15, 0);  /* every k4 value exceeds every k32 value */
    c = find(r, "ev-every-seed");
    CHECK(c && c->verdict == LG_VERDICT_PASS && c->samples[0].n == 4);  /* k>=8 excludes k=4 */
    CHECK_CLOSE(c ? c->reqs[0].value : 0, 0.91, 1e-15, 0);
    c = find(r, "ev-k4-negative");
    CHECK(c && c->verdict == LG_VERDICT_XFAIL && lg_verdict_ok(c->verdict));
    CHECK(lg_eval_ok(r) && r->counts[LG_VERDICT_PASS] == 3 && r->counts[LG_VERDICT_XFAIL] == 1);
    lg_eval_result_free(r);

    r = eval_text("claim fails\n says \"random beats trained\"\n study small-topk\n"
                  " sample t = pair.mmcs where control=trained\n sample r = pair.mmcs where control=random\n"
                  " require welch(r, t, alternative=greater).p < 0.05\nend\n"
                  "claim xpass\n says \"expected to fail but holds\"\n study small-topk\n"
                  " sample ev = cell.explained_variance where k=8\n require min(ev) >= 0.9\n expect fail\nend\n"
                  "claim missing\n says \"no such study\"\n study nosuch\n"
                  " sample x = pair.mmcs\n require mean(x) > 0\nend\n"
                  "claim nomatch\n says \"filters match nothing\"\n study small-topk\n"
                  " sample x = pair.mmcs where control=trained k=999\n require mean(x) > 0\nend\n"
                  "claim stale-digest\n says \"the study file changed\"\n study changed\n"
                  " sample x = pair.mmcs where k=4\n require mean(x) > 0\nend\n"
                  "claim stale-engine\n says \"produced by an older engine\"\n study old\n stale-if engine-older-than 0.1.0\n"
                  " sample x = pair.mmcs where k=4\n require mean(x) > 0\nend\n"
                  "claim not-stale-without-policy\n says \"the same evidence, no policy\"\n study old\n"
                  " sample x = pair.mmcs where k=4\n require mean(x) > 0\nend\n"
                  "claim error\n says \"sd of one value\"\n study tiny\n"
                  " sample x = seed.mmcs\n require sd(x) < 1\nend\n"
                  "claim pinned-missing\n says \"a pinned run that does not exist\"\n study adaptive\n run ffff\n"
                  " sample x = pair.mmcs where k=4\n require mean(x) > 0\nend\n",
                  &m);
    if (!r)
        return;
    CHECK((c = find(r, "fails")) && c->verdict == LG_VERDICT_FAIL && strstr(c->reason, "does not hold"));
    CHECK((c = find(r, "xpass")) && c->verdict == LG_VERDICT_XPASS && !lg_verdict_ok(c->verdict));
    CHECK((c = find(r, "missing")) && c->verdict == LG_VERDICT_MISSING && strstr(c->reason, "no run of this study"));
    CHECK((c = find(r, "nomatch")) && c->verdict == LG_VERDICT_MISSING && c->nreqs == 0);
    CHECK((c = find(r, "stale-digest")) && c->verdict == LG_VERDICT_STALE && strstr(c->reason, "spec digest changed"));
    CHECK((c = find(r, "stale-engine")) && c->verdict == LG_VERDICT_STALE && strstr(c->reason, "engine 0.0.9, older than 0.1.0"));
    CHECK((c = find(r, "not-stale-without-policy")) && c->verdict == LG_VERDICT_PASS);
    CHECK((c = find(r, "error")) && c->verdict == LG_VERDICT_ERROR && strstr(c->reason, "sd() is not defined"));
    CHECK((c = find(r, "pinned-missing")) && c->verdict == LG_VERDICT_MISSING);
    CHECK(!lg_eval_ok(r));
    lg_eval_result_free(r);
}

static void test_provider_error_and_holm(void)
{
    mem_provider m = {DATA, sizeof(DATA) / sizeof(DATA[0]), {0}, 0, 0};
    lg_claim_file *f = NULL;
    lg_eval_result *r = NULL;
    const char *bad = "claim a\n says \"x\"\n study small-topk\n sample x = pair.nonexistent\n require mean(x) > 0\nend\n";
    CHECK_OK(lg_claims_parse("t.claims", bad, strlen(bad), &f));
    CHECK(lg_eval_file(f, mem_provide, &m, &r) == LG_EINPUT && r == NULL);
    CHECK(strstr(lg_error_msg(), "t.claims:4: claim 'a': sample 'x': unknown metric 'nonexistent'") != NULL);
    lg_claims_free(f);
    /* Holm: two corrected claims share a family of 3 p-values; a threshold that the raw
     * p meets but the adjusted one does not must FAIL. */
    r = eval_text("claim h1\n says \"x\"\n study small-topk\n"
                  " sample t = pair.mmcs where control=trained\n sample r = pair.mmcs where control=random\n"
                  " require welch(t, r, alternative=greater).p < 0.003\n"
                  " require mannwhitney(t, r, alternative=greater).p < 0.01\n correct holm\nend\n"
                  "claim h2\n says \"y\"\n study adaptive\n sample a = pair.mmcs where k=4\n sample b = pair.mmcs where k=32\n"
                  " require welch(a, b).p < 0.001\n correct holm\nend\n",
                  &m);
    if (r) {
        const lg_claim_result *h1 = find(r, "h1"), *h2 = find(r, "h2");
        double p[3] = {h1->reqs[0].terms[0].p, h1->reqs[1].terms[0].p, h2->reqs[0].terms[0].p}, adj[3];
        lg_stats_holm(p, 3, adj);
        CHECK(h1->reqs[0].corrected && h1->reqs[1].corrected && h2->reqs[0].corrected);
        CHECK(h1->reqs[0].terms[0].p_adj == adj[0] && h1->reqs[1].terms[0].p_adj == adj[1] && h2->reqs[0].terms[0].p_adj == adj[2]);
        CHECK(h1->reqs[0].value == adj[0]);
        /* scipy: p = 0.00176 (Welch), 0.00404 (MWU asymptotic), 3.61e-6 (Welch two-sided) */
        CHECK_CLOSE(p[0], 0.0017594065173902305, 1e-12, 1e-6);
        CHECK_CLOSE(p[1], 0.004039619482697207, 1e-12, 1e-6);
        CHECK_CLOSE(adj[0], 2 * p[0], 1e-15, 0);
        CHECK_CLOSE(adj[2], 3 * p[2], 1e-15, 0);
        /* raw 0.00176 < 0.003 holds, Holm-adjusted 0.00352 does not: the claim fails */
        CHECK(!h1->reqs[0].holds && h1->verdict == LG_VERDICT_FAIL && h2->verdict == LG_VERDICT_PASS);
        lg_eval_result_free(r);
    }
}

static void test_render(void)
{
    mem_provider m = {DATA, sizeof(DATA) / sizeof(DATA[0]), {0}, 0, 0};
    lg_eval_result *r = eval_text(EXAMPLE, &m), *r2;
    const lg_eval_result *both[2];
    char *json = NULL, *xml = NULL;
    lg_buf text = LG_BUF_INIT;
    cJSON *o, *claims, *c0, *req, *term;
    {
        const char *t2 = "claim odd\n says \"quote \\\" and <tag>\"\n study nosuch\n sample x = pair.mmcs\n require mean(x) > 0\nend\n";
        lg_claim_file *f2 = NULL;
        r2 = NULL;
        CHECK_OK(lg_claims_parse("a<&>.claims", t2, strlen(t2), &f2));
        if (f2)
            CHECK_OK(lg_eval_file(f2, mem_provide, &m, &r2));
        lg_claims_free(f2);
    }
    if (!r || !r2)
        goto out;
    both[0] = r;
    both[1] = r2;
    CHECK_OK(lg_eval_render_text(r, &text));
    CHECK(strstr(text.ptr, "PASS    trained-beats-random  (t.claims:4, study small-topk, run aaaa1111)") != NULL);
    CHECK(strstr(text.ptr, "XFAIL   ev-k4-negative") != NULL);
    CHECK(strstr(text.ptr, "p_holm=") != NULL && strstr(text.ptr, "(2000 resamples, seed 1, bca)") != NULL);
    CHECK_OK(lg_eval_render_json(both, 2, &json));
    o = json ? cJSON_Parse(json) : NULL;
    CHECK(o != NULL);
    if (o) {
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(o, "ok")));
        claims = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "files"), 0), "claims");
        c0 = cJSON_GetArrayItem(claims, 0);
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "verdict")), "PASS"));
        req = cJSON_GetArrayItem(cJSON_GetObjectItem(c0, "requirements"), 1);
        term = cJSON_GetArrayItem(cJSON_GetObjectItem(req, "terms"), 0);
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(term, "fn")), "welch"));
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(term, "alternative")), "greater"));
        CHECK(cJSON_GetArrayItem(cJSON_GetObjectItem(term, "n"), 1)->valuedouble == 10);
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(term, "lo")));  /* NaN -> null */
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(req, "holm")));
        cJSON_Delete(o);
    }
    CHECK_OK(lg_eval_render_junit(both, 2, &xml));
    CHECK(xml && strstr(xml, "<testsuites name=\"ledger claims\" tests=\"5\" failures=\"0\" errors=\"1\">") != NULL);
    CHECK(xml && strstr(xml, "<testcase classname=\"claims.a&lt;&amp;&gt;.claims\" name=\"odd\">") != NULL);
    CHECK(xml && strstr(xml, "<testcase classname=\"claims.t.claims\" name=\"trained-beats-random\">") != NULL);
    CHECK(xml && strstr(xml, "<error type=\"MISSING\" message=\"MISSING: sample &apos;x&apos;") != NULL);
    CHECK(xml && strstr(xml, "<tag>") == NULL);
out:
    lg_free(json);
    lg_free(xml);
    lg_buf_release(&text);
    lg_eval_result_free(r);
    lg_eval_result_free(r2);
}

static void test_eval_alloc_failure(void)
{
    mem_provider m = {DATA, sizeof(DATA) / sizeof(DATA[0]), {0}, 0, 0};
    lg_claim_file *f = NULL;
    lg_eval_result *r = NULL;
    int i, rc = -1;
    CHECK_OK(lg_claims_parse("t", EXAMPLE, strlen(EXAMPLE), &f));
    for (i = 0; f && i < 2000; i++) {
        lg_alloc_fail_after(i);
        rc = lg_eval_file(f, mem_provide, &m, &r);
        lg_alloc_fail_after(-1);
        if (rc == 0)
            break;
        CHECK_MSG(rc == LG_ENOMEM && r == NULL, "allocation %d: rc %d", i, rc);
    }
    CHECK(rc == 0 && r && lg_eval_ok(r));
    lg_eval_result_free(r);
    lg_claims_free(f);
}

/* Regression: an allocation failure while describing a MISSING sample that is
 * not the claim's last used to be lost (the next provider call overwrote the
 * code), and the claim was then evaluated on a sample with no values. Every
 * failure must surface as LG_ENOMEM; success must say MISSING. Also: under
 * stale-if, every sample of the old run is marked stale, not just the first. */
static void test_missing_alloc_failure(void)
{
    static const char *text = "claim m\n says \"x\"\n study small-topk\n"
                              " sample gone = pair.mmcs where control=trained k=999\n"
                              " sample here = pair.mmcs where control=trained k=8\n"
                              " require mean(here) - mean(gone) > 0\nend\n"
                              "claim old\n says \"y\"\n study old\n stale-if engine-older-than 0.1.0\n"
                              " sample a = pair.mmcs where k=4\n sample b = pair.mmcs where k=4\n"
                              " require diff(a, b) > -1\nend\n";
    mem_provider m = {DATA, sizeof(DATA) / sizeof(DATA[0]), {0}, 0, 0};
    lg_claim_file *f = NULL;
    lg_eval_result *r = NULL;
    int i, rc = -1;
    CHECK_OK(lg_claims_parse("t", text, strlen(text), &f));
    for (i = 0; f && i < 500; i++) {
        lg_alloc_fail_after(i);
        rc = lg_eval_file(f, mem_provide, &m, &r);
        lg_alloc_fail_after(-1);
        if (rc == 0)
            break;
        CHECK_MSG(rc == LG_ENOMEM && r == NULL, "allocation %d: rc %d", i, rc);
    }
    CHECK(rc == 0 && r);
    if (r) {
        const lg_claim_result *c = find(r, "m");
        CHECK(c && c->verdict == LG_VERDICT_MISSING && c->reason && strstr(c->reason, "sample 'gone'"));
        c = find(r, "old");
        CHECK(c && c->verdict == LG_VERDICT_STALE && c->nsamples == 2);
        CHECK(c && c->samples[0].status == LG_EVIDENCE_STALE && c->samples[1].status == LG_EVIDENCE_STALE);
    }
    lg_eval_result_free(r);
    lg_claims_free(f);
}

static void test_version_and_filters(void)
{
    lg_filter f = {"k", LG_OP_EQ, "4", 1, 4};
    CHECK(lg_version_cmp("0.10.0", "0.9.2") > 0 && lg_version_cmp("0.1", "0.1.0") == 0);
    CHECK(lg_version_cmp("0.0.9", "0.1.0") < 0 && lg_version_cmp("1.2.3-dirty", "1.2.3") == 0);
    CHECK(lg_filter_match(&f, "4.0") && !lg_filter_match(&f, "4.5") && !lg_filter_match(&f, NULL));
    f.op = LG_OP_LT;
    CHECK(lg_filter_match(&f, "3") && !lg_filter_match(&f, "topk"));
    f.op = LG_OP_NE;
    f.value = "topk";
    f.is_num = 0;
    CHECK(lg_filter_match(&f, "relu") && !lg_filter_match(&f, "topk"));
}


/* ---- `by KEY` grids and pinned runs ------------------------------------------------- */

#define GT {0.60, 0.62, 0.58, 0.61, 0.63, 0.59}, 6
#define GR {0.55, 0.57, 0.56, 0.54, 0.58, 0.55}, 6
#define GT8 {0.51, 0.49, 0.53, 0.50, 0.52, 0.48}, 6
static const entry GRID[] = {
    {"g", "pair", "mmcs", {{"k", "4"}, {"control", "trained"}}, GT, "ffff6666", "0.1.0", LG_EVIDENCE_FRESH, NULL},
    {"g", "pair", "mmcs", {{"k", "4"}, {"control", "random"}}, GR, "ffff6666", "0.1.0", LG_EVIDENCE_FRESH, NULL},
    {"g", "pair", "mmcs", {{"k", "8"}, {"control", "trained"}}, GT8, "ffff6666", "0.1.0", LG_EVIDENCE_FRESH, NULL},
    {"g", "pair", "mmcs", {{"k", "8"}, {"control", "random"}}, GR, "ffff6666", "0.1.0", LG_EVIDENCE_FRESH, NULL},
};

typedef struct {
    mem_provider m;
    const char *vals[8];
    int grid_calls;
    lg_evidence status; /* what the grid answers */
} grid_provider;

/* Distinct values of q->key among the study's entries, in data order. */
static int mem_grid(void *ctx, const lg_grid_query *q, lg_grid_answer *out)
{
    grid_provider *g = ctx;
    size_t i, j, n = 0;
    g->grid_calls++;
    out->status = g->status;
    out->reason = g->status == LG_EVIDENCE_FRESH ? NULL : "no run of study g";
    if (g->status != LG_EVIDENCE_FRESH)
        return 0;
    for (i = 0; i < g->m.n; i++) {
        const char *v = param_of(&g->m.e[i], q->key);
        if (strcmp(g->m.e[i].study, q->study) || !v)
            continue;
        for (j = 0; j < n && strcmp(g->vals[j], v); j++)
            ;
        if (j == n && n < 8)
            g->vals[n++] = v;
        out->run_id = g->m.e[i].run;
    }
    out->values = g->vals;
    out->n = n;
    return 0;
}

static lg_eval_result *eval_grid(const char *text, grid_provider *g)
{
    lg_claim_file *f = NULL;
    lg_eval_result *r = NULL;
    int rc = lg_claims_parse("g.claims", text, strlen(text), &f);
    CHECK_OK(rc);
    if (rc == 0)
        CHECK_OK(lg_eval_file_grid(f, (lg_sample_provider)mem_provide, mem_grid, g, &r));
    lg_claims_free(f);
    return r;
}

static void test_grid_parse(void)
{
    static const struct {
        const char *text, *err;
    } bad[] = {
        {"claim a\n  by\n", "f.claims:2:5: expected a grid parameter name"},
        {"claim a\n  by k j\n", "f.claims:2:8: unexpected 'j'"},
        {"claim a\n  by k\n  for each j\n", "f.claims:3:3: a second 'by' / 'for each' in claim 'a'"},
        {"claim a\n  for k\n", "f.claims:2:7: expected 'for each PARAM'"},
        {"claim a\n  for each\n", "f.claims:2:11: expected a grid parameter name"},
    };
    const char *ok = "claim a\n says \"x\"\n study g\n by k\n sample t = pair.mmcs\n require mean(t) > 0\nend\n"
                     "claim b\n says \"y\"\n study g\n for each arch.kind\n sample t = pair.mmcs\n require mean(t) > 0\nend\n"
                     "claim c\n says \"z\"\n study g\n sample t = pair.mmcs\n require mean(t) > 0\nend\n";
    lg_claim_file *f = NULL;
    size_t i;
    CHECK_OK(lg_claims_parse("f.claims", ok, strlen(ok), &f));
    if (f) {
        CHECK(f->nclaims == 3 && !strcmp(f->claims[0].by_key, "k") && !strcmp(f->claims[1].by_key, "arch.kind") &&
              f->claims[2].by_key == NULL);
        lg_claims_free(f);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = NULL;
        CHECK(lg_claims_parse("f.claims", bad[i].text, strlen(bad[i].text), &f) == LG_EINPUT && f == NULL);
        CHECK_MSG(!strncmp(lg_error_msg(), bad[i].err, strlen(bad[i].err)), "case %zu: got '%s', want '%s'", i,
                  lg_error_msg(), bad[i].err);
        lg_claims_free(f);
    }
}

static void test_grid_eval(void)
{
    grid_provider g;
    lg_eval_result *r;
    const char *text = "claim mean-above\n says \"mean MMCS of trained SAEs above 0.55 at every k\"\n study g\n by k\n"
                       " sample t = pair.mmcs where control=trained\n require mean(t) > 0.55\nend\n"
                       "claim holm-k\n says \"trained beats random at every k\"\n study g\n for each k\n"
                       " sample t = pair.mmcs where control=trained\n sample r = pair.mmcs where control=random\n"
                       " require welch(t, r, alternative=greater).p < 0.05\n correct holm\nend\n"
                       "claim pinned\n says \"pinned\"\n study g\n run ffff\n sample t = pair.mmcs where k=4\n"
                       " require n(t) > 1\nend\n";
    memset(&g, 0, sizeof g);
    g.m.e = GRID;
    g.m.n = sizeof GRID / sizeof GRID[0];
    r = eval_grid(text, &g);
    if (!r)
        return;
    CHECK(r->nclaims == 5);
    {
        const lg_claim_result *a4 = find(r, "mean-above[k=4]"), *a8 = find(r, "mean-above[k=8]");
        const lg_claim_result *h4 = find(r, "holm-k[k=4]"), *h8 = find(r, "holm-k[k=8]"), *p = find(r, "pinned");
        CHECK(a4 && a8 && h4 && h8 && p);
        if (a4 && a8 && h4 && h8 && p) {
            double ps[2], adj[2];
            CHECK(a4->verdict == LG_VERDICT_PASS && a8->verdict == LG_VERDICT_FAIL);
            CHECK(!strcmp(a4->grid_key, "k") && !strcmp(a4->grid_value, "4") && !strcmp(a8->grid_value, "8"));
            CHECK(a4->samples[0].n == 6 && a8->samples[0].n == 6); /* k=VALUE was added to the filters */
            /* Holm over the expansion: the two welch p-values form the family */
            ps[0] = h4->reqs[0].terms[0].p;
            ps[1] = h8->reqs[0].terms[0].p;
            CHECK(lg_stats_holm(ps, 2, adj) == 0);
            CHECK(h4->reqs[0].corrected && h8->reqs[0].corrected);
            CHECK(h4->reqs[0].terms[0].p_adj == adj[0] && h8->reqs[0].terms[0].p_adj == adj[1]);
            CHECK(adj[0] > ps[0]); /* the correction did something */
            CHECK(h4->verdict == LG_VERDICT_PASS && h8->verdict == LG_VERDICT_FAIL);
            CHECK(p->pinned_run && !strcmp(p->pinned_run, "ffff") && p->grid_key == NULL && a4->pinned_run == NULL);
            CHECK(r->counts[LG_VERDICT_PASS] == 3 && r->counts[LG_VERDICT_FAIL] == 2);
        }
    }
    {
        lg_buf b = LG_BUF_INIT;
        char *js = NULL;
        const lg_eval_result *one[1] = {r};
        cJSON *o;
        CHECK_OK(lg_eval_render_text(r, &b));
        CHECK(b.ptr && strstr(b.ptr, "PASS    mean-above[k=4]") && strstr(b.ptr, "FAIL    mean-above[k=8]"));
        CHECK(b.ptr && strstr(b.ptr, "pinned to run ffff"));
        lg_buf_release(&b);
        CHECK_OK(lg_eval_render_json(one, 1, &js));
        o = js ? cJSON_Parse(js) : NULL;
        CHECK(o != NULL);
        if (o) {
            const cJSON *c0 = cJSON_GetArrayItem(
                cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "files"), 0), "claims"), 0);
            const cJSON *by = cJSON_GetObjectItem(c0, "by");
            CHECK(cJSON_IsString(cJSON_GetObjectItem(by, "key")) &&
                  !strcmp(cJSON_GetObjectItem(by, "value")->valuestring, "4"));
            CHECK(cJSON_IsNull(cJSON_GetObjectItem(c0, "pinned_run")));
            cJSON_Delete(o);
        }
        lg_free(js);
    }
    lg_eval_result_free(r);

    /* the grid answers MISSING: one MISSING verdict for the claim */
    memset(&g, 0, sizeof g);
    g.m.e = GRID;
    g.m.n = sizeof GRID / sizeof GRID[0];
    g.status = LG_EVIDENCE_MISSING;
    r = eval_grid("claim m\n says \"x\"\n study g\n by k\n sample t = pair.mmcs\n require mean(t) > 0\nend\n", &g);
    if (r) {
        CHECK(r->nclaims == 1 && r->claims[0].verdict == LG_VERDICT_MISSING && !strcmp(r->claims[0].id, "m"));
        CHECK(r->claims[0].reason && strstr(r->claims[0].reason, "by k: no run of study g"));
        CHECK(g.m.calls == 0); /* nothing was asked for the samples */
        lg_eval_result_free(r);
    }
    /* without a grid provider a `by` claim is ERROR, never PASS */
    {
        mem_provider m = {GRID, sizeof GRID / sizeof GRID[0], {0}, 0, 0};
        r = eval_text("claim e\n says \"x\"\n study g\n by k\n sample t = pair.mmcs\n require mean(t) > 0\nend\n", &m);
        if (r) {
            CHECK(r->nclaims == 1 && r->claims[0].verdict == LG_VERDICT_ERROR);
            lg_eval_result_free(r);
        }
    }
}

static void test_grid_alloc_failure(void)
{
    const char *text = "claim h\n says \"x\"\n study g\n by k\n sample t = pair.mmcs where control=trained\n"
                       " sample r = pair.mmcs where control=random\n require welch(t, r).p < 0.05\n correct holm\nend\n";
    lg_claim_file *f = NULL;
    int i, rc = 0;
    CHECK_OK(lg_claims_parse("g.claims", text, strlen(text), &f));
    for (i = 0; f && i < 200; i++) {
        grid_provider g;
        lg_eval_result *r = NULL;
        memset(&g, 0, sizeof g);
        g.m.e = GRID;
        g.m.n = sizeof GRID / sizeof GRID[0];
        lg_alloc_fail_after(i);
        rc = lg_eval_file_grid(f, (lg_sample_provider)mem_provide, mem_grid, &g, &r);
        lg_alloc_fail_after(-1);
        lg_eval_result_free(r);
        if (rc == 0)
            break;
        CHECK(rc == LG_ENOMEM && r == NULL);
    }
    CHECK(rc == 0 && i < 200);
    lg_claims_free(f);
}

/* ---- `requires`: claims gated on other claims -------------------------------------------- */

static void test_gates_parse(void)
{
    static const struct {
        const char *text, *err;
    } bad[] = {
        {"claim a\n  requires\n", "f.claims:2:11: expected claim ids after 'requires'"},
        {"claim a\n  requires b\n", "f.claims:2:12: requires 'b': no claim 'b' is defined before this one"},
        {"claim a\n  requires a\n", "f.claims:2:12: claim 'a' cannot require itself"},
        {"claim g\n says \"x\"\n study s\n sample t = pair.mmcs\n require mean(t) > 0\nend\n"
         "claim a\n  requires g g\n", "f.claims:8:14: 'g' is required twice"},
        {"claim g\n says \"x\"\n study s\n sample t = pair.mmcs\n require mean(t) > 0\nend\n"
         "claim a\n  requires g\n  requires g\n", "f.claims:9:12: 'g' is required twice"},
        {"claim g\n says \"x\"\n study s\n sample t = pair.mmcs\n require mean(t) > 0\nend\n"
         "claim a\n  requires g, h\n", "f.claims:8:13: expected a claim id after 'requires'"},
        /* a later claim cannot be named: no cycles */
        {"claim a\n  requires later\n", "f.claims:2:12: requires 'later': no claim 'later' is defined before"},
    };
    const char *ok = "claim g1\n says \"x\"\n study s\n sample t = pair.mmcs\n require mean(t) > 0\nend\n"
                     "claim g2\n says \"y\"\n study s\n sample t = pair.mmcs\n require mean(t) > 0\nend\n"
                     "claim c\n says \"z\"\n study s\n requires g1\n requires g2  # two lines add up\n"
                     " sample t = pair.mmcs\n require mean(t) > 0\nend\n";
    lg_claim_file *f = NULL;
    size_t i;
    CHECK_OK(lg_claims_parse("f.claims", ok, strlen(ok), &f));
    if (f) {
        CHECK(f->nclaims == 3 && f->claims[0].ngates == 0 && f->claims[2].ngates == 2 &&
              !strcmp(f->claims[2].gates[0], "g1") && !strcmp(f->claims[2].gates[1], "g2"));
        lg_claims_free(f);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = NULL;
        CHECK(lg_claims_parse("f.claims", bad[i].text, strlen(bad[i].text), &f) == LG_EINPUT && f == NULL);
        CHECK_MSG(!strncmp(lg_error_msg(), bad[i].err, strlen(bad[i].err)), "case %zu: got '%s', want '%s'", i,
                  lg_error_msg(), bad[i].err);
        lg_claims_free(f);
    }
}

static const char *GATED =
    "claim gate-ok\n says \"a gate that holds\"\n study small-topk\n"
    " sample ev = cell.explained_variance where arch=topk k=8\n require min(ev) >= 0.9\nend\n"
    "claim gate-fails\n says \"a gate that does not hold\"\n study small-topk\n"
    " sample ev = cell.explained_variance where arch=topk k=4\n require min(ev) >= 0.9\nend\n"
    "claim gate-missing\n says \"a gate without evidence\"\n study nosuch\n"
    " sample x = pair.mmcs\n require mean(x) > 0\nend\n"
    "claim gate-xfail\n says \"a documented negative result is an ok gate\"\n study small-topk\n"
    " sample ev = cell.explained_variance where arch=topk k=4\n require min(ev) >= 0.9\n expect fail\nend\n"
    "claim passes\n says \"gated on gates that are ok\"\n study small-topk\n requires gate-ok gate-xfail\n"
    " sample t = pair.mmcs where control=trained k=8\n sample r = pair.mmcs where control=random k=8\n"
    " require mean(t) - mean(r) > 0\nend\n"
    "claim blocked\n says \"holds on its own, but a gate fails\"\n study small-topk\n requires gate-ok gate-fails\n"
    " sample t = pair.mmcs where control=trained k=8\n sample r = pair.mmcs where control=random k=8\n"
    " require mean(t) - mean(r) > 0\nend\n"
    "claim blocked-by-missing\n says \"a gate without evidence blocks\"\n study small-topk\n requires gate-missing\n"
    " sample t = pair.mmcs where control=trained k=8\n require mean(t) > 0\nend\n"
    "claim blocked-chain\n says \"blocked through a blocked gate\"\n study small-topk\n requires blocked\n"
    " sample t = pair.mmcs where control=trained k=8\n require mean(t) > 0\nend\n"
    "claim own-missing\n says \"its own MISSING comes first\"\n study nosuch\n requires gate-fails\n"
    " sample x = pair.mmcs\n require mean(x) > 0\nend\n"
    "claim xfail-blocked\n says \"an expected failure measured behind a failing gate does not stand\"\n"
    " study small-topk\n requires gate-fails\n"
    " sample t = pair.mmcs where control=trained k=8\n require mean(t) > 1\n expect fail\nend\n";

static void test_gates_eval(void)
{
    mem_provider m = {DATA, sizeof(DATA) / sizeof(DATA[0]), {0}, 0, 0};
    lg_eval_result *r = eval_text(GATED, &m);
    const lg_eval_result *one[1];
    const lg_claim_result *c;
    char *json = NULL, *xml = NULL;
    lg_buf text = LG_BUF_INIT;
    cJSON *o;
    if (!r)
        return;
    CHECK((c = find(r, "gate-ok")) && c->verdict == LG_VERDICT_PASS);
    CHECK((c = find(r, "gate-fails")) && c->verdict == LG_VERDICT_FAIL);
    CHECK((c = find(r, "gate-xfail")) && c->verdict == LG_VERDICT_XFAIL);
    CHECK((c = find(r, "passes")) && c->verdict == LG_VERDICT_PASS && c->ngates == 2 && !c->blocked_by);
    c = find(r, "blocked");
    CHECK(c && c->verdict == LG_VERDICT_BLOCKED && !lg_verdict_ok(c->verdict) && !strcmp(c->blocked_by, "gate-fails"));
    CHECK(c && c->reason && !strncmp(c->reason, "gate gate-fails is FAIL: line ", 30));
    CHECK(c && c->nreqs == 1 && c->reqs[0].holds); /* its own numbers are still computed */
    CHECK((c = find(r, "blocked-by-missing")) && c->verdict == LG_VERDICT_BLOCKED &&
          strstr(c->reason, "gate gate-missing is MISSING"));
    CHECK((c = find(r, "blocked-chain")) && c->verdict == LG_VERDICT_BLOCKED && !strcmp(c->blocked_by, "blocked") &&
          strstr(c->reason, "gate blocked is BLOCKED: gate gate-fails is FAIL"));
    CHECK((c = find(r, "own-missing")) && c->verdict == LG_VERDICT_MISSING && !c->blocked_by);
    CHECK((c = find(r, "xfail-blocked")) && c->verdict == LG_VERDICT_BLOCKED);
    CHECK(r->counts[LG_VERDICT_BLOCKED] == 4 && !lg_eval_ok(r));
    CHECK(!strcmp(lg_verdict_name(LG_VERDICT_BLOCKED), "BLOCKED"));
    one[0] = r;
    CHECK_OK(lg_eval_render_text(r, &text));
    CHECK(text.ptr && strstr(text.ptr, "BLOCKED blocked  (t.claims:") && strstr(text.ptr, "requires gate-ok gate-fails"));
    CHECK_OK(lg_eval_render_json(one, 1, &json));
    o = json ? cJSON_Parse(json) : NULL;
    CHECK(o != NULL);
    if (o) {
        cJSON *f0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "files"), 0), *claims = cJSON_GetObjectItem(f0, "claims");
        cJSON *b = cJSON_GetArrayItem(claims, 5), *p = cJSON_GetArrayItem(claims, 4);
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "id")), "blocked"));
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "verdict")), "BLOCKED"));
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "blocked_by")), "gate-fails"));
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(b, "requires")) == 2);
        CHECK(cJSON_IsNull(cJSON_GetObjectItem(p, "blocked_by")));
        CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(p, "requires"), 1)), "gate-xfail"));
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(f0, "counts"), "BLOCKED")->valuedouble == 4);
        cJSON_Delete(o);
    }
    CHECK_OK(lg_eval_render_junit(one, 1, &xml));
    /* FAIL (gate-fails) + 4 BLOCKED are failures; the two MISSING are errors */
    CHECK(xml && strstr(xml, "tests=\"10\" failures=\"5\" errors=\"2\"") != NULL);
    CHECK(xml && strstr(xml, "<failure type=\"BLOCKED\" message=\"BLOCKED: gate gate-fails is FAIL") != NULL);
    lg_free(json);
    lg_free(xml);
    lg_buf_release(&text);
    lg_eval_result_free(r);
}

/* A gate with `by`: the gated claim passes only when every value of the gate is ok. */
static void test_gates_grid(void)
{
    const char *text = "claim g\n says \"x\"\n study g\n by k\n sample t = pair.mmcs where control=trained\n"
                       " sample r = pair.mmcs where control=random\n require mean(t) - mean(r) > 0\nend\n"
                       "claim c\n says \"y\"\n study g\n requires g\n sample t = pair.mmcs where control=trained k=4\n"
                       " require mean(t) > 0\nend\n";
    grid_provider g;
    lg_eval_result *r;
    const lg_claim_result *a4, *a8, *c;
    memset(&g, 0, sizeof g);
    g.m.e = GRID;
    g.m.n = sizeof GRID / sizeof GRID[0];
    if (!(r = eval_grid(text, &g)))
        return;
    a4 = find(r, "g[k=4]");
    a8 = find(r, "g[k=8]");
    c = find(r, "c");
    CHECK(a4 && a8 && c);
    if (a4 && a8 && c) {
        CHECK(a4->verdict == LG_VERDICT_PASS && a8->verdict == LG_VERDICT_FAIL);
        CHECK(c->verdict == LG_VERDICT_BLOCKED && c->blocked_by && !strcmp(c->blocked_by, "g[k=8]"));
    }
    lg_eval_result_free(r);
}

/* `sample ... from STUDY`: a sample from another study's latest run (a cross-study gate). */
static void test_sample_from(void)
{
    const char *text =
        "claim cross\n says \"adaptive k=4 exceeds small-topk random\"\n study small-topk\n run aaaa\n"
        " sample a = pair.mmcs from adaptive where k=4\n sample r = pair.mmcs where control=random k=8\n"
        " require mean(a) - mean(r) > 0.1\nend\n"
        "claim nostudy\n says \"a missing other study\"\n study small-topk\n"
        " sample a = pair.mmcs from nosuch\n require mean(a) > 0\nend\n";
    const char *bad = "claim a\n says \"x\"\n study s\n sample t = pair.mmcs from\n";
    mem_provider m = {DATA, sizeof(DATA) / sizeof(DATA[0]), {0}, 0, 0};
    lg_claim_file *f = NULL;
    lg_eval_result *r;
    const lg_claim_result *c;
    CHECK(lg_claims_parse("f.claims", bad, strlen(bad), &f) == LG_EINPUT && f == NULL);
    CHECK_MSG(!strncmp(lg_error_msg(), "f.claims:4:27: expected a study name after 'from'", 49), "got '%s'", lg_error_msg());
    CHECK_OK(lg_claims_parse("f.claims", text, strlen(text), &f));
    if (f) {
        CHECK(!strcmp(f->claims[0].samples[0].study, "adaptive") && f->claims[0].samples[1].study == NULL);
        lg_claims_free(f);
    }
    if (!(r = eval_text(text, &m)))
        return;
    /* the pinned `run aaaa` applies to the claim's study only: the adaptive sample reads bbbb2222 */
    CHECK((c = find(r, "cross")) && c->verdict == LG_VERDICT_PASS && c->nrun_ids == 2 &&
          !strcmp(c->samples[0].run_id, "bbbb2222") && !strcmp(c->samples[1].run_id, "aaaa1111"));
    CHECK((c = find(r, "nostudy")) && c->verdict == LG_VERDICT_MISSING);
    lg_eval_result_free(r);
}

static void test_gates_alloc_failure(void)
{
    lg_claim_file *f = NULL;
    int i, rc = 0;
    for (i = 0; i < 400; i++) {
        lg_alloc_fail_after(i);
        rc = lg_claims_parse("t.claims", GATED, strlen(GATED), &f);
        lg_alloc_fail_after(-1);
        if (rc == 0)
            break;
        CHECK(rc == LG_ENOMEM && f == NULL);
    }
    CHECK(rc == 0 && f);
    for (i = 0; f && i < 2000; i++) {
        mem_provider m = {DATA, sizeof(DATA) / sizeof(DATA[0]), {0}, 0, 0};
        lg_eval_result *r = NULL;
        lg_alloc_fail_after(i);
        rc = lg_eval_file(f, mem_provide, &m, &r);
        lg_alloc_fail_after(-1);
        lg_eval_result_free(r);
        if (rc == 0)
            break;
        CHECK(rc == LG_ENOMEM && r == NULL);
    }
    CHECK(rc == 0 && i < 2000);
    lg_claims_free(f);
}

CHECK_MAIN(T(test_gates_parse), T(test_gates_eval), T(test_gates_grid), T(test_sample_from), T(test_gates_alloc_failure), T(test_grid_parse), T(test_grid_eval), T(test_grid_alloc_failure), T(test_parse_example), T(test_parse_errors), T(test_parse_limits), T(test_verdicts),
           T(test_provider_error_and_holm), T(test_render), T(test_eval_alloc_failure), T(test_missing_alloc_failure),
           T(test_version_and_filters))
