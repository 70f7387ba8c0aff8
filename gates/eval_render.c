/*
 * eval_render.c - evaluation results as text, JSON and JUnit XML (see
 * eval.h: lg_eval_render_text, lg_eval_to_json, lg_eval_render_json,
 * lg_eval_render_junit). Rendering only reads a finished lg_eval_result
 * (eval.c fills it): every number shown is the one the verdict was
 * decided on. Non-finite numbers become JSON null, never NaN text, and
 * XML text is escaped, so any claim id or reason string stays well formed.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "gates/eval.h"
#include "gates/gates.h"

/* ---- text ------------------------------------------------------------------------------ */

static int term_describe(lg_buf *b, const lg_claim_result *cr, const lg_term_result *t)
{
    int err = 0;
    const char *sa = t->sample[0] >= 0 ? cr->samples[t->sample[0]].name : NULL;
    const char *sb = t->sample[1] >= 0 ? cr->samples[t->sample[1]].name : NULL;
    if (t->fn == LG_FN_CONST)
        return 0;
    err = lg_buf_printf(b, "%s(%s%s%s)", lg_fn_name(t->fn), sa ? sa : "", sb ? ", " : "", sb ? sb : "");
    if (!err && sb)
        err = lg_buf_printf(b, " n=%zu,%zu", t->n[0], t->n[1]);
    else if (!err)
        err = lg_buf_printf(b, " n=%zu", t->n[0]);
    if (!err && !isnan(t->est))
        err = lg_buf_printf(b, " est=%.6g", t->est);
    if (!err && !isnan(t->lo))
        err = lg_buf_printf(b, " %g%%CI=[%.6g, %.6g]", 100 * t->level, t->lo, t->hi);
    if (!err && !isnan(t->stat) && t->fn != LG_FN_PERMUTATION) /* permutation: stat == est */
        err = lg_buf_printf(b, " %s=%.6g", t->fn == LG_FN_MANNWHITNEY ? "U" : "t", t->stat);
    if (!err && !isnan(t->df))
        err = lg_buf_printf(b, " df=%.4g", t->df);
    if (!err && !isnan(t->p))
        err = lg_buf_printf(b, " p=%.4g", t->p);
    if (!err && !isnan(t->p_adj))
        err = lg_buf_printf(b, " p_holm=%.4g", t->p_adj);
    if (!err && t->resamples)
        err = lg_buf_printf(b, " (%ld resamples, seed %llu%s%s)", t->resamples, (unsigned long long)t->seed,
                            *t->method ? ", " : "", t->method);
    else if (!err && *t->method)
        err = lg_buf_printf(b, " (%s)", t->method);
    return err;
}

int lg_eval_render_text(const lg_eval_result *r, lg_buf *b)
{
    size_t i, j, k;
    int err = 0;
    for (i = 0; i < r->nclaims && !err; i++) {
        const lg_claim_result *cr = &r->claims[i];
        err = lg_buf_printf(b, "%-7s %s  (%s:%d, study %s", lg_verdict_name(cr->verdict), cr->id, r->path, cr->line,
                            cr->study);
        if (!err && cr->pinned_run)
            err = lg_buf_printf(b, ", pinned to run %s", cr->pinned_run);
        for (j = 0; j < cr->ngates && !err; j++)
            err = lg_buf_printf(b, "%s%s", j ? " " : ", requires ", cr->gates[j]);
        for (j = 0; j < cr->nrun_ids && !err; j++)
            err = lg_buf_printf(b, "%s%.12s", j ? ", " : ", run ", cr->run_ids[j]);
        if (!err)
            err = lg_buf_puts(b, ")\n");
        if (!err && cr->reason)
            err = lg_buf_printf(b, "        %s\n", cr->reason);
        for (j = 0; j < cr->nreqs && !err; j++) {
            const lg_req_result *rr = &cr->reqs[j];
            if (rr->note)
                err = lg_buf_printf(b, "        [error] %s: %s\n", rr->text, rr->note);
            else
                err = lg_buf_printf(b, "        [%s] %s   (%s%.6g %s %g)\n", rr->holds ? "ok" : "no", rr->text,
                                    rr->corrected ? "Holm-adjusted " : "", rr->value, lg_op_name(rr->op), rr->threshold);
            for (k = 0; k < rr->nterms && !err; k++) {
                if (rr->terms[k].fn == LG_FN_CONST)
                    continue;
                if (!(err = lg_buf_puts(b, "            ")) && !(err = term_describe(b, cr, &rr->terms[k])))
                    err = lg_buf_puts(b, "\n");
            }
        }
    }
    return err;
}

/* ---- JSON --------------------------------------------------------------------------------- */

static cJSON *num_or_null(double v) { return isnan(v) || isinf(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v); }

#define JADD(obj, key, val)                                   \
    do {                                                      \
        cJSON *j_ = (val);                                    \
        if (!j_ || !cJSON_AddItemToObject((obj), (key), j_)) { \
            cJSON_Delete(j_);                                 \
            goto fail;                                        \
        }                                                     \
    } while (0)
#define JSTR(s) ((s) ? cJSON_CreateString(s) : cJSON_CreateNull())

static cJSON *term_json(const lg_claim_result *cr, const lg_term_result *t)
{
    cJSON *o = cJSON_CreateObject(), *samples, *ns;
    int k;
    if (!o)
        return NULL;
    JADD(o, "fn", cJSON_CreateString(lg_fn_name(t->fn)));
    JADD(o, "field", cJSON_CreateString(lg_field_name(t->fn, t->field)));
    JADD(o, "sign", cJSON_CreateNumber(t->sign));
    JADD(o, "value", num_or_null(t->value));
    if (t->fn != LG_FN_CONST) {
        JADD(o, "samples", samples = cJSON_CreateArray());
        JADD(o, "n", ns = cJSON_CreateArray());
        for (k = 0; k < 2; k++) {
            if (t->sample[k] < 0)
                continue;
            cJSON *s = cJSON_CreateString(cr->samples[t->sample[k]].name), *n = cJSON_CreateNumber((double)t->n[k]);
            if (!s || !n || !cJSON_AddItemToArray(samples, s) || !cJSON_AddItemToArray(ns, n)) {
                cJSON_Delete(s);
                cJSON_Delete(n);
                goto fail;
            }
        }
        JADD(o, "est", num_or_null(t->est));
        JADD(o, "lo", num_or_null(t->lo));
        JADD(o, "hi", num_or_null(t->hi));
        JADD(o, "level", num_or_null(t->level));
        JADD(o, "stat", num_or_null(t->stat));
        JADD(o, "df", num_or_null(t->df));
        JADD(o, "p", num_or_null(t->p));
        JADD(o, "p_holm", num_or_null(t->p_adj));
        if (t->fn == LG_FN_WELCH || t->fn == LG_FN_PAIRED || t->fn == LG_FN_MANNWHITNEY || t->fn == LG_FN_PERMUTATION)
            JADD(o, "alternative", cJSON_CreateString(lg_alternative_name(t->alt)));
        if (*t->method)
            JADD(o, "method", cJSON_CreateString(t->method));
        if (t->resamples) {
            JADD(o, "resamples", cJSON_CreateNumber((double)t->resamples));
            JADD(o, "seed", cJSON_CreateNumber((double)t->seed));
            JADD(o, "exact", cJSON_CreateBool(t->exact));
        }
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

cJSON *lg_eval_to_json(const lg_eval_result *r)
{
    cJSON *o = cJSON_CreateObject(), *claims, *counts;
    size_t i, j, k;
    int v;
    if (!o)
        goto fail;
    JADD(o, "file", cJSON_CreateString(r->path));
    JADD(o, "ok", cJSON_CreateBool(lg_eval_ok(r)));
    JADD(o, "counts", counts = cJSON_CreateObject());
    for (v = 0; v < LG_VERDICT_COUNT; v++)
        JADD(counts, lg_verdict_name((lg_verdict)v), cJSON_CreateNumber((double)r->counts[v]));
    JADD(o, "claims", claims = cJSON_CreateArray());
    for (i = 0; i < r->nclaims; i++) {
        const lg_claim_result *cr = &r->claims[i];
        cJSON *c = cJSON_CreateObject(), *runs, *samples, *reqs;
        if (!c || !cJSON_AddItemToArray(claims, c)) {
            cJSON_Delete(c);
            goto fail;
        }
        JADD(c, "id", cJSON_CreateString(cr->id));
        JADD(c, "line", cJSON_CreateNumber(cr->line));
        JADD(c, "says", cJSON_CreateString(cr->says));
        JADD(c, "study", cJSON_CreateString(cr->study));
        JADD(c, "verdict", cJSON_CreateString(lg_verdict_name(cr->verdict)));
        JADD(c, "ok", cJSON_CreateBool(lg_verdict_ok(cr->verdict)));
        JADD(c, "expect", cJSON_CreateString(cr->expect_fail ? "fail" : "pass"));
        JADD(c, "reason", JSTR(cr->reason));
        JADD(c, "pinned_run", JSTR(cr->pinned_run));
        if (cr->grid_key) {
            cJSON *by;
            JADD(c, "by", by = cJSON_CreateObject());
            JADD(by, "key", cJSON_CreateString(cr->grid_key));
            JADD(by, "value", JSTR(cr->grid_value));
        } else
            JADD(c, "by", cJSON_CreateNull());
        {
            cJSON *gates;
            JADD(c, "requires", gates = cJSON_CreateArray());
            for (j = 0; j < cr->ngates; j++) {
                cJSON *s = cJSON_CreateString(cr->gates[j]);
                if (!s || !cJSON_AddItemToArray(gates, s)) {
                    cJSON_Delete(s);
                    goto fail;
                }
            }
            JADD(c, "blocked_by", JSTR(cr->blocked_by));
        }
        JADD(c, "runs", runs = cJSON_CreateArray());
        for (j = 0; j < cr->nrun_ids; j++) {
            cJSON *s = cJSON_CreateString(cr->run_ids[j]);
            if (!s || !cJSON_AddItemToArray(runs, s)) {
                cJSON_Delete(s);
                goto fail;
            }
        }
        JADD(c, "samples", samples = cJSON_CreateArray());
        for (j = 0; j < cr->nsamples; j++) {
            static const char *st[] = {"fresh", "stale", "missing"};
            cJSON *s = cJSON_CreateObject();
            if (!s || !cJSON_AddItemToArray(samples, s)) {
                cJSON_Delete(s);
                goto fail;
            }
            JADD(s, "name", cJSON_CreateString(cr->samples[j].name));
            JADD(s, "n", cJSON_CreateNumber((double)cr->samples[j].n));
            JADD(s, "run", JSTR(cr->samples[j].run_id));
            JADD(s, "evidence", cJSON_CreateString(st[cr->samples[j].status % 3]));
        }
        JADD(c, "requirements", reqs = cJSON_CreateArray());
        for (j = 0; j < cr->nreqs; j++) {
            const lg_req_result *rr = &cr->reqs[j];
            cJSON *q = cJSON_CreateObject(), *terms;
            if (!q || !cJSON_AddItemToArray(reqs, q)) {
                cJSON_Delete(q);
                goto fail;
            }
            JADD(q, "expr", cJSON_CreateString(rr->text));
            JADD(q, "line", cJSON_CreateNumber(rr->line));
            JADD(q, "value", num_or_null(rr->value));
            JADD(q, "op", cJSON_CreateString(lg_op_name(rr->op)));
            JADD(q, "threshold", cJSON_CreateNumber(rr->threshold));
            JADD(q, "holds", cJSON_CreateBool(rr->holds));
            JADD(q, "holm", cJSON_CreateBool(rr->corrected));
            JADD(q, "error", JSTR(rr->note));
            JADD(q, "terms", terms = cJSON_CreateArray());
            for (k = 0; k < rr->nterms; k++) {
                cJSON *t = term_json(cr, &rr->terms[k]);
                if (!t || !cJSON_AddItemToArray(terms, t)) {
                    cJSON_Delete(t);
                    goto fail;
                }
            }
        }
    }
    return o;
fail:
    cJSON_Delete(o);
    lg_error_set(LG_ENOMEM, "out of memory rendering JSON");
    return NULL;
}

int lg_eval_render_json(const lg_eval_result *const *r, size_t n, char **out)
{
    cJSON *o = cJSON_CreateObject(), *files;
    char *s = NULL;
    size_t i;
    int ok = 1;
    *out = NULL;
    if (!o)
        goto fail;
    JADD(o, "gates_version", cJSON_CreateString(lg_gates_version()));
    JADD(o, "files", files = cJSON_CreateArray());
    for (i = 0; i < n; i++) {
        cJSON *f = lg_eval_to_json(r[i]);
        if (!f || !cJSON_AddItemToArray(files, f)) {
            cJSON_Delete(f);
            goto fail;
        }
        ok &= lg_eval_ok(r[i]);
    }
    JADD(o, "ok", cJSON_CreateBool(ok));
    if (!(s = cJSON_PrintUnformatted(o)))
        goto fail;
    *out = lg_strdup(s); /* callers free with lg_free, whatever allocator cJSON uses */
    cJSON_free(s);
    cJSON_Delete(o);
    return *out ? 0 : LG_ENOMEM;
fail:
    cJSON_Delete(o);
    return lg_error_set(LG_ENOMEM, "out of memory rendering JSON");
}

/* ---- JUnit XML ------------------------------------------------------------------------------- */

static int xml_escape(lg_buf *b, const char *s)
{
    int err = 0;
    for (; *s && !err; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '&': err = lg_buf_puts(b, "&amp;"); break;
        case '<': err = lg_buf_puts(b, "&lt;"); break;
        case '>': err = lg_buf_puts(b, "&gt;"); break;
        case '"': err = lg_buf_puts(b, "&quot;"); break;
        case '\'': err = lg_buf_puts(b, "&apos;"); break;
        default:
            /* XML 1.0 forbids most control characters even escaped */
            err = ch < 0x20 && ch != '\n' && ch != '\t' ? lg_buf_puts(b, "?") : lg_buf_put(b, s, 1);
        }
    }
    return err;
}

int lg_eval_render_junit(const lg_eval_result *const *r, size_t n, char **out)
{
    lg_buf b = LG_BUF_INIT, detail = LG_BUF_INIT;
    size_t i, j, tests = 0, failures = 0, errors = 0;
    int err;
    *out = NULL;
    for (i = 0; i < n; i++) {
        tests += r[i]->nclaims;
        failures += r[i]->counts[LG_VERDICT_FAIL] + r[i]->counts[LG_VERDICT_XPASS] + r[i]->counts[LG_VERDICT_BLOCKED];
        errors += r[i]->counts[LG_VERDICT_MISSING] + r[i]->counts[LG_VERDICT_STALE] + r[i]->counts[LG_VERDICT_ERROR];
    }
    if ((err = lg_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                 "<testsuites name=\"ledger claims\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\">\n",
                             tests, failures, errors)) < 0)
        goto out;
    for (i = 0; i < n; i++) {
        const lg_eval_result *fr = r[i];
        size_t ff = fr->counts[LG_VERDICT_FAIL] + fr->counts[LG_VERDICT_XPASS] + fr->counts[LG_VERDICT_BLOCKED];
        size_t fe = fr->counts[LG_VERDICT_MISSING] + fr->counts[LG_VERDICT_STALE] + fr->counts[LG_VERDICT_ERROR];
        if ((err = lg_buf_puts(&b, "  <testsuite name=\"")) < 0 || (err = xml_escape(&b, fr->path)) < 0 ||
            (err = lg_buf_printf(&b, "\" tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"0\">\n", fr->nclaims,
                                 ff, fe)) < 0)
            goto out;
        for (j = 0; j < fr->nclaims; j++) {
            const lg_claim_result *cr = &fr->claims[j];
            lg_eval_result one = *fr;
            const char *tag = cr->verdict == LG_VERDICT_FAIL || cr->verdict == LG_VERDICT_XPASS ||
                                      cr->verdict == LG_VERDICT_BLOCKED
                                  ? "failure"
                            : lg_verdict_ok(cr->verdict) ? NULL : "error";
            one.claims = (lg_claim_result *)cr;
            one.nclaims = 1;
            lg_buf_clear(&detail);
            if ((err = lg_eval_render_text(&one, &detail)) < 0)
                goto out;
            if ((err = lg_buf_puts(&b, "    <testcase classname=\"claims.")) < 0 || (err = xml_escape(&b, fr->path)) < 0 ||
                (err = lg_buf_puts(&b, "\" name=\"")) < 0 || (err = xml_escape(&b, cr->id)) < 0 ||
                (err = lg_buf_puts(&b, "\">\n")) < 0)
                goto out;
            if (tag) {
                if ((err = lg_buf_printf(&b, "      <%s type=\"%s\" message=\"%s: ", tag, lg_verdict_name(cr->verdict),
                                         lg_verdict_name(cr->verdict))) < 0 ||
                    (err = xml_escape(&b, cr->reason ? cr->reason : "")) < 0 || (err = lg_buf_puts(&b, "\">")) < 0 ||
                    (err = xml_escape(&b, detail.ptr ? detail.ptr : "")) < 0 ||
                    (err = lg_buf_printf(&b, "</%s>\n", tag)) < 0)
                    goto out;
            }
            if ((err = lg_buf_puts(&b, "      <system-out>")) < 0 || (err = xml_escape(&b, detail.ptr ? detail.ptr : "")) < 0 ||
                (err = lg_buf_puts(&b, "</system-out>\n    </testcase>\n")) < 0)
                goto out;
        }
        if ((err = lg_buf_puts(&b, "  </testsuite>\n")) < 0)
            goto out;
    }
    if ((err = lg_buf_puts(&b, "</testsuites>\n")) < 0)
        goto out;
    if (!(*out = lg_buf_detach(&b)))
        err = LG_ENOMEM;
out:
    lg_buf_release(&b);
    lg_buf_release(&detail);
    return err;
}
