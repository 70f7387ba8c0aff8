/*
 * report.c - rendering report templates against the ledger (see report.h):
 * the values, tables and claims, the provenance appendix and the walk that
 * dispatches every directive. The plots live in report_plot.c (dispatched
 * from on_piece below), the evidence access both use in report_evidence.c,
 * the recording and re-checking of reports in report_verify.c; report_int.h
 * holds what they share.
 *
 * Data flow: every number goes through lg_evidence_provider (run choice,
 * STALE / MISSING, filters); tables and plots first rpt_ask it for the whole
 * selection (which names the run and says whether the evidence is fresh),
 * then list the run's conditions from its verified manifest
 * (lg_evidence_run: never from the SQLite index, which is only
 * cross-checked) to find the groups, then rpt_ask once per group with the
 * group's parameter values added as '=' filters. Claims are evaluated once,
 * with the same evidence context (one manifest cache per render).
 * Histogram values come from the run's conditions/<cond>/maxcos.npy
 * artifacts, read through the store and re-hashed before use, so a tampered
 * object cannot draw a plot; an artifact kept only in the store and absent
 * locally (a fresh clone) is MISSING with "run 'ledger pull DIR'".
 *
 * The provenance appendix is produced last (it needs every run used): the
 * Markdown is rendered into a head and a tail around the {{provenance}}
 * directive (or the end of the text) and joined at the end.
 *
 * Invariants: the output depends only on the template bytes, the claim
 * files and the ledger's evidence (no clock, no paths outside the repo, no
 * hash-table order), so re-rendering reproduces it byte for byte.
 */
#include "ledger/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifacts/npy.h"
#include "base/sha256.h"
#include "engine/run.h"
#include "gates/eval.h"
#include "gates/stats.h"
#include "ledger/evidence.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/svg.h"
#include "ledger/report_int.h"

/* ---- statistics of a sample ---------------------------------------------------------- */

static double stat_of(lg_stat s, const double *x, size_t n, double *lo, double *hi)
{
    lg_interval iv;
    *lo = *hi = NAN;
    switch (s) {
    case LG_STAT_MEAN: return lg_stats_mean(x, n);
    case LG_STAT_SD: return lg_stats_sd(x, n);
    case LG_STAT_SE: return lg_stats_se(x, n);
    case LG_STAT_MIN: return n ? lg_stats_min(x, n) : NAN;
    case LG_STAT_MAX: return n ? lg_stats_max(x, n) : NAN;
    case LG_STAT_MEDIAN: return lg_stats_median(x, n);
    case LG_STAT_N: return (double)n;
    case LG_STAT_CI95:
        if (n >= 2 && lg_stats_bootstrap_mean(x, n, CI_LEVEL, CI_RESAMPLES, CI_SEED, LG_BOOT_PERCENTILE, &iv) == 0) {
            *lo = iv.lo;
            *hi = iv.hi;
            return iv.est;
        }
        lg_error_clear();
        return NAN;
    }
    return NAN;
}

static int put_stat(lg_buf *b, const lg_directive *d, lg_stat s, const double *x, size_t n)
{
    char v1[64], v2[64];
    double lo, hi, v = stat_of(s, x, n, &lo, &hi);
    const char *fmt = s == LG_STAT_N ? "%.0f" : d->fmt_set ? d->fmt : "%.3f"; /* n is a count: no decimals */
    if (s == LG_STAT_CI95) {
        lg_template_format(v1, sizeof v1, fmt, lo);
        lg_template_format(v2, sizeof v2, fmt, hi);
        return lg_buf_printf(b, "[%s, %s]", v1, v2);
    }
    lg_template_format(v1, sizeof v1, fmt, v);
    return lg_buf_puts(b, v1);
}

/* ---- directives ------------------------------------------------------------------------- */

static int do_value(rctx *c, const lg_directive *d)
{
    lg_samples s;
    used_run *u = NULL;
    int err;
    if ((err = rpt_resolve(c, d, NULL, &u)) <= 0)
        return err;
    if ((err = rpt_ask(c, d, NULL, 0, NULL, &s)) < 0)
        return err;
    if ((err = put_stat(c->cur, d, d->stats[0], s.values, s.n)) < 0)
        return err;
    return rpt_mark(c, u);
}

static int do_table(rctx *c, const lg_directive *d)
{
    group *g = NULL;
    size_t ng = 0, i, k;
    used_run *u = NULL;
    lg_buf *b = c->cur;
    int err;
    if ((err = rpt_resolve(c, d, NULL, &u)) <= 0)
        return err;
    if ((err = rpt_find_groups(c, d, u->run_id, (const char *const *)d->by, d->nby, 0, &g, &ng)) < 0)
        return err;
    /* header */
    for (k = 0; k < d->nby && err == 0; k++)
        err = lg_buf_printf(b, "| %s ", d->by[k]);
    for (k = 0; k < d->nstats && err == 0; k++)
        err = lg_buf_printf(b, "| %s(%s.%s)%s ", lg_stat_name(d->stats[k]), lg_unit_name(d->sel.unit), d->sel.metric,
                            k == d->nstats - 1 ? "" : "");
    if (err == 0)
        err = lg_buf_puts(b, "|\n");
    for (k = 0; k < d->nby && err == 0; k++)
        err = lg_buf_puts(b, "|---");
    for (k = 0; k < d->nstats && err == 0; k++)
        err = lg_buf_puts(b, "|---:");
    if (err == 0)
        err = lg_buf_puts(b, "|\n");
    for (i = 0; i < ng && err == 0; i++) {
        lg_filter fl[LG_TEMPLATE_MAX_BY];
        lg_samples s;
        for (k = 0; k < d->nby; k++)
            lg_filter_eq(&fl[k], d->by[k], g[i].vals[k]);
        if ((err = rpt_ask(c, d, fl, d->nby, NULL, &s)) < 0)
            break;
        for (k = 0; k < d->nby && err == 0; k++) {
            rpt_shown_value(g[i].vals[k]); /* its evidence is read above */
            err = lg_buf_printf(b, "| %s ", g[i].vals[k]);
        }
        for (k = 0; k < d->nstats && err == 0; k++) {
            if ((err = lg_buf_puts(b, "| ")) == 0 && (err = put_stat(b, d, d->stats[k], s.values, s.n)) == 0)
                err = lg_buf_puts(b, " ");
        }
        if (err == 0)
            err = lg_buf_puts(b, "|\n");
    }
    if (err == 0)
        err = lg_buf_printf(b, "\n*%s.%s of study %s, run %ld", lg_unit_name(d->sel.unit), d->sel.metric, d->study,
                            u->seq);
    if (err == 0)
        err = lg_buf_puts(b, "*");
    if (err == 0)
        err = rpt_mark(c, u);
    rpt_groups_free(g, ng, d->nby);
    return err;
}

static int load_claims(rctx *c)
{
    char **paths = NULL;
    size_t n = 0, i;
    int err;
    if (c->claims_loaded)
        return 0;
    if (c->o->nclaim_paths) {
        if (!(paths = lg_calloc(c->o->nclaim_paths, sizeof(char *))))
            return LG_ENOMEM;
        for (i = 0; i < c->o->nclaim_paths; i++)
            if (!(paths[i] = lg_strdup(c->o->claim_paths[i]))) {
                lg_evidence_paths_free(paths, c->o->nclaim_paths);
                return LG_ENOMEM;
            }
        n = c->o->nclaim_paths;
    } else if ((err = lg_evidence_default_claims(c->lg, &paths, &n)) < 0) {
        return err;
    }
    c->out->claim_paths = paths;
    c->out->nclaim_paths = n;
    if ((err = lg_evidence_eval_files_ctx(c->ev, paths, n, &c->cres)) < 0)
        return err;
    c->ncres = n;
    c->claims_loaded = 1;
    return 0;
}

/* One claim result (a claim, or one value of its `by` grid). */
static int put_claim(rctx *c, const lg_directive *d, const lg_claim_result *cr)
{
    lg_report_claim *rc;
    size_t i;
    int err;
    if (!(rc = lg_realloc(c->out->claims, (c->out->nclaims + 1) * sizeof(*rc))))
        return LG_ENOMEM;
    c->out->claims = rc;
    rc = &rc[c->out->nclaims];
    if (!(rc->id = lg_strdup(cr->id)))
        return LG_ENOMEM;
    rc->verdict = lg_verdict_name(cr->verdict);
    rc->ok = lg_verdict_ok(cr->verdict);
    c->out->nclaims++;
    if (!rc->ok) {
        char what[300], why[900];
        snprintf(what, sizeof what, "claim %s is %s", cr->id, lg_verdict_name(cr->verdict));
        snprintf(why, sizeof why, "%s", cr->reason ? cr->reason : "a requirement does not hold");
        if ((err = rpt_not_supported(c, d, what, why)) < 0)
            return err;
        if ((err = lg_buf_printf(c->cur, " ~~%s~~", cr->says)) < 0)
            return err;
    } else {
        if ((err = lg_buf_printf(c->cur, "**%s**%s %s (`%s`:", lg_verdict_name(cr->verdict),
                                 cr->expect_fail ? " (documented negative result)" : "", cr->says, cr->id)) < 0)
            return err;
        for (i = 0; i < cr->nreqs; i++) {
            const lg_req_result *r = &cr->reqs[i];
            char v[64];
            snprintf(v, sizeof v, "%.4g", r->value);
            if ((err = lg_buf_printf(c->cur, "%s `%s` %s%s, %s", i ? ";" : "", r->text,
                                     r->corrected ? "Holm-adjusted p = " : "= ", v, r->holds ? "holds" : "does not hold")) < 0)
                return err;
        }
        for (i = 0; i < cr->ngates; i++) /* `requires`: an ok claim's gates all hold */
            if ((err = lg_buf_printf(c->cur, "%s`%s`", i ? ", " : "; gates ok: ", cr->gates[i])) < 0)
                return err;
        if ((err = lg_buf_puts(c->cur, ")")) < 0)
            return err;
    }
    if (cr->pinned_run && (err = lg_buf_printf(c->cur, " (pinned to run %s)", cr->pinned_run)) < 0)
        return err;
    for (i = 0; i < cr->nrun_ids; i++) {
        used_run *u = NULL;
        if ((err = rpt_use_run(c, cr->run_ids[i], &u)) < 0)
            return err;
        {
            char sha[65];
            int f = rpt_art_digest(c, u->run_id, "results.json", sha);
            if (f < 0)
                return f;
            if (f && (err = rpt_use_art(u, "results.json", sha)) < 0)
                return err;
        }
        if ((err = rpt_mark(c, u)) < 0)
            return err;
    }
    return 0;
}

static int do_claim(rctx *c, const lg_directive *d)
{
    const lg_claim_result **crs = NULL;
    size_t n = 0, i;
    int err;
    if ((err = load_claims(c)) < 0)
        return err;
    if (lg_evidence_find_claims(c->cres, c->ncres, d->claim_id, &crs, &n) < 0)
        return rpt_derr(c, d, LG_EINPUT, "no claim '%s' in %s", d->claim_id,
                    c->o->nclaim_paths ? "the claim files given" : "claims/*.claims");
    /* a `by` claim renders every value of its grid, one per line */
    for (i = 0; i < n && err == 0; i++)
        if ((err = i ? lg_buf_puts(c->cur, "\n\n") : 0) == 0)
            err = put_claim(c, d, crs[i]);
    lg_free(crs);
    return err;
}

/* ---- provenance ------------------------------------------------------------------------------ */

static const char *str_or(const cJSON *m, const char *key, const char *dflt)
{
    const char *t = lg_json_str(m, key);
    return t && *t ? t : dflt;
}

static int provenance(rctx *c, lg_buf *b)
{
    size_t i, k;
    int err = 0;
    if (c->nruns == 0)
        return lg_buf_puts(b, "*No evidence was used.*\n");
    if ((err = lg_buf_puts(b, "| run | id | study | kind | created | engine | backend / device | spec | data |\n"
                              "|---:|---|---|---|---|---|---|---|---|\n")) < 0)
        return err;
    for (i = 0; i < c->nruns && err == 0; i++) {
        const cJSON *m = rpt_run_manifest(c, c->runs[i].run_id, &err);
        if (!m)
            break;
        err = lg_buf_printf(b, "| %ld | `%.12s` | %s | %s | %s | %s | %s", c->runs[i].seq, c->runs[i].run_id,
                            str_or(m, "study", "-"), str_or(m, "kind", "-"), str_or(m, "created", "-"),
                            str_or(m, "engine_version", "-"), str_or(m, "backend", "-"));
        if (err == 0 && lg_json_str(m, "device"))
            err = lg_buf_printf(b, " (%s)", str_or(m, "device", ""));
        if (err == 0)
            err = lg_buf_puts(b, " | ");
        if (err == 0 && lg_json_str(m, "study_path"))
            err = lg_buf_printf(b, "`%s` ", str_or(m, "study_path", ""));
        if (err == 0)
            err = lg_json_str(m, "spec_digest") ? lg_buf_printf(b, "`%.12s`", str_or(m, "spec_digest", ""))
                                                : lg_buf_puts(b, "-");
        if (err == 0)
            err = lg_json_str(m, "data_digest") ? lg_buf_printf(b, " | `%.12s` |\n", str_or(m, "data_digest", ""))
                                                : lg_buf_puts(b, " | - |\n");
    }
    if (err < 0)
        return err;
    if (c->out->nclaims) {
        if ((err = lg_buf_puts(b, "\nClaims shown (evaluated from ")) < 0)
            return err;
        for (i = 0; i < c->out->nclaim_paths && err == 0; i++) {
            const char *p = c->out->claim_paths[i], *root = lg_ledger_root(c->lg);
            size_t rl = strlen(root);
            if (!strncmp(p, root, rl) && p[rl] == '/')
                p += rl + 1;
            err = lg_buf_printf(b, "%s`%s`", i ? ", " : "", p);
        }
        if (err == 0)
            err = lg_buf_puts(b, "): ");
        for (i = 0; i < c->out->nclaims && err == 0; i++)
            err = lg_buf_printf(b, "%s`%s` %s", i ? ", " : "", c->out->claims[i].id, c->out->claims[i].verdict);
        if (err == 0)
            err = lg_buf_puts(b, ".\n");
    }
    if (err == 0)
        err = lg_buf_puts(b, "\nEach run id is the SHA-256 of the run's manifest, which holds the results every "
                             "number and claim above was computed from; plots name the artifacts they read.\n\n");
    for (i = 0; i < c->nruns && err == 0; i++) {
        const used_run *u = &c->runs[i];
        err = lg_buf_printf(b, "[^run-%ld]: Run %ld of study %s, manifest SHA-256 `%s`", u->seq, u->seq, u->study,
                            u->run_id);
        for (k = 0; k < u->narts && err == 0; k++)
            err = lg_buf_printf(b, "%s `%s` SHA-256 `%s`", k ? ";" : ", artifacts:", u->arts[k].name, u->arts[k].sha);
        if (err == 0)
            err = lg_buf_puts(b, ".\n");
    }
    return err;
}

/* ---- the walk ---------------------------------------------------------------------------------- */

static int on_piece(void *ctx, const char *lit, size_t len, const lg_directive *d)
{
    rctx *c = ctx;
    if (!d)
        return lg_buf_put(c->cur, lit, len);
    switch (d->kind) {
    case LG_DIR_CLAIM: return do_claim(c, d);
    case LG_DIR_VALUE: return do_value(c, d);
    case LG_DIR_TABLE: return do_table(c, d);
    case LG_DIR_PLOT:
        if (d->plot == LG_PLOT_CURVE || d->plot == LG_PLOT_SCATTER)
            return rpt_plot_xy(c, d);
        return d->plot == LG_PLOT_HIST ? rpt_plot_hist(c, d) : rpt_plot_param(c, d);
    case LG_DIR_PROVENANCE:
        if (c->have_prov)
            return rpt_derr(c, d, LG_EINPUT, "a second {{provenance}}");
        c->have_prov = 1;
        c->cur = &c->tail;
        return 0;
    }
    return lg_error_set(LG_EINTERNAL, "unknown directive kind");
}

void lg_report_release(lg_report *r)
{
    size_t i;
    if (!r)
        return;
    lg_buf_release(&r->md);
    for (i = 0; i < r->nsvgs; i++) {
        lg_free(r->svgs[i].name);
        lg_buf_release(&r->svgs[i].data);
    }
    lg_free(r->svgs);
    for (i = 0; i < r->nruns; i++)
        lg_free(r->runs[i].study);
    lg_free(r->runs);
    for (i = 0; i < r->nclaims; i++)
        lg_free(r->claims[i].id);
    lg_free(r->claims);
    lg_evidence_paths_free(r->claim_paths, r->nclaim_paths);
    memset(r, 0, sizeof *r);
}

int lg_report_render(lg_ledger *lg, const lg_template *t, const lg_report_opts *o, lg_report *out)
{
    static const lg_report_opts dflt = {0, NULL, 0};
    rctx c;
    size_t i, k;
    int err;
    memset(out, 0, sizeof *out);
    memset(&c, 0, sizeof c);
    c.lg = lg;
    c.t = t;
    c.o = o ? o : &dflt;
    c.out = out;
    c.cur = &out->md;
    lg_buf_init(&out->md, 0);
    lg_buf_init(&c.tail, 0);
    if ((err = lg_evidence_new(lg, &c.ev)) < 0)
        goto out;
    if ((err = lg_template_walk(t, on_piece, &c)) < 0)
        goto out;
    /* provenance: in place, or appended as a section */
    if (!c.have_prov && c.nruns) {
        if (out->md.len && out->md.ptr[out->md.len - 1] != '\n' && (err = lg_buf_puts(&out->md, "\n")) < 0)
            goto out;
        if ((err = lg_buf_puts(&out->md, "\n## Provenance\n\n")) < 0)
            goto out;
    }
    if ((c.have_prov || c.nruns) && (err = provenance(&c, &out->md)) < 0)
        goto out;
    if (c.tail.len && (err = lg_buf_put(&out->md, c.tail.ptr, c.tail.len)) < 0)
        goto out;
    if (!out->md.ptr && (err = lg_buf_puts(&out->md, "")) < 0)
        goto out;
    if (c.nruns && !(out->runs = lg_calloc(c.nruns, sizeof(*out->runs)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < c.nruns; i++) {
        snprintf(out->runs[i].run_id, 65, "%s", c.runs[i].run_id);
        out->runs[i].seq = c.runs[i].seq;
        out->runs[i].study = c.runs[i].study;
        c.runs[i].study = NULL;
        out->nruns++;
    }
out:
    for (i = 0; i < c.nruns; i++) {
        lg_free(c.runs[i].study);
        for (k = 0; k < c.runs[i].narts; k++)
            lg_free(c.runs[i].arts[k].name);
        lg_free(c.runs[i].arts);
    }
    lg_free(c.runs);
    for (i = 0; i < c.ncres; i++)
        lg_eval_result_free(c.cres[i]);
    lg_free(c.cres);
    lg_evidence_free(c.ev);
    lg_buf_release(&c.tail);
    return err;
}
