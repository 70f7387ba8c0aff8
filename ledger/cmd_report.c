/*
 * cmd_report.c - 'ledger report TEMPLATE -o OUT.md': render a claim-checked
 * Markdown report (ledger/report.h), write it and its SVG plots beside it
 * (each atomically), and record a run of kind "report" whose outputs are the
 * report, the plots and the template itself, and whose extra lists the runs
 * and claim verdicts used (so 'ledger verify' can re-render and compare).
 *
 * Exit: 0 rendered; 1 a claim is not supported or evidence is missing /
 * stale (strict mode; nothing is written); 2 template syntax or usage;
 * 3 I/O or internal.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/report.h"
#include "ledger/sign.h"
#include "ledger/template.h"

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* dir of OUT joined with name into b */
static int beside(lg_buf *b, const char *out, const char *name)
{
    const char *s = strrchr(out, '/');
    lg_buf_clear(b);
    if (!s)
        return lg_buf_puts(b, name);
    return lg_buf_printf(b, "%.*s/%s", (int)(s - out), out, name);
}

/* Splits "a,b,c" into absolute paths. */
static int split_claims(const char *list, char ***out, size_t *n)
{
    char *copy = lg_strdup(list), *tok, *save = NULL;
    char **v = NULL;
    size_t cnt = 0;
    int err = 0;
    *out = NULL;
    *n = 0;
    if (!copy)
        return LG_ENOMEM;
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char abs[PATH_MAX], **nv;
        if (!realpath(tok, abs)) {
            err = lg_error_set(LG_ENOTFOUND, "%s: no such claim file", tok);
            break;
        }
        if (!(nv = lg_realloc(v, (cnt + 1) * sizeof(char *))) || !(nv[cnt] = lg_strdup(abs))) {
            if (nv)
                v = nv;
            err = LG_ENOMEM;
            break;
        }
        v = nv;
        cnt++;
    }
    lg_free(copy);
    if (err < 0) {
        while (cnt)
            lg_free(v[--cnt]);
        lg_free(v);
        return err;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int cmd_report(lg_cli *cli, int argc, char **argv)
{
    const char *out_path = NULL, *claims = NULL, *name = NULL;
    int allow_failing = 0, no_record = 0, json = 0;
    const char *sign = getenv("LEDGER_SIGN_KEY");
    const lg_opt opts[] = {
        {"output", 'o', LG_OPT_STRING, &out_path, "OUT.md", "write the report here (plots go beside it)"},
        {"allow-failing", 0, LG_OPT_FLAG, &allow_failing, NULL,
         "render unsupported claims and missing/stale evidence marked NOT SUPPORTED instead of failing"},
        {"claims", 0, LG_OPT_STRING, &claims, "FILE[,FILE...]", "claim files (default: <repo>/claims/*.claims)"},
        {"name", 0, LG_OPT_STRING, &name, "NAME", "name of the report run (default: the template's base name)"},
        {"no-record", 0, LG_OPT_FLAG, &no_record, NULL, "do not record the report in the ledger"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print {report, run_id, files, runs, claims} as JSON"},
        {"sign", 0, LG_OPT_STRING, &sign, "KEY",
         "sign the report run with this key (a name from 'ledger key list' or a PEM path; default $LEDGER_SIGN_KEY)"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {
        "report", "ledger report [options] TEMPLATE.md -o OUT.md",
        "Renders a Markdown template whose {{claim}}, {{value}}, {{table}}, {{plot}} and {{provenance}}\n"
        "directives are filled from the ledger (templates/README.md). Strict by default: a claim\n"
        "that is not PASS/XFAIL or evidence that is missing or stale fails with TEMPLATE:LINE:COL (exit 1).\n"
        "Writes OUT.md and its SVG plots, then records them with the template as a run of kind \"report\",\n"
        "which 'ledger verify' re-renders against the current evidence.",
        opts, 1, 1, 0};
    lg_ledger *lg = NULL;
    lg_template *t = NULL;
    lg_report r;
    lg_report_opts ro;
    lg_run_file *files = NULL;
    lg_run_input in;
    lg_run_info info;
    cJSON *extra = NULL;
    lg_buf path = LG_BUF_INIT, tout = LG_BUF_INIT, study = LG_BUF_INIT, key_path = LG_BUF_INIT;
    char **cpaths = NULL, run_id[65] = "", tabs[PATH_MAX];
    char **args, **svg_paths = NULL;
    size_t ncp = 0, i, nfiles = 0;
    int nargs, rc, err = 0;

    memset(&r, 0, sizeof r);
    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    rc = 0;
    if (!out_path) {
        fprintf(stderr, "ledger report: -o OUT.md is required\n");
        return 2;
    }
    if ((err = lg_template_load(args[0], &t)) < 0)
        goto out;
    if (!no_record && sign && *sign && (err = lg_key_resolve(sign, &key_path)) < 0)
        goto out;
    if (!realpath(args[0], tabs)) {
        err = lg_error_set(LG_EIO, "%s: cannot resolve the path", args[0]);
        goto out;
    }
    if (claims && (err = split_claims(claims, &cpaths, &ncp)) < 0)
        goto out;
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    memset(&ro, 0, sizeof ro);
    ro.allow_failing = allow_failing;
    ro.claim_paths = cpaths;
    ro.nclaim_paths = ncp;
    if ((err = lg_report_render(lg, t, &ro, &r)) < 0)
        goto out;
    for (i = 0; i < r.nsvgs; i++)
        if (!strcmp(r.svgs[i].name, base_name(out_path))) {
            err = lg_error_set(LG_EINPUT, "plot file %s would overwrite the report", r.svgs[i].name);
            goto out;
        }
    /* write: plots first, the report last (a reader never sees a report without its plots) */
    if (!(svg_paths = lg_calloc(r.nsvgs + 1, sizeof(char *)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < r.nsvgs; i++) {
        char *slash;
        if ((err = beside(&path, out_path, r.svgs[i].name)) < 0 || !(svg_paths[i] = lg_strdup(path.ptr))) {
            err = err < 0 ? err : LG_ENOMEM;
            goto out;
        }
        if ((slash = strrchr(path.ptr, '/')) && slash != path.ptr) {
            *slash = '\0';
            if ((err = lg_mkdir_p(path.ptr, 0777)) < 0)
                goto out;
        }
        if ((err = lg_file_write_atomic(svg_paths[i], r.svgs[i].data.ptr, r.svgs[i].data.len)) < 0)
            goto out;
    }
    {
        const char *slash = strrchr(out_path, '/');
        lg_buf_clear(&path);
        if (slash && slash != out_path &&
            ((err = lg_buf_printf(&path, "%.*s", (int)(slash - out_path), out_path)) < 0 ||
             (err = lg_mkdir_p(path.ptr, 0777)) < 0))
            goto out;
    }
    if ((err = lg_file_write_atomic(out_path, r.md.ptr, r.md.len)) < 0)
        goto out;
    if (!no_record) {
        const char *tb = base_name(args[0]);
        size_t tl = strlen(tb);
        if ((err = lg_buf_printf(&tout, "template/%s", tb)) < 0)
            goto out;
        if (name)
            err = lg_buf_puts(&study, name);
        else
            err = lg_buf_printf(&study, "%.*s", (int)(tl > 3 && !strcmp(tb + tl - 3, ".md") ? tl - 3 : tl), tb);
        if (err < 0)
            goto out;
        if (!(files = lg_calloc(r.nsvgs + 2, sizeof(*files)))) {
            err = LG_ENOMEM;
            goto out;
        }
        files[nfiles].name = base_name(out_path);
        files[nfiles].path = out_path;
        files[nfiles++].media_type = "text/markdown";
        for (i = 0; i < r.nsvgs; i++) {
            files[nfiles].name = r.svgs[i].name;
            files[nfiles].path = svg_paths[i];
            files[nfiles++].media_type = "image/svg+xml";
        }
        files[nfiles].name = tout.ptr;
        files[nfiles].path = args[0];
        files[nfiles++].media_type = "text/markdown";
        if (!(extra = lg_report_extra(lg, &r, tabs, tout.ptr, base_name(out_path), &ro))) {
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        memset(&in, 0, sizeof in);
        in.kind = "report";
        in.study = study.ptr;
        in.extra = extra;
        in.files = files;
        in.nfiles = nfiles;
        in.status = "ok";
        in.sign_key_path = key_path.len ? key_path.ptr : NULL;
        if ((err = lg_ledger_record(lg, &in, run_id)) < 0 || (err = lg_ledger_find_run(lg, run_id, &info)) < 0)
            goto out;
    }
    if (json) {
        cJSON *o = cJSON_CreateObject(), *a;
        char *s = NULL;
        int ok = o && cJSON_AddStringToObject(o, "report", out_path) &&
                 (run_id[0] ? cJSON_AddStringToObject(o, "run_id", run_id) != NULL
                            : cJSON_AddNullToObject(o, "run_id") != NULL) &&
                 cJSON_AddNumberToObject(o, "not_supported", (double)r.nfailing) &&
                 (a = cJSON_AddArrayToObject(o, "files")) && cJSON_AddItemToArray(a, cJSON_CreateString(out_path));
        for (i = 0; ok && i < r.nsvgs; i++)
            ok = cJSON_AddItemToArray(a, cJSON_CreateString(svg_paths[i]));
        ok = ok && (a = cJSON_AddArrayToObject(o, "runs"));
        for (i = 0; ok && i < r.nruns; i++) {
            cJSON *x = cJSON_CreateObject();
            ok = x && cJSON_AddItemToArray(a, x) && cJSON_AddStringToObject(x, "run_id", r.runs[i].run_id) &&
                 cJSON_AddNumberToObject(x, "seq", (double)r.runs[i].seq) &&
                 cJSON_AddStringToObject(x, "study", r.runs[i].study);
        }
        ok = ok && (a = cJSON_AddArrayToObject(o, "claims"));
        for (i = 0; ok && i < r.nclaims; i++) {
            cJSON *x = cJSON_CreateObject();
            ok = x && cJSON_AddItemToArray(a, x) && cJSON_AddStringToObject(x, "id", r.claims[i].id) &&
                 cJSON_AddStringToObject(x, "verdict", r.claims[i].verdict);
        }
        if (!ok || !(s = cJSON_Print(o))) {
            cJSON_Delete(o);
            err = lg_error_set(LG_ENOMEM, "out of memory");
            goto out;
        }
        printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
    } else {
        printf("rendered %s: %zu plot%s, %zu run%s, %zu claim%s", out_path, r.nsvgs, r.nsvgs == 1 ? "" : "s", r.nruns,
               r.nruns == 1 ? "" : "s", r.nclaims, r.nclaims == 1 ? "" : "s");
        if (run_id[0])
            printf("; recorded report run %ld %.12s", info.seq, run_id);
        printf("\n");
    }
    if (r.nfailing)
        fprintf(stderr, "ledger report: %zu directive%s rendered NOT SUPPORTED (--allow-failing)\n", r.nfailing,
                r.nfailing == 1 ? "" : "s");
out:
    rc = err < 0 ? cli_fail("report", err) : 0;
    if (svg_paths)
        for (i = 0; i < r.nsvgs; i++)
            lg_free(svg_paths[i]);
    lg_free(svg_paths);
    lg_free(files);
    cJSON_Delete(extra);
    lg_buf_release(&key_path);
    lg_report_release(&r);
    lg_template_free(t);
    for (i = 0; i < ncp; i++)
        lg_free(cpaths[i]);
    lg_free(cpaths);
    lg_buf_release(&path);
    lg_buf_release(&tout);
    lg_buf_release(&study);
    return rc;
}
