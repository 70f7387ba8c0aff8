/*
 * cli_study.c - one study, one name: a study file that declares a name an
 * earlier run recorded from another file is refused (cli.h).
 *
 * Runs are grouped by study name (claims, reports, staleness); two files
 * declaring the same name would mix their runs silently. The ledger knows
 * each run's study_path, so before recording we look for an earlier run of
 * this name whose file is a different file that still exists and still
 * declares the name. A file that was renamed, removed or given another name
 * is no conflict, and neither is a copy of the same study (the two files
 * parse to equal JSON: one study in two places, e.g. a spec extracted from a
 * manifest).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger/cli.h"
#include "ledger/evidence.h"
#include "ledger/ledger.h"
#include "ledger/manifest.h"

typedef struct {
    lg_ledger *lg;
    const char *study;
    char mine[PATH_MAX];  /* realpath of this run's study file */
    char other[PATH_MAX]; /* the conflicting file, as recorded */
    long other_seq;
    cJSON *mine_json;     /* this run's study file, parsed (NULL when it is not JSON) */
} name_ctx;

static cJSON *parse_file(const char *path)
{
    lg_buf text = LG_BUF_INIT;
    cJSON *j = NULL;
    if (lg_file_read(path, 64u << 20, &text) == 0)
        j = cJSON_ParseWithLength(text.ptr, text.len);
    lg_buf_release(&text);
    lg_error_clear();
    return j;
}

/* 1 when the JSON file at path declares "name": study and is not the same
 * study as `mine` (equal JSON) */
static int declares(const char *path, const char *study, const cJSON *mine)
{
    cJSON *j = parse_file(path);
    const cJSON *n;
    int yes = 0;
    if (j && cJSON_IsString(n = cJSON_GetObjectItemCaseSensitive(j, "name")))
        yes = strcmp(n->valuestring, study) == 0 && !(mine && cJSON_Compare(j, mine, 1));
    cJSON_Delete(j);
    return yes;
}

static int check_run(void *vctx, const lg_run_info *ri, const cJSON *m)
{
    name_ctx *c = vctx;
    const char *study = lg_json_str(m, "study"), *sp = lg_json_str(m, "study_path");
    lg_buf full = LG_BUF_INIT;
    char real[PATH_MAX];
    int conflict = 0;
    if (!study || !sp || !*sp || strcmp(study, c->study) != 0)
        return 0;
    if (sp[0] == '/' ? lg_buf_puts(&full, sp) < 0 : lg_path_join(&full, lg_ledger_root(c->lg), sp) < 0) {
        lg_buf_release(&full);
        return LG_ENOMEM;
    }
    if (realpath(full.ptr, real) && strcmp(real, c->mine) != 0 && declares(real, c->study, c->mine_json)) {
        snprintf(c->other, sizeof c->other, "%s", sp);
        c->other_seq = ri->seq;
        conflict = 1;
    }
    lg_buf_release(&full);
    return conflict; /* non-zero stops the walk */
}

int cli_check_study_name(lg_ledger *lg, const char *study, const char *study_file)
{
    name_ctx c;
    char rel[PATH_MAX];
    int err;
    if (!study || !study_file)
        return 0;
    memset(&c, 0, sizeof c);
    c.lg = lg;
    c.study = study;
    if (!realpath(study_file, c.mine))
        return 0;
    c.mine_json = parse_file(c.mine);
    err = lg_ledger_foreach_run(lg, check_run, &c);
    cJSON_Delete(c.mine_json);
    if (err <= 0)
        return err;
    return lg_error_set(LG_EINPUT,
                        "study name '%s' is declared by both %s and %s (run @%ld was recorded from %s): one study, "
                        "one name; give this file another \"name\", or move the runs' file back",
                        study, cli_repo_relative(lg_ledger_root(lg), study_file, rel, sizeof rel), c.other, c.other_seq,
                        c.other);
}

int cli_record_study_run(lg_ledger *lg, const lg_study *s, const lg_backend *be, const lg_run_result *res,
                         const char *sign_key_path, char run_id[65])
{
    lg_run_input in;
    lg_run_file *files = lg_calloc(res->nfiles ? res->nfiles : 1, sizeof(*files));
    cJSON *extra = cJSON_CreateObject();
    char meaning[65], relbuf[PATH_MAX];
    size_t i;
    int err;

    /* the spec's meaning (canonical JSON without "description"), which staleness compares (evidence.h) */
    if (!files || !extra || lg_spec_canonical_digest(s->json, meaning) < 0 ||
        !cJSON_AddStringToObject(extra, "spec_canonical_sha256", meaning)) {
        err = lg_error_code() ? lg_error_code() : lg_error_set(LG_ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < res->nfiles; i++) {
        files[i].name = res->files[i].name;
        files[i].path = res->files[i].path;
        files[i].media_type = res->files[i].media_type;
    }
    memset(&in, 0, sizeof in);
    in.kind = "run";
    in.study = s->name;
    in.study_path = cli_repo_relative(lg_ledger_root(lg), s->path, relbuf, sizeof relbuf);
    in.spec_digest = s->spec_digest;
    in.data_digest = res->data_digest;
    in.backend = be->name;
    in.device = be->device;
    in.spec = s->json;
    in.results = res->results;
    in.files = files;
    in.nfiles = res->nfiles;
    in.status = res->diverged ? "failed" : "ok";
    in.sign_key_path = sign_key_path;
    in.extra = extra;
    err = lg_ledger_record(lg, &in, run_id);
out:
    cJSON_Delete(extra);
    lg_free(files);
    return err;
}
