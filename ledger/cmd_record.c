/*
 * cmd_record.c - 'ledger record': record files produced elsewhere as a run
 * (evidence from other tools, and the way tests make runs without the
 * engine). Each FILE argument is stored under a name: the path as given when
 * it is a valid relative name ("out/a.npy"), else its basename; NAME=PATH
 * names it explicitly.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifacts/json.h"
#include "base/sha256.h"
#include "engine/study.h"
#include "ledger/cli.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"
#include "ledger/sign.h"

static const char *media_type_of(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        {".json", "application/json"}, {".npy", "application/x-npy"},
        {".safetensors", "application/x-safetensors"}, {".md", "text/markdown"},
        {".txt", "text/plain"}, {".csv", "text/csv"}, {".svg", "image/svg+xml"},
        {".png", "image/png"}};
    size_t i, n = strlen(name);
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t m = strlen(types[i].ext);
        if (n > m && strcmp(name + n - m, types[i].ext) == 0)
            return types[i].type;
    }
    return "application/octet-stream";
}

/* Reads and strictly parses a JSON file (artifacts/json.h: one document, no
 * duplicate key, no \u0000); errors name the file, line and column.
 * digest (may be NULL) gets the SHA-256 of the bytes parsed. */
static int read_json(const char *path, cJSON **out, char digest[65])
{
    lg_buf text = LG_BUF_INIT;
    int err;
    *out = NULL;
    if ((err = lg_path_check_regular(path)) < 0 || (err = lg_file_read(path, 256u << 20, &text)) < 0)
        goto out;
    if (digest && (err = lg_sha256_buf(text.ptr, text.len, digest)) < 0)
        goto out;
    err = lg_json_parse(path, text.ptr, text.len, out);
out:
    lg_buf_release(&text);
    return err;
}

int cmd_record(lg_cli *cli, int argc, char **argv)
{
    const char *study = NULL, *results_path = NULL, *spec_path = NULL, *kind = "record", *status = "ok";
    const char *data_digest = NULL, *sign = getenv("LEDGER_SIGN_KEY");
    int json = 0;
    const lg_opt opts[] = {
        {"study", 's', LG_OPT_STRING, &study, "NAME", "study name (required)"},
        {"results", 'r', LG_OPT_STRING, &results_path, "FILE.json", "evidence in the results format"},
        {"spec", 0, LG_OPT_STRING, &spec_path, "FILE", "study spec: its digest (and JSON) go in the manifest"},
        {"data-digest", 0, LG_OPT_STRING, &data_digest, "SHA256", "digest identifying the input data"},
        {"kind", 0, LG_OPT_STRING, &kind, "KIND", "run, record or import (default record); reports come from 'ledger report'"},
        {"status", 0, LG_OPT_STRING, &status, "STATUS", "ok or failed (default ok)"},
        {"sign", 0, LG_OPT_STRING, &sign, "KEY",
         "sign the run with this key (a name from 'ledger key list' or a PEM path; default $LEDGER_SIGN_KEY)"},
        {"json", 0, LG_OPT_FLAG, &json, NULL, "print the run id as JSON"},
        LG_OPT_TABLE_END};
    const lg_cmd_spec spec = {"record", "ledger record --study NAME [options] [NAME=]FILE...",
                              "Record files produced elsewhere as a run: store each file, commit a manifest to the "
                              "ledger branch, index it. Output names are the relative paths given (or basenames), "
                              "or NAME in NAME=FILE.",
                              opts, 0, -1, 0};
    lg_ledger *lg = NULL;
    lg_run_file *files = NULL;
    lg_run_input in;
    lg_run_info info;
    cJSON *results = NULL, *specj = NULL;
    lg_buf key_path = LG_BUF_INIT;
    char run_id[65], spec_digest[65], relbuf[PATH_MAX];
    char **args;
    int nargs, rc, err = 0, i;

    if ((rc = cli_parse(cli, &spec, argc, argv, &nargs, &args)) != LG_OPTS_RUN)
        return rc;
    if (!study) {
        fprintf(stderr, "ledger record: --study NAME is required\n");
        return 2;
    }
    if (!lg_study_name_valid(study)) { /* as a spec's "name" (ledger run) */
        fprintf(stderr, "ledger record: --study: '%.100s': use 1-100 characters of [A-Za-z0-9._-]\n", study);
        return 2;
    }
    if (strcmp(kind, "report") == 0) { /* verify re-renders reports from their template: only `ledger report` has one */
        fprintf(stderr, "ledger record: --kind report: reports are written by 'ledger report TEMPLATE -o OUT' "
                        "(verify re-renders them from their template)\n");
        return 2;
    }
    memset(&in, 0, sizeof in);
    if (sign && *sign && (err = lg_key_resolve(sign, &key_path)) < 0) /* a bad key fails before anything is stored */
        goto out;
    if (nargs && !(files = lg_calloc((size_t)nargs, sizeof(*files)))) {
        err = LG_ENOMEM;
        goto out;
    }
    for (i = 0; i < nargs; i++) {
        char *a = args[i], *eq = strchr(a, '=');
        if (eq && !lg_path_exists(a)) {
            *eq = '\0';
            files[i].name = a;
            files[i].path = eq + 1;
        } else {
            const char *slash = strrchr(a, '/');
            files[i].path = a;
            files[i].name = lg_manifest_check_name(a) == 0 ? a : (slash ? slash + 1 : a);
        }
        files[i].media_type = media_type_of(files[i].name);
        /* a FIFO would block the store's read while we hold the writer lock: refuse it now */
        if ((err = lg_path_check_regular(files[i].path)) < 0) {
            if (err == LG_ENOTFOUND)
                lg_error_set(LG_ENOTFOUND, "%s: no such file", files[i].path);
            goto out;
        }
    }
    lg_error_clear();
    if (results_path && (err = read_json(results_path, &results, NULL)) < 0)
        goto out;
    if (results && (err = lg_results_check(results, results_path)) < 0)
        goto out;
    if (spec_path) {
        if ((err = read_json(spec_path, &specj, spec_digest)) < 0)
            goto out;
    }
    if ((err = cli_ledger(cli, &lg)) < 0)
        goto out;
    if ((err = cli_check_study_name(lg, study, spec_path)) < 0) /* one study, one name */
        goto out;
    in.kind = kind;
    in.study = study;
    in.study_path = spec_path ? cli_repo_relative(lg_ledger_root(lg), spec_path, relbuf, sizeof relbuf) : NULL;
    in.spec_digest = spec_path ? spec_digest : NULL;
    in.data_digest = data_digest;
    in.spec = specj;
    in.results = results;
    in.files = files;
    in.nfiles = (size_t)nargs;
    in.status = status;
    in.sign_key_path = key_path.len ? key_path.ptr : NULL;
    if ((err = lg_ledger_record(lg, &in, run_id)) < 0)
        goto out;
    if ((err = lg_ledger_find_run(lg, run_id, &info)) < 0)
        goto out;
    if (json)
        printf("{\"run_id\":\"%s\",\"seq\":%ld}\n", run_id, info.seq);
    else
        printf("recorded run %ld %.12s (%d output%s%s)\n", info.seq, run_id, nargs, nargs == 1 ? "" : "s",
               in.sign_key_path ? ", signed" : "");
out:
    cJSON_Delete(results);
    cJSON_Delete(specj);
    lg_free(files);
    lg_buf_release(&key_path);
    return err < 0 ? cli_fail("record", err) : 0;
}
