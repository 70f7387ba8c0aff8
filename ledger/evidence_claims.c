/*
 * evidence_claims.c - claim files against the evidence: the default claim
 * files of a repository (<root>/claims/ *.claims, sorted), evaluating a set
 * of files with one evidence context (so every claim sees the same runs and
 * the same caches), and finding a claim's result by id.
 */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/sha256.h"
#include "ledger/index.h"
#include "ledger/manifest.h"
#include "ledger/sign.h"
#include "ledger/evidence_int.h"

/* ---- files ---------------------------------------------------------------------------- */

int lg_evidence_default_claims(lg_ledger *lg, char ***paths, size_t *n)
{
    lg_buf dir = LG_BUF_INIT, p = LG_BUF_INIT;
    DIR *d = NULL;
    struct dirent *e;
    char **list = NULL;
    size_t cnt = 0, cap = 0;
    int err = 0;
    *paths = NULL;
    *n = 0;
    if ((err = lg_path_join(&dir, lg_ledger_root(lg), "claims")) < 0)
        goto out;
    if (!(d = opendir(dir.ptr)))
        goto out; /* no claims folder: no claims */
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 8 || strcmp(e->d_name + len - 7, ".claims") != 0 || e->d_name[0] == '.')
            continue;
        if (cnt == cap) {
            char **nl;
            cap = cap ? cap * 2 : 8;
            if (!(nl = lg_realloc(list, cap * sizeof(char *)))) {
                err = LG_ENOMEM;
                goto out;
            }
            list = nl;
        }
        if ((err = lg_path_join(&p, dir.ptr, e->d_name)) < 0)
            goto out;
        if (!(list[cnt] = lg_strdup(p.ptr))) {
            err = LG_ENOMEM;
            goto out;
        }
        cnt++;
    }
    if (cnt)
        qsort(list, cnt, sizeof(char *), ev_cmp_str);
out:
    if (d)
        closedir(d);
    lg_buf_release(&dir);
    lg_buf_release(&p);
    if (err < 0) {
        lg_evidence_paths_free(list, cnt);
        return err;
    }
    *paths = list;
    *n = cnt;
    return 0;
}

void lg_evidence_paths_free(char **paths, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        lg_free(paths[i]);
    lg_free(paths);
}

int lg_evidence_eval_files(lg_ledger *lg, char *const *paths, size_t n, lg_eval_result ***results)
{
    return lg_evidence_eval_files_opts(lg, paths, n, NULL, results);
}

int lg_evidence_eval_files_ctx(lg_evidence_ctx *ev, char *const *paths, size_t n, lg_eval_result ***results)
{
    lg_eval_result **res = NULL;
    size_t i;
    int err = 0;
    *results = NULL;
    if (!(res = lg_calloc(n ? n : 1, sizeof(*res))))
        return LG_ENOMEM;
    for (i = 0; i < n; i++) {
        lg_claim_file *f = NULL;
        if (lg_is_dir(paths[i])) {
            err = lg_error_set(LG_EINPUT, "%s: is a directory, not a claims file (give the .claims files in it)",
                               paths[i]);
            goto out;
        }
        if ((err = lg_claims_load(paths[i], &f)) < 0)
            goto out;
        err = lg_eval_file_grid(f, lg_evidence_provider, lg_evidence_grid_provider, ev, &res[i]);
        lg_claims_free(f);
        if (err < 0)
            goto out;
    }
out:
    if (err < 0) {
        for (i = 0; i < n; i++)
            lg_eval_result_free(res[i]);
        lg_free(res);
        return err;
    }
    *results = res;
    return 0;
}

int lg_evidence_eval_files_opts(lg_ledger *lg, char *const *paths, size_t n, const lg_evidence_opts *opts,
                                lg_eval_result ***results)
{
    lg_evidence_ctx *ev = NULL;
    int err;
    *results = NULL;
    if ((err = lg_evidence_new(lg, &ev)) < 0)
        return err;
    if (opts)
        lg_evidence_set_require_signed(ev, opts->require_signed);
    err = lg_evidence_eval_files_ctx(ev, paths, n, results);
    lg_evidence_free(ev);
    return err;
}

int lg_evidence_find_claim(lg_eval_result *const *results, size_t n, const char *id, const lg_claim_result **result)
{
    size_t i, j;
    for (i = 0; i < n; i++)
        for (j = 0; j < results[i]->nclaims; j++)
            if (strcmp(results[i]->claims[j].id, id) == 0) {
                *result = &results[i]->claims[j];
                return 0;
            }
    return lg_error_set(LG_ENOTFOUND, "no claim '%s' in the claim files", id);
}

int lg_evidence_find_claims(lg_eval_result *const *results, size_t n, const char *id, const lg_claim_result ***out,
                            size_t *nout)
{
    size_t i, j, k = 0, len = strlen(id), total = 0;
    const lg_claim_result **v;
    *out = NULL;
    *nout = 0;
    for (i = 0; i < n; i++)
        total += results[i]->nclaims;
    if (!(v = lg_calloc(total + 1, sizeof(*v))))
        return LG_ENOMEM;
    for (i = 0; i < n; i++)
        for (j = 0; j < results[i]->nclaims; j++) {
            const lg_claim_result *c = &results[i]->claims[j];
            if (!strcmp(c->id, id) || (c->grid_key && !strncmp(c->id, id, len) && c->id[len] == '['))
                v[k++] = c;
        }
    if (k == 0) {
        lg_free(v);
        return lg_error_set(LG_ENOTFOUND, "no claim '%s' in the claim files", id);
    }
    *out = v;
    *nout = k;
    return 0;
}
