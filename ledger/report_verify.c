/*
 * report_verify.c - recording a rendered report as a run and verifying
 * recorded reports (see report.h: lg_report_extra, lg_report_verify_all).
 *
 * A report run records its template as an output and, in "extra", what the
 * render depended on (claim files, runs, claims and their verdicts, SVG
 * names). Verification re-reads the template from the store (re-hashed),
 * re-renders it against today's evidence with the same options and
 * compares the SHA-256 of the Markdown and of every SVG with the recorded
 * outputs: rendering is deterministic (report.c), so any difference means
 * the evidence or the report changed; the first differing Markdown line is
 * named.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sha256.h"
#include "ledger/evidence.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/report.h"

/* path relative to the repository root when inside it */
static const char *rel_to_root(lg_ledger *lg, const char *p)
{
    const char *root = lg_ledger_root(lg);
    size_t rl = strlen(root);
    if (!strncmp(p, root, rl) && p[rl] == '/')
        return p + rl + 1;
    return p;
}

cJSON *lg_report_extra(lg_ledger *lg, const lg_report *r, const char *template_path, const char *template_output,
                       const char *output, const lg_report_opts *o)
{
    cJSON *e = cJSON_CreateObject(), *a;
    size_t i;
    if (!e || !cJSON_AddNumberToObject(e, "report_format", 1) ||
        !cJSON_AddStringToObject(e, "template", rel_to_root(lg, template_path)) ||
        !cJSON_AddStringToObject(e, "template_output", template_output) || !cJSON_AddStringToObject(e, "output", output) ||
        !cJSON_AddBoolToObject(e, "allow_failing", o && o->allow_failing) ||
        !cJSON_AddNumberToObject(e, "not_supported", (double)r->nfailing))
        goto fail;
    if (!(a = cJSON_AddArrayToObject(e, "claim_files")))
        goto fail;
    for (i = 0; i < r->nclaim_paths; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(rel_to_root(lg, r->claim_paths[i]))))
            goto fail;
    if (!(a = cJSON_AddArrayToObject(e, "runs")))
        goto fail;
    for (i = 0; i < r->nruns; i++) {
        cJSON *o1 = cJSON_CreateObject();
        if (!o1 || !cJSON_AddItemToArray(a, o1) || !cJSON_AddStringToObject(o1, "run_id", r->runs[i].run_id) ||
            !cJSON_AddNumberToObject(o1, "seq", (double)r->runs[i].seq) ||
            !cJSON_AddStringToObject(o1, "study", r->runs[i].study))
            goto fail;
    }
    if (!(a = cJSON_AddArrayToObject(e, "claims")))
        goto fail;
    for (i = 0; i < r->nclaims; i++) {
        cJSON *o1 = cJSON_CreateObject();
        if (!o1 || !cJSON_AddItemToArray(a, o1) || !cJSON_AddStringToObject(o1, "id", r->claims[i].id) ||
            !cJSON_AddStringToObject(o1, "verdict", r->claims[i].verdict))
            goto fail;
    }
    if (!(a = cJSON_AddArrayToObject(e, "svgs")))
        goto fail;
    for (i = 0; i < r->nsvgs; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(r->svgs[i].name)))
            goto fail;
    return e;
fail:
    cJSON_Delete(e);
    return NULL;
}

/* sha256 of the output `name` in a manifest, or NULL */
static const char *output_sha(const cJSON *m, const char *name)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(m, "outputs"))
    {
        const char *n = lg_json_str(o, "name");
        if (n && !strcmp(n, name))
            return lg_json_str(o, "sha256");
    }
    return NULL;
}

/* First differing line of two texts (1-based), for the message. */
static long first_diff_line(const char *a, size_t na, const char *b, size_t nb)
{
    size_t i;
    long line = 1;
    for (i = 0; i < na && i < nb && a[i] == b[i]; i++)
        if (a[i] == '\n')
            line++;
    return line;
}

typedef struct {
    lg_ledger *lg;
    lg_problems *ps;
    /* latest report per template: [n] */
    char **keys;
    long *seqs;
    char (*ids)[65];
    size_t n;
} vctx;

static int collect_reports(void *ctx, const lg_run_info *info, const cJSON *m)
{
    vctx *v = ctx;
    const char *kind = lg_json_str(m, "kind"), *status = lg_json_str(m, "status");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(m, "extra");
    const char *tmpl = lg_json_str(extra, "template");
    size_t i;
    if (!kind || strcmp(kind, "report") || !status || strcmp(status, "ok"))
        return 0;
    if (!tmpl) { /* text that claims to be a report but cannot be re-rendered: never taken on trust */
        char subject[64];
        snprintf(subject, sizeof subject, "run %ld-%.12s", info->seq, info->run_id);
        return lg_problems_add(v->ps, LG_PROBLEM_ERROR, "report", subject,
                               "a report run without the template it was rendered from (extra.template): verify "
                               "cannot re-render it (only 'ledger report' writes reports)");
    }
    for (i = 0; i < v->n; i++)
        if (!strcmp(v->keys[i], tmpl))
            break;
    if (i == v->n) {
        char **k = lg_realloc(v->keys, (v->n + 1) * sizeof(char *));
        long *s;
        char(*ids)[65];
        if (!k)
            return LG_ENOMEM;
        v->keys = k;
        if (!(s = lg_realloc(v->seqs, (v->n + 1) * sizeof(long))))
            return LG_ENOMEM;
        v->seqs = s;
        if (!(ids = lg_realloc(v->ids, (v->n + 1) * sizeof(*ids))))
            return LG_ENOMEM;
        v->ids = ids;
        if (!(v->keys[v->n] = lg_strdup(tmpl)))
            return LG_ENOMEM;
        v->n++;
    }
    v->seqs[i] = info->seq;
    snprintf(v->ids[i], 65, "%s", info->run_id);
    return 0;
}

static int verify_one(lg_ledger *lg, lg_problems *ps, const char *run_id, long seq)
{
    cJSON *m = NULL;
    const cJSON *extra, *cf, *it;
    const char *tname, *output, *tsha;
    char subject[64], **cpaths = NULL, hex[65];
    size_t ncp = 0, i;
    lg_buf tb = LG_BUF_INIT, path = LG_BUF_INIT, p = LG_BUF_INIT;
    lg_template *t = NULL;
    lg_report r;
    lg_report_opts o;
    int err;

    memset(&r, 0, sizeof r);
    snprintf(subject, sizeof subject, "run %ld-%.12s", seq, run_id);
    if ((err = lg_ledger_load_manifest(lg, run_id, &m, NULL, NULL)) < 0)
        goto out;
    extra = cJSON_GetObjectItemCaseSensitive(m, "extra");
    tname = lg_json_str(extra, "template_output");
    output = lg_json_str(extra, "output");
    if (!tname || !output || !(tsha = output_sha(m, tname))) {
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject, "report run lacks its template or output names");
        goto out;
    }
    if ((err = lg_ledger_artifact_path(lg, tsha, &path)) < 0 || (err = lg_file_read(path.ptr, LG_TEMPLATE_MAX_FILE, &tb)) < 0) {
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject, "template %s: %s", tname, lg_error_msg());
        goto out;
    }
    if ((err = lg_sha256_buf(tb.ptr ? tb.ptr : "", tb.len, hex)) < 0)
        goto out;
    if (strcmp(hex, tsha) != 0) {
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject, "template %s hashes to %.12s, not %.12s", tname, hex,
                              tsha);
        goto out;
    }
    {
        const char *tp = lg_json_str(extra, "template");
        if ((err = lg_template_parse(tp ? tp : tname, tb.ptr ? tb.ptr : "", tb.len, &t)) < 0) {
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject, "%s", lg_error_msg());
            goto out;
        }
    }
    cf = cJSON_GetObjectItemCaseSensitive(extra, "claim_files");
    if (cJSON_GetArraySize(cf) > 0) {
        if (!(cpaths = lg_calloc((size_t)cJSON_GetArraySize(cf), sizeof(char *)))) {
            err = LG_ENOMEM;
            goto out;
        }
        cJSON_ArrayForEach(it, cf)
        {
            if (!cJSON_IsString(it))
                continue;
            if (it->valuestring[0] == '/')
            {
                lg_buf_clear(&p);
                err = lg_buf_puts(&p, it->valuestring);
            }
            else
                err = lg_path_join(&p, lg_ledger_root(lg), it->valuestring);
            if (err < 0 || !(cpaths[ncp] = lg_strdup(p.ptr))) {
                err = err < 0 ? err : LG_ENOMEM;
                goto out;
            }
            ncp++;
        }
    }
    memset(&o, 0, sizeof o);
    o.allow_failing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(extra, "allow_failing"));
    o.claim_paths = cpaths;
    o.nclaim_paths = ncp;
    /* a claim file named in the report but gone now: say so (not the default list) */
    for (i = 0; i < ncp; i++)
        if (!lg_path_exists(cpaths[i])) {
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject,
                                  "claim file %s used by the report no longer exists", rel_to_root(lg, cpaths[i]));
            goto out;
        }
    if ((err = lg_report_render(lg, t, &o, &r)) < 0) {
        if (err == LG_ENOMEM)
            goto out;
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject,
                              "%s no longer renders from the current evidence: %s", output, lg_error_msg());
        goto out;
    }
    /* compare: the Markdown, every plot, and the set of plots */
    {
        const char *rsha = output_sha(m, output);
        char got[65];
        if ((err = lg_sha256_buf(r.md.ptr, r.md.len, got)) < 0)
            goto out;
        if (!rsha || strcmp(rsha, got) != 0) {
            lg_buf old = LG_BUF_INIT, op = LG_BUF_INIT;
            char where[64] = "";
            if (rsha && lg_ledger_artifact_path(lg, rsha, &op) == 0 && lg_file_read(op.ptr, 0, &old) == 0)
                snprintf(where, sizeof where, " (first difference at line %ld)",
                         first_diff_line(old.ptr ? old.ptr : "", old.len, r.md.ptr, r.md.len));
            lg_error_clear();
            err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject,
                                  "%s no longer matches the evidence: re-rendered sha256 %.12s, recorded %.12s%s", output,
                                  got, rsha ? rsha : "(none)", where);
            lg_buf_release(&old);
            lg_buf_release(&op);
            if (err < 0)
                goto out;
        }
        for (i = 0; i < r.nsvgs; i++) {
            const char *s = output_sha(m, r.svgs[i].name);
            if ((err = lg_sha256_buf(r.svgs[i].data.ptr, r.svgs[i].data.len, got)) < 0)
                goto out;
            if (!s || strcmp(s, got) != 0 ? (err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject,
                                                                  "plot %s no longer matches the evidence (re-rendered "
                                                                  "sha256 %.12s, recorded %.12s)",
                                                                  r.svgs[i].name, got, s ? s : "(none)")) < 0
                                           : 0)
                goto out;
        }
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(extra, "svgs"))
        {
            int found = 0;
            for (i = 0; i < r.nsvgs; i++)
                if (cJSON_IsString(it) && !strcmp(r.svgs[i].name, it->valuestring))
                    found = 1;
            if (!found && (err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject,
                                                 "plot %s is no longer produced by the template",
                                                 cJSON_IsString(it) ? it->valuestring : "?")) < 0)
                goto out;
        }
    }
    err = 0;
out:
    if (err < 0 && err != LG_ENOMEM) {
        /* anything unexpected becomes a problem of this report, not a failure of verify */
        err = lg_problems_add(ps, LG_PROBLEM_ERROR, "report", subject, "cannot verify: %s", lg_error_msg());
    }
    lg_report_release(&r);
    lg_template_free(t);
    lg_evidence_paths_free(cpaths, ncp);
    lg_buf_release(&tb);
    lg_buf_release(&path);
    lg_buf_release(&p);
    cJSON_Delete(m);
    return err;
}

int lg_report_verify_all(lg_ledger *lg, lg_problems *out)
{
    vctx v;
    size_t i;
    int err;
    memset(&v, 0, sizeof v);
    v.lg = lg;
    v.ps = out;
    if ((err = lg_ledger_foreach_run(lg, collect_reports, &v)) < 0)
        goto out;
    for (i = 0; i < v.n; i++)
        if ((err = verify_one(lg, out, v.ids[i], v.seqs[i])) < 0)
            goto out;
out:
    for (i = 0; i < v.n; i++)
        lg_free(v.keys[i]);
    lg_free(v.keys);
    lg_free(v.seqs);
    lg_free(v.ids);
    return err;
}
