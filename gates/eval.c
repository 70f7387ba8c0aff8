/*
 * eval.c - claims -> verdicts with the deciding numbers (see eval.h); the
 * text, JSON and JUnit rendering of the results is eval_render.c.
 *
 * Flow per file: (1) per claim, ask the provider for every sample and copy
 * the values (the provider's memory is only valid until its next call);
 * MISSING / STALE are decided here, before any statistic. (2) compute every
 * term of every requirement of the evaluable claims. (3) Holm across the
 * file's corrected p-values, then compare and decide PASS / FAIL and the
 * expect-fail variants. (4) in file order, a claim whose `requires` gates
 * (claims earlier in the file, all their `by` values) are not all ok becomes
 * BLOCKED unless it is already MISSING, STALE or ERROR.
 *
 * Invariants: a result is pushed into its array before it is filled, so
 * lg_eval_result_free() releases partial results on any error path; a
 * statistic that cannot be computed on the data (LG_EINPUT from stats.c, or
 * NaN) makes the claim ERROR, never PASS; only allocation failure and provider
 * errors abort the whole evaluation.
 */
#include "gates/eval.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gates/gates.h"

typedef struct {
    double *v;
    size_t n;
    char **labels; /* [n] or NULL */
} sample_data;

static void sample_data_release(sample_data *s)
{
    size_t i;
    if (s->labels)
        for (i = 0; i < s->n; i++)
            lg_free(s->labels[i]);
    lg_free(s->labels);
    lg_free(s->v);
    s->v = NULL;
    s->labels = NULL;
    s->n = 0;
}

const char *lg_verdict_name(lg_verdict v)
{
    static const char *n[] = {"PASS", "FAIL", "XFAIL", "XPASS", "MISSING", "STALE", "ERROR", "BLOCKED"};
    return (unsigned)v < LG_VERDICT_COUNT ? n[v] : "?";
}

int lg_verdict_ok(lg_verdict v) { return v == LG_VERDICT_PASS || v == LG_VERDICT_XFAIL; }

int lg_eval_ok(const lg_eval_result *r)
{
    size_t i;
    for (i = 0; i < r->nclaims; i++)
        if (!lg_verdict_ok(r->claims[i].verdict))
            return 0;
    return 1;
}

int lg_version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        unsigned long x = 0, y = 0;
        while (*a && !isdigit((unsigned char)*a) && *a != '.')
            a++;
        while (isdigit((unsigned char)*a))
            x = x * 10 + (unsigned long)(*a++ - '0');
        while (*b && !isdigit((unsigned char)*b) && *b != '.')
            b++;
        while (isdigit((unsigned char)*b))
            y = y * 10 + (unsigned long)(*b++ - '0');
        if (x != y)
            return x < y ? -1 : 1;
        while (*a && *a != '.')
            a++;
        while (*b && *b != '.')
            b++;
        if (*a == '.')
            a++;
        if (*b == '.')
            b++;
    }
    return 0;
}

/* ---- freeing ----------------------------------------------------------------- */

static void claim_result_release(lg_claim_result *c)
{
    size_t i;
    lg_free(c->id);
    lg_free(c->says);
    lg_free(c->study);
    lg_free(c->reason);
    lg_free(c->pinned_run);
    lg_free(c->grid_key);
    lg_free(c->grid_value);
    for (i = 0; i < c->ngates; i++)
        lg_free(c->gates[i]);
    lg_free(c->gates);
    lg_free(c->blocked_by);
    for (i = 0; i < c->nrun_ids; i++)
        lg_free(c->run_ids[i]);
    lg_free(c->run_ids);
    for (i = 0; i < c->nsamples; i++) {
        lg_free(c->samples[i].name);
        lg_free(c->samples[i].run_id);
    }
    lg_free(c->samples);
    for (i = 0; i < c->nreqs; i++) {
        lg_free(c->reqs[i].text);
        lg_free(c->reqs[i].note);
        lg_free(c->reqs[i].terms);
    }
    lg_free(c->reqs);
}

void lg_eval_result_free(lg_eval_result *r)
{
    size_t i;
    if (!r)
        return;
    for (i = 0; i < r->nclaims; i++)
        claim_result_release(&r->claims[i]);
    lg_free(r->claims);
    lg_free(r->path);
    lg_free(r);
}

/* ---- evidence ------------------------------------------------------------------ */

static int add_run_id(lg_claim_result *cr, const char *id)
{
    size_t i;
    char **p;
    for (i = 0; i < cr->nrun_ids; i++)
        if (!strcmp(cr->run_ids[i], id))
            return 0;
    if (!(p = lg_realloc(cr->run_ids, (cr->nrun_ids + 1) * sizeof(*p))))
        return LG_ENOMEM;
    cr->run_ids = p;
    if (!(p[cr->nrun_ids] = lg_strdup(id)))
        return LG_ENOMEM;
    cr->nrun_ids++;
    return 0;
}

/* Fetch every sample of claim c into data[]; decide MISSING / STALE (*decided = 1). */
static int fetch_samples(const lg_claim_file *f, const lg_claim *c, lg_sample_provider provider, void *ctx,
                         lg_claim_result *cr, sample_data *data, int *decided)
{
    char *missing = NULL, *stale = NULL;
    size_t i, j;
    int err = 0;
    *decided = 0;
    if (!(cr->samples = lg_calloc(c->nsamples ? c->nsamples : 1, sizeof(*cr->samples))))
        return LG_ENOMEM;
    for (i = 0; i < c->nsamples; i++) {
        const lg_sample_decl *d = &c->samples[i];
        lg_sample_result *sr = &cr->samples[cr->nsamples++];
        /* `from STUDY`: that study's latest ok run; else the claim's study and `run` */
        lg_sample_query q = {c->id, d->name, d->study ? d->study : c->study, d->study ? NULL : c->run,
                             d->unit, d->metric, d->filters, d->nfilters};
        lg_samples s;
        memset(&s, 0, sizeof(s));
        if (!(sr->name = lg_strdup(d->name))) {
            err = LG_ENOMEM;
            goto out;
        }
        if ((err = provider(ctx, &q, &s)) < 0) {
            lg_error_wrap("%s:%d: claim '%s': sample '%s'", f->path, d->line, c->id, d->name);
            goto out;
        }
        sr->status = s.status;
        sr->n = s.status == LG_EVIDENCE_MISSING ? 0 : s.n;
        if (s.run_id) {
            if (!(sr->run_id = lg_strdup(s.run_id)) || (err = add_run_id(cr, s.run_id)) < 0) {
                err = LG_ENOMEM;
                goto out;
            }
        }
        if (s.status == LG_EVIDENCE_MISSING || (s.status == LG_EVIDENCE_FRESH && s.n == 0) ||
            (s.n > 0 && !s.values)) {
            if (!missing && !(missing = lg_strdup_printf("sample '%s' (%s.%s): %s", d->name, lg_unit_name(d->unit), d->metric,
                                               s.reason ? s.reason : s.n == 0 ? "no value matches the filters" : "no values"))) {
                err = LG_ENOMEM; /* not `continue`: the next provider call would overwrite err */
                goto out;
            }
            sr->status = LG_EVIDENCE_MISSING;
            continue;
        }
        if (s.status == LG_EVIDENCE_STALE && !stale &&
            !(stale = lg_strdup_printf("sample '%s': %s", d->name, s.reason ? s.reason : "evidence is stale")))
            err = LG_ENOMEM;
        if (c->engine_min && (!s.engine_version || lg_version_cmp(s.engine_version, c->engine_min) < 0)) {
            /* every such sample is marked stale; the reason names the first */
            if (!stale && !(stale = lg_strdup_printf("sample '%s': run %s was produced by engine %s, older than %s (stale-if)",
                                  d->name, s.run_id ? s.run_id : "?",
                                  s.engine_version ? s.engine_version : "(unknown)", c->engine_min)))
                err = LG_ENOMEM;
            sr->status = LG_EVIDENCE_STALE;
        }
        if (err < 0)
            goto out;
        if (!(data[i].v = lg_malloc(s.n * sizeof(double)))) {
            err = LG_ENOMEM;
            goto out;
        }
        if (s.n) /* a sample with no values may have values == NULL */
            memcpy(data[i].v, s.values, s.n * sizeof(double));
        data[i].n = s.n;
        if (s.labels) {
            if (!(data[i].labels = lg_calloc(s.n, sizeof(char *)))) {
                err = LG_ENOMEM;
                goto out;
            }
            for (j = 0; j < s.n; j++)
                if (!(data[i].labels[j] = lg_strdup(s.labels[j] ? s.labels[j] : ""))) {
                    err = LG_ENOMEM;
                    goto out;
                }
        }
    }
    if (err < 0)
        goto out;
    if (missing) {
        cr->verdict = LG_VERDICT_MISSING;
        cr->reason = missing;
        missing = NULL;
        *decided = 1;
    } else if (stale) {
        cr->verdict = LG_VERDICT_STALE;
        cr->reason = stale;
        stale = NULL;
        *decided = 1;
    }
out:
    lg_free(missing);
    lg_free(stale);
    return err;
}

/* ---- statistics of one term --------------------------------------------------------- */

static double pick(const lg_term_result *t)
{
    switch (t->field) {
    case LG_FIELD_P: return t->p;
    case LG_FIELD_STAT: return t->stat;
    case LG_FIELD_DF: return t->df;
    case LG_FIELD_EST: return t->est;
    case LG_FIELD_LO: return t->lo;
    case LG_FIELD_HI: return t->hi;
    default: return t->value;
    }
}

/* 0 ok; LG_EINPUT: not computable (message set); other < 0: abort. */
static int eval_term(const lg_term *t, const sample_data *S, lg_term_result *tr)
{
    const sample_data *a = t->sample[0] >= 0 ? &S[t->sample[0]] : NULL;
    const sample_data *b = t->sample[1] >= 0 ? &S[t->sample[1]] : NULL;
    lg_test_result tt;
    lg_interval ci;
    int err = 0;
    tr->fn = t->fn;
    tr->field = t->field;
    tr->sign = t->sign;
    tr->sample[0] = t->sample[0];
    tr->sample[1] = t->sample[1];
    tr->n[0] = a ? a->n : 0;
    tr->n[1] = b ? b->n : 0;
    tr->value = tr->est = tr->lo = tr->hi = tr->level = tr->p = tr->p_adj = tr->stat = tr->df = NAN;
    tr->alt = t->alt;
    tr->resamples = 0;
    tr->seed = 0;
    tr->method = "";
    switch (t->fn) {
    case LG_FN_CONST: tr->value = t->constant; break;
    case LG_FN_MEAN: tr->value = lg_stats_mean(a->v, a->n); break;
    case LG_FN_SD: tr->value = lg_stats_sd(a->v, a->n); break;
    case LG_FN_SE: tr->value = lg_stats_se(a->v, a->n); break;
    case LG_FN_MIN: tr->value = lg_stats_min(a->v, a->n); break;
    case LG_FN_MAX: tr->value = lg_stats_max(a->v, a->n); break;
    case LG_FN_MEDIAN:
        if (isnan(tr->value = lg_stats_median(a->v, a->n)) && lg_error_code() == LG_ENOMEM)
            return LG_ENOMEM;
        break;
    case LG_FN_N: tr->value = (double)a->n; break;
    case LG_FN_DIFF: tr->value = lg_stats_mean_diff(a->v, a->n, b->v, b->n); break;
    case LG_FN_COHEN_D: tr->value = lg_stats_cohen_d(a->v, a->n, b->v, b->n); break;
    case LG_FN_TCI:
    case LG_FN_BOOTSTRAP:
    case LG_FN_BOOTSTRAP_DIFF:
        if (t->fn == LG_FN_TCI) {
            err = lg_stats_t_ci(a->v, a->n, t->level, &ci);
        } else {
            tr->resamples = t->resamples;
            tr->seed = t->seed;
            tr->method = t->boot == LG_BOOT_BCA ? "bca" : "percentile";
            err = t->fn == LG_FN_BOOTSTRAP
                      ? lg_stats_bootstrap_mean(a->v, a->n, t->level, t->resamples, t->seed, t->boot, &ci)
                      : lg_stats_bootstrap_diff(a->v, a->n, b->v, b->n, t->level, t->resamples, t->seed, t->boot, &ci);
        }
        if (err < 0)
            return err;
        tr->est = ci.est;
        tr->lo = ci.lo;
        tr->hi = ci.hi;
        tr->level = ci.level;
        break;
    case LG_FN_WELCH:
    case LG_FN_PAIRED:
    case LG_FN_MANNWHITNEY:
    case LG_FN_PERMUTATION:
        if (t->fn == LG_FN_WELCH) {
            err = lg_stats_welch(a->v, a->n, b->v, b->n, t->alt, &tt);
        } else if (t->fn == LG_FN_PAIRED) {
            if (a->n != b->n)
                return lg_error_set(LG_EINPUT, "paired(): the samples have %zu and %zu values", a->n, b->n);
            if (a->labels && b->labels) {
                size_t i;
                for (i = 0; i < a->n; i++)
                    if (strcmp(a->labels[i], b->labels[i]))
                        return lg_error_set(LG_EINPUT, "paired(): value %zu is '%s' in one sample and '%s' in the other",
                                            i, a->labels[i], b->labels[i]);
            }
            err = lg_stats_paired_t(a->v, b->v, a->n, t->alt, &tt);
        } else if (t->fn == LG_FN_MANNWHITNEY) {
            tr->method = t->mwu == LG_MWU_EXACT ? "exact" : t->mwu == LG_MWU_ASYMPTOTIC ? "asymptotic" : "auto";
            err = lg_stats_mannwhitney(a->v, a->n, b->v, b->n, t->alt, t->mwu, &tt);
        } else {
            tr->resamples = t->resamples;
            tr->seed = t->seed;
            err = lg_stats_permutation(a->v, a->n, b->v, b->n, t->alt, t->resamples, t->seed, &tt);
        }
        if (err < 0)
            return err;
        tr->p = tt.p;
        tr->stat = tt.stat;
        tr->df = tt.df;
        tr->est = tt.est;
        tr->exact = tt.exact;
        if (t->fn == LG_FN_MANNWHITNEY)
            tr->method = tt.exact ? "exact" : "asymptotic";
        break;
    }
    if (t->fn != LG_FN_CONST && tr->field == LG_FIELD_VALUE)
        tr->est = tr->value;
    tr->value = pick(tr);
    if (isnan(tr->value))
        return lg_error_set(LG_EINPUT, "%s() is not defined on these values (NaN; too few values or zero variance?)",
                            lg_fn_name(t->fn));
    return 0;
}

static int eval_require(const lg_require *rq, const sample_data *S, lg_req_result *rr)
{
    size_t i;
    int err;
    rr->line = rq->line;
    rr->op = rq->op;
    rr->threshold = rq->threshold;
    rr->value = NAN;
    if (!(rr->text = lg_strdup(rq->text)) || !(rr->terms = lg_calloc(rq->nterms, sizeof(*rr->terms))))
        return LG_ENOMEM;
    rr->value = 0;
    for (i = 0; i < rq->nterms; i++) {
        rr->nterms++;
        lg_error_clear();
        if ((err = eval_term(&rq->terms[i], S, &rr->terms[i])) < 0) {
            if (err != LG_EINPUT)
                return err;
            rr->value = NAN;
            if (!(rr->note = lg_strdup(lg_error_msg())))
                return LG_ENOMEM;
            return 0;
        }
        rr->value += rq->terms[i].sign * rr->terms[i].value;
    }
    rr->holds = lg_op_holds(rr->op, rr->value, rr->threshold);
    return 0;
}

static int is_holm_member(const lg_claim *c, const lg_require *rq)
{
    return c->correct_holm && rq->nterms == 1 && rq->terms[0].field == LG_FIELD_P && rq->terms[0].sign > 0;
}

/* ---- `by KEY` expansion ------------------------------------------------------------- */

/* One claim to evaluate: a claim of the file, or one value of its `by` grid. */
typedef struct {
    lg_claim c;              /* shallow copy of the file's claim; id and samples owned when gval */
    const lg_claim *orig;
    char *gval;              /* the grid value (owned), NULL when not expanded */
    lg_verdict forced;       /* grid answered MISSING / STALE, or no grid provider: decided here */
    int is_forced;
    char *forced_reason;
    char *forced_run;
} work_item;

static void work_release(work_item *w)
{
    size_t i;
    if (w->gval) {
        lg_free(w->c.id);
        for (i = 0; i < w->c.nsamples; i++)
            lg_free(w->c.samples[i].filters);
        lg_free(w->c.samples);
    }
    lg_free(w->gval);
    lg_free(w->forced_reason);
    lg_free(w->forced_run);
}

static int grow_work(work_item **w, size_t *n, size_t *cap)
{
    if (lg_grow(w, cap, *n + 1, sizeof **w, 16) < 0)
        return LG_ENOMEM;
    memset(&(*w)[*n], 0, sizeof(**w));
    return 0;
}

/* The claim with KEY=VALUE added to every sample's filters. */
static int expand_one(work_item *w, const lg_claim *c, const char *value)
{
    size_t i;
    char *end;
    w->c = *c;
    w->orig = c;
    w->c.samples = NULL;
    w->c.nsamples = 0;
    w->c.id = NULL;
    if (!(w->gval = lg_strdup(value)) || !(w->c.id = lg_strdup_printf("%s[%s=%s]", c->id, c->by_key, value)) ||
        !(w->c.samples = lg_calloc(c->nsamples ? c->nsamples : 1, sizeof(*w->c.samples))))
        return LG_ENOMEM;
    for (i = 0; i < c->nsamples; i++) {
        lg_sample_decl *d = &w->c.samples[i];
        lg_filter *f;
        *d = c->samples[i];
        d->filters = NULL;
        w->c.nsamples++;
        if (!(d->filters = lg_calloc(c->samples[i].nfilters + 1, sizeof(*d->filters))))
            return LG_ENOMEM;
        if (c->samples[i].nfilters)
            memcpy(d->filters, c->samples[i].filters, c->samples[i].nfilters * sizeof(*d->filters));
        f = &d->filters[d->nfilters++];
        f->key = c->by_key;
        f->op = LG_OP_EQ;
        f->value = w->gval;
        f->num = strtod(w->gval, &end);
        f->is_num = *w->gval && !*end && isfinite(f->num) && !isspace((unsigned char)w->gval[0]);
    }
    return 0;
}

#define LG_EVAL_MAX_GRID 4096 /* values one `by` claim may expand into */

static int expand_file(const lg_claim_file *f, lg_grid_provider grid, void *ctx, work_item **out, size_t *nout)
{
    work_item *w = NULL;
    size_t n = 0, cap = 0, i, k;
    int err = 0;
    *out = NULL;
    *nout = 0;
    for (i = 0; i < f->nclaims && err == 0; i++) {
        const lg_claim *c = &f->claims[i];
        lg_grid_query q;
        lg_grid_answer a;
        if (!c->by_key || !grid) {
            if ((err = grow_work(&w, &n, &cap)) < 0)
                break;
            w[n].c = *c;
            w[n].orig = c;
            if (c->by_key) {
                w[n].is_forced = 1;
                w[n].forced = LG_VERDICT_ERROR;
                if (!(w[n].forced_reason = lg_strdup_printf("'by %s' needs a grid provider (lg_eval_file_grid)", c->by_key)))
                    err = LG_ENOMEM;
            }
            n++;
            continue;
        }
        memset(&q, 0, sizeof q);
        memset(&a, 0, sizeof a);
        q.claim_id = c->id;
        q.study = c->study;
        q.run = c->run;
        q.key = c->by_key;
        q.samples = c->samples;
        q.nsamples = c->nsamples;
        if ((err = grid(ctx, &q, &a)) < 0) {
            lg_error_wrap("%s:%d: claim '%s': by %s", f->path, c->line, c->id, c->by_key);
            break;
        }
        if (a.status != LG_EVIDENCE_FRESH || a.n == 0 || a.n > LG_EVAL_MAX_GRID) {
            if ((err = grow_work(&w, &n, &cap)) < 0)
                break;
            w[n].c = *c;
            w[n].orig = c;
            w[n].is_forced = 1;
            w[n].forced = a.status == LG_EVIDENCE_STALE ? LG_VERDICT_STALE
                        : a.n > LG_EVAL_MAX_GRID      ? LG_VERDICT_ERROR
                                                      : LG_VERDICT_MISSING;
            w[n].forced_reason =
                a.n > LG_EVAL_MAX_GRID
                    ? lg_strdup_printf("by %s: %zu values, more than %d", c->by_key, a.n, LG_EVAL_MAX_GRID)
                    : lg_strdup_printf("by %s: %s", c->by_key, a.reason ? a.reason : "the grid parameter has no values");
            if (!w[n].forced_reason || (a.run_id && !(w[n].forced_run = lg_strdup(a.run_id))))
                err = LG_ENOMEM;
            n++;
            continue;
        }
        /* copy the values out first: the provider's memory lives until its next call */
        for (k = 0; k < a.n && err == 0; k++) {
            if ((err = grow_work(&w, &n, &cap)) < 0)
                break;
            err = expand_one(&w[n], c, a.values[k] ? a.values[k] : "");
            n++;
        }
    }
    if (err < 0) {
        for (i = 0; i < n; i++)
            work_release(&w[i]);
        lg_free(w);
        return err;
    }
    *out = w;
    *nout = n;
    return 0;
}

int lg_eval_file(const lg_claim_file *f, lg_sample_provider provider, void *ctx, lg_eval_result **out)
{
    return lg_eval_file_grid(f, provider, NULL, ctx, out);
}

int lg_eval_file_grid(const lg_claim_file *f, lg_sample_provider provider, lg_grid_provider grid, void *ctx,
                      lg_eval_result **out)
{
    lg_eval_result *r = NULL;
    sample_data *data = NULL;
    const lg_claim *data_claim = NULL;
    double *ps = NULL, *adj = NULL;
    lg_req_result **members = NULL;
    work_item *w = NULL;
    size_t i, j, nm = 0, total_reqs = 0, nw = 0;
    int err = 0;
    *out = NULL;
    if ((err = expand_file(f, grid, ctx, &w, &nw)) < 0)
        return err;
    if (!(r = lg_calloc(1, sizeof(*r))) || !(r->path = lg_strdup(f->path)) ||
        !(r->claims = lg_calloc(nw ? nw : 1, sizeof(*r->claims)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < nw; i++)
        total_reqs += w[i].c.nrequires;
    if (!(members = lg_calloc(total_reqs ? total_reqs : 1, sizeof(*members))) ||
        !(ps = lg_calloc(total_reqs ? total_reqs : 1, sizeof(*ps))) ||
        !(adj = lg_calloc(total_reqs ? total_reqs : 1, sizeof(*adj)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < nw; i++) {
        const lg_claim *c = &w[i].c;
        lg_claim_result *cr = &r->claims[r->nclaims++];
        int decided = 0;
        cr->line = c->line;
        cr->expect_fail = c->expect_fail;
        if (!(cr->id = lg_strdup(c->id)) || !(cr->says = lg_strdup(c->says)) || !(cr->study = lg_strdup(c->study)) ||
            (c->run && !(cr->pinned_run = lg_strdup(c->run))) ||
            (c->by_key && !(cr->grid_key = lg_strdup(c->by_key))) ||
            (w[i].gval && !(cr->grid_value = lg_strdup(w[i].gval))) ||
            (c->ngates && !(cr->gates = lg_calloc(c->ngates, sizeof(*cr->gates))))) {
            err = LG_ENOMEM;
            goto out;
        }
        for (j = 0; j < c->ngates; j++, cr->ngates++)
            if (!(cr->gates[j] = lg_strdup(c->gates[j]))) {
                err = LG_ENOMEM;
                goto out;
            }
        if (w[i].is_forced) {
            cr->verdict = w[i].forced;
            cr->reason = w[i].forced_reason;
            w[i].forced_reason = NULL;
            if (w[i].forced_run && (err = add_run_id(cr, w[i].forced_run)) < 0)
                goto out;
            continue;
        }
        if (!(data = lg_calloc(c->nsamples ? c->nsamples : 1, sizeof(*data)))) {
            err = LG_ENOMEM;
            goto out;
        }
        data_claim = c;
        if ((err = fetch_samples(f, c, provider, ctx, cr, data, &decided)) < 0)
            goto out;
        if (!decided) {
            if (!(cr->reqs = lg_calloc(c->nrequires, sizeof(*cr->reqs)))) {
                err = LG_ENOMEM;
                goto out;
            }
            for (j = 0; j < c->nrequires; j++) {
                lg_req_result *rr = &cr->reqs[cr->nreqs++];
                if ((err = eval_require(&c->requires[j], data, rr)) < 0)
                    goto out;
                if (!rr->note && is_holm_member(c, &c->requires[j])) {
                    members[nm] = rr;
                    ps[nm++] = rr->terms[0].p;
                }
            }
        }
        for (j = 0; j < c->nsamples; j++)
            sample_data_release(&data[j]);
        lg_free(data);
        data = NULL;
        data_claim = NULL;
    }
    /* Holm across the file */
    if (nm > 0) {
        if ((err = lg_stats_holm(ps, nm, adj)) < 0)
            goto out;
        for (j = 0; j < nm; j++) {
            members[j]->corrected = 1;
            members[j]->terms[0].p_adj = adj[j];
            members[j]->value = adj[j];
            members[j]->holds = lg_op_holds(members[j]->op, adj[j], members[j]->threshold);
        }
    }
    /* verdicts */
    for (i = 0; i < r->nclaims; i++) {
        lg_claim_result *cr = &r->claims[i];
        /* MISSING / STALE from the evidence, ERROR from an expansion that could not run: decided */
        if (cr->verdict != LG_VERDICT_MISSING && cr->verdict != LG_VERDICT_STALE && cr->verdict != LG_VERDICT_ERROR) {
            const lg_req_result *first_fail = NULL, *first_err = NULL;
            for (j = 0; j < cr->nreqs; j++) {
                if (cr->reqs[j].note && !first_err)
                    first_err = &cr->reqs[j];
                else if (!cr->reqs[j].note && !cr->reqs[j].holds && !first_fail)
                    first_fail = &cr->reqs[j];
            }
            if (first_err) {
                cr->verdict = LG_VERDICT_ERROR;
                cr->reason = lg_strdup_printf("line %d: %s: %s", first_err->line, first_err->text, first_err->note);
            } else if (first_fail) {
                cr->verdict = cr->expect_fail ? LG_VERDICT_XFAIL : LG_VERDICT_FAIL;
                cr->reason = lg_strdup_printf("line %d: %s: %.6g %s %g does not hold", first_fail->line, first_fail->text,
                                     first_fail->value, lg_op_name(first_fail->op), first_fail->threshold);
            } else {
                cr->verdict = cr->expect_fail ? LG_VERDICT_XPASS : LG_VERDICT_PASS;
                if (cr->expect_fail)
                    cr->reason = lg_strdup_printf("expected to fail, but every requirement holds");
            }
            if (cr->verdict != LG_VERDICT_PASS && !cr->reason) {
                err = LG_ENOMEM;
                goto out;
            }
            /* gates: claims defined earlier in the file, so already decided (BLOCKED included) */
            for (j = 0; j < cr->ngates && !cr->blocked_by; j++) {
                size_t g;
                for (g = 0; g < i && !cr->blocked_by; g++) {
                    const lg_claim_result *gr = &r->claims[g];
                    if (strcmp(w[g].orig->id, cr->gates[j]) || lg_verdict_ok(gr->verdict))
                        continue;
                    lg_free(cr->reason);
                    cr->reason = NULL;
                    cr->verdict = LG_VERDICT_BLOCKED;
                    if (!(cr->blocked_by = lg_strdup(gr->id)) ||
                        !(cr->reason = lg_strdup_printf("gate %s is %s%s%s", gr->id, lg_verdict_name(gr->verdict),
                                               gr->reason ? ": " : "", gr->reason ? gr->reason : ""))) {
                        err = LG_ENOMEM;
                        goto out;
                    }
                }
            }
        }
        r->counts[cr->verdict]++;
    }
    *out = r;
    r = NULL;
out:
    if (data && data_claim)
        for (j = 0; j < data_claim->nsamples; j++)
            sample_data_release(&data[j]);
    lg_free(data);
    for (i = 0; i < nw; i++)
        work_release(&w[i]);
    lg_free(w);
    lg_free(members);
    lg_free(ps);
    lg_free(adj);
    lg_eval_result_free(r);
    return err;
}
